//! The job runner on real stores, SQLite and PostgreSQL, each on a fresh database.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use bb_core::clock::{Clock, ManualClock};
use bb_core::ports::{JobState, JobStore, NewJob, RunCounts, RunOutcome, Schedule};
use bb_jobs::{
    Backoff, JobContext, JobError, JobHandler, JobOutcome, JobRunner, RunnerConfig, StepOutcome,
};
use bb_store::testing::{TestDb, fresh_postgres, fresh_sqlite};
use bb_store::{PgStore, SqliteStore};
use chrono::{DateTime, TimeZone, Utc};
use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

async fn on_both<F, Fut>(test: &str, check: F)
where
    F: Fn(TestDb) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    check(fresh_sqlite(dir.path()).await.unwrap()).await;
    if let Some(db) = fresh_postgres(test).await.unwrap() {
        check(db).await;
    }
}

/// A store on its own pool: a separate "instance" when called twice.
async fn instance(url: &str) -> Arc<dyn JobStore> {
    if url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(url).await.unwrap())
    } else {
        Arc::new(PgStore::connect(url).await.unwrap())
    }
}

fn config(worker: &str) -> RunnerConfig {
    RunnerConfig {
        lease: Duration::from_mins(1),
        renew_every: Duration::from_millis(20),
        poll_interval: Duration::from_millis(10),
        backoff: Backoff {
            base: Duration::from_secs(10),
            max: Duration::from_mins(10),
            max_retry_after: Duration::from_hours(1),
        },
        ..RunnerConfig::new(worker)
    }
}

fn job(key: &str, max_attempts: u32) -> NewJob {
    NewJob {
        kind: "sync".into(),
        key: key.into(),
        payload: serde_json::json!({}),
        run_at: t0(),
        max_attempts,
    }
}

/// Answers with a fixed result and counts its calls.
struct Fixed {
    result: Result<JobOutcome, JobError>,
    calls: AtomicU32,
}

