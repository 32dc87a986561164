//! Realistic, deterministic Audible data for the fake: library items in the `1.0/library`
//! shape of dossier §7 (series with fractional sequences, role suffixes in author lists,
//! null narrators, ISBNs on some, the user's own review on a few, community ratings on all),
//! wishlist products (§9) and finished events (§8.3).

use serde_json::{Value, json};

const TITLES: [(&str, Option<&str>); 12] = [
    ("The Long Voyage", Some("Book One of the Drift")),
    ("Salt and Starlight", None),
    ("A Memory Called Empire", None),
    ("The Quiet Orchard", Some("A Novel")),
    ("Children of the Lantern", None),
    ("Northwind", Some("The Cold Coast, Book 2")),
    ("The Cartographer's Daughter", None),
    ("Small Gods of the River", None),
    ("Ninefold", Some("A Thriller")),
    ("The Paper Menagerie and Other Stories", None),
    ("Deep Field", None),
    ("Ember Year", None),
];

const AUTHORS: [&str; 8] = [
    "Mara Quinn",
    "Tomás Echeverría",
    "Arkady Martine",
    "Helen Okafor",
    "Jun Watanabe",
    "Sigrid Lund",
    "Ken Liu",
    "Priya Raman",
];

const NARRATORS: [&str; 6] = [
    "Leo Park",
    "Ruth Bellamy",
    "Amara Diallo",
    "Simon Vance",
    "Kate Reading",
    "Jin Ha",
];

const SERIES: [&str; 3] = ["The Drift", "The Cold Coast", "Teixcalaan"];

/// The ASIN of the `n`-th seeded title: `B0` + 8 digits, as Audible's own ASINs look.
pub fn asin(n: usize) -> String {
    format!("B0{:08}", 10_000_000 + n)
}

/// The ISBN-13 of the `n`-th seeded title (every third title has one): distinct per title,
/// with a valid check digit, as a real library's would be.
pub fn isbn(n: usize) -> String {
    crate::hardcover::seed::isbn13_for(160_000_000 + n as u64)
}

/// The `n`-th library item, with every field of §7 the fake can serve; the server drops
/// what the requested response groups do not cover.
pub fn library_item(n: usize) -> Value {
    let (title, subtitle) = TITLES[n % TITLES.len()];
    let title = if n < TITLES.len() {
        title.to_owned()
    } else {
        format!("{title}, Volume {}", n / TITLES.len() + 1)
    };
    let author = AUTHORS[n % AUTHORS.len()];
    let mut authors =
        vec![json!({"asin": format!("B00AUTH{:04}", n % AUTHORS.len()), "name": author})];
    if n % 7 == 3 {
        // Audible lists translators among the authors with a role suffix.
        authors.push(json!({"name": "Ken Liu - translator"}));
    }
    let narrators = if n % 11 == 5 {
        Value::Null
    } else {
        json!([{"name": NARRATORS[n % NARRATORS.len()]}])
    };
    let series = if n.is_multiple_of(4) {
        let seq = if n.is_multiple_of(8) {
            format!("{}", n / 8 + 1)
        } else {
            format!("{}.5", n / 8)
        };
        json!([{
            "asin": format!("B0SERIES{:02}", n % SERIES.len()),
            "title": SERIES[n % SERIES.len()],
            "sequence": seq,
            "url": format!("/pd/series/B0SERIES{:02}", n % SERIES.len()),
        }])
    } else {
        Value::Null
    };
    let percent = match n % 5 {
        0 => 0.0,
        1 => 37.5,
        2 => 100.0,
        3 => 82.25,
        _ => 3.0,
    };
    let finished = n % 5 == 2;
    let day = 1 + n % 28;
    let month = 1 + n % 12;
    let provided_review = if n % 6 == 2 {
        json!({
            "ratings": {"overall_rating": 4 + (n % 2), "performance_rating": 5, "story_rating": 4},
            "title": "Stayed up far too late",
            "body": "The narration <b>carries</b> the slower middle &amp; the ending lands.",
            "submission_date": format!("2024-{month:02}-{day:02}T09:30:00Z"),
        })
    } else {
        Value::Null
    };
    json!({
        "asin": asin(n),
        "title": title,
        "subtitle": subtitle,
        "authors": authors,
        "narrators": narrators,
        "series": series,
        "runtime_length_min": 240 + (n * 37) % 900,
        "release_date": format!("{}-{month:02}-{day:02}", 2012 + n % 13),
        "purchase_date": format!("2023-{month:02}-{day:02}T18:22:41.512Z"),
        "library_status": {
            "date_added": format!("2023-{month:02}-{day:02}T18:22:41.512Z"),
            "is_preordered": false, "is_removable": null, "is_visible": null
        },
        "language": if n % 9 == 4 { "german" } else { "english" },
        "publisher_name": if n.is_multiple_of(2) { "Audible Studios" } else { "Tantor Audio" },
        "format_type": "unabridged",
        "content_delivery_type": "SinglePartBook",
        "isbn": if n.is_multiple_of(3) { Value::from(isbn(n)) } else { Value::Null },
        "percent_complete": percent,
        "is_finished": finished,
        "listening_status": {
            "is_finished": finished,
            "percent_complete": percent,
            "time_remaining_seconds": if finished { 0 } else { 3600 },
            "finished_at_timestamp": if finished { Value::from(format!("2024-{month:02}-{day:02}T21:05:00Z")) } else { Value::Null },
        },
        "rating": {
            "num_reviews": 210 + n,
            "overall_distribution": {"average_rating": 4.6, "display_average_rating": "4.6",
                                     "display_stars": 4.5, "num_ratings": 1830 + n},
            "performance_distribution": {"average_rating": 4.7, "display_stars": 4.5},
            "story_distribution": {"average_rating": 4.4, "display_stars": 4.5},
        },
        "provided_review": provided_review,
        "status": "Active",
    })
}

/// The cover URLs of the `n`-th title for the requested sizes.
pub fn product_images(n: usize, sizes: &[u32]) -> Value {
    let map: serde_json::Map<String, Value> = sizes
        .iter()
        .map(|s| {
            (
                s.to_string(),
                Value::from(format!(
                    "https://m.media-amazon.com/images/I/51{n:05}x._SL{s}_.jpg"
                )),
            )
        })
        .collect();
    Value::Object(map)
}

/// The `n`-th wishlist product (catalogue shape plus `added_timestamp`).
pub fn wishlist_product(n: usize) -> Value {
    let mut p = library_item(5_000 + n);
    if let Some(o) = p.as_object_mut() {
        for k in [
            "percent_complete",
            "is_finished",
            "listening_status",
            "provided_review",
            "library_status",
            "purchase_date",
            "status",
        ] {
            o.remove(k);
        }
        o.insert(
            "added_timestamp".into(),
            Value::from(format!(
                "2025-{:02}-{:02}T08:00:00Z",
                1 + n % 12,
                1 + n % 28
            )),
        );
    }
    p
}
