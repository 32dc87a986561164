//! Outbound request budgets: the narrow trait the client asks before every request, and an
//! in-memory token bucket. The database-backed budget shared by all instances implements
//! the same trait later.

use async_trait::async_trait;
use bb_core::clock::Clock;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// "Not now": how long until one request would fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    pub retry_after: Duration,
}

/// Grants `cost` outbound requests to `provider` at once, or none and says how long until
/// all of them would fit. All-or-nothing matters: a multi-request write that got its first
/// permit but not its second would spend the refill on a step it then repeats, forever.
#[async_trait]
pub trait RateBudget: Send + Sync + std::fmt::Debug {
    async fn acquire(&self, provider: &str, cost: u32) -> Result<(), Wait>;
}

/// A token bucket per provider: `capacity` requests at once, refilled at `per_minute`.
#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    clock: Arc<dyn Clock>,
    buckets: Mutex<HashMap<String, (f64, DateTime<Utc>)>>,
}

impl TokenBucket {
    pub fn new(capacity: u32, per_minute: u32, clock: Arc<dyn Clock>) -> Self {
        Self {
            capacity: f64::from(capacity.max(1)),
            per_second: f64::from(per_minute.max(1)) / 60.0,
            clock,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Hardcover's Free plan is a bucket of 10 refilled at 60 a minute, which allows 70
    /// requests in a worst-case minute. Refilling at 50 a minute keeps any sliding minute
    /// at or under 60 (10 + 50) and never outruns the server's own bucket, so a client
    /// that respects this budget sees no 429 from its own traffic.
    pub fn hardcover(clock: Arc<dyn Clock>) -> Self {
        Self::new(10, 50, clock)
    }
}

#[async_trait]
impl RateBudget for TokenBucket {
    async fn acquire(&self, provider: &str, cost: u32) -> Result<(), Wait> {
        // A cost above the bucket size could never be granted; it waits for a full bucket.
        let cost = f64::from(cost.max(1)).min(self.capacity);
        let now = self.clock.now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, at) = buckets
            .entry(provider.to_owned())
            .or_insert((self.capacity, now));
        #[allow(clippy::cast_precision_loss)] // milliseconds between two requests
        let elapsed = (now - *at).num_milliseconds().max(0) as f64 / 1000.0;
        *tokens = (*tokens + elapsed * self.per_second).min(self.capacity);
        *at = now;
        if *tokens >= cost {
            *tokens -= cost;
            return Ok(());
        }
        let secs = (cost - *tokens) / self.per_second;
        Err(Wait {
            retry_after: Duration::from_secs_f64(secs.max(0.001)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bb_core::clock::ManualClock;
    use chrono::TimeZone;

    #[tokio::test]
    async fn bucket_grants_burst_then_refills_with_time() {
        let clock = Arc::new(ManualClock::new(
            Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        ));
        let bucket = TokenBucket::new(3, 60, clock.clone());
        bucket.acquire("hardcover", 1).await.unwrap();
        bucket.acquire("hardcover", 2).await.unwrap();
        let wait = bucket.acquire("hardcover", 1).await.unwrap_err();
        assert_eq!(wait.retry_after, Duration::from_secs(1));
        // All or nothing: two permits need two seconds, and one second grants neither.
        assert_eq!(
            bucket
                .acquire("hardcover", 2)
                .await
                .unwrap_err()
                .retry_after,
            Duration::from_secs(2)
        );
        clock.advance(chrono::Duration::seconds(1));
        assert!(bucket.acquire("hardcover", 2).await.is_err());
        clock.advance(chrono::Duration::seconds(1));
        bucket.acquire("hardcover", 2).await.unwrap();
        // Providers have separate buckets.
        bucket.acquire("other", 3).await.unwrap();
    }
}
