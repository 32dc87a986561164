//! Starting a sign-in (dossier §2.1–2.2, iOS persona as mkb79 builds it): a fresh PKCE
//! verifier, a device serial and the client id derived from it, and Amazon's `/ap/signin`
//! URL for the user's own browser. The verifier and serial travel on as a [`PendingSignIn`]
//! that the connections framework seals until the user pastes the maplanding address.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bb_core::secret::SecretBytes;
use rand::{CryptoRng, RngCore};
use serde::{Deserialize, Serialize};
use url::Url;
use zeroize::Zeroize;

use super::AudibleError;
use super::marketplace::Marketplace;
use crate::oauth::{PkceVerifier, pkce_challenge};

/// The iOS app's device type (mkb79).
pub const DEVICE_TYPE: &str = "A2CZJZGLK2JJVM";

/// A sign-in in progress: the URL to show, and what to keep (sealed) until it completes.
#[derive(Debug)]
pub struct SignInStart {
    /// Amazon's own sign-in page. Holds no secret (only the verifier's hash).
    pub url: Url,
    pub pending: PendingSignIn,
}

/// What registration needs from the start of the flow. `Debug` hides the verifier.
#[derive(Clone)]
pub struct PendingSignIn {
    pub marketplace: Marketplace,
    /// 40 upper-case hex characters; becomes the device's serial at Amazon.
    pub device_serial: String,
    pub code_verifier: PkceVerifier,
}

impl std::fmt::Debug for PendingSignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingSignIn")
            .field("marketplace", &self.marketplace)
            .field("device_serial", &self.device_serial)
            .field("code_verifier", &"[redacted]")
            .finish()
    }
}

/// The sealed form. Private so nothing else can serialise the verifier by accident.
#[derive(Serialize, Deserialize)]
struct PendingWire {
    v: u8,
    marketplace: Marketplace,
    device_serial: String,
    code_verifier: String,
}

impl PendingSignIn {
    /// The client id of §2.1: hex of `"{serial}#{device_type}"` (sent with a `device:`
    /// prefix in the sign-in URL, without it at registration).
    pub fn client_id(&self) -> String {
        client_id(&self.device_serial)
    }

    /// Bytes for the vault to seal (JSON; the only place the verifier leaves this type).
    pub fn to_sealable(&self) -> SecretBytes {
        let wire = PendingWire {
            v: 1,
            marketplace: self.marketplace,
            device_serial: self.device_serial.clone(),
            code_verifier: self.code_verifier.expose_secret().to_owned(),
        };
        let bytes = serde_json::to_vec(&wire).unwrap_or_default();
        let PendingWire {
            mut code_verifier, ..
        } = wire;
        code_verifier.zeroize();
        SecretBytes::new(bytes)
    }

    /// Reads back what [`to_sealable`](Self::to_sealable) produced.
    pub fn from_sealed(bytes: &[u8]) -> Result<PendingSignIn, AudibleError> {
        let mut wire: PendingWire = serde_json::from_slice(bytes)
            .map_err(|_| AudibleError::Stored("the pending sign-in is not readable".into()))?;
        if wire.v != 1 {
            return Err(AudibleError::Stored(format!(
                "the pending sign-in has unknown format version {}",
                wire.v
            )));
        }
        let pending = PendingSignIn {
            marketplace: wire.marketplace,
            device_serial: std::mem::take(&mut wire.device_serial),
            code_verifier: PkceVerifier::new(wire.code_verifier.clone()),
        };
        wire.code_verifier.zeroize();
        Ok(pending)
    }
}

/// hex(`"{serial}#A2CZJZGLK2JJVM"`), lower-case.
pub fn client_id(device_serial: &str) -> String {
    hex::encode(format!("{device_serial}#{DEVICE_TYPE}"))
}

/// Starts a sign-in with the operating system's CSPRNG.
pub fn begin_sign_in(marketplace: Marketplace) -> SignInStart {
    begin_sign_in_with_rng(marketplace, &mut rand::rng())
}

/// [`begin_sign_in`] with an explicit CSPRNG.
pub fn begin_sign_in_with_rng<R: CryptoRng + RngCore>(
    marketplace: Marketplace,
    rng: &mut R,
) -> SignInStart {
    // 32 CSPRNG bytes → 43 base64url characters without padding (RFC 7636 4.1, §2.1).
    let mut verifier = [0u8; 32];
    rng.fill_bytes(&mut verifier);
    let code_verifier = PkceVerifier::new(URL_SAFE_NO_PAD.encode(verifier));
    verifier.zeroize();
    // Observed real devices use 40 hex characters; mkb79 upper-cases its serials.
    let mut serial = [0u8; 20];
    rng.fill_bytes(&mut serial);
    let device_serial = hex::encode_upper(serial);
    let pending = PendingSignIn {
        marketplace,
        device_serial,
        code_verifier,
    };
    SignInStart {
        url: sign_in_url(&pending),
        pending,
    }
}

