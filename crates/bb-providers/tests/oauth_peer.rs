//! The OAuth 2 client against a real authorization server: panva/oidc-provider on loopback,
//! configured strict (PKCE required, rotating refresh tokens, `iss` in responses, revocation
//! and introspection). Skips loudly when node or the npm package is not installed.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] fns; a panic is the failure

#[path = "peers/oidc/peer.rs"]
mod peer;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bb_core::clock::SystemClock;
use bb_providers::http::{HttpSettings, build_client};
use bb_providers::oauth::{
    CallbackErrorKind, OAuthClient, OAuthError, OAuthProvider, OAuthProviderConfig, PkceVerifier,
    RevocableToken, TokenSet, begin, parse_callback,
};
use peer::{BASIC_CLIENT, CLIENT_SECRET, POST_CLIENT, Peer, REDIRECT_URI};
use url::Url;

fn provider(peer: &Peer, client_id: &str, method: &str) -> OAuthProvider {
    let config: OAuthProviderConfig =
        toml::from_str(&peer.config_toml(client_id, method)).expect("peer config parses");
    OAuthProvider::from_config(config).expect("peer config validates")
}

fn client() -> OAuthClient {
    OAuthClient::new(
        build_client(HttpSettings::default()).unwrap(),
        Arc::new(SystemClock),
    )
}

fn redirect() -> Url {
    Url::parse(REDIRECT_URI).unwrap()
}

/// Runs begin → the provider's pages → callback → code exchange, as bookbridge's connect does.
async fn connect(peer: &Peer, provider: &OAuthProvider, login: &str) -> TokenSet {
    let request = begin(provider, &redirect());
    let query = peer.authorize_as(&request.url, login).await;
    let callback = parse_callback(provider, &query).expect("callback accepted");
    assert_eq!(callback.state, request.state, "state is echoed");
    assert_eq!(callback.iss.as_deref(), Some(peer.issuer.as_str()));
    client()
        .exchange_code(
            provider,
            &callback.code,
            &request.pkce_verifier,
            &request.redirect_uri,
        )
        .await
        .expect("code exchange")
}

#[tokio::test]
async fn full_authorization_code_flow_with_pkce() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    assert_eq!(
        peer.metadata["authorization_response_iss_parameter_supported"], true,
        "the peer advertises RFC 9207, as our config claims"
    );
    let provider = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    let tokens = connect(&peer, &provider, "reader-1").await;

    assert!(tokens.token_type.eq_ignore_ascii_case("bearer"));
    assert!(tokens.expires_at.is_some(), "the peer sends expires_in");
    let rt = tokens
        .refresh_token
        .as_ref()
        .expect("offline_access + consent gives an RT");
    let granted = tokens.granted_scopes(provider.scopes());
    assert!(granted.iter().any(|s| s == "offline_access"), "{granted:?}");

    assert!(
        peer.is_active(BASIC_CLIENT, tokens.access_token.expose_secret())
            .await
    );
    assert!(peer.is_active(BASIC_CLIENT, rt.expose_secret()).await);

    let me = client()
        .userinfo(&provider, &tokens.access_token)
        .await
        .expect("userinfo");
    assert_eq!(me.external_id, "reader-1");
    assert_eq!(me.display_name.as_deref(), Some("Reader reader-1"));
}

#[tokio::test]
async fn client_secret_post_works_too() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = provider(&peer, POST_CLIENT, "client_secret_post");
    let tokens = connect(&peer, &provider, "reader-2").await;
    assert!(tokens.refresh_token.is_some());
}

#[tokio::test]
async fn a_wrong_verifier_is_invalid_grant() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    let request = begin(&provider, &redirect());
    let query = peer.authorize_as(&request.url, "reader-1").await;
    let callback = parse_callback(&provider, &query).unwrap();
    let wrong = PkceVerifier::new("A".repeat(43));
    let err = client()
        .exchange_code(&provider, &callback.code, &wrong, &request.redirect_uri)
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err:?}");
    assert!(err.needs_reauth() && !err.is_transient());
}

