//! Open Library (openlibrary.org) as a `public_feed` provider, per the protocol dossier
//! `shared/providers/openlibrary.md`: the user's public reading log
//! (`/people/{username}/books/{shelf}.json`, four shelves, paged), read without
//! credentials, mapped to the library model (`mapping.rs`), sent with an identifying
//! `User-Agent` and through the shared request budget (`client.rs`).

pub mod client;
pub mod mapping;
pub mod provider;

pub use client::{OpenLibraryClient, OpenLibraryConfig, ReadingLog};
pub use provider::OpenLibraryProvider;

use std::time::Duration;

/// The provider id, used for budgets, logs and connections.
pub const PROVIDER_ID: &str = "openlibrary";

/// Where the user makes their reading log public (dossier §2: "public reading log").
pub const PRIVACY_PAGE: &str = "https://openlibrary.org/account/privacy";

/// The reading-log shelves, in the order a sync reads them (dossier §2).
pub const SHELVES: [&str; 4] = [
    "want-to-read",
    "currently-reading",
    "already-read",
    "stopped-reading",
];

/// What went wrong reading a reading log, sorted by what the caller does next. No variant
/// carries a response body beyond Open Library's own short `detail`.
#[derive(Debug, thiserror::Error)]
pub enum OpenLibraryError {
    #[error(
        "\"{0}\" is not an Open Library username: give the name from your profile address, openlibrary.org/people/NAME"
    )]
    InvalidUsername(String),
    #[error(
        "Open Library has no user \"{0}\": check the name in your profile address, openlibrary.org/people/NAME"
    )]
    UnknownUser(String),
    #[error(
        "{0}'s reading log on Open Library is private: turn on \"public reading log\" in your Open Library privacy settings ({PRIVACY_PAGE}), then connect again"
    )]
    PrivateLog(String),
    #[error("Open Library's rate limit was reached; retry in {}s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("bookbridge's request budget for Open Library is used up; retry in {}s", .retry_after.as_secs())]
    BudgetExhausted { retry_after: Duration },
    #[error("Open Library is unavailable: {0}")]
    Outage(String),
    #[error("Open Library rejected the request: {0}")]
    Rejected(String),
}

impl OpenLibraryError {
    /// A stable, greppable code.
    pub fn code(&self) -> &'static str {
        match self {
            OpenLibraryError::InvalidUsername(_) => "openlibrary.invalid_username",
            OpenLibraryError::UnknownUser(_) => "openlibrary.unknown_user",
            OpenLibraryError::PrivateLog(_) => "openlibrary.private_log",
            OpenLibraryError::RateLimited { .. } => "openlibrary.rate_limited",
            OpenLibraryError::BudgetExhausted { .. } => "openlibrary.budget_exhausted",
            OpenLibraryError::Outage(_) => "openlibrary.outage",
            OpenLibraryError::Rejected(_) => "openlibrary.rejected",
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            OpenLibraryError::RateLimited { retry_after }
            | OpenLibraryError::BudgetExhausted { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// The username from what the user typed: surrounding space, a leading `@`, or a pasted
/// profile address (`https://openlibrary.org/people/NAME/books/…`) are accepted.
///
/// Dossier unsure: it does not say which characters a username may hold. Open Library's
/// own names are lowercase letters, digits, `-`, `_` and `.`; anything else is refused
/// here, because the name goes into a URL path and must not be able to change it.
pub fn normalize_username(typed: &str) -> Result<String, OpenLibraryError> {
    let t = typed.trim();
    let t = match t.find("/people/") {
        Some(at) => t[at + "/people/".len()..].split(['/', '?', '#']).next(),
        None => Some(t.trim_start_matches('@')),
    }
    .unwrap_or_default();
    let ok = !t.is_empty()
        && t.len() <= 100
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && t.chars().any(|c| c.is_ascii_alphanumeric());
    if ok {
        Ok(t.to_owned())
    } else {
        Err(OpenLibraryError::InvalidUsername(
            typed.trim().chars().take(100).collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_from_names_handles_and_profile_addresses() {
        assert_eq!(normalize_username(" mira ").unwrap(), "mira");
        assert_eq!(normalize_username("@mira_s").unwrap(), "mira_s");
        assert_eq!(
            normalize_username("https://openlibrary.org/people/mira.s/books/want-to-read").unwrap(),
            "mira.s"
        );
        for bad in ["", "..", "a/b", "a b", "x?y", "../admin", "名前"] {
            assert!(normalize_username(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn errors_say_what_to_do() {
        let e = OpenLibraryError::PrivateLog("mira".into());
        assert!(e.to_string().contains("public reading log"), "{e}");
        assert!(
            OpenLibraryError::UnknownUser("x".into())
                .to_string()
                .contains("openlibrary.org/people/")
        );
    }
}
