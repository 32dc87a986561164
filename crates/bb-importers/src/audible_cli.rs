//! audible-cli `audible library export` in its three forms: JSON (a list of flat objects,
//! null fields left out), CSV (`excel` dialect) and TSV (`excel-tab`, the default). All
//! three carry the same columns, so rows of each become one JSON object and share a mapping.

use crate::audible_api::{Fields, asin_identifiers, cover_from_url, edition, status_from};
use crate::audible_api::{kind_of, progress_from};
use crate::csv_table::CsvTable;
use crate::json_stream::JsonEntries;
use crate::text::{self, People, Role};
use crate::{ImportError, RowError, Rows};
use bb_core::library::{Format, SeriesEntry, SourceRecord};
use serde_json::Value;
use std::io::Read;

const ASIN: &[&str] = &["asin"];
const TITLE: &[&str] = &["title"];

/// `library.json`: streamed one element at a time.
pub(crate) fn parse_json(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let entries = JsonEntries::open(reader)?;
    if entries.top_level() != crate::json_stream::TopLevel::Array {
        return Err(ImportError::Unrecognised(
            "an audible-cli JSON export is a list of books, and this file is an object".into(),
        ));
    }
    Ok(Box::new(entries.map(|entry| {
        let entry = entry?;
        map_row(&entry.value).map_err(|m| RowError::new(entry.index, m))
    })))
}

/// `library.csv` / `library.tsv`: the delimiter is sniffed, so either works for both.
pub(crate) fn parse_table(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let mut table = CsvTable::open(reader)?;
    // Fail loudly on a file that is not an audible-cli export rather than import nothing.
    table.require("asin", ASIN)?;
    table.require("title", TITLE)?;
    Ok(Box::new(std::iter::from_fn(move || {
        let row = match table.next_row()? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        let raw = row.to_value();
        Some(map_row(&raw).map_err(|m| row.error(m)))
    })))
}

/// Maps one export row (a JSON object, or a CSV row as header → text).
///
/// `rating` and `num_ratings` are the **community** rating: audible-cli exports no rating
/// of the user's, so `rating` stays `None`.
pub fn map_row(v: &Value) -> Result<SourceRecord, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("the entry is {} rather than an object", kind_of(v)))?;
    let f = Fields(obj);
    let asin = f.str(ASIN).ok_or("the \"asin\" field is empty")?;
    let title = f
        .str(TITLE)
        .ok_or_else(|| format!("book {asin} has an empty \"title\""))?;

    // audible-cli joins names with ", " and keeps Audible's role suffixes
    // (`Bibek Debroy - translator`).
    let mut people = People::default();
    for name in f
        .str(&["authors"])
        .map(|s| text::split_list(s, ","))
        .unwrap_or_default()
    {
        people.add_with_suffix(&name, Role::Author);
    }
    for name in f
        .str(&["narrators"])
        .map(|s| text::split_list(s, ","))
        .unwrap_or_default()
    {
        people.add_with_suffix(&name, Role::Narrator);
    }

    // Only the first series is exported; its sequence may be a range (`1-6`) or empty.
    let series = f
        .str(&["series_title"])
        .map(|name| SeriesEntry {
            name: name.to_string(),
            position: f
                .text(&["series_sequence"])
                .and_then(|p| text::series_position(&p)),
        })
        .into_iter()
        .collect();

    let percent = f.number(&["percent_complete"]);
    let finished = f.boolean(&["is_finished"]);
    let published = f.str(&["release_date"]).and_then(text::parse_partial_date);

    Ok(SourceRecord {
        external_id: Some(asin.to_string()),
        title: title.to_string(),
        subtitle: f.str(&["subtitle"]).map(str::to_string),
        authors: people.authors,
        narrators: people.narrators,
        translators: people.translators,
        series,
        identifiers: asin_identifiers(asin),
        formats: vec![Format::Audiobook],
        edition: edition(None, published, None, f.number(&["runtime_length_min"])),
        status: status_from(finished, percent),
        progress: progress_from(percent),
        covers: f
            .str(&["cover_url"])
            .and_then(cover_from_url)
            .into_iter()
            .collect(),
        added_at: f
            .datetime(&["date_added"])
            .or_else(|| f.datetime(&["purchase_date"])),
        raw: v.clone().into(),
        ..SourceRecord::default()
    })
}
