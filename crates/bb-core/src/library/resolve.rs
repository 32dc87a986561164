//! One library item's fields worked out from all the records merged into it, with the
//! source of every resolved value and the values that lost.
//!
//! The rules, in the order a reader of the docs needs them:
//! - **A manual edit always wins** for the fields a user can edit (title, subtitle, authors,
//!   status, rating, shelves, progress, cover). What the sources say stays visible as
//!   alternatives.
//! - **Title, subtitle, authors, narrators, translators, series** come from the source with
//!   the most metadata authority ([`ResolveRules::metadata_priority`]; catalogues before a
//!   clippings file), ties going to the most recently seen source. Subtitles travel with
//!   the title they belong to. Losing spellings are kept as alternatives.
//! - **Status** goes forward with the most recent dated evidence: an explicit status dated
//!   by `status_at` (else `added_at`), a read-through's finish date (`read`) or lone start
//!   date (`reading`), and dated progress (`reading`, or `read` at 100%). Dated evidence
//!   beats undated; at equal dates the further-along status wins (to-read < paused <
//!   reading < did-not-finish < read). A partial date counts from its first day.
//! - **Progress** is the most recent position: dated before undated, then the most recently
//!   seen source.
//! - **Ratings** from every source are kept with attribution. The one shown is the most
//!   recently dated (a rating is dated by its review's date, else by the source's latest
//!   finish date); when none is dated, [`ResolveRules::rating_priority`] decides.
//! - **Reviews** are all kept, with attribution; identical texts collapse into one.
//! - **Read-throughs** are merged: equal dates collapse, and dates that agree at different
//!   precisions (`2021-03` and `2021-03-14`) merge into the precise one when they share a
//!   date. A read with no dates at all is evidence that *a* read happened: undated reads are
//!   kept only as far as needed so that no source's count of reads is lost (a Goodreads
//!   row with a finish date plus an undated read from elsewhere is one read, not two).
//! - **Shelves** are the union, compared case-insensitively; the spelling of the
//!   most authoritative source is shown.
//! - **Highlights** are the union, deduplicated by text and location.
//! - **Covers** are ordered by [`ResolveRules::cover_priority`], then by pixel area, then
//!   by URL; a manual cover comes first.
//! - **Identifiers, formats, editions** are unions.
//!
//! The result depends only on the set of records, never on the order they are given in.

use super::identifiers::{IdScheme, isbn_identifiers};
use super::normalize::{Role, series_from_subtitle, split_role, split_series};
use super::record::{
    Cover, Edition, Format, HighlightKind, PartialDate, Position, Progress, Rating, ReadThrough,
    ReadingStatus, SeriesEntry, SourceRecord,
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize, Serializer};
use std::borrow::Cow;
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet};

/// Whether a source is an import batch or a linked account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceKind {
    Batch,
    Connection,
}

/// Which import batch or connection supplied a record, and when it was received.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceRef {
    pub kind: SourceKind,
    pub id: i64,
    pub provider: String,
    pub seen_at: DateTime<Utc>,
}

/// A record together with where it came from. The record is borrowed where the caller
/// keeps it (an import resolves every item from records it already holds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourcedRecord<'r> {
    pub source: SourceRef,
    pub record: Cow<'r, SourceRecord>,
}

/// A value the user set by hand, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Edit<T> {
    pub value: T,
    pub at: DateTime<Utc>,
}

/// The user's manual edits to one item. `Some(Edit { value: None, .. })` on an optional
/// field means the user cleared it, which also wins over the sources.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManualEdits {
    pub title: Option<Edit<String>>,
    pub subtitle: Option<Edit<Option<String>>>,
    pub authors: Option<Edit<Vec<String>>>,
    pub status: Option<Edit<ReadingStatus>>,
    pub rating: Option<Edit<Option<Rating>>>,
    pub shelves: Option<Edit<Vec<String>>>,
    pub progress: Option<Edit<Option<Progress>>>,
    pub cover: Option<Edit<Cover>>,
}

/// Source priorities, each a list of provider names (case-insensitive), best first. A `*`
/// entry marks where providers not on the list rank; without one they rank last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResolveRules {
    /// Who is trusted for title, subtitle, authors, narrators, translators and series.
    pub metadata_priority: Vec<String>,
    /// Who is shown when no rating is dated.
    pub rating_priority: Vec<String>,
    /// Whose covers come first, before size decides.
    pub cover_priority: Vec<String>,
}

