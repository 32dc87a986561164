//! Fuzz target: arbitrary bytes through the audible cli tsv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(AudibleCliTsv);
