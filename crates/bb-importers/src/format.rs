//! Format detection from a file's first bytes (never its name): header signatures for
//! CSV/TSV, shape for JSON and XML, the clippings separator and the SQLite magic.

use crate::ImportFormat;
use crate::csv_table::header_names;

/// How much of the file [`detect`] needs.
pub const DETECT_BYTES: usize = 64 * 1024;

/// The format of a file from its first bytes (about 64 KiB; more is ignored), or `None`.
pub fn detect(head: &[u8]) -> Option<ImportFormat> {
    let head = &head[..head.len().min(DETECT_BYTES)];
    if head.starts_with(b"SQLite format 3\0") {
        return Some(ImportFormat::KoboSqlite);
    }
    let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(head);
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return detect_json(trimmed);
    }
    if trimmed.starts_with('<') {
        return detect_xml(trimmed);
    }
    if let Some(f) = detect_table(body) {
        return Some(f);
    }
    // Clippings have no header; the separator line is their signature.
    if text.contains("\n==========") || text.starts_with("==========") {
        return Some(ImportFormat::KindleClippings);
    }
    None
}

fn detect_json(text: &str) -> Option<ImportFormat> {
    // LibraryThing first: an object keyed by books_id whose values carry `books_id` again.
    // Its books also have `asin` and an `authors` list, which the Audible signatures
    // below would otherwise claim.
    if text.starts_with('{') && text.contains("\"books_id\"") {
        return Some(ImportFormat::LibrarythingJson);
    }
    if let Some(f) = crate::audible_api::detect_json(text) {
        return Some(f);
    }
    None
}

fn detect_xml(text: &str) -> Option<ImportFormat> {
    if text.contains("<package") && text.contains("http://www.idpf.org/2007/opf") {
        return Some(ImportFormat::CalibreOpf);
    }
    None
}

/// CSV/TSV signatures. Each is a set of header names that only that producer writes
/// together; checked in order from the most to the least specific.
fn detect_table(head: &[u8]) -> Option<ImportFormat> {
    let names = header_names(head);
    if names.len() < 2 {
        return None;
    }
    let delimiter = crate::csv_table::sniff_delimiter(head);
    if let Some(f) = crate::audible_api::detect_table(&names, delimiter) {
        return Some(f);
    }
    let has = |n: &str| names.iter().any(|h| h == n);
    if has("book id") && has("primary author") {
        return Some(ImportFormat::LibrarythingTsv);
    }
    if has("book id") && (has("exclusive shelf") || has("author l-f") || has("my rating")) {
        return Some(ImportFormat::GoodreadsCsv);
    }
    if has("read status") && (has("isbn/uid") || has("star rating") || has("dates read")) {
        return Some(ImportFormat::StorygraphCsv);
    }
    if has("work id") && (has("bookshelf") || has("edition id")) {
        return Some(ImportFormat::OpenlibraryCsv);
    }
    if has("uuid") && has("author_sort") && (has("identifiers") || has("title_sort")) {
        return Some(ImportFormat::CalibreCsv);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert_eq!(
            detect(b"SQLite format 3\0abc"),
            Some(ImportFormat::KoboSqlite)
        );
        assert_eq!(
            detect(b"\xEF\xBB\xBFBook Id;Title;Author;My Rating;Exclusive Shelf\r\n1;a;b;0;read"),
            Some(ImportFormat::GoodreadsCsv)
        );
        assert_eq!(
            detect(b"Work Id,Edition Id,Bookshelf\n"),
            Some(ImportFormat::OpenlibraryCsv)
        );
        assert_eq!(
            detect(b"Title (Author)\n- Your Highlight\n\nx\n==========\n"),
            Some(ImportFormat::KindleClippings)
        );
        assert_eq!(detect(b"hello, world\n"), None);
        assert_eq!(detect(b""), None);
    }
}
