//! The library store contract, run on SQLite and on PostgreSQL, each on a fresh database.

// Helpers outside `#[test]` fns unwrap too; short names keep the store calls readable.
#![allow(
    clippy::unwrap_used,
    clippy::many_single_char_names,
    clippy::too_many_lines
)]

use bb_core::ids::{ItemId, UserId};
use bb_core::library::matching::MatchCandidate;
use bb_core::library::resolve::{Edit, ManualEdits, SourceKind};
use bb_core::library::{Rating, SourceRecord};
use bb_core::ports::{
    BatchCounts, BatchState, DuplicateState, DuplicateWrite, ItemQuery, ItemRef, ItemWrite,
    LibraryWrite, RatingFilter, SourceOp, SourceWrite, Store,
};
use bb_store::testing::on_both;
use chrono::{DateTime, TimeZone, Utc};
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$fake", t0())
        .await
        .unwrap()
        .id
}

fn record(id: &str, title: &str) -> SourceRecord {
    SourceRecord {
        external_id: Some(id.into()),
        title: title.into(),
        authors: vec!["Frank Herbert".into()],
        raw: serde_json::json!({"Book Id": id, "Title": title, "n": 0.1}).into(),
        ..SourceRecord::default()
    }
}

fn item_write(item: ItemRef, title: &str, keys: &[&str]) -> ItemWrite {
    ItemWrite {
        item,
        candidate: MatchCandidate {
            item: 0,
            ..MatchCandidate::default()
        },
        keys: keys.iter().map(|k| (*k).to_string()).collect(),
        sort_title: title.to_lowercase(),
        search_text: title.to_lowercase(),
        status: Some("read".into()),
        rating: None,
    }
}

fn insert(item: ItemRef, key: &str, mut rec: SourceRecord, batch: i64) -> SourceWrite {
    SourceWrite {
        op: SourceOp::Insert {
            item,
            provider: "goodreads".into(),
            source_key: key.into(),
        },
        record: rec.encode().unwrap(),
        origin_kind: SourceKind::Batch,
        origin_id: batch,
        seen_at: t0(),
    }
}

