//! Audible `1.0/library` items → [`SourceRecord`] (dossier `providers/audible.md` §7): the
//! one mapping shared by the importer of uploaded API dumps and the live Audible sync, plus
//! the small Audible vocabulary (ASINs, progress → status, lenient JSON field access) the
//! audible-cli and Libation importers reuse. Pure: no I/O.

use super::identifiers::{IdScheme, Identifier, isbn_identifiers, parse_asin};
use super::text::{self, People, Role};
use super::{
    Cover, Edition, Format, PartialDate, Position, Progress, Rating, ReadThrough, ReadingStatus,
    Review, SeriesEntry, SourceRecord,
};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Maps one item of a `1.0/library` response (`items[]`, or `item` of `library/{asin}`)
/// per providers/audible.md §7. Pure: the live sync calls exactly this.
///
/// The community `rating` object is never read: only `provided_review` is the user's.
pub fn map_library_item(item: &Value) -> Result<SourceRecord, String> {
    let obj = item
        .as_object()
        .ok_or_else(|| format!("the item is {} rather than an object", kind_of(item)))?;
    let f = Fields(obj);
    let asin = f
        .str(&["asin"])
        .ok_or("the item has no \"asin\"")?
        .to_string();
    let title = f.str(&["title"]).ok_or_else(|| {
        format!("item {asin} has no \"title\" (was the product_attrs response group requested?)")
    })?;

    let mut people = People::default();
    for name in names(obj.get("authors")) {
        people.add_with_suffix(&name, Role::Author);
    }
    for name in names(obj.get("narrators")) {
        people.add_with_suffix(&name, Role::Narrator);
    }

    let series = obj
        .get("series")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let s = Fields(s.as_object()?);
            Some(SeriesEntry {
                name: s.str(&["title"])?.to_string(),
                position: s
                    .text(&["sequence"])
                    .and_then(|p| text::series_position(&p)),
            })
        })
        .collect();

    let mut identifiers = asin_identifiers(&asin);
    if let Some(isbn) = f.str(&["isbn"]) {
        identifiers.extend(isbn_identifiers(isbn));
    }

    // `listening_status` (its own response group) repeats the top-level fields; which one
    // a given account returns is not documented, so read both, top level first.
    let listening = obj.get("listening_status").and_then(Value::as_object);
    let lf = listening.map(Fields);
    let percent = f
        .number(&["percent_complete"])
        .or_else(|| lf.as_ref().and_then(|l| l.number(&["percent_complete"])));
    let finished = f
        .boolean(&["is_finished"])
        .or_else(|| lf.as_ref().and_then(|l| l.boolean(&["is_finished"])));
    let finished_at = lf
        .as_ref()
        .and_then(|l| l.datetime(&["finished_at_timestamp"]));

    let library_status = obj.get("library_status").and_then(Value::as_object);
    let added_at = library_status
        .and_then(|l| Fields(l).datetime(&["date_added"]))
        .or_else(|| f.datetime(&["purchase_date"]));

    let published = ["release_date", "issue_date", "publication_datetime"]
        .iter()
        .find_map(|k| f.str(&[k]).and_then(text::parse_partial_date));

    let (rating, review) = provided_review(obj.get("provided_review"))?;

    Ok(SourceRecord {
        external_id: Some(asin.clone()),
        title: title.to_string(),
        subtitle: f.str(&["subtitle"]).map(str::to_string),
        authors: people.authors,
        narrators: people.narrators,
        translators: people.translators,
        series,
        identifiers,
        formats: vec![Format::Audiobook],
        edition: edition(
            f.str(&["publisher_name"]),
            published,
            f.str(&["language"]),
            f.number(&["runtime_length_min"]),
        ),
        status: status_from(finished, percent),
        status_at: finished_at,
        shelves: Vec::new(),
        rating,
        review,
        reads: finished_at
            .map(|at| ReadThrough {
                started: None,
                finished: Some(PartialDate::from_date(at.date_naive())),
            })
            .into_iter()
            .collect(),
        progress: progress_from(percent),
        highlights: Vec::new(),
        covers: largest_product_image(obj.get("product_images"))
            .into_iter()
            .collect(),
        added_at,
        raw: item.clone().into(),
    })
}

