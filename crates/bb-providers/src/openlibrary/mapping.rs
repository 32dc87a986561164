//! One reading-log entry (`{work, logged_edition, logged_date}`, dossier §2) → a
//! [`SourceRecord`], with the vocabulary the reading-log *export* importer uses too: the
//! shelf as a status word (`stopped-reading` is "did not finish" in both), OpenLibrary keys
//! parsed the same way, author names with role suffixes.
//!
//! `external_id` is the work key (`OL…W`): a work is on at most one preset shelf
//! (dossier §4), so it is unique per account, and it stays the same when the user moves
//! the book between shelves, so a move is an update and not a removal plus an addition.

use bb_core::library::identifiers::parse_openlibrary_key;
use bb_core::library::record::{Cover, Edition, PartialDate, SourceRecord};
use bb_core::library::text::{People, Role, status_from_word};
use bb_core::library::{IdScheme, Identifier};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// The covers host (dossier §6); `{base}/b/id/{cover_id}-L.jpg`.
pub const DEFAULT_COVERS_URL: &str = "https://covers.openlibrary.org";

#[derive(Debug, Deserialize)]
struct Entry {
    work: Option<Work>,
    logged_edition: Option<String>,
    logged_date: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Work {
    title: Option<String>,
    key: Option<String>,
    #[serde(default)]
    author_names: Vec<Option<String>>,
    first_publish_year: Option<i32>,
    cover_id: Option<i64>,
}

/// Maps one entry of `shelf` as received. The error names what made it unusable; the
/// caller counts it as a failed item and carries on.
pub fn map_entry(shelf: &str, raw: &Value, covers_url: &str) -> Result<SourceRecord, String> {
    let entry: Entry = serde_json::from_value(raw.clone())
        .map_err(|e| format!("unreadable reading-log entry: {e}"))?;
    let work = entry
        .work
        .ok_or_else(|| "a reading-log entry without a work".to_owned())?;
    let key = work
        .key
        .as_deref()
        .and_then(|k| parse_openlibrary_key(k, 'W'))
        .ok_or_else(|| {
            format!(
                "work key {:?} is not an OpenLibrary work id (OL…W)",
                work.key.as_deref().unwrap_or("")
            )
        })?;
    let mut record = SourceRecord {
        external_id: Some(key.clone()),
        // As the export importer does: a work without a title still imports by its ids.
        title: work.title.as_deref().map_or("", str::trim).to_owned(),
        status: status_from_word(shelf),
        identifiers: vec![Identifier::new(IdScheme::OpenlibraryWork, key)],
        raw: trimmed_raw(shelf, raw).into(),
        ..SourceRecord::default()
    };
    if let Some(edition) = entry
        .logged_edition
        .as_deref()
        .and_then(|e| parse_openlibrary_key(e, 'M'))
    {
        record
            .identifiers
            .push(Identifier::new(IdScheme::OpenlibraryEdition, edition));
    }
    let mut people = People::default();
    for name in work.author_names.iter().flatten() {
        people.add_with_suffix(name, Role::Author);
    }
    people.fill_into(&mut record);
    // The library model has no work-level "first published": the year goes on the edition
    // as a year-only date. For the edition the user logged it is a lower bound, which is
    // what a year-only date from a work-level source can honestly say.
    if let Some(year) = work.first_publish_year.filter(|y| (1..=9999).contains(y)) {
        record.edition = Some(Edition {
            published: Some(PartialDate {
                year,
                month: None,
                day: None,
            }),
            ..Edition::default()
        });
    }
    // Cover ids are not rate-limited like ISBN look-ups and are cached "forever" (§1, §6);
    // -1 means a removed cover (§5).
    if let Some(id) = work.cover_id.filter(|id| *id > 0) {
        record.covers.push(Cover {
            url: format!("{}/b/id/{id}-L.jpg", covers_url.trim_end_matches('/')),
            width: None,
            height: None,
        });
    }
    // `logged_date` is when the work was put on this shelf: the date evidence for the
    // status. It is not the date the book was added (a move to another shelf may restamp
    // it; dossier unsure), nor a finish date (people log books read years ago).
    record.status_at = entry.logged_date.as_deref().and_then(parse_logged_date);
    Ok(record)
}

/// `YYYY/MM/DD, HH:MM:SS` (dossier §2: "server time, no zone").
///
/// Dossier unsure which zone "server time" is. Open Library's servers and its database
/// timestamps are taken to be UTC; if they are not, the status time is off by the zone
/// offset, which only matters when two sources changed the status within those hours.
pub fn parse_logged_date(raw: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(raw.trim(), "%Y/%m/%d, %H:%M:%S")
        .ok()
        .map(|t| t.and_utc())
}

/// The entry as received, with the shelf it came from, minus `work.edition_key`: every
/// edition of the work (hundreds for a classic, §2 "can be long"), which bookbridge does
/// not use and should not store once per book per sync.
fn trimmed_raw(shelf: &str, raw: &Value) -> Value {
    let mut entry = raw.clone();
    if let Some(work) = entry.get_mut("work").and_then(Value::as_object_mut) {
        work.remove("edition_key");
    }
    serde_json::json!({ "shelf": shelf, "entry": entry })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::library::record::ReadingStatus;
    use serde_json::json;

    /// The dossier's example entry (§2), verbatim.
    #[allow(clippy::unreadable_literal)]
    fn dossier_entry() -> Value {
        json!({"work":{"title":"The Glass Harbor","key":"/works/OL1234567W",
               "author_keys":["/authors/OL765432A"],"author_names":["Mira Solberg"],
               "first_publish_year":2019,"lending_edition_s":null,
               "edition_key":["OL2233445M","OL2233446M"],"cover_id":10987654,
               "cover_edition_key":"OL2233445M"},
         "logged_edition":"/books/OL2233445M","logged_date":"2024/11/03, 18:22:07"})
    }

    #[test]
    fn maps_the_dossier_example() {
        let r = map_entry("currently-reading", &dossier_entry(), DEFAULT_COVERS_URL).unwrap();
        assert_eq!(r.external_id.as_deref(), Some("OL1234567W"));
        assert_eq!(r.title, "The Glass Harbor");
        assert_eq!(r.authors, vec!["Mira Solberg"]);
        assert_eq!(r.status, Some(ReadingStatus::Reading));
        assert_eq!(
            r.identifiers,
            vec![
                Identifier::new(IdScheme::OpenlibraryWork, "OL1234567W"),
                Identifier::new(IdScheme::OpenlibraryEdition, "OL2233445M"),
            ]
        );
        assert_eq!(
            r.covers[0].url,
            "https://covers.openlibrary.org/b/id/10987654-L.jpg"
        );
        assert_eq!(r.edition.unwrap().published.unwrap().year, 2019);
        assert_eq!(
            r.status_at.unwrap().to_rfc3339(),
            "2024-11-03T18:22:07+00:00"
        );
        assert_eq!(r.raw.to_value()["shelf"], "currently-reading");
        assert!(
            r.raw.to_value()["entry"]["work"]
                .get("edition_key")
                .is_none()
        );
        assert_eq!(
            r.raw.to_value()["entry"]["work"]["cover_edition_key"],
            "OL2233445M"
        );
    }

    #[test]
    fn each_shelf_is_a_status() {
        let status = |shelf| map_entry(shelf, &dossier_entry(), "").unwrap().status;
        assert_eq!(status("want-to-read"), Some(ReadingStatus::ToRead));
        assert_eq!(status("currently-reading"), Some(ReadingStatus::Reading));
        assert_eq!(status("already-read"), Some(ReadingStatus::Read));
        assert_eq!(status("stopped-reading"), Some(ReadingStatus::DidNotFinish));
    }

    #[test]
    fn sparse_entries_map_and_broken_ones_say_why() {
        let r = map_entry(
            "want-to-read",
            &json!({"work": {"key": "/works/OL9W", "title": " T ", "author_names": [null],
                "cover_id": -1, "first_publish_year": null},
                "logged_edition": null, "logged_date": "yesterday"}),
            DEFAULT_COVERS_URL,
        )
        .unwrap();
        assert_eq!(r.title, "T");
        assert!(r.authors.is_empty() && r.covers.is_empty() && r.edition.is_none());
        assert_eq!(r.status_at, None, "an unreadable date is no evidence");
        let e =
            map_entry("want-to-read", &json!({"work": {"key": "/books/OL1M"}}), "").unwrap_err();
        assert!(e.contains("OL…W"), "{e}");
        assert!(map_entry("want-to-read", &json!({"logged_date": "x"}), "").is_err());
    }
}
