//! The accounts use-cases: users, login with throttling, sessions, personal access tokens,
//! and the audit entries each of them writes.

use super::password::{self, HashParams};
use super::token;
use crate::audit::{AuditEntry, AuditEvent, NewAuditEntry};
use crate::clock::Clock;
use crate::error::{CoreError, CoreResult, StoreError};
use crate::ids::{TokenId, UserId};
use crate::ports::{ApiToken, Store, User};
use chrono::{DateTime, Duration, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use std::sync::{Arc, OnceLock};

/// Timeouts and throttling limits.
#[derive(Debug, Clone)]
pub struct AccountPolicy {
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// Failed logins allowed per account within `login_window`.
    pub login_failures_per_account: i64,
    /// Failed logins allowed per client IP within `login_window`.
    pub login_failures_per_ip: i64,
    pub login_window: Duration,
    pub hash_params: HashParams,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        Self {
            session_idle: Duration::hours(12),
            session_absolute: Duration::days(30),
            login_failures_per_account: 10,
            login_failures_per_ip: 50,
            login_window: Duration::minutes(15),
            hash_params: HashParams::default(),
        }
    }
}

/// A signed-in principal, from a session or a personal access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub user: User,
    pub via_token: Option<TokenId>,
}

/// A successful login: the session id goes into a cookie and nowhere else.
#[derive(Debug)]
pub struct LoginOutcome {
    pub user: User,
    pub session_id: SecretString,
}

#[derive(Debug, Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    policy: AccountPolicy,
}

/// Usernames are case-insensitive: stored lower-case, 1–64 of `a-z 0-9 . _ -`.
pub fn normalize_username(raw: &str) -> CoreResult<String> {
    let name = raw.trim().to_lowercase();
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(name)
    } else {
        Err(CoreError::InvalidInput(
            "a username has 1 to 64 characters: letters, digits, '.', '_' or '-'".into(),
        ))
    }
}

/// A hash verified when the username is unknown, so both failures cost the same time.
fn dummy_hash(params: HashParams) -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        password::hash(
            &SecretString::from("bookbridge-timing-equaliser".to_owned()),
            params,
        )
        .unwrap_or_default()
    })
}

