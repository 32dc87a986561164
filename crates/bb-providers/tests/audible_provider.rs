//! Audible through the connections port (`bb_core::connections::Provider`), against the fake
//! Audible: begin → pasted maplanding → linked, full then incremental sync, refresh, failure
//! classification, and revoke (deregistration of this one device).

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bb_core::clock::{Clock, ManualClock};
use bb_core::connections::{
    Begin, BeginConnect, CompleteInput, ExternalAccount, Provider, ProviderError, RateLimit,
};
use bb_core::library::record::{Position, ReadingStatus};
use bb_core::secret::SecretBytes;
use bb_providers::audible::{AudibleConfig, AudibleProvider, RetryPolicy};
use bb_providers::budget::SharedBudget;
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
    let clock = manual_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 40)).await;
    let provider = provider_on(&fake, &clock);
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

/// A provider on `fake` whose in-run retries do not wait, so that tests run at once.
fn provider_on(fake: &fake::FakeAudible, clock: &Arc<ManualClock>) -> AudibleProvider {
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    AudibleProvider::new(
        AudibleConfig {
            auth_base_url: Some(fake.base_url.clone()),
            api_base_url: Some(fake.base_url.clone()),
        },
        build_client(HttpSettings::default()).unwrap(),
        dyn_clock,
    )
    .with_retry(RetryPolicy {
        attempts: 3,
        first_backoff: Duration::ZERO,
        max_wait: Duration::ZERO,
    })
}

fn manual_clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(
        chrono::Utc
            .with_ymd_and_hms(2026, 11, 21, 10, 0, 0)
            .unwrap(),
    ))
}

/// Links `provider` to the fake's account through the paste flow.
async fn link(
    provider: &AudibleProvider,
    fake: &fake::FakeAudible,
) -> (ExternalAccount, SecretBytes) {
    let Begin::Redirect {
        authorize_url,
        pending,
        ..
    } = provider.begin(begin_request("us")).await.unwrap()
    else {
        panic!("Audible links through a redirect");
    };
    let landing = fake.sign_in(&authorize_url).unwrap();
    let linked = provider
        .complete(&pending, CompleteInput::PastedUrl(&landing), "")
        .await
        .unwrap();
    (linked.account, linked.credentials.unwrap())
}

/// API requests the fake received on `path`.
fn sent(fake: &fake::FakeAudible, path: &str) -> usize {
    fake.request_counts().get(path).copied().unwrap_or(0)
}

#[tokio::test]
async fn passing_failures_of_side_parts_are_retried_within_the_run() {
    let clock = manual_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 40)).await;
    let provider = provider_on(&fake, &clock);
    let (account, creds) = link(&provider, &fake).await;

    // Each side endpoint fails twice (throttled, outage, cut-short answer), then answers.
    fake.fail_next_on("/1.0/annotations/lastpositions", Failure::RateLimited(0));
    fake.fail_next_on("/1.0/annotations/lastpositions", Failure::Json500);
    fake.fail_next_on("/1.0/stats/status/finished", Failure::Html503);
    fake.fail_next_on("/1.0/stats/status/finished", Failure::Garbage);
    fake.fail_next_on("/1.0/wishlist", Failure::Json500);
    fake.fail_next_on("/1.0/wishlist", Failure::Html503);
    let full = provider.sync(&account, Some(&creds), None).await.unwrap();
    assert!(full.failures.is_empty(), "{:?}", full.failures);
    assert!(full.complete);
    assert!(full.cursor.is_some());
    assert_eq!(full.records.len(), 40 + 7);
    for path in [
        "/1.0/annotations/lastpositions",
        "/1.0/stats/status/finished",
        "/1.0/wishlist",
    ] {
        assert_eq!(sent(&fake, path), 3, "{path}: two failures and the answer");
    }
    let by_asin = |n: usize| {
        full.records
            .iter()
            .find(|r| r.external_id.as_deref() == Some(fake::asin(n).as_str()))
            .unwrap()
    };
    assert!(by_asin(12).status_at.is_some(), "finished date applied");
    assert_eq!(
        by_asin(1).progress.as_ref().unwrap().position,
        Some(Position::Seconds(120)),
        "position applied"
    );
}

