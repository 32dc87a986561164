//! Audible data → [`SourceRecord`]s. Library items go through
//! [`bb_core::library::audible::map_library_item`], the same code the importer of uploaded
//! `1.0/library` dumps uses; this module adds what only the live sync has: exact listening
//! positions (`annotations/lastpositions`), finished dates (`stats/status/finished`) and the
//! wishlist as a shelf.

use bb_core::library::record::{
    PartialDate, Position, Progress, ReadThrough, ReadingStatus, SourceRecord,
};
use chrono::{DateTime, Utc};
use serde_json::Value;

pub use bb_core::library::audible::map_library_item;

use super::client::ListeningPosition;

/// The shelf wishlist items are put on.
pub const WISHLIST_SHELF: &str = "wishlist";

/// A wishlist product (catalogue shape, §9) as a record on the [`WISHLIST_SHELF`]. Not
/// owned and not started: no status, progress or reads, only the shelf and when it was
/// added.
pub fn map_wishlist_product(product: &Value) -> Result<SourceRecord, String> {
    let mut record = map_library_item(product)?;
    record.shelves = vec![WISHLIST_SHELF.to_owned()];
    record.status = None;
    record.status_at = None;
    record.progress = None;
    record.reads.clear();
    record.rating = None;
    record.review = None;
    record.added_at = product
        .get("added_timestamp")
        .and_then(Value::as_str)
        .and_then(super::wire::parse_utc);
    Ok(record)
}

/// Adds the exact resume position. The fraction stays the library's `percent_complete`
/// when it has one; otherwise it is derived from the runtime.
pub fn apply_position(record: &mut SourceRecord, position: &ListeningPosition) {
    let secs = position.position_ms / 1000;
    let fraction = record.progress.as_ref().map(|p| p.fraction).or_else(|| {
        let runtime = record.edition.as_ref()?.runtime_secs?;
        #[allow(clippy::cast_precision_loss)] // seconds of audio: far below 2^52
        (runtime > 0).then(|| (secs as f64 / runtime as f64).min(1.0))
    });
    let Some(fraction) = fraction else {
        return;
    };
    if record.status == Some(ReadingStatus::Read) {
        // A finished title keeps its finished state; the pointer of a re-listen is noise.
        return;
    }
    record.progress = Some(Progress {
        fraction,
        position: Some(Position::Seconds(secs)),
        at: position.last_updated,
    });
}

/// Marks a record finished at `at` (from `stats/status/finished`): the library only says
/// *whether*, the stats say *when*.
pub fn apply_finished(record: &mut SourceRecord, at: DateTime<Utc>) {
    record.status = Some(ReadingStatus::Read);
    record.status_at = Some(at);
    record.progress = None;
    let finished = Some(PartialDate::from_date(at.date_naive()));
    if !record.reads.iter().any(|r| r.finished == finished) {
        record.reads.push(ReadThrough {
            started: None,
            finished,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wishlist_products_are_on_the_shelf_and_not_started() {
        let r = map_wishlist_product(&json!({
            "asin": "B0WISH0001", "title": "Someday", "authors": [{"name": "A. Writer"}],
            "added_timestamp": "2025-06-01T10:00:00Z", "percent_complete": 0
        }))
        .unwrap();
        assert_eq!(r.shelves, vec!["wishlist"]);
        assert_eq!(r.status, None);
        assert_eq!(
            r.added_at,
            super::super::wire::parse_utc("2025-06-01T10:00:00Z")
        );
    }

    #[test]
    fn position_keeps_percent_and_finished_wins() {
        let mut r = map_library_item(&json!({
            "asin": "B0EXAMPLE1", "title": "T", "runtime_length_min": 100, "percent_complete": 37.5
        }))
        .unwrap();
        let pos = ListeningPosition {
            asin: "B0EXAMPLE1".into(),
            position_ms: 1_603_500,
            last_updated: None,
        };
        apply_position(&mut r, &pos);
        let p = r.progress.clone().unwrap();
        assert!((p.fraction - 0.375).abs() < 1e-9);
        assert_eq!(p.position, Some(Position::Seconds(1603)));

        let at = super::super::wire::parse_utc("2025-02-11T20:14:07Z").unwrap();
        apply_finished(&mut r, at);
        assert_eq!(r.status, Some(ReadingStatus::Read));
        assert_eq!(r.reads.len(), 1);
        apply_position(&mut r, &pos);
        assert_eq!(r.progress, None, "finished titles keep no resume pointer");
    }
}
