//! Audit events: what happened to an account, when and from where. Details never hold a
//! secret; they are built from typed fields here, not from free text.

use crate::ids::UserId;
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Every event the audit log records. The string form is stable (stored and shown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    LoginSucceeded,
    LoginFailed,
    LoginThrottled,
    Logout,
    PasswordChanged,
    UserCreated,
    UserDeleted,
    TokenCreated,
    TokenRevoked,
    KeyRotated,
    KeyRetired,
    ConnectionLinked,
    ConnectCallbackFailed,
    ConnectionRefreshed,
    ConnectionRefreshFailed,
    ConnectionNeedsReauth,
    SyncStarted,
    SyncFinished,
    SyncFailed,
    ConnectionDisconnected,
    RevocationFailed,
}

impl AuditEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::LoginSucceeded => "login_succeeded",
            AuditEvent::LoginFailed => "login_failed",
            AuditEvent::LoginThrottled => "login_throttled",
            AuditEvent::Logout => "logout",
            AuditEvent::PasswordChanged => "password_changed",
            AuditEvent::UserCreated => "user_created",
            AuditEvent::UserDeleted => "user_deleted",
            AuditEvent::TokenCreated => "token_created",
            AuditEvent::TokenRevoked => "token_revoked",
            AuditEvent::KeyRotated => "key_rotated",
            AuditEvent::KeyRetired => "key_retired",
            AuditEvent::ConnectionLinked => "connection_linked",
            AuditEvent::ConnectCallbackFailed => "connect_callback_failed",
            AuditEvent::ConnectionRefreshed => "connection_refreshed",
            AuditEvent::ConnectionRefreshFailed => "connection_refresh_failed",
            AuditEvent::ConnectionNeedsReauth => "connection_needs_reauth",
            AuditEvent::SyncStarted => "sync_started",
            AuditEvent::SyncFinished => "sync_finished",
            AuditEvent::SyncFailed => "sync_failed",
            AuditEvent::ConnectionDisconnected => "connection_disconnected",
            AuditEvent::RevocationFailed => "revocation_failed",
        }
    }
}

/// An entry about to be appended.
#[derive(Debug, Clone)]
pub struct NewAuditEntry {
    pub user_id: Option<UserId>,
    pub event: AuditEvent,
    pub at: DateTime<Utc>,
    pub client_ip: Option<String>,
    /// A JSON object of non-secret facts (token id and label, key version, username tried).
    pub details: serde_json::Value,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    #[schema(value_type = Option<i64>)]
    pub user_id: Option<UserId>,
    pub event: String,
    pub at: DateTime<Utc>,
    pub client_ip: Option<String>,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}
