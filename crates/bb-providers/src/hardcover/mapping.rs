//! Hardcover `user_books` rows → [`SourceRecord`]: statuses, half-star ratings, reviews,
//! read-throughs, progress in pages or seconds, edition facts and identifiers.
//!
//! `external_id` is the **`user_books.id`**, not the book id: it is the row's primary key,
//! so it is unique per connection by construction, and it is the id every write mutation
//! takes (`update_user_book(id:)`), so write-back needs no lookup. The book id is not
//! guaranteed unique per user (the docs' own library example uses `distinct_on: book_id`),
//! so it travels as a `hardcover` identifier for matching across sources instead.

use super::wire::{Book, Edition, UserBook, UserBookRead};
use bb_core::library::identifiers::{IdScheme, Identifier, isbn_identifiers, parse_asin};
use bb_core::library::record::{
    Cover, Edition as CoreEdition, Format, PartialDate, Position, Progress, Rating, ReadThrough,
    ReadingStatus, Review, SeriesEntry, SourceRecord,
};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::Value;

/// Maps one `user_books` item as received. Errors name what made the item unusable; the
/// caller counts it as a failed item and carries on with the rest.
pub fn map_user_book(raw: &Value) -> Result<SourceRecord, String> {
    let row: UserBook =
        serde_json::from_value(raw.clone()).map_err(|e| format!("unreadable user_book: {e}"))?;
    map_row(&row, raw)
}

/// Status ids from the dossier. 6 ("Ignored") and unknown ids give no status: the user
/// told Hardcover to hide the book, which is not a reading state bookbridge has.
pub(crate) fn status_from_id(id: i64) -> Option<ReadingStatus> {
    match id {
        1 => Some(ReadingStatus::ToRead),
        2 => Some(ReadingStatus::Reading),
        3 => Some(ReadingStatus::Read),
        4 => Some(ReadingStatus::Paused),
        5 => Some(ReadingStatus::DidNotFinish),
        _ => None,
    }
}

pub(crate) fn status_id(status: ReadingStatus) -> i64 {
    match status {
        ReadingStatus::ToRead => 1,
        ReadingStatus::Reading => 2,
        ReadingStatus::Read => 3,
        ReadingStatus::Paused => 4,
        ReadingStatus::DidNotFinish => 5,
    }
}

fn map_row(row: &UserBook, raw: &Value) -> Result<SourceRecord, String> {
    let book = row.book.as_ref();
    let edition = row.edition.as_ref();
    let title = book
        .and_then(|b| b.title.as_deref())
        .or_else(|| edition.and_then(|e| e.title.as_deref()))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| format!("user_book {} has no title", row.id))?
        .to_owned();

    let mut record = SourceRecord {
        external_id: Some(row.id.to_string()),
        title,
        subtitle: book
            .and_then(|b| b.subtitle.clone())
            .filter(|s| !s.trim().is_empty()),
        raw: raw.clone().into(),
        ..SourceRecord::default()
    };

    if let Some(book) = book {
        map_contributions(book, &mut record);
        if let Some(fs) = &book.featured_book_series
            && let Some(name) = fs.series.as_ref().and_then(|s| s.name.clone())
        {
            record.series.push(SeriesEntry {
                name,
                position: fs.position.map(format_position),
            });
        }
        if let Some(url) = book.image.as_ref().and_then(|i| i.url.clone()) {
            record.covers.push(Cover {
                url,
                width: None,
                height: None,
            });
        }
        record
            .identifiers
            .push(Identifier::new(IdScheme::Hardcover, book.id.to_string()));
    } else if let Some(book_id) = row.book_id {
        record
            .identifiers
            .push(Identifier::new(IdScheme::Hardcover, book_id.to_string()));
    }

    if let Some(e) = edition {
        map_edition(e, book.and_then(|b| b.pages), &mut record);
    }

    record.status = row.status_id.and_then(status_from_id);
    // Hardcover keeps no status-change time; `updated_at` moves on any edit (a rating, a
    // note), so it would overstate how recent the status is. Merging falls back to
    // `added_at`.
    record.status_at = None;
    record.rating = row.rating.and_then(Rating::from_stars);
    record.review = row
        .review_raw
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|text| Review {
            text: text.to_owned(),
            at: row.reviewed_at.as_deref().and_then(parse_timestamp),
        });
    record.added_at = row
        .date_added
        .as_deref()
        .and_then(parse_date)
        .map(|d| d.and_time(NaiveTime::MIN).and_utc())
        .or_else(|| row.created_at.as_deref().and_then(parse_timestamp));

    let mut reads: Vec<&UserBookRead> = row.user_book_reads.iter().collect();
    reads.sort_by_key(|r| r.id);
    record.reads = reads
        .iter()
        .filter_map(|r| {
            let started = r.started_at.as_deref().and_then(parse_date);
            let finished = r.finished_at.as_deref().and_then(parse_date);
            (started.is_some() || finished.is_some()).then(|| ReadThrough {
                started: started.map(PartialDate::from_date),
                finished: finished.map(PartialDate::from_date),
            })
        })
        .collect();
    record.progress = reads
        .last()
        .filter(|r| r.finished_at.is_none())
        .and_then(|r| progress_of(r, edition, book.and_then(|b| b.pages), row));
    Ok(record)
}

