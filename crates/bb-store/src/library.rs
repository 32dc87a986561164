//! The library store (`LibraryStore`), written once for both backends like `ports.rs`:
//! `impl_library_store!` stamps it onto a concrete store type inside its own module.
//!
//! Import speed comes from the caller handing over one [`LibraryWrite`] per chunk (one
//! transaction), statements that repeat with the same text (sqlx keeps them prepared per
//! connection), and multi-row inserts: new items get their ids reserved first (the only
//! part that differs per backend, passed to the macro), so they, their keys, sources and
//! source versions go in many rows to a statement. Lists of ids or keys are bound as
//! `$N` placeholders in slices of [`IN_SLICE`], below both backends' parameter limits.
//!
//! [`LibraryWrite`]: bb_core::ports::LibraryWrite

use bb_core::error::StoreError;
use bb_core::library::SourceRecord;
use bb_core::library::raw::ColumnsCache;
use bb_core::library::resolve::SourceKind;

/// Most values bound into one `IN (…)` list.
pub(crate) const IN_SLICE: usize = 900;

/// Rows per multi-row insert of items (six values each; other tables take a few times
/// as many narrower rows): far below both backends' parameter limits, and large enough that
/// statement overhead disappears.
pub(crate) const ROWS_PER_INSERT: usize = 100;

/// SQLite: take the write lock when the transaction starts, so ids reserved from `MAX(id)`
/// stay free until it commits.
pub(crate) const BEGIN_WRITE_SQLITE: &str = "BEGIN IMMEDIATE";
/// Postgres: the identity sequences hand out ids safely under concurrency.
pub(crate) const BEGIN_WRITE_POSTGRES: &str = "BEGIN";

/// How a backend hands out the ids of rows inserted many to a statement, so that rows
/// referring to them can go in without reading anything back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IdSource {
    /// One past the table's largest id (SQLite: safe as the write transaction holds the
    /// database's write lock from its start). One row comes back, however many ids.
    AfterMax,
    /// The table's identity sequence (Postgres).
    Sequence,
}

/// `(…), (…)` for `rows` rows of `cols` values each: `$1, $2, …` in order, or for SQLite
/// anonymous `?`s, as sqlx looks up every named SQLite parameter by a linear scan of the
/// statement's names, which makes a wide multi-row insert quadratic. Values are bound row
/// by row in column order either way.
pub(crate) fn values_list(anonymous: bool, rows: usize, cols: usize) -> String {
    let mut out = String::with_capacity(rows * cols * 6);
    for r in 0..rows {
        if r > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for c in 0..cols {
            if c > 0 {
                out.push_str(", ");
            }
            if anonymous {
                out.push('?');
            } else {
                out.push('$');
                out.push_str(&(r * cols + c + 1).to_string());
            }
        }
        out.push(')');
    }
    out
}

/// A statement written with `$1, $2, …` as SQLite should get it: every number turned into
/// an anonymous `?` (see [`values_list`] for why). The numbers must each appear once, in
/// order, which is also the order the values are bound in.
pub(crate) fn anonymous_sql(anonymous: bool, sql: String) -> String {
    if !anonymous {
        return sql;
    }
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    let mut expected = 1usize;
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut n = 0usize;
            while let Some(d) = chars.peek().and_then(|d| d.to_digit(10)) {
                n = n * 10 + d as usize;
                chars.next();
            }
            debug_assert_eq!(n, expected, "parameters out of order in {sql}");
            expected += 1;
            out.push('?');
        } else {
            out.push(c);
        }
    }
    out
}

/// `$from, $from+1, …` for `n` values.
pub(crate) fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A source with its current version (the newest).
pub(crate) const SOURCE_SELECT: &str = "SELECT s.id, s.item_id, s.provider, s.source_key, \
     v.origin_kind, v.origin_id, v.record, v.raw, c.columns AS raw_columns, v.seen_at \
     FROM item_sources s JOIN item_source_versions v ON v.id = \
     (SELECT MAX(v2.id) FROM item_source_versions v2 WHERE v2.source_id = s.id) \
     LEFT JOIN raw_columns c ON c.id = v.raw_columns";

// Lookups by a list of ids check the owner as `+user_id = $1`: the `+` keeps SQLite from
// answering them through an index that starts with `user_id` (walking every item the user
// has, once per chunk of an import) instead of by the ids, which it otherwise does without
// statistics. For Postgres the `+` changes nothing. `lookups_by_ids_use_the_ids` checks
// the plans.

/// The match keys of `n` items, by id (`$1` = user).
pub(crate) fn candidates_by_ids_sql(anonymous: bool, n: usize) -> String {
    anonymous_sql(
        anonymous,
        format!(
            "SELECT id, match_keys FROM library_items WHERE +user_id = $1 AND id IN ({})",
            placeholders(2, n)
        ),
    )
}

/// The match keys of the items holding any of `n` lookup keys (`$1`, `$2` = user).
pub(crate) fn candidates_by_keys_sql(anonymous: bool, n: usize) -> String {
    anonymous_sql(
        anonymous,
        format!(
            "SELECT i.id, i.match_keys FROM library_items i WHERE +i.user_id = $1 \
             AND i.id IN (SELECT k.item_id FROM library_item_keys k \
             WHERE k.user_id = $2 AND k.key IN ({}))",
            placeholders(3, n)
        ),
    )
}

/// The current sources of `n` items (`$1` = user).
pub(crate) fn sources_of_items_sql(anonymous: bool, n: usize) -> String {
    anonymous_sql(
        anonymous,
        format!(
            "{SOURCE_SELECT} WHERE +s.user_id = $1 AND s.item_id IN ({}) ORDER BY s.id",
            placeholders(2, n)
        ),
    )
}

pub(crate) fn json_err(e: &serde_json::Error) -> StoreError {
    StoreError::Backend(format!("stored JSON is unreadable: {e}"))
}

/// A stored record from its columns: the mapped fields, the raw record and, for a flat
/// row, its column names (rows read together share them through `cache`).
pub(crate) fn join_record(
    mapped: &str,
    raw: &str,
    columns: Option<&str>,
    cache: &mut ColumnsCache,
) -> Result<SourceRecord, StoreError> {
    SourceRecord::decode_with(mapped, raw, columns, cache).map_err(|e| json_err(&e))
}

