//! The byte formats the vault writes: sealed secrets (envelopes) and wrapped data keys,
//! and the AEAD calls that produce and check them.
//!
//! # Envelope, format v1
//!
//! ```text
//! offset  len  field
//!      0    1  magic 0xBB
//!      1    1  format version 0x01
//!      2    8  data key id (DataKeyId, i64 big-endian)
//!     10   24  XChaCha20 nonce, fresh from the OS random source for every seal
//!     34    n  ciphertext (n = plaintext length)
//!   34+n   16  Poly1305 tag
//! ```
//!
//! AEAD is XChaCha20-Poly1305 under the owner's data key. Its 192-bit nonce makes random
//! nonces safe for any number of seals under one key. The associated data is
//!
//! ```text
//! header (bytes 0..34) || lp("bookbridge/vault/v1/secret") || owner id (i64 BE) || lp(context)
//! ```
//!
//! where `lp(x)` is `x`'s length as u32 big-endian followed by `x`. Binding the whole header
//! means the version, key id and nonce cannot be edited; the domain label keeps these
//! ciphertexts from ever verifying as a wrapped key (or anything else) and vice versa;
//! the owner and the length-prefixed context bind the ciphertext to one row and column,
//! and the length prefixes stop bytes from being shifted between adjacent fields.
//!
//! # Wrapped data key, format v1
//!
//! ```text
//! offset  len  field
//!      0    1  wrap format version 0x01
//!      1   24  XChaCha20 nonce
//!     25   32  encrypted data key
//!     57   16  Poly1305 tag
//! ```
//!
//! Encrypted under the KEK, which HKDF derives from a master key with its own label. The
//! associated data is
//!
//! ```text
//! header (bytes 0..25) || lp("bookbridge/vault/v1/data-key-wrap") || user id (i64 BE)
//!   || master key version (u32 BE) || lp("user-data-key")
//! ```
//!
//! so a wrapped key copied to another user, or relabelled with another master version in
//! the database, fails to unwrap.
//!
//! Every parse checks lengths before slicing and every open authenticates before
//! decrypting, so malformed input yields an error and never a panic or partial plaintext.

use crate::error::VaultError;
use crate::keyring::KEY_LEN;
use crate::random::fill_random;
use bb_core::ids::{DataKeyId, UserId};
use bb_core::secret::SecretBytes;
use chacha20poly1305::aead::AeadInPlace as _;
use chacha20poly1305::{KeyInit as _, Tag, XChaCha20Poly1305, XNonce};
use std::fmt;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const MAGIC: u8 = 0xBB;
pub const FORMAT_V1: u8 = 0x01;
pub const NONCE_LEN: usize = 24;
pub const TAG_LEN: usize = 16;
/// Magic, version, key id, nonce.
pub const HEADER_LEN: usize = 2 + 8 + NONCE_LEN;
/// Bytes an envelope adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

const SECRET_LABEL: &[u8] = b"bookbridge/vault/v1/secret";

const WRAP_FORMAT_V1: u8 = 0x01;
const WRAP_HEADER_LEN: usize = 1 + NONCE_LEN;
/// Length of a stored wrapped data key.
pub const WRAPPED_LEN: usize = WRAP_HEADER_LEN + KEY_LEN + TAG_LEN;
const WRAP_LABEL: &[u8] = b"bookbridge/vault/v1/data-key-wrap";
const WRAP_PURPOSE: &[u8] = b"user-data-key";

/// A per-user data-encryption key. Zeroized on drop; `Debug` prints `[redacted]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; KEY_LEN]);

impl DataKey {
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = [0u8; KEY_LEN];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.0).into())
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([redacted])")
    }
}

/// The parsed public part of an envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeHeader {
    pub key_id: DataKeyId,
    pub nonce: [u8; NONCE_LEN],
}

