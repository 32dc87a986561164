//! Imports of the caller: upload a file (multipart; format detected from its content),
//! list imports, show one, undo one.
//!
//! A file up to the configured inline limit is imported during the request (201 with the
//! summary). A larger one is stored in the database in pieces as it arrives, under a
//! `queued` batch, and imported by a durable job (`import_job`): 202 with the batch, whose
//! progress `GET /api/imports/{id}` shows. A `KoboReader.sqlite` is spilled to a temporary
//! file and opened read-only.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::multipart::Field;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use bb_core::ids::{BatchId, UserId};
use bb_core::library::SourceRecord;
use bb_core::library::service::{
    ImportJobPayload, ImportSource, ImportSummary, RowFailure, is_bookbridge_json,
};
use bb_core::ports::ImportBatch;
use bb_importers::{ImportFormat, detect, parse_reader};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::io::Write;

/// The largest file an import accepts (SECURITY G1); rows and fields are capped by the
/// parsers.
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchInfo {
    pub id: i64,
    pub format: String,
    pub provider: String,
    /// The uploaded file's name.
    pub label: Option<String>,
    /// `queued`, `running`, `done`, `undone` or `failed`.
    pub state: String,
    pub rows: u64,
    pub created: u64,
    pub merged: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub failed: u64,
    pub errors: Vec<RowFailure>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub undone_at: Option<DateTime<Utc>>,
}

impl From<ImportBatch> for BatchInfo {
    fn from(b: ImportBatch) -> Self {
        Self {
            id: b.id.0,
            format: b.format,
            provider: b.provider,
            label: b.label,
            state: b.state.as_str().to_owned(),
            rows: b.counts.rows,
            created: b.counts.created,
            merged: b.counts.merged,
            updated: b.counts.updated,
            unchanged: b.counts.unchanged,
            failed: b.counts.failed,
            errors: serde_json::from_value(b.errors).unwrap_or_default(),
            created_at: b.created_at,
            finished_at: b.finished_at,
            undone_at: b.undone_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportResult {
    pub batch: BatchInfo,
    pub summary: ImportSummary,
}

/// Where an import that runs as a job stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportProgress {
    /// The job's state: `queued`, `running`, `succeeded`, `failed` or `dead`.
    pub job_state: String,
    /// Attempts so far (a retry resumes after the rows already imported).
    pub attempts: u32,
    /// Rows read so far (the batch's `rows`).
    pub rows_processed: u64,
    /// Rows in the file, once the job has counted them.
    pub rows_total: Option<u64>,
    /// The upload's size.
    pub bytes_total: u64,
    /// Why the last attempt failed, if it did.
    pub last_error: Option<String>,
}

/// A batch, and for an import that runs as a job, its progress.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportStatus {
    #[serde(flatten)]
    pub batch: BatchInfo,
    pub progress: Option<ImportProgress>,
}

/// The multipart form of `POST /api/imports`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // documents the form for OpenAPI; the handler reads it as a stream
pub struct ImportUpload {
    /// Skips detection: `goodreads-csv`, `storygraph-csv`, `kindle-clippings`, `kobo-sqlite`,
    /// `bookbridge-json`, … Send it before `file`: a large upload's format is fixed when the
    /// file starts to be stored.
    pub format: Option<String>,
    /// The export file (a `KoboReader.sqlite` too).
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        format!(
            "the file is larger than the limit of {} MiB",
            MAX_UPLOAD_BYTES >> 20
        ),
    )
}

/// Pieces a stored upload is cut into.
const UPLOAD_PIECE_BYTES: usize = 1 << 20;

