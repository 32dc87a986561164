//! Kindle `My Clippings.txt`: the three real sample files, a synthetic file exercising edits,
//! notes, bookmarks and broken entries, and a no-panic property over random input.

// Helpers outside `#[test]` fns unwrap too: in a test, a panic is the failure report.
#![allow(clippy::unwrap_used)]

use bb_core::library::{HighlightKind, SourceRecord};
use bb_importers::kindle::{ClipKind, parse_clippings, parse_entries};
use bb_importers::{ImportFormat, RowResult, detect, parse_reader};
use proptest::prelude::*;
use serde_json::Value;

const REAL: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/real/kindle-clippings/"
);
const DATA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/");

fn real(name: &str) -> Vec<u8> {
    std::fs::read(format!("{REAL}{name}")).unwrap()
}

fn through_framework(bytes: Vec<u8>) -> Vec<RowResult> {
    parse_reader(
        ImportFormat::KindleClippings,
        Box::new(std::io::Cursor::new(bytes)),
    )
    .unwrap()
    .collect()
}

fn books(rows: &[RowResult]) -> Vec<&SourceRecord> {
    rows.iter().filter_map(|r| r.as_ref().ok()).collect()
}

/// Records as JSON without `raw`, errors as `{row, error}`, for snapshots.
fn snapshot_json(rows: &[RowResult]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| match r {
                Ok(rec) => {
                    let mut v = serde_json::to_value(rec).unwrap();
                    v.as_object_mut().unwrap().remove("raw");
                    v
                }
                Err(e) => serde_json::json!({"row": e.row, "error": e.message}),
            })
            .collect(),
    )
}

#[test]
fn all_real_samples_import_without_failed_rows() {
    for name in [
        "my_clippings_languages_examples.txt",
        "page_only_and_lowercase.txt",
        "multiline_notes.txt",
    ] {
        let bytes = real(name);
        assert_eq!(
            detect(&bytes),
            Some(ImportFormat::KindleClippings),
            "{name}"
        );
        let rows = through_framework(bytes);
        let failed: Vec<_> = rows.iter().filter_map(|r| r.as_ref().err()).collect();
        assert!(failed.is_empty(), "{name}: {failed:?}");
        assert!(!rows.is_empty(), "{name}");
    }
}

#[test]
fn eleven_languages_give_the_right_kind_dates_and_positions() {
    let languages = [
        "Deutsch",
        "Español",
        "Français",
        "Italiano",
        "Japanese",
        "Nederlands",
        "Português (Brasil)",
        "Russian",
        "Chinese",
        "English (US)",
        "English (UK)",
    ];
    let entries: Vec<_> = parse_entries(&real("my_clippings_languages_examples.txt"))
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(entries.len(), 33);
    for (lang, triple) in languages.iter().zip(entries.chunks(3)) {
        let kinds: Vec<_> = triple.iter().map(|e| e.meta.kind).collect();
        assert_eq!(
            kinds,
            [ClipKind::Highlight, ClipKind::Note, ClipKind::Bookmark],
            "{lang}"
        );
        assert_eq!(triple[0].body, format!("My highlight in {lang}"));
        assert_eq!(triple[1].body, format!("My note in {lang}"));
        assert_eq!(triple[0].meta.page, Some((112, 112)), "{lang}");
        assert_eq!(triple[0].meta.location, Some((1300, 1301)), "{lang}");
        assert_eq!(triple[1].meta.location, Some((1300, 1300)), "{lang}");
        for e in triple {
            assert_eq!(
                e.meta.at.map(|d| d.to_rfc3339()).as_deref(),
                Some("2024-08-22T18:10:53+00:00"),
                "{lang}: {}",
                e.meta_line
            );
            assert_eq!(e.title, "Hexagonal Architecture Explained");
            assert_eq!(e.author.as_deref(), Some("Cockburn, Alistair"));
        }
    }
}

#[test]
fn languages_file_groups_into_one_book_and_skips_bookmarks() {
    let c = parse_clippings(&real("my_clippings_languages_examples.txt"));
    assert_eq!(c.entries, 33);
    assert_eq!(c.skipped, 11, "the 11 bookmarks are skipped, not failed");
    let books = books(&c.rows);
    assert_eq!(books.len(), 1);
    let book = books[0];
    assert_eq!(book.authors, ["Alistair Cockburn"]);
    // All 11 highlights cover the same range, so each later one is an edit of the one
    // before; the notes sit inside that range and the last one wins.
    assert_eq!(book.highlights.len(), 1);
    let h = &book.highlights[0];
    assert_eq!(h.kind, HighlightKind::Highlight);
    assert_eq!(h.text, "My highlight in English (UK)");
    assert_eq!(h.note.as_deref(), Some("My note in English (UK)"));
    assert_eq!((h.location_start, h.location_end), (Some(1300), Some(1301)));
}

