//! `SourceRecord`: one book as one source (an export row, an API item) describes it,
//! already mapped to bookbridge's vocabulary but not yet merged.

use super::identifiers::Identifier;
use super::raw::{ColumnsCache, Raw};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The formats a user can own a work in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Print,
    Ebook,
    Audiobook,
}

/// Where the user is with a work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReadingStatus {
    ToRead,
    Reading,
    Read,
    DidNotFinish,
    Paused,
}

impl ReadingStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReadingStatus::ToRead => "to-read",
            ReadingStatus::Reading => "reading",
            ReadingStatus::Read => "read",
            ReadingStatus::DidNotFinish => "did-not-finish",
            ReadingStatus::Paused => "paused",
        }
    }
}

/// A calendar date known to a year, a month or a day. Unknown parts are left out of its
/// JSON (the library view puts them back as `null`: [`super::stored::expand_stored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartialDate {
    pub year: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub month: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<u32>,
}

impl PartialDate {
    pub fn from_date(d: NaiveDate) -> Self {
        Self {
            year: d.year(),
            month: Some(d.month()),
            day: Some(d.day()),
        }
    }

    /// ISO 8601 at the known precision: `2021`, `2021-03` or `2021-03-04`.
    pub fn to_iso(&self) -> String {
        match (self.month, self.day) {
            (Some(m), Some(d)) => format!("{:04}-{m:02}-{d:02}", self.year),
            (Some(m), None) => format!("{:04}-{m:02}", self.year),
            _ => format!("{:04}", self.year),
        }
    }
}

/// A series a work belongs to. Position is kept as text: `1`, `1.5`, `0.5`, `1-3` all occur.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeriesEntry {
    pub name: String,
    pub position: Option<String>,
}

/// The user's own rating, in hundredths of a star (0.5 stars = 50, 3.75 stars = 375).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Rating(pub u16);

impl Rating {
    /// From a star value on a 0–5 scale; `None` for 0 (no rating) or out of range.
    pub fn from_stars(stars: f64) -> Option<Self> {
        if !(stars > 0.0 && stars <= 5.0) {
            return None;
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked above
        Some(Self((stars * 100.0).round() as u16))
    }

    pub fn stars(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    /// Plain text (any HTML from the source already turned into safe text).
    pub text: String,
    pub at: Option<DateTime<Utc>>,
}

/// One read-through (or listen-through).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReadThrough {
    pub started: Option<PartialDate>,
    pub finished: Option<PartialDate>,
}

/// Where in the work the user is, in the unit the source uses.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "unit", content = "value", rename_all = "lowercase")]
pub enum Position {
    Pages(u32),
    Percent(f64),
    Seconds(u64),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    /// 0.0 ..= 1.0
    pub fraction: f64,
    pub position: Option<Position>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HighlightKind {
    Highlight,
    Note,
}

/// A highlight, or a note standing on its own. A note attached to a highlight lives in its
/// `note` field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Highlight {
    pub text: String,
    pub note: Option<String>,
    /// As the source gives it: `Location 120-123`, `page 7`, a Kobo bookmark path, …
    pub location: Option<String>,
    /// A sortable start position where one can be derived (Kindle location start, …).
    pub location_start: Option<u64>,
    pub location_end: Option<u64>,
    pub at: Option<DateTime<Utc>>,
    pub kind: HighlightKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cover {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Facts about the edition this source saw; unknown facts are left out of its JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edition {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publisher: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<PartialDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// `Paperback`, `Kindle Edition`, `Audible Audio`, … as the source says it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding: Option<String>,
    /// Audio runtime in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime_secs: Option<u64>,
}

/// One book as one source describes it. Its JSON leaves out fields without a value (a
/// store keeps one record per source and version: at 100,000 rows the empty fields were
/// over a quarter of a record); they read back as `None` or empty.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SourceRecord {
    /// The source's own id for this record (Goodreads `Book Id`, ASIN, `LibraryThing` `books_id`…),
    /// or `None` when the format has none (Kindle clippings: title + author only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// The title exactly as the source gave it.
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub narrators: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub translators: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<Format>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edition: Option<Edition>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ReadingStatus>,
    /// When the source says the status was last set (falls back to `added_at` in merging).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_at: Option<DateTime<Utc>>,
    /// Shelves and tags, as named by the user (exclusive status shelves excluded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shelves: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review: Option<Review>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<ReadThrough>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Progress>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub highlights: Vec<Highlight>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<Cover>,
    /// When the user added the work at this source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_at: Option<DateTime<Utc>>,
    /// The record as received (a CSV row, an API item verbatim). Stored apart from the
    /// mapped fields (see [`SourceRecord::encode`]).
    #[serde(default, skip_serializing_if = "Raw::is_none")]
    pub raw: Raw,
}

impl SourceRecord {
    /// The record as the store keeps it: the mapped fields as JSON, and the raw record as
    /// received as JSON, apart. A flat row (a [`Raw::Row`], or a JSON object whose values
    /// are all strings) is kept as its values, its column names apart: the store keeps
    /// those once for every row that shares them (a 31-column Goodreads row repeated its
    /// header in each version, more than half of its bytes). The raw value is moved out
    /// while the mapped fields are written and put back after, so neither part is copied.
    pub fn encode(&mut self) -> serde_json::Result<EncodedRecord> {
        let raw = std::mem::take(&mut self.raw);
        let mapped = serde_json::to_string(self);
        self.raw = raw;
        let (raw, columns) = match &self.raw {
            Raw::Row(row) if row.is_complete() => {
                (row.values_json()?, Some(Arc::clone(row.columns().json())))
            }
            Raw::Json(serde_json::Value::Object(row))
                if !row.is_empty() && row.values().all(serde_json::Value::is_string) =>
            {
                let values: Vec<&serde_json::Value> = row.values().collect();
                let names: Vec<&String> = row.keys().collect();
                (
                    serde_json::to_string(&values)?,
                    Some(serde_json::to_string(&names)?.into()),
                )
            }
            other => (serde_json::to_string(other)?, None),
        };
        Ok(EncodedRecord {
            mapped: mapped?,
            raw,
            columns,
        })
    }