#[tokio::test]
async fn a_different_redirect_uri_is_invalid_grant() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    let request = begin(&provider, &redirect());
    let query = peer.authorize_as(&request.url, "reader-1").await;
    let callback = parse_callback(&provider, &query).unwrap();
    let other = Url::parse("http://127.0.0.1:8080/oauth/callback/other").unwrap();
    let err = client()
        .exchange_code(&provider, &callback.code, &request.pkce_verifier, &other)
        .await
        .unwrap_err();
    assert!(matches!(err, OAuthError::InvalidGrant { .. }), "{err:?}");
}

#[tokio::test]
async fn a_callback_from_another_issuer_is_refused_before_any_token_request() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let honest = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    let request = begin(&honest, &redirect());
    let query = peer.authorize_as(&request.url, "reader-1").await;

    // The same answer, read by a flow that expected another provider (the mix-up attack:
    // the user was sent to the attacker's AS, whose response lands on our callback).
    let toml = peer
        .config_toml(BASIC_CLIENT, "client_secret_basic")
        .replace(
            &format!("issuer = \"{}\"", peer.issuer),
            "issuer = \"https://books.example.com\"",
        );
    let expecting_other: OAuthProviderConfig = toml::from_str(&toml).unwrap();
    let expecting_other = OAuthProvider::from_config(expecting_other).unwrap();
    let err = parse_callback(&expecting_other, &query).unwrap_err();
    assert_eq!(
        err.kind,
        CallbackErrorKind::IssuerMismatch {
            received: peer.issuer.clone()
        }
    );
    assert_eq!(err.state.as_deref(), Some(request.state.as_str()));

    // Stripping `iss` does not help the attacker either: the provider advertises it.
    let stripped: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "iss"))
        .finish();
    let err = parse_callback(&honest, &stripped).unwrap_err();
    assert_eq!(err.kind, CallbackErrorKind::MissingIssuer);
}

#[tokio::test]
async fn the_providers_own_errors_come_back_as_data() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    // Without PKCE the peer refuses the request at once and redirects with an error —
    // the request bookbridge never makes, built here to see the provider's error shape.
    let mut url = begin(&provider, &redirect()).url;
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .into_owned()
        .filter(|(k, _)| !k.starts_with("code_challenge"))
        .collect();
    url.query_pairs_mut().clear().extend_pairs(kept);
    let query = peer.authorize_as(&url, "reader-1").await;
    let err = parse_callback(&provider, &query).unwrap_err();
    match err.kind {
        CallbackErrorKind::Provider { error, description } => {
            assert_eq!(error, "invalid_request");
            assert!(description.is_some());
        }
        other => panic!("{other:?}"),
    }
    assert!(
        err.state.is_some(),
        "the state comes back so the connection can record it"
    );
}

#[tokio::test]
async fn refresh_rotates_and_a_replayed_refresh_token_kills_the_grant() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    let first = connect(&peer, &provider, "reader-1").await;
    let rt1 = first.refresh_token.clone().unwrap();

    let second = client().refresh(&provider, &rt1).await.expect("refresh");
    assert!(second.rotated(), "the peer rotates on every refresh");
    let rt2 = second.refresh_token_after_refresh(&rt1);
    assert_ne!(rt2.expose_secret(), rt1.expose_secret());
    assert!(
        peer.is_active(BASIC_CLIENT, second.access_token.expose_secret())
            .await
    );
    assert!(
        !peer.is_active(BASIC_CLIENT, rt1.expose_secret()).await,
        "rt1 was consumed"
    );

    // The double spend: a second refresher (or a retry) sends the consumed token again.
    let replay = client().refresh(&provider, &rt1).await.unwrap_err();
    assert!(replay.needs_reauth(), "{replay:?}");

    // …and the provider treats it as theft: the whole grant is revoked, including the tokens
    // the legitimate refresh just obtained. This is why bookbridge never retries a refresh
    // blindly and refreshes one connection at a time (SECURITY.md B3).
    let after = client().refresh(&provider, &rt2).await.unwrap_err();
    assert!(after.needs_reauth(), "{after:?}");
    assert!(!peer.is_active(BASIC_CLIENT, rt2.expose_secret()).await);
    assert!(
        !peer
            .is_active(BASIC_CLIENT, second.access_token.expose_secret())
            .await
    );
}

