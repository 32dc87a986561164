//! The library use-case: imports (matched, merged, idempotent, undoable), listing, manual
//! edits, merge and split by hand, possible duplicates, and export.
//!
//! An import is processed in chunks of [`CHUNK_ROWS`] rows. For each chunk the store is
//! asked once for the sources already holding the chunk's source keys; rows it does not
//! know are matched through the import's [`MatchIndex`] (the user's match keys, read once
//! per import on first need and kept current with what the import writes), and the few
//! items they hit are fetched by id. Matching then runs in memory (items created earlier
//! in the chunk included), every touched item is re-resolved from all its sources, and the
//! chunk is written in one piece. So the queries per row stay constant however large the
//! library is.
//!
//! That write runs while the next chunk is read and matched (`PendingWrite`). The next
//! chunk waits for it (`Library::settle`) before it reads or matches anything the write
//! holds, so the outcome is the same as writing the chunks one after another.
//!
//! The writes go through one [`LibraryWriter`], and chunks share a transaction until
//! [`COMMIT_ROWS`] rows are in it or it has been open [`COMMIT_AFTER_MS`] (with SQLite,
//! every other writer waits for it): a commit writes out every page the transaction
//! dirtied, and a 500-row chunk dirties most leaves of the title-order index, so per-chunk
//! commits wrote those pages again and again (twice the bytes a 100k-row import now
//! writes). The store's reads see only committed rows, so a chunk that would read what an
//! open transaction holds (a source key, an item it changed) commits first
//! (`Library::commit`); the match candidates of the items the import created are kept
//! in memory instead (`Uncommitted`), as later rows look them up often. The batch's counts
//! are written with each chunk, so an import cut short resumes after the rows it
//! committed.
//!
//! Parsers live in `bb-importers`, which core must not depend on: callers pass the rows
//! in, converting row errors to [`RowFailure`].

use super::match_index::{MatchIndex, RecordKeys, record_keys};
use super::matching::{
    CandidateKeys, MatchCandidate, MatchOutcome, SourceKey, candidate_keys, match_record_keyed,
};
use super::raw::Raw;
use super::read_ahead::ReadAhead;
use super::record::{Progress, Rating, ReadingStatus, SourceRecord};
use super::resolve::{
    Edit, ManualEdits, ResolveRules, ResolvedItem, SourceKind, SourceRef, SourcedRecord, resolve,
    resolve_listed,
};
use super::stored::expand_stored;
use crate::clock::Clock;
use crate::error::{CoreError, CoreResult};
use crate::ids::{BatchId, ItemId, UserId};
use crate::ports::{
    BatchCounts, BatchState, DuplicateState, DuplicateWrite, ImportBatch, ItemQuery, ItemRef,
    ItemWrite, Job, LibraryWrite, LibraryWriter, NewJob, PossibleDuplicate, RatingFilter, SourceOp,
    SourceWrite, Store, StoredSource,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io::Write;
use std::sync::Arc;

/// Rows per chunk: per candidate lookup and per write.
pub const CHUNK_ROWS: usize = 500;
/// Rows an import writes before it commits: its chunks' writes share a transaction until
/// this many rows are in it (or a chunk needs to read what they wrote).
pub const COMMIT_ROWS: u64 = 5000;
/// How long an import's transaction stays open, at most about: the chunk written after
/// this commits, whatever its row count. With SQLite every other write (another user's
/// import, a web request, a sync) waits for the transaction, so a slow machine or a slow
/// file must not hold it for 5,000 rows' time.
pub const COMMIT_AFTER_MS: i64 = 500;
/// Items read per query when an import loads the match index.
const INDEX_PAGE: u64 = 2000;
/// Row errors kept in a summary; the count in `failed` stays exact.
pub const MAX_REPORTED_ERRORS: usize = 1000;
/// The largest page `list_items` serves.
pub const MAX_PAGE_SIZE: u64 = 500;
/// Format id of bookbridge's own export.
pub const BOOKBRIDGE_JSON: &str = "bookbridge-json";

/// A row the parser could not turn into a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowFailure {
    pub row: u64,
    pub message: String,
}

impl RowFailure {
    /// Failures numbered 1, 2, … in the order given: for provider listings, whose items
    /// have no row number of their own (the message names the item).
    pub fn numbered(messages: impl IntoIterator<Item = String>) -> Vec<RowFailure> {
        messages
            .into_iter()
            .zip(1..)
            .map(|(message, row)| RowFailure { row, message })
            .collect()
    }
}

/// What the caller knows about the file being imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportSource {
    /// Format id (`goodreads-csv`, …).
    pub format: String,
    /// The service the records come from; source keys are `(provider, external id)`.
    pub provider: String,
    /// The file name, for the batch list.
    pub label: Option<String>,
}

/// The outcome of one import. `rows = created + merged + updated + unchanged + failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportSummary {
    #[schema(value_type = i64)]
    pub batch_id: BatchId,
    pub format: String,
    pub rows: u64,
    /// Rows that became a new item.
    pub created: u64,
    /// Rows that joined an existing item.
    pub merged: u64,
    /// Rows already imported whose content changed.
    pub updated: u64,
    /// Rows already imported exactly as they are.
    pub unchanged: u64,
    pub failed: u64,
    pub errors: Vec<RowFailure>,
}

/// Progress callback: rows processed so far.
pub type ProgressFn<'a> = &'a (dyn Fn(u64) + Send + Sync);

/// A filter for [`Library::list_items`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFilter {
    pub status: Option<String>,
    pub shelf: Option<String>,
    pub format: Option<String>,
    /// A provider (`goodreads`, `kindle`, …).
    pub source: Option<String>,
    pub search: Option<String>,
    /// By the shown rating: unrated, rated, or at least so many stars.
    pub rating: Option<RatingFilter>,
    /// 1-based.
    pub page: Option<u64>,
    pub per_page: Option<u64>,
}

/// One page of the library: each item is `{"id", …resolved fields}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemPage {
    pub items: Vec<serde_json::Value>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

/// A manual edit. Absent fields are left alone; `null` on an optional field clears it
/// (which also wins over the sources); `revert` names fields whose edit is dropped so the
/// sources decide again.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, utoipa::ToSchema)]
#[allow(clippy::option_option)] // absent, null and a value are three different edits
pub struct ItemPatch {
    pub title: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub subtitle: Option<Option<String>>,
    pub authors: Option<Vec<String>>,
    #[schema(value_type = Option<String>)]
    pub status: Option<ReadingStatus>,
    /// Stars, 0.5–5; `null` clears.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub rating: Option<Option<f64>>,
    pub shelves: Option<Vec<String>>,
    /// 0–1; `null` clears.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<f64>)]
    pub progress: Option<Option<f64>>,
    #[serde(default)]
    pub revert: Vec<String>,
}

/// `Some(value)` whenever the field is present, so `null` becomes `Some(None)`.
#[allow(clippy::option_option)] // absent, null and a value are three different edits
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// One stored source of an item, as [`Library::item_sources`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemSource {
    /// The id [`Library::split_item`] takes.
    pub id: i64,
    pub provider: String,
    pub external_id: Option<String>,
    /// The title exactly as this source gave it.
    pub title: String,
    pub origin_kind: SourceKind,
    /// The batch or connection id.
    pub origin_id: i64,
}

/// A possible duplicate with enough of both items to decide.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicateView {
    pub id: i64,
    pub state: DuplicateState,
    pub reason: serde_json::Value,
    pub a: DuplicateSide,
    pub b: DuplicateSide,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicateSide {
    pub id: ItemId,
    pub title: String,
    pub authors: Vec<String>,
}

/// One record as bookbridge's JSON export carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedRecord {
    pub provider: String,
    pub source_key: String,
    pub origin_kind: SourceKind,
    pub origin_id: i64,
    pub seen_at: DateTime<Utc>,
    pub record: SourceRecord,
}

/// The parts of an exported item the importer reads back (the resolved fields are for
/// people and other tools; they are recomputed on import).
#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ExportedItemIn {
    id: i64,
    #[serde(default)]
    edits: ManualEdits,
    records: Vec<ExportedRecord>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
struct ExportIn {
    format: String,
    items: Vec<ExportedItemIn>,
    #[serde(default)]
    never_merge: Vec<(i64, i64)>,
}

/// Whether a file's first bytes are bookbridge's own JSON export.
pub fn is_bookbridge_json(head: &[u8]) -> bool {
    let head = &head[..head.len().min(4096)];
    let text = String::from_utf8_lossy(head);
    text.trim_start().starts_with('{') && text.contains("\"bookbridge-json\"")
}

/// One row on its way into the library.
#[derive(Debug, Clone)]
struct Incoming {
    provider: String,
    source_key: String,
    record: SourceRecord,
    seen_at: Option<DateTime<Utc>>,
    /// Rows of one group (an exported item) go to one item and never title-match.
    group: Option<usize>,
    /// The row's match keys, worked out ahead (see [`read_ahead`]), else when needed.
    keys: Option<RecordKeys>,
    /// What they were hashed from, for matching and for the item's candidate.
    parts: Option<CandidateKeys>,
}

