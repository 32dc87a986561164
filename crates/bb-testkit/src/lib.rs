//! Dev-only test support: fake provider servers that speak the real protocols on loopback.

pub mod audible;
pub mod hardcover;
pub mod openlibrary;
