//! The Hardcover client against the fake Hardcover server from bb-testkit: token handling,
//! full sync and pagination, rate limits, outages versus bad credentials, and write-back.

// Helpers panic on purpose (a missing seeded row is a broken test), and each scenario test
// reads top to bottom as one story.
#![allow(clippy::unwrap_used, clippy::too_many_lines)]

use bb_core::clock::{Clock, ManualClock};
use bb_core::library::identifiers::{IdScheme, Identifier};
use bb_core::library::record::{Position, Rating, ReadingStatus};
use bb_providers::hardcover::{
    Account, Change, HardcoverClient, HardcoverConfig, HardcoverError, Length, RateBudget,
    RatingChange, TokenBucket, push_change,
};
use bb_testkit::hardcover::{self as fake, Failure, FakeHardcover, FakeHardcoverConfig};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const TOKEN: &str = "hc-test-token";

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 9, 1, 12, 0, 0).unwrap()
}

struct Env {
    fake: FakeHardcover,
    clock: Arc<ManualClock>,
}

async fn env_with(books: usize, tune: impl FnOnce(&mut FakeHardcoverConfig)) -> Env {
    let clock = Arc::new(ManualClock::new(start_time()));
    let mut config = FakeHardcoverConfig::new(clock.clone(), books);
    tune(&mut config);
    Env {
        fake: fake::start(config).await,
        clock,
    }
}

async fn env(books: usize) -> Env {
    env_with(books, |_| {}).await
}

/// A budget that never says no, for tests about the server's own limits.
fn unlimited(clock: &Arc<ManualClock>) -> Arc<dyn RateBudget> {
    Arc::new(TokenBucket::new(100_000, 100_000, clock.clone()))
}

fn client_with(env: &Env, token: &str, budget: Arc<dyn RateBudget>) -> HardcoverClient {
    let config = HardcoverConfig {
        base_url: env.fake.base_url.clone(),
        timeout: Duration::from_millis(800),
        max_budget_wait: Duration::ZERO,
        ..HardcoverConfig::default()
    };
    HardcoverClient::new(&config, token, budget, env.clock.clone()).unwrap()
}

fn client(env: &Env) -> HardcoverClient {
    client_with(env, TOKEN, unlimited(&env.clock))
}

#[tokio::test]
async fn pasted_tokens_are_normalised_and_validated_with_me() {
    let env = env(3).await;
    let expected = Account {
        id: 12_345,
        username: "reader".into(),
    };
    for pasted in [
        TOKEN,
        "Bearer hc-test-token",
        "  bEARER    hc-test-token \n",
    ] {
        let c = client_with(&env, pasted, unlimited(&env.clock));
        assert_eq!(c.me().await.unwrap(), expected, "pasted {pasted:?}");
    }
    let ua = env.fake.requests()[0].user_agent.clone().unwrap();
    assert!(ua.starts_with("bookbridge/"), "{ua}");

    let bad = client_with(&env, "Bearer not-the-token", unlimited(&env.clock));
    let err = bad.me().await.unwrap_err();
    assert!(matches!(err, HardcoverError::NeedsReauth { .. }), "{err:?}");
    assert!(!err.is_transient());

    let config = HardcoverConfig::default();
    let empty = HardcoverClient::new(
        &config,
        "Bearer   ",
        unlimited(&env.clock),
        env.clock.clone(),
    );
    assert!(matches!(empty, Err(HardcoverError::InvalidToken)));
}

#[tokio::test]
async fn nothing_secret_in_debug_or_errors() {
    let env = env(1).await;
    let c = client(&env);
    assert!(!format!("{c:?}").contains(TOKEN));
    env.fake.revoke_token(TOKEN);
    let err = c.me().await.unwrap_err();
    assert!(!format!("{err:?} {err}").contains(TOKEN));
}

