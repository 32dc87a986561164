//! Audible: the audible-cli export in TSV, CSV and JSON, and `1.0/library` API dumps (one
//! page, a list of pages, NDJSON pages), all from synthetic files in `tests/data/`.

// Helpers outside `#[test]` fns unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bb_core::library::{Format, IdScheme, Identifier, Rating, ReadingStatus, SourceRecord};
use bb_importers::audible_api::map_library_item;
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

// ---------------------------------------------------------------- audible-cli

#[test]
fn cli_formats_are_detected() {
    for (file, format) in [
        ("audible_cli_library.tsv", ImportFormat::AudibleCliTsv),
        ("audible_cli_library.csv", ImportFormat::AudibleCliCsv),
        ("audible_cli_library.json", ImportFormat::AudibleCliJson),
        ("audible_api_page.json", ImportFormat::AudibleApiJson),
        ("audible_api_pages.json", ImportFormat::AudibleApiJson),
        ("audible_api_pages.ndjson", ImportFormat::AudibleApiJson),
    ] {
        assert_eq!(detect(&data(file)), Some(format), "{file}");
    }
}

#[test]
fn cli_tsv_csv_and_json_agree() {
    let tsv = parse(ImportFormat::AudibleCliTsv, data("audible_cli_library.tsv"));
    let csv = parse(ImportFormat::AudibleCliCsv, data("audible_cli_library.csv"));
    let json = parse(
        ImportFormat::AudibleCliJson,
        data("audible_cli_library.json"),
    );
    // Same books, whatever the container (raw differs: text vs typed JSON).
    let strip = |rows: &[RowResult]| {
        let mut v = snapshot_json(rows);
        for r in v.as_array_mut().unwrap() {
            // Error rows differ in numbering: CSV counts file lines, JSON counts entries.
            let r = r.as_object_mut().unwrap();
            r.remove("error");
            r.remove("row");
        }
        v
    };
    assert_eq!(strip(&tsv), strip(&csv));
    assert_eq!(strip(&tsv), strip(&json));
    insta::assert_json_snapshot!("audible_cli_tsv", snapshot_json(&tsv));
}

#[test]
fn cli_fields_map_and_community_rating_is_ignored() {
    let rows = parse(ImportFormat::AudibleCliTsv, data("audible_cli_library.tsv"));
    assert_eq!(rows.len(), 4);
    let err = rows[3].as_ref().unwrap_err();
    assert_eq!(
        err.row, 5,
        "the header is line 1, so the fourth book is on line 5"
    );
    assert!(err.message.contains("asin"), "{err}");

    let books = ok(&rows);
    let voyage = books[0];
    assert_eq!(voyage.external_id.as_deref(), Some("B0SYNTH001"));
    assert_eq!(
        voyage.identifiers,
        [Identifier::new(IdScheme::Asin, "B0SYNTH001")]
    );
    assert_eq!(voyage.authors, ["Mara Quinn"]);
    assert_eq!(voyage.translators, ["Tomás Ó Briain"]);
    assert_eq!(voyage.narrators, ["Leo Park", "Full Cast"]);
    assert_eq!(voyage.formats, [Format::Audiobook]);
    assert_eq!(voyage.status, Some(ReadingStatus::Reading));
    assert!((voyage.progress.as_ref().unwrap().fraction - 0.4875).abs() < 1e-9);
    assert_eq!(
        voyage.edition.as_ref().unwrap().runtime_secs,
        Some(742 * 60)
    );
    assert_eq!(voyage.covers[0].width, Some(500));

    let tales = books[1];
    assert_eq!(tales.status, Some(ReadingStatus::Read));
    assert_eq!(tales.series[0].position.as_deref(), Some("1-6"));
    assert_eq!(
        tales.authors,
        ["Ana Example"],
        "a foreword writer is not an author"
    );

    // Every row has a community `rating` column (4.7, 4.9, 3.1); none is the user's.
    assert!(books.iter().all(|b| b.rating.is_none()));
}

// ---------------------------------------------------------------- API

