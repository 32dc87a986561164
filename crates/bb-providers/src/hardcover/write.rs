//! Write-back: a status, rating or progress change made in bookbridge, pushed to Hardcover
//! with the mutations public clients use (dossier §4), never blanking what the change did
//! not touch.
//!
//! Two rules from the dossier shape this:
//! - `update_user_book` takes a partial object, so only the changed keys are sent.
//! - `update_user_book_read` is reported to reset omitted fields to null, so a read-through
//!   update sends the full object: the current values read just before, with only the
//!   changed ones replaced. That is the one place "send only what changed" would blank data.
//!
//! The budget for the whole change (up to three requests) is taken before the first is
//! sent, all or nothing, so a change never stops halfway for lack of budget. The steps are
//! idempotent (setting the same status or page twice is harmless), so a change interrupted
//! by a server 429 or an outage is simply pushed again.

use super::HardcoverError;
use super::client::HardcoverClient;
use super::mapping::status_id;
use super::wire::{MutationResult, ReadLookup, ReadLookupData, UserBookRead};
use bb_core::library::record::{Position, Rating, ReadingStatus};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

/// What changed in bookbridge. `None` fields are untouched and never sent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    pub status: Option<ReadingStatus>,
    pub rating: Option<RatingChange>,
    /// Pages for print and ebook editions, seconds for audiobooks, or a percentage (0–100)
    /// that is turned into one of those with the edition's length.
    pub progress: Option<Position>,
    /// The edition's length as bookbridge's library knows it, used when Hardcover's record
    /// does not say.
    pub known_length: Length,
}

/// An edition's length: pages, audio seconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Length {
    pub pages: Option<u32>,
    pub audio_seconds: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RatingChange {
    Set(Rating),
    /// The user removed their rating.
    Clear,
}

/// What a push did, for the run history.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Requests sent (each billed as one).
    pub requests: u32,
    /// Mutations applied, in order.
    pub mutations: Vec<&'static str>,
    /// Fields of the change that were not sent, with the reason.
    pub skipped: Vec<(&'static str, String)>,
}

const UPDATE_USER_BOOK: &str =
    "mutation BookbridgeUpdateUserBook($id: Int!, $object: UserBookUpdateInput!) {
  update_user_book(id: $id, object: $object) { id error }
}";

const LATEST_READ: &str = "query BookbridgeLatestRead($id: Int!) {
  user_books(where: {id: {_eq: $id}}, limit: 1) {
    id edition_id
    user_book_reads(order_by: {id: desc}, limit: 1) {
      id started_at finished_at progress_pages progress_seconds edition_id }
    edition { pages audio_seconds reading_format_id }
    book { pages }
  }
}";

const UPDATE_READ: &str = "mutation BookbridgeUpdateRead($id: Int!, $object: DatesReadInput!) {
  update_user_book_read(id: $id, object: $object) { id error }
}";

const INSERT_READ: &str =
    "mutation BookbridgeInsertRead($user_book_id: Int!, $read: DatesReadInput!) {
  insert_user_book_read(user_book_id: $user_book_id, user_book_read: $read) { id error }
}";

/// Pushes `change` to the `user_books` row `user_book_id` (a record's `external_id`).
pub async fn push_change(
    client: &HardcoverClient,
    user_book_id: i64,
    change: &Change,
) -> Result<PushReport, HardcoverError> {
    let mut report = PushReport::default();
    // Dossier: marking as read means status 3 *and* closing the read-through.
    let finishing = change.status == Some(ReadingStatus::Read);
    let touches_row = change.status.is_some() || change.rating.is_some();
    let touches_read = change.progress.is_some() || finishing;
    // The read-through needs a lookup and then a write (at most; an already closed one
    // needs no write, and the spare permit is not worth a second budget round-trip).
    let cost = u32::from(touches_row) + 2 * u32::from(touches_read);
    if cost == 0 {
        return Ok(report);
    }
    client.reserve(cost).await?;

    let mut object = Map::new();
    if let Some(status) = change.status {
        object.insert("status_id".into(), json!(status_id(status)));
    }
    match change.rating {
        Some(RatingChange::Set(r)) => {
            object.insert("rating".into(), json!(half_stars(r)));
        }
        Some(RatingChange::Clear) => {
            object.insert("rating".into(), Value::Null);
        }
        None => {}
    }
    if !object.is_empty() {
        mutate(
            client,
            &mut report,
            "update_user_book",
            UPDATE_USER_BOOK,
            json!({"id": user_book_id, "object": object}),
        )
        .await?;
    }

    if !touches_read {
        return Ok(report);
    }
    push_read(client, &mut report, user_book_id, change, finishing).await?;
    Ok(report)
}

