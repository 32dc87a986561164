//! Kindle `My Clippings.txt`: entries split on `==========`, metadata lines read by their
//! structure with per-language keyword tables, grouped into one record per book.
//!
//! Grouping, note attachment and edit de-duplication need the whole file, so this parser
//! buffers its input. Clippings files are small (a heavy reader's file is a few MB).

use crate::{ImportError, MAX_DOCUMENT_BYTES, RowError, RowResult, Rows};
use bb_core::library::{Format, Highlight, HighlightKind, SourceRecord};
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime, TimeZone, Utc};
use serde_json::json;
use std::collections::HashMap;
use std::io::Read;

/// What a clippings file held, after grouping by book.
#[derive(Debug, Default)]
pub struct Clippings {
    /// One `Ok` per book, one `Err` per entry that could not be read.
    pub rows: Vec<RowResult>,
    /// Entries deliberately left out: bookmarks (no text) and empty or placeholder clips.
    pub skipped: u64,
    /// Entries seen, whatever became of them.
    pub entries: u64,
}

/// The kind of a clipping entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClipKind {
    Highlight,
    Note,
    Bookmark,
}

/// An inclusive range of page or location numbers.
pub type Span = (u64, u64);

/// The metadata line (`- Your Highlight on page 12 | Location 170-172 | Added on …`), read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipMeta {
    pub kind: ClipKind,
    pub page: Option<Span>,
    pub location: Option<Span>,
    pub at: Option<DateTime<Utc>>,
}

// Keyword tables, lower-case, matched as substrings of the lower-cased metadata line.
// Sources: the 11-language sample (yakimka/clippings), fyodor's demos, formats.md §2.4.
// Bookmarks are checked first, then notes, then highlights: no bookmark or note phrase
// contains a highlight word, and checking highlights last keeps "Clip This Article" (a
// web clip, text-bearing like a highlight) from shadowing anything.
const BOOKMARK_WORDS: &[&str] = &[
    "bookmark",    // en
    "lesezeichen", // de
    "marcador",    // es, pt
    "signet",      // fr
    "segnalibro",  // it
    "ブックマーク",
    "bladwijzer", // nl
    "закладк",    // ru
    "书签",       // zh
    "書籤",       // zh-TW
];
const NOTE_WORDS: &[&str] = &[
    "note",    // en, fr
    "notiz",   // de
    "nota",    // es, it, pt
    "notitie", // nl
    "メモ",
    "заметк", // ru
    "笔记",   // zh
    "筆記",   // zh-TW
];
const HIGHLIGHT_WORDS: &[&str] = &[
    "highlight",      // en, nl
    "markierung",     // de
    "subrayado",      // es
    "resaltado",      // es (older firmware)
    "surlignement",   // fr
    "evidenziazione", // it
    "destaque",       // pt
    "ハイライト",
    "выделен", // ru
    "标注",    // zh
    "劃線",    // zh-TW
    "clip this article",
    "clip",
];
const PAGE_WORDS: &[&str] = &[
    "page",
    "seite",
    "página",
    "pagina",
    "pág",
    "ページ",
    "страниц",
    "页",
    "頁",
];
const LOCATION_WORDS: &[&str] = &[
    "loc",         // en location / loc., nl locatie
    "posi",        // de Position, es posición, it posizione, pt posição
    "emplacement", // fr
    "место",       // ru
    "位置",        // zh, ja
    "no.",         // ja 位置No.
];
const ADDED_WORDS: &[&str] = &[
    "added on",
    "hinzugefügt",
    "añadido",
    "ajouté",
    "aggiunto",
    "toegevoegd",
    "adicionado",
    "добавлено",
    "添加于",
    "作成日",
];

