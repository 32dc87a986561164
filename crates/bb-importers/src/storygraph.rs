//! StoryGraph library export CSV, old (`Author`, `ISBN`) and new (`Authors`, `ISBN/UID`)
//! headers, with every read-through from `Dates Read`.

use crate::csv_table::{CsvRow, CsvTable};
use crate::mapping::{add_identifiers, add_shelf, edition_if_any, pad_reads, status_from_word};
use crate::text::{
    People, Role, collapse_spaces, format_from_binding, parse_datetime, parse_partial_date,
    parse_rating, split_list,
};
use crate::{ImportError, RowResult, Rows};
use bb_core::library::identifiers::classify_book_id;
use bb_core::library::{Edition, IdScheme, PartialDate, ReadThrough, Review, SourceRecord};
use std::io::Read;

#[derive(Debug, Clone, Copy)]
struct Columns {
    title: Option<usize>,
    authors: Option<usize>,
    contributors: Option<usize>,
    isbn: Option<usize>,
    format: Option<usize>,
    status: Option<usize>,
    date_added: Option<usize>,
    last_date_read: Option<usize>,
    dates_read: Option<usize>,
    read_count: Option<usize>,
    rating: Option<usize>,
    review: Option<usize>,
    tags: Option<usize>,
}

pub(crate) fn parse(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let table = CsvTable::open(reader)?;
    table.require("Title", &["Title"])?;
    table.require("Read Status", &["Read Status"])?;
    let c = Columns {
        title: table.column(&["Title"]),
        // `Author` became `Authors` in 2021, `ISBN` became `ISBN/UID` in 2022.
        authors: table.column(&["Authors", "Author"]),
        contributors: table.column(&["Contributors"]),
        isbn: table.column(&["ISBN/UID", "ISBN", "UID"]),
        format: table.column(&["Format"]),
        status: table.column(&["Read Status"]),
        date_added: table.column(&["Date Added"]),
        last_date_read: table.column(&["Last Date Read"]),
        dates_read: table.column(&["Dates Read"]),
        read_count: table.column(&["Read Count"]),
        rating: table.column(&["Star Rating"]),
        review: table.column(&["Review"]),
        tags: table.column(&["Tags"]),
    };
    Ok(table.into_rows(move |row| map_row(&c, row)))
}

fn map_row(c: &Columns, row: CsvRow) -> RowResult {
    let mut rec = SourceRecord {
        title: row.get(c.title).unwrap_or_default().to_string(),
        ..SourceRecord::default()
    };
    if let Some(id) = row.get(c.isbn) {
        // Not always an ISBN: an ASIN or StoryGraph's own id also appear.
        add_identifiers(
            &mut rec.identifiers,
            classify_book_id(id, Some(IdScheme::Storygraph)),
        );
        rec.external_id = rec.identifiers.first().map(|i| i.value.clone());
    }
    if rec.title.is_empty() && rec.identifiers.is_empty() {
        return Err(row.error("the row has neither a Title nor an ISBN/UID"));
    }

    let mut people = People::default();
    for name in row
        .get(c.authors)
        .map(|s| split_list(s, ","))
        .unwrap_or_default()
    {
        people.add_with_suffix(&name, Role::Author);
    }
    // Contributors without a role are not authors of the work.
    for name in row
        .get(c.contributors)
        .map(|s| split_list(s, ","))
        .unwrap_or_default()
    {
        people.add_with_suffix(&name, Role::Other);
    }
    people.fill_into(&mut rec);

    let format = row.get(c.format);
    rec.formats.extend(format.and_then(storygraph_format));
    rec.edition = edition_if_any(Edition {
        binding: format.map(ToString::to_string),
        ..Edition::default()
    });

    if let Some(s) = row.get(c.status) {
        rec.status = Some(
            status_from_word(s)
                .ok_or_else(|| row.error(format!("Read Status \"{s}\" is not a known status")))?,
        );
    }
    if let Some(r) = row.get(c.rating) {
        rec.rating = parse_rating(r, 5.0).map_err(|e| row.error(format!("Star Rating: {e}")))?;
    }
    if let Some(text) = row.get(c.review) {
        // StoryGraph reviews are plain text already: `<` is the user's own character.
        rec.review = Some(Review {
            text: text.replace("\r\n", "\n"),
            at: None,
        });
    }
    for tag in row
        .get(c.tags)
        .map(|s| split_list(s, ","))
        .unwrap_or_default()
    {
        add_shelf(&mut rec.shelves, &collapse_spaces(&tag));
    }
    if let Some(d) = row.get(c.date_added) {
        rec.added_at = Some(
            parse_datetime(d)
                .ok_or_else(|| row.error(format!("Date Added \"{d}\" is not a date")))?,
        );
    }

    if let Some(list) = row.get(c.dates_read) {
        for entry in split_list(list, ",") {
            let read = parse_read_range(&entry).ok_or_else(|| {
                row.error(format!(
                    "Dates Read \"{entry}\" is not a date or a date range"
                ))
            })?;
            if !rec.reads.contains(&read) {
                rec.reads.push(read);
            }
        }
    }
    if let Some(d) = row.get(c.last_date_read) {
        let last = parse_partial_date(d)
            .ok_or_else(|| row.error(format!("Last Date Read \"{d}\" is not a date")))?;
        if !rec.reads.iter().any(|r| r.finished == Some(last)) {
            rec.reads.push(ReadThrough {
                started: None,
                finished: Some(last),
            });
        }
    }
    if let Some(n) = row.get(c.read_count) {
        let count: u64 = n
            .parse()
            .map_err(|_| row.error(format!("Read Count \"{n}\" is not a whole number")))?;
        pad_reads(&mut rec.reads, count);
    }
    rec.raw = row.into_raw();
    Ok(rec)
}

