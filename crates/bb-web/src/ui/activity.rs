//! The activity page: each connected account's sync history (from the sync job's runs:
//! started, finished, result, counts, error), then the account's audit log, newest first.

use super::display::{Stamp, account_label, provider_label};
use super::{Chrome, PageUser, UiError, render};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bb_core::audit::AuditEntry;
use bb_core::connections::{ConnectionState, SyncRun};
use serde::Deserialize;

const PAGE: u32 = 50;
/// Sync attempts shown per connection (the API's `/syncs` has more).
const SYNCS: u32 = 10;

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

/// One attempt of one sync.
#[derive(Debug)]
struct SyncRow {
    started: Stamp,
    finished: Option<Stamp>,
    result: &'static str,
    failed_run: bool,
    counts: String,
    error: String,
}

/// A connected account and its latest sync attempts.
#[derive(Debug)]
struct SyncHistory {
    id: i64,
    title: String,
    runs: Vec<SyncRow>,
}

#[derive(Template)]
#[template(path = "activity.html")]
struct ActivityPage {
    chrome: Chrome,
    /// Only on the first page (the newest activity).
    syncs: Vec<SyncHistory>,
    rows: Vec<Row>,
    older: Option<i64>,
}

fn sync_row(run: &SyncRun) -> SyncRow {
    let result = match run.outcome.as_deref() {
        None => "Running",
        Some("succeeded") => "Finished",
        Some("retry") => "Failed, will try again",
        Some("failed" | "dead") => "Failed",
        Some("lease_expired") => "Interrupted, will try again",
        Some(_) => "Ended",
    };
    SyncRow {
        started: Stamp::new(run.started),
        finished: Stamp::maybe(run.finished),
        result,
        failed_run: run.error.is_some(),
        counts: if run.outcome.as_deref() == Some("succeeded") {
            format!(
                "{} new, {} updated, {} unchanged, {} removed, {} failed",
                run.created, run.updated, run.unchanged, run.removed, run.failed
            )
        } else {
            String::new()
        },
        error: run
            .error
            .as_ref()
            .map(|e| e.message.clone())
            .unwrap_or_default(),
    }
}

async fn sync_histories(state: &AppState, user: &PageUser) -> Result<Vec<SyncHistory>, UiError> {
    let mut out = Vec::new();
    for c in state.connections.list(user.user.id).await? {
        let runs = state
            .connections
            .sync_history(user.user.id, c.id, SYNCS)
            .await?;
        let account = account_label(&c);
        let mut title = if account.is_empty() {
            c.provider_name.clone()
        } else {
            format!("{} · {account}", c.provider_name)
        };
        if c.state == ConnectionState::Disconnected {
            title.push_str(" (disconnected)");
        }
        out.push(SyncHistory {
            id: c.id.0,
            title,
            runs: runs.iter().map(sync_row).collect(),
        });
    }
    Ok(out)
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
    let syncs = if before.is_none() {
        sync_histories(&state, &user).await?
    } else {
        Vec::new()
    };
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
            syncs,
            rows,
            older,
        },
    ))
}
