//! `Connections`: the connection lifecycle use-cases. Link an account (token, feed, OAuth
//! redirect or pasted URL), refresh its credentials one process at a time, sync it through
//! the merge engine with the connection as provenance, and disconnect it (revoke remotely,
//! delete the secrets, keep or remove exactly what it brought in).
//!
//! Credentials are sealed with the row and column in the associated data
//! (`connection/{id}/credentials`), so a ciphertext copied to another connection fails to
//! open. Nothing in this module logs, returns or formats a credential.

use super::model::{
    ConnectionRecord, ConnectionSettings, ConnectionState, ConnectionView, LastError, LastSync,
};
use super::provider::{
    Begin, BeginConnect, CompleteInput, ExternalAccount, Linked, Provider, ProviderError,
    ProviderInfo, WriteBack, WriteBackReport,
};
use crate::audit::{AuditEvent, NewAuditEntry};
use crate::clock::Clock;
use crate::error::{CoreError, CoreResult, StoreError};
use crate::ids::{ConnectionId, UserId};
use crate::library::service::Library;
use crate::ports::connections::Activation;
use crate::ports::{JobId, JobState, JobStore, NewJob, RunCounts, RunOutcome, Schedule, Sealer};
use crate::ports::{SealError, Store};
use crate::secret::{SecretBytes, SecretString};
use chrono::{DateTime, Utc};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// The job kind that syncs one connection; its key is [`sync_key`].
pub const SYNC_JOB_KIND: &str = "connection.sync";

/// The job kind that pushes one change made in bookbridge to one connection.
pub const WRITE_BACK_JOB_KIND: &str = "connection.write_back";

/// The job kind that retries a revocation the provider could not take at disconnect.
pub const REVOKE_JOB_KIND: &str = "connection.revoke";

/// Attempts at a revocation before the kept credentials are deleted anyway.
const REVOKE_ATTEMPTS: u32 = 5;

fn revoke_secret_name(id: ConnectionId) -> String {
    format!("connection/{id}/revoke")
}

/// How long a user has to finish an OAuth or pasted-URL flow.
pub const PENDING_TTL: Duration = Duration::from_mins(10);

/// The job and schedule key of a connection's sync: one active sync per connection.
pub fn sync_key(id: ConnectionId) -> String {
    format!("connection:{id}:sync")
}

/// Tunables, with the defaults users would expect.
#[derive(Debug, Clone)]
pub struct ConnectionsConfig {
    /// The base of every redirect URI (`BOOKBRIDGE_PUBLIC_URL`).
    pub public_url: String,
    /// Refresh this long before the access token expires.
    pub refresh_margin: Duration,
    /// Refresh connections whose credentials have not been refreshed for this long, so a
    /// refresh token that expires when unused stays alive.
    pub keepalive_after: Duration,
    /// Default time between scheduled syncs.
    pub sync_interval: Duration,
    /// Connect attempts per user and provider per hour.
    pub connect_per_hour: u32,
    /// Manual syncs per user per day.
    pub manual_syncs_per_day: u32,
    /// How long a refresher holds the lease; longer than the token client's timeout.
    pub lease_ttl: Duration,
    /// Attempts to commit refreshed credentials before giving up (the only copy of a
    /// rotated refresh token is in memory until then).
    pub commit_attempts: u32,
    /// Sync attempts before a job is dead.
    pub sync_max_attempts: u32,
}

impl Default for ConnectionsConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            refresh_margin: Duration::from_mins(5),
            keepalive_after: Duration::from_hours(24 * 7),
            sync_interval: Duration::from_hours(12),
            connect_per_hour: 5,
            manual_syncs_per_day: 30,
            lease_ttl: Duration::from_mins(1),
            commit_attempts: 5,
            sync_max_attempts: 5,
        }
    }
}

/// What the user asked to link.
#[derive(Debug, Default)]
pub struct ConnectRequest {
    pub provider: String,
    pub token: Option<SecretString>,
    pub username: Option<String>,
    pub params: BTreeMap<String, String>,
    /// A redirect URI other than `{public_url}/oauth/callback/{provider}`: the CLI's
    /// one-shot loopback listener (RFC 8252).
    pub redirect_uri: Option<String>,
}

/// A started (or, for token and feed providers, finished) link.
#[derive(Debug, Clone)]
pub struct Connected {
    pub connection: ConnectionView,
    /// Where to send the user (OAuth, device sign-in); never carries a secret of ours.
    pub authorize_url: Option<String>,
    pub notice: Option<String>,
}

/// Why a callback did not link anything; the connection (when known) carries it too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackFailure {
    pub connection: Option<ConnectionId>,
    pub code: String,
    pub message: String,
}

/// The outcome of a disconnect.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Disconnected {
    /// `Some(true)` revoked remotely, `Some(false)` tried and failed, `None` not possible.
    pub revoked: Option<bool>,
    /// The provider was unavailable: revocation will be retried (the credentials are kept
    /// sealed only for that, then deleted).
    pub revocation_retry: bool,
    /// Items whose data changed or disappeared because the account's data was removed.
    pub items_changed: usize,
}

/// One attempt of one sync, for the history.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct SyncRun {
    pub job_id: i64,
    pub attempt: u32,
    pub started: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    /// `succeeded`, `retry`, `failed`, `dead`, `lease_expired`; none while running.
    pub outcome: Option<String>,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
    pub error: Option<LastError>,
}

/// Why a sync run stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFailure {
    /// Try again later (outage, rate limit); the connection stays `active`.
    Retryable {
        code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Retrying will not help (needs re-authorisation, disconnected).
    Permanent { code: String, message: String },
}

#[derive(Debug)]
enum RefreshFailure {
    Provider(ProviderError),
    Core(CoreError),
}

impl From<CoreError> for RefreshFailure {
    fn from(e: CoreError) -> Self {
        RefreshFailure::Core(e)
    }
}

impl From<StoreError> for RefreshFailure {
    fn from(e: StoreError) -> Self {
        RefreshFailure::Core(e.into())
    }
}

/// The connection use-cases.
#[derive(Debug, Clone)]
pub struct Connections {
    store: Arc<dyn Store>,
    jobs: Arc<dyn JobStore>,
    sealer: Arc<dyn Sealer>,
    library: Arc<Library>,
    providers: Arc<Vec<Arc<dyn Provider>>>,
    clock: Arc<dyn Clock>,
    config: ConnectionsConfig,
    worker: String,
}

