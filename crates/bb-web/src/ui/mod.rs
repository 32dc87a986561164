//! The web app: server-rendered pages (askama, auto-escaped) over the same use-cases as
//! the API. Every page works without JavaScript (plain forms, POST-redirect-GET); every
//! state change carries a per-session CSRF token (`csrf.rs`) on top of the cross-site
//! guard in `middleware.rs`.

mod activity;
mod assets;
mod connections;
mod csrf;
mod display;
mod imports;
mod library;
mod session;
mod settings;

pub use csrf::token_for_session;

use crate::auth::session_cookie;
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use bb_core::error::CoreError;
use bb_core::ports::User;
use secrecy::SecretString;

pub fn routes() -> Router<crate::state::AppState> {
    Router::new()
        .route("/", get(session::root))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/static/{file}", get(assets::serve))
        .route("/library", get(library::list))
        .route("/library/duplicates", get(library::duplicates))
        .route("/library/duplicates/{id}", post(library::decide_duplicate))
        .route("/library/{id}", get(library::item))
        .route("/library/{id}/edit", post(library::edit))
        .route("/library/{id}/choose", post(library::choose))
        .route("/library/{id}/merge", post(library::merge))
        .route("/library/{id}/split", post(library::split))
        .route(
            "/import",
            get(imports::page)
                .post(imports::upload)
                .layer(DefaultBodyLimit::max(imports::MAX_FORM_BYTES)),
        )
        .route("/import/{id}/undo", post(imports::undo))
        .route("/connections", get(connections::page))
        .route("/connections/connect", post(connections::connect))
        .route("/connections/{id}/complete", post(connections::complete))
        .route("/connections/{id}/sync", post(connections::sync))
        .route("/connections/{id}/settings", post(connections::settings))
        .route(
            "/connections/{id}/disconnect",
            post(connections::disconnect),
        )
        .route("/activity", get(activity::page))
        .route("/settings", get(settings::page))
        .route("/settings/password", post(settings::password))
        .route("/settings/tokens", post(settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/settings/export", post(settings::export))
        .route("/settings/delete", post(settings::delete_account))
}

/// The signed-in user of a page request, by session cookie only: the web app never takes
/// bearer tokens. Without a live session the request is sent to `/login`.
#[derive(Debug, Clone)]
pub struct PageUser {
    pub user: User,
    /// The per-session token every form of this session carries.
    pub csrf: String,
    /// The stored hash of the session id, which binds an OAuth flow to this browser.
    pub session_hash: String,
}

impl FromRequestParts<AppState> for PageUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let sid = session_cookie(parts, state.web.session_cookie_name());
        if let Some(sid) = sid {
            match state.accounts.authenticate_session(&sid).await {
                Ok(Some(user)) => {
                    return Ok(PageUser {
                        user,
                        csrf: token_for_session(&sid),
                        session_hash: bb_core::accounts::token::hash(&sid),
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(UiError::from(e).into_response()),
            }
        }
        Err(Redirect::to("/login").into_response())
    }
}

/// The session id of a request, for sign-out.
pub(crate) fn session_of(parts: &Parts, state: &AppState) -> Option<SecretString> {
    session_cookie(parts, state.web.session_cookie_name())
}

/// What every signed-in page's layout shows.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub username: String,
    pub csrf: String,
    /// The nav entry to mark current: `library`, `connections`, `import`, `activity`,
    /// `settings`.
    pub nav: &'static str,
}

impl Chrome {
    pub fn new(user: &PageUser, nav: &'static str) -> Self {
        Self {
            username: user.user.username.clone(),
            csrf: user.csrf.clone(),
            nav,
        }
    }
}

/// Renders a template as a page; pages are private to the user and never cached.
pub fn render<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => {
            let mut res = (status, html).into_response();
            let h = res.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
        Err(e) => ApiError::internal(&e).into_response(),
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
}

/// A failure shown to a person as a small page (never JSON, never internals).
#[derive(Debug)]
pub enum UiError {
    Core(CoreError),
    /// The form's CSRF token is missing or wrong.
    Csrf,
    BadRequest(String),
}

impl From<CoreError> for UiError {
    fn from(e: CoreError) -> Self {
        UiError::Core(e)
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            UiError::Csrf => (
                StatusCode::FORBIDDEN,
                "This form has expired",
                "The page was open for too long or came from somewhere else. Go back, reload it and try again."
                    .to_owned(),
            ),
            UiError::BadRequest(m) => (StatusCode::BAD_REQUEST, "That did not work", m),
            UiError::Core(e) => {
                let api = ApiError::from(e);
                let status = api.status();
                if status == StatusCode::INTERNAL_SERVER_ERROR {
                    (
                        status,
                        "Something went wrong",
                        format!(
                            "bookbridge could not finish this. Quote request {} when reporting it.",
                            crate::middleware::current_request_id().unwrap_or_default()
                        ),
                    )
                } else if status == StatusCode::NOT_FOUND {
                    (status, "Not found", api.message().to_owned())
                } else {
                    (status, "That did not work", api.message().to_owned())
                }
            }
        };
        render(
            status,
            &ErrorPage {
                title,
                message: &message,
            },
        )
    }
}

/// A 303 to a page after a form, so reloading does not post again.
pub fn see_other(to: &str) -> Response {
    Redirect::to(to).into_response()
}
