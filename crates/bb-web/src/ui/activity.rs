//! The activity page: the account's audit log, newest first, which carries each
//! connection's sync history (started, finished with counts, failed) too.

use super::display::{Stamp, provider_label};
use super::{Chrome, PageUser, UiError, render};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bb_core::audit::AuditEntry;
use serde::Deserialize;

const PAGE: u32 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ActivityQuery {
    before: Option<String>,
}

#[derive(Debug)]
struct Row {
    what: String,
    detail: String,
    ip: String,
    at: Stamp,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    chrome: Chrome,
    rows: Vec<Row>,
    older: Option<i64>,
}

/// An audit event as a sentence, with what it concerned.
fn describe(e: &AuditEntry) -> (String, String) {
    let what = match e.event.as_str() {
        "login_succeeded" => "Signed in",
        "login_failed" => "Failed sign-in attempt",
        "login_throttled" => "Sign-in blocked after too many attempts",
        "logout" => "Signed out",
        "password_changed" => "Password changed",
        "user_created" => "Account created",
        "user_deleted" => "Account deleted",
        "token_created" => "Access token created",
        "token_revoked" => "Access token revoked",
        "connection_linked" => "Account connected",
        "connect_callback_failed" => "Connecting failed",
        "connection_refreshed" => "Access renewed",
        "connection_refresh_failed" => "Renewing access failed",
        "connection_needs_reauth" => "Connection needs reconnecting",
        "sync_started" => "Sync started",
        "sync_finished" => "Sync finished",
        "sync_failed" => "Sync failed",
        "connection_disconnected" => "Account disconnected",
        "revocation_failed" => "The provider could not be told to revoke access",
        other => other,
    }
    .to_owned();
    let d = &e.details;
    let mut detail = Vec::new();
    if let Some(n) = d.get("name").and_then(|n| n.as_str()) {
        detail.push(format!("“{n}”"));
    }
    if let Some(p) = d.get("provider").and_then(|p| p.as_str()) {
        let conn = d
            .get("connection")
            .and_then(serde_json::Value::as_i64)
            .map(|c| format!(" (connection #{c})"))
            .unwrap_or_default();
        detail.push(format!("{}{conn}", provider_label(p)));
    }
    if e.event == "sync_finished" {
        let n = |k: &str| d.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        detail.push(format!(
            "{} new, {} updated, {} unchanged, {} removed, {} failed",
            n("created"),
            n("updated"),
            n("unchanged"),
            n("removed"),
            n("failed")
        ));
    }
    if let Some(c) = d.get("code").and_then(|c| c.as_str()) {
        detail.push(format!("({c})"));
    }
    (what, detail.join(" · "))
}

pub async fn page(
    State(state): State<AppState>,
    user: PageUser,
    Query(q): Query<ActivityQuery>,
) -> Result<Response, UiError> {
    let before = q.before.as_deref().and_then(|b| b.parse().ok());
    let entries = state.accounts.audit_log(user.user.id, before, PAGE).await?;
    let full = entries.len() == PAGE as usize;
    let older = full.then(|| entries.last().map(|e| e.id)).flatten();
    let rows = entries
        .iter()
        .map(|e| {
            let (what, detail) = describe(e);
            Row {
                what,
                detail,
                ip: e.client_ip.clone().unwrap_or_default(),
                at: Stamp::new(e.at),
            }
        })
        .collect();
    Ok(render(
        StatusCode::OK,
        &ActivityPage {
            chrome: Chrome::new(&user, "activity"),
            rows,
            older,
        },
    ))
}
