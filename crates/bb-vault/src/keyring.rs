//! Master keys and the keyring: parsing `BOOKBRIDGE_MASTER_KEY`, the key file (create,
//! load, append), and the subkeys derived from a master key (key-check value, KEK).
//!
//! A master key is never used directly. HKDF-SHA256 derives one subkey per purpose under
//! distinct labels (D3), so the public key-check value and the key-encryption key share
//! nothing an attacker could combine.

use crate::error::VaultError;
use crate::random::fill_random;
use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use sha2::Sha256;
use std::fmt;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of a master key, a data key and every derived subkey.
pub const KEY_LEN: usize = 32;

const HKDF_SALT: &[u8] = b"bookbridge/vault/v1";
const CHECK_SUBKEY_LABEL: &[u8] = b"bookbridge/vault/v1/key-check";
const KEK_LABEL: &[u8] = b"bookbridge/vault/v1/kek";
const CHECK_MESSAGE: &[u8] = b"bookbridge master key check value v1";

// Operators paste keys from many tools; accept both alphabets, padded or not. The
// alphabets are disjoint only in two characters, so trying one then the other is exact.
const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE_LENIENT: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// A 32-byte master key. Zeroized on drop; `Debug` prints `[redacted]`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct MasterKey([u8; KEY_LEN]);

impl MasterKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, VaultError> {
        let mut bytes = [0u8; KEY_LEN];
        fill_random(&mut bytes)?;
        Ok(Self(bytes))
    }

    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Parses one base64 key; `position` (1-based) is only used to name it in errors.
    fn parse(text: &str, position: usize) -> Result<Self, VaultError> {
        let text = text.trim();
        let decoded = Zeroizing::new(
            STANDARD_LENIENT
                .decode(text)
                .or_else(|_| URL_SAFE_LENIENT.decode(text))
                .map_err(|_| VaultError::KeyEncoding { position })?,
        );
        let bytes: [u8; KEY_LEN] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| VaultError::KeyLength {
                    position,
                    actual: decoded.len(),
                })?;
        Ok(Self(bytes))
    }

    /// The key as standard base64, for the one moment it must be shown or written.
    pub fn to_base64(&self) -> SecretString {
        SecretString::from(base64::engine::general_purpose::STANDARD.encode(self.0))
    }

    /// The key-check value stored in the database: HMAC-SHA256 of a fixed message under an
    /// HKDF subkey. Identifies the key; reveals nothing about it or about the KEK.
    pub fn check_value(&self) -> [u8; 32] {
        let subkey = self.derive(CHECK_SUBKEY_LABEL);
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(subkey.as_slice()) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac.update(CHECK_MESSAGE);
        mac.finalize().into_bytes().into()
    }

    /// The key-encryption key that wraps data keys.
    pub(crate) fn kek(&self) -> Zeroizing<[u8; KEY_LEN]> {
        self.derive(KEK_LABEL)
    }

    fn derive(&self, label: &[u8]) -> Zeroizing<[u8; KEY_LEN]> {
        let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), &self.0);
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        if hk.expand(label, out.as_mut_slice()).is_err() {
            unreachable!("32 bytes is far below HKDF-SHA256's 8160-byte limit")
        }
        out
    }

    /// Whether two keys are the same, without a timing side channel.
    pub fn same_as(&self, other: &MasterKey) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([redacted])")
    }
}

/// One or more master keys, in the order they were given. Keys have no version here; the
/// vault matches them to database versions by check value.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<MasterKey>,
}

impl Keyring {
    /// A ring of one key.
    pub fn single(key: MasterKey) -> Self {
        Self { keys: vec![key] }
    }

    /// A ring of the given keys (duplicates dropped). Fails when empty.
    pub fn from_keys(keys: Vec<MasterKey>) -> Result<Self, VaultError> {
        let mut ring = Self { keys: Vec::new() };
        for key in keys {
            ring.push(key);
        }
        if ring.keys.is_empty() {
            return Err(VaultError::EmptyKeyring {
                source_name: "the key list".to_owned(),
            });
        }
        Ok(ring)
    }

    /// Parses what `BOOKBRIDGE_MASTER_KEY` holds: one or more comma-separated base64 keys.
    pub fn from_base64_list(list: &str) -> Result<Self, VaultError> {
        let mut keys = Vec::new();
        for (index, entry) in list.split(',').enumerate() {
            if entry.trim().is_empty() {
                continue;
            }
            keys.push(MasterKey::parse(entry, index + 1)?);
        }
        Self::from_keys(keys).map_err(|_| VaultError::EmptyKeyring {
            source_name: "BOOKBRIDGE_MASTER_KEY".to_owned(),
        })
    }

