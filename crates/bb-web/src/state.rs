//! What every handler can reach: the use-cases and the web settings.

use bb_core::accounts::Accounts;
use bb_core::clock::Clock;
use bb_core::connections::Connections;
use bb_core::library::service::Library;
use bb_core::ports::Store;
use std::sync::Arc;

/// Web settings derived from the configuration.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// `BOOKBRIDGE_PUBLIC_URL`: the origin browsers use; https turns on `Secure` cookies,
    /// the `__Host-` prefix and HSTS.
    pub public_url: url::Url,
    /// Uploads up to this size are imported during the request; larger ones by a job.
    pub import_inline_max_bytes: usize,
}

impl WebConfig {
    pub fn is_https(&self) -> bool {
        self.public_url.scheme() == "https"
    }

    pub fn session_cookie_name(&self) -> &'static str {
        if self.is_https() {
            "__Host-bb_session"
        } else {
            "bb_session"
        }
    }
}

#[derive(Debug, Clone)]
pub struct AppState {
    pub accounts: Accounts,
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub library: Library,
    pub connections: Connections,
    pub web: Arc<WebConfig>,
}