    /// The inverse of [`SourceRecord::encode`]: `columns` are the flat row's column names
    /// when the raw record was split, read back as a [`Raw::Row`].
    pub fn decode(mapped: &str, raw: &str, columns: Option<&str>) -> serde_json::Result<Self> {
        Self::decode_with(mapped, raw, columns, &mut ColumnsCache::default())
    }

    /// [`SourceRecord::decode`] for many records: rows whose columns `cache` has seen
    /// share them.
    pub fn decode_with(
        mapped: &str,
        raw: &str,
        columns: Option<&str>,
        cache: &mut ColumnsCache,
    ) -> serde_json::Result<Self> {
        let mut record: SourceRecord = serde_json::from_str(mapped)?;
        record.raw = match columns {
            None => serde_json::from_str(raw)?,
            Some(columns) => Raw::from_row_parts(raw, columns, cache)?,
        };
        Ok(record)
    }
}

/// A [`SourceRecord`] as JSON text, its mapped fields and its raw record apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncodedRecord {
    pub mapped: String,
    /// The raw record's JSON; with `columns`, the JSON array of a flat row's values.
    pub raw: String,
    /// A flat row's column names, a JSON array in the order of `raw`'s values (shared by
    /// the rows of one file).
    pub columns: Option<Arc<str>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::raw::{RawColumns, RawRow};

    #[test]
    fn rating_keeps_fractions_and_drops_zero() {
        assert_eq!(Rating::from_stars(3.75), Some(Rating(375)));
        assert_eq!(Rating::from_stars(0.0), None);
        assert_eq!(Rating::from_stars(5.5), None);
        assert!((Rating(450).stars() - 4.5).abs() < f64::EPSILON);
    }

