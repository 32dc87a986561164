//! What a connection's sync runs do to the library: each run is an import batch tagged
//! with the connection (so provenance names the connection and every run is undoable), a
//! complete listing withdraws for this source only what disappeared from it, and removing
//! an account's data is the undo of every batch it wrote.

use super::SourceRecord;
use super::service::{ImportSource, Library, RowFailure, source_key};
use crate::error::{CoreError, CoreResult};
use crate::ids::{ConnectionId, UserId};
use crate::ports::RunCounts;
use std::collections::BTreeSet;

/// Format id of the batches sync runs write.
pub const CONNECTION_SYNC_FORMAT: &str = "connection-sync";

impl Library {
    /// Applies one sync run's records as a batch of `connection`. When `complete` is set
    /// (the provider listed everything, successfully), sources this connection supplied
    /// that are not in `records` are withdrawn; `withdrawn` names more to withdraw
    /// (incremental providers report removals). Withdrawn values fall back to other
    /// sources; items no other source holds disappear.
    #[allow(clippy::too_many_arguments)] // one run's outcome, taken apart
    pub async fn apply_connection_sync(
        &self,
        user: UserId,
        connection: ConnectionId,
        provider: &str,
        records: Vec<SourceRecord>,
        failures: Vec<RowFailure>,
        complete: bool,
        withdrawn: &[String],
    ) -> CoreResult<RunCounts> {
        let listed: BTreeSet<String> = records.iter().map(source_key).collect();
        let source = ImportSource {
            format: CONNECTION_SYNC_FORMAT.into(),
            provider: provider.into(),
            label: Some(format!("sync of connection {connection}")),
        };
        let rows = failures
            .into_iter()
            .map(Err)
            .chain(records.into_iter().map(Ok));
        let rows: Vec<_> = rows.collect();
        let summary = self.import(user, &source, rows.into_iter()).await?;
        self.store.tag_batch(summary.batch_id, connection).await?;

        let batches = self.store.batches_of_connection(connection).await?;
        let mut gone: BTreeSet<String> = withdrawn.iter().cloned().collect();
        if complete {
            for key in self
                .store
                .connection_source_keys(user, &batches, provider)
                .await?
            {
                if !listed.contains(&key) {
                    gone.insert(key);
                }
            }
        }
        let gone: Vec<String> = gone.into_iter().collect();
        let touched = if gone.is_empty() {
            Vec::new()
        } else {
            self.store
                .withdraw_sources(user, &batches, provider, &gone)
                .await?
        };
        self.reresolve(user, &touched).await?;
        Ok(RunCounts {
            created: summary.created + summary.merged,
            updated: summary.updated,
            unchanged: summary.unchanged,
            removed: u64::try_from(gone.len()).unwrap_or(u64::MAX),
            failed: summary.failed,
        })
    }

    /// Removes everything this connection contributed: every batch its runs wrote is
    /// undone, newest first. Returns how many items changed or disappeared.
    pub async fn remove_connection_data(
        &self,
        user: UserId,
        connection: ConnectionId,
    ) -> CoreResult<usize> {
        let mut changed = 0;
        for batch in self.store.batches_of_connection(connection).await? {
            match self.undo(user, batch).await {
                Ok(n) => changed += n,
                // Already undone by hand from the imports list.
                Err(CoreError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(changed)
    }
}
