//! Audible through the real router and the connections use-case, against the fake
//! Audible: pick a marketplace, get Amazon's own sign-in address, paste the maplanding
//! address back (bad pastes get clear errors and store nothing), sync as a job, and
//! disconnect, which deregisters exactly this device.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // one connection's life, in order

mod common;

use axum::http::StatusCode;
use bb_core::clock::Clock;
use bb_core::connections::{Provider, SYNC_JOB_KIND};
use bb_jobs::{ConnectionSyncHandler, JobRunner, RunnerConfig};
use bb_providers::audible::{AudibleConfig, AudibleProvider};
use bb_providers::http::{HttpSettings, build_client};
use bb_testkit::audible::{self as fake, FakeAudibleConfig};
use common::{TestApp, connections_with};
use serde_json::json;
use std::sync::Arc;

/// The router with Audible pointed at a fresh fake holding `titles`, and alice signed in.
async fn audible_app(titles: usize) -> (TestApp, fake::FakeAudible, String) {
    let mut app = common::app().await;
    let clock: Arc<dyn Clock> = app.clock.clone();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), titles)).await;
    let provider: Arc<dyn Provider> = Arc::new(AudibleProvider::new(
        AudibleConfig {
            auth_base_url: Some(fake.base_url.clone()),
            api_base_url: Some(fake.base_url.clone()),
        },
        build_client(HttpSettings::default()).unwrap(),
        clock.clone(),
    ));
    app.state.connections = connections_with(&app, &clock, vec![provider]);
    let r = app.login("alice", "correct horse").await;
    let cookie = common::session_cookie(&r);
    (app, fake, cookie)
}

