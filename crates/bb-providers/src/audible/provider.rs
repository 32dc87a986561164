//! Audible as a connections [`Provider`]: link by Amazon sign-in in the user's browser and
//! a pasted maplanding address (device registration), sync the library in full or by
//! `State-Token` with positions, finished dates and the wishlist (read whole on every run and
//! compared with the last run's, kept in the cursor), refresh the access token, and
//! deregister this one device on disconnect.
//!
//! Every API request is first taken from the request budget given with
//! [`AudibleProvider::with_budget`] (in a deployment the database-backed shared budget, so
//! that all instances together keep to [`RATE_LIMIT`]). The library decides a run: if it
//! cannot be read, the run fails (transient, or `needs_reauth` on 401/403). The side parts
//! (positions, finished dates, wishlist) are retried in the run; one that still fails is
//! named among the run's failures, the titles land anyway, and the cursor stays where the
//! run started so that the next run reads them again.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bb_core::clock::Clock;
use bb_core::connections::{
    AuthKind, Begin, BeginConnect, Capability, CompleteInput, ExternalAccount, Linked, Provider,
    ProviderError, ProviderInfo, RateLimit, Refreshed, SyncBatch,
};
use bb_core::library::record::ReadingStatus;
use bb_core::library::service::RowFailure;
use bb_core::secret::SecretBytes;

use super::client::{AudibleClient, FinishedDates, POSITIONS_PER_CALL, RetryPolicy};
use super::credentials::DeviceCredentials;
use super::mapping::{apply_finished, apply_position};
use super::marketplace::Marketplace;
use super::register::{complete_sign_in, deregister};
use super::signin::{PendingSignIn, begin_sign_in};
use super::token::refresh_access_token;
use super::{AudibleConfig, AudibleError, PROVIDER_ID};
use crate::hardcover::RateBudget;

/// Be gentle (§10: no documented limits; 2–4 concurrent requests).
pub const RATE_LIMIT: RateLimit = RateLimit {
    capacity: 4,
    per_minute: 120,
};

/// Where users see (and can remove) the devices registered on their account.
pub const DEVICES_PAGE: &str = "https://www.amazon.com/hz/mycd/digital-console/devicesummary";

/// How long one API request may wait for the shared budget before the run gives up on
/// it (the library: the job is retried later; a side part: read on the next run).
pub const MAX_BUDGET_WAIT: Duration = Duration::from_mins(1);

#[derive(Debug, Clone)]
pub struct AudibleProvider {
    config: AudibleConfig,
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
    budget: Option<(Arc<dyn RateBudget>, Duration)>,
    retry: RetryPolicy,
}

