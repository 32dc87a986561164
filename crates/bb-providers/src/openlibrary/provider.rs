//! Open Library as a connections [`Provider`] of kind `public_feed`: linked by username
//! (checked at once: unknown user and private log are the user's to fix), full sync of the
//! four reading-log shelves, nothing stored and nothing to revoke.

use super::client::{OpenLibraryClient, OpenLibraryConfig};
use super::{OpenLibraryError, PROVIDER_ID, normalize_username};
use crate::hardcover::RateBudget;
use async_trait::async_trait;
use bb_core::clock::Clock;
use bb_core::connections::{
    AuthKind, Begin, BeginConnect, Capability, ExternalAccount, Linked, Provider, ProviderError,
    ProviderInfo, RateLimit, SyncBatch,
};
use bb_core::library::service::RowFailure;
use bb_core::secret::SecretBytes;
use std::sync::Arc;

/// Anonymous API-style requests are limited to 180 a minute per IP (§1, from the nginx
/// config; production may tune it). 100 a minute leaves room for anything else on the
/// same address, such as cover fetches by browsers behind the same NAT.
pub const RATE_LIMIT: RateLimit = RateLimit {
    capacity: 10,
    per_minute: 100,
};

#[derive(Debug, Clone)]
pub struct OpenLibraryProvider {
    client: OpenLibraryClient,
    rate_limit: RateLimit,
}

impl OpenLibraryProvider {
    pub fn new(
        config: OpenLibraryConfig,
        http: reqwest::Client,
        budget: Arc<dyn RateBudget>,
        clock: Arc<dyn Clock>,
        rate_limit: RateLimit,
    ) -> Self {
        Self {
            client: OpenLibraryClient::new(http, config, budget, clock),
            rate_limit,
        }
    }
}

/// What an Open Library failure means for a connection that is already linked: a log made
/// private or a user gone needs the user (reconnect, or make the log public again);
/// limits and outages are retried with backoff and leave the connection active.
pub fn map_error(e: &OpenLibraryError) -> ProviderError {
    let code = e.code().to_owned();
    let message = e.to_string();
    match e {
        OpenLibraryError::InvalidUsername(_) => ProviderError::Invalid { code, message },
        OpenLibraryError::UnknownUser(_) | OpenLibraryError::PrivateLog(_) => {
            ProviderError::NeedsReauth { code, message }
        }
        OpenLibraryError::RateLimited { .. }
        | OpenLibraryError::BudgetExhausted { .. }
        | OpenLibraryError::Outage(_) => ProviderError::Transient {
            code,
            message,
            retry_after: e.retry_after(),
        },
        OpenLibraryError::Rejected(_) => ProviderError::Rejected { code, message },
    }
}

#[async_trait]
impl Provider for OpenLibraryProvider {
    fn info(&self) -> ProviderInfo {
        let config = self.client.config();
        ProviderInfo {
            id: PROVIDER_ID.into(),
            name: "Open Library".into(),
            auth_kind: AuthKind::PublicFeed,
            capabilities: vec![Capability::Books, Capability::Shelves, Capability::Covers],
            can_revoke: false,
            configured: true,
            base_urls: vec![config.base_url.clone(), config.covers_url.clone()],
            rate_limit: Some(self.rate_limit),
            help_url: Some(super::PRIVACY_PAGE.into()),
        }
    }

    async fn begin(&self, request: BeginConnect) -> Result<Begin, ProviderError> {
        let typed = request.username.ok_or_else(|| ProviderError::Invalid {
            code: "openlibrary.username_missing".into(),
            message: "give your Open Library username (from your profile address, openlibrary.org/people/NAME)".into(),
        })?;
        let username = normalize_username(&typed).map_err(|e| map_error(&e))?;
        // At link time an unknown user or a private log is the user's input to fix, and
        // nothing is stored: answer it as invalid input, not as a lost connection.
        self.client
            .check_user(&username)
            .await
            .map_err(|e| match e {
                OpenLibraryError::UnknownUser(_) | OpenLibraryError::PrivateLog(_) => {
                    ProviderError::Invalid {
                        code: e.code().into(),
                        message: e.to_string(),
                    }
                }
                other => map_error(&other),
            })?;
        Ok(Begin::Linked(Linked {
            account: ExternalAccount {
                external_id: username.clone(),
                display_name: Some(username),
            },
            credentials: None,
            scopes: Vec::new(),
            expires_at: None,
            notice: None,
        }))
    }

    async fn sync(
        &self,
        account: &ExternalAccount,
        _credentials: Option<&SecretBytes>,
        _cursor: Option<&str>,
    ) -> Result<SyncBatch, ProviderError> {
        let log = self
            .client
            .reading_log(&account.external_id)
            .await
            .map_err(|e| map_error(&e))?;
        Ok(SyncBatch {
            records: log.records,
            failures: RowFailure::numbered(log.failures),
            // The reading log has no "changed since": every run is a full listing, and
            // complete unless a shelf came up short of its `numFound`.
            complete: log.complete,
            withdrawn: Vec::new(),
            cursor: None,
        })
    }
}
