//! Match keys: titles, authors and series reduced to forms that compare equal when two
//! sources spell the same work differently, and nothing more.
//!
//! Decisions worth knowing before changing anything here:
//! - **Leading articles stay in the keys.** Sources we import keep the article in the
//!   title (`LibraryThing` moves it into a separate `Sort Character`, Calibre into
//!   `title_sort`), so stripping it buys little and makes `The Road` equal `Road`. Only the
//!   library-catalogue inversion (`Martian, The`) is turned back. Matching treats titles that
//!   differ only by a leading English article as a *possible* duplicate, and the blocking key
//!   ignores the article so both spellings meet.
//! - **Series and edition noise come off the end only** (`Dune (Dune, #1)`,
//!   `[Series 2]`, `(Penguin Classics)`), and a parenthetical counts as a series only when it
//!   carries a position; anything else in the middle of a title is the title.
//! - **Two title keys.** `main` is the title before any subtitle, `full` includes the
//!   subtitle, so `Sapiens` + `A Brief History` equals `Sapiens: A Brief History`, while
//!   `Dune` and `Dune Messiah` never share a `full` key.
//! - **Authors compare as a token set or as the letters in canonical order**, so that
//!   `Liu Cixin`/`Cixin Liu` and `James SA Corey`/`James S. A. Corey` meet without a list of
//!   name-order conventions.

use super::record::SeriesEntry;
use serde::{Deserialize, Serialize};

/// A title reduced for matching.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TitleKey {
    /// The title without series, edition noise or subtitle.
    pub main: String,
    /// `main` followed by the subtitle, when there is one; equal to `main` otherwise.
    pub full: String,
}

impl TitleKey {
    /// Whether this title had a subtitle (given separately or after a separator).
    pub fn has_subtitle(&self) -> bool {
        self.full != self.main
    }

    pub fn is_empty(&self) -> bool {
        self.full.is_empty()
    }
}

/// A personal name reduced for matching.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AuthorKey {
    /// Name tokens, sorted: order-insensitive, so `Liu Cixin` equals `Cixin Liu`.
    pub tokens: Vec<String>,
    /// The letters of the name in given-name-first order without spaces, so squashed and
    /// spaced initials meet (`jamessacorey`).
    pub compact: String,
}

impl AuthorKey {
    /// The same person as far as names can tell.
    pub fn matches(&self, other: &AuthorKey) -> bool {
        if self.compact.is_empty() || other.compact.is_empty() {
            return false;
        }
        self.tokens == other.tokens || self.compact == other.compact
    }

    pub fn is_empty(&self) -> bool {
        self.compact.is_empty()
    }
}

/// What a contributor did, when a source says so next to the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Author,
    Translator,
    Narrator,
    Illustrator,
    Editor,
    /// Foreword, introduction, afterword, preface.
    Introduction,
}

impl Role {
    /// Whether a name with this role counts as an author of the work for matching.
    pub fn is_author(self) -> bool {
        matches!(self, Role::Author)
    }

    fn from_word(word: &str) -> Option<Role> {
        let w = word
            .trim()
            .trim_end_matches('.')
            .trim()
            .to_lowercase()
            .replace(['\u{00A0}'], " ");
        let w = w
            .strip_suffix(" by")
            .map_or(w.as_str(), str::trim)
            .to_string();
        Some(match w.as_str() {
            "author" | "auteur" | "autor" | "autore" | "writer" | "goodreads author" => {
                Role::Author
            }
            "translator" | "translation" | "translated" | "trans" | "tr" | "traducteur"
            | "traductrice" | "traductor" | "traductora" | "traduttore" | "übersetzer"
            | "übersetzerin" | "ubersetzer" | "vertaler" => Role::Translator,
            "narrator" | "narrated" | "read" | "reader" | "performer" | "sprecher"
            | "sprecherin" | "narrateur" | "narrador" => Role::Narrator,
            "illustrator" | "illustrated" | "illustrations" | "illustrateur" | "illustratrice"
            | "ilustrador" | "artist" | "cover artist" => Role::Illustrator,
            "editor" | "edited" | "ed" | "eds" | "herausgeber" | "hrsg" | "éditeur" | "editora" => {
                Role::Editor
            }
            "foreword" | "introduction" | "afterword" | "preface" | "contributor" => {
                Role::Introduction
            }
            _ => return None,
        })
    }
}