const MONTHS: &[(&str, u32)] = &[
    // en
    ("january", 1),
    ("february", 2),
    ("march", 3),
    ("april", 4),
    ("may", 5),
    ("june", 6),
    ("july", 7),
    ("august", 8),
    ("september", 9),
    ("october", 10),
    ("november", 11),
    ("december", 12),
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("sept", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
    // de
    ("januar", 1),
    ("jänner", 1),
    ("februar", 2),
    ("märz", 3),
    ("mai", 5),
    ("juni", 6),
    ("juli", 7),
    ("oktober", 10),
    ("dezember", 12),
    // es
    ("enero", 1),
    ("febrero", 2),
    ("marzo", 3),
    ("abril", 4),
    ("mayo", 5),
    ("junio", 6),
    ("julio", 7),
    ("agosto", 8),
    ("septiembre", 9),
    ("setiembre", 9),
    ("octubre", 10),
    ("noviembre", 11),
    ("diciembre", 12),
    // fr
    ("janvier", 1),
    ("février", 2),
    ("mars", 3),
    ("avril", 4),
    ("juin", 6),
    ("juillet", 7),
    ("août", 8),
    ("septembre", 9),
    ("octobre", 10),
    ("novembre", 11),
    ("décembre", 12),
    // it
    ("gennaio", 1),
    ("febbraio", 2),
    ("aprile", 4),
    ("maggio", 5),
    ("giugno", 6),
    ("luglio", 7),
    ("settembre", 9),
    ("ottobre", 10),
    ("dicembre", 12),
    // nl
    ("januari", 1),
    ("februari", 2),
    ("maart", 3),
    ("mei", 5),
    ("augustus", 8),
    // pt
    ("janeiro", 1),
    ("fevereiro", 2),
    ("março", 3),
    ("maio", 5),
    ("junho", 6),
    ("julho", 7),
    ("setembro", 9),
    ("outubro", 10),
    ("novembro", 11),
    ("dezembro", 12),
    // ru (genitive, as dates are written)
    ("января", 1),
    ("февраля", 2),
    ("марта", 3),
    ("апреля", 4),
    ("мая", 5),
    ("июня", 6),
    ("июля", 7),
    ("августа", 8),
    ("сентября", 9),
    ("октября", 10),
    ("ноября", 11),
    ("декабря", 12),
];

/// Text Kindle writes instead of a highlight once a publisher's clipping limit is hit.
const CLIPPING_LIMIT_MARKERS: &[&str] = &["clipping limit", "limite d'extraits", "Clip-Limit"];

/// The streaming entry point: reads the whole file (capped at [`MAX_DOCUMENT_BYTES`]), then
/// hands out one row per book and one per unreadable entry. Bookmarks are not rows.
pub(crate) fn parse(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let mut bytes = Vec::new();
    reader
        .take(MAX_DOCUMENT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_DOCUMENT_BYTES {
        return Err(ImportError::TooLarge {
            what: "the clippings file".into(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    Ok(Box::new(parse_clippings(&bytes).rows.into_iter()))
}

/// Parses a whole clippings file into one record per book.
pub fn parse_clippings(input: &[u8]) -> Clippings {
    let mut out = Clippings::default();
    let mut books = Books::default();
    for entry in parse_entries(input) {
        out.entries += 1;
        match entry {
            Ok(clip) if clip.is_skipped() => out.skipped += 1,
            Ok(clip) => books.push(clip),
            Err(e) => out.rows.push(Err(e)),
        }
    }
    out.rows.extend(books.into_records().into_iter().map(Ok));
    out
}

/// One entry of the file, read but not yet grouped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClipEntry {
    /// 1-based entry number in the file (the "row" of any error).
    pub row: u64,
    pub title: String,
    pub author: Option<String>,
    pub meta: ClipMeta,
    pub meta_line: String,
    pub body: String,
}

impl ClipEntry {
    /// Bookmarks carry no text, and an empty or clipping-limit placeholder body is no
    /// highlight either: these are skipped, not failed.
    pub fn is_skipped(&self) -> bool {
        self.meta.kind == ClipKind::Bookmark
            || self.body.is_empty()
            || CLIPPING_LIMIT_MARKERS.iter().any(|m| self.body.contains(m))
    }
}

/// Splits the file into entries and reads each one, bookmarks included.
pub fn parse_entries(input: &[u8]) -> Vec<Result<ClipEntry, RowError>> {
    let text = String::from_utf8_lossy(input);
    // A BOM opens every entry, not just the file; CRLF files can carry bare LFs inside notes.
    let text = text.replace('\u{feff}', "").replace("\r\n", "\n");
    let mut out = Vec::new();
    let mut entry_lines: Vec<&str> = Vec::new();
    for line in text.split('\n').chain(std::iter::once("==========")) {
        if line.trim() == "==========" {
            let lines = std::mem::take(&mut entry_lines);
            if lines.iter().all(|l| l.trim().is_empty()) {
                continue;
            }
            let row = out.len() as u64 + 1;
            out.push(read_entry(row, &lines).map_err(|message| RowError { row, message }));
        } else {
            entry_lines.push(line.trim_end_matches('\r'));
        }
    }
    out
}

fn read_entry(row: u64, lines: &[&str]) -> Result<ClipEntry, String> {
    let mut it = lines.iter().copied().skip_while(|l| l.trim().is_empty());
    let title_line = it.next().unwrap_or_default().trim();
    let Some(meta_line) = it.next() else {
        return Err(format!(
            "entry for {title_line:?} has no metadata line (expected `- Your Highlight …`)"
        ));
    };
    let meta_line = meta_line.trim();
    let meta = parse_meta_line(meta_line)?;
    let body_lines: Vec<&str> = it.collect();
    let body = body_lines.join("\n").trim().to_string();
    let (title, author) = split_title_author(title_line);
    if title.is_empty() {
        return Err("entry has an empty title line".to_string());
    }
    Ok(ClipEntry {
        row,
        title,
        author,
        meta,
        meta_line: meta_line.to_string(),
        body,
    })
}

/// Splits `Title (Author)`: the author is the last balanced parenthesised group at the end,
/// so `Dangerous Visions (S.F. MASTERWORKS) (Ellison, Harlan)` keeps its own parentheses.
/// Sideloaded documents often have no author at all.
pub fn split_title_author(line: &str) -> (String, Option<String>) {
    let line = line.trim();
    let Some(inner_end) = line.strip_suffix(')') else {
        return (line.to_string(), None);
    };
    let mut depth = 0usize;
    for (i, c) in inner_end.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' if depth == 0 => {
                let author = inner_end[i + 1..].trim();
                let title = inner_end[..i].trim();
                if title.is_empty() || author.is_empty() {
                    return (line.to_string(), None);
                }
                return (title.to_string(), Some(author.to_string()));
            }
            '(' => depth -= 1,
            _ => {}
        }
    }
    (line.to_string(), None)
}

/// `Cockburn, Alistair` → `Alistair Cockburn`; several authors are separated by `;`.
fn author_names(author: &str) -> Vec<String> {
    author
        .split(';')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| match a.split_once(',') {
            Some((last, first)) if !first.contains(',') && !first.trim().is_empty() => {
                format!("{} {}", first.trim(), last.trim())
            }
            _ => a.to_string(),
        })
        .collect()
}

/// Reads a metadata line in any of the known device languages.
pub fn parse_meta_line(line: &str) -> Result<ClipMeta, String> {
    let body = line.trim_start_matches(['-', '–', '—', ' ', '\u{a0}']);
    let lower = body.to_lowercase();
    let segments: Vec<&str> = lower.split('|').collect();
    // The date segment is the one carrying an "added" keyword; failing that, the last
    // segment when there are several and it holds a clock time.
    let date_idx = segments
        .iter()
        .position(|s| ADDED_WORDS.iter().any(|w| s.contains(w)))
        .or_else(|| {
            (segments.len() > 1 && segments.last().is_some_and(|s| s.contains(':')))
                .then(|| segments.len() - 1)
        });
    let meta_text: String = segments
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != date_idx)
        .map(|(_, s)| *s)
        .collect::<Vec<_>>()
        .join("|");

    let kind = if BOOKMARK_WORDS.iter().any(|w| meta_text.contains(w)) {
        ClipKind::Bookmark
    } else if NOTE_WORDS.iter().any(|w| meta_text.contains(w)) {
        ClipKind::Note
    } else if HIGHLIGHT_WORDS.iter().any(|w| meta_text.contains(w)) {
        ClipKind::Highlight
    } else {
        return Err(format!(
            "metadata line {line:?} names no known kind (highlight, note or bookmark)"
        ));
    };

    let (page, location) = page_and_location(&meta_text);
    let at = date_idx
        .and_then(|i| segments.get(i))
        .and_then(|s| parse_clip_date(s));
    Ok(ClipMeta {
        kind,
        page,
        location,
        at,
    })
}