#[tokio::test]
async fn batches_items_sources_and_keys_round_trip() {
    on_both(
        "batches_items_sources_and_keys_round_trip",
        |db| async move {
            let s = db.store;
            let alice = user(&s, "alice").await;
            let bob = user(&s, "bob").await;
            let batch = s
                .create_batch(alice, "goodreads-csv", "goodreads", Some("gr.csv"), t0())
                .await
                .unwrap();
            assert_eq!(batch.state, BatchState::Running);

            let mut w = LibraryWrite::new(t0());
            w.new_items = 2;
            w.created_by = Some(batch.id);
            w.items.push(item_write(
                ItemRef::New(0),
                "Dune",
                &["block:dune", "id:isbn_13:9780441013593", "shelf:sci-fi"],
            ));
            w.items
                .push(item_write(ItemRef::New(1), "Dune Messiah", &["block:dune"]));
            w.sources.push(insert(
                ItemRef::New(0),
                "1",
                record("1", "Dune"),
                batch.id.0,
            ));
            w.sources.push(insert(
                ItemRef::New(1),
                "2",
                record("2", "Dune Messiah"),
                batch.id.0,
            ));
            w.duplicates.push(DuplicateWrite {
                a: ItemRef::New(1),
                b: ItemRef::New(0),
                reason: serde_json::json!({"score": 0.5}),
            });
            let ids = s.write_library(alice, &w).await.unwrap();
            assert_eq!(ids.len(), 2);

            let counts = BatchCounts {
                rows: 2,
                created: 2,
                ..BatchCounts::default()
            };
            s.finish_batch(alice, batch.id, &counts, &serde_json::json!([]), t0())
                .await
                .unwrap();
            let b = s.batch(alice, batch.id).await.unwrap().unwrap();
            assert_eq!((b.state, b.counts), (BatchState::Done, counts));
            assert!(
                s.batch(bob, batch.id).await.unwrap().is_none(),
                "batches are per user"
            );

            // Candidate lookup by key, never across users.
            let c = s
                .candidates_by_keys(alice, &["block:dune".into()])
                .await
                .unwrap();
            assert_eq!(c.len(), 2);
            assert_eq!(c[0].candidate.item, c[0].item.0);
            let c = s
                .candidates_by_keys(alice, &["id:isbn_13:9780441013593".into()])
                .await
                .unwrap();
            assert_eq!(c.iter().map(|c| c.item).collect::<Vec<_>>(), vec![ids[0]]);
            assert!(
                s.candidates_by_keys(bob, &["block:dune".into()])
                    .await
                    .unwrap()
                    .is_empty()
            );

            // An import's match index reads every item's keys in id order (new items get
            // ids in the order of the write), and the items it hits by id.
            let page = s.match_candidates_after(alice, None, 1).await.unwrap();
            assert_eq!(
                page.iter().map(|c| c.item).collect::<Vec<_>>(),
                vec![ids[0]]
            );
            let page = s
                .match_candidates_after(alice, Some(ids[0]), 10)
                .await
                .unwrap();
            assert_eq!(
                page.iter().map(|c| c.item).collect::<Vec<_>>(),
                vec![ids[1]]
            );
            assert!(
                s.match_candidates_after(bob, None, 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let by_id = s.match_candidates(alice, &[ids[1]]).await.unwrap();
            assert_eq!(by_id.len(), 1);
            assert_eq!(by_id[0].candidate.item, ids[1].0);
            assert!(s.match_candidates(bob, &ids).await.unwrap().is_empty());

            // Sources come back with their raw record, by key and by item.
            let by_key = s
                .sources_by_keys(alice, &[("goodreads".into(), "1".into())])
                .await
                .unwrap();
            assert_eq!(by_key.len(), 1);
            assert_eq!(by_key[0].record, record("1", "Dune"));
            assert_eq!(by_key[0].item, ids[0]);
            assert_eq!(s.sources_of_items(alice, &ids).await.unwrap().len(), 2);

            // Filters and search.
            let q = ItemQuery {
                keys: vec!["shelf:sci-fi".into()],
                limit: 10,
                ..ItemQuery::default()
            };
            assert_eq!(s.count_items(alice, &q).await.unwrap(), 1);
            let q = ItemQuery {
                search: Some("messiah".into()),
                status: Some("read".into()),
                limit: 10,
                ..ItemQuery::default()
            };
            let found = s.list_items(alice, &q).await.unwrap();
            assert_eq!(found.len(), 1);
            assert_eq!(found[0].id, ids[1], "Dune Messiah");
            let q = ItemQuery {
                search: Some("%".into()),
                limit: 10,
                ..ItemQuery::default()
            };
            assert_eq!(s.count_items(alice, &q).await.unwrap(), 0, "% is literal");

            let dups = s
                .duplicates(alice, Some(DuplicateState::Open))
                .await
                .unwrap();
            assert_eq!(dups.len(), 1);
            assert!(dups[0].a < dups[0].b, "pairs are stored ordered");
            assert!(
                s.set_duplicate_state(alice, dups[0].id, DuplicateState::Dismissed, t0())
                    .await
                    .unwrap()
            );
            // Raising the same pair again keeps it dismissed.
            let mut again = LibraryWrite::new(t0());
            again.duplicates.push(DuplicateWrite {
                a: ItemRef::Existing(ids[0]),
                b: ItemRef::Existing(ids[1]),
                reason: serde_json::json!({}),
            });
            s.write_library(alice, &again).await.unwrap();
            assert!(
                s.duplicates(alice, Some(DuplicateState::Open))
                    .await
                    .unwrap()
                    .is_empty()
            );

            // Deleting the user deletes the library.
            assert!(s.delete_user(alice).await.unwrap());
            assert!(s.list_batches(alice).await.unwrap().is_empty());
            assert!(s.sources_of_items(alice, &ids).await.unwrap().is_empty());
            assert!(s.item(alice, ids[0]).await.unwrap().is_none());
        },
    )
    .await;
}

#[tokio::test]
async fn undo_falls_back_to_the_previous_version() {
    on_both("undo_falls_back_to_the_previous_version", |db| async move {
        let s = db.store;
        let alice = user(&s, "alice").await;
        let b1 = s
            .create_batch(alice, "goodreads-csv", "goodreads", None, t0())
            .await
            .unwrap();
        let mut w = LibraryWrite::new(t0());
        w.new_items = 1;
        w.items
            .push(item_write(ItemRef::New(0), "Dune", &["block:dune"]));
        w.sources
            .push(insert(ItemRef::New(0), "1", record("1", "Dune"), b1.id.0));
        let item = s.write_library(alice, &w).await.unwrap()[0];
        let source = s.sources_of_items(alice, &[item]).await.unwrap()[0].id;

        let b2 = s
            .create_batch(alice, "goodreads-csv", "goodreads", None, t0())
            .await
            .unwrap();
        let mut w = LibraryWrite::new(t0());
        w.sources.push(SourceWrite {
            op: SourceOp::Update { id: source },
            record: record("1", "Dune (revised)").encode().unwrap(),
            origin_kind: SourceKind::Batch,
            origin_id: b2.id.0,
            seen_at: t0(),
        });
        w.edits.push((
            ItemRef::Existing(item),
            ManualEdits {
                title: Some(Edit {
                    value: "Mine".into(),
                    at: t0(),
                }),
                ..ManualEdits::default()
            },
        ));
        s.write_library(alice, &w).await.unwrap();
        let now = s.sources_of_items(alice, &[item]).await.unwrap();
        assert_eq!(now[0].record.title, "Dune (revised)");
        assert_eq!(now[0].origin_id, b2.id.0);
        assert_eq!(
            s.source_ids_of_batch(alice, b2.id).await.unwrap(),
            vec![source]
        );

        assert_eq!(s.undo_batch(alice, b2.id, t0()).await.unwrap(), vec![item]);
        let back = s.sources_of_items(alice, &[item]).await.unwrap();
        assert_eq!(back[0].record.title, "Dune", "previous version restored");
        assert!(s.undo_batch(alice, b2.id, t0()).await.is_err(), "only once");
        assert_eq!(
            s.batch(alice, b2.id).await.unwrap().unwrap().state,
            BatchState::Undone
        );

        s.undo_batch(alice, b1.id, t0()).await.unwrap();
        assert!(
            s.sources_of_items(alice, &[item]).await.unwrap().is_empty(),
            "a source only the batch supplied is gone"
        );
        let edits = s.edits_of_items(alice, &[item]).await.unwrap();
        assert_eq!(edits[0].0, ItemId(item.0));
        let mut w = LibraryWrite::new(t0());
        w.delete_items.push(item);
        s.write_library(alice, &w).await.unwrap();
        assert!(s.item(alice, item).await.unwrap().is_none());
    })
    .await;
}

async fn count_rated(s: &Arc<dyn Store>, user: UserId, rating: RatingFilter) -> u64 {
    let q = ItemQuery {
        rating: Some(rating),
        limit: 10,
        ..ItemQuery::default()
    };
    let n = s.count_items(user, &q).await.unwrap();
    assert_eq!(
        s.list_items(user, &q).await.unwrap().len(),
        usize::try_from(n).unwrap(),
        "list and count agree for {rating:?}"
    );
    n
}

#[tokio::test]
async fn items_filter_by_rating_exactly_in_hundredths() {
    on_both(
        "items_filter_by_rating_exactly_in_hundredths",
        |db| async move {
            let s = db.store;
            let alice = user(&s, "alice").await;
            let mut w = LibraryWrite::new(t0());
            w.new_items = 4;
            for (n, (title, rating)) in [
                ("Dune", Some(350)),
                ("Emma", Some(400)),
                ("Ubik", Some(375)),
                ("Kindred", None),
            ]
            .into_iter()
            .enumerate()
            {
                let mut item = item_write(ItemRef::New(n), title, &[]);
                item.rating = rating.map(Rating);
                w.items.push(item);
            }
            let ids = s.write_library(alice, &w).await.unwrap();

            assert_eq!(count_rated(&s, alice, RatingFilter::Unrated).await, 1);
            assert_eq!(count_rated(&s, alice, RatingFilter::Rated).await, 3);
            let at_least = |r: u16| count_rated(&s, alice, RatingFilter::AtLeast(Rating(r)));
            assert_eq!(at_least(300).await, 3);
            assert_eq!(at_least(350).await, 3, "3.5 stars is at least 3.5");
            assert_eq!(at_least(360).await, 2, "3.75 and 4, not 3.5");
            assert_eq!(at_least(400).await, 1);
            assert_eq!(at_least(500).await, 0);
            let bob = user(&s, "bob").await;
            assert_eq!(count_rated(&s, bob, RatingFilter::Rated).await, 0);

            // A rewrite of an existing item moves its rating (here: cleared).
            let mut w = LibraryWrite::new(t0());
            w.items
                .push(item_write(ItemRef::Existing(ids[1]), "Emma", &[]));
            s.write_library(alice, &w).await.unwrap();
            assert_eq!(at_least(400).await, 0);
            assert_eq!(count_rated(&s, alice, RatingFilter::Unrated).await, 2);
        },
    )
    .await;
}

/// The migrations up to (not including) `version`: a database as it was before it.
fn migrations_before(all: &sqlx::migrate::Migrator, version: i64) -> sqlx::migrate::Migrator {
    // The fields are public (hidden) so `migrate!()` can build one; there is no other way
    // to run a prefix of an embedded set.
    sqlx::migrate::Migrator {
        migrations: std::borrow::Cow::Owned(
            all.iter()
                .filter(|m| m.version < version)
                .cloned()
                .collect(),
        ),
        ..sqlx::migrate::Migrator::DEFAULT
    }
}

const OLD_ITEM: &str = "INSERT INTO library_items (id, user_id, resolved, match_keys, sort_title, \
     search_text, status, created_by, created_at, updated_at) VALUES \
     (1, $1, '{\"title\":\"Dune\",\"rating\":3.5}', '{}', 'dune', 'dune', NULL, NULL, 0, 0), \
     (2, $1, '{\"title\":\"Emma\",\"rating\":null}', '{}', 'emma', 'emma', NULL, NULL, 0, 0), \
     (3, $1, '{\"title\":\"Ubik\"}', '{}', 'ubik', 'ubik', NULL, NULL, 0, 0)";

async fn assert_backfilled(s: &Arc<dyn Store>, reader: UserId) {
    assert_eq!(count_rated(s, reader, RatingFilter::Unrated).await, 2);
    let q = ItemQuery {
        rating: Some(RatingFilter::AtLeast(Rating(350))),
        limit: 10,
        ..ItemQuery::default()
    };
    let found = s.list_items(reader, &q).await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, ItemId(1), "Dune");
    assert_eq!(
        count_rated(s, reader, RatingFilter::AtLeast(Rating(351))).await,
        0
    );
}

/// On a database of `$store` at `$url`: the migrations before the rating column, an item
/// resolved then, the rest of the migrations, and the item found by its rating. A macro:
/// the two stores' pools are different types.
macro_rules! check_rating_backfill {
    ($store:ty, $url:expr) => {{
        let old = <$store>::connect($url).await.unwrap();
        migrations_before(<$store>::migrator(), 6)
            .run(old.pool())
            .await
            .unwrap();
        let store: Arc<dyn Store> = Arc::new(old.clone());
        let reader = user(&store, "reader").await;
        sqlx::query(OLD_ITEM)
            .bind(reader.0)
            .execute(old.pool())
            .await
            .unwrap();
        old.migrate().await.unwrap();
        assert_backfilled(&store, reader).await;
    }};
}

#[tokio::test]
async fn the_rating_migration_fills_in_items_resolved_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("old.db").display());
    check_rating_backfill!(bb_store::SqliteStore, &url);

    let test = "the_rating_migration_fills_in_items_resolved_before_it";
    if let Some(base) = bb_store::testing::postgres_base_url(test) {
        let url = bb_store::testing::create_postgres_database(&base)
            .await
            .unwrap();
        check_rating_backfill!(bb_store::PgStore, &url);
    }
}