    /// Loads a key file: one base64 key per line; blank lines and `#` comments ignored.
    /// Errors name the line number, never its content.
    pub fn load_file(path: &Path) -> Result<Self, VaultError> {
        let text =
            Zeroizing::new(
                fs::read_to_string(path).map_err(|source| VaultError::KeyFile {
                    path: path.to_owned(),
                    source,
                })?,
            );
        warn_if_readable_by_others(path);
        let mut keys = Vec::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            keys.push(MasterKey::parse(line, index + 1)?);
        }
        Self::from_keys(keys).map_err(|_| VaultError::EmptyKeyring {
            source_name: path.display().to_string(),
        })
    }

    /// Loads the key file, or creates it (parent directories included, mode 0600) holding
    /// one fresh key. Returns whether it was created.
    pub fn load_or_create_file(path: &Path) -> Result<(Self, bool), VaultError> {
        match fs::symlink_metadata(path) {
            Ok(_) => return Ok((Self::load_file(path)?, false)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => {
                return Err(VaultError::KeyFile {
                    path: path.to_owned(),
                    source,
                });
            }
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_private_dir_all(parent).map_err(|source| VaultError::KeyFile {
                path: parent.to_owned(),
                source,
            })?;
        }
        let key = MasterKey::generate()?;
        let contents = Zeroizing::new(format!(
            "# bookbridge master key. Back it up: without it the stored secrets cannot be read.\n{}\n",
            secrecy::ExposeSecret::expose_secret(&key.to_base64())
        ));
        match write_atomically(path, contents.as_bytes(), Mode::CreateNew) {
            Ok(()) => Ok((Self::single(key), true)),
            // Another process created it between our check and our write: its key is the one
            // to use, since it may already be registered in the database.
            Err(VaultError::KeyFile { source, .. })
                if source.kind() == std::io::ErrorKind::AlreadyExists =>
            {
                Ok((Self::load_file(path)?, false))
            }
            Err(e) => Err(e),
        }
    }

    /// Appends a fresh random key to an existing key file, atomically and keeping mode
    /// 0600, and returns it. The file must already load (so a corrupt file is never
    /// extended).
    pub fn append_new_key(path: &Path) -> Result<MasterKey, VaultError> {
        Self::load_file(path)?;
        let mut contents =
            Zeroizing::new(
                fs::read_to_string(path).map_err(|source| VaultError::KeyFile {
                    path: path.to_owned(),
                    source,
                })?,
            );
        if !contents.is_empty() && !contents.ends_with('\n') {
            contents.push('\n');
        }
        let key = MasterKey::generate()?;
        contents.push_str(secrecy::ExposeSecret::expose_secret(&key.to_base64()));
        contents.push('\n');
        write_atomically(path, contents.as_bytes(), Mode::Replace)?;
        Ok(key)
    }

    /// Adds a key unless the ring already holds it.
    pub fn push(&mut self, key: MasterKey) {
        if !self.keys.iter().any(|k| k.same_as(&key)) {
            self.keys.push(key);
        }
    }

    pub fn keys(&self) -> &[MasterKey] {
        &self.keys
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("keys", &self.keys.len())
            .finish()
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Fail with `AlreadyExists` rather than replace an existing file.
    CreateNew,
    Replace,
}

/// Writes `contents` to a private temporary file beside `path`, syncs it, then moves it
/// into place, so a reader never sees a half-written key file and a crash leaves either
/// the old file or the new one.
fn write_atomically(path: &Path, contents: &[u8], mode: Mode) -> Result<(), VaultError> {
    let io_err = |source| VaultError::KeyFile {
        path: path.to_owned(),
        source,
    };
    let tmp = temp_path_beside(path)?;
    let result = (|| {
        let mut file = private_create_new(&tmp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        drop(file);
        match mode {
            Mode::Replace => fs::rename(&tmp, path),
            // A hard link, unlike rename, refuses to replace an existing file, so two
            // processes creating the key file at once cannot both believe they won.
            Mode::CreateNew => match fs::hard_link(&tmp, path) {
                Ok(()) => fs::remove_file(&tmp),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Err(e),
                // Some filesystems have no hard links; fall back to rename.
                Err(_) => fs::rename(&tmp, path),
            },
        }
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(io_err)?;
    sync_parent_dir(path);
    Ok(())
}

fn temp_path_beside(path: &Path) -> Result<PathBuf, VaultError> {
    let mut suffix = [0u8; 8];
    fill_random(&mut suffix)?;
    let name = path
        .file_name()
        .map_or_else(|| "master-key".into(), |n| n.to_string_lossy());
    let tag = u64::from_be_bytes(suffix);
    let tmp_name = format!(".{name}.tmp-{tag:016x}");
    Ok(path.with_file_name(tmp_name))
}

#[cfg(unix)]
fn private_create_new(path: &Path) -> std::io::Result<fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn private_create_new(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir_all(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

/// Makes the rename itself durable. Best effort: some filesystems refuse to sync a
/// directory, and the file content is already synced.
fn sync_parent_dir(path: &Path) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
        && let Ok(dir) = fs::File::open(parent)
    {
        let _ = dir.sync_all();
    }
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt as _;
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{:o}", meta.permissions().mode() & 0o777),
            "master key file is readable by other users; chmod 600 it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}
