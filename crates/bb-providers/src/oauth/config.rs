//! A generic OAuth 2 provider declared in `bookbridge.toml` (`[[oauth_provider]]`), and its
//! validated form.
//!
//! [`OAuthProviderConfig`] is the wire shape (serde, unknown keys refused so a typo such as
//! `revoke_url` is an error instead of a silently unrevocable provider). [`OAuthProvider`] is
//! what the flow functions take: URLs checked, the client secret loaded from its file, reserved
//! authorisation parameters refused. Parse once at start-up, use everywhere.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// How the client authenticates at the token and revocation endpoints (RFC 6749 2.3.1,
/// OIDC Core 9 names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenEndpointAuth {
    /// HTTP Basic with the form-encoded id and secret. What RFC 6749 says servers must support.
    #[default]
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body, for providers that refuse Basic.
    ClientSecretPost,
    /// A public client: `client_id` in the body, no secret (PKCE is the only proof).
    None,
}

/// One `[[oauth_provider]]` table as written by the operator. Never serialised: it holds the
/// client secret.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthProviderConfig {
    /// Used in URLs (`/oauth/callback/{id}`): lowercase letters, digits, `-` and `_`.
    pub id: String,
    /// Shown to users.
    pub name: String,
    pub authorize_url: Url,
    pub token_url: Url,
    /// RFC 7009 endpoint; without it, disconnect can only forget the tokens locally.
    #[serde(default)]
    pub revocation_url: Option<Url>,
    /// The provider's issuer identifier; when set, an `iss` in the callback must equal it
    /// exactly (RFC 9207 2.4: simple string comparison).
    #[serde(default)]
    pub issuer: Option<String>,
    /// The provider's metadata value of the same name (RFC 9207 3). When true, a callback
    /// without `iss` is refused, so an attacker cannot strip it to get past the mix-up check.
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
    /// Gives the external account id and display name.
    #[serde(default)]
    pub userinfo_url: Option<Url>,
    #[serde(default)]
    pub scopes: Vec<String>,
    pub client_id: String,
    #[serde(default)]
    pub client_secret: Option<SecretString>,
    /// A file holding the secret (a container secret); its trailing newline is dropped.
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub token_endpoint_auth_method: TokenEndpointAuth,
    /// Extra query parameters for the authorisation request, such as `prompt = "consent"`
    /// (which some providers require before they issue a refresh token for
    /// `offline_access`). Parameters the flow itself sets are refused.
    #[serde(default)]
    pub authorize_params: BTreeMap<String, String>,
}

/// Why an `[[oauth_provider]]` table was refused. The message names the provider and the
/// field, never a secret's value.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("oauth_provider id {0:?}: use 1-63 lowercase letters, digits, '-' or '_'")]
    BadId(String),
    #[error("oauth_provider {id}: {field} must be https (plain http only on a loopback address)")]
    InsecureUrl { id: String, field: &'static str },
    #[error("oauth_provider {id}: {field} must not have a #fragment")]
    UrlFragment { id: String, field: &'static str },
    #[error("oauth_provider {id}: {field} must not be empty")]
    Empty { id: String, field: &'static str },
    #[error("oauth_provider {id}: scope {scope:?} has characters RFC 6749 3.3 does not allow")]
    BadScope { id: String, scope: String },
    #[error("oauth_provider {id}: set client_secret or client_secret_file, not both")]
    TwoSecrets { id: String },
    #[error(
        "oauth_provider {id}: token_endpoint_auth_method {method} needs client_secret or client_secret_file"
    )]
    MissingSecret { id: String, method: &'static str },
    #[error(
        "oauth_provider {id}: a public client (token_endpoint_auth_method = \"none\") has no secret"
    )]
    UnexpectedSecret { id: String },
    #[error("oauth_provider {id}: cannot read client_secret_file {path}: {reason}")]
    SecretFile {
        id: String,
        path: String,
        reason: String,
    },
    #[error("oauth_provider {id}: authorize_params may not set {param:?}; the flow sets it")]
    ReservedParam { id: String, param: String },
    #[error(
        "oauth_provider {id}: authorization_response_iss_parameter_supported needs issuer to compare against"
    )]
    IssRequiredWithoutIssuer { id: String },
}

