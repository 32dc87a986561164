//! Streaming over the entries of one top-level JSON object or array, so a JSON export with
//! 100k books is parsed one entry at a time with flat memory.
//!
//! serde_json can only stream a top-level *sequence of values*, not the members of one
//! object, so this scanner finds each member's byte span (strings, escapes and nesting
//! respected) and hands that span to serde_json. Validation of the span is serde_json's job.

use crate::{ImportError, MAX_FIELD_BYTES, RowError};
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read};

/// One entry may not be larger than this.
pub const MAX_ENTRY_BYTES: usize = 8 * MAX_FIELD_BYTES;

/// What the document's top level is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopLevel {
    Object,
    Array,
}

/// One member of the top-level object (with its key) or element of the top-level array.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonEntry {
    /// 1-based position in the document.
    pub index: u64,
    pub key: Option<String>,
    pub value: Value,
}

enum Scanned {
    Entry(JsonEntry),
    /// Skipped whole without buffering; the scanner is still in step.
    TooLarge,
}

/// The entries of a top-level object or array, read lazily.
pub struct JsonEntries {
    reader: BufReader<Box<dyn Read + Send>>,
    top: TopLevel,
    index: u64,
    done: bool,
}

impl std::fmt::Debug for JsonEntries {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonEntries")
            .field("top", &self.top)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl JsonEntries {
    /// Reads up to the opening `{` or `[` (after an optional BOM and whitespace).
    pub fn open(reader: Box<dyn Read + Send>) -> Result<Self, ImportError> {
        let mut reader = BufReader::with_capacity(64 * 1024, reader);
        let buf = reader.fill_buf()?;
        if buf.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        }
        let mut this = Self {
            reader,
            top: TopLevel::Object,
            index: 0,
            done: false,
        };
        this.top = match this.skip_ws()? {
            Some(b'{') => TopLevel::Object,
            Some(b'[') => TopLevel::Array,
            Some(_) => {
                return Err(ImportError::Malformed(
                    "the file is not a JSON object or list".into(),
                ));
            }
            None => return Err(ImportError::Malformed("the file is empty".into())),
        };
        this.reader.consume(1);
        Ok(this)
    }

    pub fn top_level(&self) -> TopLevel {
        self.top
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.reader.fill_buf()?.first().copied())
    }

    fn skip_ws(&mut self) -> io::Result<Option<u8>> {
        loop {
            match self.peek()? {
                Some(b' ' | b'\t' | b'\r' | b'\n') => self.reader.consume(1),
                other => return Ok(other),
            }
        }
    }

    /// Appends one complete JSON value's bytes to `out` (or only measures it once `out`
    /// would pass the cap). Returns whether the value fitted.
    fn scan_value(&mut self, out: &mut Vec<u8>) -> Result<bool, String> {
        let mut depth = 0usize;
        let mut in_string = false;
        let mut escaped = false;
        let mut fits = true;
        let mut started = false;
        loop {
            let buf = self.reader.fill_buf().map_err(|e| e.to_string())?;
            if buf.is_empty() {
                return if started && depth == 0 && !in_string {
                    Ok(fits)
                } else {
                    Err("the file ends in the middle of an entry".into())
                };
            }
            let mut used = 0;
            let mut finished = false;
            for &b in buf {
                if in_string {
                    used += 1;
                    if escaped {
                        escaped = false;
                    } else if b == b'\\' {
                        escaped = true;
                    } else if b == b'"' {
                        in_string = false;
                        if depth == 0 {
                            finished = true;
                            break;
                        }
                    }
                    continue;
                }
                match b {
                    b'"' => in_string = true,
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' if depth == 0 => {
                        // The end of the enclosing container: a scalar ended just before.
                        finished = true;
                        break;
                    }
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            used += 1;
                            finished = true;
                            break;
                        }
                    }
                    b',' | b' ' | b'\t' | b'\r' | b'\n' if depth == 0 && started => {
                        finished = true;
                        break;
                    }
                    _ => {}
                }
                started = true;
                used += 1;
            }
            if fits && out.len() + used <= MAX_ENTRY_BYTES {
                out.extend_from_slice(&buf[..used]);
            } else {
                fits = false;
                out.clear();
            }
            self.reader.consume(used);
            if finished {
                return Ok(fits);
            }
        }
    }

    fn next_entry(&mut self) -> Result<Option<Scanned>, String> {
        let mut b = self.skip_ws().map_err(|e| e.to_string())?;
        if self.index > 0 {
            match b {
                Some(b',') => {
                    self.reader.consume(1);
                    b = self.skip_ws().map_err(|e| e.to_string())?;
                }
                Some(b'}' | b']') => return Ok(None),
                Some(other) => {
                    return Err(format!(
                        "expected a comma between entries, found '{}'",
                        char::from(other).escape_default()
                    ));
                }
                None => return Err("the file ends before the closing bracket".into()),
            }
        } else if matches!(b, Some(b'}' | b']')) {
            return Ok(None);
        }
        if b.is_none() {
            return Err("the file ends before the closing bracket".into());
        }
        self.index += 1;
        let key = if self.top == TopLevel::Object {
            let mut key_bytes = Vec::new();
            if b != Some(b'"') || !self.scan_value(&mut key_bytes)? {
                return Err("an entry has no key".into());
            }
            let key: String = serde_json::from_slice(&key_bytes)
                .map_err(|e| format!("an entry key is not valid JSON text: {e}"))?;
            if self.skip_ws().map_err(|e| e.to_string())? != Some(b':') {
                return Err(format!("entry \"{key}\" has no ':' after its key"));
            }
            self.reader.consume(1);
            self.skip_ws().map_err(|e| e.to_string())?;
            Some(key)
        } else {
            None
        };
        let mut bytes = Vec::new();
        if !self.scan_value(&mut bytes)? {
            return Ok(Some(Scanned::TooLarge));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the entry is not valid JSON: {e}"))?;
        Ok(Some(Scanned::Entry(JsonEntry {
            index: self.index,
            key,
            value,
        })))
    }
}

