//! Fuzz target: arbitrary bytes through the audible cli json parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(AudibleCliJson);
