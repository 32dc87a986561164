//! Connected accounts: providers, connections (link, complete, settings, sync, refresh,
//! disconnect), sync jobs, and the OAuth callback. No response ever carries a token.

use crate::auth::{CurrentUser, session_cookie};
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path, Query};
use crate::state::AppState;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bb_core::accounts::token;
use bb_core::connections::ProviderInfo;
use bb_core::connections::model::ConnectionSettings;
use bb_core::connections::{ConnectRequest, ConnectionState, ConnectionView, Disconnected};
use bb_core::ids::ConnectionId;
use bb_core::ports::JobId;
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The hash of the caller's session cookie, which binds an OAuth flow to the browser
/// session that started it.
fn session_hash(state: &AppState, headers: &HeaderMap) -> Option<String> {
    let (mut parts, ()) = axum::http::Request::new(()).into_parts();
    parts.headers = headers.clone();
    session_cookie(&parts, state.web.session_cookie_name()).map(|sid| token::hash(&sid))
}

#[utoipa::path(get, path = "/api/providers", tag = "connections", responses(
    (status = 200, body = Vec<ProviderInfo>),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn providers(
    State(state): State<AppState>,
    CurrentUser(_user): CurrentUser,
) -> Json<Vec<ProviderInfo>> {
    Json(state.connections.providers())
}

#[utoipa::path(get, path = "/api/connections", tag = "connections", responses(
    (status = 200, body = Vec<ConnectionView>),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<ConnectionView>>, ApiError> {
    Ok(Json(state.connections.list(user.id).await?))
}

/// What to link.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConnection {
    /// A provider id from `GET /api/providers`.
    pub provider: String,
    /// The personal token (`api_token` providers). Never echoed back.
    #[schema(value_type = Option<String>)]
    pub token: Option<SecretString>,
    /// The public account name (`public_feed` providers).
    pub username: Option<String>,
    /// Audible's marketplace (`us`, `uk`, `de`, …).
    pub marketplace: Option<String>,
}

impl std::fmt::Debug for CreateConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreateConnection")
            .field("provider", &self.provider)
            .field("token", &self.token.as_ref().map(|_| "[redacted]"))
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedConnection {
    #[schema(value_type = i64)]
    pub id: ConnectionId,
    pub state: ConnectionState,
    /// Where to send the user (OAuth and device sign-in).
    pub authorize_url: Option<String>,
    pub notice: Option<String>,
    pub connection: ConnectionView,
}

#[utoipa::path(post, path = "/api/connections", tag = "connections",
    request_body = CreateConnection, responses(
    (status = 201, body = CreatedConnection),
    (status = 400, body = crate::error::ErrorBody, description = "bad token or input"),
    (status = 409, body = crate::error::ErrorBody, description = "account already connected"),
    (status = 429, body = crate::error::ErrorBody, description = "too many connect attempts"),
    (status = 503, body = crate::error::ErrorBody, description = "the provider is not answering"),
), security(("session" = []), ("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CreateConnection>,
) -> Result<(StatusCode, Json<CreatedConnection>), ApiError> {
    let mut params = BTreeMap::new();
    if let Some(m) = req.marketplace {
        params.insert("marketplace".to_owned(), m);
    }
    let connected = state
        .connections
        .connect(
            user.id,
            session_hash(&state, &headers).as_deref(),
            ConnectRequest {
                provider: req.provider,
                token: req.token,
                username: req.username,
                params,
                redirect_uri: None,
            },
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedConnection {
            id: connected.connection.id,
            state: connected.connection.state,
            authorize_url: connected.authorize_url,
            notice: connected.notice,
            connection: connected.connection,
        }),
    ))
}

#[utoipa::path(get, path = "/api/connections/{id}", tag = "connections", responses(
    (status = 200, body = ConnectionView),
    (status = 404, body = crate::error::ErrorBody),
), params(("id" = i64, Path)), security(("session" = []), ("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(
        state.connections.get(user.id, ConnectionId(id)).await?,
    ))
}

#[utoipa::path(patch, path = "/api/connections/{id}", tag = "connections",
    request_body = ConnectionSettings, responses(
    (status = 200, body = ConnectionView),
    (status = 404, body = crate::error::ErrorBody),
), params(("id" = i64, Path)), security(("session" = []), ("bearer" = [])))]
pub async fn update(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    JsonBody(settings): JsonBody<ConnectionSettings>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(
        state
            .connections
            .update_settings(user.id, ConnectionId(id), &settings)
            .await?,
    ))
}

/// The address the user landed on after signing in (Audible's `maplanding` page).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteConnection {
    pub redirect_url: String,
}

impl std::fmt::Debug for CompleteConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The pasted address carries a one-time authorization code.
        f.write_str("CompleteConnection { .. }")
    }
}

#[utoipa::path(post, path = "/api/connections/{id}/complete", tag = "connections",
    request_body = CompleteConnection, responses(
    (status = 200, body = CreatedConnection, description = "linked; `notice` names the device as the provider lists it"),
    (status = 400, body = crate::error::ErrorBody, description = "the pasted address is not usable"),
    (status = 404, body = crate::error::ErrorBody, description = "no pending connection"),
), params(("id" = i64, Path)), security(("session" = []), ("bearer" = [])))]
pub async fn complete(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    headers: HeaderMap,
    Path(id): Path<i64>,
    JsonBody(req): JsonBody<CompleteConnection>,
) -> Result<Json<CreatedConnection>, ApiError> {
    let done = state
        .connections
        .complete_pasted(
            user.id,
            ConnectionId(id),
            &req.redirect_url,
            session_hash(&state, &headers).as_deref(),
        )
        .await?;
    Ok(Json(CreatedConnection {
        id: done.connection.id,
        state: done.connection.state,
        authorize_url: None,
        notice: done.notice,
        connection: done.connection,
    }))
}

