//! Storage ports, one narrow trait per concern. `bb-store` implements each for SQLite and
//! for PostgreSQL; `Store` bundles them for wiring.

use crate::audit::{AuditEntry, NewAuditEntry};
use crate::error::StoreError;
use crate::ids::{DataKeyId, TokenId, UserId};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    async fn create_user(
        &self,
        username: &str,
        password_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<User>;
    async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>>;
    async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    async fn set_password_hash(&self, id: UserId, password_hash: &str) -> StoreResult<()>;
    /// Deletes the user and, by cascade, everything they own (sessions, tokens, data key,
    /// secrets). Audit entries stay, detached from the row.
    async fn delete_user(&self, id: UserId) -> StoreResult<bool>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(
        &self,
        id_hash: &str,
        user: UserId,
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>>;
    async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<()>;
    /// Removes sessions created before `created_before` or idle since `idle_before`.
    async fn purge_sessions(
        &self,
        created_before: DateTime<Utc>,
        idle_before: DateTime<Utc>,
    ) -> StoreResult<u64>;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    pub id: TokenId,
    pub user_id: UserId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait ApiTokenStore: Send + Sync {
    async fn create_token(
        &self,
        user: UserId,
        name: &str,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<ApiToken>;
    /// The live token with this hash, marking it used.
    async fn use_token(
        &self,
        token_hash: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<ApiToken>>;
    async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>>;
    async fn revoke_token(&self, user: UserId, id: TokenId) -> StoreResult<bool>;
}

#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<()>;
    /// Newest first; `before` is the id to page from (exclusive).
    async fn audit_for_user(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> StoreResult<Vec<AuditEntry>>;
    /// Entries that belong to no user (key rotation, …), newest first.
    async fn audit_system(&self, before: Option<i64>, limit: u32) -> StoreResult<Vec<AuditEntry>>;
}

/// Fixed-window counters shared by every instance (login throttling, connect limits).
#[async_trait]
pub trait ThrottleStore: Send + Sync {
    /// Counts one hit against `key` and returns the hits in the current window and when
    /// that window started. A window older than `window_secs` starts afresh.
    async fn hit(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> StoreResult<(i64, DateTime<Utc>)>;
    /// Hits in the current window without counting one.
    async fn peek(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_secs: i64,
    ) -> StoreResult<(i64, DateTime<Utc>)>;
    async fn clear(&self, key: &str) -> StoreResult<()>;
}

/// A master-key version as the database knows it: never the key, only its check value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MasterKeyVersion {
    pub version: u32,
    /// HMAC of a fixed label under the key; identifies the key without revealing it.
    pub check_value: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// A per-user data key, wrapped (encrypted) by one master-key version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedDataKey {
    pub id: DataKeyId,
    pub user_id: UserId,
    pub master_version: u32,
    pub wrapped: Vec<u8>,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn master_key_versions(&self) -> StoreResult<Vec<MasterKeyVersion>>;
    /// Fails with `Conflict` when the version exists.
    async fn add_master_key_version(
        &self,
        version: u32,
        check_value: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn retire_master_key_version(&self, version: u32, now: DateTime<Utc>) -> StoreResult<()>;
    async fn data_key_for_user(&self, user: UserId) -> StoreResult<Option<WrappedDataKey>>;
    /// Inserts the user's data key unless one exists; returns whichever is stored, so two
    /// racing creators agree on one key.
    async fn insert_data_key(
        &self,
        user: UserId,
        master_version: u32,
        wrapped: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<WrappedDataKey>;
    /// Up to `limit` data keys wrapped by any version other than `version`.
    async fn data_keys_not_under(
        &self,
        version: u32,
        limit: u32,
    ) -> StoreResult<Vec<WrappedDataKey>>;
    /// Replaces a wrapping only if it is still under `from_version` (compare-and-set), so
    /// re-running a rotation is harmless.
    async fn rewrap_data_key(
        &self,
        id: DataKeyId,
        from_version: u32,
        to_version: u32,
        wrapped: &[u8],
    ) -> StoreResult<bool>;
    async fn count_data_keys_under(&self, version: u32) -> StoreResult<u64>;
}

/// Sealed secrets, addressed by owner and name. The store sees only ciphertext.
#[async_trait]
pub trait SecretStore: Send + Sync {
    async fn put_secret(
        &self,
        user: UserId,
        name: &str,
        ciphertext: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()>;
    async fn get_secret(&self, user: UserId, name: &str) -> StoreResult<Option<Vec<u8>>>;
    async fn delete_secret(&self, user: UserId, name: &str) -> StoreResult<bool>;
}

/// Everything a running bookbridge needs from storage.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + ApiTokenStore
    + AuditStore
    + ThrottleStore
    + KeyStore
    + SecretStore
    + super::library::LibraryStore
    + super::connections::ConnectionStore
    + super::jobs::JobStore
    + std::fmt::Debug
{
    /// Whether the database answers (for `/readyz`).
    async fn ping(&self) -> StoreResult<()>;
    /// Closes every connection once the ones in use are returned; anything still using the
    /// store afterwards gets an error. With SQLite the last connection to close folds the
    /// write-ahead log into the database file and removes it, so a copy of the file alone is
    /// the whole library.
    async fn close(&self);
}
