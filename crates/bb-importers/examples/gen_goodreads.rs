//! Writes a synthetic Goodreads library export for benchmarks:
//! `cargo run --release -p bb-importers --example gen_goodreads -- ROWS > goodreads-ROWS.csv`.
//!
//! The rows look like real exports (31-column header, `="…"` ISBN wrappers, valid
//! checksums, shelves, HTML reviews, read counts, titles with varied openings) and are
//! deterministic for a given ROWS,
//! so runs compare like with like. About 240 bytes a row: 100,000 rows ≈ 24 MB.

use std::io::{BufWriter, Write};

const HEADER: &str = "Book Id,Title,Author,Author l-f,Additional Authors,ISBN,ISBN13,My Rating,Average Rating,Publisher,Binding,Number of Pages,Year Published,Original Publication Year,Date Read,Date Added,Bookshelves,Bookshelves with positions,Exclusive Shelf,My Review,Spoiler,Private Notes,Read Count,Recommended For,Recommended By,Owned Copies,Original Purchase Date,Original Purchase Location,Condition,Condition Description,BCID";

const WORDS: &[&str] = &[
    "river", "night", "glass", "empire", "shadow", "garden", "winter", "stone", "letters",
    "silence", "harbor", "machine", "orchard", "kingdom", "lantern", "ember", "atlas", "tide",
];
const SYLLABLES: &[&str] = &[
    "ka", "lo", "mir", "sen", "tar", "vel", "dro", "quin", "bra", "eth", "fol", "gri", "hal",
    "ist", "jor", "kel", "lum", "nor", "ost", "pel", "rin", "sol", "thu", "ur", "vos", "wen",
    "xal", "yor", "zed", "ami", "bel", "cor", "dun", "eri", "fan", "gal", "hor", "ila", "jun",
    "lor",
];
const FIRST: &[&str] = &[
    "Ada",
    "Kazuo",
    "Ursula",
    "Chinua",
    "Stanisław",
    "Octavia",
    "Jorge",
    "Toni",
    "Ted",
    "N. K.",
];
const LAST: &[&str] = &[
    "Lovelace", "Ishiguro", "Le Guin", "Achebe", "Lem", "Butler", "Borges", "Morrison", "Chiang",
    "Jemisin",
];

/// A small deterministic generator (SplitMix64): the same file for the same row count.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        let i = usize::try_from(self.next() % xs.len() as u64).unwrap_or(0);
        xs[i]
    }
}

fn isbn13_from(n: u64) -> String {
    let body = format!("978{:09}", n % 1_000_000_000);
    let sum: u32 = body
        .bytes()
        .enumerate()
        .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
        .sum();
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn isbn10_from_13(isbn13: &str) -> String {
    let body = &isbn13[3..12];
    let sum: u32 = body
        .bytes()
        .zip((2..=10).rev())
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    let check = (11 - sum % 11) % 11;
    if check == 10 {
        format!("{body}X")
    } else {
        format!("{body}{check}")
    }
}

fn main() -> std::io::Result<()> {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let mut rng = Mix(rows);
    let out = std::io::stdout();
    let mut w = BufWriter::new(out.lock());
    writeln!(w, "{HEADER}")?;
    for i in 0..rows {
        // Real libraries' titles start with many different words; a word made of
        // syllables spreads them like real titles do (thousands of distinct openings).
        let opening: String = (0..2 + rng.next() % 2)
            .map(|_| rng.pick(SYLLABLES))
            .collect();
        let title = format!(
            "{}{} of {} {}",
            opening[..1].to_uppercase(),
            &opening[1..],
            rng.pick(WORDS),
            i
        );
        let (first, last) = (rng.pick(FIRST), rng.pick(LAST));
        let isbn13 = isbn13_from(rng.next());
        let isbn10 = isbn10_from_13(&isbn13);
        let rating = rng.next() % 6;
        let shelf = match rng.next() % 4 {
            0 => "to-read",
            1 => "currently-reading",
            _ => "read",
        };
        let read = shelf == "read";
        let year = 1950 + rng.next() % 75;
        let date_read = if read {
            format!("{year}/0{}/1{}", 1 + rng.next() % 9, rng.next() % 9)
        } else {
            String::new()
        };
        let review = if read && rng.next().is_multiple_of(3) {
            "\"Loved it.<br/><br/>The second half drags &amp; the ending is <i>perfect</i>.\""
        } else {
            ""
        };
        writeln!(
            w,
            "{id},\"{title}\",{first} {last},\"{last}, {first}\",,\"=\"\"{isbn10}\"\"\",\"=\"\"{isbn13}\"\"\",{rating},{avg}.{avgf},Tor,Paperback,{pages},{year},{year},{date_read},2020/01/0{added},\"{shelf}, favourites\",\"{shelf} (#{i}), favourites (#{i})\",{shelf},{review},,,{count},,,0,,,,,",
            id = 10_000_000 + i,
            avg = 3 + rng.next() % 2,
            avgf = rng.next() % 100,
            pages = 100 + rng.next() % 700,
            added = 1 + rng.next() % 9,
            count = u8::from(read),
        )?;
    }
    w.flush()
}