impl Incoming {
    /// Works out the row's keys, unless it has them already.
    fn ensure_keys(&mut self) {
        if self.keys.is_none() {
            let (ids, title, authors) = self
                .parts
                .get_or_insert_with(|| candidate_keys(&self.record));
            self.keys = Some(record_keys(
                ids,
                title,
                authors,
                &self.provider,
                &self.source_key,
            ));
        }
    }
}

/// `rows` read on a thread of their own (see [`ReadAhead`]), or here if none can start.
fn read_ahead<I>(rows: I) -> Box<dyn Iterator<Item = Result<Incoming, RowFailure>> + Send>
where
    I: Iterator<Item = Result<Incoming, RowFailure>> + Send + 'static,
{
    match ReadAhead::start(rows) {
        Ok(ahead) => Box::new(ahead),
        Err(rows) => Box::new(rows),
    }
}

/// Rows of one provider's file on their way in.
fn incoming<I>(
    provider: String,
    records: I,
) -> impl Iterator<Item = Result<Incoming, RowFailure>> + Send
where
    I: Iterator<Item = Result<SourceRecord, RowFailure>> + Send,
{
    records.map(move |r| {
        r.map(|record| {
            let mut row = Incoming {
                provider: provider.clone(),
                source_key: source_key(&record),
                record,
                seen_at: None,
                group: None,
                keys: None,
                parts: None,
            };
            row.ensure_keys();
            row
        })
    })
}

/// The source key of a record: its external id, else one derived from what identifies
/// it in formats without ids (normalised title and authors), so re-imports find it.
pub fn source_key(record: &SourceRecord) -> String {
    if let Some(id) = record.external_id.as_deref().map(str::trim)
        && !id.is_empty()
    {
        return id.to_owned();
    }
    let (_, title, authors) = candidate_keys(record);
    let mut names: Vec<String> = authors.into_iter().map(|a| a.compact).collect();
    names.sort();
    format!("~{}|{}", title.full, names.join(","))
}

/// Index keys of an item: what list filters (`prov:`, `shelf:`, `format:`) search by.
/// Matching keeps its own keys in memory ([`MatchIndex`]), built from the stored
/// candidate.
pub fn index_keys(sources: &[(String, String)], resolved: &ResolvedItem) -> Vec<String> {
    let mut keys = BTreeSet::new();
    for (provider, _) in sources {
        keys.insert(format!("prov:{provider}"));
    }
    for shelf in &resolved.shelves {
        keys.insert(format!("shelf:{}", shelf.to_lowercase()));
    }
    for f in &resolved.formats {
        keys.insert(format!("format:{}", format_str(*f)));
    }
    keys.into_iter().collect()
}

fn format_str(f: super::record::Format) -> &'static str {
    match f {
        super::record::Format::Print => "print",
        super::record::Format::Ebook => "ebook",
        super::record::Format::Audiobook => "audiobook",
    }
}

/// Lower-case ASCII folding for search, shared by stored text and queries.
pub fn fold_search(s: &str) -> String {
    deunicode::deunicode(s)
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// A record as it reads back from JSON, so comparing a fresh row with a stored one is not
/// thrown off by float parsing.
fn json_normal(record: &SourceRecord) -> Option<SourceRecord> {
    let mut normal: SourceRecord = serde_json::to_string(record)
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())?;
    if let Raw::Row(_) = record.raw {
        // A row's fields are text, which JSON gives back as it was; kept as a row, it is
        // stored with the columns its file shares.
        normal.raw = record.raw.clone();
    }
    Some(normal)
}

/// Whether a fresh row says what the stored one says: equal as they are (the common
/// case, and the only one for a row met twice in one import), else once the fresh one
/// has been through JSON as the stored one has.
fn same_record(stored: &SourceRecord, fresh: &SourceRecord) -> bool {
    stored == fresh || json_normal(fresh).is_some_and(|f| &f == stored)
}

fn item_ref(id: i64) -> ItemRef {
    if id < 0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        // temporary ids are -(n + 1) for the n-th new item of a chunk
        ItemRef::New((-id - 1) as usize)
    } else {
        ItemRef::Existing(ItemId(id))
    }
}

fn temp_id(n: usize) -> i64 {
    -(i64::try_from(n).unwrap_or(i64::MAX - 1) + 1)
}

/// What an import carries from chunk to chunk.
#[derive(Default)]
struct ImportState {
    counts: BatchCounts,
    /// Exported items (bookbridge JSON) → the item they became.
    groups: HashMap<usize, ItemId>,
    /// Loaded on first need, then kept up to date with what the import writes.
    index: Option<MatchIndex>,
    /// The previous chunk's write, still running while this chunk is matched.
    pending: Option<PendingWrite>,
    /// The import's writer between writes (a write in flight holds it); made at the first.
    writer: Option<Box<dyn LibraryWriter>>,
    /// What settled writes left uncommitted.
    uncommitted: Uncommitted,
    /// Rows whose chunk is written (settled), committed or not.
    written: u64,
    /// When the open transaction's first write was handed to the writer.
    opened: Option<DateTime<Utc>>,
    /// Rows whose chunk is committed: what progress reports.
    committed: u64,
}

/// What the import has written and not committed yet: the store's reads, on other
/// connections, do not see it. A chunk that would read any of it commits first
/// ([`Library::commit`]), except for the match keys of the items the import created,
/// which are kept here.
#[derive(Debug, Default)]
struct Uncommitted {
    /// Source keys written.
    keys: HashSet<(String, String)>,
    /// Items created or changed.
    items: HashSet<i64>,
    /// The match candidates of the items created, as written.
    created: HashMap<i64, MatchCandidate>,
}

/// A spawned write that is cancelled (its transaction rolled back) if the import stops
/// waiting for it, as it would have been had the import awaited it in place: an import
/// dropped mid-way leaves no write behind to race the attempt that resumes it.
struct WriteTask(tokio::task::JoinHandle<WriteDone>);

/// A finished write: the writer back, the ids of the items it created and, if it left
/// them uncommitted, their match candidates (by `ItemRef::New` number) for [`Uncommitted`].
struct WriteDone {
    writer: Box<dyn LibraryWriter>,
    created: Result<Vec<ItemId>, crate::error::StoreError>,
    candidates: Vec<(usize, MatchCandidate)>,
}

impl Drop for WriteTask {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A chunk's write in flight, and what it changes: a later chunk that would read or match
/// any of it waits for the write first ([`Library::settle`]), so every chunk still sees
/// the library exactly as if the chunks before it had been written one after another.
struct PendingWrite {
    write: WriteTask,
    /// The batch's row count once it is written.
    rows: u64,
    /// Whether the write commits (itself and what was written before it).
    commits: bool,
    /// The source keys it writes.
    keys: HashSet<(String, String)>,
    /// The items it creates (temporary ids) or changes.
    items: BTreeSet<i64>,
    /// Its items' match keys, new items under their temporary ids; the import's index
    /// takes them in once those have real ids.
    local: MatchIndex,
    /// Its new exported items, by group.
    new_groups: Vec<(usize, i64)>,
}

impl PendingWrite {
    /// Whether a chunk with these rows depends on this write before anything is read for
    /// it: rows of an exported item (their groups map to ids it creates) or source keys it
    /// writes.
    fn touches_rows(&self, rows: &[Incoming]) -> bool {
        rows.iter().any(|r| {
            r.group.is_some()
                || self
                    .keys
                    .contains(&(r.provider.clone(), r.source_key.clone()))
        })
    }
}

/// A source of an item as the chunk sees it.
#[derive(Debug, Clone)]
struct WorkingSource {
    stored_id: Option<i64>,
    provider: String,
    source_key: String,
    record: SourceRecord,
    /// The record's [`candidate_keys`], when the row came with them.
    keys: Option<CandidateKeys>,
    origin_kind: SourceKind,
    origin_id: i64,
    seen_at: DateTime<Utc>,
}

impl WorkingSource {
    fn from_stored(s: StoredSource) -> Self {
        Self {
            stored_id: Some(s.id),
            provider: s.provider,
            source_key: s.source_key,
            record: s.record,
            keys: None,
            origin_kind: s.origin_kind,
            origin_id: s.origin_id,
            seen_at: s.seen_at,
        }
    }

    fn sourced(&self) -> SourcedRecord<'_> {
        SourcedRecord {
            source: SourceRef {
                kind: self.origin_kind,
                id: self.origin_id,
                provider: self.provider.clone(),
                seen_at: self.seen_at,
            },
            record: Cow::Borrowed(&self.record),
        }
    }
}

