//! Fuzz target: arbitrary bytes through the goodreads csv parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(GoodreadsCsv);
