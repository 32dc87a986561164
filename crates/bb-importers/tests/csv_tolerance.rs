//! What the shared CSV reading tolerates, through the Goodreads and StoryGraph parsers:
//! BOM, CRLF, `;` delimiters, invalid UTF-8 in one row, reordered headers, ragged rows,
//! and the size caps.
#![allow(clippy::doc_markdown)] // product names in prose, not code

mod import_support;

use bb_core::library::Rating;
use bb_importers::ImportFormat::{self, GoodreadsCsv, StorygraphCsv};
use bb_importers::{MAX_FIELD_BYTES, detect, parse_reader};
use import_support::import;

#[test]
fn bom_crlf_and_semicolons_from_an_excel_resave() {
    let csv = "\u{feff}Book Id;Title;Author;My Rating;Exclusive Shelf;Date Added\r\n\
               1;Dune;Frank Herbert;4;read;2021/03/04\r\n\
               2;\"Emma; or not\";Jane Austen;0;to-read;2021/03/05\r\n";
    assert_eq!(detect(csv.as_bytes()), Some(GoodreadsCsv));
    let (records, failed) = import(GoodreadsCsv, csv.as_bytes());
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(records.len(), 2);
    assert_eq!(
        records[0].external_id.as_deref(),
        Some("1"),
        "BOM not glued to Book Id"
    );
    assert_eq!(records[0].rating, Rating::from_stars(4.0));
    assert_eq!(records[1].title, "Emma; or not");
    assert_eq!(records[0].raw.to_value()["Title"], "Dune");
}

#[test]
fn headers_in_another_order_and_ragged_rows() {
    let csv = "Exclusive Shelf,My Rating,Title,Book Id,Author\n\
               read,5,Dune,1,Frank Herbert\n\
               to-read,0,Emma,2\n\
               read,3,Persuasion,3,Jane Austen,extra,cells\n";
    let (records, failed) = import(GoodreadsCsv, csv.as_bytes());
    assert!(failed.is_empty(), "{failed:?}");
    assert_eq!(records[0].title, "Dune");
    assert_eq!(records[0].authors, ["Frank Herbert"]);
    assert!(records[1].authors.is_empty(), "short row");
    assert_eq!(
        records[2].raw.to_value()["column 7"],
        "cells",
        "extra cells kept in raw"
    );
}

#[test]
fn invalid_utf8_damages_only_its_row() {
    let mut csv = b"Title,Authors,ISBN/UID,Read Status,Star Rating\n".to_vec();
    csv.extend_from_slice(b"Rayuela,Julio Cort\xE2zar,,read,4\n");
    csv.extend_from_slice(b"Bad rating,X,,read,4\xFF\n");
    csv.extend_from_slice("Expérimental,Émile,,read,5\n".as_bytes());
    let (records, failed) = import(StorygraphCsv, &csv);
    assert_eq!(records.len(), 2);
    // A damaged name is kept with a replacement character rather than losing the book.
    assert_eq!(records[0].authors, ["Julio Cort\u{fffd}zar"]);
    assert_eq!(
        records[1].title, "Expérimental",
        "later rows are not garbled"
    );
    assert_eq!(records[1].authors, ["Émile"]);
    // A damaged field that must be parsed fails its row, by line number and field name.
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].row, 3);
    assert!(
        failed[0].message.starts_with("Star Rating"),
        "{}",
        failed[0]
    );
}

#[test]
fn row_numbers_count_multiline_fields_and_blank_lines() {
    let csv = "Title,Authors,Read Status,Star Rating,Review\r\n\
               A,X,read,4,\"line one\r\nline two\"\r\n\
               \r\n\
               B,X,read,nope,\r\n";
    let (records, failed) = import(StorygraphCsv, csv.as_bytes());
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].review.as_ref().unwrap().text,
        "line one\nline two"
    );
    assert_eq!(failed[0].row, 5);
}

#[test]
fn a_field_over_the_cap_fails_its_row_only() {
    let mut csv = String::from("Title,Authors,Read Status,Review\nA,X,read,short\n");
    csv.push_str("B,X,read,");
    csv.push_str(&"x".repeat(MAX_FIELD_BYTES + 1));
    csv.push_str("\nC,X,read,short\n");
    let (records, failed) = import(StorygraphCsv, csv.as_bytes());
    assert_eq!(records.len(), 2);
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].row, 3);
    assert!(failed[0].message.contains("Review"), "{}", failed[0]);
    assert!(failed[0].message.contains("1 MiB"), "{}", failed[0]);
}

#[test]
fn detection_is_by_content_and_unknown_files_are_refused() {
    assert_eq!(detect(b"just some text\nnothing else"), None);
    assert_eq!(detect(b"{\"not\": \"a library\"}"), None);
    assert_eq!(detect(b"<html></html>"), None);
    let err = parse_reader(ImportFormat::KoboSqlite, Box::new(&b""[..]))
        .err()
        .expect("kobo needs a path");
    assert!(err.to_string().contains("Kobo importer"));
    assert!("goodreads-csv".parse::<ImportFormat>().is_ok());
    assert!("GOODREADS-CSV".parse::<ImportFormat>().is_ok());
    assert!("myspace".parse::<ImportFormat>().is_err());
    for f in ImportFormat::ALL {
        assert_eq!(f.as_str().parse::<ImportFormat>().unwrap(), f);
    }
    assert_eq!(ImportFormat::LibrarythingTsv.provider(), "librarything");
}

#[test]
fn an_empty_file_is_a_whole_file_error() {
    for format in [GoodreadsCsv, StorygraphCsv, ImportFormat::OpenlibraryCsv] {
        assert!(
            parse_reader(format, Box::new(&b""[..])).is_err(),
            "{format}"
        );
    }
}

/// A reader that makes up a 100k-row export on the fly and counts what was taken from it.
struct Generated {
    header: Vec<u8>,
    rows: u64,
    next: u64,
    pending: Vec<u8>,
    consumed: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::io::Read for Generated {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            if !self.header.is_empty() {
                self.pending = std::mem::take(&mut self.header);
            } else if self.next < self.rows {
                self.next += 1;
                self.pending =
                    format!("Book {n},Author {n},,read,4.5\n", n = self.next).into_bytes();
            } else {
                return Ok(0);
            }
        }
        let n = buf.len().min(self.pending.len());
        buf[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        self.consumed
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

#[test]
fn a_100k_row_file_streams() {
    let consumed = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let reader = Generated {
        header: b"Title,Authors,ISBN/UID,Read Status,Star Rating\n".to_vec(),
        rows: 100_000,
        next: 0,
        pending: Vec::new(),
        consumed: consumed.clone(),
    };
    let mut rows = parse_reader(StorygraphCsv, Box::new(reader)).unwrap();
    let first = rows.next().unwrap().unwrap();
    assert_eq!(first.title, "Book 1");
    // The first book arrives after one buffer's worth of input, not the whole file.
    assert!(consumed.load(std::sync::atomic::Ordering::Relaxed) < 256 * 1024);
    let rest = rows.flatten().count();
    assert_eq!(rest, 99_999);
    assert!(consumed.load(std::sync::atomic::Ordering::Relaxed) > 3_000_000);
}
