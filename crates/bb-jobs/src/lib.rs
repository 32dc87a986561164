//! Durable jobs in the database: leases, retries with backoff and jitter, schedules, run history.
//!
//! The queue lives behind [`bb_core::ports::JobStore`]; this crate is the policy around it.
//! A [`JobRunner`] claims one due job at a time, runs the handler registered for its kind
//! while renewing the lease, and records the outcome: success with counts, a retry after
//! exponential backoff with full jitter (or the `Retry-After` a provider asked for), or a
//! permanent failure. A [`Scheduler`] turns due schedules into jobs exactly once across
//! instances. Tests call [`JobRunner::step`] / [`JobRunner::drain`]; `serve` calls
//! [`JobRunner::run_forever`].

mod backoff;
mod connection_sync;
mod error;
mod handler;
mod runner;
mod scheduler;

pub use backoff::Backoff;
pub use connection_sync::{
    ConnectionRevokeHandler, ConnectionSyncHandler, ConnectionWriteBackHandler,
};
pub use error::JobsError;
pub use handler::{JobContext, JobError, JobHandler, JobOutcome};
pub use runner::{JobRunner, RunnerConfig, StepOutcome, StepReport};
pub use scheduler::{DEFAULT_SCHEDULE_INTERVAL, Scheduler, next_run_after};
