//! OpenLibrary reading-log export (`OpenLibrary_ReadingLog.csv`): the old three-column
//! header (`Work Id,Edition Id,Bookshelf`) and the current 15-column one.
//!
//! The old header has no title. Such rows still import, with `title` set to `""` and the
//! OpenLibrary work and edition ids, so metadata resolution can fill the title later from
//! the ids (formats.md §2.7: "The IDs are OpenLibrary keys, so no search is needed").

use crate::csv_table::{CsvRow, CsvTable};
use crate::mapping::status_from_word;
use crate::text::{People, Role, parse_rating, split_list};
use crate::{ImportError, RowResult, Rows};
use bb_core::library::identifiers::parse_openlibrary_key as ol_key;
use bb_core::library::{IdScheme, Identifier, SourceRecord};
use std::io::Read;

#[derive(Debug, Clone, Copy)]
struct Columns {
    work: Option<usize>,
    edition: Option<usize>,
    title: Option<usize>,
    authors: Option<usize>,
    shelf: Option<usize>,
    rating: Option<usize>,
}

pub(crate) fn parse(reader: Box<dyn Read + Send>) -> Result<Rows, ImportError> {
    let table = CsvTable::open(reader)?;
    table.require("Work ID", &["Work ID", "Work Id"])?;
    let c = Columns {
        work: table.column(&["Work ID", "Work Id"]),
        edition: table.column(&["Edition ID", "Edition Id"]),
        title: table.column(&["Title"]),
        authors: table.column(&["Authors", "Author(s)", "Author"]),
        shelf: table.column(&["Bookshelf"]),
        rating: table.column(&["My Ratings", "My Rating", "Rating"]),
    };
    Ok(table.into_rows(move |row| map_row(&c, row)))
}

fn map_row(c: &Columns, row: CsvRow) -> RowResult {
    let mut rec = SourceRecord {
        title: row.get(c.title).unwrap_or_default().to_string(),
        ..SourceRecord::default()
    };
    if let Some(w) = row.get(c.work) {
        let key = ol_key(w, 'W').ok_or_else(|| {
            row.error(format!(
                "Work ID \"{w}\" is not an OpenLibrary work id (OL…W)"
            ))
        })?;
        rec.external_id = Some(key.clone());
        rec.identifiers
            .push(Identifier::new(IdScheme::OpenlibraryWork, key));
    }
    if let Some(e) = row.get(c.edition) {
        let key = ol_key(e, 'M').ok_or_else(|| {
            row.error(format!(
                "Edition ID \"{e}\" is not an OpenLibrary edition id (OL…M)"
            ))
        })?;
        rec.identifiers
            .push(Identifier::new(IdScheme::OpenlibraryEdition, key));
    }
    if rec.identifiers.is_empty() && rec.title.is_empty() {
        return Err(row.error("the row has neither a Work ID nor a Title"));
    }
    let mut people = People::default();
    for name in row
        .get(c.authors)
        .map(|s| split_list(s, "|"))
        .unwrap_or_default()
    {
        people.add_with_suffix(&name, Role::Author);
    }
    people.fill_into(&mut rec);
    if let Some(s) = row.get(c.shelf) {
        rec.status =
            Some(status_from_word(s).ok_or_else(|| {
                row.error(format!("Bookshelf \"{s}\" is not a reading-log shelf"))
            })?);
    }
    if let Some(r) = row.get(c.rating) {
        rec.rating = parse_rating(r, 5.0).map_err(|e| row.error(format!("My Ratings: {e}")))?;
    }
    rec.raw = row.into_raw();
    Ok(rec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert_eq!(ol_key("OL102749W", 'W').as_deref(), Some("OL102749W"));
        assert_eq!(
            ol_key("/books/OL7798182M", 'M').as_deref(),
            Some("OL7798182M")
        );
        assert_eq!(ol_key("OL7798182M", 'W'), None);
        assert_eq!(ol_key("OLW", 'W'), None);
    }
}