/// Splits a role suffix off a contributor name: `Ken Liu - translator`,
/// `Ken Liu (Translator)`, `Ray Porter (Narrator)`. Unknown parentheticals stay in the name.
pub fn split_role(name: &str) -> (&str, Option<Role>) {
    let trimmed = name.trim();
    if let Some(open) = trimmed.rfind('(')
        && trimmed.ends_with(')')
        && let Some(role) = Role::from_word(&trimmed[open + 1..trimmed.len() - 1])
    {
        return (trimmed[..open].trim(), Some(role));
    }
    for sep in [" - ", " – ", " — ", ", "] {
        if let Some(idx) = trimmed.rfind(sep)
            && let Some(role) = Role::from_word(&trimmed[idx + sep.len()..])
        {
            return (trimmed[..idx].trim(), Some(role));
        }
    }
    (trimmed, None)
}

/// Lower-case ASCII words: diacritics and other scripts transliterated, `&` read as `and`,
/// apostrophes dropped inside words, every other non-alphanumeric a word break.
fn fold(text: &str) -> String {
    let ascii = deunicode::deunicode_with_tofu(text, " ");
    let mut out = String::with_capacity(ascii.len());
    let mut pending_space = false;
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            if pending_space && !out.is_empty() {
                out.push(' ');
            }
            pending_space = false;
            out.push(c.to_ascii_lowercase());
        } else if c == '\'' || c == '`' {
            // `Handmaid's` and `Handmaids` are one spelling; no word break.
        } else if c == '&' {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str("and");
            pending_space = true;
        } else {
            pending_space = true;
        }
    }
    out
}

const SMALL_NUMBERS: [&str; 12] = [
    "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve",
];

/// A series position: `1`, `1.5`, `1-3`, `0.5`, or a spelled-out small number.
fn parse_position(token: &str) -> Option<String> {
    let t = token.trim().trim_start_matches('#').trim();
    if t.is_empty() {
        return None;
    }
    let numeric = t
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | '–'))
        && t.starts_with(|c: char| c.is_ascii_digit());
    if numeric {
        return Some(t.replace('–', "-"));
    }
    let lower = t.to_lowercase();
    SMALL_NUMBERS
        .iter()
        .position(|w| *w == lower)
        .map(|i| (i + 1).to_string())
}

const POSITION_WORDS: [&str; 9] = [
    "book", "vol", "volume", "part", "tome", "band", "bd", "livre", "libro",
];

fn clean_series_name(name: &str) -> String {
    let mut n = name.trim().trim_end_matches([',', ':', ';', '-']).trim();
    for suffix in [" series", " Series", " SERIES", " saga"] {
        if let Some(rest) = n.strip_suffix(suffix)
            && !rest.trim().is_empty()
        {
            n = rest.trim().trim_end_matches(',').trim();
        }
    }
    n.to_string()
}

