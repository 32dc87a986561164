//! Fuzz target: arbitrary bytes through the storygraph csv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(StorygraphCsv);
