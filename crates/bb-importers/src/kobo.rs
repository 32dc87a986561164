//! Kobo `KoboReader.sqlite`: books, reading state, highlights, notes, ratings and shelves,
//! read from an uploaded device database opened read-only on its own connection.
//!
//! Safety (SECURITY G2): the file is opened read-only and immutable, with
//! `trusted_schema=OFF`, never attached to another database, and checked with
//! `quick_check` before anything else. Only the tables and columns named in this file are
//! read; the `user` table (account e-mail and auth tokens) is never queried.
//! The schema drifts with firmware, so every column is looked up in `PRAGMA table_info`
//! first and absent ones are simply not selected.

use crate::text::{self, People, Role};
use crate::{ImportError, RowError, RowResult};
use bb_core::library::identifiers::isbn_identifiers;
use bb_core::library::{
    Edition, Format, Highlight, HighlightKind, IdScheme, Identifier, PartialDate, Position,
    Progress, ReadThrough, ReadingStatus, Review, SeriesEntry, SourceRecord,
};
use serde_json::{Map, Value};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
// Every dynamic statement is built from this file's constants and `PRAGMA table_info`
// names, always quoted with `quote`; values are bound. That is what `AssertSqlSafe` asserts.
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Row};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// What a Kobo database held, plus what could not be read and why.
#[derive(Debug, Default)]
pub struct KoboImport {
    /// One `Ok` per book, one `Err` per book (or group of orphaned highlights) that failed.
    pub rows: Vec<RowResult>,
    /// Optional tables or columns this firmware's database lacks, in the user's terms.
    pub warnings: Vec<String>,
    /// `Bookmark` rows left out on purpose: dog-ears, drawings, hidden rows.
    pub skipped_bookmarks: u64,
}

/// Reads every book of a Kobo database.
pub async fn read_kobo(path: &Path) -> Result<Vec<RowResult>, ImportError> {
    Ok(read_kobo_report(path).await?.rows)
}

/// [`read_kobo`] with the warnings and skip count.
pub async fn read_kobo_report(path: &Path) -> Result<KoboImport, ImportError> {
    // Fail on a missing file here: SQLite would report it as an opaque open error.
    std::fs::metadata(path)?;
    let mut conn = open(path).await?;
    let result = read_all(&mut conn).await;
    // Closing a read-only connection cannot lose anything; its error is not the user's.
    let _ = conn.close().await;
    result
}

async fn open(path: &Path) -> Result<SqliteConnection, ImportError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        // An upload is a copy nobody writes to; immutable also means no -wal/-shm files
        // are needed or created next to it.
        .immutable(true)
        .create_if_missing(false)
        .foreign_keys(false)
        // Schema-defined functions and virtual tables of a hostile file must not run.
        .pragma("trusted_schema", "OFF");
    let mut conn = options
        .connect()
        .await
        .map_err(|e| ImportError::Malformed(format!("the Kobo database cannot be opened: {e}")))?;
    let check: Vec<String> = sqlx::query_scalar("PRAGMA quick_check")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| not_a_database(&e))?;
    if check.len() != 1 || check[0] != "ok" {
        let _ = conn.close().await;
        let detail = check.into_iter().take(3).collect::<Vec<_>>().join("; ");
        return Err(ImportError::Malformed(format!(
            "the Kobo database is damaged (SQLite integrity check: {detail})"
        )));
    }
    Ok(conn)
}

fn not_a_database(e: &sqlx::Error) -> ImportError {
    ImportError::Malformed(format!(
        "this is not a readable KoboReader.sqlite database ({e})"
    ))
}

fn query_error(what: &str, e: &sqlx::Error) -> ImportError {
    ImportError::Malformed(format!("the Kobo database's {what} cannot be read: {e}"))
}

/// The `content` columns read for a book; anything else (notably `___UserID`) is left alone.
const BOOK_COLUMNS: &[&str] = &[
    "ContentID",
    "ContentType",
    "MimeType",
    "BookID",
    "Title",
    "Subtitle",
    "Attribution",
    "Publisher",
    "ISBN",
    "Language",
    "Series",
    "SeriesNumber",
    "SeriesNumberFloat",
    "ReadStatus",
    "___PercentRead",
    "DateLastRead",
    "DateAdded",
    "LastTimeFinishedReading",
    "TimeSpentReading",
    "Duration",
];
const BOOKMARK_COLUMNS: &[&str] = &[
    "BookmarkID",
    "VolumeID",
    "ContentID",
    "Text",
    "Annotation",
    "ChapterProgress",
    "DateCreated",
    "StartContainerPath",
    "Type",
    "Hidden",
];

