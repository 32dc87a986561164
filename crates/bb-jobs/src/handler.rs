//! What a job kind implements ([`JobHandler`]) and what it is handed ([`JobContext`]).

use async_trait::async_trait;
use bb_core::ports::{Job, JobFailure, JobId, JobLease, JobStore, LeaseStatus, RunCounts};
use std::sync::Arc;
use std::time::Duration;

/// Runs jobs of one kind. Handlers must be idempotent per job: an attempt can be cut short
/// (crash, lost lease) after doing part of its work, and the next attempt repeats it.
/// Writes that must not happen twice can be fenced with [`JobContext::fencing_token`].
#[async_trait]
pub trait JobHandler: Send + Sync {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError>;
}

/// A successful run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JobOutcome {
    pub counts: RunCounts,
}

/// Why a run did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JobError {
    /// Worth trying again later (timeouts, 429/5xx); `retry_after` is what the other side
    /// asked for, if anything.
    #[error("{} (retryable)", error.message)]
    Retryable {
        error: JobFailure,
        retry_after: Option<Duration>,
    },
    /// Trying again would not help (bad credentials, invalid payload).
    #[error("{}", error.message)]
    Permanent { error: JobFailure },
    /// Another worker took the job over; stop without writing anything.
    #[error("the job's lease was taken over by another worker")]
    LeaseLost,
}

impl JobError {
    pub fn retryable(code: impl Into<String>, message: impl Into<String>) -> Self {
        JobError::Retryable {
            error: JobFailure::new(code, message),
            retry_after: None,
        }
    }

    /// A retryable error that must not be retried sooner than `after`.
    pub fn retry_after(
        code: impl Into<String>,
        message: impl Into<String>,
        after: Duration,
    ) -> Self {
        JobError::Retryable {
            error: JobFailure::new(code, message),
            retry_after: Some(after),
        }
    }

    pub fn permanent(code: impl Into<String>, message: impl Into<String>) -> Self {
        JobError::Permanent {
            error: JobFailure::new(code, message),
        }
    }
}

/// One attempt of one job, as its handler sees it.
#[derive(Debug, Clone)]
pub struct JobContext {
    job: Job,
    store: Arc<dyn JobStore>,
}

impl JobContext {
    pub(crate) fn new(job: Job, store: Arc<dyn JobStore>) -> Self {
        Self { job, store }
    }

    /// The job as claimed (state `running`).
    pub fn job(&self) -> &Job {
        &self.job
    }

    pub fn id(&self) -> JobId {
        self.job.id
    }

    pub fn key(&self) -> &str {
        &self.job.key
    }

    pub fn payload(&self) -> &serde_json::Value {
        &self.job.payload
    }

    /// 1 for the first attempt; more when retrying or taking over from a crashed worker.
    pub fn attempt(&self) -> u32 {
        self.job.attempts
    }

    /// Increases with every claim of this job: a write stamped with it can be refused once
    /// a later attempt exists.
    pub fn fencing_token(&self) -> i64 {
        self.job.fencing_token
    }

    pub fn lease(&self) -> JobLease {
        self.job.lease()
    }

    /// Records progress; fails with [`JobError::LeaseLost`] once another worker owns the
    /// job, which the handler should pass on with `?`.
    pub async fn set_progress(&self, progress: &serde_json::Value) -> Result<(), JobError> {
        match self.store.set_progress(self.lease(), progress).await {
            Ok(LeaseStatus::Held) => Ok(()),
            Ok(LeaseStatus::Lost) => Err(JobError::LeaseLost),
            // Progress is advisory: a failed write is logged, not a reason to fail the run.
            Err(e) => {
                tracing::warn!(job = %self.job.id, error = %e, "could not record job progress");
                Ok(())
            }
        }
    }
}
