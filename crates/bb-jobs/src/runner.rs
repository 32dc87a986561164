//! The worker: claims due jobs, runs their handlers under a renewed lease, records outcomes.

use crate::backoff::Backoff;
use crate::error::JobsError;
use crate::handler::{JobContext, JobError, JobHandler, JobOutcome};
use crate::scheduler::Scheduler;
use bb_core::clock::Clock;
use bb_core::ports::{Finish, Job, JobFailure, JobId, JobLease, JobStore, LeaseStatus, RunCounts};
use chrono::{DateTime, Utc};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How a runner behaves; the defaults suit `serve`.
#[derive(Debug, Clone)]
pub struct RunnerConfig {
    /// Names this worker in leases and run history (e.g. host and pid).
    pub worker_id: String,
    /// How long a claim lasts without renewal; a crashed worker's job is taken over after.
    pub lease: Duration,
    /// How often a running handler's lease is renewed (well under `lease`).
    pub renew_every: Duration,
    /// How long `run_forever` waits when nothing is due.
    pub poll_interval: Duration,
    pub backoff: Backoff,
    /// Schedules fired per scheduler tick in `run_forever`.
    pub schedule_batch: u32,
}

impl RunnerConfig {
    pub fn new(worker_id: impl Into<String>) -> Self {
        Self {
            worker_id: worker_id.into(),
            lease: Duration::from_mins(5),
            renew_every: Duration::from_mins(1),
            poll_interval: Duration::from_secs(1),
            backoff: Backoff::default(),
            schedule_batch: 100,
        }
    }
}

/// What one [`JobRunner::step`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepReport {
    pub job_id: JobId,
    pub kind: String,
    pub key: String,
    pub attempt: u32,
    pub fencing_token: i64,
    pub outcome: StepOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepOutcome {
    Succeeded(RunCounts),
    /// Back on the queue until `run_at`.
    Retrying {
        run_at: DateTime<Utc>,
        error: JobFailure,
    },
    Failed(JobFailure),
    /// Retryable, but out of attempts.
    Dead(JobFailure),
    /// Another worker took the job over while this one ran it; nothing was recorded.
    LeaseLost,
}

/// Runs jobs of the kinds it has handlers for.
pub struct JobRunner {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
    config: RunnerConfig,
    handlers: BTreeMap<String, Arc<dyn JobHandler>>,
    /// Jitter source; seeded in tests so delays are reproducible.
    rng: Mutex<StdRng>,
}