/// StoryGraph's `Format` words: `audio`, `digital`, `paperback`, `hardcover`.
fn storygraph_format(raw: &str) -> Option<bb_core::library::Format> {
    format_from_binding(raw)
}

/// One `Dates Read` entry: `2021/01/05-2021/02/01` (a read-through), `2021/01/05-` (started,
/// not finished), `-2021/02/01`, or a lone date, which is a finish with no start.
fn parse_read_range(entry: &str) -> Option<ReadThrough> {
    let entry = entry.trim();
    let (start, end) = split_range(entry);
    let parse = |s: &str| -> Option<Option<PartialDate>> {
        let s = s.trim();
        if s.is_empty() {
            Some(None)
        } else {
            parse_partial_date(s).map(Some)
        }
    };
    let (started, finished) = (parse(start)?, parse(end)?);
    (started.is_some() || finished.is_some()).then_some(ReadThrough { started, finished })
}

/// Splits a range on its dash. With `/` dates any `-` is the range dash; ISO dates carry
/// their own dashes, so there the range dash is the one after a full `YYYY-MM-DD`.
fn split_range(entry: &str) -> (&str, &str) {
    if entry.contains('/') {
        return entry.split_once('-').unwrap_or(("", entry));
    }
    let b = entry.as_bytes();
    if b.len() > 10 && b[10] == b'-' {
        return (&entry[..10], &entry[11..]);
    }
    if let Some(rest) = entry.strip_suffix('-') {
        return (rest, "");
    }
    if entry.len() > 1 && entry.starts_with('-') && entry[1..].contains('-') {
        return ("", &entry[1..]);
    }
    ("", entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iso(r: &ReadThrough) -> (Option<String>, Option<String>) {
        (
            r.started.map(|d| d.to_iso()),
            r.finished.map(|d| d.to_iso()),
        )
    }

    #[test]
    fn read_ranges() {
        let r = parse_read_range("2021/01/05-2021/02/01").unwrap();
        assert_eq!(
            iso(&r),
            (Some("2021-01-05".into()), Some("2021-02-01".into()))
        );
        let r = parse_read_range("2021/01/05-").unwrap();
        assert_eq!(iso(&r), (Some("2021-01-05".into()), None));
        let r = parse_read_range("2021/09/14").unwrap();
        assert_eq!(iso(&r), (None, Some("2021-09-14".into())));
        let r = parse_read_range("2021-01-05-2021-02-01").unwrap();
        assert_eq!(
            iso(&r),
            (Some("2021-01-05".into()), Some("2021-02-01".into()))
        );
        let r = parse_read_range("-2021/02/01").unwrap();
        assert_eq!(iso(&r), (None, Some("2021-02-01".into())));
        assert!(parse_read_range("soon").is_none());
        assert!(parse_read_range("-").is_none());
    }
}
