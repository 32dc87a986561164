//! Deciding whether an incoming record is a work the library already holds.
//!
//! The store fetches a handful of candidates (by source key, by identifier, by
//! [`blocking_key`]) and this module decides, without I/O. The order is: the record's own
//! source key, then a shared strong identifier, then normalised title and authors. A wrong
//! merge is worse than a missed one, so title matching only says `Same` when the full
//! titles are equal and at least one author matches; everything short of that is at most a
//! `Possible` for the user to confirm or dismiss.

use super::identifiers::{IdScheme, Identifier, isbn_identifiers};
use super::normalize::{
    AuthorKey, TitleKey, normalize_author, normalize_title, split_role, strip_leading_article,
};
use super::record::SourceRecord;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::BTreeSet;

pub use super::normalize::blocking_key;

/// A provider's own id for a record: where re-imports find the item the user put it in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SourceKey {
    pub provider: String,
    pub external_id: String,
}

impl SourceKey {
    pub fn new(provider: impl Into<String>, external_id: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            external_id: external_id.into(),
        }
    }

    /// The key of a record from `provider`, when the format has ids at all.
    pub fn of(record: &SourceRecord, provider: &str) -> Option<Self> {
        let id = record.external_id.as_deref()?.trim();
        (!id.is_empty()).then(|| Self::new(provider, id))
    }
}

/// What the store can say cheaply about an existing item.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchCandidate {
    pub item: i64,
    pub identifiers: BTreeSet<Identifier>,
    /// One key per distinct title its sources gave.
    pub titles: Vec<TitleKey>,
    /// Author keys from all its sources.
    pub authors: Vec<AuthorKey>,
    pub sources: BTreeSet<SourceKey>,
    /// Items the user split from this one: never the same work.
    pub never_merge_with: BTreeSet<i64>,
}

impl MatchCandidate {
    /// The keys of an item built from the given records (mostly for tests and rebuilds; the
    /// store will usually keep these columns itself).
    pub fn from_records<'a>(
        item: i64,
        records: impl IntoIterator<Item = (&'a str, &'a SourceRecord)>,
    ) -> Self {
        let mut c = MatchCandidate {
            item,
            ..MatchCandidate::default()
        };
        for (provider, record) in records {
            c.add_record(provider, record, &candidate_keys(record));
        }
        c
    }

    /// Takes in the keys of one more record of the item, `keys` being its
    /// [`candidate_keys`] (worked out once by a caller that has them already).
    pub fn add_record(&mut self, provider: &str, record: &SourceRecord, keys: &CandidateKeys) {
        let (ids, title, authors) = keys;
        self.identifiers.extend(ids.iter().cloned());
        if !self.titles.contains(title) {
            self.titles.push(title.clone());
        }
        for a in authors {
            if !self.authors.contains(a) {
                self.authors.push(a.clone());
            }
        }
        if let Some(key) = SourceKey::of(record, provider) {
            self.sources.insert(key);
        }
    }
}

/// [`MatchCandidate`] as the store keeps it (`library_items.match_keys`): tuples instead of
/// named fields, and without the item's id and never-merge pairs, which the store keeps in
/// their own columns and table. About 170 bytes where the candidate's own JSON took 390;
/// the column is most of an item's row, and every import writes it for every item it
/// touches and reads it for the whole library when it builds its match index.
#[derive(Serialize)]
struct StoredKeysOut<'a> {
    v: u8,
    i: Vec<(IdScheme, &'a str)>,
    /// `[main]`, or `[main, full]` for a title with a subtitle.
    t: Vec<Vec<&'a str>>,
    a: Vec<(&'a [String], &'a str)>,
    s: Vec<(&'a str, &'a str)>,
}

#[derive(Deserialize)]
struct StoredKeysIn {
    i: Vec<(IdScheme, String)>,
    t: Vec<Vec<String>>,
    a: Vec<(Vec<String>, String)>,
    s: Vec<(String, String)>,
}

/// How a [`StoredKeysOut`] begins; older rows hold the candidate's own JSON.
const STORED_KEYS_V2: &str = "{\"v\":2,";

