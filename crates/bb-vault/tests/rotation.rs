//! Start-up key checks, rotation (including a run killed midway), retirement and status.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

mod common;

use bb_core::ids::UserId;
use bb_core::ports::Sealer;
use bb_vault::{KEY_MISMATCH_MESSAGE, Keyring, MasterKey, Vault, VaultError};
use common::{MemoryKeyStore, assert_all_open, clock, key, ring, seal_for_users, vault};

#[tokio::test]
async fn wrong_master_key_at_start_up_fails_with_the_clear_message() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    seal_for_users(&v, 2).await;

    let err = Vault::open(ring(&[&key(2)]), store.clone(), clock())
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::KeyMismatch), "{err:?}");
    assert_eq!(err.code(), "vault_key_mismatch");
    let msg = err.to_string();
    assert_eq!(msg, KEY_MISMATCH_MESSAGE);
    assert!(msg.contains("key check failed"));
    assert!(msg.contains("BOOKBRIDGE_MASTER_KEY") && msg.contains("BOOKBRIDGE_MASTER_KEY_FILE"));
    // The right key still opens.
    assert!(
        Vault::open(ring(&[&key(1)]), store.clone(), clock())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn start_up_refuses_ambiguous_keyrings() {
    let store = MemoryKeyStore::new();
    let err = Vault::open(ring(&[&key(1), &key(2)]), store.clone(), clock())
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::TooManyKeysForNewDatabase { count: 2 }),
        "{err:?}"
    );

    vault(&store, &[&key(1)]).await;
    // One unknown key beside the right one is a rotation's new key: fine.
    let v = vault(&store, &[&key(1), &key(2)]).await;
    assert_eq!(v.unregistered_keys().len(), 1);
    assert!(v.unregistered_keys()[0].same_as(&key(2)));
    // Two unknown keys: which is the new one?
    let err = Vault::open(ring(&[&key(1), &key(2), &key(3)]), store.clone(), clock())
        .await
        .unwrap_err();
    assert!(
        matches!(err, VaultError::AmbiguousKeys { unmatched: 2 }),
        "{err:?}"
    );
}

#[tokio::test]
async fn rotation_rewraps_everything_under_the_new_primary() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let sealed = seal_for_users(&v, 10).await;

    let report = v.rotate(Some(key(2))).await.unwrap();
    assert_eq!(report.registered_version, Some(2));
    assert_eq!(report.primary_version, 2);
    assert!(!report.resumed);
    assert_eq!(report.rewrapped, 10);
    assert_eq!(v.primary_version(), 2);
    assert_eq!(store.versions_by_data_key().get(&1), None);
    assert_eq!(store.versions_by_data_key()[&2], 10);
    assert_all_open(&v, &sealed).await;

    // New users' keys are wrapped under the new primary.
    v.seal(UserId(100), "ctx", b"new").await.unwrap();
    assert_eq!(store.versions_by_data_key()[&2], 11);
}

#[tokio::test]
async fn rotation_killed_midway_resumes_and_nothing_is_lost() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let sealed = seal_for_users(&v, 40).await;

    // The process "dies" after 15 re-wraps.
    store.fail_rewraps_after(15);
    let err = v.rotate(Some(key(2))).await.unwrap_err();
    assert_eq!(err.code(), "vault_store");
    assert_eq!(store.rewraps(), 15);
    let split = store.versions_by_data_key();
    assert_eq!((split[&1], split[&2]), (25, 15));

    // Mid-rotation, everything opens: in this process, and in a restarted one that has
    // both keys (the CLI appended the new one to the key file before registering it).
    assert_all_open(&v, &sealed).await;
    let restarted = vault(&store, &[&key(1), &key(2)]).await;
    assert_eq!(restarted.primary_version(), 2);
    assert_all_open(&restarted, &sealed).await;
    let status = restarted.status().await.unwrap();
    assert!(status.rotation_pending);
    // Without the new key, a restart is refused rather than silently using the old one.
    assert!(matches!(
        Vault::open(ring(&[&key(1)]), store.clone(), clock()).await,
        Err(VaultError::KeyMismatch)
    ));
    // Secrets sealed mid-rotation (for a new user) survive too.
    let late = restarted.seal(UserId(500), "ctx", b"late").await.unwrap();

    // Re-run: it finishes the rewrap instead of starting another rotation.
    store.clear_fault();
    let report = restarted.rotate(None).await.unwrap();
    assert!(report.resumed);
    assert_eq!(report.registered_version, None);
    assert_eq!(report.rewrapped, 25);
    assert_eq!(report.primary_version, 2);
    assert_eq!(store.versions_by_data_key().get(&1), None);
    assert_all_open(&restarted, &sealed).await;
    assert_all_open(&v, &sealed).await;
    assert_eq!(
        restarted
            .open(UserId(500), "ctx", &late)
            .await
            .unwrap()
            .expose(),
        b"late"
    );

    // Rotating again with no new key is a no-op that loses nothing.
    let again = restarted.rotate(None).await.unwrap();
    assert_eq!(again.registered_version, None);
    assert!(!again.resumed);
    assert_eq!(again.rewrapped, 0);
    assert_eq!(restarted.primary_version(), 2);
    assert_all_open(&restarted, &sealed).await;
    // So is "rotating" to the key that is already primary.
    let same = restarted.rotate(Some(key(2))).await.unwrap();
    assert_eq!((same.registered_version, same.rewrapped), (None, 0));
}

