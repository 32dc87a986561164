//! The import page: upload one or more export files (format detected from content), the
//! summary with every failed row and why, and past imports with Undo.

use super::csrf::{self, CheckedForm};
use super::display::{Stamp, format_label, provider_label};
use super::{Chrome, PageUser, UiError, render, see_other};
use crate::api::imports::{MAX_UPLOAD_BYTES, import_bytes};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bb_core::ids::BatchId;
use bb_core::library::service::RowFailure;
use bb_core::ports::{BatchState, ImportBatch};
use serde::Deserialize;

/// Several files in one form, each up to the API's per-file limit.
pub const MAX_FORM_BYTES: usize = 4 * MAX_UPLOAD_BYTES;

#[derive(Debug)]
struct BatchView {
    id: i64,
    label: String,
    format: String,
    source: String,
    undone: bool,
    running: bool,
    rows: u64,
    created: u64,
    merged: u64,
    updated: u64,
    unchanged: u64,
    failed: u64,
    errors: Vec<RowFailure>,
    /// More rows failed than are listed.
    errors_cut: bool,
    at: Stamp,
}

impl From<ImportBatch> for BatchView {
    fn from(b: ImportBatch) -> Self {
        let mut view = Self {
            id: b.id.0,
            label: b.label.unwrap_or_else(|| "(no file name)".into()),
            format: format_label(&b.format),
            source: provider_label(&b.provider),
            undone: b.state == BatchState::Undone,
            running: b.state == BatchState::Running,
            rows: b.counts.rows,
            created: b.counts.created,
            merged: b.counts.merged,
            updated: b.counts.updated,
            unchanged: b.counts.unchanged,
            failed: b.counts.failed,
            errors_cut: false,
            errors: serde_json::from_value(b.errors).unwrap_or_default(),
            at: Stamp::new(b.created_at),
        };
        view.errors_cut = (view.errors.len() as u64) < view.failed;
        view
    }
}

/// A file that could not be imported at all.
#[derive(Debug)]
struct FileFailure {
    name: String,
    message: String,
}

#[derive(Template)]
#[template(path = "import.html")]
struct ImportPage {
    chrome: Chrome,
    /// What was just imported.
    fresh: Vec<BatchView>,
    failures: Vec<FileFailure>,
    past: Vec<BatchView>,
    max_mib: usize,
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    /// Comma-separated batch ids just imported (after the redirect).
    done: Option<String>,
}

async fn page_view(
    state: &AppState,
    user: &PageUser,
    fresh_ids: &[i64],
    failures: Vec<FileFailure>,
) -> Result<ImportPage, UiError> {
    let mut fresh = Vec::new();
    for id in fresh_ids {
        // Another user's id is simply not found: the use-case scopes by user.
        if let Ok(b) = state.library.batch(user.user.id, BatchId(*id)).await {
            fresh.push(BatchView::from(b));
        }
    }
    let past = state
        .library
        .batches(user.user.id)
        .await?
        .into_iter()
        .map(BatchView::from)
        .collect();
    Ok(ImportPage {
        chrome: Chrome::new(user, "import"),
        fresh,
        failures,
        past,
        max_mib: MAX_UPLOAD_BYTES >> 20,
    })
}

pub async fn page(
    State(state): State<AppState>,
    user: PageUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, UiError> {
    let ids: Vec<i64> = q
        .done
        .as_deref()
        .unwrap_or_default()
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .take(20)
        .collect();
    let view = page_view(&state, &user, &ids, Vec::new()).await?;
    Ok(render(StatusCode::OK, &view))
}

fn unreadable(e: &dyn std::fmt::Display) -> UiError {
    UiError::BadRequest(format!("the upload could not be read: {e}"))
}

/// Imports every file of the form. The CSRF field comes first in the form, and is checked
/// before anything is imported.
pub async fn upload(
    State(state): State<AppState>,
    user: PageUser,
    mut form: Multipart,
) -> Result<Response, UiError> {
    let mut token: Option<String> = None;
    let mut format: Option<String> = None;
    let mut files: Vec<(Option<String>, Vec<u8>)> = Vec::new();
    let mut failures = Vec::new();
    while let Some(mut field) = form.next_field().await.map_err(|e| unreadable(&e))? {
        match field.name() {
            Some(csrf::FIELD) => token = Some(field.text().await.map_err(|e| unreadable(&e))?),
            Some("format") => {
                let f = field.text().await.map_err(|e| unreadable(&e))?;
                format = Some(f.trim().to_owned()).filter(|f| !f.is_empty());
            }
            Some("file") => {
                if !csrf::matches(&user.csrf, token.as_deref()) {
                    return Err(UiError::Csrf);
                }
                let name = field.file_name().map(ToOwned::to_owned);
                let mut bytes = Vec::new();
                let mut too_big = false;
                while let Some(chunk) = field.chunk().await.map_err(|e| unreadable(&e))? {
                    if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                        too_big = true;
                        break;
                    }
                    bytes.extend_from_slice(&chunk);
                }
                let label = name.clone().unwrap_or_else(|| "(no file name)".into());
                if too_big {
                    failures.push(FileFailure {
                        name: label,
                        message: format!("larger than the limit of {} MiB", MAX_UPLOAD_BYTES >> 20),
                    });
                } else if name.as_deref().is_some_and(str::is_empty) && bytes.is_empty() {
                    // A file input left empty.
                } else {
                    files.push((name, bytes));
                }
            }
            _ => {}
        }
    }
    if !csrf::matches(&user.csrf, token.as_deref()) {
        return Err(UiError::Csrf);
    }
    if files.is_empty() && failures.is_empty() {
        return Err(UiError::BadRequest(
            "choose one or more files to import".into(),
        ));
    }
    let mut done = Vec::new();
    for (name, bytes) in files {
        let label = name.clone().unwrap_or_else(|| "(no file name)".into());
        match import_bytes(&state, &user.user, name, bytes, format.as_deref()).await {
            Ok(summary) => done.push(summary.batch_id.0),
            Err(e) if e.status().is_client_error() => failures.push(FileFailure {
                name: label,
                message: e.message().to_owned(),
            }),
            Err(e) => return Ok(e.into_response()),
        }
    }
    if failures.is_empty() {
        let ids: Vec<String> = done.iter().map(ToString::to_string).collect();
        return Ok(see_other(&format!("/import?done={}", ids.join(","))));
    }
    // A whole file failed: say so on the page itself (nothing to redirect to).
    let view = page_view(&state, &user, &done, failures).await?;
    Ok(render(StatusCode::BAD_REQUEST, &view))
}

pub async fn undo(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    state.library.undo(form.user.user.id, BatchId(id)).await?;
    Ok(see_other("/import"))
}
