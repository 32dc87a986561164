//! The connections page: a card per provider (what it brings, how it connects) with each
//! linked account's state, last and next sync, and its actions (sync now, reconnect,
//! settings, disconnect keeping or removing its data). Linking: a token form, an OAuth
//! hand-off page, or the paste-the-address flow for device sign-in.

use super::csrf::CheckedForm;
use super::display::{self, Stamp};
use super::{Chrome, PageUser, UiError, render, see_other};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use bb_core::connections::model::ConnectionSettings;
use bb_core::connections::provider::{AuthKind, Capability};
use bb_core::connections::{ConnectRequest, ConnectionState, ConnectionView};
use bb_core::ids::ConnectionId;
use secrecy::SecretString;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug)]
struct LinkedView {
    id: i64,
    state: &'static str,
    state_label: &'static str,
    account: String,
    last_sync: Option<String>,
    last_sync_at: Option<Stamp>,
    next_sync: Option<Stamp>,
    error: Option<String>,
    can_revoke: bool,
    write_back: bool,
    sync_every_hours: String,
}

#[derive(Debug)]
struct ProviderCard {
    id: String,
    name: String,
    brings: String,
    how: &'static str,
    kind: &'static str,
    configured: bool,
    can_revoke: bool,
    write_back: bool,
    help_url: Option<String>,
    linked: Vec<LinkedView>,
}

#[derive(Template)]
#[template(path = "connections.html")]
struct ConnectionsPage {
    chrome: Chrome,
    cards: Vec<ProviderCard>,
    notice: Option<&'static str>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "connect_next.html")]
struct NextStepPage {
    chrome: Chrome,
    provider: String,
    id: i64,
    authorize_url: String,
    device: bool,
    /// What the provider will call the device in its list, when known before sign-in.
    device_name: Option<&'static str>,
    notice: String,
}

/// Audible names a registered device after the account's first name from the template
/// bookbridge sends (`audible::register::DEVICE_NAME_TEMPLATE`).
fn device_name(provider: &str) -> Option<&'static str> {
    (provider == "audible").then_some(
        "“Anna’s Audible for iPhone”, with your own first name (“Anna’s 2nd Audible for \
         iPhone” when you have one already)",
    )
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    connected: Option<String>,
    failed: Option<String>,
    error: Option<String>,
    done: Option<String>,
}

fn capability(c: Capability) -> &'static str {
    match c {
        Capability::Books => "books",
        Capability::Purchases => "purchases",
        Capability::Shelves => "shelves",
        Capability::Ratings => "ratings",
        Capability::Reviews => "reviews",
        Capability::Progress => "progress",
        Capability::Highlights => "highlights",
        Capability::Covers => "covers",
        Capability::Metadata => "book details",
        Capability::WriteBack => "sends your changes back",
    }
}

/// What a provider brings, in words. A provider with no capabilities (a generic OAuth
/// provider configured by the admin) links an account and nothing more: say so rather
/// than show an empty list.
fn brings(capabilities: &[Capability]) -> String {
    if capabilities.is_empty() {
        return "no books (yet): it links your account, and its sync only checks that the \
                access still works."
            .to_owned();
    }
    capabilities
        .iter()
        .map(|c| capability(*c))
        .collect::<Vec<_>>()
        .join(", ")
}

fn auth(kind: AuthKind) -> (&'static str, &'static str) {
    match kind {
        AuthKind::Oauth2 => (
            "oauth2",
            "You sign in on the provider's own site and allow access; bookbridge never sees your password.",
        ),
        AuthKind::ApiToken => (
            "api_token",
            "Paste a personal token you make in your account settings there.",
        ),
        AuthKind::Device => (
            "device",
            "Sign in on the provider's page in a new tab, then paste the address you land on; bookbridge never sees your password.",
        ),
        AuthKind::PublicFeed => (
            "public_feed",
            "Give your public profile name; nothing private is read.",
        ),
        AuthKind::File => (
            "file",
            "Export a file there and bring it in on the Import page.",
        ),
    }
}

fn state_label(s: ConnectionState) -> &'static str {
    match s {
        ConnectionState::Pending => "Waiting for sign-in",
        ConnectionState::Active => "Connected",
        ConnectionState::NeedsReauth => "Needs reconnecting",
        ConnectionState::Error => "Failed",
        ConnectionState::Disconnected => "Disconnected",
    }
}

fn linked(c: &ConnectionView) -> LinkedView {
    let last_sync = c.last_sync.as_ref().map(|s| {
        let result = match s.status.as_str() {
            "succeeded" => "finished",
            "failed" => "failed",
            "running" => "running",
            "queued" => "queued",
            other => other,
        };
        format!(
            "{result}: {} new, {} updated, {} unchanged, {} removed, {} failed",
            s.created, s.updated, s.unchanged, s.removed, s.failed
        )
    });
    LinkedView {
        id: c.id.0,
        state: c.state.as_str(),
        state_label: state_label(c.state),
        account: display::account_label(c),
        last_sync,
        last_sync_at: c
            .last_sync
            .as_ref()
            .and_then(|s| Stamp::maybe(s.finished.or(s.started))),
        next_sync: Stamp::maybe(c.next_sync),
        error: c
            .last_error
            .as_ref()
            .or_else(|| c.last_sync.as_ref().and_then(|s| s.error.as_ref()))
            .map(|e| e.message.clone()),
        can_revoke: c.can_revoke,
        write_back: c.settings.write_back,
        sync_every_hours: c
            .settings
            .sync_every_hours
            .map(|h| h.to_string())
            .unwrap_or_default(),
    }
}

