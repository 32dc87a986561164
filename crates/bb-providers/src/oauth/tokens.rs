//! Token and credential types of the OAuth flow: secrets that print `[redacted]`, cannot be
//! serialised, and are exposed only where they are sent or sealed.

use std::fmt;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};

macro_rules! secret_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// Wraps a value read back from the vault or received from the provider.
            pub fn new(value: impl Into<String>) -> Self {
                Self(SecretString::from(value.into()))
            }

            /// The raw value, for the one place that sends or seals it.
            pub fn expose_secret(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }
    };
}

secret_newtype!(
    /// A bearer access token.
    AccessToken
);
secret_newtype!(
    /// A refresh token. With rotating providers each one is single-use: a second use revokes
    /// the whole grant, so never send one twice.
    RefreshToken
);
secret_newtype!(
    /// The authorisation code from the callback: short-lived, single-use, but until redeemed
    /// it is as good as a token.
    AuthorizationCode
);
secret_newtype!(
    /// The PKCE `code_verifier` (RFC 7636): stored with the pending state, sent once with the
    /// code.
    PkceVerifier
);

/// What a token endpoint granted.
#[derive(Debug, Clone)]
pub struct TokenSet {
    pub access_token: AccessToken,
    /// `token_type` as sent (`Bearer` in every provider we know; compared case-insensitively).
    pub token_type: String,
    /// `now + expires_in` by the injected clock. `None` when the provider sent no `expires_in`:
    /// such tokens must still be refreshed on a 401 and periodically (SECURITY.md B5).
    pub expires_at: Option<DateTime<Utc>>,
    /// After a code exchange: the refresh token, or `None` when the provider granted no offline
    /// access. After a refresh: the **rotated** refresh token, or `None` when the provider did
    /// not send one — then the old refresh token stays valid and must be kept
    /// (RFC 6749 6; see [`TokenSet::refresh_token_after_refresh`]).
    pub refresh_token: Option<RefreshToken>,
    /// The scopes granted, when the provider said (they may be narrower than requested).
    /// `None` means "as requested" (RFC 6749 5.1).
    pub scope: Option<Vec<String>>,
}

impl TokenSet {
    /// The refresh token to store after a refresh: the rotated one, or else the one that was
    /// just used. Dropping the old one because a response omitted it is how connections die
    /// silently (Nango #298).
    pub fn refresh_token_after_refresh(&self, used: &RefreshToken) -> RefreshToken {
        self.refresh_token.clone().unwrap_or_else(|| used.clone())
    }

    /// Whether the provider rotated the refresh token in this response.
    pub fn rotated(&self) -> bool {
        self.refresh_token.is_some()
    }

    /// The scopes actually granted: the provider's list, or the request's when it sent none.
    pub fn granted_scopes(&self, requested: &[String]) -> Vec<String> {
        self.scope.clone().unwrap_or_else(|| requested.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let at = AccessToken::new("at-very-secret");
        let rt = RefreshToken::new("rt-very-secret");
        let set = TokenSet {
            access_token: at.clone(),
            token_type: "Bearer".into(),
            expires_at: None,
            refresh_token: Some(rt.clone()),
            scope: None,
        };
        let printed = format!(
            "{at:?} {rt:?} {set:?} {:?}",
            PkceVerifier::new("pkce-secret")
        );
        assert!(!printed.contains("very-secret"), "{printed}");
        assert!(!printed.contains("pkce-secret"), "{printed}");
        assert!(printed.contains("AccessToken([redacted])"));
    }

    #[test]
    fn an_omitted_refresh_token_keeps_the_old_one() {
        let old = RefreshToken::new("old");
        let mut set = TokenSet {
            access_token: AccessToken::new("a"),
            token_type: "Bearer".into(),
            expires_at: None,
            refresh_token: None,
            scope: None,
        };
        assert!(!set.rotated());
        assert_eq!(set.refresh_token_after_refresh(&old).expose_secret(), "old");
        set.refresh_token = Some(RefreshToken::new("new"));
        assert_eq!(set.refresh_token_after_refresh(&old).expose_secret(), "new");
        assert_eq!(set.granted_scopes(&["a".into()]), vec!["a".to_owned()]);
    }
}
