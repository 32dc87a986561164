//! The connection store contract, on SQLite and on PostgreSQL, each on a fresh database:
//! one refresh lease at a time with fencing, single-use pending state, one live link per
//! external account, and a shared request budget that never grants more than it holds,
//! even with two instances taking from it at once.

#![allow(clippy::unwrap_used, clippy::too_many_lines)] // each test is one story, in order

use bb_core::connections::ExternalAccount;
use bb_core::connections::model::ConnectionState;
use bb_core::ids::UserId;
use bb_core::ports::connections::Activation;
use bb_core::ports::{ConnectionStore, Store};
use bb_store::testing::{TestDb, on_both};
use bb_store::{PgStore, SqliteStore};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::sync::Arc;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

async fn user(store: &Arc<dyn Store>, name: &str) -> UserId {
    store
        .create_user(name, "$argon2id$fake", t0())
        .await
        .unwrap()
        .id
}

async fn second_instance(db: &TestDb) -> Arc<dyn ConnectionStore> {
    if db.sqlite.is_some() {
        Arc::new(SqliteStore::connect(&db.url).await.unwrap())
    } else {
        Arc::new(PgStore::connect(&db.url).await.unwrap())
    }
}

fn account(id: &str) -> ExternalAccount {
    ExternalAccount {
        external_id: id.into(),
        display_name: Some(format!("user {id}")),
    }
}

#[tokio::test]
async fn refresh_lease_is_exclusive_and_fences_stale_writers() {
    on_both(
        "refresh_lease_is_exclusive_and_fences_stale_writers",
        |db| async move {
            let store = db.store.clone();
            let alice = user(&store, "alice").await;
            let c = store
                .create_connection(alice, "example", t0())
                .await
                .unwrap();
            store
                .activate(
                    c.id,
                    &Activation {
                        account: &account("1"),
                        credentials: Some(b"sealed-v1"),
                        scopes: &[],
                        expires_at: None,
                    },
                    t0(),
                )
                .await
                .unwrap();
            let other = second_instance(&db).await;

            let until = t0() + Duration::seconds(60);
            let a = store
                .acquire_refresh_lease(c.id, "a", t0(), until)
                .await
                .unwrap()
                .expect("free lease");
            assert_eq!(a.credentials.as_deref(), Some(&b"sealed-v1"[..]));
            // Held: nobody else gets it, on this instance or another.
            assert!(
                other
                    .acquire_refresh_lease(c.id, "b", t0() + Duration::seconds(1), until)
                    .await
                    .unwrap()
                    .is_none()
            );
            // A stalled holder's lease expires; the next one gets a newer fencing token...
            let b = other
                .acquire_refresh_lease(
                    c.id,
                    "b",
                    t0() + Duration::seconds(61),
                    t0() + Duration::seconds(121),
                )
                .await
                .unwrap()
                .expect("expired lease taken over");
            assert!(b.token > a.token);
            // ...so the stalled holder's late write is refused and cannot overwrite B's.
            assert!(
                !store
                    .commit_credentials(
                        c.id,
                        a.token,
                        b"sealed-from-a",
                        None,
                        t0() + Duration::seconds(62)
                    )
                    .await
                    .unwrap()
            );
            assert!(
                other
                    .commit_credentials(
                        c.id,
                        b.token,
                        b"sealed-from-b",
                        None,
                        t0() + Duration::seconds(62)
                    )
                    .await
                    .unwrap()
            );
            assert_eq!(
                store.credentials(c.id).await.unwrap().as_deref(),
                Some(&b"sealed-from-b"[..])
            );
            let after = store.connection_by_id(c.id).await.unwrap().unwrap();
            assert_eq!(
                after.credentials_version, 2,
                "activation + one committed refresh"
            );
            // The commit released the lease.
            assert!(
                store
                    .acquire_refresh_lease(
                        c.id,
                        "a",
                        t0() + Duration::seconds(63),
                        until + Duration::seconds(63)
                    )
                    .await
                    .unwrap()
                    .is_some()
            );
            // Disconnect deletes the ciphertext; a lease is no longer granted.
            store
                .disconnect_connection(c.id, t0() + Duration::seconds(64))
                .await
                .unwrap();
            assert!(store.credentials(c.id).await.unwrap().is_none());
            let gone = store.connection_by_id(c.id).await.unwrap().unwrap();
            assert_eq!(gone.state, ConnectionState::Disconnected);
            assert!(!gone.has_credentials);
        },
    )
    .await;
}

