//! Layers around every route: request ids, tracing with credentials redacted, security
//! headers (SECURITY F2), a cross-site request check for cookie-authenticated changes (F1),
//! body size and time limits.

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use rand::RngCore;
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::sensitive_headers::{
    SetSensitiveRequestHeadersLayer, SetSensitiveResponseHeadersLayer,
};
use tower_http::trace::TraceLayer;

tokio::task_local! {
    static REQUEST_ID: String;
}

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The id of the request being handled, if called inside one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

async fn request_id(req: Request, next: Next) -> Response {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    let id = hex::encode(bytes);
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    tracing::debug!(parent: &span, "request started");
    let mut res = {
        REQUEST_ID
            .scope(
                id.clone(),
                tracing::Instrument::instrument(next.run(req), span.clone()),
            )
            .await
    };
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID_HEADER, v);
    }
    tracing::info!(parent: &span, status = res.status().as_u16(), "request finished");
    res
}

async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("same-origin"));
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if state.web.is_https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    res
}

/// Refuses state-changing requests a browser sends from another site. Requests without
/// browser headers (CLI, scripts with a bearer token) pass: they carry no ambient cookie
/// authority that a foreign page could borrow.
async fn cross_site_guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe {
        let headers = req.headers();
        let fetch_site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
        let cross_by_fetch = matches!(fetch_site, Some(s) if s != "same-origin" && s != "none");
        let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
        let own = state.web.public_url.origin().ascii_serialization();
        let host_origin = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|host| format!("{}://{host}", state.web.public_url.scheme()));
        let cross_by_origin = matches!(origin, Some(o) if o != "null" && o != own && Some(o) != host_origin.as_deref())
            || origin == Some("null");
        if cross_by_fetch || cross_by_origin {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_site_request",
                "cross-site requests may not change anything",
            )
            .into_response();
        }
    }
    next.run(req).await
}

async fn fallback() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Maximum request body: large enough for export files (imports set their own limit).
const BODY_LIMIT: usize = 64 * 1024 * 1024;

pub fn wrap(router: Router<AppState>, state: &AppState) -> Router<AppState> {
    let sensitive: Arc<[HeaderName]> = Arc::new([header::AUTHORIZATION, header::COOKIE]);
    router
        .fallback(fallback)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            cross_site_guard,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_mins(2),
        ))
        .layer(middleware::from_fn(request_id))
        .layer(TraceLayer::new_for_http().make_span_with(|_: &Request<Body>| tracing::Span::none()))
        .layer(SetSensitiveResponseHeadersLayer::new([header::SET_COOKIE]))
        .layer(SetSensitiveRequestHeadersLayer::from_shared(sensitive))
}
