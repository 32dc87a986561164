//! Text shared by the importers and the provider mappings: HTML to safe plain text, people's names and their roles,
//! lists, dates at their known precision, star ratings, series in titles, and bindings.

use super::{Format, PartialDate, Rating, ReadingStatus, SeriesEntry};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

/// Turns HTML-ish text (Goodreads reviews, LibraryThing reviews) into plain text: block
/// tags and `<br>` become line breaks, other tags go, entities are decoded, control
/// characters are dropped. The result is text to be escaped on display, never markup.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        // A `<` not starting a tag (`I <3 this`, `a < b`) is text.
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        match after.find('>') {
            Some(close) if starts_tag => {
                let tag = after[..close].trim_start_matches('/').trim();
                let name: String = tag
                    .chars()
                    .take_while(char::is_ascii_alphanumeric)
                    .collect::<String>()
                    .to_ascii_lowercase();
                if matches!(
                    name.as_str(),
                    "br" | "p" | "div" | "li" | "blockquote" | "h1" | "h2" | "h3" | "h4" | "tr"
                ) {
                    out.push('\n');
                }
                rest = &after[close + 1..];
            }
            _ => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    let decoded = decode_entities(&out);
    tidy_lines(&decoded)
}

/// Drops control characters, trims each line's trailing spaces, keeps at most one empty line
/// in a row and trims the whole.
fn tidy_lines(text: &str) -> String {
    let cleaned: String = text
        .replace("\r\n", "\n")
        .chars()
        .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
        .map(|c| if c == '\u{a0}' { ' ' } else { c })
        .collect();
    let mut out = String::with_capacity(cleaned.len());
    let mut blank_run = 0;
    for line in cleaned.split('\n') {
        let line = line.trim_end();
        if line.trim().is_empty() {
            blank_run += 1;
            if blank_run > 1 {
                continue;
            }
        } else {
            blank_run = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_string()
}

/// Decodes HTML character references: the common named ones and every numeric one.
/// Unknown names are left as written.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let decoded = after.find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &after[..end];
            let c = if let Some(num) = name.strip_prefix('#') {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse().ok(),
                };
                code.and_then(char::from_u32)
            } else {
                named_entity(name)
            }?;
            Some((c, end))
        });
        if let Some((c, end)) = decoded {
            out.push(c);
            rest = &after[end + 1..];
        } else {
            out.push('&');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

/// HTML named character references: Latin-1 and the common punctuation ones.
/// Sorted by name for binary search.
const NAMED_ENTITIES: &[(&str, char)] = &[
    ("AElig", '\u{c6}'),
    ("Aacute", '\u{c1}'),
    ("Acirc", '\u{c2}'),
    ("Agrave", '\u{c0}'),
    ("Aring", '\u{c5}'),
    ("Atilde", '\u{c3}'),
    ("Auml", '\u{c4}'),
    ("Ccedil", '\u{c7}'),
    ("Dagger", '\u{2021}'),
    ("ETH", '\u{d0}'),
    ("Eacute", '\u{c9}'),
    ("Ecirc", '\u{ca}'),
    ("Egrave", '\u{c8}'),
    ("Euml", '\u{cb}'),
    ("Iacute", '\u{cd}'),
    ("Icirc", '\u{ce}'),
    ("Igrave", '\u{cc}'),
    ("Iuml", '\u{cf}'),
    ("Ntilde", '\u{d1}'),
    ("OElig", '\u{152}'),
    ("Oacute", '\u{d3}'),
    ("Ocirc", '\u{d4}'),
    ("Ograve", '\u{d2}'),
    ("Oslash", '\u{d8}'),
    ("Otilde", '\u{d5}'),
    ("Ouml", '\u{d6}'),
    ("Scaron", '\u{160}'),
    ("THORN", '\u{de}'),
    ("Uacute", '\u{da}'),
    ("Ucirc", '\u{db}'),
    ("Ugrave", '\u{d9}'),
    ("Uuml", '\u{dc}'),
    ("Yacute", '\u{dd}'),
    ("aacute", '\u{e1}'),
    ("acirc", '\u{e2}'),
    ("acute", '\u{b4}'),
    ("aelig", '\u{e6}'),
    ("agrave", '\u{e0}'),
    ("amp", '\u{26}'),
    ("apos", '\u{27}'),
    ("aring", '\u{e5}'),
    ("atilde", '\u{e3}'),
    ("auml", '\u{e4}'),
    ("bdquo", '\u{201e}'),
    ("brvbar", '\u{a6}'),
    ("bull", '\u{2022}'),
    ("ccedil", '\u{e7}'),
    ("cedil", '\u{b8}'),
    ("cent", '\u{a2}'),
    ("copy", '\u{a9}'),
    ("curren", '\u{a4}'),
    ("dagger", '\u{2020}'),
    ("deg", '\u{b0}'),
    ("divide", '\u{f7}'),
    ("eacute", '\u{e9}'),
    ("ecirc", '\u{ea}'),
    ("egrave", '\u{e8}'),
    ("emsp", '\u{2003}'),
    ("ensp", '\u{2002}'),
    ("eth", '\u{f0}'),
    ("euml", '\u{eb}'),
    ("euro", '\u{20ac}'),
    ("frac12", '\u{bd}'),
    ("frac14", '\u{bc}'),
    ("frac34", '\u{be}'),
    ("gt", '\u{3e}'),
    ("hellip", '\u{2026}'),
    ("iacute", '\u{ed}'),
    ("icirc", '\u{ee}'),
    ("iexcl", '\u{a1}'),
    ("igrave", '\u{ec}'),
    ("iquest", '\u{bf}'),
    ("iuml", '\u{ef}'),
    ("laquo", '\u{ab}'),
    ("ldquo", '\u{201c}'),
    ("lrm", '\u{200e}'),
    ("lsaquo", '\u{2039}'),
    ("lsquo", '\u{2018}'),
    ("lt", '\u{3c}'),
    ("macr", '\u{af}'),
    ("mdash", '\u{2014}'),
    ("micro", '\u{b5}'),
    ("middot", '\u{b7}'),
    ("nbsp", '\u{a0}'),
    ("ndash", '\u{2013}'),
    ("not", '\u{ac}'),
    ("ntilde", '\u{f1}'),
    ("oacute", '\u{f3}'),
    ("ocirc", '\u{f4}'),
    ("oelig", '\u{153}'),
    ("ograve", '\u{f2}'),
    ("ordf", '\u{aa}'),
    ("ordm", '\u{ba}'),
    ("oslash", '\u{f8}'),
    ("otilde", '\u{f5}'),
    ("ouml", '\u{f6}'),
    ("para", '\u{b6}'),
    ("permil", '\u{2030}'),
    ("plusmn", '\u{b1}'),
    ("pound", '\u{a3}'),
    ("quot", '\u{22}'),
    ("raquo", '\u{bb}'),
    ("rdquo", '\u{201d}'),
    ("reg", '\u{ae}'),
    ("rlm", '\u{200f}'),
    ("rsaquo", '\u{203a}'),
    ("rsquo", '\u{2019}'),
    ("sbquo", '\u{201a}'),
    ("scaron", '\u{161}'),
    ("sect", '\u{a7}'),
    ("shy", '\u{ad}'),
    ("sup1", '\u{b9}'),
    ("sup2", '\u{b2}'),
    ("sup3", '\u{b3}'),
    ("szlig", '\u{df}'),
    ("thinsp", '\u{2009}'),
    ("thorn", '\u{fe}'),
    ("times", '\u{d7}'),
    ("trade", '\u{2122}'),
    ("uacute", '\u{fa}'),
    ("ucirc", '\u{fb}'),
    ("ugrave", '\u{f9}'),
    ("uml", '\u{a8}'),
    ("uuml", '\u{fc}'),
    ("yacute", '\u{fd}'),
    ("yen", '\u{a5}'),
    ("yuml", '\u{ff}'),
    ("zwj", '\u{200d}'),
    ("zwnj", '\u{200c}'),
];

fn named_entity(name: &str) -> Option<char> {
    NAMED_ENTITIES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| NAMED_ENTITIES[i].1)
}