#[test]
fn page_only_crlf_and_bom_per_entry() {
    let c = parse_clippings(&real("page_only_and_lowercase.txt"));
    assert_eq!((c.entries, c.skipped), (5, 0));
    let books = books(&c.rows);
    let summary: Vec<(&str, Vec<String>, usize)> = books
        .iter()
        .map(|b| (b.title.as_str(), b.authors.clone(), b.highlights.len()))
        .collect();
    assert_eq!(
        summary,
        [
            (
                "Kindle Paperwhite User\u{2019}s Guide, 7th Edition",
                vec!["Amazon".to_string()],
                1
            ),
            ("Rutherford 1996 - Of Birds and Gifts", vec![], 1),
            ("Brubaker 2004 - Ethnicity without groups", vec![], 1),
            (
                "Dangerous Visions (S.F. MASTERWORKS)",
                vec!["Harlan Ellison".to_string()],
                1
            ),
            (
                "The Early Works of F. Scott Fitzgerald (With Active Table of Contents)",
                vec!["F. Scott Fitzgerald".to_string()],
                1
            ),
        ]
    );
    // No BOM or CR survives into titles or text.
    for b in &books {
        assert!(!b.title.contains('\u{feff}') && !b.title.contains('\r'));
        for h in &b.highlights {
            assert!(!h.text.contains('\r'));
        }
    }
    insta::assert_json_snapshot!("page_only_and_lowercase", snapshot_json(&c.rows));
}

#[test]
fn multiline_note_attaches_to_the_highlight_at_its_location() {
    let c = parse_clippings(&real("multiline_notes.txt"));
    assert_eq!((c.entries, c.skipped), (2, 0));
    let books = books(&c.rows);
    assert_eq!(books.len(), 1);
    assert_eq!(books[0].highlights.len(), 1);
    let h = &books[0].highlights[0];
    assert_eq!(h.text, "all\u{2019}espressione");
    assert_eq!(h.note.as_deref(), Some("This\nis\na\ntest\nnote"));
    insta::assert_json_snapshot!("multiline_notes", snapshot_json(&c.rows));
}

#[test]
fn synthetic_edits_notes_bookmarks_and_broken_entries() {
    let bytes = std::fs::read(format!("{DATA}kindle_synthetic_clippings.txt")).unwrap();
    let c = parse_clippings(&bytes);
    assert_eq!(c.entries, 9);
    // Bookmark, clipping-limit placeholder, empty highlight.
    assert_eq!(c.skipped, 3);
    let errors: Vec<_> = c.rows.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].row, 7);
    assert!(
        errors[0].message.contains("names no known kind"),
        "{}",
        errors[0]
    );

    let books = books(&c.rows);
    assert_eq!(books.len(), 2);
    let sea = books[0];
    assert_eq!(
        sea.highlights.len(),
        1,
        "the edited highlight replaced the first"
    );
    assert_eq!(
        sea.highlights[0].text,
        "The sea was calm, and the gulls were silent."
    );
    assert_eq!(
        sea.highlights[0].note.as_deref(),
        Some("Calm before the storm?\nSecond line of the note.")
    );
    let notes = books[1];
    assert_eq!(notes.title, "Notes (and Asides) on Things");
    assert_eq!(notes.authors, ["Jörg Beispiel", "Ann Sample"]);
    let kinds: Vec<_> = notes.highlights.iter().map(|h| h.kind).collect();
    assert_eq!(kinds, [HighlightKind::Highlight, HighlightKind::Note]);
    insta::assert_json_snapshot!("synthetic", snapshot_json(&c.rows));
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let c = parse_clippings(&bytes);
        prop_assert!(c.rows.len() as u64 <= c.entries);
    }

    #[test]
    fn clipping_shaped_noise_never_panics(
        parts in proptest::collection::vec(
            prop_oneof![
                Just("==========\r\n".to_string()),
                Just("\u{feff}".to_string()),
                Just("- Your Highlight on page ".to_string()),
                Just(" | Location ".to_string()),
                Just(" | Added on ".to_string()),
                Just("位置 #".to_string()),
                Just("年月日 下午 GMT+".to_string()),
                Just("–".to_string()),
                "[0-9:\\-() ]{0,8}",
                "\\PC{0,12}",
                Just("\n".to_string()),
            ],
            0..60,
        )
    ) {
        let text: String = parts.concat();
        let _ = parse_clippings(text.as_bytes());
    }
}
