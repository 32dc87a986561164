//! bookbridge's Audible request signing against the reference client, the `PyPI` `audible`
//! package (mkb79) pinned in `tests/peers/audible/requirements.txt`: RSA PKCS#1 v1.5 is
//! deterministic, so for the same key, method, path, body, timestamp and adp token our
//! headers must be byte-identical to the package's. The package's own client is also run
//! against the fake Audible, so the fake's signature check is proven against real signing.
//! Skips loudly when the virtual environment is missing (not under `BOOKBRIDGE_REQUIRE_PEERS=1`).

#![allow(clippy::unwrap_used)]

#[path = "peers/audible/peer.rs"]
mod peer;

use std::sync::Arc;

use bb_core::clock::{Clock, SystemClock};
use bb_core::secret::{ExposeSecret, SecretString};
use bb_providers::audible::signing::{self, DeviceKey};
use bb_providers::audible::{AudibleConfig, Marketplace, begin_sign_in, complete_sign_in};
use bb_providers::http::{HttpSettings, build_client};
use bb_testkit::audible::{self as fake, AuthMode, FIXED_DEVICE_KEY, FakeAudibleConfig};
use serde_json::{Value, json};

const ADP_TOKEN: &str = "{enc:QUJDREVGR0hJSktMTU5PUA==}{key:UVJTVFVWV1hZWg==}\
{iv:R0hJSktMTU4=}{name:QURQVG9rZW5FbmNyeXB0aW9uS2V5}{serial:Mg==}";

#[test]
fn our_signatures_are_byte_identical_to_the_reference_clients() {
    let Some(python) = peer::python() else {
        return;
    };
    let requests = [
        (
            "GET",
            "/1.0/library?num_results=1000&page=1&response_groups=contributors%2Cmedia%2Cproduct_attrs",
            "",
        ),
        (
            "GET",
            "/1.0/annotations/lastpositions?asins=B0EXAMPLE1%2CB0EXAMPLE2",
            "",
        ),
        ("POST", "/1.0/wishlist", r#"{"asin": "B0EXAMPLE1"}"#),
        (
            "PUT",
            "/1.0/lastpositions/B0EXAMPLE1",
            r#"{"acr": "CR!X", "note": "Übersetzer — 日本語", "position_ms": 1603500}"#,
        ),
        ("DELETE", "/1.0/wishlist/B0EXAMPLE1", ""),
    ];
    let input = json!({
        "private_key": FIXED_DEVICE_KEY.0,
        "adp_token": ADP_TOKEN,
        "now": "2025-03-02T10:15:30.123456+00:00",
        "requests": requests.iter().map(|(m, p, b)| json!({"method": m, "path": p, "body": b})).collect::<Vec<_>>(),
    });
    let out = peer::run(&python, "sign.py", &input);
    assert_eq!(out["version"], "0.13.1", "the pinned reference version");
    let theirs = out["headers"].as_array().unwrap();
    assert_eq!(theirs.len(), requests.len());

    let key = DeviceKey::parse(&SecretString::from(FIXED_DEVICE_KEY.0.to_owned())).unwrap();
    let adp = SecretString::from(ADP_TOKEN.to_owned());
    let public = FIXED_DEVICE_KEY.1;
    for ((method, path, body), reference) in requests.iter().zip(theirs) {
        let their_sig = reference["x-adp-signature"].as_str().unwrap();
        // The package's timestamp (`…123456+00:00Z` since 2024, §4.1), reused verbatim.
        let (_, ts) = their_sig.split_once(':').unwrap();
        assert_eq!(ts, "2025-03-02T10:15:30.123456+00:00Z");
        let ours = signing::signed_headers(&key, &adp, method, path, body.as_bytes(), ts);
        for (name, value) in &ours {
            assert_eq!(
                reference[*name].as_str(),
                Some(value.as_str()),
                "{name} of {method} {path}"
            );
        }
        // The fake's verifier accepts the reference client's signature …
        let now = chrono::DateTime::parse_from_rfc3339("2025-03-02T10:16:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        fake::signature::verify(
            public,
            Some("SHA256withRSA:1.0"),
            Some(their_sig),
            ADP_TOKEN,
            method,
            path,
            body.as_bytes(),
            now,
        )
        .unwrap();
        // … and not the same signature for another body.
        assert!(
            fake::signature::verify(
                public,
                Some("SHA256withRSA:1.0"),
                Some(their_sig),
                ADP_TOKEN,
                method,
                path,
                b"{\"asin\": \"B0OTHER\"}",
                now,
            )
            .is_err()
        );
    }
    // With our own recommended timestamp form the signature differs, as it must: the
    // timestamp is part of what is signed.
    let own = signing::signed_headers(
        &key,
        &adp,
        "GET",
        requests[0].1,
        b"",
        "2025-03-02T10:15:30.123456Z",
    );
    assert_ne!(own[2].1, theirs[0]["x-adp-signature"].as_str().unwrap());
}

#[tokio::test]
async fn the_reference_client_reads_the_fake_with_credentials_we_registered() {
    let Some(python) = peer::python() else {
        return;
    };
    // The package signs with the wall clock, so the fake runs on it too.
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 30)).await;
    let config = AudibleConfig {
        auth_base_url: Some(fake.base_url.clone()),
        api_base_url: Some(fake.base_url.clone()),
    };
    let start = begin_sign_in(Marketplace::Us);
    let landing = fake.sign_in(start.url.as_str()).unwrap();
    let http = build_client(HttpSettings::default()).unwrap();
    let reg = complete_sign_in(&http, &config, &*clock, &start.pending, &landing)
        .await
        .unwrap();
    let c = &reg.credentials;
    #[allow(clippy::cast_precision_loss)] // a Unix timestamp in seconds
    let expires = c.access_expires_at.timestamp() as f64;
    let input = json!({
        "base_url": fake.base_url,
        "auth": {
            "adp_token": c.adp_token.expose_secret(),
            "device_private_key": c.device_private_key.expose_secret(),
            "access_token": c.access_token.expose_secret(),
            "refresh_token": c.refresh_token.expose_secret(),
            "expires": expires,
            "locale_code": "us",
        },
        "asins": [fake::asin(1), fake::asin(2)],
    });
    let python = python.clone();
    let out = tokio::task::spawn_blocking(move || peer::run(&python, "client.py", &input))
        .await
        .unwrap();
    let titles = out["library_titles"].as_array().unwrap();
    assert_eq!(titles.len(), 30);
    assert_eq!(titles[0], "The Long Voyage");
    let positions = out["positions"].as_array().unwrap();
    assert_eq!(positions[0]["last_position_heard"]["status"], "Exists");
    assert_eq!(
        positions[1]["last_position_heard"]["status"],
        Value::from("DoesNotExist")
    );
    let api: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/1.0/"))
        .collect();
    assert_eq!(api.len(), 2);
    assert!(
        api.iter()
            .all(|r| r.auth == AuthMode::Signed && r.status == 200),
        "the reference client's signed requests pass the fake's verification"
    );
}