/// A number range as found in a metadata line, with its byte span.
struct NumRange {
    start: usize,
    end: usize,
    from: u64,
    to: u64,
}

fn number_ranges(s: &str) -> Vec<NumRange> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        if !bytes[pos].is_ascii_digit() {
            pos += 1;
            continue;
        }
        let start = pos;
        let (from_digits, after) = digits_at(s, pos);
        let mut end = after;
        let mut to_digits = from_digits;
        // A range separator: -, en dash, em dash, or Dutch `t/m`, with optional spaces.
        let rest = &s[after..];
        let trimmed = rest.trim_start();
        for sep in ["-", "–", "—", "t/m", "~"] {
            if let Some(r) = trimmed.strip_prefix(sep) {
                let r2 = r.trim_start();
                if r2.as_bytes().first().is_some_and(u8::is_ascii_digit) {
                    let (digits, digits_end) = digits_at(s, s.len() - r2.len());
                    to_digits = digits;
                    end = digits_end;
                }
                break;
            }
        }
        if let Ok(from) = from_digits.parse::<u64>() {
            let to = expand_abbreviated_end(from_digits, to_digits).unwrap_or(from);
            out.push(NumRange {
                start,
                end,
                from,
                to: to.max(from),
            });
        }
        pos = end;
    }
    out
}

