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
//! A hash collision only adds a candidate that matching then judges on its real keys.
//!
//! [`match_record`]: super::matching::match_record
//! [`AuthorKey::matches`]: super::normalize::AuthorKey::matches

use super::identifiers::Identifier;
use super::matching::MatchCandidate;
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
}

fn hash_of(parts: &[&str]) -> u64 {
    // `DefaultHasher::new()` has fixed keys: the same key hashes alike in every process.
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Keys of one title–author combination; `out` collects them.
fn title_author_keys(title: &TitleKey, authors: &[AuthorKey], out: &mut Vec<u64>) {
    if title.is_empty() {
        return;
    }
    let main = strip_leading_article(&title.main);
    if !main.is_empty() {
        out.push(hash_of(&["t", main]));
    }
    let full = strip_leading_article(&title.full);
    if full != main {
        out.push(hash_of(&["t", full]));
    }
    let block = blocking_key(title);
    if block.is_empty() {
        return;
    }
    for a in authors.iter().filter(|a| !a.is_empty()) {
        out.push(hash_of(&["a", &a.compact, &block]));
        out.push(hash_of(&["n", &a.tokens.join(" "), &block]));
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
) -> Vec<u64> {
    let mut out: Vec<u64> = ids.iter().map(identifier_key).collect();
    out.push(source_key_hash(provider, source_key));
    title_author_keys(title, authors, &mut out);
    out
}

/// The keys an item is indexed under.
pub fn candidate_keys_of(c: &MatchCandidate) -> Vec<u64> {
    let mut out: Vec<u64> = c.identifiers.iter().map(identifier_key).collect();
    for s in &c.sources {
        out.push(source_key_hash(&s.provider, &s.external_id));
    }
    for t in &c.titles {
        title_author_keys(t, &c.authors, &mut out);
    }
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
    /// its real id).
    pub fn add(&mut self, item: i64, c: &MatchCandidate) {
        for k in candidate_keys_of(c) {
            self.insert(k, item);
        }
    }

    /// Adds the items under any of `keys` to `out`.
    pub fn lookup(&self, keys: &[u64], out: &mut BTreeSet<i64>) {
        for k in keys {
            if let Some(i) = self.first.get(k) {
                out.insert(*i);
                if let Some(others) = self.more.get(k) {
                    out.extend(others.iter().copied());
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
}