/// The format of an upload: the one named, else detected from its first bytes.
fn format_of(head: &[u8], named: Option<&str>) -> Result<UploadFormat, ApiError> {
    let own = named.is_some_and(|f| f.eq_ignore_ascii_case("bookbridge-json"));
    if own || (named.is_none() && is_bookbridge_json(head)) {
        return Ok(UploadFormat::Bookbridge);
    }
    Ok(UploadFormat::Export(match named {
        Some(f) => f.parse::<ImportFormat>().map_err(|e| bad(e.to_string()))?,
        None => detect(head).ok_or_else(|| {
            bad("not a file bookbridge recognises; name its format in the \"format\" field")
        })?,
    }))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UploadFormat {
    /// bookbridge's own export: read whole (it carries items, edits and splits together).
    Bookbridge,
    Export(ImportFormat),
}

/// A large upload on its way into the store.
pub(crate) struct Stored {
    pub(crate) batch: BatchId,
    pending: Vec<u8>,
    next_seq: u32,
    pub(crate) bytes: u64,
}

impl Stored {
    async fn push(
        &mut self,
        state: &AppState,
        user: UserId,
        data: &[u8],
        last: bool,
    ) -> Result<(), ApiError> {
        self.pending.extend_from_slice(data);
        self.bytes += data.len() as u64;
        while self.pending.len() >= UPLOAD_PIECE_BYTES || (last && !self.pending.is_empty()) {
            let n = self.pending.len().min(UPLOAD_PIECE_BYTES);
            let piece: Vec<u8> = self.pending.drain(..n).collect();
            state
                .library
                .put_upload_chunk(user, self.batch, self.next_seq, &piece)
                .await?;
            self.next_seq += 1;
        }
        Ok(())
    }
}

/// What the file field turned into.
pub(crate) enum Received {
    Inline(Vec<u8>),
    Queued(Stored),
}

/// Reads the file field: kept in memory up to the inline limit, beyond it stored piece by
/// piece under a queued batch. On any failure, what was stored goes with its batch.
pub(crate) async fn receive_file(
    state: &AppState,
    user: UserId,
    field: &mut Field<'_>,
    label: Option<String>,
    named: Option<&str>,
) -> Result<Received, ApiError> {
    let mut stored: Option<Stored> = None;
    let result = receive_into(state, user, field, label, named, &mut stored).await;
    let result = match (result, &mut stored) {
        (Ok(_), Some(s)) => s.push(state, user, &[], true).await.map(|()| Vec::new()),
        (other, _) => other,
    };
    match (result, stored) {
        (Ok(_), Some(s)) => Ok(Received::Queued(s)),
        (Ok(head), None) => Ok(Received::Inline(head)),
        (Err(e), stored) => {
            if let Some(s) = stored {
                let _ = state.library.discard_upload(user, s.batch).await;
            }
            Err(e)
        }
    }
}

/// The loop of [`receive_file`]; returns the bytes kept in memory.
async fn receive_into(
    state: &AppState,
    user: UserId,
    field: &mut Field<'_>,
    label: Option<String>,
    named: Option<&str>,
    stored: &mut Option<Stored>,
) -> Result<Vec<u8>, ApiError> {
    let inline_max = state.web.import_inline_max_bytes;
    let mut head: Vec<u8> = Vec::new();
    let mut total = 0usize;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => return Ok(head),
            Err(e) => return Err(bad(format!("unreadable upload: {e}"))),
        };
        total += chunk.len();
        if total > MAX_UPLOAD_BYTES {
            return Err(too_large());
        }
        if let Some(s) = stored {
            s.push(state, user, &chunk, false).await?;
            continue;
        }
        head.extend_from_slice(&chunk);
        if head.len() <= inline_max {
            continue;
        }
        let UploadFormat::Export(format) = format_of(&head, named)? else {
            continue;
        };
        let source = ImportSource {
            format: format.as_str().into(),
            provider: format.provider().into(),
            label: label.clone(),
        };
        let batch = state.library.create_upload(user, &source).await?;
        let s = stored.insert(Stored {
            batch,
            pending: Vec::new(),
            next_seq: 0,
            bytes: 0,
        });
        s.push(state, user, &std::mem::take(&mut head), false)
            .await?;
    }
}

#[utoipa::path(post, path = "/api/imports", tag = "imports",
    request_body(content = ImportUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = ImportResult, description = "imported during the request"),
        (status = 202, body = ImportStatus,
            description = "larger than the inline limit: stored and queued as a job; follow it at `GET /api/imports/{id}`"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    mut form: Multipart,
) -> Result<Response, ApiError> {
    let mut file: Option<(Option<String>, Received)> = None;
    let mut format: Option<String> = None;
    loop {
        let mut field = match form.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) => {
                discard(&state, user.id, file.as_ref()).await;
                return Err(bad(format!("unreadable upload: {e}")));
            }
        };
        match field.name() {
            Some("file") if file.is_none() => {
                let name = field.file_name().map(ToOwned::to_owned);
                let received =
                    receive_file(&state, user.id, &mut field, name.clone(), format.as_deref())
                        .await;
                file = Some((name, received?));
            }
            Some("format") => match field.text().await {
                Ok(text) => format = Some(text.trim().to_owned()).filter(|f| !f.is_empty()),
                Err(e) => {
                    discard(&state, user.id, file.as_ref()).await;
                    return Err(bad(format!("unreadable upload: {e}")));
                }
            },
            _ => {}
        }
    }
    let Some((label, received)) = file else {
        return Err(bad("send the export as the multipart field \"file\""));
    };
    match received {
        Received::Queued(s) => {
            state
                .library
                .enqueue_import(user.id, s.batch, s.bytes)
                .await?;
            let status = import_status(&state, user.id, s.batch).await?;
            Ok((StatusCode::ACCEPTED, Json(status)).into_response())
        }
        Received::Inline(bytes) => {
            let summary = import_bytes(&state, &user, label, bytes, format.as_deref()).await?;
            let batch = state.library.batch(user.id, summary.batch_id).await?;
            Ok((
                StatusCode::CREATED,
                Json(ImportResult {
                    batch: batch.into(),
                    summary,
                }),
            )
                .into_response())
        }
    }
}

async fn discard(state: &AppState, user: UserId, file: Option<&(Option<String>, Received)>) {
    if let Some((_, Received::Queued(s))) = file {
        let _ = state.library.discard_upload(user, s.batch).await;
    }
}

