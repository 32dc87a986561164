//! The JSON API, one module per resource. Every route here is listed in `openapi.rs`.

pub mod audit;
pub mod connections;
pub mod health;
pub mod imports;
pub mod library;
pub mod me;
pub mod session;
pub mod tokens;

use crate::state::AppState;
use axum::Router;
use axum::extract::DefaultBodyLimit;
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
        .route(
            "/api/imports",
            get(imports::list)
                .post(imports::upload)
                .layer(DefaultBodyLimit::max(imports::MAX_UPLOAD_BYTES)),
        )
        .route("/api/imports/{id}", get(imports::get).delete(imports::undo))
        .route("/api/library", get(library::list))
        .route("/api/library/merge", post(library::merge))
        .route("/api/library/duplicates", get(library::duplicates))
        .route(
            "/api/library/duplicates/{id}",
            post(library::decide_duplicate),
        )
        .route("/api/library/{id}", get(library::get).patch(library::edit))
        .route("/api/library/{id}/split", post(library::split))
        .route("/api/export", get(library::export))
        .route("/api/providers", get(connections::providers))
        .route(
            "/api/connections",
            get(connections::list).post(connections::create),
        )
        .route(
            "/api/connections/{id}",
            get(connections::get)
                .patch(connections::update)
                .delete(connections::disconnect),
        )
        .route(
            "/api/connections/{id}/complete",
            post(connections::complete),
        )
        .route("/api/connections/{id}/sync", post(connections::sync))
        .route("/api/connections/{id}/syncs", get(connections::syncs))
        .route("/api/connections/{id}/refresh", post(connections::refresh))
        .route("/api/jobs/{id}", get(connections::job))
        .route(
            "/oauth/callback/{provider}",
            get(connections::oauth_callback),
        )
}
