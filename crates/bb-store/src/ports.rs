//! The store ports' SQL, written once for both backends. SQLite and PostgreSQL both accept
//! `$N` placeholders, `RETURNING` and `ON CONFLICT`, so each query below runs unchanged on
//! either pool; `impl_store_ports!` stamps the implementations onto a concrete store type.

macro_rules! impl_store_ports {
    ($store:ty) => {
        use crate::time::{from_ms, to_ms};
        use async_trait::async_trait;
        use bb_core::audit::{AuditEntry, NewAuditEntry};
        use bb_core::ids::{DataKeyId, TokenId, UserId};
        use bb_core::ports::{
            ApiToken, ApiTokenStore, AuditStore, KeyStore, MasterKeyVersion, SecretStore,
            SessionRecord, SessionStore, Store, StoreResult, ThrottleStore, User, UserStore,
            WrappedDataKey,
        };
        use chrono::{DateTime, Utc};
        use sqlx::Row;

        fn version_to_i64(v: u32) -> i64 {
            i64::from(v)
        }

        fn version_from_i64(v: i64) -> StoreResult<u32> {
            u32::try_from(v).map_err(|_| StoreError::Backend(format!("bad key version {v}")))
        }

        fn user_from_row<R: Row>(row: &R) -> Result<User, sqlx::Error>
        where
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> &'r str: sqlx::ColumnIndex<R>,
        {
            Ok(User {
                id: UserId(row.try_get("id")?),
                username: row.try_get("username")?,
                password_hash: row.try_get("password_hash")?,
                created_at: from_ms(row.try_get("created_at")?),
            })
        }

        fn token_from_row<R: Row>(row: &R) -> Result<ApiToken, sqlx::Error>
        where
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> &'r str: sqlx::ColumnIndex<R>,
        {
            Ok(ApiToken {
                id: TokenId(row.try_get("id")?),
                user_id: UserId(row.try_get("user_id")?),
                name: row.try_get("name")?,
                created_at: from_ms(row.try_get("created_at")?),
                last_used_at: row.try_get::<Option<i64>, _>("last_used_at")?.map(from_ms),
            })
        }

        fn audit_from_row<R: Row>(r: &R) -> Result<AuditEntry, sqlx::Error>
        where
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<i64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Option<String>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> &'r str: sqlx::ColumnIndex<R>,
        {
            let details: String = r.try_get("details")?;
            Ok(AuditEntry {
                id: r.try_get("id")?,
                user_id: r.try_get::<Option<i64>, _>("user_id")?.map(UserId),
                event: r.try_get("event")?,
                at: from_ms(r.try_get("at")?),
                client_ip: r.try_get("client_ip")?,
                details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
            })
        }

        fn data_key_from_row<R: Row>(row: &R) -> Result<WrappedDataKey, StoreError>
        where
            for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> Vec<u8>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
            for<'r> &'r str: sqlx::ColumnIndex<R>,
        {
            let get = |e: sqlx::Error| backend_err(&e);
            Ok(WrappedDataKey {
                id: DataKeyId(row.try_get("id").map_err(get)?),
                user_id: UserId(row.try_get("user_id").map_err(get)?),
                master_version: version_from_i64(row.try_get("master_version").map_err(get)?)?,
                wrapped: row.try_get("wrapped").map_err(get)?,
            })
        }

        #[async_trait]
        impl UserStore for $store {
            async fn create_user(
                &self,
                username: &str,
                password_hash: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<User> {
                let row = sqlx::query(
                    "INSERT INTO users (username, password_hash, created_at) VALUES ($1, $2, $3)
                     RETURNING id, username, password_hash, created_at",
                )
                .bind(username)
                .bind(password_hash)
                .bind(to_ms(now))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| match backend_err(&e) {
                    StoreError::Conflict(_) => StoreError::Conflict("username"),
                    other => other,
                })?;
                user_from_row(&row).map_err(|e| backend_err(&e))
            }

            async fn user_by_name(&self, username: &str) -> StoreResult<Option<User>> {
                let row = sqlx::query(
                    "SELECT id, username, password_hash, created_at FROM users WHERE username = $1",
                )
                .bind(username)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                row.map(|r| user_from_row(&r)).transpose().map_err(|e| backend_err(&e))
            }

            async fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
                let row = sqlx::query(
                    "SELECT id, username, password_hash, created_at FROM users WHERE id = $1",
                )
                .bind(id.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                row.map(|r| user_from_row(&r)).transpose().map_err(|e| backend_err(&e))
            }

            async fn list_users(&self) -> StoreResult<Vec<User>> {
                let rows = sqlx::query(
                    "SELECT id, username, password_hash, created_at FROM users ORDER BY username",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                rows.iter().map(|r| user_from_row(r).map_err(|e| backend_err(&e))).collect()
            }

            async fn set_password_hash(&self, id: UserId, password_hash: &str) -> StoreResult<()> {
                sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                    .bind(password_hash)
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn delete_user(&self, id: UserId) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM users WHERE id = $1")
                    .bind(id.0)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl SessionStore for $store {
            async fn create_session(
                &self,
                id_hash: &str,
                user: UserId,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at)
                     VALUES ($1, $2, $3, $3)",
                )
                .bind(id_hash)
                .bind(user.0)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn session(&self, id_hash: &str) -> StoreResult<Option<SessionRecord>> {
                let row = sqlx::query(
                    "SELECT user_id, created_at, last_seen_at FROM sessions WHERE id_hash = $1",
                )
                .bind(id_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                row.map(|r| -> Result<SessionRecord, sqlx::Error> {
                    Ok(SessionRecord {
                        user_id: UserId(r.try_get("user_id")?),
                        created_at: from_ms(r.try_get("created_at")?),
                        last_seen_at: from_ms(r.try_get("last_seen_at")?),
                    })
                })
                .transpose()
                .map_err(|e| backend_err(&e))
            }

            async fn touch_session(&self, id_hash: &str, now: DateTime<Utc>) -> StoreResult<()> {
                sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
                    .bind(to_ms(now))
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
                    .bind(id_hash)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn delete_user_sessions(&self, user: UserId) -> StoreResult<()> {
                sqlx::query("DELETE FROM sessions WHERE user_id = $1")
                    .bind(user.0)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn purge_sessions(
                &self,
                created_before: DateTime<Utc>,
                idle_before: DateTime<Utc>,
            ) -> StoreResult<u64> {
                let done =
                    sqlx::query("DELETE FROM sessions WHERE created_at < $1 OR last_seen_at < $2")
                        .bind(to_ms(created_before))
                        .bind(to_ms(idle_before))
                        .execute(&self.pool)
                        .await
                        .map_err(|e| backend_err(&e))?;
                Ok(done.rows_affected())
            }
        }

        #[async_trait]
        impl ApiTokenStore for $store {
            async fn create_token(
                &self,
                user: UserId,
                name: &str,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<ApiToken> {
                let row = sqlx::query(
                    "INSERT INTO api_tokens (user_id, name, token_hash, created_at)
                     VALUES ($1, $2, $3, $4)
                     RETURNING id, user_id, name, created_at, last_used_at",
                )
                .bind(user.0)
                .bind(name)
                .bind(token_hash)
                .bind(to_ms(now))
                .fetch_one(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                token_from_row(&row).map_err(|e| backend_err(&e))
            }

            async fn use_token(
                &self,
                token_hash: &str,
                now: DateTime<Utc>,
            ) -> StoreResult<Option<ApiToken>> {
                let row = sqlx::query(
                    "UPDATE api_tokens SET last_used_at = $1
                     WHERE token_hash = $2 AND revoked_at IS NULL
                     RETURNING id, user_id, name, created_at, last_used_at",
                )
                .bind(to_ms(now))
                .bind(token_hash)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                row.map(|r| token_from_row(&r)).transpose().map_err(|e| backend_err(&e))
            }

            async fn list_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, name, created_at, last_used_at FROM api_tokens
                     WHERE user_id = $1 AND revoked_at IS NULL ORDER BY id",
                )
                .bind(user.0)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                rows.iter().map(|r| token_from_row(r).map_err(|e| backend_err(&e))).collect()
            }

            async fn revoke_token(&self, user: UserId, id: TokenId) -> StoreResult<bool> {
                // The row is kept (revoked) so `last_used_at` stays available for forensics.
                let done = sqlx::query(
                    "UPDATE api_tokens SET revoked_at = created_at
                     WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL",
                )
                .bind(id.0)
                .bind(user.0)
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl AuditStore for $store {
            async fn append_audit(&self, entry: &NewAuditEntry) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO audit_log (user_id, event, at, client_ip, details)
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(entry.user_id.map(|u| u.0))
                .bind(entry.event.as_str())
                .bind(to_ms(entry.at))
                .bind(entry.client_ip.as_deref())
                .bind(entry.details.to_string())
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn audit_for_user(
                &self,
                user: UserId,
                before: Option<i64>,
                limit: u32,
            ) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, event, at, client_ip, details FROM audit_log
                     WHERE user_id = $1 AND id < $2 ORDER BY id DESC LIMIT $3",
                )
                .bind(user.0)
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                rows.iter()
                    .map(audit_from_row)
                    .collect::<Result<_, _>>()
                    .map_err(|e| backend_err(&e))
            }

            async fn audit_system(
                &self,
                before: Option<i64>,
                limit: u32,
            ) -> StoreResult<Vec<AuditEntry>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, event, at, client_ip, details FROM audit_log
                     WHERE user_id IS NULL AND id < $1 ORDER BY id DESC LIMIT $2",
                )
                .bind(before.unwrap_or(i64::MAX))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                rows.iter()
                    .map(audit_from_row)
                    .collect::<Result<_, _>>()
                    .map_err(|e| backend_err(&e))
            }
        }

        #[async_trait]
        impl ThrottleStore for $store {
            async fn hit(
                &self,
                key: &str,
                now: DateTime<Utc>,
                window_secs: i64,
            ) -> StoreResult<(i64, DateTime<Utc>)> {
                let now_ms = to_ms(now);
                let stale_before = now_ms - window_secs * 1000;
                // Old values on the right-hand side on both backends, so both CASEs see
                // the window as it was before this hit.
                let row = sqlx::query(
                    "INSERT INTO throttle (key, window_start, hits) VALUES ($1, $2, 1)
                     ON CONFLICT (key) DO UPDATE SET
                       hits = CASE WHEN throttle.window_start <= $3 THEN 1 ELSE throttle.hits + 1 END,
                       window_start = CASE WHEN throttle.window_start <= $3 THEN $2 ELSE throttle.window_start END
                     RETURNING hits, window_start",
                )
                .bind(key)
                .bind(now_ms)
                .bind(stale_before)
                .fetch_one(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                let hits: i64 = row.try_get("hits").map_err(|e| backend_err(&e))?;
                let start: i64 = row.try_get("window_start").map_err(|e| backend_err(&e))?;
                Ok((hits, from_ms(start)))
            }

            async fn peek(
                &self,
                key: &str,
                now: DateTime<Utc>,
                window_secs: i64,
            ) -> StoreResult<(i64, DateTime<Utc>)> {
                let now_ms = to_ms(now);
                let row = sqlx::query("SELECT hits, window_start FROM throttle WHERE key = $1")
                    .bind(key)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                let Some(row) = row else { return Ok((0, now)) };
                let hits: i64 = row.try_get("hits").map_err(|e| backend_err(&e))?;
                let start: i64 = row.try_get("window_start").map_err(|e| backend_err(&e))?;
                if start <= now_ms - window_secs * 1000 {
                    Ok((0, now))
                } else {
                    Ok((hits, from_ms(start)))
                }
            }

            async fn clear(&self, key: &str) -> StoreResult<()> {
                sqlx::query("DELETE FROM throttle WHERE key = $1")
                    .bind(key)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(())
            }
        }

        #[async_trait]
        impl KeyStore for $store {
            async fn master_key_versions(&self) -> StoreResult<Vec<MasterKeyVersion>> {
                let rows = sqlx::query(
                    "SELECT version, check_value, created_at, retired_at FROM master_keys
                     ORDER BY version",
                )
                .fetch_all(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                rows.iter()
                    .map(|r| {
                        let get = |e: sqlx::Error| backend_err(&e);
                        Ok(MasterKeyVersion {
                            version: version_from_i64(r.try_get("version").map_err(get)?)?,
                            check_value: r.try_get("check_value").map_err(get)?,
                            created_at: from_ms(r.try_get("created_at").map_err(get)?),
                            retired_at: r
                                .try_get::<Option<i64>, _>("retired_at")
                                .map_err(get)?
                                .map(from_ms),
                        })
                    })
                    .collect()
            }

            async fn add_master_key_version(
                &self,
                version: u32,
                check_value: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO master_keys (version, check_value, created_at) VALUES ($1, $2, $3)",
                )
                .bind(version_to_i64(version))
                .bind(check_value)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await
                .map_err(|e| match backend_err(&e) {
                    StoreError::Conflict(_) => StoreError::Conflict("master key version"),
                    other => other,
                })?;
                Ok(())
            }

            async fn retire_master_key_version(
                &self,
                version: u32,
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "UPDATE master_keys SET retired_at = $1 WHERE version = $2 AND retired_at IS NULL",
                )
                .bind(to_ms(now))
                .bind(version_to_i64(version))
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn data_key_for_user(&self, user: UserId) -> StoreResult<Option<WrappedDataKey>> {
                let row = sqlx::query(
                    "SELECT id, user_id, master_version, wrapped FROM data_keys WHERE user_id = $1",
                )
                .bind(user.0)
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                row.map(|r| data_key_from_row(&r)).transpose()
            }

            async fn insert_data_key(
                &self,
                user: UserId,
                master_version: u32,
                wrapped: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<WrappedDataKey> {
                sqlx::query(
                    "INSERT INTO data_keys (user_id, master_version, wrapped, created_at)
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id) DO NOTHING",
                )
                .bind(user.0)
                .bind(version_to_i64(master_version))
                .bind(wrapped)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                self.data_key_for_user(user).await?.ok_or(StoreError::NotFound)
            }

            async fn data_keys_not_under(
                &self,
                version: u32,
                limit: u32,
            ) -> StoreResult<Vec<WrappedDataKey>> {
                let rows = sqlx::query(
                    "SELECT id, user_id, master_version, wrapped FROM data_keys
                     WHERE master_version <> $1 ORDER BY id LIMIT $2",
                )
                .bind(version_to_i64(version))
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                rows.iter().map(|r| data_key_from_row(r)).collect()
            }

            async fn rewrap_data_key(
                &self,
                id: DataKeyId,
                from_version: u32,
                to_version: u32,
                wrapped: &[u8],
            ) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE data_keys SET master_version = $1, wrapped = $2
                     WHERE id = $3 AND master_version = $4",
                )
                .bind(version_to_i64(to_version))
                .bind(wrapped)
                .bind(id.0)
                .bind(version_to_i64(from_version))
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                Ok(done.rows_affected() > 0)
            }

            async fn count_data_keys_under(&self, version: u32) -> StoreResult<u64> {
                let n: i64 =
                    sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE master_version = $1")
                        .bind(version_to_i64(version))
                        .fetch_one(&self.pool)
                        .await
                        .map_err(|e| backend_err(&e))?;
                Ok(u64::try_from(n).unwrap_or(0))
            }
        }

        #[async_trait]
        impl SecretStore for $store {
            async fn put_secret(
                &self,
                user: UserId,
                name: &str,
                ciphertext: &[u8],
                now: DateTime<Utc>,
            ) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO secrets (user_id, name, ciphertext, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $4)
                     ON CONFLICT (user_id, name) DO UPDATE SET
                       ciphertext = excluded.ciphertext, updated_at = excluded.updated_at",
                )
                .bind(user.0)
                .bind(name)
                .bind(ciphertext)
                .bind(to_ms(now))
                .execute(&self.pool)
                .await
                .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn get_secret(&self, user: UserId, name: &str) -> StoreResult<Option<Vec<u8>>> {
                sqlx::query_scalar("SELECT ciphertext FROM secrets WHERE user_id = $1 AND name = $2")
                    .bind(user.0)
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))
            }

            async fn delete_secret(&self, user: UserId, name: &str) -> StoreResult<bool> {
                let done = sqlx::query("DELETE FROM secrets WHERE user_id = $1 AND name = $2")
                    .bind(user.0)
                    .bind(name)
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(done.rows_affected() > 0)
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn ping(&self) -> StoreResult<()> {
                sqlx::query("SELECT 1")
                    .execute(&self.pool)
                    .await
                    .map_err(|e| backend_err(&e))?;
                Ok(())
            }

            async fn close(&self) {
                self.pool.close().await;
            }
        }
    };
}

pub(crate) use impl_store_ports;
