//! The library use-case end to end on a real store (SQLite and PostgreSQL): real export
//! files through the parsers into `Library`, merging, conflicts, idempotent re-import,
//! undo, merge and split by hand, and export round trips.
//!
//! The parsers are a dev-dependency here only: the use-case takes rows, and these tests
//! feed it the rows a user's real file produces.

// Scenario tests name their fixtures tersely (u, e, a, b…); the scenario reads better so.
#![allow(clippy::many_single_char_names)]
// Helpers outside `#[test]` fns unwrap too.
#![allow(clippy::unwrap_used, clippy::too_many_lines, clippy::doc_markdown)]

use bb_core::clock::{Clock, ManualClock};
use bb_core::ids::{ItemId, UserId};
use bb_core::library::resolve::ResolveRules;
use bb_core::library::service::{
    ImportSource, ImportSummary, ItemFilter, ItemPatch, Library, RowFailure,
};
use bb_core::library::{IdScheme, Identifier, ReadingStatus, SourceRecord};
use bb_core::ports::Store;
use bb_importers::{ImportFormat, detect, parse_reader};
use bb_store::testing::{TestDb, fresh_sqlite, on_both};
use chrono::{Duration, TimeZone, Utc};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

const FIXTURES: &str = "../../../shared/fixtures/real";

struct Env {
    lib: Library,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
}

fn env(db: &TestDb) -> Env {
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
    ));
    let lib = Library::new(db.store.clone(), clock.clone(), ResolveRules::default());
    Env {
        lib,
        store: db.store.clone(),
        clock,
    }
}

impl Env {
    async fn user(&self, name: &str) -> UserId {
        self.store
            .create_user(name, "$argon2id$fake", self.clock.now())
            .await
            .unwrap()
            .id
    }

    /// Detects the format from content, parses and imports, as the CLI does.
    async fn import_bytes(&self, user: UserId, bytes: &[u8]) -> ImportSummary {
        self.clock.advance(Duration::minutes(1));
        let format = detect(bytes).expect("a known format");
        self.import_as(user, format, bytes).await
    }

    async fn import_as(&self, user: UserId, format: ImportFormat, bytes: &[u8]) -> ImportSummary {
        let rows = parse_reader(format, Box::new(std::io::Cursor::new(bytes.to_vec()))).unwrap();
        let rows = rows.map(|r| {
            r.map_err(|e| RowFailure {
                row: e.row,
                message: e.message,
            })
        });
        self.lib
            .import(
                user,
                &ImportSource {
                    format: format.as_str().into(),
                    provider: format.provider().into(),
                    label: None,
                },
                rows,
            )
            .await
            .unwrap()
    }

    async fn import_records(
        &self,
        user: UserId,
        provider: &str,
        records: Vec<SourceRecord>,
    ) -> ImportSummary {
        self.clock.advance(Duration::minutes(1));
        self.lib
            .import(
                user,
                &ImportSource {
                    format: format!("{provider}-test"),
                    provider: provider.into(),
                    label: None,
                },
                records.into_iter().map(Ok),
            )
            .await
            .unwrap()
    }

    async fn items(&self, user: UserId) -> Vec<Value> {
        self.lib.all_items(user).await.unwrap()
    }
}

/// Ids and batch ids differ between databases and runs; everything else must not.
fn redact(v: &Value) -> Value {
    match v {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let v = if matches!(k.as_str(), "id" | "origin_id" | "batch_id") {
                        Value::String("[id]".into())
                    } else {
                        redact(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(redact).collect()),
        other => other.clone(),
    }
}

fn titles(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_owned())
        .collect()
}

fn find<'a>(items: &'a [Value], title: &str) -> &'a Value {
    items
        .iter()
        .find(|i| i["title"] == title)
        .unwrap_or_else(|| panic!("no item {title} in {:?}", titles(items)))
}

fn fixture_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
    let mut out = Vec::new();
    for dir in [
        "goodreads",
        "storygraph",
        "librarything",
        "openlibrary",
        "calibre",
        "kindle-clippings",
    ] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_none_or(|e| e != "md"))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

#[tokio::test]
async fn every_real_file_imports_with_zero_failed_rows() {
    on_both(
        "every_real_file_imports_with_zero_failed_rows",
        |db| async move {
            let e = env(&db);
            for path in fixture_files() {
                let name = path.file_name().unwrap().to_string_lossy().to_string();
                let user = e.user(&name).await;
                let bytes = std::fs::read(&path).unwrap();
                let summary = e.import_bytes(user, &bytes).await;
                assert_eq!(summary.failed, 0, "{name}: {:?}", summary.errors);
                assert!(summary.rows > 0, "{name}");
                assert_eq!(
                    summary.created + summary.merged + summary.updated + summary.unchanged,
                    summary.rows,
                    "{name}"
                );
                let items = e.items(user).await;
                assert_eq!(
                    u64::try_from(items.len()).unwrap(),
                    summary.created,
                    "{name}"
                );
                let snapshot = serde_json::json!({ "items": redact(&Value::Array(items)) });
                insta::assert_json_snapshot!(format!("library_{name}"), snapshot);
            }
        },
    )
    .await;
}

