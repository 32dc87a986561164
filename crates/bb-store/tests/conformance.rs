//! The store contract, run on SQLite and on PostgreSQL, each on a fresh database.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use bb_core::audit::{AuditEvent, NewAuditEntry};
use bb_core::error::StoreError;
use bb_core::ids::UserId;
use bb_core::ports::Store;
use bb_store::testing::{fresh_sqlite, on_both};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap()
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$fake", t0())
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn migration_folders_carry_the_same_versions() {
    let sqlite: Vec<(i64, String)> = bb_store::SqliteStore::migrator()
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    let pg: Vec<(i64, String)> = bb_store::PgStore::migrator()
        .iter()
        .map(|m| (m.version, m.description.to_string()))
        .collect();
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite, pg,
        "migrations/sqlite and migrations/postgres must match"
    );
}

/// One setting of a pool connection, as SQLite reports it.
async fn pragma<T>(pool: &sqlx::SqlitePool, name: &str) -> T
where
    T: for<'r> sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send + Unpin,
{
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("PRAGMA {name}")))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn sqlite_runs_in_wal_with_foreign_keys_and_busy_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_sqlite(dir.path()).await.unwrap();
    let pool = db.sqlite.as_ref().unwrap().pool();
    assert_eq!(pragma::<String>(pool, "journal_mode").await, "wal");
    assert_eq!(pragma::<i64>(pool, "foreign_keys").await, 1);
    let busy: i64 = pragma(pool, "busy_timeout").await;
    assert!(busy >= 5000, "busy timeout {busy}");
    // Imports write megabytes per chunk; checkpointing at SQLite's default 1,000 pages
    // rewrote the same index pages chunk after chunk (BENCHMARKS.md, session 6).
    assert_eq!(pragma::<i64>(pool, "wal_autocheckpoint").await, 4000);
    // A new database gets pages that fit kilobyte-sized rows (BENCHMARKS.md, session 7).
    let page: i64 = pragma(pool, "page_size").await;
    assert_eq!(page, i64::from(bb_store::sqlite::PAGE_SIZE));
    assert_eq!(page, 8192);
    // Statement journals (a multi-row insert inside an import's transaction opens one)
    // stay in memory instead of a temporary file per transaction: 2 is MEMORY.
    assert_eq!(pragma::<i64>(pool, "temp_store").await, 2);
    // Lookup keys are their own primary key: no rowid table beside it (three b-trees per
    // key row before, two now).
    let keys: String =
        sqlx::query_scalar("SELECT sql FROM sqlite_schema WHERE name = 'library_item_keys'")
            .fetch_one(pool)
            .await
            .unwrap();
    assert!(keys.ends_with("WITHOUT ROWID"), "{keys}");
}