fn map_contributions(book: &Book, record: &mut SourceRecord) {
    for c in &book.contributions {
        let Some(name) = c
            .author
            .as_ref()
            .and_then(|a| a.name.as_deref())
            .map(str::trim)
            .filter(|n| !n.is_empty())
        else {
            continue;
        };
        // Dossier unsure: the role strings are not documented; `null` is the author and
        // public clients see "Narrator"/"Translator". Other roles (illustrator, editor)
        // are not fields bookbridge keeps.
        let list = match c.contribution.as_deref().map(str::to_ascii_lowercase) {
            None => &mut record.authors,
            Some(r) if r.is_empty() || r == "author" => &mut record.authors,
            Some(r) if r == "narrator" => &mut record.narrators,
            Some(r) if r == "translator" => &mut record.translators,
            Some(_) => continue,
        };
        if !list.iter().any(|n| n == name) {
            list.push(name.to_owned());
        }
    }
}

fn map_edition(e: &Edition, book_pages: Option<f64>, record: &mut SourceRecord) {
    for raw in [e.isbn_13.as_deref(), e.isbn_10.as_deref()]
        .into_iter()
        .flatten()
    {
        for id in isbn_identifiers(raw) {
            if !record.identifiers.contains(&id) {
                record.identifiers.push(id);
            }
        }
    }
    if let Some(asin) = e.asin.as_deref().and_then(parse_asin) {
        record
            .identifiers
            .push(Identifier::new(IdScheme::Asin, asin));
    }
    // reading_format_id: 1 physical, 2 audio, 4 ebook. Dossier unsure what 3 ("both")
    // combines, so 3 falls back to the edition_format text like a missing id does.
    let format = match e.reading_format_id {
        Some(1) => Some(Format::Print),
        Some(2) => Some(Format::Audiobook),
        Some(4) => Some(Format::Ebook),
        _ => e.edition_format.as_deref().map(|f| {
            let f = f.to_ascii_lowercase();
            if f.contains("audio") {
                Format::Audiobook
            } else if f.contains("ebook") || f.contains("kindle") || f.contains("digital") {
                Format::Ebook
            } else {
                Format::Print
            }
        }),
    };
    record.formats.extend(format);
    record.edition = Some(CoreEdition {
        publisher: e
            .publisher
            .as_ref()
            .and_then(|p| p.name.clone())
            .filter(|p| !p.trim().is_empty()),
        published: e
            .release_date
            .as_deref()
            .and_then(parse_date)
            .map(PartialDate::from_date),
        pages: e.pages.or(book_pages).and_then(to_u32),
        language: None,
        binding: e.edition_format.clone(),
        runtime_secs: e.audio_seconds.and_then(to_u64),
    });
}

