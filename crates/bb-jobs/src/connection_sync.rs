//! The `connection.sync` job kind: runs one sync of the connection named in the payload
//! through the connections use-case and maps its outcome onto the job's (retry with the
//! provider's `Retry-After`, or stop for good when retrying cannot help).

use crate::handler::{JobContext, JobError, JobHandler, JobOutcome};
use async_trait::async_trait;
use bb_core::connections::{Connections, SyncFailure, WriteBack};
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
            Err(f) => Err(job_error(f)),
        }
    }
}

fn job_error(f: SyncFailure) -> JobError {
    match f {
        SyncFailure::Retryable {
            code,
            message,
            retry_after: Some(after),
        } => JobError::retry_after(code, message, after),
        SyncFailure::Retryable { code, message, .. } => JobError::retryable(code, message),
        SyncFailure::Permanent { code, message } => JobError::permanent(code, message),
    }
}

/// Handles [`bb_core::connections::WRITE_BACK_JOB_KIND`]: one change to one record.
#[derive(Debug, Clone)]
pub struct ConnectionWriteBackHandler {
    connections: Connections,
}

impl ConnectionWriteBackHandler {
    pub fn new(connections: Connections) -> Self {
        Self { connections }
    }
}

#[async_trait]
impl JobHandler for ConnectionWriteBackHandler {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError> {
        let id = job
            .payload()
            .get("connection_id")
            .and_then(serde_json::Value::as_i64);
        let change = job
            .payload()
            .get("change")
            .and_then(|c| serde_json::from_value::<WriteBack>(c.clone()).ok());
        let (Some(id), Some(change)) = (id, change) else {
            return Err(JobError::permanent(
                "bad_payload",
                "the write-back job has no connection or change",
            ));
        };
        let report = self
            .connections
            .run_write_back(ConnectionId(id), &change)
            .await
            .map_err(job_error)?;
        // The job's result says what was sent and what was left out (and why), so a
        // progress the provider could not take is visible rather than silently dropped.
        job.set_progress(&serde_json::json!({
            "phase": "done",
            "pushed": report.pushed,
            "skipped": report.skipped,
        }))
        .await?;
        Ok(JobOutcome::default())
    }
}

/// Handles [`bb_core::connections::REVOKE_JOB_KIND`]: a revocation retried after the
/// provider was unavailable at disconnect; the last attempt deletes the kept credentials
/// whatever happens.
#[derive(Debug, Clone)]
pub struct ConnectionRevokeHandler {
    connections: Connections,
}

impl ConnectionRevokeHandler {
    pub fn new(connections: Connections) -> Self {
        Self { connections }
    }
}

#[async_trait]
impl JobHandler for ConnectionRevokeHandler {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError> {
        let field = |k: &str| job.payload().get(k).and_then(serde_json::Value::as_i64);
        let (Some(id), Some(user)) = (field("connection_id"), field("user_id")) else {
            return Err(JobError::permanent(
                "bad_payload",
                "the revocation job names no connection",
            ));
        };
        let last = job.attempt() >= job.job().max_attempts;
        self.connections
            .run_revocation(bb_core::ids::UserId(user), ConnectionId(id), last)
            .await
            .map_err(job_error)?;
        Ok(JobOutcome::default())
    }
}
