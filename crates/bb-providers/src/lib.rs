//! Provider clients: the shared outbound HTTP client (`http`), OAuth 2 (`oauth`), and one
//! folder per provider with its client, private wire types and mapping to the core model
//! (`hardcover`, `audible`, `openlibrary`).

pub mod audible;
pub mod budget;
pub mod hardcover;
pub mod http;
pub mod oauth;
pub mod openlibrary;