/// One series reference without brackets: `Dune, #1`, `The Expanse Book 1`,
/// `Book 1 of The Expanse`, `Series 2`. `None` when no position can be found: a
/// parenthetical without one (`Penguin Classics`) is not treated as a series.
fn parse_series_ref(inner: &str) -> Option<SeriesEntry> {
    let s = inner.trim();
    if s.is_empty() {
        return None;
    }
    let words: Vec<&str> = s.split_whitespace().collect();
    // `Book 1 of The Expanse`
    if words.len() >= 4
        && POSITION_WORDS.contains(&words[0].trim_end_matches('.').to_lowercase().as_str())
        && words[2].eq_ignore_ascii_case("of")
        && let Some(position) = parse_position(words[1])
    {
        let name = clean_series_name(&words[3..].join(" "));
        return Some(SeriesEntry {
            name,
            position: Some(position),
        });
    }
    // `Name, #1`, `Name #1`, `Name, Book 1`, `Name Book One`, `Name 2`
    let last = words.last()?;
    let position = if last.starts_with('#') {
        parse_position(last)
    } else {
        parse_position(last.trim_end_matches('.'))
    }?;
    let mut name_words = &words[..words.len() - 1];
    if let Some(w) = name_words.last() {
        let w = w.trim_end_matches(['.', ',']).to_lowercase();
        if POSITION_WORDS.contains(&w.as_str()) {
            name_words = &name_words[..name_words.len() - 1];
        }
    }
    let name = clean_series_name(&name_words.join(" "));
    // A bare number in brackets (`(2049)`) names no series; `(Book 1)` and `(#1)` are
    // series markers without a name.
    if words.len() == 1 && !last.starts_with('#') {
        return None;
    }
    Some(SeriesEntry {
        name,
        position: Some(position),
    })
}

/// Splits trailing series references off a title: `Dune (Dune, #1)` →
/// (`Dune`, \[`Dune` #1\]); `The Colour of Magic (Discworld, #1; Rincewind #1)` gives both
/// series. Returns every series found (Goodreads joins several with `;`), unlike a single
/// `Option`, because dropping the second one would lose data the importer had. Entries with
/// an empty name (`(Book 1)`) are stripped from the title but not returned.
pub fn split_series(title: &str) -> (&str, Vec<SeriesEntry>) {
    let mut rest = title.trim_end();
    let mut found: Vec<SeriesEntry> = Vec::new();
    while let Some(close_ch) = rest.chars().last().filter(|c| matches!(c, ')' | ']')) {
        let open_ch = if close_ch == ')' { '(' } else { '[' };
        let Some(open) = rest.rfind(open_ch) else {
            break;
        };
        if open == 0 {
            break;
        }
        let inner = &rest[open + 1..rest.len() - close_ch.len_utf8()];
        let parsed: Option<Vec<SeriesEntry>> = inner.split(';').map(parse_series_ref).collect();
        let Some(entries) = parsed else {
            break;
        };
        found.splice(0..0, entries.into_iter().filter(|e| !e.name.is_empty()));
        rest = rest[..open].trim_end();
    }
    (rest, found)
}

/// A subtitle that is really a series marker (`Expanse, Book 1`, `Book 1 of The Expanse`,
/// as Audible writes them) parsed as one. Subtitles without a position are subtitles.
pub fn series_from_subtitle(subtitle: &str) -> Option<SeriesEntry> {
    let s = subtitle.trim();
    let lower = s.to_lowercase();
    let has_marker = lower.contains('#')
        || lower
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| POSITION_WORDS.contains(&w));
    if !has_marker {
        return None;
    }
    parse_series_ref(s).filter(|e| !e.name.is_empty())
}