/// A table's columns, matched without regard to case as `SQLite` does.
struct Columns(Vec<String>);

impl Columns {
    fn actual(&self, wanted: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|c| c.eq_ignore_ascii_case(wanted))
            .map(String::as_str)
    }

    /// `CAST("Actual" AS TEXT) AS "Wanted"` for each wanted column present: every value is
    /// read as text, so a firmware that changed a column's type cannot break decoding.
    fn select_list(&self, wanted: &[&str]) -> (Vec<String>, String) {
        let mut names = Vec::new();
        let mut exprs = Vec::new();
        for w in wanted {
            if let Some(actual) = self.actual(w) {
                names.push((*w).to_string());
                exprs.push(format!("CAST({} AS TEXT) AS {}", quote(actual), quote(w)));
            }
        }
        (names, exprs.join(", "))
    }
}

/// Identifiers here come from this file's constants or from `PRAGMA table_info`; quoting
/// still keeps a hostile column name from becoming SQL.
fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

async fn tables(conn: &mut SqliteConnection) -> Result<HashSet<String>, ImportError> {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| not_a_database(&e))?;
    Ok(names.into_iter().map(|n| n.to_ascii_lowercase()).collect())
}

async fn columns(conn: &mut SqliteConnection, table: &str) -> Result<Columns, ImportError> {
    let rows = sqlx::query(AssertSqlSafe(format!(
        "PRAGMA table_info({})",
        quote(table)
    )))
    .fetch_all(&mut *conn)
    .await
    .map_err(|e| query_error(table, &e))?;
    Ok(Columns(
        rows.iter()
            .filter_map(|r| r.try_get::<String, _>("name").ok())
            .collect(),
    ))
}

type TextRow = HashMap<String, Option<String>>;

async fn select_text(
    conn: &mut SqliteConnection,
    sql: String,
    names: &[String],
    what: &str,
) -> Result<Vec<TextRow>, ImportError> {
    let rows = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await
        .map_err(|e| query_error(what, &e))?;
    Ok(rows
        .iter()
        .map(|r| {
            names
                .iter()
                .map(|n| {
                    let v = r.try_get::<Option<String>, _>(n.as_str()).ok().flatten();
                    (n.clone(), v)
                })
                .collect()
        })
        .collect())
}

fn get<'a>(row: &'a TextRow, col: &str) -> Option<&'a str> {
    row.get(col)?
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Kobo writes booleans as `true`/`false` text, older firmware as 0/1.
fn truthy(v: Option<&str>) -> bool {
    v.is_some_and(|s| matches!(s.to_ascii_lowercase().as_str(), "true" | "1"))
}

