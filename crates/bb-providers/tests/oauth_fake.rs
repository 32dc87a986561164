//! The OAuth client against a local fake (axum on port 0) for the shapes a real provider
//! rarely produces on demand: 500s, HTML error pages, 503/429 with `Retry-After`, redirects,
//! stalls, oversized bodies, and refresh responses without a refresh token.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use bb_core::clock::ManualClock;
use bb_providers::http::{HttpSettings, OutageKind, USER_AGENT, build_client};
use bb_providers::oauth::{
    AccessToken, AuthorizationCode, OAuthClient, OAuthError, OAuthProvider, OAuthProviderConfig,
    PkceVerifier, RefreshToken,
};
use chrono::TimeZone;
use url::Url;

const SECRET: &str = "fake:secret+with%odd";

/// What the fake saw: one entry per request.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    authorization: Option<String>,
    user_agent: Option<String>,
    body: String,
}

#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<Seen>>>);

impl Log {
    fn all(&self) -> Vec<Seen> {
        self.0.lock().unwrap().clone()
    }
}

fn record(log: &Log, path: &str, headers: &HeaderMap, body: String) {
    let h = |name| {
        headers
            .get(name)
            .map(|v: &axum::http::HeaderValue| v.to_str().unwrap().to_owned())
    };
    log.0.lock().unwrap().push(Seen {
        path: path.to_owned(),
        authorization: h(header::AUTHORIZATION),
        user_agent: h(header::USER_AGENT),
        body,
    });
}

/// Serves a token endpoint (and revocation, userinfo, a redirect target) that answers every
/// request with `reply`, recording what it received.
async fn fake(reply: fn(&str) -> Response) -> (String, Log) {
    let log = Log::default();
    let route = |path: &'static str| {
        move |State(log): State<Log>, headers: HeaderMap, body: String| async move {
            record(&log, path, &headers, body.clone());
            reply(&body)
        }
    };
    let app = Router::new()
        .route("/token", post(route("/token")))
        .route("/revoke", post(route("/revoke")))
        .route("/me", get(route("/me")))
        .route("/elsewhere", post(route("/elsewhere")))
        .with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

fn provider_at(base: &str, method: &str) -> OAuthProvider {
    let toml = format!(
        r#"
        id = "fake"
        name = "Fake"
        authorize_url = "{base}/authorize"
        token_url = "{base}/token"
        revocation_url = "{base}/revoke"
        userinfo_url = "{base}/me"
        scopes = ["books.read", "offline_access"]
        client_id = "bb:client"
        client_secret = "{SECRET}"
        token_endpoint_auth_method = "{method}"
        "#
    );
    let config: OAuthProviderConfig = toml::from_str(&toml).unwrap();
    OAuthProvider::from_config(config).unwrap()
}

fn noon() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
}

fn client_with(settings: HttpSettings) -> OAuthClient {
    OAuthClient::new(
        build_client(settings).unwrap(),
        Arc::new(ManualClock::new(noon())),
    )
}

fn client() -> OAuthClient {
    client_with(HttpSettings::default())
}

fn json(status: StatusCode, body: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_owned(),
    )
        .into_response()
}

async fn refresh_at(base: &str) -> Result<bb_providers::oauth::TokenSet, OAuthError> {
    client()
        .refresh(
            &provider_at(base, "client_secret_basic"),
            &RefreshToken::new("rt-old"),
        )
        .await
}

#[tokio::test]
async fn a_500_is_an_outage_not_bad_credentials_and_is_not_retried() {
    let (base, log) = fake(|_| (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()).await;
    let err = refresh_at(&base).await.unwrap_err();
    assert_eq!(err, OAuthError::Outage(OutageKind::ServerError(500)));
    assert!(err.is_transient() && !err.needs_reauth());
    assert_eq!(
        log.all().len(),
        1,
        "a refresh is never retried behind the caller's back"
    );
}

#[tokio::test]
async fn a_garbage_success_body_is_an_outage() {
    let (base, _) = fake(|_| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<html><body>Welcome to nginx!</body></html>",
        )
            .into_response()
    })
    .await;
    let err = refresh_at(&base).await.unwrap_err();
    assert_eq!(err, OAuthError::Outage(OutageKind::GarbageBody));
    assert!(!err.needs_reauth());
}