#[tokio::test]
async fn pending_state_is_single_use_and_accounts_link_once() {
    on_both(
        "pending_state_is_single_use_and_accounts_link_once",
        |db| async move {
            let store = db.store.clone();
            let alice = user(&store, "alice").await;
            let c = store
                .create_connection(alice, "example", t0())
                .await
                .unwrap();
            store
                .set_pending(
                    c.id,
                    b"sealed-pending",
                    Some("statehash"),
                    Some("sess"),
                    t0() + Duration::minutes(10),
                    t0(),
                )
                .await
                .unwrap();
            let other = second_instance(&db).await;
            let (first, second) = tokio::join!(
                store.take_pending_by_state("statehash"),
                other.take_pending_by_state("statehash")
            );
            let taken = [first.unwrap(), second.unwrap()];
            assert_eq!(
                taken.iter().filter(|t| t.is_some()).count(),
                1,
                "exactly one consumer"
            );
            let p = taken.into_iter().flatten().next().unwrap();
            assert_eq!(p.pending, b"sealed-pending");
            assert_eq!(p.session_hash.as_deref(), Some("sess"));

            let activation = Activation {
                account: &account("42"),
                credentials: Some(b"x"),
                scopes: &[],
                expires_at: None,
            };
            store.activate(c.id, &activation, t0()).await.unwrap();
            let dup = store
                .create_connection(alice, "example", t0())
                .await
                .unwrap();
            let err = store.activate(dup.id, &activation, t0()).await.unwrap_err();
            assert!(
                matches!(err, bb_core::error::StoreError::Conflict(_)),
                "{err:?}"
            );
            // Another user may link the same external account.
            let bob = user(&store, "bob").await;
            let theirs = store.create_connection(bob, "example", t0()).await.unwrap();
            store.activate(theirs.id, &activation, t0()).await.unwrap();
            // Once disconnected, the account can be linked again.
            store.disconnect_connection(c.id, t0()).await.unwrap();
            store.activate(dup.id, &activation, t0()).await.unwrap();
        },
    )
    .await;
}

#[tokio::test]
async fn the_shared_budget_never_grants_more_than_it_holds() {
    on_both(
        "the_shared_budget_never_grants_more_than_it_holds",
        |db| async move {
            let a: Arc<dyn ConnectionStore> = db.store.clone();
            let b = second_instance(&db).await;
            // Capacity 10, refilled at 60 a minute (one a second). At one instant, 40 takers
            // across two instances get exactly 10.
            let mut tasks = Vec::new();
            for i in 0..40 {
                let s = if i % 2 == 0 { a.clone() } else { b.clone() };
                tasks.push(tokio::spawn(async move {
                    s.take_budget("example", 10, 60, 1, t0()).await.unwrap()
                }));
            }
            let mut granted = 0;
            let mut waits = Vec::new();
            for t in tasks {
                match t.await.unwrap() {
                    Ok(()) => granted += 1,
                    Err(ms) => waits.push(ms),
                }
            }
            assert_eq!(granted, 10);
            assert!(waits.iter().all(|&ms| ms > 0 && ms <= 1000), "{waits:?}");
            // Half a second later nothing has refilled enough; a second later one has.
            assert!(
                a.take_budget("example", 10, 60, 1, t0() + Duration::milliseconds(500))
                    .await
                    .unwrap()
                    .is_err()
            );
            assert!(
                a.take_budget("example", 10, 60, 1, t0() + Duration::milliseconds(1000))
                    .await
                    .unwrap()
                    .is_ok()
            );
            // A cost larger than the bucket waits for a full bucket instead of never fitting.
            assert!(
                a.take_budget("other", 3, 60, 5, t0())
                    .await
                    .unwrap()
                    .is_ok()
            );
            assert_eq!(a.budget_granted("example").await.unwrap(), 11);
        },
    )
    .await;
}
