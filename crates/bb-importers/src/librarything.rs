//! LibraryThing exports: the JSON export (one object keyed by `books_id`, PHP-style
//! arrays-or-objects everywhere) and the tab-delimited export (49 columns, bracketed
//! values, stray MARC-8 bytes). `Collections` carries both shelves and reading status.

use crate::csv_table::{CsvRow, CsvTable};
use crate::json_stream::JsonEntries;
use crate::mapping::{add_identifiers, add_shelf, edition_if_any, status_from_word};
use crate::text::{
    People, Role, collapse_spaces, decode_entities, flip_last_first, format_from_binding,
    html_to_text, parse_count, parse_datetime, parse_partial_date, parse_rating, series_position,
    split_list,
};
use crate::{ImportError, RowError, RowResult, Rows};
use bb_core::library::identifiers::{isbn_identifiers, parse_asin};
use bb_core::library::{
    Edition, IdScheme, Identifier, PartialDate, ReadThrough, ReadingStatus, Review, SeriesEntry,
    SourceRecord,
};
use serde_json::Value;
use std::io::Read;

// ---------------------------------------------------------------------------------------
// Shared mapping

/// An ISBN (either form), else a non-print ASIN; LibraryThing's `isbn` lists hold both.
fn book_ids(raw: &str) -> Vec<Identifier> {
    let isbns = isbn_identifiers(raw);
    if !isbns.is_empty() {
        return isbns;
    }
    parse_asin(raw)
        .map(|a| vec![Identifier::new(IdScheme::Asin, a)])
        .unwrap_or_default()
}

/// Collections act as shelves, and the built-in ones as the reading status
/// (bookwyrm#3876: ignoring them put every book on to-read).
fn apply_collections(rec: &mut SourceRecord, names: &[String]) {
    let mut wishlist = false;
    for name in names {
        let name = collapse_spaces(name);
        if name.eq_ignore_ascii_case("Your library") {
            // The default collection every owned book is in: not a shelf the user made.
            continue;
        }
        if name.eq_ignore_ascii_case("Wishlist") {
            wishlist = true;
            add_shelf(&mut rec.shelves, &name);
            continue;
        }
        match status_from_word(&name) {
            Some(status) => rec.status = Some(status),
            None => add_shelf(&mut rec.shelves, &name),
        }
    }
    if rec.status.is_none() {
        // Dates say more than membership of the wish list.
        rec.status = match rec.reads.first() {
            Some(ReadThrough {
                finished: Some(_), ..
            }) => Some(ReadingStatus::Read),
            Some(ReadThrough {
                started: Some(_), ..
            }) => Some(ReadingStatus::Reading),
            _ if wishlist => Some(ReadingStatus::ToRead),
            _ => None,
        };
    }
}

/// `Dover (1971), Edition: 1st, Paperback` → `Dover`.
fn publisher_from_publication(publication: &str) -> Option<String> {
    let end = publication
        .find(" (")
        .or_else(|| publication.find(','))
        .unwrap_or(publication.len());
    let p = collapse_spaces(&publication[..end]);
    (!p.is_empty()).then_some(p)
}

/// `Discworld (3)` → name and position; a plain name has no position.
fn series_entry(raw: &str) -> Option<SeriesEntry> {
    let s = collapse_spaces(&decode_entities(raw));
    if s.is_empty() {
        return None;
    }
    if let Some(open) = s.rfind(" (")
        && s.ends_with(')')
    {
        let pos = &s[open + 2..s.len() - 1];
        if pos.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return Some(SeriesEntry {
                name: s[..open].to_string(),
                position: series_position(pos),
            });
        }
    }
    Some(SeriesEntry {
        name: s,
        position: None,
    })
}

fn read_through(
    started: Option<&str>,
    finished: Option<&str>,
    field: (&str, &str),
) -> Result<Option<ReadThrough>, String> {
    let parse = |v: Option<&str>, name: &str| -> Result<Option<PartialDate>, String> {
        match v.map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => parse_partial_date(v)
                .map(Some)
                .ok_or_else(|| format!("{name} \"{v}\" is not a date")),
        }
    };
    let started = parse(started, field.0)?;
    let finished = parse(finished, field.1)?;
    Ok((started.is_some() || finished.is_some()).then_some(ReadThrough { started, finished }))
}

