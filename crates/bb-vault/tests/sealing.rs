//! Sealing and opening through `Vault`: confidentiality of the stored bytes, binding to
//! owner and context, tamper detection, nonce uniqueness, crypto-shredding, redaction.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

mod common;

use base64::Engine as _;
use bb_core::ids::UserId;
use bb_core::ports::{SealError, Sealer};
use bb_vault::envelope::{self, HEADER_LEN, OVERHEAD};
use bb_vault::{DataKey, Keyring, MasterKey, Vault};
use common::{MemoryKeyStore, key, vault};
use proptest::prelude::*;
use std::collections::HashSet;

const CONTEXT: &str = "secret:connection/12/refresh_token";

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn seal_then_open_round_trips() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let ct = v
        .seal(UserId(1), CONTEXT, b"refresh-token-value")
        .await
        .unwrap();
    assert_eq!(ct.len(), OVERHEAD + b"refresh-token-value".len());
    let pt = v.open(UserId(1), CONTEXT, &ct).await.unwrap();
    assert_eq!(pt.expose(), b"refresh-token-value");
    // Empty secrets are secrets too.
    let ct = v.seal(UserId(1), CONTEXT, b"").await.unwrap();
    assert!(v.open(UserId(1), CONTEXT, &ct).await.unwrap().is_empty());
}

#[tokio::test]
async fn stored_bytes_never_contain_the_plaintext_or_its_encodings() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let plaintext = b"ya29.a0AfH6SMBx-very-secret-oauth-refresh-token-0123456789";
    let ct = v.seal(UserId(1), CONTEXT, plaintext).await.unwrap();

    let encodings: Vec<Vec<u8>> = vec![
        plaintext.to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(plaintext)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(plaintext)
            .into_bytes(),
        hex::encode(plaintext).into_bytes(),
        hex::encode_upper(plaintext).into_bytes(),
    ];
    // The row as a database dump would show it: raw bytes and their base64 and hex forms,
    // plus every stored data key row.
    let mut dump = ct.clone();
    dump.extend(
        base64::engine::general_purpose::STANDARD
            .encode(&ct)
            .bytes(),
    );
    dump.extend(hex::encode(&ct).bytes());
    for row in store.data_keys() {
        dump.extend_from_slice(&row.wrapped);
    }
    for needle in &encodings {
        // A 16-byte window of each encoding is enough to count as a leak.
        for window in needle.windows(16) {
            assert!(!contains(&dump, window), "stored bytes leak the plaintext");
        }
    }
}

#[tokio::test]
async fn ciphertext_moved_to_another_context_or_owner_fails() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let a = v
        .seal(UserId(1), "secret:connection/1/refresh_token", b"tok-a")
        .await
        .unwrap();
    // Make sure user 2 has a data key, so the failure is not merely "no key".
    let b = v
        .seal(UserId(2), "secret:connection/2/refresh_token", b"tok-b")
        .await
        .unwrap();

    for (owner, context) in [
        (UserId(1), "secret:connection/1/access_token"), // another column
        (UserId(1), "secret:connection/2/refresh_token"), // another row
        (UserId(1), "secret:connection/1/refresh_token "), // one byte more
        (UserId(2), "secret:connection/1/refresh_token"), // another owner
        (UserId(3), "secret:connection/1/refresh_token"), // an owner with no key
    ] {
        let err = v.open(owner, context, &a).await.unwrap_err();
        assert!(matches!(err, SealError::Open), "{owner}/{context}: {err:?}");
    }
    // Swapping two users' ciphertexts between their rows fails both ways.
    assert!(matches!(
        v.open(UserId(2), "secret:connection/2/refresh_token", &a)
            .await,
        Err(SealError::Open)
    ));
    assert!(matches!(
        v.open(UserId(1), "secret:connection/1/refresh_token", &b)
            .await,
        Err(SealError::Open)
    ));
    // And in place they still open, so the failures above are the binding, not breakage.
    assert!(
        v.open(UserId(1), "secret:connection/1/refresh_token", &a)
            .await
            .is_ok()
    );
    assert!(
        v.open(UserId(2), "secret:connection/2/refresh_token", &b)
            .await
            .is_ok()
    );
}

#[test]
fn any_bit_flip_fails_to_open() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryKeyStore::new();
    let v = rt.block_on(vault(&store, &[&key(1)]));
    let ct = rt
        .block_on(v.seal(UserId(7), CONTEXT, b"a token worth protecting"))
        .unwrap();
    let len = ct.len();
    proptest!(ProptestConfig::with_cases(512), |(index in 0..len, bit in 0u8..8)| {
        let mut tampered = ct.clone();
        tampered[index] ^= 1 << bit;
        let result = rt.block_on(v.open(UserId(7), CONTEXT, &tampered));
        prop_assert!(matches!(result, Err(SealError::Open)), "flip at {index}/{bit} opened");
    });
    // The untouched ciphertext still opens, so the failures were the flips.
    assert!(rt.block_on(v.open(UserId(7), CONTEXT, &ct)).is_ok());
}

#[test]
fn arbitrary_or_truncated_bytes_fail_cleanly() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = MemoryKeyStore::new();
    let v = rt.block_on(vault(&store, &[&key(1)]));
    let ct = rt
        .block_on(v.seal(UserId(7), CONTEXT, b"some token"))
        .unwrap();
    let len = ct.len();
    proptest!(ProptestConfig::with_cases(256), |(
        garbage in proptest::collection::vec(any::<u8>(), 0..200),
        cut in 0..len,
    )| {
        prop_assert!(matches!(rt.block_on(v.open(UserId(7), CONTEXT, &garbage)), Err(SealError::Open)));
        prop_assert!(matches!(rt.block_on(v.open(UserId(7), CONTEXT, &ct[..cut])), Err(SealError::Open)));
        let mut extended = ct.clone();
        extended.extend_from_slice(&garbage);
        if !garbage.is_empty() {
            prop_assert!(matches!(rt.block_on(v.open(UserId(7), CONTEXT, &extended)), Err(SealError::Open)));
        }
    });
}

