//! CSRF tokens for forms (SECURITY F1), on top of the Origin/Fetch-Metadata guard.
//!
//! A signed-in form carries `SHA-256("bookbridge-csrf\0" ‖ session id)`: bound to the
//! session, unguessable without the `HttpOnly` cookie, and needing no storage. It differs
//! from the stored session hash (no label), so a page showing it reveals nothing usable.
//! The sign-in form has no session yet: it carries a random value that must equal a
//! short-lived cookie (double submit).

use super::{PageUser, UiError};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::response::{IntoResponse, Response};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The form field every state-changing form carries.
pub const FIELD: &str = "csrf";

/// The token of the session `session_id`.
pub fn token_for_session(session_id: &SecretString) -> String {
    let mut h = Sha256::new();
    h.update(b"bookbridge-csrf\0");
    h.update(session_id.expose_secret().as_bytes());
    hex::encode(h.finalize())
}

/// Constant-time comparison of a submitted token with the expected one.
pub fn matches(expected: &str, submitted: Option<&str>) -> bool {
    submitted.is_some_and(|s| {
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(s.as_bytes()))
    })
}

/// A URL-encoded form from a signed-in user whose CSRF token has been checked. Handlers
/// that change anything take this, so an unchecked form cannot reach them.
#[derive(Debug)]
pub struct CheckedForm {
    pub user: PageUser,
    fields: Vec<(String, String)>,
}

impl CheckedForm {
    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.fields
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// A field that must be present and non-blank.
    pub fn required(&self, name: &str, what: &str) -> Result<&str, UiError> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| UiError::BadRequest(format!("{what} is missing")))
    }
}

/// Parses `application/x-www-form-urlencoded` pairs.
pub fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

impl FromRequest<AppState> for CheckedForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let user = PageUser::from_request_parts(&mut parts, state).await?;
        let req = Request::from_parts(parts, body);
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        let fields = parse_form(&bytes);
        let form = CheckedForm { user, fields };
        if matches(&form.user.csrf, form.get(FIELD)) {
            Ok(form)
        } else {
            Err(UiError::Csrf.into_response())
        }
    }
}