// ---------------------------------------------------------------------------------------
// JSON

pub(crate) fn parse_json(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let entries = JsonEntries::open(reader)?;
    Ok(Box::new(entries.map(|entry| {
        let entry = entry?;
        map_json(entry.index, entry.key, entry.value)
    })))
}

/// PHP writes a list as an array when its keys are 0..n and as an object otherwise
/// (`{"0": …, "2": …}`); both mean a list, in numeric key order.
fn list_values(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(items) => items.iter().collect(),
        Value::Object(map) => {
            let mut items: Vec<(u64, &str, &Value)> = map
                .iter()
                .map(|(k, v)| (k.parse().unwrap_or(u64::MAX), k.as_str(), v))
                .collect();
            items.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
            items.into_iter().map(|(_, _, v)| v).collect()
        }
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// A scalar as trimmed text (numbers too: ratings and ids arrive either way).
fn scalar(v: &Value) -> Option<String> {
    let s = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!s.is_empty()).then_some(s)
}

fn field(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(scalar)
}

fn texts(v: Option<&Value>) -> Vec<String> {
    v.map(|v| list_values(v).into_iter().filter_map(scalar).collect())
        .unwrap_or_default()
}

/// Everyone in `authors` (with `fl`/`lf` names and an optional `role`), or the primary
/// author alone in exports that have no `authors` list.
fn json_people(value: &Value) -> People {
    let mut people = People::default();
    match value.get("authors") {
        Some(authors) if !list_values(authors).is_empty() => {
            for a in list_values(authors) {
                let name = a
                    .get("fl")
                    .and_then(scalar)
                    .or_else(|| a.get("lf").and_then(scalar).map(|n| flip_last_first(&n)));
                let role = a
                    .get("role")
                    .and_then(scalar)
                    .map_or(Role::Author, |r| Role::from_word(&r));
                if let Some(name) = name {
                    people.add(&decode_entities(&name), role);
                }
            }
        }
        _ => {
            if let Some(primary) = field(value, "primaryauthor") {
                let role =
                    field(value, "primaryauthorrole").map_or(Role::Author, |r| Role::from_word(&r));
                people.add(&flip_last_first(&decode_entities(&primary)), role);
            }
        }
    }
    people
}

fn map_json(index: u64, key: Option<String>, value: Value) -> RowResult {
    let err = |m: String| RowError::new(index, m);
    if !value.is_object() {
        return Err(err("the entry is not a book object".into()));
    }
    let mut rec = SourceRecord {
        title: field(&value, "title")
            .map(|t| decode_entities(&t))
            .unwrap_or_default(),
        ..SourceRecord::default()
    };
    rec.external_id = field(&value, "books_id").or(key);
    if let Some(work) = field(&value, "workcode") {
        rec.identifiers
            .push(Identifier::new(IdScheme::Librarything, work));
    }
    let mut isbn_values = texts(value.get("isbn"));
    isbn_values.extend(field(&value, "originalisbn"));
    isbn_values.extend(texts(value.get("ean")));
    isbn_values.extend(field(&value, "asin"));
    for v in &isbn_values {
        add_identifiers(&mut rec.identifiers, book_ids(v));
    }
    if rec.title.is_empty() && rec.identifiers.is_empty() {
        return Err(err(
            "the book has neither a title nor an ISBN or work id".into()
        ));
    }

    json_people(&value).fill_into(&mut rec);

    rec.series = texts(value.get("series"))
        .iter()
        .filter_map(|s| series_entry(s))
        .collect();

    let binding = value
        .get("format")
        .map(list_values)
        .unwrap_or_default()
        .into_iter()
        .find_map(|f| f.get("text").and_then(scalar));
    rec.formats
        .extend(binding.as_deref().and_then(format_from_binding));
    rec.edition = edition_if_any(Edition {
        publisher: field(&value, "publication")
            .and_then(|p| publisher_from_publication(&decode_entities(&p))),
        published: field(&value, "date").and_then(|d| parse_partial_date(&d)),
        pages: field(&value, "pages").and_then(|p| parse_count(&p)),
        language: texts(value.get("language"))
            .into_iter()
            .find(|l| !l.eq_ignore_ascii_case("All")),
        binding,
        ..Edition::default()
    });

    if let Some(r) = field(&value, "rating") {
        rec.rating = parse_rating(&r, 5.0).map_err(|e| err(format!("rating: {e}")))?;
    }
    if let Some(r) = field(&value, "review") {
        let text = html_to_text(&r);
        if !text.is_empty() {
            rec.review = Some(Review { text, at: None });
        }
    }
    let started = field(&value, "datestarted");
    let finished = field(&value, "dateread");
    rec.reads.extend(
        read_through(
            started.as_deref(),
            finished.as_deref(),
            ("datestarted", "dateread"),
        )
        .map_err(err)?,
    );
    if let Some(d) = field(&value, "entrydate") {
        rec.added_at = Some(
            parse_datetime(&d).ok_or_else(|| err(format!("entrydate \"{d}\" is not a date")))?,
        );
    }
    for tag in texts(value.get("tags")) {
        add_shelf(&mut rec.shelves, &collapse_spaces(&decode_entities(&tag)));
    }
    let collections: Vec<String> = texts(value.get("collections"))
        .iter()
        .map(|c| decode_entities(c))
        .collect();
    apply_collections(&mut rec, &collections);
    rec.raw = value.into();
    Ok(rec)
}

