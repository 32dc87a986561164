//! The job store (`JobStore`), written once for both backends like `ports.rs`:
//! `impl_job_store!` stamps it onto a concrete store type inside its own module.
//!
//! Only the claim differs per dialect, and it is passed in explicitly: SQLite has a single
//! writer, so one `UPDATE … WHERE id = (SELECT … LIMIT 1) RETURNING` picks the oldest due
//! job and sets the lease atomically; PostgreSQL has many, so the pick is a
//! `FOR UPDATE SKIP LOCKED` CTE and concurrent claimers take different rows instead of
//! queueing behind one lock. The unique index on active keys backs both up: two running
//! jobs with one key cannot exist whatever a claimer does.

use bb_core::error::StoreError;
use bb_core::ports::{JobFailure, JobState, RunOutcome};

/// The columns every job query returns, in `job_from_row`'s terms.
macro_rules! job_columns {
    () => {
        "id, kind, key, payload, state, run_at, attempts, max_attempts, lease_owner, \
         lease_expires_at, fencing_token, progress, last_error_code, last_error, created_at, \
         started_at, finished_at"
    };
}
pub(crate) use job_columns;

/// What the claim sets, shared by both dialects' claim statements. `$1` worker, `$2` lease
/// expiry, `$3` now, `$4` the handled kinds as a JSON array.
macro_rules! claim_set {
    () => {
        "UPDATE jobs SET state = 'running', attempts = attempts + 1, \
         fencing_token = fencing_token + 1, lease_owner = $1, lease_expires_at = $2, \
         started_at = $3, finished_at = NULL "
    };
}

/// A due job: queued and due, or running under a lease that expired with attempts left
/// (jobs with none left are made `dead` before the claim).
macro_rules! claim_due {
    () => {
        "((state = 'queued' AND run_at <= $3) \
          OR (state = 'running' AND lease_expires_at <= $3 AND attempts < max_attempts)) "
    };
}

pub(crate) const CLAIM_SQLITE: &str = concat!(
    claim_set!(),
    "WHERE id = (SELECT id FROM jobs WHERE ",
    claim_due!(),
    "AND kind IN (SELECT value FROM json_each($4)) ORDER BY run_at, id LIMIT 1) RETURNING ",
    job_columns!()
);

pub(crate) const CLAIM_POSTGRES: &str = concat!(
    "WITH next AS (SELECT id FROM jobs WHERE ",
    claim_due!(),
    "AND kind IN (SELECT jsonb_array_elements_text($4::jsonb)) ORDER BY run_at, id LIMIT 1 \
     FOR UPDATE SKIP LOCKED) ",
    claim_set!(),
    "WHERE id = (SELECT id FROM next) RETURNING ",
    job_columns!()
);

/// Stored as the error of an attempt whose worker stopped renewing its lease.
pub(crate) const LEASE_EXPIRED_CODE: &str = "lease_expired";
pub(crate) const LEASE_EXPIRED_MESSAGE: &str =
    "the worker stopped renewing its lease (crashed or was stopped)";

pub(crate) fn json_err(e: &serde_json::Error) -> StoreError {
    StoreError::Backend(format!("stored JSON is unreadable: {e}"))
}

pub(crate) fn to_json(v: &serde_json::Value) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| json_err(&e))
}

pub(crate) fn from_json(s: &str) -> Result<serde_json::Value, StoreError> {
    serde_json::from_str(s).map_err(|e| json_err(&e))
}

pub(crate) fn to_u32(v: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| StoreError::Backend(format!("bad {what} {v}")))
}

/// Counts are far below `i64::MAX`; saturating keeps a corrupt value from failing a write.
pub(crate) fn count_to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn count_from_i64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn state_parse(s: &str) -> Result<JobState, StoreError> {
    JobState::parse(s).ok_or_else(|| StoreError::Backend(format!("bad job state {s:?}")))
}

pub(crate) fn outcome_parse(s: Option<String>) -> Result<Option<RunOutcome>, StoreError> {
    s.map(|s| {
        RunOutcome::parse(&s).ok_or_else(|| StoreError::Backend(format!("bad run outcome {s:?}")))
    })
    .transpose()
}

pub(crate) fn failure(code: Option<String>, message: Option<String>) -> Option<JobFailure> {
    code.map(|code| JobFailure {
        code,
        message: message.unwrap_or_default(),
    })
}

