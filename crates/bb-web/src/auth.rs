//! Who is calling: a session cookie or `Authorization: Bearer <personal access token>`.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use bb_core::ports::User;
use secrecy::SecretString;
use std::net::SocketAddr;

/// The signed-in user of this request.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub User);

/// The session cookie's value, if the request carries one.
pub fn session_cookie(parts: &Parts, name: &str) -> Option<SecretString> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| SecretString::from(v.to_owned()))
}

fn bearer(parts: &Parts) -> Option<SecretString> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SecretString::from(token.trim().to_owned()))
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = bearer(parts) {
            return match state.accounts.authenticate_token(&token).await? {
                Some(auth) => Ok(CurrentUser(auth.user)),
                None => Err(ApiError::unauthenticated()),
            };
        }
        if let Some(sid) = session_cookie(parts, state.web.session_cookie_name())
            && let Some(user) = state.accounts.authenticate_session(&sid).await?
        {
            return Ok(CurrentUser(user));
        }
        Err(ApiError::unauthenticated())
    }
}

/// The client's address as seen on the socket. `X-Forwarded-For` is deliberately ignored:
/// trusting it would let anyone dodge the per-IP login throttle.
#[derive(Debug, Clone)]
pub struct ClientIp(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ci| ci.0.ip().to_string()),
        ))
    }
}
