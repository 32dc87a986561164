//! The library's storage port: import batches, item sources with their per-batch versions,
//! items with their match keys and lookup keys (an item is resolved from its sources when
//! read), manual edits, never-merge pairs and possible duplicates.
//!
//! The store keeps no merge logic: `library::service` decides, and hands the store one
//! [`LibraryWrite`] per chunk of an import, through a [`LibraryWriter`] that puts several
//! chunks in one transaction (other writes are one transaction each). Each item
//! stores its match keys (a `MatchCandidate`), from which an import builds its in-memory
//! match index once, and string keys for list filters (shelf, format, provider).

use crate::error::CoreError;
use crate::ids::{BatchId, ItemId, UserId};
use crate::library::SourceRecord;
use crate::library::matching::MatchCandidate;
use crate::library::record::{EncodedRecord, Rating};
use crate::library::resolve::{ManualEdits, SourceKind};
use crate::ports::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where an import batch is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchState {
    /// A large upload stored and waiting for its import job.
    Queued,
    Running,
    Done,
    Undone,
    /// The import job could not read the file at all (row errors do not fail a batch).
    Failed,
}

impl BatchState {
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Queued => "queued",
            BatchState::Running => "running",
            BatchState::Done => "done",
            BatchState::Undone => "undone",
            BatchState::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "queued" => Some(BatchState::Queued),
            "running" => Some(BatchState::Running),
            "done" => Some(BatchState::Done),
            "undone" => Some(BatchState::Undone),
            "failed" => Some(BatchState::Failed),
            _ => None,
        }
    }
}

/// The row counts of a finished import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchCounts {
    pub rows: u64,
    pub created: u64,
    pub merged: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: u64,
}

/// One import of one file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportBatch {
    pub id: BatchId,
    pub user_id: UserId,
    /// The format id (`goodreads-csv`, `bookbridge-json`, …).
    pub format: String,
    pub provider: String,
    /// The file name the user gave, when known (display only).
    pub label: Option<String>,
    pub state: BatchState,
    pub counts: BatchCounts,
    /// Row errors, capped by the use-case; `[{"row","message"}]`.
    pub errors: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub undone_at: Option<DateTime<Utc>>,
}

/// The current version of one source's record for one item.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSource {
    pub id: i64,
    pub item: ItemId,
    pub provider: String,
    /// The provider's external id, or a stable key derived from the record when the format
    /// has none.
    pub source_key: String,
    /// With `raw` filled in.
    pub record: SourceRecord,
    pub origin_kind: SourceKind,
    /// The batch (or connection) that supplied this version.
    pub origin_id: i64,
    pub seen_at: DateTime<Utc>,
}

/// An item as candidate lookup returns it.
#[derive(Debug, Clone, PartialEq)]
pub struct CandidateItem {
    pub item: ItemId,
    /// `item` and `never_merge_with` filled in by the store.
    pub candidate: MatchCandidate,
}

/// An item of this write: an existing one, or the n-th item this write creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ItemRef {
    Existing(ItemId),
    New(usize),
}

/// What to do to one source row.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceOp {
    /// A source key the user's library has not seen.
    Insert {
        item: ItemRef,
        provider: String,
        source_key: String,
    },
    /// A new version of an existing source (the previous one is kept for undo).
    Update { id: i64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct SourceWrite {
    pub op: SourceOp,
    /// The record, encoded once by the caller ([`SourceRecord::encode`]).
    pub record: EncodedRecord,
    pub origin_kind: SourceKind,
    pub origin_id: i64,
    pub seen_at: DateTime<Utc>,
}

/// What the store keeps of one item's resolution: its match keys and what listings
/// filter, search and sort on. The resolved item itself is not stored; it is resolved from
/// the item's sources when read.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemWrite {
    pub item: ItemRef,
    pub candidate: MatchCandidate,
    /// Lookup keys (see [`crate::library::service::index_keys`]).
    pub keys: Vec<String>,
    /// Lower-cased display title, for listing order.
    pub sort_title: String,
    /// Folded title, authors and series, for search.
    pub search_text: String,
    pub status: Option<String>,
    /// The shown rating, stored beside the resolution so listings can filter on it.
    pub rating: Option<Rating>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DuplicateWrite {
    pub a: ItemRef,
    pub b: ItemRef,
    pub reason: serde_json::Value,
}

/// An import's writes, on one connection held for the import. [`Self::write`] applies a
/// [`LibraryWrite`] inside the transaction open on it (beginning one if none is), so an
/// import can put several chunks in one transaction: a commit writes every page it
/// dirtied, and chunks committed together write the pages they share once. The
/// connection's page cache also stays warm from one chunk to the next, as no other
/// connection's commit invalidates it.
///
/// What is written is visible to other connections, and so to the store's reads, only
/// once committed. A writer dropped with a transaction open rolls it back (its connection
/// is closed, not reused), as does a failed write.
#[async_trait]
pub trait LibraryWriter: Send {
    /// Applies `write` in the open transaction; returns the ids of the created items.
    async fn write(&mut self, user: UserId, write: &LibraryWrite) -> StoreResult<Vec<ItemId>>;
    /// Commits the open transaction, if any.
    async fn commit(&mut self) -> StoreResult<()>;
    /// Whether a transaction is open (something written and not yet committed).
    fn is_open(&self) -> bool;
}

/// Everything one step of the library changes, applied in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct LibraryWrite {
    pub now: DateTime<Utc>,
    /// How many items to create; `ItemRef::New(0..new_items)` refer to them.
    pub new_items: usize,
    /// The batch that creates the new items, if any.
    pub created_by: Option<BatchId>,
    pub sources: Vec<SourceWrite>,
    /// Sources to move to another item (merge, split).
    pub moves: Vec<(i64, ItemRef)>,
    pub items: Vec<ItemWrite>,
    pub delete_items: Vec<ItemId>,
    pub duplicates: Vec<DuplicateWrite>,
    pub never_merge: Vec<(ItemRef, ItemRef)>,
    pub edits: Vec<(ItemRef, ManualEdits)>,
    /// An import's running counts, committed with the chunk they count: a resumed import
    /// skips exactly the rows already in, and progress reads them.
    pub batch_counts: Option<(BatchId, BatchCounts)>,
}

