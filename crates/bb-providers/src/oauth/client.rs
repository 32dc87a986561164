//! The back-channel calls of OAuth 2: code exchange, refresh, revocation, userinfo. All go
//! through the shared no-redirect client; time comes from the injected clock.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bb_core::clock::Clock;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::ExposeSecret as _;
use serde_json::{Map, Value};
use tracing::{info, warn};
use url::Url;
use url::form_urlencoded;

use super::config::{OAuthProvider, TokenEndpointAuth};
use super::error::OAuthError;
use super::tokens::{AccessToken, AuthorizationCode, PkceVerifier, RefreshToken, TokenSet};
use crate::http::{self, OutageKind, ResponseClass};

/// Which token a revocation is about (RFC 7009 `token_type_hint`).
#[derive(Debug, Clone, Copy)]
pub enum RevocableToken<'a> {
    Refresh(&'a RefreshToken),
    Access(&'a AccessToken),
}

impl RevocableToken<'_> {
    fn hint(&self) -> &'static str {
        match self {
            Self::Refresh(_) => "refresh_token",
            Self::Access(_) => "access_token",
        }
    }

    fn value(&self) -> &str {
        match self {
            Self::Refresh(t) => t.expose_secret(),
            Self::Access(t) => t.expose_secret(),
        }
    }
}

/// A revocation in [`OAuthClient::revoke_all`] that did not go through.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("revoking the {token_type} failed: {error}")]
pub struct RevokeFailure {
    /// `refresh_token` or `access_token`.
    pub token_type: &'static str,
    pub error: OAuthError,
}

/// Who the user is at the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// `sub` (OIDC) or `id`: stable, used to refuse linking one account twice.
    pub external_id: String,
    /// `name`, `preferred_username`, `username` or `login`, whichever comes first.
    pub display_name: Option<String>,
}

/// Makes the back-channel requests of the flow.
#[derive(Debug, Clone)]
pub struct OAuthClient {
    http: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl OAuthClient {
    /// `http` should come from [`crate::http::build_client`] (no redirects, timeouts).
    pub fn new(http: reqwest::Client, clock: Arc<dyn Clock>) -> Self {
        Self { http, clock }
    }

    /// Redeems an authorisation code (RFC 6749 4.1.3) with its PKCE verifier. `redirect_uri`
    /// must be the exact one sent in the authorisation request.
    #[tracing::instrument(name = "oauth.exchange_code", skip_all, fields(provider = %provider.id))]
    pub async fn exchange_code(
        &self,
        provider: &OAuthProvider,
        code: &AuthorizationCode,
        verifier: &PkceVerifier,
        redirect_uri: &Url,
    ) -> Result<TokenSet, OAuthError> {
        let params = [
            ("grant_type", "authorization_code"),
            ("code", code.expose_secret()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.expose_secret()),
        ];
        self.token_request(
            provider,
            &params,
            &[code.expose_secret(), verifier.expose_secret()],
        )
        .await
    }

    /// Trades a refresh token for new tokens (RFC 6749 6).
    ///
    /// The returned [`TokenSet::refresh_token`] is the rotated token, or `None` when the
    /// provider sent none — then keep `refresh_token` (see
    /// [`TokenSet::refresh_token_after_refresh`]). Store the result before using the new
    /// access token.
    ///
    /// Never retried here, and never to be retried blindly: with rotating refresh tokens a
    /// second use of the same token is taken as theft and revokes the whole grant.
    #[tracing::instrument(name = "oauth.refresh", skip_all, fields(provider = %provider.id))]
    pub async fn refresh(
        &self,
        provider: &OAuthProvider,
        refresh_token: &RefreshToken,
    ) -> Result<TokenSet, OAuthError> {
        let params = [
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.expose_secret()),
        ];
        self.token_request(provider, &params, &[refresh_token.expose_secret()])
            .await
    }

