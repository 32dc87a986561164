//! Wiring: configuration → logging, store, vault and use-cases.

use crate::config::{Config, LogFormat};
use anyhow::{Context, Result};
use bb_core::accounts::{AccountPolicy, Accounts};
use bb_core::clock::{Clock, SystemClock};
use bb_core::connections::{
    Connections, ConnectionsConfig, Provider, REVOKE_JOB_KIND, RateLimit, SYNC_JOB_KIND,
    WRITE_BACK_JOB_KIND,
};
use bb_core::library::resolve::ResolveRules;
use bb_core::library::service::Library;
use bb_core::ports::{ConnectionStore, JobStore, Store};
use bb_jobs::{
    ConnectionRevokeHandler, ConnectionSyncHandler, ConnectionWriteBackHandler, JobRunner,
    RunnerConfig,
};
use bb_providers::audible::{AudibleConfig, AudibleProvider};
use bb_providers::budget::SharedBudget;
use bb_providers::hardcover::{HardcoverConfig, HardcoverProvider};
use bb_providers::oauth::{OAuthClient, OAuthConnector, OAuthProvider};
use bb_providers::openlibrary::{OpenLibraryConfig, OpenLibraryProvider};
use bb_vault::{Keyring, Vault};
use secrecy::ExposeSecret;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

pub fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests) is harmless.
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// The opened backends and use-cases a command needs.
#[derive(Debug, Clone)]
pub struct App {
    pub config: Arc<Config>,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub accounts: Accounts,
    pub library: Library,
}

impl App {
    /// Opens the database (applying migrations, as every start does).
    pub async fn open(config: Config) -> Result<Self> {
        let url = config.database_url();
        if url.starts_with("sqlite:") {
            create_private_dir(&config.data_dir).with_context(|| {
                format!(
                    "cannot create the data directory {}",
                    config.data_dir.display()
                )
            })?;
        }
        let store = bb_store::open(&url, true)
            .await
            .with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let policy = AccountPolicy {
            session_idle: chrono::Duration::minutes(config.session.idle_minutes),
            session_absolute: chrono::Duration::hours(config.session.absolute_hours),
            login_failures_per_account: config.login.failures_per_account,
            login_failures_per_ip: config.login.failures_per_ip,
            login_window: chrono::Duration::minutes(config.login.window_minutes),
            ..AccountPolicy::default()
        };
        let accounts = Accounts::new(store.clone(), clock.clone(), policy);
        let library = Library::new(store.clone(), clock.clone(), ResolveRules::default());
        Ok(Self {
            config: Arc::new(config),
            store,
            clock,
            accounts,
            library,
        })
    }

    /// The keyring and, when it came from a file bookbridge may write, that file.
    pub fn keyring(&self) -> Result<(Keyring, Option<PathBuf>)> {
        if let Some(keys) = &self.config.master_key {
            let ring = Keyring::from_base64_list(keys.expose_secret())
                .context("BOOKBRIDGE_MASTER_KEY is not usable")?;
            return Ok((ring, None));
        }
        let path = self.config.master_key_path();
        if self.config.master_key_file.is_some() {
            let ring = Keyring::load_file(&path)
                .with_context(|| format!("cannot read the master key file {}", path.display()))?;
            return Ok((ring, Some(path)));
        }
        let (ring, created) = Keyring::load_or_create_file(&path).with_context(|| {
            format!(
                "cannot read or create the master key file {}",
                path.display()
            )
        })?;
        if created {
            tracing::warn!(
                path = %path.display(),
                "created a new master key; back it up: without it, stored credentials cannot be read"
            );
        }
        Ok((ring, Some(path)))
    }

