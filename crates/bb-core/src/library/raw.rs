//! `Raw`: a record as its source gave it, kept beside the mapped fields so mappings can be
//! re-run when they improve.
//!
//! Most records are rows of an export file. A row is kept as its fields' text in one buffer
//! with the column names shared by every row of the file ([`RawRow`]), not as a JSON object
//! of owned names and values: a 31-column Goodreads row was about a hundred allocations as
//! a `serde_json` map, built on the reader thread, freed on another, and split into names
//! and values again to be stored. A row reads, compares and serialises as the header→value
//! object it stands for.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::sync::Arc;

/// A record as received.
#[derive(Debug, Clone, Default)]
pub enum Raw {
    /// Nothing was kept (records built by hand, or stored as `null`).
    #[default]
    None,
    /// A JSON document: an API item, a JSON export's object, a parsed file element.
    Json(Value),
    /// A row of a delimited file.
    Row(RawRow),
}

/// The column names the rows of one file share: the header's names, or `column N` for a
/// field past the header.
#[derive(Debug, PartialEq, Eq)]
pub struct RawColumns {
    names: Vec<String>,
    /// Whether each field is part of the record: of two columns with one name, only the
    /// first is (a JSON object has one value per name).
    keep: Vec<bool>,
    /// The kept names as a JSON array: what a store keeps once for all the rows.
    json: Arc<str>,
}

impl RawColumns {
    pub fn new(names: Vec<String>) -> Arc<Self> {
        let keep: Vec<bool> = names
            .iter()
            .enumerate()
            .map(|(i, n)| !names[..i].contains(n))
            .collect();
        let kept: Vec<&String> = names
            .iter()
            .zip(&keep)
            .filter(|(_, k)| **k)
            .map(|(n, _)| n)
            .collect();
        // A list of strings always serialises.
        let json = serde_json::to_string(&kept).unwrap_or_default();
        Arc::new(Self {
            names,
            keep,
            json: json.into(),
        })
    }

    /// How many fields a row of these columns has.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The name of field `i`.
    pub fn name(&self, i: usize) -> Option<&str> {
        self.names.get(i).map(String::as_str)
    }

    /// The kept names as a JSON array.
    pub fn json(&self) -> &Arc<str> {
        &self.json
    }
}

/// One row: its fields' text one after another, and the columns they belong to.
#[derive(Debug, Clone)]
pub struct RawRow {
    columns: Arc<RawColumns>,
    text: String,
    /// Where each field ends in `text`.
    ends: Vec<usize>,
}

impl RawRow {
    /// An empty row of `columns`, with room for `bytes` of text.
    pub fn with_capacity(columns: Arc<RawColumns>, bytes: usize) -> Self {
        let fields = columns.len();
        Self {
            columns,
            text: String::with_capacity(bytes),
            ends: Vec::with_capacity(fields),
        }
    }

    /// Appends the next field. A row holds at most as many fields as it has columns; the
    /// caller picks columns for the number of fields it has.
    pub fn push(&mut self, field: &str) {
        debug_assert!(self.ends.len() < self.columns.len());
        self.text.push_str(field);
        self.ends.push(self.text.len());
    }

    /// The text of field `i`.
    pub fn get(&self, i: usize) -> Option<&str> {
        let end = *self.ends.get(i)?;
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        self.text.get(start..end)
    }

    pub fn columns(&self) -> &Arc<RawColumns> {
        &self.columns
    }

    /// The fields that are part of the record, with their names.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        (0..self.ends.len())
            .filter(|i| self.columns.keep.get(*i).copied().unwrap_or(false))
            .filter_map(|i| Some((self.columns.name(i)?, self.get(i)?)))
    }

    /// The kept fields' values as a JSON array, in the order of [`RawColumns::json`].
    pub fn values_json(&self) -> serde_json::Result<String> {
        let values: Vec<&str> = self.fields().map(|(_, v)| v).collect();
        serde_json::to_string(&values)
    }

    /// Whether every column has a field (a short row has fewer).
    pub fn is_complete(&self) -> bool {
        self.ends.len() == self.columns.len()
    }

    /// The header→value object the row stands for.
    pub fn to_value(&self) -> Value {
        Value::Object(
            self.fields()
                .map(|(n, v)| (n.to_owned(), Value::String(v.to_owned())))
                .collect(),
        )
    }
}

impl Raw {
    pub fn is_none(&self) -> bool {
        matches!(self, Raw::None)
    }

    /// The record as a JSON value (a row as its header→value object).
    pub fn to_value(&self) -> Value {
        match self {
            Raw::None => Value::Null,
            Raw::Json(v) => v.clone(),
            Raw::Row(r) => r.to_value(),
        }
    }

    /// A row stored as its values (a JSON array of strings) and its column names (a JSON
    /// array of as many names), as [`Raw::Row`]. `cache` keeps the columns already read,
    /// so the rows of one file share them again.
    pub fn from_row_parts(
        values: &str,
        columns: &str,
        cache: &mut ColumnsCache,
    ) -> serde_json::Result<Raw> {
        let columns = cache.get(columns)?;
        let values: Vec<String> = serde_json::from_str(values)?;
        if values.len() != columns.len() {
            return Err(serde::de::Error::custom(format!(
                "a raw row has {} values for {} columns",
                values.len(),
                columns.len()
            )));
        }
        let mut row = RawRow::with_capacity(columns, values.iter().map(String::len).sum());
        for v in &values {
            row.push(v);
        }
        Ok(Raw::Row(row))
    }
}

