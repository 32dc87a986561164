//! The connections benchmark: N users each link one Hardcover account (M books) on the
//! fake Hardcover over loopback, then job runners sync them all through the real pipeline
//! (connections use-case, shared database budget, Hardcover client, merge engine, store).
//! Prints total time, items/s, peak memory, and the most requests the fake saw in any
//! minute against what the shared budget allows.
//!
//! `cargo run --release -p bb-web --example sync_bench -- [CONNECTIONS] [BOOKS] [RUNNERS]`
//! (defaults 1000 200 4). Figures go in BENCHMARKS.md.

#![allow(
    clippy::unwrap_used,
    clippy::cast_precision_loss,
    clippy::too_many_lines
)] // a measuring tool, read top to bottom

mod support;

use bb_core::clock::{Clock, SystemClock};
use bb_core::connections::{ConnectRequest, ConnectionsConfig, Provider, RateLimit, SYNC_JOB_KIND};
use bb_core::ports::{ConnectionStore, JobStore, Store};
use bb_jobs::{ConnectionSyncHandler, JobRunner, RunnerConfig};
use bb_providers::budget::SharedBudget;
use bb_providers::hardcover::{HardcoverConfig, HardcoverProvider};
use bb_testkit::hardcover::{self as fake, FakeAccount, FakeHardcoverConfig};
use secrecy::SecretString;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{arg, current_rss_mb, peak_rss_mb};

/// Outbound budget for the run: a burst of 50, then 3,000 a minute (50 a second).
const LIMIT: RateLimit = RateLimit {
    capacity: 50,
    per_minute: 3_000,
};

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let connections_n = arg(1, 1000);
    let books = arg(2, 200);
    let runners = arg(3, 4);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);

    let accounts: Vec<FakeAccount> = (0..connections_n)
        .map(|i| FakeAccount {
            token: format!("bench-token-{i}"),
            user_id: 100_000 + i64::try_from(i).unwrap(),
            username: format!("reader{i}"),
            books,
        })
        .collect();
    let mut fake_config = FakeHardcoverConfig::new(clock.clone(), books);
    fake_config.accounts = accounts;
    let fake = fake::start(fake_config).await;
    // The fake runs in this process: its seeded rows are part of the peak, so say how much.
    let fake_rss = current_rss_mb();

    let dir = tempfile::tempdir().unwrap();
    let db = bb_store::testing::fresh_sqlite(dir.path()).await.unwrap();
    let store: Arc<dyn Store> = db.store.clone();
    let conn_store: Arc<dyn ConnectionStore> = store.clone();
    let budget = Arc::new(SharedBudget::new(
        conn_store,
        clock.clone(),
        HashMap::from([("hardcover".to_owned(), LIMIT)]),
    ));
    let provider: Arc<dyn Provider> = Arc::new(HardcoverProvider::new(
        HardcoverConfig {
            base_url: fake.base_url.clone(),
            max_budget_wait: Duration::from_mins(2),
            ..HardcoverConfig::default()
        },
        budget,
        clock.clone(),
        LIMIT,
    ));
    let ring = bb_vault::Keyring::single(bb_vault::MasterKey::generate().unwrap());
    let vault = Arc::new(
        bb_vault::Vault::open(ring, store.clone(), clock.clone())
            .await
            .unwrap(),
    );
    let jobs: Arc<dyn JobStore> = store.clone();
    let connections = support::connections(
        &store,
        vault,
        vec![provider],
        &clock,
        ConnectionsConfig {
            connect_per_hour: 1_000_000,
            ..ConnectionsConfig::default()
        },
    );

    // Link every account (each validates its token with `me`, and queues its first sync).
    let started = Instant::now();
    for i in 0..connections_n {
        let user = store
            .create_user(&format!("user{i}"), "$argon2id$bench", clock.now())
            .await
            .unwrap()
            .id;
        connections
            .connect(
                user,
                None,
                ConnectRequest {
                    provider: "hardcover".into(),
                    token: Some(SecretString::from(format!("bench-token-{i}"))),
                    ..ConnectRequest::default()
                },
            )
            .await
            .unwrap();
    }
    let linked = started.elapsed();

    // Sync them all with several runners, as several workers would.
    let sync_started = Instant::now();
    let mut tasks = Vec::new();
    for r in 0..runners {
        let runner = JobRunner::new(
            jobs.clone(),
            clock.clone(),
            RunnerConfig::new(format!("bench-{r}")),
        )
        .with_handler(
            SYNC_JOB_KIND,
            Arc::new(ConnectionSyncHandler::new(connections.clone())),
        );
        tasks.push(tokio::spawn(
            async move { runner.drain().await.unwrap().len() },
        ));
    }
    let mut ran = 0;
    for t in tasks {
        ran += t.await.unwrap();
    }
    let synced = sync_started.elapsed();

    let items = connections_n * books;
    let stored: u64 = {
        let mut total = 0;
        for i in 0..connections_n {
            let user = store
                .user_by_name(&format!("user{i}"))
                .await
                .unwrap()
                .unwrap()
                .id;
            total += store
                .count_items(user, &bb_core::ports::ItemQuery::default())
                .await
                .unwrap();
        }
        total
    };
    let max_minute = fake.max_billed_in_window(chrono::Duration::minutes(1));
    let allowed = (LIMIT.capacity + LIMIT.per_minute) as usize;
    println!("connections: {connections_n}, books each: {books}, runners: {runners}");
    println!(
        "link (me + first sync queued): {:.1} s",
        linked.as_secs_f64()
    );
    println!(
        "sync: {ran} jobs, {items} books in {:.1} s = {:.0} books/s ({stored} library items after merging)",
        synced.as_secs_f64(),
        items as f64 / synced.as_secs_f64()
    );
    println!(
        "requests to the fake: {} total, {} answered 429, at most {max_minute} in any minute \
         (budget allows {allowed} = burst {} + {}/min)",
        fake.request_count(),
        fake.rate_limited_count(),
        LIMIT.capacity,
        LIMIT.per_minute
    );
    let peak = peak_rss_mb();
    println!(
        "peak RSS: {peak:.0} MB; the in-process fake's seeded rows hold {fake_rss:.0} MB of it, \
         so bookbridge's own peak is about {:.0} MB",
        peak - fake_rss
    );
    assert!(max_minute <= allowed, "the shared budget was exceeded");
    // The seeded libraries hold a few editions of one work, which the merge engine joins:
    // a handful fewer items than books is expected, more than 1 in 1,000 is not.
    assert!(
        stored <= items as u64 && stored * 1000 >= items as u64 * 999,
        "{stored} items stored for {items} books"
    );
}
