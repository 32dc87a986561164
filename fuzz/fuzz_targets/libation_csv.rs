//! Fuzz target: arbitrary bytes through the libation csv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(LibationCsv);
