//! The eleven Audible stores (dossier §1): country code, top-level domain, Amazon
//! marketplace id, and the hosts derived from the domain.

use serde::{Deserialize, Serialize};

/// One Audible store. The serialised form is the country code (`"us"`, `"uk"`, …), the
/// value users and the API name a marketplace by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Marketplace {
    Us,
    Uk,
    De,
    Fr,
    Ca,
    It,
    Au,
    In,
    Jp,
    Es,
    Br,
}

impl Marketplace {
    /// Every store, in the dossier's order.
    pub const ALL: [Marketplace; 11] = [
        Marketplace::Us,
        Marketplace::Uk,
        Marketplace::De,
        Marketplace::Fr,
        Marketplace::Ca,
        Marketplace::It,
        Marketplace::Au,
        Marketplace::In,
        Marketplace::Jp,
        Marketplace::Es,
        Marketplace::Br,
    ];

    /// The country code used in the `OpenID` `assoc_handle` (`amzn_audible_ios_{cc}`).
    pub fn country_code(self) -> &'static str {
        self.row().0
    }

    /// The top-level domain every host of this store is built from (`com`, `co.uk`, …).
    pub fn domain(self) -> &'static str {
        self.row().1
    }

    /// Amazon's marketplace id (`marketPlaceId` of the sign-in URL).
    pub fn marketplace_id(self) -> &'static str {
        self.row().2
    }

    /// The store's name in English, for messages.
    pub fn name(self) -> &'static str {
        self.row().3
    }

    /// `https://www.amazon.{tld}`: the sign-in pages and the maplanding return address.
    pub fn sign_in_origin(self) -> String {
        format!("https://www.amazon.{}", self.domain())
    }

    /// `https://api.amazon.{tld}`: device registration, token refresh, deregistration.
    pub fn auth_base_url(self) -> String {
        format!("https://api.amazon.{}", self.domain())
    }

    /// `https://api.audible.{tld}`: the Audible API.
    pub fn api_base_url(self) -> String {
        format!("https://api.audible.{}", self.domain())
    }

    /// Parses a country code, case-insensitively. `gb` is accepted for `uk` because that is
    /// the ISO code people type.
    pub fn from_code(code: &str) -> Option<Marketplace> {
        let code = code.trim().to_ascii_lowercase();
        let code = if code == "gb" { "uk" } else { code.as_str() };
        Self::ALL.into_iter().find(|m| m.country_code() == code)
    }

    fn row(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            Marketplace::Us => ("us", "com", "AF2M0KC94RCEA", "United States"),
            Marketplace::Uk => ("uk", "co.uk", "A2I9A3Q2GNFNGQ", "United Kingdom"),
            Marketplace::De => ("de", "de", "AN7V1F1VY261K", "Germany"),
            Marketplace::Fr => ("fr", "fr", "A2728XDNODOQ8T", "France"),
            Marketplace::Ca => ("ca", "ca", "A2CQZ5RBY40XE", "Canada"),
            Marketplace::It => ("it", "it", "A2N7FU2W2BU2ZC", "Italy"),
            Marketplace::Au => ("au", "com.au", "AN7EY7DTAW63G", "Australia"),
            Marketplace::In => ("in", "in", "AJO3FBRUE6J4S", "India"),
            Marketplace::Jp => ("jp", "co.jp", "A1QAP3MOU4173J", "Japan"),
            Marketplace::Es => ("es", "es", "ALMIKO4SZCSAR", "Spain"),
            Marketplace::Br => ("br", "com.br", "A10J1VAYUDTYRN", "Brazil"),
        }
    }
}

impl std::fmt::Display for Marketplace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.country_code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_has_distinct_codes_domains_and_ids() {
        let mut codes: Vec<_> = Marketplace::ALL.iter().map(|m| m.country_code()).collect();
        let mut domains: Vec<_> = Marketplace::ALL.iter().map(|m| m.domain()).collect();
        let mut ids: Vec<_> = Marketplace::ALL
            .iter()
            .map(|m| m.marketplace_id())
            .collect();
        for v in [&mut codes, &mut domains, &mut ids] {
            v.sort_unstable();
            v.dedup();
            assert_eq!(v.len(), 11);
        }
    }

    #[test]
    fn hosts_follow_the_domain() {
        let uk = Marketplace::from_code("UK").unwrap();
        assert_eq!(uk.sign_in_origin(), "https://www.amazon.co.uk");
        assert_eq!(uk.auth_base_url(), "https://api.amazon.co.uk");
        assert_eq!(uk.api_base_url(), "https://api.audible.co.uk");
        assert_eq!(Marketplace::from_code("gb"), Some(Marketplace::Uk));
        assert_eq!(
            Marketplace::from_code("br").unwrap().api_base_url(),
            "https://api.audible.com.br"
        );
        assert_eq!(Marketplace::from_code("xx"), None);
        assert_eq!(
            serde_json::to_string(&Marketplace::Jp).unwrap(),
            "\"jp\"",
            "the serialised form is the country code"
        );
    }
}