#[tokio::test]
async fn users_are_unique_and_deletion_cascades() {
    on_both("users_are_unique_and_deletion_cascades", |db| async move {
        let s = db.store;
        let alice = user(&s, "alice").await;
        assert!(matches!(
            s.create_user("alice", "x", t0()).await,
            Err(StoreError::Conflict("username"))
        ));
        assert_eq!(s.user_by_name("alice").await.unwrap().unwrap().id, alice);
        assert_eq!(s.user_by_id(alice).await.unwrap().unwrap().created_at, t0());
        s.set_password_hash(alice, "new").await.unwrap();
        assert_eq!(
            s.user_by_id(alice).await.unwrap().unwrap().password_hash,
            "new"
        );

        s.create_session("sess", alice, t0()).await.unwrap();
        s.create_token(alice, "cli", "tokhash", t0()).await.unwrap();
        s.add_master_key_version(1, b"kcv", t0()).await.unwrap();
        s.insert_data_key(alice, 1, b"wrapped", t0()).await.unwrap();
        s.put_secret(alice, "x", b"ct", t0()).await.unwrap();
        s.append_audit(&NewAuditEntry {
            user_id: Some(alice),
            event: AuditEvent::LoginSucceeded,
            at: t0(),
            client_ip: Some("127.0.0.1".into()),
            details: serde_json::json!({}),
        })
        .await
        .unwrap();

        assert!(s.delete_user(alice).await.unwrap());
        assert!(s.session("sess").await.unwrap().is_none());
        assert!(s.use_token("tokhash", t0()).await.unwrap().is_none());
        assert!(
            s.data_key_for_user(alice).await.unwrap().is_none(),
            "data key shredded"
        );
        assert!(s.get_secret(alice, "x").await.unwrap().is_none());
        // The audit log outlives the account.
        assert_eq!(s.audit_for_user(alice, None, 10).await.unwrap().len(), 1);
        assert!(s.list_users().await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn sessions_touch_and_purge() {
    on_both("sessions_touch_and_purge", |db| async move {
        let s = db.store;
        let alice = user(&s, "alice").await;
        s.create_session("old", alice, t0()).await.unwrap();
        s.create_session("new", alice, t0() + Duration::hours(5))
            .await
            .unwrap();
        s.touch_session("new", t0() + Duration::hours(6))
            .await
            .unwrap();
        let rec = s.session("new").await.unwrap().unwrap();
        assert_eq!(rec.last_seen_at, t0() + Duration::hours(6));
        let purged = s
            .purge_sessions(t0() - Duration::days(1), t0() + Duration::hours(1))
            .await
            .unwrap();
        assert_eq!(purged, 1);
        assert!(s.session("old").await.unwrap().is_none());
        s.delete_session("new").await.unwrap();
        assert!(s.session("new").await.unwrap().is_none());
    })
    .await;
}

#[tokio::test]
async fn tokens_are_used_listed_and_revoked() {
    on_both("tokens_are_used_listed_and_revoked", |db| async move {
        let s = db.store;
        let alice = user(&s, "alice").await;
        let bob = user(&s, "bob").await;
        let t = s.create_token(alice, "cli", "h1", t0()).await.unwrap();
        assert_eq!(t.last_used_at, None);
        let used = s
            .use_token("h1", t0() + Duration::seconds(5))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(used.last_used_at, Some(t0() + Duration::seconds(5)));
        assert_eq!(s.list_tokens(alice).await.unwrap().len(), 1);
        assert!(
            !s.revoke_token(bob, t.id).await.unwrap(),
            "another user's token"
        );
        assert!(s.revoke_token(alice, t.id).await.unwrap());
        assert!(s.use_token("h1", t0()).await.unwrap().is_none());
        assert!(s.list_tokens(alice).await.unwrap().is_empty());
    })
    .await;
}

#[tokio::test]
async fn audit_is_paginated_newest_first_and_append_only() {
    on_both(
        "audit_is_paginated_newest_first_and_append_only",
        |db| async move {
            let s = db.store.clone();
            let alice = user(&s, "alice").await;
            for i in 0..5 {
                s.append_audit(&NewAuditEntry {
                    user_id: Some(alice),
                    event: AuditEvent::TokenCreated,
                    at: t0() + Duration::seconds(i),
                    client_ip: None,
                    details: serde_json::json!({"n": i}),
                })
                .await
                .unwrap();
            }
            let page = s.audit_for_user(alice, None, 3).await.unwrap();
            assert_eq!(
                page.iter()
                    .map(|e| e.details["n"].as_i64().unwrap())
                    .collect::<Vec<_>>(),
                [4, 3, 2]
            );
            let next = s.audit_for_user(alice, Some(page[2].id), 3).await.unwrap();
            assert_eq!(
                next.iter()
                    .map(|e| e.details["n"].as_i64().unwrap())
                    .collect::<Vec<_>>(),
                [1, 0]
            );
            assert_eq!(next[0].event, "token_created");

            s.append_audit(&NewAuditEntry {
                user_id: None,
                event: AuditEvent::KeyRotated,
                at: t0(),
                client_ip: None,
                details: serde_json::json!({"primary_version": 2}),
            })
            .await
            .unwrap();
            let system = s.audit_system(None, 10).await.unwrap();
            assert_eq!(system.len(), 1, "only entries with no user");
            assert_eq!(system[0].event, "key_rotated");
            assert_eq!(s.audit_for_user(alice, None, 10).await.unwrap().len(), 5);

            let update = "UPDATE audit_log SET event = 'x'";
            let delete = "DELETE FROM audit_log";
            if let Some(sq) = &db.sqlite {
                assert!(sqlx::query(update).execute(sq.pool()).await.is_err());
                assert!(sqlx::query(delete).execute(sq.pool()).await.is_err());
            }
            if let Some(pg) = &db.postgres {
                assert!(sqlx::query(update).execute(pg.pool()).await.is_err());
                assert!(sqlx::query(delete).execute(pg.pool()).await.is_err());
            }
            assert_eq!(s.audit_for_user(alice, None, 10).await.unwrap().len(), 5);
        },
    )
    .await;
}

#[tokio::test]
async fn throttle_windows_count_and_reset() {
    on_both("throttle_windows_count_and_reset", |db| async move {
        let s = db.store;
        assert_eq!(s.peek("k", t0(), 60).await.unwrap().0, 0);
        assert_eq!(s.hit("k", t0(), 60).await.unwrap(), (1, t0()));
        assert_eq!(
            s.hit("k", t0() + Duration::seconds(10), 60).await.unwrap(),
            (2, t0())
        );
        assert_eq!(
            s.peek("k", t0() + Duration::seconds(20), 60).await.unwrap(),
            (2, t0())
        );
        let later = t0() + Duration::seconds(61);
        assert_eq!(s.peek("k", later, 60).await.unwrap().0, 0);
        assert_eq!(s.hit("k", later, 60).await.unwrap(), (1, later));
        s.clear("k").await.unwrap();
        assert_eq!(s.peek("k", later, 60).await.unwrap().0, 0);
    })
    .await;
}

#[tokio::test]
async fn data_keys_insert_once_and_rewrap_compare_and_set() {
    on_both(
        "data_keys_insert_once_and_rewrap_compare_and_set",
        |db| async move {
            let s = db.store;
            let alice = user(&s, "alice").await;
            s.add_master_key_version(1, b"kcv1", t0()).await.unwrap();
            assert!(matches!(
                s.add_master_key_version(1, b"other", t0()).await,
                Err(StoreError::Conflict(_))
            ));
            s.add_master_key_version(2, b"kcv2", t0()).await.unwrap();
            let first = s.insert_data_key(alice, 1, b"w1", t0()).await.unwrap();
            let second = s.insert_data_key(alice, 1, b"w-racer", t0()).await.unwrap();
            assert_eq!(first, second, "a racing creator gets the stored key");
            assert_eq!(s.count_data_keys_under(1).await.unwrap(), 1);
            assert_eq!(s.data_keys_not_under(2, 10).await.unwrap().len(), 1);
            assert!(s.rewrap_data_key(first.id, 1, 2, b"w2").await.unwrap());
            assert!(!s.rewrap_data_key(first.id, 1, 2, b"stale").await.unwrap());
            let now = s.data_key_for_user(alice).await.unwrap().unwrap();
            assert_eq!(
                (now.master_version, now.wrapped.as_slice()),
                (2, &b"w2"[..])
            );
            assert!(s.data_keys_not_under(2, 10).await.unwrap().is_empty());
            s.retire_master_key_version(1, t0()).await.unwrap();
            let versions = s.master_key_versions().await.unwrap();
            assert_eq!(versions[0].retired_at, Some(t0()));
            assert_eq!(versions[1].check_value, b"kcv2");
        },
    )
    .await;
}

#[tokio::test]
async fn secrets_upsert_and_delete() {
    on_both("secrets_upsert_and_delete", |db| async move {
        let s = db.store;
        let alice = user(&s, "alice").await;
        s.put_secret(alice, "conn/1/refresh", b"a", t0())
            .await
            .unwrap();
        s.put_secret(alice, "conn/1/refresh", b"b", t0())
            .await
            .unwrap();
        assert_eq!(
            s.get_secret(alice, "conn/1/refresh")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"b"[..])
        );
        assert!(s.delete_secret(alice, "conn/1/refresh").await.unwrap());
        assert!(!s.delete_secret(alice, "conn/1/refresh").await.unwrap());
        s.ping().await.unwrap();
    })
    .await;
}