fn progress_of(
    read: &UserBookRead,
    edition: Option<&Edition>,
    book_pages: Option<f64>,
    row: &UserBook,
) -> Option<Progress> {
    let (position, total) = if let Some(secs) = read.progress_seconds.and_then(to_u64) {
        (
            Some(Position::Seconds(secs)),
            edition.and_then(|e| e.audio_seconds),
        )
    } else if let Some(pages) = read.progress_pages.and_then(to_u32) {
        (
            Some(Position::Pages(pages)),
            edition.and_then(|e| e.pages).or(book_pages),
        )
    } else {
        (None, None)
    };
    // `progress` is Hardcover's own percentage; prefer it, else derive from the length.
    let fraction = read.progress.map(|p| p / 100.0).or_else(|| {
        let done = match position? {
            #[allow(clippy::cast_precision_loss)] // seconds of audio fit an f64 exactly
            Position::Seconds(s) => s as f64,
            Position::Pages(p) => f64::from(p),
            Position::Percent(p) => p,
        };
        total.filter(|t| *t > 0.0).map(|t| done / t)
    })?;
    if !fraction.is_finite() {
        return None;
    }
    Some(Progress {
        fraction: fraction.clamp(0.0, 1.0),
        position,
        // The read-through has no timestamp of its own; the row's `updated_at` is the
        // latest moment the progress can have been set.
        at: row.updated_at.as_deref().and_then(parse_timestamp),
    })
}

/// `1`, `1.5`: series positions without a spurious `.0`.
fn format_position(p: f64) -> String {
    if p.fract() == 0.0 && p.abs() < 1e9 {
        format!("{p:.0}")
    } else {
        p.to_string()
    }
}

fn to_u32(v: f64) -> Option<u32> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked
    (v.is_finite() && v >= 0.0 && v <= f64::from(u32::MAX)).then(|| v.round() as u32)
}

fn to_u64(v: f64) -> Option<u64> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // range checked
    (v.is_finite() && (0.0..1.8e19).contains(&v)).then(|| v.round() as u64)
}

/// Hardcover dates are `YYYY-MM-DD`; a timestamp in a date field keeps its date part.
fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s.get(..10).unwrap_or(s), "%Y-%m-%d").ok()
}