async fn read_all(conn: &mut SqliteConnection) -> Result<KoboImport, ImportError> {
    let tables = tables(conn).await?;
    if !tables.contains("content") {
        return Err(ImportError::Unrecognised(
            "the database has no `content` table, so it is not a KoboReader.sqlite".into(),
        ));
    }
    let mut out = KoboImport::default();

    let content = columns(conn, "content").await?;
    for required in ["ContentID", "Title"] {
        if content.actual(required).is_none() {
            return Err(ImportError::Malformed(format!(
                "the `content` table has no `{required}` column"
            )));
        }
    }
    let (names, select) = content.select_list(BOOK_COLUMNS);
    let mut filters = Vec::new();
    if let Some(c) = content.actual("ContentType") {
        filters.push(format!("CAST({} AS INTEGER) = 6", quote(c)));
    } else {
        out.warnings.push(
            "the `content` table has no ContentType column: every row is read as a book".into(),
        );
    }
    if let Some(c) = content.actual("BookID") {
        filters.push(format!("({0} IS NULL OR {0} = '')", quote(c)));
    }
    let where_clause = if filters.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", filters.join(" AND "))
    };
    let sql = format!(
        "SELECT {select} FROM content{where_clause} ORDER BY {} COLLATE NOCASE, {}",
        quote(content.actual("Title").unwrap_or("Title")),
        quote(content.actual("ContentID").unwrap_or("ContentID")),
    );
    let books = select_text(conn, sql, &names, "book list").await?;

    let mut highlights = if tables.contains("bookmark") {
        read_bookmarks(conn, &mut out).await?
    } else {
        out.warnings
            .push("the database has no `Bookmark` table: no highlights or notes were read".into());
        HashMap::new()
    };
    let ratings = if tables.contains("ratings") {
        read_ratings(conn).await?
    } else {
        HashMap::new()
    };
    let shelves = if tables.contains("shelfcontent") {
        read_shelves(conn, tables.contains("shelf")).await?
    } else {
        out.warnings
            .push("the database has no `ShelfContent` table: no collections were read".into());
        HashMap::new()
    };

    let mut row_no = 0u64;
    for book in &books {
        row_no += 1;
        let id = get(book, "ContentID").unwrap_or_default().to_string();
        let hl = highlights.remove(&id).unwrap_or_default();
        let rating = ratings.get(&id);
        let sh = shelves.get(&id).cloned().unwrap_or_default();
        out.rows
            .push(book_record(book, hl, rating, sh).map_err(|m| RowError::new(row_no, m)));
    }

    // Highlights can outlive their book's `content` row (a returned loan, a deleted
    // sideload). Their chapter rows often still name the book; otherwise report them.
    let mut orphans: Vec<(String, Vec<Highlight>)> = highlights.into_iter().collect();
    orphans.sort_by(|a, b| a.0.cmp(&b.0));
    for (volume, hl) in orphans {
        row_no += 1;
        let title = orphan_title(conn, &content, &volume).await;
        out.rows.push(match title {
            Some((title, author)) => Ok(SourceRecord {
                external_id: Some(volume.clone()),
                title,
                authors: author.map(|a| people(&a)).unwrap_or_default(),
                identifiers: vec![Identifier::new(IdScheme::Kobo, volume)],
                formats: vec![Format::Ebook],
                highlights: hl,
                ..SourceRecord::default()
            }),
            None => Err(RowError::new(
                row_no,
                format!(
                    "{} highlight(s) belong to a book that is no longer on the device \
                     (Kobo id {volume}), and its title cannot be found",
                    hl.len()
                ),
            )),
        });
    }
    Ok(out)
}

