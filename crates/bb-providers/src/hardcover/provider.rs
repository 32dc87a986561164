//! Hardcover as a connections [`Provider`]: link with the user's personal token
//! (validated with `me`), full sync of `user_books`, and write-back of status, rating and
//! progress (a fraction turned into pages or seconds with the edition's length). Hardcover has no revocation endpoint: the user deletes the token on their
//! account page, which the UI says.

use super::client::{HardcoverClient, HardcoverConfig};
use super::write::{Change, Length, RatingChange, push_change};
use super::{HardcoverError, PROVIDER_ID, RateBudget, TOKEN_PAGE, normalize_token};
use async_trait::async_trait;
use bb_core::clock::Clock;
use bb_core::connections::{
    AuthKind, Begin, BeginConnect, Capability, ExternalAccount, Linked, Provider, ProviderError,
    ProviderInfo, RateLimit, SkippedField, SyncBatch, WriteBack, WriteBackReport,
};
use bb_core::library::record::{Position, Rating, ReadingStatus};
use bb_core::library::service::RowFailure;
use bb_core::secret::{ExposeSecret, SecretBytes};
use std::sync::Arc;

/// Hardcover's budget: a bucket of 10 refilled at 50 a minute (see `TokenBucket::hardcover`).
pub const RATE_LIMIT: RateLimit = RateLimit {
    capacity: 10,
    per_minute: 50,
};

#[derive(Debug, Clone)]
pub struct HardcoverProvider {
    config: HardcoverConfig,
    budget: Arc<dyn RateBudget>,
    clock: Arc<dyn Clock>,
    rate_limit: RateLimit,
}

impl HardcoverProvider {
    pub fn new(
        config: HardcoverConfig,
        budget: Arc<dyn RateBudget>,
        clock: Arc<dyn Clock>,
        rate_limit: RateLimit,
    ) -> Self {
        Self {
            config,
            budget,
            clock,
            rate_limit,
        }
    }

    fn client(&self, token: &str) -> Result<HardcoverClient, ProviderError> {
        HardcoverClient::new(
            &self.config,
            token,
            Arc::clone(&self.budget),
            Arc::clone(&self.clock),
        )
        .map_err(|e| map_error(&e))
    }

    fn token(credentials: &SecretBytes) -> Result<String, ProviderError> {
        String::from_utf8(credentials.expose().to_vec()).map_err(|_| ProviderError::NeedsReauth {
            code: "hardcover.credentials_unreadable".into(),
            message: format!("the stored token is unreadable; paste a new one from {TOKEN_PAGE}"),
        })
    }
}

/// What a Hardcover failure means for a connection.
pub fn map_error(e: &HardcoverError) -> ProviderError {
    let code = e.code().to_owned();
    let message = e.to_string();
    match e {
        HardcoverError::InvalidToken => ProviderError::Invalid { code, message },
        HardcoverError::NeedsReauth { .. } | HardcoverError::NoAccount => {
            ProviderError::NeedsReauth { code, message }
        }
        HardcoverError::RateLimited { .. }
        | HardcoverError::BudgetExhausted { .. }
        | HardcoverError::Outage(_) => ProviderError::Transient {
            code,
            message,
            retry_after: e.retry_after(),
        },
        HardcoverError::Rejected { .. } | HardcoverError::Unsupported(_) => {
            ProviderError::Rejected { code, message }
        }
    }
}

