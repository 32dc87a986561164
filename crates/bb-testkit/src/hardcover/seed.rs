//! Deterministic, realistic seed libraries for the fake Hardcover: every row carries every
//! field the dossier lists, so a client selecting a documented field always finds it.

use chrono::{Days, NaiveDate};
use serde_json::{Value, json};

/// splitmix64: deterministic across platforms, no dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        #[allow(clippy::cast_possible_truncation)] // below(len) < len
        items[self.below(items.len() as u64) as usize]
    }
}

const ADJECTIVES: &[&str] = &[
    "Quiet", "Burning", "Hollow", "Silver", "Last", "Hidden", "Broken", "Northern", "Glass",
    "Distant", "Small", "Endless",
];
const NOUNS: &[&str] = &[
    "Orbit", "Garden", "Archive", "River", "Kingdom", "Signal", "Harbor", "Lantern", "Machine",
    "Winter", "Library", "Tide",
];
const FIRST: &[&str] = &[
    "Dana", "Ines", "Tomasz", "Amara", "Kenji", "Lucia", "Oren", "Priya", "Marek", "Zoe",
];
const LAST: &[&str] = &[
    "Wells",
    "Okafor",
    "Lindqvist",
    "Moreau",
    "Tanaka",
    "Ruiz",
    "Novak",
    "Haddad",
    "Brennan",
];
const PUBLISHERS: &[&str] = &[
    "Tor",
    "Orbit",
    "Penguin",
    "Vintage",
    "Audible Studios",
    "Gollancz",
];
const SERIES: &[&str] = &["The Lantern Cycle", "Harbor Chronicles", "Tidewater"];