async fn orphan_title(
    conn: &mut SqliteConnection,
    content: &Columns,
    volume: &str,
) -> Option<(String, Option<String>)> {
    let book_id = content.actual("BookID")?;
    let book_title = content.actual("BookTitle")?;
    let attribution = content.actual("Attribution").map_or_else(
        || "NULL".to_string(),
        |a| format!("CAST({} AS TEXT)", quote(a)),
    );
    let sql = format!(
        "SELECT CAST({bt} AS TEXT), {attribution} FROM content \
         WHERE {bid} = ? AND {bt} IS NOT NULL AND {bt} != '' LIMIT 1",
        bt = quote(book_title),
        bid = quote(book_id),
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(volume)
        .fetch_optional(&mut *conn)
        .await
        .ok()??;
    let title: String = row.try_get(0).ok()?;
    let author: Option<String> = row.try_get(1).ok().flatten();
    Some((title, author.filter(|a| !a.trim().is_empty())))
}

async fn read_bookmarks(
    conn: &mut SqliteConnection,
    out: &mut KoboImport,
) -> Result<HashMap<String, Vec<Highlight>>, ImportError> {
    let cols = columns(conn, "Bookmark").await?;
    let Some(volume_col) = cols.actual("VolumeID") else {
        out.warnings
            .push("the `Bookmark` table has no VolumeID column: highlights were not read".into());
        return Ok(HashMap::new());
    };
    let (names, select) = cols.select_list(BOOKMARK_COLUMNS);
    let mut order = vec![quote(volume_col)];
    if let Some(c) = cols.actual("ContentID") {
        order.push(quote(c));
    }
    if let Some(c) = cols.actual("ChapterProgress") {
        order.push(format!("CAST({} AS REAL)", quote(c)));
    }
    if let Some(c) = cols.actual("DateCreated") {
        order.push(quote(c));
    }
    let sql = format!(
        "SELECT {select} FROM Bookmark ORDER BY {}",
        order.join(", ")
    );
    let rows = select_text(conn, sql, &names, "highlights").await?;
    let mut by_volume: HashMap<String, Vec<Highlight>> = HashMap::new();
    for r in &rows {
        let Some(volume) = get(r, "VolumeID") else {
            out.skipped_bookmarks += 1;
            continue;
        };
        let kind = get(r, "Type").map(str::to_ascii_lowercase);
        let text = get(r, "Text").map(str::to_string);
        let note = get(r, "Annotation").map(str::to_string);
        if truthy(get(r, "Hidden")) || kind.as_deref() == Some("dogear") {
            out.skipped_bookmarks += 1;
            continue;
        }
        // calibre's rule, which also covers firmware without `Type`: text makes a
        // highlight (an annotation on it is its note), an annotation alone is a note,
        // neither is a dog-ear or a drawing.
        let (text, note, kind) = match (text, note) {
            (Some(t), n) => (t, n, HighlightKind::Highlight),
            (None, Some(n)) => (n, None, HighlightKind::Note),
            (None, None) => {
                out.skipped_bookmarks += 1;
                continue;
            }
        };
        let location = match (get(r, "ContentID"), get(r, "StartContainerPath")) {
            (Some(ch), Some(p)) => Some(format!("{ch}#{p}")),
            (Some(ch), None) => Some(ch.to_string()),
            (None, p) => p.map(str::to_string),
        };
        by_volume
            .entry(volume.to_string())
            .or_default()
            .push(Highlight {
                text,
                note,
                location,
                location_start: None,
                location_end: None,
                at: get(r, "DateCreated").and_then(text::parse_datetime),
                kind,
            });
    }
    Ok(by_volume)
}

struct KoboRating {
    stars: Option<String>,
    review: Option<String>,
    at: Option<String>,
}

async fn read_ratings(
    conn: &mut SqliteConnection,
) -> Result<HashMap<String, KoboRating>, ImportError> {
    let cols = columns(conn, "ratings").await?;
    if cols.actual("ContentID").is_none() {
        return Ok(HashMap::new());
    }
    let (names, select) = cols.select_list(&["ContentID", "Rating", "Review", "DateModified"]);
    let rows = select_text(
        conn,
        format!("SELECT {select} FROM ratings"),
        &names,
        "ratings",
    )
    .await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                get(r, "ContentID")?.to_string(),
                KoboRating {
                    stars: get(r, "Rating").map(str::to_string),
                    review: get(r, "Review").map(str::to_string),
                    at: get(r, "DateModified").map(str::to_string),
                },
            ))
        })
        .collect())
}

async fn read_shelves(
    conn: &mut SqliteConnection,
    has_shelf_table: bool,
) -> Result<HashMap<String, Vec<String>>, ImportError> {
    let mut deleted_shelves = HashSet::new();
    if has_shelf_table {
        let cols = columns(conn, "Shelf").await?;
        if cols.actual("Name").is_some() && cols.actual("_IsDeleted").is_some() {
            let (names, select) = cols.select_list(&["Name", "_IsDeleted"]);
            for r in select_text(
                conn,
                format!("SELECT {select} FROM Shelf"),
                &names,
                "shelves",
            )
            .await?
            {
                if truthy(get(&r, "_IsDeleted"))
                    && let Some(n) = get(&r, "Name")
                {
                    deleted_shelves.insert(n.to_string());
                }
            }
        }
    }
    let cols = columns(conn, "ShelfContent").await?;
    if cols.actual("ShelfName").is_none() || cols.actual("ContentId").is_none() {
        return Ok(HashMap::new());
    }
    let (names, select) = cols.select_list(&["ShelfName", "ContentId", "_IsDeleted"]);
    let sql = format!("SELECT {select} FROM ShelfContent ORDER BY 1, 2");
    let mut out: HashMap<String, Vec<String>> = HashMap::new();
    for r in select_text(conn, sql, &names, "collections").await? {
        if truthy(get(&r, "_IsDeleted")) {
            continue;
        }
        let (Some(shelf), Some(id)) = (get(&r, "ShelfName"), get(&r, "ContentId")) else {
            continue;
        };
        if deleted_shelves.contains(shelf) {
            continue;
        }
        let list = out.entry(id.to_string()).or_default();
        if !list.iter().any(|s| s == shelf) {
            list.push(shelf.to_string());
        }
    }
    Ok(out)
}