#[tokio::test]
async fn a_side_part_that_keeps_failing_leaves_the_titles_and_is_read_next_run() {
    let clock = manual_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 40)).await;
    let provider = provider_on(&fake, &clock);
    let (account, creds) = link(&provider, &fake).await;

    // The wishlist fails on every attempt: the library lands, the run names what is
    // missing, claims no complete listing (the wishlist titles must not be withdrawn)
    // and keeps no cursor, so the next run is a full one again.
    for _ in 0..3 {
        fake.fail_next_on("/1.0/wishlist", Failure::Html503);
    }
    let run = provider.sync(&account, Some(&creds), None).await.unwrap();
    assert_eq!(run.records.len(), 40);
    assert!(!run.complete);
    assert_eq!(run.cursor, None);
    assert_eq!(run.failures.len(), 1, "{:?}", run.failures);
    assert!(
        run.failures[0].message.contains("wishlist")
            && run.failures[0].message.contains("next sync"),
        "{:?}",
        run.failures
    );
    let again = provider.sync(&account, Some(&creds), None).await.unwrap();
    assert!(again.failures.is_empty() && again.complete);
    assert_eq!(again.records.len(), 40 + 7);
    let cursor = again.cursor.unwrap();

    // Incremental: a title listened to further, and the positions fail throughout. It
    // lands with the library's percentage; the cursor stays, so the next run reads it
    // again, with its position.
    fake.touch(1, 50.0);
    for _ in 0..3 {
        fake.fail_next_on("/1.0/annotations/lastpositions", Failure::Json500);
    }
    let delta = provider
        .sync(&account, Some(&creds), Some(&cursor))
        .await
        .unwrap();
    assert_eq!(delta.records.len(), 1);
    assert!(
        !matches!(
            delta.records[0].progress.as_ref().unwrap().position,
            Some(Position::Seconds(_))
        ),
        "only the library's percentage, no resume position"
    );
    assert!(delta.failures[0].message.contains("listening positions"));
    assert_eq!(
        delta.cursor.as_deref(),
        Some(cursor.as_str()),
        "not advanced"
    );
    let redo = provider
        .sync(&account, Some(&creds), Some(&cursor))
        .await
        .unwrap();
    assert!(redo.failures.is_empty());
    assert_eq!(
        redo.records[0].progress.as_ref().unwrap().position,
        Some(Position::Seconds(120))
    );
    assert_ne!(redo.cursor.as_deref(), Some(cursor.as_str()), "advanced");

    // Finished dates failing: the finished title stays finished (the library says so,
    // with the date of its `listening_status` when it has one), and the run says what
    // it could not read.
    for _ in 0..3 {
        fake.fail_next_on("/1.0/stats/status/finished", Failure::Json500);
    }
    let run = provider.sync(&account, Some(&creds), None).await.unwrap();
    let finished = run
        .records
        .iter()
        .find(|r| r.external_id.as_deref() == Some(fake::asin(12).as_str()))
        .unwrap();
    assert_eq!(finished.status, Some(ReadingStatus::Read));
    assert!(run.failures[0].message.contains("finished dates"));
    assert_eq!(run.cursor, None);
}

#[tokio::test]
async fn a_refused_device_on_a_side_part_still_needs_reauth() {
    let clock = manual_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 40)).await;
    let provider = provider_on(&fake, &clock);
    let (account, creds) = link(&provider, &fake).await;
    for (path, failure) in [
        ("/1.0/wishlist", Failure::Unauthorized401),
        ("/1.0/stats/status/finished", Failure::Forbidden403),
        ("/1.0/annotations/lastpositions", Failure::Unauthorized401),
    ] {
        fake.fail_next_on(path, failure);
        let e = provider
            .sync(&account, Some(&creds), None)
            .await
            .unwrap_err();
        assert!(
            matches!(e, ProviderError::NeedsReauth { .. }),
            "{path}: {e}"
        );
        assert_eq!(sent(&fake, path), 1, "{path}: not retried");
        fake.reset_requests();
    }
}

/// A linked device on a fake of 40 titles (and its 7 wishlist products) after the first,
/// full sync: what the incremental tests start from, with that run's cursor.
async fn after_a_full_sync() -> (
    fake::FakeAudible,
    AudibleProvider,
    ExternalAccount,
    SecretBytes,
    String,
) {
    let clock = manual_clock();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 40)).await;
    let provider = provider_on(&fake, &clock);
    let (account, creds) = link(&provider, &fake).await;
    let full = provider.sync(&account, Some(&creds), None).await.unwrap();
    let cursor = full.cursor.unwrap();
    (fake, provider, account, creds, cursor)
}

#[tokio::test]
async fn an_incremental_run_with_nothing_changed_reads_the_library_and_the_wishlist_once() {
    let (fake, provider, account, creds, cursor) = after_a_full_sync().await;
    fake.reset_requests();
    let delta = provider
        .sync(&account, Some(&creds), Some(&cursor))
        .await
        .unwrap();
    assert!(delta.records.is_empty() && delta.failures.is_empty());
    assert_eq!(
        fake.request_counts(),
        std::collections::BTreeMap::from([
            ("/1.0/library".to_owned(), 1),
            ("/1.0/wishlist".to_owned(), 1)
        ]),
        "no positions or finished dates to read for no change; the wishlist has no \
         incremental form"
    );
}

