//! Connected accounts: what a provider module declares and the calls it answers
//! (`provider`), a connection's state and what is shown about it (`model`), and the
//! lifecycle use-cases (`service`): link, refresh under a fenced lease, sync, disconnect.

pub mod model;
pub mod provider;
pub mod service;

pub use model::{ConnectionRecord, ConnectionSettings, ConnectionState, ConnectionView};
pub use provider::{
    AuthKind, Begin, BeginConnect, Capability, CompleteInput, ExternalAccount, Linked, Provider,
    ProviderError, ProviderInfo, RateLimit, Refreshed, SkippedField, SyncBatch, WriteBack,
    WriteBackReport,
};
pub use service::{
    CallbackFailure, ConnectRequest, Connected, Connections, ConnectionsConfig, Disconnected,
    REVOKE_JOB_KIND, SYNC_JOB_KIND, SyncFailure, SyncRun, WRITE_BACK_JOB_KIND, sync_key,
};