// ---------------------------------------------------------------------------------------
// TSV

#[derive(Debug, Clone, Copy)]
struct Columns {
    book_id: Option<usize>,
    title: Option<usize>,
    primary_author: Option<usize>,
    primary_role: Option<usize>,
    secondary_author: Option<usize>,
    secondary_roles: Option<usize>,
    publication: Option<usize>,
    date: Option<usize>,
    review: Option<usize>,
    rating: Option<usize>,
    media: Option<usize>,
    pages: Option<usize>,
    date_started: Option<usize>,
    date_read: Option<usize>,
    tags: Option<usize>,
    collections: Option<usize>,
    languages: Option<usize>,
    isbn: Option<usize>,
    isbns: Option<usize>,
    entry_date: Option<usize>,
    work_id: Option<usize>,
    series: Option<usize>,
}

pub(crate) fn parse_tsv(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let table = CsvTable::open(reader)?;
    table.require("Book Id", &["Book Id"])?;
    table.require("Title", &["Title"])?;
    let c = Columns {
        book_id: table.column(&["Book Id"]),
        title: table.column(&["Title"]),
        primary_author: table.column(&["Primary Author", "Author (Last, First)"]),
        primary_role: table.column(&["Primary Author Role"]),
        secondary_author: table.column(&["Secondary Author"]),
        secondary_roles: table.column(&["Secondary Author Roles", "Secondary Author Role"]),
        publication: table.column(&["Publication"]),
        date: table.column(&["Date"]),
        review: table.column(&["Review"]),
        rating: table.column(&["Rating"]),
        media: table.column(&["Media"]),
        pages: table.column(&["Page Count"]),
        date_started: table.column(&["Date Started"]),
        date_read: table.column(&["Date Read"]),
        tags: table.column(&["Tags"]),
        collections: table.column(&["Collections"]),
        languages: table.column(&["Languages"]),
        isbn: table.column(&["ISBN"]),
        isbns: table.column(&["ISBNs"]),
        entry_date: table.column(&["Entry Date"]),
        work_id: table.column(&["Work id", "Work Id"]),
        series: table.column(&["Series"]),
    };
    Ok(table.into_rows(move |row| map_tsv(&c, row)))
}

/// A bracketed single value: `[2070291340]` → `2070291340`.
fn unbracket(v: &str) -> &str {
    let v = v.trim();
    v.strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(v)
        .trim()
}