impl LibraryWrite {
    pub fn new(now: DateTime<Utc>) -> Self {
        Self {
            now,
            new_items: 0,
            created_by: None,
            sources: Vec::new(),
            moves: Vec::new(),
            items: Vec::new(),
            delete_items: Vec::new(),
            duplicates: Vec::new(),
            never_merge: Vec::new(),
            edits: Vec::new(),
            batch_counts: None,
        }
    }
}

/// Which items a listing keeps by their shown rating (the one the library displays, after
/// manual edits and conflicts are resolved; other sources' ratings do not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatingFilter {
    /// No rating shown.
    Unrated,
    /// Any rating shown.
    Rated,
    /// A rating of at least this many stars: 3 keeps 3, 3.5 and 5, not 2.5. Fractions are
    /// compared exactly (ratings are kept in hundredths of a star).
    AtLeast(Rating),
}

impl std::str::FromStr for RatingFilter {
    type Err = CoreError;

    /// `unrated`, `rated`, or a number of stars above 0 and at most 5 meaning "at least".
    fn from_str(s: &str) -> Result<Self, CoreError> {
        let s = s.trim();
        match s.to_ascii_lowercase().as_str() {
            "unrated" => Ok(Self::Unrated),
            "rated" => Ok(Self::Rated),
            n => n
                .parse::<f64>()
                .ok()
                .and_then(Rating::from_stars)
                .map(Self::AtLeast)
                .ok_or_else(|| {
                    CoreError::InvalidInput(format!(
                        "rating filter `{s}` is not `unrated`, `rated` or a number of stars \
                         above 0 and at most 5 (meaning at least that many)"
                    ))
                }),
        }
    }
}

/// Filters for listing a library; all optional, combined with AND.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemQuery {
    pub status: Option<String>,
    pub rating: Option<RatingFilter>,
    /// Each becomes an index key the item must carry (`shelf:…`, `format:…`, `prov:…`).
    pub keys: Vec<String>,
    /// Matched against the folded search text.
    pub search: Option<String>,
    pub offset: u64,
    pub limit: u64,
}

/// One item as listed (its fields are resolved from its sources when read).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredItem {
    pub id: ItemId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicateState {
    Open,
    Confirmed,
    Dismissed,
}

