//! Test support for the importer tests: fixture paths, running an import to completion and
//! record JSON without the raw row for snapshots.
#![allow(dead_code)] // each test binary uses a different subset

use bb_core::library::SourceRecord;
use bb_importers::{ImportFormat, RowError, detect, parse_reader};
use std::path::PathBuf;

/// A real export under `shared/fixtures/real/`, which CI places beside the repository.
pub fn fixture(rel: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/real")
        .join(rel);
    std::fs::read(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Every record and every row error of an import.
pub fn import(format: ImportFormat, bytes: &[u8]) -> (Vec<SourceRecord>, Vec<RowError>) {
    let rows = parse_reader(format, Box::new(std::io::Cursor::new(bytes.to_vec())))
        .unwrap_or_else(|e| panic!("{format}: {e}"));
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for row in rows {
        match row {
            Ok(r) => ok.push(r),
            Err(e) => failed.push(e),
        }
    }
    (ok, failed)
}

/// Detects a real fixture by content, checks the format, and imports it with zero failures.
pub fn import_fixture(rel: &str, expected: ImportFormat) -> Vec<SourceRecord> {
    let bytes = fixture(rel);
    assert_eq!(detect(&bytes), Some(expected), "detecting {rel}");
    let (records, failed) = import(expected, &bytes);
    assert!(failed.is_empty(), "{rel}: failed rows {failed:?}");
    assert!(!records.is_empty(), "{rel}: no records");
    records
}

/// Records as JSON without `raw`, for snapshots of the mapped fields.
pub fn mapped(records: &[SourceRecord]) -> serde_json::Value {
    serde_json::Value::Array(
        records
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).expect("records serialise");
                if let Some(o) = v.as_object_mut() {
                    o.remove("raw");
                }
                v
            })
            .collect(),
    )
}

pub fn ids(r: &SourceRecord) -> Vec<(String, String)> {
    r.identifiers
        .iter()
        .map(|i| (i.scheme.as_str().to_string(), i.value.clone()))
        .collect()
}
