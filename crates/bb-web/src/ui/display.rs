//! How values read to a person: times (a `<time>` the page script puts in the reader's
//! locale, with a readable UTC fallback), stars, statuses, providers and formats.

use chrono::{DateTime, Utc};

/// A moment as the templates show it: `iso` for `<time datetime>`, `text` without script.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub iso: String,
    pub text: String,
}

impl Stamp {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            iso: at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            text: at.format("%Y-%m-%d %H:%M UTC").to_string(),
        }
    }

    pub fn maybe(at: Option<DateTime<Utc>>) -> Option<Self> {
        at.map(Self::new)
    }

    /// From an RFC 3339 string in an item's JSON.
    pub fn parse(s: &str) -> Option<Self> {
        DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|d| Self::new(d.with_timezone(&Utc)))
    }
}

/// Whole and half stars as text, e.g. `★★★½` for 3.5; empty for no rating.
pub fn stars(value: Option<f64>) -> String {
    let Some(v) = value else {
        return String::new();
    };
    let halves = (v * 2.0).round().clamp(0.0, 10.0);
    // Clamped to 0–10 above, so the cast is exact.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let halves = halves as usize;
    let mut s = "★".repeat(halves / 2);
    if halves % 2 == 1 {
        s.push('½');
    }
    s
}

/// `3.5` → `"3.5 stars"`.
pub fn stars_label(value: f64) -> String {
    if (value - 1.0).abs() < f64::EPSILON {
        "1 star".to_owned()
    } else {
        format!("{value} stars")
    }
}

pub const STATUSES: [(&str, &str); 5] = [
    ("to-read", "Want to read"),
    ("reading", "Reading"),
    ("read", "Read"),
    ("did-not-finish", "Did not finish"),
    ("paused", "Paused"),
];

pub fn status_label(s: &str) -> String {
    STATUSES
        .iter()
        .find(|(k, _)| *k == s)
        .map_or_else(|| s.to_owned(), |(_, l)| (*l).to_owned())
}

/// The linked account's name at the provider, else its id there; empty when unknown.
pub fn account_label(c: &bb_core::connections::ConnectionView) -> String {
    c.account
        .as_ref()
        .map(|a| {
            a.display_name
                .clone()
                .unwrap_or_else(|| a.external_id.clone())
        })
        .unwrap_or_default()
}

/// A file size for people: `812 bytes`, `14.2 KiB`, `3.0 MiB`.
pub fn byte_size(bytes: u64) -> String {
    #[allow(clippy::cast_precision_loss)] // one decimal shown
    let b = bytes as f64;
    if bytes < 1024 {
        format!("{bytes} bytes")
    } else if bytes < 1024 * 1024 {
        format!("{:.1} KiB", b / 1024.0)
    } else {
        format!("{:.1} MiB", b / (1024.0 * 1024.0))
    }
}

/// The library's rating filter: the shown rating (after edits and conflicts), "or more"
/// counting half stars, so a 3.5 is among "3 stars or more" but not "4 stars or more".
pub const RATINGS: [(&str, &str); 7] = [
    ("unrated", "Not rated"),
    ("rated", "Any rating"),
    ("5", "5 stars"),
    ("4", "4 stars or more"),
    ("3", "3 stars or more"),
    ("2", "2 stars or more"),
    ("1", "1 star or more"),
];

pub const FORMATS: [(&str, &str); 3] = [
    ("print", "Print"),
    ("ebook", "Ebook"),
    ("audiobook", "Audiobook"),
];

/// `print` → `Print`.
pub fn book_format_label(f: &str) -> String {
    FORMATS
        .iter()
        .find(|(k, _)| *k == f)
        .map_or_else(|| f.to_owned(), |(_, l)| (*l).to_owned())
}

pub const PROVIDERS: [(&str, &str); 11] = [
    ("goodreads", "Goodreads"),
    ("storygraph", "StoryGraph"),
    ("librarything", "LibraryThing"),
    ("openlibrary", "Open Library"),
    ("calibre", "Calibre"),
    ("audible", "Audible"),
    ("libation", "Libation"),
    ("kindle", "Kindle"),
    ("kobo", "Kobo"),
    ("hardcover", "Hardcover"),
    ("bookbridge", "bookbridge"),
];

pub fn provider_label(p: &str) -> String {
    PROVIDERS
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(p))
        .map_or_else(|| p.to_owned(), |(_, l)| (*l).to_owned())
}

/// A format id (`goodreads-csv`) as a person reads it (`Goodreads CSV`).
pub fn format_label(f: &str) -> String {
    f.split('-')
        .map(|w| match w {
            "csv" | "tsv" | "json" | "opf" | "api" | "cli" => w.to_uppercase(),
            other => provider_label(other),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A provenance `source` value: `"manual"` or `{"kind", "id", "provider", "seen_at"}`.
pub fn origin_label(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) if s == "manual" => "your edit".to_owned(),
        serde_json::Value::Object(o) => {
            let provider = o.get("provider").and_then(|p| p.as_str()).unwrap_or("?");
            let kind = o.get("kind").and_then(|k| k.as_str()).unwrap_or("");
            let id = o.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0);
            match kind {
                "batch" => format!("{} (import #{id})", provider_label(provider)),
                "connection" => format!("{} (connection #{id})", provider_label(provider)),
                _ => provider_label(provider),
            }
        }
        _ => "unknown".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_show_halves_and_nothing_for_none() {
        assert_eq!(stars(Some(3.5)), "★★★½");
        assert_eq!(stars(Some(5.0)), "★★★★★");
        assert_eq!(stars(None), "");
        assert_eq!(byte_size(812), "812 bytes");
        assert_eq!(byte_size(11_273), "11.0 KiB");
        assert_eq!(byte_size(3 * 1024 * 1024 + 1), "3.0 MiB");
        assert_eq!(format_label("goodreads-csv"), "Goodreads CSV");
        assert_eq!(format_label("kindle-clippings"), "Kindle clippings");
    }
}
