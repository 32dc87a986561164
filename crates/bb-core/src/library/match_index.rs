//! The match index of one import: which items could be the same work as an incoming record,
//! held in memory as hashed keys → item ids, so a candidate lookup costs a few hash probes
//! however large the library is.
//!
//! The keys are chosen so that every candidate [`match_record`] could say anything about is
//! found, and little else:
//! - a strong identifier, and the `(provider, external id)` source key;
//! - the main title and the full title, both without a leading article: equal titles,
//!   titles that differ only by a subtitle one side lacks, or only by an article;
//! - an author (by sorted name tokens and by compact letters, the two ways
//!   [`AuthorKey::matches`] can agree) together with the title's [`blocking_key`]: a
//!   similar title only counts with a shared author, so the author narrows the block.
//!
//! A block is still wide: an author with a thousand books has many titles opening with the
//! same four letters. What an item under a block key can be is only a similar title, so
//! each item also keeps the [`TitleShape`] of its titles, and a block hit whose titles
//! cannot reach [`SIMILAR_TITLE_THRESHOLD`] with the record's title is dropped before
//! anything is fetched. That keeps the candidates per row flat as the library grows.
//!
//! A hash collision only adds a candidate that matching then judges on its real keys.
//!
//! [`match_record`]: super::matching::match_record
//! [`AuthorKey::matches`]: super::normalize::AuthorKey::matches

use super::identifiers::Identifier;
use super::matching::{MatchCandidate, SIMILAR_TITLE_THRESHOLD};
use super::normalize::{AuthorKey, TitleKey, blocking_key, strip_leading_article};
use std::collections::hash_map::{DefaultHasher, Entry};
use std::collections::{BTreeSet, HashMap};
use std::hash::{Hash, Hasher};

/// Hashed match keys → items. Most keys name one item, so the first item of a key sits in
/// a flat map and only the rare others in a second one: about 20 bytes a key.
#[derive(Debug, Default)]
pub struct MatchIndex {
    first: HashMap<u64, i64>,
    more: HashMap<u64, Vec<i64>>,
    /// The shapes of each item's titles, for judging block hits.
    shapes: HashMap<i64, Vec<TitleShape>>,
}

/// The keys an incoming record is looked up by.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordKeys {
    /// Identifier, source-key and title keys: every item under one is a candidate.
    exact: Vec<u64>,
    /// Author + title-block keys: an item under one is a candidate only when one of its
    /// titles could be similar enough to `shape`.
    block: Vec<u64>,
    shape: Option<TitleShape>,
}

const BUCKETS: usize = 40;

/// What Jaro-Winkler could make of a title, kept without the title: its length in
/// characters and how often each character occurs (each letter and digit in a bucket of
/// its own, space in one, anything else spread over three).
///
/// Jaro-Winkler's matching characters are equal characters, so two titles have at most as
/// many as their counts share; with that many, and no transpositions, their Jaro score is
/// at most `(m/|a| + m/|b| + 1) / 3`, and Winkler's bonus for a common prefix of at most 4
/// adds at most `0.4 × (1 − jaro)`. Sharing a bucket only raises the bound, so the bound
/// never says "too far apart" of two titles that are not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TitleShape {
    len: u32,
    counts: [u8; BUCKETS],
}

fn bucket(c: char) -> usize {
    match c {
        'a'..='z' => c as usize - 'a' as usize,
        '0'..='9' => 26 + (c as usize - '0' as usize),
        ' ' => 36,
        _ => 37 + (c as usize) % 3,
    }
}

impl TitleShape {
    /// The shape of a folded title (as [`TitleKey::full`] holds it).
    pub fn of(folded: &str) -> Self {
        let mut counts = [0u8; BUCKETS];
        let mut len = 0u32;
        for c in folded.chars() {
            len = len.saturating_add(1);
            let n = &mut counts[bucket(c)];
            *n = n.saturating_add(1);
        }
        Self { len, counts }
    }

    /// An upper bound on `strsim::jaro_winkler` of the two titles this describes.
    pub fn similarity_bound(&self, other: &Self) -> f64 {
        if self.len == 0 || other.len == 0 {
            // Empty titles are never judged similar; claim nothing about them.
            return 1.0;
        }
        let shortest = self.len.min(other.len);
        let shared: u32 = self
            .counts
            .iter()
            .zip(&other.counts)
            .map(|(&a, &b)| match (a, b) {
                // Both counts overflowed: only the lengths bound them.
                (u8::MAX, u8::MAX) => shortest,
                // One overflowed: it is at least the other, which is exact.
                (u8::MAX, n) | (n, u8::MAX) => u32::from(n),
                (a, b) => u32::from(a.min(b)),
            })
            .sum();
        let m = f64::from(shared.min(shortest));
        let jaro = (m / f64::from(self.len) + m / f64::from(other.len) + 1.0) / 3.0;
        jaro + 0.4 * (1.0 - jaro)
    }

