//! Fuzz target: arbitrary bytes through the libation json parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(LibationJson);