/// One scalar from whichever backend `db` is.
async fn scalar(db: &bb_store::testing::TestDb, sql: &'static str) -> i64 {
    match (&db.sqlite, &db.postgres) {
        (Some(s), _) => sqlx::query_scalar(sql).fetch_one(s.pool()).await.unwrap(),
        (_, Some(p)) => sqlx::query_scalar(sql).fetch_one(p.pool()).await.unwrap(),
        _ => unreachable!("a test database is one of the two"),
    }
}

#[tokio::test]
async fn a_flat_rows_columns_are_kept_once_per_user_and_read_back_whole() {
    on_both("flat_row_columns", |db| async move {
        let s = db.store.clone();
        let alice = user(&s, "alice").await;
        let bob = user(&s, "bob").await;
        let row = |id: &str, title: &str| SourceRecord {
            external_id: Some(id.into()),
            title: title.into(),
            raw: serde_json::json!({"Book Id": id, "Title": title, "My Review": ""}).into(),
            ..SourceRecord::default()
        };
        let write = |first: usize, titles: &[&str]| {
            let mut w = LibraryWrite::new(t0());
            w.new_items = titles.len();
            for (n, title) in titles.iter().enumerate() {
                let key = (first + n).to_string();
                w.items.push(item_write(ItemRef::New(n), title, &[]));
                w.sources
                    .push(insert(ItemRef::New(n), &key, row(&key, title), 1));
            }
            w
        };
        // Two writes (two chunks of an import) of rows with the same columns, and another
        // user's: one set of column names per user.
        let mut ids = s
            .write_library(alice, &write(1, &["Dune", "Emma"]))
            .await
            .unwrap();
        ids.extend(s.write_library(alice, &write(3, &["Ubik"])).await.unwrap());
        s.write_library(bob, &write(1, &["Dune"])).await.unwrap();
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM raw_columns").await, 2);
        assert_eq!(
            scalar(
                &db,
                "SELECT COUNT(*) FROM item_source_versions WHERE raw_columns IS NOT NULL \
                 AND raw NOT LIKE '%Title%'"
            )
            .await,
            4,
            "each version keeps only its values"
        );

        // Read back as received, header -> value, the empty cell included.
        let sources = s.sources_of_items(alice, &ids).await.unwrap();
        let records: Vec<&SourceRecord> = sources.iter().map(|x| &x.record).collect();
        assert_eq!(
            records,
            [&row("1", "Dune"), &row("2", "Emma"), &row("3", "Ubik")]
        );

        // Deleting an account takes its column names with its library.
        assert!(s.delete_user(bob).await.unwrap());
        assert_eq!(scalar(&db, "SELECT COUNT(*) FROM raw_columns").await, 1);
        assert_eq!(s.sources_of_items(alice, &ids).await.unwrap().len(), 3);
    })
    .await;
}

