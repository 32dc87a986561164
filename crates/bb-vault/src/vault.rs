//! The `Vault`: matches the keyring to the database's master key versions at start-up and
//! seals and opens secrets with per-user data keys (`bb_core::ports::Sealer`).

use crate::envelope::{self, DataKey};
use crate::error::VaultError;
use crate::keyring::{KEY_LEN, Keyring, MasterKey};
use async_trait::async_trait;
use bb_core::clock::Clock;
use bb_core::error::StoreError;
use bb_core::ids::UserId;
use bb_core::ports::{KeyStore, MasterKeyVersion, SealError, Sealer, WrappedDataKey};
use bb_core::secret::SecretBytes;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

pub(crate) type Kek = Arc<Zeroizing<[u8; KEY_LEN]>>;

/// One key of the ring, with what is derived from it once at load.
#[derive(Clone)]
pub(crate) struct RingEntry {
    pub(crate) key: MasterKey,
    pub(crate) check: [u8; 32],
    pub(crate) kek: Kek,
    /// The database version whose check value this key matches, if any.
    pub(crate) version: Option<u32>,
}

impl RingEntry {
    pub(crate) fn new(key: MasterKey) -> Self {
        Self {
            check: key.check_value(),
            kek: Arc::new(key.kek()),
            key,
            version: None,
        }
    }
}

/// The keyring as matched against the database's versions.
pub(crate) struct KeyState {
    pub(crate) entries: Vec<RingEntry>,
    pub(crate) versions: Vec<MasterKeyVersion>,
    pub(crate) primary: u32,
}

impl KeyState {
    /// Matches ring keys to versions by check value and enforces the start-up rules: every
    /// active version has its key, and at most one ring key (a pending rotation's new key)
    /// is unknown to the database.
    pub(crate) fn matched(
        mut entries: Vec<RingEntry>,
        versions: Vec<MasterKeyVersion>,
    ) -> Result<Self, VaultError> {
        for entry in &mut entries {
            entry.version = versions
                .iter()
                .find(|v| bool::from(v.check_value.as_slice().ct_eq(&entry.check)))
                .map(|v| v.version);
        }
        let active_without_key = versions
            .iter()
            .filter(|v| v.retired_at.is_none())
            .any(|v| !entries.iter().any(|e| e.version == Some(v.version)));
        if active_without_key {
            return Err(VaultError::KeyMismatch);
        }
        let unmatched = entries.iter().filter(|e| e.version.is_none()).count();
        if unmatched > 1 {
            return Err(VaultError::AmbiguousKeys { unmatched });
        }
        let primary = versions
            .iter()
            .filter(|v| v.retired_at.is_none())
            .map(|v| v.version)
            .max()
            .ok_or(VaultError::KeyMismatch)?;
        Ok(Self {
            entries,
            versions,
            primary,
        })
    }

    /// The KEK of an active version; retired versions are never used to decrypt.
    pub(crate) fn kek_for(&self, version: u32) -> Option<Kek> {
        let active = self
            .versions
            .iter()
            .any(|v| v.version == version && v.retired_at.is_none());
        if !active {
            return None;
        }
        self.entries
            .iter()
            .find(|e| e.version == Some(version))
            .map(|e| Arc::clone(&e.kek))
    }

    pub(crate) fn primary_kek(&self) -> Result<(u32, Kek), VaultError> {
        self.kek_for(self.primary)
            .map(|kek| (self.primary, kek))
            .ok_or(VaultError::MissingVersionKey {
                version: self.primary,
            })
    }
}

/// Seals and opens secrets. Holds the master keys' derived KEKs; data keys live in the
/// database, wrapped, and are unwrapped per operation.
///
/// There is deliberately no in-memory cache of unwrapped data keys. Crypto-shredding (D7)
/// works by deleting a user's data key row; a cache would keep that key alive in this
/// process (and in every other instance, none of which would hear of the delete) and keep
/// opening ciphertexts that must be unreadable. The price is one indexed row read and one
/// 32-byte unwrap per operation, microseconds next to the network call the secret is for.
pub struct Vault {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) state: RwLock<KeyState>,
}