fn notice(q: &PageQuery) -> Option<&'static str> {
    if q.connected.is_some() {
        Some("Connected. The first sync has been queued.")
    } else if q.failed.is_some() {
        Some("Connecting did not finish; the card below says why.")
    } else if q.error.is_some() {
        Some("That sign-in could not be matched to a connection; start again.")
    } else {
        match q.done.as_deref() {
            Some("sync") => Some("A sync has been queued."),
            Some("saved") => Some("Settings saved."),
            Some("disconnected") => Some("Disconnected."),
            _ => None,
        }
    }
}

async fn view(
    state: &AppState,
    user: &PageUser,
    notice: Option<&'static str>,
    error: Option<String>,
) -> Result<ConnectionsPage, UiError> {
    let connections = state.connections.list(user.user.id).await?;
    let cards = state
        .connections
        .providers()
        .into_iter()
        .map(|p| {
            let (kind, how) = auth(p.auth_kind);
            ProviderCard {
                brings: brings(&p.capabilities),
                how,
                kind,
                configured: p.configured,
                can_revoke: p.can_revoke,
                write_back: p.capabilities.contains(&Capability::WriteBack),
                help_url: p.help_url.filter(|u| u.starts_with("https://")),
                linked: connections
                    .iter()
                    .filter(|c| c.provider == p.id && c.state != ConnectionState::Disconnected)
                    .map(linked)
                    .collect(),
                id: p.id,
                name: p.name,
            }
        })
        .collect();
    Ok(ConnectionsPage {
        chrome: Chrome::new(user, "connections"),
        cards,
        notice,
        error,
    })
}

pub async fn page(
    State(state): State<AppState>,
    user: PageUser,
    Query(q): Query<PageQuery>,
) -> Result<Response, UiError> {
    Ok(render(
        StatusCode::OK,
        &view(&state, &user, notice(&q), None).await?,
    ))
}

/// Starts linking: finished at once for token and feed providers; otherwise a page that
/// hands over to the provider. (A redirect straight to another site after a form post
/// would be blocked by the `form-action 'self'` policy, and rightly so.)
pub async fn connect(
    State(state): State<AppState>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let user = &form.user;
    let provider = form.required("provider", "the provider")?.to_owned();
    let mut params = BTreeMap::new();
    if let Some(m) = form.get("marketplace").filter(|m| !m.is_empty()) {
        params.insert("marketplace".to_owned(), m.to_owned());
    }
    let request = ConnectRequest {
        provider: provider.clone(),
        token: form
            .get("token")
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(|t| SecretString::from(t.to_owned())),
        username: form
            .get("username")
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(ToOwned::to_owned),
        params,
        redirect_uri: None,
    };
    let connected = match state
        .connections
        .connect(user.user.id, Some(&user.session_hash), request)
        .await
    {
        Ok(c) => c,
        Err(e) => {
            let message = crate::error::ApiError::from(e);
            if message.status().is_server_error()
                && message.status() != StatusCode::SERVICE_UNAVAILABLE
            {
                return Err(UiError::BadRequest(message.message().to_owned()));
            }
            let page = view(&state, user, None, Some(message.message().to_owned())).await?;
            return Ok(render(message.status(), &page));
        }
    };
    match connected.authorize_url {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => Ok(render(
            StatusCode::OK,
            &NextStepPage {
                chrome: Chrome::new(user, "connections"),
                provider: connected.connection.provider_name.clone(),
                id: connected.connection.id.0,
                device: connected.connection.state == ConnectionState::Pending
                    && state
                        .connections
                        .providers()
                        .iter()
                        .any(|p| p.id == provider && p.auth_kind == AuthKind::Device),
                authorize_url: url,
                device_name: device_name(&provider),
                notice: connected.notice.unwrap_or_default(),
            },
        )),
        _ => Ok(see_other(&format!(
            "/connections?connected={}",
            connected.connection.id.0
        ))),
    }
}

/// The device flow's second half: the address the user landed on after signing in.
pub async fn complete(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let user = &form.user;
    let pasted = form.required("redirect_url", "the address")?;
    match state
        .connections
        .complete_pasted(
            user.user.id,
            ConnectionId(id),
            pasted,
            Some(&user.session_hash),
        )
        .await
    {
        Ok(_) => Ok(see_other(&format!("/connections?connected={id}"))),
        Err(e) => {
            let api = crate::error::ApiError::from(e);
            let page = view(&state, user, None, Some(api.message().to_owned())).await?;
            Ok(render(api.status(), &page))
        }
    }
}

pub async fn sync(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    state
        .connections
        .sync_now(form.user.user.id, ConnectionId(id))
        .await?;
    Ok(see_other("/connections?done=sync"))
}

pub async fn settings(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let hours = match form.get("sync_every_hours").map(str::trim) {
        None | Some("") => None,
        Some(h) => Some(
            h.parse::<u32>()
                .map_err(|_| UiError::BadRequest("hours between syncs is a whole number".into()))?,
        ),
    };
    let settings = ConnectionSettings {
        write_back: form.get("write_back") == Some("on"),
        sync_every_hours: hours,
    };
    state
        .connections
        .update_settings(form.user.user.id, ConnectionId(id), &settings)
        .await?;
    Ok(see_other("/connections?done=saved"))
}

/// Disconnects, keeping or removing what the account brought in: the form says which.
pub async fn disconnect(
    State(state): State<AppState>,
    Path(id): Path<i64>,
    form: CheckedForm,
) -> Result<Response, UiError> {
    let keep = match form.get("data") {
        Some("keep") => true,
        Some("delete") => false,
        _ => {
            return Err(UiError::BadRequest(
                "choose whether to keep or remove this account's books".into(),
            ));
        }
    };
    state
        .connections
        .disconnect(form.user.user.id, ConnectionId(id), keep)
        .await?;
    Ok(see_other("/connections?done=disconnected"))
}
