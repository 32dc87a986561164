//! A configured `[[oauth_provider]]` as a connections [`Provider`]: the authorize URL with
//! PKCE and state, the code exchange on the callback (issuer checked), refresh keeping a
//! refresh token the provider did not resend, RFC 7009 revocation (refresh token first)
//! and, as its "sync", a userinfo call that proves the access token still works.
//!
//! Credentials are this module's JSON (`StoredTokens`), sealed by the caller.

use super::authorize::begin;
use super::callback::{CallbackErrorKind, parse_callback};
use super::client::OAuthClient;
use super::config::OAuthProvider;
use super::error::OAuthError;
use super::tokens::{AccessToken, PkceVerifier, RefreshToken, TokenSet};
use async_trait::async_trait;
use bb_core::connections::{
    AuthKind, Begin, BeginConnect, CompleteInput, ExternalAccount, Linked, Provider, ProviderError,
    ProviderInfo, Refreshed, SyncBatch,
};
use bb_core::secret::{SecretBytes, SecretString};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use url::Url;
use zeroize::Zeroize;

/// The tokens as sealed in the vault. Never logged: `Debug` is not derived.
#[derive(Serialize, Deserialize)]
struct StoredTokens {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
}

impl Drop for StoredTokens {
    fn drop(&mut self) {
        self.access_token.zeroize();
        if let Some(rt) = &mut self.refresh_token {
            rt.zeroize();
        }
    }
}

/// What is kept between the redirect and the callback.
#[derive(Serialize, Deserialize)]
struct PendingFlow {
    verifier: String,
    redirect_uri: String,
}

impl Drop for PendingFlow {
    fn drop(&mut self) {
        self.verifier.zeroize();
    }
}

/// A generic OAuth 2 provider declared in configuration.
#[derive(Debug, Clone)]
pub struct OAuthConnector {
    provider: Arc<OAuthProvider>,
    client: OAuthClient,
}

impl OAuthConnector {
    pub fn new(provider: OAuthProvider, client: OAuthClient) -> Self {
        Self {
            provider: Arc::new(provider),
            client,
        }
    }

    fn encode(tokens: &StoredTokens) -> Result<SecretBytes, ProviderError> {
        serde_json::to_vec(tokens)
            .map(SecretBytes::new)
            .map_err(|_| rejected("oauth.encode", "the tokens could not be encoded"))
    }

    fn decode(credentials: &SecretBytes) -> Result<StoredTokens, ProviderError> {
        serde_json::from_slice(credentials.expose()).map_err(|_| ProviderError::NeedsReauth {
            code: "oauth.credentials_unreadable".into(),
            message: "the stored tokens are unreadable; reconnect the account".into(),
        })
    }

    async fn account(&self, access: &AccessToken) -> Result<ExternalAccount, ProviderError> {
        if !self.provider.has_userinfo() {
            // Without userinfo nothing names the account; a random id keeps links apart
            // (so linking the same account twice cannot be detected for such providers).
            return Ok(ExternalAccount {
                external_id: format!("anonymous-{}", random_id()),
                display_name: None,
            });
        }
        let info = self
            .client
            .userinfo(&self.provider, access)
            .await
            .map_err(|e| map_error(&e))?;
        Ok(ExternalAccount {
            external_id: info.external_id,
            display_name: info.display_name,
        })
    }
}

fn random_id() -> String {
    use rand::Rng;
    let bytes: [u8; 12] = rand::rng().random();
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, bytes)
}

fn rejected(code: &str, message: &str) -> ProviderError {
    ProviderError::Rejected {
        code: code.into(),
        message: message.into(),
    }
}

/// What an OAuth failure means for a connection.
pub fn map_error(e: &OAuthError) -> ProviderError {
    let code = e.code().to_owned();
    let message = e.to_string();
    match e {
        OAuthError::InvalidGrant { .. } | OAuthError::InvalidToken => {
            ProviderError::NeedsReauth { code, message }
        }
        OAuthError::RateLimited { .. } | OAuthError::Outage(_) => ProviderError::Transient {
            code,
            message,
            retry_after: e.retry_after(),
        },
        _ => ProviderError::Rejected { code, message },
    }
}

#[async_trait]
impl Provider for OAuthConnector {
    fn info(&self) -> ProviderInfo {
        ProviderInfo {
            id: self.provider.id().to_owned(),
            name: self.provider.name().to_owned(),
            auth_kind: AuthKind::Oauth2,
            // A generic provider brings an account, not books: mapping records needs a
            // provider module.
            capabilities: Vec::new(),
            can_revoke: self.provider.can_revoke(),
            configured: true,
            base_urls: vec![self.provider.token_url.origin().ascii_serialization()],
            rate_limit: None,
            help_url: None,
        }
    }

