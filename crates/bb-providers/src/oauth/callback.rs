//! Reading the redirect back from the provider (`/oauth/callback/{id}?…`): the code and state,
//! the provider's own error as data, and the RFC 9207 issuer check against mix-up attacks.
//!
//! This does not look the state up: the caller finds (and atomically consumes) the pending
//! authorisation by [`Callback::state`] — or by [`CallbackError::state`] when the provider
//! answered with an error, so that connection can record it.

use std::fmt;

use super::config::OAuthProvider;
use super::tokens::AuthorizationCode;

/// A successful callback.
#[derive(Debug)]
pub struct Callback {
    pub code: AuthorizationCode,
    pub state: String,
    /// The `iss` the provider sent, already checked against the configured issuer.
    pub iss: Option<String>,
}

/// A callback that must not lead to a token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackError {
    /// The `state` parameter if present, so the caller can find the pending connection and
    /// record the failure on it. Unverified: look it up like any other state.
    pub state: Option<String>,
    pub kind: CallbackErrorKind,
}

/// What was wrong with a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackErrorKind {
    /// The provider redirected with `error` (RFC 6749 4.1.2.1), e.g. `access_denied` when the
    /// user declined. Both strings come from the provider (really: from whoever crafted the
    /// URL): show them escaped, never as HTML, and never in a redirect target.
    Provider {
        error: String,
        description: Option<String>,
    },
    /// `code` or `state` is absent.
    MissingParameter(&'static str),
    /// A parameter appears twice (RFC 6749 3.1 forbids it; which one would we trust?).
    DuplicateParameter(String),
    /// `iss` differs from the configured issuer: the response came from another provider than
    /// the one this flow was started with (a mix-up attack, RFC 9207 2.4).
    IssuerMismatch { received: String },
    /// The provider advertises `authorization_response_iss_parameter_supported` but the
    /// response has no `iss`: it was stripped or forged.
    MissingIssuer,
}

impl CallbackError {
    /// A stable code for logs, audit events and the connection's `last_error`.
    pub fn code(&self) -> &'static str {
        match self.kind {
            CallbackErrorKind::Provider { .. } => "oauth.callback.provider_error",
            CallbackErrorKind::MissingParameter(_) => "oauth.callback.missing_parameter",
            CallbackErrorKind::DuplicateParameter(_) => "oauth.callback.duplicate_parameter",
            CallbackErrorKind::IssuerMismatch { .. } => "oauth.callback.issuer_mismatch",
            CallbackErrorKind::MissingIssuer => "oauth.callback.missing_issuer",
        }
    }
}

impl fmt::Display for CallbackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            CallbackErrorKind::Provider { error, .. } => {
                write!(f, "the provider refused the authorisation ({error})")
            }
            CallbackErrorKind::MissingParameter(p) => {
                write!(f, "the provider's answer has no {p}")
            }
            CallbackErrorKind::DuplicateParameter(p) => {
                write!(f, "the provider's answer repeats {p}")
            }
            CallbackErrorKind::IssuerMismatch { .. } => {
                f.write_str("the answer came from a different provider than expected")
            }
            CallbackErrorKind::MissingIssuer => {
                f.write_str("the provider's answer does not say who issued it")
            }
        }
    }
}

impl std::error::Error for CallbackError {}

/// Longest provider-supplied text we keep: enough for any honest description, and a bound on
/// what a crafted URL can push into our database and pages.
const MAX_TEXT: usize = 500;

/// Parses the callback's query string (without the leading `?`). Unknown parameters are
/// ignored (RFC 6749 4.1.2: the client must ignore unrecognised response parameters).
pub fn parse_callback(provider: &OAuthProvider, query: &str) -> Result<Callback, CallbackError> {
    let mut code = None;
    let mut state = None;
    let mut iss = None;
    let mut error = None;
    let mut description = None;
    let mut duplicate = None;

    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        let slot = match key.as_ref() {
            "code" => &mut code,
            "state" => &mut state,
            "iss" => &mut iss,
            "error" => &mut error,
            "error_description" => &mut description,
            _ => continue,
        };
        if slot.is_some() {
            duplicate.get_or_insert_with(|| key.clone().into_owned());
        }
        *slot = Some(value.into_owned());
    }

    let fail = |state: Option<String>, kind| Err(CallbackError { state, kind });
    if let Some(param) = duplicate {
        // The state is ambiguous too; hand none back rather than pick one.
        return fail(None, CallbackErrorKind::DuplicateParameter(param));
    }

    // Before anything else, including the provider's error: an error response from the wrong
    // issuer is as untrustworthy as a code from it (RFC 9207 2.4 covers both).
    match (&provider.issuer, &iss) {
        (Some(expected), Some(received)) if expected != received => {
            return fail(
                state,
                CallbackErrorKind::IssuerMismatch {
                    received: clean_text(received),
                },
            );
        }
        (Some(_), None) if provider.require_iss => {
            return fail(state, CallbackErrorKind::MissingIssuer);
        }
        _ => {}
    }

    if let Some(error) = error {
        return fail(
            state,
            CallbackErrorKind::Provider {
                error: clean_text(&error),
                description: description.as_deref().map(clean_text),
            },
        );
    }
    let Some(state) = state else {
        return fail(None, CallbackErrorKind::MissingParameter("state"));
    };
    let Some(code) = code.filter(|c| !c.is_empty()) else {
        return fail(Some(state), CallbackErrorKind::MissingParameter("code"));
    };
    Ok(Callback {
        code: AuthorizationCode::new(code),
        state,
        iss,
    })
}

