//! Fuzz target: arbitrary bytes through the calibre opf parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(CalibreOpf);
