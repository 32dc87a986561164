//! Shared CSV/TSV reading: delimiter sniffing, BOM and CRLF tolerance, header lookup by name
//! through alias lists, field-by-field lossy UTF-8 decoding, size caps, and the raw row kept
//! as received (a [`RawRow`]: its fields' text, with column names shared by every row).
//!
//! Columns are always found by header name, never by position: every producer has changed
//! its header at least once (formats.md §1.1).

use crate::{ImportError, MAX_FIELD_BYTES, RowError};
use bb_core::library::{Raw, RawColumns, RawRow};
use csv::ByteRecord;
use serde_json::Value;
use std::borrow::Cow;
use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::sync::{Arc, Mutex, PoisonError};

/// One row may not span more bytes than this (several fields under the field cap could
/// otherwise still add up to an unbounded buffer inside the CSV reader).
pub const MAX_ROW_BYTES: u64 = 8 * MAX_FIELD_BYTES as u64;
/// How far we look for the end of the header line when sniffing the delimiter.
const HEADER_SNIFF_BYTES: usize = 64 * 1024;
const BOM: &[u8] = b"\xEF\xBB\xBF";
/// Row lengths whose column names a table keeps for its later rows.
const MAX_KEPT_SHAPES: usize = 8;

/// An open CSV file whose header has been read.
pub struct CsvTable {
    reader: csv::Reader<GuardedReader>,
    tracker: Arc<Mutex<Tracker>>,
    headers: Vec<String>,
    /// The raw rows' columns, by how many fields a row has: the header's for a full row,
    /// fewer for a short one, `column N` added for fields past the header.
    columns: HashMap<usize, Arc<RawColumns>>,
    delimiter: u8,
    record: ByteRecord,
    done: bool,
}

impl std::fmt::Debug for CsvTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvTable")
            .field("headers", &self.headers)
            .field("delimiter", &char::from(self.delimiter))
            .finish_non_exhaustive()
    }
}

/// One data row, decoded.
#[derive(Debug, Clone)]
pub struct CsvRow {
    /// The file line the record starts on (the header is line 1).
    pub line: u64,
    fields: RawRow,
    /// The fields that held bytes that are not UTF-8, in order.
    damaged: Vec<usize>,
}

impl CsvTable {
    /// Reads the header line, sniffing the delimiter (`,`, `;` or tab) from it.
    pub fn open(reader: Box<dyn Read + Send>) -> Result<Self, ImportError> {
        let (head, rest) = read_header_prefix(reader)?;
        let delimiter = sniff_delimiter(&head);
        let tracker = Arc::new(Mutex::new(Tracker::default()));
        let guarded = GuardedReader {
            inner: Box::new(io::Cursor::new(head).chain(rest)),
            tracker: Arc::clone(&tracker),
        };
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(guarded);
        let mut header = ByteRecord::new();
        let found = reader
            .read_byte_record(&mut header)
            .map_err(|e| ImportError::Malformed(format!("the header line cannot be read: {e}")))?;
        if !found {
            return Err(ImportError::Malformed("the file is empty".into()));
        }
        let headers = header
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let text = String::from_utf8_lossy(h);
                let name = text.trim_start_matches('\u{feff}').trim();
                if name.is_empty() {
                    format!("column {}", i + 1)
                } else {
                    name.to_string()
                }
            })
            .collect();
        lock(&tracker).row_done();
        Ok(Self {
            reader,
            tracker,
            headers,
            columns: HashMap::new(),
            delimiter,
            record: ByteRecord::new(),
            done: false,
        })
    }

    pub fn headers(&self) -> &[String] {
        &self.headers
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The first column whose header equals one of `aliases`, ignoring case and spaces at
    /// the ends. Aliases are tried in order, so put the current name first.
    pub fn column(&self, aliases: &[&str]) -> Option<usize> {
        aliases.iter().find_map(|alias| {
            self.headers
                .iter()
                .position(|h| h.trim().eq_ignore_ascii_case(alias.trim()))
        })
    }

    /// Like [`column`](Self::column) but a missing column is a whole-file error naming it:
    /// a file without its key columns must fail loudly, not import zero books.
    pub fn require(&self, label: &str, aliases: &[&str]) -> Result<usize, ImportError> {
        self.column(aliases).ok_or_else(|| {
            ImportError::Unrecognised(format!(
                "the header has no \"{label}\" column (found: {})",
                self.headers.join(", ")
            ))
        })
    }

    /// The next non-blank row; `None` at the end. After a read error the table ends.
    pub fn next_row(&mut self) -> Option<Result<CsvRow, RowError>> {
        loop {
            if self.done {
                return None;
            }
            let line_before = lock(&self.tracker).lines_seen() + 1;
            match self.reader.read_byte_record(&mut self.record) {
                Ok(false) => {
                    self.done = true;
                    return None;
                }
                Ok(true) => {}
                Err(e) => {
                    // The CSV reader cannot resynchronise reliably after an I/O failure
                    // (including our size guard), so the table ends with one error row.
                    self.done = true;
                    return Some(Err(RowError::new(line_before, read_error_message(&e))));
                }
            }
            let line = {
                let mut tracker = lock(&self.tracker);
                tracker.row_done();
                self.record
                    .position()
                    .map_or(line_before, |p| tracker.line_at(p.byte()))
            };
            if self.record.iter().all(|f| f.trim_ascii().is_empty()) {
                continue;
            }
            return Some(self.decode(line));
        }
    }

    /// The columns of a row with `fields` fields. The first few shapes a file has are kept
    /// for its later rows; a file whose rows keep changing length gets each row's columns
    /// anew, so what is kept stays bounded however ragged the file.
    fn columns_for(&mut self, fields: usize) -> Arc<RawColumns> {
        if let Some(c) = self.columns.get(&fields) {
            return Arc::clone(c);
        }
        let columns = RawColumns::new(
            (0..fields)
                .map(|i| {
                    self.headers
                        .get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("column {}", i + 1))
                })
                .collect(),
        );
        if self.columns.len() < MAX_KEPT_SHAPES {
            self.columns.insert(fields, Arc::clone(&columns));
        }
        columns
    }

    fn decode(&mut self, line: u64) -> Result<CsvRow, RowError> {
        let columns = self.columns_for(self.record.len());
        let mut fields = RawRow::with_capacity(Arc::clone(&columns), self.record.as_slice().len());
        let mut damaged = Vec::new();
        for (i, field) in self.record.iter().enumerate() {
            if field.len() > MAX_FIELD_BYTES {
                let name = columns.name(i).unwrap_or_default();
                return Err(RowError::new(
                    line,
                    format!("the \"{name}\" field is longer than the 1 MiB limit"),
                ));
            }
            // Decoding field by field keeps one stray MARC-8 byte from garbling the row
            // (or, as a whole-file latin-1 decode would, every row).
            match String::from_utf8_lossy(field) {
                Cow::Borrowed(s) => fields.push(s),
                Cow::Owned(s) => {
                    fields.push(&s);
                    damaged.push(i);
                }
            }
        }
        Ok(CsvRow {
            line,
            fields,
            damaged,
        })
    }
}