/// Imports an upload held in memory (the API below the inline limit, and the web UI).
pub(crate) async fn import_bytes(
    state: &AppState,
    user: &bb_core::ports::User,
    label: Option<String>,
    bytes: Vec<u8>,
    format: Option<&str>,
) -> Result<ImportSummary, ApiError> {
    let user = user.id;
    let format = match format_of(&bytes, format)? {
        UploadFormat::Bookbridge => {
            return Ok(state
                .library
                .import_bookbridge_json(user, &bytes, label)
                .await?);
        }
        UploadFormat::Export(f) => f,
    };
    let source = ImportSource {
        format: format.as_str().into(),
        provider: format.provider().into(),
        label,
    };
    if format == ImportFormat::KoboSqlite {
        // SQLite reads a database from a file: spill it, open it read-only.
        let spilled = spill(&bytes).map_err(|e| internal(&e))?;
        drop(bytes);
        let rows = read_rows(format, spilled.path()).await?;
        return Ok(state.library.import(user, &source, rows).await?);
    }
    let rows = parse_reader(format, Box::new(std::io::Cursor::new(bytes)))
        .map_err(|e| bad(e.to_string()))?
        .map(|r| r.map_err(to_failure));
    Ok(state.library.import(user, &source, rows).await?)
}

fn internal(e: &std::io::Error) -> ApiError {
    tracing::error!(error = %e, "cannot spill an upload to a temporary file");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the upload could not be stored",
    )
}

fn spill(bytes: &[u8]) -> std::io::Result<tempfile::NamedTempFile> {
    let mut f = tempfile::NamedTempFile::new()?;
    f.write_all(bytes)?;
    f.flush()?;
    Ok(f)
}

pub(crate) fn to_failure(e: bb_importers::RowError) -> RowFailure {
    RowFailure {
        row: e.row,
        message: e.message,
    }
}

/// Why an export file on disk yields no rows.
#[derive(Debug)]
pub(crate) enum RowsError {
    /// The file is not readable as its format (the message is for the user).
    File(String),
    /// The temporary file could not be read.
    Io(std::io::Error),
}

impl From<RowsError> for ApiError {
    fn from(e: RowsError) -> Self {
        match e {
            RowsError::File(message) => bad(message),
            RowsError::Io(e) => internal(&e),
        }
    }
}

pub(crate) type RowIter = Box<dyn Iterator<Item = Result<SourceRecord, RowFailure>> + Send>;

/// The rows of an export file on disk, streamed (a Kobo database is read whole, read-only).
pub(crate) async fn read_rows(
    format: ImportFormat,
    path: &std::path::Path,
) -> Result<RowIter, RowsError> {
    if format == ImportFormat::KoboSqlite {
        let rows = bb_importers::kobo::read_kobo(path)
            .await
            .map_err(|e| RowsError::File(e.to_string()))?;
        return Ok(Box::new(rows.into_iter().map(|r| r.map_err(to_failure))));
    }
    let file = std::fs::File::open(path).map_err(RowsError::Io)?;
    let rows = parse_reader(format, Box::new(std::io::BufReader::new(file)))
        .map_err(|e| RowsError::File(e.to_string()))?;
    Ok(Box::new(rows.map(|r| r.map_err(to_failure))))
}

/// A batch with its job's progress, if it went through one.
pub(crate) async fn import_status(
    state: &AppState,
    user: UserId,
    batch: BatchId,
) -> Result<ImportStatus, bb_core::error::CoreError> {
    let b = state.library.batch(user, batch).await?;
    let progress = match state.library.import_job(batch).await? {
        Some(job) => {
            let payload: Option<ImportJobPayload> = serde_json::from_value(job.payload).ok();
            Some(ImportProgress {
                job_state: job.state.as_str().to_owned(),
                attempts: job.attempts,
                rows_processed: b.counts.rows,
                rows_total: job.progress["rows_total"].as_u64(),
                bytes_total: payload.map_or(0, |p| p.bytes),
                last_error: job.last_error.map(|e| e.message),
            })
        }
        None => None,
    };
    Ok(ImportStatus {
        batch: b.into(),
        progress,
    })
}

#[utoipa::path(get, path = "/api/imports", tag = "imports", responses(
    (status = 200, body = Vec<BatchInfo>),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<BatchInfo>>, ApiError> {
    let batches = state.library.batches(user.id).await?;
    Ok(Json(batches.into_iter().map(BatchInfo::from).collect()))
}

#[utoipa::path(get, path = "/api/imports/{id}", tag = "imports",
    params(("id" = i64, Path, description = "import (batch) id")),
    responses(
        (status = 200, body = ImportStatus,
            description = "the batch; `progress` while and after it runs as a job"),
        (status = 404, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ImportStatus>, ApiError> {
    Ok(Json(import_status(&state, user.id, BatchId(id)).await?))
}

#[utoipa::path(delete, path = "/api/imports/{id}", tag = "imports",
    params(("id" = i64, Path, description = "import (batch) id")),
    responses(
        (status = 200, body = BatchInfo, description = "undone: what it contributed is withdrawn"),
        (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn undo(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<BatchInfo>, ApiError> {
    state.library.undo(user.id, BatchId(id)).await?;
    Ok(Json(
        state.library.batch(user.id, BatchId(id)).await?.into(),
    ))
}