/// The read-through half of a change: look up the latest read, then update it with the
/// full object or start a new one.
async fn push_read(
    client: &HardcoverClient,
    report: &mut PushReport,
    user_book_id: i64,
    change: &Change,
    finishing: bool,
) -> Result<(), HardcoverError> {
    let lookup: ReadLookupData = request(
        client,
        report,
        "BookbridgeLatestRead",
        LATEST_READ,
        json!({"id": user_book_id}),
    )
    .await?;
    let row = lookup
        .user_books
        .into_iter()
        .next()
        .ok_or_else(|| HardcoverError::Rejected {
            code: Some("not_found".into()),
            message: "the book is no longer in the Hardcover library".into(),
        })?;
    let today = client
        .clock()
        .now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    let progress = match change.progress {
        Some(Position::Percent(pct)) => match in_units(pct, &row, change.known_length) {
            Ok(position) => Some(position),
            Err(reason) => {
                report.skipped.push(("progress", reason.to_owned()));
                None
            }
        },
        other => other,
    };
    if progress.is_none() && !finishing {
        return Ok(());
    }
    let latest = row.user_book_reads.into_iter().next();

    match latest {
        Some(read) if read.finished_at.is_none() => {
            let mut full = current_read(&read);
            apply_progress(&mut full, progress);
            if finishing {
                full.insert("finished_at".into(), json!(today));
            }
            mutate(
                client,
                report,
                "update_user_book_read",
                UPDATE_READ,
                json!({"id": read.id, "object": full}),
            )
            .await?;
        }
        // Already finished and the change only says "read": nothing left to close.
        Some(_) if progress.is_none() => {}
        // No open read-through: a progress change starts one (a re-read when the last is
        // finished); "read" with no read-through at all records the finish date alone.
        _ => {
            let mut read = Map::new();
            if progress.is_some() {
                read.insert("started_at".into(), json!(today));
            }
            if finishing {
                read.insert("finished_at".into(), json!(today));
            }
            apply_progress(&mut read, progress);
            if let Some(edition) = row.edition_id {
                read.insert("edition_id".into(), json!(edition));
            }
            mutate(
                client,
                report,
                "insert_user_book_read",
                INSERT_READ,
                json!({"user_book_id": user_book_id, "read": read}),
            )
            .await?;
        }
    }
    Ok(())
}

/// A percentage (0–100) in the unit Hardcover takes for this book's edition (dossier §4:
/// "`progress_seconds` only makes sense with an audiobook edition; `progress_pages` needs
/// an edition/book page count"). Hardcover's own figures come first, since it computes its
/// percentage from them; the library's fill the gaps. `Err` says why it cannot be done.
fn in_units(pct: f64, row: &ReadLookup, known: Length) -> Result<Position, &'static str> {
    if !pct.is_finite() {
        return Err("the progress is not a number");
    }
    let fraction = (pct / 100.0).clamp(0.0, 1.0);
    let edition = row.edition.as_ref();
    let audio = edition.is_some_and(|e| {
        e.reading_format_id == Some(2)
            || (e.reading_format_id.is_none() && e.audio_seconds.is_some() && e.pages.is_none())
    });
    if audio {
        #[allow(clippy::cast_precision_loss)] // audio lengths fit an f64 exactly
        let total = edition
            .and_then(|e| e.audio_seconds)
            .or(known.audio_seconds.map(|s| s as f64))
            .filter(|t| *t > 0.0)
            .ok_or("neither Hardcover nor the library knows the audiobook's length in seconds")?;
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 <= value <= total
        let seconds = (fraction * total).round() as u64;
        return Ok(Position::Seconds(seconds));
    }
    let total = edition
        .and_then(|e| e.pages)
        .or_else(|| row.book.as_ref().and_then(|b| b.pages))
        .or(known.pages.map(f64::from))
        .filter(|t| *t > 0.0)
        .ok_or("neither Hardcover nor the library knows the edition's page count")?;
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // 0 <= value <= total
    let pages = (fraction * total).round() as u32;
    Ok(Position::Pages(pages))
}

