//! Identifiers parsed at the edge. An ISBN is only an ISBN when its checksum holds;
//! ISBN-10s and 979-less ISBN-13s convert into each other; spreadsheet wrappers such as
//! Goodreads' `="0062445316"` are stripped before anything else looks at a value.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The kinds of identifier bookbridge knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdScheme {
    Isbn13,
    Isbn10,
    Asin,
    Goodreads,
    Librarything,
    OpenlibraryWork,
    OpenlibraryEdition,
    GoogleVolume,
    Hardcover,
    Kobo,
    Storygraph,
    Calibre,
}

impl IdScheme {
    pub fn as_str(self) -> &'static str {
        match self {
            IdScheme::Isbn13 => "isbn_13",
            IdScheme::Isbn10 => "isbn_10",
            IdScheme::Asin => "asin",
            IdScheme::Goodreads => "goodreads",
            IdScheme::Librarything => "librarything",
            IdScheme::OpenlibraryWork => "openlibrary_work",
            IdScheme::OpenlibraryEdition => "openlibrary_edition",
            IdScheme::GoogleVolume => "google_volume",
            IdScheme::Hardcover => "hardcover",
            IdScheme::Kobo => "kobo",
            IdScheme::Storygraph => "storygraph",
            IdScheme::Calibre => "calibre",
        }
    }

    /// Identifiers that name one work or edition everywhere, and so are safe to merge on.
    /// Provider-local ids (a Calibre row id, a Kobo content id) only match within a source.
    pub fn is_strong(self) -> bool {
        !matches!(self, IdScheme::Calibre | IdScheme::Kobo)
    }
}

impl fmt::Display for IdScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    pub scheme: IdScheme,
    pub value: String,
}

impl Identifier {
    pub fn new(scheme: IdScheme, value: impl Into<String>) -> Self {
        Self {
            scheme,
            value: value.into(),
        }
    }
}

/// Removes spreadsheet protection and quoting: `="0062445316"`, `"=""…"""` after CSV
/// unquoting, `[0765326353]` (`LibraryThing`), surrounding whitespace.
pub fn strip_wrappers(raw: &str) -> &str {
    let mut s = raw.trim();
    loop {
        let before = s;
        s = s.trim_start_matches('=').trim_matches('"').trim();
        if let Some(inner) = s.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            s = inner.trim();
        }
        if s == before {
            return s;
        }
    }
}

/// Digits (and a trailing X) with hyphens and spaces removed.
fn compact(raw: &str) -> String {
    strip_wrappers(raw)
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\u{2010}'..='\u{2015}'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn isbn10_check(first9: &[u8]) -> u8 {
    let sum: u32 = first9
        .iter()
        .zip((2..=10).rev())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    #[allow(clippy::cast_possible_truncation)] // a value mod 11 fits in u8
    let check = ((11 - sum % 11) % 11) as u8;
    if check == 10 { b'X' } else { b'0' + check }
}

fn isbn13_check(first12: &[u8]) -> u8 {
    let sum: u32 = first12
        .iter()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    #[allow(clippy::cast_possible_truncation)] // a value mod 10 fits in u8
    let check = ((10 - sum % 10) % 10) as u8;
    b'0' + check
}

/// A valid ISBN-10, compacted and upper-cased, or `None`.
pub fn parse_isbn10(raw: &str) -> Option<String> {
    let s = compact(raw);
    let b = s.as_bytes();
    if b.len() != 10 || !b[..9].iter().all(u8::is_ascii_digit) {
        return None;
    }
    (isbn10_check(&b[..9]) == b[9]).then_some(s)
}

/// A valid ISBN-13 (978/979), compacted, or `None`.
pub fn parse_isbn13(raw: &str) -> Option<String> {
    let s = compact(raw);
    let b = s.as_bytes();
    if b.len() != 13
        || !b.iter().all(u8::is_ascii_digit)
        || !(s.starts_with("978") || s.starts_with("979"))
    {
        return None;
    }
    (isbn13_check(&b[..12]) == b[12]).then_some(s)
}

pub fn isbn10_to_13(isbn10: &str) -> String {
    let mut s = format!("978{}", &isbn10[..9]);
    let check = isbn13_check(s.as_bytes());
    s.push(char::from(check));
    s
}

/// Only 978-prefixed ISBN-13s have an ISBN-10 form.
pub fn isbn13_to_10(isbn13: &str) -> Option<String> {
    let rest = isbn13.strip_prefix("978")?;
    let mut s = rest[..9].to_string();
    let check = isbn10_check(s.as_bytes());
    s.push(char::from(check));
    Some(s)
}