const GOODREADS: &str = "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,Publisher,Binding,Number of Pages,Year Published,Original Publication Year,Date Read,Date Added,Bookshelves,Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,Private Notes,Read Count,Owned Copies
1,\"Dune (Dune, #1)\",Frank Herbert,\"Herbert, Frank\",,\"=\"\"0441013597\"\"\",\"=\"\"9780441013593\"\"\",5,4.25,Ace,Paperback,604,2005,1965,2021/03/14,2019/01/02,sci-fi,sci-fi (#1),read,,,,1,0
2,\"Dune Messiah (Dune, #2)\",Frank Herbert,\"Herbert, Frank\",,\"=\"\"\"\"\",\"=\"\"\"\"\",0,3.88,Ace,Paperback,336,2008,1969,,2019/01/02,,,to-read,,,,0,0
3,The Martian,Andy Weir,\"Weir, Andy\",,\"=\"\"\"\"\",\"=\"\"\"\"\",4,4.40,Crown,Hardcover,369,2014,2011,2015/06/01,2015/05/01,,,read,,,,1,0
";

const STORYGRAPH: &str = "Title,Authors,Contributors,ISBN/UID,Format,Read Status,Date Added,Last Date Read,Dates Read,Read Count,Moods,Pace,Character- or Plot-Driven?,Strong Character Development?,Loveable Characters?,Diverse Characters?,Flawed Characters?,Star Rating,Review,Content Warnings,Content Warning Description,Tags,Owned?
Dune,Frank Herbert,\"\",9780441013593,paperback,read,2020/05/01,2021/03/14,2021/03/01-2021/03/14,1,,,,,,,,4.5,\"\",,,\"\",No
Dune Messiah,Frank Herbert,\"\",,paperback,currently-reading,2022/02/01,\"\",\"\",0,,,,,,,,,\"\",,,\"\",No
The Martian Chronicles,Ray Bradbury,\"\",,paperback,to-read,2020/05/01,\"\",\"\",0,,,,,,,,,\"\",,,\"\",No
";