/// The wishlist has no incremental form, so every run reads it and compares it with what
/// the last run saw: a title wished for since is added, one taken off is withdrawn, and
/// one bought off the wishlist stays (it is the owned title now).
#[tokio::test]
async fn incremental_runs_follow_the_wishlist() {
    let (fake, provider, account, creds, cursor) = after_a_full_sync().await;

    fake.wish(20);
    fake.unwish(&fake::asin(5001));
    // Bought: off the wishlist, into the library.
    fake.unwish(&fake::asin(5002));
    fake.add_title(5002);
    let delta = provider
        .sync(&account, Some(&creds), Some(&cursor))
        .await
        .unwrap();
    assert!(!delta.complete);
    assert_eq!(delta.withdrawn, vec![fake::asin(5001)]);
    let wished: Vec<String> = delta
        .records
        .iter()
        .filter(|r| r.shelves == vec!["wishlist"])
        .filter_map(|r| r.external_id.clone())
        .collect();
    assert_eq!(wished, vec![fake::asin(5020)]);
    assert!(
        delta.records.iter().any(|r| {
            r.external_id.as_deref() == Some(fake::asin(5002).as_str()) && r.shelves.is_empty()
        }),
        "the bought title comes as owned"
    );

    // Nothing changed since: nothing added, nothing withdrawn.
    let cursor = delta.cursor.unwrap();
    let again = provider
        .sync(&account, Some(&creds), Some(&cursor))
        .await
        .unwrap();
    assert!(again.records.is_empty() && again.withdrawn.is_empty());

    // A cursor from before the wishlist was kept (the bare State-Token) still works; with
    // no wishlist to compare, nothing is withdrawn.
    let kept: serde_json::Value = serde_json::from_str(&cursor).unwrap();
    let old = provider
        .sync(&account, Some(&creds), kept["state"].as_str())
        .await
        .unwrap();
    assert!(old.withdrawn.is_empty());
}

/// Two instances (two providers, each with its own `SharedBudget` over one database)
/// spend one bucket: what one used, the other cannot, and nothing is sent without budget.
#[tokio::test]
async fn requests_of_several_instances_are_spent_from_one_shared_budget() {
    let clock = manual_clock();
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let fake = fake::start(FakeAudibleConfig::new(clock.clone(), 40)).await;
    let dir = tempfile::tempdir().unwrap();
    let db = bb_store::testing::fresh_sqlite(dir.path()).await.unwrap();
    let limit = RateLimit {
        capacity: 3,
        per_minute: 1,
    };
    let instance = || {
        let store: Arc<dyn bb_core::ports::ConnectionStore> = db.store.clone();
        let budget = Arc::new(SharedBudget::new(
            store,
            dyn_clock.clone(),
            HashMap::from([("audible".to_owned(), limit)]),
        ));
        // No waiting: a manual clock does not move while a test sleeps.
        provider_on(&fake, &clock).with_budget(budget, Duration::ZERO)
    };
    let (first, second) = (instance(), instance());
    let (account, creds) = link(&first, &fake).await;
    let api = |fake: &fake::FakeAudible| {
        fake.requests()
            .iter()
            .filter(|r| r.target.starts_with("/1.0/"))
            .map(|r| r.target.split('?').next().unwrap().to_owned())
            .collect::<Vec<_>>()
    };

    // A full run needs 4 requests (library, positions, finished dates, wishlist); the
    // bucket holds 3, so the wishlist is not sent and the run says so.
    let run = first.sync(&account, Some(&creds), None).await.unwrap();
    assert_eq!(
        api(&fake),
        [
            "/1.0/library",
            "/1.0/annotations/lastpositions",
            "/1.0/stats/status/finished"
        ]
    );
    assert!(
        run.failures[0].message.contains("budget"),
        "{:?}",
        run.failures
    );
    assert!(!run.complete);

    // The other instance finds the bucket empty: its run fails before sending anything,
    // transient, with the budget's wait as its retry hint.
    let e = second.sync(&account, Some(&creds), None).await.unwrap_err();
    assert_eq!(e.code(), "audible.budget_exhausted");
    assert!(matches!(e, ProviderError::Transient { .. }));
    assert!(e.retry_after().is_some_and(|d| d <= Duration::from_mins(1)));
    assert_eq!(api(&fake).len(), 3, "nothing sent without budget");

    // A minute refills one request: the library goes, the side parts wait for the next run.
    clock.advance(chrono::Duration::minutes(1));
    let run = second.sync(&account, Some(&creds), None).await.unwrap();
    assert_eq!(run.records.len(), 40);
    assert_eq!(api(&fake).len(), 4);
    assert_eq!(api(&fake)[3], "/1.0/library");
}