/// Query parameters `begin` owns. Letting configuration override one of them would switch
/// off PKCE, state or the exact redirect URI.
const RESERVED_AUTHORIZE_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
    "nonce",
    "response_mode",
];

/// A validated provider: what the flow functions take.
#[derive(Debug)]
pub struct OAuthProvider {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) authorize_url: Url,
    pub(crate) token_url: Url,
    pub(crate) revocation_url: Option<Url>,
    pub(crate) issuer: Option<String>,
    pub(crate) require_iss: bool,
    pub(crate) userinfo_url: Option<Url>,
    pub(crate) scopes: Vec<String>,
    pub(crate) client_id: String,
    pub(crate) client_secret: Option<SecretString>,
    pub(crate) auth_method: TokenEndpointAuth,
    pub(crate) authorize_params: BTreeMap<String, String>,
}

impl OAuthProvider {
    /// Validates a configured provider and loads its secret file.
    pub fn from_config(config: OAuthProviderConfig) -> Result<Self, ConfigError> {
        let OAuthProviderConfig {
            id,
            name,
            authorize_url,
            token_url,
            revocation_url,
            issuer,
            authorization_response_iss_parameter_supported: require_iss,
            userinfo_url,
            scopes,
            client_id,
            client_secret,
            client_secret_file,
            token_endpoint_auth_method: auth_method,
            authorize_params,
        } = config;

        let id_ok = !id.is_empty()
            && id.len() <= 63
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !id_ok {
            return Err(ConfigError::BadId(id));
        }
        if name.trim().is_empty() {
            return Err(ConfigError::Empty { id, field: "name" });
        }
        if client_id.is_empty() {
            return Err(ConfigError::Empty {
                id,
                field: "client_id",
            });
        }
        check_url(&id, "authorize_url", &authorize_url)?;
        check_url(&id, "token_url", &token_url)?;
        if let Some(url) = &revocation_url {
            check_url(&id, "revocation_url", url)?;
        }
        if let Some(url) = &userinfo_url {
            check_url(&id, "userinfo_url", url)?;
        }
        if issuer.as_deref().is_some_and(str::is_empty) {
            return Err(ConfigError::Empty {
                id,
                field: "issuer",
            });
        }
        if require_iss && issuer.is_none() {
            return Err(ConfigError::IssRequiredWithoutIssuer { id });
        }
        check_scopes(&id, &scopes)?;
        check_authorize_params(&id, &authorize_url, &authorize_params)?;

        let client_secret = resolve_secret(&id, auth_method, client_secret, client_secret_file)?;

        Ok(Self {
            id,
            name,
            authorize_url,
            token_url,
            revocation_url,
            issuer,
            require_iss,
            userinfo_url,
            scopes,
            client_id,
            client_secret,
            auth_method,
            authorize_params,
        })
    }

    /// The id used in URLs and stored with each connection.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The display name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The scopes requested on every authorisation.
    pub fn scopes(&self) -> &[String] {
        &self.scopes
    }

    /// The issuer an `iss` callback parameter must equal, if configured.
    pub fn issuer(&self) -> Option<&str> {
        self.issuer.as_deref()
    }

    /// Whether disconnecting can revoke tokens at the provider (SECURITY.md C3).
    pub fn can_revoke(&self) -> bool {
        self.revocation_url.is_some()
    }

    /// Whether [`crate::oauth::OAuthClient::userinfo`] can name the external account.
    pub fn has_userinfo(&self) -> bool {
        self.userinfo_url.is_some()
    }

    /// The exact redirect URI for this provider: `{public_url}/oauth/callback/{id}`. The same
    /// value must go into the authorisation and the token request (RFC 6749 4.1.3).
    pub fn redirect_uri(&self, public_url: &Url) -> Url {
        redirect_uri(public_url, &self.id)
    }
}

