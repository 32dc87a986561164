//! The vault's one error enum, with stable codes. No message ever carries key material,
//! plaintext, or the text of a rejected key: only positions, lengths, versions and paths.

use bb_core::error::StoreError;
use bb_core::ports::SealError;
use std::path::PathBuf;

/// What the start-up check says when the keyring cannot open this database. Kept in one
/// place because operators grep for it and the tests pin it.
pub const KEY_MISMATCH_MESSAGE: &str = "the master key does not match this database (key check failed); \
     set BOOKBRIDGE_MASTER_KEY or BOOKBRIDGE_MASTER_KEY_FILE to the key this data was created with";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// An entry of a key list (1-based) is not base64.
    #[error("master key #{position} is not valid base64 (expected base64 of 32 random bytes)")]
    KeyEncoding { position: usize },
    /// An entry of a key list (1-based) decodes to the wrong number of bytes.
    #[error(
        "master key #{position} decodes to {actual} bytes; a master key is exactly 32 bytes (base64 of 32 random bytes)"
    )]
    KeyLength { position: usize, actual: usize },
    /// A key list or key file holds no key at all.
    #[error("no master key found in {source_name}")]
    EmptyKeyring { source_name: String },
    /// Reading or writing a key file failed.
    #[error("master key file {}: {source}", path.display())]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", KEY_MISMATCH_MESSAGE)]
    KeyMismatch,
    /// More than one ring key is unknown to the database, so none can be taken as "the key
    /// a rotation will switch to".
    #[error(
        "{unmatched} master keys in the keyring match no key version in this database; at most one \
         (the key a pending rotation will switch to) may be unregistered"
    )]
    AmbiguousKeys { unmatched: usize },
    /// A fresh database must start from exactly one key, or which one is version 1 is a guess.
    #[error(
        "this database has no master key yet and the keyring holds {count} keys; start with exactly one"
    )]
    TooManyKeysForNewDatabase { count: usize },
    /// A data key is wrapped by a version whose key is not loaded (or is retired).
    #[error(
        "master key version {version} is needed but not loaded; add its key to BOOKBRIDGE_MASTER_KEY or the key file"
    )]
    MissingVersionKey { version: u32 },
    #[error("master key version {version} does not exist")]
    UnknownVersion { version: u32 },
    #[error("master key version {version} is the primary key and cannot be retired; rotate first")]
    RetirePrimary { version: u32 },
    #[error(
        "master key version {version} still wraps {data_keys} data key(s); finish the rotation before retiring it"
    )]
    RetireInUse { version: u32, data_keys: u64 },
    /// The key handed to `rotate` is already an older version: rotating "to" it would
    /// silently make an old key primary again.
    #[error("the new key is already master key version {version}, which is not the primary")]
    RotateToOldKey { version: u32 },
    /// A whole batch of re-wraps lost their compare-and-set twice in a row: something else
    /// keeps writing the same data keys, so stop rather than spin.
    #[error(
        "rotation made no progress (another process is re-wrapping the same keys); run it again"
    )]
    RotationStalled,
    /// A stored wrapped data key did not authenticate under its master key.
    #[error("data key {data_key_id} could not be unwrapped with master key version {version}")]
    UnwrapFailed { data_key_id: i64, version: u32 },
    /// Bytes that are not an envelope this version understands (wrong magic, truncated).
    #[error("the ciphertext is not a bookbridge envelope")]
    Malformed,
    /// Authentication failed: wrong key, wrong owner, wrong context, or tampered bytes.
    #[error("the secret could not be decrypted")]
    Decrypt,
    /// The AEAD refused to encrypt (only possible for absurd input sizes).
    #[error("encryption failed")]
    Encrypt,
    /// The operating system's random source failed; nothing was sealed.
    #[error("the operating system's random number generator failed")]
    Random,
    #[error("key store: {0}")]
    Store(#[from] StoreError),
}

impl VaultError {
    /// The stable code for logs and for the CLI's exit messages.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::KeyEncoding { .. } => "vault_key_encoding",
            VaultError::KeyLength { .. } => "vault_key_length",
            VaultError::EmptyKeyring { .. } => "vault_keyring_empty",
            VaultError::KeyFile { .. } => "vault_key_file",
            VaultError::KeyMismatch => "vault_key_mismatch",
            VaultError::AmbiguousKeys { .. } => "vault_key_ambiguous",
            VaultError::TooManyKeysForNewDatabase { .. } => "vault_too_many_keys",
            VaultError::MissingVersionKey { .. } => "vault_key_missing",
            VaultError::UnknownVersion { .. } => "vault_unknown_version",
            VaultError::RetirePrimary { .. } => "vault_retire_primary",
            VaultError::RetireInUse { .. } => "vault_retire_in_use",
            VaultError::RotateToOldKey { .. } => "vault_rotate_old_key",
            VaultError::RotationStalled => "vault_rotation_stalled",
            VaultError::UnwrapFailed { .. } => "vault_unwrap_failed",
            VaultError::Malformed => "vault_malformed",
            VaultError::Decrypt => "vault_decrypt_failed",
            VaultError::Encrypt => "vault_encrypt_failed",
            VaultError::Random => "vault_random",
            VaultError::Store(_) => "vault_store",
        }
    }
}

impl From<VaultError> for SealError {
    /// Anything about the ciphertext itself collapses to the generic `Open` (D6); operator
    /// problems (storage, configuration, randomness) stay distinguishable for the logs.
    fn from(err: VaultError) -> Self {
        match err {
            VaultError::Malformed | VaultError::Decrypt | VaultError::UnwrapFailed { .. } => {
                SealError::Open
            }
            other => SealError::Internal(format!("{} ({})", other, other.code())),
        }
    }
}