#[tokio::test]
async fn audible_paste_flow_sync_and_disconnect_over_http() {
    let (app, fake, cookie) = audible_app(30).await;

    let r = app
        .call(
            "POST",
            "/api/connections",
            &cookie,
            Some(&json!({"provider": "audible", "marketplace": "us"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "pending");
    let id = r.body["id"].as_i64().unwrap();
    let url = r.body["authorize_url"].as_str().unwrap().to_owned();
    assert!(
        url.starts_with("https://www.amazon.com/ap/signin?"),
        "Amazon's own sign-in: {url}"
    );

    // A pasted address that is not the landing page: a clear error, nothing stored, and
    // the flow stays open for the right paste.
    let r = app
        .call(
            "POST",
            &format!("/api/connections/{id}/complete"),
            &cookie,
            Some(&json!({"redirect_url": "https://www.amazon.com/"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("maplanding"),
        "{}",
        r.body
    );
    let view = connection_view(&app, &cookie, id).await;
    assert_eq!(view["state"], "pending", "{view}");

    let landing = fake.sign_in(&url).unwrap();
    let r = app
        .call(
            "POST",
            &format!("/api/connections/{id}/complete"),
            &cookie,
            Some(&json!({"redirect_url": landing})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "active");
    assert!(
        r.body["notice"]
            .as_str()
            .unwrap()
            .contains("Amazon lists bookbridge among your devices"),
        "{}",
        r.body
    );
    assert_eq!(fake.active_devices(), 1);
    let text = r.body.to_string();
    assert!(
        !text.contains("adp_token") && !text.contains("refresh_token"),
        "{text}"
    );

    // The code in that address is spent: pasting it into a new flow says so.
    let r = app
        .call(
            "POST",
            "/api/connections",
            &cookie,
            Some(&json!({"provider": "audible", "marketplace": "us"})),
        )
        .await;
    let id2 = r.body["id"].as_i64().unwrap();
    let r = app
        .call(
            "POST",
            &format!("/api/connections/{id2}/complete"),
            &cookie,
            Some(&json!({"redirect_url": landing})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(fake.active_devices(), 1, "no second device registered");

    // Linking queued the first sync.
    drain_syncs(&app).await;
    let lib = app
        .call(
            "GET",
            "/api/library?per_page=100&format=audiobook",
            &cookie,
            None,
        )
        .await;
    assert!(lib.body["total"].as_u64().unwrap() >= 30, "{}", lib.body);

    // A 401 from the API: one refresh through /auth/token, then the retried sync works
    // and the connection stays active (no needs_reauth for a token that merely aged).
    let refreshes = fake
        .requests()
        .iter()
        .filter(|r| r.target.starts_with("/auth/token"))
        .count();
    fake.fail_next(fake::Failure::Unauthorized401);
    let r = sync_now(&app, &cookie, id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let job = r.body["job_id"].as_i64().unwrap();
    drain_syncs(&app).await;
    let r = app
        .call("GET", &format!("/api/jobs/{job}"), &cookie, None)
        .await;
    assert_eq!(r.body["state"], "succeeded", "refreshed on 401: {}", r.body);
    let after = fake
        .requests()
        .iter()
        .filter(|r| r.target.starts_with("/auth/token"))
        .count();
    assert_eq!(after, refreshes + 1, "exactly one refresh");
    let view = connection_view(&app, &cookie, id).await;
    assert_eq!(view["state"], "active", "{view}");

    // Disconnect deregisters exactly this device, then removes its data.
    let r = app
        .call(
            "DELETE",
            &format!("/api/connections/{id}?data=delete"),
            &cookie,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["revoked"], true);
    assert_eq!(
        fake.deregister_bodies(),
        vec![json!({"deregister_all_existing_accounts": false})]
    );
    assert_eq!(fake.active_devices(), 0);
    let lib = app
        .call("GET", "/api/library?per_page=100", &cookie, None)
        .await;
    assert_eq!(lib.body["total"], 0, "{}", lib.body);
}

#[tokio::test]
async fn a_revocation_amazon_cannot_take_now_is_retried_then_the_credentials_go() {
    let (app, fake, cookie) = audible_app(3).await;
    let clock: Arc<dyn Clock> = app.clock.clone();
    let r = app
        .call(
            "POST",
            "/api/connections",
            &cookie,
            Some(&json!({"provider": "audible", "marketplace": "de"})),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let landing = fake
        .sign_in(r.body["authorize_url"].as_str().unwrap())
        .unwrap();
    let r = app
        .call(
            "POST",
            &format!("/api/connections/{id}/complete"),
            &cookie,
            Some(&json!({"redirect_url": landing})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // Amazon answers the disconnect with its HTML 503 page.
    fake.fail_next(fake::Failure::Html503);
    let r = app
        .call(
            "DELETE",
            &format!("/api/connections/{id}?data=keep"),
            &cookie,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["revoked"], false);
    assert_eq!(r.body["revocation_retry"], true, "{}", r.body);
    assert_eq!(fake.active_devices(), 1);
    // The connection's own credentials are gone at once; only the retry's copy remains.
    let (creds, kept): (Option<Vec<u8>>, i64) = sqlx::query_as(
        "SELECT (SELECT credentials FROM connections WHERE id = $1), \
         (SELECT COUNT(*) FROM secrets WHERE name = 'connection/' || $1 || '/revoke')",
    )
    .bind(id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert!(creds.is_none());
    assert_eq!(kept, 1);

    // Later, the retry job deregisters the device and deletes the kept copy.
    app.clock.advance(chrono::Duration::minutes(5));
    let jobs: Arc<dyn bb_core::ports::JobStore> = app.state.store.clone();
    JobRunner::new(jobs, clock.clone(), RunnerConfig::new("test"))
        .with_handler(
            bb_core::connections::REVOKE_JOB_KIND,
            Arc::new(bb_jobs::ConnectionRevokeHandler::new(
                app.state.connections.clone(),
            )),
        )
        .drain()
        .await
        .unwrap();
    assert_eq!(fake.active_devices(), 0, "deregistered on retry");
    assert_eq!(
        fake.deregister_bodies().last().unwrap(),
        &json!({"deregister_all_existing_accounts": false})
    );
    let kept: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM secrets WHERE name LIKE 'connection/%/revoke'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(kept, 0);
    let r = app.call("GET", "/api/audit", &cookie, None).await;
    assert!(
        r.body.to_string().contains("revocation_failed"),
        "{}",
        r.body
    );
}

/// A POST as a script sends it: a personal access token, no browser session.
async fn post_with_token(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &serde_json::Value,
) -> common::Reply {
    app.send(
        axum::http::Request::post(path)
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

async fn connection_view(app: &TestApp, cookie: &str, id: i64) -> serde_json::Value {
    app.call("GET", &format!("/api/connections/{id}"), cookie, None)
        .await
        .body
}

async fn sync_now(app: &TestApp, cookie: &str, id: i64) -> common::Reply {
    app.call("POST", &format!("/api/connections/{id}/sync"), cookie, None)
        .await
}

async fn library_total(app: &TestApp, cookie: &str) -> u64 {
    app.call("GET", "/api/library?per_page=100", cookie, None)
        .await
        .body["total"]
        .as_u64()
        .unwrap()
}

async fn drain_syncs(app: &TestApp) {
    let clock: Arc<dyn Clock> = app.clock.clone();
    let jobs: Arc<dyn bb_core::ports::JobStore> = app.state.store.clone();
    JobRunner::new(jobs, clock, RunnerConfig::new("test"))
        .with_handler(
            SYNC_JOB_KIND,
            Arc::new(ConnectionSyncHandler::new(app.state.connections.clone())),
        )
        .drain()
        .await
        .unwrap();
}

/// A script links Audible with a personal access token; a wishlist that stays unreadable
/// through a run leaves the titles in the library and the run says what is missing (read
/// on the next run); a device removed on Amazon ends in `needs_reauth`.
#[tokio::test]
async fn a_script_links_a_missing_part_is_a_warning_and_a_removed_device_needs_reconnecting() {
    let (app, fake, cookie) = audible_app(30).await;
    let r = app
        .call(
            "POST",
            "/api/tokens",
            &cookie,
            Some(&json!({"name": "script"})),
        )
        .await;
    let token = r.body["token"].as_str().unwrap().to_owned();

    let r = post_with_token(
        &app,
        "/api/connections",
        &token,
        &json!({"provider": "audible", "marketplace": "us"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    let landing = fake
        .sign_in(r.body["authorize_url"].as_str().unwrap())
        .unwrap();
    let r = post_with_token(
        &app,
        &format!("/api/connections/{id}/complete"),
        &token,
        &json!({"redirect_url": landing}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"], "active");

    // The first sync: the wishlist is throttled on every try of the run.
    for _ in 0..3 {
        fake.fail_next_on("/1.0/wishlist", fake::Failure::RateLimited(0));
    }
    drain_syncs(&app).await;
    let runs = app
        .call(
            "GET",
            &format!("/api/connections/{id}/syncs"),
            &cookie,
            None,
        )
        .await
        .body;
    assert_eq!(runs[0]["outcome"], "succeeded", "{runs}");
    assert_eq!(runs[0]["failed"], 1, "{runs}");
    let imports = app.call("GET", "/api/imports", &cookie, None).await.body;
    assert!(
        imports.to_string().contains("wishlist could not be read"),
        "{imports}"
    );
    assert_eq!(library_total(&app, &cookie).await, 30, "the titles landed");
    let view = connection_view(&app, &cookie, id).await;
    assert_eq!(view["state"], "active", "{view}");

    // The next run reads the wishlist.
    let r = sync_now(&app, &cookie, id).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    drain_syncs(&app).await;
    assert_eq!(library_total(&app, &cookie).await, 30 + 7);

    // The user removes bookbridge from their devices on Amazon: reconnect needed.
    fake.remove_all_devices_on_amazon();
    sync_now(&app, &cookie, id).await;
    drain_syncs(&app).await;
    let view = connection_view(&app, &cookie, id).await;
    assert_eq!(view["state"], "needs_reauth", "{view}");
}
