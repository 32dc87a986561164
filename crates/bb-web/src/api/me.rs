//! Who am I.

use crate::auth::CurrentUser;
use axum::Json;
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub username: String,
}

/// The signed-in user, by session cookie or bearer token.
#[utoipa::path(get, path = "/api/me", tag = "session", responses(
    (status = 200, body = Me),
    (status = 401, body = crate::error::ErrorBody),
), security(("session" = []), ("bearer" = [])))]
pub async fn me(CurrentUser(user): CurrentUser) -> Json<Me> {
    Json(Me {
        username: user.username,
    })
}