    /// Revokes one token (RFC 7009). A 200 for a token the provider does not know is success
    /// (2.2); a 503 comes back as [`OAuthError::RateLimited`] with its `Retry-After` so the
    /// caller retries later (2.2.1).
    #[tracing::instrument(name = "oauth.revoke", skip_all, fields(provider = %provider.id, hint = token.hint()))]
    pub async fn revoke(
        &self,
        provider: &OAuthProvider,
        token: RevocableToken<'_>,
    ) -> Result<(), OAuthError> {
        let Some(url) = &provider.revocation_url else {
            return Err(OAuthError::NotSupported("revocation"));
        };
        let params = [("token", token.value()), ("token_type_hint", token.hint())];
        let request = self.authenticated_post(provider, url, &params);
        let (status, headers, body) = http::send(request).await.map_err(outage)?;
        let result = match http::classify_status(status, &headers, self.clock.now()) {
            ResponseClass::Success => Ok(()),
            other => Err(error_from_class(
                other,
                status.as_u16(),
                &body,
                &[token.value()],
            )),
        };
        log_result("revocation", status.as_u16(), result.as_ref().err());
        result
    }

    /// Disconnect's revocation (SECURITY.md C1): the refresh token first — revoking it ends
    /// the grant, so a leaked access token dies with it at most providers — then the access
    /// token. Stops at the first failure so the caller can retry both later (revoking an
    /// already revoked token is a harmless 200). An access token the provider cannot revoke
    /// (`unsupported_token_type`) after a successful refresh-token revocation counts as done.
    pub async fn revoke_all(
        &self,
        provider: &OAuthProvider,
        refresh_token: Option<&RefreshToken>,
        access_token: Option<&AccessToken>,
    ) -> Result<(), RevokeFailure> {
        if let Some(rt) = refresh_token {
            self.revoke(provider, RevocableToken::Refresh(rt))
                .await
                .map_err(|error| RevokeFailure {
                    token_type: "refresh_token",
                    error,
                })?;
        }
        if let Some(at) = access_token {
            match self.revoke(provider, RevocableToken::Access(at)).await {
                Ok(()) => {}
                Err(OAuthError::Provider { code, .. })
                    if code == "unsupported_token_type" && refresh_token.is_some() => {}
                Err(error) => {
                    return Err(RevokeFailure {
                        token_type: "access_token",
                        error,
                    });
                }
            }
        }
        Ok(())
    }

    /// Who the access token belongs to, from the configured userinfo endpoint.
    #[tracing::instrument(name = "oauth.userinfo", skip_all, fields(provider = %provider.id))]
    pub async fn userinfo(
        &self,
        provider: &OAuthProvider,
        access_token: &AccessToken,
    ) -> Result<UserInfo, OAuthError> {
        let Some(url) = &provider.userinfo_url else {
            return Err(OAuthError::NotSupported("userinfo"));
        };
        let request = self
            .http
            .get(url.clone())
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, bearer(access_token)?);
        let (status, headers, body) = http::send(request).await.map_err(outage)?;
        let result = match http::classify_status(status, &headers, self.clock.now()) {
            ResponseClass::Success => parse_userinfo(&body),
            ResponseClass::Rejected { status: 401 } => Err(OAuthError::InvalidToken),
            other => Err(error_from_class(
                other,
                status.as_u16(),
                &body,
                &[access_token.expose_secret()],
            )),
        };
        log_result("userinfo", status.as_u16(), result.as_ref().err());
        result
    }

    async fn token_request(
        &self,
        provider: &OAuthProvider,
        params: &[(&str, &str)],
        sent_secrets: &[&str],
    ) -> Result<TokenSet, OAuthError> {
        let request = self.authenticated_post(provider, &provider.token_url, params);
        let (status, headers, body) = http::send(request).await.map_err(outage)?;
        let now = self.clock.now();
        let result = match http::classify_status(status, &headers, now) {
            ResponseClass::Success => parse_token_response(&body, now, sent_secrets),
            other => Err(error_from_class(
                other,
                status.as_u16(),
                &body,
                sent_secrets,
            )),
        };
        log_result("token", status.as_u16(), result.as_ref().err());
        result
    }

    /// A form POST with client authentication. The form and the `Authorization` header hold
    /// secrets: the header is marked sensitive so reqwest/hyper never print it.
    fn authenticated_post(
        &self,
        provider: &OAuthProvider,
        url: &Url,
        params: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(params);
        let mut request = self
            .http
            .post(url.clone())
            .header(ACCEPT, "application/json")
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded");
        match (provider.auth_method, &provider.client_secret) {
            (TokenEndpointAuth::ClientSecretBasic, Some(secret)) => {
                request = request.header(
                    AUTHORIZATION,
                    basic_auth(&provider.client_id, secret.expose_secret()),
                );
            }
            (TokenEndpointAuth::ClientSecretPost, Some(secret)) => {
                form.append_pair("client_id", &provider.client_id);
                form.append_pair("client_secret", secret.expose_secret());
            }
            // A public client, or (impossible after validation) a confidential one without
            // its secret: identify ourselves and let the provider decide.
            _ => {
                form.append_pair("client_id", &provider.client_id);
            }
        }
        request.body(form.finish())
    }
}

