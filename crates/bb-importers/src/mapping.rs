//! Export vocabulary mapped onto the library model, shared by the parsers: status words and
//! shelves, identifier lists without duplicates, read-through counts, optional editions.

use bb_core::library::{Edition, Identifier, ReadThrough};

/// No export needs more placeholder read-throughs than this; a larger `Read Count` is
/// believed only up to here so a hostile number cannot allocate without bound.
pub const MAX_READS: usize = 100;

pub use bb_core::library::text::status_from_word;

/// Appends identifiers that are not already present.
pub fn add_identifiers(list: &mut Vec<Identifier>, new: impl IntoIterator<Item = Identifier>) {
    for id in new {
        if !list.contains(&id) {
            list.push(id);
        }
    }
}

/// Pads `reads` with undated read-throughs up to `count`: exports such as Goodreads date only
/// the latest read but say how many there were.
pub fn pad_reads(reads: &mut Vec<ReadThrough>, count: u64) {
    let wanted = usize::try_from(count).unwrap_or(usize::MAX).min(MAX_READS);
    while reads.len() < wanted {
        reads.push(ReadThrough {
            started: None,
            finished: None,
        });
    }
}

/// `None` when the source said nothing about the edition.
pub fn edition_if_any(edition: Edition) -> Option<Edition> {
    (edition != Edition::default()).then_some(edition)
}

/// Adds a shelf name unless it is already there (compared without regard to case).
pub fn add_shelf(shelves: &mut Vec<String>, name: &str) {
    let name = name.trim();
    if !name.is_empty() && !shelves.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        shelves.push(name.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::library::ReadingStatus;

    #[test]
    fn status_words() {
        assert_eq!(
            status_from_word("Want to Read"),
            Some(ReadingStatus::ToRead)
        );
        assert_eq!(
            status_from_word("currently-reading"),
            Some(ReadingStatus::Reading)
        );
        assert_eq!(
            status_from_word("Read but unowned"),
            Some(ReadingStatus::Read)
        );
        assert_eq!(status_from_word("DNF"), Some(ReadingStatus::DidNotFinish));
        assert_eq!(status_from_word("on_hold"), Some(ReadingStatus::Paused));
        assert_eq!(status_from_word("waiting"), None);
    }

    #[test]
    fn reads_are_padded_and_capped() {
        let mut reads = Vec::new();
        pad_reads(&mut reads, 2);
        assert_eq!(reads.len(), 2);
        pad_reads(&mut reads, u64::MAX);
        assert_eq!(reads.len(), MAX_READS);
    }
}