impl CsvTable {
    /// Turns the table into the import's row stream, mapping each decoded row with `map`.
    pub fn into_rows<F>(mut self, mut map: F) -> crate::Rows
    where
        F: FnMut(CsvRow) -> crate::RowResult + Send + 'static,
    {
        Box::new(std::iter::from_fn(move || {
            self.next_row().map(|row| row.and_then(&mut map))
        }))
    }
}

fn read_error_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => format!("the file could not be read past this row: {io}"),
        _ => format!("the row could not be read: {e}"),
    }
}

impl CsvRow {
    /// The trimmed value of `col`, or `None` when the column is absent or the cell empty.
    pub fn get(&self, col: Option<usize>) -> Option<&str> {
        let v = self.fields.get(col?)?.trim();
        (!v.is_empty()).then_some(v)
    }

    /// Whether `col` held bytes that are not UTF-8 (its value has replacement characters).
    pub fn is_damaged(&self, col: Option<usize>) -> bool {
        col.is_some_and(|c| self.damaged.contains(&c))
    }

    /// The row as received, to keep with the record.
    pub fn into_raw(self) -> Raw {
        Raw::Row(self.fields)
    }

    /// The row as its header→value object, for mappings shared with a JSON format.
    pub fn to_value(&self) -> Value {
        self.fields.to_value()
    }

    pub fn error(&self, message: impl Into<String>) -> RowError {
        RowError::new(self.line, message)
    }
}

/// Reads up to the end of the first line (outside quotes) so the delimiter can be sniffed,
/// dropping a leading BOM; returns those bytes and the untouched rest of the stream.
fn read_header_prefix(
    mut reader: Box<dyn Read + Send>,
) -> Result<(Vec<u8>, Box<dyn Read + Send>), ImportError> {
    let mut head = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ImportError::Io(e)),
        };
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
        if header_line(&head).len() < head.len() || head.len() >= HEADER_SNIFF_BYTES {
            break;
        }
    }
    if head.starts_with(BOM) {
        head.drain(..BOM.len());
    }
    Ok((head, reader))
}

/// The bytes of the first line, honouring quotes (a quoted header may hold a newline).
fn header_line(bytes: &[u8]) -> &[u8] {
    let mut quoted = false;
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => return &bytes[..i],
            _ => {}
        }
    }
    bytes
}

