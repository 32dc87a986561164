//! Audible API `1.0/library` JSON: the item mapping shared with the live Audible sync
//! ([`map_library_item`]), the page-stream parser for uploaded API dumps, and the small
//! Audible vocabulary (ASINs, cover sizes, progress → status) that the audible-cli and
//! Libation exports reuse.

use crate::json_stream::JsonEntries;
use crate::{ImportError, ImportFormat, MAX_DOCUMENT_BYTES, RowError, RowResult, Rows};
use bb_core::library::Cover;
pub use bb_core::library::audible::map_library_item;
pub(crate) use bb_core::library::audible::{
    Fields, asin_identifiers, edition, kind_of, progress_from, status_from,
};
use serde_json::Value;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One page of a concatenated or NDJSON dump may not be larger than this.
const MAX_PAGE_BYTES: u64 = 4 * MAX_DOCUMENT_BYTES;

/// A cover from a bare Amazon image URL; `…/51abc._SL500_.jpg` says its size.
pub(crate) fn cover_from_url(url: &str) -> Option<Cover> {
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return None;
    }
    let size = url
        .find("._SL")
        .map(|i| &url[i + 4..])
        .and_then(|rest| rest.split('_').next())
        .and_then(|n| n.parse::<u32>().ok());
    Some(Cover {
        url: url.to_string(),
        width: size,
        height: size,
    })
}

/// Recognises the Audible-derived JSON exports from the start of a file: an API dump
/// (`items`/`item`, or items whose `authors` is a list), audible-cli (`asin` with
/// `authors` as a string and its own column names), or Libation (`AudibleProductId`).
pub(crate) fn detect_json(head: &str) -> Option<ImportFormat> {
    if head.contains("\"AudibleProductId\"") {
        return Some(ImportFormat::LibationJson);
    }
    if !head.contains("\"asin\"") {
        return None;
    }
    let list_of_people =
        value_starts_with(head, "authors", '[') || value_starts_with(head, "narrators", '[');
    if head.contains("\"items\"")
        || head.contains("\"item\"")
        || head.contains("\"response_groups\"")
        || head.contains("\"product_images\"")
        || list_of_people
    {
        return Some(ImportFormat::AudibleApiJson);
    }
    let cli_keys = [
        "series_title",
        "cover_url",
        "runtime_length_min",
        "num_ratings",
        "genres",
    ];
    cli_keys
        .iter()
        .any(|k| head.contains(&format!("\"{k}\"")))
        .then_some(ImportFormat::AudibleCliJson)
}

/// Whether the first `"key":` in `text` has a value starting with `open`.
fn value_starts_with(text: &str, key: &str, open: char) -> bool {
    let needle = format!("\"{key}\"");
    text.find(&needle).is_some_and(|i| {
        let rest = text[i + needle.len()..].trim_start();
        rest.strip_prefix(':')
            .is_some_and(|r| r.trim_start().starts_with(open))
    })
}

/// Recognises audible-cli and Libation tables from their lower-cased header names.
pub(crate) fn detect_table(names: &[String], delimiter: u8) -> Option<ImportFormat> {
    let has = |n: &str| names.iter().any(|h| h == n);
    if has("audible product id") || has("audibleproductid") {
        return Some(ImportFormat::LibationCsv);
    }
    if has("asin")
        && has("title")
        && (has("runtime_length_min") || has("series_title") || has("percent_complete"))
    {
        return Some(if delimiter == b'\t' {
            ImportFormat::AudibleCliTsv
        } else {
            ImportFormat::AudibleCliCsv
        });
    }
    None
}

