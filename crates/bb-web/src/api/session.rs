//! Signing in and out of the web UI: a session cookie.

use crate::auth::{ClientIp, session_cookie};
use crate::error::ApiError;
use crate::extract::Json;
use crate::state::AppState;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Deserialize, utoipa::ToSchema)]
pub struct LoginRequest {
    pub username: String,
    #[schema(value_type = String, format = Password)]
    pub password: SecretString,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginRequest")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SessionInfo {
    pub username: String,
}

pub(crate) fn cookie(
    state: &AppState,
    value: &str,
    max_age_secs: i64,
) -> Result<HeaderValue, ApiError> {
    let secure = if state.web.is_https() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_secs}{secure}",
        state.web.session_cookie_name()
    ))
    .map_err(|e| ApiError::internal(&e))
}

/// Signs in. A wrong password and an unknown user get the same answer.
#[utoipa::path(post, path = "/api/session", tag = "session", request_body = LoginRequest, responses(
    (status = 200, body = SessionInfo, description = "signed in; the session cookie is set"),
    (status = 401, body = crate::error::ErrorBody, description = "wrong username or password"),
    (status = 429, body = crate::error::ErrorBody, description = "too many failed attempts; see Retry-After"),
))]
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    Json(req): Json<LoginRequest>,
) -> Result<Response, ApiError> {
    let outcome = state
        .accounts
        .login(&req.username, &req.password, ip.as_deref())
        .await?;
    let max_age = state.accounts.policy().session_absolute.num_seconds();
    let cookie = cookie(&state, outcome.session_id.expose_secret(), max_age)?;
    let mut res = axum::Json(SessionInfo {
        username: outcome.user.username,
    })
    .into_response();
    res.headers_mut().insert(header::SET_COOKIE, cookie);
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Signs out: the session ends on the server and the cookie is cleared.
#[utoipa::path(delete, path = "/api/session", tag = "session", responses(
    (status = 204, description = "signed out"),
))]
pub async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    parts: Parts,
) -> Result<Response, ApiError> {
    if let Some(sid) = session_cookie(&parts, state.web.session_cookie_name()) {
        state.accounts.logout(&sid, ip.as_deref()).await?;
    }
    let mut res = StatusCode::NO_CONTENT.into_response();
    res.headers_mut()
        .insert(header::SET_COOKIE, cookie(&state, "", 0)?);
    Ok(res)
}
