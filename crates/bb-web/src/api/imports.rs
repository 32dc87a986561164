//! Imports of the caller: upload a file (multipart; format detected from its content),
//! list imports, show one, undo one.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use bb_core::ids::BatchId;
use bb_core::library::service::{ImportSummary, RowFailure, is_bookbridge_json};
use bb_core::ports::ImportBatch;
use bb_importers::{ImportFormat, detect, parse_reader};
use chrono::{DateTime, Utc};
use serde::Serialize;

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
    /// `running`, `done` or `undone`.
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

/// The multipart form of `POST /api/imports`.
#[derive(Debug, utoipa::ToSchema)]
#[allow(dead_code)] // documents the form for OpenAPI; the handler reads it as a stream
pub struct ImportUpload {
    /// The export file.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
    /// Skips detection: `goodreads-csv`, `storygraph-csv`, `kindle-clippings`, `bookbridge-json`, …
    pub format: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_input", message)
}

#[utoipa::path(post, path = "/api/imports", tag = "imports",
    request_body(content = ImportUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = ImportResult),
        (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn upload(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    mut form: Multipart,
) -> Result<(StatusCode, Json<ImportResult>), ApiError> {
    let mut file: Option<(Option<String>, Vec<u8>)> = None;
    let mut format: Option<String> = None;
    while let Some(mut field) = form
        .next_field()
        .await
        .map_err(|e| bad(format!("unreadable upload: {e}")))?
    {
        match field.name() {
            Some("file") => {
                let name = field.file_name().map(ToOwned::to_owned);
                let mut bytes = Vec::new();
                while let Some(chunk) = field
                    .chunk()
                    .await
                    .map_err(|e| bad(format!("unreadable upload: {e}")))?
                {
                    if bytes.len() + chunk.len() > MAX_UPLOAD_BYTES {
                        return Err(ApiError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            "too_large",
                            format!(
                                "the file is larger than the limit of {} MiB",
                                MAX_UPLOAD_BYTES >> 20
                            ),
                        ));
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some((name, bytes));
            }
            Some("format") => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| bad(format!("unreadable upload: {e}")))?;
                format = Some(text.trim().to_owned()).filter(|f| !f.is_empty());
            }
            _ => {}
        }
    }
    let Some((label, bytes)) = file else {
        return Err(bad("send the export as the multipart field \"file\""));
    };
    let summary = import_bytes(&state, &user, label, bytes, format.as_deref()).await?;
    let batch = state.library.batch(user.id, summary.batch_id).await?;
    Ok((
        StatusCode::CREATED,
        Json(ImportResult {
            batch: batch.into(),
            summary,
        }),
    ))
}

pub(crate) async fn import_bytes(
    state: &AppState,
    user: &bb_core::ports::User,
    label: Option<String>,
    bytes: Vec<u8>,
    format: Option<&str>,
) -> Result<ImportSummary, ApiError> {
    let wants_own = format.is_some_and(|f| f.eq_ignore_ascii_case("bookbridge-json"));
    if wants_own || (format.is_none() && is_bookbridge_json(&bytes)) {
        return Ok(state
            .library
            .import_bookbridge_json(user.id, &bytes, label)
            .await?);
    }
    let format = match format {
        Some(f) => f.parse::<ImportFormat>().map_err(|e| bad(e.to_string()))?,
        None => detect(&bytes).ok_or_else(|| {
            bad("not a file bookbridge recognises; name its format in the \"format\" field")
        })?,
    };
    if format == ImportFormat::KoboSqlite {
        return Err(bad(
            "a Kobo database is imported with `bookbridge import` on the server for now",
        ));
    }
    let rows = parse_reader(format, Box::new(std::io::Cursor::new(bytes)))
        .map_err(|e| bad(e.to_string()))?
        .map(|r| {
            r.map_err(|e| RowFailure {
                row: e.row,
                message: e.message,
            })
        });
    let source = bb_core::library::service::ImportSource {
        format: format.as_str().into(),
        provider: format.provider().into(),
        label,
    };
    Ok(state.library.import(user.id, &source, rows).await?)
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
        (status = 200, body = BatchInfo),
        (status = 404, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<BatchInfo>, ApiError> {
    Ok(Json(
        state.library.batch(user.id, BatchId(id)).await?.into(),
    ))
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