/// Collapses runs of whitespace to one space (`Thomas  Day` → `Thomas Day`).
pub fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Splits a list on `sep`, trimming and dropping empty items.
pub fn split_list(s: &str, sep: &str) -> Vec<String> {
    s.split(sep)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(ToString::to_string)
        .collect()
}

/// `Cortazar, Julio` → `Julio Cortazar`. Names without exactly one comma are kept as given
/// (`Le Guin, Ursula K.` flips; `Dumas, Alexandre, père` does not guess).
pub fn flip_last_first(name: &str) -> String {
    let parts: Vec<&str> = name.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [last, first] if !last.is_empty() && !first.is_empty() => format!("{first} {last}"),
        _ => collapse_spaces(name),
    }
}

/// What a contributor did, as far as the library model cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Author,
    Translator,
    Narrator,
    /// Illustrators, editors, foreword writers…: not authors of the work. The model has no
    /// place for them, so they stay only in the raw row.
    Other,
}

impl Role {
    /// From a role word in any of the spellings exports use (`Translator`, `trl`,
    /// `Read by`, `Übersetzer`…). Unknown words count as [`Role::Other`].
    pub fn from_word(word: &str) -> Role {
        let w = word.trim().to_lowercase();
        match w.as_str() {
            "" | "author" | "aut" | "writer" | "primary author" | "autor" | "auteur" => {
                Role::Author
            }
            "translator" | "trl" | "translation" | "translated by" | "übersetzer"
            | "traducteur" | "traductor" | "traduttore" => Role::Translator,
            "narrator" | "nrt" | "reader" | "read by" | "narrated by" | "performer" => {
                Role::Narrator
            }
            _ => Role::Other,
        }
    }
}