/// The most frequent of `,`, `;` and tab outside quotes in the header line; `,` on a tie.
pub fn sniff_delimiter(head: &[u8]) -> u8 {
    let head = head.strip_prefix(BOM).unwrap_or(head);
    let line = header_line(head);
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for &b in line {
        match b {
            b'"' => quoted = !quoted,
            b',' if !quoted => counts[0] += 1,
            b';' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b',', b';', b'\t'];
    let mut best = 0;
    for i in 1..3 {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    candidates[best]
}

/// The header names of a CSV head, lower-cased, for format sniffing.
pub fn header_names(head: &[u8]) -> Vec<String> {
    let head = head.strip_prefix(BOM).unwrap_or(head);
    let line = header_line(head);
    let delimiter = sniff_delimiter(line);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(line);
    let mut record = ByteRecord::new();
    match reader.read_byte_record(&mut record) {
        Ok(true) => record
            .iter()
            .map(|f| {
                String::from_utf8_lossy(f)
                    .trim_start_matches('\u{feff}')
                    .trim()
                    .to_lowercase()
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// What the guard knows about the bytes handed to the CSV reader.
///
/// The CSV reader's own line numbers lag on CRLF input and do not count skipped blank
/// lines, so line numbers are worked out here from the positions of line breaks.
#[derive(Debug, Default)]
struct Tracker {
    total: u64,
    row_start: u64,
    /// Line breaks not yet behind the last looked-up record: (offset, is `\n`).
    breaks: VecDeque<(u64, bool)>,
    /// `\n`s already behind the last looked-up record.
    lines_before: u64,
}

impl Tracker {
    fn row_done(&mut self) {
        self.row_start = self.total;
    }

    fn lines_seen(&self) -> u64 {
        self.lines_before
    }

    /// The 1-based line of the first byte at or after `offset` that is not a line break
    /// (the CSV reader reports a record as starting before the breaks that precede it).
    fn line_at(&mut self, offset: u64) -> u64 {
        let mut at = offset;
        while let Some(&(pos, is_lf)) = self.breaks.front() {
            match pos.cmp(&at) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => at += 1,
                std::cmp::Ordering::Greater => break,
            }
            self.lines_before += u64::from(is_lf);
            self.breaks.pop_front();
        }
        self.lines_before + 1
    }
}

fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    // Nothing panics while the lock is held, so a poisoned lock still holds good counts.
    tracker.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Feeds the CSV reader, recording line breaks, and fails the read once one row passes
/// [`MAX_ROW_BYTES`].
struct GuardedReader {
    inner: Box<dyn Read + Send>,
    tracker: Arc<Mutex<Tracker>>,
}

impl Read for GuardedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut tracker = lock(&self.tracker);
        if tracker.total - tracker.row_start > MAX_ROW_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("a row is longer than the {} MiB limit", MAX_ROW_BYTES >> 20),
            ));
        }
        let n = self.inner.read(buf)?;
        let base = tracker.total;
        for (i, &b) in buf[..n].iter().enumerate() {
            if b == b'\n' || b == b'\r' {
                tracker.breaks.push_back((base + i as u64, b == b'\n'));
            }
        }
        tracker.total += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(bytes: &'static [u8]) -> CsvTable {
        CsvTable::open(Box::new(bytes)).unwrap()
    }

    /// Rows of every length read with their own columns, and the table keeps only a few
    /// column lists, however many lengths the file has.
    #[test]
    fn a_ragged_file_keeps_a_bounded_set_of_columns() {
        let mut text = String::from("A,B\n");
        for n in 1..=40 {
            let row: Vec<String> = (1..=n).map(|i| format!("v{i}")).collect();
            text.push_str(&row.join(","));
            text.push('\n');
        }
        let mut t = CsvTable::open(Box::new(std::io::Cursor::new(text.into_bytes()))).unwrap();
        let mut rows = 0;
        while let Some(row) = t.next_row() {
            rows += 1;
            let raw = row.unwrap().to_value();
            let object = raw.as_object().unwrap();
            assert_eq!(object.len(), rows, "{raw}");
            assert_eq!(raw["A"], "v1");
            if rows >= 3 {
                assert_eq!(raw[format!("column {rows}")], format!("v{rows}"));
            }
        }
        assert_eq!(rows, 40);
        assert!(t.columns.len() <= MAX_KEPT_SHAPES, "{}", t.columns.len());
    }

    #[test]
    fn sniffs_delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1;2"), b',');
        assert_eq!(sniff_delimiter(b"a;b;c\n"), b';');
        assert_eq!(sniff_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(sniff_delimiter(b"\"a;b\",c\n"), b',');
    }

    #[test]
    fn bom_crlf_and_aliases() {
        let mut t = table(b"\xEF\xBB\xBFTitle;ISBN/UID\r\nDune;123\r\n\r\nEmma;\r\n");
        assert_eq!(t.headers(), ["Title", "ISBN/UID"]);
        let isbn = t.column(&["isbn", "isbn/uid"]);
        assert_eq!(isbn, Some(1));
        let row = t.next_row().unwrap().unwrap();
        assert_eq!(row.line, 2);
        assert_eq!(row.get(isbn), Some("123"));
        let row = t.next_row().unwrap().unwrap();
        assert_eq!(row.line, 4);
        assert_eq!(row.get(isbn), None);
        assert!(t.next_row().is_none());
    }

    #[test]
    fn invalid_utf8_is_local_to_its_field() {
        let mut t = table(b"a,b\nCort\xE2azar,exp\xC3\xA9rimental\n");
        let row = t.next_row().unwrap().unwrap();
        assert!(row.is_damaged(Some(0)));
        assert!(!row.is_damaged(Some(1)));
        assert_eq!(row.get(Some(1)), Some("expérimental"));
        assert_eq!(row.get(Some(0)), Some("Cort\u{fffd}azar"));
    }
}
