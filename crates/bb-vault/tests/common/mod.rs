//! Test support: an in-memory `KeyStore` that behaves like the SQL ones (compare-and-set,
//! insert-or-return-existing) and can be told to fail after N re-wraps, plus fixtures.
#![allow(dead_code)] // each test binary uses a different part of this module

use async_trait::async_trait;
use bb_core::clock::{Clock, ManualClock};
use bb_core::error::StoreError;
use bb_core::ids::{DataKeyId, UserId};
use bb_core::ports::{KeyStore, MasterKeyVersion, Sealer, StoreResult, WrappedDataKey};
use bb_vault::{Keyring, MasterKey, Vault};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Inner {
    versions: Vec<MasterKeyVersion>,
    data_keys: BTreeMap<i64, WrappedDataKey>,
    next_id: i64,
    /// Successful re-wraps allowed before every further one fails.
    fail_rewraps_after: Option<u64>,
    rewraps: u64,
    /// The next `data_key_for_user` answers "none" even if a key exists, as a racing
    /// creator would have seen it a moment before the other's insert.
    hide_next_lookup: bool,
}

#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    inner: Mutex<Inner>,
}

impl MemoryKeyStore {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap()
    }

    /// From now on, allow `n` more successful re-wraps, then fail every re-wrap (as if the
    /// process died or the database went away mid-rotation).
    pub fn fail_rewraps_after(&self, n: u64) {
        let mut inner = self.lock();
        inner.fail_rewraps_after = Some(inner.rewraps + n);
    }

    pub fn hide_next_lookup(&self) {
        self.lock().hide_next_lookup = true;
    }

    pub fn clear_fault(&self) {
        self.lock().fail_rewraps_after = None;
    }

    /// Successful re-wraps so far.
    pub fn rewraps(&self) -> u64 {
        self.lock().rewraps
    }

    /// What `UserStore::delete_user` does to the vault's table by cascade.
    pub fn delete_data_key(&self, user: UserId) -> bool {
        let mut inner = self.lock();
        let before = inner.data_keys.len();
        inner.data_keys.retain(|_, k| k.user_id != user);
        inner.data_keys.len() != before
    }

    pub fn data_keys(&self) -> Vec<WrappedDataKey> {
        self.lock().data_keys.values().cloned().collect()
    }

    pub fn versions_by_data_key(&self) -> BTreeMap<u32, u64> {
        let mut out = BTreeMap::new();
        for k in self.lock().data_keys.values() {
            *out.entry(k.master_version).or_insert(0) += 1;
        }
        out
    }

    /// Overwrites a stored wrapped key (to simulate tampering with the database).
    pub fn set_wrapped(&self, user: UserId, wrapped: &[u8]) {
        let mut inner = self.lock();
        for k in inner.data_keys.values_mut() {
            if k.user_id == user {
                k.wrapped = wrapped.to_vec();
            }
        }
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn master_key_versions(&self) -> StoreResult<Vec<MasterKeyVersion>> {
        let mut v = self.lock().versions.clone();
        v.sort_by_key(|v| v.version);
        Ok(v)
    }

    async fn add_master_key_version(
        &self,
        version: u32,
        check_value: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.versions.iter().any(|v| v.version == version) {
            return Err(StoreError::Conflict("master_key_versions.version"));
        }
        inner.versions.push(MasterKeyVersion {
            version,
            check_value: check_value.to_vec(),
            created_at: now,
            retired_at: None,
        });
        Ok(())
    }

    async fn retire_master_key_version(&self, version: u32, now: DateTime<Utc>) -> StoreResult<()> {
        let mut inner = self.lock();
        let v = inner
            .versions
            .iter_mut()
            .find(|v| v.version == version)
            .ok_or(StoreError::NotFound)?;
        v.retired_at = Some(now);
        Ok(())
    }

    async fn data_key_for_user(&self, user: UserId) -> StoreResult<Option<WrappedDataKey>> {
        let mut inner = self.lock();
        if std::mem::take(&mut inner.hide_next_lookup) {
            return Ok(None);
        }
        Ok(inner
            .data_keys
            .values()
            .find(|k| k.user_id == user)
            .cloned())
    }

    async fn insert_data_key(
        &self,
        user: UserId,
        master_version: u32,
        wrapped: &[u8],
        _now: DateTime<Utc>,
    ) -> StoreResult<WrappedDataKey> {
        let mut inner = self.lock();
        if let Some(existing) = inner.data_keys.values().find(|k| k.user_id == user) {
            return Ok(existing.clone());
        }
        inner.next_id += 1;
        let key = WrappedDataKey {
            id: DataKeyId(inner.next_id),
            user_id: user,
            master_version,
            wrapped: wrapped.to_vec(),
        };
        let id = inner.next_id;
        inner.data_keys.insert(id, key.clone());
        Ok(key)
    }

    async fn data_keys_not_under(
        &self,
        version: u32,
        limit: u32,
    ) -> StoreResult<Vec<WrappedDataKey>> {
        Ok(self
            .lock()
            .data_keys
            .values()
            .filter(|k| k.master_version != version)
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn rewrap_data_key(
        &self,
        id: DataKeyId,
        from_version: u32,
        to_version: u32,
        wrapped: &[u8],
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        if inner.fail_rewraps_after.is_some_and(|n| inner.rewraps >= n) {
            return Err(StoreError::Backend("injected fault".into()));
        }
        let Some(k) = inner.data_keys.get_mut(&id.0) else {
            return Ok(false);
        };
        if k.master_version != from_version {
            return Ok(false);
        }
        k.master_version = to_version;
        k.wrapped = wrapped.to_vec();
        inner.rewraps += 1;
        Ok(true)
    }

    async fn count_data_keys_under(&self, version: u32) -> StoreResult<u64> {
        Ok(self
            .lock()
            .data_keys
            .values()
            .filter(|k| k.master_version == version)
            .count() as u64)
    }
}

pub fn clock() -> Arc<dyn Clock> {
    Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap(),
    ))
}

