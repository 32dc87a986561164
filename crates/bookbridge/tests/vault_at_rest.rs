//! The vault on the real stores (SQLite and PostgreSQL): no plaintext in raw rows or a full
//! dump, ciphertexts bound to their row, crypto-shredding on user deletion, and a rotation
//! killed midway that resumes.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use async_trait::async_trait;
use base64::Engine;
use bb_core::clock::{Clock, SystemClock};
use bb_core::error::StoreError;
use bb_core::ids::{DataKeyId, UserId};
use bb_core::ports::{KeyStore, MasterKeyVersion, Sealer, Store, StoreResult, WrappedDataKey};
use bb_store::testing::{TestDb, on_both};
use bb_vault::{Keyring, MasterKey, Vault};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

const TOKEN: &str = "ya29.a0AfH6SMBx-very-secret-refresh-token-0123456789";

fn clock() -> Arc<dyn Clock> {
    Arc::new(SystemClock)
}

fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let e = base64::engine::general_purpose::STANDARD;
    let u = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        secret.to_vec(),
        e.encode(secret).into_bytes(),
        u.encode(secret).into_bytes(),
        hex::encode(secret).into_bytes(),
        hex::encode_upper(secret).into_bytes(),
    ]
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Everything the database holds, as bytes: the SQLite files, or `pg_dump` output.
async fn dump(db: &TestDb) -> Vec<u8> {
    if let Some(sq) = &db.sqlite {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(sq.pool())
            .await
            .unwrap();
        let path = db.url.trim_start_matches("sqlite://");
        let mut bytes = std::fs::read(path).unwrap();
        for suffix in ["-wal", "-shm"] {
            if let Ok(more) = std::fs::read(format!("{path}{suffix}")) {
                bytes.extend(more);
            }
        }
        bytes
    } else {
        let out = std::process::Command::new("pg_dump")
            .arg(&db.url)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_dump: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$x", SystemClock.now())
        .await
        .unwrap()
        .id
}

#[tokio::test]
async fn raw_rows_and_dumps_hold_no_plaintext_secret_or_key() {
    on_both(
        "raw_rows_and_dumps_hold_no_plaintext_secret_or_key",
        |db| async move {
            let master = MasterKey::generate().unwrap();
            let master_b64 = master.to_base64();
            let vault = Vault::open(Keyring::single(master), db.store.clone(), clock())
                .await
                .unwrap();
            let alice = user(&db.store, "alice").await;
            let ctx = "secret:connection/1/refresh_token";
            let sealed = vault.seal(alice, ctx, TOKEN.as_bytes()).await.unwrap();
            db.store
                .put_secret(alice, ctx, &sealed, SystemClock.now())
                .await
                .unwrap();

            let raw = db.store.get_secret(alice, ctx).await.unwrap().unwrap();
            let dek = db.store.data_key_for_user(alice).await.unwrap().unwrap();
            let everything = dump(&db).await;
            assert!(
                contains(&everything, b"alice"),
                "the dump is real ({})",
                db.name
            );
            let key_text = secrecy::ExposeSecret::expose_secret(&master_b64)
                .as_bytes()
                .to_vec();
            for form in forms(TOKEN.as_bytes()).into_iter().chain([key_text]) {
                assert!(!contains(&raw, &form), "{}: secret in the row", db.name);
                assert!(
                    !contains(&dek.wrapped, &form),
                    "{}: secret in the data key row",
                    db.name
                );
                assert!(
                    !contains(&everything, &form),
                    "{}: secret in the dump",
                    db.name
                );
            }
            let opened = vault.open(alice, ctx, &raw).await.unwrap();
            assert_eq!(opened.expose(), TOKEN.as_bytes());
        },
    )
    .await;
}

#[tokio::test]
async fn ciphertexts_swapped_between_rows_do_not_open() {
    on_both(
        "ciphertexts_swapped_between_rows_do_not_open",
        |db| async move {
            let vault = Vault::open(
                Keyring::single(MasterKey::generate().unwrap()),
                db.store.clone(),
                clock(),
            )
            .await
            .unwrap();
            let alice = user(&db.store, "alice").await;
            let bob = user(&db.store, "bob").await;
            let now = SystemClock.now();
            for (u, name, secret) in [
                (alice, "a/access", "alice-access"),
                (alice, "a/refresh", "alice-refresh"),
                (bob, "b/access", "bob-access"),
            ] {
                let ct = vault.seal(u, name, secret.as_bytes()).await.unwrap();
                db.store.put_secret(u, name, &ct, now).await.unwrap();
            }
            // Swap two rows of one owner, and move one row to another owner, with plain SQL.
            let a_access = db
                .store
                .get_secret(alice, "a/access")
                .await
                .unwrap()
                .unwrap();
            let a_refresh = db
                .store
                .get_secret(alice, "a/refresh")
                .await
                .unwrap()
                .unwrap();
            db.store
                .put_secret(alice, "a/access", &a_refresh, now)
                .await
                .unwrap();
            db.store
                .put_secret(alice, "a/refresh", &a_access, now)
                .await
                .unwrap();
            db.store
                .put_secret(bob, "b/access", &a_access, now)
                .await
                .unwrap();
            for (u, name) in [(alice, "a/access"), (alice, "a/refresh"), (bob, "b/access")] {
                let ct = db.store.get_secret(u, name).await.unwrap().unwrap();
                assert!(
                    vault.open(u, name, &ct).await.is_err(),
                    "{}: {name} opened after swap",
                    db.name
                );
            }
            // Sanity: in their own place they still open.
            assert!(vault.open(alice, "a/access", &a_access).await.is_ok());
        },
    )
    .await;
}

#[tokio::test]
async fn deleting_a_user_shreds_their_secrets() {
    on_both("deleting_a_user_shreds_their_secrets", |db| async move {
        let vault = Vault::open(
            Keyring::single(MasterKey::generate().unwrap()),
            db.store.clone(),
            clock(),
        )
        .await
        .unwrap();
        let alice = user(&db.store, "alice").await;
        let ct = vault.seal(alice, "s", TOKEN.as_bytes()).await.unwrap();
        let backup_of_key_row = db.store.data_key_for_user(alice).await.unwrap().unwrap();
        assert!(db.store.delete_user(alice).await.unwrap());
        assert!(db.store.data_key_for_user(alice).await.unwrap().is_none());
        assert!(
            vault.open(alice, "s", &ct).await.is_err(),
            "{}: backup ciphertext opened",
            db.name
        );
        assert_ne!(backup_of_key_row.wrapped, Vec::<u8>::new());
    })
    .await;
}

/// Delegates to a real store; every re-wrap after the first `allow` fails, as if the
/// process had been killed there.
#[derive(Debug)]
struct KilledMidway {
    inner: Arc<dyn Store>,
    allow: u64,
    done: AtomicU64,
}

#[async_trait]
impl KeyStore for KilledMidway {
    async fn master_key_versions(&self) -> StoreResult<Vec<MasterKeyVersion>> {
        self.inner.master_key_versions().await
    }
    async fn add_master_key_version(
        &self,
        v: u32,
        kcv: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        self.inner.add_master_key_version(v, kcv, now).await
    }
    async fn retire_master_key_version(&self, v: u32, now: DateTime<Utc>) -> StoreResult<()> {
        self.inner.retire_master_key_version(v, now).await
    }
    async fn data_key_for_user(&self, u: UserId) -> StoreResult<Option<WrappedDataKey>> {
        self.inner.data_key_for_user(u).await
    }
    async fn insert_data_key(
        &self,
        u: UserId,
        v: u32,
        w: &[u8],
        now: DateTime<Utc>,
    ) -> StoreResult<WrappedDataKey> {
        self.inner.insert_data_key(u, v, w, now).await
    }
    async fn data_keys_not_under(&self, v: u32, limit: u32) -> StoreResult<Vec<WrappedDataKey>> {
        self.inner.data_keys_not_under(v, limit).await
    }
    async fn rewrap_data_key(
        &self,
        id: DataKeyId,
        from: u32,
        to: u32,
        w: &[u8],
    ) -> StoreResult<bool> {
        if self.done.fetch_add(1, Ordering::SeqCst) >= self.allow {
            return Err(StoreError::Backend("killed".into()));
        }
        self.inner.rewrap_data_key(id, from, to, w).await
    }
    async fn count_data_keys_under(&self, v: u32) -> StoreResult<u64> {
        self.inner.count_data_keys_under(v).await
    }
}

#[tokio::test]
async fn rotation_killed_midway_resumes_and_old_key_retires() {
    on_both(
        "rotation_killed_midway_resumes_and_old_key_retires",
        |db| async move {
            let old = MasterKey::generate().unwrap();
            let new = MasterKey::generate().unwrap();
            let vault = Vault::open(Keyring::single(old.clone()), db.store.clone(), clock())
                .await
                .unwrap();
            let mut sealed = Vec::new();
            for i in 0..12 {
                let u = user(&db.store, &format!("u{i}")).await;
                let ct = vault
                    .seal(u, "s", format!("secret-{i}").as_bytes())
                    .await
                    .unwrap();
                sealed.push((u, ct));
            }

            let killed = Arc::new(KilledMidway {
                inner: db.store.clone(),
                allow: 5,
                done: AtomicU64::new(0),
            });
            let ring = Keyring::from_keys(vec![old.clone(), new.clone()]).unwrap();
            let dying = Vault::open(ring, killed, clock()).await.unwrap();
            assert!(
                dying.rotate(Some(new.clone())).await.is_err(),
                "the fault stops the rotation"
            );
            assert_eq!(
                db.store.count_data_keys_under(2).await.unwrap(),
                5,
                "{}: half done",
                db.name
            );

            // A fresh process with both keys reads everything, then finishes the job.
            let both = Keyring::from_keys(vec![old.clone(), new.clone()]).unwrap();
            let resumed = Vault::open(both, db.store.clone(), clock()).await.unwrap();
            for (u, ct) in &sealed {
                assert!(resumed.open(*u, "s", ct).await.is_ok());
            }
            let report = resumed.rotate(None).await.unwrap();
            assert!(report.resumed);
            assert_eq!(report.rewrapped, 7);
            assert_eq!(db.store.count_data_keys_under(1).await.unwrap(), 0);
            // Running it again changes nothing.
            assert_eq!(resumed.rotate(None).await.unwrap().rewrapped, 0);
            resumed.retire(1).await.unwrap();

            // The old key is no longer needed: the new one alone opens everything.
            let only_new = Vault::open(Keyring::single(new), db.store.clone(), clock())
                .await
                .unwrap();
            for (i, (u, ct)) in sealed.iter().enumerate() {
                let pt = only_new.open(*u, "s", ct).await.unwrap();
                assert_eq!(pt.expose(), format!("secret-{i}").as_bytes());
            }
            // And the old key alone is refused at start-up.
            assert!(
                Vault::open(Keyring::single(old), db.store.clone(), clock())
                    .await
                    .is_err()
            );
        },
    )
    .await;
}
