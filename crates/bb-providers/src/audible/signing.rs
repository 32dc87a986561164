//! Request signing with the device key (dossier §4.1): `x-adp-token`, `x-adp-alg` and
//! `x-adp-signature` = base64(RSA PKCS#1 v1.5 SHA-256 over
//! `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nBODY\nADP_TOKEN`) + `:` + timestamp.
//!
//! The RSA work is done by `ring` (already in the tree through rustls), not the `rsa` crate
//! (RUSTSEC-2023-0071). `ring` signs only with keys of 2048 bits or more. The dossier does
//! not promise a key size (its fixtures use 1024-bit keys), so a key `ring` refuses is not
//! an error for the connection: [`DeviceKey::parse`] says so, and the client falls back to
//! the access-token header (§4.2), which Amazon accepts for every call we make.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bb_core::secret::{ExposeSecret, SecretBytes, SecretString};
use chrono::{DateTime, Utc};
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};

/// The `x-adp-alg` value.
pub const ADP_ALG: &str = "SHA256withRSA:1.0";
/// Header names, lower-case as sent by the reference client.
pub const HEADER_ADP_TOKEN: &str = "x-adp-token";
pub const HEADER_ADP_ALG: &str = "x-adp-alg";
pub const HEADER_ADP_SIGNATURE: &str = "x-adp-signature";

/// A device private key ready to sign. `Debug` shows only the modulus size.
pub struct DeviceKey {
    pair: RsaKeyPair,
    rng: SystemRandom,
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "DeviceKey({} bits)",
            self.pair.public().modulus_len() * 8
        )
    }
}

/// Why a device key cannot be used for signing. Never carries key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the device key is not a PEM RSA private key")]
    NotPem,
    /// A well-formed key the signer does not support (below 2048 bits, odd exponent). The
    /// connection still works through the access-token header.
    #[error("the device key cannot be used for signing ({0})")]
    Unsupported(&'static str),
}

impl DeviceKey {
    /// Parses the `device_private_key` PEM of the registration: PKCS#1
    /// (`BEGIN RSA PRIVATE KEY`, what the dossier documents) or PKCS#8 (`BEGIN PRIVATE KEY`,
    /// accepted because re-exported keys often take that form). Some clients store the PEM
    /// with literal `\n` sequences; those are tolerated too.
    pub fn parse(pem: &SecretString) -> Result<DeviceKey, KeyError> {
        let text = pem.expose_secret().replace("\\n", "\n");
        let (pkcs8, der) = pem_body(&text).ok_or(KeyError::NotPem)?;
        let pair = if pkcs8 {
            RsaKeyPair::from_pkcs8(der.expose())
        } else {
            RsaKeyPair::from_der(der.expose())
        }
        .map_err(|e| match e.to_string().as_str() {
            "InvalidEncoding" | "InvalidComponent" | "WrongAlgorithm" | "VersionNotSupported" => {
                KeyError::NotPem
            }
            "TooSmall" => KeyError::Unsupported("smaller than 2048 bits"),
            "TooLarge" => KeyError::Unsupported("larger than 4096 bits"),
            _ => KeyError::Unsupported("refused by the signer"),
        })?;
        Ok(DeviceKey {
            pair,
            rng: SystemRandom::new(),
        })
    }

    /// Signs `message`, returning the signature in standard base64 with padding.
    pub fn sign_b64(&self, message: &[u8]) -> String {
        let mut sig = vec![0u8; self.pair.public().modulus_len()];
        // PKCS#1 v1.5 signing only fails for a too-short output buffer, which the modulus
        // length rules out; an empty signature would then be rejected by Amazon as a 401,
        // which is the honest outcome.
        if self
            .pair
            .sign(&RSA_PKCS1_SHA256, &self.rng, message, &mut sig)
            .is_err()
        {
            sig.clear();
        }
        STANDARD.encode(sig)
    }
}

/// The decoded body of the first PEM block, and whether it is PKCS#8.
fn pem_body(text: &str) -> Option<(bool, SecretBytes)> {
    let begin = text.find("-----BEGIN ")?;
    let rest = &text[begin + "-----BEGIN ".len()..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    let pkcs8 = match label {
        "RSA PRIVATE KEY" => false,
        "PRIVATE KEY" => true,
        _ => return None,
    };
    let body = &rest[label_end + 5..];
    let end = body.find("-----END ")?;
    let b64: String = body[..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = STANDARD.decode(b64).ok()?;
    Some((pkcs8, SecretBytes::new(der)))
}

/// The signing timestamp as recommended by the dossier: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn timestamp(now: DateTime<Utc>) -> String {
    now.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

/// The exact string that is signed. `path_and_query` is the request target as it goes on
/// the wire (already percent-encoded), `body` the body as sent (empty for GET).
pub fn string_to_sign(
    method: &str,
    path_and_query: &str,
    timestamp: &str,
    body: &[u8],
    adp_token: &str,
) -> Vec<u8> {
    let mut s = Vec::with_capacity(path_and_query.len() + body.len() + adp_token.len() + 64);
    s.extend_from_slice(method.to_ascii_uppercase().as_bytes());
    s.push(b'\n');
    s.extend_from_slice(path_and_query.as_bytes());
    s.push(b'\n');
    s.extend_from_slice(timestamp.as_bytes());
    s.push(b'\n');
    s.extend_from_slice(body);
    s.push(b'\n');
    s.extend_from_slice(adp_token.as_bytes());
    s
}

/// The three headers of a signed request (name, value). The values hold the adp token,
/// so callers must not log them.
pub fn signed_headers(
    key: &DeviceKey,
    adp_token: &SecretString,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    timestamp: &str,
) -> [(&'static str, String); 3] {
    let token = adp_token.expose_secret();
    let signature = key.sign_b64(&string_to_sign(
        method,
        path_and_query,
        timestamp,
        body,
        token,
    ));
    [
        (HEADER_ADP_TOKEN, token.to_owned()),
        (HEADER_ADP_ALG, ADP_ALG.to_owned()),
        (HEADER_ADP_SIGNATURE, format!("{signature}:{timestamp}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn string_to_sign_is_five_lf_joined_fields_without_trailing_newline() {
        let s = string_to_sign("get", "/1.0/library?a=1%2C2", "T", b"", "{enc:x}");
        assert_eq!(s, b"GET\n/1.0/library?a=1%2C2\nT\n\n{enc:x}");
    }

    #[test]
    fn timestamp_has_microseconds_and_z() {
        let t = Utc.with_ymd_and_hms(2025, 3, 2, 10, 15, 30).unwrap();
        assert_eq!(timestamp(t), "2025-03-02T10:15:30.000000Z");
    }

    #[test]
    fn garbage_keys_are_refused_without_echoing_them() {
        let e = DeviceKey::parse(&SecretString::from("hunter2-not-a-key")).unwrap_err();
        assert_eq!(e, KeyError::NotPem);
        assert!(!e.to_string().contains("hunter2"));
        let e = DeviceKey::parse(&SecretString::from(
            "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
        ))
        .unwrap_err();
        assert_eq!(e, KeyError::NotPem);
    }
}
