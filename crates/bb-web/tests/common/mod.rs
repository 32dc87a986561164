//! A whole bookbridge API on a fresh SQLite database, driven through the real router
//! (tower `oneshot`) with a clock the tests move.
#![allow(clippy::unwrap_used, dead_code)] // each test binary uses a different part

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use bb_core::accounts::{AccountPolicy, Accounts};
use bb_core::clock::{Clock, ManualClock};
use bb_web::{AppState, WebConfig};
use chrono::{TimeZone, Utc};
use http_body_util::BodyExt;
use secrecy::SecretString;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub struct TestApp {
    pub state: AppState,
    /// The vault the connections use-case seals credentials with (one master key per
    /// database: a second vault with another key would be refused).
    pub vault: Arc<bb_vault::Vault>,
    pub clock: Arc<ManualClock>,
    pub pool: sqlx::SqlitePool,
    _dir: tempfile::TempDir,
}

pub async fn app_with(public_url: &str, policy: AccountPolicy) -> TestApp {
    let dir = tempfile::tempdir().unwrap();
    let db = bb_store::testing::fresh_sqlite(dir.path()).await.unwrap();
    let pool = db.sqlite.as_ref().unwrap().pool().clone();
    let clock = Arc::new(ManualClock::new(
        Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
    ));
    let dyn_clock: Arc<dyn Clock> = clock.clone();
    let accounts = Accounts::new(db.store.clone(), dyn_clock.clone(), policy);
    accounts
        .create_user("alice", &SecretString::from("correct horse".to_owned()))
        .await
        .unwrap();
    let vault = test_vault(&db.store, &dyn_clock).await;
    let connections = connections_with_vault(&db.store, &dyn_clock, Vec::new(), vault.clone());
    TestApp {
        vault,
        state: AppState {
            connections,
            accounts,
            library: bb_core::library::service::Library::new(
                db.store.clone(),
                dyn_clock.clone(),
                bb_core::library::resolve::ResolveRules::default(),
            ),
            store: db.store,
            clock: dyn_clock,
            web: Arc::new(WebConfig {
                public_url: url::Url::parse(public_url).unwrap(),
                import_inline_max_bytes: 2 << 20,
            }),
        },
        clock,
        pool,
        _dir: dir,
    }
}

/// The connections use-case over `store` with these providers and a fresh master key.
pub fn connections_with(
    app: &TestApp,
    clock: &Arc<dyn Clock>,
    providers: Vec<Arc<dyn bb_core::connections::Provider>>,
) -> bb_core::connections::Connections {
    connections_with_vault(&app.state.store, clock, providers, app.vault.clone())
}

/// A vault over `store` with a fresh master key.
pub async fn test_vault(
    store: &Arc<dyn bb_core::ports::Store>,
    clock: &Arc<dyn Clock>,
) -> Arc<bb_vault::Vault> {
    let ring = bb_vault::Keyring::single(bb_vault::MasterKey::generate().unwrap());
    Arc::new(
        bb_vault::Vault::open(ring, store.clone(), clock.clone())
            .await
            .unwrap(),
    )
}

pub fn connections_with_vault(
    store: &Arc<dyn bb_core::ports::Store>,
    clock: &Arc<dyn Clock>,
    providers: Vec<Arc<dyn bb_core::connections::Provider>>,
    vault: Arc<bb_vault::Vault>,
) -> bb_core::connections::Connections {
    let jobs: Arc<dyn bb_core::ports::JobStore> = store.clone();
    bb_core::connections::Connections::new(
        store.clone(),
        jobs,
        vault,
        Arc::new(bb_core::library::service::Library::new(
            store.clone(),
            clock.clone(),
            bb_core::library::resolve::ResolveRules::default(),
        )),
        providers,
        clock.clone(),
        bb_core::connections::ConnectionsConfig::default(),
        "test-worker",
    )
}

pub async fn app() -> TestApp {
    app_with("http://127.0.0.1:8080", AccountPolicy::default()).await
}

impl TestApp {
    /// Uploads above `inline_max` bytes go to the job queue, for [`TestApp::job_runner`].
    pub fn with_inline_max(mut self, inline_max: usize) -> Self {
        let web = WebConfig {
            import_inline_max_bytes: inline_max,
            ..(*self.state.web).clone()
        };
        self.state.web = Arc::new(web);
        self
    }

