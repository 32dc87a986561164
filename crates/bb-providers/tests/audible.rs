//! The Audible protocol layer against the fake Audible of the test kit, which follows the
//! dossier (`shared/providers/audible.md`) and verifies every request's signature with the
//! key it issued: connect (sign-in URL → pasted maplanding address → registration), full and
//! incremental library sync, positions, finished dates, wishlist, refresh in both shapes,
//! error classification, deregistration — and the logs of all of it hold no secret.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bb_core::clock::{Clock, ManualClock};
use bb_core::library::record::{Format, Position, ReadingStatus};
use bb_core::library::{IdScheme, Rating};
use bb_core::secret::ExposeSecret;
use bb_providers::audible::signing::{self, DeviceKey};
use bb_providers::audible::{
    AudibleClient, AudibleConfig, AudibleError, DeviceCredentials, Marketplace, PendingSignIn,
    Registration, RetryPolicy, begin_sign_in, complete_sign_in, deregister, parse_maplanding,
    refresh_access_token,
};
use bb_providers::http::{HttpSettings, build_client};
use bb_testkit::audible::{
    self as fake, AuthMode, Failure, FakeAudible, FakeAudibleConfig, RefreshShape,
};
use chrono::TimeZone;
use serde_json::json;

fn start_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
            .unwrap(),
    ))
}

fn config(fake: &FakeAudible) -> AudibleConfig {
    AudibleConfig {
        auth_base_url: Some(fake.base_url.clone()),
        api_base_url: Some(fake.base_url.clone()),
    }
}

fn http() -> reqwest::Client {
    build_client(HttpSettings::default()).unwrap()
}

async fn connect(
    fake: &FakeAudible,
    clock: &Arc<ManualClock>,
    marketplace: Marketplace,
) -> (PendingSignIn, String, Registration) {
    let start = begin_sign_in(marketplace);
    let maplanding = fake.sign_in(start.url.as_str()).unwrap();
    let registration = complete_sign_in(
        &http(),
        &config(fake),
        &**clock,
        &start.pending,
        &maplanding,
    )
    .await
    .unwrap();
    (start.pending, maplanding, registration)
}

fn client(fake: &FakeAudible, clock: &Arc<ManualClock>, creds: DeviceCredentials) -> AudibleClient {
    let clock: Arc<dyn Clock> = clock.clone();
    // Retries without waiting: the fake answers at once and the test clock is manual.
    AudibleClient::new(http(), config(fake), clock, creds).with_retry(RetryPolicy {
        attempts: 2,
        first_backoff: Duration::ZERO,
        max_wait: Duration::ZERO,
    })
}