pub(crate) fn kind_str(kind: SourceKind) -> &'static str {
    match kind {
        SourceKind::Batch => "batch",
        SourceKind::Connection => "connection",
    }
}

pub(crate) fn kind_parse(s: &str) -> SourceKind {
    if s == "connection" {
        SourceKind::Connection
    } else {
        SourceKind::Batch
    }
}

macro_rules! impl_library_store {
    (
        $store:ident,
        $db:ty,
        $begin_write:expr,
        $id_source:expr,
        $anonymous_params:expr,
        $writer_setup:expr
    ) => {
        mod library_store {
            use super::$store;
            use crate::backend_err;
            use crate::library::{
                IN_SLICE, IdSource, ROWS_PER_INSERT, SOURCE_SELECT, anonymous_sql,
                candidates_by_ids_sql, candidates_by_keys_sql, join_record, json_err, kind_parse,
                kind_str, placeholders, sources_of_items_sql, values_list,
            };
            use crate::time::{from_ms, to_ms};
            use bb_core::library::raw::ColumnsCache;
            use async_trait::async_trait;
            use bb_core::error::StoreError;
            use bb_core::ids::{BatchId, ItemId, UserId};
            use bb_core::library::matching::MatchCandidate;
            use bb_core::library::resolve::ManualEdits;
            use bb_core::ports::{
                BatchCounts, BatchState, CandidateItem, DuplicateState, ImportBatch, ItemQuery, RatingFilter,
                ItemRef, LibraryStore, LibraryWrite, LibraryWriter, PossibleDuplicate, SourceOp, SourceWrite,
                StoreResult, StoredItem, StoredSource,
            };
            use chrono::{DateTime, Utc};
            use sqlx::Row;
            use std::collections::{BTreeSet, HashMap};

            fn be(e: sqlx::Error) -> StoreError {
                backend_err(&e)
            }

            /// `n` fresh ids for `table`, ascending (see [`IdSource`]).
            async fn reserve_ids(
                conn: &mut <$db as sqlx::Database>::Connection,
                table: &'static str,
                n: usize,
            ) -> StoreResult<Vec<i64>> {
                let wanted = i64::try_from(n).map_err(|_| StoreError::Backend("too many rows".into()))?;
                let ids: Vec<i64> = match $id_source {
                    IdSource::AfterMax => {
                        let sql = format!("SELECT COALESCE(MAX(id), 0) FROM {table}");
                        let max: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                            .fetch_one(&mut *conn)
                            .await
                            .map_err(be)?;
                        (1..=wanted).map(|i| max + i).collect()
                    }
                    IdSource::Sequence => {
                        let sql = format!(
                            "SELECT nextval(pg_get_serial_sequence('{table}', 'id')) \
                             FROM generate_series(1, $1)"
                        );
                        let mut ids: Vec<i64> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                            .bind(wanted)
                            .fetch_all(&mut *conn)
                            .await
                            .map_err(be)?;
                        ids.sort_unstable();
                        ids
                    }
                };
                if ids.len() == n {
                    Ok(ids)
                } else {
                    Err(StoreError::Backend(format!("could not reserve {table} ids")))
                }
            }

            const BATCH_COLUMNS: &str = "id, user_id, format, provider, label, state, counts, \
                 errors, created_at, finished_at, undone_at";

            fn batch_from_row<R: Row>(r: &R) -> StoreResult<ImportBatch>
            where
                for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> Option<i64>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> Option<String>: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> &'a str: sqlx::ColumnIndex<R>,
            {
                let state: String = r.try_get("state").map_err(be)?;
                let counts: String = r.try_get("counts").map_err(be)?;
                let errors: String = r.try_get("errors").map_err(be)?;
                Ok(ImportBatch {
                    id: BatchId(r.try_get("id").map_err(be)?),
                    user_id: UserId(r.try_get("user_id").map_err(be)?),
                    format: r.try_get("format").map_err(be)?,
                    provider: r.try_get("provider").map_err(be)?,
                    label: r.try_get("label").map_err(be)?,
                    state: BatchState::parse(&state)
                        .ok_or_else(|| StoreError::Backend(format!("bad batch state {state}")))?,
                    counts: serde_json::from_str::<BatchCounts>(&counts)
                        .map_err(|e| json_err(&e))?,
                    errors: serde_json::from_str(&errors).map_err(|e| json_err(&e))?,
                    created_at: from_ms(r.try_get("created_at").map_err(be)?),
                    finished_at: r
                        .try_get::<Option<i64>, _>("finished_at")
                        .map_err(be)?
                        .map(from_ms),
                    undone_at: r
                        .try_get::<Option<i64>, _>("undone_at")
                        .map_err(be)?
                        .map(from_ms),
                })
            }

            fn source_from_row<R: Row>(r: &R, cache: &mut ColumnsCache) -> StoreResult<StoredSource>
            where
                for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> &'a str: sqlx::ColumnIndex<R>,
            {
                let record: String = r.try_get("record").map_err(be)?;
                let raw: String = r.try_get("raw").map_err(be)?;
                let columns: Option<String> = r.try_get("raw_columns").map_err(be)?;
                let kind: String = r.try_get("origin_kind").map_err(be)?;
                Ok(StoredSource {
                    id: r.try_get("id").map_err(be)?,
                    item: ItemId(r.try_get("item_id").map_err(be)?),
                    provider: r.try_get("provider").map_err(be)?,
                    source_key: r.try_get("source_key").map_err(be)?,
                    record: join_record(&record, &raw, columns.as_deref(), cache)?,
                    origin_kind: kind_parse(&kind),
                    origin_id: r.try_get("origin_id").map_err(be)?,
                    seen_at: from_ms(r.try_get("seen_at").map_err(be)?),
                })
            }

            fn item_from_row<R: Row>(r: &R) -> StoreResult<StoredItem>
            where
                for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> &'a str: sqlx::ColumnIndex<R>,
            {
                Ok(StoredItem {
                    id: ItemId(r.try_get("id").map_err(be)?),
                    created_at: from_ms(r.try_get("created_at").map_err(be)?),
                    updated_at: from_ms(r.try_get("updated_at").map_err(be)?),
                })
            }


            fn candidate_from_row<R: Row>(r: &R) -> StoreResult<MatchCandidate>
            where
                for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> &'a str: sqlx::ColumnIndex<R>,
            {
                let keys: String = r.try_get("match_keys").map_err(be)?;
                MatchCandidate::from_stored(r.try_get("id").map_err(be)?, &keys)
                    .map_err(|e| json_err(&e))
            }

            /// Fills in the pairs the user split, for candidates found by id.
            async fn never_merge_into(
                store: &$store,
                user: UserId,
                mut found: HashMap<i64, MatchCandidate>,
            ) -> StoreResult<Vec<CandidateItem>> {
                let ids: Vec<i64> = found.keys().copied().collect();
                for slice in ids.chunks(IN_SLICE) {
                    // The list is bound twice rather than referred to twice, so SQLite's
                    // parameters can stay anonymous.
                    let sql = anonymous_sql($anonymous_params, format!(
                        "SELECT item_a, item_b FROM never_merge WHERE user_id = $1 \
                         AND (item_a IN ({}) OR item_b IN ({}))",
                        placeholders(2, slice.len()),
                        placeholders(2 + slice.len(), slice.len()),
                    ));
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0);
                    for id in slice.iter().chain(slice) {
                        q = q.bind(*id);
                    }
                    for r in q.fetch_all(&store.pool).await.map_err(be)? {
                        let a: i64 = r.try_get("item_a").map_err(be)?;
                        let b: i64 = r.try_get("item_b").map_err(be)?;
                        if let Some(c) = found.get_mut(&a) {
                            c.never_merge_with.insert(b);
                        }
                        if let Some(c) = found.get_mut(&b) {
                            c.never_merge_with.insert(a);
                        }
                    }
                }
                let mut out: Vec<CandidateItem> = found
                    .into_iter()
                    .map(|(id, candidate)| CandidateItem {
                        item: ItemId(id),
                        candidate,
                    })
                    .collect();
                out.sort_by_key(|c| c.item);
                Ok(out)
            }

            fn duplicate_from_row<R: Row>(r: &R) -> StoreResult<PossibleDuplicate>
            where
                for<'a> i64: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> String: sqlx::Decode<'a, R::Database> + sqlx::Type<R::Database>,
                for<'a> &'a str: sqlx::ColumnIndex<R>,
            {
                let reason: String = r.try_get("reason").map_err(be)?;
                let state: String = r.try_get("state").map_err(be)?;
                Ok(PossibleDuplicate {
                    id: r.try_get("id").map_err(be)?,
                    a: ItemId(r.try_get("item_a").map_err(be)?),
                    b: ItemId(r.try_get("item_b").map_err(be)?),
                    reason: serde_json::from_str(&reason).map_err(|e| json_err(&e))?,
                    state: DuplicateState::parse(&state).ok_or_else(|| {
                        StoreError::Backend(format!("bad duplicate state {state}"))
                    })?,
                    created_at: from_ms(r.try_get("created_at").map_err(be)?),
                })
            }

            /// A value bound into a listing's WHERE clause.
            enum FilterBind {
                Text(String),
                Int(i32),
            }

            /// The WHERE clause and its bindings (after `$1` = user) for a listing.
            fn item_filter(query: &ItemQuery) -> (String, Vec<FilterBind>) {
                let mut sql = String::from("i.user_id = $1");
                let mut binds: Vec<FilterBind> = Vec::new();
                if let Some(status) = &query.status {
                    binds.push(FilterBind::Text(status.clone()));
                    sql.push_str(&format!(" AND i.status = ${}", binds.len() + 1));
                }
                match query.rating {
                    None => {}
                    Some(RatingFilter::Unrated) => sql.push_str(" AND i.rating IS NULL"),
                    Some(RatingFilter::Rated) => sql.push_str(" AND i.rating IS NOT NULL"),
                    Some(RatingFilter::AtLeast(r)) => {
                        binds.push(FilterBind::Int(i32::from(r.0)));
                        sql.push_str(&format!(" AND i.rating >= ${}", binds.len() + 1));
                    }
                }
                for key in &query.keys {
                    binds.push(FilterBind::Text(key.clone()));
                    sql.push_str(&format!(
                        " AND EXISTS (SELECT 1 FROM library_item_keys k \
                         WHERE k.item_id = i.id AND k.key = ${})",
                        binds.len() + 1
                    ));
                }
                if let Some(search) = query.search.as_deref().filter(|s| !s.is_empty()) {
                    let escaped = search
                        .replace('\\', "\\\\")
                        .replace('%', "\\%")
                        .replace('_', "\\_");
                    binds.push(FilterBind::Text(format!("%{escaped}%")));
                    sql.push_str(&format!(
                        " AND i.search_text LIKE ${} ESCAPE '\\'",
                        binds.len() + 1
                    ));
                }
                (sql, binds)
            }

            fn ordered(a: i64, b: i64) -> (i64, i64) {
                if a <= b { (a, b) } else { (b, a) }
            }

            /// `write` inside the transaction open on `conn`, in a fixed order (items, sources,
            /// moves, edits, pairs, deletes); splitting it would only scatter that order.
            /// Returns the ids of the created items in order.
            #[allow(clippy::too_many_lines)]
            async fn write_in(
                conn: &mut <$db as sqlx::Database>::Connection,
                user: UserId,
                write: &LibraryWrite,
            ) -> StoreResult<Vec<ItemId>> {
                let now = to_ms(write.now);
            let item_writes: HashMap<ItemRef, usize> = write
                .items
                .iter()
                .enumerate()
                .map(|(i, w)| (w.item, i))
                .collect();

            // New items get ids reserved up front, then go in complete, many rows
            // to a statement.
            let mut created: Vec<ItemId> = Vec::with_capacity(write.new_items);
            if write.new_items > 0 {
                let ids = reserve_ids(&mut *conn, "library_items", write.new_items).await?;
                created = ids.into_iter().map(ItemId).collect();
                let mut news = Vec::with_capacity(write.new_items);
                for (n, id) in created.iter().enumerate() {
                    let w = item_writes
                        .get(&ItemRef::New(n))
                        .map(|i| &write.items[*i])
                        .ok_or(StoreError::Backend(format!("new item {n} has no data")))?;
                    news.push((id.0, w));
                }
                for slice in news.chunks(ROWS_PER_INSERT) {
                    let sql = format!(
                        "INSERT INTO library_items (id, user_id, match_keys, sort_title, \
                         search_text, status, rating, created_by, created_at, \
                         updated_at) VALUES {}",
                        values_list($anonymous_params, slice.len(), 10)
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                    for (id, w) in slice {
                        q = q
                            .bind(*id)
                            .bind(user.0)
                            .bind(w.candidate.to_stored().map_err(|e| json_err(&e))?)
                            .bind(w.sort_title.as_str())
                            .bind(w.search_text.as_str())
                            .bind(w.status.as_deref())
                            .bind(w.rating.map(|r| i32::from(r.0)))
                            .bind(write.created_by.map(|b| b.0))
                            .bind(now)
                            .bind(now);
                    }
                    q.execute(&mut *conn).await.map_err(be)?;
                }
            }
            let real = |r: ItemRef| -> StoreResult<i64> {
                match r {
                    ItemRef::Existing(id) => Ok(id.0),
                    ItemRef::New(n) => created
                        .get(n)
                        .map(|i| i.0)
                        .ok_or(StoreError::Backend(format!("no new item {n}"))),
                }
            };

            let mut all_keys: Vec<(i64, &str)> = Vec::new();
            for w in &write.items {
                let item = real(w.item)?;
                if let ItemRef::Existing(id) = w.item {
                    let keys = w.candidate.to_stored().map_err(|e| json_err(&e))?;
                    let done = sqlx::query(
                        "UPDATE library_items SET match_keys = $1, sort_title = $2, \
                         search_text = $3, status = $4, rating = $5, updated_at = $6 \
                         WHERE id = $7 AND user_id = $8",
                    )
                    .bind(keys)
                    .bind(&w.sort_title)
                    .bind(&w.search_text)
                    .bind(w.status.as_deref())
                    .bind(w.rating.map(|r| i32::from(r.0)))
                    .bind(now)
                    .bind(id.0)
                    .bind(user.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(be)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    sqlx::query("DELETE FROM library_item_keys WHERE item_id = $1")
                        .bind(id.0)
                        .execute(&mut *conn)
                        .await
                        .map_err(be)?;
                }
                let keys: BTreeSet<&str> = w.keys.iter().map(String::as_str).collect();
                all_keys.extend(keys.into_iter().map(|k| (item, k)));
            }
            for slice in all_keys.chunks(ROWS_PER_INSERT * 3) {
                let sql = format!(
                    "INSERT INTO library_item_keys (user_id, item_id, key) VALUES {}",
                    values_list($anonymous_params, slice.len(), 3)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (item, key) in slice {
                    q = q.bind(user.0).bind(*item).bind(*key);
                }
                q.execute(&mut *conn).await.map_err(be)?;
            }

            // Sources: new ones get ids reserved like items, and go in many to a
            // statement; their versions refer to those ids.
            let mut inserts: Vec<(i64, &str, &str)> = Vec::new();
            for s in &write.sources {
                if let SourceOp::Insert {
                    item,
                    provider,
                    source_key,
                } = &s.op
                {
                    inserts.push((real(*item)?, provider.as_str(), source_key.as_str()));
                }
            }
            let source_ids = if inserts.is_empty() {
                Vec::new()
            } else {
                reserve_ids(&mut *conn, "item_sources", inserts.len()).await?
            };
            let rows: Vec<(i64, &(i64, &str, &str))> =
                source_ids.iter().copied().zip(&inserts).collect();
            for slice in rows.chunks(ROWS_PER_INSERT * 2) {
                let sql = format!(
                    "INSERT INTO item_sources (id, user_id, item_id, provider, source_key) \
                     VALUES {}",
                    values_list($anonymous_params, slice.len(), 5)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (id, (item, provider, key)) in slice {
                    q = q.bind(*id).bind(user.0).bind(*item).bind(*provider).bind(*key);
                }
                q.execute(&mut *conn).await.map_err(be)?;
            }
            let mut new_source_ids = source_ids.into_iter();
            let mut versions: Vec<(i64, &SourceWrite)> =
                Vec::with_capacity(write.sources.len());
            for s in &write.sources {
                let source_id = match &s.op {
                    // In the order they were gathered above.
                    SourceOp::Insert { .. } => new_source_ids
                        .next()
                        .ok_or(StoreError::Backend("a new source has no id".into()))?,
                    SourceOp::Update { id } => {
                        let owned: Option<i64> = sqlx::query_scalar(
                            "SELECT id FROM item_sources WHERE id = $1 AND user_id = $2",
                        )
                        .bind(*id)
                        .bind(user.0)
                        .fetch_optional(&mut *conn)
                        .await
                        .map_err(be)?;
                        owned.ok_or(StoreError::NotFound)?
                    }
                };
                versions.push((source_id, s));
            }
            // A flat row's column names are kept once per user (most chunks have
            // one set of them, found or added here).
            let mut column_ids: HashMap<&str, i64> = HashMap::new();
            for (_, s) in &versions {
                let Some(columns) = s.record.columns.as_deref() else {
                    continue;
                };
                if column_ids.contains_key(columns) {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO raw_columns (user_id, columns) VALUES ($1, $2) \
                     ON CONFLICT (user_id, columns) DO NOTHING",
                )
                .bind(user.0)
                .bind(columns)
                .execute(&mut *conn)
                .await
                .map_err(be)?;
                let id: i64 = sqlx::query_scalar(
                    "SELECT id FROM raw_columns WHERE user_id = $1 AND columns = $2",
                )
                .bind(user.0)
                .bind(columns)
                .fetch_one(&mut *conn)
                .await
                .map_err(be)?;
                column_ids.insert(columns, id);
            }
            for slice in versions.chunks(ROWS_PER_INSERT) {
                let sql = format!(
                    "INSERT INTO item_source_versions (source_id, origin_kind, origin_id, \
                     record, raw, raw_columns, seen_at) VALUES {}",
                    values_list($anonymous_params, slice.len(), 7)
                );
                let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
                for (source_id, s) in slice {
                    q = q
                        .bind(*source_id)
                        .bind(kind_str(s.origin_kind))
                        .bind(s.origin_id)
                        .bind(s.record.mapped.as_str())
                        .bind(s.record.raw.as_str())
                        .bind(
                            s.record
                                .columns
                                .as_deref()
                                .and_then(|c| column_ids.get(c).copied()),
                        )
                        .bind(to_ms(s.seen_at));
                }
                q.execute(&mut *conn).await.map_err(be)?;
            }

            for (source, to) in &write.moves {
                sqlx::query("UPDATE item_sources SET item_id = $1 WHERE id = $2 AND user_id = $3")
                    .bind(real(*to)?)
                    .bind(*source)
                    .bind(user.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(be)?;
            }

            for (item, edits) in &write.edits {
                let edits = serde_json::to_string(edits).map_err(|e| json_err(&e))?;
                sqlx::query(
                    "INSERT INTO item_edits (item_id, user_id, edits, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (item_id) DO UPDATE SET \
                     edits = excluded.edits, updated_at = excluded.updated_at",
                )
                .bind(real(*item)?)
                .bind(user.0)
                .bind(edits)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(be)?;
            }

            for (a, b) in &write.never_merge {
                let (a, b) = ordered(real(*a)?, real(*b)?);
                if a == b {
                    continue;
                }
                sqlx::query(
                    "INSERT INTO never_merge (user_id, item_a, item_b) VALUES ($1, $2, $3) \
                     ON CONFLICT (item_a, item_b) DO NOTHING",
                )
                .bind(user.0)
                .bind(a)
                .bind(b)
                .execute(&mut *conn)
                .await
                .map_err(be)?;
            }

            for d in &write.duplicates {
                let (a, b) = ordered(real(d.a)?, real(d.b)?);
                if a == b {
                    continue;
                }
                let reason = serde_json::to_string(&d.reason).map_err(|e| json_err(&e))?;
                sqlx::query(
                    "INSERT INTO possible_duplicates (user_id, item_a, item_b, reason, \
                     state, created_at) VALUES ($1, $2, $3, $4, 'open', $5) \
                     ON CONFLICT (item_a, item_b) DO NOTHING",
                )
                .bind(user.0)
                .bind(a)
                .bind(b)
                .bind(reason)
                .bind(now)
                .execute(&mut *conn)
                .await
                .map_err(be)?;
            }

            for id in &write.delete_items {
                sqlx::query("DELETE FROM library_items WHERE id = $1 AND user_id = $2")
                    .bind(id.0)
                    .bind(user.0)
                    .execute(&mut *conn)
                    .await
                    .map_err(be)?;
            }

            if let Some((batch, counts)) = &write.batch_counts {
                let counts = serde_json::to_string(counts).map_err(|e| json_err(&e))?;
                sqlx::query(
                    "UPDATE import_batches SET counts = $1 WHERE id = $2 AND user_id = $3",
                )
                .bind(counts)
                .bind(batch.0)
                .bind(user.0)
                .execute(&mut *conn)
                .await
                .map_err(be)?;
            }

                Ok(created)
            }

            /// [`LibraryWriter`] on a pooled connection. Its transactions are begun and ended
            /// by statement, as an sqlx `Transaction` would borrow the connection.
            struct Writer {
                conn: sqlx::pool::PoolConnection<$db>,
                open: bool,
            }

            impl Drop for Writer {
                fn drop(&mut self) {
                    // Closing the connection rolls the transaction back; returned to the
                    // pool, it would hand the open transaction to its next user.
                    if self.open {
                        self.conn.close_on_drop();
                    }
                }
            }

            #[async_trait]
            impl LibraryWriter for Writer {
                async fn write(
                    &mut self,
                    user: UserId,
                    write: &LibraryWrite,
                ) -> StoreResult<Vec<ItemId>> {
                    if !self.open {
                        sqlx::query($begin_write).execute(&mut *self.conn).await.map_err(be)?;
                        self.open = true;
                    }
                    let written = write_in(&mut self.conn, user, write).await;
                    if written.is_err()
                        && sqlx::query("ROLLBACK").execute(&mut *self.conn).await.is_ok()
                    {
                        self.open = false;
                    }
                    written
                }

                async fn commit(&mut self) -> StoreResult<()> {
                    if self.open {
                        sqlx::query("COMMIT").execute(&mut *self.conn).await.map_err(be)?;
                        self.open = false;
                    }
                    Ok(())
                }

                fn is_open(&self) -> bool {
                    self.open
                }
            }

            #[async_trait]
            impl LibraryStore for $store {
                async fn create_batch(
                    &self,
                    user: UserId,
                    format: &str,
                    provider: &str,
                    label: Option<&str>,
                    now: DateTime<Utc>,
                ) -> StoreResult<ImportBatch> {
                    let counts = serde_json::to_string(&BatchCounts::default())
                        .map_err(|e| json_err(&e))?;
                    let sql = format!(
                        "INSERT INTO import_batches (user_id, format, provider, label, state, \
                         counts, errors, created_at) VALUES ($1, $2, $3, $4, 'running', $5, '[]', $6) \
                         RETURNING {BATCH_COLUMNS}"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(user.0)
                        .bind(format)
                        .bind(provider)
                        .bind(label)
                        .bind(counts)
                        .bind(to_ms(now))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(be)?;
                    batch_from_row(&row)
                }

                async fn finish_batch(
                    &self,
                    user: UserId,
                    batch: BatchId,
                    counts: &BatchCounts,
                    errors: &serde_json::Value,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    let counts = serde_json::to_string(counts).map_err(|e| json_err(&e))?;
                    let errors = serde_json::to_string(errors).map_err(|e| json_err(&e))?;
                    sqlx::query(
                        "UPDATE import_batches SET state = 'done', counts = $1, errors = $2, \
                         finished_at = $3 WHERE id = $4 AND user_id = $5",
                    )
                    .bind(counts)
                    .bind(errors)
                    .bind(to_ms(now))
                    .bind(batch.0)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn set_batch_state(
                    &self,
                    user: UserId,
                    batch: BatchId,
                    state: BatchState,
                    errors: Option<&serde_json::Value>,
                    now: DateTime<Utc>,
                ) -> StoreResult<bool> {
                    let errors = errors
                        .map(|e| serde_json::to_string(e).map_err(|e| json_err(&e)))
                        .transpose()?;
                    let finished = matches!(state, BatchState::Done | BatchState::Failed)
                        .then_some(to_ms(now));
                    let done = sqlx::query(
                        "UPDATE import_batches SET state = $1, errors = COALESCE($2, errors), \
                         finished_at = COALESCE($3, finished_at) WHERE id = $4 AND user_id = $5",
                    )
                    .bind(state.as_str())
                    .bind(errors)
                    .bind(finished)
                    .bind(batch.0)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn delete_batch(&self, user: UserId, batch: BatchId) -> StoreResult<bool> {
                    let done = sqlx::query("DELETE FROM import_batches WHERE id = $1 AND user_id = $2")
                        .bind(batch.0)
                        .bind(user.0)
                        .execute(&self.pool)
                        .await
                        .map_err(be)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn put_upload_chunk(
                    &self,
                    user: UserId,
                    batch: BatchId,
                    seq: u32,
                    data: &[u8],
                ) -> StoreResult<()> {
                    let done = sqlx::query(
                        "INSERT INTO import_uploads (batch_id, seq, data) SELECT id, $1, $2 \
                         FROM import_batches WHERE id = $3 AND user_id = $4",
                    )
                    .bind(i64::from(seq))
                    .bind(data)
                    .bind(batch.0)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    if done.rows_affected() == 0 {
                        return Err(StoreError::NotFound);
                    }
                    Ok(())
                }

                async fn upload_chunk(
                    &self,
                    user: UserId,
                    batch: BatchId,
                    seq: u32,
                ) -> StoreResult<Option<Vec<u8>>> {
                    sqlx::query_scalar(
                        "SELECT u.data FROM import_uploads u JOIN import_batches b \
                         ON b.id = u.batch_id WHERE u.batch_id = $1 AND u.seq = $2 \
                         AND b.user_id = $3",
                    )
                    .bind(batch.0)
                    .bind(i64::from(seq))
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)
                }

                async fn delete_upload(&self, user: UserId, batch: BatchId) -> StoreResult<()> {
                    sqlx::query(
                        "DELETE FROM import_uploads WHERE batch_id IN \
                         (SELECT id FROM import_batches WHERE id = $1 AND user_id = $2)",
                    )
                    .bind(batch.0)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn list_batches(&self, user: UserId) -> StoreResult<Vec<ImportBatch>> {
                    let sql = format!(
                        "SELECT {BATCH_COLUMNS} FROM import_batches WHERE user_id = $1 \
                         ORDER BY id DESC"
                    );
                    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(user.0)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(be)?;
                    rows.iter().map(|r| batch_from_row(r)).collect()
                }

                async fn batch(
                    &self,
                    user: UserId,
                    batch: BatchId,
                ) -> StoreResult<Option<ImportBatch>> {
                    let sql = format!(
                        "SELECT {BATCH_COLUMNS} FROM import_batches WHERE id = $1 AND user_id = $2"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(batch.0)
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(be)?;
                    row.map(|r| batch_from_row(&r)).transpose()
                }

                async fn candidates_by_keys(
                    &self,
                    user: UserId,
                    keys: &[String],
                ) -> StoreResult<Vec<CandidateItem>> {
                    let mut found: HashMap<i64, MatchCandidate> = HashMap::new();
                    let unique: Vec<&String> =
                        keys.iter().collect::<BTreeSet<_>>().into_iter().collect();
                    for slice in unique.chunks(IN_SLICE) {
                        let sql = candidates_by_keys_sql($anonymous_params, slice.len());
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0).bind(user.0);
                        for k in slice {
                            q = q.bind(k.as_str());
                        }
                        for r in q.fetch_all(&self.pool).await.map_err(be)? {
                            let id: i64 = r.try_get("id").map_err(be)?;
                            if found.contains_key(&id) {
                                continue;
                            }
                            found.insert(id, candidate_from_row(&r)?);
                        }
                    }
                    never_merge_into(self, user, found).await
                }

                async fn match_candidates(
                    &self,
                    user: UserId,
                    items: &[ItemId],
                ) -> StoreResult<Vec<CandidateItem>> {
                    let mut found: HashMap<i64, MatchCandidate> = HashMap::new();
                    for slice in items.chunks(IN_SLICE) {
                        let sql = candidates_by_ids_sql($anonymous_params, slice.len());
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0);
                        for i in slice {
                            q = q.bind(i.0);
                        }
                        for r in q.fetch_all(&self.pool).await.map_err(be)? {
                            let c = candidate_from_row(&r)?;
                            found.insert(c.item, c);
                        }
                    }
                    never_merge_into(self, user, found).await
                }

                async fn match_candidates_after(
                    &self,
                    user: UserId,
                    after: Option<ItemId>,
                    limit: u64,
                ) -> StoreResult<Vec<CandidateItem>> {
                    let rows = sqlx::query(
                        "SELECT id, match_keys FROM library_items WHERE user_id = $1 \
                         AND id > $2 ORDER BY id LIMIT $3",
                    )
                    .bind(user.0)
                    .bind(after.map_or(0, |a| a.0))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter()
                        .map(|r| {
                            candidate_from_row(r).map(|c| CandidateItem {
                                item: ItemId(c.item),
                                candidate: c,
                            })
                        })
                        .collect()
                }

                async fn sources_by_keys(
                    &self,
                    user: UserId,
                    keys: &[(String, String)],
                ) -> StoreResult<Vec<StoredSource>> {
                    let mut by_provider: HashMap<&str, BTreeSet<&str>> = HashMap::new();
                    for (p, k) in keys {
                        by_provider.entry(p.as_str()).or_default().insert(k.as_str());
                    }
                    let mut out = Vec::new();
                    let mut columns = ColumnsCache::default();
                    for (provider, keys) in by_provider {
                        let keys: Vec<&str> = keys.into_iter().collect();
                        for slice in keys.chunks(IN_SLICE) {
                            let sql = anonymous_sql($anonymous_params, format!(
                                "{SOURCE_SELECT} WHERE s.user_id = $1 AND s.provider = $2 \
                                 AND s.source_key IN ({}) ORDER BY s.id",
                                placeholders(3, slice.len())
                            ));
                            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
                                .bind(user.0)
                                .bind(provider);
                            for k in slice {
                                q = q.bind(*k);
                            }
                            for r in q.fetch_all(&self.pool).await.map_err(be)? {
                                out.push(source_from_row(&r, &mut columns)?);
                            }
                        }
                    }
                    Ok(out)
                }

                async fn sources_of_items(
                    &self,
                    user: UserId,
                    items: &[ItemId],
                ) -> StoreResult<Vec<StoredSource>> {
                    let mut out = Vec::new();
                    let mut columns = ColumnsCache::default();
                    for slice in items.chunks(IN_SLICE) {
                        let sql = sources_of_items_sql($anonymous_params, slice.len());
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0);
                        for i in slice {
                            q = q.bind(i.0);
                        }
                        for r in q.fetch_all(&self.pool).await.map_err(be)? {
                            out.push(source_from_row(&r, &mut columns)?);
                        }
                    }
                    Ok(out)
                }

                async fn source_ids_of_batch(
                    &self,
                    user: UserId,
                    batch: BatchId,
                ) -> StoreResult<Vec<i64>> {
                    sqlx::query_scalar(
                        "SELECT DISTINCT s.id FROM item_sources s JOIN item_source_versions v \
                         ON v.source_id = s.id WHERE s.user_id = $1 AND v.origin_kind = 'batch' \
                         AND v.origin_id = $2 ORDER BY s.id",
                    )
                    .bind(user.0)
                    .bind(batch.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)
                }

                async fn edits_of_items(
                    &self,
                    user: UserId,
                    items: &[ItemId],
                ) -> StoreResult<Vec<(ItemId, ManualEdits)>> {
                    let mut out = Vec::new();
                    for slice in items.chunks(IN_SLICE) {
                        let sql = format!(
                            "SELECT item_id, edits FROM item_edits WHERE user_id = $1 \
                             AND item_id IN ({})",
                            placeholders(2, slice.len())
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0);
                        for i in slice {
                            q = q.bind(i.0);
                        }
                        for r in q.fetch_all(&self.pool).await.map_err(be)? {
                            let id: i64 = r.try_get("item_id").map_err(be)?;
                            let edits: String = r.try_get("edits").map_err(be)?;
                            out.push((
                                ItemId(id),
                                serde_json::from_str(&edits).map_err(|e| json_err(&e))?,
                            ));
                        }
                    }
                    Ok(out)
                }

                async fn write_library(
                    &self,
                    user: UserId,
                    write: &LibraryWrite,
                ) -> StoreResult<Vec<ItemId>> {
                    let mut tx = self.pool.begin_with($begin_write).await.map_err(be)?;
                    let created = write_in(&mut tx, user, write).await?;
                    tx.commit().await.map_err(be)?;
                    Ok(created)
                }

                async fn library_writer(&self) -> StoreResult<Box<dyn LibraryWriter>> {
                    let mut conn = self.pool.acquire().await.map_err(be)?;
                    let setup: Option<&'static str> = $writer_setup;
                    if let Some(sql) = setup {
                        sqlx::query(sql).execute(&mut *conn).await.map_err(be)?;
                        // Set up for the writer alone, it is not handed to anyone else.
                        conn.close_on_drop();
                    }
                    Ok(Box::new(Writer { conn, open: false }))
                }

                async fn undo_batch(
                    &self,
                    user: UserId,
                    batch: BatchId,
                    now: DateTime<Utc>,
                ) -> StoreResult<Vec<ItemId>> {
                    let mut tx = self.pool.begin().await.map_err(be)?;
                    let state: Option<String> = sqlx::query_scalar(
                        "SELECT state FROM import_batches WHERE id = $1 AND user_id = $2",
                    )
                    .bind(batch.0)
                    .bind(user.0)
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(be)?;
                    match state.as_deref() {
                        None => return Err(StoreError::NotFound),
                        Some("undone") => return Err(StoreError::Conflict("batch already undone")),
                        Some(_) => {}
                    }
                    let items: Vec<i64> = sqlx::query_scalar(
                        "SELECT DISTINCT s.item_id FROM item_sources s JOIN item_source_versions v \
                         ON v.source_id = s.id WHERE s.user_id = $1 AND v.origin_kind = 'batch' \
                         AND v.origin_id = $2 ORDER BY s.item_id",
                    )
                    .bind(user.0)
                    .bind(batch.0)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(be)?;
                    let sources: Vec<i64> = sqlx::query_scalar(
                        "SELECT DISTINCT s.id FROM item_sources s JOIN item_source_versions v \
                         ON v.source_id = s.id WHERE s.user_id = $1 AND v.origin_kind = 'batch' \
                         AND v.origin_id = $2",
                    )
                    .bind(user.0)
                    .bind(batch.0)
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(be)?;
                    for slice in sources.chunks(IN_SLICE) {
                        let list = placeholders(2, slice.len());
                        let sql = format!(
                            "DELETE FROM item_source_versions WHERE origin_kind = 'batch' \
                             AND origin_id = $1 AND source_id IN ({list})"
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(batch.0);
                        for s in slice {
                            q = q.bind(*s);
                        }
                        q.execute(&mut *tx).await.map_err(be)?;
                        // A source with no version left was the batch's alone.
                        let sql = format!(
                            "DELETE FROM item_sources WHERE id IN ({list}) AND NOT EXISTS \
                             (SELECT 1 FROM item_source_versions v WHERE v.source_id = item_sources.id) \
                             AND user_id = $1"
                        );
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0);
                        for s in slice {
                            q = q.bind(*s);
                        }
                        q.execute(&mut *tx).await.map_err(be)?;
                    }
                    sqlx::query(
                        "UPDATE import_batches SET state = 'undone', undone_at = $1 \
                         WHERE id = $2 AND user_id = $3",
                    )
                    .bind(to_ms(now))
                    .bind(batch.0)
                    .bind(user.0)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                    tx.commit().await.map_err(be)?;
                    Ok(items.into_iter().map(ItemId).collect())
                }

                async fn list_items(
                    &self,
                    user: UserId,
                    query: &ItemQuery,
                ) -> StoreResult<Vec<StoredItem>> {
                    let (filter, binds) = item_filter(query);
                    let n = binds.len();
                    let sql = format!(
                        "SELECT i.id, i.created_at, i.updated_at FROM library_items i \
                         WHERE {filter} ORDER BY i.sort_title, i.id LIMIT ${} OFFSET ${}",
                        n + 2,
                        n + 3
                    );
                    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(user.0);
                    for b in binds {
                        q = match b {
                            FilterBind::Text(t) => q.bind(t),
                            FilterBind::Int(n) => q.bind(n),
                        };
                    }
                    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
                    let offset = i64::try_from(query.offset).unwrap_or(i64::MAX);
                    let rows = q
                        .bind(limit)
                        .bind(offset)
                        .fetch_all(&self.pool)
                        .await
                        .map_err(be)?;
                    rows.iter().map(|r| item_from_row(r)).collect()
                }

                async fn count_items(&self, user: UserId, query: &ItemQuery) -> StoreResult<u64> {
                    let (filter, binds) = item_filter(query);
                    let sql = format!("SELECT COUNT(*) FROM library_items i WHERE {filter}");
                    let mut q = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(user.0);
                    for b in binds {
                        q = match b {
                            FilterBind::Text(t) => q.bind(t),
                            FilterBind::Int(n) => q.bind(n),
                        };
                    }
                    let n = q.fetch_one(&self.pool).await.map_err(be)?;
                    Ok(u64::try_from(n).unwrap_or(0))
                }

                async fn item(&self, user: UserId, item: ItemId) -> StoreResult<Option<StoredItem>> {
                    let row = sqlx::query(
                        "SELECT i.id, i.created_at, i.updated_at FROM library_items i \
                         WHERE i.id = $1 AND i.user_id = $2",
                    )
                    .bind(item.0)
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)?;
                    row.map(|r| item_from_row(&r)).transpose()
                }

                async fn item_ids(
                    &self,
                    user: UserId,
                    after: Option<ItemId>,
                    limit: u64,
                ) -> StoreResult<Vec<ItemId>> {
                    let ids: Vec<i64> = sqlx::query_scalar(
                        "SELECT id FROM library_items WHERE user_id = $1 AND id > $2 \
                         ORDER BY id LIMIT $3",
                    )
                    .bind(user.0)
                    .bind(after.map_or(i64::MIN, |a| a.0))
                    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(ids.into_iter().map(ItemId).collect())
                }

                async fn never_merge_pairs(&self, user: UserId) -> StoreResult<Vec<(ItemId, ItemId)>> {
                    let rows = sqlx::query(
                        "SELECT item_a, item_b FROM never_merge WHERE user_id = $1 \
                         ORDER BY item_a, item_b",
                    )
                    .bind(user.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter()
                        .map(|r| {
                            Ok((
                                ItemId(r.try_get("item_a").map_err(be)?),
                                ItemId(r.try_get("item_b").map_err(be)?),
                            ))
                        })
                        .collect()
                }

                async fn duplicates(
                    &self,
                    user: UserId,
                    state: Option<DuplicateState>,
                ) -> StoreResult<Vec<PossibleDuplicate>> {
                    let rows = sqlx::query(
                        "SELECT id, item_a, item_b, reason, state, created_at \
                         FROM possible_duplicates WHERE user_id = $1 \
                         AND ($2 = '' OR state = $2) ORDER BY id",
                    )
                    .bind(user.0)
                    .bind(state.map_or("", DuplicateState::as_str))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter().map(|r| duplicate_from_row(r)).collect()
                }

                async fn duplicate(
                    &self,
                    user: UserId,
                    id: i64,
                ) -> StoreResult<Option<PossibleDuplicate>> {
                    let row = sqlx::query(
                        "SELECT id, item_a, item_b, reason, state, created_at \
                         FROM possible_duplicates WHERE user_id = $1 AND id = $2",
                    )
                    .bind(user.0)
                    .bind(id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)?;
                    row.map(|r| duplicate_from_row(&r)).transpose()
                }

                async fn set_duplicate_state(
                    &self,
                    user: UserId,
                    id: i64,
                    state: DuplicateState,
                    now: DateTime<Utc>,
                ) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE possible_duplicates SET state = $1, decided_at = $2 \
                         WHERE id = $3 AND user_id = $4",
                    )
                    .bind(state.as_str())
                    .bind(to_ms(now))
                    .bind(id)
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(done.rows_affected() > 0)
                }
            }
        }
    };
}

pub(crate) use impl_library_store;

#[cfg(test)]
mod tests {
    use super::{
        anonymous_sql, candidates_by_ids_sql, candidates_by_keys_sql, placeholders,
        sources_of_items_sql, values_list,
    };
    use sqlx::Row;

    /// SQLite's plan for `sql`, one line per step, with `n` + `users` values bound.
    async fn sqlite_plan(pool: &sqlx::SqlitePool, sql: &str, users: usize, n: usize) -> String {
        let explain = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(explain));
        for _ in 0..users {
            q = q.bind(1_i64);
        }
        for i in 0..n {
            q = q.bind(i64::try_from(i).unwrap());
        }
        let rows = q.fetch_all(pool).await.unwrap();
        rows.iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Every chunk of an import looks items and sources up by id. Answered through an index
    /// on `user_id` instead, each lookup walks the whole library, and an import's time
    /// grows with the square of its size.
    #[tokio::test]
    async fn lookups_by_ids_use_the_ids() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::testing::fresh_sqlite(dir.path()).await.unwrap();
        let pool = db.sqlite.unwrap().pool().clone();
        // As many as a chunk looks up: with a handful, SQLite prefers the ids anyway.
        let ids = 200;
        for (name, sql, users, by) in [
            (
                "candidates by ids",
                candidates_by_ids_sql(true, ids),
                1,
                "library_items USING INTEGER PRIMARY KEY",
            ),
            (
                "sources of items",
                sources_of_items_sql(true, ids),
                1,
                "USING INDEX item_sources_item (item_id=?)",
            ),
            (
                "candidates by keys",
                candidates_by_keys_sql(true, ids),
                2,
                "i USING INTEGER PRIMARY KEY",
            ),
        ] {
            let plan = sqlite_plan(&pool, &sql, users, ids).await;
            assert!(plan.contains(by), "{name}: {plan}");
            assert!(
                !plan.contains("(user_id=?)"),
                "{name} walks the user's rows: {plan}"
            );
        }
    }

    #[test]
    fn sqlite_statements_get_anonymous_parameters_in_bind_order() {
        let sql = format!(
            "SELECT 1 FROM t WHERE a = $1 AND b IN ({})",
            placeholders(2, 11)
        );
        assert_eq!(anonymous_sql(false, sql.clone()), sql);
        let anon = anonymous_sql(true, sql);
        assert_eq!(anon.matches('?').count(), 12);
        assert!(!anon.contains('$'), "{anon}");
        assert_eq!(
            values_list(true, 2, 2),
            anonymous_sql(true, values_list(false, 2, 2))
        );
    }
}
