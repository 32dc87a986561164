//! The vault's one source of randomness: the operating system's generator, fallible, so a
//! broken entropy source stops sealing instead of producing a predictable key or nonce.

use crate::error::VaultError;
use rand::TryRngCore as _;
use rand::rngs::OsRng;

pub(crate) fn fill_random(buf: &mut [u8]) -> Result<(), VaultError> {
    OsRng.try_fill_bytes(buf).map_err(|_| VaultError::Random)
}
