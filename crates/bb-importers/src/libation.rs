//! Libation library export: CSV written in the exporting machine's locale (delimiter, dates,
//! decimal commas), with the header names from before and after the January 2026 rename,
//! and JSON written with the C# property names. Both become one JSON object per book and
//! share a mapping.

use crate::audible_api::{Fields, asin_identifiers, edition, kind_of, progress_from, status_from};
use crate::csv_table::CsvTable;
use crate::json_stream::{JsonEntries, TopLevel};
use crate::text::{self, People, Role};
use crate::{ImportError, RowError, Rows};
use bb_core::library::{Cover, Format, PartialDate, SeriesEntry, SourceRecord};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde_json::Value;
use std::io::Read;

// Current CSV header first, then the pre-2026 CSV names, then the JSON property names.
const ASIN: &[&str] = &["Audible Product Id", "AudibleProductId", "ASIN"];
const TITLE: &[&str] = &["Title"];
const SUBTITLE: &[&str] = &["Subtitle"];
const AUTHORS: &[&str] = &["Authors", "AuthorNames", "Author Names"];
const NARRATORS: &[&str] = &["Narrators", "NarratorNames", "Narrator Names"];
const LENGTH: &[&str] = &["Length In Minutes", "LengthInMinutes"];
const PUBLISHER: &[&str] = &["Publisher"];
const SERIES_NAMES: &[&str] = &["Series Names", "SeriesNames"];
const SERIES_ORDER: &[&str] = &["Series Order", "SeriesOrder"];
const PICTURE: &[&str] = &["Cover Id Large", "PictureLarge", "Cover Id", "PictureId"];
const PUBLISHED: &[&str] = &["Date Published", "DatePublished"];
const LANGUAGE: &[&str] = &["Language"];
const DATE_ADDED: &[&str] = &["Date Added to library", "Date Added", "DateAdded"];
const MY_RATING: &[&str] = &["My Rating: Overall", "MyRatingOverall", "My Rating Overall"];
const TAGS: &[&str] = &["My Libation Tags", "MyLibationTags", "Tags"];
const IS_FINISHED: &[&str] = &["Is Finished?", "IsFinished", "Is Finished"];
/// Columns holding dates, read first so an unambiguous one teaches the day/month order.
const DATE_COLUMNS: &[&[&str]] = &[
    DATE_ADDED,
    PUBLISHED,
    &["Last Downloaded", "LastDownloaded"],
    &["Included Until", "IncludedUntil"],
];

/// `.json`: a list of objects with the C# property names, streamed.
pub(crate) fn parse_json(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let entries = JsonEntries::open(reader)?;
    if entries.top_level() != TopLevel::Array {
        return Err(ImportError::Unrecognised(
            "a Libation JSON export is a list of books, and this file is an object".into(),
        ));
    }
    let mut dates = LocaleDates::new(DayOrder::DayFirst);
    Ok(Box::new(entries.map(move |entry| {
        let entry = entry?;
        map_row(&entry.value, &mut dates).map_err(|m| RowError::new(entry.index, m))
    })))
}

/// `.csv`: delimiter sniffed (`,` or `;`), headers matched through old and new names.
pub(crate) fn parse_csv(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let mut table = CsvTable::open(reader)?;
    table.require("Audible Product Id", ASIN)?;
    table.require("Title", TITLE)?;
    // Machines whose list separator is `;` write day-first dates (de, fr, nl, it, es…);
    // `,` is en-US first of all. An unambiguous date in the file overrides this guess.
    let default = if table.delimiter() == b';' {
        DayOrder::DayFirst
    } else {
        DayOrder::MonthFirst
    };
    let mut dates = LocaleDates::new(default);
    Ok(Box::new(std::iter::from_fn(move || {
        let row = match table.next_row()? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        let raw = row.to_value();
        Some(map_row(&raw, &mut dates).map_err(|m| row.error(m)))
    })))
}