    #[test]
    fn encoding_keeps_the_raw_record_apart_and_decodes_to_the_same_record() {
        let mut r = SourceRecord {
            title: "Dune".into(),
            authors: vec!["Frank Herbert".into()],
            rating: Some(Rating(450)),
            raw: serde_json::json!({"Title": "Dune", "My Rating": "4.5"}).into(),
            ..SourceRecord::default()
        };
        let before = r.clone();
        let e = r.encode().unwrap();
        assert_eq!(r, before, "encoding gives the raw record back");
        assert!(!e.mapped.contains("My Rating"), "{}", e.mapped);
        // A flat row: its values, and its column names apart (the store keeps those once).
        assert_eq!(e.raw, r#"["4.5","Dune"]"#);
        assert_eq!(e.columns.as_deref(), Some(r#"["My Rating","Title"]"#));
        assert_eq!(
            SourceRecord::decode(&e.mapped, &e.raw, e.columns.as_deref()).unwrap(),
            before
        );
        // Records stored before the raw part was left out of the mapped JSON still read.
        let old = serde_json::to_string(&SourceRecord {
            raw: Raw::None,
            ..before.clone()
        })
        .unwrap()
        .replace("\"title\"", "\"raw\":null,\"title\"");
        assert!(old.contains("\"raw\":null"));
        assert_eq!(
            SourceRecord::decode(&old, &e.raw, e.columns.as_deref()).unwrap(),
            before
        );
        // Raw rows stored whole (before columns were kept apart) read back the same.
        let whole = r#"{"My Rating":"4.5","Title":"Dune"}"#;
        assert_eq!(
            SourceRecord::decode(&e.mapped, whole, None).unwrap(),
            before
        );
    }

    /// A file's row is stored as its values, its columns in file order apart, and reads
    /// back equal: as a row, and as the object it stands for.
    #[test]
    fn a_files_row_is_stored_as_its_values_and_reads_back_equal() {
        let columns = RawColumns::new(vec!["Title".into(), "My Rating".into()]);
        let mut row = RawRow::with_capacity(columns, 16);
        row.push("Dune");
        row.push("4.5");
        let mut r = SourceRecord {
            title: "Dune".into(),
            raw: Raw::Row(row),
            ..SourceRecord::default()
        };
        let e = r.encode().unwrap();
        assert_eq!(e.raw, r#"["Dune","4.5"]"#);
        assert_eq!(e.columns.as_deref(), Some(r#"["Title","My Rating"]"#));
        let back = SourceRecord::decode(&e.mapped, &e.raw, e.columns.as_deref()).unwrap();
        assert_eq!(back, r);
        assert!(matches!(back.raw, Raw::Row(_)), "{:?}", back.raw);
        let as_object = SourceRecord {
            raw: serde_json::json!({"My Rating": "4.5", "Title": "Dune"}).into(),
            ..r.clone()
        };
        assert_eq!(back, as_object);
        // A short row (fewer fields than columns) is kept whole.
        let mut short = RawRow::with_capacity(RawColumns::new(vec!["A".into(), "B".into()]), 4);
        short.push("a");
        r.raw = Raw::Row(short);
        let e = r.encode().unwrap();
        assert_eq!((e.raw.as_str(), e.columns), (r#"{"A":"a"}"#, None));
    }

    /// Only a flat row is split: an API item with nested values, a number or an empty object
    /// is kept whole, and a row whose values do not fit its columns is an error, not a
    /// shorter record.
    #[test]
    fn only_flat_rows_are_split_and_a_mismatched_row_is_refused() {
        for raw in [
            serde_json::json!({"asin": "B002V0QK4C", "authors": [{"name": "Frank Herbert"}]}),
            serde_json::json!({"Title": "Dune", "n": 1}),
            serde_json::json!({}),
            serde_json::json!(["Dune"]),
        ] {
            let mut r = SourceRecord {
                title: "Dune".into(),
                raw: raw.clone().into(),
                ..SourceRecord::default()
            };
            let e = r.encode().unwrap();
            assert_eq!(e.columns, None, "{raw}");
            assert_eq!(e.raw, raw.to_string());
            assert_eq!(
                SourceRecord::decode(&e.mapped, &e.raw, None)
                    .unwrap()
                    .raw
                    .to_value(),
                raw
            );
        }
        let mapped = r#"{"title":"Dune"}"#;
        let err =
            SourceRecord::decode(mapped, r#"["Dune"]"#, Some(r#"["Title","Author"]"#)).unwrap_err();
        assert!(err.to_string().contains("1 values for 2 columns"), "{err}");
    }

    /// Fields without a value are left out of the stored JSON, and records stored with every
    /// field written out (before the compact form) read back the same.
    #[test]
    fn empty_fields_are_left_out_and_full_records_still_read() {
        let mut r = SourceRecord {
            title: "Dune".into(),
            edition: Some(Edition {
                published: Some(PartialDate {
                    year: 1965,
                    month: None,
                    day: None,
                }),
                ..Edition::default()
            }),
            ..SourceRecord::default()
        };
        let e = r.encode().unwrap();
        assert_eq!(
            e.mapped,
            r#"{"title":"Dune","edition":{"published":{"year":1965}}}"#
        );
        assert_eq!(SourceRecord::decode(&e.mapped, "null", None).unwrap(), r);
        let full = r#"{"external_id":null,"title":"Dune","subtitle":null,"authors":[],
            "narrators":[],"translators":[],"series":[],"identifiers":[],"formats":[],
            "edition":{"publisher":null,"published":{"year":1965,"month":null,"day":null},
            "pages":null,"language":null,"binding":null,"runtime_secs":null},"status":null,
            "status_at":null,"shelves":[],"rating":null,"review":null,"reads":[],
            "progress":null,"highlights":[],"covers":[],"added_at":null}"#;
        assert_eq!(SourceRecord::decode(full, "null", None).unwrap(), r);
        // A record still needs its title.
        assert!(SourceRecord::decode(r#"{"authors":["Frank Herbert"]}"#, "null", None).is_err());
    }

    #[test]
    fn partial_dates_print_at_their_precision() {
        let d = PartialDate {
            year: 2021,
            month: Some(3),
            day: None,
        };
        assert_eq!(d.to_iso(), "2021-03");
        assert_eq!(
            PartialDate {
                year: 1999,
                month: None,
                day: None
            }
            .to_iso(),
            "1999"
        );
    }
}