/// How many of the user's items carry `title` in their search text.
async fn titled(s: &Arc<dyn Store>, user: UserId, title: &str) -> u64 {
    let q = ItemQuery {
        search: Some(title.to_lowercase()),
        limit: 50,
        ..ItemQuery::default()
    };
    s.count_items(user, &q).await.unwrap()
}

/// A write creating one item titled `title` with one source.
fn one_item(title: &str, key: &str) -> LibraryWrite {
    let mut w = LibraryWrite::new(t0());
    w.new_items = 1;
    w.items.push(item_write(ItemRef::New(0), title, &[]));
    w.sources
        .push(insert(ItemRef::New(0), key, record(key, title), 1));
    w
}

#[tokio::test]
async fn a_writer_keeps_its_writes_to_itself_until_it_commits() {
    on_both("library_writer", |db| async move {
        let s = db.store;
        let alice = user(&s, "alice").await;
        let mut w = s.library_writer().await.unwrap();
        assert!(!w.is_open());

        // Two writes in one transaction: the second builds on the first's item, which
        // the store's own reads do not see yet.
        let dune = w.write(alice, &one_item("Dune", "1")).await.unwrap()[0];
        assert!(w.is_open());
        let mut more = LibraryWrite::new(t0());
        more.sources
            .push(insert(ItemRef::Existing(dune), "2", record("2", "Dune"), 1));
        more.items
            .push(item_write(ItemRef::Existing(dune), "Dune", &["shelf:sf"]));
        w.write(alice, &more).await.unwrap();
        assert!(s.item(alice, dune).await.unwrap().is_none());
        assert!(s.sources_of_items(alice, &[dune]).await.unwrap().is_empty());

        w.commit().await.unwrap();
        assert!(!w.is_open());
        assert!(s.item(alice, dune).await.unwrap().is_some());
        assert_eq!(s.sources_of_items(alice, &[dune]).await.unwrap().len(), 2);

        // A failed write takes the whole open transaction with it, and the writer goes on.
        w.write(alice, &one_item("Emma", "3")).await.unwrap();
        let mut bad = LibraryWrite::new(t0());
        bad.sources.push(insert(
            ItemRef::Existing(ItemId(dune.0 + 1000)),
            "4",
            record("4", "Nowhere"),
            1,
        ));
        assert!(w.write(alice, &bad).await.is_err(), "no such item");
        assert!(!w.is_open(), "rolled back");
        w.write(alice, &one_item("Ubik", "5")).await.unwrap();
        w.commit().await.unwrap();
        assert_eq!(titled(&s, alice, "Emma").await, 0);
        assert_eq!(titled(&s, alice, "Ubik").await, 1);

        // Dropped with a transaction open, it rolls back and holds no lock: the next
        // writes on the store go through, and none of them (whichever pooled connection
        // it runs on) commits what the writer left.
        w.write(alice, &one_item("Solaris", "6")).await.unwrap();
        drop(w);
        for n in 0..12 {
            let key = format!("k{n}");
            s.write_library(alice, &one_item("Kindred", &key))
                .await
                .unwrap();
        }
        assert_eq!(titled(&s, alice, "Solaris").await, 0);
        assert_eq!(titled(&s, alice, "Kindred").await, 12);
        assert_eq!(titled(&s, alice, "Dune").await, 1);
    })
    .await;
}