/// The `/ap/signin` URL of §2.2. Always Amazon's own host for the marketplace: host
/// overrides in the configuration never reach the user's browser.
pub fn sign_in_url(pending: &PendingSignIn) -> Url {
    let m = pending.marketplace;
    let origin = m.sign_in_origin();
    let return_to = format!("{origin}/ap/maplanding");
    let assoc_handle = format!("amzn_audible_ios_{}", m.country_code());
    let client_id = format!("device:{}", pending.client_id());
    let challenge = pkce_challenge(&pending.code_verifier);
    let identifier_select = "http://specs.openid.net/auth/2.0/identifier_select";
    let mut url = Url::parse(&format!("{origin}/ap/signin"))
        .expect("the sign-in origin comes from the fixed marketplace table");
    url.query_pairs_mut()
        .append_pair("openid.oa2.response_type", "code")
        .append_pair("openid.oa2.code_challenge_method", "S256")
        .append_pair("openid.oa2.code_challenge", &challenge)
        .append_pair("openid.return_to", &return_to)
        .append_pair("openid.assoc_handle", &assoc_handle)
        .append_pair("openid.identity", identifier_select)
        .append_pair("openid.claimed_id", identifier_select)
        .append_pair("openid.mode", "checkid_setup")
        .append_pair("openid.ns", "http://specs.openid.net/auth/2.0")
        // Always `.com` and always `http`, whatever the marketplace (§2.2).
        .append_pair("openid.ns.oa2", "http://www.amazon.com/ap/ext/oauth/2")
        .append_pair(
            "openid.ns.pape",
            "http://specs.openid.net/extensions/pape/1.0",
        )
        .append_pair("openid.pape.max_auth_age", "0")
        .append_pair("openid.oa2.client_id", &client_id)
        .append_pair("openid.oa2.scope", "device_auth_access")
        .append_pair("pageId", "amzn_audible_ios")
        .append_pair("marketPlaceId", m.marketplace_id())
        .append_pair("accountStatusPolicy", "P1")
        .append_pair("forceMobileLayout", "true");
    url
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};
    use std::collections::HashMap;

    fn query(url: &Url) -> HashMap<String, String> {
        url.query_pairs().into_owned().collect()
    }

    #[test]
    fn url_carries_every_parameter_of_the_dossier() {
        let start = begin_sign_in(Marketplace::Uk);
        let q = query(&start.url);
        assert_eq!(start.url.host_str(), Some("www.amazon.co.uk"));
        assert_eq!(start.url.path(), "/ap/signin");
        assert_eq!(q["openid.assoc_handle"], "amzn_audible_ios_uk");
        assert_eq!(
            q["openid.return_to"],
            "https://www.amazon.co.uk/ap/maplanding"
        );
        assert_eq!(q["marketPlaceId"], "A2I9A3Q2GNFNGQ");
        assert_eq!(q["openid.ns.oa2"], "http://www.amazon.com/ap/ext/oauth/2");
        assert_eq!(q["openid.oa2.code_challenge_method"], "S256");
        assert_eq!(q["openid.oa2.scope"], "device_auth_access");
        assert_eq!(q["openid.pape.max_auth_age"], "0");
        assert_eq!(q["pageId"], "amzn_audible_ios");
        assert_eq!(q["accountStatusPolicy"], "P1");
        assert_eq!(q["forceMobileLayout"], "true");
        assert_eq!(q["openid.mode"], "checkid_setup");
        assert_eq!(q.len(), 18, "exactly the 18 parameters of §2.2");

        // The challenge is S256 of the kept verifier, and the verifier is 43 base64url chars.
        let verifier = start.pending.code_verifier.expose_secret();
        assert_eq!(verifier.len(), 43);
        assert_eq!(
            q["openid.oa2.code_challenge"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
        );
        assert!(!start.url.as_str().contains(verifier));

        // client id: device: + hex("{serial}#A2CZJZGLK2JJVM")
        let serial = &start.pending.device_serial;
        assert_eq!(serial.len(), 40);
        assert!(
            serial
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
        );
        let hex_id = q["openid.oa2.client_id"].strip_prefix("device:").unwrap();
        assert_eq!(
            String::from_utf8(hex::decode(hex_id).unwrap()).unwrap(),
            format!("{serial}#A2CZJZGLK2JJVM")
        );
    }

    #[test]
    fn every_flow_is_fresh() {
        let a = begin_sign_in(Marketplace::Us);
        let b = begin_sign_in(Marketplace::Us);
        assert_ne!(
            a.pending.code_verifier.expose_secret(),
            b.pending.code_verifier.expose_secret()
        );
        assert_ne!(a.pending.device_serial, b.pending.device_serial);
    }

    #[test]
    fn pending_round_trips_through_sealable_bytes_and_hides_the_verifier() {
        let start = begin_sign_in(Marketplace::Jp);
        let bytes = start.pending.to_sealable();
        let back = PendingSignIn::from_sealed(bytes.expose()).unwrap();
        assert_eq!(back.marketplace, Marketplace::Jp);
        assert_eq!(back.device_serial, start.pending.device_serial);
        assert_eq!(
            back.code_verifier.expose_secret(),
            start.pending.code_verifier.expose_secret()
        );
        let debug = format!("{:?}", start.pending);
        assert!(!debug.contains(start.pending.code_verifier.expose_secret()));
        assert!(matches!(
            PendingSignIn::from_sealed(b"{}"),
            Err(AudibleError::Stored(_))
        ));
    }
}