fn digits_at(s: &str, start: usize) -> (&str, usize) {
    let len = s[start..].bytes().take_while(u8::is_ascii_digit).count();
    (&s[start..start + len], start + len)
}

/// Very old firmware abbreviates range ends: `Loc. 145-46` means 145–146.
fn expand_abbreviated_end(from: &str, to: &str) -> Option<u64> {
    let to_n: u64 = to.parse().ok()?;
    let from_n: u64 = from.parse().ok()?;
    if to_n >= from_n || to.len() >= from.len() {
        return Some(to_n);
    }
    let prefix = &from[..from.len() - to.len()];
    format!("{prefix}{to}").parse().ok()
}

/// Decides for each number whether it is a page or a location by the nearest keyword: the
/// last one before it (`page 12`, `位置 #1300`), else the first after it (`112ページ`,
/// `第 112 页`). Numbers with no keyword at all are taken as locations.
fn page_and_location(meta: &str) -> (Option<Span>, Option<Span>) {
    let ranges = number_ranges(meta);
    let mut page = None;
    let mut location = None;
    let mut prev_end = 0;
    for (idx, r) in ranges.iter().enumerate() {
        let before = &meta[prev_end..r.start];
        let next_start = ranges.get(idx + 1).map_or(meta.len(), |n| n.start);
        let after = &meta[r.end..next_start];
        let is_page = match (last_keyword(before), first_keyword(after)) {
            (Some(k), _) | (None, Some(k)) => k == Keyword::Page,
            (None, None) => false,
        };
        let slot = if is_page { &mut page } else { &mut location };
        if slot.is_none() {
            *slot = Some((r.from, r.to));
        }
        prev_end = r.end;
    }
    (page, location)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Keyword {
    Page,
    Location,
}

fn keyword_hits(s: &str) -> impl Iterator<Item = (usize, Keyword)> + '_ {
    let pages = PAGE_WORDS
        .iter()
        .flat_map(move |w| s.match_indices(w).map(|(i, _)| (i, Keyword::Page)));
    let locs = LOCATION_WORDS
        .iter()
        .flat_map(move |w| s.match_indices(w).map(|(i, _)| (i, Keyword::Location)));
    pages.chain(locs)
}

fn last_keyword(s: &str) -> Option<Keyword> {
    keyword_hits(s).max_by_key(|(i, _)| *i).map(|(_, k)| k)
}

