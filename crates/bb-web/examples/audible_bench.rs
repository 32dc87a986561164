//! The Audible benchmark: one connection to a fake Audible on loopback holding TITLES
//! library titles (authors, narrators with role suffixes, series with sequences, positions,
//! finished events, reviews) and WISHLIST wishlist products, linked through the real paste
//! flow; then a full sync and an incremental sync with nothing changed, each through the
//! real pipeline (job runner, connections use-case, Audible client signing every request,
//! the database-backed shared budget, merge engine, SQLite store).
//!
//! Each sync runs in a child process of its own (this program started again with
//! `--phase`), so that its peak memory is its own, not the fake's nor the other phase's.
//! Prints wall time, the requests the fake saw per endpoint, and peak RSS per phase.
//!
//! `cargo run --release -p bb-web --example audible_bench -- [TITLES] [WISHLIST] [PER_MINUTE]`
//! (defaults 5000 120 and Audible's declared budget, 120 a minute after a burst of 4).
//! Figures go in BENCHMARKS.md.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss,
    clippy::too_many_lines
)] // a measuring tool, read top to bottom

mod support;

use bb_core::clock::{Clock, SystemClock};
use bb_core::connections::{
    ConnectRequest, Connections, ConnectionsConfig, Provider, RateLimit, SYNC_JOB_KIND,
};
use bb_core::ports::{ConnectionStore, ItemQuery, JobStore, Store};
use bb_jobs::{ConnectionSyncHandler, JobRunner, RunnerConfig};
use bb_providers::audible::{AudibleConfig, AudibleProvider, provider::RATE_LIMIT};
use bb_providers::budget::SharedBudget;
use bb_providers::http::{HttpSettings, build_client};
use bb_testkit::audible::{self as fake, FakeAudibleConfig};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{arg, peak_rss_mb};

/// The connections use-case over the database at `db_url`, with Audible pointed at
/// `base_url` and its requests spent from the shared budget in that database.
async fn pipeline(
    db_url: &str,
    key_file: &Path,
    base_url: &str,
    limit: RateLimit,
) -> (Arc<dyn Store>, Connections) {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = bb_store::open(db_url, false).await.unwrap();
    let (ring, _) = bb_vault::Keyring::load_or_create_file(key_file).unwrap();
    let vault = Arc::new(
        bb_vault::Vault::open(ring, store.clone(), clock.clone())
            .await
            .unwrap(),
    );
    let conn_store: Arc<dyn ConnectionStore> = store.clone();
    let budget = Arc::new(SharedBudget::new(
        conn_store,
        clock.clone(),
        HashMap::from([(bb_providers::audible::PROVIDER_ID.to_owned(), limit)]),
    ));
    let provider: Arc<dyn Provider> = Arc::new(
        AudibleProvider::new(
            AudibleConfig {
                auth_base_url: Some(base_url.to_owned()),
                api_base_url: Some(base_url.to_owned()),
            },
            build_client(HttpSettings::default()).unwrap(),
            clock.clone(),
        )
        .with_budget(budget, Duration::from_mins(2)),
    );
    let connections = support::connections(
        &store,
        vault,
        vec![provider],
        &clock,
        ConnectionsConfig::default(),
    );
    (store, connections)
}

/// Child: drains the queued sync jobs and prints what it measured, one `key=value` a line.
async fn phase(db_url: &str, key_file: &Path, base_url: &str, limit: RateLimit) {
    let (store, connections) = pipeline(db_url, key_file, base_url, limit).await;
    let jobs: Arc<dyn JobStore> = store.clone();
    let started = Instant::now();
    let ran = JobRunner::new(jobs, Arc::new(SystemClock), RunnerConfig::new("bench"))
        .with_handler(
            SYNC_JOB_KIND,
            Arc::new(ConnectionSyncHandler::new(connections)),
        )
        .drain()
        .await
        .unwrap();
    println!("wall_s={:.3}", started.elapsed().as_secs_f64());
    println!("jobs={}", ran.len());
    println!("peak_rss_mb={:.0}", peak_rss_mb());
}

/// Parent: runs one phase in a child process; its `key=value` lines.
fn run_child(
    db_url: &str,
    key_file: &Path,
    base_url: &str,
    limit: RateLimit,
) -> BTreeMap<String, String> {
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--phase",
            db_url,
            &key_file.display().to_string(),
            base_url,
            &limit.capacity.to_string(),
            &limit.per_minute.to_string(),
        ])
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    assert!(out.status.success(), "the phase failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn diff(
    after: &BTreeMap<String, usize>,
    before: &BTreeMap<String, usize>,
) -> BTreeMap<String, usize> {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, v)| *v > 0)
        .collect()
}

