//! The provider port: what a provider module declares about itself and the calls the
//! connections use-case makes to link an account, keep its credentials fresh, sync it,
//! write back and disconnect. Credentials cross this boundary as opaque [`SecretBytes`]
//! the provider module encodes and decodes itself; the use-case only seals and stores them.

use crate::library::SourceRecord;
use crate::library::service::RowFailure;
use crate::secret::{SecretBytes, SecretString};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// How an account is linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthKind {
    Oauth2,
    ApiToken,
    Device,
    PublicFeed,
    File,
}

/// What a provider can bring in (or, for `WriteBack`, send out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    Books,
    Purchases,
    Shelves,
    Ratings,
    Reviews,
    Progress,
    Highlights,
    Covers,
    Metadata,
    WriteBack,
}

/// An outbound budget: `capacity` requests at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RateLimit {
    pub capacity: u32,
    pub per_minute: u32,
}

/// A provider module's declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProviderInfo {
    pub id: String,
    pub name: String,
    pub auth_kind: AuthKind,
    pub capabilities: Vec<Capability>,
    /// Whether bookbridge can tell the provider to revoke access on disconnect.
    pub can_revoke: bool,
    /// Whether this instance has what the provider needs (client id, …) to be used.
    pub configured: bool,
    /// The API roots in use (configurable so self-hosters and tests can point elsewhere).
    pub base_urls: Vec<String>,
    pub rate_limit: Option<RateLimit>,
    /// Where the user makes a token (token providers) or manages access.
    pub help_url: Option<String>,
}

/// The account a connection is linked to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExternalAccount {
    pub external_id: String,
    pub display_name: Option<String>,
}

/// What the user gave to start linking.
#[derive(Debug, Default)]
pub struct BeginConnect {
    /// The personal token (`api_token` providers), already trimmed by nobody: providers
    /// normalise it themselves (a pasted `Bearer ` prefix, …).
    pub token: Option<SecretString>,
    /// The public account name (`public_feed` providers).
    pub username: Option<String>,
    /// Provider-specific options (Audible's `marketplace`, …).
    pub params: BTreeMap<String, String>,
    /// Where the provider must send the browser back (OAuth).
    pub redirect_uri: String,
}

/// An account linked: who it is and what to keep.
#[derive(Debug)]
pub struct Linked {
    pub account: ExternalAccount,
    /// Provider-encoded credentials; `None` for public feeds.
    pub credentials: Option<SecretBytes>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    /// A note shown to the user after linking (e.g. the device name Amazon will list).
    pub notice: Option<String>,
}

/// The result of starting to link.
#[derive(Debug)]
pub enum Begin {
    /// Linked at once (token and feed providers).
    Linked(Linked),
    /// The user must visit `authorize_url`; `pending` is kept sealed until they come back,
    /// and `state` (when the provider uses one) finds this connection on the callback.
    Redirect {
        authorize_url: String,
        state: Option<SecretString>,
        pending: SecretBytes,
    },
}

/// How the user came back from the provider.
#[derive(Debug)]
pub enum CompleteInput<'a> {
    /// The raw query string of `/oauth/callback/{provider}`.
    Callback { query: &'a str },
    /// An address the user pasted (Audible's `maplanding` page).
    PastedUrl(&'a str),
}

/// Fresh credentials from a refresh.
#[derive(Debug)]
pub struct Refreshed {
    pub credentials: SecretBytes,
    pub expires_at: Option<DateTime<Utc>>,
}

/// What one sync call read.
#[derive(Debug, Default)]
pub struct SyncBatch {
    pub records: Vec<SourceRecord>,
    /// Items the provider returned that could not be mapped.
    pub failures: Vec<RowFailure>,
    /// True when `records` is the provider's complete listing, so that anything missing
    /// from it is gone (never set after a failed or partial read).
    pub complete: bool,
    /// Source keys the provider reported withdrawn (incremental providers).
    pub withdrawn: Vec<String>,
    /// Where the next incremental run starts.
    pub cursor: Option<String>,
}

/// A change the user made in bookbridge, for providers with write-back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WriteBack {
    /// The source key of the provider's own record for this item.
    pub source_key: String,
    pub status: Option<String>,
    /// Stars 0.5–5; `Some(None)` clears the rating.
    pub rating: Option<Option<f64>>,
    /// Fraction 0–1.
    pub progress: Option<f64>,
    /// The edition's length as the library knows it (pages, audio seconds), for providers
    /// that take progress in those units and may not know the length themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pages: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio_seconds: Option<u64>,
}

