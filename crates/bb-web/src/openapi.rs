//! The OpenAPI document. `openapi.json` at the repository root is a committed copy; a test
//! fails when it drifts (regenerate with `UPDATE_OPENAPI=1 cargo test -p bb-web openapi`).

use crate::api;
use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A personal access token (`bookbridge token create`)"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("bb_session"))),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "bookbridge", description = "One library you own, from every account you have elsewhere."),
    paths(
        api::health::healthz,
        api::health::readyz,
        api::session::login,
        api::session::logout,
        api::me::me,
        api::audit::list,
        api::tokens::list,
        api::tokens::create,
        api::tokens::revoke,
        api::imports::upload,
        api::imports::list,
        api::imports::get,
        api::imports::undo,
        api::library::list,
        api::library::get,
        api::library::edit,
        api::library::merge,
        api::library::split,
        api::library::duplicates,
        api::library::decide_duplicate,
        api::library::export,
        api::connections::providers,
        api::connections::list,
        api::connections::create,
        api::connections::get,
        api::connections::update,
        api::connections::complete,
        api::connections::sync,
        api::connections::syncs,
        api::connections::refresh,
        api::connections::disconnect,
        api::connections::job,
        api::connections::oauth_callback,
        serve,
    ),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

/// The document as pretty JSON, exactly as committed.
pub fn document_json() -> String {
    let mut doc = ApiDoc::openapi();
    // The crate version would make the committed copy drift on every release bump.
    doc.info.version = "1".into();
    doc.to_pretty_json().unwrap_or_default()
}

#[utoipa::path(get, path = "/api/openapi.json", tag = "meta", responses((status = 200, description = "this document")))]
pub async fn serve() -> Json<serde_json::Value> {
    Json(serde_json::from_str(&document_json()).unwrap_or_default())
}
