//! Connected accounts through the real router: Hardcover end to end against the fake
//! Hardcover server (link with a pasted token, sync as a job, re-sync unchanged, a book
//! removed upstream withdrawn, 401 → `needs_reauth`, an outage stays active, inbound
//! limits, disconnect keeping or removing data), and a generic OAuth provider against the
//! real `oidc-provider` peer (authorize through its pages, callback, forced refresh with
//! rotation, disconnect revoking, tokens sealed at rest, no token in any log line).

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

mod common;

#[path = "../../bb-providers/tests/peers/oidc/peer.rs"]
mod peer;

use axum::http::StatusCode;
use bb_core::clock::Clock;
use bb_core::connections::Provider;
use bb_core::ports::Sealer;
use bb_jobs::JobRunner;
use bb_providers::hardcover::{HardcoverConfig, HardcoverProvider, TokenBucket};
use bb_testkit::hardcover::{self as fake, Failure, FakeHardcover, FakeHardcoverConfig};
use bb_testkit::openlibrary as ol_fake;
use common::{Reply, TestApp, connections_with};
use serde_json::{Value, json};
use std::sync::Arc;

const TOKEN: &str = "hc-test-token";

/// Signs in and returns the `Cookie` header value.
async fn login(app: &TestApp, user: &str, password: &str) -> String {
    let r = app.login(user, password).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    common::session_cookie(&r)
}

async fn get(app: &TestApp, path: &str, cookie: &str) -> Reply {
    app.call("GET", path, cookie, None).await
}

async fn post(app: &TestApp, path: &str, body: &Value, cookie: &str) -> Reply {
    app.call("POST", path, cookie, Some(body)).await
}

async fn delete(app: &TestApp, path: &str, cookie: &str) -> Reply {
    app.call("DELETE", path, cookie, None).await
}

async fn hardcover_app(books: usize) -> (TestApp, FakeHardcover) {
    let app = common::app().await;
    let config = FakeHardcoverConfig::new(app.clock.clone(), books);
    hardcover_app_with(app, config).await
}

/// `app` with Hardcover pointed at a fake started from `config`.
async fn hardcover_app_with(
    mut app: TestApp,
    config: FakeHardcoverConfig,
) -> (TestApp, FakeHardcover) {
    let clock: Arc<dyn Clock> = app.clock.clone();
    let fake = fake::start(config).await;
    let provider: Arc<dyn Provider> = Arc::new(HardcoverProvider::new(
        HardcoverConfig {
            base_url: fake.base_url.clone(),
            max_budget_wait: std::time::Duration::ZERO,
            ..HardcoverConfig::default()
        },
        // Generous: these tests are about the pipeline, not the budget.
        Arc::new(TokenBucket::new(1_000, 6_000, clock.clone())),
        clock.clone(),
        bb_providers::hardcover::provider::RATE_LIMIT,
    ));
    app.state.connections = connections_with(&app, &clock, vec![provider]);
    (app, fake)
}

fn runner(app: &TestApp) -> JobRunner {
    app.job_runner()
}