#[tokio::test]
async fn full_sync_of_250_books_maps_every_field() {
    let env = env(250).await;
    let c = client(&env);
    let me = c.me().await.unwrap();
    let sync = c.full_sync(me.id).await.unwrap();
    assert_eq!(sync.records.len(), 250);
    assert!(sync.failures.is_empty(), "{:?}", sync.failures);
    assert_eq!(sync.pages, 3);

    let seeded = env.fake.user_books_of(me.id);
    let by_id = |r: &bb_core::library::record::SourceRecord| -> Value {
        let id: i64 = r.external_id.as_deref().unwrap().parse().unwrap();
        seeded
            .iter()
            .find(|s| s["id"] == json!(id))
            .unwrap()
            .clone()
    };
    for r in &sync.records {
        let s = by_id(r);
        assert_eq!(r.title, s["book"]["title"].as_str().unwrap());
        assert_eq!(r.raw.to_value()["id"], s["id"]);
        assert!(r.identifiers.contains(&Identifier::new(
            IdScheme::Hardcover,
            s["book_id"].to_string()
        )));
        if let Some(isbn) = s["edition"]["isbn_13"].as_str() {
            assert!(
                r.identifiers
                    .contains(&Identifier::new(IdScheme::Isbn13, isbn))
            );
        }
        let dated_reads = s["user_book_reads"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|x| x["started_at"].is_string() || x["finished_at"].is_string())
            .count();
        assert_eq!(r.reads.len(), dated_reads);
        assert_eq!(r.rating.map(Rating::stars), s["rating"].as_f64());
        assert_eq!(r.authors.len(), 1);
    }

    // An audiobook in progress: seconds, narrator, ASIN, runtime.
    let audio = sync
        .records
        .iter()
        .find(|r| {
            matches!(
                r.progress.as_ref().and_then(|p| p.position),
                Some(Position::Seconds(_))
            )
        })
        .expect("a seeded audiobook in progress");
    let s = by_id(audio);
    let open = s["user_book_reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["finished_at"].is_null())
        .unwrap();
    assert_eq!(
        audio.progress.as_ref().unwrap().position,
        Some(Position::Seconds(
            open["progress_seconds"].as_u64().unwrap()
        ))
    );
    assert!(
        (audio.progress.as_ref().unwrap().fraction * 100.0 - open["progress"].as_f64().unwrap())
            .abs()
            < 1e-9
    );
    assert_eq!(audio.narrators.len(), 1);
    assert!(audio.identifiers.iter().any(|i| i.scheme == IdScheme::Asin));
    assert_eq!(
        audio.edition.as_ref().unwrap().runtime_secs,
        s["edition"]["audio_seconds"].as_u64()
    );

    // A print book in progress: pages.
    assert!(sync.records.iter().any(|r| matches!(
        r.progress.as_ref().and_then(|p| p.position),
        Some(Position::Pages(_))
    )));
    // Half-star ratings, reviews, several read-throughs and every mapped status occur.
    assert!(
        sync.records
            .iter()
            .any(|r| r.rating.is_some_and(|x| x.0 % 100 == 50))
    );
    let reviewed = sync.records.iter().find(|r| r.review.is_some()).unwrap();
    assert_eq!(
        reviewed.review.as_ref().unwrap().text,
        by_id(reviewed)["review_raw"].as_str().unwrap()
    );
    assert!(sync.records.iter().any(|r| r.reads.len() >= 2));
    for status in [
        ReadingStatus::ToRead,
        ReadingStatus::Reading,
        ReadingStatus::Read,
        ReadingStatus::Paused,
        ReadingStatus::DidNotFinish,
    ] {
        assert!(sync.records.iter().any(|r| r.status == Some(status)));
    }
    // Status 6 ("Ignored") carries no status.
    let ignored = seeded.iter().filter(|s| s["status_id"] == json!(6)).count();
    assert_eq!(
        sync.records.iter().filter(|r| r.status.is_none()).count(),
        ignored
    );
}

#[tokio::test]
async fn pagination_stops_on_the_first_short_page() {
    for (books, pages) in [
        (0, 1),
        (1, 1),
        (99, 1),
        (100, 2),
        (101, 2),
        (200, 3),
        (201, 3),
    ] {
        let env = env(books).await;
        let c = client(&env);
        let sync = c.full_sync(12_345).await.unwrap();
        assert_eq!(sync.records.len(), books, "{books} books");
        assert_eq!(sync.pages, pages, "{books} books");
        let mut ids: Vec<&str> = sync
            .records
            .iter()
            .map(|r| r.external_id.as_deref().unwrap())
            .collect();
        ids.dedup();
        assert_eq!(ids.len(), books, "no duplicates across pages");
    }
}

#[tokio::test]
async fn server_rate_limit_becomes_rate_limited_with_the_right_wait() {
    let env = env(1).await;
    let c = client(&env);
    // Burst of 10, refilled one a second.
    for _ in 0..10 {
        c.me().await.unwrap();
    }
    let err = c.me().await.unwrap_err();
    match &err {
        HardcoverError::RateLimited { retry_after } => {
            assert_eq!(*retry_after, Duration::from_secs(1));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    assert!(err.is_transient());
    assert_eq!(env.fake.rate_limited_count(), 1);
    env.clock.advance(chrono::Duration::seconds(1));
    c.me().await.unwrap();
}

#[tokio::test]
async fn daily_quota_waits_until_midnight_utc() {
    let env = env_with(1, |c| c.daily = 3).await;
    let c = client(&env);
    for _ in 0..3 {
        c.me().await.unwrap();
    }
    let err = c.me().await.unwrap_err();
    // 12:00 UTC → 12 hours to midnight.
    assert_eq!(err.retry_after(), Some(Duration::from_hours(12)));
}

#[tokio::test]
async fn local_budget_is_applied_before_sending() {
    let env = env(1).await;
    let c = client_with(
        &env,
        TOKEN,
        Arc::new(TokenBucket::new(2, 60, env.clock.clone())),
    );
    c.me().await.unwrap();
    c.me().await.unwrap();
    let err = c.me().await.unwrap_err();
    assert!(
        matches!(err, HardcoverError::BudgetExhausted { .. }),
        "{err:?}"
    );
    assert_eq!(
        env.fake.request_count(),
        2,
        "the refused request was never sent"
    );
}

#[tokio::test]
async fn outages_are_told_apart_from_bad_credentials() {
    let env = env(5).await;
    let c = client(&env);
    for failure in [
        Failure::Status500,
        Failure::Status503,
        Failure::Html503,
        Failure::Garbage,
        Failure::Hang(Duration::from_secs(3)),
    ] {
        env.fake.fail_next(failure.clone());
        let err = c.full_sync(12_345).await.unwrap_err();
        assert!(
            matches!(err, HardcoverError::Outage(_)) && err.is_transient(),
            "{failure:?} gave {err:?}"
        );
    }
    // After the outage, the same token still works.
    assert_eq!(c.full_sync(12_345).await.unwrap().records.len(), 5);

    env.fake.revoke_token(TOKEN);
    let err = c.full_sync(12_345).await.unwrap_err();
    assert!(matches!(err, HardcoverError::NeedsReauth { .. }), "{err:?}");
    assert!(!err.is_transient());
    assert_eq!(err.code(), "hardcover.needs_reauth");
}

fn row_with(env: &Env, pred: impl Fn(&Value) -> bool) -> Value {
    env.fake
        .user_books_of(12_345)
        .into_iter()
        .find(|r| pred(r))
        .expect("a seeded row")
}

fn open_read(row: &Value) -> Option<Value> {
    row["user_book_reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["finished_at"].is_null())
        .cloned()
}

#[tokio::test]
async fn write_back_sends_only_what_changed_and_blanks_nothing() {
    let env = env(40).await;
    let c = client(&env);

    // A rating alone: one partial update carrying only the rating.
    let row = row_with(&env, |r| r["status_id"] == json!(3));
    let id = row["id"].as_i64().unwrap();
    let change = Change {
        rating: Some(RatingChange::Set(Rating(450))),
        ..Change::default()
    };
    let report = push_change(&c, id, &change).await.unwrap();
    assert_eq!(report.mutations, vec!["update_user_book"]);
    let m = env.fake.mutations();
    assert_eq!(m.last().unwrap().args["object"], json!({"rating": 4.5}));
    let after = env.fake.user_book(id).unwrap();
    assert_eq!(after["rating"], json!(4.5));
    assert_eq!(after["status_id"], row["status_id"]);
    assert_eq!(after["review_raw"], row["review_raw"]);
    assert_eq!(after["user_book_reads"], row["user_book_reads"]);

    // Progress on an open print read-through: the full read object goes out, so the start
    // date and edition survive even though the fake resets omitted fields.
    let row = row_with(&env, |r| {
        r["status_id"] == json!(2) && open_read(r).is_some_and(|x| x["progress_pages"].is_number())
    });
    let id = row["id"].as_i64().unwrap();
    let read = open_read(&row).unwrap();
    let report = push_change(
        &c,
        id,
        &Change {
            progress: Some(Position::Pages(77)),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.mutations, vec!["update_user_book_read"]);
    assert_eq!(report.requests, 2, "lookup + update");
    let sent = env.fake.mutations().last().unwrap().args["object"].clone();
    assert_eq!(sent["progress_pages"], json!(77));
    let after = open_read(&env.fake.user_book(id).unwrap()).unwrap();
    assert_eq!(after["started_at"], read["started_at"]);
    assert_eq!(after["edition_id"], read["edition_id"]);
    assert_eq!(after["progress_pages"], json!(77));
    assert_eq!(
        env.fake.user_book(id).unwrap()["status_id"],
        json!(2),
        "status untouched"
    );

    // Marking as read: status 3 and the open read-through closed today.
    let report = push_change(
        &c,
        id,
        &Change {
            status: Some(ReadingStatus::Read),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        report.mutations,
        vec!["update_user_book", "update_user_book_read"]
    );
    let m = env.fake.mutations();
    assert_eq!(m[m.len() - 2].args["object"], json!({"status_id": 3}));
    let after = env.fake.user_book(id).unwrap();
    assert_eq!(after["status_id"], json!(3));
    let closed = after["user_book_reads"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == read["id"])
        .unwrap()
        .clone();
    assert_eq!(closed["finished_at"], json!("2026-09-01"));
    assert_eq!(closed["started_at"], read["started_at"]);
    assert_eq!(closed["progress_pages"], json!(77));

    // Audiobook progress on a want-to-read book with no read-through starts one.
    let row = row_with(&env, |r| {
        r["status_id"] == json!(1) && r["edition"]["audio_seconds"].is_number()
    });
    let id = row["id"].as_i64().unwrap();
    push_change(
        &c,
        id,
        &Change {
            progress: Some(Position::Seconds(1_800)),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    let m = env.fake.mutations();
    let last = m.last().unwrap();
    assert_eq!(last.name, "insert_user_book_read");
    assert_eq!(
        last.args["user_book_read"],
        json!({"started_at": "2026-09-01", "progress_seconds": 1800, "edition_id": row["edition_id"]})
    );
    assert_eq!(env.fake.user_book(id).unwrap()["status_id"], json!(1));

    // A percentage becomes seconds of this audiobook edition's length, as Hardcover wants.
    // (A minute on: the fake's bucket of 10 is spent by now.)
    env.clock.advance(chrono::Duration::minutes(1));
    let total = row["edition"]["audio_seconds"].as_f64().unwrap();
    let report = push_change(
        &c,
        id,
        &Change {
            progress: Some(Position::Percent(50.0)),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    assert!(report.skipped.is_empty(), "{report:?}");
    let sent = env.fake.mutations().last().unwrap().args["object"].clone();
    #[allow(clippy::cast_possible_truncation)]
    let half = (total / 2.0).round() as i64;
    assert_eq!(sent["progress_seconds"], json!(half), "{sent}");
    assert_eq!(sent["progress_pages"], Value::Null, "{sent}");
    assert_eq!(
        sent["started_at"],
        json!("2026-09-01"),
        "nothing blanked: {sent}"
    );

    // A print book: pages of its edition.
    let row = row_with(&env, |r| {
        r["status_id"] == json!(2)
            && r["edition"]["pages"].is_number()
            && open_read(r).is_some_and(|x| x["progress_pages"].is_number())
    });
    let id = row["id"].as_i64().unwrap();
    let pages = row["edition"]["pages"].as_f64().unwrap();
    push_change(
        &c,
        id,
        &Change {
            progress: Some(Position::Percent(25.0)),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    let sent = env.fake.mutations().last().unwrap().args["object"].clone();
    #[allow(clippy::cast_possible_truncation)]
    let quarter = (pages / 4.0).round() as i64;
    assert_eq!(sent["progress_pages"], json!(quarter), "{sent}");

    // Hardcover knows no length for it: the library's page count is used, and without
    // one the progress is skipped (and said so) while the rest of the change goes out.
    assert!(env.fake.edit_user_book(id, |r| {
        r["edition"]["pages"] = Value::Null;
        r["book"]["pages"] = Value::Null;
    }));
    push_change(
        &c,
        id,
        &Change {
            progress: Some(Position::Percent(50.0)),
            known_length: Length {
                pages: Some(300),
                audio_seconds: None,
            },
            ..Change::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        env.fake.mutations().last().unwrap().args["object"]["progress_pages"],
        json!(150),
        "converted with the library's count"
    );
    let mutations_before = env.fake.mutations().len();
    let report = push_change(
        &c,
        id,
        &Change {
            status: Some(ReadingStatus::Paused),
            progress: Some(Position::Percent(50.0)),
            ..Change::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(report.mutations, vec!["update_user_book"], "{report:?}");
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(report.skipped[0].0, "progress");
    assert!(report.skipped[0].1.contains("page count"), "{report:?}");
    assert_eq!(env.fake.mutations().len(), mutations_before + 1);

    // The fake holds Hardcover's rule: seconds only for an audiobook edition.
    let print = row_with(&env, |r| {
        r["status_id"] == json!(2)
            && r["edition"]["reading_format_id"] == json!(1)
            && open_read(r).is_some()
    });
    let err = push_change(
        &c,
        print["id"].as_i64().unwrap(),
        &Change {
            progress: Some(Position::Seconds(60)),
            ..Change::default()
        },
    )
    .await
    .unwrap_err();
    assert!(err.to_string().contains("audiobook edition"), "{err}");

    // Mutation-level `error` strings become rejections: an unknown row.
    env.clock.advance(chrono::Duration::minutes(1));
    let err = push_change(
        &c,
        1,
        &Change {
            status: Some(ReadingStatus::Paused),
            ..Change::default()
        },
    )
    .await
    .unwrap_err();
    assert!(matches!(err, HardcoverError::Rejected { .. }), "{err:?}");
}

#[tokio::test]
async fn write_back_stays_within_sixty_a_minute() {
    let env = env(120).await;
    let budget: Arc<dyn RateBudget> = Arc::new(TokenBucket::hardcover(env.clock.clone()));
    let c = client_with(&env, TOKEN, budget);
    let rows = env.fake.user_books_of(12_345);
    let mut pushed = 0;
    let mut waited = chrono::Duration::zero();
    for (i, row) in rows.iter().enumerate() {
        let id = row["id"].as_i64().unwrap();
        let change = if i % 2 == 0 {
            Change {
                status: Some(ReadingStatus::Paused),
                ..Change::default()
            }
        } else {
            Change {
                progress: Some(Position::Pages(10)),
                ..Change::default()
            }
        };
        for attempt in 0.. {
            assert!(attempt < 50, "no progress pushing {id}");
            match push_change(&c, id, &change).await {
                Ok(_) => break,
                Err(e) => {
                    let wait = e.retry_after().unwrap_or_else(|| panic!("{e:?}"));
                    let wait = chrono::Duration::from_std(wait).unwrap()
                        + chrono::Duration::milliseconds(1);
                    env.clock.advance(wait);
                    waited += wait;
                }
            }
        }
        pushed += 1;
    }
    assert_eq!(pushed, 120);
    assert_eq!(
        env.fake.rate_limited_count(),
        0,
        "never tripped the server limit"
    );
    let busiest = env.fake.max_billed_in_window(chrono::Duration::seconds(60));
    assert!(busiest <= 60, "{busiest} requests in one minute");
    assert!(busiest >= 50, "the budget is used, not wasted: {busiest}");
    assert!(waited > chrono::Duration::minutes(2));
    assert!(env.clock.now() > start_time());
}
