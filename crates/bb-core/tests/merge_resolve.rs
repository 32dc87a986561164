//! Field resolution across sources: each default rule, manual-edit precedence, the losing
//! values staying visible, and order independence.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use bb_core::library::resolve::{
    Edit, ManualEdits, Origin, ResolveRules, SourceKind, SourceRef, SourcedRecord, resolve,
    resolve_listed,
};
use bb_core::library::{
    Cover, Format, Highlight, HighlightKind, IdScheme, Identifier, PartialDate, Progress, Rating,
    ReadThrough, ReadingStatus, Review, SourceRecord,
};
use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use std::borrow::Cow;

fn t(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 12, 0, 0).single().unwrap()
}

fn day(y: i32, m: u32, d: u32) -> PartialDate {
    PartialDate {
        year: y,
        month: Some(m),
        day: Some(d),
    }
}

fn src(provider: &str, id: i64, record: SourceRecord) -> SourcedRecord<'static> {
    SourcedRecord {
        source: SourceRef {
            kind: SourceKind::Batch,
            id,
            provider: provider.into(),
            seen_at: t(2024, 6, 1),
        },
        record: Cow::Owned(record),
    }
}

fn rec(title: &str) -> SourceRecord {
    SourceRecord {
        title: title.into(),
        authors: vec!["Frank Herbert".into()],
        ..SourceRecord::default()
    }
}

fn run(sources: &[SourcedRecord]) -> bb_core::library::resolve::ResolvedItem {
    resolve(sources, &ManualEdits::default(), &ResolveRules::default())
}

#[test]
fn catalogue_title_beats_clippings_and_losing_spellings_stay_visible() {
    let mut kindle = rec("dune (frank herbert)");
    kindle.authors = vec!["Herbert, Frank".into()];
    let gr = rec("Dune (Dune, #1)");
    let item = run(&[src("kindle", 1, kindle), src("goodreads", 2, gr)]);
    assert_eq!(item.title, "Dune");
    assert_eq!(item.authors, vec!["Frank Herbert"]);
    assert_eq!(item.series.len(), 1);
    assert_eq!(item.series[0].name, "Dune");
    let p = item.provenance.title.as_ref().unwrap();
    assert!(matches!(&p.source, Origin::Source(s) if s.provider == "goodreads"));
    assert_eq!(p.alternatives.len(), 1);
    assert_eq!(p.alternatives[0].value, "dune (frank herbert)");
    let authors = item.provenance.authors.as_ref().unwrap();
    assert_eq!(authors.alternatives[0].value, vec!["Herbert, Frank"]);
    // Sources list each title exactly as given.
    let titles: Vec<&str> = item.sources.iter().map(|s| s.title.as_str()).collect();
    assert!(titles.contains(&"Dune (Dune, #1)"));
    assert!(titles.contains(&"dune (frank herbert)"));
}

#[test]
fn metadata_priority_is_configurable() {
    let rules = ResolveRules {
        metadata_priority: vec!["kindle".into(), "*".into()],
        ..ResolveRules::default()
    };
    let item = resolve(
        &[
            src("kindle", 1, rec("Dune!")),
            src("goodreads", 2, rec("Dune")),
        ],
        &ManualEdits::default(),
        &rules,
    );
    assert_eq!(item.title, "Dune!");
}

#[test]
fn roles_sort_contributors_into_their_lists() {
    let mut r = rec("The Three-Body Problem");
    r.authors = vec![
        "Cixin Liu".into(),
        "Ken Liu - translator".into(),
        "Luke Daniels (Narrator)".into(),
    ];
    let item = run(&[src("audible", 1, r)]);
    assert_eq!(item.authors, vec!["Cixin Liu"]);
    assert_eq!(item.translators, vec!["Ken Liu"]);
    assert_eq!(item.narrators, vec!["Luke Daniels"]);
}

