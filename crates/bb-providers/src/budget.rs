//! The outbound request budget shared by every connection and every instance: a token
//! bucket per provider kept in the database (`ConnectionStore::take_budget`), asked before
//! each request is sent. Providers react to the other side's 429/503 on top of this.

use crate::hardcover::{RateBudget, Wait};
use async_trait::async_trait;
use bb_core::clock::Clock;
use bb_core::connections::RateLimit;
use bb_core::ports::ConnectionStore;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Budgets per provider id, spent from the database.
pub struct SharedBudget {
    store: Arc<dyn ConnectionStore>,
    clock: Arc<dyn Clock>,
    limits: HashMap<String, RateLimit>,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl SharedBudget {
    pub fn new(
        store: Arc<dyn ConnectionStore>,
        clock: Arc<dyn Clock>,
        limits: HashMap<String, RateLimit>,
    ) -> Self {
        Self {
            store,
            clock,
            limits,
        }
    }
}

#[async_trait]
impl RateBudget for SharedBudget {
    async fn acquire(&self, provider: &str, cost: u32) -> Result<(), Wait> {
        let Some(limit) = self.limits.get(provider) else {
            return Ok(());
        };
        match self
            .store
            .take_budget(
                provider,
                limit.capacity,
                limit.per_minute,
                cost,
                self.clock.now(),
            )
            .await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(ms)) => Err(Wait {
                retry_after: Duration::from_millis(ms.max(1)),
            }),
            // Without the shared count we cannot know the budget holds: wait, don't send.
            Err(e) => {
                tracing::warn!(provider, error = %e, "request budget unavailable");
                Err(Wait {
                    retry_after: Duration::from_secs(1),
                })
            }
        }
    }
}
