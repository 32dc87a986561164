//! The library over HTTP: upload a real export, list and filter, edit by hand, export,
//! undo the import, and the error answers a client gets for a bad upload.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::{Reply, TestApp, app};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

const GOODREADS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/real/goodreads/goodreads_library_export-2022.csv"
);

async fn bearer(app: &TestApp) -> String {
    let (token, _) = app
        .state
        .accounts
        .create_token("alice", None)
        .await
        .unwrap();
    format!("Bearer {}", token.expose_secret())
}

async fn upload(app: &TestApp, auth: &str, name: &str, bytes: &[u8]) -> Reply {
    app.upload(auth, name, None, bytes).await
}

async fn json_request(app: &TestApp, method: &str, path: &str, auth: &str, body: &Value) -> Reply {
    app.send(
        Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, auth)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn upload_list_edit_export_and_undo() {
    let app = app().await;
    let auth = bearer(&app).await;
    let file = std::fs::read(GOODREADS).unwrap();

    let created = upload(&app, &auth, "anything.bin", &file).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let summary = &created.body["summary"];
    assert_eq!(
        summary["format"], "goodreads-csv",
        "detected from content, not the name"
    );
    assert_eq!(summary["failed"], 0, "{summary}");
    let rows = summary["rows"].as_u64().unwrap();
    assert!(rows > 0);
    let batch = summary["batch_id"].as_i64().unwrap();

    let all = app
        .get("/api/library?per_page=500", Some(("authorization", &auth)))
        .await;
    assert_eq!(all.status, StatusCode::OK);
    let total = all.body["total"].as_u64().unwrap();
    assert!(total > 0 && total <= rows, "{total} items from {rows} rows");
    let first = &all.body["items"][0];
    assert!(first["sources"][0]["provider"] == "goodreads", "{first}");

    // Filters narrow the list; every item returned matches.
    let read = app
        .get(
            "/api/library?status=read&per_page=500",
            Some(("authorization", &auth)),
        )
        .await;
    for item in read.body["items"].as_array().unwrap() {
        assert_eq!(item["status"], "read", "{item}");
    }
    assert!(read.body["total"].as_u64().unwrap() < total);

    // A manual edit wins over the source and says so.
    let id = first["id"].as_i64().unwrap();
    let edited = json_request(
        &app,
        "PATCH",
        &format!("/api/library/{id}"),
        &auth,
        &json!({"rating": 4.5, "status": "did-not-finish"}),
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let got = app
        .get(
            &format!("/api/library/{id}"),
            Some(("authorization", &auth)),
        )
        .await;
    assert_eq!(got.body["rating"], 4.5);
    assert_eq!(got.body["status"], "did-not-finish");

    // Export is complete and re-importable.
    let export = app
        .get("/api/export?format=json", Some(("authorization", &auth)))
        .await;
    assert_eq!(export.status, StatusCode::OK);

    // The same file again changes nothing.
    let again = upload(&app, &auth, "again.csv", &file).await;
    assert_eq!(
        again.body["summary"]["unchanged"].as_u64().unwrap(),
        rows,
        "{}",
        again.body
    );

    // Undo the first batch: with the second one identical, what remains is what the user
    // still has from any source.
    let undone = app
        .send(
            Request::delete(format!("/api/imports/{batch}"))
                .header(header::AUTHORIZATION, &auth)
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert!(
        undone.status.is_success(),
        "{} {}",
        undone.status,
        undone.body
    );
    let listed = app
        .get("/api/imports", Some(("authorization", &auth)))
        .await;
    assert!(listed.status.is_success());

    // Another user sees none of it.
    app.state
        .accounts
        .create_user(
            "bob",
            &secrecy::SecretString::from("bob's passphrase".to_owned()),
        )
        .await
        .unwrap();
    let (bob, _) = app.state.accounts.create_token("bob", None).await.unwrap();
    let bob = format!("Bearer {}", bob.expose_secret());
    let theirs = app.get("/api/library", Some(("authorization", &bob))).await;
    assert_eq!(theirs.body["total"], 0);
    let peek = app
        .get(&format!("/api/library/{id}"), Some(("authorization", &bob)))
        .await;
    assert_eq!(peek.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_uploads_get_clear_errors_and_change_nothing() {
    let app = app().await;
    let auth = bearer(&app).await;
    let garbage = upload(
        &app,
        &auth,
        "x.csv",
        b"\x00\x01 this is not an export at all",
    )
    .await;
    assert_eq!(garbage.status, StatusCode::BAD_REQUEST);
    assert_eq!(garbage.body["error"]["code"], "invalid_input");
    assert!(
        garbage.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("format")
    );
    let no_file = json_request(&app, "POST", "/api/imports", &auth, &json!({})).await;
    assert!(no_file.status.is_client_error());
    let unauthenticated = app.get("/api/library", None).await;
    assert_eq!(unauthenticated.status, StatusCode::UNAUTHORIZED);
    let empty = app
        .get("/api/library", Some(("authorization", &auth)))
        .await;
    assert_eq!(empty.body["total"], 0);
}

#[tokio::test]
async fn the_list_filters_by_the_shown_rating_and_names_a_bad_one() {
    let app = app().await;
    let auth = bearer(&app).await;
    let file = std::fs::read(GOODREADS).unwrap();
    assert_eq!(
        upload(&app, &auth, "gr.csv", &file).await.status,
        StatusCode::CREATED
    );
    let list = |query: &'static str| {
        let (app, auth) = (&app, &auth);
        async move {
            app.get(
                &format!("/api/library?per_page=500&{query}"),
                Some(("authorization", auth)),
            )
            .await
        }
    };
    let total = list("").await.body["total"].as_u64().unwrap();
    let unrated = list("rating=unrated").await;
    let rated = list("rating=rated").await;
    for item in unrated.body["items"].as_array().unwrap() {
        assert!(item["rating"].is_null(), "{item}");
    }
    let unrated_n = unrated.body["total"].as_u64().unwrap();
    let rated_n = rated.body["total"].as_u64().unwrap();
    assert!(unrated_n > 0 && rated_n > 0, "{unrated_n} / {rated_n}");
    assert_eq!(unrated_n + rated_n, total);

    // A hand-set half star counts exactly: 4.5 is at least 4 and at least 4.5, not 5.
    let id = unrated.body["items"][0]["id"].as_i64().unwrap();
    let edited = json_request(
        &app,
        "PATCH",
        &format!("/api/library/{id}"),
        &auth,
        &json!({"rating": 4.5}),
    )
    .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let has = |page: &Reply| {
        page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["id"] == id)
    };
    for (query, expected) in [
        ("rating=4", true),
        ("rating=4.5", true),
        ("rating=5", false),
        ("rating=unrated", false),
    ] {
        let page = list(query).await;
        assert_eq!(has(&page), expected, "{query}");
        let floor: f64 = query
            .strip_prefix("rating=")
            .and_then(|n| n.parse().ok())
            .unwrap_or(0.0);
        for item in page.body["items"].as_array().unwrap() {
            assert!(item["rating"].is_null() || item["rating"].as_f64().unwrap() >= floor);
        }
    }
    assert_eq!(
        list("rating=unrated").await.body["total"].as_u64(),
        Some(unrated_n - 1)
    );

    let bad = list("rating=lots").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.body);
    assert_eq!(bad.body["error"]["code"], "invalid_input", "{}", bad.body);
    assert!(
        bad.body.to_string().contains("`lots`"),
        "names the bad value: {}",
        bad.body
    );
}

/// The raw Audible `1.0/library` JSON, as a browser extension or the Python `audible`
/// package saves it (one page, several pages in an array, one page per line), is an
/// upload like any other: detected, mapped by the live sync's code to audiobooks with
/// their ASINs, and idempotent.
#[tokio::test]
async fn raw_audible_library_json_is_uploaded_over_http() {
    let app = app().await;
    let auth = bearer(&app).await;
    for name in [
        "audible_api_page.json",
        "audible_api_pages.json",
        "audible_api_pages.ndjson",
    ] {
        let path = format!(
            "{}/../bb-importers/tests/data/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let file = std::fs::read(path).unwrap();
        let first = upload(&app, &auth, name, &file).await;
        assert_eq!(first.status, StatusCode::CREATED, "{name}: {}", first.body);
        let summary = &first.body["summary"];
        assert_eq!(summary["format"], "audible-api-json", "{name}");
        // The samples hold broken items on purpose (no ASIN, a string for an item): each is
        // reported with its row and reason, and the rest import.
        let failed = summary["failed"].as_u64().unwrap();
        let errors = summary["errors"].as_array().unwrap();
        assert_eq!(errors.len() as u64, failed, "{name}: {summary}");
        assert!(
            errors
                .iter()
                .all(|e| e["row"].as_u64().is_some_and(|r| r > 0)
                    && e["message"].as_str().is_some_and(|m| !m.is_empty())),
            "{name}: {summary}"
        );
        let rows = summary["rows"].as_u64().unwrap();
        assert!(rows > failed, "{name}: {summary}");

        let again = upload(&app, &auth, name, &file).await;
        let summary = &again.body["summary"];
        assert_eq!(
            summary["unchanged"].as_u64().unwrap(),
            rows - failed,
            "{name} a second time changes nothing: {summary}"
        );
    }
    let all = app
        .get("/api/library?per_page=500", Some(("authorization", &auth)))
        .await;
    let items = all.body["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for item in items {
        assert!(
            item["formats"]
                .as_array()
                .unwrap()
                .contains(&json!("audiobook")),
            "{item}"
        );
        assert!(
            item["identifiers"]["asin"]
                .as_array()
                .is_some_and(|a| !a.is_empty()),
            "{item}"
        );
        assert_eq!(item["sources"][0]["provider"], "audible", "{item}");
    }
}
