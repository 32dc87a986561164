//! The connection store: linked accounts, their sealed credentials, the refresh lease with
//! its fencing counter, and the outbound request budgets shared by all instances.
//! The store sees only ciphertext.

use super::store::StoreResult;
use crate::connections::model::{ConnectionRecord, ConnectionState};
use crate::connections::provider::ExternalAccount;
use crate::ids::{BatchId, ConnectionId, ItemId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A pending authorization, as stored until the user comes back.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub connection: ConnectionRecord,
    /// Sealed provider state (PKCE verifier, …).
    pub pending: Vec<u8>,
    /// SHA-256 of the session the flow was started from, if any.
    pub session_hash: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

/// The refresh lease, granted: who may write credentials now.
#[derive(Debug, Clone)]
pub struct RefreshLease {
    /// The fencing token: a credential write must present it and fails once a later
    /// lease exists.
    pub token: i64,
    /// The sealed credentials as they were when the lease was taken.
    pub credentials: Option<Vec<u8>>,
    pub credentials_version: i64,
}

/// The account, credentials and scopes a completed link stores.
#[derive(Debug, Clone)]
pub struct Activation<'a> {
    pub account: &'a ExternalAccount,
    pub credentials: Option<&'a [u8]>,
    pub scopes: &'a [String],
    pub expires_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ConnectionStore: Send + Sync {
    /// A new `pending` connection.
    async fn create_connection(
        &self,
        user: UserId,
        provider: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<ConnectionRecord>;

    /// Keeps the sealed pending state; `state_hash` finds it again on the callback.
    async fn set_pending(
        &self,
        id: ConnectionId,
        pending: &[u8],
        state_hash: Option<&str>,
        session_hash: Option<&str>,
        expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Consumes the pending authorization with this state hash (single use: the hash is
    /// cleared in the same statement that reads it).
    async fn take_pending_by_state(
        &self,
        state_hash: &str,
    ) -> StoreResult<Option<PendingAuthorization>>;

    /// The pending authorization of a connection (pasted-URL flows may be retried).
    async fn pending_of(
        &self,
        user: UserId,
        id: ConnectionId,
    ) -> StoreResult<Option<PendingAuthorization>>;

    /// Stores the linked account and makes the connection `active`. `Conflict` when the
    /// user already has a live connection to that external account.
    async fn activate(
        &self,
        id: ConnectionId,
        activation: &Activation<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn connection(
        &self,
        user: UserId,
        id: ConnectionId,
    ) -> StoreResult<Option<ConnectionRecord>>;
    /// The connection whatever its owner (job handlers).
    async fn connection_by_id(&self, id: ConnectionId) -> StoreResult<Option<ConnectionRecord>>;
    async fn list_connections(&self, user: UserId) -> StoreResult<Vec<ConnectionRecord>>;
    /// Every connection in one of `states`, for schedulers and keep-alive refreshes.
    async fn connections_in_state(
        &self,
        state: ConnectionState,
        limit: u32,
    ) -> StoreResult<Vec<ConnectionRecord>>;

    /// Sets the state and the last error (`None` clears it).
    async fn set_connection_state(
        &self,
        id: ConnectionId,
        state: ConnectionState,
        error: Option<(&str, &str)>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn set_connection_settings(
        &self,
        id: ConnectionId,
        settings: &serde_json::Value,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    async fn set_cursor(
        &self,
        id: ConnectionId,
        cursor: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// The sealed credentials, for a caller that only reads them.
    async fn credentials(&self, id: ConnectionId) -> StoreResult<Option<Vec<u8>>>;

    /// Takes the refresh lease unless another holder's lease is still running.
    async fn acquire_refresh_lease(
        &self,
        id: ConnectionId,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> StoreResult<Option<RefreshLease>>;

    /// Writes new credentials and releases the lease in one statement, only while
    /// `lease_token` is still the newest lease. False when fenced out.
    async fn commit_credentials(
        &self,
        id: ConnectionId,
        lease_token: i64,
        credentials: &[u8],
        expires_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;

    /// Gives the lease back without writing (a failed refresh).
    async fn release_refresh_lease(&self, id: ConnectionId, lease_token: i64) -> StoreResult<()>;

    /// Marks the connection `disconnected` and deletes its credentials and pending state.
    async fn disconnect_connection(&self, id: ConnectionId, now: DateTime<Utc>) -> StoreResult<()>;

    /// Records that an import batch is one sync run of this connection.
    async fn tag_batch(&self, batch: BatchId, id: ConnectionId) -> StoreResult<()>;
    /// The batches this connection's sync runs wrote, newest first, undone ones included.
    async fn batches_of_connection(&self, id: ConnectionId) -> StoreResult<Vec<BatchId>>;

    /// Source keys of `provider` whose current values came from any of `batches`.
    async fn connection_source_keys(
        &self,
        user: UserId,
        batches: &[BatchId],
        provider: &str,
    ) -> StoreResult<Vec<String>>;

    /// Withdraws what `batches` supplied to the sources `(provider, key)` for `keys`: their
    /// versions go, each source falls back to another origin's version or disappears.
    /// Returns the items whose sources changed (the caller re-resolves them).
    async fn withdraw_sources(
        &self,
        user: UserId,
        batches: &[BatchId],
        provider: &str,
        keys: &[String],
    ) -> StoreResult<Vec<ItemId>>;

    /// Takes `cost` requests from `provider`'s token bucket (`capacity` at once, refilled
    /// at `per_minute`), or none: then `Err` carries the milliseconds until they fit.
    async fn take_budget(
        &self,
        provider: &str,
        capacity: u32,
        per_minute: u32,
        cost: u32,
        now: DateTime<Utc>,
    ) -> StoreResult<Result<(), u64>>;

    /// Requests granted from a provider's budget so far (for benchmarks and checks).
    async fn budget_granted(&self, provider: &str) -> StoreResult<u64>;
}
