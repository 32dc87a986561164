//! Fuzz target: arbitrary bytes through the audible api json parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(AudibleApiJson);