impl MatchCandidate {
    /// What the store keeps of the candidate: tuples tagged `{"v":2,…}`, without the item's
    /// id and never-merge pairs, which the store keeps in their own column and table.
    pub fn to_stored(&self) -> Result<String, serde_json::Error> {
        let out = StoredKeysOut {
            v: 2,
            i: self
                .identifiers
                .iter()
                .map(|id| (id.scheme, id.value.as_str()))
                .collect(),
            t: self
                .titles
                .iter()
                .map(|t| {
                    if t.has_subtitle() {
                        vec![t.main.as_str(), t.full.as_str()]
                    } else {
                        vec![t.main.as_str()]
                    }
                })
                .collect(),
            a: self
                .authors
                .iter()
                .map(|a| (a.tokens.as_slice(), a.compact.as_str()))
                .collect(),
            s: self
                .sources
                .iter()
                .map(|k| (k.provider.as_str(), k.external_id.as_str()))
                .collect(),
        };
        serde_json::to_string(&out)
    }

    /// Reads what [`Self::to_stored`] wrote, or a candidate's own JSON (rows stored before
    /// it), as item `item` with no never-merge pairs.
    pub fn from_stored(item: i64, stored: &str) -> Result<Self, serde_json::Error> {
        if !stored.starts_with(STORED_KEYS_V2) {
            let mut c: Self = serde_json::from_str(stored)?;
            c.item = item;
            c.never_merge_with.clear();
            return Ok(c);
        }
        let k: StoredKeysIn = serde_json::from_str(stored)?;
        let titles =
            k.t.into_iter()
                .filter_map(|t| {
                    let mut parts = t.into_iter();
                    let main = parts.next()?;
                    let full = parts.next().unwrap_or_else(|| main.clone());
                    Some(TitleKey { main, full })
                })
                .collect();
        Ok(Self {
            item,
            identifiers: k
                .i
                .into_iter()
                .map(|(scheme, value)| Identifier { scheme, value })
                .collect(),
            titles,
            authors: k
                .a
                .into_iter()
                .map(|(tokens, compact)| AuthorKey { tokens, compact })
                .collect(),
            sources: k
                .s
                .into_iter()
                .map(|(provider, external_id)| SourceKey {
                    provider,
                    external_id,
                })
                .collect(),
            never_merge_with: BTreeSet::new(),
        })
    }
}

/// Why two things were judged the same (or possibly the same) work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MatchReason {
    /// The record's provider and external id already belong to this item.
    SourceKey,
    /// A strong identifier both carry.
    Identifier { identifier: Identifier },
    /// A shared identifier, but neither the title nor any author agrees: likely bad data.
    IdentifierConflict { identifier: Identifier },
    /// Several items share the identifier (the user split them); the title and authors
    /// picked this one.
    IdentifierAndTitle { identifier: Identifier },
    /// Equal full titles and at least one matching author.
    TitleAndAuthors,
    /// Equal full titles, but one side (or both) names no author.
    TitleWithoutAuthors,
    /// Same main title and authors; one side has a subtitle the other lacks.
    SubtitleDiffers,
    /// Same authors; titles differ only by a leading article.
    ArticleDiffers,
    /// Same authors; titles close but not equal.
    SimilarTitle { similarity: f64 },
    /// More than one item fits equally well.
    Ambiguous { items: Vec<i64> },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum MatchOutcome {
    /// Merge into `item`.
    Same { item: i64, reason: MatchReason },
    /// Create a new item and record a possible duplicate of `item` for the user.
    Possible {
        item: i64,
        score: f64,
        reason: MatchReason,
    },
    /// Create a new item.
    New,
}

/// Titles at least this close (Jaro-Winkler on folded keys) with a shared author are
/// possible duplicates. High on purpose: `dune` vs `dune messiah` scores 0.87.
pub const SIMILAR_TITLE_THRESHOLD: f64 = 0.92;

/// Strong identifiers of a record with every ISBN in both forms, so an ISBN-10 on one side
/// meets the ISBN-13 on the other even if an importer only filled one.
fn strong_identifiers(record: &SourceRecord) -> BTreeSet<Identifier> {
    let mut out = BTreeSet::new();
    for id in &record.identifiers {
        if !id.scheme.is_strong() {
            continue;
        }
        match id.scheme {
            IdScheme::Isbn10 | IdScheme::Isbn13 => {
                let forms = isbn_identifiers(&id.value);
                if forms.is_empty() {
                    // Not a valid ISBN: useless for matching, and dangerous.
                    continue;
                }
                out.extend(forms);
            }
            _ => {
                out.insert(id.clone());
            }
        }
    }
    out
}

