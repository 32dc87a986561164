//! bookbridge over HTTP: the JSON API (`api/`), its OpenAPI document, authentication
//! extractors, security headers and request tracing, and the one place errors become
//! HTTP responses (`error.rs`). Handlers call bb-core use-cases, never SQL.

pub mod api;
pub mod auth;
pub mod error;
pub mod extract;
pub mod import_job;
pub mod middleware;
pub mod openapi;
mod state;
pub mod ui;

pub use state::{AppState, WebConfig};

use axum::Router;
use std::future::Future;
use std::net::SocketAddr;
use tokio::net::TcpListener;

/// The whole application router.
pub fn router(state: AppState) -> Router {
    let api = api::routes();
    middleware::wrap(Router::new().merge(api).merge(ui::routes()), &state).with_state(state)
}

/// Serves on an already-bound listener (port 0 in tests) until `shutdown` resolves, then
/// finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
