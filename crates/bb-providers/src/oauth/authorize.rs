//! Starting an authorisation: the authorize URL with PKCE S256, `state` and (for OIDC
//! providers) `nonce`. Pure apart from the random numbers.
//!
//! Storing the pending request (bound to the user's session, single use, ten-minute expiry,
//! consumed atomically — SECURITY.md A3) is the connections layer's job: it keeps
//! [`AuthorizationRequest::state`] as the lookup key and the verifier, redirect URI and nonce
//! sealed beside it.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};
use url::Url;

use super::config::OAuthProvider;
use super::tokens::PkceVerifier;

/// How long a pending authorisation stays redeemable (SECURITY.md A3).
pub const PENDING_AUTHORIZATION_TTL: std::time::Duration = std::time::Duration::from_mins(10);

/// A started authorisation: send the user to `url`, keep the rest server-side.
#[derive(Debug)]
pub struct AuthorizationRequest {
    /// Where to send the user's browser. Holds no secret: only the verifier's hash.
    pub url: Url,
    /// 256 random bits, base64url. Opaque to the provider; echoed on the callback.
    pub state: String,
    /// Sent with the code to prove this client started the flow (RFC 7636).
    pub pkce_verifier: PkceVerifier,
    /// Sent when `openid` is among the scopes. Only meaningful if the ID token is verified;
    /// bookbridge does not rely on ID tokens today, so it is kept for the caller that will.
    pub nonce: Option<String>,
    /// The exact redirect URI used, to repeat in the token request.
    pub redirect_uri: Url,
}

/// Starts an authorisation with the thread-local CSPRNG.
pub fn begin(provider: &OAuthProvider, redirect_uri: &Url) -> AuthorizationRequest {
    begin_with_rng(provider, redirect_uri, &mut rand::rng())
}

/// [`begin`] with an explicit CSPRNG (tests pass a seeded one).
pub fn begin_with_rng<R: CryptoRng + RngCore>(
    provider: &OAuthProvider,
    redirect_uri: &Url,
    rng: &mut R,
) -> AuthorizationRequest {
    let pkce_verifier = PkceVerifier::new(random_b64(rng));
    let challenge = pkce_challenge(&pkce_verifier);
    let state = random_b64(rng);
    let nonce = provider
        .scopes
        .iter()
        .any(|s| s == "openid")
        .then(|| random_b64(rng));

    let mut url = provider.authorize_url.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &provider.client_id)
            .append_pair("redirect_uri", redirect_uri.as_str());
        if !provider.scopes.is_empty() {
            query.append_pair("scope", &provider.scopes.join(" "));
        }
        query
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        if let Some(nonce) = &nonce {
            query.append_pair("nonce", nonce);
        }
        for (key, value) in &provider.authorize_params {
            query.append_pair(key, value);
        }
    }

    AuthorizationRequest {
        url,
        state,
        pkce_verifier,
        nonce,
        redirect_uri: redirect_uri.clone(),
    }
}

/// The S256 challenge of a verifier: `BASE64URL(SHA256(ASCII(verifier)))` (RFC 7636 4.2).
pub fn pkce_challenge(verifier: &PkceVerifier) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.expose_secret().as_bytes()))
}

/// 32 random bytes as 43 base64url characters: a PKCE verifier (RFC 7636 4.1) or a state or
/// nonce with 256 bits of entropy.
fn random_b64<R: CryptoRng + RngCore>(rng: &mut R) -> String {
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::config::OAuthProviderConfig;
    use std::collections::{HashMap, HashSet};

    fn provider(extra: &str) -> OAuthProvider {
        let text = format!(
            r#"
            id = "example"
            name = "Example"
            authorize_url = "https://auth.example.com/authorize?tenant=books"
            token_url = "https://auth.example.com/token"
            scopes = ["openid", "offline_access"]
            client_id = "bb client"
            client_secret = "x"
            {extra}
            "#
        );
        let config: OAuthProviderConfig = toml::from_str(&text).unwrap();
        OAuthProvider::from_config(config).unwrap()
    }

    fn query(url: &Url) -> HashMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn rfc7636_appendix_b_vector() {
        let v = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(
            pkce_challenge(&v),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn the_url_carries_pkce_state_and_the_exact_redirect() {
        let p = provider("[authorize_params]\nprompt = \"consent\"");
        let redirect = Url::parse("http://127.0.0.1:8080/oauth/callback/example").unwrap();
        let req = begin(&p, &redirect);
        let q = query(&req.url);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], "bb client");
        assert_eq!(q["redirect_uri"], redirect.as_str());
        assert_eq!(q["scope"], "openid offline_access");
        assert_eq!(q["state"], req.state);
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], pkce_challenge(&req.pkce_verifier));
        assert_eq!(q["nonce"], *req.nonce.as_ref().unwrap());
        assert_eq!(q["prompt"], "consent");
        assert_eq!(q["tenant"], "books", "the configured query survives");
        assert_eq!(req.redirect_uri, redirect);
        // The verifier itself never travels in the URL.
        assert!(!req.url.as_str().contains(req.pkce_verifier.expose_secret()));
    }

    #[test]
    fn verifier_state_and_nonce_are_fresh_256_bit_values() {
        let p = provider("");
        let redirect = Url::parse("http://127.0.0.1:8080/oauth/callback/example").unwrap();
        let mut seen = HashSet::new();
        for _ in 0..200 {
            let req = begin(&p, &redirect);
            let v = req.pkce_verifier.expose_secret().to_owned();
            assert_eq!(v.len(), 43);
            assert_eq!(req.state.len(), 43);
            // RFC 7636 4.1: unreserved characters only.
            assert!(
                v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            );
            assert!(seen.insert(v));
            assert!(seen.insert(req.state));
            assert!(seen.insert(req.nonce.unwrap()));
        }
    }

    #[test]
    fn no_nonce_without_openid() {
        let mut p = provider("");
        p.scopes = vec!["books.read".into()];
        let req = begin(
            &p,
            &Url::parse("http://127.0.0.1:8080/oauth/callback/example").unwrap(),
        );
        assert!(req.nonce.is_none());
        assert!(!query(&req.url).contains_key("nonce"));
    }
}
