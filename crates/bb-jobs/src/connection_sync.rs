//! The `connection.sync` job kind: runs one sync of the connection named in the payload
//! through the connections use-case and maps its outcome onto the job's (retry with the
//! provider's `Retry-After`, or stop for good when retrying cannot help).

use crate::handler::{JobContext, JobError, JobHandler, JobOutcome};
use async_trait::async_trait;
use bb_core::connections::{Connections, SyncFailure};
use bb_core::ids::ConnectionId;

/// Handles [`bb_core::connections::SYNC_JOB_KIND`].
#[derive(Debug, Clone)]
pub struct ConnectionSyncHandler {
    connections: Connections,
}

impl ConnectionSyncHandler {
    pub fn new(connections: Connections) -> Self {
        Self { connections }
    }
}

#[async_trait]
impl JobHandler for ConnectionSyncHandler {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError> {
        let Some(id) = job
            .payload()
            .get("connection_id")
            .and_then(serde_json::Value::as_i64)
        else {
            return Err(JobError::permanent(
                "bad_payload",
                "the sync job names no connection",
            ));
        };
        job.set_progress(&serde_json::json!({ "phase": "syncing" }))
            .await?;
        match self.connections.run_sync(ConnectionId(id)).await {
            Ok(counts) => Ok(JobOutcome { counts }),
            Err(SyncFailure::Retryable {
                code,
                message,
                retry_after: Some(after),
            }) => Err(JobError::retry_after(code, message, after)),
            Err(SyncFailure::Retryable { code, message, .. }) => {
                Err(JobError::retryable(code, message))
            }
            Err(SyncFailure::Permanent { code, message }) => {
                Err(JobError::permanent(code, message))
            }
        }
    }
}