#[test]
fn manual_edits_win_and_source_values_become_alternatives() {
    let mut gr = rec("Dune");
    gr.status = Some(ReadingStatus::Read);
    gr.status_at = Some(t(2024, 1, 1));
    gr.rating = Some(Rating(500));
    gr.shelves = vec!["sci-fi".into()];
    let edits = ManualEdits {
        title: Some(Edit {
            value: "Dune (my copy)".into(),
            at: t(2020, 1, 1),
        }),
        status: Some(Edit {
            value: ReadingStatus::DidNotFinish,
            at: t(2020, 1, 1),
        }),
        rating: Some(Edit {
            value: None,
            at: t(2020, 1, 1),
        }),
        shelves: Some(Edit {
            value: vec!["Favourites".into()],
            at: t(2020, 1, 1),
        }),
        ..ManualEdits::default()
    };
    let item = resolve(&[src("goodreads", 1, gr)], &edits, &ResolveRules::default());
    assert_eq!(item.title, "Dune (my copy)");
    assert_eq!(item.status, Some(ReadingStatus::DidNotFinish));
    assert_eq!(item.rating, None, "a cleared rating stays cleared");
    assert_eq!(item.shelves, vec!["Favourites"]);
    let p = &item.provenance;
    assert_eq!(p.title.as_ref().unwrap().source, Origin::Manual);
    assert_eq!(p.title.as_ref().unwrap().alternatives[0].value, "Dune");
    assert_eq!(
        p.status.as_ref().unwrap().alternatives[0].value,
        ReadingStatus::Read
    );
    assert_eq!(p.rating.as_ref().unwrap().alternatives[0].value, Some(5.0));
    assert_eq!(
        p.shelves.as_ref().unwrap().alternatives[0].value,
        vec!["sci-fi"]
    );
    // The rating is still listed with its source.
    assert_eq!(item.ratings.len(), 1);
}

#[test]
fn finished_read_beats_an_older_to_read() {
    let mut gr = rec("Dune");
    gr.status = Some(ReadingStatus::ToRead);
    gr.added_at = Some(t(2019, 1, 1));
    let mut sg = rec("Dune");
    sg.reads = vec![ReadThrough {
        started: None,
        finished: Some(day(2021, 3, 4)),
    }];
    let item = run(&[src("goodreads", 1, gr), src("storygraph", 2, sg)]);
    assert_eq!(item.status, Some(ReadingStatus::Read));
    let p = item.provenance.status.unwrap();
    assert!(matches!(&p.source, Origin::Source(s) if s.provider == "storygraph"));
    assert_eq!(p.alternatives[0].value, ReadingStatus::ToRead);
}

#[test]
fn device_progress_beats_to_read_added_years_earlier() {
    let mut gr = rec("Dune");
    gr.status = Some(ReadingStatus::ToRead);
    gr.added_at = Some(t(2018, 5, 1));
    let mut kobo = rec("Dune");
    kobo.progress = Some(Progress {
        fraction: 0.45,
        position: None,
        at: Some(t(2024, 2, 2)),
    });
    let item = run(&[src("goodreads", 1, gr), src("kobo", 2, kobo)]);
    assert_eq!(item.status, Some(ReadingStatus::Reading));
    assert_eq!(item.progress, Some(0.45));
}

#[test]
fn a_newer_to_read_is_newer_evidence() {
    // Re-shelving to to-read after a finished read is the user's latest word.
    let mut a = rec("Dune");
    a.reads = vec![ReadThrough {
        started: None,
        finished: Some(day(2015, 3, 4)),
    }];
    let mut b = rec("Dune");
    b.status = Some(ReadingStatus::ToRead);
    b.status_at = Some(t(2023, 1, 1));
    let item = run(&[src("goodreads", 1, a), src("storygraph", 2, b)]);
    assert_eq!(item.status, Some(ReadingStatus::ToRead));
}

#[test]
fn equally_dated_evidence_goes_forward() {
    let mut a = rec("Dune");
    a.status = Some(ReadingStatus::ToRead);
    let mut b = rec("Dune");
    b.status = Some(ReadingStatus::Read);
    // Both undated: the further-along status wins, in either order.
    let item = run(&[
        src("openlibrary", 1, a.clone()),
        src("goodreads", 2, b.clone()),
    ]);
    assert_eq!(item.status, Some(ReadingStatus::Read));
    let item = run(&[src("goodreads", 2, b), src("openlibrary", 1, a)]);
    assert_eq!(item.status, Some(ReadingStatus::Read));
}

#[test]
fn progress_takes_the_most_recent_position() {
    let mut a = rec("Dune");
    a.progress = Some(Progress {
        fraction: 0.8,
        position: None,
        at: Some(t(2023, 1, 1)),
    });
    let mut b = rec("Dune");
    b.progress = Some(Progress {
        fraction: 0.3,
        position: None,
        at: Some(t(2024, 1, 1)),
    });
    let item = run(&[src("kobo", 1, a), src("audible", 2, b)]);
    assert_eq!(item.progress, Some(0.3));
    let p = item.provenance.progress.unwrap();
    assert_eq!(p.alternatives[0].value, Some(0.8));
}