/// Turns write-back on for connection `id`; the connection as the API shows it.
async fn enable_write_back(app: &TestApp, cookie: &str, id: i64) -> Reply {
    let r = app
        .call(
            "PATCH",
            &format!("/api/connections/{id}"),
            cookie,
            Some(&json!({"write_back": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r
}

/// Links the fake's account with its token and runs the first sync; the connection id.
async fn link_hardcover(app: &TestApp, cookie: &str) -> i64 {
    let r = post(
        app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": TOKEN}),
        cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    runner(app).drain().await.unwrap();
    r.body["id"].as_i64().unwrap()
}

async fn sync_and_wait(app: &TestApp, cookie: &str, id: i64) -> Value {
    let r = post(
        app,
        &format!("/api/connections/{id}/sync"),
        &json!({}),
        cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let job = r.body["job_id"].as_i64().unwrap();
    runner(app).drain().await.unwrap();
    let r = get(app, &format!("/api/jobs/{job}"), cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

/// Raw `credentials`, `pending` and `state` of every connection row.
type RawRow = (Option<Vec<u8>>, Option<Vec<u8>>, String);

/// Everything secret-bearing in the connections table, as text, for scans.
async fn connection_raw_values(app: &TestApp) -> String {
    let rows: Vec<RawRow> = sqlx::query_as("SELECT credentials, pending, state FROM connections")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    format!("{rows:?}")
}

#[tokio::test]
async fn hardcover_link_sync_resync_withdraw_and_disconnect() {
    let (app, fake) = hardcover_app(12).await;
    let cookie = login(&app, "alice", "correct horse").await;

    // Providers list it, with what it brings and how it connects.
    let r = get(&app, "/api/providers", &cookie).await;
    let hc = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "hardcover")
        .unwrap()
        .clone();
    assert_eq!(hc["auth_kind"], "api_token");
    assert_eq!(hc["can_revoke"], false);
    assert!(
        hc["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("write_back"))
    );

    // A bad token is the user's error, named; nothing is stored.
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": "not-a-token"}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(!r.body.to_string().contains("not-a-token"));

    // A pasted `Bearer ` prefix is fine; the token is never echoed.
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": format!("Bearer {TOKEN}")}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(!r.body.to_string().contains(TOKEN));
    assert_eq!(r.body["state"], "active");
    assert_eq!(r.body["connection"]["account"]["display_name"], "reader");
    assert_eq!(r.body["connection"]["account"]["external_id"], "12345");
    let id = r.body["id"].as_i64().unwrap();
    assert!(
        !connection_raw_values(&app).await.contains(TOKEN),
        "token stored in the clear"
    );

    // Linking the same external account twice is a clear error.
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": TOKEN}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already connected")
    );

    // Linking queued the first sync; drain it.
    runner(&app).drain().await.unwrap();
    let lib = get(&app, "/api/library?per_page=100", &cookie).await;
    assert_eq!(lib.body["total"], 12, "{}", lib.body);

    // A manual re-sync changes nothing.
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["counts"]["unchanged"], 12, "{job}");
    assert_eq!(job["counts"]["created"], 0);

    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["last_sync"]["status"], "succeeded", "{}", r.body);
    assert_eq!(r.body["last_sync"]["unchanged"], 12);
    assert!(r.body["next_sync"].is_string(), "{}", r.body);
    assert!(!r.body.to_string().contains(TOKEN));

    // A book removed on Hardcover is withdrawn after a complete run.
    let first = fake.user_books_of(12_345)[0]["id"].as_i64().unwrap();
    assert!(fake.remove_user_book(first));
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["counts"]["removed"], 1, "{job}");
    let lib = get(&app, "/api/library?per_page=100", &cookie).await;
    assert_eq!(lib.body["total"], 11);

    // An outage fails the run but leaves the connection active, with a retry queued.
    fake.fail_next(Failure::Html503);
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "queued", "a retry is scheduled: {job}");
    assert_eq!(job["error"]["code"], "hardcover.outage", "{job}");
    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["state"], "active", "{}", r.body);
    let lib = get(&app, "/api/library?per_page=100", &cookie).await;
    assert_eq!(lib.body["total"], 11, "a failed run withdraws nothing");

    // The history shows every attempt, newest first, with counts and errors.
    let history = get(&app, &format!("/api/connections/{id}/syncs"), &cookie)
        .await
        .body;
    let runs = history.as_array().unwrap();
    assert_eq!(runs.len(), 4, "{history}");
    assert_eq!(runs[0]["outcome"], "retry");
    assert_eq!(runs[0]["error"]["code"], "hardcover.outage");
    assert_eq!(runs[1]["removed"], 1);
    assert_eq!(runs[3]["created"], 12);

    // The token revoked upstream: needs_reauth, no retry loop, audited.
    app.clock.advance(chrono::Duration::hours(1));
    runner(&app).drain().await.unwrap();
    fake.revoke_token(TOKEN);
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(
        job["state"], "failed",
        "no retries for bad credentials: {job}"
    );
    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["state"], "needs_reauth", "{}", r.body);
    let r = post(
        &app,
        &format!("/api/connections/{id}/sync"),
        &json!({}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reconnected")
    );
    let audit = get(&app, "/api/audit", &cookie).await.body.to_string();
    for event in [
        "connection_linked",
        "sync_started",
        "sync_finished",
        "sync_failed",
        "connection_needs_reauth",
    ] {
        assert!(audit.contains(event), "audit lacks {event}: {audit}");
    }

    // Disconnect without saying what happens to the data is refused.
    let r = delete(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    // Remove the data: the library is empty again, the credentials are gone.
    let r = delete(&app, &format!("/api/connections/{id}?data=delete"), &cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        r.body["revoked"],
        Value::Null,
        "Hardcover cannot revoke remotely"
    );
    let lib = get(&app, "/api/library?per_page=100", &cookie).await;
    assert_eq!(lib.body["total"], 0, "{}", lib.body);
    let raw = connection_raw_values(&app).await;
    assert!(raw.contains("(None, None, \"disconnected\")"), "{raw}");
}

#[tokio::test]
async fn disconnect_keeping_data_keeps_exactly_the_books_and_other_sources_survive_removal() {
    let (app, _fake) = hardcover_app(5).await;
    let cookie = login(&app, "alice", "correct horse").await;
    let id = link_hardcover(&app, &cookie).await;
    let r = delete(&app, &format!("/api/connections/{id}?data=keep"), &cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let lib = get(&app, "/api/library?per_page=100", &cookie).await;
    assert_eq!(lib.body["total"], 5, "kept: {}", lib.body);
    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["state"], "disconnected");
    assert_eq!(r.body["next_sync"], Value::Null, "no more scheduled syncs");
    // A disconnected account can be linked again.
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": TOKEN}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
}

#[tokio::test]
async fn edits_are_written_back_only_when_enabled_and_only_the_fields_edited() {
    let (app, fake) = hardcover_app(3).await;
    let cookie = login(&app, "alice", "correct horse").await;
    let id = link_hardcover(&app, &cookie).await;
    let lib = get(&app, "/api/library?per_page=10", &cookie).await;
    let item = lib.body["items"][0]["id"].as_i64().unwrap();
    let detail = get(&app, &format!("/api/library/{item}"), &cookie)
        .await
        .body;
    let user_book: i64 = detail["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["provider"] == "hardcover")
        .unwrap()["external_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // Write-back off (the default): an edit stays here.
    let r = app
        .call(
            "PATCH",
            &format!("/api/library/{item}"),
            &cookie,
            Some(&json!({"rating": 2.5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    runner(&app).drain().await.unwrap();
    assert!(fake.mutations().is_empty(), "{:?}", fake.mutations());

    // On: status and rating go to that user_book, nothing else is sent.
    let r = enable_write_back(&app, &cookie, id).await;
    assert_eq!(r.body["settings"]["write_back"], true);
    let r = app
        .call(
            "PATCH",
            &format!("/api/library/{item}"),
            &cookie,
            Some(&json!({"status": "read", "rating": 4.5})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    runner(&app).drain().await.unwrap();
    let mutations = fake.mutations();
    let update = mutations
        .iter()
        .find(|m| m.name == "update_user_book")
        .unwrap_or_else(|| panic!("no update_user_book in {mutations:?}"));
    assert_eq!(update.args["id"], user_book, "{:?}", update.args);
    let object = update.args["object"].as_object().unwrap();
    assert_eq!(object["status_id"], 3, "{object:?}");
    assert_eq!(object["rating"], 4.5, "{object:?}");
    assert!(
        !object.contains_key("review_raw"),
        "fields not edited are not sent: {object:?}"
    );
    let row = fake.user_book(user_book).unwrap();
    assert_eq!(row["status_id"], 3);
}

/// The library item whose Hardcover source is `user_books.id` `user_book`.
async fn item_of_user_book(app: &TestApp, cookie: &str, user_book: i64) -> i64 {
    let lib = get(app, "/api/library?per_page=100", cookie).await;
    lib.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| {
            i["sources"].as_array().unwrap().iter().any(|s| {
                s["provider"] == "hardcover" && s["external_id"] == json!(user_book.to_string())
            })
        })
        .unwrap_or_else(|| panic!("no item for user_book {user_book}: {}", lib.body))["id"]
        .as_i64()
        .unwrap()
}

/// Sets `progress` on the item of `user_book`, runs the write-back job and returns it.
async fn push_progress(app: &TestApp, cookie: &str, user_book: i64, progress: f64) -> Value {
    let item = item_of_user_book(app, cookie, user_book).await;
    let r = app
        .call(
            "PATCH",
            &format!("/api/library/{item}"),
            cookie,
            Some(&json!({ "progress": progress })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    runner(app).drain().await.unwrap();
    let (job,): (i64,) = sqlx::query_as(
        "SELECT id FROM jobs WHERE kind = 'connection.write_back' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    get(app, &format!("/api/jobs/{job}"), cookie).await.body
}

/// The read-through mutation of the last write-back, if it sent one.
fn last_read_object(fake: &FakeHardcover) -> Option<Value> {
    let m = fake.mutations();
    let last = m.last()?;
    match last.name.as_str() {
        "update_user_book_read" => Some(last.args["object"].clone()),
        "insert_user_book_read" => Some(last.args["user_book_read"].clone()),
        _ => None,
    }
}

#[tokio::test]
async fn progress_is_written_back_in_pages_or_seconds_or_skipped_saying_why() {
    let (app, fake) = hardcover_app(10).await;
    let rows = fake.user_books_of(12_345);
    let row = |pred: &dyn Fn(&Value) -> bool| rows.iter().find(|r| pred(r)).unwrap().clone();
    let print = row(&|r| r["status_id"] == 2 && r["edition"]["reading_format_id"] == 1);
    let audio = row(&|r| r["edition"]["reading_format_id"] == 2);
    let unknown = row(&|r| {
        r["id"] != print["id"] && r["status_id"] == 2 && r["edition"]["reading_format_id"] == 1
    });
    let id_of = |r: &Value| r["id"].as_i64().unwrap();
    // Nobody knows how long this one is: not Hardcover, so not the library either.
    assert!(fake.edit_user_book(id_of(&unknown), |r| {
        r["edition"]["pages"] = Value::Null;
        r["book"]["pages"] = Value::Null;
    }));
    let cookie = login(&app, "alice", "correct horse").await;
    let id = link_hardcover(&app, &cookie).await;
    enable_write_back(&app, &cookie, id).await;

    // Print: pages of the edition's page count.
    let pages = print["edition"]["pages"].as_f64().unwrap();
    let job = push_progress(&app, &cookie, id_of(&print), 0.5).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["progress"]["pushed"], json!(["progress"]), "{job}");
    let sent = last_read_object(&fake).unwrap();
    #[allow(clippy::cast_possible_truncation)]
    let half = (pages / 2.0).round() as i64;
    assert_eq!(sent["progress_pages"], json!(half), "{sent}");
    assert_eq!(sent["progress_seconds"], Value::Null, "{sent}");

    // Audiobook: seconds of its runtime.
    let total = audio["edition"]["audio_seconds"].as_f64().unwrap();
    let job = push_progress(&app, &cookie, id_of(&audio), 0.25).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    let sent = last_read_object(&fake).unwrap();
    #[allow(clippy::cast_possible_truncation)]
    let quarter = (total / 4.0).round() as i64;
    assert_eq!(sent["progress_seconds"], json!(quarter), "{sent}");

    // Hardcover has since lost the page count; the library still knows it from the sync.
    assert!(fake.edit_user_book(id_of(&print), |r| {
        r["edition"]["pages"] = Value::Null;
        r["book"]["pages"] = Value::Null;
    }));
    let job = push_progress(&app, &cookie, id_of(&print), 0.75).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    #[allow(clippy::cast_possible_truncation)]
    let three_quarters = (pages * 0.75).round() as i64;
    assert_eq!(
        last_read_object(&fake).unwrap()["progress_pages"],
        json!(three_quarters)
    );

    // No length anywhere: nothing is sent for it, and the job says why.
    let before = fake.mutations().len();
    let job = push_progress(&app, &cookie, id_of(&unknown), 0.5).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(fake.mutations().len(), before, "{:?}", fake.mutations());
    assert_eq!(job["progress"]["pushed"], json!([]), "{job}");
    assert_eq!(job["progress"]["skipped"][0]["field"], "progress", "{job}");
    assert!(
        job["progress"]["skipped"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("page count"),
        "{job}"
    );
}

#[tokio::test]
async fn connect_attempts_and_manual_syncs_are_limited() {
    let (app, _fake) = hardcover_app(1).await;
    let cookie = login(&app, "alice", "correct horse").await;
    for _ in 0..5 {
        let r = post(
            &app,
            "/api/connections",
            &json!({"provider": "hardcover", "token": "wrong"}),
            &cookie,
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    }
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": TOKEN}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
    // The next hour it works.
    app.clock.advance(chrono::Duration::minutes(61));
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": TOKEN}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_i64().unwrap();
    runner(&app).drain().await.unwrap();
    for _ in 0..30 {
        let r = post(
            &app,
            &format!("/api/connections/{id}/sync"),
            &json!({}),
            &cookie,
        )
        .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    let r = post(
        &app,
        &format!("/api/connections/{id}/sync"),
        &json!({}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert!(r.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn another_users_connection_and_job_are_not_found() {
    let (app, _fake) = hardcover_app(1).await;
    app.state
        .accounts
        .create_user(
            "bob",
            &secrecy::SecretString::from("bob's password".to_owned()),
        )
        .await
        .unwrap();
    let alice = login(&app, "alice", "correct horse").await;
    let bob = login(&app, "bob", "bob's password").await;
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": TOKEN}),
        &alice,
    )
    .await;
    let id = r.body["id"].as_i64().unwrap();
    let job = post(
        &app,
        &format!("/api/connections/{id}/sync"),
        &json!({}),
        &alice,
    )
    .await
    .body["job_id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        get(&app, &format!("/api/connections/{id}"), &bob)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(&app, &format!("/api/jobs/{job}"), &bob).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        delete(&app, &format!("/api/connections/{id}?data=delete"), &bob)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

// ---------------------------------------------------------------------------------------
// Open Library: a public feed, against the fake Open Library.

/// The library item holding the Open Library work `key` (`/works/OL…W`), if any.
async fn item_of_work(app: &TestApp, cookie: &str, key: &str) -> Option<Value> {
    let olid = format!("\"{}\"", key.trim_start_matches("/works/"));
    let lib = get(app, "/api/library?per_page=500", cookie).await;
    lib.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.to_string().contains(&olid))
        .cloned()
}

/// Links the fake's public user `reader` and runs the first sync; the connection id.
async fn link_openlibrary(app: &TestApp, cookie: &str) -> i64 {
    let r = post(
        app,
        "/api/connections",
        &json!({"provider": "openlibrary", "username": "reader"}),
        cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    runner(app).drain().await.unwrap();
    r.body["id"].as_i64().unwrap()
}

#[tokio::test]
async fn openlibrary_feed_links_by_username_syncs_pages_follows_moves_and_withdraws() {
    // 410 works: 103/103/102/102 over the four shelves, so every shelf takes two pages.
    let (app, fake) = common::openlibrary_app(410).await;
    let cookie = login(&app, "alice", "correct horse").await;
    let providers = get(&app, "/api/providers", &cookie).await.body;
    let ol = providers
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "openlibrary")
        .unwrap()
        .clone();
    assert_eq!(ol["auth_kind"], "public_feed", "{ol}");
    assert_eq!(ol["can_revoke"], false);

    // Unknown user and private log: a 400 that says what to do, and nothing stored.
    let connect = |username: &str| json!({"provider": "openlibrary", "username": username});
    let r = post(&app, "/api/connections", &connect("nobody"), &cookie).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("no user \"nobody\"") && message.contains("openlibrary.org/people/"),
        "{message}"
    );
    let r = post(&app, "/api/connections", &connect("hermit"), &cookie).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("private") && message.contains("public reading log"),
        "{message}"
    );
    let r = post(&app, "/api/connections", &connect("../admin"), &cookie).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let listed = get(&app, "/api/connections", &cookie).await.body;
    assert_eq!(listed, json!([]), "failed links store nothing");
    let asked = fake.requests().len();
    assert_eq!(asked, 2, "the bad name never reached Open Library");

    // A pasted profile address is fine.
    let r = post(
        &app,
        "/api/connections",
        &connect("https://openlibrary.org/people/reader"),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "active");
    assert_eq!(r.body["connection"]["account"]["external_id"], "reader");
    assert_eq!(r.body["connection"]["can_revoke"], false);
    let id = r.body["id"].as_i64().unwrap();
    assert!(
        connection_raw_values(&app)
            .await
            .contains("(None, None, \"active\")"),
        "a public feed stores no credentials"
    );

    // The first sync: every shelf, page by page, as the dossier pages. (The checks above
    // spent from the shared budget of 10 at once: let it refill.)
    app.clock.advance(chrono::Duration::minutes(1));
    runner(&app).drain().await.unwrap();
    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["last_sync"]["status"], "succeeded", "{}", r.body);
    assert_eq!(r.body["last_sync"]["created"], 410, "{}", r.body);
    let sync_requests: Vec<_> = fake.requests().into_iter().skip(asked + 1).collect();
    assert_eq!(sync_requests.len(), 8, "{sync_requests:?}");
    for req in &sync_requests {
        assert_eq!(req.query["limit"], "100");
        let ua = req.user_agent.as_deref().unwrap();
        assert!(
            ua.starts_with("bookbridge/") && ua.contains("ops@books.example"),
            "{ua}"
        );
    }
    assert_eq!(
        sync_requests
            .iter()
            .map(|r| (r.path.rsplit('/').next().unwrap(), r.query["page"].as_str()))
            .collect::<Vec<_>>(),
        vec![
            ("want-to-read.json", "1"),
            ("want-to-read.json", "2"),
            ("currently-reading.json", "1"),
            ("currently-reading.json", "2"),
            ("already-read.json", "1"),
            ("already-read.json", "2"),
            ("stopped-reading.json", "1"),
            ("stopped-reading.json", "2"),
        ]
    );
    let lib = get(&app, "/api/library?per_page=10", &cookie).await;
    assert_eq!(lib.body["total"], 410);
    let want = fake.shelf("reader", "want-to-read")[0].clone();
    let item = item_of_work(&app, &cookie, &want).await.unwrap();
    assert_eq!(item["status"], "to-read", "{item}");
    let stopped = fake.shelf("reader", "stopped-reading")[0].clone();
    let item = item_of_work(&app, &cookie, &stopped).await.unwrap();
    assert_eq!(item["status"], "did-not-finish", "{item}");
    assert!(
        item.to_string().contains("covers.openlibrary.org/b/id/"),
        "{item}"
    );

    // Re-sync: nothing changed upstream, nothing changes here (the budget refills first:
    // it allows 10 at once and 100 a minute).
    app.clock.advance(chrono::Duration::minutes(1));
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["counts"]["unchanged"], 410, "{job}");
    assert_eq!(job["counts"]["created"], 0, "{job}");

    // A move upstream is a status change; a removal is withdrawn after the complete run.
    app.clock.advance(chrono::Duration::minutes(1));
    assert!(fake.move_work("reader", &want, "already-read"));
    let gone = fake.shelf("reader", "currently-reading")[5].clone();
    assert!(fake.remove_work("reader", &gone));
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["counts"]["updated"], 1, "{job}");
    assert_eq!(job["counts"]["removed"], 1, "{job}");
    assert_eq!(job["counts"]["unchanged"], 408, "{job}");
    let item = item_of_work(&app, &cookie, &want).await.unwrap();
    assert_eq!(item["status"], "read", "{item}");
    assert!(item_of_work(&app, &cookie, &gone).await.is_none());

    // Rate limited upstream: retried later, the connection stays active, nothing withdrawn.
    app.clock.advance(chrono::Duration::minutes(1));
    fake.fail_next(ol_fake::Failure::RateLimited {
        retry_after_secs: 30,
    });
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "queued", "a retry is scheduled: {job}");
    assert_eq!(job["error"]["code"], "openlibrary.rate_limited", "{job}");
    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["state"], "active", "{}", r.body);
    // The retry comes after Retry-After (30 s) and completes.
    app.clock.advance(chrono::Duration::hours(1));
    runner(&app).drain().await.unwrap();
    let job = get(&app, &format!("/api/jobs/{}", job["id"]), &cookie)
        .await
        .body;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["counts"]["unchanged"], 409, "{job}");

    // The shared budget is spent before requests are sent: two syncs in the same instant
    // need 16 requests of a budget of 10, so the second waits for a retry.
    app.clock.advance(chrono::Duration::minutes(1));
    let first = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(first["state"], "succeeded", "{first}");
    let before = fake.requests().len();
    let second = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(second["state"], "queued", "{second}");
    assert_eq!(
        second["error"]["code"], "openlibrary.budget_exhausted",
        "{second}"
    );
    assert_eq!(
        fake.requests().len() - before,
        2,
        "only what the budget allowed was sent"
    );
    assert_eq!(
        get(&app, "/api/library?per_page=1", &cookie).await.body["total"],
        409,
        "a partial run withdraws nothing"
    );

    // The log made private later: the user is asked to act, not retried forever.
    app.clock.advance(chrono::Duration::minutes(5));
    runner(&app).drain().await.unwrap();
    fake.set_public("reader", false);
    app.clock.advance(chrono::Duration::minutes(1));
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "failed", "{job}");
    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["state"], "needs_reauth", "{}", r.body);
    assert!(
        r.body["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("public reading log"),
        "{}",
        r.body
    );

    // Disconnect removing the data: nothing to revoke, the library is empty again.
    let r = delete(&app, &format!("/api/connections/{id}?data=delete"), &cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["revoked"], Value::Null);
    let lib = get(&app, "/api/library?per_page=1", &cookie).await;
    assert_eq!(lib.body["total"], 0, "{}", lib.body);
}

/// A shelf that shrinks while it is paged through shifts an entry from page 2 onto page 1,
/// already read: the listing comes up short of `numFound`, so the run withdraws nothing,
/// not even a book that really left; the next complete run does.
#[tokio::test]
async fn openlibrary_listing_that_changes_mid_sync_withdraws_nothing() {
    // 404 works: 101 a shelf, two pages each.
    let (app, fake) = common::openlibrary_app(404).await;
    let cookie = login(&app, "alice", "correct horse").await;
    let id = link_openlibrary(&app, &cookie).await;
    assert_eq!(
        get(&app, "/api/library?per_page=1", &cookie).await.body["total"],
        404
    );

    // Gone before the run: withdrawn only after a complete listing.
    let left = fake.shelf("reader", "want-to-read")[3].clone();
    assert!(fake.remove_work("reader", &left));
    // Removed from the top of already-read after its first page was read: want-to-read,
    // down to 100, takes one request, currently-reading two, already-read's first page is
    // the fourth.
    let moved_up = fake.shelf("reader", "already-read")[0].clone();
    fake.remove_after(4, "reader", &moved_up);
    app.clock.advance(chrono::Duration::minutes(1));
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["counts"]["removed"], 0,
        "a short listing withdraws nothing: {job}"
    );
    assert!(item_of_work(&app, &cookie, &left).await.is_some());

    app.clock.advance(chrono::Duration::minutes(1));
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["counts"]["removed"], 2, "{job}");
    assert_eq!(job["counts"]["unchanged"], 402, "{job}");
}

#[tokio::test]
async fn openlibrary_disconnect_keeping_data_keeps_the_books() {
    let (app, _fake) = common::openlibrary_app(6).await;
    let cookie = login(&app, "alice", "correct horse").await;
    let id = link_openlibrary(&app, &cookie).await;
    let r = delete(&app, &format!("/api/connections/{id}?data=keep"), &cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let lib = get(&app, "/api/library?per_page=100", &cookie).await;
    assert_eq!(lib.body["total"], 6, "{}", lib.body);
    let r = get(&app, &format!("/api/connections/{id}"), &cookie).await;
    assert_eq!(r.body["state"], "disconnected");
}

// ---------------------------------------------------------------------------------------
// A generic OAuth provider: the real oidc-provider peer.

async fn oauth_app(peer: &peer::Peer) -> (TestApp, Arc<bb_vault::Vault>) {
    let mut app = common::app().await;
    // The peer checks token lifetimes against real time.
    let clock: Arc<dyn Clock> = Arc::new(bb_core::clock::SystemClock);
    let config: bb_providers::oauth::OAuthProviderConfig =
        toml::from_str(&peer.config_toml(peer::BASIC_CLIENT, "client_secret_basic")).unwrap();
    let provider = bb_providers::oauth::OAuthProvider::from_config(config).unwrap();
    let client = bb_providers::oauth::OAuthClient::new(
        bb_providers::http::build_client(bb_providers::http::HttpSettings::default()).unwrap(),
        clock.clone(),
    );
    let connector: Arc<dyn Provider> =
        Arc::new(bb_providers::oauth::OAuthConnector::new(provider, client));
    app.state.clock = clock.clone();
    let vault = app.vault.clone();
    app.state.connections = connections_with(&app, &clock, vec![connector]);
    (app, vault)
}

/// Starts a connect through the API and plays the user through the peer's pages; returns
/// the callback query.
async fn authorize(app: &TestApp, peer: &peer::Peer, cookie: &str) -> (i64, String) {
    let r = post(
        app,
        "/api/connections",
        &json!({"provider": "oidc-peer"}),
        cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["state"], "pending");
    let url = url::Url::parse(r.body["authorize_url"].as_str().unwrap()).unwrap();
    let pairs: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(pairs["code_challenge_method"], "S256");
    assert_eq!(pairs["redirect_uri"], peer::REDIRECT_URI);
    let query = peer.authorize_as(&url, "reader-1").await;
    (r.body["id"].as_i64().unwrap(), query)
}

#[tokio::test]
async fn oauth_connect_refresh_reauth_and_disconnect_against_a_real_provider() {
    let Some(peer) = peer::Peer::start().await else {
        return;
    };
    // Capture every log line of the whole flow.
    let logs = Arc::new(std::sync::Mutex::new(Vec::<u8>::new()));
    let writer = {
        let logs = logs.clone();
        move || LogWriter(logs.clone())
    };
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(writer)
        .finish();
    // Global, not a thread-local default: tracing caches each callsite's interest
    // process-wide, so a span first hit by a concurrent test before a thread-local
    // subscriber existed could stay disabled for this one (it did, once, in CI). Only this
    // test in the binary sets it; other tests' lines land in the capture too, harmlessly.
    tracing::subscriber::set_global_default(subscriber)
        .expect("only this test installs a global subscriber");

    let (app, vault) = oauth_app(&peer).await;
    let cookie = login(&app, "alice", "correct horse").await;

    // A callback with a state from another session is refused before any token request.
    let (id_other, query) = authorize(&app, &peer, &cookie).await;
    let other = login(&app, "alice", "correct horse").await;
    let r = get(&app, &format!("/oauth/callback/oidc-peer?{query}"), &other).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = get(&app, &format!("/api/connections/{id_other}"), &cookie).await;
    assert_eq!(r.body["state"], "error", "{}", r.body);
    assert_eq!(r.body["last_error"]["code"], "other_session");
    // ...and the state was consumed: replaying it from the right session is unknown.
    let r = get(&app, &format!("/oauth/callback/oidc-peer?{query}"), &cookie).await;
    assert_eq!(r.headers["location"], "/connections?error=unknown_state");

    // The user declines at the provider: the error is recorded on the connection.
    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "oidc-peer"}),
        &cookie,
    )
    .await;
    let declined = r.body["id"].as_i64().unwrap();
    let url = url::Url::parse(r.body["authorize_url"].as_str().unwrap()).unwrap();
    let state = url
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let iss: String = url::form_urlencoded::byte_serialize(peer.issuer.as_bytes()).collect();
    let r = get(
        &app,
        &format!("/oauth/callback/oidc-peer?error=access_denied&error_description=%3Cb%3Eno%3C%2Fb%3E&state={state}&iss={iss}"),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers["location"],
        format!("/connections?failed={declined}").as_str()
    );
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    let view = get(&app, &format!("/api/connections/{declined}"), &cookie)
        .await
        .body;
    assert_eq!(view["state"], "error", "{view}");
    assert_eq!(view["last_error"]["code"], "access_denied", "{view}");
    let audit = get(&app, "/api/audit", &cookie).await.body.to_string();
    assert!(audit.contains("connect_callback_failed"), "{audit}");

    // The whole flow.
    let (id, query) = authorize(&app, &peer, &cookie).await;
    let r = get(&app, &format!("/oauth/callback/oidc-peer?{query}"), &cookie).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers["location"],
        format!("/connections?connected={id}").as_str()
    );
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    let view = get(&app, &format!("/api/connections/{id}"), &cookie)
        .await
        .body;
    assert_eq!(view["state"], "active", "{view}");
    assert_eq!(view["account"]["external_id"], "reader-1");
    assert!(
        view["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("offline_access"))
    );
    assert_eq!(view["can_revoke"], true);

    // Forced refresh, several times: each rotation is committed before the next use.
    for _ in 0..3 {
        let r = post(
            &app,
            &format!("/api/connections/{id}/refresh"),
            &json!({}),
            &cookie,
        )
        .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["state"], "active");
    }
    // A sync proves the current access token works.
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");

    // Disconnect revokes at the provider (refresh token first); the tokens are then
    // inactive there, and gone here.
    let tokens_before = stored_tokens(&app, &vault, id).await;
    let r = delete(&app, &format!("/api/connections/{id}?data=keep"), &cookie).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["revoked"], true, "{}", r.body);
    assert!(!peer.is_active(peer::BASIC_CLIENT, &tokens_before.0).await);
    assert!(!peer.is_active(peer::BASIC_CLIENT, &tokens_before.1).await);

    // A second connection whose grant is revoked behind our back: invalid_grant →
    // needs_reauth, audited, and a refresh is not retried.
    let (id2, query) = authorize(&app, &peer, &cookie).await;
    let r = get(&app, &format!("/oauth/callback/oidc-peer?{query}"), &cookie).await;
    assert_eq!(
        r.headers["location"],
        format!("/connections?connected={id2}").as_str()
    );
    let (_, refresh) = stored_tokens(&app, &vault, id2).await;
    revoke_at_peer(&peer, &refresh).await;
    let r = post(
        &app,
        &format!("/api/connections/{id2}/refresh"),
        &json!({}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let view = get(&app, &format!("/api/connections/{id2}"), &cookie)
        .await
        .body;
    assert_eq!(view["state"], "needs_reauth", "{view}");
    assert_eq!(view["last_error"]["code"], "oauth.invalid_grant");
    let audit = get(&app, "/api/audit", &cookie).await.body.to_string();
    for event in [
        "connection_needs_reauth",
        "connection_refreshed",
        "connection_refresh_failed",
        "connection_disconnected",
    ] {
        assert!(audit.contains(event), "audit lacks {event}: {audit}");
    }

    // No token, code or verifier in any response above or any log line.
    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("oauth.refresh"), "the capture saw the flow");
    for secret in [&tokens_before.0, &tokens_before.1, &refresh] {
        assert!(!logs.contains(secret.as_str()), "a token reached the logs");
    }
    let code = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    assert!(
        !logs.contains(&code),
        "the authorization code reached the logs"
    );
}

#[derive(Clone)]
struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The tokens as sealed for a connection, opened the way the use-case does: the test
/// plays the operator with the master key to compare against the provider's view.
async fn stored_tokens(app: &TestApp, vault: &bb_vault::Vault, id: i64) -> (String, String) {
    let raw = connection_raw_values(app).await;
    let pool = app.pool.clone();
    let sealed: Vec<u8> = sqlx::query_scalar("SELECT credentials FROM connections WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    let tokens = vault
        .open(
            bb_core::ids::UserId(1),
            &format!("connection/{id}/credentials"),
            &sealed,
        )
        .await
        .unwrap();
    let v: Value = serde_json::from_slice(tokens.expose()).unwrap();
    let access = v["access_token"].as_str().unwrap().to_owned();
    let refresh = v["refresh_token"].as_str().unwrap().to_owned();
    assert!(
        !raw.contains(&access) && !raw.contains(&refresh),
        "tokens stored in the clear"
    );
    // The whole database as it is on disk (file and write-ahead log) holds neither.
    let (_, _, file): (i64, String, String) = sqlx::query_as("PRAGMA database_list")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for path in [file.clone(), format!("{file}-wal")] {
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert!(
            path != file || !bytes.is_empty(),
            "read the database file {file}"
        );
        for token in [&access, &refresh] {
            assert!(
                !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
                "a token is in {path}"
            );
        }
    }
    (access, refresh)
}

async fn revoke_at_peer(peer: &peer::Peer, refresh: &str) {
    revoke_at_peer_hint(peer, refresh, "refresh_token").await;
}

async fn revoke_at_peer_hint(peer: &peer::Peer, token: &str, hint: &str) {
    let r = reqwest::Client::new()
        .post(peer.endpoint("revocation_endpoint"))
        .basic_auth(
            peer::BASIC_CLIENT,
            Some(
                url::form_urlencoded::byte_serialize(peer::CLIENT_SECRET.as_bytes())
                    .collect::<String>(),
            ),
        )
        .form(&[("token", token), ("token_type_hint", hint)])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

/// A fault injected between the provider's answer and the commit of rotated tokens: the
/// database refuses the credential write. While the fault passes, the commit is retried
/// with the new tokens held in memory, so the only valid refresh token is not lost; when it
/// does not pass, the stored tokens stay exactly as they were (never half-written) and the
/// connection ends in `needs_reauth` on its next refresh rather than looping.
#[tokio::test]
async fn a_failed_commit_after_a_rotating_refresh_keeps_the_only_valid_token() {
    let Some(peer) = peer::Peer::start().await else {
        return;
    };
    let (app, vault) = oauth_app(&peer).await;
    let cookie = login(&app, "alice", "correct horse").await;
    let (id, query) = authorize(&app, &peer, &cookie).await;
    get(&app, &format!("/oauth/callback/oidc-peer?{query}"), &cookie).await;
    let before = stored_tokens(&app, &vault, id).await;

    let inject = "CREATE TRIGGER fail_commit BEFORE UPDATE OF credentials ON connections \
                  WHEN NEW.credentials IS NOT OLD.credentials \
                  BEGIN SELECT RAISE(ABORT, 'injected fault'); END";
    sqlx::query(inject).execute(&app.pool).await.unwrap();
    // The fault clears while the refresher is still retrying its commit.
    let pool = app.pool.clone();
    let healer = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(120)).await;
        sqlx::query("DROP TRIGGER fail_commit")
            .execute(&pool)
            .await
            .unwrap();
    });
    let r = post(
        &app,
        &format!("/api/connections/{id}/refresh"),
        &json!({}),
        &cookie,
    )
    .await;
    healer.await.unwrap();
    assert_eq!(
        r.status,
        StatusCode::OK,
        "the commit was retried: {}",
        r.body
    );
    let after = stored_tokens(&app, &vault, id).await;
    assert_ne!(after.1, before.1, "the rotated refresh token was committed");
    // The committed token is the live one: refreshing again works (no reuse detected).
    let r = post(
        &app,
        &format!("/api/connections/{id}/refresh"),
        &json!({}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    // A fault that does not pass (as if the process died before committing).
    let current = stored_tokens(&app, &vault, id).await;
    sqlx::query(inject).execute(&app.pool).await.unwrap();
    let r = post(
        &app,
        &format!("/api/connections/{id}/refresh"),
        &json!({}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    sqlx::query("DROP TRIGGER fail_commit")
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(
        stored_tokens(&app, &vault, id).await,
        current,
        "the stored tokens are untouched, not half-written"
    );
    let view = get(&app, &format!("/api/connections/{id}"), &cookie)
        .await
        .body;
    assert_eq!(view["state"], "active", "{view}");
    // The provider rotated and detects the old token's reuse: the connection asks to be
    // reconnected instead of retrying forever.
    let r = post(
        &app,
        &format!("/api/connections/{id}/refresh"),
        &json!({}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let view = get(&app, &format!("/api/connections/{id}"), &cookie)
        .await
        .body;
    assert_eq!(view["state"], "needs_reauth", "{view}");
}

/// The periodic pass refreshes connections whose credentials are about to expire or have
/// not been written for longer than the keep-alive period (the peer always sends
/// `expires_in`, so here both conditions hold after eight days; `needs_refresh` covers the
/// idle rule alone), and leaves fresh ones alone.
#[tokio::test]
async fn idle_connections_are_refreshed_by_the_keepalive_pass() {
    let Some(peer) = peer::Peer::start().await else {
        return;
    };
    let mut app = common::app().await;
    let clock: Arc<dyn Clock> = app.clock.clone();
    let config: bb_providers::oauth::OAuthProviderConfig =
        toml::from_str(&peer.config_toml(peer::BASIC_CLIENT, "client_secret_basic")).unwrap();
    let connector: Arc<dyn Provider> = Arc::new(bb_providers::oauth::OAuthConnector::new(
        bb_providers::oauth::OAuthProvider::from_config(config).unwrap(),
        bb_providers::oauth::OAuthClient::new(
            bb_providers::http::build_client(bb_providers::http::HttpSettings::default()).unwrap(),
            clock.clone(),
        ),
    ));
    app.state.connections = connections_with(&app, &clock, vec![connector]);
    let cookie = login(&app, "alice", "correct horse").await;
    // A sign-in finished after more than 10 minutes is refused before any token request.
    let (late, query) = authorize(&app, &peer, &cookie).await;
    app.clock.advance(chrono::Duration::minutes(11));
    let r = get(&app, &format!("/oauth/callback/oidc-peer?{query}"), &cookie).await;
    assert_eq!(
        r.headers["location"],
        format!("/connections?failed={late}").as_str()
    );
    let view = get(&app, &format!("/api/connections/{late}"), &cookie)
        .await
        .body;
    assert_eq!(view["last_error"]["code"], "expired", "{view}");

    let (id, query) = authorize(&app, &peer, &cookie).await;
    get(&app, &format!("/oauth/callback/oidc-peer?{query}"), &cookie).await;
    let before = stored_tokens(&app, &app.vault.clone(), id).await;

    let connections = app.state.connections.clone();
    // Fresh (and not yet expiring under the margin): nothing to do.
    app.clock.advance(chrono::Duration::minutes(1));
    assert_eq!(connections.keepalive().await.unwrap(), 0);
    // Eight days idle: refreshed.
    app.clock.advance(chrono::Duration::days(8));
    assert!(connections.keepalive().await.unwrap() >= 1);
    let after = stored_tokens(&app, &app.vault.clone(), id).await;
    assert_ne!(
        after.1, before.1,
        "the refresh token was rotated by the keep-alive refresh"
    );
    assert!(peer.is_active(peer::BASIC_CLIENT, &after.1).await);
}

/// Reconnecting an account that needs it (a new token for the same Hardcover account)
/// revives the same connection, with its history and books, instead of refusing a
/// duplicate or starting a second one.
#[tokio::test]
async fn a_connection_needing_reauth_is_reconnected_in_place() {
    let app = common::app().await;
    let mut config = FakeHardcoverConfig::new(app.clock.clone(), 3);
    let mut second = config.accounts[0].clone();
    second.token = "hc-new-token".into();
    second.books = 0; // the same account: its books are seeded once, under the first token
    config.accounts.push(second);
    let (app, fake) = hardcover_app_with(app, config).await;
    let cookie = login(&app, "alice", "correct horse").await;
    let id = link_hardcover(&app, &cookie).await;
    fake.revoke_token(TOKEN);
    sync_and_wait(&app, &cookie, id).await;
    let view = get(&app, &format!("/api/connections/{id}"), &cookie)
        .await
        .body;
    assert_eq!(view["state"], "needs_reauth");

    let r = post(
        &app,
        "/api/connections",
        &json!({"provider": "hardcover", "token": "hc-new-token"}),
        &cookie,
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], id, "the same connection is revived");
    assert_eq!(r.body["state"], "active");
    assert_eq!(r.body["connection"]["last_error"], Value::Null);
    let list = get(&app, "/api/connections", &cookie).await.body;
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    let job = sync_and_wait(&app, &cookie, id).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(
        job["counts"]["unchanged"], 3,
        "same books, same sources: {job}"
    );
}
