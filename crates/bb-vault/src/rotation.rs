//! Master key rotation, retirement and status: the `keys rotate`, `keys retire` and
//! `keys status` operations of the vault.
//!
//! Rotation is a sequence of independently committed steps, so killing it anywhere leaves
//! a state the next run finishes:
//! 1. (the CLI) append the new key to the key file, or find it already in the ring;
//! 2. register it as version max+1, which makes it primary from then on;
//! 3. re-wrap each data key under it, one compare-and-set write per key.
//!
//! A run that finds data keys not under the primary finishes step 3 before anything else.

use crate::envelope;
use crate::error::VaultError;
use crate::keyring::MasterKey;
use crate::vault::Vault;
use bb_core::error::StoreError;
use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq as _;

/// Data keys re-wrapped per read of the store. Each re-wrap is still its own write.
const REWRAP_BATCH: u32 = 256;

/// How many batches in a row may make no progress before rotation gives up.
const MAX_IDLE_BATCHES: u32 = 3;

/// What one call of [`Vault::rotate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RotationReport {
    /// The primary version once the call returned.
    pub primary_version: u32,
    /// The version this call registered for the new key, if it registered one.
    pub registered_version: Option<u32>,
    /// This call found an interrupted rotation and finished it.
    pub resumed: bool,
    /// A new key was passed but not registered, because an interrupted rotation had to be
    /// finished first. It stays in the key file; the next rotation will use it.
    pub new_key_deferred: bool,
    /// Data keys this call re-wrapped.
    pub rewrapped: u64,
    /// Data keys another writer changed first (their compare-and-set lost); harmless.
    pub skipped: u64,
}

/// One master key version, for `keys status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionStatus {
    pub version: u32,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
    pub primary: bool,
    /// Whether this process holds the version's key.
    pub loaded: bool,
    /// Data keys wrapped under this version.
    pub data_keys: u64,
}

/// The vault's key state, for `keys status`. Holds no key material.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultStatus {
    pub primary_version: u32,
    pub versions: Vec<VersionStatus>,
    /// Ring keys the database does not know (a rotation's new key, not yet registered).
    pub unregistered_keys: usize,
    /// Some data keys are not under the primary version: a rotation is unfinished.
    pub rotation_pending: bool,
}

impl Vault {
    /// Rotates to a new master key, or finishes an interrupted rotation.
    ///
    /// - If any data key is not under the primary version, only re-wraps (resume); a
    ///   `new_key` passed then is left for the next run (`new_key_deferred`).
    /// - Otherwise the new key (`new_key`, or else the ring's one unregistered key) is
    ///   registered as version max+1, becomes primary, and every data key is re-wrapped
    ///   under it.
    /// - With no new key and nothing to finish, does nothing.
    ///
    /// Safe to re-run after being killed at any point, and to run twice.
    pub async fn rotate(&self, new_key: Option<MasterKey>) -> Result<RotationReport, VaultError> {
        self.refresh().await?;
        let mut report = RotationReport {
            primary_version: self.primary_version(),
            registered_version: None,
            resumed: false,
            new_key_deferred: false,
            rewrapped: 0,
            skipped: 0,
        };
        if self.rotation_pending().await? {
            report.resumed = true;
            report.new_key_deferred = match &new_key {
                Some(key) => self.version_of(key) != Some(report.primary_version),
                None => false,
            };
            tracing::info!(
                primary = report.primary_version,
                "finishing an interrupted rotation"
            );
        } else {
            let key = match new_key {
                Some(key) => Some(key),
                None => self.unregistered_keys().into_iter().next(),
            };
            let Some(key) = key else {
                return Ok(report);
            };
            match self.version_of(&key) {
                Some(v) if v == report.primary_version => return Ok(report),
                Some(version) => return Err(VaultError::RotateToOldKey { version }),
                None => {}
            }
            let next = self
                .read_state()
                .versions
                .iter()
                .map(|v| v.version)
                .max()
                .unwrap_or(0)
                + 1;
            self.store
                .add_master_key_version(next, &key.check_value(), self.clock.now())
                .await
                .map_err(|e| match e {
                    // Another rotation registered this version first; re-running sees it.
                    StoreError::Conflict(_) => VaultError::RotationStalled,
                    other => other.into(),
                })?;
            self.refresh_with(Some(key)).await?;
            report.registered_version = Some(next);
            report.primary_version = self.primary_version();
            tracing::info!(version = next, "registered a new primary master key");
        }
        self.rewrap_all(&mut report).await?;
        tracing::info!(
            primary = report.primary_version,
            rewrapped = report.rewrapped,
            skipped = report.skipped,
            "rotation complete"
        );
        Ok(report)
    }