/// `Basic base64(urlenc(id) ":" urlenc(secret))` — RFC 6749 2.3.1 requires the form-encoding
/// first, so a secret holding `:` cannot split the pair and `+`/`%` survive the round trip.
/// Providers that skip the decoding step break on such secrets; those need
/// `client_secret_post`.
pub(crate) fn basic_auth(client_id: &str, secret: &str) -> HeaderValue {
    let encode = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let credentials = STANDARD.encode(format!("{}:{}", encode(client_id), encode(secret)));
    // Base64 output is always a valid header value.
    let mut value = HeaderValue::try_from(format!("Basic {credentials}"))
        .unwrap_or_else(|_| HeaderValue::from_static("Basic"));
    value.set_sensitive(true);
    value
}

fn bearer(token: &AccessToken) -> Result<HeaderValue, OAuthError> {
    // A token with characters a header cannot carry is a token no provider could have
    // meant: treat it as a garbage answer from whoever issued it.
    let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
        .map_err(|_| OAuthError::Outage(OutageKind::GarbageBody))?;
    value.set_sensitive(true);
    Ok(value)
}

#[allow(clippy::needless_pass_by_value)] // used as `map_err(outage)`
fn outage(kind: OutageKind) -> OAuthError {
    OAuthError::Outage(kind)
}

fn log_result(endpoint: &'static str, status: u16, error: Option<&OAuthError>) {
    match error {
        None => info!(endpoint, status, "oauth request succeeded"),
        Some(e) => warn!(endpoint, status, code = e.code(), "oauth request failed"),
    }
}

/// Turns a non-success answer into an error. A 4xx (or a 200 from providers that report
/// errors that way) with an RFC 6749 5.2 body becomes the precise error; anything else keeps
/// its classification.
fn error_from_class(
    class: ResponseClass,
    status: u16,
    body: &[u8],
    sent_secrets: &[&str],
) -> OAuthError {
    match class {
        ResponseClass::RateLimited { retry_after } => OAuthError::RateLimited { retry_after },
        ResponseClass::Outage(kind) => OAuthError::Outage(kind),
        ResponseClass::Rejected { status } => match protocol_error(body, sent_secrets) {
            Some(error) => error,
            None if status == 401 => OAuthError::InvalidClient,
            None => OAuthError::Rejected { status },
        },
        ResponseClass::Success => {
            // Callers handle success themselves; reaching here is a bug in the caller.
            OAuthError::Rejected { status }
        }
    }
}

