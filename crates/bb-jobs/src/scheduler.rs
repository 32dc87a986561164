//! Schedules: per key (e.g. one per connection), a job every interval.

use crate::error::JobsError;
use bb_core::clock::Clock;
use bb_core::ports::{Enqueued, JobStore};
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

/// How often a connection syncs unless configured otherwise.
pub const DEFAULT_SCHEDULE_INTERVAL: std::time::Duration = std::time::Duration::from_hours(12);

/// Turns due schedules into jobs. Every instance may run one: the store's conditional
/// move of `next_run_at` lets exactly one of them enqueue each due run.
#[derive(Debug, Clone)]
pub struct Scheduler {
    store: Arc<dyn JobStore>,
    clock: Arc<dyn Clock>,
}

impl Scheduler {
    pub fn new(store: Arc<dyn JobStore>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Fires up to `batch` due schedules; returns the jobs this instance enqueued (an
    /// `Enqueued` with `created == false` means the key already had an active job, which
    /// absorbs this run).
    pub async fn tick(&self, batch: u32) -> Result<Vec<Enqueued>, JobsError> {
        let now = self.clock.now();
        let mut fired = Vec::new();
        for due in self.store.due_schedules(now, batch).await? {
            let next = next_run_after(due.next_run_at, due.interval, now);
            if let Some(enqueued) = self.store.fire_schedule(&due, next, now).await? {
                fired.push(enqueued);
            }
        }
        Ok(fired)
    }
}

/// The first time after `now` on the grid `previous + k·interval`: the schedule keeps its
/// phase, and a long outage yields one catch-up run, not one per missed interval.
pub fn next_run_after(
    previous: DateTime<Utc>,
    interval: Duration,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let step = interval.num_milliseconds().max(1);
    let behind = (now - previous).num_milliseconds().max(0);
    let steps = behind / step + 1;
    previous + Duration::milliseconds(steps.saturating_mul(step))
}