#[test]
fn rating_by_recency_then_priority() {
    let mut gr = rec("Dune");
    gr.rating = Some(Rating(300));
    gr.review = Some(Review {
        text: "ok".into(),
        at: Some(t(2020, 1, 1)),
    });
    let mut sg = rec("Dune");
    sg.rating = Some(Rating(425));
    sg.review = Some(Review {
        text: "better on reread".into(),
        at: Some(t(2023, 1, 1)),
    });
    let item = run(&[
        src("goodreads", 1, gr.clone()),
        src("storygraph", 2, sg.clone()),
    ]);
    assert_eq!(item.rating, Some(Rating(425)), "most recently dated");
    assert_eq!(item.ratings.len(), 2);
    assert_eq!(item.reviews.len(), 2);
    assert_eq!(item.reviews[0].source, "goodreads");

    // Undated: source priority decides (goodreads before storygraph by default)…
    gr.review = None;
    sg.review = None;
    let item = run(&[
        src("goodreads", 1, gr.clone()),
        src("storygraph", 2, sg.clone()),
    ]);
    assert_eq!(item.rating, Some(Rating(300)));
    // …and the priority is configurable.
    let rules = ResolveRules {
        rating_priority: vec!["storygraph".into()],
        ..ResolveRules::default()
    };
    let item = resolve(
        &[src("goodreads", 1, gr), src("storygraph", 2, sg)],
        &ManualEdits::default(),
        &rules,
    );
    assert_eq!(item.rating, Some(Rating(425)));
}

#[test]
fn community_ratings_never_become_the_users() {
    let mut gr = rec("Dune");
    gr.raw = serde_json::json!({"Average Rating": "4.27", "My Rating": "0"}).into();
    let item = run(&[src("goodreads", 1, gr)]);
    assert_eq!(item.rating, None);
    assert!(item.ratings.is_empty());
    let json = serde_json::to_value(&item).unwrap();
    assert_eq!(json["rating"], serde_json::Value::Null);
}

#[test]
fn reads_merge_equal_and_compatible_dates() {
    let mut gr = rec("Dune");
    gr.reads = vec![ReadThrough {
        started: None,
        finished: Some(day(2022, 11, 28)),
    }];
    let mut sg = rec("Dune");
    sg.reads = vec![
        ReadThrough {
            started: Some(day(2022, 10, 29)),
            finished: Some(day(2022, 11, 28)),
        },
        ReadThrough {
            started: None,
            finished: Some(day(2021, 9, 14)),
        },
    ];
    let mut lt = rec("Dune");
    lt.reads = vec![ReadThrough {
        started: None,
        finished: Some(PartialDate {
            year: 2021,
            month: Some(9),
            day: None,
        }),
    }];
    let item = run(&[
        src("goodreads", 1, gr),
        src("storygraph", 2, sg),
        src("librarything", 3, lt),
    ]);
    let json = serde_json::to_value(&item).unwrap();
    assert_eq!(
        json["reads"],
        serde_json::json!([
            {"started": null, "finished": "2021-09-14", "sources": ["librarything", "storygraph"]},
            {"started": "2022-10-29", "finished": "2022-11-28", "sources": ["goodreads", "storygraph"]},
        ])
    );
}

#[test]
fn undated_reads_only_fill_a_sources_read_count() {
    // Goodreads: Read Count 2, latest date known. OpenLibrary: one undated read.
    let mut gr = rec("Dune");
    gr.reads = vec![
        ReadThrough {
            started: None,
            finished: Some(day(2022, 1, 1)),
        },
        ReadThrough {
            started: None,
            finished: None,
        },
    ];
    let mut ol = rec("Dune");
    ol.reads = vec![ReadThrough {
        started: None,
        finished: None,
    }];
    let item = run(&[
        src("goodreads", 1, gr.clone()),
        src("openlibrary", 2, ol.clone()),
    ]);
    assert_eq!(item.reads.len(), 2, "{:?}", item.reads);
    // The undated read from elsewhere is the dated one, not a second read.
    gr.reads.pop();
    let item = run(&[src("goodreads", 1, gr), src("openlibrary", 2, ol)]);
    assert_eq!(item.reads.len(), 1);
    assert!(item.reads[0].finished.is_some());
}

