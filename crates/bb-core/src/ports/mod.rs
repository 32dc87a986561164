//! Ports: what the domain needs from the outside world. Adapters implement them
//! (`bb-store` for storage, `bb-vault` for sealing secrets).

pub mod connections;
pub mod jobs;
pub mod library;
pub mod sealer;
pub mod store;

pub use connections::{ConnectionStore, PendingAuthorization, RefreshLease};
pub use jobs::*;
pub use library::*;
pub use sealer::{SealError, Sealer};
pub use store::*;