/// Splits a role suffix off a name: `Ken Liu (Translator)`, `Bibek Debroy - translator`.
/// A name with no recognisable suffix is an author.
pub fn split_role(name: &str) -> (String, Role) {
    let name = collapse_spaces(name);
    if let Some(open) = name.rfind(" (")
        && name.ends_with(')')
    {
        let word = &name[open + 2..name.len() - 1];
        if is_role_word(word) {
            return (name[..open].trim().to_string(), Role::from_word(word));
        }
    }
    for dash in [" - ", " – ", " — "] {
        if let Some(pos) = name.rfind(dash) {
            let word = &name[pos + dash.len()..];
            if is_role_word(word) {
                return (name[..pos].trim().to_string(), Role::from_word(word));
            }
        }
    }
    (name, Role::Author)
}

/// Whether a parenthesised or dashed suffix is a role and not part of a name or title.
fn is_role_word(word: &str) -> bool {
    const KNOWN: &[&str] = &[
        "author",
        "translator",
        "narrator",
        "reader",
        "read by",
        "illustrator",
        "illustrations",
        "editor",
        "foreword",
        "introduction",
        "afterword",
        "contributor",
        "cover artist",
        "artist",
        "photographer",
        "compiler",
        "adapter",
        "performer",
        "colorist",
        "letterer",
        "penciller",
        "inker",
    ];
    let w = word.trim().to_lowercase();
    KNOWN.contains(&w.as_str()) || Role::from_word(&w) != Role::Other
}

/// People sorted into the roles the library model keeps, without duplicates.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct People {
    pub authors: Vec<String>,
    pub translators: Vec<String>,
    pub narrators: Vec<String>,
    /// Editors, illustrators…: kept only to stand in when a book credits no author at all
    /// (an anthology with two editors is still found by their names).
    pub others: Vec<String>,
}