impl Default for ResolveRules {
    /// Catalogues first; a Kindle clippings file, which only knows a title line, last.
    fn default() -> Self {
        let catalogues = [
            "hardcover",
            "openlibrary",
            "audible",
            "goodreads",
            "storygraph",
            "librarything",
            "calibre",
            "kobo",
            "*",
            "kindle",
        ];
        Self {
            metadata_priority: catalogues.iter().map(ToString::to_string).collect(),
            rating_priority: [
                "goodreads",
                "storygraph",
                "hardcover",
                "librarything",
                "openlibrary",
                "audible",
                "calibre",
                "kobo",
            ]
            .iter()
            .map(ToString::to_string)
            .collect(),
            cover_priority: [
                "hardcover",
                "openlibrary",
                "audible",
                "goodreads",
                "calibre",
                "kobo",
            ]
            .iter()
            .map(ToString::to_string)
            .collect(),
        }
    }
}

fn rank(provider: &str, list: &[String]) -> usize {
    list.iter()
        .position(|p| p.eq_ignore_ascii_case(provider))
        .or_else(|| list.iter().position(|p| p == "*"))
        .unwrap_or(list.len())
}

/// Who supplied a value: a source, or the user by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Manual,
    Source(SourceRef),
}

impl Serialize for Origin {
    /// `"manual"`, or the source object.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Origin::Manual => s.serialize_str("manual"),
            Origin::Source(r) => r.serialize(s),
        }
    }
}

/// A value that lost, with where it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alternative<T> {
    pub value: T,
    pub source: Origin,
    pub at: Option<DateTime<Utc>>,
}

/// Where a resolved value came from, and the values it beat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Provenance<T> {
    pub source: Origin,
    /// When the value was asserted: the edit time, the evidence date, or when the source
    /// was seen.
    pub at: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub alternatives: Vec<Alternative<T>>,
}

/// Provenance of every resolved scalar field; absent when the field has no value.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ProvenanceMap {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<Provenance<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<Provenance<Option<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authors: Option<Provenance<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub narrators: Option<Provenance<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub translators: Option<Provenance<Vec<String>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<Provenance<Vec<SeriesEntry>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Provenance<ReadingStatus>>,
    /// Alternatives are star values.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rating: Option<Provenance<Option<f64>>>,
    /// Alternatives are fractions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<Provenance<Option<f64>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shelves: Option<Provenance<Vec<String>>>,
    /// Alternatives are cover URLs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cover: Option<Provenance<String>>,
}

