//! Device registration (`POST /auth/register`, dossier §3) and deregistration
//! (`POST /auth/deregister`, §6). Registration turns the pasted code into device
//! credentials; deregistration removes exactly this device, never all of them.

use bb_core::clock::Clock;
use bb_core::secret::{ExposeSecret, SecretString};
use chrono::Duration;
use serde::Serialize;
use serde_json::{Map, Value, json};
use tracing::{info, instrument};

use super::client::sensitive;
use super::credentials::{CustomerInfo, DeviceCredentials, DeviceInfo};
use super::maplanding::{AuthorizationCode, parse_maplanding};
use super::signin::{DEVICE_TYPE, PendingSignIn};
use super::token::refresh_access_token;
use super::wire::{self, On4xx, required_str};
use super::{AudibleConfig, AudibleError, secret};
use crate::http;

/// App identity constants of the iOS persona (mkb79), sent at registration and refresh.
pub const APP_VERSION: &str = "3.56.2";
pub const SOFTWARE_VERSION: &str = "35602678";
pub const OS_VERSION: &str = "15.0.0";
/// Amazon expands the placeholders into e.g. "Anna's 3rd Audible for iPhone".
pub const DEVICE_NAME_TEMPLATE: &str =
    "%FIRST_NAME%%FIRST_NAME_POSSESSIVE_STRING%%DUPE_STRATEGY_1ST%Audible for iPhone";

/// A registered device.
#[derive(Debug, Clone)]
pub struct Registration {
    pub credentials: DeviceCredentials,
}

impl Registration {
    /// The device's name as Amazon shows it in the user's device list.
    pub fn device_name(&self) -> &str {
        &self.credentials.device_info.device_name
    }
}

/// Parses the pasted maplanding address and registers the device: the whole "complete"
/// step. Nothing is returned (so nothing can be stored) unless registration succeeded.
pub async fn complete_sign_in(
    http: &reqwest::Client,
    config: &AudibleConfig,
    clock: &dyn Clock,
    pending: &PendingSignIn,
    pasted_url: &str,
) -> Result<Registration, AudibleError> {
    let code = parse_maplanding(pasted_url)?;
    register_device(http, config, clock, pending, &code).await
}

/// The `/auth/register` body of §3, iOS persona, exactly as the dossier lists it.
pub fn register_body(pending: &PendingSignIn, code: &AuthorizationCode) -> Value {
    json!({
        "requested_token_type": ["bearer", "mac_dms", "website_cookies", "store_authentication_cookie"],
        "cookies": {
            "website_cookies": [],
            "domain": format!(".amazon.{}", pending.marketplace.domain()),
        },
        "registration_data": {
            "domain": "Device",
            "app_version": APP_VERSION,
            "device_serial": pending.device_serial,
            "device_type": DEVICE_TYPE,
            "device_name": DEVICE_NAME_TEMPLATE,
            "os_version": OS_VERSION,
            "software_version": SOFTWARE_VERSION,
            "device_model": "iPhone",
            "app_name": "Audible",
        },
        "auth_data": {
            // Without the `device:` prefix of the sign-in URL.
            "client_id": pending.client_id(),
            "authorization_code": code.expose_secret(),
            "code_verifier": pending.code_verifier.expose_secret(),
            "code_algorithm": "SHA-256",
            "client_domain": "DeviceLegacy",
        },
        "requested_extensions": ["device_info", "customer_info"],
    })
}

/// Registers a virtual device with the code from the maplanding address.
#[instrument(skip_all, fields(provider = "audible", marketplace = %pending.marketplace))]
pub async fn register_device(
    http: &reqwest::Client,
    config: &AudibleConfig,
    clock: &dyn Clock,
    pending: &PendingSignIn,
    code: &AuthorizationCode,
) -> Result<Registration, AudibleError> {
    let url = format!("{}/auth/register", config.auth_base(pending.marketplace));
    let mut body = serde_json::to_vec(&register_body(pending, code)).unwrap_or_default();
    let request = http
        .post(url)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .body(body.clone());
    zeroize::Zeroize::zeroize(&mut body);
    let answer = http::send(request).await.map_err(wire::transport)?;
    let now = clock.now();
    let v = wire::json_answer("the device registration", On4xx::Register, answer, now)?;
    // A 200 can still carry the error envelope (§3 error shape).
    if v.pointer("/response/error").is_some() {
        let reason = v
            .pointer("/response/error/code")
            .and_then(Value::as_str)
            .map(str::to_owned);
        return Err(AudibleError::CodeRejected { reason });
    }
    let credentials = parse_registration(&v, pending, now)?;
    info!(device = %credentials.device_info.device_name, "registered an Audible device");
    Ok(Registration { credentials })
}