fn first_keyword(s: &str) -> Option<Keyword> {
    keyword_hits(s).min_by_key(|(i, _)| *i).map(|(_, k)| k)
}

/// Best-effort date reading in every device language; `None` rather than a failure.
/// Kindle writes the device's local time with no zone (except very old firmware's
/// `GMT+08:00`), so a zone-less time is taken as UTC.
pub fn parse_clip_date(segment: &str) -> Option<DateTime<Utc>> {
    let s = segment.to_lowercase();
    let (time, rest) = extract_time(&s)?;
    let date = if s.contains('年') {
        cjk_date(&rest)?
    } else {
        western_date(&rest)?
    };
    let naive = date.and_time(time);
    let offset = gmt_offset(&s).unwrap_or(0);
    let tz = FixedOffset::east_opt(offset)?;
    tz.from_local_datetime(&naive)
        .single()
        .map(|d| d.with_timezone(&Utc))
}

/// Finds `H:MM[:SS]` (or `H时M分S秒`) with AM/PM markers in several languages, and returns
/// the time plus the text with the time removed.
fn extract_time(s: &str) -> Option<(NaiveTime, String)> {
    let (h, m, sec, span) = find_clock(s)?;
    // Latin AM/PM must be the word right after the clock: German writes `am Donnerstag`.
    let next_word = s[span.1..]
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches([',', ')']);
    let pm = matches!(next_word, "pm" | "p.m.") || s.contains("下午") || s.contains("午後");
    let am = matches!(next_word, "am" | "a.m.") || s.contains("上午") || s.contains("午前");
    let h = match (pm, am, h) {
        (true, _, h) if h < 12 => h + 12,
        (false, true, 12) => 0,
        (_, _, h) => h,
    };
    let time = NaiveTime::from_hms_opt(h, m, sec)?;
    let mut rest = s.to_string();
    rest.replace_range(span.0..span.1, " ");
    Some((time, rest))
}

type Clock = (u32, u32, u32, (usize, usize));

fn find_clock(s: &str) -> Option<Clock> {
    let b = s.as_bytes();
    for (i, _) in s.match_indices([':', '时', '時']) {
        // Walk back over the hour digits.
        let h_start = b[..i]
            .iter()
            .rposition(|c| !c.is_ascii_digit())
            .map_or(0, |p| p + 1);
        if h_start == i || i - h_start > 2 {
            continue;
        }
        let sep_len = s[i..].chars().next().map_or(1, char::len_utf8);
        let (m_digits, m_end) = digits_at(s, i + sep_len);
        if m_digits.len() != 2 {
            continue;
        }
        let mut end = m_end;
        let mut sec = 0;
        let next = s[m_end..].chars().next();
        if let Some(c @ (':' | '分')) = next {
            let (s_digits, s_end) = digits_at(s, m_end + c.len_utf8());
            if s_digits.len() == 2 {
                sec = s_digits.parse().ok()?;
                end = s_end;
                if s[end..].starts_with('秒') {
                    end += '秒'.len_utf8();
                }
            }
        }
        // `GMT+08:00` is a zone, not the clock.
        if s[..h_start].ends_with('+') || s[..h_start].ends_with('-') {
            continue;
        }
        let h = s[h_start..i].parse().ok()?;
        let m = m_digits.parse().ok()?;
        return Some((h, m, sec, (h_start, end)));
    }
    None
}

fn gmt_offset(s: &str) -> Option<i32> {
    let idx = s.find("gmt")?;
    let rest = &s[idx + 3..];
    let sign = match rest.chars().next()? {
        '+' => 1,
        '-' => -1,
        _ => return None,
    };
    let (h, after) = digits_at(rest, 1);
    let h: i32 = h.parse().ok()?;
    let m: i32 = rest[after..]
        .strip_prefix(':')
        .and_then(|r| digits_at(r, 0).0.parse().ok())
        .unwrap_or(0);
    Some(sign * (h * 3600 + m * 60))
}