impl ProvenanceMap {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EditionSeen {
    pub provider: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(flatten)]
    pub edition: Edition,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatingSeen {
    pub stars: f64,
    /// The provider that gave it.
    pub source: String,
    pub at: Option<DateTime<Utc>>,
    pub provenance: SourceRef,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReviewSeen {
    pub text: String,
    /// The provider that gave it.
    pub source: String,
    pub at: Option<DateTime<Utc>>,
    pub provenance: SourceRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadSeen {
    #[serde(serialize_with = "iso_date")]
    pub started: Option<PartialDate>,
    #[serde(serialize_with = "iso_date")]
    pub finished: Option<PartialDate>,
    /// Providers that reported this read.
    pub sources: Vec<String>,
}

#[allow(clippy::ref_option)] // serde's serialize_with passes a reference to the field
fn iso_date<S: Serializer>(d: &Option<PartialDate>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_str(&d.to_iso()),
        None => s.serialize_none(),
    }
}

#[allow(clippy::ref_option, clippy::trivially_copy_pass_by_ref)] // serde's serialize_with passes a reference
fn stars<S: Serializer>(r: &Option<Rating>, s: S) -> Result<S::Ok, S::Error> {
    match r {
        Some(r) => s.serialize_f64(r.stars()),
        None => s.serialize_none(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HighlightSeen {
    pub text: String,
    pub note: Option<String>,
    pub location: Option<String>,
    pub location_start: Option<u64>,
    pub kind: HighlightKind,
    pub at: Option<DateTime<Utc>>,
    /// The provider that gave it.
    pub source: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CoverSeen {
    pub url: String,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The provider, or `manual`.
    pub source: String,
}

/// One source as the library lists it: `title` exactly as that source gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourceSummary {
    pub provider: String,
    pub external_id: Option<String>,
    pub title: String,
    pub kind: SourceKind,
    /// The batch or connection id.
    pub id: i64,
}

/// Everything the library shows for one item (the caller adds `id`), resolved from its
/// sources when it is read (nothing resolved is stored). Its JSON leaves out the fields
/// without a value, and [`super::stored::expand_stored`] puts them back for the library
/// view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResolvedItem {
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtitle: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub authors: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub narrators: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub translators: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesEntry>,
    /// Scheme (`isbn_13`, `asin`, …) to values, sorted.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub identifiers: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<Format>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub editions: Vec<EditionSeen>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<ReadingStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shelves: Vec<String>,
    /// Stars, 0.5–5.
    #[serde(serialize_with = "stars", skip_serializing_if = "Option::is_none")]
    pub rating: Option<Rating>,
    /// Every source's rating.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratings: Vec<RatingSeen>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<ReviewSeen>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reads: Vec<ReadSeen>,
    /// 0–1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub progress: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub highlights: Vec<HighlightSeen>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<CoverSeen>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceSummary>,
    #[serde(skip_serializing_if = "ProvenanceMap::is_empty")]
    pub provenance: ProvenanceMap,
}

/// Start of the period a partial date names.
fn date_start(d: PartialDate) -> Option<DateTime<Utc>> {
    NaiveDate::from_ymd_opt(d.year, d.month.unwrap_or(1), d.day.unwrap_or(1))
        .and_then(|n| n.and_hms_opt(0, 0, 0))
        .map(|n| n.and_utc())
}

fn collapse_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The records in one canonical order, so nothing downstream depends on input order.
fn canonical<'a, 'r>(sources: &'a [SourcedRecord<'r>]) -> Vec<&'a SourcedRecord<'r>> {
    let mut v: Vec<&SourcedRecord> = sources.iter().collect();
    v.sort_by(|a, b| {
        a.source
            .cmp(&b.source)
            .then_with(|| a.record.external_id.cmp(&b.record.external_id))
            .then_with(|| a.record.title.cmp(&b.record.title))
            .then_with(|| {
                // Two records with one source and one id differ only in detail; their
                // serialisation is a total order that needs no Ord on every field.
                let ja = serde_json::to_string(&a.record).unwrap_or_default();
                let jb = serde_json::to_string(&b.record).unwrap_or_default();
                ja.cmp(&jb)
            })
    });
    v
}

/// `records` ordered by a priority list, then most recently seen first; stable over the
/// canonical order.
fn by_priority<'a, 'r>(
    records: &[&'a SourcedRecord<'r>],
    list: &[String],
) -> Vec<&'a SourcedRecord<'r>> {
    let mut v = records.to_vec();
    v.sort_by_key(|r| (rank(&r.source.provider, list), Reverse(r.source.seen_at)));
    v
}

fn origin(r: &SourcedRecord) -> Origin {
    Origin::Source(r.source.clone())
}

/// Picks the first of `ranked` that has a value, keeps every other distinct value as an
/// alternative; a manual edit, when present, wins over all of them.
fn pick<T: Clone + PartialEq>(
    ranked: &[&SourcedRecord],
    manual: Option<(T, DateTime<Utc>)>,
    value_of: impl Fn(&SourcedRecord) -> Option<T>,
) -> Option<(T, Provenance<T>)> {
    let mut candidates: Vec<(T, Origin, Option<DateTime<Utc>>)> = Vec::new();
    if let Some((v, at)) = manual {
        candidates.push((v, Origin::Manual, Some(at)));
    }
    for r in ranked {
        if let Some(v) = value_of(r) {
            candidates.push((v, origin(r), Some(r.source.seen_at)));
        }
    }
    let mut iter = candidates.into_iter();
    let (value, source, at) = iter.next()?;
    let mut alternatives: Vec<Alternative<T>> = Vec::new();
    for (v, src, at) in iter {
        if v != value && !alternatives.iter().any(|a| a.value == v) {
            alternatives.push(Alternative {
                value: v,
                source: src,
                at,
            });
        }
    }
    Some((
        value.clone(),
        Provenance {
            source,
            at,
            alternatives,
        },
    ))
}

/// Contributors of a record by role, role suffixes removed.
struct People {
    authors: Vec<String>,
    narrators: Vec<String>,
    translators: Vec<String>,
}

fn people(record: &SourceRecord) -> People {
    let mut p = People {
        authors: Vec::new(),
        narrators: Vec::new(),
        translators: Vec::new(),
    };
    let push = |list: &mut Vec<String>, name: &str| {
        let name = collapse_spaces(name);
        if !name.is_empty() && !list.contains(&name) {
            list.push(name);
        }
    };
    for raw in &record.authors {
        match split_role(raw) {
            (name, None | Some(Role::Author)) => push(&mut p.authors, name),
            (name, Some(Role::Narrator)) => push(&mut p.narrators, name),
            (name, Some(Role::Translator)) => push(&mut p.translators, name),
            // Illustrators, editors and foreword writers are not who a work is filed under.
            (_, Some(_)) => {}
        }
    }
    for raw in &record.narrators {
        push(&mut p.narrators, split_role(raw).0);
    }
    for raw in &record.translators {
        push(&mut p.translators, split_role(raw).0);
    }
    p
}

fn clean_title(record: &SourceRecord) -> Option<String> {
    let t = collapse_spaces(split_series(&record.title).0);
    (!t.is_empty()).then_some(t)
}

fn clean_subtitle(record: &SourceRecord) -> Option<String> {
    let s = collapse_spaces(record.subtitle.as_deref()?);
    (!s.is_empty() && series_from_subtitle(&s).is_none()).then_some(s)
}

fn series_of(record: &SourceRecord) -> Vec<SeriesEntry> {
    if !record.series.is_empty() {
        return record.series.clone();
    }
    let mut out = split_series(&record.title).1;
    if let Some(s) = record.subtitle.as_deref().and_then(series_from_subtitle) {
        out.push(s);
    }
    out
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Title, subtitle and contributors: a manual edit, else the most authoritative source.
fn resolve_metadata(
    meta: &[&SourcedRecord],
    edits: &ManualEdits,
    item: &mut ResolvedItem,
    prov: &mut ProvenanceMap,
) {
    let title = pick(
        meta,
        edits.title.as_ref().map(|e| (e.value.clone(), e.at)),
        |r| clean_title(&r.record),
    );
    // The subtitle comes from the record the title came from, so a title that already
    // contains its subtitle is never shown with it twice.
    let title_source = title.as_ref().map(|(_, p)| p.source.clone());
    let subtitle_ranked: Vec<&SourcedRecord> = match &title_source {
        Some(Origin::Source(s)) => {
            let mut v: Vec<&SourcedRecord> = meta.to_vec();
            v.sort_by_key(|r| r.source != *s);
            v
        }
        _ => meta.to_vec(),
    };
    let subtitle = pick(
        &subtitle_ranked,
        edits.subtitle.as_ref().map(|e| (e.value.clone(), e.at)),
        |r| Some(clean_subtitle(&r.record)),
    );
    let authors = pick(
        meta,
        edits.authors.as_ref().map(|e| (e.value.clone(), e.at)),
        |r| non_empty(people(&r.record).authors),
    );
    let narrators = pick(meta, None, |r| non_empty(people(&r.record).narrators));
    let translators = pick(meta, None, |r| non_empty(people(&r.record).translators));
    let series = pick(meta, None, |r| non_empty(series_of(&r.record)));

    if let Some((v, p)) = title {
        item.title = v;
        prov.title = Some(p);
    }
    if let Some((v, p)) = subtitle {
        item.subtitle = v;
        // A subtitle nobody gives needs no provenance.
        if item.subtitle.is_some() || !p.alternatives.is_empty() {
            prov.subtitle = Some(p);
        }
    }
    if let Some((v, p)) = authors {
        item.authors = v;
        prov.authors = Some(p);
    }
    if let Some((v, p)) = narrators {
        item.narrators = v;
        prov.narrators = Some(p);
    }
    if let Some((v, p)) = translators {
        item.translators = v;
        prov.translators = Some(p);
    }
    if let Some((v, p)) = series {
        item.series = v;
        prov.series = Some(p);
    }
}

/// Resolves one item from its records and the user's edits.
pub fn resolve(
    sources: &[SourcedRecord],
    edits: &ManualEdits,
    rules: &ResolveRules,
) -> ResolvedItem {
    resolve_fields(sources, edits, rules, Fields::All)
}

/// Resolves only what a listing filters, searches and sorts on (title, subtitle, people,
/// series, formats, status, rating, shelves), exactly as [`resolve`] does; every other
/// field is left empty. An import resolves each item it writes for these.
pub fn resolve_listed(
    sources: &[SourcedRecord],
    edits: &ManualEdits,
    rules: &ResolveRules,
) -> ResolvedItem {
    resolve_fields(sources, edits, rules, Fields::Listed)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fields {
    All,
    Listed,
}

fn resolve_fields(
    sources: &[SourcedRecord],
    edits: &ManualEdits,
    rules: &ResolveRules,
    fields: Fields,
) -> ResolvedItem {
    let all = canonical(sources);
    let meta = by_priority(&all, &rules.metadata_priority);
    let mut prov = ProvenanceMap::default();

    let mut item = ResolvedItem {
        title: String::new(),
        subtitle: None,
        authors: Vec::new(),
        narrators: Vec::new(),
        translators: Vec::new(),
        series: Vec::new(),
        identifiers: BTreeMap::new(),
        formats: all
            .iter()
            .flat_map(|r| r.record.formats.iter().copied())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
        editions: Vec::new(),
        status: None,
        shelves: Vec::new(),
        rating: None,
        ratings: Vec::new(),
        reviews: Vec::new(),
        reads: Vec::new(),
        progress: None,
        position: None,
        highlights: Vec::new(),
        covers: Vec::new(),
        sources: Vec::new(),
        provenance: ProvenanceMap::default(),
    };
    resolve_metadata(&meta, edits, &mut item, &mut prov);
    if let Some((v, p)) = resolve_status(&all, edits) {
        item.status = Some(v);
        prov.status = Some(p);
    }
    let (ratings, shown) = resolve_rating(&all, edits, rules);
    item.ratings = ratings;
    if let Some((v, p)) = shown {
        item.rating = v;
        prov.rating = Some(p);
    }
    let (shelves, shelf_prov) = resolve_shelves(&meta, edits);
    item.shelves = shelves;
    prov.shelves = shelf_prov;
    if fields == Fields::All {
        item.identifiers = identifiers(&all);
        item.editions = editions(&all);
        item.reviews = reviews(&all);
        item.reads = merge_reads(&all);
        item.highlights = highlights(&meta);
        item.sources = all
            .iter()
            .map(|r| SourceSummary {
                provider: r.source.provider.clone(),
                external_id: r.record.external_id.clone(),
                title: r.record.title.clone(),
                kind: r.source.kind,
                id: r.source.id,
            })
            .collect();
        if let Some((v, p)) = resolve_progress(&all, edits) {
            item.progress = v.as_ref().map(|p| p.fraction.clamp(0.0, 1.0));
            item.position = v.and_then(|p| p.position);
            prov.progress = Some(p);
        }
        let (covers, cover_prov) = resolve_covers(&all, edits, rules);
        item.covers = covers;
        prov.cover = cover_prov;
    }
    item.provenance = prov;
    item
}

fn identifiers(all: &[&SourcedRecord]) -> BTreeMap<String, Vec<String>> {
    let mut map: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in all {
        for id in &r.record.identifiers {
            let expanded = match id.scheme {
                IdScheme::Isbn10 | IdScheme::Isbn13 => isbn_identifiers(&id.value),
                _ => Vec::new(),
            };
            if expanded.is_empty() {
                map.entry(id.scheme.as_str().to_string())
                    .or_default()
                    .insert(id.value.clone());
            }
            for e in expanded {
                map.entry(e.scheme.as_str().to_string())
                    .or_default()
                    .insert(e.value);
            }
        }
    }
    map.into_iter()
        .map(|(k, v)| (k, v.into_iter().collect()))
        .collect()
}

fn editions(all: &[&SourcedRecord]) -> Vec<EditionSeen> {
    let mut out: Vec<EditionSeen> = Vec::new();
    for r in all {
        if let Some(e) = &r.record.edition
            && *e != Edition::default()
            && !out.iter().any(|seen| seen.edition == *e)
        {
            out.push(EditionSeen {
                provider: r.source.provider.clone(),
                external_id: r.record.external_id.clone(),
                edition: e.clone(),
            });
        }
    }
    out
}

fn reviews(all: &[&SourcedRecord]) -> Vec<ReviewSeen> {
    let mut out: Vec<ReviewSeen> = Vec::new();
    for r in all {
        let Some(review) = &r.record.review else {
            continue;
        };
        let text = review.text.trim();
        if text.is_empty() {
            continue;
        }
        let key = collapse_spaces(text);
        if out.iter().any(|seen| collapse_spaces(&seen.text) == key) {
            continue;
        }
        out.push(ReviewSeen {
            text: text.to_string(),
            source: r.source.provider.clone(),
            at: review.at,
            provenance: r.source.clone(),
        });
    }
    out.sort_by(|a, b| {
        (a.at.is_none(), a.at, &a.source, &a.text).cmp(&(b.at.is_none(), b.at, &b.source, &b.text))
    });
    out
}

/// Status evidence: (status, when, from which record).
fn status_evidence<'a, 'r>(
    all: &[&'a SourcedRecord<'r>],
) -> Vec<(ReadingStatus, Option<DateTime<Utc>>, &'a SourcedRecord<'r>)> {
    let mut ev = Vec::new();
    for r in all {
        let rec = &r.record;
        if let Some(s) = rec.status {
            ev.push((s, rec.status_at.or(rec.added_at), *r));
        }
        for read in &rec.reads {
            if let Some(f) = read.finished {
                ev.push((ReadingStatus::Read, date_start(f), *r));
            } else if let Some(s) = read.started {
                ev.push((ReadingStatus::Reading, date_start(s), *r));
            }
        }
        if let Some(p) = &rec.progress
            && p.fraction > 0.0
        {
            let s = if p.fraction >= 0.999 {
                ReadingStatus::Read
            } else {
                ReadingStatus::Reading
            };
            ev.push((s, p.at, *r));
        }
    }
    ev
}

/// How far along a status is, for breaking ties between equally dated evidence.
fn advance(s: ReadingStatus) -> u8 {
    match s {
        ReadingStatus::ToRead => 0,
        ReadingStatus::Paused => 1,
        ReadingStatus::Reading => 2,
        ReadingStatus::DidNotFinish => 3,
        ReadingStatus::Read => 4,
    }
}

fn resolve_status(
    all: &[&SourcedRecord],
    edits: &ManualEdits,
) -> Option<(ReadingStatus, Provenance<ReadingStatus>)> {
    let mut ev = status_evidence(all);
    // Best first: dated before undated, most recent, furthest along; the canonical
    // record order settles the rest.
    ev.sort_by_key(|e| Reverse((e.1.is_some(), e.1, advance(e.0))));
    let mut alternatives: Vec<Alternative<ReadingStatus>> = Vec::new();
    let (value, source, at, rest) = if let Some(e) = &edits.status {
        (e.value, Origin::Manual, Some(e.at), &ev[..])
    } else {
        let (first, rest) = ev.split_first()?;
        (first.0, origin(first.2), first.1, rest)
    };
    for (s, when, r) in rest {
        if *s != value && !alternatives.iter().any(|a| a.value == *s) {
            alternatives.push(Alternative {
                value: *s,
                source: origin(r),
                at: *when,
            });
        }
    }
    Some((
        value,
        Provenance {
            source,
            at,
            alternatives,
        },
    ))
}

fn resolve_progress(
    all: &[&SourcedRecord],
    edits: &ManualEdits,
) -> Option<(Option<Progress>, Provenance<Option<f64>>)> {
    let mut seen: Vec<(&Progress, &SourcedRecord)> = all
        .iter()
        .filter_map(|r| r.record.progress.as_ref().map(|p| (p, *r)))
        .collect();
    seen.sort_by(|a, b| {
        (b.0.at.is_some(), b.0.at, b.1.source.seen_at)
            .cmp(&(a.0.at.is_some(), a.0.at, a.1.source.seen_at))
            .then(b.0.fraction.total_cmp(&a.0.fraction))
    });
    let (value, source, at, rest): (Option<Progress>, Origin, Option<DateTime<Utc>>, &[_]) =
        if let Some(e) = &edits.progress {
            (e.value.clone(), Origin::Manual, Some(e.at), &seen[..])
        } else {
            let (first, rest) = seen.split_first()?;
            (
                Some(first.0.clone()),
                origin(first.1),
                first.0.at.or(Some(first.1.source.seen_at)),
                rest,
            )
        };
    let alternatives = rest
        .iter()
        .map(|(p, r)| Alternative {
            value: Some(p.fraction),
            source: origin(r),
            at: p.at,
        })
        .collect();
    Some((
        value,
        Provenance {
            source,
            at,
            alternatives,
        },
    ))
}

/// A rating's date: its review's date, else the record's latest finish date.
fn rating_date(record: &SourceRecord) -> Option<DateTime<Utc>> {
    record.review.as_ref().and_then(|r| r.at).or_else(|| {
        record
            .reads
            .iter()
            .filter_map(|r| r.finished)
            .max()
            .and_then(date_start)
    })
}

type ShownRating = Option<(Option<Rating>, Provenance<Option<f64>>)>;

fn resolve_rating(
    all: &[&SourcedRecord],
    edits: &ManualEdits,
    rules: &ResolveRules,
) -> (Vec<RatingSeen>, ShownRating) {
    let mut rated: Vec<(Rating, Option<DateTime<Utc>>, &SourcedRecord)> = all
        .iter()
        .filter_map(|r| r.record.rating.map(|v| (v, rating_date(&r.record), *r)))
        .collect();
    rated.sort_by(|a, b| {
        match (a.1, b.1) {
            (Some(x), Some(y)) => y.cmp(&x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then_with(|| {
            rank(&a.2.source.provider, &rules.rating_priority)
                .cmp(&rank(&b.2.source.provider, &rules.rating_priority))
        })
        .then(b.2.source.seen_at.cmp(&a.2.source.seen_at))
    });
    let mut list: Vec<RatingSeen> = Vec::new();
    for (v, at, r) in &rated {
        // One export imported twice is one rating, not two.
        if list
            .iter()
            .any(|s| s.source == r.source.provider && (s.stars - v.stars()).abs() < f64::EPSILON)
        {
            continue;
        }
        list.push(RatingSeen {
            stars: v.stars(),
            source: r.source.provider.clone(),
            at: *at,
            provenance: r.source.clone(),
        });
    }
    let (value, source, at, rest) = if let Some(e) = &edits.rating {
        (e.value, Origin::Manual, Some(e.at), &rated[..])
    } else {
        let Some((first, rest)) = rated.split_first() else {
            return (list, None);
        };
        (Some(first.0), origin(first.2), first.1, rest)
    };
    let mut alternatives: Vec<Alternative<Option<f64>>> = Vec::new();
    for (v, when, r) in rest {
        if Some(*v) != value
            && !alternatives
                .iter()
                .any(|a| a.value == Some(v.stars()) && a.source == origin(r))
        {
            alternatives.push(Alternative {
                value: Some(v.stars()),
                source: origin(r),
                at: *when,
            });
        }
    }
    (
        list,
        Some((
            value,
            Provenance {
                source,
                at,
                alternatives,
            },
        )),
    )
}

fn resolve_shelves(
    meta: &[&SourcedRecord],
    edits: &ManualEdits,
) -> (Vec<String>, Option<Provenance<Vec<String>>>) {
    let union = |names: &mut dyn Iterator<Item = &String>| -> Vec<String> {
        let mut by_key: BTreeMap<String, String> = BTreeMap::new();
        for name in names {
            let shown = collapse_spaces(name);
            if shown.is_empty() {
                continue;
            }
            by_key.entry(shown.to_lowercase()).or_insert(shown);
        }
        by_key.into_values().collect()
    };
    let from_sources = union(&mut meta.iter().flat_map(|r| r.record.shelves.iter()));
    match &edits.shelves {
        Some(e) => {
            let mine = union(&mut e.value.iter());
            let alternatives = if from_sources == mine || from_sources.is_empty() {
                Vec::new()
            } else {
                vec![Alternative {
                    value: from_sources,
                    // Several sources contribute to the union; the first names them all
                    // poorly, so the list stands as the sources' combined answer.
                    source: meta.first().map_or(Origin::Manual, |r| origin(r)),
                    at: None,
                }]
            };
            (
                mine,
                Some(Provenance {
                    source: Origin::Manual,
                    at: Some(e.at),
                    alternatives,
                }),
            )
        }
        None => (from_sources, None),
    }
}

fn resolve_covers(
    all: &[&SourcedRecord],
    edits: &ManualEdits,
    rules: &ResolveRules,
) -> (Vec<CoverSeen>, Option<Provenance<String>>) {
    let mut found: Vec<(&Cover, &SourcedRecord)> = all
        .iter()
        .flat_map(|r| r.record.covers.iter().map(move |c| (c, *r)))
        .collect();
    found.sort_by(|a, b| {
        let area = |c: &Cover| {
            c.width
                .zip(c.height)
                .map(|(w, h)| u64::from(w) * u64::from(h))
        };
        rank(&a.1.source.provider, &rules.cover_priority)
            .cmp(&rank(&b.1.source.provider, &rules.cover_priority))
            .then_with(|| match (area(a.0), area(b.0)) {
                (Some(x), Some(y)) => y.cmp(&x),
                (Some(_), None) => Ordering::Less,
                (None, Some(_)) => Ordering::Greater,
                (None, None) => Ordering::Equal,
            })
            .then_with(|| a.0.url.cmp(&b.0.url))
    });
    let mut covers: Vec<CoverSeen> = Vec::new();
    let mut origins: Vec<(Origin, Option<DateTime<Utc>>)> = Vec::new();
    if let Some(e) = &edits.cover {
        covers.push(CoverSeen {
            url: e.value.url.clone(),
            width: e.value.width,
            height: e.value.height,
            source: "manual".into(),
        });
        origins.push((Origin::Manual, Some(e.at)));
    }
    for (c, r) in found {
        if c.url.trim().is_empty() || covers.iter().any(|s| s.url == c.url) {
            continue;
        }
        covers.push(CoverSeen {
            url: c.url.clone(),
            width: c.width,
            height: c.height,
            source: r.source.provider.clone(),
        });
        origins.push((origin(r), Some(r.source.seen_at)));
    }
    let prov = covers
        .first()
        .zip(origins.first())
        .map(|(_, (src, at))| Provenance {
            source: src.clone(),
            at: *at,
            alternatives: covers
                .iter()
                .zip(origins.iter())
                .skip(1)
                .map(|(c, (src, at))| Alternative {
                    value: c.url.clone(),
                    source: src.clone(),
                    at: *at,
                })
                .collect(),
        });
    (covers, prov)
}

fn highlights(meta: &[&SourcedRecord]) -> Vec<HighlightSeen> {
    let mut out: Vec<HighlightSeen> = Vec::new();
    let key = |text: &str, location: Option<&str>| {
        (
            collapse_spaces(text),
            location.map(|l| collapse_spaces(l).to_lowercase()),
        )
    };
    for r in meta {
        for h in &r.record.highlights {
            let k = key(&h.text, h.location.as_deref());
            if let Some(existing) = out
                .iter_mut()
                .find(|s| key(&s.text, s.location.as_deref()) == k)
            {
                if existing.note.is_none() {
                    existing.note.clone_from(&h.note);
                }
                continue;
            }
            out.push(HighlightSeen {
                text: h.text.clone(),
                note: h.note.clone(),
                location: h.location.clone(),
                location_start: h.location_start,
                kind: h.kind,
                at: h.at,
                source: r.source.provider.clone(),
            });
        }
    }
    out.sort_by(|a, b| {
        (
            a.location_start.is_none(),
            a.location_start,
            &a.text,
            &a.location,
        )
            .cmp(&(
                b.location_start.is_none(),
                b.location_start,
                &b.text,
                &b.location,
            ))
    });
    out
}

/// Two dates that could be one day written at different precisions.
fn dates_agree(a: Option<PartialDate>, b: Option<PartialDate>) -> bool {
    match (a, b) {
        (Some(x), Some(y)) => {
            x.year == y.year
                && x.month.zip(y.month).is_none_or(|(m, n)| m == n)
                && x.day.zip(y.day).is_none_or(|(m, n)| m == n)
        }
        _ => true,
    }
}

fn finer(a: Option<PartialDate>, b: Option<PartialDate>) -> Option<PartialDate> {
    let precision = |d: &PartialDate| u8::from(d.month.is_some()) + u8::from(d.day.is_some());
    match (a, b) {
        (Some(x), Some(y)) => Some(if precision(&y) > precision(&x) { y } else { x }),
        (x, y) => x.or(y),
    }
}

fn same_read(a: &ReadThrough, b: &ReadThrough) -> bool {
    let anchored = (a.started.is_some() && b.started.is_some())
        || (a.finished.is_some() && b.finished.is_some());
    anchored && dates_agree(a.started, b.started) && dates_agree(a.finished, b.finished)
}

fn read_precision(r: &ReadThrough) -> u8 {
    [r.started, r.finished]
        .iter()
        .flatten()
        .map(|d| 1 + u8::from(d.month.is_some()) + u8::from(d.day.is_some()))
        .sum()
}

fn merge_reads(all: &[&SourcedRecord]) -> Vec<ReadSeen> {
    let mut dated: Vec<(ReadThrough, &str)> = Vec::new();
    let mut needed = 0usize;
    let mut undated_from: BTreeSet<String> = BTreeSet::new();
    for r in all {
        let mut own: BTreeSet<(Option<PartialDate>, Option<PartialDate>)> = BTreeSet::new();
        let mut undated = 0usize;
        for read in &r.record.reads {
            if read.started.is_none() && read.finished.is_none() {
                undated += 1;
            } else {
                own.insert((read.started, read.finished));
            }
        }
        if undated > 0 {
            undated_from.insert(r.source.provider.clone());
        }
        needed = needed.max(own.len() + undated);
        dated.extend(own.into_iter().map(|(started, finished)| {
            (
                ReadThrough { started, finished },
                r.source.provider.as_str(),
            )
        }));
    }
    // Most precise first, so coarser spellings fold into them whatever the input order.
    dated.sort_by(|a, b| {
        read_precision(&b.0)
            .cmp(&read_precision(&a.0))
            .then_with(|| (a.0.started, a.0.finished).cmp(&(b.0.started, b.0.finished)))
            .then_with(|| a.1.cmp(b.1))
    });
    let mut merged: Vec<(ReadThrough, BTreeSet<String>)> = Vec::new();
    for (read, provider) in dated {
        if let Some((m, providers)) = merged.iter_mut().find(|(m, _)| same_read(m, &read)) {
            m.started = finer(m.started, read.started);
            m.finished = finer(m.finished, read.finished);
            providers.insert(provider.to_string());
        } else {
            merged.push((read, BTreeSet::from([provider.to_string()])));
        }
    }
    merged.sort_by(|a, b| {
        (a.0.finished.or(a.0.started), a.0.started)
            .cmp(&(b.0.finished.or(b.0.started), b.0.started))
    });
    let extra = needed.saturating_sub(merged.len());
    let mut out: Vec<ReadSeen> = merged
        .into_iter()
        .map(|(r, providers)| ReadSeen {
            started: r.started,
            finished: r.finished,
            sources: providers.into_iter().collect(),
        })
        .collect();
    out.extend((0..extra).map(|_| ReadSeen {
        started: None,
        finished: None,
        sources: undated_from.iter().cloned().collect(),
    }));
    out
}
