//! Audible as a connections [`Provider`]: link by Amazon sign-in in the user's browser and
//! a pasted maplanding address (device registration), sync the library in full or by
//! `State-Token` with positions, finished dates and (on full runs) the wishlist, refresh the
//! access token, and deregister this one device on disconnect.

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use bb_core::clock::Clock;
use bb_core::connections::{
    AuthKind, Begin, BeginConnect, Capability, CompleteInput, ExternalAccount, Linked, Provider,
    ProviderError, ProviderInfo, RateLimit, Refreshed, SyncBatch,
};
use bb_core::library::record::ReadingStatus;
use bb_core::library::service::RowFailure;
use bb_core::secret::SecretBytes;

use super::client::AudibleClient;
use super::credentials::DeviceCredentials;
use super::mapping::{apply_finished, apply_position};
use super::marketplace::Marketplace;
use super::register::{complete_sign_in, deregister};
use super::signin::{PendingSignIn, begin_sign_in};
use super::token::refresh_access_token;
use super::{AudibleConfig, AudibleError, PROVIDER_ID};

/// Be gentle (§10: no documented limits; 2–4 concurrent requests).
pub const RATE_LIMIT: RateLimit = RateLimit {
    capacity: 4,
    per_minute: 120,
};

/// Where users see (and can remove) the devices registered on their account.
pub const DEVICES_PAGE: &str = "https://www.amazon.com/hz/mycd/digital-console/devicesummary";

#[derive(Debug, Clone)]
pub struct AudibleProvider {
    config: AudibleConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl AudibleProvider {
    pub fn new(config: AudibleConfig, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            http,
            clock,
        }
    }

    fn credentials(sealed: &SecretBytes) -> Result<DeviceCredentials, ProviderError> {
        DeviceCredentials::from_sealed(sealed.expose()).map_err(|e| map_error(&e))
    }
}

/// What an Audible failure means for a connection.
pub fn map_error(e: &AudibleError) -> ProviderError {
    let code = e.code().to_owned();
    let message = e.to_string();
    match e {
        AudibleError::NotMaplanding | AudibleError::NoCode | AudibleError::CodeRejected { .. } => {
            ProviderError::Invalid { code, message }
        }
        AudibleError::NeedsReauth { .. } | AudibleError::Stored(_) => {
            ProviderError::NeedsReauth { code, message }
        }
        AudibleError::RateLimited { .. } | AudibleError::Outage { .. } => {
            ProviderError::Transient {
                code,
                message,
                retry_after: e.retry_after(),
            }
        }
        // A garbage answer is usually a broken proxy or a maintenance page with a 200:
        // worth another try later, never a reason to drop the connection.
        AudibleError::Garbage { .. } => ProviderError::Transient {
            code,
            message,
            retry_after: None,
        },
        AudibleError::Rejected { .. } | AudibleError::Client => {
            ProviderError::Rejected { code, message }
        }
    }
}

fn failures(list: Vec<(Option<String>, String)>, start: usize) -> Vec<RowFailure> {
    list.into_iter()
        .enumerate()
        .map(|(i, (asin, reason))| RowFailure {
            row: u64::try_from(start + i + 1).unwrap_or(u64::MAX),
            message: match asin {
                Some(asin) => format!("{asin}: {reason}"),
                None => reason,
            },
        })
        .collect()
}