    /// A job runner with the job kinds `serve` runs (import, connection sync and
    /// write-back); a new one is as after a restart. Tests drive it with `step()`/`drain()`.
    pub fn job_runner(&self) -> bb_jobs::JobRunner {
        let jobs: Arc<dyn bb_core::ports::JobStore> = self.state.store.clone();
        let connections = self.state.connections.clone();
        bb_jobs::JobRunner::new(
            jobs,
            self.state.clock.clone(),
            bb_jobs::RunnerConfig::new("test-worker"),
        )
        .with_handler(
            bb_core::library::service::IMPORT_JOB,
            Arc::new(bb_web::import_job::ImportJob::new(
                self.state.library.clone(),
            )),
        )
        .with_handler(
            bb_core::connections::SYNC_JOB_KIND,
            Arc::new(bb_jobs::ConnectionSyncHandler::new(connections.clone())),
        )
        .with_handler(
            bb_core::connections::WRITE_BACK_JOB_KIND,
            Arc::new(bb_jobs::ConnectionWriteBackHandler::new(connections)),
        )
        .with_seed(7)
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn send(&self, req: Request<Body>) -> Reply {
        let res = bb_web::router(self.state.clone())
            .oneshot(req)
            .await
            .unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn login(&self, username: &str, password: &str) -> Reply {
        self.send(
            Request::post("/api/session")
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(
                    json!({"username": username, "password": password}).to_string(),
                ))
                .unwrap(),
        )
        .await
    }

    pub async fn me_status(&self, cookie: &str) -> StatusCode {
        self.get("/api/me", Some(("cookie", cookie))).await.status
    }

    /// `POST /api/imports` as a multipart form: an optional `format` field, then `file`.
    pub async fn upload(
        &self,
        auth: &str,
        name: &str,
        format: Option<&str>,
        bytes: &[u8],
    ) -> Reply {
        let boundary = "bookbridge-test-boundary";
        let mut body = Vec::new();
        if let Some(f) = format {
            body.extend_from_slice(
                format!(
                    "--{boundary}\r\nContent-Disposition: form-data; name=\"format\"\r\n\r\n{f}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        self.send(
            Request::post("/api/imports")
                .header(header::AUTHORIZATION, auth)
                .header(
                    header::CONTENT_TYPE,
                    format!("multipart/form-data; boundary={boundary}"),
                )
                .body(Body::from(body))
                .unwrap(),
        )
        .await
    }

    /// A same-origin request with the session `cookie` and an optional JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        cookie: &str,
        body: Option<&Value>,
    ) -> Reply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::COOKIE, cookie)
            .header(header::ORIGIN, "http://127.0.0.1:8080");
        let body = match body {
            Some(b) => {
                req = req.header(header::CONTENT_TYPE, "application/json");
                Body::from(b.to_string())
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    pub async fn get(&self, path: &str, auth: Option<(&str, &str)>) -> Reply {
        let mut req = Request::get(path);
        if let Some((name, value)) = auth {
            req = req.header(name, value);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }
}

pub fn session_cookie(reply: &Reply) -> String {
    let set = reply
        .headers
        .get(header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    set.split(';').next().unwrap().to_owned()
}

/// The app with Open Library pointed at a new fake Open Library (public user `reader` with
/// `books` works, private user `hermit`), its requests paid for from the budget kept in the
/// app's database, as `serve` wires it.
pub async fn openlibrary_app(books: usize) -> (TestApp, bb_testkit::openlibrary::FakeOpenLibrary) {
    use bb_providers::openlibrary::{OpenLibraryConfig, OpenLibraryProvider, provider::RATE_LIMIT};
    let mut app = app().await;
    let clock: Arc<dyn Clock> = app.clock.clone();
    let fake = bb_testkit::openlibrary::start(bb_testkit::openlibrary::FakeOpenLibraryConfig::new(
        clock.clone(),
        books,
    ))
    .await;
    let store: Arc<dyn bb_core::ports::ConnectionStore> = app.state.store.clone();
    let budget = Arc::new(bb_providers::budget::SharedBudget::new(
        store,
        clock.clone(),
        std::iter::once((
            bb_providers::openlibrary::PROVIDER_ID.to_owned(),
            RATE_LIMIT,
        ))
        .collect(),
    ));
    let provider: Arc<dyn bb_core::connections::Provider> = Arc::new(OpenLibraryProvider::new(
        OpenLibraryConfig {
            base_url: fake.base_url.clone(),
            contact: "ops@books.example".into(),
            max_budget_wait: std::time::Duration::ZERO,
            ..OpenLibraryConfig::default()
        },
        bb_providers::http::build_client(bb_providers::http::HttpSettings::default()).unwrap(),
        budget,
        clock.clone(),
        RATE_LIMIT,
    ));
    app.state.connections = connections_with(&app, &clock, vec![provider]);
    (app, fake)
}