impl std::fmt::Debug for JobRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobRunner")
            .field("config", &self.config)
            .field("kinds", &self.handlers.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl JobRunner {
    pub fn new(store: Arc<dyn JobStore>, clock: Arc<dyn Clock>, config: RunnerConfig) -> Self {
        Self {
            store,
            clock,
            config,
            handlers: BTreeMap::new(),
            rng: Mutex::new(StdRng::from_os_rng()),
        }
    }

    /// Registers the handler for jobs of `kind`; the runner claims only registered kinds,
    /// so an instance that does not know a kind (mid-upgrade) leaves it to one that does.
    #[must_use]
    pub fn with_handler(mut self, kind: impl Into<String>, handler: Arc<dyn JobHandler>) -> Self {
        self.handlers.insert(kind.into(), handler);
        self
    }

    /// Makes the jitter reproducible.
    #[must_use]
    pub fn with_seed(self, seed: u64) -> Self {
        Self {
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            ..self
        }
    }

    pub fn config(&self) -> &RunnerConfig {
        &self.config
    }

    /// A scheduler on the same store and clock.
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.store.clone(), self.clock.clone())
    }

    /// Claims one due job, runs it and records the outcome; `None` when nothing is due.
    pub async fn step(&self) -> Result<Option<StepReport>, JobsError> {
        let kinds: Vec<&str> = self.handlers.keys().map(String::as_str).collect();
        let Some(job) = self
            .store
            .claim(
                &self.config.worker_id,
                &kinds,
                self.clock.now(),
                chrono_duration(self.config.lease),
            )
            .await?
        else {
            return Ok(None);
        };
        let lease = job.lease();
        let mut report = StepReport {
            job_id: job.id,
            kind: job.kind.clone(),
            key: job.key.clone(),
            attempt: job.attempts,
            fencing_token: job.fencing_token,
            outcome: StepOutcome::LeaseLost,
        };
        let Some(handler) = self.handlers.get(&job.kind).cloned() else {
            // The claim filters by kind, so this only happens if the store ignored it.
            let error = JobFailure::new("unknown_kind", format!("no handler for {}", job.kind));
            report.outcome = self.record(lease, Finish::Failed { error }).await?;
            return Ok(Some(report));
        };
        tracing::info!(job = %job.id, kind = %job.kind, attempt = job.attempts, "job started");
        let result = self.run_leased(handler, &job).await;
        report.outcome = match result {
            Ok(outcome) => {
                self.record(
                    lease,
                    Finish::Succeeded {
                        counts: outcome.counts,
                    },
                )
                .await?
            }
            Err(JobError::Permanent { error }) => {
                self.record(lease, Finish::Failed { error }).await?
            }
            Err(JobError::Retryable { error, retry_after }) => {
                if job.attempts >= job.max_attempts {
                    self.record(lease, Finish::Dead { error }).await?
                } else {
                    let delay = {
                        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
                        self.config
                            .backoff
                            .delay(job.attempts, retry_after, &mut *rng)
                    };
                    let run_at = self.clock.now() + chrono_duration(delay);
                    self.record(lease, Finish::Retry { run_at, error }).await?
                }
            }
            Err(JobError::LeaseLost) => StepOutcome::LeaseLost,
        };
        tracing::info!(job = %job.id, kind = %job.kind, outcome = ?report.outcome, "job finished");
        Ok(Some(report))
    }

    /// Steps until nothing is due (for tests: drains the queue deterministically).
    pub async fn drain(&self) -> Result<Vec<StepReport>, JobsError> {
        let mut reports = Vec::new();
        while let Some(report) = self.step().await? {
            reports.push(report);
        }
        Ok(reports)
    }

    /// Fires due schedules and runs due jobs until `shutdown` completes. A job already
    /// running when it does is finished first; nothing new is claimed after.
    pub async fn run_forever(&self, shutdown: impl Future<Output = ()>) {
        let scheduler = self.scheduler();
        tokio::pin!(shutdown);
        loop {
            if let Err(e) = scheduler.tick(self.config.schedule_batch).await {
                tracing::warn!(error = %e, code = e.code(), "scheduler tick failed");
            }
            let idle = match self.step().await {
                Ok(Some(_)) => false,
                Ok(None) => true,
                Err(e) => {
                    tracing::warn!(error = %e, code = e.code(), "job step failed");
                    true
                }
            };
            if idle {
                tokio::select! {
                    biased;
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(self.config.poll_interval) => {}
                }
            } else if futures_ready(&mut shutdown).await {
                return;
            }
        }
    }

    /// Runs the handler in its own task (a panic fails the attempt, not the runner) while
    /// renewing the lease; stops it as soon as the lease turns out to be someone else's.
    async fn run_leased(
        &self,
        handler: Arc<dyn JobHandler>,
        job: &Job,
    ) -> Result<JobOutcome, JobError> {
        let ctx = JobContext::new(job.clone(), self.store.clone());
        let mut task = tokio::spawn(async move { handler.run(&ctx).await });
        let mut renew = tokio::time::interval(self.config.renew_every);
        renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick fires at once; the claim itself just set the lease.
        renew.tick().await;
        loop {
            tokio::select! {
                joined = &mut task => {
                    return match joined {
                        Ok(result) => result,
                        Err(e) if e.is_panic() => Err(JobError::retryable(
                            "handler_panicked",
                            "the job handler panicked",
                        )),
                        Err(_) => Err(JobError::retryable("handler_cancelled", "the job handler was cancelled")),
                    };
                }
                _ = renew.tick() => {
                    let until = self.clock.now() + chrono_duration(self.config.lease);
                    match self.store.renew_lease(job.lease(), until).await {
                        Ok(LeaseStatus::Held) => {}
                        Ok(LeaseStatus::Lost) => {
                            task.abort();
                            return Err(JobError::LeaseLost);
                        }
                        // A database hiccup: keep running; the next tick tries again and
                        // the fencing token still guards the final write.
                        Err(e) => tracing::warn!(job = %job.id, error = %e, "lease renewal failed"),
                    }
                }
            }
        }
    }

    async fn record(&self, lease: JobLease, finish: Finish) -> Result<StepOutcome, JobsError> {
        let status = self.store.finish(lease, self.clock.now(), &finish).await?;
        if status == LeaseStatus::Lost {
            tracing::warn!(job = %lease.job_id, "job outcome refused: the lease was taken over");
            return Ok(StepOutcome::LeaseLost);
        }
        Ok(match finish {
            Finish::Succeeded { counts } => StepOutcome::Succeeded(counts),
            Finish::Retry { run_at, error } => StepOutcome::Retrying { run_at, error },
            Finish::Failed { error } => StepOutcome::Failed(error),
            Finish::Dead { error } => StepOutcome::Dead(error),
        })
    }
}

/// Whether `shutdown` has completed, without waiting for it.
async fn futures_ready<F: Future<Output = ()> + Unpin>(shutdown: &mut F) -> bool {
    tokio::select! {
        biased;
        () = shutdown => true,
        () = std::future::ready(()) => false,
    }
}

/// Durations here are configuration-sized; anything beyond chrono's range means "a year".
pub(crate) fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_else(|_| chrono::Duration::days(365))
}
