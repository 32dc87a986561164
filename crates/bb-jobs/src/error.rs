//! The crate's one error enum: what can stop the runner itself (not a job).

use bb_core::error::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl JobsError {
    /// The stable code for logs.
    pub fn code(&self) -> &'static str {
        match self {
            JobsError::Store(_) => "job_store",
        }
    }
}