/// A valid ISBN-13 (978 prefix) whose digits derive from `n`.
pub fn isbn13_for(n: u64) -> String {
    let body = format!("978{:09}", n % 1_000_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, d)| u32::from(d - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

/// The ISBN-10 of a 978 ISBN-13.
pub fn isbn10_of(isbn13: &str) -> String {
    let body = &isbn13[3..12];
    let sum: u32 = body
        .bytes()
        .zip((2..=10).rev())
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    let check = (11 - sum % 11) % 11;
    if check == 10 {
        format!("{body}X")
    } else {
        format!("{body}{check}")
    }
}

fn asin_for(rng: &mut Rng) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789";
    let mut s = String::from("B0");
    for _ in 0..8 {
        #[allow(clippy::cast_possible_truncation)] // below(len) < len
        s.push(char::from(ALNUM[rng.below(ALNUM.len() as u64) as usize]));
    }
    s
}

fn date(base: NaiveDate, days: u64) -> NaiveDate {
    base.checked_add_days(Days::new(days)).unwrap_or(base)
}

fn ymd(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn ts(d: NaiveDate, secs: u64) -> String {
    format!(
        "{}T{:02}:{:02}:{:02}.41+00:00",
        ymd(d),
        (secs / 3600) % 24,
        (secs / 60) % 60,
        secs % 60
    )
}

/// Ids a seeded row gets, so tests can find rows without reading the seed code.
pub fn user_book_id(user_index: u64, i: u64) -> i64 {
    i64::try_from(8_000_000 + user_index * 100_000 + i).unwrap_or(i64::MAX)
}

/// One user's library of `n` books. Mix: a fifth are audiobooks (progress in seconds, ASIN,
/// narrator), a seventh ebooks, the rest print with both ISBN forms; statuses cycle through
/// all six ids; ratings use half steps; finished books carry one to three read-throughs.
#[allow(clippy::too_many_lines)] // one literal per row shape reads better than helpers
pub fn library(user_id: i64, user_index: u64, n: usize, seed: u64) -> Vec<Value> {
    let mut rng = Rng::new(seed ^ user_index.wrapping_mul(0x1234_5678));
    let base = NaiveDate::from_ymd_opt(2019, 1, 1).unwrap_or_default();
    let mut out = Vec::with_capacity(n);
    let mut read_id: i64 = 5_500_000 + i64::try_from(user_index).unwrap_or(0) * 1_000_000;
    for i in 0..n as u64 {
        let id = user_book_id(user_index, i);
        let book_id = i64::try_from(400_000 + i * 7).unwrap_or(0);
        let edition_id = i64::try_from(30_000_000 + i * 3).unwrap_or(0);
        let audio = i % 5 == 4;
        let ebook = !audio && i % 7 == 3;
        let status_id = i64::try_from(i % 6 + 1).unwrap_or(1);
        let title = format!("The {} {}", rng.pick(ADJECTIVES), rng.pick(NOUNS));
        let title = if i >= 12 {
            format!("{title} {i}")
        } else {
            title
        };
        let author = format!("{} {}", rng.pick(FIRST), rng.pick(LAST));
        let pages = 180 + rng.below(500);
        let audio_seconds = 18_000 + rng.below(60_000);
        let isbn13 = isbn13_for(seed.wrapping_add(i * 1_009));
        let (isbn_13_field, isbn_10_field, asin) = if audio {
            (Value::Null, Value::Null, json!(asin_for(&mut rng)))
        } else if ebook {
            (json!(isbn13), Value::Null, json!(asin_for(&mut rng)))
        } else {
            (json!(isbn13), json!(isbn10_of(&isbn13)), Value::Null)
        };
        let added = date(base, i * 3);
        // Half-step ratings on rated books; about a third of finished books unrated.
        let rating = if matches!(status_id, 3 | 5) && i % 3 != 0 {
            let halves = u32::try_from(1 + rng.below(10)).unwrap_or(1);
            json!(f64::from(halves) / 2.0)
        } else {
            Value::Null
        };
        let reviewed = status_id == 3 && i % 4 == 2;
        let review_text = format!(
            "Read it in {} sittings. The {} chapter stayed with me.",
            1 + rng.below(9),
            rng.pick(ADJECTIVES).to_lowercase()
        );

        let mut reads = Vec::new();
        let progress_of = |pages_done: u64, secs_done: u64| -> (Value, Value, Value) {
            if audio {
                #[allow(clippy::cast_precision_loss)]
                let pct = (secs_done as f64 / audio_seconds as f64 * 1000.0).round() / 10.0;
                (json!(pct), Value::Null, json!(secs_done))
            } else {
                #[allow(clippy::cast_precision_loss)]
                let pct = (pages_done as f64 / pages as f64 * 1000.0).round() / 10.0;
                (json!(pct), json!(pages_done), Value::Null)
            }
        };
        let finished_reads = match status_id {
            3 => 1 + rng.below(3),
            2 | 4 => rng.below(2),
            _ => 0,
        };
        let mut day = i * 3 + 2;
        for _ in 0..finished_reads {
            let start = date(base, day);
            let finish = date(base, day + 5 + rng.below(40));
            day += 60 + rng.below(200);
            let (pct, pp, ps) = progress_of(pages, audio_seconds);
            read_id += 1;
            reads.push(json!({
                "id": read_id, "user_book_id": id, "started_at": ymd(start),
                "finished_at": ymd(finish), "progress": pct, "progress_pages": pp,
                "progress_seconds": ps, "edition_id": edition_id,
            }));
        }
        if matches!(status_id, 2 | 4 | 5) {
            let (pct, pp, ps) =
                progress_of(1 + rng.below(pages - 1), 1 + rng.below(audio_seconds - 1));
            read_id += 1;
            reads.push(json!({
                "id": read_id, "user_book_id": id, "started_at": ymd(date(base, day)),
                "finished_at": null, "progress": pct, "progress_pages": pp,
                "progress_seconds": ps, "edition_id": edition_id,
            }));
        }
        let first_started = reads
            .first()
            .and_then(|r| r["started_at"].as_str().map(String::from));
        let last_finished = reads
            .iter()
            .rev()
            .find_map(|r| r["finished_at"].as_str().map(String::from));
        let first_finished = reads
            .iter()
            .find_map(|r| r["finished_at"].as_str().map(String::from));

        let mut contributions = vec![json!({
            "author": {"id": 900_000 + i, "name": author}, "contribution": null,
        })];
        if audio {
            contributions.push(json!({
                "author": {"id": 950_000 + i, "name": format!("{} {}", rng.pick(FIRST), rng.pick(LAST))},
                "contribution": "Narrator",
            }));
        }
        let series = if i % 9 == 1 {
            #[allow(clippy::cast_precision_loss)]
            let position = (1 + i % 4) as f64;
            json!({"position": position, "series": {"id": 70_000 + i % 3, "name": SERIES[usize::try_from(i % 3).unwrap_or(0)]}})
        } else {
            Value::Null
        };
        let slug = title.to_lowercase().replace(' ', "-");
        let release = date(
            NaiveDate::from_ymd_opt(1990, 1, 1).unwrap_or_default(),
            rng.below(12_000),
        );
        let book = json!({
            "id": book_id, "slug": slug, "title": title,
            "subtitle": if i % 8 == 5 { json!("A Novel") } else { Value::Null },
            "pages": pages, "release_date": ymd(release),
            "description": format!("A story about {}.", title.to_lowercase()),
            "image": {"url": format!("https://assets.hardcover.app/edition/{edition_id}/cover.jpeg")},
            "contributions": contributions.clone(),
            "cached_contributors": contributions,
            "featured_book_series": series,
            "users_read_count": rng.below(5_000), "rating": 3.87,
        });
        let (edition_format, reading_format_id) = if audio {
            ("Audiobook", 2)
        } else if ebook {
            ("Ebook", 4)
        } else if i % 2 == 0 {
            ("Paperback", 1)
        } else {
            ("Hardcover", 1)
        };
        let edition = json!({
            "id": edition_id, "book_id": book_id, "title": title,
            "isbn_10": isbn_10_field, "isbn_13": isbn_13_field, "asin": asin,
            "pages": if audio { Value::Null } else { json!(pages) },
            "audio_seconds": if audio { json!(audio_seconds) } else { Value::Null },
            "release_date": ymd(release), "edition_format": edition_format,
            "physical_format": if audio || ebook { Value::Null } else { json!(edition_format) },
            "reading_format_id": reading_format_id,
            "publisher": {"name": rng.pick(PUBLISHERS)},
            "language": "English",
        });
        out.push(json!({
            "id": id, "user_id": user_id, "book_id": book_id, "edition_id": edition_id,
            "status_id": status_id, "rating": rating,
            "review": if reviewed { json!(review_text) } else { Value::Null },
            "review_raw": if reviewed { json!(review_text) } else { Value::Null },
            "review_html": if reviewed { json!(format!("<p>{review_text}</p>")) } else { Value::Null },
            "review_has_spoilers": false,
            "reviewed_at": if reviewed { json!(ts(date(base, day), 3_600)) } else { Value::Null },
            "has_review": reviewed,
            "date_added": ymd(added),
            "first_started_reading_date": first_started,
            "first_read_date": first_finished,
            "last_read_date": last_finished,
            "read_count": finished_reads,
            "owned": i % 3 == 0, "owned_copies": u64::from(i % 3 == 0),
            "starred": i % 11 == 0, "private_notes": null, "privacy_setting_id": 1,
            "created_at": ts(added, 7_200 + i), "updated_at": ts(date(base, day), 9_000 + i),
            "user_book_reads": reads,
            "book": book,
            "edition": edition,
        }));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isbns_are_valid() {
        let i13 = isbn13_for(123_456);
        assert_eq!(i13.len(), 13);
        assert_eq!(isbn10_of("9780306406157"), "0306406152");
        assert_eq!(isbn13_for(30_640_615), "9780306406157");
    }

    #[test]
    fn seed_is_deterministic_and_varied() {
        let a = library(1, 0, 60, 7);
        assert_eq!(a, library(1, 0, 60, 7));
        assert!(a.iter().any(|b| b["edition"]["audio_seconds"].is_number()));
        assert!(
            a.iter()
                .any(|b| b["rating"].as_f64().is_some_and(|r| r.fract() != 0.0))
        );
        assert!(
            a.iter()
                .any(|b| b["user_book_reads"].as_array().unwrap().len() >= 2)
        );
    }
}