impl People {
    /// Adds `name` under `role`.
    pub fn add(&mut self, name: &str, role: Role) {
        let name = collapse_spaces(name);
        if name.is_empty() {
            return;
        }
        let list = match role {
            Role::Author => &mut self.authors,
            Role::Translator => &mut self.translators,
            Role::Narrator => &mut self.narrators,
            Role::Other => &mut self.others,
        };
        if !list.contains(&name) {
            list.push(name);
        }
    }

    /// Moves the names into a record; other contributors become authors only when nobody
    /// is credited as one.
    pub fn fill_into(self, rec: &mut super::SourceRecord) {
        rec.authors = if self.authors.is_empty() {
            self.others
        } else {
            self.authors
        };
        rec.translators = self.translators;
        rec.narrators = self.narrators;
    }

    /// Adds a name that may carry a role suffix; `default` applies when it has none.
    pub fn add_with_suffix(&mut self, name: &str, default: Role) {
        let (bare, role) = split_role(name);
        let role = if bare.len() == collapse_spaces(name).len() {
            default
        } else {
            role
        };
        self.add(&bare, role);
    }
}

/// A status from a status word or exclusive shelf in any export's or feed's spelling
/// (the OpenLibrary reading-log shelves included):
/// `to-read`, `Want to Read`, `currently-reading`, `Already Read`, `did-not-finish`, `dnf`,
/// `abandoned`, `Stopped Reading`, `paused`, `on-hold`, `Read but unowned`…
pub fn status_from_word(word: &str) -> Option<ReadingStatus> {
    let w: String = word
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c == ' ' || c == '_' { '-' } else { c })
        .collect();
    Some(match w.as_str() {
        "to-read" | "want-to-read" | "tbr" | "want" => ReadingStatus::ToRead,
        "currently-reading" | "reading" | "current" => ReadingStatus::Reading,
        "read" | "already-read" | "finished" | "read-but-unowned" => ReadingStatus::Read,
        "did-not-finish" | "dnf" | "abandoned" | "stopped-reading" | "gave-up" | "not-finished" => {
            ReadingStatus::DidNotFinish
        }
        "paused" | "on-hold" => ReadingStatus::Paused,
        _ => return None,
    })
}

/// A date at the precision given: `2021/03/04`, `2021-03-04`, `2021-03`, `2021`, `-50`,
/// `[2007-04-16]`, or the date part of an ISO timestamp. Impossible dates give `None`.
pub fn parse_partial_date(raw: &str) -> Option<PartialDate> {
    let s = raw
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim();
    // Drop a time part: `2021-01-19T22:41:16+01:00`, `2021-01-19 22:41:16`.
    let date = s.split(['T', ' ']).next().unwrap_or(s);
    let (negative, body) = match date.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, date),
    };
    let parts: Vec<&str> = body.split(['/', '-', '.']).collect();
    if parts.is_empty() || parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
        return None;
    }
    if !parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    let year: i32 = parts[0].parse().ok()?;
    let year = if negative { -year } else { year };
    if negative && parts.len() > 1 {
        return None;
    }
    let month: Option<u32> = parts.get(1).map(|m| m.parse()).transpose().ok()?;
    let day: Option<u32> = parts.get(2).map(|d| d.parse()).transpose().ok()?;
    match (month, day) {
        (Some(m), Some(d)) => NaiveDate::from_ymd_opt(year, m, d).map(PartialDate::from_date),
        (Some(m), None) => (1..=12).contains(&m).then_some(PartialDate {
            year,
            month: Some(m),
            day: None,
        }),
        _ => Some(PartialDate {
            year,
            month: None,
            day: None,
        }),
    }
}

