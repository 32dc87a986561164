//! The sealing port: turn a secret into ciphertext bound to its owner and place, and back.

use crate::ids::UserId;
use crate::secret::SecretBytes;

/// Why a secret could not be sealed or opened. Deliberately coarse: a failed open never
/// says which check failed (D6).
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the secret could not be decrypted")]
    Open,
    #[error("the owner has no data key")]
    NoKey,
    #[error("vault failure: {0}")]
    Internal(String),
}

/// Seals secrets for one owner. `context` names the row and column the ciphertext will
/// live in (for example `secret:connection/12/refresh_token`); it becomes associated
/// data, so a ciphertext moved anywhere else fails to open.
#[async_trait::async_trait]
pub trait Sealer: Send + Sync + std::fmt::Debug {
    async fn seal(
        &self,
        owner: UserId,
        context: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SealError>;
    async fn open(
        &self,
        owner: UserId,
        context: &str,
        ciphertext: &[u8],
    ) -> Result<SecretBytes, SealError>;
}