impl Fixed {
    fn new(result: Result<JobOutcome, JobError>) -> Arc<Self> {
        Arc::new(Self {
            result,
            calls: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl JobHandler for Fixed {
    async fn run(&self, _job: &JobContext) -> Result<JobOutcome, JobError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.result.clone()
    }
}

const COUNTS: RunCounts = RunCounts {
    created: 2,
    updated: 1,
    unchanged: 7,
    removed: 0,
    failed: 1,
};

#[tokio::test]
async fn a_job_runs_and_its_counts_land_in_history() {
    on_both(
        "a_job_runs_and_its_counts_land_in_history",
        |db| async move {
            let store = instance(&db.url).await;
            let clock = Arc::new(ManualClock::new(t0()));
            let handler = Fixed::new(Ok(JobOutcome { counts: COUNTS }));
            let runner = JobRunner::new(store.clone(), clock, config("w"))
                .with_handler("sync", handler.clone());
            let id = store
                .enqueue(&job("connection:1", 3), t0())
                .await
                .unwrap()
                .job
                .id;
            let reports = runner.drain().await.unwrap();
            assert_eq!(reports.len(), 1);
            assert_eq!(reports[0].job_id, id);
            assert_eq!((reports[0].attempt, reports[0].fencing_token), (1, 1));
            assert_eq!(reports[0].outcome, StepOutcome::Succeeded(COUNTS));
            assert!(runner.step().await.unwrap().is_none());
            assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
            assert_eq!(
                store.job(id).await.unwrap().unwrap().state,
                JobState::Succeeded
            );
            let runs = store.job_runs(id).await.unwrap();
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0].counts, COUNTS);
            assert_eq!(runs[0].outcome, Some(RunOutcome::Succeeded));
        },
    )
    .await;
}

#[tokio::test]
async fn retries_back_off_with_bounded_jitter_then_die() {
    on_both(
        "retries_back_off_with_bounded_jitter_then_die",
        |db| async move {
            let store = instance(&db.url).await;
            let clock = Arc::new(ManualClock::new(t0()));
            let cfg = config("w");
            let backoff = cfg.backoff;
            let runner = JobRunner::new(store.clone(), clock.clone(), cfg)
                .with_seed(7)
                .with_handler(
                    "sync",
                    Fixed::new(Err(JobError::retryable("provider_unavailable", "503"))),
                );
            let id = store
                .enqueue(&job("connection:1", 4), t0())
                .await
                .unwrap()
                .job
                .id;
            let mut last_run_at = t0();
            for attempt in 1..=3 {
                let report = runner.step().await.unwrap().unwrap();
                assert_eq!(report.attempt, attempt);
                let StepOutcome::Retrying { run_at, error } = report.outcome else {
                    panic!("expected a retry, got {:?}", report.outcome);
                };
                assert_eq!(error.code, "provider_unavailable");
                let delay = (run_at - clock.now()).to_std().unwrap();
                assert!(
                    delay <= backoff.ceiling(attempt),
                    "attempt {attempt}: {delay:?} over {:?}",
                    backoff.ceiling(attempt)
                );
                assert!(run_at >= last_run_at);
                last_run_at = run_at;
                // Not due before run_at.
                if run_at > clock.now() {
                    assert!(runner.step().await.unwrap().is_none());
                }
                clock.advance(run_at - clock.now());
            }
            let last = runner.step().await.unwrap().unwrap();
            assert_eq!(last.attempt, 4);
            assert!(matches!(last.outcome, StepOutcome::Dead(_)), "{last:?}");
            assert_eq!(store.job(id).await.unwrap().unwrap().state, JobState::Dead);
            let outcomes: Vec<_> = store
                .job_runs(id)
                .await
                .unwrap()
                .iter()
                .map(|r| r.outcome)
                .collect();
            assert_eq!(
                outcomes,
                vec![
                    Some(RunOutcome::Retry),
                    Some(RunOutcome::Retry),
                    Some(RunOutcome::Retry),
                    Some(RunOutcome::Dead)
                ]
            );
        },
    )
    .await;
}

#[test]
fn full_jitter_stays_under_a_doubling_ceiling_and_spreads() {
    use rand::SeedableRng;
    let backoff = Backoff {
        base: Duration::from_secs(10),
        max: Duration::from_mins(10),
        max_retry_after: Duration::from_hours(1),
    };
    assert_eq!(backoff.ceiling(1), Duration::from_secs(10));
    assert_eq!(backoff.ceiling(2), Duration::from_secs(20));
    assert_eq!(backoff.ceiling(4), Duration::from_secs(80));
    assert_eq!(backoff.ceiling(7), Duration::from_mins(10));
    assert_eq!(backoff.ceiling(u32::MAX), Duration::from_mins(10));
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    for attempt in 1..=8 {
        let delays: Vec<_> = (0..500)
            .map(|_| backoff.delay(attempt, None, &mut rng))
            .collect();
        let top = *delays.iter().max().unwrap();
        assert!(top <= backoff.ceiling(attempt));
        assert!(top >= backoff.ceiling(attempt) * 9 / 10, "jitter spreads");
        assert!(*delays.iter().min().unwrap() <= backoff.ceiling(attempt) / 10);
    }
    // Retry-After is a floor, capped by max_retry_after.
    let asked = Duration::from_mins(2);
    for _ in 0..100 {
        let d = backoff.delay(1, Some(asked), &mut rng);
        assert_eq!(d, asked);
    }
    let huge = backoff.delay(1, Some(Duration::from_secs(1_000_000)), &mut rng);
    assert_eq!(huge, Duration::from_hours(1));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    on_both("retry_after_is_honoured", |db| async move {
        let store = instance(&db.url).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let runner = JobRunner::new(store.clone(), clock.clone(), config("w")).with_handler(
            "sync",
            Fixed::new(Err(JobError::retry_after(
                "rate_limited",
                "429",
                Duration::from_mins(15),
            ))),
        );
        store.enqueue(&job("connection:1", 5), t0()).await.unwrap();
        let report = runner.step().await.unwrap().unwrap();
        let StepOutcome::Retrying { run_at, .. } = report.outcome else {
            panic!("{report:?}");
        };
        assert_eq!(run_at, t0() + chrono::Duration::seconds(900));
        clock.advance(chrono::Duration::seconds(899));
        assert!(runner.step().await.unwrap().is_none());
        clock.advance(chrono::Duration::seconds(1));
        assert!(runner.step().await.unwrap().is_some());
    })
    .await;
}

#[tokio::test]
async fn a_permanent_error_fails_without_retry() {
    on_both("a_permanent_error_fails_without_retry", |db| async move {
        let store = instance(&db.url).await;
        let clock = Arc::new(ManualClock::new(t0()));
        let handler = Fixed::new(Err(JobError::permanent(
            "bad_credentials",
            "token rejected",
        )));
        let runner =
            JobRunner::new(store.clone(), clock, config("w")).with_handler("sync", handler.clone());
        let id = store
            .enqueue(&job("connection:1", 5), t0())
            .await
            .unwrap()
            .job
            .id;
        let reports = runner.drain().await.unwrap();
        assert_eq!(reports.len(), 1);
        assert!(
            matches!(reports[0].outcome, StepOutcome::Failed(ref e) if e.code == "bad_credentials")
        );
        let job = store.job(id).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Failed);
        assert_eq!(job.last_error.unwrap().message, "token rejected");
        assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
    })
    .await;
}

