//! The import page: upload one or more export files (format detected from content), the
//! summary with every failed row and why, and past imports with Undo.
//!
//! A file above the inline limit is stored and imported by a job, as over the API: the page
//! shows its progress bar until the job is done and then its summary. `static/import.js`
//! polls `GET /api/imports/{id}` to move the bar and reloads for the summary; without
//! script, the page refreshes itself (a `<noscript>` meta refresh) while a job runs.

use super::csrf::{self, CheckedForm};
use super::display::{self, Stamp, format_label, provider_label};
use super::{Chrome, PageUser, UiError, render, see_other};
use crate::api::imports::{
    ImportProgress, MAX_UPLOAD_BYTES, Received, import_bytes, import_status, receive_file,
};
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
    state: BatchState,
    /// For a batch imported by a job: how far it got.
    progress: Option<JobProgress>,
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

impl BatchView {
    fn undone(&self) -> bool {
        self.state == BatchState::Undone
    }

    /// Stored and waiting for its import job, or being imported by it.
    fn in_progress(&self) -> bool {
        matches!(self.state, BatchState::Queued | BatchState::Running)
    }

    /// The job could not read the file at all (its reason is the only row error).
    fn failed_whole(&self) -> bool {
        self.state == BatchState::Failed
    }
}

impl From<ImportBatch> for BatchView {
    fn from(b: ImportBatch) -> Self {
        let mut view = Self {
            id: b.id.0,
            label: b.label.unwrap_or_else(|| "(no file name)".into()),
            format: format_label(&b.format),
            source: provider_label(&b.provider),
            state: b.state,
            progress: None,
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

/// An import job's progress, as the bar and its words show it.
#[derive(Debug)]
struct JobProgress {
    /// The job gave up (retries exhausted): nothing will move any more.
    stopped: bool,
    processed: u64,
    /// Unknown until the job has counted the rows: the bar is then indeterminate.
    total: Option<u64>,
    text: String,
}

impl From<&ImportProgress> for JobProgress {
    fn from(p: &ImportProgress) -> Self {
        let size = display::byte_size(p.bytes_total);
        let stopped = p.job_state == "dead";
        let text = match (p.job_state.as_str(), p.rows_total) {
            ("dead", _) => format!(
                "The import stopped: {}.",
                p.last_error
                    .as_deref()
                    .unwrap_or("it failed too many times")
            ),
            ("queued", _) if p.attempts == 0 => format!("Waiting to start ({size})…"),
            (_, Some(total)) => format!("{} of {total} rows imported…", p.rows_processed),
            _ => format!("Reading the file ({size})…"),
        };
        Self {
            stopped,
            processed: p.rows_processed,
            total: p.rows_total,
            text,
        }
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
    /// A fresh import is still running: the page refreshes itself without script.
    waiting: bool,
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
            let mut view = BatchView::from(b);
            if view.in_progress() {
                let status = import_status(state, user.user.id, BatchId(*id)).await?;
                view.progress = status.progress.as_ref().map(JobProgress::from);
            }
            fresh.push(view);
        }
    }
    let waiting = fresh
        .iter()
        .any(|b| b.in_progress() && !b.progress.as_ref().is_some_and(|p| p.stopped));
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
        waiting,
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

/// Imports every file of the form, each as it arrives: one up to the inline limit during
/// the request, a larger one stored and queued as a job. The CSRF field comes first in the
/// form, and is checked before any file is read.
pub async fn upload(
    State(state): State<AppState>,
    user: PageUser,
    mut form: Multipart,
) -> Result<Response, UiError> {
    let mut token: Option<String> = None;
    let mut format: Option<String> = None;
    let mut done = Vec::new();
    let mut any_file = false;
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
                let label = name.clone().unwrap_or_else(|| "(no file name)".into());
                let received = receive_file(
                    &state,
                    user.user.id,
                    &mut field,
                    name.clone(),
                    format.as_deref(),
                )
                .await;
                let imported = match received {
                    // A file input left empty.
                    Ok(Received::Inline(bytes))
                        if bytes.is_empty() && name.as_deref().is_none_or(str::is_empty) =>
                    {
                        continue;
                    }
                    Ok(Received::Inline(bytes)) => {
                        import_bytes(&state, &user.user, name, bytes, format.as_deref())
                            .await
                            .map(|summary| summary.batch_id)
                    }
                    Ok(Received::Queued(stored)) => state
                        .library
                        .enqueue_import(user.user.id, stored.batch, stored.bytes)
                        .await
                        .map(|()| stored.batch)
                        .map_err(Into::into),
                    Err(e) => Err(e),
                };
                any_file = true;
                match imported {
                    Ok(batch) => done.push(batch.0),
                    Err(e) if e.status().is_client_error() => failures.push(FileFailure {
                        name: label,
                        message: e.message().to_owned(),
                    }),
                    Err(e) => return Ok(e.into_response()),
                }
            }
            _ => {}
        }
    }
    if !csrf::matches(&user.csrf, token.as_deref()) {
        return Err(UiError::Csrf);
    }
    if !any_file {
        return Err(UiError::BadRequest(
            "choose one or more files to import".into(),
        ));
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
