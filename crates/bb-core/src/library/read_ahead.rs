//! An import's rows read ahead on a thread of their own: the file is parsed, mapped and
//! keyed for matching while the merge and the store work on the rows before them, so a
//! large import keeps two cores busy instead of one.
//!
//! Rows cross in batches through a bounded channel, so the reader runs at most
//! [`DEPTH`] batches ahead and memory stays flat however large the file is. Dropping the
//! iterator (an import that stops early) stops the reader at its next batch.

use super::service::RowFailure;
use std::sync::mpsc::{Receiver, sync_channel};
use std::thread::JoinHandle;

/// Rows handed over at a time.
const BATCH: usize = 256;
/// Batches the reader may run ahead.
const DEPTH: usize = 4;

/// The rows of `rows`, produced on a reader thread.
#[derive(Debug)]
pub(super) struct ReadAhead<T> {
    batches: Receiver<Vec<Result<T, RowFailure>>>,
    current: std::vec::IntoIter<Result<T, RowFailure>>,
    reader: Option<JoinHandle<()>>,
}

impl<T: Send + 'static> ReadAhead<T> {
    /// Starts reading `rows` on a new thread; if no thread can be started, `rows` come
    /// back unread for the caller to read itself.
    pub(super) fn start<I>(rows: I) -> Result<Self, I>
    where
        I: Iterator<Item = Result<T, RowFailure>> + Send + 'static,
    {
        let (tx, batches) = sync_channel(DEPTH);
        // The rows go into the thread; if it cannot start they are handed back, unread.
        let slot = std::sync::Arc::new(std::sync::Mutex::new(Some(rows)));
        let theirs = std::sync::Arc::clone(&slot);
        let spawned = std::thread::Builder::new()
            .name("import-reader".into())
            .spawn(move || {
                let Some(mut rows) = theirs.lock().ok().and_then(|mut r| r.take()) else {
                    return;
                };
                loop {
                    let batch: Vec<_> = rows.by_ref().take(BATCH).collect();
                    if batch.is_empty() || tx.send(batch).is_err() {
                        return;
                    }
                }
            });
        match spawned {
            Ok(reader) => Ok(Self {
                batches,
                current: Vec::new().into_iter(),
                reader: Some(reader),
            }),
            Err(_) => match slot.lock().ok().and_then(|mut r| r.take()) {
                Some(rows) => Err(rows),
                // Unreachable: a thread that never started took nothing.
                None => Ok(Self {
                    batches,
                    current: Vec::new().into_iter(),
                    reader: None,
                }),
            },
        }
    }
}

impl<T> Iterator for ReadAhead<T> {
    type Item = Result<T, RowFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(row) = self.current.next() {
                return Some(row);
            }
            if let Ok(batch) = self.batches.recv() {
                self.current = batch.into_iter();
                continue;
            }
            // The reader is done. Had it panicked, the rows after its last batch were
            // never read: that is reported, not passed over as the end of the file.
            let reader = self.reader.take()?;
            return reader.join().err().map(|_| {
                Err(RowFailure {
                    row: 0,
                    message: "reading the file stopped unexpectedly; the rows after the \
                              last one imported were not read"
                        .into(),
                })
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(n: u64) -> impl Iterator<Item = Result<u64, RowFailure>> + Send + 'static {
        (1..=n).map(|i| {
            if i % 100 == 0 {
                Err(RowFailure {
                    row: i,
                    message: "bad".into(),
                })
            } else {
                Ok(i)
            }
        })
    }

    fn started<I>(rows: I) -> ReadAhead<u64>
    where
        I: Iterator<Item = Result<u64, RowFailure>> + Send + 'static,
    {
        ReadAhead::start(rows).unwrap_or_else(|_| panic!("no reader thread"))
    }

    #[test]
    fn every_row_arrives_in_order_with_its_failures() {
        let read: Vec<_> = started(rows(10_000)).collect();
        let direct: Vec<_> = rows(10_000).collect();
        assert_eq!(read.len(), direct.len());
        for (a, b) in read.iter().zip(&direct) {
            match (a, b) {
                (Ok(x), Ok(y)) => assert_eq!(x, y),
                (Err(x), Err(y)) => assert_eq!(x.row, y.row),
                _ => panic!("row differs"),
            }
        }
    }

    #[test]
    fn a_reader_that_panics_is_reported_not_taken_for_the_end() {
        let boom = (1..=600u64).map(|i| {
            assert!(i < 500, "parser bug");
            Ok::<_, RowFailure>(i)
        });
        let read: Vec<_> = started(boom).collect();
        // The batches sent before the panic arrive, then a failure says rows were lost.
        let last = read.last().unwrap();
        assert!(matches!(last, Err(f) if f.message.contains("stopped unexpectedly")));
        assert_eq!(read.iter().filter(|r| r.is_ok()).count(), 256);
    }

    #[test]
    fn dropping_it_early_stops_the_reader() {
        let mut it = started(rows(u64::MAX));
        assert!(matches!(it.next(), Some(Ok(1))));
        let reader = it.reader.take().unwrap();
        drop(it);
        // An endless reader left running would never be joined.
        reader.join().unwrap();
    }
}
