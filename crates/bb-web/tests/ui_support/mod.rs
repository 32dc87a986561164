//! Shared by the web app's router tests (`ui.rs`) and browser tests (`browser.rs`):
//! pages as text, signing in through the form, and library contents seeded through the
//! library use-case.
#![allow(clippy::unwrap_used, dead_code)] // each test binary uses a different part

use crate::common::TestApp;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use bb_core::ids::ItemId;
use bb_core::library::identifiers::{IdScheme, Identifier};
use bb_core::library::record::{Rating, ReadingStatus, Review, SourceRecord};
use bb_core::library::service::ImportSource;
use http_body_util::BodyExt;
use tower::ServiceExt;

pub const GOODREADS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/fixtures/real/goodreads/goodreads_library_export-2022.csv"
);

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }
}

pub async fn send(app: &TestApp, req: Request<Body>) -> Page {
    let res = bb_web::router(app.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    Page {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

/// The value of `<input … name="NAME" value="…">`'s first occurrence.
pub fn hidden(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_owned())
}

/// A browser's session: its cookie and the CSRF token its forms carry.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

fn cookie_pair(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap().to_owned())
}

/// Signs in through the `/login` form as a browser would.
pub async fn sign_in(app: &TestApp, user: &str, password: &str) -> Session {
    let form = send(app, Request::get("/login").body(Body::empty()).unwrap()).await;
    let login_cookie = cookie_pair(&form.headers, "bb_login_csrf").unwrap();
    let token = hidden(&form.body, "csrf").unwrap();
    let res = post_form(
        app,
        "/login",
        &login_cookie,
        &[("csrf", &token), ("username", user), ("password", password)],
    )
    .await;
    assert_eq!(res.status, StatusCode::SEE_OTHER, "{}", res.body);
    let cookie = cookie_pair(&res.headers, "bb_session").unwrap();
    let library = get(app, "/library", &cookie).await;
    let csrf = hidden(&library.body, "csrf").unwrap();
    Session { cookie, csrf }
}

pub async fn get(app: &TestApp, path: &str, cookie: &str) -> Page {
    send(
        app,
        Request::get(path)
            .header(header::COOKIE, cookie)
            .body(Body::empty())
            .unwrap(),
    )
    .await
}

pub async fn post_form(app: &TestApp, path: &str, cookie: &str, fields: &[(&str, &str)]) -> Page {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    send(
        app,
        Request::post(path)
            .header(header::COOKIE, cookie)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(body))
            .unwrap(),
    )
    .await
}

fn record(id: &str, title: &str, stars: f64) -> SourceRecord {
    SourceRecord {
        external_id: Some(id.to_owned()),
        title: title.to_owned(),
        authors: vec!["Frank Herbert".to_owned()],
        identifiers: vec![Identifier::new(IdScheme::Isbn13, "9780441172719")],
        status: Some(ReadingStatus::Read),
        rating: Rating::from_stars(stars),
        ..SourceRecord::default()
    }
}

async fn import_one(app: &TestApp, provider: &str, record: SourceRecord) {
    let user = app.state.library.user_id("alice").await.unwrap();
    let source = ImportSource {
        format: format!("{provider}-csv"),
        provider: provider.to_owned(),
        label: Some(format!("{provider}.csv")),
    };
    let summary = app
        .state
        .library
        .import(user, &source, std::iter::once(Ok(record)))
        .await
        .unwrap();
    assert_eq!(summary.failed, 0);
}

/// Every item of alice's library, as the use-case lists them.
pub async fn alices_items(app: &TestApp) -> Vec<serde_json::Value> {
    let user = app.state.library.user_id("alice").await.unwrap();
    app.state.library.all_items(user).await.unwrap()
}

/// One item two sources disagree about: Goodreads says "Dune" (4 stars), StoryGraph
/// "Dune: Deluxe Edition" (3.5). Returns the item.
pub async fn seed_conflict(app: &TestApp) -> ItemId {
    import_one(app, "goodreads", record("gr-1", "Dune", 4.0)).await;
    import_one(
        app,
        "storygraph",
        record("sg-1", "Dune: Deluxe Edition", 3.5),
    )
    .await;
    let dunes: Vec<_> = alices_items(app)
        .await
        .into_iter()
        .filter(|i| i["authors"][0] == "Frank Herbert")
        .collect();
    assert_eq!(dunes.len(), 1, "the two records are one work");
    ItemId(dunes[0]["id"].as_i64().unwrap())
}

pub const HOSTILE_TITLE: &str = "<script>alert('title')</script>";
pub const HOSTILE_REVIEW: &str = "<img src=x onerror=alert('review')> loved it";

