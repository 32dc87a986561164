//! The connection store (`ConnectionStore`), written once for both backends like
//! `ports.rs`: `impl_connection_store!` stamps it onto a concrete store type.
//!
//! The refresh lease is a row-level compare-and-set: taking it bumps `lease_token` (the
//! fencing token) only when no unexpired lease exists, and a credential write succeeds
//! only while its token is still the newest, in the same statement that releases it. The
//! request budget is a token bucket per provider kept as integer thousandths and updated by
//! compare-and-set, so every instance spends from the same bucket.

/// Columns every connection query returns.
macro_rules! connection_columns {
    () => {
        "id, user_id, provider, state, external_id, display_name, scopes, settings, \
         expires_at, cursor, last_error_code, last_error, credentials IS NOT NULL AS has_credentials, \
         credentials_version, credentials_at, created_at, updated_at, disconnected_at"
    };
}
pub(crate) use connection_columns;

macro_rules! impl_connection_store {
    ($store:ident, $db:ty) => {
        mod connection_store {
            use super::$store;
            use crate::backend_err;
            use crate::library::{IN_SLICE, placeholders};
            use crate::time::{from_ms, to_ms};
            use async_trait::async_trait;
            use bb_core::connections::model::{ConnectionRecord, ConnectionState, LastError};
            use bb_core::connections::provider::ExternalAccount;
            use bb_core::error::StoreError;
            use bb_core::ids::{BatchId, ConnectionId, ItemId, UserId};
            use bb_core::ports::connections::Activation;
            use bb_core::ports::{
                ConnectionStore, PendingAuthorization, RefreshLease, StoreResult,
            };
            use chrono::{DateTime, Utc};
            use sqlx::Row;

            type DbRow = <$db as sqlx::Database>::Row;

            fn be(e: sqlx::Error) -> StoreError {
                backend_err(&e)
            }

            fn json_err(e: &serde_json::Error) -> StoreError {
                StoreError::Backend(format!("stored JSON is unreadable: {e}"))
            }

            fn record_from_row(row: &DbRow) -> StoreResult<ConnectionRecord> {
                let state: String = row.try_get("state").map_err(be)?;
                let scopes: String = row.try_get("scopes").map_err(be)?;
                let settings: String = row.try_get("settings").map_err(be)?;
                let external_id: Option<String> = row.try_get("external_id").map_err(be)?;
                let code: Option<String> = row.try_get("last_error_code").map_err(be)?;
                let message: Option<String> = row.try_get("last_error").map_err(be)?;
                Ok(ConnectionRecord {
                    id: ConnectionId(row.try_get("id").map_err(be)?),
                    user_id: UserId(row.try_get("user_id").map_err(be)?),
                    provider: row.try_get("provider").map_err(be)?,
                    state: ConnectionState::parse(&state).ok_or_else(|| {
                        StoreError::Backend(format!("unknown connection state {state}"))
                    })?,
                    account: external_id.map(|external_id| ExternalAccount {
                        external_id,
                        display_name: row.try_get("display_name").unwrap_or(None),
                    }),
                    scopes: serde_json::from_str(&scopes).map_err(|e| json_err(&e))?,
                    settings: serde_json::from_str(&settings).map_err(|e| json_err(&e))?,
                    expires_at: row
                        .try_get::<Option<i64>, _>("expires_at")
                        .map_err(be)?
                        .map(from_ms),
                    cursor: row.try_get("cursor").map_err(be)?,
                    last_error: code.map(|code| LastError {
                        code,
                        message: message.unwrap_or_default(),
                    }),
                    has_credentials: row.try_get("has_credentials").map_err(be)?,
                    credentials_version: row.try_get("credentials_version").map_err(be)?,
                    credentials_at: row
                        .try_get::<Option<i64>, _>("credentials_at")
                        .map_err(be)?
                        .map(from_ms),
                    created_at: from_ms(row.try_get("created_at").map_err(be)?),
                    updated_at: from_ms(row.try_get("updated_at").map_err(be)?),
                    disconnected_at: row
                        .try_get::<Option<i64>, _>("disconnected_at")
                        .map_err(be)?
                        .map(from_ms),
                })
            }

            fn pending_from_row(row: &DbRow) -> StoreResult<Option<PendingAuthorization>> {
                let pending: Option<Vec<u8>> = row.try_get("pending").map_err(be)?;
                let Some(pending) = pending else {
                    return Ok(None);
                };
                Ok(Some(PendingAuthorization {
                    connection: record_from_row(row)?,
                    pending,
                    session_hash: row.try_get("pending_session").map_err(be)?,
                    expires_at: row
                        .try_get::<Option<i64>, _>("pending_expires_at")
                        .map_err(be)?
                        .map(from_ms),
                }))
            }

            const PENDING_COLUMNS: &str = concat!(
                crate::connections::connection_columns!(),
                ", pending, pending_session, pending_expires_at"
            );

            #[async_trait]
            impl ConnectionStore for $store {
                async fn create_connection(
                    &self,
                    user: UserId,
                    provider: &str,
                    now: DateTime<Utc>,
                ) -> StoreResult<ConnectionRecord> {
                    let row = sqlx::query(concat!(
                        "INSERT INTO connections (user_id, provider, state, created_at, updated_at) \
                         VALUES ($1, $2, 'pending', $3, $3) RETURNING ",
                        crate::connections::connection_columns!()
                    ))
                    .bind(user.0)
                    .bind(provider)
                    .bind(to_ms(now))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(be)?;
                    record_from_row(&row)
                }

                async fn set_pending(
                    &self,
                    id: ConnectionId,
                    pending: &[u8],
                    state_hash: Option<&str>,
                    session_hash: Option<&str>,
                    expires_at: DateTime<Utc>,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE connections SET pending = $2, pending_state_hash = $3, \
                         pending_session = $4, pending_expires_at = $5, updated_at = $6 \
                         WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(pending)
                    .bind(state_hash)
                    .bind(session_hash)
                    .bind(to_ms(expires_at))
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn take_pending_by_state(
                    &self,
                    state_hash: &str,
                ) -> StoreResult<Option<PendingAuthorization>> {
                    let sql = format!(
                        "UPDATE connections SET pending_state_hash = NULL \
                         WHERE pending_state_hash = $1 RETURNING {PENDING_COLUMNS}"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(state_hash)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(be)?;
                    match row {
                        Some(r) => pending_from_row(&r),
                        None => Ok(None),
                    }
                }

                async fn pending_of(
                    &self,
                    user: UserId,
                    id: ConnectionId,
                ) -> StoreResult<Option<PendingAuthorization>> {
                    let sql = format!(
                        "SELECT {PENDING_COLUMNS} FROM connections \
                         WHERE id = $1 AND user_id = $2 AND state = 'pending'"
                    );
                    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(id.0)
                        .bind(user.0)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(be)?;
                    match row {
                        Some(r) => pending_from_row(&r),
                        None => Ok(None),
                    }
                }

                async fn activate(
                    &self,
                    id: ConnectionId,
                    activation: &Activation<'_>,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    let scopes = serde_json::to_string(activation.scopes)
                        .map_err(|e| json_err(&e))?;
                    sqlx::query(
                        "UPDATE connections SET state = 'active', external_id = $2, \
                         display_name = $3, credentials = $4, scopes = $5, expires_at = $6, \
                         credentials_version = credentials_version + 1, credentials_at = $7, \
                         pending = NULL, \
                         pending_state_hash = NULL, pending_session = NULL, \
                         pending_expires_at = NULL, last_error_code = NULL, last_error = NULL, \
                         updated_at = $7 WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(&activation.account.external_id)
                    .bind(activation.account.display_name.as_deref())
                    .bind(activation.credentials)
                    .bind(scopes)
                    .bind(activation.expires_at.map(to_ms))
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn connection(
                    &self,
                    user: UserId,
                    id: ConnectionId,
                ) -> StoreResult<Option<ConnectionRecord>> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        crate::connections::connection_columns!(),
                        " FROM connections WHERE id = $1 AND user_id = $2"
                    ))
                    .bind(id.0)
                    .bind(user.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)?;
                    row.as_ref().map(record_from_row).transpose()
                }

                async fn connection_by_id(
                    &self,
                    id: ConnectionId,
                ) -> StoreResult<Option<ConnectionRecord>> {
                    let row = sqlx::query(concat!(
                        "SELECT ",
                        crate::connections::connection_columns!(),
                        " FROM connections WHERE id = $1"
                    ))
                    .bind(id.0)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)?;
                    row.as_ref().map(record_from_row).transpose()
                }

                async fn list_connections(
                    &self,
                    user: UserId,
                ) -> StoreResult<Vec<ConnectionRecord>> {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        crate::connections::connection_columns!(),
                        " FROM connections WHERE user_id = $1 ORDER BY id"
                    ))
                    .bind(user.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter().map(record_from_row).collect()
                }

                async fn connections_in_state(
                    &self,
                    state: ConnectionState,
                    limit: u32,
                ) -> StoreResult<Vec<ConnectionRecord>> {
                    let rows = sqlx::query(concat!(
                        "SELECT ",
                        crate::connections::connection_columns!(),
                        " FROM connections WHERE state = $1 ORDER BY updated_at, id LIMIT $2"
                    ))
                    .bind(state.as_str())
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    rows.iter().map(record_from_row).collect()
                }

                async fn set_connection_state(
                    &self,
                    id: ConnectionId,
                    state: ConnectionState,
                    error: Option<(&str, &str)>,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    // A disconnected connection stays disconnected.
                    sqlx::query(
                        "UPDATE connections SET state = $2, last_error_code = $3, \
                         last_error = $4, updated_at = $5 \
                         WHERE id = $1 AND state <> 'disconnected'",
                    )
                    .bind(id.0)
                    .bind(state.as_str())
                    .bind(error.map(|e| e.0))
                    .bind(error.map(|e| e.1))
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn set_connection_settings(
                    &self,
                    id: ConnectionId,
                    settings: &serde_json::Value,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    let settings = serde_json::to_string(settings).map_err(|e| json_err(&e))?;
                    sqlx::query(
                        "UPDATE connections SET settings = $2, updated_at = $3 WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(settings)
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn set_cursor(
                    &self,
                    id: ConnectionId,
                    cursor: Option<&str>,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    let _ = now;
                    sqlx::query("UPDATE connections SET cursor = $2 WHERE id = $1")
                        .bind(id.0)
                        .bind(cursor)
                        .execute(&self.pool)
                        .await
                        .map_err(be)?;
                    Ok(())
                }

                async fn credentials(&self, id: ConnectionId) -> StoreResult<Option<Vec<u8>>> {
                    let v: Option<Option<Vec<u8>>> =
                        sqlx::query_scalar("SELECT credentials FROM connections WHERE id = $1")
                            .bind(id.0)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(be)?;
                    Ok(v.flatten())
                }

                async fn acquire_refresh_lease(
                    &self,
                    id: ConnectionId,
                    owner: &str,
                    now: DateTime<Utc>,
                    until: DateTime<Utc>,
                ) -> StoreResult<Option<RefreshLease>> {
                    let row = sqlx::query(
                        "UPDATE connections SET lease_owner = $2, lease_token = lease_token + 1, \
                         lease_expires_at = $4 WHERE id = $1 AND state <> 'disconnected' \
                         AND (lease_expires_at IS NULL OR lease_expires_at <= $3) \
                         RETURNING lease_token, credentials, credentials_version",
                    )
                    .bind(id.0)
                    .bind(owner)
                    .bind(to_ms(now))
                    .bind(to_ms(until))
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(be)?;
                    row.map(|r| {
                        Ok(RefreshLease {
                            token: r.try_get("lease_token").map_err(be)?,
                            credentials: r.try_get("credentials").map_err(be)?,
                            credentials_version: r.try_get("credentials_version").map_err(be)?,
                        })
                    })
                    .transpose()
                }

                async fn commit_credentials(
                    &self,
                    id: ConnectionId,
                    lease_token: i64,
                    credentials: &[u8],
                    expires_at: Option<DateTime<Utc>>,
                    now: DateTime<Utc>,
                ) -> StoreResult<bool> {
                    let done = sqlx::query(
                        "UPDATE connections SET credentials = $3, expires_at = $4, \
                         credentials_version = credentials_version + 1, credentials_at = $5, \
                         lease_owner = NULL, \
                         lease_expires_at = NULL, last_error_code = NULL, last_error = NULL, \
                         updated_at = $5 \
                         WHERE id = $1 AND lease_token = $2 AND state <> 'disconnected'",
                    )
                    .bind(id.0)
                    .bind(lease_token)
                    .bind(credentials)
                    .bind(expires_at.map(to_ms))
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(done.rows_affected() == 1)
                }

                async fn release_refresh_lease(
                    &self,
                    id: ConnectionId,
                    lease_token: i64,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE connections SET lease_owner = NULL, lease_expires_at = NULL \
                         WHERE id = $1 AND lease_token = $2",
                    )
                    .bind(id.0)
                    .bind(lease_token)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn disconnect_connection(
                    &self,
                    id: ConnectionId,
                    now: DateTime<Utc>,
                ) -> StoreResult<()> {
                    sqlx::query(
                        "UPDATE connections SET state = 'disconnected', credentials = NULL, \
                         pending = NULL, pending_state_hash = NULL, pending_session = NULL, \
                         cursor = NULL, lease_owner = NULL, lease_expires_at = NULL, \
                         disconnected_at = $2, updated_at = $2 WHERE id = $1",
                    )
                    .bind(id.0)
                    .bind(to_ms(now))
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(())
                }

                async fn tag_batch(&self, batch: BatchId, id: ConnectionId) -> StoreResult<()> {
                    sqlx::query("UPDATE import_batches SET connection_id = $2 WHERE id = $1")
                        .bind(batch.0)
                        .bind(id.0)
                        .execute(&self.pool)
                        .await
                        .map_err(be)?;
                    Ok(())
                }

                async fn batches_of_connection(
                    &self,
                    id: ConnectionId,
                ) -> StoreResult<Vec<BatchId>> {
                    let ids: Vec<i64> = sqlx::query_scalar(
                        "SELECT id FROM import_batches WHERE connection_id = $1 ORDER BY id DESC",
                    )
                    .bind(id.0)
                    .fetch_all(&self.pool)
                    .await
                    .map_err(be)?;
                    Ok(ids.into_iter().map(BatchId).collect())
                }

                async fn connection_source_keys(
                    &self,
                    user: UserId,
                    batches: &[BatchId],
                    provider: &str,
                ) -> StoreResult<Vec<String>> {
                    let mut keys = Vec::new();
                    for slice in batches.chunks(IN_SLICE) {
                        let list = placeholders(3, slice.len());
                        let sql = format!(
                            "SELECT DISTINCT s.source_key FROM item_sources s \
                             JOIN item_source_versions v ON v.source_id = s.id \
                             WHERE s.user_id = $1 AND s.provider = $2 \
                             AND v.origin_kind = 'batch' AND v.origin_id IN ({list})"
                        );
                        let mut q = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                            .bind(user.0)
                            .bind(provider);
                        for b in slice {
                            q = q.bind(b.0);
                        }
                        let found: Vec<String> =
                            q.fetch_all(&self.pool).await.map_err(be)?;
                        keys.extend(found);
                    }
                    keys.sort();
                    keys.dedup();
                    Ok(keys)
                }

                async fn withdraw_sources(
                    &self,
                    user: UserId,
                    batches: &[BatchId],
                    provider: &str,
                    keys: &[String],
                ) -> StoreResult<Vec<ItemId>> {
                    let mut tx = self.pool.begin().await.map_err(be)?;
                    let mut sources: Vec<(i64, i64)> = Vec::new();
                    for slice in keys.chunks(IN_SLICE) {
                        let list = placeholders(3, slice.len());
                        let sql = format!(
                            "SELECT id, item_id FROM item_sources WHERE user_id = $1 \
                             AND provider = $2 AND source_key IN ({list})"
                        );
                        let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                            .bind(user.0)
                            .bind(provider);
                        for k in slice {
                            q = q.bind(k);
                        }
                        let found: Vec<(i64, i64)> = q.fetch_all(&mut *tx).await.map_err(be)?;
                        sources.extend(found);
                    }
                    let mut items = Vec::new();
                    let batch_ids: Vec<i64> = batches.iter().map(|b| b.0).collect();
                    for (source, item) in &sources {
                        for slice in batch_ids.chunks(IN_SLICE) {
                            let list = placeholders(2, slice.len());
                            let sql = format!(
                                "DELETE FROM item_source_versions WHERE source_id = $1 \
                                 AND origin_kind = 'batch' AND origin_id IN ({list})"
                            );
                            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(*source);
                            for b in slice {
                                q = q.bind(*b);
                            }
                            q.execute(&mut *tx).await.map_err(be)?;
                        }
                        sqlx::query(
                            "DELETE FROM item_sources WHERE id = $1 AND NOT EXISTS \
                             (SELECT 1 FROM item_source_versions v WHERE v.source_id = $1)",
                        )
                        .bind(*source)
                        .execute(&mut *tx)
                        .await
                        .map_err(be)?;
                        items.push(ItemId(*item));
                    }
                    tx.commit().await.map_err(be)?;
                    items.sort();
                    items.dedup();
                    Ok(items)
                }

                async fn take_budget(
                    &self,
                    provider: &str,
                    capacity: u32,
                    per_minute: u32,
                    cost: u32,
                    now: DateTime<Utc>,
                ) -> StoreResult<Result<(), u64>> {
                    let capacity_milli = i64::from(capacity.max(1)) * 1000;
                    // A cost above the bucket could never be granted; it waits for a full one.
                    let cost_milli = (i64::from(cost.max(1)) * 1000).min(capacity_milli);
                    let per_minute = i64::from(per_minute.max(1));
                    let now_ms = to_ms(now);
                    sqlx::query(
                        "INSERT INTO rate_budgets (provider, tokens_milli, updated_at) \
                         VALUES ($1, $2, $3) ON CONFLICT (provider) DO NOTHING",
                    )
                    .bind(provider)
                    .bind(capacity_milli)
                    .bind(now_ms)
                    .execute(&self.pool)
                    .await
                    .map_err(be)?;
                    // Compare-and-set: another instance taking at the same moment makes
                    // this update miss, and the loop reads again.
                    for _ in 0..64 {
                        let (tokens, updated): (i64, i64) = sqlx::query_as(
                            "SELECT tokens_milli, updated_at FROM rate_budgets WHERE provider = $1",
                        )
                        .bind(provider)
                        .fetch_one(&self.pool)
                        .await
                        .map_err(be)?;
                        let elapsed = (now_ms - updated).max(0);
                        // tokens per ms = per_minute / 60_000; in thousandths: per_minute / 60.
                        let refill = elapsed.saturating_mul(per_minute) / 60;
                        let available = tokens.saturating_add(refill).min(capacity_milli);
                        let stamp = now_ms.max(updated);
                        if available < cost_milli {
                            let missing = cost_milli - available;
                            let wait_ms = (missing * 60 + per_minute - 1) / per_minute;
                            return Ok(Err(u64::try_from(wait_ms).unwrap_or(u64::MAX)));
                        }
                        let done = sqlx::query(
                            "UPDATE rate_budgets SET tokens_milli = $2, updated_at = $3, \
                             granted = granted + $6 \
                             WHERE provider = $1 AND tokens_milli = $4 AND updated_at = $5",
                        )
                        .bind(provider)
                        .bind(available - cost_milli)
                        .bind(stamp)
                        .bind(tokens)
                        .bind(updated)
                        .bind(i64::from(cost.max(1)))
                        .execute(&self.pool)
                        .await
                        .map_err(be)?;
                        if done.rows_affected() == 1 {
                            return Ok(Ok(()));
                        }
                    }
                    Ok(Err(10))
                }

                async fn budget_granted(&self, provider: &str) -> StoreResult<u64> {
                    let v: Option<i64> =
                        sqlx::query_scalar("SELECT granted FROM rate_budgets WHERE provider = $1")
                            .bind(provider)
                            .fetch_optional(&self.pool)
                            .await
                            .map_err(be)?;
                    Ok(u64::try_from(v.unwrap_or(0)).unwrap_or(0))
                }
            }
        }
    };
}
pub(crate) use impl_connection_store;