#[tokio::test]
async fn killed_right_after_registering_the_new_key_resumes() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let sealed = seal_for_users(&v, 5).await;
    store.fail_rewraps_after(0);
    assert!(v.rotate(Some(key(2))).await.is_err());
    store.clear_fault();

    // The CLI, finding no unknown key in the ring, generated key 3 and passed it: the
    // unfinished rotation is finished first and key 3 is left for the next run.
    let restarted = vault(&store, &[&key(1), &key(2)]).await;
    let report = restarted.rotate(Some(key(3))).await.unwrap();
    assert!(report.resumed && report.new_key_deferred);
    assert_eq!(report.rewrapped, 10 / 2);
    assert_eq!(restarted.primary_version(), 2);
    assert_all_open(&restarted, &sealed).await;
    // The next run takes key 3.
    let next = restarted.rotate(Some(key(3))).await.unwrap();
    assert_eq!(next.registered_version, Some(3));
    assert_all_open(&restarted, &sealed).await;
}

#[tokio::test]
async fn rotate_without_a_key_uses_the_rings_unregistered_key() {
    let store = MemoryKeyStore::new();
    let sealed = seal_for_users(&vault(&store, &[&key(1)]).await, 3).await;
    let v = vault(&store, &[&key(1), &key(2)]).await;
    let report = v.rotate(None).await.unwrap();
    assert_eq!(report.registered_version, Some(2));
    assert!(v.unregistered_keys().is_empty());
    assert_all_open(&v, &sealed).await;
}

#[tokio::test]
async fn rotating_to_an_old_key_is_refused() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    seal_for_users(&v, 2).await;
    v.rotate(Some(key(2))).await.unwrap();
    let err = v.rotate(Some(key(1))).await.unwrap_err();
    assert!(
        matches!(err, VaultError::RotateToOldKey { version: 1 }),
        "{err:?}"
    );
    assert_eq!(v.primary_version(), 2);
}

#[tokio::test]
async fn another_instance_sees_a_rotation_it_holds_the_key_for() {
    let store = MemoryKeyStore::new();
    let a = vault(&store, &[&key(1)]).await;
    // Instance b was started with the new key already in its ring.
    let b = vault(&store, &[&key(1), &key(2)]).await;
    let sealed = seal_for_users(&a, 3).await;
    a.rotate(Some(key(2))).await.unwrap();
    assert_eq!(b.primary_version(), 1); // not yet refreshed
    assert_all_open(&b, &sealed).await;
    assert_eq!(b.primary_version(), 2);
}

#[tokio::test]
async fn retire_refuses_while_in_use_and_then_the_old_key_is_not_needed() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let sealed = seal_for_users(&v, 12).await;

    let err = v.retire(1).await.unwrap_err();
    assert!(
        matches!(err, VaultError::RetirePrimary { version: 1 }),
        "{err:?}"
    );

    store.fail_rewraps_after(4);
    v.rotate(Some(key(2))).await.unwrap_err();
    let err = v.retire(1).await.unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::RetireInUse {
                version: 1,
                data_keys: 8
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("8 data key"), "{err}");
    assert!(matches!(
        v.retire(9).await,
        Err(VaultError::UnknownVersion { version: 9 })
    ));

    store.clear_fault();
    v.rotate(None).await.unwrap();
    v.retire(1).await.unwrap();
    v.retire(1).await.unwrap(); // idempotent
    let status = v.status().await.unwrap();
    assert_eq!(status.primary_version, 2);
    assert!(status.versions[0].retired_at.is_some());
    assert_eq!(status.versions[0].data_keys, 0);
    assert_eq!(status.versions[1].data_keys, 12);
    assert!(status.versions[1].primary && status.versions[1].loaded);
    assert!(!status.rotation_pending);
    assert_all_open(&v, &sealed).await;

    // Only the new key is needed now.
    let only_new = vault(&store, &[&key(2)]).await;
    assert_all_open(&only_new, &sealed).await;
    // The old key alone no longer opens this database.
    assert!(matches!(
        Vault::open(ring(&[&key(1)]), store.clone(), clock()).await,
        Err(VaultError::KeyMismatch)
    ));
    // Keeping the retired key in the ring is harmless.
    let both = vault(&store, &[&key(1), &key(2)]).await;
    assert!(both.unregistered_keys().is_empty());
    assert_all_open(&both, &sealed).await;
}

#[tokio::test]
async fn status_reports_versions_and_counts() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1), &MasterKey::from_bytes([1; 32])]).await;
    seal_for_users(&v, 3).await;
    let s = v.status().await.unwrap();
    assert_eq!(s.primary_version, 1);
    assert_eq!(s.versions.len(), 1);
    assert_eq!(s.versions[0].data_keys, 3);
    assert_eq!(s.unregistered_keys, 0);

    let v = Vault::open(
        Keyring::from_keys(vec![key(1), key(2)]).unwrap(),
        store.clone(),
        clock(),
    )
    .await
    .unwrap();
    assert_eq!(v.status().await.unwrap().unregistered_keys, 1);
}
