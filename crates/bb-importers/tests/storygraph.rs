//! StoryGraph export: the real fixture and synthetic read-throughs, statuses and ratings.
#![allow(clippy::doc_markdown)] // product names in prose, not code

mod import_support;

use bb_core::library::{Format, IdScheme, Identifier, Rating, ReadingStatus};
use bb_importers::ImportFormat::StorygraphCsv;
use import_support::{import, import_fixture, mapped};

#[test]
fn bookwyrm_fixture() {
    let records = import_fixture("storygraph/storygraph.csv", StorygraphCsv);
    insta::assert_json_snapshot!("storygraph_bookwyrm", mapped(&records));
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0].authors,
        ["Ursula K. Le Guin", "Todd Barton", "Margaret Chodos-Irvine"]
    );
    assert!(
        records[0]
            .identifiers
            .contains(&Identifier::new(IdScheme::Isbn13, "9780520227354"))
    );
    assert_eq!(records[0].status, Some(ReadingStatus::ToRead));
    // ISBN-10 in `ISBN/UID` gains its ISBN-13 form.
    assert!(
        records[1]
            .identifiers
            .contains(&Identifier::new(IdScheme::Isbn13, "9780374538651"))
    );
    assert_eq!(records[1].rating, Rating::from_stars(5.0));
    assert_eq!(records[1].raw.to_value()["Moods"], "informative");
}

const NEW_HEADER: &str = "Title,Authors,Contributors,ISBN/UID,Format,Read Status,Date Added,Last Date Read,Dates Read,Read Count,Moods,Pace,Character- or Plot-Driven?,Strong Character Development?,Loveable Characters?,Diverse Characters?,Flawed Characters?,Star Rating,Review,Content Warnings,Content Warning Description,Tags,Owned?";

#[test]
fn every_read_through_and_status() {
    let csv = format!(
        "{NEW_HEADER}\n\
         A,Ann Leckie,\"Adjoa Andoh (Narrator)\",B07KXHZ6VJ,audio,read,2021/05/10,2022/11/28,\"2022/10/29-2022/11/28, 2021/09/14\",2,,,,,,,,3.75,\"Loved it.\nSecond line <3\",,,\"space opera, favourites\",Yes\n\
         B,X,,sg-1234-uid,digital,did-not-finish,2021/05/10,,2023/01/05-,1,,,,,,,,,,,,,No\n\
         C,X,,,paperback,paused,2021/05/10,,,0,,,,,,,,,,,,,No\n\
         D,X,,,hardcover,currently-reading,2021/05/10,,,0,,,,,,,,4.5,,,,,No\n"
    );
    let (records, failed) = import(StorygraphCsv, csv.as_bytes());
    assert!(failed.is_empty(), "{failed:?}");
    let a = &records[0];
    assert_eq!(
        a.identifiers,
        [Identifier::new(IdScheme::Asin, "B07KXHZ6VJ")]
    );
    assert_eq!(a.narrators, ["Adjoa Andoh"]);
    assert_eq!(a.formats, [Format::Audiobook]);
    assert_eq!(a.rating, Some(Rating(375)));
    assert_eq!(a.review.as_ref().unwrap().text, "Loved it.\nSecond line <3");
    assert_eq!(a.shelves, ["space opera", "favourites"]);
    assert_eq!(a.reads.len(), 2, "Last Date Read is the first range's end");
    assert_eq!(a.reads[0].started.unwrap().to_iso(), "2022-10-29");
    assert_eq!(a.reads[0].finished.unwrap().to_iso(), "2022-11-28");
    assert_eq!(a.reads[1].started, None);
    assert_eq!(a.reads[1].finished.unwrap().to_iso(), "2021-09-14");

    let b = &records[1];
    assert_eq!(b.status, Some(ReadingStatus::DidNotFinish));
    assert_eq!(
        b.identifiers,
        [Identifier::new(IdScheme::Storygraph, "sg-1234-uid")]
    );
    assert_eq!(b.formats, [Format::Ebook]);
    assert_eq!(b.reads[0].started.unwrap().to_iso(), "2023-01-05");
    assert_eq!(b.reads[0].finished, None);
    assert_eq!(records[2].status, Some(ReadingStatus::Paused));
    assert_eq!(records[2].formats, [Format::Print]);
    assert_eq!(records[3].status, Some(ReadingStatus::Reading));
    insta::assert_json_snapshot!("storygraph_synthetic", mapped(&records));
}

#[test]
fn old_header_names() {
    let csv = "Title,Author,ISBN,Read Status,Star Rating\nDune,Frank Herbert,0441013597,read,4.0\n";
    assert_eq!(bb_importers::detect(csv.as_bytes()), Some(StorygraphCsv));
    let (records, failed) = import(StorygraphCsv, csv.as_bytes());
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(records[0].authors, ["Frank Herbert"]);
    assert!(
        records[0]
            .identifiers
            .contains(&Identifier::new(IdScheme::Isbn10, "0441013597"))
    );
}

#[test]
fn bad_rating_and_bad_dates_name_the_field() {
    let csv = "Title,Authors,ISBN/UID,Read Status,Star Rating,Dates Read\nA,X,,read,lots,\nB,X,,read,,someday\nC,X,,read,6,\n";
    let (records, failed) = import(StorygraphCsv, csv.as_bytes());
    assert!(records.is_empty());
    assert_eq!(failed.len(), 3);
    assert_eq!((failed[0].row, failed[1].row, failed[2].row), (2, 3, 4));
    assert!(failed[0].message.starts_with("Star Rating"));
    assert!(failed[1].message.starts_with("Dates Read"));
    assert!(failed[2].message.contains("outside"));
}
