//! Fuzz target: arbitrary bytes through the audible cli csv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(AudibleCliCsv);
