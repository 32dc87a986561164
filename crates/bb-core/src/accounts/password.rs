//! Password policy and Argon2id hashing (SECURITY D8: at least 19 MiB, t=2, p=1).

use crate::error::CoreError;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

pub const MIN_PASSWORD_CHARS: usize = 8;
/// Long passphrases are welcome; the cap only bounds hashing cost.
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// The parameters new hashes use; older hashes are upgraded on the next good login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for HashParams {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl HashParams {
    fn argon2(self) -> Result<Argon2<'static>, CoreError> {
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| CoreError::InvalidInput(format!("bad Argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// Length rules only: no composition rules (ASVS 6.2).
pub fn validate(password: &SecretString) -> Result<(), CoreError> {
    let n = password.expose_secret().chars().count();
    if n < MIN_PASSWORD_CHARS {
        return Err(CoreError::InvalidInput(format!(
            "the password must have at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if n > MAX_PASSWORD_CHARS {
        return Err(CoreError::InvalidInput(format!(
            "the password must have at most {MAX_PASSWORD_CHARS} characters"
        )));
    }
    Ok(())
}

pub fn hash(password: &SecretString, params: HashParams) -> Result<String, CoreError> {
    let mut salt_bytes = [0u8; 16];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| CoreError::InvalidInput(format!("password hashing failed: {e}")))?;
    params
        .argon2()?
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| CoreError::InvalidInput(format!("password hashing failed: {e}")))
}

/// Constant-time verification through the PHC string's own parameters.
pub fn verify(phc: &str, password: &SecretString) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.expose_secret().as_bytes(), &parsed)
        .is_ok()
}

/// Whether a stored hash was made with other parameters than `params`.
pub fn needs_rehash(phc: &str, params: HashParams) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return true;
    };
    let Ok(stored) = Params::try_from(&parsed) else {
        return true;
    };
    parsed.algorithm.as_str() != "argon2id"
        || stored.m_cost() != params.memory_kib
        || stored.t_cost() != params.iterations
        || stored.p_cost() != params.parallelism
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pw(s: &str) -> SecretString {
        SecretString::from(s.to_owned())
    }

    #[test]
    fn length_rules_only() {
        assert!(validate(&pw("short7!")).is_err());
        assert!(validate(&pw("eightchr")).is_ok());
        assert!(validate(&pw(&"x".repeat(64))).is_ok());
        assert!(validate(&pw(&"x".repeat(200))).is_ok());
        // Counted in characters, not bytes: eight CJK characters are enough.
        assert!(validate(&pw("密码密码密码密码")).is_ok());
    }

    #[test]
    fn argon2id_with_required_parameters() {
        let params = HashParams::default();
        let h = hash(&pw("correct horse"), params).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify(&h, &pw("correct horse")));
        assert!(!verify(&h, &pw("correct horsE")));
        assert!(!needs_rehash(&h, params));
        let weaker = HashParams {
            memory_kib: 8 * 1024,
            ..params
        };
        assert!(needs_rehash(
            &hash(&pw("correct horse"), weaker).unwrap(),
            params
        ));
    }
}