/// The user's own review (`provided_review`). The dossier gives `ratings.{overall_rating,
/// performance_rating, story_rating}` plus `title`, `body`, `submission_date`; some clients
/// show the ratings flat on the object, so both shapes are read. Overall is the rating.
fn provided_review(v: Option<&Value>) -> Result<(Option<Rating>, Option<Review>), String> {
    let Some(obj) = v.and_then(Value::as_object) else {
        return Ok((None, None));
    };
    let f = Fields(obj);
    let nested = obj.get("ratings").and_then(Value::as_object).map(Fields);
    let overall = nested
        .as_ref()
        .and_then(|r| r.text(&["overall_rating", "overall"]))
        .or_else(|| f.text(&["overall_rating"]));
    let rating = match overall {
        Some(v) => text::parse_rating(&v, 5.0)
            .map_err(|e| format!("provided_review overall rating: {e}"))?,
        None => None,
    };
    let title = f.str(&["title"]).map(text::html_to_text);
    let body = f.str(&["body", "review_text"]).map(text::html_to_text);
    let joined = match (title, body) {
        (Some(t), Some(b)) if !t.is_empty() && !b.is_empty() => Some(format!("{t}\n\n{b}")),
        (Some(t), _) if !t.is_empty() => Some(t),
        (_, Some(b)) if !b.is_empty() => Some(b),
        _ => None,
    };
    let review = joined.map(|text| Review {
        text,
        at: f.datetime(&["submission_date", "submitted_date"]),
    });
    Ok((rating, review))
}

/// `authors`/`narrators`: arrays of `{asin?, name}`, sometimes `null`; plain strings are
/// accepted too.
fn names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|p| match p {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("name").and_then(Value::as_str).map(str::to_string),
            _ => None,
        })
        .collect()
}

/// Covers come as `{"500": url, "1215": url}`; the largest is kept.
fn largest_product_image(v: Option<&Value>) -> Option<Cover> {
    v.and_then(Value::as_object)?
        .iter()
        .filter_map(|(size, url)| Some((size.trim().parse::<u32>().ok()?, url.as_str()?)))
        .filter(|(_, url)| !url.trim().is_empty())
        .max_by_key(|(size, _)| *size)
        .map(|(size, url)| Cover {
            url: url.trim().to_string(),
            // Audible covers are square, and the key is the side in pixels.
            width: Some(size),
            height: Some(size),
        })
}

/// The product id as an ASIN identifier. Audible's own ASINs start `B0`; older audio
/// products reuse a 10-character ISBN-like id, which is still the Audible product id, so
/// any 10 alphanumerics count.
pub fn asin_identifiers(asin: &str) -> Vec<Identifier> {
    if let Some(a) = parse_asin(asin) {
        return vec![Identifier::new(IdScheme::Asin, a)];
    }
    let a = asin.trim().to_ascii_uppercase();
    if a.len() == 10 && a.bytes().all(|b| b.is_ascii_alphanumeric()) {
        vec![Identifier::new(IdScheme::Asin, a)]
    } else {
        Vec::new()
    }
}

/// Finished → read; any progress → reading; an owned title not started yet → to-read (the
/// merge never moves a book back from a later status, so this is the safe claim).
pub fn status_from(finished: Option<bool>, percent: Option<f64>) -> Option<ReadingStatus> {
    match (finished, percent) {
        (Some(true), _) => Some(ReadingStatus::Read),
        (_, Some(p)) if p > 0.0 => Some(ReadingStatus::Reading),
        (Some(false), _) | (_, Some(_)) => Some(ReadingStatus::ToRead),
        (None, None) => None,
    }
}

pub fn progress_from(percent: Option<f64>) -> Option<Progress> {
    let p = percent.filter(|p| p.is_finite() && *p > 0.0)?.min(100.0);
    Some(Progress {
        fraction: p / 100.0,
        position: Some(Position::Percent(p)),
        at: None,
    })
}