/// Trailing parentheticals that describe an edition, not the work.
fn is_edition_noise(inner: &str) -> bool {
    let lower = inner.to_lowercase();
    [
        "edition",
        "unabridged",
        "abridged",
        "classics",
        "illustrated",
        "annotated",
        "dramatized",
        "dramatised",
        "audiobook",
        "audio book",
        "kindle",
        "ebook",
        "paperback",
        "hardcover",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

fn strip_edition_noise(title: &str) -> &str {
    let mut rest = title.trim_end();
    while let Some(close) = rest.chars().last().filter(|c| matches!(c, ')' | ']')) {
        let open_ch = if close == ')' { '(' } else { '[' };
        let Some(open) = rest.rfind(open_ch).filter(|&o| o > 0) else {
            break;
        };
        if !is_edition_noise(&rest[open + 1..rest.len() - 1]) {
            break;
        }
        rest = rest[..open].trim_end();
    }
    rest
}

/// Subtitles that only say what kind of book it is; dropping them lets
/// `Beloved: A Novel` meet `Beloved`.
fn is_genre_subtitle(folded: &str) -> bool {
    matches!(
        folded,
        "a novel" | "novel" | "a novella" | "a memoir" | "a thriller" | "roman" | "a romance"
    )
}

/// `Martian, The` → `The Martian`: catalogue inversion back to reading order.
fn uninvert_article(title: &str) -> String {
    for art in ["The", "A", "An"] {
        for sep in [", ", ","] {
            let suffix = format!("{sep}{art}");
            if title.len() > suffix.len()
                && title
                    .get(title.len() - suffix.len()..)
                    .is_some_and(|s| s.eq_ignore_ascii_case(&suffix))
            {
                let head = &title[..title.len() - suffix.len()];
                return format!("{art} {}", head.trim());
            }
        }
    }
    title.to_string()
}

/// The first subtitle separator: a colon, or a spaced dash (a hyphen inside a word such as
/// `Three-Body` is not one).
fn split_subtitle(title: &str) -> (&str, Option<&str>) {
    let colon = title.find(':').map(|i| (i, 1));
    let dash = [" - ", " – ", " — "]
        .iter()
        .filter_map(|sep| title.find(sep).map(|i| (i, sep.len())))
        .min();
    let first = match (colon, dash) {
        (Some(c), Some(d)) => Some(c.min(d)),
        (c, d) => c.or(d),
    };
    match first {
        Some((i, len)) if i > 0 && !title[i + len..].trim().is_empty() => {
            (title[..i].trim_end(), Some(title[i + len..].trim()))
        }
        _ => (title, None),
    }
}

/// Match keys for a title and its optional separately given subtitle.
pub fn normalize_title(title: &str, subtitle: Option<&str>) -> TitleKey {
    let (without_series, _) = split_series(title);
    let cleaned = uninvert_article(strip_edition_noise(without_series));
    let (head, inline_sub) = split_subtitle(&cleaned);
    let main = fold(head);

    let mut subs: Vec<String> = Vec::new();
    for s in [inline_sub, subtitle].into_iter().flatten() {
        let (s_no_series, _) = split_series(s);
        if series_from_subtitle(s_no_series).is_some() {
            continue;
        }
        let f = fold(s_no_series);
        if f.is_empty() || is_genre_subtitle(&f) {
            continue;
        }
        // A subtitle given separately that the title already carries (Audible does both).
        if subs.iter().any(|have| have == &f) {
            continue;
        }
        subs.push(f);
    }
    let mut full = main.clone();
    for s in subs {
        if !full.is_empty() {
            full.push(' ');
        }
        full.push_str(&s);
    }
    TitleKey { main, full }
}

const NAME_SUFFIXES: [&str; 8] = ["jr", "sr", "ii", "iii", "iv", "phd", "md", "obe"];

/// `Corey, James S. A.` → `James S. A. Corey`; `King, Martin Luther, Jr.` →
/// `Martin Luther King Jr.`. Names without a comma are left in their order.
fn reorder_last_first(name: &str) -> String {
    let parts: Vec<&str> = name
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    let is_suffix = |p: &str| NAME_SUFFIXES.contains(&fold(p).replace(' ', "").as_str());
    match parts.as_slice() {
        [last, first] if !is_suffix(first) => format!("{first} {last}"),
        [last, first, suffix] if is_suffix(suffix) => format!("{first} {last} {suffix}"),
        _ => parts.join(" "),
    }
}

fn is_vowel(c: char) -> bool {
    matches!(c.to_ascii_lowercase(), 'a' | 'e' | 'i' | 'o' | 'u' | 'y')
}

/// Match key for a contributor name (any role suffix is removed first).
pub fn normalize_author(name: &str) -> AuthorKey {
    let (bare, _) = split_role(name);
    let ordered = reorder_last_first(bare);
    let ascii = deunicode::deunicode_with_tofu(&ordered, " ");
    let raw_words: Vec<&str> = ascii
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '-' | '_' | '/'))
        .filter(|w| !w.is_empty())
        .collect();
    let count = raw_words.len();
    let mut tokens: Vec<String> = Vec::new();
    for (i, w) in raw_words.iter().enumerate() {
        let letters: String = w.chars().filter(char::is_ascii_alphanumeric).collect();
        if letters.is_empty() {
            continue;
        }
        let dotted = w.contains('.');
        let all_upper = letters.chars().all(|c| c.is_ascii_uppercase());
        let inner = i > 0 && i + 1 < count;
        // `S.A.` and `JRR` are initials; `LIU` in `LIU Cixin` is a surname in capitals.
        // A short all-capital token counts as initials when it has no vowel or sits between
        // other names.
        let initials = letters.len() <= 3
            && ((dotted && letters.len() > 1)
                || (all_upper
                    && letters.len() >= 2
                    && count > 1
                    && (!letters.chars().any(is_vowel) || inner)));
        if initials {
            tokens.extend(letters.chars().map(|c| c.to_ascii_lowercase().to_string()));
        } else {
            tokens.push(letters.to_ascii_lowercase());
        }
    }
    let compact = tokens.concat();
    tokens.sort();
    AuthorKey { tokens, compact }
}