#[test]
fn covers_by_priority_then_size() {
    let cover = |url: &str, w: Option<u32>| Cover {
        url: url.into(),
        width: w,
        height: w,
    };
    let mut gr = rec("Dune");
    gr.covers = vec![
        cover("https://gr/small", Some(100)),
        cover("https://gr/big", Some(800)),
    ];
    let mut kobo = rec("Dune");
    kobo.covers = vec![cover("https://kobo/huge", Some(2000))];
    let mut other = rec("Dune");
    other.covers = vec![cover("https://x/unknown", None)];
    let item = run(&[
        src("kobo", 1, kobo),
        src("goodreads", 2, gr),
        src("somewhere", 3, other),
    ]);
    let urls: Vec<&str> = item.covers.iter().map(|c| c.url.as_str()).collect();
    assert_eq!(
        urls,
        vec![
            "https://gr/big",
            "https://gr/small",
            "https://kobo/huge",
            "https://x/unknown"
        ]
    );
    let p = item.provenance.cover.unwrap();
    assert!(matches!(&p.source, Origin::Source(s) if s.provider == "goodreads"));
    assert_eq!(p.alternatives.len(), 3);

    let edits = ManualEdits {
        cover: Some(Edit {
            value: cover("https://mine", None),
            at: t(2024, 1, 1),
        }),
        ..ManualEdits::default()
    };
    let item = resolve(
        &[src("goodreads", 2, rec("Dune"))],
        &edits,
        &ResolveRules::default(),
    );
    assert_eq!(item.covers[0].url, "https://mine");
}

#[test]
fn unions_shelves_identifiers_formats_highlights() {
    let mut gr = rec("Dune");
    gr.shelves = vec!["Sci-Fi".into(), "favorites".into()];
    gr.identifiers = vec![Identifier::new(IdScheme::Isbn10, "0441172717")];
    gr.formats = vec![Format::Print];
    gr.highlights = vec![Highlight {
        text: "Fear is the mind-killer.".into(),
        note: None,
        location: Some("Location 120-121".into()),
        location_start: Some(120),
        location_end: Some(121),
        at: None,
        kind: HighlightKind::Highlight,
    }];
    let mut kindle = rec("Dune");
    kindle.shelves = vec!["sci-fi ".into()];
    kindle.identifiers = vec![Identifier::new(IdScheme::Asin, "B00B7NPRY8")];
    kindle.formats = vec![Format::Ebook];
    kindle.highlights = vec![Highlight {
        note: Some("the litany".into()),
        text: "Fear is the  mind-killer.".into(),
        ..gr.highlights[0].clone()
    }];
    let item = run(&[src("goodreads", 1, gr), src("kindle", 2, kindle)]);
    assert_eq!(item.shelves, vec!["favorites", "Sci-Fi"]);
    assert_eq!(item.formats, vec![Format::Print, Format::Ebook]);
    assert_eq!(item.identifiers["isbn_13"], vec!["9780441172719"]);
    assert_eq!(item.identifiers["isbn_10"], vec!["0441172717"]);
    assert_eq!(item.identifiers["asin"], vec!["B00B7NPRY8"]);
    assert_eq!(item.highlights.len(), 1);
    assert_eq!(item.highlights[0].note.as_deref(), Some("the litany"));
}

#[test]
fn json_shape_matches_the_library_listing() {
    let mut gr = rec("Dune (Dune, #1)");
    gr.external_id = Some("234225".into());
    gr.rating = Some(Rating(450));
    gr.progress = Some(Progress {
        fraction: 0.5,
        position: None,
        at: None,
    });
    // The stored form leaves empty fields out; the view puts them back.
    let mut json = serde_json::to_value(run(&[src("goodreads", 1, gr)])).unwrap();
    bb_core::library::stored::expand_stored(&mut json);
    for key in [
        "title",
        "subtitle",
        "authors",
        "narrators",
        "series",
        "identifiers",
        "formats",
        "status",
        "shelves",
        "rating",
        "reviews",
        "reads",
        "progress",
        "highlights",
        "sources",
        "provenance",
    ] {
        assert!(json.get(key).is_some(), "missing {key}");
    }
    assert_eq!(json["rating"], serde_json::json!(4.5));
    assert_eq!(json["progress"], serde_json::json!(0.5));
    assert_eq!(
        json["series"],
        serde_json::json!([{"name": "Dune", "position": "1"}])
    );
    assert_eq!(json["sources"][0]["title"], "Dune (Dune, #1)");
    assert_eq!(json["sources"][0]["external_id"], "234225");
    assert_eq!(
        json["provenance"]["title"]["source"]["provider"],
        "goodreads"
    );
    assert_eq!(json["provenance"]["rating"]["source"]["kind"], "batch");
}

fn arb_date() -> impl Strategy<Value = Option<PartialDate>> {
    prop_oneof![
        Just(None),
        (
            2015i32..2018,
            proptest::option::of(1u32..3),
            proptest::option::of(1u32..3)
        )
            .prop_map(|(year, month, day)| Some(PartialDate {
                year,
                month,
                day: month.and(day),
            })),
    ]
}