fn library_requests(fake: &FakeAudible) -> Vec<fake::RequestRecord> {
    fake.requests()
        .into_iter()
        .filter(|r| r.target.starts_with("/1.0/library"))
        .collect()
}

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The whole life of a connection, with every log line captured and searched for secrets.
/// One story on purpose: the log capture must cover every step of it.
#[allow(clippy::too_many_lines)]
#[tokio::test]
async fn connect_sync_refresh_fail_and_disconnect_without_a_secret_in_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // Global, as in oauth_peer.rs: a thread-local capture misses callsites another test
    // thread reached first. Other tests' lines only add text.
    tracing::subscriber::set_global_default(subscriber).unwrap();

    let clock = start_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 2_100)).await;
    let mut secrets: Vec<String> = Vec::new();

    // --- connect: URL → the user signs in → pasted maplanding → register
    let (pending, maplanding, registration) = connect(&fake, &clock, Marketplace::Us).await;
    let code = parse_maplanding(&maplanding).unwrap();
    secrets.push(code.expose_secret().to_owned());
    secrets.push(pending.code_verifier.expose_secret().to_owned());
    assert_eq!(registration.device_name(), "Anna's Audible for iPhone");
    let creds = registration.credentials.clone();
    assert_eq!(
        creds.customer_info.user_id.as_deref(),
        Some("amzn1.account.AEXAMPLE")
    );
    assert_eq!(creds.customer_info.home_region.as_deref(), Some("NA"));
    assert_eq!(
        creds.device_info.device_serial_number,
        pending.device_serial
    );
    assert_eq!(
        creds.access_expires_at,
        clock.now() + chrono::Duration::hours(1)
    );
    assert!(creds.adp_token.expose_secret().starts_with("{enc:"));
    assert!(
        creds
            .device_private_key
            .expose_secret()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );
    let cookies = creds.website_cookies.as_ref().unwrap().expose_secret();
    assert!(
        cookies.contains("\"at-main\":\"Atza|"),
        "quotes stripped: {cookies}"
    );
    secrets.extend([
        creds.adp_token.expose_secret().to_owned(),
        creds.access_token.expose_secret().to_owned(),
        creds.refresh_token.expose_secret().to_owned(),
        "Atza|IwEBCookie".to_owned(),
        creds
            .store_authentication_cookie
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned(),
    ]);
    // A line from the middle of the PEM body stands for the key.
    secrets.push(
        creds
            .device_private_key
            .expose_secret()
            .lines()
            .nth(5)
            .unwrap()
            .to_owned(),
    );

    // The registration body, exactly as the dossier (§3) lists it.
    let body = &fake.register_bodies()[0];
    assert_eq!(
        body,
        &json!({
            "requested_token_type": ["bearer", "mac_dms", "website_cookies", "store_authentication_cookie"],
            "cookies": {"website_cookies": [], "domain": ".amazon.com"},
            "registration_data": {
                "domain": "Device", "app_version": "3.56.2", "device_serial": pending.device_serial,
                "device_type": "A2CZJZGLK2JJVM",
                "device_name": "%FIRST_NAME%%FIRST_NAME_POSSESSIVE_STRING%%DUPE_STRATEGY_1ST%Audible for iPhone",
                "os_version": "15.0.0", "software_version": "35602678", "device_model": "iPhone",
                "app_name": "Audible"
            },
            "auth_data": {
                "client_id": hex::encode(format!("{}#A2CZJZGLK2JJVM", pending.device_serial)),
                "authorization_code": code.expose_secret(),
                "code_verifier": pending.code_verifier.expose_secret(),
                "code_algorithm": "SHA-256", "client_domain": "DeviceLegacy"
            },
            "requested_extensions": ["device_info", "customer_info"]
        })
    );

    // The same code again: Amazon refuses, and the error tells the user what to do.
    let reused = complete_sign_in(&http(), &config(&fake), &*clock, &pending, &maplanding)
        .await
        .unwrap_err();
    assert!(
        matches!(reused, AudibleError::CodeRejected { .. }),
        "{reused}"
    );
    assert!(
        reused.to_string().contains("start connecting again"),
        "{reused}"
    );
    assert_eq!(
        fake.active_devices(),
        1,
        "nothing registered by the refused attempt"
    );

    // Sealing round trip, and no secret in any Debug output.
    let sealed = creds.to_sealable();
    let back = DeviceCredentials::from_sealed(sealed.expose()).unwrap();
    assert_eq!(
        back.refresh_token.expose_secret(),
        creds.refresh_token.expose_secret()
    );
    assert_eq!(back.device_info, creds.device_info);

    // --- full sync: 2,100 titles in pages of 1000 → 1000, 1000, 100 (the short page ends it)
    let api = client(&fake, &clock, creds.clone());
    assert!(api.is_signing());
    let full = api.library_full().await.unwrap();
    assert_eq!(full.records.len(), 2_100);
    assert!(full.failures.is_empty(), "{:?}", full.failures);
    assert_eq!(full.total_count, Some(2_100));
    assert_eq!(full.pages, 3);
    let lib = library_requests(&fake);
    assert_eq!(lib.len(), 3);
    for (i, r) in lib.iter().enumerate() {
        assert_eq!(r.auth, AuthMode::Signed, "{}", r.target);
        assert!(r.target.contains("num_results=1000"), "{}", r.target);
        assert!(
            r.target.contains(&format!("page={}", i + 1)),
            "{}",
            r.target
        );
        assert!(
            r.target.contains("response_groups=contributors%2C"),
            "{}",
            r.target
        );
    }
    let token = full.state_token.clone().unwrap();
    assert_eq!(token.len(), 13);

    // Mapping of one rich item: n = 12 → series with a fractional sequence, ISBN, finished.
    let r = full
        .records
        .iter()
        .find(|r| r.external_id.as_deref() == Some(fake::asin(12).as_str()))
        .unwrap();
    assert_eq!(r.title, "The Long Voyage, Volume 2");
    assert_eq!(r.subtitle.as_deref(), Some("Book One of the Drift"));
    assert_eq!(r.authors, vec!["Jun Watanabe"]);
    assert_eq!(r.narrators, vec!["Leo Park"]);
    assert_eq!(r.series[0].name, "The Drift");
    assert_eq!(r.series[0].position.as_deref(), Some("1.5"));
    assert_eq!(r.formats, vec![Format::Audiobook]);
    let edition = r.edition.as_ref().unwrap();
    assert_eq!(edition.runtime_secs, Some((240 + 12 * 37) * 60));
    assert_eq!(edition.language.as_deref(), Some("english"));
    assert_eq!(edition.published.unwrap().to_iso(), "2024-01-13");
    assert!(
        r.identifiers
            .iter()
            .any(|i| i.scheme == IdScheme::Asin && i.value == fake::asin(12))
    );
    assert!(r.identifiers.iter().any(|i| i.value == fake::isbn(12)));
    assert!(r.covers[0].url.contains("_SL1215_"), "largest cover kept");
    assert_eq!(r.status, Some(ReadingStatus::Read));
    assert_eq!(
        r.rating, None,
        "no own review: the community 4.6 is not the user's"
    );
    // n = 2 carries the user's own review (`provided_review`).
    let r = full
        .records
        .iter()
        .find(|r| r.external_id.as_deref() == Some(fake::asin(2).as_str()))
        .unwrap();
    assert_eq!(
        r.rating,
        Rating::from_stars(4.0),
        "own rating, not the community 4.6"
    );
    let review = r.review.as_ref().unwrap();
    assert!(review.text.starts_with("Stayed up far too late"));
    assert!(
        review
            .text
            .contains("carries the slower middle & the ending"),
        "{}",
        review.text
    );
    assert!(!review.text.contains('<'));
    // A title whose authors carry "Ken Liu - translator": the suffix is a role.
    let t = full
        .records
        .iter()
        .find(|r| r.external_id.as_deref() == Some(fake::asin(3).as_str()))
        .unwrap();
    assert_eq!(t.translators, vec!["Ken Liu"]);
    assert!(!t.authors.iter().any(|a| a.contains("translator")));
    // No own review → no rating, whatever the community thinks.
    assert!(full.records.iter().filter(|r| r.rating.is_none()).count() > 1_500);

    // --- incremental: nothing changed → empty, same token
    let none = api.library_since(&token).await.unwrap();
    assert!(none.records.is_empty() && none.withdrawn.is_empty());
    assert_eq!(none.state_token.as_deref(), Some(token.as_str()));
    assert_eq!(none.total_count, Some(0));

    // one listened to, one bought, one returned
    fake.touch(1, 55.0);
    fake.add_title(9_000);
    fake.revoke(2);
    let delta = api.library_since(&token).await.unwrap();
    let mut changed: Vec<_> = delta
        .records
        .iter()
        .filter_map(|r| r.external_id.clone())
        .collect();
    changed.sort();
    assert_eq!(changed, vec![fake::asin(1), fake::asin(9_000)]);
    assert_eq!(delta.withdrawn, vec![fake::asin(2)]);
    assert_ne!(delta.state_token.as_deref(), Some(token.as_str()));
    let touched = delta
        .records
        .iter()
        .find(|r| r.external_id == Some(fake::asin(1)))
        .unwrap();
    assert!((touched.progress.as_ref().unwrap().fraction - 0.55).abs() < 1e-9);
    let last = library_requests(&fake).pop().unwrap();
    assert!(
        last.target.contains(&format!("state_token={token}")),
        "{}",
        last.target
    );

    // --- positions: 2,100 ASINs → 84 calls of at most 25 (the fake refuses more)
    let asins: Vec<String> = (0..2_100).map(fake::asin).collect();
    let before = fake.requests().len();
    let positions = api.positions(&asins).await.unwrap();
    let calls: Vec<_> = fake.requests()[before..].to_vec();
    assert_eq!(calls.len(), 84);
    assert!(
        calls
            .iter()
            .all(|c| c.status == 200 && c.auth == AuthMode::Signed)
    );
    assert_eq!(
        positions.len(),
        (0..2_100).filter(|n| [1, 3, 4].contains(&(n % 5))).count()
    );
    let p1 = positions.iter().find(|p| p.asin == fake::asin(1)).unwrap();
    assert_eq!(p1.position_ms, 120_500);
    assert!(p1.last_updated.is_some(), "both timestamp forms parse");
    assert!(positions.iter().all(|p| p.last_updated.is_some()));
    let mut r1 = full
        .records
        .iter()
        .find(|r| r.external_id == Some(fake::asin(1)))
        .unwrap()
        .clone();
    bb_providers::audible::mapping::apply_position(&mut r1, p1);
    assert_eq!(r1.progress.unwrap().position, Some(Position::Seconds(120)));

    // --- finished dates, following continuation tokens
    let finished = api.finished_dates().await.unwrap();
    assert_eq!(finished.len(), 420);
    assert_eq!(
        finished[&fake::asin(12)],
        chrono::Utc.with_ymd_and_hms(2024, 1, 13, 21, 5, 0).unwrap()
    );

    // --- wishlist as a shelf
    let wish = api.wishlist().await.unwrap();
    assert_eq!(wish.records.len(), 7);
    assert!(
        wish.records
            .iter()
            .all(|r| r.shelves == vec!["wishlist"] && r.status.is_none())
    );

    // --- refresh, classic then actor shape
    let classic = refresh_access_token(&http(), &config(&fake), &*clock, &creds)
        .await
        .unwrap();
    assert_ne!(
        classic.access_token.expose_secret(),
        creds.access_token.expose_secret()
    );
    assert!(
        classic.refresh_token.is_none(),
        "classic keeps the refresh token"
    );
    secrets.push(classic.access_token.expose_secret().to_owned());
    fake.set_refresh_shape(RefreshShape::Actor);
    api.refresh_now().await.unwrap();
    let after = api.credentials().await;
    assert!(api.was_refreshed().await);
    assert_ne!(
        after.refresh_token.expose_secret(),
        creds.refresh_token.expose_secret()
    );
    secrets.push(after.access_token.expose_secret().to_owned());
    secrets.push(after.refresh_token.expose_secret().to_owned());

    // --- errors: 401/403 → needs re-auth; 429 → retry after; HTML 503 → retry; garbage
    fake.fail_next(Failure::Unauthorized401);
    let e = api.library_full().await.unwrap_err();
    assert!(e.needs_reauth() && !e.is_transient(), "{e}");
    fake.fail_next(Failure::Forbidden403);
    assert!(api.wishlist().await.unwrap_err().needs_reauth());
    fake.fail_next(Failure::RateLimited(30));
    let e = api.library_full().await.unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(30)));
    fake.fail_next(Failure::Html503);
    let e = api.library_full().await.unwrap_err();
    assert!(e.is_transient() && e.code() == "audible.outage", "{e}");
    assert!(e.to_string().contains("maintenance page"), "{e}");
    // Positions (a side part) get one more try in the run; a second failure is returned.
    fake.fail_next(Failure::Json500);
    assert_eq!(api.positions(&asins[..3]).await.unwrap().len(), 1);
    fake.fail_next(Failure::Json500);
    fake.fail_next(Failure::Json500);
    assert!(api.positions(&asins[..3]).await.unwrap_err().is_transient());
    fake.fail_next(Failure::Garbage);
    let e = api.library_full().await.unwrap_err();
    assert_eq!(e.code(), "audible.garbage", "{e}");
    assert!(e.to_string().contains("the library"), "{e}");
    // After the failures the same client works again.
    assert_eq!(api.library_since(&token).await.unwrap().withdrawn.len(), 1);

    // --- disconnect two hours later: the access token is refreshed first, then exactly
    // this device is deregistered with `false`.
    clock.advance(chrono::Duration::hours(2));
    let current = api.credentials().await;
    deregister(&http(), &config(&fake), &*clock, &current)
        .await
        .unwrap();
    assert_eq!(
        fake.deregister_bodies(),
        vec![json!({"deregister_all_existing_accounts": false})]
    );
    assert_eq!(fake.active_devices(), 0);
    let dereg = fake
        .requests()
        .into_iter()
        .filter(|r| r.target == "/auth/deregister")
        .count();
    assert_eq!(dereg, 1);
    // The device is gone: signed calls and refreshes now need re-authentication.
    assert!(api.library_full().await.unwrap_err().needs_reauth());
    let e = refresh_access_token(&http(), &config(&fake), &*clock, &current)
        .await
        .unwrap_err();
    assert!(e.needs_reauth(), "{e}");

    // --- nothing secret in logs, Debug output or error texts
    let errors = [reused.to_string(), e.to_string()];
    let debug = format!("{registration:?} {current:?} {api:?} {pending:?} {code:?}");
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("registered an Audible device"),
        "the capture works"
    );
    assert!(logs.contains("Audible library synced"));
    for s in &secrets {
        assert!(s.len() >= 8, "a real secret: {s}");
        assert!(!logs.contains(s.as_str()), "a secret in the logs");
        assert!(!debug.contains(s.as_str()), "a secret in Debug output");
        assert!(
            errors.iter().all(|e| !e.contains(s.as_str())),
            "a secret in an error"
        );
    }
    assert!(!logs.contains("PRIVATE KEY"));
    assert!(!logs.contains("x-adp-signature"));
}

