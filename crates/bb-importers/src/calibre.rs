//! Calibre exports: the CSV catalog (BOM or not, every field quoted, `identifiers` as
//! `scheme:value` pairs, ratings already halved) and a book's `metadata.opf` (OPF 2 as in a
//! calibre library folder, OPF 3 as inside calibre-made EPUBs).
//!
//! quick-xml is used only inside [`opf_xml`], which turns the document into a flat list of
//! metadata elements; the mapping works on that list, so a quick-xml upgrade touches one
//! function.

use crate::csv_table::{CsvRow, CsvTable};
use crate::mapping::{add_identifiers, add_shelf, edition_if_any};
use crate::text::{
    People, Role, collapse_spaces, flip_last_first, parse_datetime, parse_partial_date,
    parse_rating, series_position, split_list,
};
use crate::{ImportError, MAX_DOCUMENT_BYTES, RowError, RowResult, Rows};
use bb_core::library::identifiers::{classify_book_id, isbn_identifiers};
use bb_core::library::{Edition, Format, IdScheme, Identifier, SeriesEntry, SourceRecord};
use serde_json::{Map, Value};
use std::io::Read;

// ---------------------------------------------------------------------------------------
// Shared mapping

/// Identifiers from one calibre `scheme:value` pair. Schemes are compared without regard
/// to case (`ISBN:` and `isbn:` both occur). Unknown schemes stay in the raw record only.
fn identifier(scheme: &str, value: &str) -> Vec<Identifier> {
    let value = value.trim();
    if value.is_empty() {
        return Vec::new();
    }
    let scheme = scheme.trim().to_ascii_lowercase();
    let one = |s: IdScheme| vec![Identifier::new(s, value)];
    match scheme.as_str() {
        "isbn" | "isbn13" | "isbn10" | "ean" => isbn_identifiers(value),
        "goodreads" => one(IdScheme::Goodreads),
        // A print ASIN is its ISBN-10, so classification finds the ISBN first.
        s if s == "asin" || s.starts_with("amazon") || s == "mobi-asin" => {
            classify_book_id(value, None)
        }
        "google" => one(IdScheme::GoogleVolume),
        "librarything" => one(IdScheme::Librarything),
        "hardcover" => one(IdScheme::Hardcover),
        "kobo" => one(IdScheme::Kobo),
        "openlibrary" | "olid" => {
            let key = value
                .rsplit('/')
                .next()
                .unwrap_or(value)
                .to_ascii_uppercase();
            if key.starts_with("OL") && key.ends_with('W') {
                vec![Identifier::new(IdScheme::OpenlibraryWork, key)]
            } else if key.starts_with("OL") && key.ends_with('M') {
                vec![Identifier::new(IdScheme::OpenlibraryEdition, key)]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// The formats a list of calibre file formats (`epub, original_epub`) implies.
fn formats_from_files(list: &str) -> Vec<Format> {
    let mut out = Vec::new();
    for f in split_list(list, ",") {
        let f = f.to_ascii_lowercase();
        let f = f.strip_prefix("original_").unwrap_or(&f);
        let format = match f {
            "mp3" | "m4b" | "m4a" | "aac" | "ogg" | "opus" | "flac" | "wav" => Format::Audiobook,
            _ => Format::Ebook,
        };
        if !out.contains(&format) {
            out.push(format);
        }
    }
    out
}

/// calibre writes `0101-01-01` for "no date".
fn publication_date(raw: &str) -> Option<bb_core::library::PartialDate> {
    parse_partial_date(raw).filter(|d| d.year > 101)
}

// ---------------------------------------------------------------------------------------
// CSV catalog

#[derive(Debug, Clone, Copy)]
struct Columns {
    authors: Option<usize>,
    author_sort: Option<usize>,
    rating: Option<usize>,
    timestamp: Option<usize>,
    formats: Option<usize>,
    isbn: Option<usize>,
    identifiers: Option<usize>,
    tags: Option<usize>,
    series: Option<usize>,
    series_index: Option<usize>,
    languages: Option<usize>,
    title: Option<usize>,
    publisher: Option<usize>,
    pubdate: Option<usize>,
    id: Option<usize>,
    uuid: Option<usize>,
}

pub(crate) fn parse_csv(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let table = CsvTable::open(reader)?;
    table.require("title", &["title"])?;
    let c = Columns {
        authors: table.column(&["authors"]),
        author_sort: table.column(&["author_sort"]),
        rating: table.column(&["rating"]),
        timestamp: table.column(&["timestamp", "date"]),
        formats: table.column(&["formats"]),
        isbn: table.column(&["isbn"]),
        identifiers: table.column(&["identifiers"]),
        tags: table.column(&["tags"]),
        series: table.column(&["series"]),
        series_index: table.column(&["series_index"]),
        languages: table.column(&["languages"]),
        title: table.column(&["title"]),
        publisher: table.column(&["publisher"]),
        pubdate: table.column(&["pubdate"]),
        id: table.column(&["id"]),
        uuid: table.column(&["uuid"]),
    };
    Ok(table.into_rows(move |row| map_csv(&c, row)))
}

/// Author names may contain commas, so `authors` (joined with ", ") is only trusted when
/// it splits into as many names as `author_sort` (joined with " & ") has.
fn csv_authors(authors: Option<&str>, author_sort: Option<&str>) -> Vec<String> {
    let sorted = author_sort.map(|s| split_list(s, "&")).unwrap_or_default();
    let Some(authors) = authors else {
        return sorted.iter().map(|n| flip_last_first(n)).collect();
    };
    for sep in ["&", ","] {
        let names = split_list(authors, sep);
        if sorted.is_empty() && sep == "&" && names.len() > 1 {
            return names;
        }
        if names.len() == sorted.len() {
            return names;
        }
    }
    if sorted.is_empty() {
        vec![collapse_spaces(authors)]
    } else {
        sorted.iter().map(|n| flip_last_first(n)).collect()
    }
}

fn map_csv(c: &Columns, row: CsvRow) -> RowResult {
    let mut rec = SourceRecord {
        title: row.get(c.title).unwrap_or_default().to_string(),
        ..SourceRecord::default()
    };
    let uuid = row.get(c.uuid);
    rec.external_id = uuid.or(row.get(c.id)).map(ToString::to_string);
    if let Some(id) = &rec.external_id {
        rec.identifiers.push(Identifier::new(IdScheme::Calibre, id));
    }
    if let Some(isbn) = row.get(c.isbn) {
        add_identifiers(&mut rec.identifiers, isbn_identifiers(isbn));
    }
    for pair in row
        .get(c.identifiers)
        .map(|s| split_list(s, ","))
        .unwrap_or_default()
    {
        if let Some((scheme, value)) = pair.split_once(':') {
            add_identifiers(&mut rec.identifiers, identifier(scheme, value));
        }
    }
    if rec.title.is_empty() && rec.identifiers.is_empty() {
        return Err(row.error("the row has neither a title nor an id"));
    }
    let mut people = People::default();
    for name in csv_authors(row.get(c.authors), row.get(c.author_sort)) {
        people.add(&name, Role::Author);
    }
    people.fill_into(&mut rec);

    if let Some(name) = row.get(c.series) {
        rec.series.push(SeriesEntry {
            name: collapse_spaces(name),
            position: row.get(c.series_index).and_then(series_position),
        });
    }
    // Already halved from calibre's 0–10 by the catalog writer.
    if let Some(r) = row.get(c.rating) {
        rec.rating = parse_rating(r, 5.0).map_err(|e| row.error(format!("rating: {e}")))?;
    }
    rec.formats = row
        .get(c.formats)
        .map(formats_from_files)
        .unwrap_or_default();
    rec.edition = edition_if_any(Edition {
        publisher: row.get(c.publisher).map(collapse_spaces),
        published: row.get(c.pubdate).and_then(publication_date),
        language: row
            .get(c.languages)
            .and_then(|l| split_list(l, ",").into_iter().next()),
        ..Edition::default()
    });
    for tag in row
        .get(c.tags)
        .map(|s| split_list(s, ","))
        .unwrap_or_default()
    {
        add_shelf(&mut rec.shelves, &tag);
    }
    if let Some(t) = row.get(c.timestamp) {
        rec.added_at = Some(
            parse_datetime(t)
                .ok_or_else(|| row.error(format!("timestamp \"{t}\" is not a date")))?,
        );
    }
    // `comments` is the book's description, not the user's review.
    rec.raw = row.into_raw();
    Ok(rec)
}

// ---------------------------------------------------------------------------------------
// metadata.opf

/// One element of the OPF `<metadata>` block, with namespace prefixes kept in `name` and
/// dropped from attribute keys (`opf:scheme` and `scheme` mean the same).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct OpfElement {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
}

impl OpfElement {
    fn local_name(&self) -> &str {
        self.name.rsplit(':').next().unwrap_or(&self.name)
    }

    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }

    /// A `<meta>`'s name (`name=` in OPF 2, `property=` in OPF 3) and value.
    fn meta(&self) -> Option<(&str, &str)> {
        if self.local_name() != "meta" {
            return None;
        }
        let key = self.attr("name").or_else(|| self.attr("property"))?;
        let value = self.attr("content").unwrap_or(self.text.trim());
        Some((key, value))
    }
}

/// The metadata elements of an OPF document. The only place quick-xml is used.
fn opf_xml(xml: &str) -> Result<Vec<OpfElement>, String> {
    use quick_xml::events::{BytesStart, Event};

    fn start(e: &BytesStart<'_>) -> Result<OpfElement, String> {
        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
        let mut attrs = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| format!("a bad attribute on <{name}>: {err}"))?;
            let key = String::from_utf8_lossy(a.key.local_name().as_ref()).into_owned();
            let value = a
                .unescape_value()
                .map_err(|err| format!("a bad attribute value on <{name}>: {err}"))?
                .into_owned();
            attrs.push((key, value));
        }
        Ok(OpfElement {
            name,
            attrs,
            text: String::new(),
        })
    }

    let mut reader = quick_xml::Reader::from_str(xml);
    let mut in_metadata = false;
    let mut saw_package = false;
    let mut current: Option<OpfElement> = None;
    let mut depth_in_element = 0usize;
    let mut out = Vec::new();
    loop {
        let event = reader.read_event().map_err(|e| {
            format!(
                "the XML is broken near byte {}: {e}",
                reader.buffer_position()
            )
        })?;
        match event {
            Event::Start(e) => {
                let local = e.local_name();
                if local.as_ref() == b"package" {
                    saw_package = true;
                } else if local.as_ref() == b"metadata" {
                    in_metadata = true;
                } else if in_metadata {
                    if current.is_some() {
                        // Markup inside an element (rare): keep its text, not its tags.
                        depth_in_element += 1;
                    } else {
                        current = Some(start(&e)?);
                    }
                }
            }
            Event::Empty(e) if in_metadata && current.is_none() => out.push(start(&e)?),
            Event::Text(t) => {
                if let Some(el) = current.as_mut() {
                    let text = t
                        .unescape()
                        .map_err(|e| format!("bad text in <{}>: {e}", el.name))?;
                    el.text.push_str(&text);
                }
            }
            Event::CData(t) => {
                if let Some(el) = current.as_mut() {
                    el.text.push_str(&String::from_utf8_lossy(&t));
                }
            }
            Event::End(e) => {
                if e.local_name().as_ref() == b"metadata" {
                    in_metadata = false;
                } else if depth_in_element > 0 {
                    depth_in_element -= 1;
                } else if let Some(el) = current.take() {
                    out.push(el);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_package {
        return Err("it has no <package> element, so it is not an OPF file".into());
    }
    Ok(out)
}

pub(crate) fn parse_opf(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(ImportError::TooLarge {
            what: "the OPF file".into(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim_start_matches('\u{feff}');
    let elements = opf_xml(text).map_err(ImportError::Malformed)?;
    let result = map_opf(&elements).map_err(|m| RowError::new(1, m));
    Ok(Box::new(std::iter::once(result)))
}

fn map_opf(elements: &[OpfElement]) -> Result<SourceRecord, String> {
    // OPF 3 attaches roles, series positions and sort names with `refines="#id"`.
    let refined = |id: Option<&str>, property: &str| -> Option<String> {
        let id = id?;
        elements.iter().find_map(|e| {
            let target = e.attr("refines")?.strip_prefix('#')?;
            (target == id && e.attr("property")? == property).then(|| e.text.trim().to_string())
        })
    };
    let mut rec = SourceRecord::default();
    let mut people = People::default();
    let mut uuid = None;
    let mut calibre_id = None;
    let mut edition = Edition::default();
    let mut series_name = None;
    let mut series_index = None;

    for e in elements {
        let text = e.text.trim();
        match e.local_name() {
            "title" if rec.title.is_empty() => rec.title = collapse_spaces(text),
            "creator" | "contributor" => {
                let role = e
                    .attr("role")
                    .map(ToString::to_string)
                    .or_else(|| refined(e.attr("id"), "role"));
                add_creator(&mut people, e, role.as_deref());
            }
            "identifier" => {
                let (scheme, value) = opf_identifier(e);
                match scheme.to_ascii_lowercase().as_str() {
                    "uuid" => uuid = Some(value.trim().to_string()),
                    "calibre" => calibre_id = Some(value.trim().to_string()),
                    _ => add_identifiers(&mut rec.identifiers, identifier(scheme, value)),
                }
            }
            "publisher" if edition.publisher.is_none() && !text.is_empty() => {
                edition.publisher = Some(collapse_spaces(text));
            }
            "date" if edition.published.is_none() => edition.published = publication_date(text),
            "language" if edition.language.is_none() && !text.is_empty() => {
                edition.language = Some(text.to_string());
            }
            "subject" => add_shelf(&mut rec.shelves, &collapse_spaces(text)),
            // `description` is the publisher's blurb (escaped HTML), not a review.
            _ => {}
        }
        let Some((key, value)) = e.meta() else {
            continue;
        };
        match key {
            "calibre:series" => series_name = Some(collapse_spaces(value)),
            "calibre:series_index" => series_index = series_position(value),
            "calibre:rating" => {
                rec.rating =
                    parse_rating(value, 10.0).map_err(|m| format!("calibre:rating: {m}"))?;
            }
            "calibre:timestamp" => rec.added_at = parse_datetime(value),
            "belongs-to-collection" => {
                let id = e.attr("id");
                let kind = refined(id, "collection-type");
                if kind.as_deref().is_none_or(|k| k == "series") {
                    rec.series.push(SeriesEntry {
                        name: collapse_spaces(value),
                        position: refined(id, "group-position")
                            .as_deref()
                            .and_then(series_position),
                    });
                }
            }
            _ => {}
        }
    }
    if let Some(name) = series_name
        && !rec.series.iter().any(|s| s.name == name)
    {
        rec.series.insert(
            0,
            SeriesEntry {
                name,
                position: series_index,
            },
        );
    }
    people.fill_into(&mut rec);
    rec.external_id = uuid.or(calibre_id);
    if let Some(id) = &rec.external_id {
        rec.identifiers
            .insert(0, Identifier::new(IdScheme::Calibre, id));
    }
    if rec.title.is_empty() && rec.identifiers.is_empty() {
        return Err("the OPF has neither a dc:title nor an identifier".into());
    }
    rec.edition = edition_if_any(edition);
    rec.formats.push(Format::Ebook);
    rec.raw = Value::Array(elements.iter().map(element_json).collect()).into();
    Ok(rec)
}

/// A creator or contributor under its MARC relator role (`aut`, `trl`, `nrt`, `edt`…).
fn add_creator(people: &mut People, e: &OpfElement, role: Option<&str>) {
    let text = e.text.trim();
    match role {
        // `bkp` is the book producer: calibre itself, never a person to credit.
        Some("bkp") => {}
        Some(r) => people.add(text, Role::from_word(r)),
        None if e.local_name() == "creator" => people.add(text, Role::Author),
        None => people.add(text, Role::Other),
    }
}

/// The scheme and value of a `dc:identifier`: `opf:scheme="ISBN"` (OPF 2) or a
/// `scheme:value` text (`isbn:978…`, `urn:isbn:978…`, `GOODREADS:71348`; OPF 3).
fn opf_identifier(e: &OpfElement) -> (&str, &str) {
    let text = e.text.trim();
    if let Some(s) = e.attr("scheme") {
        return (s, text);
    }
    let t = text.strip_prefix("urn:").unwrap_or(text);
    t.split_once(':').unwrap_or(("", t))
}

fn element_json(e: &OpfElement) -> Value {
    let mut m = Map::new();
    m.insert("element".into(), Value::String(e.name.clone()));
    if !e.attrs.is_empty() {
        let attrs: Map<String, Value> = e
            .attrs
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        m.insert("attributes".into(), Value::Object(attrs));
    }
    if !e.text.trim().is_empty() {
        m.insert("text".into(), Value::String(e.text.trim().to_string()));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_author_lists() {
        assert_eq!(
            csv_authors(Some("Seanan McGuire"), Some("McGuire, Seanan")),
            ["Seanan McGuire"]
        );
        assert_eq!(
            csv_authors(Some("A B, C D"), Some("B, A & D, C")),
            ["A B", "C D"]
        );
        assert_eq!(
            csv_authors(Some("Alexandre Dumas, père"), Some("Dumas, Alexandre")),
            ["Alexandre Dumas, père"]
        );
    }

    #[test]
    fn opf2_library_metadata() {
        let xml = r#"<?xml version="1.0"?>
<package xmlns="http://www.idpf.org/2007/opf" version="2.0">
<metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">
<dc:title>That Ain't Witchcraft</dc:title>
<dc:creator opf:file-as="McGuire, Seanan" opf:role="aut">Seanan McGuire</dc:creator>
<dc:creator opf:role="trl">Ken Liu</dc:creator>
<dc:identifier opf:scheme="calibre" id="calibre_id">864</dc:identifier>
<dc:identifier opf:scheme="uuid" id="uuid_id">3051ed45</dc:identifier>
<dc:identifier opf:scheme="ISBN">9780756411800</dc:identifier>
<dc:description>&lt;p&gt;Blurb&lt;/p&gt;</dc:description>
<meta name="calibre:series" content="InCryptid"/>
<meta name="calibre:series_index" content="8.0"/>
<meta name="calibre:rating" content="10"/>
<meta name="calibre:timestamp" content="2021-01-19T21:41:16.960000+00:00"/>
</metadata></package>"#;
        let rec = map_opf(&opf_xml(xml).unwrap()).unwrap();
        assert_eq!(rec.title, "That Ain't Witchcraft");
        assert_eq!(rec.authors, ["Seanan McGuire"]);
        assert_eq!(rec.translators, ["Ken Liu"]);
        assert_eq!(rec.external_id.as_deref(), Some("3051ed45"));
        assert_eq!(rec.series[0].name, "InCryptid");
        assert_eq!(rec.series[0].position.as_deref(), Some("8"));
        assert_eq!(rec.rating.map(|r| r.0), Some(500));
        assert!(rec.review.is_none());
        assert!(rec.added_at.is_some());
        assert!(
            rec.identifiers
                .contains(&Identifier::new(IdScheme::Isbn13, "9780756411800"))
        );
    }

    #[test]
    fn not_opf() {
        assert!(opf_xml("<html><body/></html>").is_err());
        assert!(opf_xml("<package><metadata><dc:title>x</metadata>").is_err());
    }
}