/// `{public_url}/oauth/callback/{id}`, tolerating a trailing slash (or a path prefix, when
/// bookbridge is served below a sub-path) in `public_url`.
pub fn redirect_uri(public_url: &Url, provider_id: &str) -> Url {
    let mut url = public_url.clone();
    url.set_query(None);
    url.set_fragment(None);
    let base = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{base}/oauth/callback/{provider_id}"));
    url
}

fn check_scopes(id: &str, scopes: &[String]) -> Result<(), ConfigError> {
    for scope in scopes {
        // scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
        let ok = !scope.is_empty()
            && scope
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
        if !ok {
            return Err(ConfigError::BadScope {
                id: id.to_owned(),
                scope: scope.clone(),
            });
        }
    }
    Ok(())
}

fn check_authorize_params(
    id: &str,
    authorize_url: &Url,
    params: &BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    let reserved = |param: &str| ConfigError::ReservedParam {
        id: id.to_owned(),
        param: param.to_owned(),
    };
    for key in params.keys() {
        // Also refuse repeating a parameter already in the URL: which one wins is up to the
        // provider.
        if RESERVED_AUTHORIZE_PARAMS.contains(&key.as_str())
            || authorize_url.query_pairs().any(|(k, _)| k == key.as_str())
        {
            return Err(reserved(key));
        }
    }
    for (key, _) in authorize_url.query_pairs() {
        if RESERVED_AUTHORIZE_PARAMS.contains(&key.as_ref()) {
            return Err(reserved(&key));
        }
    }
    Ok(())
}

fn resolve_secret(
    id: &str,
    auth_method: TokenEndpointAuth,
    inline: Option<SecretString>,
    file: Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    let id = id.to_owned();
    let secret = match (inline, file) {
        (Some(_), Some(_)) => return Err(ConfigError::TwoSecrets { id }),
        (Some(secret), None) => Some(secret),
        (None, Some(path)) => Some(read_secret_file(&id, &path)?),
        (None, None) => None,
    };
    match (auth_method, &secret) {
        (TokenEndpointAuth::None, Some(_)) => Err(ConfigError::UnexpectedSecret { id }),
        (TokenEndpointAuth::ClientSecretBasic, None) => Err(ConfigError::MissingSecret {
            id,
            method: "client_secret_basic",
        }),
        (TokenEndpointAuth::ClientSecretPost, None) => Err(ConfigError::MissingSecret {
            id,
            method: "client_secret_post",
        }),
        (_, Some(s)) if s.expose_secret().is_empty() => Err(ConfigError::Empty {
            id,
            field: "client_secret",
        }),
        _ => Ok(secret),
    }
}

fn check_url(id: &str, field: &'static str, url: &Url) -> Result<(), ConfigError> {
    let loopback = match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d == "localhost",
        None => false,
    };
    // Tokens and secrets cross these URLs; plain http is only acceptable when the traffic
    // never leaves the machine (tests, a provider on the same host).
    if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
        return Err(ConfigError::InsecureUrl {
            id: id.to_owned(),
            field,
        });
    }
    if url.fragment().is_some() {
        return Err(ConfigError::UrlFragment {
            id: id.to_owned(),
            field,
        });
    }
    Ok(())
}