fn show(counts: &BTreeMap<String, usize>) -> String {
    let total: usize = counts.values().sum();
    let each: Vec<String> = counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
    format!("{total} ({})", each.join(", "))
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--phase") {
        if std::env::var_os("RUST_LOG").is_some() {
            tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
                .with_writer(std::io::stderr)
                .init();
        }
        let limit = RateLimit {
            capacity: args[5].parse().unwrap(),
            per_minute: args[6].parse().unwrap(),
        };
        phase(&args[2], Path::new(&args[3]), &args[4], limit).await;
        return;
    }
    let titles = arg(1, 5000);
    let wishlist = arg(2, 120);
    let limit = RateLimit {
        per_minute: u32::try_from(arg(3, RATE_LIMIT.per_minute as usize)).unwrap(),
        ..RATE_LIMIT
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let mut fake_config = FakeAudibleConfig::new(clock.clone(), titles);
    fake_config.wishlist = wishlist;
    let fake = fake::start(fake_config).await;

    let dir = tempfile::tempdir().unwrap();
    let db = bb_store::testing::fresh_sqlite(dir.path()).await.unwrap();
    let key_file = dir.path().join("master.key");
    let (store, connections) = pipeline(&db.url, &key_file, &fake.base_url, limit).await;

    // Link through the real paste flow: Amazon's sign-in address, the user signing in
    // (played by the fake), the maplanding address pasted back, device registration.
    let user = store
        .create_user("reader", "$argon2id$bench", clock.now())
        .await
        .unwrap()
        .id;
    let started = connections
        .connect(
            user,
            None,
            ConnectRequest {
                provider: "audible".into(),
                params: BTreeMap::from([("marketplace".to_owned(), "us".to_owned())]),
                ..ConnectRequest::default()
            },
        )
        .await
        .unwrap();
    let landing = fake
        .sign_in(started.authorize_url.as_deref().unwrap())
        .unwrap();
    let linked = connections
        .complete_pasted(user, started.connection.id, &landing, None)
        .await
        .unwrap();
    let id = linked.connection.id;

    // Full sync (linking queued it), in a child process.
    let before = fake.request_counts();
    let full = run_child(&db.url, &key_file, &fake.base_url, limit);
    let after_full = fake.request_counts();
    let full_requests = diff(&after_full, &before);
    let items = store
        .count_items(user, &ItemQuery::default())
        .await
        .unwrap();
    let view = connections.get(user, id).await.unwrap();
    assert!(view.last_error.is_none(), "{:?}", view.last_error);

    // Incremental sync with nothing changed (State-Token), in another child process.
    connections.sync_now(user, id).await.unwrap();
    let incremental = run_child(&db.url, &key_file, &fake.base_url, limit);
    let inc_requests = diff(&fake.request_counts(), &after_full);
    let items_after = store
        .count_items(user, &ItemQuery::default())
        .await
        .unwrap();

    let history = connections.sync_history(user, id, 10).await.unwrap();
    let outcomes: BTreeSet<String> = history.iter().filter_map(|r| r.outcome.clone()).collect();
    println!(
        "titles: {titles}, wishlist: {wishlist}, budget: burst {} + {}/min",
        limit.capacity, limit.per_minute
    );
    println!(
        "full sync: {} s, requests {}, peak RSS {} MB, {items} library items",
        full["wall_s"],
        show(&full_requests),
        full["peak_rss_mb"]
    );
    println!(
        "incremental, nothing changed: {} s, requests {}, peak RSS {} MB",
        incremental["wall_s"],
        show(&inc_requests),
        incremental["peak_rss_mb"]
    );
    println!(
        "runs: {:?}; per run (newest first) created/updated/unchanged: {:?}",
        outcomes,
        history
            .iter()
            .map(|r| (r.created, r.updated, r.unchanged))
            .collect::<Vec<_>>()
    );
    println!("parent (fake + linking) peak RSS: {:.0} MB", peak_rss_mb());
    assert_eq!(items, items_after, "nothing changed, nothing added");
    assert!(items >= titles as u64, "{items} items for {titles} titles");
}
