//! The committed `openapi.json` must match what the code generates, and every route the
//! router serves must be in it.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi.json")
}

#[test]
fn openapi_document_has_not_drifted() {
    let generated = bb_web::openapi::document_json();
    let path = committed_path();
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, format!("{generated}\n")).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert_eq!(
        committed.trim_end(),
        generated.trim_end(),
        "openapi.json is out of date: run `UPDATE_OPENAPI=1 cargo test -p bb-web --test openapi`"
    );
}

#[test]
fn every_api_route_is_documented() {
    let doc: serde_json::Value = serde_json::from_str(&bb_web::openapi::document_json()).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for route in [
        "/healthz",
        "/readyz",
        "/api/session",
        "/api/me",
        "/api/audit",
        "/api/tokens",
        "/api/tokens/{id}",
        "/api/openapi.json",
        "/api/imports",
        "/api/imports/{id}",
        "/api/library",
        "/api/library/{id}",
        "/api/library/merge",
        "/api/library/{id}/split",
        "/api/library/duplicates",
        "/api/library/duplicates/{id}",
        "/api/export",
    ] {
        assert!(paths.contains_key(route), "{route} missing from OpenAPI");
    }
    assert!(
        paths["/api/session"]["post"].is_object() && paths["/api/session"]["delete"].is_object()
    );
}
