//! The JSON API through the real router (tower `oneshot`), on a fresh SQLite database with
//! a clock the tests move.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bb_core::accounts::AccountPolicy;
use chrono::Duration;
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use sha2::Digest;

mod common;
use common::{app, app_with, session_cookie};

#[tokio::test]
async fn login_sets_a_safe_cookie_and_me_answers() {
    let app = app().await;
    let reply = app.login("alice", "correct horse").await;
    assert_eq!(reply.status, StatusCode::OK);
    let set = reply
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attr), "{set}");
    }
    assert!(
        !set.contains("Secure"),
        "plain http has no Secure cookie: {set}"
    );
    let cookie = session_cookie(&reply);
    assert!(cookie.len() > "bb_session=".len() + 22, "≥128-bit id");
    let me = app.get("/api/me", Some(("cookie", &cookie))).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body, json!({"username": "alice"}));
    // Usernames are case-insensitive.
    assert_eq!(
        app.login("Alice", "correct horse").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn https_public_url_makes_cookies_secure_with_host_prefix_and_hsts() {
    let app = app_with("https://books.example.org", AccountPolicy::default()).await;
    let reply = app.login("alice", "correct horse").await;
    let set = reply
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(set.starts_with("__Host-bb_session="), "{set}");
    assert!(set.contains("; Secure"), "{set}");
    assert!(
        reply
            .headers
            .contains_key(header::STRICT_TRANSPORT_SECURITY)
    );
    let me = app
        .get("/api/me", Some(("cookie", &session_cookie(&reply))))
        .await;
    assert_eq!(me.status, StatusCode::OK);
}

#[tokio::test]
async fn wrong_password_and_unknown_user_look_the_same() {
    let app = app().await;
    let wrong = app.login("alice", "not the password").await;
    let unknown = app.login("mallory", "not the password").await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status, StatusCode::UNAUTHORIZED);
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body["error"]["code"], "bad_credentials");
    assert!(wrong.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn unknown_user_costs_a_password_hash_too() {
    // Timing: both paths run one Argon2id verification. Compare medians of a few tries;
    // the unknown-user path must not be an order of magnitude faster.
    let app = app().await;
    let policy = app.state.accounts.policy().clone();
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for _ in 0..5 {
        let t = std::time::Instant::now();
        let _ = app
            .state
            .accounts
            .login("alice", &SecretString::from("wrong pass".to_owned()), None)
            .await;
        known.push(t.elapsed());
        let t = std::time::Instant::now();
        let _ = app
            .state
            .accounts
            .login("nobody", &SecretString::from("wrong pass".to_owned()), None)
            .await;
        unknown.push(t.elapsed());
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[2].as_secs_f64(), unknown[2].as_secs_f64());
    assert!(
        u > k / 3.0 && u < k * 3.0,
        "known {k:.4}s vs unknown {u:.4}s ({policy:?})"
    );
}

#[tokio::test]
async fn login_is_throttled_per_account_with_retry_after() {
    let policy = AccountPolicy {
        login_failures_per_account: 3,
        ..AccountPolicy::default()
    };
    let app = app_with("http://127.0.0.1:8080", policy).await;
    for _ in 0..3 {
        assert_eq!(
            app.login("alice", "wrong one!").await.status,
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = app.login("alice", "correct horse").await;
    assert_eq!(
        limited.status,
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    assert_eq!(limited.body["error"]["code"], "rate_limited");
    let retry: u64 = limited.headers[header::RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 15 * 60, "{retry}");
    app.clock.advance(Duration::minutes(16));
    assert_eq!(
        app.login("alice", "correct horse").await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_is_throttled_per_ip_across_accounts() {
    let policy = AccountPolicy {
        login_failures_per_ip: 4,
        ..AccountPolicy::default()
    };
    let app = app_with("http://127.0.0.1:8080", policy).await;
    let accounts = &app.state.accounts;
    let pw = SecretString::from("wrong pass".to_owned());
    for name in ["a1", "a2", "a3", "a4"] {
        assert!(matches!(
            accounts.login(name, &pw, Some("203.0.113.9")).await,
            Err(bb_core::error::CoreError::BadCredentials)
        ));
    }
    let good = SecretString::from("correct horse".to_owned());
    assert!(matches!(
        accounts.login("alice", &good, Some("203.0.113.9")).await,
        Err(bb_core::error::CoreError::RateLimited { .. })
    ));
    assert!(
        accounts
            .login("alice", &good, Some("198.51.100.7"))
            .await
            .is_ok(),
        "other IPs unaffected"
    );
}

#[tokio::test]
async fn sessions_end_on_idle_and_absolute_timeouts_and_logout() {
    let policy = AccountPolicy {
        session_idle: Duration::hours(1),
        session_absolute: Duration::hours(3),
        ..AccountPolicy::default()
    };
    let app = app_with("http://127.0.0.1:8080", policy).await;
    let cookie = session_cookie(&app.login("alice", "correct horse").await);

    app.clock.advance(Duration::minutes(50));
    assert_eq!(app.me_status(&cookie).await, StatusCode::OK);
    app.clock.advance(Duration::minutes(50));
    assert_eq!(
        app.me_status(&cookie).await,
        StatusCode::OK,
        "activity keeps it alive"
    );
    app.clock.advance(Duration::minutes(61));
    assert_eq!(
        app.me_status(&cookie).await,
        StatusCode::UNAUTHORIZED,
        "idle timeout"
    );

    let cookie = session_cookie(&app.login("alice", "correct horse").await);
    for _ in 0..4 {
        app.clock.advance(Duration::minutes(50));
        let _ = app.me_status(&cookie).await;
    }
    assert_eq!(
        app.me_status(&cookie).await,
        StatusCode::UNAUTHORIZED,
        "absolute timeout"
    );

    let cookie = session_cookie(&app.login("alice", "correct horse").await);
    let out = app
        .send(
            Request::delete("/api/session")
                .header("cookie", &cookie)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        out.headers[header::SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    assert_eq!(
        app.me_status(&cookie).await,
        StatusCode::UNAUTHORIZED,
        "logout ends it server-side"
    );
}

#[tokio::test]
async fn bearer_tokens_work_and_stop_when_revoked() {
    let app = app().await;
    let (token, record) = app
        .state
        .accounts
        .create_token("alice", Some("script"))
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token.expose_secret());
    let me = app.get("/api/me", Some(("authorization", &bearer))).await;
    assert_eq!(me.body, json!({"username": "alice"}));
    let listed = app
        .get("/api/tokens", Some(("authorization", &bearer)))
        .await;
    assert_eq!(listed.body[0]["name"], "script");
    assert!(
        listed.body[0]["last_used_at"].is_string(),
        "last use is shown"
    );
    assert!(
        !listed.body.to_string().contains(token.expose_secret()),
        "never listed"
    );
    app.state
        .accounts
        .revoke_token("alice", record.id)
        .await
        .unwrap();
    assert_eq!(
        app.get("/api/me", Some(("authorization", &bearer)))
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let garbage = app
        .get("/api/me", Some(("authorization", "Bearer bbpat_nope")))
        .await;
    assert_eq!(garbage.status, StatusCode::UNAUTHORIZED);
    assert_eq!(garbage.body["error"]["code"], "unauthenticated");
}

#[tokio::test]
async fn audit_lists_own_events_newest_first_with_pages() {
    let app = app().await;
    let _ = app.login("alice", "wrong password").await;
    let cookie = session_cookie(&app.login("alice", "correct horse").await);
    for i in 0..3 {
        app.state
            .accounts
            .create_token("alice", Some(&format!("t{i}")))
            .await
            .unwrap();
    }
    let page = app
        .get("/api/audit?limit=2", Some(("cookie", &cookie)))
        .await;
    assert_eq!(page.status, StatusCode::OK);
    let events: Vec<&str> = page.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["token_created", "token_created"]);
    let before = page.body["next_before"].as_i64().unwrap();
    let rest = app
        .get(
            &format!("/api/audit?limit=50&before={before}"),
            Some(("cookie", &cookie)),
        )
        .await;
    let events: Vec<&str> = rest.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        [
            "token_created",
            "login_succeeded",
            "login_failed",
            "user_created"
        ]
    );
    assert_eq!(
        rest.body["entries"][1]["client_ip"],
        Value::Null,
        "oneshot has no socket address"
    );
    assert!(!rest.body.to_string().contains("correct horse"));
    assert_eq!(
        app.get("/api/audit", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn security_headers_on_every_response() {
    let app = app().await;
    for path in ["/healthz", "/api/me", "/no/such/route"] {
        let r = app.get(path, None).await;
        let csp = r.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(r.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(r.headers.contains_key(header::REFERRER_POLICY));
        assert!(r.headers.contains_key("x-request-id"));
        assert!(
            !r.headers.contains_key(header::STRICT_TRANSPORT_SECURITY),
            "no HSTS on plain http"
        );
    }
    let missing = app.get("/no/such/route", None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body["error"]["code"], "not_found");
}

#[tokio::test]
async fn health_and_readiness() {
    let app = app().await;
    assert_eq!(
        app.get("/healthz", None).await.body,
        json!({"status": "ok"})
    );
    assert_eq!(
        app.get("/readyz", None).await.body,
        json!({"status": "ready"})
    );
}

#[tokio::test]
async fn cross_site_state_changes_are_refused() {
    let app = app().await;
    let cookie = session_cookie(&app.login("alice", "correct horse").await);
    let forged = app
        .send(
            Request::post("/api/tokens")
                .header("cookie", &cookie)
                .header("origin", "https://evil.example")
                .header("sec-fetch-site", "cross-site")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(forged.body["error"]["code"], "cross_site_request");
    let same = app
        .send(
            Request::post("/api/tokens")
                .header("cookie", &cookie)
                .header("origin", "http://127.0.0.1:8080")
                .header("sec-fetch-site", "same-origin")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(r#"{"name":"ui"}"#))
                .unwrap(),
        )
        .await;
    assert_eq!(same.status, StatusCode::CREATED);
    assert!(same.body["token"].as_str().unwrap().starts_with("bbpat_"));
}

#[tokio::test]
async fn malformed_json_gets_a_clear_error() {
    let app = app().await;
    let r = app
        .send(
            Request::post("/api/session")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from("{\"username\": 5"))
                .unwrap(),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["error"]["code"], "invalid_json");
    let (token, _) = app
        .state
        .accounts
        .create_token("alice", None)
        .await
        .unwrap();
    let bearer = format!("Bearer {}", token.expose_secret());
    let q = app
        .get("/api/audit?limit=many", Some(("authorization", &bearer)))
        .await;
    assert_eq!(q.status, StatusCode::BAD_REQUEST);
    assert_eq!(q.body["error"]["code"], "invalid_query");
}

#[tokio::test]
async fn session_ids_are_stored_only_as_hashes() {
    let app = app().await;
    let cookie = session_cookie(&app.login("alice", "correct horse").await);
    let id = cookie.split_once('=').unwrap().1;
    let stored: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_ne!(stored[0], id);
    assert!(!stored[0].contains(id));
    assert_eq!(stored[0], hex::encode(sha2::Sha256::digest(id.as_bytes())));
}

#[tokio::test]
async fn internal_errors_carry_a_request_id_and_no_cause() {
    let app = app().await;
    let (token, _) = app
        .state
        .accounts
        .create_token("alice", None)
        .await
        .unwrap();
    app.pool.close().await;
    let bearer = format!("Bearer {}", token.expose_secret());
    let r = app.get("/api/me", Some(("authorization", &bearer))).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(r.body["error"]["code"], "internal");
    let id = r.body["error"]["request_id"].as_str().unwrap();
    assert_eq!(r.headers["x-request-id"].to_str().unwrap(), id);
    assert!(
        !r.body.to_string().to_lowercase().contains("pool"),
        "no internals: {}",
        r.body
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready.body["error"]["code"], "not_ready");
    assert_eq!(
        app.get("/healthz", None).await.status,
        StatusCode::OK,
        "the process is still up"
    );
}