/// Hardcover ratings are half steps; bookbridge keeps hundredths (3.75 from another
/// source). Round to the nearest half, never down to 0 (which would mean "unrated").
fn half_stars(r: Rating) -> f64 {
    ((r.stars() * 2.0).round() / 2.0).clamp(0.5, 5.0)
}

/// The read-through as it stands, in `DatesReadInput` shape.
fn current_read(read: &UserBookRead) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("started_at".into(), json!(read.started_at));
    m.insert("finished_at".into(), json!(read.finished_at));
    m.insert(
        "progress_pages".into(),
        json!(read.progress_pages.map(whole)),
    );
    m.insert(
        "progress_seconds".into(),
        json!(read.progress_seconds.map(whole)),
    );
    m.insert("edition_id".into(), json!(read.edition_id));
    m
}

fn whole(v: f64) -> i64 {
    #[allow(clippy::cast_possible_truncation)] // page and second counts are small integers
    let n = v.round() as i64;
    n
}

fn apply_progress(read: &mut Map<String, Value>, progress: Option<Position>) {
    match progress {
        Some(Position::Pages(p)) => {
            read.insert("progress_pages".into(), json!(p));
        }
        Some(Position::Seconds(s)) => {
            read.insert("progress_seconds".into(), json!(s));
        }
        Some(Position::Percent(_)) | None => {}
    }
}

async fn request<T: DeserializeOwned>(
    client: &HardcoverClient,
    report: &mut PushReport,
    operation: &str,
    query: &str,
    variables: Value,
) -> Result<T, HardcoverError> {
    report.requests += 1;
    client.send(operation, query, variables).await
}

/// Runs a mutation whose one top-level field is `field`, turning its `error` string into
/// a rejection (mutations report failure there with HTTP 200, dossier §5).
async fn mutate(
    client: &HardcoverClient,
    report: &mut PushReport,
    field: &'static str,
    query: &str,
    variables: Value,
) -> Result<(), HardcoverError> {
    let operation = match field {
        "update_user_book" => "BookbridgeUpdateUserBook",
        "update_user_book_read" => "BookbridgeUpdateRead",
        _ => "BookbridgeInsertRead",
    };
    let data: Map<String, Value> = request(client, report, operation, query, variables).await?;
    let result: MutationResult = data
        .get(field)
        .cloned()
        .and_then(|v| serde_json::from_value(v).ok())
        .ok_or_else(|| HardcoverError::Outage(format!("no result for {field}")))?;
    if let Some(error) = result.error.filter(|e| !e.is_empty()) {
        return Err(HardcoverError::Rejected {
            code: Some(field.into()),
            message: error.chars().take(200).collect(),
        });
    }
    if result.id.is_none() {
        return Err(HardcoverError::Rejected {
            code: Some(field.into()),
            message: "Hardcover applied nothing".into(),
        });
    }
    report.mutations.push(field);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratings_round_to_half_steps_and_never_to_zero() {
        assert!((half_stars(Rating(375)) - 4.0).abs() < f64::EPSILON);
        assert!((half_stars(Rating(350)) - 3.5).abs() < f64::EPSILON);
        assert!((half_stars(Rating(10)) - 0.5).abs() < f64::EPSILON);
    }

    #[test]
    fn current_read_keeps_every_field() {
        let read = UserBookRead {
            id: 1,
            started_at: Some("2025-01-01".into()),
            finished_at: None,
            progress: Some(10.0),
            progress_pages: Some(40.0),
            progress_seconds: None,
            edition_id: Some(9),
        };
        let mut m = current_read(&read);
        apply_progress(&mut m, Some(Position::Pages(50)));
        assert_eq!(
            Value::Object(m),
            json!({"started_at": "2025-01-01", "finished_at": null, "progress_pages": 50,
                   "progress_seconds": null, "edition_id": 9})
        );
    }
}