/// Parses any ISBN spelling and returns it in every form it has (ISBN-13 first).
/// A value failing its checksum yields nothing: it is not an ISBN.
pub fn isbn_identifiers(raw: &str) -> Vec<Identifier> {
    if let Some(i13) = parse_isbn13(raw) {
        let mut out = Vec::with_capacity(2);
        let i10 = isbn13_to_10(&i13);
        out.push(Identifier::new(IdScheme::Isbn13, i13));
        if let Some(i10) = i10 {
            out.push(Identifier::new(IdScheme::Isbn10, i10));
        }
        return out;
    }
    if let Some(i10) = parse_isbn10(raw) {
        return vec![
            Identifier::new(IdScheme::Isbn13, isbn10_to_13(&i10)),
            Identifier::new(IdScheme::Isbn10, i10),
        ];
    }
    Vec::new()
}

/// An Amazon ASIN for a non-print product: ten upper-case alphanumerics starting `B0`.
/// (Print ASINs are ISBN-10s and are recognised as ISBNs instead.)
pub fn parse_asin(raw: &str) -> Option<String> {
    let s = strip_wrappers(raw).to_ascii_uppercase();
    (s.len() == 10 && s.starts_with("B0") && s.bytes().all(|b| b.is_ascii_alphanumeric()))
        .then_some(s)
}

/// An OpenLibrary key in any spelling (`OL102749W`, `/works/OL102749W`, `ol7798182m`) if it
/// has the expected kind letter (`W` works, `M` editions, `A` authors): the upper-case
/// `OL…W` form, or `None`. Shared by the reading-log export importer and the live feed.
pub fn parse_openlibrary_key(raw: &str, kind: char) -> Option<String> {
    let key = raw
        .trim()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_uppercase();
    let digits = key.strip_prefix("OL")?.strip_suffix(kind)?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())).then_some(key)
}

/// Classifies a value from a column that may hold an ISBN, an ASIN or a site's own id
/// (`StoryGraph`'s `ISBN/UID`): ISBN identifiers if the checksum holds, else an ASIN if it
/// looks like one, else `fallback` with the cleaned value when one is given.
pub fn classify_book_id(raw: &str, fallback: Option<IdScheme>) -> Vec<Identifier> {
    let isbns = isbn_identifiers(raw);
    if !isbns.is_empty() {
        return isbns;
    }
    if let Some(asin) = parse_asin(raw) {
        return vec![Identifier::new(IdScheme::Asin, asin)];
    }
    let cleaned = strip_wrappers(raw);
    match fallback {
        Some(scheme) if !cleaned.is_empty() => vec![Identifier::new(scheme, cleaned)],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn goodreads_wrappers_are_stripped() {
        assert_eq!(strip_wrappers("=\"0062445316\""), "0062445316");
        assert_eq!(strip_wrappers("=\"\""), "");
        assert_eq!(strip_wrappers("[0765326353]"), "0765326353");
    }

    #[test]
    fn isbn10_and_13_convert_both_ways() {
        let ids = isbn_identifiers("=\"0062445316\"");
        assert_eq!(
            ids,
            vec![
                Identifier::new(IdScheme::Isbn13, "9780062445315"),
                Identifier::new(IdScheme::Isbn10, "0062445316"),
            ]
        );
        assert_eq!(isbn_identifiers("978-0-06-244531-5"), ids);
    }

    #[test]
    fn x_check_digit_and_979_prefix() {
        assert_eq!(parse_isbn10("080442957x").as_deref(), Some("080442957X"));
        let ids = isbn_identifiers("9791032305690");
        assert_eq!(
            ids,
            vec![Identifier::new(IdScheme::Isbn13, "9791032305690")]
        );
    }

    #[test]
    fn bad_checksums_are_not_isbns() {
        assert!(isbn_identifiers("0062445317").is_empty());
        assert!(isbn_identifiers("9780062445316").is_empty());
        assert!(isbn_identifiers("12345").is_empty());
    }

    #[test]
    fn storygraph_uid_column_classified() {
        assert_eq!(
            classify_book_id("B07KXHZ6VJ", Some(IdScheme::Storygraph)),
            vec![Identifier::new(IdScheme::Asin, "B07KXHZ6VJ")]
        );
        assert_eq!(
            classify_book_id("a1b2c3-uid", Some(IdScheme::Storygraph)),
            vec![Identifier::new(IdScheme::Storygraph, "a1b2c3-uid")]
        );
    }

    proptest! {
        #[test]
        fn every_valid_isbn10_round_trips(digits in proptest::collection::vec(0u8..10, 9)) {
            let first9: Vec<u8> = digits.iter().map(|d| b'0' + d).collect();
            let mut s = String::from_utf8(first9.clone()).unwrap();
            s.push(char::from(isbn10_check(&first9)));
            let i13 = isbn10_to_13(&s);
            prop_assert!(parse_isbn13(&i13).is_some());
            prop_assert_eq!(isbn13_to_10(&i13), Some(s));
        }
    }
}
