//! The caller's library: list (paginated, filtered, searchable), one item, manual edits,
//! merge and split by hand, possible duplicates, export.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bb_core::ids::ItemId;
use bb_core::library::service::{ItemFilter, ItemPatch};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LibraryQuery {
    /// `to-read`, `reading`, `read`, `did-not-finish`, `paused`
    pub status: Option<String>,
    pub shelf: Option<String>,
    /// `print`, `ebook`, `audiobook`
    pub format: Option<String>,
    /// A provider: `goodreads`, `storygraph`, `kindle`, …
    pub source: Option<String>,
    /// Words of the title, subtitle, authors or series.
    pub q: Option<String>,
    /// By the rating shown for the item: `unrated`, `rated`, or a number of stars above 0
    /// and at most 5 meaning at least that many (`3` keeps 3, 3.5 and 5; `3.5` keeps 3.5
    /// and up; fractions such as 3.75 are compared exactly).
    pub rating: Option<String>,
    /// 1-based.
    pub page: Option<u64>,
    /// At most 500; 50 by default.
    pub per_page: Option<u64>,
}

/// One page of items. Each item has `id`, `title`, `subtitle`, `authors`, `narrators`,
/// `series`, `identifiers`, `formats`, `status`, `shelves`, `rating`, `reviews`, `reads`,
/// `progress`, `highlights`, `sources` and `provenance`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LibraryPage {
    pub items: Vec<serde_json::Value>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[utoipa::path(get, path = "/api/library", tag = "library", params(LibraryQuery), responses(
    (status = 200, body = LibraryPage),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Query(q): Query<LibraryQuery>,
) -> Result<Json<LibraryPage>, ApiError> {
    let filter = ItemFilter {
        status: q.status,
        shelf: q.shelf,
        format: q.format,
        source: q.source,
        search: q.q,
        rating: q
            .rating
            .as_deref()
            .filter(|r| !r.trim().is_empty())
            .map(str::parse)
            .transpose()?,
        page: q.page,
        per_page: q.per_page,
    };
    let page = state.library.list_items(user.id, &filter).await?;
    Ok(Json(LibraryPage {
        items: page.items,
        total: page.total,
        page: page.page,
        per_page: page.per_page,
    }))
}

#[utoipa::path(get, path = "/api/library/{id}", tag = "library",
    params(("id" = i64, Path, description = "item id")),
    responses(
        (status = 200, body = serde_json::Value, description = "the item, with its manual `edits`"),
        (status = 404, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(state.library.get_item(user.id, ItemId(id)).await?))
}

#[utoipa::path(patch, path = "/api/library/{id}", tag = "library",
    params(("id" = i64, Path, description = "item id")),
    request_body = ItemPatch,
    responses(
        (status = 200, body = serde_json::Value, description = "the edited item; edited fields win over every source"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn edit(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Json(patch): Json<ItemPatch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let item = state.library.edit_item(user.id, ItemId(id), &patch).await?;
    // Connections with write-back on get the user's own-data changes, as durable jobs.
    state
        .connections
        .queue_write_back(
            user.id,
            &item,
            patch.status.map(|s| s.as_str().to_owned()),
            patch.rating,
            patch.progress.flatten(),
        )
        .await?;
    Ok(Json(item))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct MergeRequest {
    /// The item that stays.
    pub into: i64,
    /// The item whose sources move into `into`; it is deleted.
    pub from: i64,
}

#[utoipa::path(post, path = "/api/library/merge", tag = "library", request_body = MergeRequest,
    responses(
        (status = 200, body = serde_json::Value, description = "the merged item"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn merge(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Json(req): Json<MergeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(
        state
            .library
            .merge_items(user.id, ItemId(req.into), ItemId(req.from))
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SplitRequest {
    /// Ids of the item's sources (see `GET /api/library/{id}` → `sources[].source_id`… or
    /// the export) that move to a new item.
    pub sources: Vec<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SplitResult {
    /// The new item.
    pub id: i64,
}

#[utoipa::path(post, path = "/api/library/{id}/split", tag = "library",
    params(("id" = i64, Path, description = "item id")),
    request_body = SplitRequest,
    responses(
        (status = 201, body = SplitResult),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn split(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Json(req): Json<SplitRequest>,
) -> Result<(StatusCode, Json<SplitResult>), ApiError> {
    let new = state
        .library
        .split_item(user.id, ItemId(id), &req.sources)
        .await?;
    Ok((StatusCode::CREATED, Json(SplitResult { id: new.0 })))
}

#[utoipa::path(get, path = "/api/library/duplicates", tag = "library", responses(
    (status = 200, body = serde_json::Value, description = "open possible duplicates: `[{id, state, reason, a, b}]`"),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn duplicates(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<serde_json::Value>, ApiError> {
    let dups = state.library.duplicates(user.id, false).await?;
    Ok(Json(
        serde_json::to_value(dups).map_err(|e| ApiError::internal(&e))?,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DuplicateDecision {
    /// `confirm` merges the two items; `dismiss` keeps them apart for good.
    pub action: String,
}

#[utoipa::path(post, path = "/api/library/duplicates/{id}", tag = "library",
    params(("id" = i64, Path, description = "possible duplicate id")),
    request_body = DuplicateDecision,
    responses(
        (status = 204, description = "decided"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody),
    ), security(("session" = []), ("bearer" = [])))]
pub async fn decide_duplicate(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Json(req): Json<DuplicateDecision>,
) -> Result<StatusCode, ApiError> {
    match req.action.as_str() {
        "confirm" => {
            state.library.confirm_duplicate(user.id, id).await?;
        }
        "dismiss" => state.library.dismiss_duplicate(user.id, id).await?,
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "action is \"confirm\" or \"dismiss\"",
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (complete, re-importable) or `goodreads-csv`
    pub format: String,
}

#[utoipa::path(get, path = "/api/export", tag = "library", params(ExportQuery), responses(
    (status = 200, description = "the library as a file", content(
        (serde_json::Value = "application/json"),
        (String = "text/csv"),
    )),
    (status = 400, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let mut buf: Vec<u8> = Vec::new();
    let (content_type, name) = match q.format.as_str() {
        "json" => {
            state.library.export_json(user.id, &mut buf).await?;
            ("application/json", "bookbridge-library.json")
        }
        "goodreads-csv" => {
            state
                .library
                .export_goodreads_csv(user.id, &mut buf)
                .await?;
            ("text/csv; charset=utf-8", "goodreads_library_export.csv")
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_input",
                "format is \"json\" or \"goodreads-csv\"",
            ));
        }
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        buf,
    )
        .into_response())
}