    /// The connections use-case with every provider this instance knows: the built-in
    /// ones and each `[[oauth_provider]]`. Opens the vault (credentials are sealed).
    pub async fn connections(&self) -> Result<Connections> {
        let (vault, _) = self.vault().await?;
        let cfg = &self.config;
        let http = bb_providers::http::build_client(bb_providers::http::HttpSettings::default())
            .context("cannot build the outbound HTTP client")?;
        let hardcover_limit = RateLimit {
            capacity: cfg.providers.hardcover.burst,
            per_minute: cfg.providers.hardcover.requests_per_minute,
        };
        let ol = &cfg.providers.openlibrary;
        let openlibrary_limit = RateLimit {
            capacity: ol.burst,
            per_minute: ol.requests_per_minute,
        };
        let mut limits = HashMap::new();
        limits.insert(
            bb_providers::hardcover::PROVIDER_ID.to_owned(),
            hardcover_limit,
        );
        limits.insert(
            bb_providers::openlibrary::PROVIDER_ID.to_owned(),
            openlibrary_limit,
        );
        limits.insert(
            bb_providers::audible::PROVIDER_ID.to_owned(),
            bb_providers::audible::provider::RATE_LIMIT,
        );
        let store: Arc<dyn ConnectionStore> = self.store.clone();
        let budget = Arc::new(SharedBudget::new(store, self.clock.clone(), limits));
        let mut providers: Vec<Arc<dyn Provider>> = vec![Arc::new(HardcoverProvider::new(
            HardcoverConfig {
                base_url: cfg.providers.hardcover.base_url.clone(),
                ..HardcoverConfig::default()
            },
            budget.clone(),
            self.clock.clone(),
            hardcover_limit,
        ))];
        providers.push(Arc::new(OpenLibraryProvider::new(
            OpenLibraryConfig {
                base_url: ol.base_url.clone(),
                covers_url: ol.covers_url.clone(),
                // Without an operator contact, the instance's own address is the best one.
                contact: if ol.contact.trim().is_empty() {
                    cfg.public_url.to_string()
                } else {
                    ol.contact.clone()
                },
                ..OpenLibraryConfig::default()
            },
            http.clone(),
            budget.clone(),
            self.clock.clone(),
            openlibrary_limit,
        )));
        providers.push(Arc::new(
            AudibleProvider::new(
                AudibleConfig {
                    auth_base_url: cfg.providers.audible.auth_base_url.clone(),
                    api_base_url: cfg.providers.audible.api_base_url.clone(),
                },
                http.clone(),
                self.clock.clone(),
            )
            .with_budget(budget, bb_providers::audible::provider::MAX_BUDGET_WAIT),
        ));
        let oauth_client = OAuthClient::new(http, self.clock.clone());
        for p in &cfg.oauth_provider {
            let provider = OAuthProvider::from_config(p.clone())
                .with_context(|| format!("[[oauth_provider]] `{}` is not usable", p.id))?;
            providers.push(Arc::new(OAuthConnector::new(
                provider,
                oauth_client.clone(),
            )));
        }
        let settings = &cfg.connections;
        let config = ConnectionsConfig {
            public_url: cfg.public_url.to_string(),
            refresh_margin: Duration::from_secs(settings.refresh_margin_secs),
            keepalive_after: Duration::from_hours(settings.keepalive_hours),
            sync_interval: Duration::from_hours(settings.sync_interval_hours.max(1)),
            connect_per_hour: settings.connect_attempts_per_hour,
            manual_syncs_per_day: settings.manual_syncs_per_day,
            ..ConnectionsConfig::default()
        };
        let jobs: Arc<dyn JobStore> = self.store.clone();
        Ok(Connections::new(
            self.store.clone(),
            jobs,
            vault,
            Arc::new(self.library.clone()),
            providers,
            self.clock.clone(),
            config,
            worker_id(self.clock.as_ref()),
        ))
    }

    /// A job runner for every job kind this binary handles.
    pub fn job_runner(&self, connections: &Connections) -> JobRunner {
        let jobs: Arc<dyn JobStore> = self.store.clone();
        let mut config = RunnerConfig::new(worker_id(self.clock.as_ref()));
        config.lease = Duration::from_secs(self.config.serve.job_lease_secs.max(1));
        // Renewed well before it lapses: five chances per lease, as the default does.
        config.renew_every = (config.lease / 5).max(Duration::from_millis(200));
        JobRunner::new(jobs, self.clock.clone(), config)
            .with_handler(
                SYNC_JOB_KIND,
                Arc::new(ConnectionSyncHandler::new(connections.clone())),
            )
            .with_handler(
                WRITE_BACK_JOB_KIND,
                Arc::new(ConnectionWriteBackHandler::new(connections.clone())),
            )
            .with_handler(
                REVOKE_JOB_KIND,
                Arc::new(ConnectionRevokeHandler::new(connections.clone())),
            )
            .with_handler(
                bb_core::library::service::IMPORT_JOB,
                Arc::new(bb_web::import_job::ImportJob::new(self.library.clone())),
            )
    }

    /// Opens the vault, refusing to start when the key does not match the database.
    pub async fn vault(&self) -> Result<(Arc<Vault>, Option<PathBuf>)> {
        let (ring, path) = self.keyring()?;
        let vault = Vault::open(ring, self.store.clone(), self.clock.clone())
            .await
            .context("cannot open the credential vault")?;
        Ok((Arc::new(vault), path))
    }
}

/// Names this process in leases and run history.
fn worker_id(clock: &dyn Clock) -> String {
    format!(
        "pid{}-{}",
        std::process::id(),
        clock.now().timestamp_micros()
    )
}

/// The data directory holds the database and the master key: owner-only from the start.
fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// A database URL safe to print: any password replaced.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}
