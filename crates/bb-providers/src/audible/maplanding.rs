//! Reading the address the user pastes back after signing in (dossier §2.4): Amazon's
//! `/ap/maplanding` page, whose query carries `openid.oa2.authorization_code`.
//!
//! People paste what their browser gives them: with surrounding spaces or quotes, with
//! `&amp;` from a page source, sometimes without the scheme. The dossier names only
//! `openid.oa2.authorization_code` and notes that music-assistant "accepts other spellings"
//! without listing them; we accept the ones a browser or a script plausibly produces: the
//! dots percent-encoded (decoded by the query parser), replaced by `_` (PHP-style form
//! mangling), any letter case, and a bare `authorization_code`. A plain `code` is not taken:
//! on a maplanding page it would be some other parameter's.

use url::Url;

use super::AudibleError;
use super::marketplace::Marketplace;
pub use crate::oauth::AuthorizationCode;

/// Parameter names that carry the code, compared case-insensitively.
const CODE_KEYS: [&str; 3] = [
    "openid.oa2.authorization_code",
    "openid_oa2_authorization_code",
    "authorization_code",
];

/// Extracts the authorization code. Errors say what was wrong and what to do; none echoes
/// the pasted text (it may hold a code).
pub fn parse_maplanding(pasted: &str) -> Result<AuthorizationCode, AudibleError> {
    let text = pasted
        .trim()
        .trim_matches(|c: char| c == '"' || c == '\'' || c == '<' || c == '>')
        .trim()
        .replace("&amp;", "&");
    if text.is_empty() {
        return Err(AudibleError::NotMaplanding);
    }
    let with_scheme = if text.contains("://") {
        text
    } else {
        format!("https://{text}")
    };
    let url = Url::parse(&with_scheme).map_err(|_| AudibleError::NotMaplanding)?;
    if !matches!(url.scheme(), "https" | "http") || !is_amazon_or_audible_host(&url) {
        return Err(AudibleError::NotMaplanding);
    }
    if !url
        .path()
        .trim_end_matches('/')
        .to_ascii_lowercase()
        .ends_with("/ap/maplanding")
    {
        return Err(AudibleError::NotMaplanding);
    }
    // The query, then a fragment in query form (seen when a page rewrites its address).
    let from = |pairs: url::form_urlencoded::Parse<'_>| {
        pairs
            .filter(|(k, _)| CODE_KEYS.iter().any(|c| k.eq_ignore_ascii_case(c)))
            .map(|(_, v)| v.trim().to_owned())
            .find(|v| !v.is_empty())
    };
    let code = from(url.query_pairs()).or_else(|| {
        url.fragment()
            .and_then(|f| from(url::form_urlencoded::parse(f.as_bytes())))
    });
    match code {
        Some(code) if code.chars().all(|c| c.is_ascii_graphic()) => {
            Ok(AuthorizationCode::new(code))
        }
        Some(_) | None => Err(AudibleError::NoCode),
    }
}

/// `www.amazon.{tld}` or `www.audible.{tld}` (§2.4, §2.6 and Libation's return address)
/// for one of the eleven store domains.
fn is_amazon_or_audible_host(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let host = host.strip_prefix("www.").unwrap_or(&host);
    Marketplace::ALL.iter().any(|m| {
        ["amazon", "audible"]
            .iter()
            .any(|brand| host == format!("{brand}.{}", m.domain()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "https://www.amazon.com/ap/maplanding?openid.assoc_handle=amzn_audible_ios_us\
        &openid.mode=id_res&openid.oa2.authorization_code=ANxyzAbCdEfGhIjKlMnO\
        &openid.return_to=https%3A%2F%2Fwww.amazon.com%2Fap%2Fmaplanding";

    fn code(s: &str) -> Result<String, AudibleError> {
        parse_maplanding(s).map(|c| c.expose_secret().to_owned())
    }

    #[test]
    fn the_code_is_found_in_every_spelling() {
        assert_eq!(code(GOOD).unwrap(), "ANxyzAbCdEfGhIjKlMnO");
        let variants = [
            format!("  \"{GOOD}\"\n"),
            GOOD.replace('&', "&amp;"),
            GOOD.replace("https://", ""),
            GOOD.replace("openid.oa2.authorization_code", "openid%2Eoa2%2Eauthorization_code"),
            GOOD.replace("openid.oa2.authorization_code", "openid_oa2_authorization_code"),
            GOOD.replace("openid.oa2.authorization_code", "OpenID.OA2.Authorization_Code"),
            GOOD.replace("openid.oa2.authorization_code", "authorization_code"),
            GOOD.replace("www.amazon.com", "www.amazon.co.uk"),
            GOOD.replace("www.amazon.com", "www.audible.de"),
            GOOD.replace("/ap/maplanding?", "/ap/maplanding/?"),
            "https://www.amazon.com/ap/maplanding#openid.oa2.authorization_code=ANxyzAbCdEfGhIjKlMnO"
                .to_owned(),
        ];
        for v in variants {
            assert_eq!(code(&v).unwrap(), "ANxyzAbCdEfGhIjKlMnO", "{v}");
        }
    }

    #[test]
    fn other_pages_are_not_maplanding() {
        for bad in [
            "",
            "   ",
            "ANxyzAbCdEfGhIjKlMnO",
            "https://www.amazon.com/ap/signin?openid.oa2.authorization_code=X",
            "https://evil.example/ap/maplanding?openid.oa2.authorization_code=X",
            "https://amazon.evil.example/ap/maplanding?openid.oa2.authorization_code=X",
            "https://www.amazon.com.evil.example/ap/maplanding?openid.oa2.authorization_code=X",
            "ftp://www.amazon.com/ap/maplanding?openid.oa2.authorization_code=X",
            "javascript:alert(1)",
        ] {
            assert!(
                matches!(parse_maplanding(bad), Err(AudibleError::NotMaplanding)),
                "{bad}"
            );
        }
    }

    #[test]
    fn maplanding_without_a_code_says_so() {
        for bad in [
            "https://www.amazon.com/ap/maplanding?openid.mode=id_res",
            "https://www.amazon.com/ap/maplanding?openid.oa2.authorization_code=",
            "https://www.amazon.com/ap/maplanding?openid.oa2.authorization_code=a%20b",
            "https://www.amazon.com/ap/maplanding?code=ANxyz",
        ] {
            let e = parse_maplanding(bad).unwrap_err();
            assert!(matches!(e, AudibleError::NoCode), "{bad}");
            assert!(e.to_string().contains("sign in again"));
        }
    }
}