/// Parses an uploaded dump of `1.0/library` responses. Accepted shapes, all seen from the
/// tools that save them:
/// - one page `{"items": [...], "response_groups": [...]}` (audible `client.get` saved
///   with `json.dump`), or one `{"item": {...}}` from `library/{asin}`;
/// - a JSON list of pages (a script collecting every page), or a list of bare items;
/// - pages concatenated or one per line (NDJSON), as a browser extension streams them.
///
/// Items are numbered from 1 across all pages; that number is the error row.
pub(crate) fn parse(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let mut reader = BufReader::with_capacity(64 * 1024, reader);
    let first = loop {
        let buf = reader.fill_buf()?;
        let Some(&b) = buf.first() else {
            return Err(ImportError::Malformed("the file is empty".into()));
        };
        if buf.starts_with(b"\xEF\xBB\xBF") {
            reader.consume(3);
        } else if b.is_ascii_whitespace() {
            reader.consume(1);
        } else {
            break b;
        }
    };
    let source = match first {
        // A list: pages (or items) one element at a time, memory bounded per element.
        b'[' => PageSource::List(JsonEntries::open(Box::new(reader))?),
        b'{' => {
            let budget = Arc::new(AtomicU64::new(0));
            let capped = CappedReader {
                inner: reader,
                used: Arc::clone(&budget),
            };
            PageSource::Stream(
                serde_json::Deserializer::from_reader(capped).into_iter::<Value>(),
                budget,
            )
        }
        _ => {
            return Err(ImportError::Unrecognised(
                "an Audible library dump is JSON: a page object, a list of pages, or pages \
                 one per line"
                    .into(),
            ));
        }
    };
    Ok(Box::new(ApiRows {
        source,
        pending: Vec::new().into_iter(),
        next_row: 1,
        done: false,
    }))
}

enum PageSource {
    List(JsonEntries),
    Stream(
        serde_json::StreamDeserializer<'static, serde_json::de::IoRead<CappedReader>, Value>,
        Arc<AtomicU64>,
    ),
}

struct ApiRows {
    source: PageSource,
    pending: std::vec::IntoIter<Value>,
    next_row: u64,
    done: bool,
}

impl ApiRows {
    /// The next top-level value (a page or an item), or a row error for a broken one.
    fn next_value(&mut self) -> Option<Result<Value, String>> {
        match &mut self.source {
            PageSource::List(entries) => entries.next().map(|r| {
                r.map(|e| e.value)
                    .map_err(|e| format!("list element {} could not be read: {}", e.row, e.message))
            }),
            PageSource::Stream(stream, budget) => {
                budget.store(0, Ordering::Relaxed);
                let v = stream.next()?;
                Some(v.map_err(|e| {
                    // A syntax error leaves the stream out of step: stop after reporting it.
                    self.done = true;
                    if e.is_io() {
                        format!("a page is larger than {} MiB", MAX_PAGE_BYTES >> 20)
                    } else {
                        format!("the file is not valid JSON here: {e}")
                    }
                }))
            }
        }
    }
}

/// A page's items: `{"items": [...]}`, `{"item": {...}}`, or a bare item.
fn page_items(v: Value) -> Result<Vec<Value>, String> {
    match v {
        Value::Object(mut o) => {
            if let Some(items) = o.remove("items") {
                return match items {
                    Value::Array(items) => Ok(items),
                    Value::Null => Ok(Vec::new()),
                    other => Err(format!(
                        "\"items\" is {} rather than a list",
                        kind_of(&other)
                    )),
                };
            }
            if let Some(item) = o.remove("item") {
                return Ok(vec![item]);
            }
            if o.contains_key("asin") {
                return Ok(vec![Value::Object(o)]);
            }
            Err("a page has neither \"items\" nor \"item\" (is this a library response?)".into())
        }
        Value::Array(items) => Ok(items),
        other => Err(format!(
            "a page is {} rather than an object",
            kind_of(&other)
        )),
    }
}

impl Iterator for ApiRows {
    type Item = RowResult;

    fn next(&mut self) -> Option<RowResult> {
        loop {
            if let Some(item) = self.pending.next() {
                let row = self.next_row;
                self.next_row += 1;
                return Some(map_library_item(&item).map_err(|m| RowError::new(row, m)));
            }
            if self.done {
                return None;
            }
            let value = match self.next_value() {
                None => {
                    self.done = true;
                    return None;
                }
                // JsonEntries ends itself after a syntax error and skips a too-large
                // element in step; the stream source sets `done` itself.
                Some(Err(message)) => return Some(Err(RowError::new(self.next_row, message))),
                Some(Ok(v)) => v,
            };
            match page_items(value) {
                Ok(items) => self.pending = items.into_iter(),
                Err(message) => return Some(Err(RowError::new(self.next_row, message))),
            }
        }
    }
}

/// Fails the read once one top-level value passes [`MAX_PAGE_BYTES`]; the counter is reset
/// before each value.
struct CappedReader {
    inner: BufReader<Box<dyn Read + Send>>,
    used: Arc<AtomicU64>,
}

impl Read for CappedReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.used.load(Ordering::Relaxed) > MAX_PAGE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "page size limit reached",
            ));
        }
        let n = self.inner.read(buf)?;
        self.used.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