#[tokio::test]
async fn the_same_book_from_two_sources_becomes_one_item_and_sequels_stay_apart() {
    on_both("merge_examples", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        let gr = e.import_bytes(u, GOODREADS.as_bytes()).await;
        assert_eq!((gr.created, gr.failed), (3, 0), "{gr:?}");
        let sg = e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        assert_eq!(sg.failed, 0, "{sg:?}");
        assert_eq!(sg.merged, 2, "Dune and Dune Messiah join: {sg:?}");
        assert_eq!(sg.created, 1, "The Martian Chronicles is new: {sg:?}");

        let items = e.items(u).await;
        assert_eq!(items.len(), 4, "{:?}", titles(&items));
        let dune = find(&items, "Dune");
        let providers: Vec<&str> = dune["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["provider"].as_str().unwrap())
            .collect();
        assert_eq!(providers.len(), 2);
        assert!(providers.contains(&"goodreads") && providers.contains(&"storygraph"));
        // The title each source gave stays visible.
        assert!(
            dune["sources"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s["title"] == "Dune (Dune, #1)")
        );
        assert_eq!(
            find(&items, "Dune Messiah")["sources"]
                .as_array()
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            find(&items, "The Martian")["sources"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            find(&items, "The Martian Chronicles")["sources"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn conflicts_status_goes_forward_manual_edit_wins_losers_stay_visible() {
    on_both("conflicts", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        e.import_bytes(u, GOODREADS.as_bytes()).await;
        e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        let items = e.items(u).await;
        let messiah = find(&items, "Dune Messiah");
        assert_eq!(
            messiah["status"], "reading",
            "a 2022 currently-reading beats a 2019 to-read"
        );
        let dune = find(&items, "Dune");
        assert_eq!(dune["status"], "read");
        // Two ratings kept with attribution; one shown.
        assert_eq!(dune["ratings"].as_array().unwrap().len(), 2);
        assert!(dune["rating"].is_number());
        // The losing rating stays visible with its source.
        let alts = dune["provenance"]["rating"]["alternatives"]
            .as_array()
            .unwrap();
        assert_eq!(alts[0]["source"]["provider"], "storygraph", "{dune}");

        let id = ItemId(dune["id"].as_i64().unwrap());
        let patch: ItemPatch =
            serde_json::from_value(serde_json::json!({"title": "Dune (my copy)", "rating": 2.5}))
                .unwrap();
        let edited = e.lib.edit_item(u, id, &patch).await.unwrap();
        assert_eq!(edited["title"], "Dune (my copy)");
        assert_eq!(edited["rating"], 2.5);
        assert_eq!(edited["provenance"]["title"]["source"], "manual");

        // A newer export does not override the edit.
        let newer = GOODREADS.replace(",5,4.25,", ",4,4.25,");
        let again = e.import_bytes(u, newer.as_bytes()).await;
        assert_eq!((again.updated, again.unchanged), (1, 2), "{again:?}");
        let item = e.lib.get_item(u, id).await.unwrap();
        assert_eq!(item["title"], "Dune (my copy)");
        assert_eq!(item["rating"], 2.5);

        // Reverting the edit lets the sources decide again.
        let patch: ItemPatch =
            serde_json::from_value(serde_json::json!({"revert": ["title", "rating"]})).unwrap();
        let back = e.lib.edit_item(u, id, &patch).await.unwrap();
        assert_ne!(back["title"], "Dune (my copy)");
    })
    .await;
}

#[tokio::test]
async fn reimporting_the_same_file_changes_nothing_and_a_newer_export_updates() {
    on_both("idempotent_reimport", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
        let bytes =
            std::fs::read(root.join("goodreads/goodreads_library_export-2022.csv")).unwrap();
        let first = e.import_bytes(u, &bytes).await;
        let before = e.items(u).await;
        let second = e.import_bytes(u, &bytes).await;
        assert_eq!(second.unchanged, second.rows, "{second:?}");
        assert_eq!((second.created, second.merged, second.updated), (0, 0, 0));
        assert_eq!(first.rows, second.rows);
        let after = e.items(u).await;
        assert_eq!(redact(&Value::Array(before)), redact(&Value::Array(after)));

        // Kindle clippings have no ids: the derived source key makes them idempotent too.
        let clips =
            std::fs::read(root.join("kindle-clippings/my_clippings_languages_examples.txt"))
                .unwrap();
        let k1 = e.import_bytes(u, &clips).await;
        let k2 = e.import_bytes(u, &clips).await;
        assert_eq!(k2.unchanged, k1.rows - k1.failed, "{k2:?}");

        // Re-importing with one review changed updates exactly that row.
        let modified = root.join("goodreads/goodreads_library_export_one_line_modified_review.csv");
        let text = std::fs::read_to_string(modified).unwrap();
        let u2 = e.user("other").await;
        let first = e.import_bytes(u2, text.as_bytes()).await;
        let changed = text.replacen("Incredible story", "An incredible story", 1);
        assert_ne!(changed, text);
        let s = e.import_bytes(u2, changed.as_bytes()).await;
        assert_eq!((s.updated, s.unchanged), (1, first.rows - 1), "{s:?}");
    })
    .await;
}

#[tokio::test]
async fn undo_removes_exactly_what_the_batch_contributed() {
    on_both("undo", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        e.import_bytes(u, GOODREADS.as_bytes()).await;
        let before = e.items(u).await;
        let sg = e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        assert_eq!(e.items(u).await.len(), 4);
        assert_eq!(find(&e.items(u).await, "Dune Messiah")["status"], "reading");

        e.lib.undo(u, sg.batch_id).await.unwrap();
        let after = e.items(u).await;
        assert_eq!(
            titles(&after),
            titles(&before),
            "the item only StoryGraph created is gone"
        );
        let messiah = find(&after, "Dune Messiah");
        assert_eq!(
            messiah["status"], "to-read",
            "StoryGraph's status withdrawn"
        );
        assert_eq!(messiah["sources"].as_array().unwrap().len(), 1);
        assert_eq!(redact(&Value::Array(before)), redact(&Value::Array(after)));

        let batches = e.lib.batches(u).await.unwrap();
        assert_eq!(batches[0].state, bb_core::ports::BatchState::Undone);
        assert!(e.lib.undo(u, sg.batch_id).await.is_err());

        // An update undone falls back to the previous version.
        let newer = GOODREADS.replace(",5,4.25,", ",3,4.25,");
        let upd = e.import_bytes(u, newer.as_bytes()).await;
        assert_eq!(find(&e.items(u).await, "Dune")["rating"], 3.0);
        e.lib.undo(u, upd.batch_id).await.unwrap();
        assert_eq!(find(&e.items(u).await, "Dune")["rating"], 5.0);
    })
    .await;
}

#[tokio::test]
async fn merge_and_split_by_hand_survive_reimport() {
    on_both("merge_split", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        e.import_bytes(u, GOODREADS.as_bytes()).await;
        e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        let items = e.items(u).await;
        let dune = ItemId(find(&items, "Dune")["id"].as_i64().unwrap());

        // Split the StoryGraph record off Dune.
        let sources = e.store.sources_of_items(u, &[dune]).await.unwrap();
        let sg = sources.iter().find(|s| s.provider == "storygraph").unwrap();
        let new = e.lib.split_item(u, dune, &[sg.id]).await.unwrap();
        assert_eq!(e.items(u).await.len(), 5);

        // Merge The Martian and The Martian Chronicles by hand (the user knows better).
        let items = e.items(u).await;
        let martian = ItemId(find(&items, "The Martian")["id"].as_i64().unwrap());
        let chron = ItemId(
            find(&items, "The Martian Chronicles")["id"]
                .as_i64()
                .unwrap(),
        );
        e.lib.merge_items(u, martian, chron).await.unwrap();
        assert_eq!(e.items(u).await.len(), 4);

        // Re-importing both files keeps both decisions.
        let a = e.import_bytes(u, GOODREADS.as_bytes()).await;
        let b = e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        assert_eq!(a.unchanged + b.unchanged, a.rows + b.rows);
        let items = e.items(u).await;
        assert_eq!(items.len(), 4, "{:?}", titles(&items));
        let ids: Vec<i64> = items.iter().map(|i| i["id"].as_i64().unwrap()).collect();
        assert!(ids.contains(&dune.0) && ids.contains(&new.0));
        assert!(!ids.contains(&chron.0));

        // A new source with Dune's ISBN sees two items the user split: not merged silently.
        let mut rec = SourceRecord {
            external_id: Some("lt-1".into()),
            title: "Dune".into(),
            authors: vec!["Frank Herbert".into()],
            ..SourceRecord::default()
        };
        rec.identifiers = vec![Identifier::new(IdScheme::Isbn13, "9780441013593")];
        let s = e.import_records(u, "librarything", vec![rec]).await;
        assert_eq!(s.rows, 1);
        assert!(e.items(u).await.len() >= 4);
    })
    .await;
}

#[tokio::test]
async fn possible_duplicates_can_be_confirmed_or_dismissed() {
    on_both("duplicates", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        let rec = |id: &str, title: &str, author: &str| SourceRecord {
            external_id: Some(id.into()),
            title: title.into(),
            authors: vec![author.into()],
            ..SourceRecord::default()
        };
        e.import_records(
            u,
            "goodreads",
            vec![
                rec("1", "Mistborn", "Brandon Sanderson"),
                rec("2", "Beloved", "Toni Morrison"),
            ],
        )
        .await;
        let s = e
            .import_records(
                u,
                "storygraph",
                vec![
                    rec("a", "Mistborn: The Final Empire", "Brandon Sanderson"),
                    rec("b", "Beloved", "Someone Else"),
                ],
            )
            .await;
        assert_eq!(s.created, 2, "{s:?}");
        let dups = e.lib.duplicates(u, false).await.unwrap();
        assert_eq!(dups.len(), 1, "{dups:?}");
        assert_eq!(e.items(u).await.len(), 4);
        e.lib.confirm_duplicate(u, dups[0].id).await.unwrap();
        assert_eq!(e.items(u).await.len(), 3);
        assert!(e.lib.duplicates(u, false).await.unwrap().is_empty());

        // A dismissed pair is not raised again by a re-import.
        e.import_records(
            u,
            "hardcover",
            vec![rec("h", "Elantris", "Brandon Sanderson")],
        )
        .await;
        e.import_records(
            u,
            "openlibrary",
            vec![rec("o", "Elantris: Tenth Anniversary", "Brandon Sanderson")],
        )
        .await;
        let dups = e.lib.duplicates(u, false).await.unwrap();
        assert_eq!(dups.len(), 1);
        e.lib.dismiss_duplicate(u, dups[0].id).await.unwrap();
        e.import_records(
            u,
            "openlibrary",
            vec![rec("o", "Elantris: Tenth Anniversary", "Brandon Sanderson")],
        )
        .await;
        assert!(e.lib.duplicates(u, false).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn listing_filters_and_search() {
    on_both("listing", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        e.import_bytes(u, GOODREADS.as_bytes()).await;
        e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        let count = |f: ItemFilter| {
            let lib = e.lib.clone();
            async move { lib.list_items(u, &f).await.unwrap().total }
        };
        assert_eq!(count(ItemFilter::default()).await, 4);
        assert_eq!(
            count(ItemFilter {
                status: Some("read".into()),
                ..ItemFilter::default()
            })
            .await,
            2
        );
        assert_eq!(
            count(ItemFilter {
                shelf: Some("Sci-Fi".into()),
                ..ItemFilter::default()
            })
            .await,
            1
        );
        assert_eq!(
            count(ItemFilter {
                source: Some("storygraph".into()),
                ..ItemFilter::default()
            })
            .await,
            3
        );
        assert_eq!(
            count(ItemFilter {
                search: Some("herbert".into()),
                ..ItemFilter::default()
            })
            .await,
            2
        );
        // The shown rating: Dune's (4.5 or 5), The Martian's 4; the other two have none.
        let rated = |r: &str| ItemFilter {
            rating: Some(r.parse().unwrap()),
            ..ItemFilter::default()
        };
        assert_eq!(count(rated("unrated")).await, 2);
        assert_eq!(count(rated("4")).await, 2);
        assert_eq!(count(rated("4.5")).await, 1);
        assert_eq!(
            count(ItemFilter {
                source: Some("goodreads".into()),
                ..rated("rated")
            })
            .await,
            2
        );
        let page = e
            .lib
            .list_items(
                u,
                &ItemFilter {
                    per_page: Some(3),
                    page: Some(2),
                    ..ItemFilter::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(page.items.len(), 1);
    })
    .await;
}

#[tokio::test]
async fn json_export_reimports_into_the_same_library() {
    on_both("export_round_trip", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURES);
        for f in [
            "goodreads/goodreads_library_export-2022.csv",
            "storygraph/storygraph.csv",
            "kindle-clippings/my_clippings_languages_examples.txt",
        ] {
            e.import_bytes(u, &std::fs::read(root.join(f)).unwrap())
                .await;
        }
        e.import_bytes(u, GOODREADS.as_bytes()).await;
        e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        let items = e.items(u).await;
        let dune = ItemId(find(&items, "Dune")["id"].as_i64().unwrap());
        let patch: ItemPatch =
            serde_json::from_value(serde_json::json!({"status": "paused"})).unwrap();
        e.lib.edit_item(u, dune, &patch).await.unwrap();
        let sources = e.store.sources_of_items(u, &[dune]).await.unwrap();
        e.lib.split_item(u, dune, &[sources[1].id]).await.unwrap();

        let mut out = Vec::new();
        e.lib.export_json(u, &mut out).await.unwrap();
        assert!(bb_core::library::service::is_bookbridge_json(&out));
        let fresh = e.user("fresh").await;
        let s = e
            .lib
            .import_bookbridge_json(fresh, &out, None)
            .await
            .unwrap();
        assert_eq!(s.failed, 0);
        assert_eq!(
            redact(&Value::Array(e.items(u).await)),
            redact(&Value::Array(e.items(fresh).await))
        );
        assert_eq!(e.store.never_merge_pairs(fresh).await.unwrap().len(), 1);
        // And importing the export again changes nothing.
        let again = e
            .lib
            .import_bookbridge_json(fresh, &out, None)
            .await
            .unwrap();
        assert_eq!(again.unchanged, again.rows);
    })
    .await;
}

#[tokio::test]
async fn goodreads_csv_neutralises_formulas() {
    on_both("goodreads_csv", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        let rec = SourceRecord {
            external_id: Some("999".into()),
            title: "=HYPERLINK(\"http://evil\",\"x\")".into(),
            authors: vec!["@Someone".into()],
            shelves: vec!["+cmd".into()],
            status: Some(ReadingStatus::Read),
            identifiers: vec![Identifier::new(IdScheme::Isbn13, "9780441013593")],
            ..SourceRecord::default()
        };
        e.import_records(u, "goodreads", vec![rec]).await;
        e.import_bytes(u, GOODREADS.as_bytes()).await;
        let mut out = Vec::new();
        e.lib.export_goodreads_csv(u, &mut out).await.unwrap();
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let headers = reader.headers().unwrap().clone();
        assert_eq!(&headers[0], "Book Id");
        assert_eq!(&headers[18], "Exclusive Shelf");
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 4);
        for row in &rows {
            for cell in row {
                assert!(
                    !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                    "formula-like cell {cell:?}"
                );
            }
        }
        assert!(rows.iter().any(|r| r[1].starts_with("'=HYPERLINK")));
        assert!(rows.iter().any(|r| &r[6] == "9780441013593"));
    })
    .await;
}

mod round_trip {
    //! Export → import into a fresh user gives the same library, for generated records.
    use super::*;
    use bb_core::library::{Rating, ReadThrough};
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = (usize, SourceRecord)> {
        let titles = [
            "Dune",
            "Dune Messiah",
            "Beloved",
            "It",
            "The Martian",
            "Emma",
        ];
        let authors = ["Frank Herbert", "Toni Morrison", "Andy Weir", "Jane Austen"];
        (
            0usize..2,
            0usize..40,
            0..titles.len(),
            0..authors.len(),
            proptest::option::of(1u16..=10),
            proptest::option::of(0usize..3),
            proptest::collection::vec("[a-z]{1,6}", 0..3),
            proptest::option::of(2000i32..2025),
        )
            .prop_map(move |(provider, id, t, a, rating, status, shelves, year)| {
                let status = status.map(|s| {
                    [
                        ReadingStatus::ToRead,
                        ReadingStatus::Reading,
                        ReadingStatus::Read,
                    ][s]
                });
                (
                    provider,
                    SourceRecord {
                        external_id: Some(id.to_string()),
                        title: titles[t].into(),
                        authors: vec![authors[a].into()],
                        rating: rating.map(|r| Rating(r * 50)),
                        status,
                        shelves,
                        reads: year
                            .map(|y| ReadThrough {
                                started: None,
                                finished: Some(bb_core::library::PartialDate {
                                    year: y,
                                    month: Some(1),
                                    day: None,
                                }),
                            })
                            .into_iter()
                            .collect(),
                        raw: serde_json::json!({ "id": id, "t": titles[t] }).into(),
                        ..SourceRecord::default()
                    },
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
        #[test]
        fn export_then_import_gives_the_same_library(
            records in proptest::collection::vec(record(), 1..25)
        ) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async {
                let dir = tempfile::tempdir().unwrap();
                let db = fresh_sqlite(dir.path()).await.unwrap();
                let e = env(&db);
                let u = e.user("a").await;
                for (p, name) in ["goodreads", "storygraph"].iter().enumerate() {
                    let mine: Vec<SourceRecord> = records
                        .iter()
                        .filter(|(q, _)| *q == p)
                        .map(|(_, r)| r.clone())
                        .collect();
                    e.import_records(u, name, mine).await;
                }
                let mut out = Vec::new();
                e.lib.export_json(u, &mut out).await.unwrap();
                let v = e.user("b").await;
                e.lib.import_bookbridge_json(v, &out, None).await.unwrap();
                assert_eq!(
                    redact(&Value::Array(e.items(u).await)),
                    redact(&Value::Array(e.items(v).await))
                );
            });
        }
    }
}

/// An ISBN-13 with a valid check digit from a 9-digit body.
fn isbn13(n: u64) -> String {
    let body = format!("978{:09}", n % 1_000_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// A Goodreads export of `(book id, title, author, isbn13)` rows.
fn goodreads_csv(rows: &[(u64, String, String, String)]) -> Vec<u8> {
    use std::fmt::Write;
    let mut out = format!("{}\n", bb_core::library::service::GOODREADS_HEADER);
    for (id, title, author, isbn) in rows {
        writeln!(
            out,
            "{id},\"{title}\",{author},,,,\"=\"\"{isbn}\"\"\",0,0,,,,,,,,,,to-read,,,,0,0"
        )
        .unwrap();
    }
    out.into_bytes()
}

/// 1,200 distinct books: more than two chunks of an import.
fn many_books() -> Vec<(u64, String, String, String)> {
    books(1200)
}

/// `n` distinct books.
fn books(n: u64) -> Vec<(u64, String, String, String)> {
    (1..=n)
        .map(|i| {
            (
                i,
                format!("Book Number {i}"),
                format!("Writer {}", i % 7),
                isbn13(1000 + i),
            )
        })
        .collect()
}

#[tokio::test]
async fn rows_find_items_created_chunks_earlier_in_the_same_file() {
    on_both("cross_chunk_matching", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        let mut rows = many_books();
        // Another edition's row (another Goodreads id, same writer) sharing row 3's ISBN,
        // and a row with
        // row 5's title and author but no ISBN: both come after the chunk that created them.
        rows.push((
            9001,
            "A Catalogue Title".into(),
            "Writer 3".into(),
            isbn13(1003),
        ));
        rows.push((
            9002,
            "Book Number 5".into(),
            "Writer 5".into(),
            String::new(),
        ));
        // A sequel-shaped title by the same writer must stay apart.
        rows.push((
            9003,
            "Book Number 5 Returns".into(),
            "Writer 5".into(),
            String::new(),
        ));
        let s = e.import_bytes(u, &goodreads_csv(&rows)).await;
        assert_eq!(
            (s.rows, s.created, s.merged, s.failed),
            (1203, 1201, 2, 0),
            "{s:?}"
        );
        let items = e.items(u).await;
        assert_eq!(items.len(), 1201);
        let three = find(&items, "Book Number 3");
        assert_eq!(three["sources"].as_array().unwrap().len(), 2, "{three}");
        let five = find(&items, "Book Number 5");
        assert_eq!(five["sources"].as_array().unwrap().len(), 2, "{five}");

        // A second file finds them too (the index is read from the store this time).
        let again = e
            .import_bytes(
                u,
                &goodreads_csv(&[(
                    9100,
                    "Yet Another Catalogue Title".into(),
                    "Writer 1".into(),
                    isbn13(2100),
                )]),
            )
            .await;
        assert_eq!((again.created, again.merged), (0, 1), "{again:?}");
    })
    .await;
}

/// A chunk is written while the next one is matched, and chunks share a transaction that
/// the store's reads do not see until it commits; rows that need what a chunk wrote must
/// see it exactly as if it had been committed first. Each case is a library of its own:
/// one full chunk, then the rows that depend on it, either right after it (its write still
/// in flight) or after a chunk of unrelated rows (its write done, not committed).
#[tokio::test]
async fn rows_that_need_what_earlier_chunks_wrote_see_it() {
    on_both("adjacent_chunks", |db| async move {
        type Row = (u64, String, String, String);
        let e = env(&db);
        let chunk = bb_core::library::service::CHUNK_ROWS as u64;
        assert!(
            3 * chunk < bb_core::library::service::COMMIT_ROWS,
            "the gap cases need their chunks in one transaction"
        );
        for gap in [false, true] {
            // Rows created between the chunk and the rows that depend on it.
            let extra = if gap { chunk } else { 0 };
            let gap_rows: Vec<Row> = (1..=extra)
                .map(|i| {
                    (
                        20_000 + i,
                        format!("Gap Title {i}"),
                        format!("Gap Writer {}", i % 5),
                        isbn13(40_000 + i),
                    )
                })
                .collect();
            let book = |i: u64| -> Row {
                (
                    i,
                    format!("Book Number {i}"),
                    format!("Writer {}", i % 7),
                    isbn13(1000 + i),
                )
            };
            let pre_existing: Row = (7000, "Pre Existing".into(), "Writer 9".into(), isbn13(5000));
            // Imports, for a new user, `pre_existing` first when `pre`, then one chunk of books
            // (row 100 another edition of `pre_existing` when `pre`) followed by `next`. Returns
            // the summary and the sorted Goodreads ids of the item holding each id in `probe`.
            let case = |name: &'static str, pre: bool, next: Vec<Row>, probe: Vec<u64>| {
                let e = &e;
                let pre_existing = pre_existing.clone();
                let gap_rows = gap_rows.clone();
                let name = format!("{name}{}", if gap { "_gap" } else { "" });
                async move {
                    let u = e.user(&name).await;
                    if pre {
                        e.import_bytes(u, &goodreads_csv(std::slice::from_ref(&pre_existing)))
                            .await;
                    }
                    let mut rows: Vec<Row> = (1..=chunk).map(book).collect();
                    if pre {
                        rows[99] = (
                            100,
                            pre_existing.1.clone(),
                            pre_existing.2.clone(),
                            pre_existing.3,
                        );
                    }
                    rows.extend(gap_rows);
                    rows.extend(next);
                    let s = e.import_bytes(u, &goodreads_csv(&rows)).await;
                    let items = e.items(u).await;
                    let ids_of = |item: &Value| -> Vec<String> {
                        let mut ids: Vec<String> = item["sources"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|s| s["external_id"].as_str().unwrap().to_owned())
                            .collect();
                        ids.sort();
                        ids
                    };
                    let holders: Vec<Vec<String>> = probe
                        .iter()
                        .map(|id| {
                            let id = id.to_string();
                            items
                                .iter()
                                .map(ids_of)
                                .find(|ids| ids.contains(&id))
                                .unwrap_or_else(|| panic!("{name}: no item holds {id}"))
                        })
                        .collect();
                    (s, items.len(), holders)
                }
            };
            let last = chunk;

            // An edition sharing the last row's ISBN: found by the item the write creates.
            let (s, n, holders) = case(
                "isbn",
                false,
                vec![(
                    9001,
                    "Another Edition".into(),
                    format!("Writer {}", last % 7),
                    isbn13(1000 + last),
                )],
                vec![9001],
            )
            .await;
            assert_eq!(
                (s.created, s.merged, s.failed),
                (chunk + extra, 1, 0),
                "{s:?}"
            );
            assert_eq!(n, usize::try_from(chunk + extra).unwrap());
            assert_eq!(holders, [[last.to_string(), "9001".into()]]);

            // The title and author of the last row, without an ISBN.
            let (s, _, holders) = case(
                "title",
                false,
                vec![(
                    9002,
                    format!("Book Number {last}"),
                    format!("Writer {}", last % 7),
                    String::new(),
                )],
                vec![9002],
            )
            .await;
            assert_eq!((s.created, s.merged), (chunk + extra, 1), "{s:?}");
            assert_eq!(holders, [[last.to_string(), "9002".into()]]);

            // A Goodreads id the write holds, changed: an update, not a second source.
            let (s, _, holders) = case(
                "same_id",
                false,
                vec![(
                    last,
                    format!("Book Number {last} Revised"),
                    format!("Writer {}", last % 7),
                    isbn13(1000 + last),
                )],
                vec![last],
            )
            .await;
            assert_eq!(
                (s.created, s.updated, s.failed),
                (chunk + extra, 1, 0),
                "{s:?}"
            );
            assert_eq!(holders, [[last.to_string()]]);

            // The earlier file's row, changed: its item has just gained row 100's source.
            let (s, _, holders) = case(
                "known",
                true,
                vec![(
                    7000,
                    "Pre Existing Revised".into(),
                    "Writer 9".into(),
                    isbn13(5000),
                )],
                vec![7000],
            )
            .await;
            assert_eq!(
                (s.created, s.merged, s.updated),
                (chunk + extra - 1, 1, 1),
                "{s:?}"
            );
            assert_eq!(holders, [["100", "7000"]]);

            // A third edition matched to that item: it is re-resolved with all three sources.
            let (s, _, holders) = case(
                "matched",
                true,
                vec![(9100, "Pre Existing".into(), "Writer 9".into(), isbn13(5000))],
                vec![9100],
            )
            .await;
            assert_eq!((s.created, s.merged), (chunk + extra - 1, 2), "{s:?}");
            assert_eq!(holders, [["100", "7000", "9100"]]);
        }
    })
    .await;
}

#[tokio::test]
async fn a_queued_import_cut_short_resumes_after_the_rows_it_committed() {
    on_both("queued_import_resumes", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        // More rows than one transaction takes, so the first commit comes before the end.
        let total = bb_core::library::service::COMMIT_ROWS + 700;
        let bytes = goodreads_csv(&books(total));
        let format = ImportFormat::GoodreadsCsv;
        let source = ImportSource {
            format: format.as_str().into(),
            provider: format.provider().into(),
            label: Some("big.csv".into()),
        };
        let batch = e.lib.create_upload(u, &source).await.unwrap();
        assert_eq!(
            e.lib.batch(u, batch).await.unwrap().state,
            bb_core::ports::BatchState::Queued
        );
        let rows = || {
            parse_reader(format, Box::new(std::io::Cursor::new(bytes.clone())))
                .unwrap()
                .map(|r| {
                    r.map_err(|e| RowFailure {
                        row: e.row,
                        message: e.message,
                    })
                })
        };

        // The first attempt dies after its first commit, its next chunks written and not
        // committed: they are rolled back, and the library stays writable.
        let cut = Arc::new(tokio::sync::Notify::new());
        let signal = cut.clone();
        let progress = move |_: u64| signal.notify_one();
        let attempt = e.lib.run_queued_import(u, batch, rows(), &progress);
        tokio::select! {
            biased;
            () = cut.notified() => {}
            r = attempt => panic!("the import was not cut short: {r:?}"),
        }
        let half = e.lib.batch(u, batch).await.unwrap();
        assert_eq!(half.state, bb_core::ports::BatchState::Running);
        assert!(
            half.counts.rows >= bb_core::library::service::COMMIT_ROWS && half.counts.rows < total,
            "{:?}",
            half.counts
        );
        assert_eq!(half.counts.created, half.counts.rows);
        assert_eq!(
            e.items(u).await.len(),
            usize::try_from(half.counts.rows).unwrap()
        );

        // The next attempt reads the file from the start and picks up where it stopped.
        let s = e
            .lib
            .run_queued_import(u, batch, rows(), &|_| {})
            .await
            .unwrap();
        assert_eq!(
            (s.rows, s.created, s.merged, s.failed),
            (total, total, 0, 0),
            "{s:?}"
        );
        assert_eq!(e.items(u).await.len(), usize::try_from(total).unwrap());
        let done = e.lib.batch(u, batch).await.unwrap();
        assert_eq!(done.state, bb_core::ports::BatchState::Done);

        // A repeated job after success changes nothing and reports the same summary.
        let again = e
            .lib
            .run_queued_import(u, batch, rows(), &|_| {})
            .await
            .unwrap();
        assert_eq!(again, s);
        assert_eq!(e.items(u).await.len(), usize::try_from(total).unwrap());
    })
    .await;
}

/// A clock that moves a second each time it is read: an import as slow as can be.
#[derive(Debug)]
struct Ticking(ManualClock);

impl Clock for Ticking {
    fn now(&self) -> chrono::DateTime<Utc> {
        self.0.advance(Duration::seconds(1));
        self.0.now()
    }
}

/// Chunks share a transaction until `COMMIT_ROWS` rows are in it, unless it has been open
/// longer than `COMMIT_AFTER_MS`: a slow import must not hold SQLite's write lock for
/// long. Progress reports committed rows, so it shows where the commits fell.
#[tokio::test]
async fn a_slow_import_commits_before_its_transaction_is_full() {
    on_both("slow_import_commits", |db| async move {
        // Three full chunks and a few rows.
        let bytes = goodreads_csv(&books(1600));
        let format = ImportFormat::GoodreadsCsv;
        let source = ImportSource {
            format: format.as_str().into(),
            provider: format.provider().into(),
            label: None,
        };
        let start = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        let clocks: [(&str, Arc<dyn Clock>); 2] = [
            ("steady", Arc::new(ManualClock::new(start))),
            ("slow", Arc::new(Ticking(ManualClock::new(start)))),
        ];
        let mut reported = Vec::new();
        for (name, clock) in clocks {
            let lib = Library::new(db.store.clone(), clock.clone(), ResolveRules::default());
            let u = db
                .store
                .create_user(name, "$argon2id$fake", clock.now())
                .await
                .unwrap()
                .id;
            let rows = parse_reader(format, Box::new(std::io::Cursor::new(bytes.clone())))
                .unwrap()
                .map(|r| {
                    r.map_err(|e| RowFailure {
                        row: e.row,
                        message: e.message,
                    })
                });
            let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
            let record = seen.clone();
            let s = lib
                .import_with_progress(u, &source, rows, &move |n| {
                    record.lock().unwrap().push(n);
                })
                .await
                .unwrap();
            assert_eq!(
                (s.rows, s.created, s.failed),
                (1600, 1600, 0),
                "{name}: {s:?}"
            );
            assert_eq!(lib.all_items(u).await.unwrap().len(), 1600, "{name}");
            reported.push(seen.lock().unwrap().clone());
        }
        // One transaction would take the whole file.
        const { assert!(1600 < bb_core::library::service::COMMIT_ROWS) };
        assert_eq!(reported[0], [1600], "steady: one commit, at the end");
        // The second chunk's write commits; the next chunk, settling it, reports it.
        assert_eq!(reported[1], [1000, 1600], "slow: the second chunk commits");
    })
    .await;
}

/// The item shape the issue documents for `library --json` and `GET /api/library`.
#[tokio::test]
async fn every_item_carries_the_documented_fields_with_provenance() {
    on_both("library_fields", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        e.import_bytes(u, GOODREADS.as_bytes()).await;
        e.import_bytes(u, STORYGRAPH.as_bytes()).await;
        let items = e.items(u).await;
        assert_eq!(items.len(), 4);
        let keys = [
            "id",
            "title",
            "subtitle",
            "authors",
            "narrators",
            "series",
            "identifiers",
            "formats",
            "status",
            "shelves",
            "rating",
            "reviews",
            "reads",
            "progress",
            "highlights",
            "sources",
            "provenance",
        ];
        for item in &items {
            for key in keys {
                assert!(item.get(key).is_some(), "{key} missing from {item}");
            }
            assert!(
                item["identifiers"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(Value::is_array)
            );
            for s in item["sources"].as_array().unwrap() {
                for key in ["provider", "external_id", "title"] {
                    assert!(s.get(key).is_some(), "{key} missing from source {s}");
                }
            }
            // Resolved scalar fields name the source that won.
            assert!(item["provenance"]["title"]["source"].is_object(), "{item}");
            assert!(item["provenance"]["status"]["source"].is_object(), "{item}");
        }
        let dune = find(&items, "Dune");
        assert_eq!(dune["series"][0]["name"], "Dune");
        assert_eq!(dune["series"][0]["position"], "1");
        assert_eq!(dune["reads"][0]["finished"], "2021-03-14");
        assert_eq!(dune["identifiers"]["isbn_13"][0], "9780441013593");
        // Each source's title exactly as that source wrote it.
        let mut titles: Vec<&str> = dune["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["title"].as_str().unwrap())
            .collect();
        titles.sort_unstable();
        assert_eq!(titles, ["Dune", "Dune (Dune, #1)"]);
        assert_eq!(dune["sources"][0]["external_id"], "1");
    })
    .await;
}

#[tokio::test]
async fn items_are_resolved_when_read_so_changed_rules_apply_to_what_is_stored() {
    on_both("resolved_on_read", |db| async move {
        let e = env(&db);
        let u = e.user("reader").await;
        let book = |id: &str, title: &str| SourceRecord {
            external_id: Some(id.into()),
            title: title.into(),
            authors: vec!["Frank Herbert".into()],
            identifiers: vec![Identifier {
                scheme: IdScheme::Isbn13,
                value: "9780441013593".into(),
            }],
            ..SourceRecord::default()
        };
        e.import_records(u, "goodreads", vec![book("1", "Dune")])
            .await;
        let sg = e
            .import_records(u, "storygraph", vec![book("a", "Dune: Deluxe Edition")])
            .await;
        assert_eq!(sg.merged, 1, "{sg:?}");
        let items = e.items(u).await;
        assert_eq!(
            titles(&items),
            ["Dune"],
            "goodreads is trusted first by default"
        );
        let id = ItemId(items[0]["id"].as_i64().unwrap());

        // The same store read by a library that trusts StoryGraph first: nothing was
        // re-imported or rewritten, and every read path shows StoryGraph's title.
        let rules = ResolveRules {
            metadata_priority: vec!["storygraph".into(), "*".into()],
            ..ResolveRules::default()
        };
        let other = Library::new(db.store.clone(), e.clock.clone(), rules);
        let items = other.all_items(u).await.unwrap();
        assert_eq!(titles(&items), ["Dune: Deluxe Edition"]);
        let alternatives = &items[0]["provenance"]["title"]["alternatives"];
        assert_eq!(alternatives[0]["value"], "Dune", "{alternatives}");
        let item = other.get_item(u, id).await.unwrap();
        assert_eq!(item["title"], "Dune: Deluxe Edition");
        let mut json = Vec::new();
        other.export_json(u, &mut json).await.unwrap();
        let json: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(json["items"][0]["title"], "Dune: Deluxe Edition");
        // The first library still reads it by its own rules.
        assert_eq!(e.lib.get_item(u, id).await.unwrap()["title"], "Dune");
    })
    .await;
}