/// `2024年8月22日`: read in order, because `作成日` (Japanese "created on") has its own 日.
fn cjk_date(s: &str) -> Option<NaiveDate> {
    let mut rest = s;
    let mut parts = [0u32; 3];
    for (slot, marker) in parts.iter_mut().zip(['年', '月', '日']) {
        let idx = rest.find(marker)?;
        let digits: String = rest[..idx]
            .trim_end()
            .chars()
            .rev()
            .take_while(char::is_ascii_digit)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        *slot = digits.parse().ok()?;
        rest = &rest[idx + marker.len_utf8()..];
    }
    NaiveDate::from_ymd_opt(i32::try_from(parts[0]).ok()?, parts[1], parts[2])
}

fn western_date(s: &str) -> Option<NaiveDate> {
    let mut year = None;
    let mut month = None;
    let mut day = None;
    for word in s.split(|c: char| c.is_whitespace() || c == ',' || c == '/') {
        let w = word.trim_matches(|c: char| c == '.' || c == ':');
        if w.is_empty() {
            continue;
        }
        if w.bytes().all(|c| c.is_ascii_digit()) {
            match w.len() {
                4 if year.is_none() => year = w.parse::<i32>().ok(),
                1 | 2 if day.is_none() => day = w.parse::<u32>().ok(),
                _ => {}
            }
        } else if month.is_none() {
            month = MONTHS.iter().find(|(name, _)| *name == w).map(|(_, m)| *m);
        }
    }
    NaiveDate::from_ymd_opt(year?, month?, day?)
}

/// Books in first-seen order, each with its clips in file order.
#[derive(Default)]
struct Books {
    order: Vec<(String, Option<String>)>,
    clips: HashMap<(String, Option<String>), Vec<ClipEntry>>,
}

impl Books {
    fn push(&mut self, clip: ClipEntry) {
        let key = (clip.title.clone(), clip.author.clone());
        let list = self.clips.entry(key.clone()).or_default();
        if list.is_empty() {
            self.order.push(key);
        }
        list.push(clip);
    }

    fn into_records(mut self) -> Vec<SourceRecord> {
        let mut out = Vec::with_capacity(self.order.len());
        for key in &self.order {
            let Some(clips) = self.clips.remove(key) else {
                continue;
            };
            out.push(book_record(key, clips));
        }
        out
    }
}