/// Blocks until released, after recording progress; returns `COUNTS`.
struct Blocking {
    started: Notify,
    release: Notify,
}

#[async_trait]
impl JobHandler for Blocking {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError> {
        job.set_progress(&serde_json::json!({ "worker": "a" }))
            .await?;
        self.started.notify_one();
        self.release.notified().await;
        Ok(JobOutcome { counts: COUNTS })
    }
}

#[tokio::test]
async fn a_stalled_worker_is_taken_over_and_its_result_refused() {
    on_both(
        "a_stalled_worker_is_taken_over_and_its_result_refused",
        |db| async move {
            let clock = Arc::new(ManualClock::new(t0()));
            let store_a = instance(&db.url).await;
            let store_b = instance(&db.url).await;
            let blocking = Arc::new(Blocking {
                started: Notify::new(),
                release: Notify::new(),
            });
            // Worker a never renews (as if frozen), so its lease runs out on the clock.
            let slow = RunnerConfig {
                renew_every: Duration::from_hours(1),
                ..config("a")
            };
            let a = Arc::new(
                JobRunner::new(store_a.clone(), clock.clone(), slow)
                    .with_handler("sync", blocking.clone()),
            );
            let fast = Fixed::new(Ok(JobOutcome {
                counts: RunCounts {
                    created: 5,
                    ..RunCounts::default()
                },
            }));
            let b = JobRunner::new(store_b.clone(), clock.clone(), config("b"))
                .with_handler("sync", fast.clone());
            let id = store_a
                .enqueue(&job("connection:1", 3), t0())
                .await
                .unwrap()
                .job
                .id;

            let a_step = tokio::spawn({
                let a = a.clone();
                async move { a.step().await.unwrap().unwrap() }
            });
            blocking.started.notified().await;
            assert!(b.step().await.unwrap().is_none(), "lease still live");
            clock.advance(chrono::Duration::seconds(61));
            let taken = b.step().await.unwrap().unwrap();
            assert_eq!((taken.attempt, taken.fencing_token), (2, 2));
            assert!(matches!(taken.outcome, StepOutcome::Succeeded(_)));

            blocking.release.notify_one();
            let stale = a_step.await.unwrap();
            assert_eq!(stale.fencing_token, 1);
            assert_eq!(stale.outcome, StepOutcome::LeaseLost);

            let job = store_a.job(id).await.unwrap().unwrap();
            assert_eq!(job.state, JobState::Succeeded);
            let runs = store_a.job_runs(id).await.unwrap();
            assert_eq!(runs.len(), 2);
            assert_eq!(runs[0].worker, "a");
            assert_eq!(runs[0].outcome, Some(RunOutcome::LeaseExpired));
            assert_eq!(runs[0].counts, RunCounts::default(), "a's counts refused");
            assert_eq!(runs[1].worker, "b");
            assert_eq!(runs[1].counts.created, 5);
            assert_eq!(fast.calls.load(Ordering::SeqCst), 1);
        },
    )
    .await;
}