#[async_trait]
impl Provider for HardcoverProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: PROVIDER_ID.into(),
            name: "Hardcover".into(),
            auth_kind: AuthKind::ApiToken,
            capabilities: vec![
                Capability::Books,
                Capability::Shelves,
                Capability::Ratings,
                Capability::Reviews,
                Capability::Progress,
                Capability::Covers,
                Capability::Metadata,
                Capability::WriteBack,
            ],
            can_revoke: false,
            configured: true,
            base_urls: vec![self.config.base_url.clone()],
            rate_limit: Some(self.rate_limit),
            help_url: Some(TOKEN_PAGE.into()),
        }
    }

    async fn begin(&self, request: BeginConnect) -> Result<Begin, ProviderError> {
        let pasted = request.token.ok_or_else(|| ProviderError::Invalid {
            code: "hardcover.token_missing".into(),
            message: format!("paste your Hardcover API token (from {TOKEN_PAGE})"),
        })?;
        let token = normalize_token(pasted.expose_secret())
            .ok_or_else(|| map_error(&HardcoverError::InvalidToken))?;
        let client = self.client(token.expose_secret())?;
        let account = client.me().await.map_err(|e| match e {
            // At link time a refused token is the user's input, not a lost connection.
            HardcoverError::NeedsReauth { .. } | HardcoverError::NoAccount => {
                ProviderError::Invalid {
                    code: e.code().into(),
                    message: e.to_string(),
                }
            }
            other => map_error(&other),
        })?;
        Ok(Begin::Linked(Linked {
            account: ExternalAccount {
                external_id: account.id.to_string(),
                display_name: Some(account.username),
            },
            credentials: Some(SecretBytes::new(token.expose_secret().as_bytes().to_vec())),
            scopes: Vec::new(),
            expires_at: None,
            notice: None,
        }))
    }

    async fn sync(
        &self,
        account: &ExternalAccount,
        credentials: Option<&SecretBytes>,
        _cursor: Option<&str>,
    ) -> Result<SyncBatch, ProviderError> {
        let credentials = credentials.ok_or_else(|| ProviderError::NeedsReauth {
            code: "hardcover.no_token".into(),
            message: format!("the connection has no token; paste one from {TOKEN_PAGE}"),
        })?;
        let user_id: i64 = account
            .external_id
            .parse()
            .map_err(|_| ProviderError::Rejected {
                code: "hardcover.account".into(),
                message: "the linked Hardcover account id is not a number".into(),
            })?;
        let client = self.client(&Self::token(credentials)?)?;
        let full = client.full_sync(user_id).await.map_err(|e| map_error(&e))?;
        let failures =
            RowFailure::numbered(full.failures.into_iter().map(|f| match f.user_book_id {
                Some(id) => format!("user_book {id}: {}", f.reason),
                None => f.reason,
            }));
        Ok(SyncBatch {
            records: full.records,
            failures,
            // Every page was read (any error aborts the run above).
            complete: true,
            withdrawn: Vec::new(),
            cursor: None,
        })
    }

    async fn write_back(
        &self,
        credentials: &SecretBytes,
        change: &WriteBack,
    ) -> Result<WriteBackReport, ProviderError> {
        let user_book_id: i64 = change
            .source_key
            .parse()
            .map_err(|_| ProviderError::Rejected {
                code: "hardcover.source_key".into(),
                message: "this item has no Hardcover user_book id".into(),
            })?;
        let client = self.client(&Self::token(credentials)?)?;
        let hc = Change {
            status: change.status.as_deref().and_then(|s| {
                serde_json::from_value::<ReadingStatus>(serde_json::Value::String(s.to_owned()))
                    .ok()
            }),
            rating: change.rating.map(|r| match r.and_then(Rating::from_stars) {
                Some(r) => RatingChange::Set(r),
                None => RatingChange::Clear,
            }),
            // Hardcover takes pages or seconds; the fraction becomes one of those with the
            // edition's length, Hardcover's own or else the library's (`write.rs`).
            progress: change
                .progress
                .filter(|p| p.is_finite())
                .map(|p| Position::Percent(p.clamp(0.0, 1.0) * 100.0)),
            known_length: Length {
                pages: change.pages,
                audio_seconds: change.audio_seconds,
            },
        };
        let pushed = push_change(&client, user_book_id, &hc)
            .await
            .map_err(|e| map_error(&e))?;
        let mut report = WriteBackReport::default();
        for (field, sent) in [
            ("status", hc.status.is_some()),
            ("rating", hc.rating.is_some()),
            ("progress", hc.progress.is_some()),
        ] {
            if !sent {
                continue;
            }
            match pushed.skipped.iter().find(|(f, _)| *f == field) {
                Some((_, reason)) => report.skipped.push(SkippedField {
                    field: field.into(),
                    reason: reason.clone(),
                }),
                None => report.pushed.push(field.into()),
            }
        }
        Ok(report)
    }
}
