//! bookbridge's credential vault: a keyring of master keys, per-user data keys wrapped by
//! them, envelope encryption bound to owner and place (`bb_core::ports::Sealer`), and
//! resumable master key rotation. See `SECURITY.md` section D for the requirements.

pub mod envelope;
pub mod error;
pub mod keyring;
mod random;
pub mod rotation;
pub mod vault;

pub use envelope::DataKey;
pub use error::{KEY_MISMATCH_MESSAGE, VaultError};
pub use keyring::{Keyring, MasterKey};
pub use rotation::{RotationReport, VaultStatus, VersionStatus};
pub use vault::Vault;