    /// Whether some data keys are not yet under the primary version.
    pub async fn rotation_pending(&self) -> Result<bool, VaultError> {
        let primary = self.primary_version();
        Ok(!self.store.data_keys_not_under(primary, 1).await?.is_empty())
    }

    /// Retires a version: it will no longer be needed or used to decrypt. Refuses while it
    /// is primary or any data key is wrapped under it. Retiring a retired version is a
    /// no-op.
    pub async fn retire(&self, version: u32) -> Result<(), VaultError> {
        self.refresh().await?;
        let (known, already_retired, primary) = {
            let state = self.read_state();
            let found = state.versions.iter().find(|v| v.version == version);
            (
                found.is_some(),
                found.is_some_and(|v| v.retired_at.is_some()),
                state.primary,
            )
        };
        if !known {
            return Err(VaultError::UnknownVersion { version });
        }
        if already_retired {
            return Ok(());
        }
        if version == primary {
            return Err(VaultError::RetirePrimary { version });
        }
        let data_keys = self.store.count_data_keys_under(version).await?;
        if data_keys > 0 {
            return Err(VaultError::RetireInUse { version, data_keys });
        }
        self.store
            .retire_master_key_version(version, self.clock.now())
            .await?;
        self.refresh().await?;
        tracing::info!(version, "retired a master key version");
        Ok(())
    }

    /// Versions, the primary, and data key counts per version.
    pub async fn status(&self) -> Result<VaultStatus, VaultError> {
        self.refresh().await?;
        let (primary, versions, unregistered) = {
            let state = self.read_state();
            let versions: Vec<_> = state
                .versions
                .iter()
                .map(|v| {
                    let loaded = state.entries.iter().any(|e| e.version == Some(v.version));
                    (v.clone(), loaded)
                })
                .collect();
            let unregistered = state.entries.iter().filter(|e| e.version.is_none()).count();
            (state.primary, versions, unregistered)
        };
        let mut out = Vec::with_capacity(versions.len());
        for (v, loaded) in versions {
            out.push(VersionStatus {
                data_keys: self.store.count_data_keys_under(v.version).await?,
                version: v.version,
                created_at: v.created_at,
                retired_at: v.retired_at,
                primary: v.version == primary,
                loaded,
            });
        }
        Ok(VaultStatus {
            primary_version: primary,
            versions: out,
            unregistered_keys: unregistered,
            rotation_pending: self.rotation_pending().await?,
        })
    }

    /// The database version whose check value matches `key`, retired or not.
    fn version_of(&self, key: &MasterKey) -> Option<u32> {
        let check = key.check_value();
        self.read_state()
            .versions
            .iter()
            .find(|v| bool::from(v.check_value.as_slice().ct_eq(&check)))
            .map(|v| v.version)
    }

    /// Re-wraps every data key not under the primary, batch by batch, each with its own
    /// compare-and-set write, so progress is kept however the run ends.
    async fn rewrap_all(&self, report: &mut RotationReport) -> Result<(), VaultError> {
        let (primary, primary_kek) = self.read_state().primary_kek()?;
        let mut idle_batches = 0;
        loop {
            let batch = self
                .store
                .data_keys_not_under(primary, REWRAP_BATCH)
                .await?;
            if batch.is_empty() {
                return Ok(());
            }
            let mut progressed = false;
            for row in batch {
                let dek = self.unwrap_row(row.user_id, &row).await?;
                let wrapped = envelope::wrap_data_key(&primary_kek, row.user_id, primary, &dek)?;
                if self
                    .store
                    .rewrap_data_key(row.id, row.master_version, primary, &wrapped)
                    .await?
                {
                    report.rewrapped += 1;
                    progressed = true;
                } else {
                    report.skipped += 1;
                }
            }
            if progressed {
                idle_batches = 0;
            } else {
                idle_batches += 1;
                if idle_batches >= MAX_IDLE_BATCHES {
                    return Err(VaultError::RotationStalled);
                }
            }
        }
    }
}