/// What a record is matched and indexed by: its strong identifiers, title key and author
/// keys (see [`candidate_keys`]).
pub type CandidateKeys = (Vec<Identifier>, TitleKey, Vec<AuthorKey>);

/// The keys the store needs to fetch candidates for `record` and to index it once stored:
/// strong identifiers (ISBNs in both forms), the title key, and author keys (translators,
/// narrators and other roles left out).
pub fn candidate_keys(record: &SourceRecord) -> CandidateKeys {
    let ids = strong_identifiers(record).into_iter().collect();
    let title = normalize_title(&record.title, record.subtitle.as_deref());
    let mut authors: Vec<AuthorKey> = Vec::new();
    for name in &record.authors {
        let (bare, role) = split_role(name);
        if role.is_some_and(|r| !r.is_author()) {
            continue;
        }
        let key = normalize_author(bare);
        if !key.is_empty() && !authors.contains(&key) {
            authors.push(key);
        }
    }
    (ids, title, authors)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum AuthorFit {
    Disjoint,
    Missing,
    Shared,
}

fn author_fit(ours: &[AuthorKey], theirs: &[AuthorKey]) -> AuthorFit {
    if ours.is_empty() || theirs.is_empty() {
        return AuthorFit::Missing;
    }
    if ours.iter().any(|a| theirs.iter().any(|b| a.matches(b))) {
        AuthorFit::Shared
    } else {
        AuthorFit::Disjoint
    }
}

/// `longer` is `shorter` followed by more whole words: the shape of a sequel or a
/// different book (`Dune Messiah`, `It Ends with Us`, `The Martian Chronicles`).
fn extends_by_words(shorter: &str, longer: &str) -> bool {
    longer.len() > shorter.len()
        && longer.starts_with(shorter)
        && longer.as_bytes().get(shorter.len()) == Some(&b' ')
}

/// How one of our titles relates to one of theirs, best first.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
enum TitleFit {
    Unrelated,
    Similar(f64),
    ArticleDiffers,
    SubtitleDiffers,
    Equal,
}

impl TitleFit {
    fn rank(self) -> (u8, f64) {
        match self {
            TitleFit::Unrelated => (0, 0.0),
            TitleFit::Similar(s) => (1, s),
            TitleFit::ArticleDiffers => (2, 0.0),
            TitleFit::SubtitleDiffers => (3, 0.0),
            TitleFit::Equal => (4, 0.0),
        }
    }
}

fn title_fit(a: &TitleKey, b: &TitleKey) -> TitleFit {
    if a.is_empty() || b.is_empty() {
        return TitleFit::Unrelated;
    }
    if a.full == b.full {
        return TitleFit::Equal;
    }
    // One side knows a subtitle the other leaves out: `Mistborn` vs
    // `Mistborn: The Well of Ascension` is exactly this shape, so never more than possible.
    if a.main == b.main && (!a.has_subtitle() || !b.has_subtitle()) {
        return TitleFit::SubtitleDiffers;
    }
    if strip_leading_article(&a.full) == strip_leading_article(&b.full) {
        return TitleFit::ArticleDiffers;
    }
    if extends_by_words(&a.full, &b.full) || extends_by_words(&b.full, &a.full) {
        return TitleFit::Unrelated;
    }
    let similarity = strsim::jaro_winkler(&a.full, &b.full);
    if similarity >= SIMILAR_TITLE_THRESHOLD {
        TitleFit::Similar(similarity)
    } else {
        TitleFit::Unrelated
    }
}

fn best_title_fit(ours: &TitleKey, theirs: &[TitleKey]) -> TitleFit {
    theirs
        .iter()
        .map(|t| title_fit(ours, t))
        .max_by(|x, y| {
            x.rank()
                .partial_cmp(&y.rank())
                .unwrap_or(std::cmp::Ordering::Equal)
        })
        .unwrap_or(TitleFit::Unrelated)
}

/// A title-and-author verdict for one candidate: `Some((same, score, reason))`.
fn judge_by_title(
    title: &TitleKey,
    authors: &[AuthorKey],
    candidate: &MatchCandidate,
) -> Option<(bool, f64, MatchReason)> {
    let tf = best_title_fit(title, &candidate.titles);
    let af = author_fit(authors, &candidate.authors);
    match (tf, af) {
        (TitleFit::Equal, AuthorFit::Shared) => Some((true, 1.0, MatchReason::TitleAndAuthors)),
        // A title alone never merges: `Beloved` with no author could be anyone's.
        (TitleFit::Equal, AuthorFit::Missing) => {
            Some((false, 0.7, MatchReason::TitleWithoutAuthors))
        }
        (TitleFit::SubtitleDiffers, AuthorFit::Shared) => {
            Some((false, 0.9, MatchReason::SubtitleDiffers))
        }
        (TitleFit::ArticleDiffers, AuthorFit::Shared) => {
            Some((false, 0.85, MatchReason::ArticleDiffers))
        }
        (TitleFit::Similar(s), AuthorFit::Shared) => {
            Some((false, s * 0.9, MatchReason::SimilarTitle { similarity: s }))
        }
        // Different authors, unrelated titles, or near titles with no authors to back
        // them: too weak to bother the user with.
        _ => None,
    }
}

/// Step 2 of [`match_record`]: `None` when no candidate shares a strong identifier.
fn match_by_identifier(
    ids: &[Identifier],
    title: &TitleKey,
    authors: &[AuthorKey],
    candidates: &[&MatchCandidate],
) -> Option<MatchOutcome> {
    let ids: BTreeSet<Identifier> = ids.iter().cloned().collect();
    let mut by_id: Vec<(&MatchCandidate, Identifier)> = candidates
        .iter()
        .filter_map(|c| {
            c.identifiers
                .intersection(&ids)
                .next()
                .map(|id| (*c, id.clone()))
        })
        .collect();
    by_id.sort_by_key(|(c, _)| c.item);
    by_id.dedup_by_key(|(c, _)| c.item);

    match by_id.as_slice() {
        [] => None,
        [(c, id)] => {
            let tf = best_title_fit(title, &c.titles);
            let af = author_fit(authors, &c.authors);
            let contradicted = tf == TitleFit::Unrelated && af == AuthorFit::Disjoint;
            Some(if contradicted {
                MatchOutcome::Possible {
                    item: c.item,
                    score: 0.6,
                    reason: MatchReason::IdentifierConflict {
                        identifier: id.clone(),
                    },
                }
            } else {
                MatchOutcome::Same {
                    item: c.item,
                    reason: MatchReason::Identifier {
                        identifier: id.clone(),
                    },
                }
            })
        }
        several => {
            let sure: Vec<&(&MatchCandidate, Identifier)> = several
                .iter()
                .filter(|(c, _)| judge_by_title(title, authors, c).is_some_and(|(same, _, _)| same))
                .collect();
            if let [(c, id)] = sure.as_slice() {
                return Some(MatchOutcome::Same {
                    item: c.item,
                    reason: MatchReason::IdentifierAndTitle {
                        identifier: id.clone(),
                    },
                });
            }
            Some(MatchOutcome::Possible {
                item: several[0].0.item,
                score: 0.5,
                reason: MatchReason::Ambiguous {
                    items: several.iter().map(|(c, _)| c.item).collect(),
                },
            })
        }
    }
}

/// Matches `record` (from `provider`) against candidates the store fetched for it.
///
/// 1. Its source key (provider + external id) on a candidate: `Same`, whatever the data
///    says, because that key sits on the item the user last merged or split it into.
/// 2. A strong identifier shared with exactly one candidate: `Same`, unless neither the
///    title nor any author agrees (then `Possible`, as the identifier is probably wrong).
///    When several candidates share one (items the user split, or legacy duplicates),
///    title and authors must pick exactly one, else `Possible`.
/// 3. Title and authors: `Same` only for equal full titles and a shared author, and only
///    when exactly one candidate fits that way. Near misses become `Possible`.
pub fn match_record<C: Borrow<MatchCandidate>>(
    record: &SourceRecord,
    provider: &str,
    candidates: &[C],
) -> MatchOutcome {
    match_record_keyed(record, provider, &candidate_keys(record), candidates)
}

/// [`match_record`] for a caller that has the record's [`candidate_keys`] already.
pub fn match_record_keyed<C: Borrow<MatchCandidate>>(
    record: &SourceRecord,
    provider: &str,
    keys: &CandidateKeys,
    candidates: &[C],
) -> MatchOutcome {
    let candidates: Vec<&MatchCandidate> = candidates.iter().map(Borrow::borrow).collect();
    if let Some(key) = SourceKey::of(record, provider) {
        // Lowest id wins should the store ever hand over two holders of one key.
        if let Some(c) = candidates
            .iter()
            .filter(|c| c.sources.contains(&key))
            .min_by_key(|c| c.item)
        {
            return MatchOutcome::Same {
                item: c.item,
                reason: MatchReason::SourceKey,
            };
        }
    }

    let (ids, title, authors) = keys;
    if let Some(outcome) = match_by_identifier(ids, title, authors, &candidates) {
        return outcome;
    }

    let mut verdicts: Vec<(i64, bool, f64, MatchReason)> = candidates
        .iter()
        .filter_map(|c| judge_by_title(title, authors, c).map(|(s, sc, r)| (c.item, s, sc, r)))
        .collect();
    verdicts.sort_by(|a, b| b.1.cmp(&a.1).then(b.2.total_cmp(&a.2)).then(a.0.cmp(&b.0)));
    let same: Vec<i64> = verdicts.iter().filter(|v| v.1).map(|v| v.0).collect();
    match same.as_slice() {
        [item] => MatchOutcome::Same {
            item: *item,
            reason: MatchReason::TitleAndAuthors,
        },
        [first, ..] => MatchOutcome::Possible {
            item: *first,
            score: 0.8,
            reason: MatchReason::Ambiguous { items: same },
        },
        [] => match verdicts.into_iter().next() {
            Some((item, _, score, reason)) => MatchOutcome::Possible {
                item,
                score,
                reason,
            },
            None => MatchOutcome::New,
        },
    }
}

/// Whether two existing items look like one work, for a duplicate sweep after imports.
/// Items the user split never match. Only identifiers and the `Same`-level title rule
/// count; the result is a suggestion, never an automatic merge.
pub fn items_look_same(a: &MatchCandidate, b: &MatchCandidate) -> Option<MatchReason> {
    if a.item == b.item
        || a.never_merge_with.contains(&b.item)
        || b.never_merge_with.contains(&a.item)
    {
        return None;
    }
    let strong = |c: &MatchCandidate| -> BTreeSet<Identifier> {
        c.identifiers
            .iter()
            .filter(|i| i.scheme.is_strong())
            .cloned()
            .collect()
    };
    if let Some(id) = strong(a).intersection(&strong(b)).next() {
        return Some(MatchReason::Identifier {
            identifier: id.clone(),
        });
    }
    let titles_equal = a
        .titles
        .iter()
        .any(|t| b.titles.iter().any(|u| title_fit(t, u) == TitleFit::Equal));
    (titles_equal && author_fit(&a.authors, &b.authors) == AuthorFit::Shared)
        .then_some(MatchReason::TitleAndAuthors)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(title: &str, authors: &[&str]) -> SourceRecord {
        SourceRecord {
            title: title.into(),
            authors: authors.iter().map(|a| (*a).to_string()).collect(),
            ..SourceRecord::default()
        }
    }

    fn item(id: i64, r: &SourceRecord) -> MatchCandidate {
        MatchCandidate::from_records(id, [("goodreads", r)])
    }

    fn same(outcome: &MatchOutcome) -> Option<i64> {
        match outcome {
            MatchOutcome::Same { item, .. } => Some(*item),
            _ => None,
        }
    }

    #[test]
    fn isbn10_meets_isbn13_of_the_same_edition() {
        let mut existing = rec("Some Title", &["A Writer"]);
        existing.identifiers = vec![Identifier::new(IdScheme::Isbn13, "9780062445315")];
        let mut incoming = rec("Completely Different Catalogue Title", &["A Writer"]);
        incoming.identifiers = vec![Identifier::new(IdScheme::Isbn10, "0062445316")];
        let out = match_record(&incoming, "storygraph", &[item(7, &existing)]);
        assert_eq!(same(&out), Some(7), "{out:?}");
        assert!(matches!(
            out,
            MatchOutcome::Same {
                reason: MatchReason::Identifier { .. },
                ..
            }
        ));
    }

    #[test]
    fn invalid_isbns_do_not_match() {
        let mut existing = rec("A", &["X"]);
        existing.identifiers = vec![Identifier::new(IdScheme::Isbn10, "0062445317")];
        let mut incoming = rec("B", &["Y"]);
        incoming.identifiers = vec![Identifier::new(IdScheme::Isbn10, "0062445317")];
        assert_eq!(
            match_record(&incoming, "x", &[item(1, &existing)]),
            MatchOutcome::New
        );
    }

    #[test]
    fn shared_identifier_with_nothing_else_in_common_is_only_possible() {
        let mut existing = rec("Dune", &["Frank Herbert"]);
        existing.identifiers = vec![Identifier::new(IdScheme::Asin, "B00B7NPRY8")];
        let mut incoming = rec("Cooking for Cats", &["Someone Else"]);
        incoming.identifiers = vec![Identifier::new(IdScheme::Asin, "B00B7NPRY8")];
        assert!(matches!(
            match_record(&incoming, "audible", &[item(1, &existing)]),
            MatchOutcome::Possible {
                reason: MatchReason::IdentifierConflict { .. },
                ..
            }
        ));
    }

    #[test]
    fn weak_identifiers_do_not_merge_across_sources() {
        let mut existing = rec("A", &["X"]);
        existing.identifiers = vec![Identifier::new(IdScheme::Calibre, "12")];
        let mut incoming = rec("B", &["Y"]);
        incoming.identifiers = vec![Identifier::new(IdScheme::Calibre, "12")];
        assert_eq!(
            match_record(&incoming, "calibre", &[item(1, &existing)]),
            MatchOutcome::New
        );
    }

    #[test]
    fn source_key_follows_the_users_choice_over_the_data() {
        let mut existing = rec("Totally Unrelated", &["Nobody"]);
        existing.external_id = Some("42".into());
        let candidates = [
            item(1, &rec("Dune", &["Frank Herbert"])),
            MatchCandidate::from_records(2, [("goodreads", &existing)]),
        ];
        let mut incoming = rec("Dune", &["Frank Herbert"]);
        incoming.external_id = Some("42".into());
        assert_eq!(
            same(&match_record(&incoming, "goodreads", &candidates)),
            Some(2)
        );
        // The same id from another provider is not the same key.
        assert_eq!(
            same(&match_record(&incoming, "storygraph", &candidates)),
            Some(1)
        );
    }

    #[test]
    fn expanse_series_suffix_and_name_order() {
        let existing = rec(
            "Leviathan Wakes (The Expanse Book 1)",
            &["Corey, James S. A."],
        );
        let incoming = rec("Leviathan Wakes", &["James S.A. Corey"]);
        assert_eq!(
            same(&match_record(&incoming, "x", &[item(3, &existing)])),
            Some(3)
        );
    }

    #[test]
    fn three_body_name_order_and_translator_suffix() {
        let existing = rec("The Three-Body Problem", &["Liu Cixin"]);
        let incoming = rec(
            "The Three-Body Problem",
            &["Cixin Liu", "Ken Liu - translator"],
        );
        assert_eq!(
            same(&match_record(&incoming, "x", &[item(3, &existing)])),
            Some(3)
        );
        let (_, _, authors) = candidate_keys(&incoming);
        assert_eq!(authors.len(), 1, "the translator is not an author key");
    }

    #[test]
    fn solaris_diacritics() {
        let existing = rec("Solaris", &["Stanisław Lem"]);
        let incoming = rec("Solaris", &["Stanislaw Lem"]);
        assert_eq!(
            same(&match_record(&incoming, "x", &[item(3, &existing)])),
            Some(3)
        );
    }

    #[test]
    fn subtitle_separate_vs_after_colon() {
        let mut existing = rec("Sapiens", &["Yuval Noah Harari"]);
        existing.subtitle = Some("A Brief History of Humankind".into());
        let incoming = rec(
            "Sapiens: A Brief History of Humankind",
            &["Yuval Noah Harari"],
        );
        assert_eq!(
            same(&match_record(&incoming, "x", &[item(3, &existing)])),
            Some(3)
        );
    }

    #[test]
    fn missing_subtitle_is_only_possible() {
        let existing = rec("Mistborn: The Well of Ascension", &["Brandon Sanderson"]);
        let incoming = rec("Mistborn", &["Brandon Sanderson"]);
        assert!(matches!(
            match_record(&incoming, "x", &[item(3, &existing)]),
            MatchOutcome::Possible {
                item: 3,
                reason: MatchReason::SubtitleDiffers,
                ..
            }
        ));
    }

    #[test]
    fn sequels_and_longer_titles_stay_apart() {
        let pairs = [
            (
                rec("Dune", &["Frank Herbert"]),
                rec("Dune Messiah", &["Frank Herbert"]),
            ),
            (
                rec("The Martian", &["Andy Weir"]),
                rec("The Martian Chronicles", &["Ray Bradbury"]),
            ),
            (
                rec("The Martian", &["Andy Weir"]),
                rec("The Martian Chronicles", &["Andy Weir"]),
            ),
            (
                rec("It", &["Stephen King"]),
                rec("It Ends with Us", &["Colleen Hoover"]),
            ),
            (
                rec("Beloved", &["Toni Morrison"]),
                rec("Beloved", &["Someone Else"]),
            ),
        ];
        for (a, b) in pairs {
            for (x, y) in [(&a, &b), (&b, &a)] {
                let out = match_record(x, "x", &[item(1, y)]);
                assert_eq!(out, MatchOutcome::New, "{} vs {}", x.title, y.title);
            }
        }
    }

    #[test]
    fn no_author_common_title_is_possible_not_same() {
        let existing = rec("Beloved", &["Toni Morrison"]);
        let incoming = rec("Beloved", &[]);
        assert!(matches!(
            match_record(&incoming, "kindle", &[item(1, &existing)]),
            MatchOutcome::Possible {
                item: 1,
                reason: MatchReason::TitleWithoutAuthors,
                ..
            }
        ));
        // And the other way round: an authorless item never absorbs a record.
        let out = match_record(&existing, "goodreads", &[item(1, &incoming)]);
        assert!(matches!(out, MatchOutcome::Possible { .. }), "{out:?}");
    }

    #[test]
    fn near_miss_titles_with_shared_author_are_possible() {
        let existing = rec("Leviathan Wakes", &["James S. A. Corey"]);
        let incoming = rec("Leviathon Wakes", &["James S. A. Corey"]);
        let out = match_record(&incoming, "x", &[item(1, &existing)]);
        assert!(
            matches!(
                out,
                MatchOutcome::Possible {
                    reason: MatchReason::SimilarTitle { .. },
                    ..
                }
            ),
            "{out:?}"
        );
        let article = rec("Martian", &["Andy Weir"]);
        let out = match_record(
            &article,
            "x",
            &[item(1, &rec("The Martian", &["Andy Weir"]))],
        );
        assert!(matches!(
            out,
            MatchOutcome::Possible {
                reason: MatchReason::ArticleDiffers,
                ..
            }
        ));
    }

    #[test]
    fn manual_split_pair_never_matches() {
        let mut a = rec("Dune", &["Frank Herbert"]);
        a.identifiers = vec![Identifier::new(IdScheme::Isbn13, "9780441172719")];
        let mut b = rec("Dune: Deluxe Edition Companion", &["Frank Herbert"]);
        b.identifiers = a.identifiers.clone();
        let mut ca = item(1, &a);
        let mut cb = item(2, &b);
        ca.never_merge_with.insert(2);
        cb.never_merge_with.insert(1);
        assert_eq!(items_look_same(&ca, &cb), None);
        assert_eq!(items_look_same(&cb, &ca), None);

        // Without the split, the shared ISBN would make them one work.
        let mut plain_b = cb.clone();
        plain_b.never_merge_with.clear();
        let mut plain_a = ca.clone();
        plain_a.never_merge_with.clear();
        assert!(items_look_same(&plain_a, &plain_b).is_some());

        // A record carrying the shared ISBN goes to the one its title names…
        let mut incoming = rec("Dune", &["Frank Herbert"]);
        incoming.identifiers = a.identifiers.clone();
        assert_eq!(
            same(&match_record(&incoming, "x", &[ca.clone(), cb.clone()])),
            Some(1)
        );
        // …and to neither when the title names neither.
        let mut vague = rec("Something", &[]);
        vague.identifiers = a.identifiers.clone();
        assert!(matches!(
            match_record(&vague, "x", &[ca, cb]),
            MatchOutcome::Possible {
                reason: MatchReason::Ambiguous { .. },
                ..
            }
        ));
    }

    #[test]
    fn two_equally_good_title_matches_are_ambiguous() {
        let r = rec("Dune", &["Frank Herbert"]);
        let out = match_record(&r, "x", &[item(5, &r), item(4, &r)]);
        assert_eq!(
            out,
            MatchOutcome::Possible {
                item: 4,
                score: 0.8,
                reason: MatchReason::Ambiguous { items: vec![4, 5] }
            }
        );
    }

    #[test]
    fn empty_titles_never_match_by_title() {
        let r = rec("", &["Frank Herbert"]);
        assert_eq!(match_record(&r, "x", &[item(1, &r)]), MatchOutcome::New);
    }

    /// An item with every kind of key: a subtitle, two authors, identifiers of several
    /// schemes, two sources (one id with a colon and a quote).
    fn full_candidate() -> MatchCandidate {
        let mut a = rec("Dune: Deluxe Edition", &["Frank Herbert", "Brian Herbert"]);
        a.identifiers = vec![
            Identifier::new(IdScheme::Isbn13, "9780441013593"),
            Identifier::new(IdScheme::Asin, "B00B7NPRY8"),
        ];
        a.external_id = Some("gr:\"1\"".into());
        let mut b = rec("Dune", &["Frank Herbert"]);
        b.external_id = Some("42".into());
        MatchCandidate::from_records(9, [("goodreads", &a), ("storygraph", &b)])
    }

    #[test]
    fn stored_keys_read_back_as_the_candidate() {
        let c = full_candidate();
        assert!(c.titles.iter().any(TitleKey::has_subtitle), "{c:?}");
        assert!(c.titles.len() > 1 && c.authors.len() > 1 && c.sources.len() > 1);
        let stored = c.to_stored().unwrap();
        assert_eq!(MatchCandidate::from_stored(9, &stored).unwrap(), c);
        // The store keeps the id in its own column: whatever it says wins.
        assert_eq!(MatchCandidate::from_stored(3, &stored).unwrap().item, 3);
        let old = serde_json::to_string(&c).unwrap();
        assert!(
            stored.len() * 10 < old.len() * 6,
            "{} bytes against {}: {stored}",
            stored.len(),
            old.len()
        );
    }

    #[test]
    fn keys_stored_as_the_candidates_own_json_still_read() {
        // A row written before the compact form, as the store held it.
        let old = r#"{"item":0,"identifiers":[{"scheme":"isbn13","value":"9780587303770"},{"scheme":"goodreads","value":"10000000"}],"titles":[{"main":"tarist of empire 0","full":"tarist of empire 0"}],"authors":[{"tokens":["jemisin","jorge"],"compact":"jorgejemisin"}],"sources":[{"provider":"goodreads","external_id":"10000000"}],"never_merge_with":[5]}"#;
        let c = MatchCandidate::from_stored(7, old).unwrap();
        assert_eq!(c.item, 7);
        assert!(c.never_merge_with.is_empty(), "the store's table has those");
        assert_eq!(c.titles[0].main, "tarist of empire 0");
        assert_eq!(c.authors[0].compact, "jorgejemisin");
        assert!(
            c.identifiers
                .contains(&Identifier::new(IdScheme::Isbn13, "9780587303770"))
        );
        // And it stores compactly now, reading back the same.
        let again = MatchCandidate::from_stored(7, &c.to_stored().unwrap()).unwrap();
        assert_eq!(again, c);
        assert!(MatchCandidate::from_stored(7, "{\"v\":2,\"i\":[[\"nope\",\"1\"]]}").is_err());
    }

    proptest::proptest! {
        #[test]
        fn any_records_keys_survive_the_store(
            titles in proptest::collection::vec("\\PC{0,30}", 1..4),
            authors in proptest::collection::vec("\\PC{0,20}", 0..4),
            ids in proptest::collection::vec("[0-9X:\\\\\"]{1,13}", 0..3),
        ) {
            let records: Vec<SourceRecord> = titles
                .iter()
                .enumerate()
                .map(|(n, t)| {
                    let mut r = rec(t, &authors.iter().map(String::as_str).collect::<Vec<_>>());
                    r.external_id = ids.get(n).cloned();
                    r.identifiers = ids
                        .iter()
                        .map(|v| Identifier::new(IdScheme::Goodreads, v.clone()))
                        .collect();
                    r
                })
                .collect();
            let c = MatchCandidate::from_records(1, records.iter().map(|r| ("goodreads", r)));
            let stored = c.to_stored().unwrap();
            proptest::prop_assert_eq!(MatchCandidate::from_stored(1, &stored).unwrap(), c);
        }
    }
}
