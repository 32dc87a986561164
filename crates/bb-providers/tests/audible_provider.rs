//! Audible through the connections port (`bb_core::connections::Provider`), against the fake
//! Audible: begin → pasted maplanding → linked, full then incremental sync, refresh, failure
//! classification, and revoke (deregistration of this one device).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bb_core::clock::{Clock, ManualClock};
use bb_core::connections::{Begin, BeginConnect, CompleteInput, Provider, ProviderError};
use bb_core::library::record::{Position, ReadingStatus};
use bb_providers::audible::{AudibleConfig, AudibleProvider};
use bb_providers::http::{HttpSettings, build_client};
use bb_testkit::audible::{self as fake, Failure, FakeAudibleConfig};
use chrono::TimeZone;
use serde_json::json;

fn begin_request(marketplace: &str) -> BeginConnect {
    BeginConnect {
        params: BTreeMap::from([("marketplace".to_owned(), marketplace.to_owned())]),
        ..BeginConnect::default()
    }
}

#[allow(clippy::too_many_lines)] // one connection's life, in order
#[tokio::test]
async fn link_sync_refresh_and_revoke_through_the_provider_port() {
    let clock = Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
            .unwrap(),
    ));
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 40)).await;
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let provider = AudibleProvider::new(
        AudibleConfig {
            auth_base_url: Some(fake.base_url.clone()),
            api_base_url: Some(fake.base_url.clone()),
        },
        build_client(HttpSettings::default()).unwrap(),
        dyn_clock,
    );
    let info = provider.info();
    assert_eq!(info.id, "audible");
    assert!(info.can_revoke);

    // An unknown store is the user's input to fix.
    let e = provider.begin(begin_request("xx")).await.unwrap_err();
    assert!(matches!(e, ProviderError::Invalid { .. }), "{e}");
    assert!(e.to_string().contains("us, uk, de"), "{e}");

    let Begin::Redirect {
        authorize_url,
        pending,
        ..
    } = provider.begin(begin_request("uk")).await.unwrap()
    else {
        panic!("Audible links through a redirect");
    };
    assert!(authorize_url.starts_with("https://www.amazon.co.uk/ap/signin?"));
    let landing = fake.sign_in(&authorize_url).unwrap();

    // The OAuth callback route is not how Audible comes back; a bad paste is the user's.
    let e = provider
        .complete(&pending, CompleteInput::Callback { query: "code=x" }, "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "audible.paste_url");
    let e = provider
        .complete(
            &pending,
            CompleteInput::PastedUrl("https://www.amazon.co.uk/"),
            "",
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Invalid { .. }));
    assert_eq!(e.code(), "audible.not_maplanding");

    let linked = provider
        .complete(&pending, CompleteInput::PastedUrl(&landing), "")
        .await
        .unwrap();
    assert_eq!(linked.account.external_id, "amzn1.account.AEXAMPLE/uk");
    assert_eq!(
        linked.account.display_name.as_deref(),
        Some("Anna Example (United Kingdom)")
    );
    assert!(
        linked
            .notice
            .as_deref()
            .unwrap()
            .contains("Anna's Audible for iPhone")
    );
    assert_eq!(
        linked.expires_at,
        Some(clock.now() + chrono::Duration::hours(1))
    );
    let creds = linked.credentials.unwrap();
    // The same pasted address again: the code is spent.
    let e = provider
        .complete(&pending, CompleteInput::PastedUrl(&landing), "")
        .await
        .unwrap_err();
    assert_eq!(e.code(), "audible.code_rejected");

    // Full sync: library + wishlist, finished dates and positions applied.
    let full = provider
        .sync(&linked.account, Some(&creds), None)
        .await
        .unwrap();
    assert!(full.complete);
    assert_eq!(full.records.len(), 40 + 7);
    assert!(full.failures.is_empty());
    let cursor = full.cursor.clone().unwrap();
    let by_asin = |n: usize| {
        full.records
            .iter()
            .find(|r| {
                r.external_id.as_deref() == Some(fake::asin(n).as_str()) && r.shelves.is_empty()
            })
            .unwrap()
    };
    let finished = by_asin(12);
    assert_eq!(finished.status, Some(ReadingStatus::Read));
    assert_eq!(
        finished.status_at,
        Some(chrono::Utc.with_ymd_and_hms(2024, 1, 13, 21, 5, 0).unwrap())
    );
    let reading = by_asin(1);
    assert_eq!(
        reading.progress.as_ref().unwrap().position,
        Some(Position::Seconds(120))
    );
    assert_eq!(
        full.records
            .iter()
            .filter(|r| r.shelves == vec!["wishlist"])
            .count(),
        7
    );

    // Incremental: a return comes back withdrawn, nothing is inferred from absence.
    fake.revoke(5);
    let delta = provider
        .sync(&linked.account, Some(&creds), Some(&cursor))
        .await
        .unwrap();
    assert!(!delta.complete);
    assert_eq!(delta.withdrawn, vec![fake::asin(5)]);
    assert!(delta.records.is_empty());
    assert_ne!(delta.cursor.as_deref(), Some(cursor.as_str()));

    // Refresh gives new sealed credentials and a new expiry.
    clock.advance(chrono::Duration::minutes(50));
    let refreshed = provider.refresh(&creds).await.unwrap();
    assert_eq!(
        refreshed.expires_at,
        Some(clock.now() + chrono::Duration::hours(1))
    );

    // Outages are transient with the provider's hint; a lost device needs re-auth.
    fake.fail_next(Failure::RateLimited(12));
    let e = provider
        .sync(&linked.account, Some(&refreshed.credentials), None)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::Transient { .. }), "{e}");
    assert_eq!(e.retry_after(), Some(std::time::Duration::from_secs(12)));
    fake.fail_next(Failure::Html503);
    let e = provider
        .sync(&linked.account, Some(&refreshed.credentials), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "audible.outage");

    provider.revoke(&refreshed.credentials).await.unwrap();
    assert_eq!(
        fake.deregister_bodies(),
        vec![json!({"deregister_all_existing_accounts": false})]
    );
    let e = provider
        .sync(&linked.account, Some(&refreshed.credentials), None)
        .await
        .unwrap_err();
    assert!(matches!(e, ProviderError::NeedsReauth { .. }), "{e}");
    let e = provider.refresh(&refreshed.credentials).await.unwrap_err();
    assert!(matches!(e, ProviderError::NeedsReauth { .. }), "{e}");
}
