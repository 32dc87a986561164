//! Import framework: the format enum, whole-file and per-row errors, content sniffing and the
//! streaming dispatch from a format to its parser (one module per export format).
//!
//! Every parser turns an export into an iterator of [`RowResult`]s, one per book, so a
//! 100k-row file is read with flat memory and one bad row never sinks the rest. Whole-file
//! problems (not a file we know, unreadable header, too large) are [`ImportError`]s.

// Product names (LibraryThing, StoryGraph, SQLite) run through these docs as prose; putting
// them in backticks would make them read as code.
#![allow(clippy::doc_markdown)]

use std::fmt;
use std::io::Read;
use std::str::FromStr;

pub mod csv_table;
pub mod format;
pub mod json_stream;
pub mod text;

pub mod audible_api;
mod audible_cli;
pub mod kindle;
pub mod kobo;
mod libation;

mod calibre;
mod goodreads;
mod librarything;
mod mapping;
mod openlibrary;
mod storygraph;

pub use format::detect;

/// A field longer than this is refused (SECURITY G1): no book export has one, and an
/// unbounded field is how a hostile upload would pin memory.
pub const MAX_FIELD_BYTES: usize = 1 << 20;
/// More rows than this ends the import with an error row (SECURITY G1).
pub const MAX_ROWS: u64 = 1_000_000;
/// A single-record document (a `metadata.opf`) larger than this is refused whole.
pub const MAX_DOCUMENT_BYTES: u64 = 16 << 20;

/// One row (book) that could not be imported. The rest of the file still imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 1-based: for CSV the file line where the record starts (the header is line 1), for
    /// JSON and clippings the entry number.
    pub row: u64,
    /// Names the field and what was wrong with it, in the user's terms.
    pub message: String,
}

impl RowError {
    pub fn new(row: u64, message: impl Into<String>) -> Self {
        Self {
            row,
            message: message.into(),
        }
    }
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "row {}: {}", self.row, self.message)
    }
}

impl std::error::Error for RowError {}

pub type RowResult = Result<bb_core::library::SourceRecord, RowError>;

/// The rows of one import, produced lazily.
pub type Rows = Box<dyn Iterator<Item = RowResult> + Send>;

/// Every export format bookbridge can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ImportFormat {
    GoodreadsCsv,
    StorygraphCsv,
    LibrarythingJson,
    /// LibraryThing's tab-delimited export (its comma-separated export shares the header and
    /// is read by the same parser; the delimiter is sniffed).
    LibrarythingTsv,
    OpenlibraryCsv,
    CalibreCsv,
    CalibreOpf,
    AudibleCliJson,
    AudibleCliCsv,
    AudibleCliTsv,
    LibationJson,
    LibationCsv,
    AudibleApiJson,
    KindleClippings,
    KoboSqlite,
}

impl ImportFormat {
    pub const ALL: [ImportFormat; 15] = [
        ImportFormat::GoodreadsCsv,
        ImportFormat::StorygraphCsv,
        ImportFormat::LibrarythingJson,
        ImportFormat::LibrarythingTsv,
        ImportFormat::OpenlibraryCsv,
        ImportFormat::CalibreCsv,
        ImportFormat::CalibreOpf,
        ImportFormat::AudibleCliJson,
        ImportFormat::AudibleCliCsv,
        ImportFormat::AudibleCliTsv,
        ImportFormat::LibationJson,
        ImportFormat::LibationCsv,
        ImportFormat::AudibleApiJson,
        ImportFormat::KindleClippings,
        ImportFormat::KoboSqlite,
    ];

    /// Stable kebab-case id, used in the API, the CLI and stored jobs.
    pub fn as_str(self) -> &'static str {
        match self {
            ImportFormat::GoodreadsCsv => "goodreads-csv",
            ImportFormat::StorygraphCsv => "storygraph-csv",
            ImportFormat::LibrarythingJson => "librarything-json",
            ImportFormat::LibrarythingTsv => "librarything-tsv",
            ImportFormat::OpenlibraryCsv => "openlibrary-csv",
            ImportFormat::CalibreCsv => "calibre-csv",
            ImportFormat::CalibreOpf => "calibre-opf",
            ImportFormat::AudibleCliJson => "audible-cli-json",
            ImportFormat::AudibleCliCsv => "audible-cli-csv",
            ImportFormat::AudibleCliTsv => "audible-cli-tsv",
            ImportFormat::LibationJson => "libation-json",
            ImportFormat::LibationCsv => "libation-csv",
            ImportFormat::AudibleApiJson => "audible-api-json",
            ImportFormat::KindleClippings => "kindle-clippings",
            ImportFormat::KoboSqlite => "kobo-sqlite",
        }
    }

    /// The service the export comes from; records are keyed by (provider, external id).
    pub fn provider(self) -> &'static str {
        match self {
            ImportFormat::GoodreadsCsv => "goodreads",
            ImportFormat::StorygraphCsv => "storygraph",
            ImportFormat::LibrarythingJson | ImportFormat::LibrarythingTsv => "librarything",
            ImportFormat::OpenlibraryCsv => "openlibrary",
            ImportFormat::CalibreCsv | ImportFormat::CalibreOpf => "calibre",
            ImportFormat::AudibleCliJson
            | ImportFormat::AudibleCliCsv
            | ImportFormat::AudibleCliTsv
            | ImportFormat::AudibleApiJson => "audible",
            ImportFormat::LibationJson | ImportFormat::LibationCsv => "libation",
            ImportFormat::KindleClippings => "kindle",
            ImportFormat::KoboSqlite => "kobo",
        }
    }
}

