//! LibraryThing exports: the real JSON (221 books) and TSV fixtures, and synthetic rows for
//! the user's own fields the public JSON lacks.
#![allow(clippy::doc_markdown)] // product names in prose, not code

mod import_support;

use bb_core::library::{Format, IdScheme, Identifier, Rating, ReadingStatus};
use bb_importers::ImportFormat::{LibrarythingJson, LibrarythingTsv};
use import_support::{fixture, import, import_fixture, mapped};

#[test]
fn real_json_export() {
    let records = import_fixture("librarything/librarything.json", LibrarythingJson);
    assert_eq!(records.len(), 221);
    insta::assert_json_snapshot!("librarything_json_first_20", mapped(&records[..20]));

    // `isbn` as an object with numeric keys…
    let malleus = &records[0];
    assert_eq!(malleus.external_id.as_deref(), Some("105446577"));
    assert!(
        malleus
            .identifiers
            .contains(&Identifier::new(IdScheme::Isbn13, "9780486228020"))
    );
    assert!(
        malleus
            .identifiers
            .contains(&Identifier::new(IdScheme::Librarything, "92660"))
    );
    assert_eq!(
        malleus.edition.as_ref().unwrap().pages,
        Some(278),
        "\"278 \""
    );
    // …and as an array.
    let veiled = records
        .iter()
        .find(|r| r.title.starts_with("Veiled Sentiments"))
        .unwrap();
    assert!(
        veiled
            .identifiers
            .contains(&Identifier::new(IdScheme::Isbn13, "9780520224735"))
    );

    // Roles from `authors[].role`; entities in names decoded.
    let tolstoy = records
        .iter()
        .find(|r| r.authors.iter().any(|a| a.contains("Tolstoy")))
        .unwrap();
    assert_eq!(tolstoy.translators, ["Antonina W. Bouis"]);
    assert!(
        records
            .iter()
            .any(|r| r.authors.iter().any(|a| a == "Mercurio López"))
    );
    assert!(
        records
            .iter()
            .all(|r| r.authors.iter().all(|a| !a.contains('&')))
    );

    // Every book is only in "Your library": owned, no reading status claimed.
    assert!(records.iter().all(|r| r.status.is_none()));
    assert!(
        records
            .iter()
            .all(|r| !r.shelves.iter().any(|s| s == "Your library"))
    );
    // `date` can be "?": no published date, and the book still imports.
    let undated = records
        .iter()
        .filter(|r| r.raw.to_value()["date"] == "?")
        .collect::<Vec<_>>();
    assert_eq!(undated.len(), 3);
    assert!(
        undated
            .iter()
            .all(|r| r.edition.as_ref().unwrap().published.is_none())
    );
    assert!(
        records
            .iter()
            .any(|r| r.series.iter().any(|s| s.name == "Hainish Cycle"))
    );
}

#[test]
fn real_tsv_export_with_a_stray_byte() {
    let bytes = fixture("librarything/librarything.tsv");
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "the fixture keeps its MARC-8 byte"
    );
    let records = import_fixture("librarything/librarything.tsv", LibrarythingTsv);
    insta::assert_json_snapshot!("librarything_tsv", mapped(&records));
    assert_eq!(records.len(), 3);

    let marelle = &records[0];
    assert_eq!(marelle.authors, ["Julio Cortazar"]);
    assert_eq!(marelle.rating, Some(Rating(450)));
    assert_eq!(marelle.status, Some(ReadingStatus::Read), "from Date Read");
    assert_eq!(marelle.reads[0].started.unwrap().to_iso(), "2007-04-16");
    assert_eq!(marelle.reads[0].finished.unwrap().to_iso(), "2007-05-08");
    assert!(
        marelle
            .identifiers
            .contains(&Identifier::new(IdScheme::Isbn10, "2070291340"))
    );
    assert_eq!(
        marelle.edition.as_ref().unwrap().publisher.as_deref(),
        Some("Gallimard")
    );
    // Only the damaged field is lossy; real UTF-8 elsewhere is intact (no latin-1 garbling).
    assert!(
        marelle.raw.to_value()["Subjects"]
            .as_str()
            .unwrap()
            .contains('\u{fffd}')
    );
    assert!(marelle.shelves.contains(&"expérimental".to_string()));
    assert_eq!(records[2].authors, ["Mikhaïl Boulgakov"]);
}

#[test]
fn json_user_fields_and_collections() {
    let json = r#"{
      "1": {"books_id": "1", "title": "Dune", "authors": [{"lf": "Herbert, Frank"}],
            "isbn": ["B000K0BNEW"], "rating": 3.5, "review": "Great<br>read &amp; more",
            "datestarted": "2020-01-02", "dateread": "2020-02-03",
            "collections": {"0": "Your library", "3": "Favorites"}, "format": [{"code": "2", "text": "Ebook"}],
            "entrydate": "2019-12-31", "lcc": []},
      "2": {"books_id": "2", "title": "Emma", "primaryauthor": "Austen, Jane",
            "collections": ["Currently reading"], "rating": "4"},
      "3": {"books_id": "3", "title": "Persuasion", "collections": ["Wishlist"]},
      "4": {"books_id": "4", "title": "Sanditon", "collections": ["To read"], "rating": "eleven"},
      "5": {"books_id": "5", "title": "Mansfield Park", "collections": ["Read but unowned"]}
    }"#;
    let (records, failed) = import(LibrarythingJson, json.as_bytes());
    assert_eq!(records.len(), 4);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].row, 4, "entry number");
    assert!(failed[0].message.contains("rating"));

    let dune = &records[0];
    assert_eq!(dune.authors, ["Frank Herbert"]);
    assert_eq!(
        dune.identifiers,
        [Identifier::new(IdScheme::Asin, "B000K0BNEW")]
    );
    assert_eq!(dune.rating, Some(Rating(350)));
    assert_eq!(dune.review.as_ref().unwrap().text, "Great\nread & more");
    assert_eq!(dune.status, Some(ReadingStatus::Read));
    assert_eq!(dune.shelves, ["Favorites"]);
    assert_eq!(dune.formats, [Format::Ebook]);
    assert_eq!(records[1].authors, ["Jane Austen"]);
    assert_eq!(records[1].status, Some(ReadingStatus::Reading));
    assert_eq!(records[2].status, Some(ReadingStatus::ToRead));
    assert_eq!(records[2].shelves, ["Wishlist"]);
    assert_eq!(records[3].status, Some(ReadingStatus::Read));
}

#[test]
fn broken_json_reports_the_entry_and_stops() {
    let json = r#"{"1": {"books_id": "1", "title": "A"}, "2": {"title": "B" "#;
    let (records, failed) = import(LibrarythingJson, json.as_bytes());
    assert_eq!(records.len(), 1);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].row, 2);
}