    /// Whether the two titles could be judged similar at all.
    fn may_be_similar(&self, other: &Self) -> bool {
        // A hair of slack for rounding: the bound must never undercut the real score.
        self.similarity_bound(other) + 1e-9 >= SIMILAR_TITLE_THRESHOLD
    }
}

fn hash_of(parts: &[&str]) -> u64 {
    // `DefaultHasher::new()` has fixed keys: the same key hashes alike in every process.
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Keys of one title–author combination, into `exact` and `block`.
fn title_author_keys(
    title: &TitleKey,
    authors: &[AuthorKey],
    exact: &mut Vec<u64>,
    block: &mut Vec<u64>,
) {
    if title.is_empty() {
        return;
    }
    let main = strip_leading_article(&title.main);
    if !main.is_empty() {
        exact.push(hash_of(&["t", main]));
    }
    let full = strip_leading_article(&title.full);
    if full != main {
        exact.push(hash_of(&["t", full]));
    }
    let opening = blocking_key(title);
    if opening.is_empty() {
        return;
    }
    for a in authors.iter().filter(|a| !a.is_empty()) {
        block.push(hash_of(&["a", &a.compact, &opening]));
        block.push(hash_of(&["n", &a.tokens.join(" "), &opening]));
    }
}

fn identifier_key(id: &Identifier) -> u64 {
    hash_of(&["id", id.scheme.as_str(), &id.value])
}

fn source_key_hash(provider: &str, key: &str) -> u64 {
    hash_of(&["src", provider, key])
}

/// The keys an incoming record is looked up by.
pub fn record_keys(
    ids: &[Identifier],
    title: &TitleKey,
    authors: &[AuthorKey],
    provider: &str,
    source_key: &str,
) -> RecordKeys {
    let mut exact: Vec<u64> = ids.iter().map(identifier_key).collect();
    exact.push(source_key_hash(provider, source_key));
    let mut block = Vec::new();
    title_author_keys(title, authors, &mut exact, &mut block);
    let shape = (!block.is_empty()).then(|| TitleShape::of(&title.full));
    RecordKeys {
        exact,
        block,
        shape,
    }
}

/// The keys an item is indexed under.
pub fn candidate_keys_of(c: &MatchCandidate) -> Vec<u64> {
    let mut out: Vec<u64> = c.identifiers.iter().map(identifier_key).collect();
    for s in &c.sources {
        out.push(source_key_hash(&s.provider, &s.external_id));
    }
    let mut block = Vec::new();
    for t in &c.titles {
        title_author_keys(t, &c.authors, &mut out, &mut block);
    }
    out.append(&mut block);
    out
}

impl MatchIndex {
    pub fn insert(&mut self, key: u64, item: i64) {
        match self.first.entry(key) {
            Entry::Vacant(v) => {
                v.insert(item);
            }
            Entry::Occupied(o) => {
                if *o.get() != item {
                    let others = self.more.entry(key).or_default();
                    if !others.contains(&item) {
                        others.push(item);
                    }
                }
            }
        }
    }

    /// Indexes `c` under `item` (which may differ from `c.item`, e.g. once a new item has
    /// its real id). Titles add up: `c` may know only some of the item's titles.
    pub fn add(&mut self, item: i64, c: &MatchCandidate) {
        for k in candidate_keys_of(c) {
            self.insert(k, item);
        }
        let shapes = c.titles.iter().filter(|t| !t.is_empty());
        self.add_shapes(item, shapes.map(|t| TitleShape::of(&t.full)));
    }

    /// Adds title shapes to `item`'s, each once.
    fn add_shapes(&mut self, item: i64, shapes: impl IntoIterator<Item = TitleShape>) {
        let mine = self.shapes.entry(item).or_default();
        for shape in shapes {
            if !mine.contains(&shape) {
                mine.push(shape);
            }
        }
    }

    /// Takes in `other`'s keys and title shapes, its items renamed by `id` (items it has no
    /// id for are left out): how a chunk's own index joins the import's once the chunk's
    /// new items have their real ids, without working their keys out again.
    pub fn absorb(&mut self, other: MatchIndex, id: impl Fn(i64) -> Option<i64>) {
        for (key, item) in other.first {
            if let Some(item) = id(item) {
                self.insert(key, item);
            }
        }
        for (key, items) in other.more {
            for item in items.into_iter().filter_map(&id) {
                self.insert(key, item);
            }
        }
        for (item, shapes) in other.shapes {
            if let Some(item) = id(item) {
                self.add_shapes(item, shapes);
            }
        }
    }

    fn items_under(&self, key: u64) -> impl Iterator<Item = i64> + '_ {
        let first = self.first.get(&key).copied();
        let more = first
            .and_then(|_| self.more.get(&key))
            .into_iter()
            .flatten()
            .copied();
        first.into_iter().chain(more)
    }

    /// Whether one of `item`'s titles could be similar enough to a title of `shape`.
    fn may_be_similar(&self, item: i64, shape: Option<&TitleShape>) -> bool {
        match (shape, self.shapes.get(&item)) {
            (Some(shape), Some(titles)) => titles.iter().any(|t| t.may_be_similar(shape)),
            // Nothing to judge by: keep it, matching will.
            _ => true,
        }
    }

    /// Adds the items `keys` find to `out`.
    pub fn lookup(&self, keys: &RecordKeys, out: &mut BTreeSet<i64>) {
        for k in &keys.exact {
            out.extend(self.items_under(*k));
        }
        for k in &keys.block {
            for item in self.items_under(*k) {
                if !out.contains(&item) && self.may_be_similar(item, keys.shape.as_ref()) {
                    out.insert(item);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.first.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::matching::candidate_keys;
    use crate::library::record::SourceRecord;

    fn rec(title: &str, authors: &[&str]) -> SourceRecord {
        SourceRecord {
            title: title.into(),
            authors: authors.iter().map(|a| (*a).to_string()).collect(),
            ..SourceRecord::default()
        }
    }

    fn finds(existing: &SourceRecord, incoming: &SourceRecord) -> bool {
        let mut index = MatchIndex::default();
        index.add(
            1,
            &MatchCandidate::from_records(1, [("goodreads", existing)]),
        );
        let (ids, title, authors) = candidate_keys(incoming);
        let mut hits = BTreeSet::new();
        index.lookup(
            &record_keys(&ids, &title, &authors, "storygraph", "x"),
            &mut hits,
        );
        hits.contains(&1)
    }

    #[test]
    fn every_shape_matching_can_judge_is_found() {
        let corey = ["James S.A. Corey"];
        // Equal titles, without authors on one side.
        assert!(finds(
            &rec("Beloved", &["Toni Morrison"]),
            &rec("Beloved", &[])
        ));
        // A subtitle one side lacks.
        assert!(finds(
            &rec("Mistborn", &["Brandon Sanderson"]),
            &rec("Mistborn: The Final Empire", &["Brandon Sanderson"])
        ));
        // Only an article differs.
        assert!(finds(
            &rec("The Left Hand of Darkness", &["Ursula K. Le Guin"]),
            &rec("Left Hand of Darkness", &["Ursula K. Le Guin"])
        ));
        // Similar titles with the author written two ways.
        assert!(finds(
            &rec("Leviathan Wakes", &corey),
            &rec("Leviathan Wake", &["Corey, James S. A."])
        ));
        assert!(finds(
            &rec("The Three-Body Problem", &["Liu Cixin"]),
            &rec("The Three Body Problems", &["Cixin Liu"])
        ));
    }

    #[test]
    fn unrelated_titles_and_other_authors_stay_out() {
        assert!(!finds(
            &rec("Leviathan Wakes", &["James S.A. Corey"]),
            &rec("Leviathan Wakes Again", &["Someone Else"])
        ));
        assert!(!finds(
            &rec("Solaris", &["Stanisław Lem"]),
            &rec("Dune", &["Stanisław Lem"])
        ));
    }

    #[test]
    fn identifiers_and_source_keys_are_found() {
        let mut existing = rec("Some Title", &[]);
        existing.identifiers = vec![Identifier::new(
            crate::library::IdScheme::Isbn13,
            "9780062445315",
        )];
        let mut incoming = rec("Other", &[]);
        incoming.identifiers = vec![Identifier::new(
            crate::library::IdScheme::Isbn10,
            "0062445316",
        )];
        assert!(finds(&existing, &incoming));

        let mut index = MatchIndex::default();
        let mut c = MatchCandidate::from_records(3, [("goodreads", &rec("A", &[]))]);
        c.sources
            .insert(crate::library::matching::SourceKey::new("storygraph", "x"));
        index.add(3, &c);
        let mut hits = BTreeSet::new();
        let (ids, title, authors) = candidate_keys(&rec("Z", &[]));
        index.lookup(
            &record_keys(&ids, &title, &authors, "storygraph", "x"),
            &mut hits,
        );
        assert_eq!(hits.into_iter().collect::<Vec<_>>(), vec![3]);
    }

    #[test]
    fn a_block_hit_is_kept_only_when_its_title_could_be_similar() {
        // One author, one title opening: the block is shared, the titles are not alike.
        assert!(!finds(
            &rec("Kalomir of River 123", &["Ted Chiang"]),
            &rec("Kalosen of Glass 45678", &["Ted Chiang"])
        ));
        // A near title in the same block is still found.
        assert!(finds(
            &rec("Kalomir of River 123", &["Ted Chiang"]),
            &rec("Kalomir of Rivers 123", &["Ted Chiang"])
        ));
        // An item is judged on every title it has: the second one is the near one.
        let mut index = MatchIndex::default();
        index.add(
            7,
            &MatchCandidate::from_records(
                7,
                [
                    ("goodreads", &rec("Kalosen of Glass 45678", &["Ted Chiang"])),
                    ("storygraph", &rec("Kalomir of River 123", &["Ted Chiang"])),
                ],
            ),
        );
        let (ids, title, authors) = candidate_keys(&rec("Kalomir of Rivers 123", &["Ted Chiang"]));
        let mut hits = BTreeSet::new();
        index.lookup(&record_keys(&ids, &title, &authors, "kobo", "k"), &mut hits);
        assert!(hits.contains(&7));
    }

    #[test]
    fn absorbing_a_chunk_index_renames_its_items_and_keeps_their_shapes() {
        let near = rec("Kalomir of Rivers 123", &["Ted Chiang"]);
        let far = rec("Kalosen of Glass 45678", &["Ted Chiang"]);
        let mut chunk = MatchIndex::default();
        chunk.add(
            -1,
            &MatchCandidate::from_records(
                -1,
                [("goodreads", &rec("Kalomir of River 123", &["Ted Chiang"]))],
            ),
        );
        chunk.add(-2, &MatchCandidate::from_records(-2, [("goodreads", &far)]));
        let mut index = MatchIndex::default();
        // Item -2 got no id (say its write left it out): it must not come along.
        index.absorb(chunk, |i| (i == -1).then_some(41));
        let hits = |r: &SourceRecord| {
            let (ids, title, authors) = candidate_keys(r);
            let mut hits = BTreeSet::new();
            index.lookup(&record_keys(&ids, &title, &authors, "kobo", "k"), &mut hits);
            hits.into_iter().collect::<Vec<_>>()
        };
        assert_eq!(
            hits(&near),
            [41],
            "found by block key, judged by the absorbed shape"
        );
        assert_eq!(
            hits(&rec("Kalomir of River 123", &[])),
            [41],
            "found by title"
        );
        assert!(hits(&far).is_empty());
    }

    #[test]
    fn overflowing_counts_still_bound_from_above() {
        let long = "a".repeat(300);
        let longer = "a".repeat(400);
        let a = TitleShape::of(&long);
        let b = TitleShape::of(&longer);
        assert!(a.similarity_bound(&b) >= strsim::jaro_winkler(&long, &longer));
        let mixed = format!("{} b", "a".repeat(260));
        let c = TitleShape::of(&mixed);
        assert!(a.similarity_bound(&c) >= strsim::jaro_winkler(&long, &mixed));
    }

    proptest::proptest! {
        #[test]
        fn the_shape_bound_never_undercuts_jaro_winkler(
            a in "[a-e0-2 ]{1,24}|[a-z ]{1,40}|\\PC{1,12}",
            b in "[a-e0-2 ]{1,24}|[a-z ]{1,40}|\\PC{1,12}",
        ) {
            let bound = TitleShape::of(&a).similarity_bound(&TitleShape::of(&b));
            let real = strsim::jaro_winkler(&a, &b);
            proptest::prop_assert!(bound + 1e-9 >= real, "{a:?} {b:?}: {bound} < {real}");
        }
    }
}
