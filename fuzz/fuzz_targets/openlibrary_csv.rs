//! Fuzz target: arbitrary bytes through the openlibrary csv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(OpenlibraryCsv);