/// A point in time from an ISO 8601 timestamp (with offset or `Z`), `YYYY-MM-DD HH:MM:SS`
/// (taken as UTC), or a date (midnight UTC).
pub fn parse_datetime(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return Some(dt.with_timezone(&Utc));
        }
    }
    for fmt in [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S",
    ] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc());
        }
    }
    let date = parse_partial_date(s)?;
    let day = NaiveDate::from_ymd_opt(date.year, date.month?, date.day?)?;
    Some(day.and_time(NaiveTime::MIN).and_utc())
}

/// A user's rating on a 0–`max` scale (LibraryThing halves, StoryGraph 3.75…), converted
/// to stars out of 5. Empty and 0 mean "not rated". Anything else that is not a number in
/// range is an error message naming the value.
pub fn parse_rating(raw: &str, max: f64) -> Result<Option<Rating>, String> {
    let s = raw.trim();
    if s.is_empty() {
        return Ok(None);
    }
    // Excel in some locales writes `3,5`.
    let value: f64 = s
        .replace(',', ".")
        .parse()
        .map_err(|_| format!("\"{s}\" is not a number from 0 to {max}"))?;
    if !value.is_finite() || !(0.0..=max).contains(&value) {
        return Err(format!("{s} is outside the 0 to {max} range"));
    }
    if value == 0.0 {
        return Ok(None);
    }
    Ok(Rating::from_stars(value * 5.0 / max))
}

/// A whole number such as a page count: `352`, `120 ` (LibraryThing's trailing space),
/// `1,024`. Anything else gives `None`; counts are descriptive, not worth failing a row.
pub fn parse_count(raw: &str) -> Option<u32> {
    let s: String = raw.trim().chars().filter(|c| *c != ',').collect();
    s.parse().ok().filter(|&n| n > 0)
}

/// A series position as text, `8.0` → `8` (calibre writes floats), others as given.
pub fn series_position(raw: &str) -> Option<String> {
    let s = raw.trim().trim_start_matches('#').trim();
    if s.is_empty() {
        return None;
    }
    let s = s.strip_suffix(".0").unwrap_or(s);
    let s = s.strip_suffix(".00").unwrap_or(s);
    Some(s.to_string())
}

/// Series named in parentheses at the end of a title, Goodreads style:
/// `Dune (Dune, #1)`, `Gideon the Ninth (The Locked Tomb #1)`, `X (A, #1; B, #2)`.
/// A parenthesis without `#` (`Emma (Illustrated)`) is not a series.
pub fn series_from_title(title: &str) -> Vec<SeriesEntry> {
    let t = title.trim_end();
    let Some(inner_end) = t.strip_suffix(')') else {
        return Vec::new();
    };
    // Find the `(` matching the final `)`.
    let mut depth = 0usize;
    let mut open = None;
    for (i, c) in inner_end.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth == 0 => {
                open = Some(i);
                break;
            }
            '(' => depth -= 1,
            _ => {}
        }
    }
    let Some(open) = open else {
        return Vec::new();
    };
    let inner = &inner_end[open + 1..];
    let mut out = Vec::new();
    for part in inner.split(';') {
        let Some(hash) = part.rfind('#') else {
            return Vec::new();
        };
        let name = part[..hash].trim().trim_end_matches(',').trim();
        let position = series_position(&part[hash + 1..]);
        if name.is_empty() {
            return Vec::new();
        }
        out.push(SeriesEntry {
            name: name.to_string(),
            position,
        });
    }
    out
}