#[tokio::test]
async fn an_html_503_with_retry_after_is_rate_limited() {
    let (base, _) = fake(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                (header::CONTENT_TYPE, "text/html"),
                (header::RETRY_AFTER, "120"),
            ],
            "<html><h1>Service Unavailable</h1></html>",
        )
            .into_response()
    })
    .await;
    let err = refresh_at(&base).await.unwrap_err();
    assert_eq!(
        err,
        OAuthError::RateLimited {
            retry_after: Some(Duration::from_mins(2))
        }
    );
    assert!(err.is_transient() && !err.needs_reauth());
    assert_eq!(err.retry_after(), Some(Duration::from_mins(2)));
}

#[tokio::test]
async fn a_429_with_an_http_date_is_measured_on_the_injected_clock() {
    let (base, _) = fake(|_| {
        (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "Sun, 01 Nov 2026 12:00:30 GMT")],
        )
            .into_response()
    })
    .await;
    let err = refresh_at(&base).await.unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
}

#[tokio::test]
async fn protocol_errors_are_typed() {
    let (base, _) = fake(|_| {
        json(
            StatusCode::BAD_REQUEST,
            r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#,
        )
    })
    .await;
    let err = refresh_at(&base).await.unwrap_err();
    assert!(err.needs_reauth(), "{err:?}");
    assert_eq!(err.code(), "oauth.invalid_grant");

    let (base, _) = fake(|_| json(StatusCode::UNAUTHORIZED, r#"{"error":"invalid_client"}"#)).await;
    assert_eq!(
        refresh_at(&base).await.unwrap_err(),
        OAuthError::InvalidClient
    );

    let (base, _) = fake(|_| (StatusCode::BAD_REQUEST, "<html>bad</html>").into_response()).await;
    assert_eq!(
        refresh_at(&base).await.unwrap_err(),
        OAuthError::Rejected { status: 400 }
    );
}

#[tokio::test]
async fn a_refresh_without_refresh_token_keeps_the_old_one() {
    // Also: no expires_in, and a narrower scope than requested.
    let (base, _) = fake(|_| {
        json(
            StatusCode::OK,
            r#"{"access_token":"at-new","token_type":"bearer","scope":"books.read"}"#,
        )
    })
    .await;
    let old = RefreshToken::new("rt-old");
    let provider = provider_at(&base, "client_secret_basic");
    let set = client().refresh(&provider, &old).await.unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-new");
    assert!(!set.rotated());
    assert!(set.refresh_token.is_none());
    assert_eq!(
        set.refresh_token_after_refresh(&old).expose_secret(),
        "rt-old"
    );
    assert_eq!(set.expires_at, None);
    assert_eq!(
        set.granted_scopes(provider.scopes()),
        vec!["books.read".to_owned()]
    );
}

#[tokio::test]
async fn the_token_request_is_shaped_as_rfc_6749_says() {
    let (base, log) = fake(|_| {
        json(
            StatusCode::OK,
            r#"{"access_token":"at","token_type":"Bearer","expires_in":3600,"refresh_token":"rt"}"#,
        )
    })
    .await;
    let provider = provider_at(&base, "client_secret_basic");
    let redirect = Url::parse("http://127.0.0.1:8080/oauth/callback/fake").unwrap();
    let set = client()
        .exchange_code(
            &provider,
            &AuthorizationCode::new("the+code"),
            &PkceVerifier::new("v".repeat(43)),
            &redirect,
        )
        .await
        .unwrap();
    assert_eq!(set.expires_at, Some(noon() + chrono::Duration::hours(1)));

    let seen = &log.all()[0];
    assert_eq!(seen.user_agent.as_deref(), Some(USER_AGENT));
    // Basic auth over the *form-encoded* id and secret (RFC 6749 2.3.1).
    let basic = seen
        .authorization
        .as_deref()
        .unwrap()
        .strip_prefix("Basic ")
        .unwrap();
    let pair = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(basic)
            .unwrap(),
    )
    .unwrap();
    let (id, secret) = pair.split_once(':').unwrap();
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    };
    assert_eq!(decode(id), "bb:client");
    assert_eq!(decode(secret), SECRET);
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(seen.body.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["code"], "the+code");
    assert_eq!(form["redirect_uri"], redirect.as_str());
    assert_eq!(form["code_verifier"], "v".repeat(43));
    assert!(!form.contains_key("client_secret"), "Basic auth only");

    // client_secret_post: credentials in the body instead.
    let (base, log) = fake(|_| {
        json(
            StatusCode::OK,
            r#"{"access_token":"at","token_type":"Bearer"}"#,
        )
    })
    .await;
    client()
        .refresh(
            &provider_at(&base, "client_secret_post"),
            &RefreshToken::new("rt"),
        )
        .await
        .unwrap();
    let seen = &log.all()[0];
    assert!(seen.authorization.is_none());
    let form: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(seen.body.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(form["client_id"], "bb:client");
    assert_eq!(form["client_secret"], SECRET);
    assert_eq!(form["refresh_token"], "rt");
}

#[tokio::test]
async fn redirects_are_never_followed() {
    let (base, log) = fake(|_| {
        (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, "/elsewhere")],
        )
            .into_response()
    })
    .await;
    let err = refresh_at(&base).await.unwrap_err();
    assert_eq!(err, OAuthError::Outage(OutageKind::UnexpectedStatus(307)));
    assert!(
        log.all().iter().all(|s| s.path == "/token"),
        "{:?}",
        log.all()
    );
}

