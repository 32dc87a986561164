//! A connection as stored and as shown: its state machine and the facts about it that are
//! safe to show (never a credential).

use super::provider::ExternalAccount;
use crate::ids::{ConnectionId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Where a connection is in its life.
///
/// `pending` → (`active` | `error`); `active` ↔ `needs_reauth` (reconnect);
/// any → `disconnected` (final).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    Pending,
    Active,
    NeedsReauth,
    Error,
    Disconnected,
}

impl ConnectionState {
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Pending => "pending",
            ConnectionState::Active => "active",
            ConnectionState::NeedsReauth => "needs_reauth",
            ConnectionState::Error => "error",
            ConnectionState::Disconnected => "disconnected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => ConnectionState::Pending,
            "active" => ConnectionState::Active,
            "needs_reauth" => ConnectionState::NeedsReauth,
            "error" => ConnectionState::Error,
            "disconnected" => ConnectionState::Disconnected,
            _ => return None,
        })
    }
}

/// A stored error, in the user's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastError {
    pub code: String,
    pub message: String,
}

/// Per-connection settings the user controls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct ConnectionSettings {
    /// Push status, rating and progress changes back to the provider.
    pub write_back: bool,
    /// Hours between scheduled syncs; `None` uses the instance default.
    pub sync_every_hours: Option<u32>,
}

/// A connection row without its secrets.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionRecord {
    pub id: ConnectionId,
    pub user_id: UserId,
    pub provider: String,
    pub state: ConnectionState,
    pub account: Option<ExternalAccount>,
    pub scopes: Vec<String>,
    pub settings: serde_json::Value,
    pub expires_at: Option<DateTime<Utc>>,
    pub cursor: Option<String>,
    pub last_error: Option<LastError>,
    pub has_credentials: bool,
    pub credentials_version: i64,
    /// When the credentials were last written (linked or refreshed).
    pub credentials_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub disconnected_at: Option<DateTime<Utc>>,
}

impl ConnectionRecord {
    pub fn settings(&self) -> ConnectionSettings {
        serde_json::from_value(self.settings.clone()).unwrap_or_default()
    }
}

/// The last sync run of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct LastSync {
    /// `queued`, `running`, `succeeded`, `failed`, `retrying`.
    pub status: String,
    pub job_id: i64,
    pub started: Option<DateTime<Utc>>,
    pub finished: Option<DateTime<Utc>>,
    pub created: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub removed: u64,
    pub failed: u64,
    pub error: Option<LastError>,
}

/// What the API and CLI show about a connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ConnectionView {
    #[schema(value_type = i64)]
    pub id: ConnectionId,
    pub provider: String,
    pub provider_name: String,
    pub state: ConnectionState,
    pub account: Option<ExternalAccount>,
    pub scopes: Vec<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_sync: Option<LastSync>,
    pub next_sync: Option<DateTime<Utc>>,
    pub last_error: Option<LastError>,
    pub can_revoke: bool,
    pub settings: ConnectionSettings,
    pub created_at: DateTime<Utc>,
}
