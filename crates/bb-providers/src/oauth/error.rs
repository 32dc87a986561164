//! `OAuthError`: what went wrong talking to a provider's token, revocation or userinfo
//! endpoint, sorted by what the caller must do next.
//!
//! The split that matters (issue 4, "Tokens"): [`OAuthError::InvalidGrant`] means the user must
//! reconnect and nothing should retry; [`OAuthError::Outage`] and
//! [`OAuthError::RateLimited`] mean the provider is having trouble and the connection stays
//! active with a retry scheduled. Messages never contain a token, a secret or a response body.

use std::time::Duration;

use crate::http::OutageKind;

/// A failed exchange with an OAuth endpoint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    /// `invalid_grant` (RFC 6749 5.2): the code, refresh token or verifier is wrong, used,
    /// expired or revoked. Needs re-authorisation; retrying cannot help and, with rotating
    /// refresh tokens, may make things worse.
    #[error("the provider no longer accepts this authorisation; the account must be reconnected")]
    InvalidGrant { description: Option<String> },
    /// `invalid_client` or a bare 401 from the token endpoint: bookbridge's client id or
    /// secret is wrong. An operator problem: reconnecting would not help the user.
    #[error("the provider refused bookbridge's client credentials")]
    InvalidClient,
    /// A 401 from a resource endpoint (userinfo): the access token expired or was revoked.
    /// Refresh, then try once more.
    #[error("the provider refused the access token")]
    InvalidToken,
    /// Another RFC 6749 5.2 / RFC 7009 2.2.1 error code (`invalid_request`, `invalid_scope`,
    /// `unauthorized_client`, `unsupported_grant_type`, `unsupported_token_type`, …).
    #[error("the provider refused the request ({code})")]
    Provider {
        code: String,
        description: Option<String>,
    },
    /// 429, or 503 with `Retry-After`: retry no sooner than `retry_after`.
    #[error("the provider asks us to slow down")]
    RateLimited { retry_after: Option<Duration> },
    /// 5xx, timeout, connection failure, or an answer that is not what the protocol promises.
    #[error("the provider is unavailable or answered nonsense")]
    Outage(OutageKind),
    /// A 4xx without a protocol error body.
    #[error("the provider refused the request (HTTP {status})")]
    Rejected { status: u16 },
    /// The provider has no such endpoint configured.
    #[error("this provider has no {0} endpoint")]
    NotSupported(&'static str),
}

impl OAuthError {
    /// A stable, greppable code for logs, audit events and `last_error`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidGrant { .. } => "oauth.invalid_grant",
            Self::InvalidClient => "oauth.invalid_client",
            Self::InvalidToken => "oauth.invalid_token",
            Self::Provider { .. } => "oauth.provider_error",
            Self::RateLimited { .. } => "oauth.rate_limited",
            Self::Outage(_) => "oauth.outage",
            Self::Rejected { .. } => "oauth.rejected",
            Self::NotSupported(_) => "oauth.not_supported",
        }
    }

    /// The connection must be re-authorised by the user (state `needs_reauth`, no retries).
    pub fn needs_reauth(&self) -> bool {
        matches!(self, Self::InvalidGrant { .. })
    }

    /// The provider is in trouble, not the credentials: keep the connection active and retry
    /// later (after [`OAuthError::retry_after`] when given).
    ///
    /// Careful with refreshes: an outage *after* the provider processed a rotating refresh
    /// may have consumed the refresh token. Retrying it is still the only option, but do it
    /// under the connection's refresh lease, never in a tight loop.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::RateLimited { .. } | Self::Outage(_))
    }

    /// The provider's `Retry-After`, when it gave one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after } => *retry_after,
            _ => None,
        }
    }
}
