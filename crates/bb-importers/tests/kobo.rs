//! Kobo `KoboReader.sqlite`: a database generated here from the real DDL in
//! `shared/fixtures/real/kobo/kobo.schema.md` (no binary fixture), filled with synthetic
//! books, highlights, ratings, collections and a `user` row holding fake tokens that must
//! never come out; plus an old-firmware schema, damaged files and a no-panic property.

// Helpers outside `#[test]` fns unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bb_core::library::{HighlightKind, IdScheme, Identifier, Rating, ReadingStatus};
use bb_importers::ImportError;
use bb_importers::kobo::{read_kobo, read_kobo_report};
use proptest::prelude::*;
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};
use std::path::{Path, PathBuf};

const SCHEMA_DOC: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/real/kobo/kobo.schema.md"
);

const FAKE_SECRETS: &[&str] = &[
    "FAKE-AUTH-TOKEN-6f1c0d",
    "FAKE-REFRESH-TOKEN-93ab2e",
    "FAKE-KOBO-ACCESS-TOKEN-77e1",
    "secret-reader@example.invalid",
    "FAKE-USER-KEY-5521",
    "FAKE-DEVICE-ID-0042",
];

/// Every `CREATE TABLE` in the schema document, in order.
fn schema_statements() -> Vec<String> {
    let doc = std::fs::read_to_string(SCHEMA_DOC).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim()) {
            (None, "```sql") => current = Some(String::new()),
            (Some(sql), "```") => {
                out.push(std::mem::take(sql));
                current = None;
            }
            (Some(sql), _) => {
                sql.push_str(line);
                sql.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(out.len() > 30, "the schema document has the full DDL");
    out
}

async fn create(path: &Path) -> SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap()
}

async fn exec(conn: &mut SqliteConnection, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(&mut *conn)
        .await
        .unwrap_or_else(|e| panic!("{e}: {sql}"));
}

const STORE_BOOK: &str = "0b7c3f1e-1111-4a5b-9c3d-synthetic001";
const SIDELOADED: &str = "file:///mnt/onboard/Example/Finished Book (synthetic).epub";
const UNREAD: &str = "0b7c3f1e-3333-4a5b-9c3d-synthetic003";
const RETURNED: &str = "0b7c3f1e-4444-4a5b-9c3d-synthetic004";

/// Synthetic rows for the full schema (shared with the Kobo fuzz target's seed).
const ROWS: &str = include_str!("data/kobo_rows.sql");

async fn full_database(dir: &Path) -> PathBuf {
    let path = dir.join("KoboReader.sqlite");
    let mut conn = create(&path).await;
    for stmt in schema_statements() {
        exec(&mut conn, &stmt).await;
    }
    exec(&mut conn, ROWS).await;
    conn.close().await.unwrap();
    path
}

fn snapshot_json(rows: &[bb_importers::RowResult], keep_raw: bool) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| match r {
                Ok(rec) => {
                    let mut v = serde_json::to_value(rec).unwrap();
                    if !keep_raw {
                        v.as_object_mut().unwrap().remove("raw");
                    }
                    v
                }
                Err(e) => json!({"row": e.row, "error": e.message}),
            })
            .collect(),
    )
}

#[tokio::test]
async fn full_schema_books_highlights_ratings_and_shelves() {
    let dir = tempfile::tempdir().unwrap();
    let path = full_database(dir.path()).await;
    let before = std::fs::read(&path).unwrap();

    let report = read_kobo_report(&path).await.unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    assert_eq!(report.skipped_bookmarks, 2, "a dog-ear and a hidden row");
    let rows = &report.rows;
    // Three books (ordered by title), the returned loan recovered from its chapter row,
    // and one group of highlights whose book is gone entirely.
    assert_eq!(rows.len(), 5);
    let books: Vec<_> = rows.iter().filter_map(|r| r.as_ref().ok()).collect();
    let titles: Vec<_> = books.iter().map(|b| b.title.as_str()).collect();
    assert_eq!(
        titles,
        [
            "Finished Book (synthetic)",
            "Never Opened (synthetic)",
            "The Drift Between (synthetic)",
            "Returned Library Book (synthetic)",
        ]
    );

    let finished = books[0];
    assert_eq!(finished.status, Some(ReadingStatus::Read));
    assert_eq!(finished.rating, Rating::from_stars(4.0));
    assert_eq!(finished.review.as_ref().unwrap().text, "Loved the ending.");
    assert_eq!(finished.reads[0].finished.unwrap().to_iso(), "2023-12-24");
    assert!(finished.shelves.is_empty(), "its shelf entry is deleted");

    let unread = books[1];
    assert_eq!(unread.status, Some(ReadingStatus::ToRead));
    assert_eq!(unread.progress, None);
    assert_eq!(
        unread.status_at, None,
        "the 0000-00-00 placeholder is no date"
    );
    assert_eq!(
        unread.identifiers,
        [Identifier::new(IdScheme::Kobo, UNREAD)],
        "an invalid ISBN is dropped"
    );

    let drift = books[2];
    assert_eq!(drift.external_id.as_deref(), Some(STORE_BOOK));
    assert_eq!(drift.authors, ["Mara Quinn", "Tomás Ó Briain"]);
    assert_eq!(drift.status, Some(ReadingStatus::Reading));
    assert!((drift.progress.as_ref().unwrap().fraction - 0.42).abs() < 1e-9);
    assert_eq!(drift.shelves, ["Holiday"], "Old Shelf is deleted");
    assert_eq!(drift.series[0].position.as_deref(), Some("2"));
    assert_eq!(
        drift.identifiers[0],
        Identifier::new(IdScheme::Isbn13, "9780306406157")
    );
    let kinds: Vec<_> = drift
        .highlights
        .iter()
        .map(|h| (h.kind, h.note.is_some()))
        .collect();
    assert_eq!(
        kinds,
        [
            (HighlightKind::Highlight, false),
            (HighlightKind::Highlight, true),
            (HighlightKind::Note, false),
        ]
    );

    let returned = books[3];
    assert_eq!(returned.external_id.as_deref(), Some(RETURNED));
    assert_eq!(returned.highlights.len(), 1);

    let err = rows[4].as_ref().unwrap_err();
    assert!(err.message.contains("vanished-volume"), "{err}");

    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the upload is never written"
    );
    assert!(!dir.path().join("KoboReader.sqlite-wal").exists());
    assert!(!dir.path().join("KoboReader.sqlite-shm").exists());
    let _ = SIDELOADED;
    insta::assert_json_snapshot!("kobo_full_schema", snapshot_json(rows, false));
}