fn retry_after(window_start: DateTime<Utc>, window: Duration, now: DateTime<Utc>) -> u64 {
    u64::try_from((window_start + window - now).num_seconds().max(1)).unwrap_or(1)
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, policy: AccountPolicy) -> Self {
        Self {
            store,
            clock,
            policy,
        }
    }

    pub fn policy(&self) -> &AccountPolicy {
        &self.policy
    }

    async fn audit(
        &self,
        user: Option<UserId>,
        event: AuditEvent,
        ip: Option<&str>,
        details: serde_json::Value,
    ) -> CoreResult<()> {
        self.store
            .append_audit(&NewAuditEntry {
                user_id: user,
                event,
                at: self.clock.now(),
                client_ip: ip.map(str::to_owned),
                details,
            })
            .await?;
        Ok(())
    }

    pub async fn user(&self, username: &str) -> CoreResult<User> {
        let name = normalize_username(username)?;
        self.store
            .user_by_name(&name)
            .await?
            .ok_or(CoreError::NotFound("user"))
    }

    pub async fn create_user(&self, username: &str, password: &SecretString) -> CoreResult<User> {
        let name = normalize_username(username)?;
        password::validate(password)?;
        let hash = password::hash(password, self.policy.hash_params)?;
        let user = self
            .store
            .create_user(&name, &hash, self.clock.now())
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    CoreError::Conflict(format!("a user named '{name}' already exists"))
                }
                other => other.into(),
            })?;
        self.audit(
            Some(user.id),
            AuditEvent::UserCreated,
            None,
            json!({"username": name}),
        )
        .await?;
        Ok(user)
    }

    pub async fn list_users(&self) -> CoreResult<Vec<User>> {
        Ok(self.store.list_users().await?)
    }

    /// Sets a new password and ends every session of the user.
    pub async fn change_password(&self, username: &str, new: &SecretString) -> CoreResult<()> {
        let user = self.user(username).await?;
        password::validate(new)?;
        let hash = password::hash(new, self.policy.hash_params)?;
        self.store.set_password_hash(user.id, &hash).await?;
        self.store.delete_user_sessions(user.id).await?;
        self.audit(Some(user.id), AuditEvent::PasswordChanged, None, json!({}))
            .await
    }

    /// Deletes the user and everything they own. Their data key goes with them, so their
    /// sealed secrets (and any backup of them) can no longer be opened.
    pub async fn delete_user(&self, username: &str) -> CoreResult<()> {
        let user = self.user(username).await?;
        self.store.delete_user(user.id).await?;
        self.audit(
            Some(user.id),
            AuditEvent::UserDeleted,
            None,
            json!({"username": user.username}),
        )
        .await
    }

    /// Signs in: [`Accounts::reauthenticate`], then a new session.
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        ip: Option<&str>,
    ) -> CoreResult<LoginOutcome> {
        let user = self.reauthenticate(username, password, ip).await?;
        let session_id = token::new_session_id();
        self.store
            .create_session(&token::hash(&session_id), user.id, self.clock.now())
            .await?;
        self.audit(Some(user.id), AuditEvent::LoginSucceeded, ip, json!({}))
            .await?;
        Ok(LoginOutcome { user, session_id })
    }

    /// Checks a password, throttled per account and per client IP, without starting a
    /// session: sign-in, and asking again before deleting the account or exporting
    /// everything (SECURITY E6). Unknown user and wrong password produce the same error
    /// after the same work.
    pub async fn reauthenticate(
        &self,
        username: &str,
        password: &SecretString,
        ip: Option<&str>,
    ) -> CoreResult<User> {
        let now = self.clock.now();
        let window = self.policy.login_window;
        let name = username.trim().to_lowercase();
        let account_key = format!("login:user:{name}");
        let ip_key = ip.map(|ip| format!("login:ip:{ip}"));

        let (account_hits, account_start) = self
            .store
            .peek(&account_key, now, window.num_seconds())
            .await?;
        let mut throttled = (account_hits >= self.policy.login_failures_per_account)
            .then(|| retry_after(account_start, window, now));
        if let Some(key) = &ip_key {
            let (ip_hits, ip_start) = self.store.peek(key, now, window.num_seconds()).await?;
            if ip_hits >= self.policy.login_failures_per_ip {
                let wait = retry_after(ip_start, window, now);
                throttled = Some(throttled.map_or(wait, |w| w.max(wait)));
            }
        }
        if let Some(retry_after_secs) = throttled {
            self.audit(
                None,
                AuditEvent::LoginThrottled,
                ip,
                json!({"username": truncate(&name)}),
            )
            .await?;
            return Err(CoreError::RateLimited { retry_after_secs });
        }

        let user = match normalize_username(&name) {
            Ok(n) => self.store.user_by_name(&n).await?,
            Err(_) => None,
        };
        let ok = if let Some(u) = &user {
            password::verify(&u.password_hash, password)
        } else {
            let _ = password::verify(dummy_hash(self.policy.hash_params), password);
            false
        };
        let Some(user) = user.filter(|_| ok) else {
            self.store
                .hit(&account_key, now, window.num_seconds())
                .await?;
            if let Some(key) = &ip_key {
                self.store.hit(key, now, window.num_seconds()).await?;
            }
            let uid = self
                .store
                .user_by_name(&name)
                .await
                .ok()
                .flatten()
                .map(|u| u.id);
            self.audit(
                uid,
                AuditEvent::LoginFailed,
                ip,
                json!({"username": truncate(&name)}),
            )
            .await?;
            return Err(CoreError::BadCredentials);
        };

        self.store.clear(&account_key).await?;
        if password::needs_rehash(&user.password_hash, self.policy.hash_params) {
            let fresh = password::hash(password, self.policy.hash_params)?;
            self.store.set_password_hash(user.id, &fresh).await?;
        }
        Ok(user)
    }

    /// The user behind a session id, if the session is live; refreshes its idle timer.
    pub async fn authenticate_session(
        &self,
        session_id: &SecretString,
    ) -> CoreResult<Option<User>> {
        let now = self.clock.now();
        let key = token::hash(session_id);
        let Some(session) = self.store.session(&key).await? else {
            return Ok(None);
        };
        if now - session.created_at > self.policy.session_absolute
            || now - session.last_seen_at > self.policy.session_idle
        {
            self.store.delete_session(&key).await?;
            return Ok(None);
        }
        // Touch at most once a minute: a page load fires many requests.
        if now - session.last_seen_at > Duration::minutes(1) {
            self.store.touch_session(&key, now).await?;
        }
        Ok(self.store.user_by_id(session.user_id).await?)
    }

    pub async fn logout(&self, session_id: &SecretString, ip: Option<&str>) -> CoreResult<()> {
        let key = token::hash(session_id);
        if let Some(session) = self.store.session(&key).await? {
            self.store.delete_session(&key).await?;
            self.audit(Some(session.user_id), AuditEvent::Logout, ip, json!({}))
                .await?;
        }
        Ok(())
    }

    /// Creates a personal access token; the token is returned once and never stored.
    pub async fn create_token(
        &self,
        username: &str,
        name: Option<&str>,
    ) -> CoreResult<(SecretString, ApiToken)> {
        let user = self.user(username).await?;
        let label = name.map_or("token", str::trim);
        if label.is_empty() || label.chars().count() > 100 {
            return Err(CoreError::InvalidInput(
                "a token name has 1 to 100 characters".into(),
            ));
        }
        let secret = token::new_personal_token();
        let record = self
            .store
            .create_token(user.id, label, &token::hash(&secret), self.clock.now())
            .await?;
        self.audit(
            Some(user.id),
            AuditEvent::TokenCreated,
            None,
            json!({"token_id": record.id, "name": label}),
        )
        .await?;
        Ok((secret, record))
    }

    pub async fn list_tokens(&self, username: &str) -> CoreResult<Vec<ApiToken>> {
        let user = self.user(username).await?;
        Ok(self.store.list_tokens(user.id).await?)
    }

    pub async fn revoke_token(&self, username: &str, id: TokenId) -> CoreResult<()> {
        let user = self.user(username).await?;
        if !self.store.revoke_token(user.id, id).await? {
            return Err(CoreError::NotFound("token"));
        }
        self.audit(
            Some(user.id),
            AuditEvent::TokenRevoked,
            None,
            json!({"token_id": id}),
        )
        .await
    }

    /// The principal behind `Authorization: Bearer …`.
    pub async fn authenticate_token(
        &self,
        bearer: &SecretString,
    ) -> CoreResult<Option<Authenticated>> {
        if !bearer.expose_secret().starts_with(token::PAT_PREFIX) {
            return Ok(None);
        }
        let Some(t) = self
            .store
            .use_token(&token::hash(bearer), self.clock.now())
            .await?
        else {
            return Ok(None);
        };
        Ok(self
            .store
            .user_by_id(t.user_id)
            .await?
            .map(|user| Authenticated {
                user,
                via_token: Some(t.id),
            }))
    }

    pub async fn audit_log(
        &self,
        user: UserId,
        before: Option<i64>,
        limit: u32,
    ) -> CoreResult<Vec<AuditEntry>> {
        Ok(self
            .store
            .audit_for_user(user, before, limit.clamp(1, 200))
            .await?)
    }

    /// Events that belong to no account (master key rotation, …), newest first.
    pub async fn system_audit_log(
        &self,
        before: Option<i64>,
        limit: u32,
    ) -> CoreResult<Vec<AuditEntry>> {
        Ok(self.store.audit_system(before, limit.clamp(1, 200)).await?)
    }

    /// Records an event on behalf of another part of the system (key rotation, …).
    pub async fn record(
        &self,
        user: Option<UserId>,
        event: AuditEvent,
        details: serde_json::Value,
    ) -> CoreResult<()> {
        self.audit(user, event, None, details).await
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}