fn map_tsv(c: &Columns, row: CsvRow) -> RowResult {
    let get = |col| row.get(col).map(unbracket).filter(|v| !v.is_empty());
    let mut rec = SourceRecord {
        title: get(c.title).unwrap_or_default().to_string(),
        external_id: get(c.book_id).map(ToString::to_string),
        ..SourceRecord::default()
    };
    if let Some(work) = get(c.work_id) {
        rec.identifiers
            .push(Identifier::new(IdScheme::Librarything, work));
    }
    if let Some(v) = get(c.isbn) {
        add_identifiers(&mut rec.identifiers, book_ids(v));
    }
    for v in get(c.isbns).map(|s| split_list(s, ",")).unwrap_or_default() {
        add_identifiers(&mut rec.identifiers, book_ids(&v));
    }
    if rec.title.is_empty() && rec.identifiers.is_empty() {
        return Err(row.error("the row has neither a Title nor an ISBN or Work id"));
    }

    let mut people = People::default();
    if let Some(a) = get(c.primary_author) {
        let role = get(c.primary_role).map_or(Role::Author, Role::from_word);
        people.add(&flip_last_first(a), role);
    }
    // Several secondary authors are `|`-separated, their roles likewise, in step.
    let secondary = get(c.secondary_author)
        .map(|s| split_list(s, "|"))
        .unwrap_or_default();
    let roles: Vec<String> = get(c.secondary_roles)
        .map(|s| {
            s.split('|')
                .map(str::trim)
                .map(ToString::to_string)
                .collect()
        })
        .unwrap_or_default();
    for (i, name) in secondary.iter().enumerate() {
        let role = roles.get(i).map_or(Role::Author, |r| Role::from_word(r));
        people.add(&flip_last_first(name), role);
    }
    people.fill_into(&mut rec);

    rec.series = get(c.series)
        .map(|s| split_list(s, "|"))
        .unwrap_or_default()
        .iter()
        .filter_map(|s| series_entry(s))
        .collect();

    let media = get(c.media);
    rec.formats.extend(media.and_then(format_from_binding));
    rec.edition = edition_if_any(Edition {
        publisher: get(c.publication).and_then(publisher_from_publication),
        published: get(c.date).and_then(parse_partial_date),
        pages: get(c.pages).and_then(parse_count),
        language: get(c.languages).and_then(|l| split_list(l, ",").into_iter().next()),
        binding: media.map(ToString::to_string),
        ..Edition::default()
    });

    if let Some(r) = get(c.rating) {
        rec.rating = parse_rating(r, 5.0).map_err(|e| row.error(format!("Rating: {e}")))?;
    }
    if let Some(r) = get(c.review) {
        let text = html_to_text(r);
        if !text.is_empty() {
            rec.review = Some(Review { text, at: None });
        }
    }
    rec.reads.extend(
        read_through(
            get(c.date_started),
            get(c.date_read),
            ("Date Started", "Date Read"),
        )
        .map_err(|e| row.error(e))?,
    );
    if let Some(d) = get(c.entry_date) {
        rec.added_at = Some(
            parse_datetime(d)
                .ok_or_else(|| row.error(format!("Entry Date \"{d}\" is not a date")))?,
        );
    }
    for tag in get(c.tags).map(|s| split_list(s, ",")).unwrap_or_default() {
        add_shelf(&mut rec.shelves, &collapse_spaces(&tag));
    }
    let collections = get(c.collections)
        .map(|s| split_list(s, ","))
        .unwrap_or_default();
    apply_collections(&mut rec, &collections);
    rec.raw = row.into_raw();
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn php_lists_in_key_order() {
        let v: Value = serde_json::json!({"10": "c", "2": "b", "0": "a"});
        let got: Vec<_> = list_values(&v).into_iter().filter_map(scalar).collect();
        assert_eq!(got, ["a", "b", "c"]);
        assert!(list_values(&serde_json::json!([])).is_empty());
    }

    #[test]
    fn collections_set_status_and_shelves() {
        let mut rec = SourceRecord::default();
        apply_collections(
            &mut rec,
            &[
                "Your library".into(),
                "Currently reading".into(),
                "Favorites".into(),
            ],
        );
        assert_eq!(rec.status, Some(ReadingStatus::Reading));
        assert_eq!(rec.shelves, ["Favorites"]);
        let mut rec = SourceRecord::default();
        apply_collections(&mut rec, &["Wishlist".into()]);
        assert_eq!(rec.status, Some(ReadingStatus::ToRead));
        let mut rec = SourceRecord::default();
        apply_collections(&mut rec, &["Read but unowned".into()]);
        assert_eq!(rec.status, Some(ReadingStatus::Read));
    }

    #[test]
    fn publication_and_series() {
        assert_eq!(
            publisher_from_publication("Gallimard (1979), Poche").as_deref(),
            Some("Gallimard")
        );
        let s = series_entry("Discworld (3)").unwrap();
        assert_eq!(
            (s.name.as_str(), s.position.as_deref()),
            ("Discworld", Some("3"))
        );
        assert_eq!(series_entry("Hainish Cycle").unwrap().position, None);
    }
}
