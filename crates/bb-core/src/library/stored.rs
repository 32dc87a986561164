//! The compact JSON of a resolved item and the library view built from it.
//!
//! A [`ResolvedItem`](super::resolve::ResolvedItem) serialises without the fields that have
//! no value: an absent subtitle, rating or progress, empty lists, an edition's unknown
//! facts, a partial date's unknown month and day, a provenance entry's empty alternatives.
//! The mapped records the store keeps ([`super::SourceRecord`]) leave them out the same way.
//! The library view (API, CLI, export) promises every field, so [`expand_stored`] puts the
//! missing ones back as `null` or empty when an item is read and resolved. A value that
//! already has every field passes through unchanged.

use serde_json::{Map, Value};

/// Top-level fields of the view that may be missing from the stored form, with the value
/// they stand for.
const ITEM_DEFAULTS: &[(&str, Empty)] = &[
    ("subtitle", Empty::Null),
    ("authors", Empty::List),
    ("narrators", Empty::List),
    ("translators", Empty::List),
    ("series", Empty::List),
    ("identifiers", Empty::Object),
    ("formats", Empty::List),
    ("editions", Empty::List),
    ("status", Empty::Null),
    ("shelves", Empty::List),
    ("rating", Empty::Null),
    ("ratings", Empty::List),
    ("reviews", Empty::List),
    ("reads", Empty::List),
    ("progress", Empty::Null),
    ("position", Empty::Null),
    ("highlights", Empty::List),
    ("covers", Empty::List),
    ("sources", Empty::List),
    ("provenance", Empty::Object),
];

/// An edition's facts (`EditionSeen` with its flattened `Edition`).
const EDITION_DEFAULTS: &[(&str, Empty)] = &[
    ("external_id", Empty::Null),
    ("publisher", Empty::Null),
    ("published", Empty::Null),
    ("pages", Empty::Null),
    ("language", Empty::Null),
    ("binding", Empty::Null),
    ("runtime_secs", Empty::Null),
];

const DATE_DEFAULTS: &[(&str, Empty)] = &[("month", Empty::Null), ("day", Empty::Null)];

const PROVENANCE_DEFAULTS: &[(&str, Empty)] = &[("alternatives", Empty::List)];

#[derive(Clone, Copy)]
enum Empty {
    Null,
    List,
    Object,
}

impl Empty {
    fn value(self) -> Value {
        match self {
            Empty::Null => Value::Null,
            Empty::List => Value::Array(Vec::new()),
            Empty::Object => Value::Object(Map::new()),
        }
    }
}

fn fill(object: &mut Map<String, Value>, defaults: &[(&str, Empty)]) {
    for (key, default) in defaults {
        if !object.contains_key(*key) {
            object.insert((*key).to_owned(), default.value());
        }
    }
}

/// Turns a stored item into the library view: every field present, `null` or empty where
/// the item has no value. Anything that is not an item-shaped object is left as it is.
pub fn expand_stored(item: &mut Value) {
    let Some(object) = item.as_object_mut() else {
        return;
    };
    fill(object, ITEM_DEFAULTS);
    if let Some(Value::Array(editions)) = object.get_mut("editions") {
        for edition in editions.iter_mut().filter_map(Value::as_object_mut) {
            fill(edition, EDITION_DEFAULTS);
            if let Some(Value::Object(date)) = edition.get_mut("published") {
                fill(date, DATE_DEFAULTS);
            }
        }
    }
    if let Some(Value::Object(provenance)) = object.get_mut("provenance") {
        for entry in provenance.values_mut().filter_map(Value::as_object_mut) {
            fill(entry, PROVENANCE_DEFAULTS);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::resolve::{
        ManualEdits, ResolveRules, SourceKind, SourceRef, SourcedRecord, resolve,
    };
    use crate::library::{Edition, PartialDate, SourceRecord};
    use chrono::{TimeZone, Utc};
    use serde_json::json;
    use std::borrow::Cow;

    fn sourced(record: SourceRecord) -> SourcedRecord<'static> {
        SourcedRecord {
            source: SourceRef {
                kind: SourceKind::Batch,
                id: 7,
                provider: "goodreads".into(),
                seen_at: Utc.with_ymd_and_hms(2024, 5, 6, 7, 8, 9).unwrap(),
            },
            record: Cow::Owned(record),
        }
    }

    /// The view of an item with almost nothing known: every field the library promises is
    /// there, written out by hand so the test does not lean on the code it checks.
    #[test]
    fn a_bare_item_expands_to_every_field() {
        let record = SourceRecord {
            title: "Dune".into(),
            edition: Some(Edition {
                published: Some(PartialDate {
                    year: 1965,
                    month: None,
                    day: None,
                }),
                ..Edition::default()
            }),
            ..SourceRecord::default()
        };
        let item = resolve(
            &[sourced(record)],
            &ManualEdits::default(),
            &ResolveRules::default(),
        );
        let mut stored = serde_json::to_value(&item).unwrap();
        assert!(
            stored.get("subtitle").is_none() && stored.get("narrators").is_none(),
            "the stored form leaves empty fields out: {stored}"
        );
        expand_stored(&mut stored);
        let seen = json!({"kind": "batch", "id": 7, "provider": "goodreads",
                          "seen_at": "2024-05-06T07:08:09Z"});
        assert_eq!(
            stored,
            json!({
                "title": "Dune", "subtitle": null, "authors": [], "narrators": [],
                "translators": [], "series": [], "identifiers": {}, "formats": [],
                "editions": [{"provider": "goodreads", "external_id": null, "publisher": null,
                              "published": {"year": 1965, "month": null, "day": null},
                              "pages": null, "language": null, "binding": null,
                              "runtime_secs": null}],
                "status": null, "shelves": [], "rating": null, "ratings": [], "reviews": [],
                "reads": [], "progress": null, "position": null, "highlights": [],
                "covers": [],
                "sources": [{"provider": "goodreads", "external_id": null, "title": "Dune",
                             "kind": "batch", "id": 7}],
                "provenance": {"title": {"source": seen, "at": "2024-05-06T07:08:09Z",
                                         "alternatives": []}},
            })
        );
    }

    /// Values that are there stay as they are; an item stored in the full form (before the
    /// compact one) comes through unchanged.
    #[test]
    fn present_values_and_full_items_are_left_alone() {
        let mut full = json!({
            "title": "Dune", "subtitle": "A Novel", "authors": ["Frank Herbert"],
            "narrators": [], "translators": [], "series": [{"name": "Dune", "position": "1"}],
            "identifiers": {"isbn_13": ["9780441013593"]}, "formats": ["print"],
            "editions": [{"provider": "goodreads", "external_id": "1", "publisher": "Ace",
                          "published": {"year": 1990, "month": 9, "day": 1}, "pages": 535,
                          "language": "en", "binding": "Paperback", "runtime_secs": null}],
            "status": "read", "shelves": ["sf"], "rating": 4.5, "ratings": [], "reviews": [],
            "reads": [], "progress": 1.0, "position": {"unit": "pages", "value": 535},
            "highlights": [], "covers": [], "sources": [],
            "provenance": {"title": {"source": "manual", "at": null,
                                     "alternatives": [{"value": "Dune!", "source": "manual",
                                                       "at": null}]}},
        });
        let before = full.clone();
        expand_stored(&mut full);
        assert_eq!(full, before);

        let mut not_an_item = json!(["Dune"]);
        expand_stored(&mut not_an_item);
        assert_eq!(not_an_item, json!(["Dune"]));
    }
}
