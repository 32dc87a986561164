//! Libation: en-US CSV with the current header, a German `;` CSV with the pre-2026 header,
//! localised dates, decimal commas and booleans, and the JSON export.

// Helpers outside `#[test]` fns unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bb_core::library::{IdScheme, Identifier, Rating, ReadingStatus, SourceRecord};
use bb_importers::{ImportFormat, RowResult, detect, parse_reader};
use proptest::prelude::*;
use serde_json::{Value, json};

const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{DATA}{name}")).unwrap()
}

fn parse(format: ImportFormat, bytes: Vec<u8>) -> Vec<RowResult> {
    parse_reader(format, Box::new(std::io::Cursor::new(bytes)))
        .unwrap()
        .collect()
}

fn ok(rows: &[RowResult]) -> Vec<&SourceRecord> {
    rows.iter().filter_map(|r| r.as_ref().ok()).collect()
}

fn snapshot_json(rows: &[RowResult]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| match r {
                Ok(rec) => {
                    let mut v = serde_json::to_value(rec).unwrap();
                    v.as_object_mut().unwrap().remove("raw");
                    v
                }
                Err(e) => json!({"row": e.row, "error": e.message}),
            })
            .collect(),
    )
}

#[test]
fn every_variant_is_detected() {
    for (file, format) in [
        ("libation_en-US.csv", ImportFormat::LibationCsv),
        ("libation_de-DE_old_header.csv", ImportFormat::LibationCsv),
        ("libation.json", ImportFormat::LibationJson),
    ] {
        assert_eq!(detect(&data(file)), Some(format), "{file}");
    }
}

#[test]
fn en_us_current_header() {
    let rows = parse(ImportFormat::LibationCsv, data("libation_en-US.csv"));
    assert_eq!(rows.len(), 2);
    let books = ok(&rows);
    assert_eq!(books.len(), 2);
    let harbor = books[0];
    assert_eq!(
        harbor.identifiers,
        [Identifier::new(IdScheme::Asin, "B0SYNTH101")]
    );
    assert_eq!(harbor.authors, ["Mara Quinn"]);
    assert_eq!(harbor.translators, ["Ken Example"]);
    assert_eq!(harbor.rating, Rating::from_stars(4.0), "My Rating: Overall");
    assert_eq!(harbor.status, Some(ReadingStatus::Read));
    assert_eq!(harbor.shelves, ["favourite", "reread"]);
    let series: Vec<_> = harbor
        .series
        .iter()
        .map(|s| (s.name.as_str(), s.position.as_deref()))
        .collect();
    assert_eq!(series, [("Lights", Some("2")), ("Harbors", Some("0.5"))]);
    assert_eq!(
        harbor.added_at.map(|d| d.to_rfc3339()).as_deref(),
        Some("2021-01-25T14:03:00+00:00")
    );
    assert_eq!(
        harbor
            .edition
            .as_ref()
            .and_then(|e| e.published)
            .map(|d| d.to_iso())
            .as_deref(),
        Some("2020-03-04"),
        "month first in en-US"
    );
    assert_eq!(
        harbor.covers[0].url,
        "https://m.media-amazon.com/images/I/91Synth101.jpg"
    );

    // Community ratings of 4.9/5/4.8 and an empty My Rating: the user has not rated it.
    let only_community = books[1];
    assert_eq!(only_community.rating, None);
    assert_eq!(only_community.status, Some(ReadingStatus::ToRead));
    insta::assert_json_snapshot!("libation_en_us", snapshot_json(&rows));
}

#[test]
fn german_semicolons_old_header_and_localised_values() {
    let rows = parse(
        ImportFormat::LibationCsv,
        data("libation_de-DE_old_header.csv"),
    );
    assert_eq!(rows.len(), 3);
    let books = ok(&rows);
    assert_eq!(books.len(), 2);

    let weg = books[0];
    assert_eq!(weg.title, "Der lange Weg (synthetisch)");
    assert_eq!(weg.rating, Rating::from_stars(4.5), "decimal comma");
    assert_eq!(weg.status, Some(ReadingStatus::Read), "IsFinished = Ja");
    assert_eq!(
        weg.added_at.map(|d| d.to_rfc3339()).as_deref(),
        Some("2021-01-25T14:03:00+00:00")
    );
    assert_eq!(
        weg.edition
            .as_ref()
            .and_then(|e| e.published)
            .map(|d| d.to_iso())
            .as_deref(),
        Some("2020-03-04"),
        "day first in de-DE"
    );
    assert_eq!(weg.series[0].position.as_deref(), Some("3"));

    let unrated = books[1];
    assert_eq!(
        unrated.rating, None,
        "0 is Libation's 'not rated'; community 4,2 ignored"
    );
    assert_eq!(
        unrated.status,
        Some(ReadingStatus::ToRead),
        "IsFinished = Nein"
    );

    let err = rows[2].as_ref().unwrap_err();
    assert!(err.message.contains("My Rating"), "{err}");
    assert!(err.message.contains("sieben"), "{err}");
    insta::assert_json_snapshot!("libation_de_de", snapshot_json(&rows));
}

#[test]
fn json_uses_property_names() {
    let rows = parse(ImportFormat::LibationJson, data("libation.json"));
    assert_eq!(rows.len(), 3);
    let books = ok(&rows);
    assert_eq!(
        books[0].rating, None,
        "MyRatingOverall 0.0 is unrated; community 4.4 ignored"
    );
    assert_eq!(books[0].narrators, ["Leo Park", "Bea Reader"]);
    assert_eq!(books[0].status, Some(ReadingStatus::ToRead));
    assert_eq!(books[1].rating, Rating::from_stars(5.0));
    assert_eq!(books[1].status, Some(ReadingStatus::Read));
    assert_eq!(books[1].shelves, ["keeper"]);
    let err = rows[2].as_ref().unwrap_err();
    assert_eq!(err.row, 3);
    insta::assert_json_snapshot!("libation_json", snapshot_json(&rows));
}

#[test]
fn a_file_without_the_asin_column_fails_loudly() {
    let r = parse_reader(
        ImportFormat::LibationCsv,
        Box::new(std::io::Cursor::new(b"Title;Authors\nX;Y\n".to_vec())),
    );
    assert!(r.is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        for format in [ImportFormat::LibationCsv, ImportFormat::LibationJson] {
            if let Ok(rows) = parse_reader(format, Box::new(std::io::Cursor::new(bytes.clone()))) {
                for _ in rows.take(10_000) {}
            }
        }
    }

    #[test]
    fn random_rows_never_panic(
        date in "[0-9./: APM-]{0,22}",
        rating in "[0-9,.a-z-]{0,5}",
        finished in "\\PC{0,6}",
        series in "[0-9a-z :,]{0,20}",
    ) {
        let csv = format!(
            "Audible Product Id;Title;Date Added to library;Date Published;My Rating: Overall;Is Finished?;Series Order\n\
             B0SYNTH999;T;{date};{date};{rating};{finished};{series}\n"
        );
        let rows: Vec<_> = parse_reader(
            ImportFormat::LibationCsv,
            Box::new(std::io::Cursor::new(csv.into_bytes())),
        )
        .unwrap()
        .collect();
        prop_assert!(rows.len() <= 2);
    }
}
