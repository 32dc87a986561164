//! The durable-jobs port: a queue of jobs with leases and fencing tokens, a history row per
//! attempt, and schedules. `bb-store` implements it for SQLite and PostgreSQL; `bb-jobs`
//! runs the jobs.
//!
//! Invariants the store keeps, whatever the callers do:
//! - at most one *active* (queued or running) job per key, so at most one running per key;
//!   enqueueing onto a key with an active job returns that job;
//! - every claim increments the job's fencing token, and every write a worker makes about
//!   its attempt (lease renewal, progress, completion) names the token it was given: once
//!   another worker has taken the job over, the old worker's writes are refused.

use crate::ports::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A row in the jobs table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(pub i64);

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    /// A permanent error: retrying would not help.
    Failed,
    /// Retryable errors (or lost leases) used up every attempt.
    Dead,
}

impl JobState {
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "queued",
            JobState::Running => "running",
            JobState::Succeeded => "succeeded",
            JobState::Failed => "failed",
            JobState::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => JobState::Queued,
            "running" => JobState::Running,
            "succeeded" => JobState::Succeeded,
            "failed" => JobState::Failed,
            "dead" => JobState::Dead,
            _ => return None,
        })
    }

    /// Whether the job will not run again.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            JobState::Succeeded | JobState::Failed | JobState::Dead
        )
    }
}

/// What went wrong, in terms safe to store and show: a stable code and a message that
/// must not contain secrets (tokens, provider responses with credentials).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobFailure {
    pub code: String,
    pub message: String,
}

impl JobFailure {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

/// What one run did to the library.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCounts {
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
}

/// A job to put on the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    /// Which handler runs it, e.g. `sync`.
    pub kind: String,
    /// Serialises and deduplicates: e.g. `connection:12`.
    pub key: String,
    pub payload: serde_json::Value,
    pub run_at: DateTime<Utc>,
    pub max_attempts: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub kind: String,
    pub key: String,
    pub payload: serde_json::Value,
    pub state: JobState,
    /// When it is due (next attempt, for a queued job).
    pub run_at: DateTime<Utc>,
    /// Claims so far, including the current one of a running job.
    pub attempts: u32,
    pub max_attempts: u32,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Incremented on every claim; never reset, unlike `attempts` could be by an operator.
    pub fencing_token: i64,
    pub progress: serde_json::Value,
    pub last_error: Option<JobFailure>,
    pub created_at: DateTime<Utc>,
    /// Start of the latest attempt.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl Job {
    /// The lease a claim handed out, to name in later writes.
    pub fn lease(&self) -> JobLease {
        JobLease {
            job_id: self.id,
            fencing_token: self.fencing_token,
        }
    }
}

/// Proof of a claim: a worker's writes about its attempt carry this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct JobLease {
    pub job_id: JobId,
    pub fencing_token: i64,
}

/// Whether a fenced write landed.
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseStatus {
    /// The lease was still this worker's; the write was applied.
    Held,
    /// Another worker claimed the job since (or it was finished): nothing was written.
    Lost,
}

/// The result of an enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct Enqueued {
    pub job: Job,
    /// False when an active job with the same key was returned instead.
    pub created: bool,
}

/// How an attempt ended, as recorded by [`JobStore::finish`].
#[derive(Debug, Clone, PartialEq)]
pub enum Finish {
    Succeeded {
        counts: RunCounts,
    },
    /// Back to the queue, due at `run_at`.
    Retry {
        run_at: DateTime<Utc>,
        error: JobFailure,
    },
    Failed {
        error: JobFailure,
    },
    Dead {
        error: JobFailure,
    },
}

/// How one attempt ended, in the run history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunOutcome {
    Succeeded,
    /// Failed with a retryable error; the job went back to the queue.
    Retry,
    Failed,
    Dead,
    /// The worker stopped renewing its lease (crashed, killed) and another took over.
    LeaseExpired,
}

impl RunOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::Retry => "retry",
            RunOutcome::Failed => "failed",
            RunOutcome::Dead => "dead",
            RunOutcome::LeaseExpired => "lease_expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "succeeded" => RunOutcome::Succeeded,
            "retry" => RunOutcome::Retry,
            "failed" => RunOutcome::Failed,
            "dead" => RunOutcome::Dead,
            "lease_expired" => RunOutcome::LeaseExpired,
            _ => return None,
        })
    }
}

/// One attempt of one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRun {
    pub id: i64,
    pub job_id: JobId,
    pub attempt: u32,
    pub fencing_token: i64,
    pub worker: String,
    pub started_at: DateTime<Utc>,
    /// `None` while the attempt runs.
    pub finished_at: Option<DateTime<Utc>>,
    pub outcome: Option<RunOutcome>,
    pub counts: RunCounts,
    pub error: Option<JobFailure>,
}

/// A recurring job per key (e.g. one sync per connection).
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub key: String,
    pub kind: String,
    pub payload: serde_json::Value,
    pub interval: Duration,
    pub max_attempts: u32,
    pub next_run_at: DateTime<Utc>,
}

#[async_trait]
pub trait JobStore: Send + Sync + fmt::Debug {
    /// Queues a job unless its key has an active (queued or running) job, which is
    /// returned instead.
    async fn enqueue(&self, job: &NewJob, now: DateTime<Utc>) -> StoreResult<Enqueued>;

    /// Claims the oldest due job of one of `kinds` for `worker` until `now + lease`: a
    /// queued job whose `run_at` has come, or a running one whose lease expired (its
    /// worker died; that attempt is closed as `lease_expired`). Increments attempts and
    /// the fencing token and opens a run-history row. A job with an expired lease and no
    /// attempts left becomes `dead` instead of being claimed.
    async fn claim(
        &self,
        worker: &str,
        kinds: &[&str],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> StoreResult<Option<Job>>;

    /// Extends the lease to `until` while the attempt runs.
    async fn renew_lease(&self, lease: JobLease, until: DateTime<Utc>) -> StoreResult<LeaseStatus>;

    async fn set_progress(
        &self,
        lease: JobLease,
        progress: &serde_json::Value,
    ) -> StoreResult<LeaseStatus>;

    /// Records how the attempt ended, on the job and in its run-history row. Refused
    /// (`Lost`, nothing written) when the fencing token is stale.
    async fn finish(
        &self,
        lease: JobLease,
        now: DateTime<Utc>,
        finish: &Finish,
    ) -> StoreResult<LeaseStatus>;

    async fn job(&self, id: JobId) -> StoreResult<Option<Job>>;
    /// Jobs for a key, newest first.
    async fn jobs_for_key(&self, key: &str, limit: u32) -> StoreResult<Vec<Job>>;
    /// The job's attempts, oldest first.
    async fn job_runs(&self, id: JobId) -> StoreResult<Vec<JobRun>>;

    /// Creates the schedule for `schedule.key`, or updates its kind, payload, interval and
    /// attempts while keeping the existing `next_run_at`.
    async fn put_schedule(&self, schedule: &Schedule, now: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_schedule(&self, key: &str) -> StoreResult<bool>;
    async fn schedule(&self, key: &str) -> StoreResult<Option<Schedule>>;
    /// Schedules due at `now`, oldest first.
    async fn due_schedules(&self, now: DateTime<Utc>, limit: u32) -> StoreResult<Vec<Schedule>>;
    /// Moves the schedule from `due.next_run_at` to `next_run_at` and enqueues its job, in
    /// one transaction. The move is conditional on `next_run_at` still being `due`'s, so
    /// when several instances fire the same schedule only one gets `Some`.
    async fn fire_schedule(
        &self,
        due: &Schedule,
        next_run_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<Enqueued>>;
}
