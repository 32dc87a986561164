//! What a registered device is (dossier §3 "Persist"): the secrets the vault seals, and the
//! device and customer facts that may be shown. `Debug` never prints a secret; the only way
//! out for the secrets is [`DeviceCredentials::to_sealable`].

use bb_core::secret::{ExposeSecret, SecretBytes, SecretString};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use zeroize::Zeroize;

use super::AudibleError;
use super::marketplace::Marketplace;

/// The device as Amazon lists it in the user's "Devices" page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The expanded name, e.g. "Anna's 2nd Audible for iPhone".
    pub device_name: String,
    pub device_serial_number: String,
    pub device_type: String,
}

/// Who the account belongs to (`customer_info` extension).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct CustomerInfo {
    /// `amzn1.account.…`
    pub user_id: Option<String>,
    pub name: Option<String>,
    pub given_name: Option<String>,
    /// NA, EU or FE.
    pub home_region: Option<String>,
    /// "Amazon" for Amazon accounts.
    pub account_pool: Option<String>,
}

/// Everything needed to use and later deregister a device.
#[derive(Clone)]
pub struct DeviceCredentials {
    pub marketplace: Marketplace,
    pub device_serial: String,
    pub adp_token: SecretString,
    /// PEM, PKCS#1, as received.
    pub device_private_key: SecretString,
    pub access_token: SecretString,
    pub refresh_token: SecretString,
    /// When the access token stops working (registration time + `expires_in`).
    pub access_expires_at: DateTime<Utc>,
    /// `website_cookies` as a JSON object name → value (quotes stripped). Optional: the
    /// library sync does not use them.
    pub website_cookies: Option<SecretString>,
    pub store_authentication_cookie: Option<SecretString>,
    pub device_info: DeviceInfo,
    pub customer_info: CustomerInfo,
}

impl std::fmt::Debug for DeviceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceCredentials")
            .field("marketplace", &self.marketplace)
            .field("device_serial", &self.device_serial)
            .field("secrets", &"[redacted]")
            .field("access_expires_at", &self.access_expires_at)
            .field("device_info", &self.device_info)
            .field("customer_info", &self.customer_info)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct CredentialsWire {
    v: u8,
    marketplace: Marketplace,
    device_serial: String,
    adp_token: String,
    device_private_key: String,
    access_token: String,
    refresh_token: String,
    access_expires_at: DateTime<Utc>,
    website_cookies: Option<String>,
    store_authentication_cookie: Option<String>,
    device_info: DeviceInfo,
    customer_info: CustomerInfo,
}

impl Drop for CredentialsWire {
    fn drop(&mut self) {
        self.adp_token.zeroize();
        self.device_private_key.zeroize();
        self.access_token.zeroize();
        self.refresh_token.zeroize();
        self.website_cookies.zeroize();
        self.store_authentication_cookie.zeroize();
    }
}

impl DeviceCredentials {
    /// Bytes for the vault to seal.
    pub fn to_sealable(&self) -> SecretBytes {
        let expose = |s: &SecretString| s.expose_secret().to_owned();
        let wire = CredentialsWire {
            v: 1,
            marketplace: self.marketplace,
            device_serial: self.device_serial.clone(),
            adp_token: expose(&self.adp_token),
            device_private_key: expose(&self.device_private_key),
            access_token: expose(&self.access_token),
            refresh_token: expose(&self.refresh_token),
            access_expires_at: self.access_expires_at,
            website_cookies: self.website_cookies.as_ref().map(expose),
            store_authentication_cookie: self.store_authentication_cookie.as_ref().map(expose),
            device_info: self.device_info.clone(),
            customer_info: self.customer_info.clone(),
        };
        SecretBytes::new(serde_json::to_vec(&wire).unwrap_or_default())
    }

    /// Reads back what [`to_sealable`](Self::to_sealable) produced.
    pub fn from_sealed(bytes: &[u8]) -> Result<DeviceCredentials, AudibleError> {
        let w: CredentialsWire = serde_json::from_slice(bytes).map_err(|_| {
            AudibleError::Stored("the Audible device credentials are not readable".into())
        })?;
        if w.v != 1 {
            return Err(AudibleError::Stored(format!(
                "the Audible device credentials have unknown format version {}",
                w.v
            )));
        }
        let secret = |s: &str| SecretString::from(s.to_owned());
        Ok(DeviceCredentials {
            marketplace: w.marketplace,
            device_serial: w.device_serial.clone(),
            adp_token: secret(&w.adp_token),
            device_private_key: secret(&w.device_private_key),
            access_token: secret(&w.access_token),
            refresh_token: secret(&w.refresh_token),
            access_expires_at: w.access_expires_at,
            website_cookies: w.website_cookies.as_deref().map(secret),
            store_authentication_cookie: w.store_authentication_cookie.as_deref().map(secret),
            device_info: w.device_info.clone(),
            customer_info: w.customer_info.clone(),
        })
    }

    /// Whether the access token is expired or will be within `margin` (refresh ahead of
    /// expiry, STYLE.md's Nango lesson).
    pub fn access_token_due(&self, now: DateTime<Utc>, margin: chrono::Duration) -> bool {
        now + margin >= self.access_expires_at
    }
}
