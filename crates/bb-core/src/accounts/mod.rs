//! Local accounts: password policy and hashing, web sessions, personal access tokens and
//! login throttling, as use-cases over the store ports.

pub mod password;
pub mod service;
pub mod token;

pub use service::{AccountPolicy, Accounts, Authenticated, LoginOutcome};