/// Key used to fetch plausible title-match candidates without scanning a library: the first
/// four characters of the first word of the main title after a leading English article.
/// Empty when the title has no letters or digits; such records can only match by
/// identifier or source key.
pub fn blocking_key(title: &TitleKey) -> String {
    let without_article = strip_leading_article(&title.main);
    without_article
        .split(' ')
        .next()
        .unwrap_or_default()
        .chars()
        .take(4)
        .collect()
}

/// A folded title without a leading `the`, `a` or `an`.
pub fn strip_leading_article(folded: &str) -> &str {
    for art in ["the ", "a ", "an "] {
        if let Some(rest) = folded.strip_prefix(art)
            && !rest.is_empty()
        {
            return rest;
        }
    }
    folded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &str, pos: &str) -> SeriesEntry {
        SeriesEntry {
            name: name.into(),
            position: Some(pos.into()),
        }
    }

    #[test]
    fn series_is_split_off_titles_in_every_export_spelling() {
        assert_eq!(
            split_series("Dune (Dune, #1)"),
            ("Dune", vec![series("Dune", "1")])
        );
        assert_eq!(
            split_series("Leviathan Wakes (The Expanse Book 1)"),
            ("Leviathan Wakes", vec![series("The Expanse", "1")])
        );
        assert_eq!(
            split_series("Leviathan Wakes (The Expanse, #1)"),
            ("Leviathan Wakes", vec![series("The Expanse", "1")])
        );
        assert_eq!(
            split_series("Caliban's War [Series 2]"),
            ("Caliban's War", vec![series("Series", "2")])
        );
        assert_eq!(
            split_series("Gideon the Ninth (The Locked Tomb #1)"),
            ("Gideon the Ninth", vec![series("The Locked Tomb", "1")])
        );
        assert_eq!(
            split_series("Le Crystal des Elfes bleus (Elfes, #1)"),
            ("Le Crystal des Elfes bleus", vec![series("Elfes", "1")])
        );
        assert_eq!(
            split_series("The Colour of Magic (Discworld, #1; Rincewind #1)"),
            (
                "The Colour of Magic",
                vec![series("Discworld", "1"), series("Rincewind", "1")]
            )
        );
        assert_eq!(
            split_series("Abaddon's Gate (Book 3 of The Expanse)"),
            ("Abaddon's Gate", vec![series("The Expanse", "3")])
        );
        assert_eq!(
            split_series("The Expanse Omnibus (The Expanse, #1-3)"),
            ("The Expanse Omnibus", vec![series("The Expanse", "1-3")])
        );
        assert_eq!(
            split_series("The Expanse Series Book One"),
            ("The Expanse Series Book One", vec![])
        );
    }

    #[test]
    fn parentheticals_without_a_position_are_not_series() {
        assert_eq!(
            split_series("Persuasion (Penguin Classics)"),
            ("Persuasion (Penguin Classics)", vec![])
        );
        assert_eq!(
            split_series("Blade Runner (2049)"),
            ("Blade Runner (2049)", vec![])
        );
        assert_eq!(split_series("(1) Untitled"), ("(1) Untitled", vec![]));
    }

    #[test]
    fn series_in_the_title_does_not_change_the_key() {
        assert_eq!(
            normalize_title("Dune (Dune, #1)", None),
            normalize_title("Dune", None)
        );
        assert_eq!(
            normalize_title("Leviathan Wakes (The Expanse Book 1)", None),
            normalize_title("Leviathan Wakes", None)
        );
        assert_eq!(
            normalize_title("Leviathan Wakes", Some("The Expanse, Book 1")),
            normalize_title("Leviathan Wakes", None)
        );
        assert_eq!(
            normalize_title("Persuasion (Penguin Classics)", None),
            normalize_title("Persuasion", None)
        );
    }

    #[test]
    fn subtitle_separate_or_after_a_separator_gives_one_key() {
        let separate = normalize_title("Sapiens", Some("A Brief History of Humankind"));
        let colon = normalize_title("Sapiens: A Brief History of Humankind", None);
        let dash = normalize_title("Sapiens - A Brief History of Humankind", None);
        let both = normalize_title(
            "Sapiens: A Brief History of Humankind",
            Some("A Brief History of Humankind"),
        );
        assert_eq!(separate, colon);
        assert_eq!(separate, dash);
        assert_eq!(separate, both);
        assert_eq!(separate.main, "sapiens");
        assert_eq!(separate.full, "sapiens a brief history of humankind");
        assert!(separate.has_subtitle());
        // A hyphen inside a word is not a subtitle separator.
        assert_eq!(
            normalize_title("The Three-Body Problem", None).main,
            "the three body problem"
        );
    }

    #[test]
    fn genre_subtitles_are_dropped() {
        assert_eq!(
            normalize_title("Beloved: A Novel", None),
            normalize_title("Beloved", None)
        );
    }

    #[test]
    fn sequels_keep_distinct_keys() {
        assert_ne!(
            normalize_title("Dune", None).full,
            normalize_title("Dune Messiah", None).full
        );
        assert_ne!(
            normalize_title("The Martian", None).full,
            normalize_title("The Martian Chronicles", None).full
        );
        assert_ne!(
            normalize_title("It", None).full,
            normalize_title("It Ends with Us", None).full
        );
    }

    #[test]
    fn diacritics_case_punctuation_ampersand_and_spaces_fold() {
        assert_eq!(
            normalize_title("Solaris", None),
            normalize_title("SOLARIS", None)
        );
        assert_eq!(
            normalize_title("Un Automne à Hanoï", None),
            normalize_title("un automne a hanoi", None)
        );
        assert_eq!(
            normalize_title("Dr Jekyll & Mr Hyde", None),
            normalize_title("Dr. Jekyll and Mr. Hyde", None)
        );
        assert_eq!(
            normalize_title("  The   Handmaid's  Tale ", None),
            normalize_title("The Handmaids Tale", None)
        );
        assert_eq!(
            normalize_title("The Handmaid’s Tale", None).main,
            "the handmaids tale"
        );
    }

    #[test]
    fn leading_articles_are_kept_but_catalogue_inversion_is_undone() {
        assert_eq!(
            normalize_title("Martian, The", None),
            normalize_title("The Martian", None)
        );
        assert_ne!(
            normalize_title("The Martian", None),
            normalize_title("Martian", None)
        );
        assert_eq!(
            blocking_key(&normalize_title("The Martian", None)),
            blocking_key(&normalize_title("Martian", None))
        );
    }

    #[test]
    fn author_name_order_and_initials() {
        let canonical = normalize_author("James S. A. Corey");
        for spelling in [
            "Corey, James S. A.",
            "James S.A. Corey",
            "James SA Corey",
            "james s. a. corey",
            "James  S. A.  Corey ",
        ] {
            assert!(
                normalize_author(spelling).matches(&canonical),
                "{spelling} should match"
            );
        }
        assert!(!normalize_author("James Corey").matches(&canonical));
        assert!(normalize_author("J.R.R. Tolkien").matches(&normalize_author("JRR Tolkien")));
        assert!(normalize_author("Tolkien, J. R. R.").matches(&normalize_author("J.R.R. Tolkien")));
    }

    #[test]
    fn author_order_insensitive_and_capitalised_surnames() {
        assert!(normalize_author("Liu Cixin").matches(&normalize_author("Cixin Liu")));
        assert!(normalize_author("LIU Cixin").matches(&normalize_author("Cixin Liu")));
        assert!(normalize_author("Liu, Cixin").matches(&normalize_author("Liu Cixin")));
        assert!(!normalize_author("Ken Liu").matches(&normalize_author("Cixin Liu")));
    }

    #[test]
    fn author_diacritics_spaces_and_case() {
        assert!(normalize_author("Stanisław Lem").matches(&normalize_author("Stanislaw Lem")));
        assert!(normalize_author("Jirō Taniguchi").matches(&normalize_author("Jiro Taniguchi")));
        assert!(normalize_author("Thomas  Day").matches(&normalize_author("thomas day")));
        assert!(
            normalize_author("Le Guin, Ursula K.").matches(&normalize_author("Ursula K. Le Guin"))
        );
        assert!(
            normalize_author("King, Martin Luther, Jr.")
                .matches(&normalize_author("Martin Luther King Jr."))
        );
    }

    #[test]
    fn role_suffixes_are_split_and_ignored_in_keys() {
        assert_eq!(
            split_role("Ken Liu - translator"),
            ("Ken Liu", Some(Role::Translator))
        );
        assert_eq!(
            split_role("Ken Liu (Translator)"),
            ("Ken Liu", Some(Role::Translator))
        );
        assert_eq!(
            split_role("Ray Porter (Narrator)"),
            ("Ray Porter", Some(Role::Narrator))
        );
        assert_eq!(
            split_role("Bibek Debroy - translator"),
            ("Bibek Debroy", Some(Role::Translator))
        );
        assert_eq!(
            split_role("Jean Dupont (Illustrations)"),
            ("Jean Dupont", Some(Role::Illustrator))
        );
        assert_eq!(split_role("Anne Brontë"), ("Anne Brontë", None));
        assert_eq!(
            split_role("Prince (Artist Formerly Known As)"),
            ("Prince (Artist Formerly Known As)", None)
        );
        assert!(normalize_author("Ken Liu - translator").matches(&normalize_author("Ken Liu")));
    }

    #[test]
    fn empty_inputs_give_empty_keys_that_match_nothing() {
        assert!(normalize_title("  ", None).is_empty());
        assert!(normalize_author("").is_empty());
        assert!(!normalize_author("").matches(&normalize_author("")));
        assert_eq!(blocking_key(&normalize_title("!!!", None)), "");
    }

    #[test]
    fn blocking_key_is_a_short_prefix() {
        assert_eq!(
            blocking_key(&normalize_title("Leviathan Wakes", None)),
            "levi"
        );
        assert_eq!(blocking_key(&normalize_title("It", None)), "it");
        assert_eq!(
            blocking_key(&normalize_title("Solaris", None)),
            blocking_key(&normalize_title("Sołaris (Penguin Classics)", None))
        );
    }

    #[test]
    fn subtitle_series_markers() {
        assert_eq!(
            series_from_subtitle("The Expanse, Book 1"),
            Some(series("The Expanse", "1"))
        );
        assert_eq!(
            series_from_subtitle("Book 1 of The Expanse"),
            Some(series("The Expanse", "1"))
        );
        assert_eq!(series_from_subtitle("A Brief History of Humankind"), None);
    }
}