#[test]
fn api_single_page_maps_items_and_reports_the_malformed_one() {
    let rows = parse(ImportFormat::AudibleApiJson, data("audible_api_page.json"));
    assert_eq!(rows.len(), 3);
    let err = rows[2].as_ref().unwrap_err();
    assert_eq!(err.row, 3);
    assert!(err.message.contains("asin"), "{err}");

    let books = ok(&rows);
    let voyage = books[0];
    assert_eq!(voyage.subtitle.as_deref(), Some("Book One of the Drift"));
    assert_eq!(voyage.authors, ["Mara Quinn"]);
    assert_eq!(voyage.translators, ["Tomás Ó Briain"]);
    assert_eq!(voyage.narrators, ["Leo Park", "Bea Reader"]);
    let series: Vec<_> = voyage
        .series
        .iter()
        .map(|s| (s.name.as_str(), s.position.as_deref()))
        .collect();
    assert_eq!(
        series,
        [("The Drift", Some("1")), ("Drift Omnibus", Some("1.5"))]
    );
    assert_eq!(
        voyage.identifiers,
        [
            Identifier::new(IdScheme::Asin, "B0SYNTH401"),
            Identifier::new(IdScheme::Isbn13, "9780306406157"),
            Identifier::new(IdScheme::Isbn10, "0306406152"),
        ]
    );
    assert_eq!(voyage.covers.len(), 1);
    assert_eq!(voyage.covers[0].width, Some(1215), "largest product image");
    assert_eq!(voyage.status, Some(ReadingStatus::Reading));
    assert_eq!(
        voyage.rating, None,
        "community rating 4.6 is not the user's"
    );

    let reviewed = books[1];
    assert_eq!(
        reviewed.rating,
        Rating::from_stars(3.0),
        "overall, not story or performance"
    );
    let review = reviewed.review.as_ref().unwrap();
    assert_eq!(review.text, "Good voice\n\nStory dragged\nin the middle.");
    assert_eq!(reviewed.status, Some(ReadingStatus::Read));
    assert_eq!(
        reviewed.reads[0].finished.map(|d| d.to_iso()).as_deref(),
        Some("2023-01-30")
    );
    insta::assert_json_snapshot!("audible_api_page", snapshot_json(&rows));
}

#[test]
fn api_list_of_pages_and_ndjson_pages_number_items_across_pages() {
    let list = parse(ImportFormat::AudibleApiJson, data("audible_api_pages.json"));
    let ndjson = parse(
        ImportFormat::AudibleApiJson,
        data("audible_api_pages.ndjson"),
    );
    assert_eq!(snapshot_json(&list), snapshot_json(&ndjson));
    assert_eq!(list.len(), 6);
    let error_rows: Vec<u64> = list
        .iter()
        .filter_map(|r| r.as_ref().err().map(|e| e.row))
        .collect();
    assert_eq!(error_rows, [3, 5]);
    let books = ok(&list);
    assert_eq!(books.len(), 4);

    // Only `listening_status` carries the progress on this item.
    let listening = books[2];
    assert_eq!(listening.status, Some(ReadingStatus::Reading));
    assert!((listening.progress.as_ref().unwrap().fraction - 0.1225).abs() < 1e-9);
    assert_eq!(
        listening.rating,
        Rating::from_stars(5.0),
        "flat provided_review shape"
    );

    let nulls = books[3];
    assert!(nulls.authors.is_empty() && nulls.covers.is_empty());
    insta::assert_json_snapshot!("audible_api_pages", snapshot_json(&list));
}

#[test]
fn map_library_item_is_pure_and_keeps_the_item_as_raw() {
    let item = json!({"asin": "B0SYNTH999", "title": "X", "rating": {"overall_distribution":
        {"display_average_rating": "4.9"}}, "provided_review": null});
    let rec = map_library_item(&item).unwrap();
    assert_eq!(rec.raw.to_value(), item);
    assert_eq!(rec.rating, None);
    assert!(map_library_item(&json!([1])).is_err());
    assert!(map_library_item(&json!({"asin": "B0SYNTH999"})).is_err());
    let bad_rating = json!({"asin": "B0SYNTH999", "title": "X",
        "provided_review": {"ratings": {"overall_rating": 9}}});
    assert!(
        map_library_item(&bad_rating)
            .unwrap_err()
            .contains("overall rating")
    );
}

#[test]
fn api_broken_json_is_a_row_error_after_the_good_pages() {
    let mut bytes = data("audible_api_pages.ndjson");
    bytes.extend_from_slice(b"{\"items\": [ {\"asin\": ");
    let rows = parse(ImportFormat::AudibleApiJson, bytes);
    assert_eq!(rows.len(), 7);
    assert_eq!(ok(&rows).len(), 4);
    assert!(rows[6].is_err());
}

#[test]
fn not_json_is_a_whole_file_error() {
    let r = parse_reader(
        ImportFormat::AudibleApiJson,
        Box::new(std::io::Cursor::new(b"asin,title\n".to_vec())),
    );
    assert!(r.is_err());
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        for format in [
            ImportFormat::AudibleCliJson,
            ImportFormat::AudibleCliCsv,
            ImportFormat::AudibleCliTsv,
            ImportFormat::AudibleApiJson,
        ] {
            if let Ok(rows) = parse_reader(format, Box::new(std::io::Cursor::new(bytes.clone()))) {
                for _ in rows.take(10_000) {}
            }
        }
    }

    #[test]
    fn random_items_never_panic(
        asin in proptest::option::of("[A-Z0-9]{0,12}"),
        title in proptest::option::of("\\PC{0,10}"),
        percent in proptest::option::of(any::<f64>()),
        rating in any::<i64>(),
        images in proptest::collection::vec(("[0-9a-z]{0,5}", "\\PC{0,10}"), 0..4),
    ) {
        let images: serde_json::Map<String, Value> =
            images.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let item = json!({
            "asin": asin, "title": title, "percent_complete": percent,
            "product_images": images, "series": [{"title": title, "sequence": rating}],
            "provided_review": {"ratings": {"overall_rating": rating}},
            "runtime_length_min": percent,
        });
        let _ = map_library_item(&item);
    }
}
