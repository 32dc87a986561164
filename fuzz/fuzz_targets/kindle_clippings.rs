//! Fuzz target: arbitrary bytes through the kindle clippings parser, detection included.
#![no_main]

include!("common.rs");

parser_target!(KindleClippings);
