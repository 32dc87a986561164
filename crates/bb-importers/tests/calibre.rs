//! Calibre: the CSV catalog fixture (and its BOM form) and the two OPF 3 fixtures.
#![allow(clippy::doc_markdown)] // product names in prose, not code

mod import_support;

use bb_core::library::{Format, IdScheme, Identifier, Rating};
use bb_importers::ImportFormat::{CalibreCsv, CalibreOpf};
use import_support::{fixture, import, import_fixture, mapped};

#[test]
fn csv_catalog() {
    let records = import_fixture("calibre/calibre.csv", CalibreCsv);
    insta::assert_json_snapshot!("calibre_csv", mapped(&records));
    let r = &records[0];
    assert_eq!(r.title, "That Ain't Witchcraft");
    assert_eq!(r.authors, ["Seanan McGuire"]);
    assert_eq!(r.rating, Rating::from_stars(5.0), "already halved");
    assert_eq!(r.series[0].name, "InCryptid");
    assert_eq!(r.series[0].position.as_deref(), Some("8"));
    assert!(
        r.identifiers
            .contains(&Identifier::new(IdScheme::Goodreads, "39077187"))
    );
    assert!(
        r.identifiers
            .contains(&Identifier::new(IdScheme::Isbn13, "9780756411800"))
    );
    assert_eq!(r.shelves, ["Cryptids", "Fantasy", "Romance", "Magic"]);
    assert_eq!(r.formats, [Format::Ebook]);
    assert_eq!(
        r.added_at.unwrap().to_rfc3339(),
        "2021-01-19T21:41:16+00:00",
        "offset applied"
    );
    assert!(r.review.is_none(), "comments are a description");
}

#[test]
fn csv_catalog_with_calibres_bom() {
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(fixture("calibre/calibre.csv"));
    assert_eq!(bb_importers::detect(&bytes), Some(CalibreCsv));
    let (records, failed) = import(CalibreCsv, &bytes);
    assert!(failed.is_empty());
    assert_eq!(
        records[0].authors,
        ["Seanan McGuire"],
        "first header found despite the BOM"
    );
}

#[test]
fn opf3_with_uppercase_schemes() {
    let records = import_fixture("calibre/Die-Drei-3.opf", CalibreOpf);
    insta::assert_json_snapshot!("calibre_opf_die_drei", mapped(&records));
    let r = &records[0];
    assert_eq!(
        r.rating,
        Rating::from_stars(4.0),
        "calibre:rating 8.00 of 10"
    );
    assert_eq!(
        r.authors,
        ["Ulf Blanck", "Stefanie Wegner"],
        "bkp contributor dropped"
    );
    assert_eq!(r.series[0].name, "Die drei ??? Kids");
    assert_eq!(r.series[0].position.as_deref(), Some("3"));
    assert!(
        r.identifiers
            .contains(&Identifier::new(IdScheme::Goodreads, "71348"))
    );
    assert!(
        r.identifiers
            .contains(&Identifier::new(IdScheme::Isbn13, "9783440077931"))
    );
    assert!(
        r.identifiers
            .contains(&Identifier::new(IdScheme::GoogleVolume, "pPamZwEACAAJ"))
    );
    assert_eq!(
        r.external_id.as_deref(),
        Some("38969b48-0187-4654-9e62-f2b21d4c5e40")
    );
    assert!(r.review.is_none());
    assert_eq!(r.shelves[1], "Mysteries & Detective Stories");
}

#[test]
fn opf3_with_prefixed_metas_and_lowercase_schemes() {
    let records = import_fixture("calibre/Panik-im-Paradies.opf", CalibreOpf);
    insta::assert_json_snapshot!("calibre_opf_panik", mapped(&records));
    let r = &records[0];
    assert_eq!(r.rating, Rating::from_stars(3.0), "calibre:rating 6");
    assert_eq!(r.authors, ["Ulf Blanck"], "the editor is not an author");
    assert_eq!(r.series[0].position.as_deref(), Some("1"));
    assert!(
        r.identifiers
            .contains(&Identifier::new(IdScheme::Goodreads, "222735"))
    );
}

#[test]
fn broken_xml_is_a_whole_file_error() {
    let err = bb_importers::parse_reader(
        CalibreOpf,
        Box::new(&b"<package xmlns=\"http://www.idpf.org/2007/opf\"><metadata><dc:title>x</metadata>"[..]),
    )
    .err()
    .expect("mismatched tags");
    assert_eq!(err.code(), "import.malformed");
}
