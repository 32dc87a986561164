//! Arbitrary bytes through every streaming parser: errors are fine, panics are not.
//! (The `fuzz/` targets explore the same property for longer.)
#![allow(clippy::doc_markdown)] // product names in prose, not code

use bb_importers::{ImportFormat, parse_reader};
use proptest::prelude::*;

const FORMATS: [ImportFormat; 7] = [
    ImportFormat::GoodreadsCsv,
    ImportFormat::StorygraphCsv,
    ImportFormat::LibrarythingJson,
    ImportFormat::LibrarythingTsv,
    ImportFormat::OpenlibraryCsv,
    ImportFormat::CalibreCsv,
    ImportFormat::CalibreOpf,
];

fn drain(format: ImportFormat, bytes: Vec<u8>) {
    let _ = bb_importers::detect(&bytes);
    if let Ok(rows) = parse_reader(format, Box::new(std::io::Cursor::new(bytes))) {
        for row in rows {
            let _ = row;
        }
    }
}

/// Bytes that look like each format's header followed by noise, so the parsers get past
/// the header check and into their row mapping.
fn seeded(format: ImportFormat) -> &'static str {
    match format {
        ImportFormat::GoodreadsCsv => {
            "Book Id,Title,Author,Additional Authors,ISBN,My Rating,Binding,Year Published,Date Read,Date Added,Bookshelves,Exclusive Shelf,My Review,Read Count\n"
        }
        ImportFormat::StorygraphCsv => {
            "Title,Authors,Contributors,ISBN/UID,Format,Read Status,Date Added,Last Date Read,Dates Read,Read Count,Star Rating,Review,Tags\n"
        }
        ImportFormat::LibrarythingJson => "{\"1\": {\"books_id\": \"1\", ",
        ImportFormat::LibrarythingTsv => {
            "Book Id\tTitle\tPrimary Author\tRating\tDate Started\tDate Read\tCollections\tISBN\tISBNs\tEntry Date\n"
        }
        ImportFormat::OpenlibraryCsv => "Work ID,Title,Authors,Edition ID,Bookshelf,My Ratings\n",
        ImportFormat::CalibreCsv => {
            "authors,author_sort,rating,timestamp,identifiers,series,series_index,title,pubdate,uuid\n"
        }
        _ => "<package xmlns=\"http://www.idpf.org/2007/opf\"><metadata>",
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for format in FORMATS {
            drain(format, bytes.clone());
        }
    }

    #[test]
    fn header_then_random_text(idx in 0usize..7, body in "[ -~\t\r\n\"=,;\\[\\]{}<>/#()é-]{0,512}") {
        let format = FORMATS[idx];
        let mut bytes = seeded(format).as_bytes().to_vec();
        bytes.extend_from_slice(body.as_bytes());
        drain(format, bytes);
    }
}