/// Tracks how many runs of each key are in flight at once.
#[derive(Default)]
struct Overlap {
    running: Mutex<HashMap<String, u32>>,
    worst: AtomicU32,
    runs: AtomicU32,
}

#[async_trait]
impl JobHandler for Overlap {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError> {
        let now = {
            let mut running = self.running.lock().unwrap();
            let n = running.entry(job.key().to_owned()).or_default();
            *n += 1;
            *n
        };
        self.worst.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        *self.running.lock().unwrap().get_mut(job.key()).unwrap() -= 1;
        self.runs.fetch_add(1, Ordering::SeqCst);
        Ok(JobOutcome::default())
    }
}

#[tokio::test]
async fn two_runners_never_run_one_key_twice_at_once() {
    on_both(
        "two_runners_never_run_one_key_twice_at_once",
        |db| async move {
            let clock = Arc::new(ManualClock::new(t0()));
            let handler = Arc::new(Overlap::default());
            let mut runners = Vec::new();
            for name in ["a", "b"] {
                let store = instance(&db.url).await;
                runners.push(Arc::new(
                    JobRunner::new(store, clock.clone(), config(name))
                        .with_handler("sync", handler.clone()),
                ));
            }
            let store = instance(&db.url).await;
            let mut created = 0u32;
            let workers: Vec<_> = runners
                .iter()
                .map(|r| {
                    let r = r.clone();
                    tokio::spawn(async move {
                        for _ in 0..200 {
                            if r.step().await.unwrap().is_none() {
                                tokio::time::sleep(Duration::from_millis(2)).await;
                            }
                        }
                    })
                })
                .collect();
            // Keep enqueueing onto three keys while both runners claim.
            for round in 0..30 {
                let key = format!("connection:{}", round % 3);
                created += u32::from(store.enqueue(&job(&key, 3), t0()).await.unwrap().created);
                tokio::time::sleep(Duration::from_millis(3)).await;
            }
            for w in workers {
                w.await.unwrap();
            }
            for r in &runners {
                r.drain().await.unwrap();
            }
            assert_eq!(
                handler.worst.load(Ordering::SeqCst),
                1,
                "one run per key at a time"
            );
            assert_eq!(
                handler.runs.load(Ordering::SeqCst),
                created,
                "every job ran once"
            );
        },
    )
    .await;
}

#[tokio::test]
async fn a_schedule_fires_once_across_two_instances() {
    on_both(
        "a_schedule_fires_once_across_two_instances",
        |db| async move {
            let clock = Arc::new(ManualClock::new(t0()));
            let handler = Fixed::new(Ok(JobOutcome::default()));
            let a = JobRunner::new(instance(&db.url).await, clock.clone(), config("a"))
                .with_handler("sync", handler.clone());
            let b = JobRunner::new(instance(&db.url).await, clock.clone(), config("b"))
                .with_handler("sync", handler.clone());
            let store = instance(&db.url).await;
            store
                .put_schedule(
                    &Schedule {
                        key: "connection:1".into(),
                        kind: "sync".into(),
                        payload: serde_json::json!({ "connection": 1 }),
                        interval: chrono::Duration::from_std(bb_jobs::DEFAULT_SCHEDULE_INTERVAL)
                            .unwrap(),
                        max_attempts: 3,
                        next_run_at: t0(),
                    },
                    t0(),
                )
                .await
                .unwrap();
            for round in 0..3 {
                let (sa, sb) = (a.scheduler(), b.scheduler());
                let (fa, fb) = tokio::join!(sa.tick(10), sb.tick(10));
                let fired = fa.unwrap().len() + fb.unwrap().len();
                assert_eq!(fired, 1, "round {round}");
                let (ra, rb) = tokio::join!(a.drain(), b.drain());
                assert_eq!(ra.unwrap().len() + rb.unwrap().len(), 1);
                // Nothing more until the next interval.
                assert!(a.scheduler().tick(10).await.unwrap().is_empty());
                clock.advance(chrono::Duration::hours(12));
            }
            assert_eq!(handler.calls.load(Ordering::SeqCst), 3);
            assert_eq!(
                store
                    .schedule("connection:1")
                    .await
                    .unwrap()
                    .unwrap()
                    .next_run_at,
                t0() + chrono::Duration::hours(36)
            );
        },
    )
    .await;
}