#[tokio::test]
async fn revocation_deactivates_both_tokens() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let provider = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    let tokens = connect(&peer, &provider, "reader-1").await;
    let rt = tokens.refresh_token.clone().unwrap();
    let client = client();

    client
        .revoke_all(&provider, Some(&rt), Some(&tokens.access_token))
        .await
        .expect("revocation");
    assert!(!peer.is_active(BASIC_CLIENT, rt.expose_secret()).await);
    assert!(
        !peer
            .is_active(BASIC_CLIENT, tokens.access_token.expose_secret())
            .await
    );
    let err = client.refresh(&provider, &rt).await.unwrap_err();
    assert!(err.needs_reauth(), "{err:?}");

    // Revoking again, or revoking a token the provider never issued, is a 200 (RFC 7009 2.2).
    client
        .revoke(&provider, RevocableToken::Refresh(&rt))
        .await
        .expect("second revocation");
    client
        .revoke(
            &provider,
            RevocableToken::Access(&bb_providers::oauth::AccessToken::new("never-issued")),
        )
        .await
        .expect("unknown token");
}

/// A `Write` into a shared buffer, for a tracing subscriber.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_logs_of_connect_refresh_disconnect() {
    let Some(peer) = Peer::start().await else {
        return;
    };
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A global subscriber, not a thread-local one: tests in this binary run on parallel
    // threads, and a callsite first reached by a thread with no subscriber caches "never
    // log" for everyone, which made a thread-local capture miss events. Setting the global
    // default rebuilds that cache. Other tests' events land in the buffer too; that only
    // adds text, and the assertions below are about this test's secrets.
    tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");

    let provider = provider(&peer, BASIC_CLIENT, "client_secret_basic");
    let request = begin(&provider, &redirect());
    let query = peer.authorize_as(&request.url, "reader-1").await;
    let callback = parse_callback(&provider, &query).unwrap();
    let client = client();
    let tokens = client
        .exchange_code(
            &provider,
            &callback.code,
            &request.pkce_verifier,
            &request.redirect_uri,
        )
        .await
        .unwrap();
    let rt1 = tokens.refresh_token.clone().unwrap();
    let refreshed = client.refresh(&provider, &rt1).await.unwrap();
    let rt2 = refreshed.refresh_token_after_refresh(&rt1);
    // A failure path too: errors are logged, and must not carry what was sent.
    let failed = client.refresh(&provider, &rt1).await.unwrap_err();
    // Debug/Display of everything a caller might log.
    tracing::error!(error = ?failed, display = %failed, tokens = ?refreshed, "caller logs");
    client
        .revoke_all(&provider, Some(&rt2), Some(&refreshed.access_token))
        .await
        .unwrap();

    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("oauth request succeeded"),
        "logging works: {logs}"
    );
    assert!(logs.contains("oauth.invalid_grant"), "{logs}");
    let secrets = [
        ("client secret", CLIENT_SECRET.to_owned()),
        (
            "form-encoded client secret",
            url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect(),
        ),
        ("code", callback.code.expose_secret().to_owned()),
        ("verifier", request.pkce_verifier.expose_secret().to_owned()),
        (
            "first access token",
            tokens.access_token.expose_secret().to_owned(),
        ),
        (
            "second access token",
            refreshed.access_token.expose_secret().to_owned(),
        ),
        ("first refresh token", rt1.expose_secret().to_owned()),
        ("second refresh token", rt2.expose_secret().to_owned()),
    ];
    for (what, secret) in secrets {
        assert!(!logs.contains(&secret), "the {what} is in the logs");
    }
}