/// Maps one row (CSV header → text, or a JSON object).
///
/// Only `My Rating: Overall` is the user's rating; the `Community Rating` columns are
/// Audible's average and are never read.
pub fn map_row(v: &Value, dates: &mut LocaleDates) -> Result<SourceRecord, String> {
    let obj = v
        .as_object()
        .ok_or_else(|| format!("the entry is {} rather than an object", kind_of(v)))?;
    let f = Fields(obj);
    let asin = f
        .str(ASIN)
        .ok_or("the \"Audible Product Id\" field is empty")?;
    let title = f
        .str(TITLE)
        .ok_or_else(|| format!("book {asin} has an empty \"Title\""))?;

    for aliases in DATE_COLUMNS {
        if let Some(s) = f.str(aliases) {
            dates.observe(s);
        }
    }

    let mut people = People::default();
    for name in f
        .str(AUTHORS)
        .map(|s| text::split_list(s, ","))
        .unwrap_or_default()
    {
        people.add_with_suffix(&name, Role::Author);
    }
    for name in f
        .str(NARRATORS)
        .map(|s| text::split_list(s, ","))
        .unwrap_or_default()
    {
        people.add_with_suffix(&name, Role::Narrator);
    }

    let rating = match f.text(MY_RATING) {
        Some(r) => text::parse_rating(&r, 5.0).map_err(|e| format!("My Rating: Overall: {e}"))?,
        None => None,
    };
    let finished = match f.value(IS_FINISHED) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(_) => Some(f.boolean(IS_FINISHED).ok_or_else(|| {
            format!(
                "\"Is Finished?\" is not yes or no: {:?}",
                f.text(IS_FINISHED)
            )
        })?),
    };

    let published = f.str(PUBLISHED).and_then(|s| dates.date(s));
    let added_at = f.str(DATE_ADDED).and_then(|s| dates.datetime(s));

    Ok(SourceRecord {
        external_id: Some(asin.to_string()),
        title: title.to_string(),
        subtitle: f.str(SUBTITLE).map(str::to_string),
        authors: people.authors,
        narrators: people.narrators,
        translators: people.translators,
        series: series(f.str(SERIES_ORDER), f.str(SERIES_NAMES)),
        identifiers: asin_identifiers(asin),
        formats: vec![Format::Audiobook],
        edition: edition(
            f.str(PUBLISHER),
            published.map(PartialDate::from_date),
            f.str(LANGUAGE),
            f.number(LENGTH),
        ),
        // Libation exports no listening percentage, only whether the book is finished.
        status: status_from(finished, None),
        progress: progress_from(None),
        shelves: f
            .str(TAGS)
            .map(|t| {
                t.split(|c: char| c.is_whitespace() || c == ',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        rating,
        covers: f
            .str(PICTURE)
            .and_then(cover_from_picture_id)
            .into_iter()
            .collect(),
        added_at,
        raw: v.clone().into(),
        ..SourceRecord::default()
    })
}

/// `Series Order` is `"<order> : <series>"` joined by `", "`; a series name may itself hold
/// `", "`, so a part without ` : ` belongs to the previous one. With no order column, the
/// names alone are used.
fn series(order: Option<&str>, names: Option<&str>) -> Vec<SeriesEntry> {
    if let Some(order) = order {
        let mut parts: Vec<String> = Vec::new();
        for part in order.split(", ") {
            match parts.last_mut() {
                Some(prev) if !part.contains(" : ") => {
                    prev.push_str(", ");
                    prev.push_str(part);
                }
                _ => parts.push(part.to_string()),
            }
        }
        let out: Vec<SeriesEntry> = parts
            .iter()
            .filter_map(|p| {
                let (pos, name) = p.split_once(" : ").unwrap_or(("", p));
                let name = name.trim();
                (!name.is_empty()).then(|| SeriesEntry {
                    name: name.to_string(),
                    position: text::series_position(pos),
                })
            })
            .collect();
        if !out.is_empty() {
            return out;
        }
    }
    names
        .map(|n| text::split_list(n, ", "))
        .unwrap_or_default()
        .into_iter()
        .map(|name| SeriesEntry {
            name,
            position: None,
        })
        .collect()
}

/// Libation stores Amazon image ids (`51abcXYZ`), not URLs. Amazon serves every image id
/// at this address, full size when no `._SL…_` size part is given (Audible's own
/// `product_images` URLs are the same id with a size part).
fn cover_from_picture_id(id: &str) -> Option<Cover> {
    let id = id.trim();
    if id.is_empty()
        || !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'+')
    {
        return None;
    }
    Some(Cover {
        url: format!("https://m.media-amazon.com/images/I/{id}.jpg"),
        width: None,
        height: None,
    })
}

/// Whether `03/04/2021` is the 3rd of April or March the 4th.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayOrder {
    DayFirst,
    MonthFirst,
}

/// Reads dates the way .NET's current culture writes them (`25.01.2021 14:03:00`,
/// `1/25/2021 2:03:00 PM`, `2021/01/25 14:03:00`, ISO), learning the day/month order from
/// the first unambiguous date in the file. Times carry no zone and are taken as UTC.
#[derive(Debug, Clone)]
pub struct LocaleDates {
    learned: Option<DayOrder>,
    default: DayOrder,
}

impl LocaleDates {
    pub fn new(default: DayOrder) -> Self {
        Self {
            learned: None,
            default,
        }
    }

    /// Looks at a date without parsing it, to learn the order if it gives it away.
    pub fn observe(&mut self, raw: &str) {
        if self.learned.is_some() {
            return;
        }
        if let Some((a, b, _)) = numeric_parts(raw).and_then(|p| p.day_month_pair()) {
            if a > 12 && b <= 12 {
                self.learned = Some(DayOrder::DayFirst);
            } else if b > 12 && a <= 12 {
                self.learned = Some(DayOrder::MonthFirst);
            }
        }
    }

