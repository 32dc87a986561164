//! bookbridge's domain: the library model, identifiers and merging, local accounts,
//! and the ports (traits) that storage, the vault and provider clients implement.
//! No SQL and no HTTP live here.

pub mod accounts;
pub mod audit;
pub mod clock;
pub mod connections;
pub mod error;
pub mod ids;
pub mod library;
pub mod ports;
pub mod secret;
