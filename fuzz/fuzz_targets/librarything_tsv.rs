//! Fuzz target: arbitrary bytes through the librarything tsv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(LibrarythingTsv);
