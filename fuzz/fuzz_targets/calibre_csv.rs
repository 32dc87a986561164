//! Fuzz target: arbitrary bytes through the calibre csv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(CalibreCsv);
