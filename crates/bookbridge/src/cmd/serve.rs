//! `bookbridge serve`: the web service, until SIGTERM or Ctrl-C.

use crate::app::App;
use anyhow::{Context, Result};
use bb_web::{AppState, WebConfig};
use std::sync::Arc;

pub async fn run(app: App) -> Result<()> {
    // Refuse to start with a wrong master key before accepting any request.
    let (_vault, _) = app.vault().await?;
    let connections = app.connections().await?;
    let state = AppState {
        connections: connections.clone(),
        accounts: app.accounts.clone(),
        store: app.store.clone(),
        clock: app.clock.clone(),
        library: app.library.clone(),
        web: Arc::new(WebConfig {
            public_url: app.config.public_url.clone(),
            import_inline_max_bytes: app.config.serve.import_inline_max_bytes,
        }),
    };
    let listener = tokio::net::TcpListener::bind(app.config.serve.bind)
        .await
        .with_context(|| format!("cannot listen on {}", app.config.serve.bind))?;
    let addr = listener.local_addr().context("no local address")?;
    tracing::info!(%addr, "listening on http://{addr}");
    // Tests and scripts read this line to find a port chosen by the OS.
    println!("listening on http://{addr}");
    // Sync jobs, schedules and keep-alive refreshes run beside the web server and stop
    // with it (a running job is finished first).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let runner = app.job_runner(&connections);
    let mut runner_stop = stop_rx.clone();
    let jobs = tokio::spawn(async move {
        runner
            .run_forever(async move {
                let _ = runner_stop.wait_for(|s| *s).await;
            })
            .await;
    });
    let keepalive_connections = connections.clone();
    let mut keepalive_stop = stop_rx;
    let keepalive = tokio::spawn(async move {
        loop {
            if let Err(e) = keepalive_connections.keepalive().await {
                tracing::warn!(error = %e, "keep-alive refresh pass failed");
            }
            tokio::select! {
                _ = keepalive_stop.wait_for(|s| *s) => return,
                () = tokio::time::sleep(std::time::Duration::from_mins(10)) => {}
            }
        }
    });
    let served = bb_web::serve(listener, state, shutdown_signal()).await;
    let _ = stop_tx.send(true);
    let _ = jobs.await;
    let _ = keepalive.await;
    served.context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
