//! `bookbridge providers`, `connections`, `connect`, `sync` and `disconnect`.
//!
//! `connect` for an OAuth provider completes through a one-shot loopback listener, as
//! desktop OAuth clients do (RFC 8252): the redirect URI is `http://127.0.0.1:PORT/…`, the
//! browser lands there, and the listener hands the query to the same callback use-case
//! the web service uses. For a device provider (Audible) the user pastes the address of
//! the page they land on.

use crate::app::App;
use anyhow::{Context, Result, anyhow, bail};
use bb_core::connections::{
    AuthKind, ConnectRequest, ConnectionState, ConnectionView, Connections,
};
use bb_core::ids::{ConnectionId, UserId};
use bb_core::ports::JobState;
use secrecy::SecretString;
use std::collections::BTreeMap;
use std::io::BufRead;
use std::time::Duration;

pub async fn providers(app: &App, json: bool) -> Result<()> {
    let connections = app.connections().await?;
    let list = connections.providers();
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for p in list {
        let caps: Vec<String> = p
            .capabilities
            .iter()
            .map(|c| {
                serde_json::to_value(c)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
            })
            .collect();
        println!(
            "{}\t{}\t{}\t{}\t{}",
            p.id,
            p.name,
            serde_json::to_value(p.auth_kind)?
                .as_str()
                .unwrap_or_default(),
            if p.configured {
                "configured"
            } else {
                "not configured"
            },
            caps.join(",")
        );
    }
    Ok(())
}

fn print_connection(c: &ConnectionView) {
    let account = c
        .account
        .as_ref()
        .map(|a| {
            a.display_name
                .clone()
                .unwrap_or_else(|| a.external_id.clone())
        })
        .unwrap_or_default();
    let last = c.last_sync.as_ref().map_or_else(
        || "never synced".to_owned(),
        |s| {
            format!(
                "last sync {} ({} created, {} updated, {} unchanged, {} removed, {} failed)",
                s.status, s.created, s.updated, s.unchanged, s.removed, s.failed
            )
        },
    );
    let error = c
        .last_error
        .as_ref()
        .map(|e| format!("\terror: {}", e.message))
        .unwrap_or_default();
    println!(
        "{}\t{}\t{}\t{}\t{last}{error}",
        c.id,
        c.provider,
        c.state.as_str(),
        account
    );
}

pub async fn list(app: &App, user: &str, json: bool) -> Result<()> {
    let user = app.library.user_id(user).await?;
    let connections = app.connections().await?;
    let list = connections.list(user).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(());
    }
    for c in &list {
        print_connection(c);
    }
    Ok(())
}

/// A connection named by id, or by provider when the user has one live connection to it.
async fn resolve(connections: &Connections, user: UserId, name: &str) -> Result<ConnectionId> {
    if let Ok(id) = name.parse::<i64>() {
        return Ok(ConnectionId(id));
    }
    let live: Vec<ConnectionView> = connections
        .list(user)
        .await?
        .into_iter()
        .filter(|c| c.provider == name && c.state != ConnectionState::Disconnected)
        .collect();
    match live.as_slice() {
        [one] => Ok(one.id),
        [] => bail!("no {name} connection; connect one with `bookbridge connect {name}`"),
        _ => bail!("several {name} connections; name one by id (see `bookbridge connections`)"),
    }
}

pub struct ConnectArgs {
    pub provider: String,
    pub user: String,
    pub token: Option<String>,
    pub username: Option<String>,
    pub marketplace: Option<String>,
}

pub async fn connect(app: &App, args: ConnectArgs) -> Result<()> {
    let user = app.library.user_id(&args.user).await?;
    let connections = app.connections().await?;
    let info = connections
        .providers()
        .into_iter()
        .find(|p| p.id == args.provider)
        .ok_or_else(|| {
            anyhow!(
                "unknown provider {}; see `bookbridge providers`",
                args.provider
            )
        })?;
    let mut params = BTreeMap::new();
    if let Some(m) = args.marketplace {
        params.insert("marketplace".to_owned(), m);
    }
    let mut request = ConnectRequest {
        provider: info.id.clone(),
        username: args.username,
        params,
        ..ConnectRequest::default()
    };
    match info.auth_kind {
        AuthKind::ApiToken => {
            let token = match args.token {
                Some(t) if t != "-" => t,
                _ => read_line(&format!(
                    "Paste your {} token{}: ",
                    info.name,
                    info.help_url
                        .as_deref()
                        .map(|u| format!(" (from {u})"))
                        .unwrap_or_default()
                ))?,
            };
            request.token = Some(SecretString::from(token));
            let done = connections.connect(user, None, request).await?;
            print_connection(&done.connection);
        }
        AuthKind::PublicFeed => {
            let done = connections.connect(user, None, request).await?;
            print_connection(&done.connection);
        }
        AuthKind::Oauth2 => connect_loopback(&connections, user, &info.id, request).await?,
        AuthKind::Device => {
            let started = connections.connect(user, None, request).await?;
            let url = started
                .authorize_url
                .ok_or_else(|| anyhow!("{} gave no sign-in address", info.name))?;
            println!(
                "Sign in to {} in your browser (bookbridge never sees your password):",
                info.name
            );
            println!("\n  {url}\n");
            let pasted = read_line(
                "Then paste here the address of the page you land on (it looks empty): ",
            )?;
            let done = connections
                .complete_pasted(user, started.connection.id, &pasted, None)
                .await?;
            print_connection(&done.connection);
            if let Some(notice) = done.notice {
                println!("{notice}");
            }
        }
        AuthKind::File => bail!(
            "{} is imported from a file: use `bookbridge import`",
            info.name
        ),
    }
    Ok(())
}