#[tokio::test]
async fn the_fake_refuses_unsigned_tampered_and_stale_requests() {
    let clock = start_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 3)).await;
    let (_, _, reg) = connect(&fake, &clock, Marketplace::De).await;
    let creds = reg.credentials;
    let key = DeviceKey::parse(&creds.device_private_key).unwrap();
    let target = "/1.0/library?num_results=10&page=1";
    let send = |path: &'static str, headers: Vec<(&'static str, String)>| {
        let url = format!("{}{path}", fake.base_url);
        async move {
            headers
                .into_iter()
                .fold(http().get(url), |r, (k, v)| r.header(k, v))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    let now = signing::timestamp(clock.now());
    let good = signing::signed_headers(&key, &creds.adp_token, "GET", target, b"", &now);
    assert_eq!(
        send("/1.0/library?num_results=10&page=1", good.to_vec()).await,
        200
    );
    // Signed for another target than the one sent.
    assert_eq!(
        send("/1.0/library?num_results=10&page=2", good.to_vec()).await,
        401
    );
    // Unsigned.
    assert_eq!(
        send("/1.0/library?num_results=10&page=1", vec![]).await,
        401
    );
    // Signed with the wrong method.
    let post = signing::signed_headers(&key, &creds.adp_token, "POST", target, b"", &now);
    assert_eq!(
        send("/1.0/library?num_results=10&page=1", post.to_vec()).await,
        401
    );
    // Stale: signed 20 minutes ago.
    let old = signing::timestamp(clock.now() - chrono::Duration::minutes(20));
    let stale = signing::signed_headers(&key, &creds.adp_token, "GET", target, b"", &old);
    assert_eq!(
        send("/1.0/library?num_results=10&page=1", stale.to_vec()).await,
        401
    );
    // mkb79's `+00:00Z` form is accepted (§4.1: the server is lenient).
    let mkb = now.replace('Z', "+00:00Z");
    let lenient = signing::signed_headers(&key, &creds.adp_token, "GET", target, b"", &mkb);
    assert_eq!(
        send("/1.0/library?num_results=10&page=1", lenient.to_vec()).await,
        200
    );
    // The old Bearer header is no longer accepted by the API (§4.2).
    let bearer = vec![(
        "authorization",
        format!("Bearer {}", creds.access_token.expose_secret()),
    )];
    assert_eq!(
        send("/1.0/library?num_results=10&page=1", bearer).await,
        401
    );
    // The fake's deregistration refuses `true` (it would remove the user's phones too) and
    // an unauthenticated call, and leaves the device registered.
    let dereg = |body: serde_json::Value, token: Option<String>| {
        let url = format!("{}/auth/deregister", fake.base_url);
        async move {
            let r = http().post(url).json(&body);
            let r = match token {
                Some(t) => r.header("x-amz-access-token", t),
                None => r,
            };
            r.send().await.unwrap().status().as_u16()
        }
    };
    let token = Some(creds.access_token.expose_secret().to_owned());
    assert_eq!(
        dereg(
            json!({"deregister_all_existing_accounts": true}),
            token.clone()
        )
        .await,
        400
    );
    assert_eq!(dereg(json!({}), token.clone()).await, 400);
    assert_eq!(
        dereg(json!({"deregister_all_existing_accounts": false}), None).await,
        401
    );
    assert_eq!(fake.active_devices(), 1);
    assert_eq!(fake.deregister_bodies().len(), 3, "every body is recorded");

    // Another device's key: a valid signature, but not for this adp token.
    let (_, _, other) = connect(&fake, &clock, Marketplace::De).await;
    let other_key = DeviceKey::parse(&other.credentials.device_private_key).unwrap();
    let forged = signing::signed_headers(&other_key, &creds.adp_token, "GET", target, b"", &now);
    assert_eq!(
        send("/1.0/library?num_results=10&page=1", forged.to_vec()).await,
        401
    );
}

#[tokio::test]
async fn a_1024_bit_device_key_falls_back_to_the_access_token_and_refreshes_it() {
    let clock = start_clock();
    let mut cfg = FakeAudibleConfig::new(clock.clone(), 5);
    cfg.legacy_1024_bit_keys = true;
    let fake = fake::start(cfg).await;
    let (_, _, reg) = connect(&fake, &clock, Marketplace::Uk).await;
    let api = client(&fake, &clock, reg.credentials.clone());
    assert!(!api.is_signing(), "ring signs with 2048 bits or more only");
    assert_eq!(api.library_full().await.unwrap().records.len(), 5);
    assert_eq!(library_requests(&fake)[0].auth, AuthMode::AccessToken);
    assert!(!api.was_refreshed().await);

    clock.advance(chrono::Duration::minutes(58)); // inside the 5-minute margin
    assert_eq!(api.library_full().await.unwrap().records.len(), 5);
    assert!(api.was_refreshed().await);
    let targets: Vec<String> = fake.requests().into_iter().map(|r| r.target).collect();
    assert_eq!(targets.iter().filter(|t| *t == "/auth/token").count(), 1);
    assert_ne!(
        api.credentials().await.access_token.expose_secret(),
        reg.credentials.access_token.expose_secret()
    );
}

#[tokio::test]
async fn every_marketplace_signs_in_on_its_own_amazon_and_registers() {
    let clock = start_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 1)).await;
    for m in Marketplace::ALL {
        let start = begin_sign_in(m);
        assert_eq!(
            start.url.host_str().unwrap(),
            format!("www.amazon.{}", m.domain()),
            "the sign-in URL stays Amazon's even with host overrides"
        );
        let maplanding = fake.sign_in(start.url.as_str()).unwrap();
        assert!(
            maplanding.starts_with(&format!("https://www.amazon.{}/ap/maplanding?", m.domain()))
        );
        complete_sign_in(
            &http(),
            &config(&fake),
            &*clock,
            &start.pending,
            &maplanding,
        )
        .await
        .unwrap();
        let body = fake.register_bodies().pop().unwrap();
        assert_eq!(body["cookies"]["domain"], format!(".amazon.{}", m.domain()));
    }
    assert_eq!(fake.active_devices(), 11);
}

