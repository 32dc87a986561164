//! Hardcover (hardcover.app): the personal-token GraphQL client, the mapping of
//! `user_books` to [`SourceRecord`](bb_core::library::record::SourceRecord)s and write-back,
//! all per the protocol dossier `shared/providers/hardcover.md`.
//!
//! The client keeps its own minimal reqwest client (no redirects, timeouts, User-Agent);
//! it should move onto the shared `crate::http` client once that lands.

pub mod budget;
pub mod client;
pub mod mapping;
pub mod provider;
mod wire;
pub mod write;

pub use budget::{RateBudget, TokenBucket, Wait};
pub use client::{Account, FullSync, HardcoverClient, HardcoverConfig, ItemFailure};
pub use mapping::map_user_book;
pub use provider::HardcoverProvider;
pub use write::{Change, Length, PushReport, RatingChange, push_change};

use bb_core::secret::SecretString;
use std::time::Duration;

/// The provider id, used for budgets, logs and connections.
pub const PROVIDER_ID: &str = "hardcover";

/// Where users create a token; named in the re-authentication message.
pub const TOKEN_PAGE: &str = "https://hardcover.app/account/api";

/// What went wrong talking to Hardcover, sorted by what the caller should do next:
/// `NeedsReauth` asks the user for a new token, `RateLimited`/`BudgetExhausted`/`Outage`
/// keep the connection active and retry later, `Rejected` is a bug or an API change.
/// No variant ever carries the token.
#[derive(Debug, thiserror::Error)]
pub enum HardcoverError {
    #[error("the pasted Hardcover token is empty or malformed")]
    InvalidToken,
    #[error("Hardcover refused the token ({reason}); create a new one at {TOKEN_PAGE}")]
    NeedsReauth { reason: String },
    #[error("Hardcover's rate limit was reached; retry in {}s", .retry_after.as_secs())]
    RateLimited { retry_after: Duration },
    #[error("bookbridge's request budget for Hardcover is used up; retry in {}s", .retry_after.as_secs())]
    BudgetExhausted { retry_after: Duration },
    #[error("Hardcover is unavailable: {0}")]
    Outage(String),
    #[error("Hardcover rejected the request: {message}")]
    Rejected {
        code: Option<String>,
        message: String,
    },
    #[error("Hardcover returned no account for this token")]
    NoAccount,
    #[error("this change cannot be written to Hardcover: {0}")]
    Unsupported(&'static str),
}

impl HardcoverError {
    /// A stable, greppable code.
    pub fn code(&self) -> &'static str {
        match self {
            HardcoverError::InvalidToken => "hardcover.invalid_token",
            HardcoverError::NeedsReauth { .. } => "hardcover.needs_reauth",
            HardcoverError::RateLimited { .. } => "hardcover.rate_limited",
            HardcoverError::BudgetExhausted { .. } => "hardcover.budget_exhausted",
            HardcoverError::Outage(_) => "hardcover.outage",
            HardcoverError::Rejected { .. } => "hardcover.rejected",
            HardcoverError::NoAccount => "hardcover.no_account",
            HardcoverError::Unsupported(_) => "hardcover.unsupported",
        }
    }

    /// How long to wait before trying again, when waiting is what helps.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            HardcoverError::RateLimited { retry_after }
            | HardcoverError::BudgetExhausted { retry_after } => Some(*retry_after),
            _ => None,
        }
    }

    /// True when the connection should stay `active` with a retry scheduled.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            HardcoverError::RateLimited { .. }
                | HardcoverError::BudgetExhausted { .. }
                | HardcoverError::Outage(_)
        )
    }
}

/// The token from whatever the user pasted: surrounding whitespace, an `Authorization:`
/// header name and any number of `Bearer ` prefixes (any case, any spacing) are removed,
/// because Hardcover's token page shows the value already prefixed in some UIs.
/// `None` when nothing token-like is left.
pub fn normalize_token(pasted: &str) -> Option<SecretString> {
    let mut t = pasted.trim();
    if let Some(rest) = strip_prefix_ci(t, "authorization:") {
        t = rest.trim_start();
    }
    while let Some(rest) = strip_prefix_ci(t, "bearer") {
        if rest.is_empty() {
            return None;
        }
        if !rest.starts_with(char::is_whitespace) {
            break;
        }
        t = rest.trim_start();
    }
    if t.is_empty() || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    Some(SecretString::from(t.to_owned()))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::secret::ExposeSecret;

    fn norm(s: &str) -> Option<String> {
        normalize_token(s).map(|t| t.expose_secret().to_owned())
    }

    #[test]
    fn bearer_prefixes_are_stripped_in_any_case_and_spacing() {
        assert_eq!(norm("abc.def"), Some("abc.def".into()));
        assert_eq!(norm("Bearer abc.def"), Some("abc.def".into()));
        assert_eq!(norm("  bEaReR    abc.def \n"), Some("abc.def".into()));
        assert_eq!(norm("Bearer\tBearer abc"), Some("abc".into()));
        assert_eq!(norm("Authorization: Bearer abc"), Some("abc".into()));
        // A token that merely starts with the letters is left alone.
        assert_eq!(norm("bearerabc"), Some("bearerabc".into()));
    }

    #[test]
    fn empty_or_spaced_tokens_are_refused() {
        assert_eq!(norm(""), None);
        assert_eq!(norm("Bearer "), None);
        assert_eq!(norm("Bearer"), None);
        assert_eq!(norm("two words"), None);
    }

    #[test]
    fn errors_say_what_to_do_and_carry_codes() {
        let e = HardcoverError::NeedsReauth {
            reason: "expired".into(),
        };
        assert!(e.to_string().contains(TOKEN_PAGE));
        assert!(!e.is_transient());
        assert!(HardcoverError::Outage("503".into()).is_transient());
        assert_eq!(
            HardcoverError::RateLimited {
                retry_after: Duration::from_secs(3)
            }
            .retry_after(),
            Some(Duration::from_secs(3))
        );
    }
}