/// `Attribution` is one string; several authors are joined with `,` or `&` by the store.
fn people(attribution: &str) -> Vec<String> {
    let mut p = People::default();
    for name in attribution.split([',', '&', ';']) {
        p.add_with_suffix(name, Role::Author);
    }
    p.authors
}

fn book_record(
    b: &TextRow,
    highlights: Vec<Highlight>,
    rating: Option<&KoboRating>,
    shelves: Vec<String>,
) -> Result<SourceRecord, String> {
    let id = get(b, "ContentID").ok_or("a book row has no ContentID")?;
    let title = get(b, "Title").ok_or_else(|| format!("book {id} has no title"))?;

    let mut identifiers = vec![Identifier::new(IdScheme::Kobo, id)];
    if let Some(isbn) = get(b, "ISBN") {
        identifiers.splice(0..0, isbn_identifiers(isbn));
    }

    let read_status = get(b, "ReadStatus").and_then(|s| s.parse::<i64>().ok());
    let status = match read_status {
        Some(0) => Some(ReadingStatus::ToRead),
        Some(1) => Some(ReadingStatus::Reading),
        Some(2) => Some(ReadingStatus::Read),
        _ => None,
    };
    let last_read = get(b, "DateLastRead").and_then(text::parse_datetime);
    let percent = get(b, "___PercentRead")
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|p| p.is_finite() && *p > 0.0)
        .map(|p| p.min(100.0));
    let progress = percent.map(|p| Progress {
        fraction: p / 100.0,
        position: Some(Position::Percent(p)),
        at: last_read,
    });
    let finished_at = get(b, "LastTimeFinishedReading")
        .and_then(text::parse_datetime)
        .or(if status == Some(ReadingStatus::Read) {
            last_read
        } else {
            None
        });
    let reads = match (status, finished_at) {
        (Some(ReadingStatus::Read), Some(at)) => vec![ReadThrough {
            started: None,
            finished: Some(PartialDate::from_date(at.date_naive())),
        }],
        _ => Vec::new(),
    };

    let series = get(b, "Series")
        .map(|name| SeriesEntry {
            name: name.to_string(),
            position: get(b, "SeriesNumber")
                .or_else(|| get(b, "SeriesNumberFloat"))
                .and_then(text::series_position),
        })
        .into_iter()
        .collect();

    let is_audio = get(b, "MimeType").is_some_and(|m| m.to_ascii_lowercase().contains("audio"));
    let edition = Edition {
        publisher: get(b, "Publisher").map(str::to_string),
        language: get(b, "Language").map(str::to_string),
        ..Edition::default()
    };

    let (user_rating, review) = match rating {
        Some(r) => (
            match r.stars.as_deref() {
                Some(s) => {
                    text::parse_rating(s, 5.0).map_err(|e| format!("book {id}: rating {e}"))?
                }
                None => None,
            },
            r.review.as_ref().map(|t| Review {
                text: t.clone(),
                at: r.at.as_deref().and_then(text::parse_datetime),
            }),
        ),
        None => (None, None),
    };

    let raw: Map<String, Value> = b
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().map_or(Value::Null, Value::String)))
        .collect();

    Ok(SourceRecord {
        external_id: Some(id.to_string()),
        title: title.to_string(),
        subtitle: get(b, "Subtitle").map(str::to_string),
        authors: get(b, "Attribution").map(people).unwrap_or_default(),
        series,
        identifiers,
        formats: vec![if is_audio {
            Format::Audiobook
        } else {
            Format::Ebook
        }],
        edition: (edition != Edition::default()).then_some(edition),
        status,
        status_at: last_read,
        shelves,
        rating: user_rating,
        review,
        reads,
        progress,
        highlights,
        added_at: get(b, "DateAdded").and_then(text::parse_datetime),
        raw: Value::Object(raw).into(),
        ..SourceRecord::default()
    })
}
