//! Large uploads through the real router: stored and queued (202), imported by the `import`
//! job (drained here with `step()`), progress and the summary at `GET /api/imports/{id}`;
//! and a `KoboReader.sqlite` uploaded over HTTP.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use axum::http::StatusCode;
use bb_jobs::StepOutcome;
use common::{Reply, TestApp, app};
use secrecy::ExposeSecret;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection};

const GOODREADS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/real/goodreads/goodreads_library_export-2022.csv"
);
const KOBO_SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/real/kobo/kobo.schema.md"
);

/// The app with uploads above `inline_max` bytes going to the job queue.
async fn app_with_inline_max(inline_max: usize) -> (TestApp, String) {
    let app = app().await.with_inline_max(inline_max);
    let (token, _) = app
        .state
        .accounts
        .create_token("alice", None)
        .await
        .unwrap();
    let auth = format!("Bearer {}", token.expose_secret());
    (app, auth)
}

fn runner(app: &TestApp) -> bb_jobs::JobRunner {
    app.job_runner()
}

async fn upload(
    app: &TestApp,
    auth: &str,
    name: &str,
    format: Option<&str>,
    bytes: &[u8],
) -> Reply {
    app.upload(auth, name, format, bytes).await
}

async fn stored_pieces(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM import_uploads")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_large_upload_is_queued_then_imported_by_the_job_with_progress() {
    let bytes = std::fs::read(GOODREADS).unwrap();
    // The same file imported inline, for the summary the job must reach.
    let (inline_app, inline_auth) = app_with_inline_max(bytes.len()).await;
    let inline = upload(&inline_app, &inline_auth, "gr.csv", None, &bytes).await;
    assert_eq!(inline.status, StatusCode::CREATED, "{:?}", inline.body);

    let (app, auth) = app_with_inline_max(1024).await;
    let queued = upload(&app, &auth, "gr.csv", None, &bytes).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{:?}", queued.body);
    let id = queued.body["id"].as_i64().unwrap();
    assert_eq!(queued.body["state"], "queued");
    assert_eq!(queued.body["format"], "goodreads-csv");
    assert_eq!(queued.body["label"], "gr.csv");
    assert_eq!(queued.body["progress"]["job_state"], "queued");
    assert_eq!(queued.body["progress"]["bytes_total"], bytes.len());
    assert_eq!(queued.body["progress"]["rows_processed"], 0);
    assert!(
        stored_pieces(&app).await > 0,
        "the upload is stored in the database"
    );
    let empty = app
        .get("/api/library", Some(("authorization", &auth)))
        .await;
    assert_eq!(
        empty.body["total"], 0,
        "nothing is imported before the job runs"
    );

    // A new runner, as after a restart, finds the job and the stored upload.
    let report = runner(&app).step().await.unwrap().unwrap();
    assert!(
        matches!(report.outcome, StepOutcome::Succeeded(_)),
        "{report:?}"
    );
    assert!(runner(&app).step().await.unwrap().is_none(), "one job");

    let path = format!("/api/imports/{id}");
    let done = app.get(&path, Some(("authorization", &auth))).await;
    assert_eq!(done.status, StatusCode::OK);
    assert_eq!(done.body["state"], "done");
    let p = &done.body["progress"];
    assert_eq!(p["job_state"], "succeeded");
    assert_eq!(p["rows_processed"], inline.body["summary"]["rows"]);
    assert_eq!(p["rows_total"], inline.body["summary"]["rows"]);
    for field in [
        "rows",
        "created",
        "merged",
        "updated",
        "unchanged",
        "failed",
        "errors",
    ] {
        assert_eq!(
            done.body[field], inline.body["summary"][field],
            "{field}: {:?}",
            done.body
        );
    }
    assert_eq!(
        stored_pieces(&app).await,
        0,
        "the stored upload goes once imported"
    );
    let library = app
        .get("/api/library", Some(("authorization", &auth)))
        .await;
    assert_eq!(
        library.body["total"], inline.body["summary"]["created"],
        "{:?}",
        library.body
    );
    let listed = app
        .get("/api/imports", Some(("authorization", &auth)))
        .await;
    assert_eq!(listed.body[0]["id"], id);

    // Another user cannot see it.
    app.state
        .accounts
        .create_user(
            "bob",
            &secrecy::SecretString::from("bobs password".to_owned()),
        )
        .await
        .unwrap();
    let (bob, _) = app.state.accounts.create_token("bob", None).await.unwrap();
    let other = app
        .get(
            &path,
            Some(("authorization", &format!("Bearer {}", bob.expose_secret()))),
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_queued_file_that_is_not_its_format_fails_with_a_reason_and_keeps_nothing() {
    let (app, auth) = app_with_inline_max(16).await;
    // Named a StoryGraph export, but has none of its columns.
    let bytes = b"Some,Other,Columns\n1,2,3\n4,5,6\n7,8,9\n".repeat(4);
    let queued = upload(&app, &auth, "x.csv", Some("storygraph-csv"), &bytes).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{:?}", queued.body);
    let id = queued.body["id"].as_i64().unwrap();
    let report = runner(&app).step().await.unwrap().unwrap();
    assert!(
        matches!(report.outcome, StepOutcome::Failed(_)),
        "{report:?}"
    );
    let status = app
        .get(
            &format!("/api/imports/{id}"),
            Some(("authorization", &auth)),
        )
        .await;
    assert_eq!(status.body["state"], "failed");
    assert_eq!(status.body["progress"]["job_state"], "failed");
    let reason = status.body["errors"][0]["message"].as_str().unwrap();
    assert!(!reason.is_empty());
    assert_eq!(status.body["progress"]["last_error"], reason);
    assert_eq!(stored_pieces(&app).await, 0);
}

#[tokio::test]
async fn an_unknown_large_file_is_refused_before_anything_is_stored() {
    let (app, auth) = app_with_inline_max(16).await;
    let reply = upload(&app, &auth, "x.bin", None, &[0u8; 4096]).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert_eq!(reply.body["error"]["code"], "invalid_input");
    assert_eq!(stored_pieces(&app).await, 0);
    let listed = app
        .get("/api/imports", Some(("authorization", &auth)))
        .await;
    assert_eq!(listed.body, serde_json::json!([]));
}

/// A `KoboReader.sqlite` from the real DDL with one book and a `user` row of fake tokens.
async fn kobo_database(dir: &std::path::Path) -> Vec<u8> {
    let path = dir.join("KoboReader.sqlite");
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .connect()
        .await
        .unwrap();
    let doc = std::fs::read_to_string(KOBO_SCHEMA).unwrap();
    let ddl = doc
        .split("```sql")
        .skip(1)
        .filter_map(|block| block.split("```").next());
    let rows = "INSERT INTO content (ContentID, ContentType, MimeType, Title, Attribution, ISBN, \
        ReadStatus, ___PercentRead, DateLastRead, ___UserID) VALUES ('kobo-book-1', '6', \
        'application/x-kobo-epub+zip', 'Leviathan Wakes', 'James S. A. Corey', '9780316129084', \
        1, 42, '2024-03-01T20:15:00Z', 'FAKE-USER');
        INSERT INTO user (UserID, UserKey, UserDisplayName, UserEmail, AuthToken, RefreshToken) \
        VALUES ('FAKE-USER', 'FAKE-KEY-1', 'Reader', 'reader@example.invalid', \
        'FAKE-AUTH-TOKEN-abc', 'FAKE-REFRESH-TOKEN-def');";
    for sql in ddl.chain(std::iter::once(rows)) {
        sqlx::raw_sql(AssertSqlSafe(sql.to_owned()))
            .execute(&mut conn)
            .await
            .unwrap();
    }
    conn.close().await.unwrap();
    std::fs::read(&path).unwrap()
}

#[tokio::test]
async fn a_kobo_database_uploads_over_http_and_its_tokens_stay_out() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = kobo_database(dir.path()).await;
    let (app, auth) = app_with_inline_max(bytes.len()).await;
    let reply = upload(&app, &auth, "KoboReader.sqlite", None, &bytes).await;
    assert_eq!(reply.status, StatusCode::CREATED, "{:?}", reply.body);
    assert_eq!(reply.body["summary"]["format"], "kobo-sqlite");
    assert_eq!(reply.body["summary"]["created"], 1);
    assert_eq!(reply.body["summary"]["failed"], 0);
    let library = app
        .get("/api/library", Some(("authorization", &auth)))
        .await;
    let item = &library.body["items"][0];
    assert_eq!(item["title"], "Leviathan Wakes");
    assert_eq!(item["status"], "reading");
    assert_eq!(item["sources"][0]["provider"], "kobo");

    // The same database above the inline limit goes through the job, with the same result.
    let (big, big_auth) = app_with_inline_max(1024).await;
    let queued = upload(&big, &big_auth, "KoboReader.sqlite", None, &bytes).await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{:?}", queued.body);
    assert_eq!(queued.body["format"], "kobo-sqlite");
    let report = runner(&big).step().await.unwrap().unwrap();
    assert!(
        matches!(report.outcome, StepOutcome::Succeeded(_)),
        "{report:?}"
    );
    let listed = big
        .get("/api/library", Some(("authorization", &big_auth)))
        .await;
    assert_eq!(listed.body["items"][0]["title"], "Leviathan Wakes");

    // Nothing from the device's `user` table reaches the database.
    for pool in [&app.pool, &big.pool] {
        let dump: Vec<String> = sqlx::query_scalar(
            "SELECT record || raw FROM item_source_versions \
                 UNION ALL SELECT columns FROM raw_columns",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        let all = dump.concat() + &library.body.to_string();
        for secret in [
            "FAKE-AUTH-TOKEN-abc",
            "FAKE-REFRESH-TOKEN-def",
            "FAKE-KEY-1",
            "reader@example.invalid",
        ] {
            assert!(!all.contains(secret), "{secret} leaked");
        }
    }
}
