//! Random bearer secrets (session ids, personal access tokens) and how they are stored:
//! only a SHA-256 hash, which is enough because the secrets carry 256 random bits.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

/// Prefix of personal access tokens, so secret scanners and people can recognise them.
pub const PAT_PREFIX: &str = "bbpat_";

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    let s = URL_SAFE_NO_PAD.encode(&buf);
    zeroize::Zeroize::zeroize(&mut buf);
    s
}

/// A new session id (256 bits).
pub fn new_session_id() -> SecretString {
    SecretString::from(random_b64(32))
}

/// A new personal access token (256 bits).
pub fn new_personal_token() -> SecretString {
    SecretString::from(format!("{PAT_PREFIX}{}", random_b64(32)))
}

/// What the database keeps instead of the secret.
pub fn hash(secret: &SecretString) -> String {
    hex::encode(Sha256::digest(secret.expose_secret().as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_long_random_and_hashed() {
        let id = new_session_id();
        // 32 bytes → 43 base64url characters: ≥128 bits.
        assert_eq!(id.expose_secret().len(), 43);
        let all: HashSet<String> = (0..1000)
            .map(|_| new_session_id().expose_secret().to_owned())
            .collect();
        assert_eq!(all.len(), 1000);
        let h = hash(&id);
        assert_eq!(h.len(), 64);
        assert!(!h.contains(id.expose_secret()));
        assert!(new_personal_token().expose_secret().starts_with(PAT_PREFIX));
    }
}