#[tokio::test]
async fn bad_pasted_addresses_and_late_codes_get_clear_errors_and_store_nothing() {
    let clock = start_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 1)).await;
    let start = begin_sign_in(Marketplace::Us);
    let cfg = config(&fake);
    let attempt = |pasted: String| {
        let cfg = cfg.clone();
        let clock = clock.clone();
        let pending = start.pending.clone();
        async move { complete_sign_in(&http(), &cfg, &*clock, &pending, &pasted).await }
    };
    let e = attempt("https://www.amazon.com/ap/signin?openid.mode=checkid_setup".into())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "audible.not_maplanding");
    assert!(e.to_string().contains("/ap/maplanding"), "{e}");
    let e = attempt("https://www.amazon.com/ap/maplanding?openid.mode=id_res".into())
        .await
        .unwrap_err();
    assert_eq!(e.code(), "audible.no_code");
    assert!(e.to_string().contains("sign in again"), "{e}");
    let e = attempt("just some words".into()).await.unwrap_err();
    assert_eq!(e.code(), "audible.not_maplanding");
    assert!(
        fake.register_bodies().is_empty(),
        "no registration was attempted"
    );

    // A code for another sign-in attempt (other verifier and client id) is refused.
    let other = begin_sign_in(Marketplace::Us);
    let other_landing = fake.sign_in(other.url.as_str()).unwrap();
    let e = attempt(other_landing).await.unwrap_err();
    assert_eq!(e.code(), "audible.code_rejected", "{e}");

    // A code pasted after it expired.
    let landing = fake.sign_in(start.url.as_str()).unwrap();
    clock.advance(chrono::Duration::minutes(6));
    let e = attempt(landing).await.unwrap_err();
    assert_eq!(e.code(), "audible.code_rejected", "{e}");
    assert!(e.to_string().contains("expires within minutes"), "{e}");
    assert_eq!(fake.active_devices(), 0);
}