#[tokio::test]
async fn an_oversized_body_is_garbage() {
    let (base, _) = fake(|_| json(StatusCode::OK, &"x".repeat(2 * 1024 * 1024))).await;
    assert_eq!(
        refresh_at(&base).await.unwrap_err(),
        OAuthError::Outage(OutageKind::GarbageBody)
    );
}

#[tokio::test]
async fn a_stalled_provider_times_out_as_an_outage() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = client_with(HttpSettings {
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_millis(300),
    });
    let err = client
        .refresh(
            &provider_at(&base, "client_secret_basic"),
            &RefreshToken::new("rt"),
        )
        .await
        .unwrap_err();
    assert_eq!(err, OAuthError::Outage(OutageKind::Timeout));
}

#[tokio::test]
async fn a_refused_connection_is_an_outage() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let err = refresh_at(&base).await.unwrap_err();
    assert_eq!(err, OAuthError::Outage(OutageKind::Connect));
}

#[tokio::test]
async fn revocation_goes_refresh_token_first_and_a_503_waits() {
    let (base, log) = fake(|_| StatusCode::OK.into_response()).await;
    let provider = provider_at(&base, "client_secret_basic");
    client()
        .revoke_all(
            &provider,
            Some(&RefreshToken::new("rt-1")),
            Some(&AccessToken::new("at-1")),
        )
        .await
        .unwrap();
    let hints: Vec<String> = log
        .all()
        .iter()
        .map(|s| {
            url::form_urlencoded::parse(s.body.as_bytes())
                .find(|(k, _)| k == "token_type_hint")
                .unwrap()
                .1
                .into_owned()
        })
        .collect();
    assert_eq!(hints, ["refresh_token", "access_token"]);

    let (base, log) = fake(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "60")],
        )
            .into_response()
    })
    .await;
    let failure = client()
        .revoke_all(
            &provider_at(&base, "client_secret_basic"),
            Some(&RefreshToken::new("rt-1")),
            Some(&AccessToken::new("at-1")),
        )
        .await
        .unwrap_err();
    assert_eq!(failure.token_type, "refresh_token");
    assert_eq!(failure.error.retry_after(), Some(Duration::from_mins(1)));
    assert_eq!(
        log.all().len(),
        1,
        "stops at the first failure; the caller retries later"
    );
}

#[tokio::test]
async fn an_unrevocable_access_token_after_its_refresh_token_counts_as_done() {
    let (base, _) = fake(|body| {
        if body.contains("token_type_hint=access_token") {
            json(
                StatusCode::BAD_REQUEST,
                r#"{"error":"unsupported_token_type"}"#,
            )
        } else {
            StatusCode::OK.into_response()
        }
    })
    .await;
    let provider = provider_at(&base, "client_secret_basic");
    client()
        .revoke_all(
            &provider,
            Some(&RefreshToken::new("rt")),
            Some(&AccessToken::new("at")),
        )
        .await
        .unwrap();
    let failure = client()
        .revoke_all(&provider, None, Some(&AccessToken::new("at")))
        .await
        .unwrap_err();
    assert_eq!(failure.token_type, "access_token");
}

#[tokio::test]
async fn userinfo_maps_401_to_invalid_token() {
    let (base, log) = fake(|_| {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#)],
        )
            .into_response()
    })
    .await;
    let err = client()
        .userinfo(
            &provider_at(&base, "client_secret_basic"),
            &AccessToken::new("at-x"),
        )
        .await
        .unwrap_err();
    assert_eq!(err, OAuthError::InvalidToken);
    assert_eq!(log.all()[0].authorization.as_deref(), Some("Bearer at-x"));
}