fn location_text(meta: &ClipMeta) -> Option<String> {
    let range = |(a, b): (u64, u64)| {
        if a == b {
            a.to_string()
        } else {
            format!("{a}-{b}")
        }
    };
    match (meta.page, meta.location) {
        (Some(p), Some(l)) => Some(format!("page {}, location {}", range(p), range(l))),
        (Some(p), None) => Some(format!("page {}", range(p))),
        (None, Some(l)) => Some(format!("location {}", range(l))),
        (None, None) => None,
    }
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn book_record(key: &(String, Option<String>), clips: Vec<ClipEntry>) -> SourceRecord {
    let (title, author) = key;
    let mut highlights: Vec<(ClipMeta, Highlight)> = Vec::new();
    let mut notes: Vec<(ClipMeta, String)> = Vec::new();
    let mut raw_entries = Vec::with_capacity(clips.len());

    for clip in clips {
        raw_entries.push(json!({
            "entry": clip.row,
            "metadata": clip.meta_line,
            "text": clip.body,
        }));
        match clip.meta.kind {
            ClipKind::Note => notes.push((clip.meta, clip.body)),
            ClipKind::Highlight => {
                let h = Highlight {
                    text: clip.body,
                    note: None,
                    location: location_text(&clip.meta),
                    location_start: clip.meta.location.map(|l| l.0),
                    location_end: clip.meta.location.map(|l| l.1),
                    at: clip.meta.at,
                    kind: HighlightKind::Highlight,
                };
                // Editing a highlight on the device appends a new entry and leaves the old
                // one: a later entry whose range overlaps an earlier one replaces it.
                let earlier = highlights.iter().position(|(m, old)| {
                    match (m.location, clip.meta.location) {
                        (Some(a), Some(b)) => overlaps(a, b),
                        // Page ranges are too coarse to prove an edit; only exact repeats.
                        _ => m.page == clip.meta.page && old.text == h.text,
                    }
                });
                match earlier {
                    Some(i) => highlights[i] = (clip.meta, h),
                    None => highlights.push((clip.meta, h)),
                }
            }
            ClipKind::Bookmark => {}
        }
    }

    // A note is written at the end location of the highlight it belongs to (some
    // firmware writes the start); it may come before or after that highlight in the file.
    // A later note for the same highlight is an edit and wins.
    let mut standalone = Vec::new();
    for (meta, text) in notes {
        let ends_at = highlights
            .iter()
            .rposition(|(m, _)| match (m.location, meta.location) {
                (Some(h), Some(n)) => h.1 == n.0,
                (None, None) => m.page.is_some() && m.page.map(|p| p.1) == meta.page.map(|p| p.0),
                _ => false,
            });
        let inside = || {
            highlights
                .iter()
                .rposition(|(m, _)| match (m.location, meta.location) {
                    (Some(h), Some(n)) => h.0 <= n.0 && n.0 <= h.1,
                    _ => false,
                })
        };
        let target = ends_at.or_else(inside);
        match target {
            Some(i) => highlights[i].1.note = Some(text),
            None => standalone.push(Highlight {
                text,
                note: None,
                location: location_text(&meta),
                location_start: meta.location.map(|l| l.0),
                location_end: meta.location.map(|l| l.1),
                at: meta.at,
                kind: HighlightKind::Note,
            }),
        }
    }
    let mut all: Vec<Highlight> = highlights.into_iter().map(|(_, h)| h).collect();
    all.extend(standalone);
    // Reading order where locations are known; file order otherwise (the sort is stable).
    all.sort_by_key(|h| h.location_start.unwrap_or(u64::MAX));

    SourceRecord {
        external_id: None,
        title: title.clone(),
        authors: author.as_deref().map(author_names).unwrap_or_default(),
        formats: vec![Format::Ebook],
        highlights: all,
        raw: json!({
            "title_line": match author {
                Some(a) => format!("{title} ({a})"),
                None => title.clone(),
            },
            "entries": raw_entries,
        })
        .into(),
        ..SourceRecord::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_parentheses_keep_the_title_whole() {
        assert_eq!(
            split_title_author("Dangerous Visions (S.F. MASTERWORKS) (Ellison, Harlan)"),
            (
                "Dangerous Visions (S.F. MASTERWORKS)".to_string(),
                Some("Ellison, Harlan".to_string())
            )
        );
        assert_eq!(
            split_title_author("Rutherford 1996 - Of Birds and Gifts  "),
            ("Rutherford 1996 - Of Birds and Gifts".to_string(), None)
        );
    }

    #[test]
    fn old_firmware_abbreviated_ranges_and_gmt() {
        let m = parse_meta_line(
            "- Highlight Loc. 145-46  | Added on 2013年8月5日 星期一 上午09时11分28秒 GMT+08:00",
        )
        .unwrap();
        assert_eq!(m.kind, ClipKind::Highlight);
        assert_eq!(m.location, Some((145, 146)));
        assert_eq!(
            m.at.map(|d| d.to_rfc3339()),
            Some("2013-08-05T01:11:28+00:00".to_string())
        );
    }

    #[test]
    fn twelve_and_twenty_four_hour_clocks() {
        let us = parse_clip_date(" added on thursday, august 22, 2024 6:10:53 pm").unwrap();
        let uk = parse_clip_date(" added on thursday, 22 august 2024 18:10:53").unwrap();
        assert_eq!(us, uk);
        let midnight = parse_clip_date("added on monday, may 11, 2020 12:05:00 am").unwrap();
        assert_eq!(midnight.to_rfc3339(), "2020-05-11T00:05:00+00:00");
    }

    #[test]
    fn unknown_kind_is_a_row_error_not_a_panic() {
        let c = parse_clippings(b"Book (A)\n- Something odd 12\n\ntext\n==========\n");
        assert_eq!(c.entries, 1);
        assert!(matches!(c.rows.as_slice(), [Err(RowError { row: 1, .. })]));
    }
}