pub fn key(byte: u8) -> MasterKey {
    MasterKey::from_bytes([byte; 32])
}

pub fn ring(keys: &[&MasterKey]) -> Keyring {
    Keyring::from_keys(keys.iter().map(|k| (*k).clone()).collect()).unwrap()
}

pub async fn vault(store: &Arc<MemoryKeyStore>, keys: &[&MasterKey]) -> Vault {
    Vault::open(ring(keys), store.clone(), clock())
        .await
        .unwrap()
}

/// One sealed secret and what it should open to.
#[derive(Debug, Clone)]
pub struct Sealed {
    pub owner: UserId,
    pub context: String,
    pub plaintext: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

/// Seals one secret for each of `users` users, two per user (two columns).
pub async fn seal_for_users(vault: &Vault, users: i64) -> Vec<Sealed> {
    let mut out = Vec::new();
    for u in 1..=users {
        for column in ["access_token", "refresh_token"] {
            let owner = UserId(u);
            let context = format!("secret:connection/{u}/{column}");
            let plaintext = format!("{column}-of-user-{u}-s3cr3t").into_bytes();
            let ciphertext = vault.seal(owner, &context, &plaintext).await.unwrap();
            out.push(Sealed {
                owner,
                context,
                plaintext,
                ciphertext,
            });
        }
    }
    out
}

/// Every sealed secret opens, through `vault`, to its plaintext.
pub async fn assert_all_open(vault: &Vault, sealed: &[Sealed]) {
    for s in sealed {
        let opened = vault
            .open(s.owner, &s.context, &s.ciphertext)
            .await
            .unwrap_or_else(|e| panic!("{} at {} failed to open: {e}", s.owner, s.context));
        assert_eq!(opened.expose(), s.plaintext.as_slice());
    }
}
