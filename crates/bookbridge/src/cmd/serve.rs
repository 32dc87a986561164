//! `bookbridge serve`: the web service, until SIGTERM or Ctrl-C.

use crate::app::App;
use anyhow::{Context, Result};
use bb_web::{AppState, WebConfig};
use std::sync::Arc;

pub async fn run(app: App) -> Result<()> {
    // Refuse to start with a wrong master key before accepting any request.
    let (_vault, _) = app.vault().await?;
    let state = AppState {
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
    // Background jobs (large imports) run beside the server and stop with it.
    let (stop_jobs, jobs_stopped) = tokio::sync::oneshot::channel::<()>();
    let runner = jobs_runner(&app);
    let jobs = tokio::spawn(async move {
        runner
            .run_forever(async {
                let _ = jobs_stopped.await;
            })
            .await;
    });
    bb_web::serve(listener, state, shutdown_signal())
        .await
        .context("the server failed")?;
    let _ = stop_jobs.send(());
    let _ = jobs.await;
    tracing::info!("stopped");
    Ok(())
}

fn jobs_runner(app: &App) -> bb_jobs::JobRunner {
    let worker = format!("serve-{}", std::process::id());
    bb_jobs::JobRunner::new(
        app.store.clone(),
        app.clock.clone(),
        bb_jobs::RunnerConfig::new(worker),
    )
    .with_handler(
        bb_core::library::service::IMPORT_JOB,
        Arc::new(bb_web::import_job::ImportJob::new(app.library.clone())),
    )
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