#[test]
fn next_run_keeps_the_phase_and_skips_missed_runs() {
    let h = chrono::Duration::hours;
    assert_eq!(bb_jobs::next_run_after(t0(), h(12), t0()), t0() + h(12));
    assert_eq!(
        bb_jobs::next_run_after(t0(), h(12), t0() + h(1)),
        t0() + h(12)
    );
    // A week offline: one catch-up run now, then back on the grid.
    assert_eq!(
        bb_jobs::next_run_after(t0(), h(12), t0() + h(24 * 7) + h(1)),
        t0() + h(24 * 7) + h(12)
    );
}

// ---- A real process killed with SIGKILL mid-run ----

const CHILD_DB: &str = "BB_JOBS_TEST_CHILD_DB";

/// Claims, records progress, says so on stdout, then never finishes.
struct Hang;
#[async_trait]
impl JobHandler for Hang {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError> {
        job.set_progress(&serde_json::json!({ "child": std::process::id() }))
            .await?;
        println!("CLAIMED {}", job.fencing_token());
        std::future::pending::<()>().await;
        Ok(JobOutcome::default())
    }
}

/// Not a test on its own: the kill test runs this test binary again with `CHILD_DB` set,
/// and this claims the job, records progress, says so and hangs until killed.
#[tokio::test]
async fn child_process_claims_and_hangs() {
    let Ok(url) = std::env::var(CHILD_DB) else {
        return;
    };
    let clock = Arc::new(ManualClock::new(t0()));
    let runner = JobRunner::new(instance(&url).await, clock, config("child"))
        .with_handler("sync", Arc::new(Hang));
    runner.step().await.unwrap();
}

#[tokio::test]
async fn a_sigkilled_worker_is_taken_over_after_its_lease() {
    use tokio::io::AsyncBufReadExt;
    on_both(
        "a_sigkilled_worker_is_taken_over_after_its_lease",
        |db| async move {
            let store = instance(&db.url).await;
            let id = store
                .enqueue(&job("connection:1", 3), t0())
                .await
                .unwrap()
                .job
                .id;
            let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
                .args(["child_process_claims_and_hangs", "--exact", "--nocapture"])
                .env(CHILD_DB, &db.url)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
            tokio::time::timeout(Duration::from_mins(1), async {
                while let Some(line) = lines.next_line().await.unwrap() {
                    if line.starts_with("CLAIMED") {
                        return;
                    }
                }
                panic!("the child exited without claiming");
            })
            .await
            .unwrap();
            // SIGKILL: no destructor, no cleanup, the lease simply stops being renewed.
            child.kill().await.unwrap();
            let mid = store.job(id).await.unwrap().unwrap();
            assert_eq!(mid.state, JobState::Running);
            assert_eq!(mid.lease_owner.as_deref(), Some("child"));
            assert!(mid.progress.get("child").is_some());

            let clock = Arc::new(ManualClock::new(t0()));
            let handler = Fixed::new(Ok(JobOutcome { counts: COUNTS }));
            let runner = JobRunner::new(store.clone(), clock.clone(), config("survivor"))
                .with_handler("sync", handler.clone());
            assert!(runner.step().await.unwrap().is_none(), "lease still live");
            clock.advance(chrono::Duration::seconds(61));
            let report = runner.step().await.unwrap().unwrap();
            assert_eq!((report.attempt, report.fencing_token), (2, 2));
            assert_eq!(report.outcome, StepOutcome::Succeeded(COUNTS));
            assert!(runner.step().await.unwrap().is_none());

            let runs = store.job_runs(id).await.unwrap();
            assert_eq!(runs.len(), 2);
            assert_eq!(
                (runs[0].worker.as_str(), runs[0].outcome),
                ("child", Some(RunOutcome::LeaseExpired))
            );
            assert_eq!(
                (runs[1].worker.as_str(), runs[1].outcome),
                ("survivor", Some(RunOutcome::Succeeded))
            );
            assert_eq!(handler.calls.load(Ordering::SeqCst), 1);
        },
    )
    .await;
}
