//! The activity page: the account's audit log, newest first (sync history joins it when
//! connections land).

use super::display::Stamp;
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

/// An audit event as a sentence.
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
        other => other,
    }
    .to_owned();
    let detail = e
        .details
        .get("name")
        .and_then(|n| n.as_str())
        .map(|n| format!("“{n}”"))
        .unwrap_or_default();
    (what, detail)
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
