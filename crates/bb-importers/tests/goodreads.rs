//! Goodreads library export: the real fixtures (all header variants) and synthetic quirks.
#![allow(clippy::doc_markdown)] // product names in prose, not code

mod import_support;

use bb_core::library::{Format, Rating, ReadingStatus};
use bb_importers::ImportFormat::GoodreadsCsv;
use import_support::{ids, import, import_fixture, mapped};

#[test]
fn bookwyrm_31_column_export() {
    let records = import_fixture("goodreads/goodreads.csv", GoodreadsCsv);
    insta::assert_json_snapshot!("goodreads_bookwyrm", mapped(&records));
    assert_eq!(records.len(), 3);

    let gideon = &records[0];
    assert_eq!(gideon.title, "Gideon the Ninth (The Locked Tomb #1)");
    assert_eq!(gideon.series[0].name, "The Locked Tomb");
    assert_eq!(gideon.series[0].position.as_deref(), Some("1"));
    assert_eq!(gideon.rating, Rating::from_stars(3.0));
    assert_eq!(gideon.external_id.as_deref(), Some("42036538"));
    assert!(ids(gideon).contains(&("isbn_13".into(), "9781250313195".into())));

    // `"="""""` is an empty ISBN; My Rating 0 is unrated even though Average Rating is 4.45.
    let sub = &records[1];
    assert_eq!(
        ids(sub),
        [("goodreads".to_string(), "52691223".to_string())]
    );
    assert_eq!(sub.rating, None);

    let patisserie = &records[2];
    assert_eq!(patisserie.authors, ["Mélanie Dupuis", "Anne Cazor"]);
    assert_eq!(patisserie.review.as_ref().unwrap().text, "mixed feelings");
    assert_eq!(patisserie.reads.len(), 2, "Read Count 2");
    assert_eq!(patisserie.raw.to_value()["Average Rating"], "4.60");
}

#[test]
fn jelu_24_column_export() {
    let records = import_fixture("goodreads/goodreads_library_export-2022.csv", GoodreadsCsv);
    insta::assert_json_snapshot!("goodreads_2022", mapped(&records));

    let caesar = &records[0];
    assert_eq!(caesar.formats, [Format::Ebook], "kindle_edition");
    assert_eq!(caesar.raw.to_value()["Original Publication Year"], "-50");
    let day = records
        .iter()
        .find(|r| r.title.starts_with("Sept secondes"))
        .unwrap();
    assert_eq!(day.authors, ["Thomas Day"]);
    let somme = records
        .iter()
        .find(|r| r.title == "La Somme de nos folies")
        .unwrap();
    assert_eq!(somme.status, Some(ReadingStatus::ToRead));
    assert_eq!(somme.shelves, ["test-aad", "avec-espace"]);
    let elfes = records
        .iter()
        .find(|r| r.title.starts_with("Le Crystal"))
        .unwrap();
    assert_eq!(elfes.title, "Le Crystal des Elfes bleus (Elfes, #1)");
    assert_eq!(elfes.series[0].name, "Elfes");
    let quartier = records
        .iter()
        .find(|r| r.title == "Quartier lointain")
        .unwrap();
    assert_eq!(quartier.status, None, "custom exclusive shelf");
    assert_eq!(quartier.shelves, ["waiting"]);
    assert!(quartier.authors.contains(&"谷口 ジロー".to_string()));
}

#[test]
fn reviews_with_html_line_breaks() {
    let records = import_fixture(
        "goodreads/goodreads_library_export_one_line_modified_review.csv",
        GoodreadsCsv,
    );
    insta::assert_json_snapshot!("goodreads_reviews", mapped(&records));
    let tale = records
        .iter()
        .find(|r| r.title == "The Handmaid's Tale")
        .unwrap();
    let text = &tale.review.as_ref().unwrap().text;
    assert!(text.contains("the past decade, especially in the US.\n\nThinking back"));
    assert!(!text.contains("<br"));
    assert_eq!(tale.shelves, ["owned-physical", "dystopia", "feminism"]);
}

const HEADER: &str = "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,Publisher,Binding,Number of Pages,Year Published,Original Publication Year,Date Read,Date Added,Bookshelves,Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,Private Notes,Read Count,Owned Copies";

#[test]
fn statuses_roles_formats_and_negative_years() {
    let csv = format!(
        "{HEADER}\n\
         1,Dune (Dune #1),Frank Herbert,,\"Ken Liu (Translator), Scott Brick - narrator\",,,4,3.9,,Audible Audio,,-50,,2021-03-04,2021/03/01,\"dnf, sci-fi\",,dnf,,,,1,0\n\
         2,Emma,Jane Austen,,,,,0,4.1,,Paperback,,,,,2021/03/01,\"paused, classics\",,paused,,,,0,0\n\
         3,Emma 2,Jane Austen,,,,,5,4.1,,Audio CD,,,,,2021/03/01,\"abandoned\",,abandoned,,,,0,0\n\
         4,Emma 3,Jane Austen,,,,,5,4.1,,Hardcover,,,,,2021/03/01,\"currently-reading\",,currently-reading,,,,0,0\n"
    );
    let (records, failed) = import(GoodreadsCsv, csv.as_bytes());
    assert!(failed.is_empty(), "{failed:?}");
    let dune = &records[0];
    assert_eq!(dune.status, Some(ReadingStatus::DidNotFinish));
    assert_eq!(dune.shelves, ["sci-fi"]);
    assert_eq!(dune.translators, ["Ken Liu"]);
    assert_eq!(dune.narrators, ["Scott Brick"]);
    assert_eq!(dune.authors, ["Frank Herbert"]);
    assert_eq!(dune.formats, [Format::Audiobook]);
    assert_eq!(dune.edition.as_ref().unwrap().published.unwrap().year, -50);
    assert_eq!(
        dune.reads[0].finished.unwrap().to_iso(),
        "2021-03-04",
        "ISO dates as well as slashes"
    );
    assert_eq!(records[1].status, Some(ReadingStatus::Paused));
    assert_eq!(records[1].shelves, ["classics"]);
    assert_eq!(records[2].status, Some(ReadingStatus::DidNotFinish));
    assert_eq!(records[2].formats, [Format::Audiobook]);
    assert_eq!(records[3].status, Some(ReadingStatus::Reading));
    assert_eq!(records[3].formats, [Format::Print]);
}

#[test]
fn a_bad_rating_fails_only_its_row() {
    let csv = format!(
        "{HEADER}\n\
         1,Good,A,,,,,4,3,,,,,,,,,,read,,,,1,0\n\
         2,Bad,A,,,,,abc,3,,,,,,,,,,read,,,,1,0\n\
         3,Also good,A,,,,,5,3,,,,,,,,,,read,,,,1,0\n"
    );
    let (records, failed) = import(GoodreadsCsv, csv.as_bytes());
    assert_eq!(records.len(), 2);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].row, 3, "file line of the bad record");
    assert!(failed[0].message.contains("My Rating"), "{}", failed[0]);
    assert!(failed[0].message.contains("abc"), "{}", failed[0]);
}

#[test]
fn a_file_without_the_key_columns_fails_loudly() {
    let err = bb_importers::parse_reader(GoodreadsCsv, Box::new(&b"Name,Shelf\nx,y\n"[..]))
        .err()
        .expect("no Title column must be a whole-file error");
    assert!(err.to_string().contains("Title"), "{err}");
}