/// The `error` / `error_description` of an RFC 6749 5.2 body, if it is one.
fn protocol_error(body: &[u8], sent_secrets: &[&str]) -> Option<OAuthError> {
    let object: Map<String, Value> = serde_json::from_slice(body).ok()?;
    let code = object.get("error")?.as_str()?;
    let description = object
        .get("error_description")
        .and_then(Value::as_str)
        .map(|d| provider_text(d, sent_secrets));
    Some(match code {
        "invalid_grant" => OAuthError::InvalidGrant { description },
        "invalid_client" => OAuthError::InvalidClient,
        "invalid_token" => OAuthError::InvalidToken,
        other => OAuthError::Provider {
            code: provider_text(other, sent_secrets)
                .chars()
                .take(64)
                .collect(),
            description,
        },
    })
}

/// Provider-written text kept for operators: printable, bounded, and dropped entirely if it
/// echoes anything we sent (a provider quoting the refresh token back must not put it in our
/// logs or database).
fn provider_text(text: &str, sent_secrets: &[&str]) -> String {
    if sent_secrets
        .iter()
        .any(|s| !s.is_empty() && text.contains(s))
    {
        return "[provider text withheld: it quoted a credential]".to_owned();
    }
    text.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// Parses a successful token response (RFC 6749 5.1), tolerating what real providers do:
/// no `expires_in`, `expires_in` as a string, `scope` as a list, lowercase `bearer`.
fn parse_token_response(
    body: &[u8],
    now: chrono::DateTime<chrono::Utc>,
    sent_secrets: &[&str],
) -> Result<TokenSet, OAuthError> {
    let garbage = || OAuthError::Outage(OutageKind::GarbageBody);
    // serde's error text may quote the body; it is never shown.
    let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| garbage())?;
    // Some providers (GitHub among them) answer errors with 200.
    if object.contains_key("error") {
        return Err(protocol_error(body, sent_secrets).unwrap_or_else(garbage));
    }
    let access_token = object
        .get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(garbage)?;
    let token_type = object
        .get("token_type")
        .and_then(Value::as_str)
        // RFC 6749 requires it; the few providers that omit it mean Bearer.
        .unwrap_or("Bearer");
    if !token_type.eq_ignore_ascii_case("bearer") {
        return Err(OAuthError::Provider {
            code: "unsupported_token_type".to_owned(),
            description: Some(format!(
                "token_type {:?} is not Bearer",
                provider_text(token_type, sent_secrets)
            )),
        });
    }
    let expires_in = match object.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    // Ten years is "does not expire" for our purposes and keeps the addition in range.
    let expires_at = expires_in.map(|secs| {
        let secs = i64::try_from(secs.min(10 * 365 * 24 * 3600)).unwrap_or(0);
        now + chrono::Duration::seconds(secs)
    });
    let refresh_token = object
        .get("refresh_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(RefreshToken::new);
    let scope = match object.get("scope") {
        Some(Value::String(s)) => Some(s.split_whitespace().map(str::to_owned).collect()),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    };
    Ok(TokenSet {
        access_token: AccessToken::new(access_token),
        token_type: token_type.to_owned(),
        expires_at,
        refresh_token,
        scope,
    })
}

fn parse_userinfo(body: &[u8]) -> Result<UserInfo, OAuthError> {
    let garbage = || OAuthError::Outage(OutageKind::GarbageBody);
    let object: Map<String, Value> = serde_json::from_slice(body).map_err(|_| garbage())?;
    let external_id = ["sub", "id"]
        .iter()
        .find_map(|key| match object.get(*key) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
        .ok_or_else(garbage)?;
    let display_name = ["name", "preferred_username", "username", "login"]
        .iter()
        .find_map(|key| object.get(*key).and_then(Value::as_str))
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.chars().filter(|c| !c.is_control()).take(200).collect());
    Ok(UserInfo {
        external_id,
        display_name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> chrono::DateTime<chrono::Utc> {
        chrono::Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn basic_auth_form_encodes_before_base64() {
        let value = basic_auth("my client", "a:b+c%d");
        let encoded = value.to_str().unwrap().strip_prefix("Basic ").unwrap();
        let decoded = String::from_utf8(STANDARD.decode(encoded).unwrap()).unwrap();
        assert_eq!(decoded, "my+client:a%3Ab%2Bc%25d");
        assert!(value.is_sensitive());
    }

    #[test]
    fn token_responses_real_providers_send() {
        let full = br#"{"access_token":"at","token_type":"bearer","expires_in":"3600","refresh_token":"rt","scope":"a b"}"#;
        let set = parse_token_response(full, now(), &[]).unwrap();
        assert_eq!(set.access_token.expose_secret(), "at");
        assert_eq!(set.expires_at, Some(now() + chrono::Duration::hours(1)));
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt");
        assert_eq!(set.scope, Some(vec!["a".to_owned(), "b".to_owned()]));

        let minimal = br#"{"access_token":"at","token_type":"Bearer"}"#;
        let set = parse_token_response(minimal, now(), &[]).unwrap();
        assert_eq!(set.expires_at, None, "no expires_in is not an error");
        assert!(set.refresh_token.is_none());
        assert_eq!(set.scope, None);

        let list_scope = br#"{"access_token":"at","token_type":"Bearer","scope":["x","y"]}"#;
        let set = parse_token_response(list_scope, now(), &[]).unwrap();
        assert_eq!(set.scope, Some(vec!["x".to_owned(), "y".to_owned()]));
    }

    #[test]
    fn garbage_is_an_outage_and_errors_are_typed() {
        for body in [
            &b"<html>oops</html>"[..],
            b"{}",
            b"{\"access_token\":\"\"}",
            b"{\"access_token\":",
        ] {
            assert_eq!(
                parse_token_response(body, now(), &[]).unwrap_err(),
                OAuthError::Outage(OutageKind::GarbageBody)
            );
        }
        let err = parse_token_response(br#"{"error":"invalid_grant"}"#, now(), &[]).unwrap_err();
        assert!(err.needs_reauth());
        let err = parse_token_response(br#"{"access_token":"at","token_type":"mac"}"#, now(), &[])
            .unwrap_err();
        assert_eq!(err.code(), "oauth.provider_error");
    }

    #[test]
    fn error_bodies_by_status() {
        let rejected = ResponseClass::Rejected { status: 400 };
        let e = error_from_class(
            rejected,
            400,
            br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
            &[],
        );
        assert_eq!(
            e,
            OAuthError::InvalidGrant {
                description: Some("grant request is invalid".into())
            }
        );
        assert!(e.needs_reauth() && !e.is_transient());
        assert_eq!(
            error_from_class(ResponseClass::Rejected { status: 401 }, 401, b"nope", &[]),
            OAuthError::InvalidClient
        );
        assert_eq!(
            error_from_class(rejected, 400, b"<html>", &[]),
            OAuthError::Rejected { status: 400 }
        );
        let quoting = error_from_class(
            rejected,
            400,
            br#"{"error":"invalid_request","error_description":"refresh token rt-SECRET-1 unknown"}"#,
            &["rt-SECRET-1"],
        );
        assert!(!format!("{quoting:?}").contains("rt-SECRET-1"));
    }

    #[test]
    fn userinfo_shapes() {
        let oidc = parse_userinfo(br#"{"sub":"u1","name":"Ada"}"#).unwrap();
        assert_eq!(oidc.external_id, "u1");
        assert_eq!(oidc.display_name.as_deref(), Some("Ada"));
        let numeric = parse_userinfo(br#"{"id":42,"login":"ada"}"#).unwrap();
        assert_eq!(numeric.external_id, "42");
        assert_eq!(numeric.display_name.as_deref(), Some("ada"));
        assert!(parse_userinfo(br#"{"name":"x"}"#).is_err());
    }
}