impl AudibleProvider {
    /// A provider with no request budget (each sync still sends one request at a time)
    /// and the default [`RetryPolicy`]; see [`Self::with_budget`].
    pub fn new(config: AudibleConfig, http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self {
            config,
            http,
            clock,
            budget: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Every API request of every sync first takes one from `budget` (the database-backed
    /// [`SharedBudget`](crate::budget::SharedBudget) in a deployment, so that all instances
    /// together keep to [`RATE_LIMIT`]), waiting up to `max_wait` for it.
    #[must_use]
    pub fn with_budget(mut self, budget: Arc<dyn RateBudget>, max_wait: Duration) -> Self {
        self.budget = Some((budget, max_wait));
        self
    }

    /// Replaces the default in-run [`RetryPolicy`] of positions, finished dates and wishlist.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    fn client(&self, creds: DeviceCredentials) -> AudibleClient {
        let client = AudibleClient::new(
            self.http.clone(),
            self.config.clone(),
            Arc::clone(&self.clock),
            creds,
        )
        .with_retry(self.retry);
        match &self.budget {
            Some((budget, max_wait)) => client.with_budget(Arc::clone(budget), *max_wait),
            None => client,
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
        AudibleError::RateLimited { .. }
        | AudibleError::Outage { .. }
        | AudibleError::BudgetExhausted { .. } => ProviderError::Transient {
            code,
            message,
            retry_after: e.retry_after(),
        },
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

/// An item that could not be mapped, as its failure message (the ASIN first, when known).
fn failure_message((asin, reason): (Option<String>, String)) -> String {
    match asin {
        Some(asin) => format!("{asin}: {reason}"),
        None => reason,
    }
}

/// What a run leaves for the next: Audible's `State-Token`, and the wishlist's ASINs as
/// that run read them (the wishlist has no incremental form, so the next run compares).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct SyncCursor {
    state: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wishlist: Option<BTreeSet<String>>,
}

impl SyncCursor {
    /// A cursor from before the wishlist was kept is the bare `State-Token`.
    fn parse(raw: &str) -> Self {
        serde_json::from_str(raw).unwrap_or_else(|_| Self {
            state: raw.to_owned(),
            wishlist: None,
        })
    }

    fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| self.state.clone())
    }
}

/// A side part of a sync (positions, finished dates, wishlist) that failed after its
/// retries: noted in `missing` for the run's record, unless the failure means the device is
/// no longer accepted, which ends the run (`needs_reauth`) like a library failure does.
fn side_part_failed(
    e: &AudibleError,
    part: &str,
    missing: &mut Vec<String>,
) -> Result<(), ProviderError> {
    if e.needs_reauth() || matches!(e, AudibleError::Stored(_) | AudibleError::Client) {
        return Err(map_error(e));
    }
    tracing::warn!(provider = "audible", part, error = %e, "sync part not read; the next run reads it again");
    missing.push(format!(
        "Audible's {part} could not be read this time ({e}); the next sync tries again"
    ));
    Ok(())
}

/// The resume positions of this run's titles in progress, 25 ASINs a call. A call that
/// still fails after its retries ends the reading (positions already read are kept).
async fn read_positions(
    client: &AudibleClient,
    records: &[bb_core::library::record::SourceRecord],
    missing: &mut Vec<String>,
) -> Result<HashMap<String, super::ListeningPosition>, ProviderError> {
    let in_progress: Vec<String> = records
        .iter()
        .filter(|r| r.status == Some(ReadingStatus::Reading))
        .filter_map(|r| r.external_id.clone())
        .collect();
    let mut positions = HashMap::new();
    for chunk in in_progress.chunks(POSITIONS_PER_CALL) {
        match client.positions(chunk).await {
            Ok(list) => positions.extend(list.into_iter().map(|p| (p.asin.clone(), p))),
            Err(e) => {
                side_part_failed(&e, "listening positions", missing)?;
                break;
            }
        }
    }
    Ok(positions)
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
        let client = self.client(creds);
        let previous = cursor.map(SyncCursor::parse);
        let library = match &previous {
            Some(c) => client.library_since(&c.state).await,
            None => client.library_full().await,
        }
        .map_err(|e| map_error(&e))?;
        let mut records = library.records;
        let mut failed: Vec<String> = library.failures.into_iter().map(failure_message).collect();
        // Parts of the run that could not be read: the titles still land, each missing part
        // is named in the run's failures, and the cursor stays where this run started so
        // that the next run reads the same titles and the missing parts again.
        let mut missing = Vec::new();

        let positions = read_positions(&client, &records, &mut missing).await?;
        // The library says *whether* a title is finished, the stats only *when* (§8.3):
        // asked only when this run has a finished title to date.
        let finished = if records
            .iter()
            .any(|r| r.status == Some(ReadingStatus::Read))
        {
            match client.finished_dates().await {
                Ok(f) => f,
                Err(e) => {
                    side_part_failed(&e, "finished dates", &mut missing)?;
                    FinishedDates::new()
                }
            }
        } else {
            FinishedDates::new()
        };
        for record in &mut records {
            let Some(asin) = record.external_id.as_deref() else {
                continue;
            };
            if record.status == Some(ReadingStatus::Read) {
                if let Some(at) = finished.get(asin) {
                    apply_finished(record, *at);
                }
            } else if let Some(p) = positions.get(asin) {
                apply_position(record, p);
            }
        }

        // The wishlist has no incremental form: it is read on every run. A full run lists it
        // whole (its `complete` lets titles taken off it go); an incremental run compares it
        // with the ASINs the last run saw (kept in the cursor), adds only titles new to it
        // and withdraws those taken off it, except titles this run's library brings: one
        // bought off the wishlist is the owned record now (same ASIN, same source key).
        let in_library: HashSet<String> = records
            .iter()
            .filter_map(|r| r.external_id.clone())
            .collect();
        let mut withdrawn = library.withdrawn;
        let mut wishlist_now: Option<BTreeSet<String>> = None;
        match client.wishlist().await {
            Ok(wishlist) => {
                failed.extend(wishlist.failures.into_iter().map(failure_message));
                let seen = previous.as_ref().and_then(|c| c.wishlist.as_ref());
                let now: BTreeSet<String> = wishlist
                    .records
                    .iter()
                    .filter_map(|r| r.external_id.clone())
                    .filter(|a| !in_library.contains(a))
                    .collect();
                if let Some(seen) = seen {
                    withdrawn.extend(
                        seen.iter()
                            .filter(|a| !now.contains(*a) && !in_library.contains(*a))
                            .cloned(),
                    );
                }
                records.extend(wishlist.records.into_iter().filter(|r| {
                    r.external_id.as_ref().is_none_or(|a| {
                        !in_library.contains(a) && seen.is_none_or(|s| !s.contains(a))
                    })
                }));
                wishlist_now = Some(now);
            }
            Err(e) => side_part_failed(&e, "wishlist", &mut missing)?,
        }
        let partial = !missing.is_empty();
        // Items are numbered 1, 2, … across the library and the wishlist; a missing part is
        // row 0, as it is no item.
        let mut failures = RowFailure::numbered(failed);
        failures.extend(
            missing
                .into_iter()
                .map(|message| RowFailure { row: 0, message }),
        );
        Ok(SyncBatch {
            records,
            failures,
            // A full run reads every library page (any error aborts above) and the whole
            // wishlist; an incremental one only the changes, so nothing may be inferred from
            // what is missing (the wishlist's removals are named in `withdrawn`).
            complete: cursor.is_none() && wishlist_now.is_some(),
            withdrawn,
            cursor: if partial {
                cursor.map(str::to_owned)
            } else {
                library.state_token.map(|state| {
                    SyncCursor {
                        state,
                        wishlist: wishlist_now,
                    }
                    .encode()
                })
            },
        })
    }

    async fn revoke(&self, credentials: &SecretBytes) -> Result<(), ProviderError> {
        let creds = Self::credentials(credentials)?;
        deregister(&self.http, &self.config, &*self.clock, &creds)
            .await
            .map_err(|e| map_error(&e))
    }
}