/// The format a binding or media description implies (`Kindle Edition`, `kindle_edition`,
/// `Audible Audio`, `Paperback`…). Empty gives `None`; unknown bindings are print.
pub fn format_from_binding(raw: &str) -> Option<Format> {
    let b = raw.trim().to_lowercase().replace(['_', '-'], " ");
    if b.is_empty() {
        return None;
    }
    let has = |words: &[&str]| words.iter().any(|w| b.contains(w));
    if has(&["audio", "mp3", "listen", "cassette"]) {
        Some(Format::Audiobook)
    } else if has(&[
        "kindle",
        "ebook",
        "e book",
        "digital",
        "nook",
        "kobo",
        "epub",
        "electronic",
        "pdf",
    ]) {
        Some(Format::Ebook)
    } else {
        Some(Format::Print)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_table_is_sorted_for_binary_search() {
        assert!(NAMED_ENTITIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(
            decode_entities("L&oacute;pez &Eacute;mile &euro;5 &bogus;"),
            "López Émile €5 &bogus;"
        );
    }

    #[test]
    fn html_reviews_become_plain_text() {
        assert_eq!(
            html_to_text("Great.<br/><br/>Really &amp; truly <b>great</b> &#8211; I &lt;3 it"),
            "Great.\n\nReally & truly great – I <3 it"
        );
        assert_eq!(html_to_text("a < b and <script>x</script>"), "a < b and x");
        assert_eq!(html_to_text("<p>one</p><p>two</p>"), "one\n\ntwo");
    }

    #[test]
    fn roles_are_split_off_names() {
        assert_eq!(
            split_role("Ken Liu (Translator)"),
            ("Ken Liu".into(), Role::Translator)
        );
        assert_eq!(
            split_role("Bibek Debroy - translator"),
            ("Bibek Debroy".into(), Role::Translator)
        );
        assert_eq!(
            split_role("Jean-Paul Sartre"),
            ("Jean-Paul Sartre".into(), Role::Author)
        );
        assert_eq!(split_role("Anne (Illustrator)").1, Role::Other);
        assert_eq!(split_role("Prince (Artist Formerly Known)").1, Role::Author);
    }

    #[test]
    fn dates_keep_their_precision() {
        let d = parse_partial_date("2021/03/04").unwrap();
        assert_eq!(d.to_iso(), "2021-03-04");
        assert_eq!(parse_partial_date("2021-03").unwrap().to_iso(), "2021-03");
        assert_eq!(parse_partial_date("-50").unwrap().year, -50);
        assert_eq!(
            parse_partial_date("[2007-04-16]").unwrap().to_iso(),
            "2007-04-16"
        );
        assert!(parse_partial_date("2021/02/30").is_none());
        assert!(parse_partial_date("?").is_none());
        assert_eq!(
            parse_datetime("2021-01-19T22:41:16+01:00")
                .unwrap()
                .to_rfc3339(),
            "2021-01-19T21:41:16+00:00"
        );
        assert!(parse_datetime("2020/10/21").is_some());
    }

    #[test]
    fn ratings_on_any_scale() {
        assert_eq!(parse_rating("3.75", 5.0), Ok(Rating::from_stars(3.75)));
        assert_eq!(parse_rating("0", 5.0), Ok(None));
        assert_eq!(parse_rating("8.00", 10.0), Ok(Rating::from_stars(4.0)));
        assert!(parse_rating("abc", 5.0).is_err());
        assert!(parse_rating("7", 5.0).is_err());
    }

    #[test]
    fn series_in_titles() {
        let s = series_from_title("Gideon the Ninth (The Locked Tomb #1)");
        assert_eq!(s[0].name, "The Locked Tomb");
        assert_eq!(s[0].position.as_deref(), Some("1"));
        let s = series_from_title("Le Crystal des Elfes bleus (Elfes, #1)");
        assert_eq!(s[0].name, "Elfes");
        assert!(series_from_title("Emma (Illustrated)").is_empty());
        assert_eq!(series_from_title("X (A, #1; B, #2.5)").len(), 2);
    }

    #[test]
    fn bindings() {
        assert_eq!(format_from_binding("kindle_edition"), Some(Format::Ebook));
        assert_eq!(format_from_binding("Audio CD"), Some(Format::Audiobook));
        assert_eq!(format_from_binding("Hardcover"), Some(Format::Print));
        assert_eq!(format_from_binding(""), None);
    }
}