/// Reads an envelope's header without decrypting. Fails on anything shorter than a header
/// plus tag or with an unknown magic or version.
pub fn parse_header(envelope: &[u8]) -> Result<EnvelopeHeader, VaultError> {
    if envelope.len() < OVERHEAD {
        return Err(VaultError::Malformed);
    }
    let [magic, version, rest @ ..] = envelope else {
        return Err(VaultError::Malformed);
    };
    if *magic != MAGIC || *version != FORMAT_V1 {
        return Err(VaultError::Malformed);
    }
    let (id, rest) = rest.split_first_chunk::<8>().ok_or(VaultError::Malformed)?;
    let (nonce, _) = rest
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(VaultError::Malformed)?;
    Ok(EnvelopeHeader {
        key_id: DataKeyId(i64::from_be_bytes(*id)),
        nonce: *nonce,
    })
}

/// Seals `plaintext` for `owner` at `context` under a data key.
pub fn seal(
    dek: &DataKey,
    key_id: DataKeyId,
    owner: UserId,
    context: &str,
    plaintext: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
    out.push(MAGIC);
    out.push(FORMAT_V1);
    out.extend_from_slice(&key_id.0.to_be_bytes());
    out.extend_from_slice(&nonce);
    let aad = secret_aad(&out, owner, context);
    out.extend_from_slice(plaintext);
    let tag = dek
        .cipher()
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), &aad, &mut out[HEADER_LEN..])
        .map_err(|_| VaultError::Encrypt)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Opens an envelope sealed by [`seal`] with the same key id, owner and context. Any
/// difference, or any changed byte, fails with an error and no plaintext.
pub fn open(
    dek: &DataKey,
    key_id: DataKeyId,
    owner: UserId,
    context: &str,
    envelope: &[u8],
) -> Result<SecretBytes, VaultError> {
    let header = parse_header(envelope)?;
    if header.key_id != key_id {
        return Err(VaultError::Decrypt);
    }
    let aad = secret_aad(&envelope[..HEADER_LEN], owner, context);
    let (body, tag) = envelope[HEADER_LEN..].split_at(envelope.len() - OVERHEAD);
    let mut buf = body.to_vec();
    // Poly1305 is checked before the keystream is applied, so on failure `buf` still
    // holds ciphertext: there is no partial plaintext to leak.
    dek.cipher()
        .decrypt_in_place_detached(
            XNonce::from_slice(&header.nonce),
            &aad,
            &mut buf,
            Tag::from_slice(tag),
        )
        .map_err(|_| VaultError::Decrypt)?;
    Ok(SecretBytes::new(buf))
}

fn secret_aad(header: &[u8], owner: UserId, context: &str) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + 4 + SECRET_LABEL.len() + 8 + 4 + context.len());
    aad.extend_from_slice(header);
    push_length_prefixed(&mut aad, SECRET_LABEL);
    aad.extend_from_slice(&owner.0.to_be_bytes());
    push_length_prefixed(&mut aad, context.as_bytes());
    aad
}

/// Wraps a data key under a KEK for one user and master key version.
pub(crate) fn wrap_data_key(
    kek: &[u8; KEY_LEN],
    user: UserId,
    master_version: u32,
    dek: &DataKey,
) -> Result<Vec<u8>, VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;
    let mut out = Vec::with_capacity(WRAPPED_LEN);
    out.push(WRAP_FORMAT_V1);
    out.extend_from_slice(&nonce);
    let aad = wrap_aad(&out, user, master_version);
    out.extend_from_slice(&dek.0);
    let tag = XChaCha20Poly1305::new(kek.into())
        .encrypt_in_place_detached(
            XNonce::from_slice(&nonce),
            &aad,
            &mut out[WRAP_HEADER_LEN..],
        )
        .map_err(|_| VaultError::Encrypt)?;
    out.extend_from_slice(&tag);
    Ok(out)
}

