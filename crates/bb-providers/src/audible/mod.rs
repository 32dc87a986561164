//! Audible (no public API): external-browser sign-in, virtual device registration, signed
//! API calls, library/progress/wishlist sync and deregistration, per the protocol dossier
//! `shared/providers/audible.md`.
//!
//! The flow the connections framework drives:
//! 1. [`begin_sign_in`] → Amazon's sign-in URL for the user, and a [`PendingSignIn`] to seal.
//! 2. The user pastes the `maplanding` address; [`complete_sign_in`] extracts the code
//!    ([`parse_maplanding`]) and registers a device → [`Registration`] (credentials to seal,
//!    device and customer info to show).
//! 3. [`AudibleClient`] signs every call with the device key and syncs the library
//!    (all pages, then incrementally by `State-Token`), positions, finished dates, wishlist.
//! 4. [`refresh_access_token`] when the access token is needed and due; [`deregister`] on
//!    disconnect (this device only, never all).
//!
//! [`AudibleProvider`] wires these into the connections port (`bb_core::connections`).
//!
//! No value of this module's types prints a secret: tokens, the adp token, the device key
//! and cookies are [`SecretString`]s, and every error names what was wrong without them.

pub mod client;
pub mod credentials;
pub mod maplanding;
pub mod mapping;
pub mod marketplace;
pub mod provider;
pub mod register;
pub mod signin;
pub mod signing;
pub mod token;
mod wire;

pub use client::{
    AudibleClient, FinishedDates, LibraryPage, LibrarySync, ListeningPosition, RetryPolicy,
    WishlistSync,
};
pub use credentials::{CustomerInfo, DeviceCredentials, DeviceInfo};
pub use maplanding::{AuthorizationCode, parse_maplanding};
pub use mapping::{WISHLIST_SHELF, map_library_item, map_wishlist_product};
pub use marketplace::Marketplace;
pub use provider::AudibleProvider;
pub use register::{Registration, complete_sign_in, deregister, register_device};
pub use signin::{PendingSignIn, SignInStart, begin_sign_in};
pub use token::{RefreshedToken, refresh_access_token};

use bb_core::secret::SecretString;
use std::time::Duration;

/// The provider id, used for connections and logs.
pub const PROVIDER_ID: &str = "audible";

/// Hosts, per marketplace by default. Tests and unusual setups replace them (the issue's
/// `[providers.audible]` settings); the sign-in URL shown to the user is never affected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudibleConfig {
    /// Instead of `https://api.amazon.{tld}` (register, token, deregister). No trailing `/`.
    pub auth_base_url: Option<String>,
    /// Instead of `https://api.audible.{tld}` (library, positions, stats, wishlist).
    pub api_base_url: Option<String>,
}

impl AudibleConfig {
    pub fn auth_base(&self, marketplace: Marketplace) -> String {
        self.auth_base_url.as_deref().map_or_else(
            || marketplace.auth_base_url(),
            |u| u.trim_end_matches('/').to_owned(),
        )
    }

    pub fn api_base(&self, marketplace: Marketplace) -> String {
        self.api_base_url.as_deref().map_or_else(
            || marketplace.api_base_url(),
            |u| u.trim_end_matches('/').to_owned(),
        )
    }
}

/// What went wrong, sorted by what the caller does next. No variant carries a secret.
#[derive(Debug, thiserror::Error)]
pub enum AudibleError {
    /// The pasted address is not Amazon's `/ap/maplanding` page.
    #[error(
        "that is not the address of Amazon's sign-in result page: after signing in, copy the \
         whole address of the blank page Amazon shows (it contains /ap/maplanding) and paste it"
    )]
    NotMaplanding,
    /// A maplanding address without the authorization code.
    #[error(
        "the pasted address has no authorization code (openid.oa2.authorization_code): the \
         sign-in did not finish; sign in again and paste the address of the final page"
    )]
    NoCode,
    /// Amazon refused the code at registration: used already, expired, or for another
    /// sign-in attempt.
    #[error(
        "Amazon did not accept the sign-in code (it is single-use and expires within minutes): \
         start connecting again and paste the new address right after signing in{}",
        .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default()
    )]
    CodeRejected { reason: Option<String> },
    /// The device was deregistered, the refresh token revoked, or a signature refused:
    /// the user must connect again.
    #[error("Audible no longer accepts this device ({reason}); connect Audible again")]
    NeedsReauth { reason: String },
    /// 429, or 503 with `Retry-After`.
    #[error("Audible asked us to slow down{}", retry_hint(*.retry_after))]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx (also the HTML maintenance page), timeouts, broken connections.
    #[error("Audible is unavailable ({reason}); will retry{}", retry_hint(*.retry_after))]
    Outage {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// bookbridge's own shared request budget for Audible is spent (nothing was sent).
    #[error("bookbridge's request budget for Audible is used up; retry in {}s", .retry_after.as_secs())]
    BudgetExhausted { retry_after: Duration },
    /// A success status with a body that is not what the protocol promises.
    #[error("Audible sent an unreadable answer to {what}: {problem}")]
    Garbage { what: &'static str, problem: String },
    /// A 4xx other than auth and throttling: our request is wrong or the API changed.
    #[error("Audible rejected the request to {what} (HTTP {status}){}", .message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected {
        what: &'static str,
        status: u16,
        message: Option<String>,
    },
    /// Sealed data that cannot be read back (a bug or a format change, never user input).
    #[error("stored Audible data is unreadable: {0}")]
    Stored(String),
    /// The HTTP client could not be built.
    #[error("could not build the outbound HTTP client")]
    Client,
}

fn retry_hint(retry_after: Option<Duration>) -> String {
    retry_after.map_or_else(String::new, |d| format!(" in {}s", d.as_secs()))
}

impl AudibleError {
    /// A stable, greppable code.
    pub fn code(&self) -> &'static str {
        match self {
            AudibleError::NotMaplanding => "audible.not_maplanding",
            AudibleError::NoCode => "audible.no_code",
            AudibleError::CodeRejected { .. } => "audible.code_rejected",
            AudibleError::NeedsReauth { .. } => "audible.needs_reauth",
            AudibleError::RateLimited { .. } => "audible.rate_limited",
            AudibleError::Outage { .. } => "audible.outage",
            AudibleError::BudgetExhausted { .. } => "audible.budget_exhausted",
            AudibleError::Garbage { .. } => "audible.garbage",
            AudibleError::Rejected { .. } => "audible.rejected",
            AudibleError::Stored(_) => "audible.stored",
            AudibleError::Client => "audible.client",
        }
    }

    /// True when the connection stays `active` and the job is retried later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            AudibleError::RateLimited { .. }
                | AudibleError::Outage { .. }
                | AudibleError::BudgetExhausted { .. }
        )
    }

    /// True when the connection must go to `needs_reauth`.
    pub fn needs_reauth(&self) -> bool {
        matches!(self, AudibleError::NeedsReauth { .. })
    }

    /// The provider's `Retry-After`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AudibleError::RateLimited { retry_after }
            | AudibleError::Outage { retry_after, .. } => *retry_after,
            AudibleError::BudgetExhausted { retry_after } => Some(*retry_after),
            _ => None,
        }
    }
}

/// A secret from a string the caller owns (keeps call sites short).
pub(crate) fn secret(s: impl Into<String>) -> SecretString {
    SecretString::from(s.into())
}
