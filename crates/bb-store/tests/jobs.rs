//! The job store contract, on SQLite and on PostgreSQL, each on a fresh database.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use bb_core::ports::{
    Finish, JobFailure, JobState, JobStore, LeaseStatus, NewJob, RunCounts, RunOutcome, Schedule,
};
use bb_store::testing::{TestDb, on_both};
use bb_store::{PgStore, SqliteStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

fn jobs(db: &TestDb) -> Arc<dyn JobStore> {
    match (&db.sqlite, &db.postgres) {
        (Some(s), _) => Arc::new(s.clone()),
        (_, Some(p)) => Arc::new(p.clone()),
        _ => unreachable!(),
    }
}

/// A second instance on the same database: its own pool.
async fn second_instance(db: &TestDb) -> Arc<dyn JobStore> {
    if db.sqlite.is_some() {
        Arc::new(SqliteStore::connect(&db.url).await.unwrap())
    } else {
        Arc::new(PgStore::connect(&db.url).await.unwrap())
    }
}

fn sync_job(key: &str) -> NewJob {
    NewJob {
        kind: "sync".into(),
        key: key.into(),
        payload: serde_json::json!({ "key": key }),
        run_at: t0(),
        max_attempts: 3,
    }
}

const SYNC: &[&str] = &["sync"];

#[tokio::test]
async fn enqueue_claim_finish_records_history() {
    on_both("enqueue_claim_finish_records_history", |db| async move {
        let s = jobs(&db);
        let e = s.enqueue(&sync_job("connection:1"), t0()).await.unwrap();
        assert!(e.created);
        assert_eq!(e.job.state, JobState::Queued);
        assert_eq!(e.job.attempts, 0);
        assert_eq!(e.job.payload["key"], "connection:1");

        let job = s
            .claim("w1", SYNC, t0(), Duration::minutes(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, e.job.id);
        assert_eq!(job.state, JobState::Running);
        assert_eq!((job.attempts, job.fencing_token), (1, 1));
        assert_eq!(job.lease_owner.as_deref(), Some("w1"));
        assert_eq!(job.lease_expires_at, Some(t0() + Duration::minutes(5)));
        assert_eq!(job.started_at, Some(t0()));
        assert!(
            s.claim("w2", SYNC, t0(), Duration::minutes(5))
                .await
                .unwrap()
                .is_none(),
            "a running job with a live lease is not claimed twice"
        );

        let progress = serde_json::json!({ "done": 3, "total": 10 });
        assert_eq!(
            s.set_progress(job.lease(), &progress).await.unwrap(),
            LeaseStatus::Held
        );
        let counts = RunCounts {
            created: 1,
            updated: 2,
            unchanged: 3,
            removed: 4,
            failed: 5,
        };
        let end = t0() + Duration::seconds(7);
        assert_eq!(
            s.finish(job.lease(), end, &Finish::Succeeded { counts })
                .await
                .unwrap(),
            LeaseStatus::Held
        );
        let done = s.job(job.id).await.unwrap().unwrap();
        assert_eq!(done.state, JobState::Succeeded);
        assert_eq!(done.finished_at, Some(end));
        assert_eq!(done.progress, progress);
        assert_eq!(done.lease_owner, None);

        let runs = s.job_runs(job.id).await.unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].attempt, 1);
        assert_eq!(runs[0].worker, "w1");
        assert_eq!(runs[0].started_at, t0());
        assert_eq!(runs[0].finished_at, Some(end));
        assert_eq!(runs[0].outcome, Some(RunOutcome::Succeeded));
        assert_eq!(runs[0].counts, counts);
        // A second finish (e.g. a retried request) is refused: the job is no longer running.
        assert_eq!(
            s.finish(job.lease(), end, &Finish::Succeeded { counts })
                .await
                .unwrap(),
            LeaseStatus::Lost
        );
    })
    .await;
}