fn hash_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn seal_err(e: &SealError) -> CoreError {
    CoreError::Vault(e.to_string())
}

fn credentials_context(id: ConnectionId) -> String {
    format!("connection/{id}/credentials")
}

fn pending_context(id: ConnectionId) -> String {
    format!("connection/{id}/pending")
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Connections {
    #[allow(clippy::too_many_arguments)] // wiring: each is a distinct port
    pub fn new(
        store: Arc<dyn Store>,
        jobs: Arc<dyn JobStore>,
        sealer: Arc<dyn Sealer>,
        library: Arc<Library>,
        providers: Vec<Arc<dyn Provider>>,
        clock: Arc<dyn Clock>,
        config: ConnectionsConfig,
        worker: impl Into<String>,
    ) -> Self {
        Self {
            store,
            jobs,
            sealer,
            library,
            providers: Arc::new(providers),
            clock,
            config,
            worker: worker.into(),
        }
    }

    pub fn config(&self) -> &ConnectionsConfig {
        &self.config
    }

    /// Every provider this instance knows, configured or not.
    pub fn providers(&self) -> Vec<ProviderInfo> {
        self.providers.iter().map(|p| p.info()).collect()
    }

    fn provider(&self, id: &str) -> CoreResult<&Arc<dyn Provider>> {
        self.providers
            .iter()
            .find(|p| p.info().id == id)
            .ok_or(CoreError::NotFound("provider"))
    }

    /// The redirect URI registered with an OAuth provider: one callback path per provider
    /// (mix-up defence).
    pub fn redirect_uri(&self, provider: &str) -> String {
        format!(
            "{}/oauth/callback/{provider}",
            self.config.public_url.trim_end_matches('/')
        )
    }

    async fn audit(&self, user: Option<UserId>, event: AuditEvent, details: serde_json::Value) {
        let entry = NewAuditEntry {
            user_id: user,
            event,
            at: self.clock.now(),
            client_ip: None,
            details,
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, event = event.as_str(), "could not write an audit entry");
        }
    }

    async fn throttle(&self, key: &str, limit: u32, window_secs: i64) -> CoreResult<()> {
        let now = self.clock.now();
        let (hits, started) = self.store.hit(key, now, window_secs).await?;
        if hits > i64::from(limit) {
            let ends = started + chrono::Duration::seconds(window_secs);
            let retry_after_secs = u64::try_from((ends - now).num_seconds().max(1)).unwrap_or(1);
            return Err(CoreError::RateLimited { retry_after_secs });
        }
        Ok(())
    }

    /// Starts linking an account. Token and feed providers are linked at once; OAuth and
    /// device providers answer with the address to send the user to.
    pub async fn connect(
        &self,
        user: UserId,
        session_hash: Option<&str>,
        request: ConnectRequest,
    ) -> CoreResult<Connected> {
        let provider = Arc::clone(self.provider(&request.provider)?);
        let info = provider.info();
        if !info.configured {
            return Err(CoreError::InvalidInput(format!(
                "{} is not configured on this bookbridge instance",
                info.name
            )));
        }
        self.throttle(
            &format!("connect:{user}:{}", info.id),
            self.config.connect_per_hour,
            3600,
        )
        .await?;
        let begin = provider
            .begin(BeginConnect {
                token: request.token,
                username: request.username,
                params: request.params,
                redirect_uri: request
                    .redirect_uri
                    .unwrap_or_else(|| self.redirect_uri(&info.id)),
            })
            .await
            .map_err(|e| provider_input_error(&info, &e))?;
        let now = self.clock.now();
        match begin {
            Begin::Linked(linked) => {
                let record = match self.refuse_duplicate(user, &info, &linked.account).await? {
                    Some(existing) => existing,
                    None => self.store.create_connection(user, &info.id, now).await?,
                };
                let notice = linked.notice.clone();
                self.activate(&record, &info, linked).await?;
                let view = self.get(user, record.id).await?;
                Ok(Connected {
                    connection: view,
                    authorize_url: None,
                    notice,
                })
            }
            Begin::Redirect {
                authorize_url,
                state,
                pending,
            } => {
                let record = self.store.create_connection(user, &info.id, now).await?;
                let sealed = self
                    .sealer
                    .seal(user, &pending_context(record.id), pending.expose())
                    .await
                    .map_err(|e| seal_err(&e))?;
                let state_hash = state
                    .as_ref()
                    .map(|s| hash_hex(secrecy::ExposeSecret::expose_secret(s)));
                self.store
                    .set_pending(
                        record.id,
                        &sealed,
                        state_hash.as_deref(),
                        session_hash,
                        now + to_chrono(PENDING_TTL),
                        now,
                    )
                    .await?;
                let view = self.get(user, record.id).await?;
                Ok(Connected {
                    connection: view,
                    authorize_url: Some(authorize_url),
                    notice: None,
                })
            }
        }
    }

    /// Refuses a second live link to the same external account. A link to an account
    /// whose connection waits for reconnecting (`needs_reauth`, `error`) is that
    /// reconnection: the existing connection is returned, to receive the new credentials
    /// and keep its history and data.
    async fn refuse_duplicate(
        &self,
        user: UserId,
        info: &ProviderInfo,
        account: &ExternalAccount,
    ) -> CoreResult<Option<ConnectionRecord>> {
        let existing = self.store.list_connections(user).await?;
        let same = existing.into_iter().find(|c| {
            c.provider == info.id
                && c.state != ConnectionState::Disconnected
                && c.account.as_ref().map(|a| &a.external_id) == Some(&account.external_id)
        });
        match same {
            None => Ok(None),
            Some(c)
                if matches!(
                    c.state,
                    ConnectionState::NeedsReauth | ConnectionState::Error
                ) =>
            {
                Ok(Some(c))
            }
            Some(_) => Err(CoreError::Conflict(format!(
                "this {} account ({}) is already connected",
                info.name,
                account
                    .display_name
                    .as_deref()
                    .unwrap_or(&account.external_id)
            ))),
        }
    }

    /// Seals the credentials and makes the connection active, with its sync schedule.
    async fn activate(
        &self,
        record: &ConnectionRecord,
        info: &ProviderInfo,
        linked: Linked,
    ) -> CoreResult<()> {
        let now = self.clock.now();
        let sealed = match &linked.credentials {
            Some(c) => Some(
                self.sealer
                    .seal(record.user_id, &credentials_context(record.id), c.expose())
                    .await
                    .map_err(|e| seal_err(&e))?,
            ),
            None => None,
        };
        let activation = Activation {
            account: &linked.account,
            credentials: sealed.as_deref(),
            scopes: &linked.scopes,
            expires_at: linked.expires_at,
        };
        match self.store.activate(record.id, &activation, now).await {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                self.store.disconnect_connection(record.id, now).await?;
                return Err(CoreError::Conflict(format!(
                    "this {} account is already connected",
                    info.name
                )));
            }
            Err(e) => return Err(e.into()),
        }
        self.put_schedule(record).await?;
        self.audit(
            Some(record.user_id),
            AuditEvent::ConnectionLinked,
            json!({
                "connection": record.id.0,
                "provider": info.id,
                "account": linked.account.display_name.as_deref()
                    .unwrap_or(&linked.account.external_id),
            }),
        )
        .await;
        // The first sync starts now rather than in `sync_interval`.
        self.enqueue_sync(record.id, now).await?;
        Ok(())
    }

    async fn put_schedule(&self, record: &ConnectionRecord) -> CoreResult<()> {
        let settings = record.settings();
        let interval = settings
            .sync_every_hours
            .map_or(self.config.sync_interval, |h| {
                Duration::from_hours(u64::from(h.max(1)))
            });
        let now = self.clock.now();
        self.jobs
            .put_schedule(
                &Schedule {
                    key: sync_key(record.id),
                    kind: SYNC_JOB_KIND.into(),
                    payload: json!({ "connection_id": record.id.0 }),
                    interval: to_chrono(interval),
                    max_attempts: self.config.sync_max_attempts,
                    next_run_at: now + to_chrono(interval),
                },
                now,
            )
            .await?;
        Ok(())
    }

    /// Completes an OAuth flow from the provider's redirect. `state` is the callback's
    /// `state` parameter, `query` its whole query string; `session_hash` the hash of the
    /// browser's session. The state is consumed before anything else happens, so a second
    /// use of it is unknown.
    pub async fn complete_callback(
        &self,
        provider_id: &str,
        state: Option<&str>,
        query: &str,
        session_hash: Option<&str>,
    ) -> Result<ConnectionId, CallbackFailure> {
        let fail = |connection, code: &str, message: &str| CallbackFailure {
            connection,
            code: code.into(),
            message: message.into(),
        };
        let Some(state) = state.filter(|s| !s.is_empty()) else {
            return Err(fail(
                None,
                "missing_state",
                "the provider's answer had no state",
            ));
        };
        let pending = match self.store.take_pending_by_state(&hash_hex(state)).await {
            Ok(Some(p)) => p,
            Ok(None) => {
                return Err(fail(
                    None,
                    "unknown_state",
                    "this sign-in link is unknown or was already used; start connecting again",
                ));
            }
            Err(e) => return Err(fail(None, "internal", &e.to_string())),
        };
        let record = pending.connection.clone();
        let result = self
            .finish_pending(
                provider_id,
                &pending,
                session_hash,
                CompleteInput::Callback { query },
            )
            .await;
        match result {
            Ok((id, _)) => Ok(id),
            Err((code, message)) => {
                let now = self.clock.now();
                let _ = self
                    .store
                    .set_connection_state(
                        record.id,
                        ConnectionState::Error,
                        Some((&code, &message)),
                        now,
                    )
                    .await;
                self.audit(
                    Some(record.user_id),
                    AuditEvent::ConnectCallbackFailed,
                    json!({ "connection": record.id.0, "provider": record.provider, "code": code }),
                )
                .await;
                Err(fail(Some(record.id), &code, &message))
            }
        }
    }

    async fn finish_pending(
        &self,
        provider_id: &str,
        pending: &crate::ports::connections::PendingAuthorization,
        session_hash: Option<&str>,
        input: CompleteInput<'_>,
    ) -> Result<(ConnectionId, Option<String>), (String, String)> {
        let record = &pending.connection;
        let now = self.clock.now();
        if record.provider != provider_id {
            return Err((
                "provider_mismatch".into(),
                "the answer came back on another provider's address".into(),
            ));
        }
        if record.state != ConnectionState::Pending {
            return Err((
                "not_pending".into(),
                "this connection is not waiting for a sign-in".into(),
            ));
        }
        if pending.expires_at.is_none_or(|t| t <= now) {
            return Err((
                "expired".into(),
                "the sign-in took longer than 10 minutes; start connecting again".into(),
            ));
        }
        if let Some(expected) = &pending.session_hash
            && session_hash != Some(expected.as_str())
        {
            return Err((
                "other_session".into(),
                "this sign-in was started from another session; start connecting again".into(),
            ));
        }
        let provider = self
            .provider(&record.provider)
            .map_err(|e| ("unknown_provider".to_owned(), e.to_string()))?;
        let info = provider.info();
        let secret = self
            .sealer
            .open(
                record.user_id,
                &pending_context(record.id),
                &pending.pending,
            )
            .await
            .map_err(|_| {
                (
                    "pending_unreadable".to_owned(),
                    "the pending sign-in could not be read; start connecting again".to_owned(),
                )
            })?;
        let linked = provider
            .complete(&secret, input, &self.redirect_uri(&info.id))
            .await
            .map_err(|e| (e.code().to_owned(), e.to_string()))?;
        let target = match self
            .refuse_duplicate(record.user_id, &info, &linked.account)
            .await
        {
            Ok(target) => target,
            Err(e) => {
                // The provider already issued credentials (Audible registered a device):
                // give them back rather than leave an orphan in the user's device list.
                if let Some(c) = &linked.credentials
                    && info.can_revoke
                    && let Err(r) = provider.revoke(c).await
                {
                    tracing::warn!(provider = %info.id, code = r.code(), "could not revoke duplicate credentials");
                }
                return Err(("already_connected".into(), e.to_string()));
            }
        };
        let notice = linked.notice.clone();
        let linked_into = match target {
            // A reconnection: the waiting connection takes the credentials; the pending
            // row that carried the flow is closed.
            Some(existing) => {
                self.store
                    .disconnect_connection(record.id, self.clock.now())
                    .await
                    .map_err(|e| ("internal".to_owned(), e.to_string()))?;
                existing
            }
            None => record.clone(),
        };
        self.activate(&linked_into, &info, linked)
            .await
            .map_err(|e| (e.code().to_owned(), e.to_string()))?;
        Ok((linked_into.id, notice))
    }

    /// Completes a device sign-in with the address the user pasted (Audible's
    /// `maplanding` page). A bad address is an error and leaves the flow open for another
    /// try; nothing is stored.
    pub async fn complete_pasted(
        &self,
        user: UserId,
        id: ConnectionId,
        pasted_url: &str,
        session_hash: Option<&str>,
    ) -> CoreResult<Connected> {
        let pending = self
            .store
            .pending_of(user, id)
            .await?
            .ok_or(CoreError::NotFound("pending connection"))?;
        let provider = pending.connection.provider.clone();
        // The pasted flow is not bound to a browser session: a script with a personal
        // access token may post it.
        let _ = session_hash;
        let unbound = crate::ports::connections::PendingAuthorization {
            session_hash: None,
            ..pending
        };
        let (linked_id, notice) = self
            .finish_pending(
                &provider,
                &unbound,
                None,
                CompleteInput::PastedUrl(pasted_url),
            )
            .await
            .map_err(|(code, message)| {
                if code == "internal" {
                    CoreError::Store(StoreError::Backend(message))
                } else {
                    CoreError::InvalidInput(message)
                }
            })?;
        Ok(Connected {
            connection: self.get(user, linked_id).await?,
            authorize_url: None,
            notice,
        })
    }

    pub async fn list(&self, user: UserId) -> CoreResult<Vec<ConnectionView>> {
        let records = self.store.list_connections(user).await?;
        let mut out = Vec::with_capacity(records.len());
        for r in records {
            out.push(self.view(r).await?);
        }
        Ok(out)
    }

    pub async fn get(&self, user: UserId, id: ConnectionId) -> CoreResult<ConnectionView> {
        let record = self.record(user, id).await?;
        self.view(record).await
    }

    async fn record(&self, user: UserId, id: ConnectionId) -> CoreResult<ConnectionRecord> {
        self.store
            .connection(user, id)
            .await?
            .ok_or(CoreError::NotFound("connection"))
    }

    async fn view(&self, r: ConnectionRecord) -> CoreResult<ConnectionView> {
        let info = self.provider(&r.provider).map(|p| p.info()).ok();
        let key = sync_key(r.id);
        let last_sync = match self.jobs.jobs_for_key(&key, 1).await?.into_iter().next() {
            Some(job) => {
                let runs = self.jobs.job_runs(job.id).await?;
                let last_run = runs.last();
                let counts = last_run.map(|r| r.counts).unwrap_or_default();
                let status = match job.state {
                    JobState::Queued if job.attempts > 0 => "retrying",
                    s => s.as_str(),
                };
                Some(LastSync {
                    status: status.into(),
                    job_id: job.id.0,
                    started: job.started_at,
                    finished: job.finished_at,
                    created: counts.created,
                    updated: counts.updated,
                    unchanged: counts.unchanged,
                    removed: counts.removed,
                    failed: counts.failed,
                    error: job.last_error.map(|e| LastError {
                        code: e.code,
                        message: e.message,
                    }),
                })
            }
            None => None,
        };
        let next_sync = if r.state == ConnectionState::Active {
            self.jobs.schedule(&key).await?.map(|s| s.next_run_at)
        } else {
            None
        };
        Ok(ConnectionView {
            id: r.id,
            provider_name: info
                .as_ref()
                .map_or_else(|| r.provider.clone(), |i| i.name.clone()),
            can_revoke: info.as_ref().is_some_and(|i| i.can_revoke),
            settings: r.settings(),
            provider: r.provider,
            state: r.state,
            account: r.account,
            scopes: r.scopes,
            expires_at: r.expires_at,
            last_sync,
            next_sync,
            last_error: r.last_error,
            created_at: r.created_at,
        })
    }

    /// Changes a connection's settings (write-back, schedule).
    pub async fn update_settings(
        &self,
        user: UserId,
        id: ConnectionId,
        settings: &ConnectionSettings,
    ) -> CoreResult<ConnectionView> {
        let record = self.record(user, id).await?;
        let value = serde_json::to_value(settings)
            .map_err(|e| CoreError::InvalidInput(format!("bad settings: {e}")))?;
        self.store
            .set_connection_settings(id, &value, self.clock.now())
            .await?;
        if record.state == ConnectionState::Active {
            let updated = self.record(user, id).await?;
            self.put_schedule(&updated).await?;
        }
        self.get(user, id).await
    }

    /// Forces a token refresh now.
    pub async fn refresh(&self, user: UserId, id: ConnectionId) -> CoreResult<ConnectionView> {
        let record = self.record(user, id).await?;
        if record.state != ConnectionState::Active {
            return Err(CoreError::Conflict(format!(
                "the connection is {}, not active",
                record.state.as_str()
            )));
        }
        match self.refresh_credentials(&record).await {
            Ok(()) => self.get(user, id).await,
            Err(RefreshFailure::Core(e)) => Err(e),
            Err(RefreshFailure::Provider(e)) => Err(provider_error(&e)),
        }
    }

    /// One refresh at a time per connection, across processes: take the lease in the
    /// database, refresh, and commit the new credentials with the lease's fencing token.
    /// When another holder refreshes meanwhile, its result is used instead of refreshing
    /// again (with rotating refresh tokens a second spend would revoke the grant).
    async fn refresh_credentials(&self, record: &ConnectionRecord) -> Result<(), RefreshFailure> {
        let provider = Arc::clone(self.provider(&record.provider)?);
        let seen_version = record.credentials_version;
        let lease = loop {
            let now = self.clock.now();
            let until = now + to_chrono(self.config.lease_ttl);
            if let Some(lease) = self
                .store
                .acquire_refresh_lease(record.id, &self.worker, now, until)
                .await?
            {
                break lease;
            }
            // Someone else is refreshing: wait for them, then use what they wrote.
            tokio::time::sleep(Duration::from_millis(25)).await;
            let current = self
                .store
                .connection_by_id(record.id)
                .await?
                .ok_or(CoreError::NotFound("connection"))?;
            if current.credentials_version != seen_version {
                return Ok(());
            }
        };
        if lease.credentials_version != seen_version {
            // Someone refreshed between our read and the lease: use their result (for a
            // forced refresh too, since a fresh refresh is what was asked for).
            self.store
                .release_refresh_lease(record.id, lease.token)
                .await?;
            return Ok(());
        }
        let result = self.refresh_under_lease(record, &*provider, &lease).await;
        if result.is_err() {
            let _ = self
                .store
                .release_refresh_lease(record.id, lease.token)
                .await;
        }
        result
    }

    async fn refresh_under_lease(
        &self,
        record: &ConnectionRecord,
        provider: &dyn Provider,
        lease: &crate::ports::connections::RefreshLease,
    ) -> Result<(), RefreshFailure> {
        let sealed = lease
            .credentials
            .as_ref()
            .ok_or_else(|| CoreError::Conflict("the connection has no credentials".into()))?;
        let credentials = self
            .sealer
            .open(record.user_id, &credentials_context(record.id), sealed)
            .await
            .map_err(|e| seal_err(&e))?;
        let refreshed = match provider.refresh(&credentials).await {
            Ok(r) => r,
            Err(e) => {
                self.record_provider_failure(record, &e, AuditEvent::ConnectionRefreshFailed)
                    .await;
                return Err(RefreshFailure::Provider(e));
            }
        };
        drop(credentials);
        let sealed = self
            .sealer
            .seal(
                record.user_id,
                &credentials_context(record.id),
                refreshed.credentials.expose(),
            )
            .await
            .map_err(|e| seal_err(&e))?;
        // The provider may have rotated the refresh token: until this commit lands, the
        // only valid copy is in memory. Keep trying rather than drop it on a passing
        // database error; a fenced-out write (a later lease exists) is final.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let now = self.clock.now();
            match self
                .store
                .commit_credentials(record.id, lease.token, &sealed, refreshed.expires_at, now)
                .await
            {
                Ok(true) => break,
                Ok(false) => {
                    tracing::warn!(connection = %record.id, "refresh result fenced out by a newer lease");
                    return Err(RefreshFailure::Core(CoreError::Conflict(
                        "another refresh of this connection took over".into(),
                    )));
                }
                Err(e) if attempt < self.config.commit_attempts => {
                    tracing::warn!(connection = %record.id, attempt, error = %e, "retrying the credential commit");
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                Err(e) => {
                    tracing::error!(connection = %record.id, error = %e, "refreshed credentials could not be stored");
                    return Err(RefreshFailure::Core(e.into()));
                }
            }
        }
        self.audit(
            Some(record.user_id),
            AuditEvent::ConnectionRefreshed,
            json!({ "connection": record.id.0, "provider": record.provider }),
        )
        .await;
        Ok(())
    }

    /// Stores what a provider failure means for the connection: re-authorisation (state
    /// `needs_reauth`, audited, no more retries) or an outage (stays `active`).
    async fn record_provider_failure(
        &self,
        record: &ConnectionRecord,
        error: &ProviderError,
        event: AuditEvent,
    ) {
        let now = self.clock.now();
        let message = error.to_string();
        let state = match error {
            ProviderError::NeedsReauth { .. } => ConnectionState::NeedsReauth,
            ProviderError::Transient { .. } => ConnectionState::Active,
            _ => record.state,
        };
        let _ = self
            .store
            .set_connection_state(record.id, state, Some((error.code(), &message)), now)
            .await;
        self.audit(
            Some(record.user_id),
            event,
            json!({ "connection": record.id.0, "provider": record.provider, "code": error.code() }),
        )
        .await;
        if state == ConnectionState::NeedsReauth && record.state != ConnectionState::NeedsReauth {
            self.audit(
                Some(record.user_id),
                AuditEvent::ConnectionNeedsReauth,
                json!({ "connection": record.id.0, "provider": record.provider }),
            )
            .await;
        }
    }

    /// Queues a manual sync (limited per user per day) and returns its job.
    pub async fn sync_now(&self, user: UserId, id: ConnectionId) -> CoreResult<JobId> {
        let record = self.record(user, id).await?;
        if record.state != ConnectionState::Active {
            return Err(CoreError::Conflict(match record.state {
                ConnectionState::NeedsReauth => {
                    "the connection needs to be reconnected before it can sync".into()
                }
                s => format!("the connection is {}, not active", s.as_str()),
            }));
        }
        self.throttle(
            &format!("sync:{user}"),
            self.config.manual_syncs_per_day,
            86_400,
        )
        .await?;
        self.enqueue_sync(id, self.clock.now()).await
    }

    async fn enqueue_sync(&self, id: ConnectionId, run_at: DateTime<Utc>) -> CoreResult<JobId> {
        let enqueued = self
            .jobs
            .enqueue(
                &NewJob {
                    kind: SYNC_JOB_KIND.into(),
                    key: sync_key(id),
                    payload: json!({ "connection_id": id.0 }),
                    run_at,
                    max_attempts: self.config.sync_max_attempts,
                },
                self.clock.now(),
            )
            .await?;
        Ok(enqueued.job.id)
    }

    /// A job of this user (for `GET /api/jobs/{id}`): sync jobs of their connections.
    pub async fn job(&self, user: UserId, id: JobId) -> CoreResult<crate::ports::Job> {
        let job = self.jobs.job(id).await?.ok_or(CoreError::NotFound("job"))?;
        let owner = match job
            .payload
            .get("connection_id")
            .and_then(serde_json::Value::as_i64)
        {
            Some(c) => self
                .store
                .connection_by_id(ConnectionId(c))
                .await?
                .map(|r| r.user_id),
            None => job
                .payload
                .get("user_id")
                .and_then(serde_json::Value::as_i64)
                .map(UserId),
        };
        if owner != Some(user) {
            return Err(CoreError::NotFound("job"));
        }
        Ok(job)
    }

    /// Runs one sync of a connection (the `connection.sync` job). Everything the provider
    /// listed goes through the merge engine as one batch tagged with the connection; a
    /// complete listing also withdraws, for this source only, what disappeared from it.
    pub async fn run_sync(&self, id: ConnectionId) -> Result<RunCounts, SyncFailure> {
        let permanent = |code: &str, message: String| SyncFailure::Permanent {
            code: code.into(),
            message,
        };
        let internal = |e: CoreError| SyncFailure::Retryable {
            code: e.code().into(),
            message: e.to_string(),
            retry_after: None,
        };
        let record = self
            .store
            .connection_by_id(id)
            .await
            .map_err(|e| internal(e.into()))?
            .ok_or_else(|| permanent("not_found", "the connection no longer exists".into()))?;
        if record.state != ConnectionState::Active {
            return Err(permanent(
                "not_active",
                format!("the connection is {}", record.state.as_str()),
            ));
        }
        let provider = Arc::clone(self.provider(&record.provider).map_err(internal)?);
        self.audit(
            Some(record.user_id),
            AuditEvent::SyncStarted,
            json!({ "connection": id.0, "provider": record.provider }),
        )
        .await;
        let result = self.sync_inner(&record, &*provider).await;
        match &result {
            Ok(counts) => {
                self.audit(
                    Some(record.user_id),
                    AuditEvent::SyncFinished,
                    json!({
                        "connection": id.0, "provider": record.provider,
                        "created": counts.created, "updated": counts.updated,
                        "unchanged": counts.unchanged, "removed": counts.removed,
                        "failed": counts.failed,
                    }),
                )
                .await;
            }
            Err(SyncFailure::Retryable { code, .. } | SyncFailure::Permanent { code, .. }) => {
                self.audit(
                    Some(record.user_id),
                    AuditEvent::SyncFailed,
                    json!({ "connection": id.0, "provider": record.provider, "code": code }),
                )
                .await;
            }
        }
        result
    }

    fn needs_refresh(&self, record: &ConnectionRecord, now: DateTime<Utc>) -> bool {
        let margin = to_chrono(self.config.refresh_margin);
        let expiring = record.expires_at.is_some_and(|t| t - margin <= now);
        let written = record.credentials_at.unwrap_or(record.created_at);
        let idle = now - written > to_chrono(self.config.keepalive_after);
        expiring || idle
    }

    async fn sync_inner(
        &self,
        record: &ConnectionRecord,
        provider: &dyn Provider,
    ) -> Result<RunCounts, SyncFailure> {
        let mut record = record.clone();
        let mut refreshed = false;
        if record.has_credentials && self.needs_refresh(&record, self.clock.now()) {
            self.refresh_for_sync(&record).await?;
            refreshed = true;
            record = self.reload(record.id).await?;
        }
        let account = record
            .account
            .clone()
            .ok_or_else(|| SyncFailure::Permanent {
                code: "no_account".into(),
                message: "the connection has no linked account".into(),
            })?;
        let batch = loop {
            let credentials = self.open_credentials(&record).await?;
            match provider
                .sync(&account, credentials.as_ref(), record.cursor.as_deref())
                .await
            {
                Ok(b) => break b,
                // A 401 with credentials that can be refreshed: refresh once and retry.
                Err(ProviderError::NeedsReauth { .. })
                    if !refreshed && record.has_credentials && Self::can_refresh(provider) =>
                {
                    self.refresh_for_sync(&record).await?;
                    refreshed = true;
                    record = self.reload(record.id).await?;
                }
                Err(e) => {
                    self.record_provider_failure(&record, &e, AuditEvent::SyncFailed)
                        .await;
                    return Err(sync_failure(&e));
                }
            }
        };
        let counts = self
            .library
            .apply_connection_sync(
                record.user_id,
                record.id,
                &record.provider,
                batch.records,
                batch.failures,
                batch.complete,
                &batch.withdrawn,
            )
            .await
            .map_err(|e| SyncFailure::Retryable {
                code: e.code().into(),
                message: e.to_string(),
                retry_after: None,
            })?;
        let now = self.clock.now();
        let _ = self
            .store
            .set_connection_state(record.id, ConnectionState::Active, None, now)
            .await;
        if batch.cursor.is_some() || record.cursor.is_some() {
            self.store
                .set_cursor(record.id, batch.cursor.as_deref(), now)
                .await
                .map_err(|e| SyncFailure::Retryable {
                    code: "internal".into(),
                    message: e.to_string(),
                    retry_after: None,
                })?;
        }
        Ok(counts)
    }

    fn can_refresh(provider: &dyn Provider) -> bool {
        matches!(
            provider.info().auth_kind,
            super::provider::AuthKind::Oauth2 | super::provider::AuthKind::Device
        )
    }

    async fn reload(&self, id: ConnectionId) -> Result<ConnectionRecord, SyncFailure> {
        self.store
            .connection_by_id(id)
            .await
            .map_err(|e| SyncFailure::Retryable {
                code: "internal".into(),
                message: e.to_string(),
                retry_after: None,
            })?
            .ok_or_else(|| SyncFailure::Permanent {
                code: "not_found".into(),
                message: "the connection no longer exists".into(),
            })
    }

    async fn refresh_for_sync(&self, record: &ConnectionRecord) -> Result<(), SyncFailure> {
        match self.refresh_credentials(record).await {
            Ok(()) | Err(RefreshFailure::Provider(ProviderError::Unsupported(_))) => Ok(()),
            Err(RefreshFailure::Provider(e)) => Err(sync_failure(&e)),
            Err(RefreshFailure::Core(e)) => Err(SyncFailure::Retryable {
                code: e.code().into(),
                message: e.to_string(),
                retry_after: None,
            }),
        }
    }

    async fn open_credentials(
        &self,
        record: &ConnectionRecord,
    ) -> Result<Option<SecretBytes>, SyncFailure> {
        let sealed =
            self.store
                .credentials(record.id)
                .await
                .map_err(|e| SyncFailure::Retryable {
                    code: "internal".into(),
                    message: e.to_string(),
                    retry_after: None,
                })?;
        match sealed {
            None => Ok(None),
            Some(s) => self
                .sealer
                .open(record.user_id, &credentials_context(record.id), &s)
                .await
                .map(Some)
                .map_err(|_| SyncFailure::Permanent {
                    code: "credentials_unreadable".into(),
                    message: "the stored credentials could not be decrypted; reconnect".into(),
                }),
        }
    }

    /// Disconnects: revokes remotely where the provider allows (refresh token first),
    /// deletes the stored secrets whatever the provider answered, stops the schedule, and
    /// keeps or removes exactly what this connection contributed to the library.
    pub async fn disconnect(
        &self,
        user: UserId,
        id: ConnectionId,
        keep_data: bool,
    ) -> CoreResult<Disconnected> {
        let record = self.record(user, id).await?;
        let info = self.provider(&record.provider).map(|p| p.info()).ok();
        let mut revoked = None;
        let mut retry_queued = false;
        if record.state != ConnectionState::Disconnected
            && record.has_credentials
            && info.as_ref().is_some_and(|i| i.can_revoke)
            && let Ok(provider) = self.provider(&record.provider)
        {
            let outcome = match self.store.credentials(id).await? {
                Some(sealed) => match self
                    .sealer
                    .open(user, &credentials_context(id), &sealed)
                    .await
                {
                    Ok(credentials) => provider.revoke(&credentials).await,
                    Err(_) => Err(ProviderError::Rejected {
                        code: "credentials_unreadable".into(),
                        message: "the stored credentials could not be decrypted".into(),
                    }),
                },
                None => Ok(()),
            };
            revoked = Some(outcome.is_ok());
            if let Err(e) = outcome {
                self.audit(
                    Some(user),
                    AuditEvent::RevocationFailed,
                    json!({ "connection": id.0, "provider": record.provider, "code": e.code() }),
                )
                .await;
                if let ProviderError::Transient { retry_after, .. } = &e {
                    retry_queued = self
                        .queue_revocation_retry(user, id, *retry_after)
                        .await
                        .is_ok();
                }
            }
        }
        let now = self.clock.now();
        self.store.disconnect_connection(id, now).await?;
        self.jobs.delete_schedule(&sync_key(id)).await?;
        let items_changed = if keep_data {
            0
        } else {
            self.library.remove_connection_data(user, id).await?
        };
        self.audit(
            Some(user),
            AuditEvent::ConnectionDisconnected,
            json!({
                "connection": id.0, "provider": record.provider,
                "data": if keep_data { "keep" } else { "delete" },
                "revoked": revoked,
            }),
        )
        .await;
        Ok(Disconnected {
            revoked,
            revocation_retry: retry_queued,
            items_changed,
        })
    }

    /// A revocation the provider could not take now (503, timeout): the credentials are
    /// kept sealed under their own name only for the retry job, which deletes them when
    /// the provider answers or the attempts run out (SECURITY C2).
    async fn queue_revocation_retry(
        &self,
        user: UserId,
        id: ConnectionId,
        retry_after: Option<Duration>,
    ) -> CoreResult<()> {
        let Some(sealed) = self.store.credentials(id).await? else {
            return Ok(());
        };
        let plain = self
            .sealer
            .open(user, &credentials_context(id), &sealed)
            .await
            .map_err(|e| seal_err(&e))?;
        let name = revoke_secret_name(id);
        let resealed = self
            .sealer
            .seal(user, &name, plain.expose())
            .await
            .map_err(|e| seal_err(&e))?;
        let now = self.clock.now();
        self.store.put_secret(user, &name, &resealed, now).await?;
        let run_at = now + to_chrono(retry_after.unwrap_or(Duration::from_mins(1)));
        self.jobs
            .enqueue(
                &NewJob {
                    kind: REVOKE_JOB_KIND.into(),
                    key: format!("connection:{id}:revoke"),
                    payload: json!({ "connection_id": id.0, "user_id": user.0 }),
                    run_at,
                    max_attempts: REVOKE_ATTEMPTS,
                },
                now,
            )
            .await?;
        Ok(())
    }

    /// One retry of a revocation (the `connection.revoke` job). `last_attempt` gives up:
    /// the kept credentials are deleted whatever the provider answers.
    pub async fn run_revocation(
        &self,
        user: UserId,
        id: ConnectionId,
        last_attempt: bool,
    ) -> Result<(), SyncFailure> {
        let name = revoke_secret_name(id);
        let internal = |e: &dyn std::fmt::Display| SyncFailure::Retryable {
            code: "internal".into(),
            message: e.to_string(),
            retry_after: None,
        };
        let Some(sealed) = self
            .store
            .get_secret(user, &name)
            .await
            .map_err(|e| internal(&e))?
        else {
            return Ok(());
        };
        let provider_id = self
            .store
            .connection(user, id)
            .await
            .map_err(|e| internal(&e))?
            .map(|r| r.provider);
        let outcome = match (
            provider_id.as_deref().and_then(|p| self.provider(p).ok()),
            self.sealer.open(user, &name, &sealed).await,
        ) {
            (Some(provider), Ok(credentials)) => provider.revoke(&credentials).await,
            _ => Err(ProviderError::Rejected {
                code: "revocation_unavailable".into(),
                message: "the provider or the kept credentials are gone".into(),
            }),
        };
        // Only an outage is worth another attempt, and only while attempts remain.
        let give_up = !matches!(&outcome, Err(ProviderError::Transient { .. })) || last_attempt;
        if let Err(e) = &outcome {
            self.audit(
                Some(user),
                AuditEvent::RevocationFailed,
                json!({ "connection": id.0, "code": e.code(), "final": give_up }),
            )
            .await;
        }
        if give_up {
            self.store
                .delete_secret(user, &name)
                .await
                .map_err(|e| internal(&e))?;
        }
        match outcome {
            Ok(()) => Ok(()),
            Err(e) if give_up => Err(SyncFailure::Permanent {
                code: e.code().into(),
                message: e.to_string(),
            }),
            Err(e) => Err(sync_failure(&e)),
        }
    }

    /// Connections idle long enough to need a keep-alive refresh, refreshed now; returns
    /// how many were refreshed (called periodically by `serve`).
    pub async fn keepalive(&self) -> CoreResult<usize> {
        let now = self.clock.now();
        let mut done = 0;
        for record in self
            .store
            .connections_in_state(ConnectionState::Active, 500)
            .await?
        {
            let Ok(provider) = self.provider(&record.provider) else {
                continue;
            };
            if record.has_credentials
                && Self::can_refresh(provider.as_ref())
                && self.needs_refresh(&record, now)
                && self.refresh_credentials(&record).await.is_ok()
            {
                done += 1;
            }
        }
        Ok(done)
    }

    /// Queues a push of an edit (status, rating, progress) to every active connection of
    /// the user that has write-back on, has the capability, and is a source of the item.
    /// One durable job per connection and record, so budgets, retries and `Retry-After`
    /// apply; fields the edit did not set are not sent.
    pub async fn queue_write_back(
        &self,
        user: UserId,
        item: &serde_json::Value,
        status: Option<String>,
        rating: Option<Option<f64>>,
        progress: Option<f64>,
    ) -> CoreResult<Vec<JobId>> {
        if status.is_none() && rating.is_none() && progress.is_none() {
            return Ok(Vec::new());
        }
        let mut jobs = Vec::new();
        let now = self.clock.now();
        for record in self.store.list_connections(user).await? {
            if record.state != ConnectionState::Active || !record.settings().write_back {
                continue;
            }
            let Ok(provider) = self.provider(&record.provider) else {
                continue;
            };
            if !provider
                .info()
                .capabilities
                .contains(&super::provider::Capability::WriteBack)
            {
                continue;
            }
            let keys = item["sources"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|s| s["provider"].as_str() == Some(record.provider.as_str()))
                .filter_map(|s| s["external_id"].as_str().map(str::to_owned));
            for key in keys {
                let (pages, audio_seconds) = if progress.is_some() {
                    edition_length(item, &record.provider, &key)
                } else {
                    (None, None)
                };
                let change = WriteBack {
                    source_key: key.clone(),
                    status: status.clone(),
                    rating,
                    progress,
                    pages,
                    audio_seconds,
                };
                let payload = json!({ "connection_id": record.id.0, "change": change });
                let enqueued = self
                    .jobs
                    .enqueue(
                        &NewJob {
                            kind: WRITE_BACK_JOB_KIND.into(),
                            // Unique per edit: a later edit must not be folded into an
                            // earlier one still queued.
                            key: format!(
                                "connection:{}:push:{key}:{}",
                                record.id,
                                now.timestamp_micros()
                            ),
                            payload,
                            run_at: now,
                            max_attempts: self.config.sync_max_attempts,
                        },
                        now,
                    )
                    .await?;
                jobs.push(enqueued.job.id);
            }
        }
        Ok(jobs)
    }

    /// Runs one queued write-back (the `connection.write_back` job): what was sent, and
    /// what was left out and why.
    pub async fn run_write_back(
        &self,
        id: ConnectionId,
        change: &WriteBack,
    ) -> Result<WriteBackReport, SyncFailure> {
        let record = self.reload(id).await?;
        if record.state != ConnectionState::Active || !record.settings().write_back {
            return Err(SyncFailure::Permanent {
                code: "not_active".into(),
                message: "the connection is not active or write-back was turned off".into(),
            });
        }
        let provider =
            Arc::clone(
                self.provider(&record.provider)
                    .map_err(|e| SyncFailure::Permanent {
                        code: e.code().into(),
                        message: e.to_string(),
                    })?,
            );
        let credentials =
            self.open_credentials(&record)
                .await?
                .ok_or_else(|| SyncFailure::Permanent {
                    code: "no_credentials".into(),
                    message: "the connection has no credentials".into(),
                })?;
        match provider.write_back(&credentials, change).await {
            Ok(report) => Ok(report),
            Err(e) => {
                if matches!(e, ProviderError::NeedsReauth { .. }) {
                    self.record_provider_failure(&record, &e, AuditEvent::SyncFailed)
                        .await;
                }
                Err(sync_failure(&e))
            }
        }
    }

    /// A connection's sync history, newest first: every attempt of its recent sync jobs
    /// with its outcome, counts and error.
    pub async fn sync_history(
        &self,
        user: UserId,
        id: ConnectionId,
        limit: u32,
    ) -> CoreResult<Vec<SyncRun>> {
        self.record(user, id).await?;
        let mut runs = Vec::new();
        for job in self.jobs.jobs_for_key(&sync_key(id), limit).await? {
            for run in self.jobs.job_runs(job.id).await?.into_iter().rev() {
                runs.push(SyncRun {
                    job_id: job.id.0,
                    attempt: run.attempt,
                    started: run.started_at,
                    finished: run.finished_at,
                    outcome: run.outcome.map(|o| o.as_str().to_owned()),
                    created: run.counts.created,
                    updated: run.counts.updated,
                    unchanged: run.counts.unchanged,
                    removed: run.counts.removed,
                    failed: run.counts.failed,
                    error: run.error.map(|e| LastError {
                        code: e.code,
                        message: e.message,
                    }),
                });
            }
        }
        runs.sort_by_key(|r| std::cmp::Reverse(r.started));
        runs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(runs)
    }

    /// The attempts of a job, oldest first.
    pub async fn job_runs(&self, job: JobId) -> CoreResult<Vec<crate::ports::JobRun>> {
        Ok(self.jobs.job_runs(job).await?)
    }

    /// The most recent run outcome of a sync job, for the CLI.
    pub async fn last_run_outcome(&self, job: JobId) -> CoreResult<Option<RunOutcome>> {
        Ok(self
            .jobs
            .job_runs(job)
            .await?
            .last()
            .and_then(|r| r.outcome))
    }
}