#[tokio::test]
async fn nothing_from_the_user_table_comes_out() {
    let dir = tempfile::tempdir().unwrap();
    let path = full_database(dir.path()).await;
    let report = read_kobo_report(&path).await.unwrap();
    // Everything the importer produced, raw included, as JSON and as Debug text.
    let everything = format!("{}\n{:?}", snapshot_json(&report.rows, true), report);
    for secret in FAKE_SECRETS {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
    assert!(
        !everything.contains("FAKE-USER-ID-PLAIN"),
        "the account id (content.___UserID) is not copied either"
    );
}

#[tokio::test]
async fn old_firmware_schema_reads_what_exists_and_says_what_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.sqlite");
    let mut conn = create(&path).await;
    exec(
        &mut conn,
        "CREATE TABLE content (ContentID TEXT NOT NULL, ContentType TEXT NOT NULL, \
         MimeType TEXT NOT NULL, BookID TEXT, Title TEXT, Attribution TEXT, ReadStatus INTEGER, \
         ___PercentRead INTEGER, ___UserID TEXT NOT NULL, PRIMARY KEY (ContentID));
         CREATE TABLE Bookmark (BookmarkID TEXT NOT NULL, VolumeID TEXT NOT NULL, \
         ContentID TEXT NOT NULL, Text TEXT, Annotation TEXT, DateCreated TEXT, \
         PRIMARY KEY (BookmarkID));
         INSERT INTO content VALUES ('old-1', 6, 'application/epub+zip', NULL, 'Old Book', \
         'Old Author', 1, 10, 'u');
         INSERT INTO Bookmark VALUES ('b1', 'old-1', 'old-1#ch', 'Some text', NULL, \
         '2015-01-01T00:00:00');",
    )
    .await;
    conn.close().await.unwrap();

    let report = read_kobo_report(&path).await.unwrap();
    assert_eq!(report.rows.len(), 1);
    let book = report.rows[0].as_ref().unwrap();
    assert_eq!(book.title, "Old Book");
    assert_eq!(book.highlights.len(), 1);
    assert!(
        report.warnings.iter().any(|w| w.contains("ShelfContent")),
        "{:?}",
        report.warnings
    );
}

#[tokio::test]
async fn a_database_without_content_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.sqlite");
    let mut conn = create(&path).await;
    exec(&mut conn, "CREATE TABLE notes (x TEXT)").await;
    conn.close().await.unwrap();
    let err = read_kobo(&path).await.unwrap_err();
    assert!(matches!(err, ImportError::Unrecognised(_)), "{err}");
    assert!(err.to_string().contains("content"), "{err}");
}

#[tokio::test]
async fn damaged_and_foreign_files_are_whole_file_errors() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("clippings.txt");
    std::fs::write(&text, b"not a database at all").unwrap();
    assert!(matches!(
        read_kobo(&text).await.unwrap_err(),
        ImportError::Malformed(_)
    ));

    // A real database with its pages overwritten past the header.
    let path = full_database(dir.path()).await;
    let mut bytes = std::fs::read(&path).unwrap();
    let len = bytes.len();
    for b in &mut bytes[4096..len.min(4096 * 6)] {
        *b = 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();
    let err = read_kobo(&path).await.unwrap_err();
    assert!(matches!(err, ImportError::Malformed(_)), "{err}");

    assert!(matches!(
        read_kobo(&dir.path().join("missing.sqlite"))
            .await
            .unwrap_err(),
        ImportError::Io(_)
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]
    #[test]
    fn random_bytes_never_panic(
        tail in proptest::collection::vec(any::<u8>(), 0..4096),
        with_header in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("random.sqlite");
        let mut bytes = if with_header { b"SQLite format 3\0".to_vec() } else { Vec::new() };
        bytes.extend(tail);
        std::fs::write(&path, bytes).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _ = rt.block_on(read_kobo(&path));
    }
}