/// A book whose title and review are markup, as a hostile export could carry.
pub async fn seed_hostile(app: &TestApp) -> ItemId {
    let mut r = record("evil-1", HOSTILE_TITLE, 5.0);
    r.identifiers.clear();
    r.authors = vec!["\"><b>Mallory</b>".to_owned()];
    r.review = Some(Review {
        text: HOSTILE_REVIEW.to_owned(),
        at: None,
    });
    import_one(app, "goodreads", r).await;
    let user = app.state.library.user_id("alice").await.unwrap();
    let items = app.state.library.all_items(user).await.unwrap();
    ItemId(items[0]["id"].as_i64().unwrap())
}

/// Two records bookbridge is unsure about (a title without its subtitle), kept apart as
/// a possible duplicate. Returns the duplicate's id.
pub async fn seed_possible_duplicate(app: &TestApp, series: &str, subtitle: &str) -> i64 {
    let book = |id: &str, title: String| {
        let mut r = record(id, &title, 4.0);
        r.identifiers.clear();
        r.authors = vec!["Brandon Sanderson".to_owned()];
        r
    };
    import_one(
        app,
        "goodreads",
        book(&format!("gr-{series}"), format!("{series}: {subtitle}")),
    )
    .await;
    import_one(
        app,
        "storygraph",
        book(&format!("sg-{series}"), series.to_owned()),
    )
    .await;
    let user = app.state.library.user_id("alice").await.unwrap();
    let open = app.state.library.duplicates(user, false).await.unwrap();
    open.iter()
        .find(|d| d.a.title.starts_with(series) && d.b.title.starts_with(series))
        .unwrap_or_else(|| panic!("no possible duplicate for {series}: {open:?}"))
        .id
}

/// Hardcover pointed at a new fake Hardcover server (account `reader`, token
/// `hc-test-token`).
pub async fn hardcover_provider(
    clock: &std::sync::Arc<dyn bb_core::clock::Clock>,
) -> (
    std::sync::Arc<dyn bb_core::connections::Provider>,
    bb_testkit::hardcover::FakeHardcover,
) {
    use bb_providers::hardcover::{HardcoverConfig, HardcoverProvider, TokenBucket};
    use std::sync::Arc;
    let fake = bb_testkit::hardcover::start(bb_testkit::hardcover::FakeHardcoverConfig::new(
        clock.clone(),
        3,
    ))
    .await;
    let provider = Arc::new(HardcoverProvider::new(
        HardcoverConfig {
            base_url: fake.base_url.clone(),
            max_budget_wait: std::time::Duration::ZERO,
            ..HardcoverConfig::default()
        },
        Arc::new(TokenBucket::new(1_000, 6_000, clock.clone())),
        clock.clone(),
        bb_providers::hardcover::provider::RATE_LIMIT,
    ));
    (provider, fake)
}

/// Audible pointed at a new fake Audible (Amazon's sign-in included).
pub async fn audible_provider(
    clock: &std::sync::Arc<dyn bb_core::clock::Clock>,
) -> (
    std::sync::Arc<dyn bb_core::connections::Provider>,
    bb_testkit::audible::FakeAudible,
) {
    use bb_providers::audible::{AudibleConfig, AudibleProvider};
    use bb_providers::http::{HttpSettings, build_client};
    use std::sync::Arc;
    let fake = bb_testkit::audible::start(bb_testkit::audible::FakeAudibleConfig::new(
        clock.clone(),
        3,
    ))
    .await;
    let provider = Arc::new(AudibleProvider::new(
        AudibleConfig {
            auth_base_url: Some(fake.base_url.clone()),
            api_base_url: Some(fake.base_url.clone()),
        },
        build_client(HttpSettings::default()).unwrap(),
        clock.clone(),
    ));
    (provider, fake)
}

/// The app with Hardcover pointed at the fake Hardcover server (account `reader`, token
/// `hc-test-token`).
pub async fn hardcover_app() -> (TestApp, bb_testkit::hardcover::FakeHardcover) {
    let mut app = crate::common::app().await;
    let clock: std::sync::Arc<dyn bb_core::clock::Clock> = app.clock.clone();
    let (provider, fake) = hardcover_provider(&clock).await;
    app.state.connections = crate::common::connections_with(&app, &clock, vec![provider]);
    (app, fake)
}

/// The app with Audible pointed at the fake Audible (Amazon's sign-in included).
pub async fn audible_app() -> (TestApp, bb_testkit::audible::FakeAudible) {
    let mut app = crate::common::app().await;
    let clock: std::sync::Arc<dyn bb_core::clock::Clock> = app.clock.clone();
    let (provider, fake) = audible_provider(&clock).await;
    app.state.connections = crate::common::connections_with(&app, &clock, vec![provider]);
    (app, fake)
}