/// The length of the edition behind one source of a resolved item, for turning a progress
/// fraction into pages or seconds: that source's own edition first, else any edition of
/// the item that has the figure (another source's copy of the book is the best estimate
/// left). `(pages, audio seconds)`.
fn edition_length(
    item: &serde_json::Value,
    provider: &str,
    key: &str,
) -> (Option<u32>, Option<u64>) {
    let editions = item["editions"].as_array().map_or(&[][..], Vec::as_slice);
    let own = editions.iter().filter(|e| {
        e["provider"].as_str() == Some(provider) && e["external_id"].as_str() == Some(key)
    });
    let pick = |field: &str| {
        own.clone()
            .chain(editions.iter())
            .find_map(|e| e[field].as_u64().filter(|n| *n > 0))
    };
    (
        pick("pages").and_then(|p| u32::try_from(p).ok()),
        pick("runtime_secs"),
    )
}

fn sync_failure(e: &ProviderError) -> SyncFailure {
    match e {
        ProviderError::Transient {
            code,
            message,
            retry_after,
        } => SyncFailure::Retryable {
            code: code.clone(),
            message: message.clone(),
            retry_after: *retry_after,
        },
        other => SyncFailure::Permanent {
            code: other.code().into(),
            message: other.to_string(),
        },
    }
}

/// A provider error met while the user was linking, in the user's terms.
fn provider_input_error(info: &ProviderInfo, e: &ProviderError) -> CoreError {
    match e {
        ProviderError::Transient { retry_after, .. } => CoreError::Unavailable {
            message: format!("{} is not answering right now: {e}", info.name),
            retry_after_secs: retry_after.map(|d| d.as_secs()),
        },
        _ => CoreError::InvalidInput(e.to_string()),
    }
}

fn provider_error(e: &ProviderError) -> CoreError {
    match e {
        ProviderError::Transient { retry_after, .. } => CoreError::Unavailable {
            message: e.to_string(),
            retry_after_secs: retry_after.map(|d| d.as_secs()),
        },
        ProviderError::NeedsReauth { .. } => {
            CoreError::Conflict(format!("{e}; the connection needs to be reconnected"))
        }
        _ => CoreError::InvalidInput(e.to_string()),
    }
}