/// The job kind of a large upload's import.
pub const IMPORT_JOB: &str = "import";
/// Attempts of an import job (each resumes where the last stopped).
pub const IMPORT_JOB_ATTEMPTS: u32 = 5;

/// The job queue key of a batch's import: one active job per upload.
pub fn import_job_key(batch: BatchId) -> String {
    format!("import:{}", batch.0)
}

/// What an import job carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportJobPayload {
    pub user_id: UserId,
    pub batch_id: BatchId,
    /// The upload's size.
    pub bytes: u64,
}

/// The summary a finished batch records.
fn summary_of(b: &ImportBatch) -> ImportSummary {
    ImportSummary {
        batch_id: b.id,
        format: b.format.clone(),
        rows: b.counts.rows,
        created: b.counts.created,
        merged: b.counts.merged,
        updated: b.counts.updated,
        unchanged: b.counts.unchanged,
        failed: b.counts.failed,
        errors: serde_json::from_value(b.errors.clone()).unwrap_or_default(),
    }
}

/// The use-case. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Library {
    pub(super) store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    rules: Arc<ResolveRules>,
}

impl Library {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, rules: ResolveRules) -> Self {
        Self {
            store,
            clock,
            rules: Arc::new(rules),
        }
    }

    /// The id of the user called `name`.
    pub async fn user_id(&self, name: &str) -> CoreResult<UserId> {
        self.store
            .user_by_name(name)
            .await?
            .map(|u| u.id)
            .ok_or(CoreError::NotFound("user"))
    }

    /// Imports rows from one file as one batch.
    pub async fn import<I>(
        &self,
        user: UserId,
        source: &ImportSource,
        records: I,
    ) -> CoreResult<ImportSummary>
    where
        I: Iterator<Item = Result<SourceRecord, RowFailure>> + Send + 'static,
    {
        self.import_with_progress(user, source, records, &|_| {})
            .await
    }

    /// [`Library::import`], calling `progress` after every chunk.
    pub async fn import_with_progress<I>(
        &self,
        user: UserId,
        source: &ImportSource,
        records: I,
        progress: ProgressFn<'_>,
    ) -> CoreResult<ImportSummary>
    where
        I: Iterator<Item = Result<SourceRecord, RowFailure>> + Send + 'static,
    {
        let rows = read_ahead(incoming(source.provider.clone(), records));
        let (summary, _) = self.run_import(user, source, rows, progress).await?;
        Ok(summary)
    }

    /// Creates the batch of an upload too large to import during the request: `queued`
    /// until [`Library::enqueue_import`] hands it to a job. The caller stores the file
    /// with [`Library::put_upload_chunk`].
    pub async fn create_upload(&self, user: UserId, source: &ImportSource) -> CoreResult<BatchId> {
        let batch = self.new_batch(user, source).await?;
        self.store
            .set_batch_state(user, batch.id, BatchState::Queued, None, self.clock.now())
            .await?;
        Ok(batch.id)
    }

    /// Stores piece `seq` (from 0) of an upload; pieces are read back in order.
    pub async fn put_upload_chunk(
        &self,
        user: UserId,
        batch: BatchId,
        seq: u32,
        data: &[u8],
    ) -> CoreResult<()> {
        Ok(self.store.put_upload_chunk(user, batch, seq, data).await?)
    }

    /// Drops an upload that did not arrive whole, batch and all.
    pub async fn discard_upload(&self, user: UserId, batch: BatchId) -> CoreResult<()> {
        self.store.delete_batch(user, batch).await?;
        Ok(())
    }

    /// Queues the import job of a stored upload of `bytes` bytes.
    pub async fn enqueue_import(&self, user: UserId, batch: BatchId, bytes: u64) -> CoreResult<()> {
        let job = NewJob {
            kind: IMPORT_JOB.into(),
            key: import_job_key(batch),
            payload: serde_json::to_value(ImportJobPayload {
                user_id: user,
                batch_id: batch,
                bytes,
            })
            .map_err(|e| CoreError::InvalidInput(format!("cannot encode a job: {e}")))?,
            run_at: self.clock.now(),
            max_attempts: IMPORT_JOB_ATTEMPTS,
        };
        self.store.enqueue(&job, self.clock.now()).await?;
        Ok(())
    }

    /// The latest job of an import, when it went through one.
    pub async fn import_job(&self, batch: BatchId) -> CoreResult<Option<Job>> {
        Ok(self
            .store
            .jobs_for_key(&import_job_key(batch), 1)
            .await?
            .into_iter()
            .next())
    }

    /// Writes a stored upload to `out`, piece by piece. Returns the bytes written.
    pub async fn copy_upload(
        &self,
        user: UserId,
        batch: BatchId,
        out: &mut (dyn Write + Send),
    ) -> CoreResult<u64> {
        let mut total = 0u64;
        let mut seq = 0u32;
        while let Some(piece) = self.store.upload_chunk(user, batch, seq).await? {
            out.write_all(&piece)
                .map_err(|e| CoreError::InvalidInput(format!("cannot spill an upload: {e}")))?;
            total += piece.len() as u64;
            seq += 1;
        }
        Ok(total)
    }

    /// Runs a queued import: `rows` are the stored upload's rows, from the first. A batch
    /// an earlier attempt left half done resumes after the rows it committed; one already
    /// done just reports its summary, so a repeated job changes nothing. The stored upload
    /// is deleted once the import is done.
    pub async fn run_queued_import<I>(
        &self,
        user: UserId,
        batch: BatchId,
        records: I,
        progress: ProgressFn<'_>,
    ) -> CoreResult<ImportSummary>
    where
        I: Iterator<Item = Result<SourceRecord, RowFailure>> + Send + 'static,
    {
        let b = self.batch(user, batch).await?;
        let summary = match b.state {
            BatchState::Done | BatchState::Undone => summary_of(&b),
            BatchState::Failed => {
                return Err(CoreError::Conflict("that import failed".into()));
            }
            BatchState::Queued | BatchState::Running => {
                self.store
                    .set_batch_state(user, batch, BatchState::Running, None, self.clock.now())
                    .await?;
                let rows = read_ahead(incoming(b.provider.clone(), records));
                self.run_into_batch(user, &b, rows, progress).await?.0
            }
        };
        self.store.delete_upload(user, batch).await?;
        Ok(summary)
    }

    /// Marks a queued import as failed for a reason that concerns the whole file.
    pub async fn fail_queued_import(
        &self,
        user: UserId,
        batch: BatchId,
        message: &str,
    ) -> CoreResult<()> {
        let errors = serde_json::json!([{ "row": 0, "message": message }]);
        self.store
            .set_batch_state(
                user,
                batch,
                BatchState::Failed,
                Some(&errors),
                self.clock.now(),
            )
            .await?;
        self.store.delete_upload(user, batch).await?;
        Ok(())
    }

    async fn run_import<I>(
        &self,
        user: UserId,
        source: &ImportSource,
        rows: I,
        progress: ProgressFn<'_>,
    ) -> CoreResult<(ImportSummary, HashMap<usize, ItemId>)>
    where
        I: Iterator<Item = Result<Incoming, RowFailure>> + Send,
    {
        let batch = self.new_batch(user, source).await?;
        self.run_into_batch(user, &batch, rows, progress).await
    }

    async fn new_batch(&self, user: UserId, source: &ImportSource) -> CoreResult<ImportBatch> {
        Ok(self
            .store
            .create_batch(
                user,
                &source.format,
                &source.provider,
                source.label.as_deref(),
                self.clock.now(),
            )
            .await?)
    }

    /// Imports `rows` as `batch`. A batch with rows already counted is being resumed: that
    /// many rows were committed by an earlier attempt, so they are skipped (their row errors
    /// collected again, as those are not kept per chunk).
    async fn run_into_batch<I>(
        &self,
        user: UserId,
        batch: &ImportBatch,
        mut rows: I,
        progress: ProgressFn<'_>,
    ) -> CoreResult<(ImportSummary, HashMap<usize, ItemId>)>
    where
        I: Iterator<Item = Result<Incoming, RowFailure>> + Send,
    {
        let mut state = ImportState {
            counts: batch.counts,
            committed: batch.counts.rows,
            ..ImportState::default()
        };
        let mut reported = state.committed;
        let mut errors: Vec<RowFailure> = Vec::new();
        for _ in 0..batch.counts.rows {
            match rows.next() {
                Some(Err(e)) if errors.len() < MAX_REPORTED_ERRORS => errors.push(e),
                Some(_) => {}
                None => break,
            }
        }
        let mut chunk: Vec<Incoming> = Vec::with_capacity(CHUNK_ROWS);
        for row in rows {
            state.counts.rows += 1;
            match row {
                Ok(r) => chunk.push(r),
                Err(e) => {
                    state.counts.failed += 1;
                    if errors.len() < MAX_REPORTED_ERRORS {
                        errors.push(e);
                    }
                }
            }
            if chunk.len() >= CHUNK_ROWS {
                let rows = std::mem::take(&mut chunk);
                self.chunk_or_settle(user, batch.id, rows, &mut state)
                    .await?;
                // Progress counts committed rows: a chunk is written while the next one
                // is matched.
                if state.committed > reported {
                    reported = state.committed;
                    progress(reported);
                }
            }
        }
        if !chunk.is_empty() {
            self.chunk_or_settle(user, batch.id, chunk, &mut state)
                .await?;
        }
        self.commit(&mut state).await?;
        progress(state.counts.rows);
        let ImportState { counts, groups, .. } = state;
        let errors_json = serde_json::to_value(&errors)
            .map_err(|e| CoreError::InvalidInput(format!("bad row error: {e}")))?;
        self.store
            .finish_batch(user, batch.id, &counts, &errors_json, self.clock.now())
            .await?;
        Ok((
            ImportSummary {
                batch_id: batch.id,
                format: batch.format.clone(),
                rows: counts.rows,
                created: counts.created,
                merged: counts.merged,
                updated: counts.updated,
                unchanged: counts.unchanged,
                failed: counts.failed,
                errors,
            },
            groups,
        ))
    }

    /// The user's match index, read from the store the first time a row needs it (a
    /// re-import whose rows are all known by source key never does).
    async fn load_index(&self, user: UserId) -> CoreResult<MatchIndex> {
        let mut index = MatchIndex::default();
        let mut after = None;
        loop {
            let page = self
                .store
                .match_candidates_after(user, after, INDEX_PAGE)
                .await?;
            let Some(last) = page.last() else {
                return Ok(index);
            };
            after = Some(last.item);
            for c in &page {
                index.add(c.item.0, &c.candidate);
            }
        }
    }

    /// [`Self::import_chunk`], and should it fail, the write still running from the chunk
    /// before is waited for: nothing is left writing once the import has returned. A failed
    /// earlier write is the error to report, as this chunk read what it would have written.
    async fn chunk_or_settle(
        &self,
        user: UserId,
        batch: BatchId,
        rows: Vec<Incoming>,
        state: &mut ImportState,
    ) -> CoreResult<()> {
        let result = self.import_chunk(user, batch, rows, state).await;
        if result.is_err() {
            self.settle(state).await?;
        }
        result
    }

    /// Waits for the write in flight, if any, and takes in what it created: the real ids of
    /// its new items go into the match index and the exported-item groups, and what it
    /// left uncommitted into [`Uncommitted`].
    async fn settle(&self, state: &mut ImportState) -> CoreResult<()> {
        let Some(mut p) = state.pending.take() else {
            return Ok(());
        };
        let WriteDone {
            writer,
            created,
            candidates,
        } = (&mut p.write.0).await.map_err(|e| {
            crate::error::StoreError::Backend(format!("a library write stopped: {e}"))
        })?;
        state.writer = Some(writer);
        let created = created?;
        state.written = p.rows;
        let real = |temp: i64| match item_ref(temp) {
            ItemRef::New(n) => created.get(n).map(|id| id.0),
            ItemRef::Existing(id) => Some(id.0),
        };
        if p.commits {
            state.committed = p.rows;
            state.uncommitted = Uncommitted::default();
            state.opened = None;
        } else {
            let u = &mut state.uncommitted;
            u.keys.extend(p.keys);
            u.items.extend(p.items.iter().filter_map(|i| real(*i)));
            for (n, mut c) in candidates {
                if let Some(id) = created.get(n) {
                    // It was written under its temporary id.
                    c.item = id.0;
                    u.created.insert(id.0, c);
                }
            }
        }
        for (g, temp) in p.new_groups {
            if let Some(id) = real(temp) {
                state.groups.insert(g, ItemId(id));
            }
        }
        if let Some(index) = &mut state.index {
            index.absorb(p.local, real);
        }
        Ok(())
    }

    /// Settles the write in flight and commits everything written: what follows reads
    /// the store, and must find it there.
    async fn commit(&self, state: &mut ImportState) -> CoreResult<()> {
        self.settle(state).await?;
        if let Some(w) = &mut state.writer
            && w.is_open()
        {
            w.commit().await?;
        }
        state.committed = state.written;
        state.uncommitted = Uncommitted::default();
        state.opened = None;
        Ok(())
    }

    /// Whether `keys` hit anything the write in flight changes: what they find there is
    /// not in the store (or the index) yet.
    fn hits_pending(
        state: &ImportState,
        keys: &[Option<RecordKeys>],
        hits: &BTreeSet<i64>,
    ) -> bool {
        let Some(p) = &state.pending else {
            return false;
        };
        if hits.iter().any(|i| p.items.contains(i)) {
            return true;
        }
        let mut found = BTreeSet::new();
        keys.iter().flatten().any(|k| {
            p.local.lookup(k, &mut found);
            !found.is_empty()
        })
    }

    #[allow(clippy::too_many_lines)] // one pass over a chunk reads best as one function
    async fn import_chunk(
        &self,
        user: UserId,
        batch: BatchId,
        mut rows: Vec<Incoming>,
        state: &mut ImportState,
    ) -> CoreResult<()> {
        if state
            .pending
            .as_ref()
            .is_some_and(|p| p.touches_rows(&rows))
        {
            self.settle(state).await?;
        }
        if !state.uncommitted.keys.is_empty()
            && rows.iter().any(|r| {
                state
                    .uncommitted
                    .keys
                    .contains(&(r.provider.clone(), r.source_key.clone()))
            })
        {
            self.commit(state).await?;
        }
        let now = self.clock.now();
        let key_list: Vec<(String, String)> = rows
            .iter()
            .map(|r| (r.provider.clone(), r.source_key.clone()))
            .collect();
        // Where each known source lives: (provider, key) → (item, working source).
        let known: HashMap<(String, String), (i64, WorkingSource)> = self
            .store
            .sources_by_keys(user, &key_list)
            .await?
            .into_iter()
            .map(|s| {
                let item = s.item.0;
                (
                    (s.provider.clone(), s.source_key.clone()),
                    (item, WorkingSource::from_stored(s)),
                )
            })
            .collect();
        drop(key_list);
        // Known sources are not moved by the write in flight (only written when their key
        // is in it, which was settled above), but their items' other sources may be.
        if let Some(p) = &state.pending
            && known.values().any(|(item, _)| p.items.contains(item))
        {
            self.settle(state).await?;
        }

        // Match keys of the rows that need matching, and the stored items they hit.
        let mut row_keys: Vec<Option<RecordKeys>> = Vec::with_capacity(rows.len());
        for r in &mut rows {
            if r.group.is_some() || known.contains_key(&(r.provider.clone(), r.source_key.clone()))
            {
                row_keys.push(None);
                continue;
            }
            r.ensure_keys();
            row_keys.push(r.keys.take());
        }
        if state.index.is_none() && row_keys.iter().any(Option::is_some) {
            // The index is read from the store, so it must hold everything written.
            self.commit(state).await?;
            state.index = Some(self.load_index(user).await?);
        }
        // What each row finds in the index, kept for matching it, and all of that.
        let lookup = |state: &ImportState| {
            let mut hits: BTreeSet<i64> = BTreeSet::new();
            let mut per_row: Vec<BTreeSet<i64>> = Vec::with_capacity(row_keys.len());
            for keys in &row_keys {
                let mut found = BTreeSet::new();
                if let (Some(index), Some(keys)) = (&state.index, keys) {
                    index.lookup(keys, &mut found);
                    hits.extend(found.iter().copied());
                }
                per_row.push(found);
            }
            (hits, per_row)
        };
        let (mut hits, mut row_hits) = lookup(state);
        if Self::hits_pending(state, &row_keys, &hits) {
            self.settle(state).await?;
            (hits, row_hits) = lookup(state);
        }
        // The index does not change from here on in ways these rows could see: a write
        // settled below (by a commit) adds only what `hits_pending` found they miss.
        let mut candidates: BTreeMap<i64, MatchCandidate> = BTreeMap::new();
        // Items this import created and has not committed are matched from what it wrote;
        // others it changed are read once committed.
        hits.retain(|i| match state.uncommitted.created.get(i) {
            Some(c) => {
                candidates.insert(*i, c.clone());
                false
            }
            None => true,
        });
        if hits.iter().any(|i| state.uncommitted.items.contains(i)) {
            self.commit(state).await?;
        }
        if !hits.is_empty() {
            let ids: Vec<ItemId> = hits.iter().map(|i| ItemId(*i)).collect();
            for c in self.store.match_candidates(user, &ids).await? {
                candidates.insert(c.item.0, c.candidate);
            }
        }
        // Items this chunk creates or extends, so later rows of the chunk find them.
        let mut local = MatchIndex::default();

        let mut new_items = 0usize;
        let mut touched: BTreeSet<i64> = BTreeSet::new();
        // Sources this chunk adds or changes, by (provider, key).
        let mut changed: BTreeMap<(String, String), (i64, WorkingSource)> = BTreeMap::new();
        let mut duplicates: Vec<DuplicateWrite> = Vec::new();
        let mut new_groups: Vec<(usize, i64)> = Vec::new();

        for ((mut row, keys), found) in rows.into_iter().zip(row_keys).zip(row_hits) {
            let key = (row.provider.clone(), row.source_key.clone());
            let seen_at = row.seen_at.unwrap_or(now);
            if let Some((item, existing)) = changed.get(&key).or_else(|| known.get(&key)) {
                let item = *item;
                if same_record(&existing.record, &row.record) {
                    state.counts.unchanged += 1;
                    continue;
                }
                state.counts.updated += 1;
                let mut ws = existing.clone();
                ws.record = json_normal(&row.record).unwrap_or(row.record);
                ws.keys = None;
                ws.origin_kind = SourceKind::Batch;
                ws.origin_id = batch.0;
                ws.seen_at = seen_at;
                touched.insert(item);
                // `changed` is looked at first, so `known` needs no copy.
                changed.insert(key, (item, ws));
                continue;
            }

            let target = if let Some(g) = row.group {
                if let Some(item) = state.groups.get(&g) {
                    state.counts.merged += 1;
                    item.0
                } else if let Some((_, item)) = new_groups.iter().find(|(ng, _)| *ng == g) {
                    state.counts.merged += 1;
                    *item
                } else {
                    let id = temp_id(new_items);
                    new_items += 1;
                    state.counts.created += 1;
                    new_groups.push((g, id));
                    id
                }
            } else {
                let keys = keys.unwrap_or_default();
                let mut ids = found;
                local.lookup(&keys, &mut ids);
                let cands: Vec<&MatchCandidate> =
                    ids.iter().filter_map(|i| candidates.get(i)).collect();
                let parts = row.parts.get_or_insert_with(|| candidate_keys(&row.record));
                match match_record_keyed(&row.record, &row.provider, parts, &cands) {
                    MatchOutcome::Same { item, .. } => {
                        state.counts.merged += 1;
                        item
                    }
                    MatchOutcome::Possible {
                        item,
                        score,
                        reason,
                    } => {
                        let id = temp_id(new_items);
                        new_items += 1;
                        state.counts.created += 1;
                        duplicates.push(DuplicateWrite {
                            a: item_ref(id),
                            b: item_ref(item),
                            reason: serde_json::json!({ "score": score, "reason": reason }),
                        });
                        id
                    }
                    MatchOutcome::New => {
                        let id = temp_id(new_items);
                        new_items += 1;
                        state.counts.created += 1;
                        id
                    }
                }
            };

            // A new record is not read back before it is written, so it needs no
            // `json_normal` (that is for comparing with stored records).
            let ws = WorkingSource {
                stored_id: None,
                record: row.record,
                keys: row.parts,
                provider: row.provider,
                source_key: row.source_key,
                origin_kind: SourceKind::Batch,
                origin_id: batch.0,
                seen_at,
            };
            // Later rows of this chunk must be able to find the item.
            let c = candidates.entry(target).or_insert_with(|| MatchCandidate {
                item: target,
                ..MatchCandidate::default()
            });
            extend_candidate(c, &ws);
            local.add(target, c);
            touched.insert(target);
            changed.insert(key, (target, ws));
        }

        // Every source of every touched item, with this chunk's changes laid over.
        let existing_items: Vec<ItemId> = touched
            .iter()
            .filter(|i| **i > 0)
            .map(|i| ItemId(*i))
            .collect();
        if existing_items
            .iter()
            .any(|i| state.uncommitted.items.contains(&i.0))
        {
            self.commit(state).await?;
        }
        let mut per_item: BTreeMap<i64, Vec<WorkingSource>> = BTreeMap::new();
        if !existing_items.is_empty() {
            for s in self.store.sources_of_items(user, &existing_items).await? {
                per_item
                    .entry(s.item.0)
                    .or_default()
                    .push(WorkingSource::from_stored(s));
            }
        }
        let mut write = LibraryWrite::new(now);
        write.new_items = new_items;
        write.created_by = Some(batch);
        let keys: HashSet<(String, String)> = changed.keys().cloned().collect();
        for (item, mut ws) in changed.into_values() {
            let list = per_item.entry(item).or_default();
            if let Some(id) = ws.stored_id {
                write
                    .sources
                    .push(source_write(SourceOp::Update { id }, &mut ws)?);
                if let Some(slot) = list.iter_mut().find(|s| s.stored_id == Some(id)) {
                    *slot = ws;
                }
            } else {
                let op = SourceOp::Insert {
                    item: item_ref(item),
                    provider: ws.provider.clone(),
                    source_key: ws.source_key.clone(),
                };
                write.sources.push(source_write(op, &mut ws)?);
                list.push(ws);
            }
        }
        let edits: HashMap<i64, ManualEdits> = if existing_items.is_empty() {
            HashMap::new()
        } else {
            self.store
                .edits_of_items(user, &existing_items)
                .await?
                .into_iter()
                .map(|(i, e)| (i.0, e))
                .collect()
        };
        for item in &touched {
            let sources = per_item.remove(item).unwrap_or_default();
            let edits = edits.get(item).cloned().unwrap_or_default();
            write
                .items
                .push(self.item_write(item_ref(*item), &sources, &edits));
        }
        write.duplicates = duplicates;
        // A chunk with nothing to write still writes its counts, in order.
        write.batch_counts = Some((batch, state.counts));
        // One write at a time, in chunk order; this one runs while the next chunk is read
        // and matched.
        self.settle(state).await?;
        let mut writer = match state.writer.take() {
            Some(w) => w,
            None => self.store.library_writer().await?,
        };
        let opened = *state.opened.get_or_insert(now);
        let commits = state.counts.rows.saturating_sub(state.committed) >= COMMIT_ROWS
            || now - opened >= chrono::Duration::milliseconds(COMMIT_AFTER_MS);
        state.pending = Some(PendingWrite {
            write: WriteTask(tokio::spawn(async move {
                let mut created = writer.write(user, &write).await;
                let mut candidates = Vec::new();
                if commits {
                    if created.is_ok()
                        && let Err(e) = writer.commit().await
                    {
                        created = Err(e);
                    }
                } else {
                    for w in write.items {
                        if let ItemRef::New(n) = w.item {
                            candidates.push((n, w.candidate));
                        }
                    }
                }
                WriteDone {
                    writer,
                    created,
                    candidates,
                }
            })),
            rows: state.counts.rows,
            commits,
            keys,
            local,
            new_groups,
            items: touched,
        });
        Ok(())
    }

    /// What the store keeps of an item with these sources and edits: match keys, lookup keys
    /// and the fields listings filter, search and sort on.
    fn item_write(
        &self,
        item: ItemRef,
        sources: &[WorkingSource],
        edits: &ManualEdits,
    ) -> ItemWrite {
        let records: Vec<SourcedRecord> = sources.iter().map(WorkingSource::sourced).collect();
        let resolved = resolve_listed(&records, edits, &self.rules);
        let mut candidate = MatchCandidate::default();
        for s in sources {
            extend_candidate(&mut candidate, s);
        }
        let source_keys: Vec<(String, String)> = sources
            .iter()
            .map(|s| (s.provider.clone(), s.source_key.clone()))
            .collect();
        let keys = index_keys(&source_keys, &resolved);
        let mut search = vec![resolved.title.clone()];
        search.extend(resolved.subtitle.clone());
        search.extend(resolved.authors.iter().cloned());
        search.extend(resolved.series.iter().map(|s| s.name.clone()));
        ItemWrite {
            item,
            candidate,
            keys,
            sort_title: fold_search(&resolved.title),
            search_text: fold_search(&search.join(" ")),
            status: resolved.status.map(|s| s.as_str().to_owned()),
            rating: resolved.rating,
        }
    }

    /// Re-resolves `items` from what the store holds now; items without sources go.
    pub(super) async fn reresolve(&self, user: UserId, items: &[ItemId]) -> CoreResult<()> {
        for slice in items.chunks(CHUNK_ROWS) {
            let mut write = LibraryWrite::new(self.clock.now());
            let (per_item, edits) = self.current_state(user, slice).await?;
            for item in slice {
                match per_item.get(&item.0) {
                    Some(sources) if !sources.is_empty() => {
                        let e = edits.get(&item.0).cloned().unwrap_or_default();
                        write
                            .items
                            .push(self.item_write(ItemRef::Existing(*item), sources, &e));
                    }
                    _ => write.delete_items.push(*item),
                }
            }
            self.store.write_library(user, &write).await?;
        }
        Ok(())
    }

    /// What `ids` are made of now: each item's sources (current versions) and its manual
    /// edits, by item id.
    async fn current_state(
        &self,
        user: UserId,
        ids: &[ItemId],
    ) -> CoreResult<(HashMap<i64, Vec<WorkingSource>>, HashMap<i64, ManualEdits>)> {
        let mut per_item: HashMap<i64, Vec<WorkingSource>> = HashMap::new();
        for s in self.store.sources_of_items(user, ids).await? {
            per_item
                .entry(s.item.0)
                .or_default()
                .push(WorkingSource::from_stored(s));
        }
        let edits = self
            .store
            .edits_of_items(user, ids)
            .await?
            .into_iter()
            .map(|(i, e)| (i.0, e))
            .collect();
        Ok((per_item, edits))
    }

    /// The library view of each of `ids` that exists, in the order given: `{"id", …}` and
    /// the item resolved from its sources' current records and its manual edits, under
    /// the rules in force now. Nothing resolved is stored; an item is resolved when it is
    /// read (a page, an item, an export chunk: one query for all their sources).
    async fn views(
        &self,
        user: UserId,
        ids: &[ItemId],
    ) -> CoreResult<Vec<(ItemId, serde_json::Value)>> {
        let (mut per_item, mut edits) = self.current_state(user, ids).await?;
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            // An item always has a source: the last one withdrawn takes the item with it.
            let Some(sources) = per_item.remove(&id.0) else {
                continue;
            };
            let e = edits.remove(&id.0).unwrap_or_default();
            out.push((*id, self.view(*id, &sources, &e)?));
        }
        Ok(out)
    }

    /// One item's library view, `{"id", …}`, resolved from these sources and edits.
    fn view(
        &self,
        id: ItemId,
        sources: &[WorkingSource],
        edits: &ManualEdits,
    ) -> CoreResult<serde_json::Value> {
        let records: Vec<SourcedRecord> = sources.iter().map(WorkingSource::sourced).collect();
        let resolved = resolve(&records, edits, &self.rules);
        let value = serde_json::to_value(&resolved)
            .map_err(|e| CoreError::InvalidInput(format!("cannot encode an item: {e}")))?;
        Ok(with_id(id, value))
    }

    pub async fn batches(&self, user: UserId) -> CoreResult<Vec<ImportBatch>> {
        Ok(self.store.list_batches(user).await?)
    }

    pub async fn batch(&self, user: UserId, batch: BatchId) -> CoreResult<ImportBatch> {
        self.store
            .batch(user, batch)
            .await?
            .ok_or(CoreError::NotFound("import"))
    }

    /// Withdraws everything `batch` contributed. Returns how many items it touched.
    pub async fn undo(&self, user: UserId, batch: BatchId) -> CoreResult<usize> {
        let items = match self.store.undo_batch(user, batch, self.clock.now()).await {
            Err(crate::error::StoreError::NotFound) => return Err(CoreError::NotFound("import")),
            Err(crate::error::StoreError::Conflict(_)) => {
                return Err(CoreError::Conflict("that import was already undone".into()));
            }
            other => other?,
        };
        self.reresolve(user, &items).await?;
        Ok(items.len())
    }

    pub async fn list_items(&self, user: UserId, filter: &ItemFilter) -> CoreResult<ItemPage> {
        let per_page = filter.per_page.unwrap_or(50).clamp(1, MAX_PAGE_SIZE);
        let page = filter.page.unwrap_or(1).max(1);
        let mut keys = Vec::new();
        if let Some(s) = &filter.shelf {
            keys.push(format!("shelf:{}", s.to_lowercase()));
        }
        if let Some(f) = &filter.format {
            keys.push(format!("format:{}", f.to_lowercase()));
        }
        if let Some(p) = &filter.source {
            keys.push(format!("prov:{}", p.to_lowercase()));
        }
        let query = ItemQuery {
            status: filter.status.clone(),
            rating: filter.rating,
            keys,
            search: filter.search.as_deref().map(fold_search),
            offset: (page - 1).saturating_mul(per_page),
            limit: per_page,
        };
        let total = self.store.count_items(user, &query).await?;
        let ids: Vec<ItemId> = self
            .store
            .list_items(user, &query)
            .await?
            .into_iter()
            .map(|i| i.id)
            .collect();
        let items = self
            .views(user, &ids)
            .await?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        Ok(ItemPage {
            items,
            total,
            page,
            per_page,
        })
    }

    /// Every item, in listing order (for `library --json`).
    pub async fn all_items(&self, user: UserId) -> CoreResult<Vec<serde_json::Value>> {
        let mut out = Vec::new();
        let mut page = 1;
        loop {
            let p = self
                .list_items(
                    user,
                    &ItemFilter {
                        page: Some(page),
                        per_page: Some(MAX_PAGE_SIZE),
                        ..ItemFilter::default()
                    },
                )
                .await?;
            let done = p.items.len() < usize::try_from(MAX_PAGE_SIZE).unwrap_or(usize::MAX);
            out.extend(p.items);
            if done {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// One item with its manual edits.
    pub async fn get_item(&self, user: UserId, item: ItemId) -> CoreResult<serde_json::Value> {
        let (mut per_item, mut edits) = self.current_state(user, &[item]).await?;
        let sources = per_item
            .remove(&item.0)
            .ok_or(CoreError::NotFound("item"))?;
        let edits = edits.remove(&item.0).unwrap_or_default();
        let mut value = self.view(item, &sources, &edits)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert(
                "edits".into(),
                serde_json::to_value(&edits).unwrap_or_default(),
            );
        }
        Ok(value)
    }

    /// Applies a manual edit; the edited fields win over every source from now on.
    pub async fn edit_item(
        &self,
        user: UserId,
        item: ItemId,
        patch: &ItemPatch,
    ) -> CoreResult<serde_json::Value> {
        let now = self.clock.now();
        if self.store.item(user, item).await?.is_none() {
            return Err(CoreError::NotFound("item"));
        }
        let mut edits = self
            .store
            .edits_of_items(user, &[item])
            .await?
            .into_iter()
            .next()
            .map(|(_, e)| e)
            .unwrap_or_default();
        apply_patch(&mut edits, patch, now)?;
        let sources: Vec<WorkingSource> = self
            .store
            .sources_of_items(user, &[item])
            .await?
            .into_iter()
            .map(WorkingSource::from_stored)
            .collect();
        let mut write = LibraryWrite::new(now);
        write
            .items
            .push(self.item_write(ItemRef::Existing(item), &sources, &edits));
        write.edits.push((ItemRef::Existing(item), edits));
        self.store.write_library(user, &write).await?;
        self.get_item(user, item).await
    }

    /// Moves every source of `from` into `into` and deletes `from`. `into`'s manual edits
    /// win; `from`'s fill the fields `into` never edited.
    pub async fn merge_items(
        &self,
        user: UserId,
        into: ItemId,
        from: ItemId,
    ) -> CoreResult<serde_json::Value> {
        if into == from {
            return Err(CoreError::InvalidInput(
                "an item cannot be merged with itself".into(),
            ));
        }
        for id in [into, from] {
            if self.store.item(user, id).await?.is_none() {
                return Err(CoreError::NotFound("item"));
            }
        }
        let now = self.clock.now();
        let stored = self.store.sources_of_items(user, &[into, from]).await?;
        let mut write = LibraryWrite::new(now);
        let mut sources = Vec::new();
        for s in stored {
            if s.item == from {
                write.moves.push((s.id, ItemRef::Existing(into)));
            }
            sources.push(WorkingSource::from_stored(s));
        }
        let all_edits: HashMap<i64, ManualEdits> = self
            .store
            .edits_of_items(user, &[into, from])
            .await?
            .into_iter()
            .map(|(i, e)| (i.0, e))
            .collect();
        let mut edits = all_edits.get(&into.0).cloned().unwrap_or_default();
        if let Some(other) = all_edits.get(&from.0) {
            fill_edits(&mut edits, other);
        }
        write
            .items
            .push(self.item_write(ItemRef::Existing(into), &sources, &edits));
        write.edits.push((ItemRef::Existing(into), edits));
        write.delete_items.push(from);
        self.store.write_library(user, &write).await?;
        self.get_item(user, into).await
    }

    /// Moves the given sources out of `item` into a new item, and records that the two
    /// are different works so re-imports keep them apart. Returns the new item's id.
    pub async fn split_item(
        &self,
        user: UserId,
        item: ItemId,
        source_ids: &[i64],
    ) -> CoreResult<ItemId> {
        if self.store.item(user, item).await?.is_none() {
            return Err(CoreError::NotFound("item"));
        }
        let stored = self.store.sources_of_items(user, &[item]).await?;
        let wanted: BTreeSet<i64> = source_ids.iter().copied().collect();
        if wanted.is_empty() || !wanted.iter().all(|id| stored.iter().any(|s| s.id == *id)) {
            return Err(CoreError::InvalidInput(
                "name one or more sources of this item to split off".into(),
            ));
        }
        if wanted.len() >= stored.len() {
            return Err(CoreError::InvalidInput(
                "at least one source must stay with the item".into(),
            ));
        }
        let (out, stay): (Vec<StoredSource>, Vec<StoredSource>) =
            stored.into_iter().partition(|s| wanted.contains(&s.id));
        let now = self.clock.now();
        let mut write = LibraryWrite::new(now);
        write.new_items = 1;
        for s in &out {
            write.moves.push((s.id, ItemRef::New(0)));
        }
        let edits = self
            .store
            .edits_of_items(user, &[item])
            .await?
            .into_iter()
            .next()
            .map(|(_, e)| e)
            .unwrap_or_default();
        let stay: Vec<WorkingSource> = stay.into_iter().map(WorkingSource::from_stored).collect();
        let out: Vec<WorkingSource> = out.into_iter().map(WorkingSource::from_stored).collect();
        write
            .items
            .push(self.item_write(ItemRef::Existing(item), &stay, &edits));
        write
            .items
            .push(self.item_write(ItemRef::New(0), &out, &ManualEdits::default()));
        write
            .never_merge
            .push((ItemRef::Existing(item), ItemRef::New(0)));
        let created = self.store.write_library(user, &write).await?;
        created
            .first()
            .copied()
            .ok_or_else(|| CoreError::InvalidInput("split created no item".into()))
    }

    /// The stored sources of an item (the ids [`Library::split_item`] takes), each with
    /// its provider, external id and title as that source gave it.
    pub async fn item_sources(&self, user: UserId, item: ItemId) -> CoreResult<Vec<ItemSource>> {
        Ok(self
            .store
            .sources_of_items(user, &[item])
            .await?
            .into_iter()
            .map(|s| ItemSource {
                id: s.id,
                provider: s.provider,
                external_id: s.record.external_id,
                title: s.record.title,
                origin_kind: s.origin_kind,
                origin_id: s.origin_id,
            })
            .collect())
    }

    /// Possible duplicates, open ones unless `all`.
    pub async fn duplicates(&self, user: UserId, all: bool) -> CoreResult<Vec<DuplicateView>> {
        let state = (!all).then_some(DuplicateState::Open);
        let mut out = Vec::new();
        for d in self.store.duplicates(user, state).await? {
            out.push(self.duplicate_view(user, d).await?);
        }
        Ok(out)
    }

    async fn duplicate_view(
        &self,
        user: UserId,
        d: PossibleDuplicate,
    ) -> CoreResult<DuplicateView> {
        let side = |id: ItemId, v: Option<serde_json::Value>| {
            let v = v.unwrap_or_default();
            DuplicateSide {
                id,
                title: v["title"].as_str().unwrap_or_default().to_owned(),
                authors: v["authors"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(ToOwned::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
            }
        };
        let mut views: HashMap<ItemId, serde_json::Value> =
            self.views(user, &[d.a, d.b]).await?.into_iter().collect();
        let a = views.remove(&d.a);
        let b = views.remove(&d.b);
        Ok(DuplicateView {
            id: d.id,
            state: d.state,
            reason: d.reason,
            a: side(d.a, a),
            b: side(d.b, b),
        })
    }

    /// Confirms a possible duplicate: the two items become one (the older id stays).
    pub async fn confirm_duplicate(&self, user: UserId, id: i64) -> CoreResult<serde_json::Value> {
        let d = self
            .store
            .duplicate(user, id)
            .await?
            .ok_or(CoreError::NotFound("possible duplicate"))?;
        let (into, from) = if d.a <= d.b { (d.a, d.b) } else { (d.b, d.a) };
        self.store
            .set_duplicate_state(user, id, DuplicateState::Confirmed, self.clock.now())
            .await?;
        self.merge_items(user, into, from).await
    }

    /// Dismisses a possible duplicate; re-imports do not raise the pair again.
    pub async fn dismiss_duplicate(&self, user: UserId, id: i64) -> CoreResult<()> {
        if self
            .store
            .set_duplicate_state(user, id, DuplicateState::Dismissed, self.clock.now())
            .await?
        {
            Ok(())
        } else {
            Err(CoreError::NotFound("possible duplicate"))
        }
    }

    /// Writes the whole library as bookbridge JSON: every item with its resolved fields
    /// (provenance included), its manual edits and every source record as received, plus
    /// the pairs the user split. [`Library::import_bookbridge_json`] reads it back.
    pub async fn export_json(&self, user: UserId, out: &mut (dyn Write + Send)) -> CoreResult<()> {
        let io = |e: std::io::Error| CoreError::InvalidInput(format!("cannot write: {e}"));
        let enc = |e: serde_json::Error| CoreError::InvalidInput(format!("cannot encode: {e}"));
        write!(
            out,
            "{{\"format\":\"{BOOKBRIDGE_JSON}\",\"version\":1,\"exported_at\":{},\"items\":[",
            serde_json::to_string(&self.clock.now()).map_err(enc)?
        )
        .map_err(io)?;
        let mut first = true;
        let mut after = None;
        loop {
            let ids = self
                .store
                .item_ids(user, after, u64::try_from(CHUNK_ROWS).unwrap_or(500))
                .await?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            after = Some(last);
            // One read of the chunk's sources and edits serves both the views and the records.
            let (mut per_item, mut edits) = self.current_state(user, &ids).await?;
            for id in ids {
                let Some(sources) = per_item.remove(&id.0) else {
                    continue;
                };
                let item_edits = edits.remove(&id.0).unwrap_or_default();
                let mut value = self.view(id, &sources, &item_edits)?;
                let records: Vec<ExportedRecord> = sources
                    .into_iter()
                    .map(|s| ExportedRecord {
                        provider: s.provider,
                        source_key: s.source_key,
                        origin_kind: s.origin_kind,
                        origin_id: s.origin_id,
                        seen_at: s.seen_at,
                        record: s.record,
                    })
                    .collect();
                if let Some(obj) = value.as_object_mut() {
                    obj.insert(
                        "edits".into(),
                        serde_json::to_value(item_edits).map_err(enc)?,
                    );
                    obj.insert(
                        "records".into(),
                        serde_json::to_value(records).map_err(enc)?,
                    );
                }
                if !first {
                    out.write_all(b",").map_err(io)?;
                }
                first = false;
                serde_json::to_writer(&mut *out, &value).map_err(enc)?;
            }
        }
        let pairs: Vec<(i64, i64)> = self
            .store
            .never_merge_pairs(user)
            .await?
            .into_iter()
            .map(|(a, b)| (a.0, b.0))
            .collect();
        write!(
            out,
            "],\"never_merge\":{}}}",
            serde_json::to_string(&pairs).map_err(enc)?
        )
        .map_err(io)?;
        Ok(())
    }

    /// Imports bookbridge's own JSON export: each exported item's records land together
    /// in one item (found again by source key on a re-import), with its manual edits and
    /// the pairs the user split.
    pub async fn import_bookbridge_json(
        &self,
        user: UserId,
        bytes: &[u8],
        label: Option<String>,
    ) -> CoreResult<ImportSummary> {
        let doc: ExportIn = serde_json::from_slice(bytes)
            .map_err(|e| CoreError::InvalidInput(format!("not a bookbridge export: {e}")))?;
        if doc.format != BOOKBRIDGE_JSON {
            return Err(CoreError::InvalidInput(format!(
                "not a bookbridge export (format \"{}\")",
                doc.format
            )));
        }
        let source = ImportSource {
            format: BOOKBRIDGE_JSON.into(),
            provider: "bookbridge".into(),
            label,
        };
        let mut rows = Vec::new();
        for (g, item) in doc.items.iter().enumerate() {
            for r in &item.records {
                rows.push(Ok(Incoming {
                    provider: r.provider.clone(),
                    source_key: r.source_key.clone(),
                    record: r.record.clone(),
                    seen_at: Some(r.seen_at),
                    group: Some(g),
                    keys: None,
                    parts: None,
                }));
            }
        }
        let (summary, groups) = self
            .run_import(user, &source, rows.into_iter(), &|_| {})
            .await?;

        // Edits and splits refer to exported items; map them to the items they became.
        let by_export_id: HashMap<i64, ItemId> = doc
            .items
            .iter()
            .enumerate()
            .filter_map(|(g, item)| groups.get(&g).map(|id| (item.id, *id)))
            .collect();
        let mut write = LibraryWrite::new(self.clock.now());
        let mut edited = Vec::new();
        for (g, item) in doc.items.iter().enumerate() {
            if item.edits == ManualEdits::default() {
                continue;
            }
            if let Some(id) = groups.get(&g) {
                write
                    .edits
                    .push((ItemRef::Existing(*id), item.edits.clone()));
                edited.push(*id);
            }
        }
        for (a, b) in &doc.never_merge {
            if let (Some(a), Some(b)) = (by_export_id.get(a), by_export_id.get(b)) {
                write
                    .never_merge
                    .push((ItemRef::Existing(*a), ItemRef::Existing(*b)));
            }
        }
        if !write.edits.is_empty() || !write.never_merge.is_empty() {
            self.store.write_library(user, &write).await?;
            self.reresolve(user, &edited).await?;
        }
        Ok(summary)
    }

    /// Writes the library as a Goodreads library export CSV (its column set), which
    /// Goodreads' importer reads. Cells that a spreadsheet would run as a formula are
    /// neutralised.
    pub async fn export_goodreads_csv(
        &self,
        user: UserId,
        out: &mut (dyn Write + Send),
    ) -> CoreResult<()> {
        let io = |e: std::io::Error| CoreError::InvalidInput(format!("cannot write: {e}"));
        out.write_all(GOODREADS_HEADER.as_bytes()).map_err(io)?;
        out.write_all(b"\r\n").map_err(io)?;
        let mut after = None;
        loop {
            let ids = self
                .store
                .item_ids(user, after, u64::try_from(CHUNK_ROWS).unwrap_or(500))
                .await?;
            let Some(last) = ids.last().copied() else {
                break;
            };
            after = Some(last);
            for (_, item) in self.views(user, &ids).await? {
                let row = goodreads_row(&item);
                let line: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
                out.write_all(line.join(",").as_bytes()).map_err(io)?;
                out.write_all(b"\r\n").map_err(io)?;
            }
        }
        Ok(())
    }
}

/// `{"id": …}` followed by the resolved fields, every one present ([`expand_stored`]).
fn with_id(id: ItemId, mut resolved: serde_json::Value) -> serde_json::Value {
    expand_stored(&mut resolved);
    let mut map = serde_json::Map::new();
    map.insert("id".into(), serde_json::Value::from(id.0));
    if let serde_json::Value::Object(fields) = resolved {
        for (k, v) in fields {
            map.insert(k, v);
        }
    }
    serde_json::Value::Object(map)
}

fn source_write(op: SourceOp, ws: &mut WorkingSource) -> CoreResult<SourceWrite> {
    Ok(SourceWrite {
        op,
        record: ws
            .record
            .encode()
            .map_err(|e| CoreError::InvalidInput(format!("cannot encode a record: {e}")))?,
        origin_kind: ws.origin_kind,
        origin_id: ws.origin_id,
        seen_at: ws.seen_at,
    })
}

/// Adds a source's match keys to an item's candidate.
fn extend_candidate(c: &mut MatchCandidate, ws: &WorkingSource) {
    match &ws.keys {
        Some(keys) => c.add_record(&ws.provider, &ws.record, keys),
        None => c.add_record(&ws.provider, &ws.record, &candidate_keys(&ws.record)),
    }
    c.sources
        .insert(SourceKey::new(ws.provider.clone(), ws.source_key.clone()));
}

fn apply_patch(edits: &mut ManualEdits, patch: &ItemPatch, at: DateTime<Utc>) -> CoreResult<()> {
    if let Some(t) = &patch.title {
        let t = t.trim();
        if t.is_empty() {
            return Err(CoreError::InvalidInput("a title cannot be empty".into()));
        }
        edits.title = Some(Edit {
            value: t.to_owned(),
            at,
        });
    }
    if let Some(s) = &patch.subtitle {
        edits.subtitle = Some(Edit {
            value: s.clone(),
            at,
        });
    }
    if let Some(a) = &patch.authors {
        edits.authors = Some(Edit {
            value: a.clone(),
            at,
        });
    }
    if let Some(s) = patch.status {
        edits.status = Some(Edit { value: s, at });
    }
    if let Some(r) = patch.rating {
        let value = match r {
            None => None,
            Some(stars) => Some(Rating::from_stars(stars).ok_or_else(|| {
                CoreError::InvalidInput("a rating is between 0.5 and 5 stars".into())
            })?),
        };
        edits.rating = Some(Edit { value, at });
    }
    if let Some(s) = &patch.shelves {
        edits.shelves = Some(Edit {
            value: s.clone(),
            at,
        });
    }
    if let Some(p) = patch.progress {
        let value = match p {
            None => None,
            Some(f) if (0.0..=1.0).contains(&f) => Some(Progress {
                fraction: f,
                position: None,
                at: Some(at),
            }),
            Some(_) => {
                return Err(CoreError::InvalidInput(
                    "progress is a fraction between 0 and 1".into(),
                ));
            }
        };
        edits.progress = Some(Edit { value, at });
    }
    for field in &patch.revert {
        match field.as_str() {
            "title" => edits.title = None,
            "subtitle" => edits.subtitle = None,
            "authors" => edits.authors = None,
            "status" => edits.status = None,
            "rating" => edits.rating = None,
            "shelves" => edits.shelves = None,
            "progress" => edits.progress = None,
            "cover" => edits.cover = None,
            other => {
                return Err(CoreError::InvalidInput(format!(
                    "\"{other}\" is not an editable field"
                )));
            }
        }
    }
    Ok(())
}

/// Fills fields `into` never edited from `other`.
fn fill_edits(into: &mut ManualEdits, other: &ManualEdits) {
    if into.title.is_none() {
        into.title.clone_from(&other.title);
    }
    if into.subtitle.is_none() {
        into.subtitle.clone_from(&other.subtitle);
    }
    if into.authors.is_none() {
        into.authors.clone_from(&other.authors);
    }
    if into.status.is_none() {
        into.status.clone_from(&other.status);
    }
    if into.rating.is_none() {
        into.rating.clone_from(&other.rating);
    }
    if into.shelves.is_none() {
        into.shelves.clone_from(&other.shelves);
    }
    if into.progress.is_none() {
        into.progress.clone_from(&other.progress);
    }
    if into.cover.is_none() {
        into.cover.clone_from(&other.cover);
    }
}

/// Goodreads' library export columns, in its order.
pub const GOODREADS_HEADER: &str = "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,\
ISBN13,My Rating,Average Rating,Publisher,Binding,Number of Pages,Year Published,\
Original Publication Year,Date Read,Date Added,Bookshelves,Bookshelves with positions,\
Exclusive Shelf,My Review,Spoiler,Private Notes,Read Count,Owned Copies";

/// A CSV cell: formula-like text gets a leading `'` (SECURITY G3), then RFC 4180 quoting.
pub fn csv_cell(value: &str) -> String {
    let safe = if value.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

/// `Last, First` for a display name.
fn last_first(name: &str) -> String {
    let name = name.trim();
    match name.rsplit_once(' ') {
        Some((first, last)) => format!("{last}, {first}"),
        None => name.to_owned(),
    }
}

fn goodreads_row(item: &serde_json::Value) -> Vec<String> {
    let s = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(ToOwned::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let first_id = |scheme: &str| {
        item["identifiers"][scheme]
            .as_array()
            .and_then(|a| a.first())
            .map(&s)
            .unwrap_or_default()
    };
    let authors = strings(&item["authors"]);
    let title = s(&item["title"]);
    let title = match item["subtitle"].as_str() {
        Some(sub) if !sub.is_empty() => format!("{title}: {sub}"),
        _ => title,
    };
    let rating = item["rating"]
        .as_f64()
        .map_or_else(|| "0".into(), |r| format!("{}", r.round()));
    let edition = item["editions"]
        .as_array()
        .and_then(|a| a.first())
        .cloned()
        .unwrap_or_default();
    let published = edition["published"]["year"]
        .as_i64()
        .map(|y| y.to_string())
        .unwrap_or_default();
    let reads = item["reads"].as_array().cloned().unwrap_or_default();
    let date_read = reads
        .iter()
        .filter_map(|r| r["finished"].as_str())
        .max()
        .map(|d| d.replace('-', "/"))
        .unwrap_or_default();
    let exclusive = match item["status"].as_str() {
        Some("read") => "read",
        Some("reading") => "currently-reading",
        Some("did-not-finish") => "did-not-finish",
        Some("paused") => "paused",
        _ => "to-read",
    };
    let shelves = strings(&item["shelves"]);
    let review = item["reviews"]
        .as_array()
        .and_then(|a| a.first())
        .map(|r| s(&r["text"]))
        .unwrap_or_default();
    let read_count = reads.iter().filter(|r| !r["finished"].is_null()).count();
    vec![
        first_id("goodreads"),
        title,
        authors.first().cloned().unwrap_or_default(),
        authors.first().map(|a| last_first(a)).unwrap_or_default(),
        authors
            .iter()
            .skip(1)
            .cloned()
            .collect::<Vec<_>>()
            .join(", "),
        first_id("isbn_10"),
        first_id("isbn_13"),
        rating,
        String::new(),
        s(&edition["publisher"]),
        s(&edition["binding"]),
        edition["pages"]
            .as_u64()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        published,
        String::new(),
        date_read,
        String::new(),
        shelves.join(", "),
        String::new(),
        exclusive.to_owned(),
        review,
        String::new(),
        String::new(),
        read_count.to_string(),
        "0".into(),
    ]
}