fn parse_registration(
    v: &Value,
    pending: &PendingSignIn,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<DeviceCredentials, AudibleError> {
    const WHAT: &str = "the device registration";
    let s = |p: &str| required_str(v, WHAT, p).map(str::to_owned);
    let adp_token = s("/response/success/tokens/mac_dms/adp_token")?;
    let device_private_key = s("/response/success/tokens/mac_dms/device_private_key")?;
    if !device_private_key.contains("PRIVATE KEY-----") {
        return Err(AudibleError::Garbage {
            what: WHAT,
            problem: "the device private key is not PEM".into(),
        });
    }
    let access_token = s("/response/success/tokens/bearer/access_token")?;
    let refresh_token = s("/response/success/tokens/bearer/refresh_token")?;
    let expires = wire::expires_in(v.pointer("/response/success/tokens/bearer/expires_in"))
        .map_err(|problem| AudibleError::Garbage {
            what: WHAT,
            problem,
        })?;
    let info = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let device_info = DeviceInfo {
        device_name: s("/response/success/extensions/device_info/device_name")?,
        device_serial_number: info("/response/success/extensions/device_info/device_serial_number")
            .unwrap_or_else(|| pending.device_serial.clone()),
        device_type: info("/response/success/extensions/device_info/device_type")
            .unwrap_or_else(|| DEVICE_TYPE.to_owned()),
    };
    let c = "/response/success/extensions/customer_info";
    let customer_info = CustomerInfo {
        user_id: info(&format!("{c}/user_id")),
        name: info(&format!("{c}/name")),
        given_name: info(&format!("{c}/given_name")),
        home_region: info(&format!("{c}/home_region")),
        account_pool: info(&format!("{c}/account_pool")),
    };
    Ok(DeviceCredentials {
        marketplace: pending.marketplace,
        device_serial: pending.device_serial.clone(),
        adp_token: secret(adp_token),
        device_private_key: secret(device_private_key),
        access_token: secret(access_token),
        refresh_token: secret(refresh_token),
        access_expires_at: now + Duration::seconds(expires),
        website_cookies: website_cookies(v.pointer("/response/success/tokens/website_cookies")),
        store_authentication_cookie: info(
            "/response/success/tokens/store_authentication_cookie/cookie",
        )
        .map(secret),
        device_info,
        customer_info,
    })
}

/// `[{Name, Value, …}]` → `{name: value}` with the literal double quotes some values carry
/// stripped (as mkb79 does), sealed as one JSON secret.
fn website_cookies(v: Option<&Value>) -> Option<SecretString> {
    let list = v?.as_array()?;
    let map: Map<String, Value> = list
        .iter()
        .filter_map(|c| {
            let name = c.get("Name")?.as_str()?;
            let value = c.get("Value")?.as_str()?.replace('"', "");
            Some((name.to_owned(), Value::String(value)))
        })
        .collect();
    if map.is_empty() {
        return None;
    }
    Some(secret(Value::Object(map).to_string()))
}

/// The deregistration body. `deregister_all_existing_accounts` is a type that can only
/// serialise as `false`: `true` would remove every Audible device of the account, the
/// user's phones included (§6), so it cannot be expressed.
#[derive(Debug, Serialize)]
pub struct DeregisterBody {
    pub deregister_all_existing_accounts: OnlyThisDevice,
}

/// Serialises as `false`, and has no other value.
#[derive(Debug, Clone, Copy, Default)]
pub struct OnlyThisDevice;

impl Serialize for OnlyThisDevice {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(false)
    }
}

/// Deregisters exactly this device (`deregister_all_existing_accounts: false`). The access
/// token is refreshed first when due (§6); the returned credentials carry it so the caller
/// can see what was used, but after success nothing of them is valid any more, and the
/// caller deletes them whatever the outcome (SECURITY.md C1).
#[instrument(skip_all, fields(provider = "audible", marketplace = %credentials.marketplace))]
pub async fn deregister(
    http: &reqwest::Client,
    config: &AudibleConfig,
    clock: &dyn Clock,
    credentials: &DeviceCredentials,
) -> Result<(), AudibleError> {
    let margin = Duration::minutes(5);
    let access_token = if credentials.access_token_due(clock.now(), margin) {
        refresh_access_token(http, config, clock, credentials)
            .await?
            .access_token
    } else {
        credentials.access_token.clone()
    };
    let url = format!(
        "{}/auth/deregister",
        config.auth_base(credentials.marketplace)
    );
    let body = serde_json::to_vec(&DeregisterBody {
        deregister_all_existing_accounts: OnlyThisDevice,
    })
    .unwrap_or_default();
    let token = access_token.expose_secret();
    // §6: the current header is `x-amz-access-token`; Libation still sends the legacy
    // `Authorization: Bearer` here. Which one the endpoint requires today is not settled,
    // so both are sent (same token, same request).
    let request = http
        .post(url)
        .header("Accept", "application/json")
        .header("Content-Type", "application/json")
        .header("x-amz-access-token", sensitive(token))
        .header("Authorization", sensitive(&format!("Bearer {token}")))
        .body(body);
    let answer = http::send(request).await.map_err(wire::transport)?;
    let v = wire::json_answer("the device deregistration", On4xx::Api, answer, clock.now())?;
    if let Some(code) = v.pointer("/response/error/code").and_then(Value::as_str) {
        return Err(AudibleError::Rejected {
            what: "the device deregistration",
            status: 200,
            message: Some(code.chars().take(100).collect()),
        });
    }
    info!("deregistered the Audible device");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deregistration_can_only_say_false() {
        let body = serde_json::to_value(DeregisterBody {
            deregister_all_existing_accounts: OnlyThisDevice,
        })
        .unwrap();
        assert_eq!(body, json!({"deregister_all_existing_accounts": false}));
    }
}
