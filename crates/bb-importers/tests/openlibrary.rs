//! OpenLibrary reading log: the old three-column fixture and the current 15-column header.
#![allow(clippy::doc_markdown)] // product names in prose, not code

mod import_support;

use bb_core::library::{IdScheme, Identifier, Rating, ReadingStatus};
use bb_importers::ImportFormat::OpenlibraryCsv;
use import_support::{import, import_fixture, mapped};

#[test]
fn old_three_column_reading_log() {
    let records = import_fixture("openlibrary/openlibrary.csv", OpenlibraryCsv);
    insta::assert_json_snapshot!("openlibrary_old_header", mapped(&records));
    assert_eq!(records.len(), 4);
    // No title column: the row still imports, keyed by its OpenLibrary ids.
    assert_eq!(records[0].title, "");
    assert_eq!(
        records[0].identifiers,
        [Identifier::new(IdScheme::OpenlibraryWork, "OL102749W")],
        "the row without an edition"
    );
    assert_eq!(records[0].status, Some(ReadingStatus::Reading));
    assert_eq!(records[2].status, Some(ReadingStatus::ToRead));
    assert_eq!(records[3].status, Some(ReadingStatus::Read));
    assert!(records[3].identifiers.contains(&Identifier::new(
        IdScheme::OpenlibraryEdition,
        "OL25726365M"
    )));
}

#[test]
fn current_fifteen_column_header() {
    let csv = "Work ID,Title,Authors,First Publish Year,Edition ID,Edition Count,Bookshelf,My Ratings,Ratings Average,Ratings Count,Has Ebook,Subjects,Subject People,Subject Places,Subject Times\n\
               OL45804W,Fantastic Mr Fox,Roald Dahl | Quentin Blake,1970,OL7353617M,54,Already Read,4,4.1,300,True,Animals | Foxes,,,\n\
               OL27448W,The Lord of the Rings,J.R.R. Tolkien,1954,,120,Stopped Reading,,4.5,900,False,,,,\n";
    assert_eq!(bb_importers::detect(csv.as_bytes()), Some(OpenlibraryCsv));
    let (records, failed) = import(OpenlibraryCsv, csv.as_bytes());
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(records[0].title, "Fantastic Mr Fox");
    assert_eq!(records[0].authors, ["Roald Dahl", "Quentin Blake"]);
    assert_eq!(records[0].rating, Rating::from_stars(4.0));
    assert_eq!(records[0].status, Some(ReadingStatus::Read));
    assert_eq!(records[1].status, Some(ReadingStatus::DidNotFinish));
    assert_eq!(records[1].rating, None, "Ratings Average is not the user's");
    insta::assert_json_snapshot!("openlibrary_new_header", mapped(&records));
}

#[test]
fn a_bad_work_id_is_a_row_error() {
    let csv = "Work Id,Edition Id,Bookshelf\nOL1W,,Want to Read\nnonsense,,Want to Read\nOL2W,,Shelf of Dreams\n";
    let (records, failed) = import(OpenlibraryCsv, csv.as_bytes());
    assert_eq!(records.len(), 1);
    assert_eq!(failed[0].row, 3);
    assert!(failed[0].message.contains("Work ID"));
    assert_eq!(failed[1].row, 4);
    assert!(failed[1].message.contains("Bookshelf"));
}
