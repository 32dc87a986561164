//! Access-token refresh (`POST /auth/token`, dossier §5), reading both answer shapes: the
//! classic `{"access_token", "expires_in"}` and the late-2025 `actor_access_token` one.

use bb_core::clock::Clock;
use bb_core::secret::{ExposeSecret, SecretString};
use chrono::{DateTime, Duration, Utc};
use serde_json::Value;
use tracing::{info, instrument};

use super::credentials::DeviceCredentials;
use super::register::APP_VERSION;
use super::wire::{self, On4xx};
use super::{AudibleConfig, AudibleError, secret};
use crate::http;

/// A refreshed access token.
#[derive(Debug, Clone)]
pub struct RefreshedToken {
    pub access_token: SecretString,
    pub expires_at: DateTime<Utc>,
    /// A refresh token the answer carried (`actor_refresh_token` or `refresh_token`);
    /// `None` means keep the one we have (SECURITY.md B2).
    pub refresh_token: Option<SecretString>,
}

impl RefreshedToken {
    /// Applies the refresh to stored credentials.
    pub fn apply(self, credentials: &mut DeviceCredentials) {
        credentials.access_token = self.access_token;
        credentials.access_expires_at = self.expires_at;
        if let Some(rt) = self.refresh_token {
            credentials.refresh_token = rt;
        }
    }
}

/// Exchanges the refresh token for a new access token. Any 4xx means the device is gone
/// or the token revoked → [`AudibleError::NeedsReauth`].
///
/// Dossier uncertain (§5, "token model change"): the app now sends an
/// `account_refresh_token`, but the full new request shape was not documented. We send the
/// classic form, which is what mkb79 0.13 sends, and read either answer.
#[instrument(skip_all, fields(provider = "audible", marketplace = %credentials.marketplace))]
pub async fn refresh_access_token(
    http: &reqwest::Client,
    config: &AudibleConfig,
    clock: &dyn Clock,
    credentials: &DeviceCredentials,
) -> Result<RefreshedToken, AudibleError> {
    let m = credentials.marketplace;
    let url = format!("{}/auth/token", config.auth_base(m));
    let form = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("app_name", "Audible")
        .append_pair("app_version", APP_VERSION)
        .append_pair("source_token", credentials.refresh_token.expose_secret())
        .append_pair("source_token_type", "refresh_token")
        .append_pair("requested_token_type", "access_token")
        .finish();
    let request = http
        .post(url)
        .header("Accept", "application/json")
        .header("Content-Type", "application/x-www-form-urlencoded")
        // Libation sends it; harmless for mkb79's shape.
        .header(
            "x-amzn-identity-auth-domain",
            format!("api.amazon.{}", m.domain()),
        )
        .body(form);
    let answer = http::send(request).await.map_err(wire::transport)?;
    let now = clock.now();
    let v = wire::json_answer("the token refresh", On4xx::Refresh, answer, now)?;
    let token = parse_refresh(&v, now)?;
    info!(expires_at = %token.expires_at, "refreshed the Audible access token");
    Ok(token)
}

/// Both shapes: `actor_access_token` first, else `access_token`; `expires_in` as number or
/// text, 3600 when absent.
pub(crate) fn parse_refresh(v: &Value, now: DateTime<Utc>) -> Result<RefreshedToken, AudibleError> {
    const WHAT: &str = "the token refresh";
    let pick = |keys: [&str; 2]| {
        keys.iter().find_map(|k| {
            v.get(*k)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
        })
    };
    let access = pick(["actor_access_token", "access_token"]).ok_or(AudibleError::Garbage {
        what: WHAT,
        problem: "neither actor_access_token nor access_token".into(),
    })?;
    let expires =
        wire::expires_in(v.get("expires_in")).map_err(|problem| AudibleError::Garbage {
            what: WHAT,
            problem,
        })?;
    Ok(RefreshedToken {
        access_token: secret(access),
        expires_at: now + Duration::seconds(expires),
        refresh_token: pick(["actor_refresh_token", "refresh_token"]).map(secret),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn both_answer_shapes_and_garbage() {
        let now = wire::parse_utc("2026-11-01T12:00:00Z").unwrap();
        let classic = parse_refresh(
            &json!({"access_token": "Atna|A", "token_type": "bearer", "expires_in": 3600}),
            now,
        )
        .unwrap();
        assert_eq!(classic.access_token.expose_secret(), "Atna|A");
        assert_eq!(classic.expires_at, now + Duration::hours(1));
        assert!(classic.refresh_token.is_none());

        let actor = parse_refresh(
            &json!({"actor_access_token": "Atna|B", "actor_refresh_token": "Atnr|B", "expires_in": "1800"}),
            now,
        )
        .unwrap();
        assert_eq!(actor.access_token.expose_secret(), "Atna|B");
        assert_eq!(actor.refresh_token.unwrap().expose_secret(), "Atnr|B");
        assert_eq!(actor.expires_at, now + Duration::minutes(30));

        let e = parse_refresh(&json!({"token_type": "bearer"}), now).unwrap_err();
        assert!(e.to_string().contains("actor_access_token"), "{e}");
    }
}
