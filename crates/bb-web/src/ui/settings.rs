//! Settings: change password; personal access tokens (created and shown once, listed with
//! last use, revoked); export everything; delete the account. Exporting and deleting ask
//! for the password again (SECURITY E6).

use super::csrf::CheckedForm;
use super::display::Stamp;
use super::{Chrome, PageUser, UiError, render, see_other};
use crate::api::session::cookie;
use crate::auth::ClientIp;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bb_core::error::CoreError;
use bb_core::ids::TokenId;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug)]
struct TokenRow {
    id: i64,
    name: String,
    created: Stamp,
    last_used: Option<Stamp>,
}

#[derive(Debug)]
struct NewToken {
    name: String,
    token: String,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    notice: Option<&'static str>,
    error: Option<String>,
    /// A token just created (name, token): shown on this response only.
    new_token: Option<NewToken>,
}

#[derive(Debug, Default, Deserialize)]
pub struct SettingsQuery {
    done: Option<String>,
}

/// Notices after a redirect come from this fixed list, so nothing from the URL is echoed.
fn notice(code: &str) -> Option<&'static str> {
    match code {
        "password" => Some("Your password was changed. Other devices were signed out."),
        "revoked" => Some("The token was revoked; it no longer works."),
        _ => None,
    }
}

async fn view(
    state: &AppState,
    user: &PageUser,
    notice: Option<&'static str>,
    error: Option<String>,
    new_token: Option<NewToken>,
) -> Result<SettingsPage, UiError> {
    let tokens = state
        .accounts
        .list_tokens(&user.user.username)
        .await?
        .into_iter()
        .map(|t| TokenRow {
            id: t.id.0,
            name: t.name,
            created: Stamp::new(t.created_at),
            last_used: Stamp::maybe(t.last_used_at),
        })
        .collect();
    Ok(SettingsPage {
        chrome: Chrome::new(user, "settings"),
        tokens,
        notice,
        error,
        new_token,
    })
}

pub async fn page(
    State(state): State<AppState>,
    user: PageUser,
    Query(q): Query<SettingsQuery>,
) -> Result<Response, UiError> {
    let n = q.done.as_deref().and_then(notice);
    Ok(render(
        StatusCode::OK,
        &view(&state, &user, n, None, None).await?,
    ))
}

/// The settings page again with an error, for a form that failed.
async fn failed(state: &AppState, user: &PageUser, e: CoreError) -> Result<Response, UiError> {
    let (status, message) = match &e {
        CoreError::BadCredentials => (
            StatusCode::UNAUTHORIZED,
            "Your current password was not right.".to_owned(),
        ),
        CoreError::RateLimited { retry_after_secs } => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many wrong passwords. Try again in {} minutes.",
                retry_after_secs.div_ceil(60)
            ),
        ),
        CoreError::InvalidInput(m) => (StatusCode::BAD_REQUEST, m.clone()),
        _ => return Err(e.into()),
    };
    Ok(render(
        status,
        &view(state, user, None, Some(message), None).await?,
    ))
}

fn secret(form: &CheckedForm, name: &str) -> SecretString {
    SecretString::from(form.get(name).unwrap_or_default().to_owned())
}

/// Checks the current password, sets the new one (which ends every session), and signs
/// this browser in again with a fresh session.
pub async fn password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let user = &form.user;
    let name = user.user.username.clone();
    let new = secret(&form, "new");
    if new.expose_secret() != form.get("confirm").unwrap_or_default() {
        return failed(
            &state,
            user,
            CoreError::InvalidInput("The two new passwords are not the same.".into()),
        )
        .await;
    }
    if let Err(e) = state
        .accounts
        .reauthenticate(&name, &secret(&form, "current"), ip.as_deref())
        .await
    {
        return failed(&state, user, e).await;
    }
    if let Err(e) = state.accounts.change_password(&name, &new).await {
        return failed(&state, user, e).await;
    }
    let outcome = state.accounts.login(&name, &new, ip.as_deref()).await?;
    let max_age = state.accounts.policy().session_absolute.num_seconds();
    let mut res = see_other("/settings?done=password");
    let c = cookie(&state, outcome.session_id.expose_secret(), max_age)
        .map_err(|e| UiError::BadRequest(e.message().to_owned()))?;
    res.headers_mut().append(header::SET_COOKIE, c);
    Ok(res)
}

/// Creates a token and shows it on this response only (never in a URL).
pub async fn create_token(
    State(state): State<AppState>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let user = &form.user;
    let name = form.get("name").map(str::trim).filter(|n| !n.is_empty());
    match state.accounts.create_token(&user.user.username, name).await {
        Ok((secret, record)) => {
            let page = view(
                &state,
                user,
                None,
                None,
                Some(NewToken {
                    name: record.name,
                    token: secret.expose_secret().to_owned(),
                }),
            )
            .await?;
            Ok(render(StatusCode::OK, &page))
        }
        Err(e) => failed(&state, user, e).await,
    }
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    state
        .accounts
        .revoke_token(&form.user.user.username, TokenId(id))
        .await?;
    Ok(see_other("/settings?done=revoked"))
}

/// The account's password, asked again before exporting or deleting (SECURITY E6).
async fn password_again(
    state: &AppState,
    form: &CheckedForm,
    ip: Option<&str>,
) -> Result<(), CoreError> {
    state
        .accounts
        .reauthenticate(&form.user.user.username, &secret(form, "password"), ip)
        .await
        .map(drop)
}

/// Everything, as a download, after the password is given again.
pub async fn export(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let user = &form.user;
    if let Err(e) = password_again(&state, &form, ip.as_deref()).await {
        return failed(&state, user, e).await;
    }
    let mut buf: Vec<u8> = Vec::new();
    let (content_type, file) = if form.get("format") == Some("goodreads-csv") {
        state
            .library
            .export_goodreads_csv(user.user.id, &mut buf)
            .await?;
        ("text/csv; charset=utf-8", "goodreads_library_export.csv")
    } else {
        state.library.export_json(user.user.id, &mut buf).await?;
        ("application/json", "bookbridge-library.json")
    };
    let mut res = buf.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// Deletes the account and everything it owns, after the password and a tick.
pub async fn delete_account(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let user = &form.user;
    if form.get("understood") != Some("yes") {
        return failed(
            &state,
            user,
            CoreError::InvalidInput("Tick the box to confirm you want everything deleted.".into()),
        )
        .await;
    }
    if let Err(e) = password_again(&state, &form, ip.as_deref()).await {
        return failed(&state, user, e).await;
    }
    state.accounts.delete_user(&user.user.username).await?;
    let mut res = see_other("/login");
    if let Ok(c) = cookie(&state, "", 0) {
        res.headers_mut().append(header::SET_COOKIE, c);
    }
    Ok(res)
}
