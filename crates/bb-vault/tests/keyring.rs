//! Keyring sources: the `BOOKBRIDGE_MASTER_KEY` list, key files (load, create, append),
//! and the key-check value.
#![allow(clippy::unwrap_used)] // in tests a panic is the failure report

mod common;

use base64::Engine as _;
use bb_vault::{Keyring, MasterKey, VaultError};
use secrecy::ExposeSecret as _;
use std::fs;
use std::os::unix::fs::PermissionsExt as _;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn base64_list_accepts_one_or_more_keys() {
    let one = Keyring::from_base64_list(&b64(&[1; 32])).unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one.keys()[0].check_value(), common::key(1).check_value());

    let list = format!(" {} ,{}\n", b64(&[1; 32]), b64(&[2; 32]));
    let two = Keyring::from_base64_list(&list).unwrap();
    assert_eq!(two.len(), 2);
    assert_eq!(two.keys()[1].check_value(), common::key(2).check_value());

    // URL-safe and unpadded forms of the same key are the same key.
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xFB; 32]);
    let std = b64(&[0xFB; 32]);
    assert_ne!(url, std.trim_end_matches('='));
    let a = Keyring::from_base64_list(&url).unwrap();
    let b = Keyring::from_base64_list(&std).unwrap();
    assert!(a.keys()[0].same_as(&b.keys()[0]));

    // A repeated key counts once.
    let dup = Keyring::from_base64_list(&format!("{std},{std}")).unwrap();
    assert_eq!(dup.len(), 1);
}

#[test]
fn base64_list_errors_name_the_problem_and_never_echo_the_value() {
    let good = b64(&[1; 32]);
    let not_base64 = "this-is-not*base64!secretish";
    let err = Keyring::from_base64_list(&format!("{good},{not_base64}")).unwrap_err();
    assert!(
        matches!(err, VaultError::KeyEncoding { position: 2 }),
        "{err:?}"
    );
    assert!(err.to_string().contains("#2"));
    assert!(!err.to_string().contains("secretish"));
    assert!(!format!("{err:?}").contains("secretish"));

    let short = b64(&[7; 16]);
    let err = Keyring::from_base64_list(&short).unwrap_err();
    assert!(
        matches!(
            err,
            VaultError::KeyLength {
                position: 1,
                actual: 16
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("16 bytes") && msg.contains("32 bytes"),
        "{msg}"
    );
    assert!(!msg.contains(&short));
    assert_eq!(err.code(), "vault_key_length");

    let long = b64(&[7; 33]);
    assert!(matches!(
        Keyring::from_base64_list(&long),
        Err(VaultError::KeyLength { actual: 33, .. })
    ));

    for empty in ["", "  ", ",", " , ,"] {
        let err = Keyring::from_base64_list(empty).unwrap_err();
        assert!(
            matches!(err, VaultError::EmptyKeyring { .. }),
            "{empty:?}: {err:?}"
        );
        assert!(err.to_string().contains("BOOKBRIDGE_MASTER_KEY"));
    }
}

#[test]
fn key_file_ignores_blank_lines_and_comments_and_names_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys");
    fs::write(
        &path,
        format!(
            "# first key\n\n{}\n   \n# second\n{}\n",
            b64(&[1; 32]),
            b64(&[2; 32])
        ),
    )
    .unwrap();
    let ring = Keyring::load_file(&path).unwrap();
    assert_eq!(ring.len(), 2);
    assert!(ring.keys()[0].same_as(&common::key(1)));
    assert!(ring.keys()[1].same_as(&common::key(2)));

    fs::write(
        &path,
        format!("# ok\n{}\nnot a key at all\n", b64(&[1; 32])),
    )
    .unwrap();
    let err = Keyring::load_file(&path).unwrap_err();
    assert!(
        matches!(err, VaultError::KeyEncoding { position: 3 }),
        "{err:?}"
    );

    fs::write(&path, "# only comments\n\n").unwrap();
    assert!(matches!(
        Keyring::load_file(&path),
        Err(VaultError::EmptyKeyring { .. })
    ));

    let missing = Keyring::load_file(&dir.path().join("absent")).unwrap_err();
    assert_eq!(missing.code(), "vault_key_file");
    assert!(missing.to_string().contains("absent"));
}

#[test]
fn created_key_file_is_private_and_reloads_the_same_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/deeper/master.key");

    let (ring, created) = Keyring::load_or_create_file(&path).unwrap();
    assert!(created);
    assert_eq!(ring.len(), 1);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);

    let (again, created_again) = Keyring::load_or_create_file(&path).unwrap();
    assert!(!created_again);
    assert!(again.keys()[0].same_as(&ring.keys()[0]));
    assert!(Keyring::load_file(&path).unwrap().keys()[0].same_as(&ring.keys()[0]));

    // The temporary file used for the atomic write is gone.
    let names: Vec<_> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("master.key")]);

    // Two fresh files hold different keys.
    let (other, _) = Keyring::load_or_create_file(&dir.path().join("other.key")).unwrap();
    assert!(!other.keys()[0].same_as(&ring.keys()[0]));
}

#[test]
fn appending_a_key_keeps_the_old_ones_and_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("master.key");
    let (ring, _) = Keyring::load_or_create_file(&path).unwrap();

    let new_key = Keyring::append_new_key(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
    let reloaded = Keyring::load_file(&path).unwrap();
    assert_eq!(reloaded.len(), 2);
    assert!(reloaded.keys()[0].same_as(&ring.keys()[0]));
    assert!(reloaded.keys()[1].same_as(&new_key));
    assert!(!new_key.same_as(&ring.keys()[0]));
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);

    // A corrupt file is refused, not extended.
    fs::write(&path, "garbage\n").unwrap();
    assert!(Keyring::append_new_key(&path).is_err());
    assert_eq!(fs::read_to_string(&path).unwrap(), "garbage\n");
}

#[test]
fn check_value_identifies_the_key_without_containing_it() {
    let a = MasterKey::from_bytes([3; 32]);
    let b = MasterKey::from_bytes([4; 32]);
    assert_eq!(a.check_value(), a.clone().check_value());
    assert_ne!(a.check_value(), b.check_value());
    let check = a.check_value();
    assert!(!check.windows(8).any(|w| w == [3; 8]));

    // The base64 form round-trips through the list parser.
    let text = a.to_base64();
    let ring = Keyring::from_base64_list(text.expose_secret()).unwrap();
    assert!(ring.keys()[0].same_as(&a));
}