impl fmt::Display for ImportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImportFormat {
    type Err = ImportError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim();
        ImportFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(wanted))
            .ok_or_else(|| ImportError::Unrecognised(format!("unknown import format \"{wanted}\"")))
    }
}

/// A whole-file failure: nothing from the file is imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not a file bookbridge recognises, or not the format the user picked.
    #[error("unrecognised file: {0}")]
    Unrecognised(String),
    #[error("{what} is larger than the limit of {limit}")]
    TooLarge { what: String, limit: u64 },
    #[error("could not read the file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is of the right kind but broken as a whole (no header, not JSON, …).
    #[error("the file is damaged: {0}")]
    Malformed(String),
}

impl ImportError {
    /// Stable, greppable code for logs and the one HTTP mapping.
    pub fn code(&self) -> &'static str {
        match self {
            ImportError::Unrecognised(_) => "import.unrecognised",
            ImportError::TooLarge { .. } => "import.too_large",
            ImportError::Io(_) => "import.io",
            ImportError::Malformed(_) => "import.malformed",
        }
    }
}

/// Parses `reader` as `format`, lazily. The caller drains the iterator; each item is one
/// book or one row-level error.
pub fn parse_reader(
    format: ImportFormat,
    reader: Box<dyn Read + Send>,
) -> Result<Rows, ImportError> {
    // Kept a plain match so each format's owner adds exactly one arm.
    let rows: Rows = match format {
        ImportFormat::GoodreadsCsv => goodreads::parse(reader)?,
        ImportFormat::StorygraphCsv => storygraph::parse(reader)?,
        ImportFormat::LibrarythingJson => librarything::parse_json(reader)?,
        ImportFormat::LibrarythingTsv => librarything::parse_tsv(reader)?,
        ImportFormat::OpenlibraryCsv => openlibrary::parse(reader)?,
        ImportFormat::CalibreCsv => calibre::parse_csv(reader)?,
        ImportFormat::CalibreOpf => calibre::parse_opf(reader)?,
        ImportFormat::AudibleCliJson => audible_cli::parse_json(reader)?,
        ImportFormat::AudibleCliCsv | ImportFormat::AudibleCliTsv => {
            audible_cli::parse_table(reader)?
        }
        ImportFormat::LibationJson => libation::parse_json(reader)?,
        ImportFormat::LibationCsv => libation::parse_csv(reader)?,
        ImportFormat::AudibleApiJson => audible_api::parse(reader)?,
        ImportFormat::KindleClippings => kindle::parse(reader)?,
        ImportFormat::KoboSqlite => {
            return Err(ImportError::Malformed(
                "a Kobo database is read from a file path, not a stream: use the Kobo importer"
                    .into(),
            ));
        }
    };
    Ok(Box::new(RowCap::new(rows)))
}

/// Ends any parser's stream with one error row once [`MAX_ROWS`] rows have been produced.
struct RowCap {
    inner: Rows,
    produced: u64,
    done: bool,
}

impl RowCap {
    fn new(inner: Rows) -> Self {
        Self {
            inner,
            produced: 0,
            done: false,
        }
    }
}

impl Iterator for RowCap {
    type Item = RowResult;

    fn next(&mut self) -> Option<RowResult> {
        if self.done {
            return None;
        }
        let item = self.inner.next();
        if item.is_none() {
            self.done = true;
            return None;
        }
        self.produced += 1;
        if self.produced > MAX_ROWS {
            self.done = true;
            let row = match &item {
                Some(Err(e)) => e.row,
                _ => self.produced,
            };
            return Some(Err(RowError::new(
                row,
                format!(
                    "the file has more than {MAX_ROWS} books; the import stopped here. \
                     Split the export into smaller files"
                ),
            )));
        }
        item
    }
}

impl fmt::Debug for RowCap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RowCap")
            .field("produced", &self.produced)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_row_cap_ends_the_stream_with_one_error() {
        let many: Rows = Box::new(
            std::iter::repeat_with(|| Ok(bb_core::library::SourceRecord::default()))
                .take(usize::try_from(MAX_ROWS).unwrap() + 5),
        );
        let mut capped = RowCap::new(many);
        let mut ok = 0u64;
        let mut errors = Vec::new();
        for row in capped.by_ref() {
            match row {
                Ok(_) => ok += 1,
                Err(e) => errors.push(e),
            }
        }
        assert_eq!(ok, MAX_ROWS);
        assert_eq!(errors.len(), 1);
        assert!(errors[0].message.contains("more than 1000000 books"));
        assert!(capped.next().is_none());
    }
}