/// What a write-back did: the fields sent, and those left out with the reason (a progress
/// fraction with no known length to turn it into pages, …), for the job's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteBackReport {
    pub pushed: Vec<String>,
    pub skipped: Vec<SkippedField>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedField {
    pub field: String,
    pub reason: String,
}

/// Why a provider call failed, sorted by what the connection should do next.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The credentials are no longer accepted (`invalid_grant`, 401 on a token, revoked
    /// device): the user must reconnect; retrying would not help.
    #[error("{message}")]
    NeedsReauth { code: String, message: String },
    /// An outage, a rate limit or a garbage answer: try again later.
    #[error("{message}")]
    Transient {
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// The user's input was wrong (a malformed token, a pasted address with no code, …).
    #[error("{message}")]
    Invalid { code: String, message: String },
    /// The provider refused in a way retrying will not change.
    #[error("{message}")]
    Rejected { code: String, message: String },
    /// The provider does not do this (refresh on a token provider, …).
    #[error("{0}")]
    Unsupported(&'static str),
}

impl ProviderError {
    pub fn code(&self) -> &str {
        match self {
            ProviderError::NeedsReauth { code, .. }
            | ProviderError::Transient { code, .. }
            | ProviderError::Invalid { code, .. }
            | ProviderError::Rejected { code, .. } => code,
            ProviderError::Unsupported(_) => "unsupported",
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Transient { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// One provider module. Implementations hold their configuration (base URLs, client id,
/// the outbound budget) and no per-user state: every call gets the credentials it needs.
#[async_trait]
pub trait Provider: Send + Sync + std::fmt::Debug {
    fn info(&self) -> ProviderInfo;

    /// Starts linking an account.
    async fn begin(&self, request: BeginConnect) -> Result<Begin, ProviderError>;

    /// Finishes a [`Begin::Redirect`] with what the user brought back.
    async fn complete(
        &self,
        pending: &SecretBytes,
        input: CompleteInput<'_>,
        redirect_uri: &str,
    ) -> Result<Linked, ProviderError> {
        let _ = (pending, input, redirect_uri);
        Err(ProviderError::Unsupported(
            "this provider links without a redirect",
        ))
    }

    /// Exchanges the stored credentials for fresh ones.
    async fn refresh(&self, credentials: &SecretBytes) -> Result<Refreshed, ProviderError> {
        let _ = credentials;
        Err(ProviderError::Unsupported(
            "this provider has nothing to refresh",
        ))
    }

    /// Reads the account's library: everything when `cursor` is `None`, else what changed.
    async fn sync(
        &self,
        account: &ExternalAccount,
        credentials: Option<&SecretBytes>,
        cursor: Option<&str>,
    ) -> Result<SyncBatch, ProviderError>;

    /// Tells the provider to forget these credentials (RFC 7009 or device deregistration).
    async fn revoke(&self, credentials: &SecretBytes) -> Result<(), ProviderError> {
        let _ = credentials;
        Err(ProviderError::Unsupported(
            "this provider cannot revoke access",
        ))
    }

    /// Pushes one change made in bookbridge (providers with `WriteBack`) and says what was
    /// sent and what was left out.
    async fn write_back(
        &self,
        credentials: &SecretBytes,
        change: &WriteBack,
    ) -> Result<WriteBackReport, ProviderError> {
        let _ = (credentials, change);
        Err(ProviderError::Unsupported(
            "this provider has no write-back",
        ))
    }
}
