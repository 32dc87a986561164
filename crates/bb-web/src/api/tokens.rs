//! Personal access tokens of the caller: list, create (shown once), revoke.

use crate::auth::CurrentUser;
use crate::error::ApiError;
use crate::extract::{Json as JsonBody, Path};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use bb_core::ids::TokenId;
use bb_core::ports::ApiToken;
use chrono::{DateTime, Utc};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenInfo {
    pub id: i64,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<ApiToken> for TokenInfo {
    fn from(t: ApiToken) -> Self {
        Self {
            id: t.id.0,
            name: t.name,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateToken {
    pub name: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenInfo,
    /// The token itself. Shown this once; only its hash is kept.
    pub token: String,
}

impl std::fmt::Debug for CreatedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedToken")
            .field("info", &self.info)
            .field("token", &"[redacted]")
            .finish()
    }
}

#[utoipa::path(get, path = "/api/tokens", tag = "tokens", responses(
    (status = 200, body = Vec<TokenInfo>),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
) -> Result<Json<Vec<TokenInfo>>, ApiError> {
    let tokens = state.accounts.list_tokens(&user.username).await?;
    Ok(Json(tokens.into_iter().map(TokenInfo::from).collect()))
}

#[utoipa::path(post, path = "/api/tokens", tag = "tokens", request_body = CreateToken, responses(
    (status = 201, body = CreatedToken),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn create(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    JsonBody(req): JsonBody<CreateToken>,
) -> Result<(StatusCode, Json<CreatedToken>), ApiError> {
    let (secret, record) = state
        .accounts
        .create_token(&user.username, req.name.as_deref())
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            info: record.into(),
            token: secret.expose_secret().to_owned(),
        }),
    ))
}

#[utoipa::path(delete, path = "/api/tokens/{id}", tag = "tokens", params(("id" = i64, Path)), responses(
    (status = 204, description = "revoked"),
    (status = 404, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn revoke(
    State(state): State<AppState>,
    CurrentUser(user): CurrentUser,
    Path(id): Path<i64>,
) -> Result<StatusCode, ApiError> {
    state
        .accounts
        .revoke_token(&user.username, TokenId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