#[async_trait]
impl Provider for AudibleProvider {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: PROVIDER_ID.into(),
            name: "Audible".into(),
            auth_kind: AuthKind::Device,
            capabilities: vec![
                Capability::Books,
                Capability::Purchases,
                Capability::Shelves,
                Capability::Ratings,
                Capability::Reviews,
                Capability::Progress,
                Capability::Covers,
                Capability::Metadata,
            ],
            can_revoke: true,
            configured: true,
            base_urls: vec![
                self.config
                    .auth_base_url
                    .clone()
                    .unwrap_or_else(|| "https://api.amazon.{tld}".into()),
                self.config
                    .api_base_url
                    .clone()
                    .unwrap_or_else(|| "https://api.audible.{tld}".into()),
            ],
            rate_limit: Some(RATE_LIMIT),
            help_url: Some(DEVICES_PAGE.into()),
        }
    }

    async fn begin(&self, request: BeginConnect) -> Result<Begin, ProviderError> {
        let code = request.params.get("marketplace").map_or("", String::as_str);
        let marketplace = Marketplace::from_code(code).ok_or_else(|| {
            let known: Vec<&str> = Marketplace::ALL.iter().map(|m| m.country_code()).collect();
            ProviderError::Invalid {
                code: "audible.marketplace".into(),
                message: format!(
                    "choose the Audible store of your account as \"marketplace\": one of {}",
                    known.join(", ")
                ),
            }
        })?;
        let start = begin_sign_in(marketplace);
        Ok(Begin::Redirect {
            authorize_url: start.url.to_string(),
            state: None,
            pending: start.pending.to_sealable(),
        })
    }

    async fn complete(
        &self,
        pending: &SecretBytes,
        input: CompleteInput<'_>,
        _redirect_uri: &str,
    ) -> Result<Linked, ProviderError> {
        let CompleteInput::PastedUrl(pasted) = input else {
            return Err(ProviderError::Invalid {
                code: "audible.paste_url".into(),
                message: "Audible is connected by pasting the address of the page Amazon shows \
                          after signing in"
                    .into(),
            });
        };
        let pending = PendingSignIn::from_sealed(pending.expose()).map_err(|e| map_error(&e))?;
        let registration =
            complete_sign_in(&self.http, &self.config, &*self.clock, &pending, pasted)
                .await
                .map_err(|e| map_error(&e))?;
        let c = &registration.credentials;
        // One connection per account *and store*: the same Amazon account has a different
        // library in each marketplace (§1), so `us` and `uk` may both be connected.
        let account_id = c
            .customer_info
            .user_id
            .clone()
            .unwrap_or_else(|| c.device_serial.clone());
        let person = c
            .customer_info
            .name
            .clone()
            .or_else(|| c.customer_info.given_name.clone());
        Ok(Linked {
            account: ExternalAccount {
                external_id: format!("{account_id}/{}", c.marketplace.country_code()),
                display_name: Some(match person {
                    Some(p) => format!("{p} ({})", c.marketplace.name()),
                    None => c.marketplace.name().to_owned(),
                }),
            },
            credentials: Some(c.to_sealable()),
            scopes: Vec::new(),
            expires_at: Some(c.access_expires_at),
            notice: Some(format!(
                "Amazon lists bookbridge among your devices as \u{201c}{}\u{201d} ({}); removing \
                 it there disconnects bookbridge.",
                registration.device_name(),
                c.marketplace.name()
            )),
        })
    }

    async fn refresh(&self, credentials: &SecretBytes) -> Result<Refreshed, ProviderError> {
        let mut creds = Self::credentials(credentials)?;
        let token = refresh_access_token(&self.http, &self.config, &*self.clock, &creds)
            .await
            .map_err(|e| map_error(&e))?;
        token.apply(&mut creds);
        Ok(Refreshed {
            credentials: creds.to_sealable(),
            expires_at: Some(creds.access_expires_at),
        })
    }

    async fn sync(
        &self,
        _account: &ExternalAccount,
        credentials: Option<&SecretBytes>,
        cursor: Option<&str>,
    ) -> Result<SyncBatch, ProviderError> {
        let credentials = credentials.ok_or_else(|| ProviderError::NeedsReauth {
            code: "audible.no_device".into(),
            message: "the connection has no registered device; connect Audible again".into(),
        })?;
        let creds = Self::credentials(credentials)?;
        let client = AudibleClient::new(
            self.http.clone(),
            self.config.clone(),
            Arc::clone(&self.clock),
            creds,
        );
        let err = |e: AudibleError| map_error(&e);
        let library = match cursor {
            Some(token) => client.library_since(token).await,
            None => client.library_full().await,
        }
        .map_err(err)?;
        let mut records = library.records;

        let in_progress: Vec<String> = records
            .iter()
            .filter(|r| r.status == Some(ReadingStatus::Reading))
            .filter_map(|r| r.external_id.clone())
            .collect();
        let positions = client.positions(&in_progress).await.map_err(err)?;
        let finished = client.finished_dates().await.map_err(err)?;
        for record in &mut records {
            let Some(asin) = record.external_id.clone() else {
                continue;
            };
            if let Some(at) = finished.get(&asin) {
                apply_finished(record, *at);
            } else if let Some(p) = positions.iter().find(|p| p.asin == asin) {
                apply_position(record, p);
            }
        }

        let mut failures = failures(library.failures, 0);
        // The wishlist has no incremental form: read it on full runs, where `complete`
        // lets titles taken off it disappear. A wishlisted title that is also owned stays
        // only the owned record (same ASIN, same source key).
        if cursor.is_none() {
            let owned: HashSet<String> = records
                .iter()
                .filter_map(|r| r.external_id.clone())
                .collect();
            let wishlist = client.wishlist().await.map_err(err)?;
            failures.extend(self::failures(wishlist.failures, failures.len()));
            records.extend(
                wishlist
                    .records
                    .into_iter()
                    .filter(|r| r.external_id.as_ref().is_none_or(|a| !owned.contains(a))),
            );
        }
        Ok(SyncBatch {
            records,
            failures,
            // A full run reads every page (any error aborts above); an incremental one only
            // the changes, so nothing may be inferred from what is missing.
            complete: cursor.is_none(),
            withdrawn: library.withdrawn,
            cursor: library.state_token,
        })
    }

    async fn revoke(&self, credentials: &SecretBytes) -> Result<(), ProviderError> {
        let creds = Self::credentials(credentials)?;
        deregister(&self.http, &self.config, &*self.clock, &creds)
            .await
            .map_err(|e| map_error(&e))
    }
}