fn read_line(prompt: &str) -> Result<String> {
    eprint!("{prompt}");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read from stdin")?;
    let line = line.trim().to_owned();
    if line.is_empty() {
        bail!("nothing was entered");
    }
    Ok(line)
}

/// Listens on a free loopback port for the one redirect the provider sends back.
async fn connect_loopback(
    connections: &Connections,
    user: UserId,
    provider: &str,
    mut request: ConnectRequest,
) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot open a loopback port for the sign-in")?;
    let addr = listener.local_addr()?;
    request.redirect_uri = Some(format!("http://{addr}/oauth/callback/{provider}"));
    let started = connections.connect(user, None, request).await?;
    let url = started
        .authorize_url
        .ok_or_else(|| anyhow!("the provider gave no sign-in address"))?;
    println!("Open this address in your browser to connect:\n\n  {url}\n");
    println!("Waiting for the provider to send you back to http://{addr}/ …");

    let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(1);
    let app = axum::Router::new().route(
        "/oauth/callback/{provider}",
        axum::routing::get(move |axum::extract::RawQuery(q): axum::extract::RawQuery| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(q.unwrap_or_default()).await;
                axum::response::Html(
                    "<!doctype html><title>bookbridge</title><p>Done: you can close this tab \
                     and go back to the terminal.</p>",
                )
            }
        }),
    );
    let server = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let query = tokio::time::timeout(Duration::from_mins(10), rx.recv())
        .await
        .map_err(|_| anyhow!("no answer from the provider within 10 minutes"))?
        .ok_or_else(|| anyhow!("the loopback listener stopped"))?;
    server.abort();
    let state = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    match connections
        .complete_callback(provider, state.as_deref(), &query, None)
        .await
    {
        Ok(id) => {
            let view = connections.get(user, id).await?;
            print_connection(&view);
            Ok(())
        }
        Err(f) => bail!("connecting failed: {}", f.message),
    }
}

pub async fn sync(app: &App, connection: &str, user: &str) -> Result<()> {
    let user = app.library.user_id(user).await?;
    let connections = app.connections().await?;
    let id = resolve(&connections, user, connection).await?;
    let job_id = connections.sync_now(user, id).await?;
    let runner = app.job_runner(&connections);
    // Run it here; if a running `serve` claims it first, wait for that to finish.
    let deadline = tokio::time::Instant::now() + Duration::from_hours(1);
    loop {
        runner.step().await?;
        let job = connections.job(user, job_id).await?;
        let retrying = job.state == JobState::Queued && job.attempts > 0;
        if job.state.is_final() || retrying {
            let view = connections.get(user, id).await?;
            print_connection(&view);
            if job.state == JobState::Succeeded {
                return Ok(());
            }
            let e = job.last_error.map(|e| e.message).unwrap_or_default();
            if retrying {
                bail!("the sync failed and will be retried later: {e}")
            }
            bail!("the sync failed: {e}")
        }
        if tokio::time::Instant::now() > deadline {
            bail!("the sync did not finish within an hour (job {job_id})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub async fn disconnect(app: &App, connection: &str, user: &str, keep_data: bool) -> Result<()> {
    let user = app.library.user_id(user).await?;
    let connections = app.connections().await?;
    let id = resolve(&connections, user, connection).await?;
    let done = connections.disconnect(user, id, keep_data).await?;
    let revoked = match done.revoked {
        Some(true) => "access revoked at the provider",
        Some(false) => "the provider did not confirm revocation (credentials deleted here anyway)",
        None => "the provider cannot be told to revoke access; remove it on their site",
    };
    println!(
        "disconnected {id}: {revoked}; {}",
        if keep_data {
            "its books and data were kept".to_owned()
        } else {
            format!(
                "its data was removed ({} items changed)",
                done.items_changed
            )
        }
    );
    Ok(())
}