/// Column lists already read from a store, by their JSON: most reads meet one or two.
#[derive(Debug, Default)]
pub struct ColumnsCache {
    seen: Vec<Arc<RawColumns>>,
}

impl ColumnsCache {
    const MAX: usize = 16;

    fn get(&mut self, json: &str) -> serde_json::Result<Arc<RawColumns>> {
        if let Some(c) = self.seen.iter().find(|c| &*c.json == json) {
            return Ok(Arc::clone(c));
        }
        let names: Vec<String> = serde_json::from_str(json)?;
        let columns = RawColumns::new(names);
        if columns.keep.iter().any(|k| !k) {
            // The names of one record are unique; a list that repeats one was not ours.
            return Err(serde::de::Error::custom("raw columns repeat a name"));
        }
        if self.seen.len() == Self::MAX {
            self.seen.remove(0);
        }
        self.seen.push(Arc::clone(&columns));
        Ok(columns)
    }
}

impl From<Value> for Raw {
    fn from(v: Value) -> Self {
        match v {
            Value::Null => Raw::None,
            v => Raw::Json(v),
        }
    }
}

/// Two raw records are equal when they stand for the same JSON: rows of one file compare
/// field by field; a row and a JSON object (a row stored before rows were kept as rows, or
/// read back from an export) compare as objects.
impl PartialEq for Raw {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Raw::None, Raw::None) => true,
            (Raw::Json(a), Raw::Json(b)) => a == b,
            (Raw::Row(a), Raw::Row(b))
                if a.is_complete() && b.is_complete() && a.columns == b.columns =>
            {
                a.ends == b.ends && a.text == b.text
            }
            (a, b) => a.to_value() == b.to_value(),
        }
    }
}

impl Serialize for Raw {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Raw::None => s.serialize_unit(),
            Raw::Json(v) => v.serialize(s),
            Raw::Row(r) => s.collect_map(r.fields()),
        }
    }
}

impl<'de> Deserialize<'de> for Raw {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Value::deserialize(d).map(Raw::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(names: &[&str], fields: &[&str]) -> RawRow {
        let columns = RawColumns::new(names.iter().map(|n| (*n).to_owned()).collect());
        let mut r = RawRow::with_capacity(columns, 64);
        for f in fields {
            r.push(f);
        }
        r
    }

    #[test]
    fn a_row_reads_as_its_header_to_value_object() {
        let r = row(
            &["Title", "Author", "Title", "column 4"],
            &["Dune", "", "x", "extra"],
        );
        assert_eq!(r.get(0), Some("Dune"));
        assert_eq!(r.get(1), Some(""));
        assert_eq!(r.get(3), Some("extra"));
        assert_eq!(r.get(4), None);
        // The second "Title" is not part of the record, as a JSON object keeps one.
        let expected = json!({"Title": "Dune", "Author": "", "column 4": "extra"});
        assert_eq!(r.to_value(), expected);
        assert_eq!(serde_json::to_value(Raw::Row(r.clone())).unwrap(), expected);
        assert_eq!(r.values_json().unwrap(), r#"["Dune","","extra"]"#);
        assert_eq!(&**r.columns().json(), r#"["Title","Author","column 4"]"#);
    }

    #[test]
    fn rows_compare_as_the_objects_they_stand_for() {
        let dune = Raw::Row(row(&["Title", "Author"], &["Dune", "Frank Herbert"]));
        let same = Raw::Row(row(&["Title", "Author"], &["Dune", "Frank Herbert"]));
        let changed = Raw::Row(row(&["Title", "Author"], &["Dune", "F. Herbert"]));
        // The same fields under columns in another order (a row stored earlier).
        let reordered = Raw::Row(row(&["Author", "Title"], &["Frank Herbert", "Dune"]));
        // Field boundaries count, not just the text.
        let shifted = Raw::Row(row(&["Title", "Author"], &["DuneF", "rank Herbert"]));
        assert_eq!(dune, same);
        assert_ne!(dune, changed);
        assert_eq!(dune, reordered);
        assert_ne!(dune, shifted);
        assert_eq!(
            dune,
            Raw::from(json!({"Title": "Dune", "Author": "Frank Herbert"}))
        );
        assert_ne!(dune, Raw::None);
        assert_eq!(Raw::from(Value::Null), Raw::None);
    }

    #[test]
    fn a_stored_row_reads_back_with_shared_columns() {
        let r = row(&["Title", "Author"], &["Dune", "Frank \"Herbert\""]);
        let columns = r.columns().json().to_string();
        let mut cache = ColumnsCache::default();
        let a = Raw::from_row_parts(&r.values_json().unwrap(), &columns, &mut cache).unwrap();
        let b = Raw::from_row_parts(r#"["Emma","Jane Austen"]"#, &columns, &mut cache).unwrap();
        assert_eq!(a, Raw::Row(r));
        match (&a, &b) {
            (Raw::Row(a), Raw::Row(b)) => assert!(Arc::ptr_eq(a.columns(), b.columns())),
            _ => panic!("not rows: {a:?} {b:?}"),
        }
        let err = Raw::from_row_parts(r#"["Dune"]"#, &columns, &mut cache).unwrap_err();
        assert!(err.to_string().contains("1 values for 2 columns"), "{err}");
        assert!(Raw::from_row_parts(r#"["a","b"]"#, r#"["x","x"]"#, &mut cache).is_err());
    }
}