fn read_secret_file(id: &str, path: &std::path::Path) -> Result<SecretString, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::SecretFile {
        id: id.to_owned(),
        path: path.display().to_string(),
        reason: e.kind().to_string(),
    })?;
    // Editors and `echo` add a newline that is not part of the secret.
    let trimmed = text.trim_end_matches(['\r', '\n']);
    Ok(SecretString::from(trimmed.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        id = "example"
        name = "Example Books"
        authorize_url = "https://auth.example.com/authorize"
        token_url = "https://auth.example.com/token"
        revocation_url = "https://auth.example.com/revoke"
        issuer = "https://auth.example.com"
        userinfo_url = "https://api.example.com/me"
        scopes = ["openid", "offline_access"]
        client_id = "bookbridge"
        client_secret = "s3cr:t+%"
    "#;

    fn parse(text: &str) -> Result<OAuthProvider, String> {
        let config: OAuthProviderConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        OAuthProvider::from_config(config).map_err(|e| e.to_string())
    }

    #[test]
    fn the_issue_example_parses() {
        let p = parse(MINIMAL).unwrap();
        assert_eq!(p.id(), "example");
        assert!(p.can_revoke());
        assert!(p.has_userinfo());
        assert_eq!(p.auth_method, TokenEndpointAuth::ClientSecretBasic);
        assert_eq!(
            p.client_secret.as_ref().unwrap().expose_secret(),
            "s3cr:t+%"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse(&format!("{MINIMAL}\nrevoke_url = \"https://x\"")).unwrap_err();
        assert!(err.contains("revoke_url"), "{err}");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let config: OAuthProviderConfig = toml::from_str(MINIMAL).unwrap();
        assert!(!format!("{config:?}").contains("s3cr"));
        let p = OAuthProvider::from_config(config).unwrap();
        assert!(!format!("{p:?}").contains("s3cr"));
    }

    #[test]
    fn secret_file_is_read_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "from:file+%\n").unwrap();
        let text = MINIMAL.replace(
            "client_secret = \"s3cr:t+%\"",
            &format!("client_secret_file = {:?}", path.display().to_string()),
        );
        let p = parse(&text).unwrap();
        assert_eq!(
            p.client_secret.as_ref().unwrap().expose_secret(),
            "from:file+%"
        );

        let both = format!("{MINIMAL}\nclient_secret_file = \"/nope\"");
        assert!(parse(&both).unwrap_err().contains("not both"));
        let missing = MINIMAL.replace(
            "client_secret = \"s3cr:t+%\"",
            "client_secret_file = \"/nonexistent/x\"",
        );
        let err = parse(&missing).unwrap_err();
        assert!(err.contains("cannot read"), "{err}");
    }

    #[test]
    fn insecure_and_malformed_settings_are_refused() {
        let http = MINIMAL.replace(
            "https://auth.example.com/token",
            "http://auth.example.com/token",
        );
        assert!(
            parse(&http)
                .unwrap_err()
                .contains("token_url must be https")
        );
        let loopback =
            MINIMAL.replace("https://auth.example.com/token", "http://127.0.0.1:9/token");
        assert!(parse(&loopback).is_ok());
        let bad_id = MINIMAL.replace("id = \"example\"", "id = \"Ex/ample\"");
        assert!(parse(&bad_id).is_err());
        let bad_scope = MINIMAL.replace("\"offline_access\"", "\"two words\"");
        assert!(parse(&bad_scope).unwrap_err().contains("scope"));
        let reserved = format!("{MINIMAL}\n[authorize_params]\ncode_challenge_method = \"plain\"");
        assert!(
            parse(&reserved)
                .unwrap_err()
                .contains("code_challenge_method")
        );
        let reserved_in_url = MINIMAL.replace("/authorize\"", "/authorize?state=fixed\"");
        assert!(parse(&reserved_in_url).unwrap_err().contains("state"));
        let iss_without_issuer = MINIMAL.replace("issuer = \"https://auth.example.com\"", "")
            + "\nauthorization_response_iss_parameter_supported = true";
        assert!(
            parse(&iss_without_issuer)
                .unwrap_err()
                .contains("needs issuer")
        );
        let public_with_secret = format!("{MINIMAL}\ntoken_endpoint_auth_method = \"none\"");
        assert!(
            parse(&public_with_secret)
                .unwrap_err()
                .contains("public client")
        );
        let no_secret = MINIMAL.replace("client_secret = \"s3cr:t+%\"", "");
        assert!(
            parse(&no_secret)
                .unwrap_err()
                .contains("needs client_secret")
        );
    }

    #[test]
    fn redirect_uri_is_exact() {
        let id = "example";
        for base in ["http://127.0.0.1:8080", "http://127.0.0.1:8080/"] {
            let url = Url::parse(base).unwrap();
            assert_eq!(
                redirect_uri(&url, id).as_str(),
                "http://127.0.0.1:8080/oauth/callback/example"
            );
        }
        let sub = Url::parse("https://books.example.org/bb/").unwrap();
        assert_eq!(
            redirect_uri(&sub, id).as_str(),
            "https://books.example.org/bb/oauth/callback/example"
        );
    }
}