pub fn edition(
    publisher: Option<&str>,
    release: Option<PartialDate>,
    language: Option<&str>,
    runtime_min: Option<f64>,
) -> Option<Edition> {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // checked finite, ≥ 0
    let runtime_secs = runtime_min
        .filter(|m| m.is_finite() && *m > 0.0 && *m < 1e9)
        .map(|m| (m * 60.0).round() as u64);
    let e = Edition {
        publisher: publisher.map(str::to_string),
        published: release,
        language: language.map(str::to_string),
        runtime_secs,
        ..Edition::default()
    };
    (e != Edition::default()).then_some(e)
}

pub fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// Case-insensitive access to a JSON object (or a CSV row turned into one) through alias
/// lists, with the value coerced the way the exports write it.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a>(pub &'a Map<String, Value>);

impl<'a> Fields<'a> {
    pub fn value(self, aliases: &[&str]) -> Option<&'a Value> {
        aliases.iter().find_map(|alias| {
            self.0.get(*alias).or_else(|| {
                self.0
                    .iter()
                    .find(|(k, _)| k.trim().eq_ignore_ascii_case(alias))
                    .map(|(_, v)| v)
            })
        })
    }

    /// A non-empty trimmed string.
    pub fn str(self, aliases: &[&str]) -> Option<&'a str> {
        self.value(aliases)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// Strings, numbers and booleans as text.
    pub fn text(self, aliases: &[&str]) -> Option<String> {
        match self.value(aliases)? {
            Value::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    /// A number, also from text (`48.75`, or `48,75` from a comma-decimal locale).
    pub fn number(self, aliases: &[&str]) -> Option<f64> {
        match self.value(aliases)? {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().replace(',', ".").parse().ok(),
            _ => None,
        }
        .filter(|n: &f64| n.is_finite())
    }

    pub fn boolean(self, aliases: &[&str]) -> Option<bool> {
        match self.value(aliases)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => parse_bool(s),
            Value::Number(n) => n.as_f64().map(|n| n != 0.0),
            _ => None,
        }
    }

    pub fn datetime(self, aliases: &[&str]) -> Option<DateTime<Utc>> {
        self.str(aliases).and_then(text::parse_datetime)
    }
}

/// Booleans as Python, .NET and localised spreadsheets write them.
pub fn parse_bool(raw: &str) -> Option<bool> {
    match raw.trim().to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "x" | "ja" | "wahr" | "oui" | "vrai" | "sí" | "si" | "sim"
        | "vero" | "verdadero" | "verdadeiro" | "да" | "はい" | "是" | "waar" => Some(true),
        "false" | "no" | "n" | "0" | "nein" | "falsch" | "non" | "faux" | "não" | "nao"
        | "falso" | "нет" | "いいえ" | "否" | "nee" | "onwaar" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn community_rating_is_not_the_users() {
        let item = json!({
            "asin": "B0EXAMPLE1", "title": "T",
            "rating": {"overall_distribution": {"average_rating": 4.6, "display_stars": 4.5}}
        });
        assert_eq!(map_library_item(&item).unwrap().rating, None);
    }

    #[test]
    fn both_review_shapes() {
        let nested = json!({"asin": "B0EXAMPLE1", "title": "T",
            "provided_review": {"ratings": {"overall_rating": 4, "story_rating": 2}}});
        let flat = json!({"asin": "B0EXAMPLE1", "title": "T",
            "provided_review": {"overall_rating": "4"}});
        assert_eq!(
            map_library_item(&nested).unwrap().rating,
            Rating::from_stars(4.0)
        );
        assert_eq!(
            map_library_item(&flat).unwrap().rating,
            Rating::from_stars(4.0)
        );
    }

    #[test]
    fn bools_in_several_languages() {
        assert_eq!(parse_bool("Ja"), Some(true));
        assert_eq!(parse_bool("False"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
