//! Retry delays: exponential backoff with full jitter, and `Retry-After` honoured.

use rand::Rng;
use std::time::Duration;

/// When a retryable failure is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling after the first attempt; it doubles per attempt.
    pub base: Duration,
    /// The ceiling never grows past this.
    pub max: Duration,
    /// A provider's `Retry-After` is obeyed up to this, so a hostile or broken header
    /// cannot park a job for a year.
    pub max_retry_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_secs(30),
            max: Duration::from_hours(1),
            max_retry_after: Duration::from_hours(6),
        }
    }
}

impl Backoff {
    /// The most the delay after `attempt` (1-based) can be: `min(max, base · 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base
            .checked_mul(1u32 << doublings)
            .map_or(self.max, |d| d.min(self.max))
    }

    /// The delay before the next attempt: uniform in `[0, ceiling]` ("full jitter", so
    /// many jobs failing together do not retry together), but never sooner than a
    /// `Retry-After` the failure carried.
    pub fn delay<R: Rng + ?Sized>(
        &self,
        attempt: u32,
        retry_after: Option<Duration>,
        rng: &mut R,
    ) -> Duration {
        let ceiling = u64::try_from(self.ceiling(attempt).as_millis()).unwrap_or(u64::MAX);
        let jittered = Duration::from_millis(rng.random_range(0..=ceiling));
        match retry_after {
            Some(asked) => asked.min(self.max_retry_after).max(jittered),
            None => jittered,
        }
    }
}