fn arb_record() -> impl Strategy<Value = SourcedRecord<'static>> {
    let providers = prop_oneof![
        Just("goodreads"),
        Just("storygraph"),
        Just("kindle"),
        Just("kobo"),
        Just("audible")
    ];
    let statuses = proptest::option::of(prop_oneof![
        Just(ReadingStatus::ToRead),
        Just(ReadingStatus::Reading),
        Just(ReadingStatus::Read),
        Just(ReadingStatus::DidNotFinish),
    ]);
    let time = proptest::option::of((2015i32..2020, 1u32..3).prop_map(|(y, m)| t(y, m, 1)));
    (
        providers,
        0i64..3,
        prop_oneof![Just("Dune"), Just("Dune (Dune, #1)"), Just("DUNE")],
        statuses,
        time.clone(),
        proptest::option::of(1u16..=5),
        proptest::collection::vec((arb_date(), arb_date()), 0..3),
        proptest::option::of((0u8..=10, time)),
        proptest::collection::vec(prop_oneof![Just("Fav"), Just("fav"), Just("SF")], 0..3),
        proptest::collection::vec((0u8..3, proptest::option::of(1u32..4)), 0..2),
    )
        .prop_map(
            |(provider, id, title, status, status_at, rating, reads, progress, shelves, covers)| {
                let record = SourceRecord {
                    external_id: Some(format!("{provider}-{id}")),
                    title: title.into(),
                    authors: vec!["Frank Herbert".into()],
                    status,
                    status_at,
                    rating: rating.map(|r| Rating(r * 100)),
                    reads: reads
                        .into_iter()
                        .map(|(started, finished)| ReadThrough { started, finished })
                        .collect(),
                    progress: progress.map(|(f, at)| Progress {
                        fraction: f64::from(f) / 10.0,
                        position: None,
                        at,
                    }),
                    shelves: shelves.into_iter().map(String::from).collect(),
                    covers: covers
                        .into_iter()
                        .map(|(u, w)| Cover {
                            url: format!("https://c/{u}"),
                            width: w,
                            height: w,
                        })
                        .collect(),
                    ..SourceRecord::default()
                };
                SourcedRecord {
                    source: SourceRef {
                        kind: SourceKind::Batch,
                        id,
                        provider: provider.into(),
                        seen_at: t(2024, 1, 1),
                    },
                    record: Cow::Owned(record),
                }
            },
        )
}

proptest! {
    #[test]
    fn resolution_ignores_the_order_of_sources(
        records in proptest::collection::vec(arb_record(), 1..6),
        rotate in 0usize..6,
    ) {
        let a = serde_json::to_value(run(&records)).unwrap();
        prop_assert_eq!(&a, &serde_json::to_value(run(&records)).unwrap());
        let mut shuffled = records.clone();
        shuffled.reverse();
        let len = shuffled.len();
        shuffled.rotate_left(rotate % len);
        prop_assert_eq!(&a, &serde_json::to_value(run(&shuffled)).unwrap());
    }

    /// What an import stores for listings is resolved as the full item resolves it, with
    /// and without manual edits.
    #[test]
    fn the_listed_fields_resolve_as_the_full_item_does(
        records in proptest::collection::vec(arb_record(), 1..6),
        edited in any::<bool>(),
    ) {
        let edits = if edited {
            ManualEdits {
                title: Some(Edit { value: "My Title".into(), at: t(2019, 1, 1) }),
                status: Some(Edit { value: ReadingStatus::Paused, at: t(2019, 1, 1) }),
                rating: Some(Edit { value: Some(Rating(250)), at: t(2019, 1, 1) }),
                shelves: Some(Edit { value: vec!["Mine".into()], at: t(2019, 1, 1) }),
                ..ManualEdits::default()
            }
        } else {
            ManualEdits::default()
        };
        let rules = ResolveRules::default();
        let full = resolve(&records, &edits, &rules);
        let listed = resolve_listed(&records, &edits, &rules);
        prop_assert_eq!(&listed.title, &full.title);
        prop_assert_eq!(&listed.subtitle, &full.subtitle);
        prop_assert_eq!(&listed.authors, &full.authors);
        prop_assert_eq!(&listed.narrators, &full.narrators);
        prop_assert_eq!(&listed.translators, &full.translators);
        prop_assert_eq!(&listed.series, &full.series);
        prop_assert_eq!(&listed.formats, &full.formats);
        prop_assert_eq!(listed.status, full.status);
        prop_assert_eq!(listed.rating, full.rating);
        prop_assert_eq!(&listed.shelves, &full.shelves);
    }
}
