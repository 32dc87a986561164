//! Checking `x-adp-*` request signatures the way the dossier (§4.1) says Amazon does:
//! RSA PKCS#1 v1.5 SHA-256 over `METHOD\nPATH_AND_QUERY\nTIMESTAMP\nBODY\nADP_TOKEN` with the
//! public half of the key issued at registration, the timestamp taken from after the `:`
//! of `x-adp-signature`, and a stale timestamp refused.
//!
//! Written from the dossier, not from our client: the request target is the one the server
//! received, so a client that signs something other than what it sends fails here.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use ring::signature::{RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, UnparsedPublicKey};

/// How far a signing timestamp may be from the server's clock. The dossier documents no
/// window; ten minutes either way is our assumption, generous enough for clock skew.
pub const MAX_SKEW_MINUTES: i64 = 10;

/// Why a signature was refused (for the fake's log and tests; the client only ever sees a
/// generic 401, as from Amazon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureProblem {
    WrongAlgorithm,
    Malformed,
    BadTimestamp,
    Stale,
    Mismatch,
}

/// The timestamp forms the dossier says the server accepts: `…ffffffZ` (mkb79 until 2024),
/// `…ffffff+00:00Z` (mkb79 since), RFC 3339 (Libation).
pub fn parse_timestamp(ts: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(ts) {
        return Some(t.with_timezone(&Utc));
    }
    let trimmed = ts.strip_suffix('Z')?;
    if let Ok(t) = DateTime::parse_from_rfc3339(trimmed) {
        return Some(t.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(trimmed, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|n| n.and_utc())
}

/// Verifies one request. `public_key_der` is the PKCS#1 `RSAPublicKey`.
#[allow(clippy::too_many_arguments)] // the five signed fields plus the three headers' inputs
pub fn verify(
    public_key_der: &[u8],
    alg: Option<&str>,
    signature_header: Option<&str>,
    adp_token: &str,
    method: &str,
    path_and_query: &str,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), SignatureProblem> {
    if alg != Some("SHA256withRSA:1.0") {
        return Err(SignatureProblem::WrongAlgorithm);
    }
    let header = signature_header.ok_or(SignatureProblem::Malformed)?;
    // Base64 has no `:`; the timestamp does. The first `:` separates them.
    let (sig_b64, ts) = header.split_once(':').ok_or(SignatureProblem::Malformed)?;
    let sig = STANDARD
        .decode(sig_b64)
        .map_err(|_| SignatureProblem::Malformed)?;
    let at = parse_timestamp(ts).ok_or(SignatureProblem::BadTimestamp)?;
    if (now - at).abs() > Duration::minutes(MAX_SKEW_MINUTES) {
        return Err(SignatureProblem::Stale);
    }
    let mut message = Vec::new();
    for (i, part) in [
        method.as_bytes(),
        path_and_query.as_bytes(),
        ts.as_bytes(),
        body,
        adp_token.as_bytes(),
    ]
    .iter()
    .enumerate()
    {
        if i > 0 {
            message.push(b'\n');
        }
        message.extend_from_slice(part);
    }
    UnparsedPublicKey::new(
        &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
        public_key_der,
    )
    .verify(&message, &sig)
    .map_err(|_| SignatureProblem::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_timestamp_form_parses() {
        let want = DateTime::parse_from_rfc3339("2025-03-02T10:15:30.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        for ts in [
            "2025-03-02T10:15:30.123456Z",
            "2025-03-02T10:15:30.123456+00:00Z",
            "2025-03-02T10:15:30.123456+00:00",
        ] {
            assert_eq!(parse_timestamp(ts), Some(want), "{ts}");
        }
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