#[tokio::test]
async fn ten_thousand_seals_of_one_value_use_distinct_nonces() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let mut nonces = HashSet::new();
    let mut ciphertexts = HashSet::new();
    for _ in 0..10_000 {
        let ct = v.seal(UserId(1), CONTEXT, b"same value").await.unwrap();
        nonces.insert(envelope::parse_header(&ct).unwrap().nonce);
        ciphertexts.insert(ct[HEADER_LEN..].to_vec());
    }
    assert_eq!(nonces.len(), 10_000);
    assert_eq!(ciphertexts.len(), 10_000);
}

#[tokio::test]
async fn deleting_the_data_key_shreds_the_users_secrets() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let ct = v
        .seal(UserId(5), CONTEXT, b"gone-after-delete")
        .await
        .unwrap();
    let other = v.seal(UserId(6), CONTEXT, b"stays").await.unwrap();
    assert!(v.open(UserId(5), CONTEXT, &ct).await.is_ok());

    assert!(store.delete_data_key(UserId(5)));
    assert!(matches!(
        v.open(UserId(5), CONTEXT, &ct).await,
        Err(SealError::Open)
    ));
    // A new key for the same user id (say, the id was reused) does not revive them.
    let fresh = v.seal(UserId(5), CONTEXT, b"new").await.unwrap();
    assert!(matches!(
        v.open(UserId(5), CONTEXT, &ct).await,
        Err(SealError::Open)
    ));
    assert!(v.open(UserId(5), CONTEXT, &fresh).await.is_ok());
    // A second vault on the same store (another instance) cannot open them either.
    let v2 = vault(&store, &[&key(1)]).await;
    assert!(matches!(
        v2.open(UserId(5), CONTEXT, &ct).await,
        Err(SealError::Open)
    ));
    // Other users are untouched.
    assert_eq!(
        v.open(UserId(6), CONTEXT, &other).await.unwrap().expose(),
        b"stays"
    );
}

#[tokio::test]
async fn a_tampered_data_key_row_fails_closed() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let ct = v.seal(UserId(1), CONTEXT, b"x").await.unwrap();
    // Give user 1 user 2's wrapped key: the wrap is bound to user 2, so it must not unwrap.
    v.seal(UserId(2), CONTEXT, b"y").await.unwrap();
    let theirs = store
        .data_keys()
        .into_iter()
        .find(|k| k.user_id == UserId(2))
        .unwrap();
    store.set_wrapped(UserId(1), &theirs.wrapped);
    assert!(matches!(
        v.open(UserId(1), CONTEXT, &ct).await,
        Err(SealError::Open)
    ));
    assert!(v.seal(UserId(1), CONTEXT, b"z").await.is_err());
}

#[tokio::test]
async fn two_instances_share_one_data_key_per_user() {
    let store = MemoryKeyStore::new();
    let a = vault(&store, &[&key(1)]).await;
    let b = vault(&store, &[&key(1)]).await;
    let (x, y) = tokio::join!(
        a.seal(UserId(9), CONTEXT, b"from a"),
        b.seal(UserId(9), CONTEXT, b"from b")
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(store.data_keys().len(), 1);
    assert_eq!(
        b.open(UserId(9), CONTEXT, &x).await.unwrap().expose(),
        b"from a"
    );
    assert_eq!(
        a.open(UserId(9), CONTEXT, &y).await.unwrap().expose(),
        b"from b"
    );
}

#[tokio::test]
async fn a_creator_that_loses_the_insert_race_uses_the_stored_key() {
    let store = MemoryKeyStore::new();
    let v = vault(&store, &[&key(1)]).await;
    let first = v.seal(UserId(4), CONTEXT, b"first").await.unwrap();
    // This seal believes the user has no key, makes one, and loses the insert.
    store.hide_next_lookup();
    let second = v.seal(UserId(4), CONTEXT, b"second").await.unwrap();
    assert_eq!(store.data_keys().len(), 1);
    assert_eq!(
        v.open(UserId(4), CONTEXT, &first).await.unwrap().expose(),
        b"first"
    );
    assert_eq!(
        v.open(UserId(4), CONTEXT, &second).await.unwrap().expose(),
        b"second"
    );
}

#[tokio::test]
async fn debug_output_holds_no_key_material() {
    let raw = [0x5Au8; 32];
    let master = MasterKey::from_bytes(raw);
    let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
    let store = MemoryKeyStore::new();
    let v = Vault::open(
        Keyring::single(master.clone()),
        store.clone(),
        common::clock(),
    )
    .await
    .unwrap();
    let dek = DataKey::from_bytes(raw);
    let printed = [
        format!("{master:?}"),
        format!("{master:#?}"),
        format!("{:?}", Keyring::single(master.clone())),
        format!("{v:?}"),
        format!("{v:#?}"),
        format!("{dek:?}"),
        format!("{:?}", v.unregistered_keys()),
    ];
    for text in &printed {
        assert!(!text.contains(&b64), "{text}");
        assert!(!text.contains(&hex::encode(raw)), "{text}");
        assert!(!text.contains("90, 90, 90"), "{text}"); // 0x5A as a decimal byte list
        assert!(!text.contains("0x5a") && !text.contains("0x5A"), "{text}");
    }
    assert!(printed[0].contains("redacted"));
    assert!(printed[3].starts_with("Vault"));
}