/// Reverses [`wrap_data_key`]; `Decrypt` when the KEK, user or version differ or the bytes
/// were changed, `Malformed` when they are not a wrapped key at all.
pub(crate) fn unwrap_data_key(
    kek: &[u8; KEY_LEN],
    user: UserId,
    master_version: u32,
    wrapped: &[u8],
) -> Result<DataKey, VaultError> {
    if wrapped.len() != WRAPPED_LEN || wrapped[0] != WRAP_FORMAT_V1 {
        return Err(VaultError::Malformed);
    }
    let aad = wrap_aad(&wrapped[..WRAP_HEADER_LEN], user, master_version);
    let nonce = XNonce::from_slice(&wrapped[1..WRAP_HEADER_LEN]);
    let (body, tag) = wrapped[WRAP_HEADER_LEN..].split_at(KEY_LEN);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(body);
    XChaCha20Poly1305::new(kek.into())
        .decrypt_in_place_detached(nonce, &aad, key.as_mut_slice(), Tag::from_slice(tag))
        .map_err(|_| VaultError::Decrypt)?;
    Ok(DataKey(*key))
}

fn wrap_aad(header: &[u8], user: UserId, master_version: u32) -> Vec<u8> {
    let mut aad =
        Vec::with_capacity(header.len() + 4 + WRAP_LABEL.len() + 8 + 4 + 4 + WRAP_PURPOSE.len());
    aad.extend_from_slice(header);
    push_length_prefixed(&mut aad, WRAP_LABEL);
    aad.extend_from_slice(&user.0.to_be_bytes());
    aad.extend_from_slice(&master_version.to_be_bytes());
    push_length_prefixed(&mut aad, WRAP_PURPOSE);
    aad
}

fn push_length_prefixed(out: &mut Vec<u8>, field: &[u8]) {
    // Contexts are short names; one over 4 GiB cannot reach here from a real caller, and
    // saturating keeps the encoding total rather than panicking.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DataKey {
        DataKey::from_bytes([7; KEY_LEN])
    }

    #[test]
    fn round_trip_and_header() {
        let ct = seal(&key(), DataKeyId(42), UserId(1), "ctx", b"hello").unwrap();
        assert_eq!(ct.len(), OVERHEAD + 5);
        assert_eq!(parse_header(&ct).unwrap().key_id, DataKeyId(42));
        let pt = open(&key(), DataKeyId(42), UserId(1), "ctx", &ct).unwrap();
        assert_eq!(pt.expose(), b"hello");
    }

    #[test]
    fn every_truncation_is_rejected_without_panic() {
        let ct = seal(&key(), DataKeyId(1), UserId(1), "ctx", b"some secret").unwrap();
        for len in 0..ct.len() {
            assert!(open(&key(), DataKeyId(1), UserId(1), "ctx", &ct[..len]).is_err());
        }
    }

    #[test]
    fn length_prefix_stops_field_shifting() {
        // Without length prefixes, ("ab", owner) and ("a", owner') could collide in a naive
        // concatenation; here the context alone differing by a shifted byte must fail.
        let ct = seal(&key(), DataKeyId(1), UserId(1), "ab", b"x").unwrap();
        assert!(open(&key(), DataKeyId(1), UserId(1), "a", &ct).is_err());
        assert!(open(&key(), DataKeyId(1), UserId(1), "abc", &ct).is_err());
    }

    #[test]
    fn wrapped_key_is_bound_to_user_and_version() {
        let kek = [9u8; KEY_LEN];
        let wrapped = wrap_data_key(&kek, UserId(5), 1, &key()).unwrap();
        assert_eq!(wrapped.len(), WRAPPED_LEN);
        assert!(unwrap_data_key(&kek, UserId(5), 1, &wrapped).is_ok());
        assert!(unwrap_data_key(&kek, UserId(6), 1, &wrapped).is_err());
        assert!(unwrap_data_key(&kek, UserId(5), 2, &wrapped).is_err());
        assert!(unwrap_data_key(&[8u8; KEY_LEN], UserId(5), 1, &wrapped).is_err());
    }
}