#[utoipa::path(get, path = "/api/connections/{id}/syncs", tag = "connections", responses(
    (status = 200, body = Vec<bb_core::connections::SyncRun>, description = "sync attempts, newest first"),
    (status = 404, body = crate::error::ErrorBody),
), params(("id" = i64, Path)), security(("session" = []), ("bearer" = [])))]
pub async fn syncs(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<Vec<bb_core::connections::SyncRun>>, ApiError> {
    Ok(Json(
        state
            .connections
            .sync_history(user.id, ConnectionId(id), 50)
            .await?,
    ))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SyncQueued {
    #[schema(value_type = i64)]
    pub job_id: JobId,
}

#[utoipa::path(post, path = "/api/connections/{id}/sync", tag = "connections", responses(
    (status = 202, body = SyncQueued),
    (status = 409, body = crate::error::ErrorBody, description = "not active (e.g. needs reconnecting)"),
    (status = 429, body = crate::error::ErrorBody, description = "too many manual syncs today"),
), params(("id" = i64, Path)), security(("session" = []), ("bearer" = [])))]
pub async fn sync(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<(StatusCode, Json<SyncQueued>), ApiError> {
    let job_id = state
        .connections
        .sync_now(user.id, ConnectionId(id))
        .await?;
    Ok((StatusCode::ACCEPTED, Json(SyncQueued { job_id })))
}

#[utoipa::path(post, path = "/api/connections/{id}/refresh", tag = "connections", responses(
    (status = 200, body = ConnectionView),
    (status = 409, body = crate::error::ErrorBody, description = "needs reconnecting"),
    (status = 503, body = crate::error::ErrorBody, description = "the provider is not answering"),
), params(("id" = i64, Path)), security(("session" = []), ("bearer" = [])))]
pub async fn refresh(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<ConnectionView>, ApiError> {
    Ok(Json(
        state.connections.refresh(user.id, ConnectionId(id)).await?,
    ))
}

#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DataChoice {
    Keep,
    Delete,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct DisconnectQuery {
    /// Keep or remove the books and data this account brought in.
    pub data: Option<DataChoice>,
}

#[utoipa::path(delete, path = "/api/connections/{id}", tag = "connections", responses(
    (status = 200, body = Disconnected),
    (status = 400, body = crate::error::ErrorBody, description = "`data` missing"),
    (status = 404, body = crate::error::ErrorBody),
), params(("id" = i64, Path), DisconnectQuery), security(("session" = []), ("bearer" = [])))]
pub async fn disconnect(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
    Query(q): Query<DisconnectQuery>,
) -> Result<Json<Disconnected>, ApiError> {
    let Some(choice) = q.data else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            "say what happens to this account's books: ?data=keep or ?data=delete",
        ));
    };
    Ok(Json(
        state
            .connections
            .disconnect(
                user.id,
                ConnectionId(id),
                matches!(choice, DataChoice::Keep),
            )
            .await?,
    ))
}

/// A background job as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobView {
    pub id: i64,
    pub kind: String,
    /// `queued`, `running`, `succeeded`, `failed`, `dead`.
    pub state: String,
    pub attempts: u32,
    pub progress: serde_json::Value,
    pub counts: Option<JobCounts>,
    pub error: Option<bb_core::connections::model::LastError>,
    pub run_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct JobCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
}

#[utoipa::path(get, path = "/api/jobs/{id}", tag = "connections", responses(
    (status = 200, body = JobView),
    (status = 404, body = crate::error::ErrorBody),
), params(("id" = i64, Path)), security(("session" = []), ("bearer" = [])))]
pub async fn job(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<Json<JobView>, ApiError> {
    let job = state.connections.job(user.id, JobId(id)).await?;
    let runs = state.connections.job_runs(job.id).await?;
    let counts = runs
        .last()
        .filter(|r| r.outcome.is_some())
        .map(|r| JobCounts {
            created: r.counts.created,
            updated: r.counts.updated,
            unchanged: r.counts.unchanged,
            removed: r.counts.removed,
            failed: r.counts.failed,
        });
    Ok(Json(JobView {
        id: job.id.0,
        kind: job.kind,
        state: job.state.as_str().to_owned(),
        attempts: job.attempts,
        progress: job.progress,
        counts,
        error: job
            .last_error
            .map(|e| bb_core::connections::model::LastError {
                code: e.code,
                message: e.message,
            }),
        run_at: job.run_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
    }))
}

/// Where the callback sends the browser: the connections page, with the outcome in terms
/// that carry nothing from the provider's URL.
fn back_to_connections(outcome: &str) -> Response {
    let location = format!("/connections?{outcome}");
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    // The code and state must not leak through Referer from the next page (RFC 9700 4.2.4).
    res.headers_mut().insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

#[utoipa::path(get, path = "/oauth/callback/{provider}", tag = "connections", responses(
    (status = 303, description = "back to /connections, connected or with the error recorded on the connection"),
), params(("provider" = String, Path)))]
pub async fn oauth_callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let state_param = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    match state
        .connections
        .complete_callback(
            &provider,
            state_param.as_deref(),
            &query,
            session_hash(&state, &headers).as_deref(),
        )
        .await
    {
        Ok(id) => back_to_connections(&format!("connected={id}")),
        Err(failure) => {
            tracing::info!(provider = %provider, code = %failure.code, "OAuth callback refused");
            match failure.connection {
                Some(id) => back_to_connections(&format!("failed={id}")),
                None => back_to_connections("error=unknown_state"),
            }
        }
    }
}
