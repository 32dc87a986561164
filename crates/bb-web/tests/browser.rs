//! The web app in a real headless Chromium, driven over WebDriver (fantoccini) against
//! the real server on port 0: sign in, import the real Goodreads export and see its books,
//! resolve a conflict, undo an import, create and revoke a token, sign out. A screenshot
//! of each main page is saved (see `screenshot_dir`).
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without `chromedriver` the test skips
//! loudly, unless `BOOKBRIDGE_REQUIRE_PEERS=1` (CI), where it fails.
#![allow(clippy::unwrap_used)]

mod common;
mod ui_support;

use bb_core::accounts::AccountPolicy;
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use ui_support::{GOODREADS, seed_conflict};

/// Ends chromedriver with the test, however the test ends.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn find_chromedriver() -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromedriver"))
            .find(|p| p.is_file())
    })
}

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Screenshots go to `target/…/tmp/screenshots`; with `UPDATE_SCREENSHOTS=1` to the
/// committed `tests/screenshots/` a reviewer can look at.
fn screenshot_dir() -> PathBuf {
    let dir = if std::env::var_os("UPDATE_SCREENSHOTS").is_some() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/screenshots")
    } else {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots")
    };
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
}

/// Starts chromedriver on a free port and waits until it answers.
async fn start_driver(bin: &Path) -> (Driver, u16) {
    let port = free_port();
    let child = Command::new(bin)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (driver, port)
}

async fn connect(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    let mut args = vec![
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--lang=en-GB",
    ];
    let mut opts = serde_json::json!({ "args": [] });
    if Path::new("/usr/bin/chromium").exists() {
        opts["binary"] = "/usr/bin/chromium".into();
    }
    opts["args"] = args.drain(..).collect::<Vec<_>>().into();
    caps.insert("goog:chromeOptions".into(), opts);
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .unwrap()
}

/// Polls until `f` is true: pages load and scripts run asynchronously.
async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn css(c: &Client, selector: &str) -> Element {
    c.find(Locator::Css(selector)).await.unwrap()
}

async fn body_text(c: &Client) -> String {
    css(c, "body").await.text().await.unwrap()
}

#[tokio::test]
async fn a_reader_uses_the_web_app_in_a_real_browser() {
    let Some(bin) = find_chromedriver() else {
        if std::env::var("BOOKBRIDGE_REQUIRE_PEERS").as_deref() == Ok("1") {
            panic!("chromedriver is not installed (apt-get install chromium chromium-driver)");
        }
        eprintln!(
            "\n*** SKIPPED browser test: chromedriver not found. \
             Install Debian's chromium and chromium-driver to run it. ***\n"
        );
        return;
    };

    // The real server on port 0.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let app = common::app_with(&base, AccountPolicy::default()).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bb_web::serve(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));

    let (_driver, port) = start_driver(&bin).await;
    let c = connect(port).await;
    let url = |p: &str| format!("{base}{p}");

    // Sign in.
    c.goto(&url("/")).await.unwrap();
    until("the sign-in page", || async { c.current_url().await.unwrap().path() == "/login" }).await;
    shot(&c, "login").await;
    css(&c, "#username").await.send_keys("alice").await.unwrap();
    css(&c, "#password").await.send_keys("correct horse").await.unwrap();
    css(&c, "form button[type=submit]").await.click().await.unwrap();
    until("the library", || async { c.current_url().await.unwrap().path() == "/library" }).await;
    assert!(body_text(&c).await.contains("Your library is empty"));

    // Import the real Goodreads export (the upload script shows progress, then follows
    // the redirect to the summary).
    c.goto(&url("/import")).await.unwrap();
    let fixture = std::fs::canonicalize(GOODREADS).unwrap();
    css(&c, "#files").await.send_keys(fixture.to_str().unwrap()).await.unwrap();
    css(&c, "form[data-upload] button[type=submit]").await.click().await.unwrap();
    until("the import summary", || async {
        c.current_url().await.unwrap().query().is_some_and(|q| q.starts_with("done="))
    })
    .await;
    let summary = body_text(&c).await;
    assert!(summary.contains("Goodreads CSV"), "{summary}");
    assert!(summary.contains("0 failed"), "{summary}");
    shot(&c, "import").await;

    c.goto(&url("/library")).await.unwrap();
    let library = body_text(&c).await;
    assert!(library.contains("La guerre des Gaules"), "{library}");
    assert!(library.contains("Sept secondes pour devenir un aigle"));
    shot(&c, "library").await;

    // Search narrows the list.
    css(&c, "#q").await.send_keys("aigle").await.unwrap();
    css(&c, "form.filters button[type=submit]").await.click().await.unwrap();
    until("search results", || async {
        c.current_url().await.unwrap().query().is_some_and(|q| q.contains("q=aigle"))
    })
    .await;
    let found = body_text(&c).await;
    assert!(found.contains("Sept secondes") && !found.contains("La guerre des Gaules"));

    // Resolve a conflict: choose StoryGraph's title over Goodreads'.
    let item = seed_conflict(&app).await;
    c.goto(&url(&format!("/library/{item}"))).await.unwrap();
    assert_eq!(css(&c, "h1").await.text().await.unwrap(), "Dune");
    shot(&c, "item").await;
    css(&c, "#field-title .alts button").await.click().await.unwrap();
    until("the chosen title", || async {
        css(&c, "h1").await.text().await.unwrap() == "Dune: Deluxe Edition"
    })
    .await;
    assert!(css(&c, "#field-title").await.text().await.unwrap().contains("from your edit"));

    // Undo the Goodreads import: its books go, the seeded Dune stays.
    c.goto(&url("/import")).await.unwrap();
    css(&c, "button[aria-label*='goodreads_library_export-2022.csv']")
        .await
        .click()
        .await
        .unwrap();
    until("the undone import", || async { body_text(&c).await.contains("undone") }).await;
    c.goto(&url("/library")).await.unwrap();
    let library = body_text(&c).await;
    assert!(!library.contains("La guerre des Gaules"), "{library}");
    assert!(library.contains("Dune"));

    // Settings: a token is shown once, then revoked.
    c.goto(&url("/settings")).await.unwrap();
    css(&c, "#tok-name").await.send_keys("browser test").await.unwrap();
    css(&c, "#tok-name ~ button").await.click().await.unwrap();
    let token = css(&c, "#new-token").await.prop("value").await.unwrap().unwrap();
    assert!(token.starts_with("bbpat_"));
    shot(&c, "settings").await;
    css(&c, "button[aria-label='Revoke browser test']").await.click().await.unwrap();
    until("the revoked notice", || async { body_text(&c).await.contains("was revoked") }).await;
    assert!(app.state.accounts.list_tokens("alice").await.unwrap().is_empty());

    // Activity shows what happened, with times put in the reader's locale by the script.
    c.goto(&url("/activity")).await.unwrap();
    let activity = body_text(&c).await;
    assert!(activity.contains("Access token revoked") && activity.contains("Signed in"));
    shot(&c, "activity").await;

    // The same library on a phone.
    c.set_window_size(390, 844).await.unwrap();
    c.goto(&url("/library")).await.unwrap();
    shot(&c, "library-phone").await;
    c.set_window_size(1280, 900).await.unwrap();

    // Sign out.
    css(&c, "form.signout button").await.click().await.unwrap();
    until("the sign-in page", || async { c.current_url().await.unwrap().path() == "/login" }).await;
    c.goto(&url("/settings")).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");

    c.close().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