#[tokio::test]
async fn one_active_job_per_key() {
    on_both("one_active_job_per_key", |db| async move {
        let s = jobs(&db);
        let first = s.enqueue(&sync_job("connection:7"), t0()).await.unwrap();
        let again = s.enqueue(&sync_job("connection:7"), t0()).await.unwrap();
        assert!(!again.created);
        assert_eq!(again.job.id, first.job.id);
        let other = s.enqueue(&sync_job("connection:8"), t0()).await.unwrap();
        assert!(other.created);

        // Still deduplicated while running.
        let job = s
            .claim("w", SYNC, t0(), Duration::minutes(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(job.id, first.job.id, "the oldest due job first");
        let while_running = s.enqueue(&sync_job("connection:7"), t0()).await.unwrap();
        assert!(!while_running.created);
        assert_eq!(while_running.job.state, JobState::Running);

        // Once finished, the key takes a new job.
        assert_eq!(
            s.finish(
                job.lease(),
                t0(),
                &Finish::Succeeded {
                    counts: RunCounts::default(),
                },
            )
            .await
            .unwrap(),
            LeaseStatus::Held
        );
        let next = s.enqueue(&sync_job("connection:7"), t0()).await.unwrap();
        assert!(next.created);
        assert_ne!(next.job.id, first.job.id);
        assert_eq!(s.jobs_for_key("connection:7", 10).await.unwrap().len(), 2);
    })
    .await;
}

#[tokio::test]
async fn concurrent_enqueues_of_one_key_make_one_job() {
    on_both(
        "concurrent_enqueues_of_one_key_make_one_job",
        |db| async move {
            let a = jobs(&db);
            let b = second_instance(&db).await;
            let mut tasks = Vec::new();
            for i in 0..16 {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tasks.push(tokio::spawn(async move {
                    s.enqueue(&sync_job("connection:1"), t0()).await.unwrap()
                }));
            }
            let mut created = 0;
            let mut ids = std::collections::BTreeSet::new();
            for t in tasks {
                let e = t.await.unwrap();
                created += usize::from(e.created);
                ids.insert(e.job.id);
            }
            assert_eq!(created, 1);
            assert_eq!(ids.len(), 1);
        },
    )
    .await;
}

#[tokio::test]
async fn the_database_refuses_a_second_running_job_per_key() {
    on_both(
        "the_database_refuses_a_second_running_job_per_key",
        |db| async move {
            let s = jobs(&db);
            s.enqueue(&sync_job("connection:1"), t0()).await.unwrap();
            // Bypass the port: even a buggy writer cannot have two active jobs on a key.
            let sql =
                "INSERT INTO jobs (kind, key, payload, state, run_at, max_attempts, created_at)
                       VALUES ('sync', 'connection:1', '{}', 'running', 0, 1, 0)";
            let refused = if let Some(s) = &db.sqlite {
                sqlx::query(sql).execute(s.pool()).await.is_err()
            } else {
                sqlx::query(sql)
                    .execute(db.postgres.as_ref().unwrap().pool())
                    .await
                    .is_err()
            };
            assert!(refused);
        },
    )
    .await;
}

#[tokio::test]
async fn claim_respects_run_at_and_kinds() {
    on_both("claim_respects_run_at_and_kinds", |db| async move {
        let s = jobs(&db);
        let mut later = sync_job("connection:1");
        later.run_at = t0() + Duration::minutes(10);
        s.enqueue(&later, t0()).await.unwrap();
        let mut other = sync_job("connection:2");
        other.kind = "refresh".into();
        s.enqueue(&other, t0()).await.unwrap();

        let lease = Duration::minutes(1);
        assert!(s.claim("w", SYNC, t0(), lease).await.unwrap().is_none());
        assert!(s.claim("w", &[], t0(), lease).await.unwrap().is_none());
        let refresh = s
            .claim("w", &["refresh", "sync"], t0(), lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(refresh.kind, "refresh");
        let due = s
            .claim("w", SYNC, t0() + Duration::minutes(10), lease)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(due.key, "connection:1");
    })
    .await;
}

#[tokio::test]
async fn an_expired_lease_is_taken_over_and_the_stale_worker_is_fenced_off() {
    on_both(
        "an_expired_lease_is_taken_over_and_the_stale_worker_is_fenced_off",
        |db| async move {
            let s = jobs(&db);
            let lease = Duration::minutes(1);
            s.enqueue(&sync_job("connection:1"), t0()).await.unwrap();
            let a = s.claim("a", SYNC, t0(), lease).await.unwrap().unwrap();
            // Renewal keeps the job while the worker lives.
            let t1 = t0() + Duration::seconds(50);
            assert_eq!(
                s.renew_lease(a.lease(), t1 + lease).await.unwrap(),
                LeaseStatus::Held
            );
            assert!(
                s.claim("b", SYNC, t1 + Duration::seconds(30), lease)
                    .await
                    .unwrap()
                    .is_none()
            );

            // Worker a stops renewing (killed); once the lease ran out, b takes over.
            let t2 = t1 + lease + Duration::seconds(1);
            let b = s.claim("b", SYNC, t2, lease).await.unwrap().unwrap();
            assert_eq!(b.id, a.id);
            assert_eq!((b.attempts, b.fencing_token), (2, 2));
            assert_eq!(b.lease_owner.as_deref(), Some("b"));

            // Everything a still tries to write is refused.
            assert_eq!(
                s.renew_lease(a.lease(), t2 + lease).await.unwrap(),
                LeaseStatus::Lost
            );
            assert_eq!(
                s.set_progress(a.lease(), &serde_json::json!("stale"))
                    .await
                    .unwrap(),
                LeaseStatus::Lost
            );
            let stale = Finish::Succeeded {
                counts: RunCounts {
                    created: 99,
                    ..RunCounts::default()
                },
            };
            assert_eq!(
                s.finish(a.lease(), t2, &stale).await.unwrap(),
                LeaseStatus::Lost
            );
            let counts = RunCounts {
                created: 1,
                ..RunCounts::default()
            };
            assert_eq!(
                s.finish(b.lease(), t2, &Finish::Succeeded { counts })
                    .await
                    .unwrap(),
                LeaseStatus::Held
            );

            let runs = s.job_runs(a.id).await.unwrap();
            assert_eq!(runs.len(), 2);
            assert_eq!(
                (runs[0].worker.as_str(), runs[0].outcome),
                ("a", Some(RunOutcome::LeaseExpired))
            );
            assert_eq!(runs[0].finished_at, Some(t2));
            assert_eq!(runs[0].error.as_ref().unwrap().code, "lease_expired");
            assert_eq!(
                (runs[1].worker.as_str(), runs[1].outcome),
                ("b", Some(RunOutcome::Succeeded))
            );
            assert_eq!(runs[1].counts, counts);
            let job = s.job(a.id).await.unwrap().unwrap();
            assert_eq!(job.state, JobState::Succeeded);
            assert_eq!(job.progress, serde_json::Value::Null);
        },
    )
    .await;
}

#[tokio::test]
async fn an_expired_lease_without_attempts_left_is_dead() {
    on_both(
        "an_expired_lease_without_attempts_left_is_dead",
        |db| async move {
            let s = jobs(&db);
            let mut job = sync_job("connection:1");
            job.max_attempts = 1;
            s.enqueue(&job, t0()).await.unwrap();
            let a = s
                .claim("a", SYNC, t0(), Duration::minutes(1))
                .await
                .unwrap()
                .unwrap();
            let later = t0() + Duration::minutes(2);
            assert!(
                s.claim("b", SYNC, later, Duration::minutes(1))
                    .await
                    .unwrap()
                    .is_none()
            );
            let dead = s.job(a.id).await.unwrap().unwrap();
            assert_eq!(dead.state, JobState::Dead);
            assert_eq!(dead.last_error.unwrap().code, "lease_expired");
            assert_eq!(dead.finished_at, Some(later));
            let runs = s.job_runs(a.id).await.unwrap();
            assert_eq!(runs.len(), 1);
            assert_eq!(runs[0].outcome, Some(RunOutcome::LeaseExpired));
        },
    )
    .await;
}

#[tokio::test]
async fn retry_failed_and_dead_are_recorded() {
    on_both("retry_failed_and_dead_are_recorded", |db| async move {
        let s = jobs(&db);
        let lease = Duration::minutes(1);
        let e = s.enqueue(&sync_job("connection:1"), t0()).await.unwrap();
        let a = s.claim("w", SYNC, t0(), lease).await.unwrap().unwrap();
        let run_at = t0() + Duration::minutes(3);
        let error = JobFailure::new("provider_unavailable", "the provider answered 503");
        assert_eq!(
            s.finish(
                a.lease(),
                t0(),
                &Finish::Retry {
                    run_at,
                    error: error.clone(),
                },
            )
            .await
            .unwrap(),
            LeaseStatus::Held
        );
        let queued = s.job(e.job.id).await.unwrap().unwrap();
        assert_eq!(queued.state, JobState::Queued);
        assert_eq!(queued.run_at, run_at);
        assert_eq!(queued.last_error.as_ref(), Some(&error));
        assert_eq!(queued.finished_at, None);
        assert!(s.claim("w", SYNC, t0(), lease).await.unwrap().is_none());

        let b = s.claim("w", SYNC, run_at, lease).await.unwrap().unwrap();
        assert_eq!(b.attempts, 2);
        let fatal = JobFailure::new("bad_credentials", "the token was rejected");
        assert_eq!(
            s.finish(
                b.lease(),
                run_at,
                &Finish::Failed {
                    error: fatal.clone(),
                },
            )
            .await
            .unwrap(),
            LeaseStatus::Held
        );
        let failed = s.job(e.job.id).await.unwrap().unwrap();
        assert_eq!(failed.state, JobState::Failed);
        assert_eq!(failed.last_error, Some(fatal.clone()));
        assert_eq!(failed.finished_at, Some(run_at));

        let runs = s.job_runs(e.job.id).await.unwrap();
        let outcomes: Vec<_> = runs.iter().map(|r| r.outcome).collect();
        assert_eq!(
            outcomes,
            vec![Some(RunOutcome::Retry), Some(RunOutcome::Failed)]
        );
        assert_eq!(runs[0].error, Some(error));
        assert_eq!(runs[1].error, Some(fatal));
    })
    .await;
}

#[tokio::test]
async fn concurrent_claimers_take_each_job_once() {
    on_both("concurrent_claimers_take_each_job_once", |db| async move {
        let a = jobs(&db);
        let b = second_instance(&db).await;
        for i in 0..30 {
            a.enqueue(&sync_job(&format!("connection:{i}")), t0())
                .await
                .unwrap();
        }
        let claimer = |s: Arc<dyn JobStore>, name: &'static str| {
            tokio::spawn(async move {
                let mut got = Vec::new();
                while let Some(job) = s
                    .claim(name, SYNC, t0(), Duration::minutes(5))
                    .await
                    .unwrap()
                {
                    got.push(job.id);
                }
                got
            })
        };
        let (ga, gb) = tokio::join!(claimer(a.clone(), "a"), claimer(b, "b"));
        let mut all: Vec<_> = ga.unwrap().into_iter().chain(gb.unwrap()).collect();
        all.sort();
        let n = all.len();
        all.dedup();
        assert_eq!(n, 30, "every job claimed");
        assert_eq!(all.len(), 30, "no job claimed twice");
    })
    .await;
}

#[tokio::test]
async fn a_due_schedule_fires_once_across_instances() {
    on_both(
        "a_due_schedule_fires_once_across_instances",
        |db| async move {
            let a = jobs(&db);
            let b = second_instance(&db).await;
            let schedule = Schedule {
                key: "connection:1".into(),
                kind: "sync".into(),
                payload: serde_json::json!({ "connection": 1 }),
                interval: Duration::hours(12),
                max_attempts: 5,
                next_run_at: t0(),
            };
            a.put_schedule(&schedule, t0()).await.unwrap();
            assert!(
                a.due_schedules(t0() - Duration::seconds(1), 10)
                    .await
                    .unwrap()
                    .is_empty()
            );
            let due_a = a.due_schedules(t0(), 10).await.unwrap();
            let due_b = b.due_schedules(t0(), 10).await.unwrap();
            assert_eq!(due_a, vec![schedule.clone()]);
            let next = t0() + Duration::hours(12);
            let (fa, fb) = tokio::join!(
                a.fire_schedule(&due_a[0], next, t0()),
                b.fire_schedule(&due_b[0], next, t0())
            );
            let fired: Vec<_> = [fa.unwrap(), fb.unwrap()].into_iter().flatten().collect();
            assert_eq!(fired.len(), 1, "exactly one instance fires");
            assert!(fired[0].created);
            assert_eq!(fired[0].job.kind, "sync");
            assert_eq!(fired[0].job.max_attempts, 5);
            assert_eq!(fired[0].job.payload, schedule.payload);
            assert_eq!(a.jobs_for_key("connection:1", 10).await.unwrap().len(), 1);
            assert_eq!(
                a.schedule("connection:1")
                    .await
                    .unwrap()
                    .unwrap()
                    .next_run_at,
                next
            );

            // Re-putting the schedule (a config change) keeps its place in time.
            let mut changed = schedule.clone();
            changed.interval = Duration::hours(1);
            changed.next_run_at = t0();
            a.put_schedule(&changed, t0()).await.unwrap();
            let stored = a.schedule("connection:1").await.unwrap().unwrap();
            assert_eq!(stored.interval, Duration::hours(1));
            assert_eq!(stored.next_run_at, next);

            assert!(a.delete_schedule("connection:1").await.unwrap());
            assert!(a.schedule("connection:1").await.unwrap().is_none());
        },
    )
    .await;
}
