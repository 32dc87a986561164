//! Goodreads library export (`goodreads_library_export.csv`), all three header variants.

use crate::csv_table::{CsvRow, CsvTable};
use crate::mapping::{add_identifiers, add_shelf, edition_if_any, pad_reads, status_from_word};
use crate::text::{
    People, Role, collapse_spaces, format_from_binding, html_to_text, parse_count, parse_datetime,
    parse_partial_date, parse_rating, series_from_title, split_list,
};
use crate::{ImportError, RowResult, Rows};
use bb_core::library::identifiers::isbn_identifiers;
use bb_core::library::{
    Edition, IdScheme, Identifier, ReadThrough, ReadingStatus, Review, SourceRecord,
};
use std::io::Read;

/// Column positions, found by header name once per file.
#[derive(Debug, Clone, Copy)]
struct Columns {
    book_id: Option<usize>,
    title: Option<usize>,
    author: Option<usize>,
    additional_authors: Option<usize>,
    isbn: Option<usize>,
    isbn13: Option<usize>,
    my_rating: Option<usize>,
    publisher: Option<usize>,
    binding: Option<usize>,
    pages: Option<usize>,
    year_published: Option<usize>,
    date_read: Option<usize>,
    date_added: Option<usize>,
    bookshelves: Option<usize>,
    exclusive_shelf: Option<usize>,
    my_review: Option<usize>,
    read_count: Option<usize>,
}

pub(crate) fn parse(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let table = CsvTable::open(reader)?;
    table.require("Title", &["Title"])?;
    table.require("Book Id", &["Book Id", "BookId", "Goodreads Book Id"])?;
    let c = Columns {
        book_id: table.column(&["Book Id", "BookId", "Goodreads Book Id"]),
        title: table.column(&["Title"]),
        author: table.column(&["Author", "Authors"]),
        additional_authors: table.column(&["Additional Authors"]),
        isbn: table.column(&["ISBN", "ISBN10"]),
        isbn13: table.column(&["ISBN13"]),
        my_rating: table.column(&["My Rating"]),
        publisher: table.column(&["Publisher"]),
        binding: table.column(&["Binding"]),
        pages: table.column(&["Number of Pages"]),
        year_published: table.column(&["Year Published"]),
        date_read: table.column(&["Date Read"]),
        date_added: table.column(&["Date Added"]),
        bookshelves: table.column(&["Bookshelves"]),
        exclusive_shelf: table.column(&["Exclusive Shelf"]),
        my_review: table.column(&["My Review"]),
        read_count: table.column(&["Read Count"]),
    };
    Ok(table.into_rows(move |row| map_row(&c, row)))
}

/// `Exclusive Shelf` gives the status; `Bookshelves` the other shelves. A custom exclusive
/// shelf that names no status (`waiting`) is kept as a shelf and leaves the status unknown.
fn shelves_and_status(rec: &mut SourceRecord, exclusive: Option<&str>, bookshelves: Option<&str>) {
    rec.status = exclusive.and_then(status_from_word);
    for shelf in bookshelves.map(|s| split_list(s, ",")).unwrap_or_default() {
        let is_exclusive = exclusive.is_some_and(|e| e.eq_ignore_ascii_case(&shelf));
        if !is_exclusive && status_from_word(&shelf).is_none() {
            add_shelf(&mut rec.shelves, &shelf);
        }
    }
    if let Some(e) = exclusive
        && rec.status.is_none()
    {
        add_shelf(&mut rec.shelves, e);
    }
}

fn map_row(c: &Columns, row: CsvRow) -> RowResult {
    let mut rec = SourceRecord {
        title: row.get(c.title).unwrap_or_default().to_string(),
        ..SourceRecord::default()
    };

    if let Some(id) = row.get(c.book_id) {
        if !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(row.error(format!("Book Id \"{id}\" is not a Goodreads book number")));
        }
        rec.external_id = Some(id.to_string());
        rec.identifiers
            .push(Identifier::new(IdScheme::Goodreads, id));
    }
    for col in [c.isbn13, c.isbn] {
        if let Some(v) = row.get(col) {
            add_identifiers(&mut rec.identifiers, isbn_identifiers(v));
        }
    }
    if rec.title.is_empty() && rec.identifiers.is_empty() {
        return Err(row.error("the row has neither a Title nor a Book Id"));
    }
    rec.series = series_from_title(&rec.title);

    let mut people = People::default();
    if let Some(a) = row.get(c.author) {
        people.add_with_suffix(a, Role::Author);
    }
    if let Some(list) = row.get(c.additional_authors) {
        for name in split_list(list, ",") {
            people.add_with_suffix(&name, Role::Author);
        }
    }
    people.fill_into(&mut rec);

    // `Average Rating` is the community's; only `My Rating` is the user's (0 = unrated).
    if let Some(r) = row.get(c.my_rating) {
        rec.rating = parse_rating(r, 5.0).map_err(|e| row.error(format!("My Rating: {e}")))?;
    }

    let binding = row.get(c.binding);
    rec.formats.extend(binding.and_then(format_from_binding));
    let year = match row.get(c.year_published) {
        Some(y) => Some(
            parse_partial_date(y)
                .ok_or_else(|| row.error(format!("Year Published \"{y}\" is not a year")))?,
        ),
        None => None,
    };
    rec.edition = edition_if_any(Edition {
        publisher: row.get(c.publisher).map(collapse_spaces),
        published: year,
        pages: row.get(c.pages).and_then(parse_count),
        binding: binding.map(ToString::to_string),
        ..Edition::default()
    });

    shelves_and_status(&mut rec, row.get(c.exclusive_shelf), row.get(c.bookshelves));

    let finished = match row.get(c.date_read) {
        Some(d) => Some(
            parse_partial_date(d)
                .ok_or_else(|| row.error(format!("Date Read \"{d}\" is not a date")))?,
        ),
        None => None,
    };
    if finished.is_some() {
        rec.reads.push(ReadThrough {
            started: None,
            finished,
        });
        if rec.status == Some(ReadingStatus::Read) {
            rec.status_at = row.get(c.date_read).and_then(parse_datetime);
        }
    }
    if let Some(n) = row.get(c.read_count) {
        let count: u64 = n
            .parse()
            .map_err(|_| row.error(format!("Read Count \"{n}\" is not a whole number")))?;
        pad_reads(&mut rec.reads, count);
    }
    if let Some(d) = row.get(c.date_added) {
        rec.added_at = Some(
            parse_datetime(d)
                .ok_or_else(|| row.error(format!("Date Added \"{d}\" is not a date")))?,
        );
    }

    if let Some(review) = row.get(c.my_review) {
        let text = html_to_text(review);
        if !text.is_empty() {
            rec.review = Some(Review { text, at: None });
        }
    }
    rec.raw = row.into_raw();
    Ok(rec)
}
