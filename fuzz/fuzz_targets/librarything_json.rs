//! Fuzz target: arbitrary bytes through the librarything json parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(LibrarythingJson);
