//! Text shared by the parsers. The helpers live in `bb_core::library::text` so that the live
//! provider mappings (Audible) read values exactly as the importers do.

pub use bb_core::library::text::*;