impl Iterator for JsonEntries {
    type Item = Result<JsonEntry, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_entry() {
            Ok(Some(Scanned::Entry(entry))) => Some(Ok(entry)),
            Ok(None) => {
                self.done = true;
                None
            }
            Ok(Some(Scanned::TooLarge)) => Some(Err(RowError::new(
                self.index,
                format!(
                    "the entry is larger than the {} MiB limit",
                    MAX_ENTRY_BYTES >> 20
                ),
            ))),
            Err(message) => {
                // Past a syntax error nothing can be trusted to line up again.
                self.done = true;
                Some(Err(RowError::new(self.index.max(1), message)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(text: &'static str) -> Vec<Result<JsonEntry, RowError>> {
        JsonEntries::open(Box::new(text.as_bytes()))
            .unwrap()
            .collect()
    }

    #[test]
    fn object_members_stream_with_keys() {
        let got = entries(" {\"1\": {\"a\": \"}\\\"\"}, \"2\" : [1, {\"b\": []}], \"3\": 7 }");
        let got: Vec<_> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].key.as_deref(), Some("1"));
        assert_eq!(got[0].value["a"], "}\"");
        assert_eq!(got[1].value[1]["b"], serde_json::json!([]));
        assert_eq!(got[2].value, 7);
        assert_eq!(got[2].index, 3);
    }

    #[test]
    fn arrays_and_empties() {
        assert!(entries("[]").is_empty());
        assert!(entries("{ }").is_empty());
        let got = entries("[1,\"x\" , null,true]");
        assert_eq!(got.len(), 4);
        assert_eq!(got[3].as_ref().unwrap().value, true);
    }

    #[test]
    fn syntax_errors_end_the_stream_with_a_row_error() {
        let got = entries("[{\"a\":1} {\"b\":2}]");
        assert_eq!(got.len(), 2);
        assert!(got[1].is_err());
        let got = entries("{\"a\": {\"b\": ");
        assert_eq!(got.len(), 1);
        assert!(got[0].is_err());
    }

    #[test]
    fn not_json_is_a_whole_file_error() {
        assert!(JsonEntries::open(Box::new(&b"Title,Author"[..])).is_err());
    }
}