fn parse_timestamp(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .ok()
        .or_else(|| parse_date(s).map(|d| d.and_time(NaiveTime::MIN).and_utc()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The dossier's own example item (§3).
    #[allow(clippy::unreadable_literal)] // verbatim
    fn dossier_item() -> Value {
        json!({"id":8812345,"book_id":427889,"edition_id":30920011,
          "status_id":2,"rating":null,"date_added":"2025-01-12","updated_at":"2025-02-03T19:22:10.41+00:00",
          "user_book_reads":[{"id":5512001,"started_at":"2025-01-13","finished_at":null,
            "progress":41.2,"progress_pages":158,"progress_seconds":null,"edition_id":30920011}],
          "book":{"id":427889,"title":"The Quiet Orbit","slug":"the-quiet-orbit","pages":384,
            "image":{"url":"https://assets.hardcover.app/edition/30920011/abc.jpeg"},
            "contributions":[{"author":{"name":"Dana Wells"}}]},
          "edition":{"id":30920011,"isbn_13":"9781234567897","isbn_10":null,"asin":null,
            "pages":384,"audio_seconds":null,"reading_format_id":1}})
    }

    #[test]
    #[allow(clippy::unreadable_literal)] // the dossier's example, verbatim
    fn maps_the_dossier_example() {
        let raw = dossier_item();
        let r = map_user_book(&raw).unwrap();
        assert_eq!(r.external_id.as_deref(), Some("8812345"));
        assert_eq!(r.title, "The Quiet Orbit");
        assert_eq!(r.authors, vec!["Dana Wells"]);
        assert_eq!(r.status, Some(ReadingStatus::Reading));
        assert_eq!(r.rating, None);
        assert!(
            r.identifiers
                .contains(&Identifier::new(IdScheme::Hardcover, "427889"))
        );
        assert!(
            r.identifiers
                .contains(&Identifier::new(IdScheme::Isbn13, "9781234567897"))
        );
        assert_eq!(r.formats, vec![Format::Print]);
        let p = r.progress.unwrap();
        assert!((p.fraction - 0.412).abs() < 1e-9);
        assert_eq!(p.position, Some(Position::Pages(158)));
        assert_eq!(
            r.reads,
            vec![ReadThrough {
                started: Some(PartialDate {
                    year: 2025,
                    month: Some(1),
                    day: Some(13)
                }),
                finished: None,
            }]
        );
        assert_eq!(
            r.added_at.unwrap().to_rfc3339(),
            "2025-01-12T00:00:00+00:00"
        );
        assert_eq!(
            r.covers[0].url,
            "https://assets.hardcover.app/edition/30920011/abc.jpeg"
        );
        assert_eq!(r.edition.as_ref().unwrap().pages, Some(384));
        assert_eq!(r.raw.to_value(), raw);
    }

    #[test]
    fn audiobook_progress_is_in_seconds_and_half_ratings_survive() {
        let raw = json!({"id": 1, "book_id": 2, "status_id": 4, "rating": "3.5",
            "review_raw": "  Loved the narrator. ", "reviewed_at": "2025-03-01T10:00:00+00:00",
            "user_book_reads": [
                {"id": 9, "started_at": "2024-01-01", "finished_at": "2024-02-01", "progress": 100.0, "progress_seconds": 36000},
                {"id": 11, "started_at": "2025-01-01", "finished_at": null, "progress": null, "progress_seconds": 9000}],
            "book": {"id": 2, "title": "Tide", "contributions": [
                {"author": {"name": "A. Writer"}, "contribution": null},
                {"author": {"name": "V. Oice"}, "contribution": "Narrator"}],
                "featured_book_series": {"position": 2.0, "series": {"name": "Tidewater"}}},
            "edition": {"asin": "b00abcdefg", "audio_seconds": 36000, "reading_format_id": 2,
                "edition_format": "Audiobook", "publisher": {"name": "Audible Studios"}}});
        let r = map_user_book(&raw).unwrap();
        assert_eq!(r.status, Some(ReadingStatus::Paused));
        assert_eq!(r.rating, Some(Rating(350)));
        assert_eq!(r.review.as_ref().unwrap().text, "Loved the narrator.");
        assert_eq!(r.narrators, vec!["V. Oice"]);
        assert_eq!(r.series[0].position.as_deref(), Some("2"));
        assert_eq!(r.formats, vec![Format::Audiobook]);
        assert!(
            r.identifiers
                .contains(&Identifier::new(IdScheme::Asin, "B00ABCDEFG"))
        );
        assert_eq!(r.reads.len(), 2);
        let p = r.progress.unwrap();
        assert_eq!(p.position, Some(Position::Seconds(9000)));
        assert!((p.fraction - 0.25).abs() < 1e-9);
        assert_eq!(r.edition.unwrap().runtime_secs, Some(36000));
    }

    #[test]
    fn ignored_status_bad_isbns_and_missing_titles() {
        let raw = json!({"id": 5, "status_id": 6, "rating": 0,
            "book": {"id": 3, "title": "X"}, "edition": {"isbn_13": "9781234567890", "isbn_10": "0306406152"}});
        let r = map_user_book(&raw).unwrap();
        assert_eq!(r.status, None);
        assert_eq!(r.rating, None);
        // The bad ISBN-13 is dropped; the valid ISBN-10 yields both forms.
        assert!(
            r.identifiers
                .contains(&Identifier::new(IdScheme::Isbn13, "9780306406157"))
        );
        assert!(!r.identifiers.iter().any(|i| i.value == "9781234567890"));

        assert!(map_user_book(&json!({"id": 6, "book": {"id": 1, "title": " "}})).is_err());
        assert!(map_user_book(&json!({"book_id": 1})).is_err());
    }

    #[test]
    fn status_ids_round_trip() {
        for s in [
            ReadingStatus::ToRead,
            ReadingStatus::Reading,
            ReadingStatus::Read,
            ReadingStatus::Paused,
            ReadingStatus::DidNotFinish,
        ] {
            assert_eq!(status_from_id(status_id(s)), Some(s));
        }
    }
}
