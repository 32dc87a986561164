//! The one mapping from domain errors to HTTP: `{"error": {"code", "message"}}` with a
//! stable code. Internal failures become a 500 carrying a request id; the cause is logged,
//! never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bb_core::error::{CoreError, StoreError};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable: `bad_credentials`, `rate_limited`, `not_found`, …
    pub code: String,
    pub message: String,
    /// Present on internal errors: quote it when reporting a problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// An error an API handler returns.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "sign in or send a personal access token",
        )
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What the user is told.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        // Logged with the request's span (which carries the request id); the client sees
        // only the id.
        tracing::error!(error = %cause, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "an internal error occurred",
        )
    }
}

impl From<CoreError> for ApiError {
    fn from(e: CoreError) -> Self {
        let status = match &e {
            CoreError::InvalidInput(_) => StatusCode::BAD_REQUEST,
            CoreError::BadCredentials | CoreError::Unauthenticated => StatusCode::UNAUTHORIZED,
            CoreError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            CoreError::NotFound(_) | CoreError::Store(StoreError::NotFound) => {
                StatusCode::NOT_FOUND
            }
            CoreError::Conflict(_) | CoreError::Store(StoreError::Conflict(_)) => {
                StatusCode::CONFLICT
            }
            CoreError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            CoreError::Vault(_) | CoreError::Store(StoreError::Backend(_)) => {
                return ApiError::internal(&e);
            }
        };
        let retry_after = match e {
            CoreError::RateLimited { retry_after_secs } => Some(retry_after_secs),
            CoreError::Unavailable {
                retry_after_secs, ..
            } => retry_after_secs,
            _ => None,
        };
        Self {
            status,
            code: e.code(),
            message: e.to_string(),
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let request_id = (self.status == StatusCode::INTERNAL_SERVER_ERROR)
            .then(crate::middleware::current_request_id)
            .flatten();
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                request_id,
            },
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}