impl DuplicateState {
    pub fn as_str(self) -> &'static str {
        match self {
            DuplicateState::Open => "open",
            DuplicateState::Confirmed => "confirmed",
            DuplicateState::Dismissed => "dismissed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "open" => Some(DuplicateState::Open),
            "confirmed" => Some(DuplicateState::Confirmed),
            "dismissed" => Some(DuplicateState::Dismissed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PossibleDuplicate {
    pub id: i64,
    pub a: ItemId,
    pub b: ItemId,
    pub reason: serde_json::Value,
    pub state: DuplicateState,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait LibraryStore: Send + Sync {
    async fn create_batch(
        &self,
        user: UserId,
        format: &str,
        provider: &str,
        label: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<ImportBatch>;
    async fn finish_batch(
        &self,
        user: UserId,
        batch: BatchId,
        counts: &BatchCounts,
        errors: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Moves a batch to `state` (`finished_at` is set for `done` and `failed`), with its
    /// row errors when given. False when the user has no such batch.
    async fn set_batch_state(
        &self,
        user: UserId,
        batch: BatchId,
        state: BatchState,
        errors: Option<&serde_json::Value>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Deletes a batch that contributed nothing (an upload that never completed).
    async fn delete_batch(&self, user: UserId, batch: BatchId) -> StoreResult<bool>;
    /// One piece of a stored upload (`seq` from 0).
    async fn put_upload_chunk(
        &self,
        user: UserId,
        batch: BatchId,
        seq: u32,
        data: &[u8],
    ) -> StoreResult<()>;
    async fn upload_chunk(
        &self,
        user: UserId,
        batch: BatchId,
        seq: u32,
    ) -> StoreResult<Option<Vec<u8>>>;
    async fn delete_upload(&self, user: UserId, batch: BatchId) -> StoreResult<()>;
    /// Newest first.
    async fn list_batches(&self, user: UserId) -> StoreResult<Vec<ImportBatch>>;
    async fn batch(&self, user: UserId, batch: BatchId) -> StoreResult<Option<ImportBatch>>;

    /// Items carrying any of the stored string `keys` (`shelf:…`, `prov:…`).
    async fn candidates_by_keys(
        &self,
        user: UserId,
        keys: &[String],
    ) -> StoreResult<Vec<CandidateItem>>;
    /// The match keys of these items (with the pairs the user split).
    async fn match_candidates(
        &self,
        user: UserId,
        items: &[ItemId],
    ) -> StoreResult<Vec<CandidateItem>>;
    /// The match keys of every item of the user, in id order, `limit` at a time after
    /// `after` (without never-merge pairs): what an import's in-memory index is built from.
    async fn match_candidates_after(
        &self,
        user: UserId,
        after: Option<ItemId>,
        limit: u64,
    ) -> StoreResult<Vec<CandidateItem>>;
    /// Current versions of the sources with these `(provider, source_key)`s.
    async fn sources_by_keys(
        &self,
        user: UserId,
        keys: &[(String, String)],
    ) -> StoreResult<Vec<StoredSource>>;
    /// Current versions of every source of these items.
    async fn sources_of_items(
        &self,
        user: UserId,
        items: &[ItemId],
    ) -> StoreResult<Vec<StoredSource>>;
    async fn source_ids_of_batch(&self, user: UserId, batch: BatchId) -> StoreResult<Vec<i64>>;
    async fn edits_of_items(
        &self,
        user: UserId,
        items: &[ItemId],
    ) -> StoreResult<Vec<(ItemId, ManualEdits)>>;
    /// Applies `write` in one transaction; returns the ids of the created items in order.
    async fn write_library(&self, user: UserId, write: &LibraryWrite) -> StoreResult<Vec<ItemId>>;
    /// A writer for an import: its writes go one after another through one connection of
    /// its own, several to a transaction (see [`LibraryWriter`]).
    async fn library_writer(&self) -> StoreResult<Box<dyn LibraryWriter>>;

    /// Withdraws what `batch` supplied: its source versions go, each source falls back to
    /// its previous version or disappears. Returns the items whose sources changed. The
    /// caller re-resolves them (deleting those left without sources).
    async fn undo_batch(
        &self,
        user: UserId,
        batch: BatchId,
        now: DateTime<Utc>,
    ) -> StoreResult<Vec<ItemId>>;

    async fn list_items(&self, user: UserId, query: &ItemQuery) -> StoreResult<Vec<StoredItem>>;
    async fn count_items(&self, user: UserId, query: &ItemQuery) -> StoreResult<u64>;
    async fn item(&self, user: UserId, item: ItemId) -> StoreResult<Option<StoredItem>>;
    /// Every item of the user, in id order, `limit` at a time after `after`.
    async fn item_ids(
        &self,
        user: UserId,
        after: Option<ItemId>,
        limit: u64,
    ) -> StoreResult<Vec<ItemId>>;
    async fn never_merge_pairs(&self, user: UserId) -> StoreResult<Vec<(ItemId, ItemId)>>;

    async fn duplicates(
        &self,
        user: UserId,
        state: Option<DuplicateState>,
    ) -> StoreResult<Vec<PossibleDuplicate>>;
    async fn duplicate(&self, user: UserId, id: i64) -> StoreResult<Option<PossibleDuplicate>>;
    async fn set_duplicate_state(
        &self,
        user: UserId,
        id: i64,
        state: DuplicateState,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
}

#[cfg(test)]
mod tests {
    use super::{Rating, RatingFilter};

    #[test]
    fn rating_filters_parse_words_and_star_counts_and_name_bad_input() {
        assert_eq!(
            "unrated".parse::<RatingFilter>().ok(),
            Some(RatingFilter::Unrated)
        );
        assert_eq!(
            " Rated ".parse::<RatingFilter>().ok(),
            Some(RatingFilter::Rated)
        );
        assert_eq!(
            "3.5".parse::<RatingFilter>().ok(),
            Some(RatingFilter::AtLeast(Rating(350)))
        );
        for bad in ["0", "6", "-1", "lots", ""] {
            let err = bad.parse::<RatingFilter>().err().map(|e| e.to_string());
            assert!(
                err.as_deref()
                    .is_some_and(|e| e.contains(&format!("`{bad}`"))),
                "{bad}: {err:?}"
            );
        }
    }
}