    pub fn date(&self, raw: &str) -> Option<NaiveDate> {
        if let Some(d) = iso(raw) {
            return Some(d.date_naive());
        }
        let parts = numeric_parts(raw)?;
        if let Some((y, m, d)) = parts.year_first() {
            return NaiveDate::from_ymd_opt(y, m, d);
        }
        let (a, b, year) = parts.day_month_pair()?;
        let (day, month) = match self.learned.unwrap_or(self.default) {
            DayOrder::DayFirst => (a, b),
            DayOrder::MonthFirst => (b, a),
        };
        NaiveDate::from_ymd_opt(year, month, day)
    }

    pub fn datetime(&self, raw: &str) -> Option<DateTime<Utc>> {
        if let Some(d) = iso(raw) {
            return Some(d);
        }
        let date = self.date(raw)?;
        let time = raw
            .split_once(char::is_whitespace)
            .and_then(|(_, t)| clock(t))
            .unwrap_or(NaiveTime::MIN);
        Some(date.and_time(time).and_utc())
    }
}

/// ISO forms only when the value starts with a four-digit year: `text::parse_datetime`
/// would otherwise read `10/11/12` as the year 10.
fn iso(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    (s.len() >= 10 && s.as_bytes()[..4].iter().all(u8::is_ascii_digit) && s.as_bytes()[4] == b'-')
        .then(|| text::parse_datetime(s))
        .flatten()
}

struct NumericDate {
    parts: [u32; 3],
    year_at: usize,
}

impl NumericDate {
    fn year_first(&self) -> Option<(i32, u32, u32)> {
        (self.year_at == 0).then(|| {
            (
                i32::try_from(self.parts[0]).unwrap_or(0),
                self.parts[1],
                self.parts[2],
            )
        })
    }

    /// The two non-year parts in written order, plus the year, for `a.b.yyyy` dates.
    fn day_month_pair(&self) -> Option<(u32, u32, i32)> {
        (self.year_at == 2).then(|| {
            (
                self.parts[0],
                self.parts[1],
                i32::try_from(self.parts[2]).unwrap_or(0),
            )
        })
    }
}

/// `25.01.2021`, `1/25/2021`, `2021/01/25`, `25-01-2021` (time part ignored).
fn numeric_parts(raw: &str) -> Option<NumericDate> {
    let date = raw.split_whitespace().next()?.trim_end_matches(['.', ',']);
    let parts: Vec<&str> = date.split(['.', '/', '-']).collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let nums = [a.parse().ok()?, b.parse().ok()?, c.parse().ok()?];
    let year_at = if a.len() == 4 {
        0
    } else if c.len() == 4 {
        2
    } else {
        return None;
    };
    Some(NumericDate {
        parts: nums,
        year_at,
    })
}

/// `14:03:00`, `2:03:00 PM`, `2:03 p. m.`.
fn clock(s: &str) -> Option<NaiveTime> {
    let s = s.trim().to_lowercase();
    let (hms, rest) = s.split_once(char::is_whitespace).unwrap_or((&s, ""));
    let mut it = hms.split(':');
    let h: u32 = it.next()?.parse().ok()?;
    let m: u32 = it.next()?.parse().ok()?;
    let sec: u32 = it
        .next()
        .and_then(|x| x.split('.').next())
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let marker: String = rest
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '.')
        .collect();
    let h = match (marker.as_str(), h) {
        ("pm" | "午後" | "下午", h) if h < 12 => h + 12,
        ("am" | "午前" | "上午", 12) => 0,
        (_, h) => h,
    };
    NaiveTime::from_hms_opt(h, m, sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_day_order_from_an_unambiguous_date() {
        let mut d = LocaleDates::new(DayOrder::MonthFirst);
        assert_eq!(d.date("03/04/2021"), NaiveDate::from_ymd_opt(2021, 3, 4));
        d.observe("25/01/2021 14:03:00");
        assert_eq!(d.date("03/04/2021"), NaiveDate::from_ymd_opt(2021, 4, 3));
        assert_eq!(
            d.datetime("1/25/2021 2:03:00 PM").map(|t| t.to_rfc3339()),
            None,
            "25 is no month once day-first is learned"
        );
        assert_eq!(
            d.datetime("2021-01-25T12:43:44.103Z")
                .map(|t| t.to_rfc3339()),
            Some("2021-01-25T12:43:44.103+00:00".into())
        );
    }

    #[test]
    fn twelve_hour_clock() {
        let d = LocaleDates::new(DayOrder::MonthFirst);
        assert_eq!(
            d.datetime("1/25/2021 2:03:00 PM").map(|t| t.to_rfc3339()),
            Some("2021-01-25T14:03:00+00:00".into())
        );
    }

    #[test]
    fn series_order_with_commas_in_names() {
        let s = series(Some("1 : Dune, 2.5 : Tales, Old and New"), None);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "Tales, Old and New");
        assert_eq!(s[1].position.as_deref(), Some("2.5"));
    }
}
