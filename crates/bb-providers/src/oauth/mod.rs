//! Generic OAuth 2 client support (authorization code + PKCE), declared by configuration.
//!
//! Hand-rolled on reqwest + serde rather than the `oauth2` crate, on purpose:
//! - the decisions we must get right are exactly the ones `oauth2` leaves to us or hides:
//!   RFC 9207 `iss` checking (absent there), telling `invalid_grant` apart from an outage or a
//!   garbage body (its `RequestTokenError` folds parse failures and server errors together),
//!   `Retry-After` on 429/503, a refresh response without `refresh_token`, revocation order;
//! - `oauth2` 5.0 targets reqwest 0.12's built-in client or needs a closure adapter, and pulls
//!   an older generation of the hash and RNG crates (sha2 0.10, rand 0.8) beside ours;
//! - what remains — a form POST, HTTP Basic with form-encoded credentials, a SHA-256 for
//!   PKCE — is a few dozen lines that tests against a real server (oidc-provider) cover.
//!
//! The flow: [`begin`] gives the authorize URL plus the state, verifier and nonce the
//! connections layer stores; [`parse_callback`] reads the redirect back (issuer checked);
//! [`OAuthClient`] makes the back-channel calls. Nothing here stores anything.

mod authorize;
mod callback;
mod client;
mod config;
mod error;
mod provider;
mod tokens;

pub use authorize::{
    AuthorizationRequest, PENDING_AUTHORIZATION_TTL, begin, begin_with_rng, pkce_challenge,
};
pub use callback::{Callback, CallbackError, CallbackErrorKind, parse_callback};
pub use client::{OAuthClient, RevocableToken, RevokeFailure, UserInfo};
pub use config::{
    ConfigError, OAuthProvider, OAuthProviderConfig, TokenEndpointAuth, redirect_uri,
};
pub use error::OAuthError;
pub use provider::{OAuthConnector, map_error};
pub use tokens::{AccessToken, AuthorizationCode, PkceVerifier, RefreshToken, TokenSet};
