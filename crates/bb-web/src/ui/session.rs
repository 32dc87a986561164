//! Signing in and out in the browser, the first-run page, and `/`.

use super::csrf::{self, CheckedForm, parse_form};
use super::{UiError, render, see_other, session_of};
use crate::api::session::cookie;
use crate::auth::{ClientIp, session_cookie};
use crate::state::AppState;
use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bb_core::error::CoreError;
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

/// The double-submit cookie of the sign-in form (there is no session yet).
const LOGIN_CSRF_COOKIE: &str = "bb_login_csrf";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    username: &'a str,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "first_run.html")]
struct FirstRunPage;

pub async fn root(State(state): State<AppState>, parts: Parts) -> Response {
    let signed_in = match session_of(&parts, &state) {
        Some(sid) => matches!(state.accounts.authenticate_session(&sid).await, Ok(Some(_))),
        None => false,
    };
    see_other(if signed_in { "/library" } else { "/login" })
}

fn login_csrf_cookie(state: &AppState, value: &str) -> Option<HeaderValue> {
    let secure = if state.web.is_https() { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{LOGIN_CSRF_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/login; Max-Age=3600{secure}"
    ))
    .ok()
}

/// The sign-in form with a fresh double-submit token, or the first-run page when no
/// account exists yet.
async fn login_form(
    state: &AppState,
    status: StatusCode,
    username: &str,
    error: Option<String>,
) -> Response {
    match state.accounts.list_users().await {
        Ok(users) if users.is_empty() => return render(StatusCode::OK, &FirstRunPage),
        Ok(_) => {}
        Err(e) => return UiError::from(e).into_response(),
    }
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let mut res = render(
        status,
        &LoginPage {
            csrf: &token,
            username,
            error,
        },
    );
    if let Some(c) = login_csrf_cookie(state, &token) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    res
}

pub async fn login_page(State(state): State<AppState>, parts: Parts) -> Response {
    if let Some(sid) = session_of(&parts, &state)
        && let Ok(Some(_)) = state.accounts.authenticate_session(&sid).await
    {
        return see_other("/library");
    }
    login_form(&state, StatusCode::OK, "", None).await
}

/// Signs in through the accounts use-case (throttling included) and sets the same session
/// cookie as `POST /api/session`.
pub async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    parts: Parts,
    body: Bytes,
) -> Response {
    let fields = parse_form(&body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let expected = session_cookie(&parts, LOGIN_CSRF_COOKIE);
    let expected = expected.as_ref().map_or("", |s| s.expose_secret());
    if !csrf::matches(expected, field(csrf::FIELD)) {
        return UiError::Csrf.into_response();
    }
    let username = field("username").unwrap_or_default().trim().to_owned();
    let password = SecretString::from(field("password").unwrap_or_default().to_owned());
    match state
        .accounts
        .login(&username, &password, ip.as_deref())
        .await
    {
        Ok(outcome) => {
            let max_age = state.accounts.policy().session_absolute.num_seconds();
            let mut res = see_other("/library");
            match cookie(&state, outcome.session_id.expose_secret(), max_age) {
                Ok(c) => res.headers_mut().append(header::SET_COOKIE, c),
                Err(e) => return e.into_response(),
            };
            if let Some(c) = login_csrf_cookie(&state, "") {
                res.headers_mut().append(header::SET_COOKIE, c);
            }
            res
        }
        Err(CoreError::BadCredentials) => {
            login_form(
                &state,
                StatusCode::UNAUTHORIZED,
                &username,
                Some("The username or password is wrong.".into()),
            )
            .await
        }
        Err(CoreError::RateLimited { retry_after_secs }) => {
            let mut res = login_form(
                &state,
                StatusCode::TOO_MANY_REQUESTS,
                &username,
                Some(format!(
                    "Too many attempts. Try again in {} minutes.",
                    retry_after_secs.div_ceil(60)
                )),
            )
            .await;
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
            res
        }
        Err(e) => UiError::from(e).into_response(),
    }
}

/// Ends the session on the server and clears the cookie.
pub async fn logout(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    parts: Parts,
    _form: CheckedForm,
) -> Response {
    if let Some(sid) = session_of(&parts, &state)
        && let Err(e) = state.accounts.logout(&sid, ip.as_deref()).await
    {
        return UiError::from(e).into_response();
    }
    let mut res = see_other("/login");
    match cookie(&state, "", 0) {
        Ok(c) => {
            res.headers_mut().append(header::SET_COOKIE, c);
            res
        }
        Err(e) => e.into_response(),
    }
}