impl Vault {
    /// Loads the keyring against the database. A database with no master key adopts the
    /// ring's single key as version 1; otherwise the ring must hold the key of every active
    /// version, or this fails with [`VaultError::KeyMismatch`].
    pub async fn open(
        keyring: Keyring,
        store: Arc<dyn KeyStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, VaultError> {
        let entries: Vec<RingEntry> = keyring.keys().iter().cloned().map(RingEntry::new).collect();
        let mut versions = store.master_key_versions().await?;
        if versions.is_empty() {
            let [only] = entries.as_slice() else {
                return Err(VaultError::TooManyKeysForNewDatabase {
                    count: entries.len(),
                });
            };
            match store
                .add_master_key_version(1, &only.check, clock.now())
                .await
            {
                // A concurrent first start registered version 1; the re-read below decides
                // whether it was with our key.
                Ok(()) | Err(StoreError::Conflict(_)) => {}
                Err(e) => return Err(e.into()),
            }
            versions = store.master_key_versions().await?;
            tracing::info!("registered the master key as version 1 of a new database");
        }
        let state = KeyState::matched(entries, versions)?;
        tracing::info!(
            primary = state.primary,
            keys = state.entries.len(),
            "vault opened"
        );
        Ok(Self {
            store,
            clock,
            state: RwLock::new(state),
        })
    }

    /// The version new data keys are wrapped under.
    pub fn primary_version(&self) -> u32 {
        self.read_state().primary
    }

    /// Ring keys the database does not know: the new key of a rotation not yet started.
    pub fn unregistered_keys(&self) -> Vec<MasterKey> {
        self.read_state()
            .entries
            .iter()
            .filter(|e| e.version.is_none())
            .map(|e| e.key.clone())
            .collect()
    }

    /// Re-reads the versions, so changes another process made (a rotation, a retirement)
    /// are seen.
    pub(crate) async fn refresh(&self) -> Result<(), VaultError> {
        self.refresh_with(None).await
    }

    /// Like [`Vault::refresh`], first adding `extra` to the ring (a rotation's new key). The
    /// ring is read and replaced under one write lock so concurrent refreshes cannot drop
    /// each other's keys.
    pub(crate) async fn refresh_with(&self, extra: Option<MasterKey>) -> Result<(), VaultError> {
        let versions = self.store.master_key_versions().await?;
        let mut state = self.write_state();
        let mut entries = state.entries.clone();
        if let Some(key) = extra
            && !entries.iter().any(|e| e.key.same_as(&key))
        {
            entries.push(RingEntry::new(key));
        }
        *state = KeyState::matched(entries, versions)?;
        Ok(())
    }

    /// The user's data key, created (and stored) on first use. Racing creators agree
    /// because `insert_data_key` returns whichever key was stored first.
    async fn data_key_for_seal(
        &self,
        owner: UserId,
    ) -> Result<(WrappedDataKey, DataKey), VaultError> {
        if let Some(row) = self.store.data_key_for_user(owner).await? {
            let dek = self.unwrap_row(owner, &row).await?;
            return Ok((row, dek));
        }
        let (primary, kek) = self.read_state().primary_kek()?;
        let dek = DataKey::generate()?;
        let wrapped = envelope::wrap_data_key(&kek, owner, primary, &dek)?;
        let stored = self
            .store
            .insert_data_key(owner, primary, &wrapped, self.clock.now())
            .await?;
        if stored.wrapped == wrapped && stored.master_version == primary {
            return Ok((stored, dek));
        }
        let dek = self.unwrap_row(owner, &stored).await?;
        Ok((stored, dek))
    }

    /// Unwraps a data key row for `owner`. A version this process does not hold may be one
    /// another process has just rotated to with a key we were started with but had not yet
    /// seen registered, so re-read the versions once before giving up.
    pub(crate) async fn unwrap_row(
        &self,
        owner: UserId,
        row: &WrappedDataKey,
    ) -> Result<DataKey, VaultError> {
        let known = self.read_state().kek_for(row.master_version);
        let kek = if let Some(kek) = known {
            kek
        } else {
            self.refresh().await?;
            self.read_state()
                .kek_for(row.master_version)
                .ok_or(VaultError::MissingVersionKey {
                    version: row.master_version,
                })?
        };
        envelope::unwrap_data_key(&kek, owner, row.master_version, &row.wrapped).map_err(|_| {
            tracing::warn!(
                user_id = owner.0,
                data_key_id = row.id.0,
                master_version = row.master_version,
                "a stored data key failed to authenticate under its master key"
            );
            VaultError::UnwrapFailed {
                data_key_id: row.id.0,
                version: row.master_version,
            }
        })
    }

    pub(crate) fn read_state(&self) -> RwLockReadGuard<'_, KeyState> {
        // The state is replaced whole under the lock, so a panic elsewhere cannot leave it
        // half-written; reading through a poisoned lock is safe.
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn write_state(&self) -> RwLockWriteGuard<'_, KeyState> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.read_state();
        let versions: Vec<u32> = state.versions.iter().map(|v| v.version).collect();
        f.debug_struct("Vault")
            .field("primary", &state.primary)
            .field("versions", &versions)
            .field("keys_loaded", &state.entries.len())
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Sealer for Vault {
    async fn seal(
        &self,
        owner: UserId,
        context: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let (row, dek) = self.data_key_for_seal(owner).await?;
        Ok(envelope::seal(&dek, row.id, owner, context, plaintext)?)
    }

    async fn open(
        &self,
        owner: UserId,
        context: &str,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, SealError> {
        let header = envelope::parse_header(ciphertext).map_err(|_| SealError::Open)?;
        // No data key means the user was deleted (crypto-shredded) or never sealed
        // anything: either way this ciphertext cannot be theirs to open.
        let Some(row) = self
            .store
            .data_key_for_user(owner)
            .await
            .map_err(VaultError::from)?
        else {
            return Err(SealError::Open);
        };
        if row.id != header.key_id {
            return Err(SealError::Open);
        }
        let dek = self.unwrap_row(owner, &row).await?;
        Ok(envelope::open(&dek, row.id, owner, context, ciphertext)?)
    }
}
