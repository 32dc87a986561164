//! The JSON API, one module per resource. Every route here is listed in `openapi.rs`.

pub mod audit;
pub mod health;
pub mod me;
pub mod session;
pub mod tokens;

use crate::state::AppState;
use axum::Router;
use axum::routing::{delete, get, post};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/openapi.json", get(crate::openapi::serve))
        .route("/api/session", post(session::login).delete(session::logout))
        .route("/api/me", get(me::me))
        .route("/api/audit", get(audit::list))
        .route("/api/tokens", get(tokens::list).post(tokens::create))
        .route("/api/tokens/{id}", delete(tokens::revoke))
}