/// Provider text made safe to store and show as plain text: control characters dropped,
/// length capped (on a character boundary).
fn clean_text(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_TEXT)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::config::OAuthProviderConfig;

    fn provider(issuer: Option<&str>, require: bool) -> OAuthProvider {
        let mut text = String::from(
            r#"
            id = "example"
            name = "Example"
            authorize_url = "https://auth.example.com/authorize"
            token_url = "https://auth.example.com/token"
            client_id = "bb"
            client_secret = "x"
            "#,
        );
        if let Some(issuer) = issuer {
            text = text + "issuer = \"" + issuer + "\"\n";
        }
        if require {
            text.push_str("authorization_response_iss_parameter_supported = true\n");
        }
        let config: OAuthProviderConfig = toml::from_str(&text).unwrap();
        OAuthProvider::from_config(config).unwrap()
    }

    #[test]
    fn a_good_callback_with_unknown_params() {
        let p = provider(Some("https://auth.example.com"), true);
        let cb = parse_callback(
            &p,
            "code=abc%2Bdef&state=st&iss=https%3A%2F%2Fauth.example.com&session_state=x&foo=bar",
        )
        .unwrap();
        assert_eq!(cb.code.expose_secret(), "abc+def");
        assert_eq!(cb.state, "st");
        assert_eq!(cb.iss.as_deref(), Some("https://auth.example.com"));
        assert!(
            !format!("{cb:?}").contains("abc"),
            "the code is redacted in Debug"
        );
    }

    #[test]
    fn issuer_mismatch_is_refused_even_for_errors() {
        let p = provider(Some("https://auth.example.com"), false);
        for q in [
            "code=c&state=s&iss=https%3A%2F%2Fevil.example",
            "error=access_denied&state=s&iss=https%3A%2F%2Fevil.example",
            // Trailing slash: RFC 9207 asks for simple string comparison, no normalisation.
            "code=c&state=s&iss=https%3A%2F%2Fauth.example.com%2F",
        ] {
            let err = parse_callback(&p, q).unwrap_err();
            assert!(
                matches!(err.kind, CallbackErrorKind::IssuerMismatch { .. }),
                "{q}: {err:?}"
            );
            assert_eq!(err.state.as_deref(), Some("s"));
            assert_eq!(err.code(), "oauth.callback.issuer_mismatch");
        }
    }

    #[test]
    fn missing_iss_depends_on_what_the_provider_advertises() {
        let lax = provider(Some("https://auth.example.com"), false);
        assert!(parse_callback(&lax, "code=c&state=s").is_ok());
        let strict = provider(Some("https://auth.example.com"), true);
        let err = parse_callback(&strict, "code=c&state=s").unwrap_err();
        assert_eq!(err.kind, CallbackErrorKind::MissingIssuer);
        let unconfigured = provider(None, false);
        assert!(parse_callback(&unconfigured, "code=c&state=s&iss=anything").is_ok());
    }

    #[test]
    fn provider_errors_are_data() {
        let p = provider(None, false);
        let err = parse_callback(
            &p,
            "error=access_denied&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E%0A&state=s",
        )
        .unwrap_err();
        assert_eq!(err.state.as_deref(), Some("s"));
        assert_eq!(
            err.kind,
            CallbackErrorKind::Provider {
                error: "access_denied".into(),
                // Kept as text (the page escapes it), control characters dropped.
                description: Some("<script>alert(1)</script>".into()),
            }
        );
        let long = format!("error=x&error_description={}", "a".repeat(10_000));
        match parse_callback(&p, &long).unwrap_err().kind {
            CallbackErrorKind::Provider { description, .. } => {
                assert_eq!(description.unwrap().len(), MAX_TEXT);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn missing_and_duplicate_parameters() {
        let p = provider(None, false);
        let err = parse_callback(&p, "code=c").unwrap_err();
        assert_eq!(err.kind, CallbackErrorKind::MissingParameter("state"));
        let err = parse_callback(&p, "state=s").unwrap_err();
        assert_eq!(err.kind, CallbackErrorKind::MissingParameter("code"));
        assert_eq!(err.state.as_deref(), Some("s"));
        let err = parse_callback(&p, "code=&state=s").unwrap_err();
        assert_eq!(err.kind, CallbackErrorKind::MissingParameter("code"));
        let err = parse_callback(&p, "code=a&state=s&state=t").unwrap_err();
        assert_eq!(
            err.kind,
            CallbackErrorKind::DuplicateParameter("state".into())
        );
        assert_eq!(err.state, None);
        assert!(parse_callback(&p, "").is_err());
    }
}
