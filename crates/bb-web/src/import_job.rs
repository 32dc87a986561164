//! The `import` job: imports an upload that `POST /api/imports` stored because it was too
//! large to import during the request.
//!
//! Each attempt spills the stored pieces to a temporary file, counts the rows (for
//! progress), and hands the rows to the library, which commits the batch's counts with
//! every chunk: a retried attempt resumes after the rows already in, and a repeated one
//! after success changes nothing.

use crate::api::imports::{RowsError, read_rows};
use async_trait::async_trait;
use bb_core::error::CoreError;
use bb_core::library::service::{ImportJobPayload, Library};
use bb_core::ports::{BatchState, RunCounts};
use bb_importers::ImportFormat;
use bb_jobs::{JobContext, JobError, JobHandler, JobOutcome};
use std::io::{Seek, SeekFrom};

/// Runs `import` jobs ([`bb_core::library::service::IMPORT_JOB`]).
#[derive(Debug, Clone)]
pub struct ImportJob {
    library: Library,
}

impl ImportJob {
    pub fn new(library: Library) -> Self {
        Self { library }
    }
}

fn retryable(e: &impl std::fmt::Display) -> JobError {
    JobError::retryable(
        "import_interrupted",
        format!("the import was interrupted: {e}"),
    )
}

#[async_trait]
impl JobHandler for ImportJob {
    async fn run(&self, job: &JobContext) -> Result<JobOutcome, JobError> {
        let p: ImportJobPayload = serde_json::from_value(job.payload().clone())
            .map_err(|e| JobError::permanent("bad_payload", format!("not an import job: {e}")))?;
        let batch = match self.library.batch(p.user_id, p.batch_id).await {
            Ok(b) => b,
            // The user or the upload was deleted meanwhile: nothing left to do.
            Err(CoreError::NotFound(_)) => {
                return Err(JobError::permanent("gone", "the upload no longer exists"));
            }
            Err(e) => return Err(retryable(&e)),
        };
        if matches!(batch.state, BatchState::Done | BatchState::Undone) {
            return Ok(JobOutcome {
                counts: run_counts(&batch.counts),
            });
        }
        let Ok(format) = batch.format.parse::<ImportFormat>() else {
            let message = format!("\"{}\" cannot be imported as a job", batch.format);
            let _ = self
                .library
                .fail_queued_import(p.user_id, p.batch_id, &message)
                .await;
            return Err(JobError::permanent("bad_format", message));
        };

        let mut file = tempfile::NamedTempFile::new().map_err(|e| retryable(&e))?;
        self.library
            .copy_upload(p.user_id, p.batch_id, file.as_file_mut())
            .await
            .map_err(|e| retryable(&e))?;
        file.as_file_mut()
            .seek(SeekFrom::Start(0))
            .map_err(|e| retryable(&e))?;

        // A first pass counts the rows, so progress has a denominator.
        let total = match read_rows(format, file.path()).await {
            Ok(rows) => rows.count() as u64,
            Err(RowsError::Io(e)) => return Err(retryable(&e)),
            Err(RowsError::File(message)) => {
                // The file is unreadable as its format: no attempt will do better.
                let _ = self
                    .library
                    .fail_queued_import(p.user_id, p.batch_id, &message)
                    .await;
                return Err(JobError::permanent("unreadable_file", message));
            }
        };
        job.set_progress(&serde_json::json!({ "rows_total": total }))
            .await?;
        let rows = read_rows(format, file.path()).await.map_err(|e| match e {
            RowsError::Io(e) => retryable(&e),
            RowsError::File(m) => retryable(&m),
        })?;
        self.library
            .run_queued_import(p.user_id, p.batch_id, rows, &|_| {})
            .await
            .map_err(|e| retryable(&e))?;
        let done = self
            .library
            .batch(p.user_id, p.batch_id)
            .await
            .map_err(|e| retryable(&e))?;
        Ok(JobOutcome {
            counts: run_counts(&done.counts),
        })
    }
}

fn run_counts(c: &bb_core::ports::BatchCounts) -> RunCounts {
    RunCounts {
        created: c.created,
        updated: c.updated + c.merged,
        unchanged: c.unchanged,
        removed: 0,
        failed: c.failed,
    }
}