macro_rules! impl_job_store {
    ($store:ident, $db:ty, $claim_sql:expr) => {
        mod job_store {
            use super::$store;
            use crate::backend_err;
            use crate::jobs::{
                LEASE_EXPIRED_CODE, LEASE_EXPIRED_MESSAGE, count_from_i64, count_to_i64,
                failure, from_json, job_columns, outcome_parse, state_parse, to_json, to_u32,
            };
            use crate::time::{from_ms, to_ms};
            use async_trait::async_trait;
            use bb_core::error::StoreError;
            use bb_core::ports::{
                Enqueued, Finish, Job, JobFailure, JobId, JobLease, JobRun, JobState, JobStore,
                LeaseStatus, NewJob, RunCounts, RunOutcome, Schedule, StoreResult,
            };
            use chrono::{DateTime, Duration, Utc};
            use sqlx::Row;

            type Conn = <$db as sqlx::Database>::Connection;
            type DbRow = <$db as sqlx::Database>::Row;

            fn be(e: sqlx::Error) -> StoreError {
                backend_err(&e)
            }

            fn job_from_row(row: &DbRow) -> StoreResult<Job> {
                let state: String = row.try_get("state").map_err(be)?;
                let payload: String = row.try_get("payload").map_err(be)?;
                let progress: String = row.try_get("progress").map_err(be)?;
                Ok(Job {
                    id: JobId(row.try_get("id").map_err(be)?),
                    kind: row.try_get("kind").map_err(be)?,
                    key: row.try_get("key").map_err(be)?,
                    payload: from_json(&payload)?,
                    state: state_parse(&state)?,
                    run_at: from_ms(row.try_get("run_at").map_err(be)?),
                    attempts: to_u32(row.try_get("attempts").map_err(be)?, "attempts")?,
                    max_attempts: to_u32(
                        row.try_get("max_attempts").map_err(be)?,
                        "max_attempts",
                    )?,
                    lease_owner: row.try_get("lease_owner").map_err(be)?,
                    lease_expires_at: row
                        .try_get::<Option<i64>, _>("lease_expires_at")
                        .map_err(be)?
                        .map(from_ms),
                    fencing_token: row.try_get("fencing_token").map_err(be)?,
                    progress: from_json(&progress)?,
                    last_error: failure(
                        row.try_get("last_error_code").map_err(be)?,
                        row.try_get("last_error").map_err(be)?,
                    ),
                    created_at: from_ms(row.try_get("created_at").map_err(be)?),
                    started_at: row
                        .try_get::<Option<i64>, _>("started_at")
                        .map_err(be)?
                        .map(from_ms),
                    finished_at: row
                        .try_get::<Option<i64>, _>("finished_at")
                        .map_err(be)?
                        .map(from_ms),
                })
            }

            fn run_from_row(row: &DbRow) -> StoreResult<JobRun> {
                Ok(JobRun {
                    id: row.try_get("id").map_err(be)?,
                    job_id: JobId(row.try_get("job_id").map_err(be)?),
                    attempt: to_u32(row.try_get("attempt").map_err(be)?, "attempt")?,
                    fencing_token: row.try_get("fencing_token").map_err(be)?,
                    worker: row.try_get("worker").map_err(be)?,
                    started_at: from_ms(row.try_get("started_at").map_err(be)?),
                    finished_at: row
                        .try_get::<Option<i64>, _>("finished_at")
                        .map_err(be)?
                        .map(from_ms),
                    outcome: outcome_parse(row.try_get("outcome").map_err(be)?)?,
                    counts: RunCounts {
                        created: count_from_i64(row.try_get("created").map_err(be)?),
                        updated: count_from_i64(row.try_get("updated").map_err(be)?),
                        unchanged: count_from_i64(row.try_get("unchanged").map_err(be)?),
                        removed: count_from_i64(row.try_get("removed").map_err(be)?),
                        failed: count_from_i64(row.try_get("failed").map_err(be)?),
                    },
                    error: failure(
                        row.try_get("error_code").map_err(be)?,
                        row.try_get("error_message").map_err(be)?,
                    ),
                })
            }

            fn schedule_from_row(row: &DbRow) -> StoreResult<Schedule> {
                let payload: String = row.try_get("payload").map_err(be)?;
                Ok(Schedule {
                    key: row.try_get("key").map_err(be)?,
                    kind: row.try_get("kind").map_err(be)?,
                    payload: from_json(&payload)?,
                    interval: Duration::milliseconds(row.try_get("interval_ms").map_err(be)?),
                    max_attempts: to_u32(
                        row.try_get("max_attempts").map_err(be)?,
                        "max_attempts",
                    )?,
                    next_run_at: from_ms(row.try_get("next_run_at").map_err(be)?),
                })
            }

            /// Inserts the job unless its key has an active one, then returns whichever is
            /// active. Retries when the active job finished between the two statements.
            async fn enqueue_on(
                conn: &mut Conn,
                job: &NewJob,
                now: DateTime<Utc>,
            ) -> StoreResult<Enqueued> {
                let payload = to_json(&job.payload)?;
                for _ in 0..3 {
                    // No conflict target: the only unique rule a new row can break is the
                    // partial index on active keys.
                    let inserted = sqlx::query(concat!(
                        "INSERT INTO jobs (kind, key, payload, state, run_at, max_attempts, \
                         created_at) VALUES ($1, $2, $3, 'queued', $4, $5, $6) \
                         ON CONFLICT DO NOTHING RETURNING ",
                        job_columns!()
                    ))
                    .bind(&job.kind)
                    .bind(&job.key)
                    .bind(&payload)
                    .bind(to_ms(job.run_at))
                    .bind(i64::from(job.max_attempts))
                    .bind(to_ms(now))
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(be)?;
                    if let Some(row) = inserted {
                        return Ok(Enqueued {
                            job: job_from_row(&row)?,
                            created: true,
                        });
                    }
                    let existing = sqlx::query(concat!(
                        "SELECT ",
                        job_columns!(),
                        " FROM jobs WHERE key = $1 AND state IN ('queued', 'running')"
                    ))
                    .bind(&job.key)
                    .fetch_optional(&mut *conn)
                    .await
                    .map_err(be)?;
                    if let Some(row) = existing {
                        return Ok(Enqueued {
                            job: job_from_row(&row)?,
                            created: false,
                        });
                    }
                }
                Err(StoreError::Backend(
                    "enqueue kept racing with the active job for its key".into(),
                ))
            }

            #[async_trait]
            impl JobStore for $store {
                async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> StoreResult<Enqueued> {
                    let mut conn = self.pool.acquire().await.map_err(be)?;
                    enqueue_on(&mut conn, job, now).await
                }

                async fn claim(
                    &self,
                    worker: &str,
                    kinds: &[&str],
                    now: DateTime<Utc>,
                    lease: Duration,
                ) -> StoreResult<Option<Job>> {
                    let kinds = serde_json::to_string(kinds)
                        .map_err(|e| StoreError::Backend(e.to_string()))?;
                    let now_ms = to_ms(now);
                    let mut tx = self.pool.begin().await.map_err(be)?;
                    // Expired leases with no attempts left end here rather than being run
                    // again: a job that kills its worker every time must not loop forever.
                    // A write first, so SQLite takes its write lock at the start.
                    sqlx::query(
                        "UPDATE jobs SET state = 'dead', finished_at = $1, lease_owner = NULL,
                         lease_expires_at = NULL, last_error_code = $2, last_error = $3
                         WHERE state = 'running' AND lease_expires_at <= $1
                           AND attempts >= max_attempts",
                    )
                    .bind(now_ms)
                    .bind(LEASE_EXPIRED_CODE)
                    .bind(LEASE_EXPIRED_MESSAGE)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                    let claimed = sqlx::query($claim_sql)
                        .bind(worker)
                        .bind(to_ms(now + lease))
                        .bind(now_ms)
                        .bind(&kinds)
                        .fetch_optional(&mut *tx)
                        .await
                        .map_err(be)?;
                    let job = claimed.map(|row| job_from_row(&row)).transpose()?;
                    // Close the history rows of attempts whose lease is gone: the dead
                    // above and the one this claim took over.
                    sqlx::query(
                        "UPDATE job_runs SET finished_at = $1, outcome = 'lease_expired',
                         error_code = $2, error_message = $3
                         WHERE finished_at IS NULL AND NOT EXISTS (
                             SELECT 1 FROM jobs j WHERE j.id = job_runs.job_id
                               AND j.state = 'running'
                               AND j.fencing_token = job_runs.fencing_token)",
                    )
                    .bind(now_ms)
                    .bind(LEASE_EXPIRED_CODE)
                    .bind(LEASE_EXPIRED_MESSAGE)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                    if let Some(job) = &job {
                        sqlx::query(
                            "INSERT INTO job_runs (job_id, attempt, fencing_token, worker,
                             started_at) VALUES ($1, $2, $3, $4, $5)",
                        )
                        .bind(job.id.0)
                        .bind(i64::from(job.attempts))
                        .bind(job.fencing_token)
                        .bind(worker)
                        .bind(now_ms)
                        .execute(&mut *tx)
                        .await
                        .map_err(be)?;
                    }
                    tx.commit().await.map_err(be)?;
                    Ok(job)
                }

                async fn renew_lease(
                    &self,
                    lease: JobLease,
                    until: DateTime<Utc>,
                ) -> StoreResult<LeaseStatus> {
                    let done = sqlx::query(
                        "UPDATE jobs SET lease_expires_at = $1
                         WHERE id = $2 AND fencing_token = $3 AND state = 'running'",
                    )
                    .bind(to_ms(until))
                    .bind(lease.job_id.0)
                    .bind(lease.fencing_token)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(if done.rows_affected() == 1 {
                        LeaseStatus::Held
                    } else {
                        LeaseStatus::Lost
                    })
                }

                async fn set_progress(
                    &self,
                    lease: JobLease,
                    progress: &serde_json::Value,
                ) -> StoreResult<LeaseStatus> {
                    let done = sqlx::query(
                        "UPDATE jobs SET progress = $1
                         WHERE id = $2 AND fencing_token = $3 AND state = 'running'",
                    )
                    .bind(to_json(progress)?)
                    .bind(lease.job_id.0)
                    .bind(lease.fencing_token)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(if done.rows_affected() == 1 {
                        LeaseStatus::Held
                    } else {
                        LeaseStatus::Lost
                    })
                }

                async fn finish(
                    &self,
                    lease: JobLease,
                    now: DateTime<Utc>,
                    finish: &Finish,
                ) -> StoreResult<LeaseStatus> {
                    let none = RunCounts::default();
                    let (state, outcome, run_at, error, counts): (
                        JobState,
                        RunOutcome,
                        Option<DateTime<Utc>>,
                        Option<&JobFailure>,
                        &RunCounts,
                    ) = match finish {
                        Finish::Succeeded { counts } => {
                            (JobState::Succeeded, RunOutcome::Succeeded, None, None, counts)
                        }
                        Finish::Retry { run_at, error } => (
                            JobState::Queued,
                            RunOutcome::Retry,
                            Some(*run_at),
                            Some(error),
                            &none,
                        ),
                        Finish::Failed { error } => {
                            (JobState::Failed, RunOutcome::Failed, None, Some(error), &none)
                        }
                        Finish::Dead { error } => {
                            (JobState::Dead, RunOutcome::Dead, None, Some(error), &none)
                        }
                    };
                    let now_ms = to_ms(now);
                    let finished_at = state.is_final().then_some(now_ms);
                    let mut tx = self.pool.begin().await.map_err(be)?;
                    let done = sqlx::query(
                        "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at),
                         lease_owner = NULL, lease_expires_at = NULL, last_error_code = $3,
                         last_error = $4, finished_at = $5
                         WHERE id = $6 AND fencing_token = $7 AND state = 'running'",
                    )
                    .bind(state.as_str())
                    .bind(run_at.map(to_ms))
                    .bind(error.map(|e| e.code.as_str()))
                    .bind(error.map(|e| e.message.as_str()))
                    .bind(finished_at)
                    .bind(lease.job_id.0)
                    .bind(lease.fencing_token)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                    if done.rows_affected() != 1 {
                        tx.rollback().await.map_err(be)?;
                        return Ok(LeaseStatus::Lost);
                    }
                    sqlx::query(
                        "UPDATE job_runs SET finished_at = $1, outcome = $2, created = $3,
                         updated = $4, unchanged = $5, removed = $6, failed = $7,
                         error_code = $8, error_message = $9
                         WHERE job_id = $10 AND fencing_token = $11",
                    )
                    .bind(now_ms)
                    .bind(outcome.as_str())
                    .bind(count_to_i64(counts.created))
                    .bind(count_to_i64(counts.updated))
                    .bind(count_to_i64(counts.unchanged))
                    .bind(count_to_i64(counts.removed))
                    .bind(count_to_i64(counts.failed))
                    .bind(error.map(|e| e.code.as_str()))
                    .bind(error.map(|e| e.message.as_str()))
                    .bind(lease.job_id.0)
                    .bind(lease.fencing_token)
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                    tx.commit().await.map_err(be)?;
                    Ok(LeaseStatus::Held)
                }

                async fn job(&self, id: JobId) -> StoreResult<Option<Job>> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        job_columns!(),
                        " FROM jobs WHERE id = $1"
                    ))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)?;
                    row.map(|r| job_from_row(&r)).transpose()
                }

                async fn jobs_for_key(&self, key: &str, limit: u32) -> StoreResult<Vec<Job>> {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        job_columns!(),
                        " FROM jobs WHERE key = $1 ORDER BY id DESC LIMIT $2"
                    ))
                    .bind(key)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter().map(job_from_row).collect()
                }

                async fn job_runs(&self, id: JobId) -> StoreResult<Vec<JobRun>> {
                    let rows = sqlx::query(
                        "SELECT id, job_id, attempt, fencing_token, worker, started_at,
                         finished_at, outcome, created, updated, unchanged, removed, failed,
                         error_code, error_message
                         FROM job_runs WHERE job_id = $1 ORDER BY fencing_token",
                    )
                    .bind(id.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter().map(run_from_row).collect()
                }

                async fn put_schedule(
                    &self,
                    schedule: &Schedule,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "INSERT INTO job_schedules (key, kind, payload, interval_ms,
                         max_attempts, next_run_at, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
                         ON CONFLICT (key) DO UPDATE SET kind = excluded.kind,
                         payload = excluded.payload, interval_ms = excluded.interval_ms,
                         max_attempts = excluded.max_attempts, updated_at = excluded.updated_at",
                    )
                    .bind(&schedule.key)
                    .bind(&schedule.kind)
                    .bind(to_json(&schedule.payload)?)
                    .bind(schedule.interval.num_milliseconds())
                    .bind(i64::from(schedule.max_attempts))
                    .bind(to_ms(schedule.next_run_at))
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn delete_schedule(&self, key: &str) -> StoreResult<bool> {
                    let done = sqlx::query("DELETE FROM job_schedules WHERE key = $1")
                        .bind(key)
                        .execute(&self.pool)
                        .await
                        .map_err(be)?;
                    Ok(done.rows_affected() > 0)
                }

                async fn schedule(&self, key: &str) -> StoreResult<Option<Schedule>> {
                    let row = sqlx::query(
                        "SELECT key, kind, payload, interval_ms, max_attempts, next_run_at
                         FROM job_schedules WHERE key = $1",
                    )
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)?;
                    row.map(|r| schedule_from_row(&r)).transpose()
                }

                async fn due_schedules(
                    &self,
                    now: DateTime<Utc>,
                    limit: u32,
                ) -> StoreResult<Vec<Schedule>> {
                    let rows = sqlx::query(
                        "SELECT key, kind, payload, interval_ms, max_attempts, next_run_at
                         FROM job_schedules WHERE next_run_at <= $1
                         ORDER BY next_run_at, key LIMIT $2",
                    )
                    .bind(to_ms(now))
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter().map(schedule_from_row).collect()
                }

                async fn fire_schedule(
                    &self,
                    due: &Schedule,
                    next_run_at: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> StoreResult<Option<Enqueued>> {
                    let mut tx = self.pool.begin().await.map_err(be)?;
                    // The conditional move is the claim: of several instances firing the
                    // same due schedule, only the first sees its `next_run_at` unchanged.
                    let moved = sqlx::query(
                        "UPDATE job_schedules SET next_run_at = $1, updated_at = $2
                         WHERE key = $3 AND next_run_at = $4",
                    )
                    .bind(to_ms(next_run_at))
                    .bind(to_ms(now))
                    .bind(&due.key)
                    .bind(to_ms(due.next_run_at))
                    .execute(&mut *tx)
                    .await
                    .map_err(be)?;
                    if moved.rows_affected() != 1 {
                        tx.rollback().await.map_err(be)?;
                        return Ok(None);
                    }
                    let job = NewJob {
                        kind: due.kind.clone(),
                        key: due.key.clone(),
                        payload: due.payload.clone(),
                        run_at: due.next_run_at,
                        max_attempts: due.max_attempts,
                    };
                    let enqueued = enqueue_on(&mut tx, &job, now).await?;
                    tx.commit().await.map_err(be)?;
                    Ok(Some(enqueued))
                }
            }
        }
    };
}
pub(crate) use impl_job_store;