    async fn begin(&self, request: BeginConnect) -> Result<Begin, ProviderError> {
        let redirect_uri = Url::parse(&request.redirect_uri)
            .map_err(|_| rejected("oauth.redirect_uri", "the redirect URI is not a URL"))?;
        let auth = begin(&self.provider, &redirect_uri);
        let pending = serde_json::to_vec(&PendingFlow {
            verifier: auth.pkce_verifier.expose_secret().to_owned(),
            redirect_uri: auth.redirect_uri.to_string(),
        })
        .map_err(|_| rejected("oauth.encode", "the flow could not be kept"))?;
        Ok(Begin::Redirect {
            authorize_url: auth.url.to_string(),
            state: Some(SecretString::from(auth.state)),
            pending: SecretBytes::new(pending),
        })
    }

    async fn complete(
        &self,
        pending: &SecretBytes,
        input: CompleteInput<'_>,
        _redirect_uri: &str,
    ) -> Result<Linked, ProviderError> {
        let CompleteInput::Callback { query } = input else {
            return Err(ProviderError::Invalid {
                code: "oauth.wrong_flow".into(),
                message: "this provider completes through its callback address".into(),
            });
        };
        let callback = parse_callback(&self.provider, query).map_err(|e| {
            let code = e.code().to_owned();
            match e.kind {
                CallbackErrorKind::Provider { error, description } => ProviderError::Invalid {
                    message: match description {
                        Some(d) => format!("the provider said {error}: {d}"),
                        None => format!("the provider said {error}"),
                    },
                    code: error,
                },
                _ => ProviderError::Invalid {
                    message: e.to_string(),
                    code,
                },
            }
        })?;
        let flow: PendingFlow = serde_json::from_slice(pending.expose()).map_err(|_| {
            rejected(
                "oauth.pending_unreadable",
                "the pending sign-in is unreadable",
            )
        })?;
        let redirect_uri = Url::parse(&flow.redirect_uri)
            .map_err(|_| rejected("oauth.redirect_uri", "the redirect URI is not a URL"))?;
        let verifier = PkceVerifier::new(flow.verifier.clone());
        let tokens: TokenSet = self
            .client
            .exchange_code(&self.provider, &callback.code, &verifier, &redirect_uri)
            .await
            .map_err(|e| map_error(&e))?;
        let account = self.account(&tokens.access_token).await?;
        let stored = StoredTokens {
            access_token: tokens.access_token.expose_secret().to_owned(),
            refresh_token: tokens
                .refresh_token
                .as_ref()
                .map(|t| t.expose_secret().to_owned()),
        };
        Ok(Linked {
            account,
            credentials: Some(Self::encode(&stored)?),
            scopes: tokens.granted_scopes(self.provider.scopes()),
            expires_at: tokens.expires_at,
            notice: None,
        })
    }

    async fn refresh(&self, credentials: &SecretBytes) -> Result<Refreshed, ProviderError> {
        let stored = Self::decode(credentials)?;
        let Some(rt) = stored.refresh_token.as_deref() else {
            return Err(ProviderError::NeedsReauth {
                code: "oauth.no_refresh_token".into(),
                message: "the provider granted no refresh token; reconnect the account".into(),
            });
        };
        let used = RefreshToken::new(rt);
        let tokens = self
            .client
            .refresh(&self.provider, &used)
            .await
            .map_err(|e| map_error(&e))?;
        let next = StoredTokens {
            access_token: tokens.access_token.expose_secret().to_owned(),
            // A refresh token the provider did not resend stays valid: keep it.
            refresh_token: Some(
                tokens
                    .refresh_token_after_refresh(&used)
                    .expose_secret()
                    .to_owned(),
            ),
        };
        Ok(Refreshed {
            credentials: Self::encode(&next)?,
            expires_at: tokens.expires_at,
        })
    }

    async fn sync(
        &self,
        _account: &ExternalAccount,
        credentials: Option<&SecretBytes>,
        _cursor: Option<&str>,
    ) -> Result<SyncBatch, ProviderError> {
        let credentials = credentials.ok_or_else(|| ProviderError::NeedsReauth {
            code: "oauth.no_credentials".into(),
            message: "the connection has no tokens; reconnect the account".into(),
        })?;
        let stored = Self::decode(credentials)?;
        if self.provider.has_userinfo() {
            self.client
                .userinfo(
                    &self.provider,
                    &AccessToken::new(stored.access_token.clone()),
                )
                .await
                .map_err(|e| map_error(&e))?;
        }
        Ok(SyncBatch::default())
    }

    async fn revoke(&self, credentials: &SecretBytes) -> Result<(), ProviderError> {
        let stored = Self::decode(credentials)?;
        let refresh = stored.refresh_token.as_deref().map(RefreshToken::new);
        let access = AccessToken::new(stored.access_token.clone());
        self.client
            .revoke_all(&self.provider, refresh.as_ref(), Some(&access))
            .await
            .map_err(|f| map_error(&f.error))
    }
}
