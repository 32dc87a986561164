//! Typed row identifiers, so a `UserId` can never be passed where a `TokenId` is meant.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::num::ParseIntError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

id_type!(
    /// A local bookbridge account.
    UserId
);
id_type!(
    /// A personal access token.
    TokenId
);
id_type!(
    /// A per-user data-encryption key.
    DataKeyId
);
id_type!(
    /// One work in one user's library.
    ItemId
);
id_type!(
    /// One import of one or more files.
    BatchId
);
id_type!(
    /// A linked account at a provider.
    ConnectionId
);
