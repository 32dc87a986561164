//! The domain's error enum. Each variant has a stable, greppable code; `bb-web` maps
//! codes to HTTP statuses in one place.

/// Errors from a storage backend, as the domain sees them.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A uniqueness rule was violated; the string names the rule, never a value.
    #[error("already exists: {0}")]
    Conflict(&'static str),
    /// The backend failed; the message is for logs only.
    #[error("storage failure: {0}")]
    Backend(String),
}

/// Errors from domain use-cases.
#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("the username or password is wrong")]
    BadCredentials,
    #[error("not signed in")]
    Unauthenticated,
    #[error("too many attempts; try again in {retry_after_secs} seconds")]
    RateLimited { retry_after_secs: u64 },
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Conflict(String),
    /// Something outside bookbridge (a provider) is not answering; try again later.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: Option<u64>,
    },
    #[error("secret storage failure: {0}")]
    Vault(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CoreError {
    /// The stable code API clients and logs use.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::InvalidInput(_) => "invalid_input",
            CoreError::BadCredentials => "bad_credentials",
            CoreError::Unauthenticated => "unauthenticated",
            CoreError::RateLimited { .. } => "rate_limited",
            CoreError::NotFound(_) | CoreError::Store(StoreError::NotFound) => "not_found",
            CoreError::Conflict(_) | CoreError::Store(StoreError::Conflict(_)) => "conflict",
            CoreError::Unavailable { .. } => "unavailable",
            CoreError::Vault(_) => "vault_error",
            CoreError::Store(StoreError::Backend(_)) => "internal",
        }
    }
}

pub type CoreResult<T> = Result<T, CoreError>;
