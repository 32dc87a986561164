//! The library: what one source says about one book (`record`, and as it was received:
//! `raw`), identifiers parsed at the edge (`identifiers`), and how records become one
//! deduplicated library.

pub mod audible;
pub mod identifiers;
pub mod match_index;
pub mod matching;
pub mod normalize;
pub mod raw;
mod read_ahead;
pub mod record;
pub mod resolve;
pub mod service;
pub mod stored;
pub mod sync;
pub mod text;

pub use identifiers::{IdScheme, Identifier};
pub use raw::{Raw, RawColumns, RawRow};
pub use record::*;
