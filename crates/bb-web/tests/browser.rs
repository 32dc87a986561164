//! The web app in a real headless Chromium, driven over `WebDriver` (fantoccini) against
//! the real server on port 0: sign in, import the real Goodreads export and see its books,
//! resolve a conflict, undo an import, create and revoke a token, sign out. A screenshot
//! of each main page is saved (see `screenshot_dir`).
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without `chromedriver` the test skips
//! loudly, unless `BOOKBRIDGE_REQUIRE_PEERS=1` (CI), where it fails.
#![allow(clippy::unwrap_used)]

mod common;
mod ui_support;

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use ui_support::{GOODREADS, hardcover_app, seed_conflict, seed_possible_duplicate};

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

/// A screenshot of the whole page: the window grows to the page's height for it.
async fn shot(c: &Client, name: &str) {
    let (width, height) = c.get_window_size().await.unwrap();
    let page = c
        .execute("return document.documentElement.scrollHeight", vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(height);
    c.set_window_size(
        u32::try_from(width).unwrap(),
        u32::try_from(page.clamp(height, 4000) + 140).unwrap(),
    )
    .await
    .unwrap();
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshot_dir().join(format!("{name}.png")), png).unwrap();
    c.set_window_size(
        u32::try_from(width).unwrap(),
        u32::try_from(height).unwrap(),
    )
    .await
    .unwrap();
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
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (driver, port)
}

async fn connect(port: u16) -> Client {
    let mut caps = serde_json::Map::new();
    let args = vec![
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
    opts["args"] = args.into();
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

/// The element, waiting for it to appear (a click may still be loading the next page).
async fn css(c: &Client, selector: &str) -> Element {
    c.wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css(selector))
        .await
        .unwrap()
}

/// The browser on one server: short names for what every step does.
struct Tab {
    c: Client,
    base: String,
}

impl Tab {
    async fn go(&self, path: &str) {
        self.c.goto(&format!("{}{path}", self.base)).await.unwrap();
    }

    async fn path(&self) -> String {
        self.c.current_url().await.unwrap().path().to_owned()
    }

    async fn query(&self) -> String {
        let url = self.c.current_url().await.unwrap();
        url.query().unwrap_or_default().to_owned()
    }

    async fn wait_path(&self, path: &str) {
        until(path, || async { self.path().await == path }).await;
    }

    async fn click(&self, selector: &str) {
        css(&self.c, selector).await.click().await.unwrap();
    }

    async fn type_into(&self, selector: &str, text: &str) {
        css(&self.c, selector).await.send_keys(text).await.unwrap();
    }

    async fn text(&self, selector: &str) -> String {
        css(&self.c, selector).await.text().await.unwrap()
    }

    /// For polling: the text, or nothing while the page is being replaced.
    async fn try_text(&self, selector: &str) -> String {
        match self.c.find(Locator::Css(selector)).await {
            Ok(e) => e.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        }
    }

    async fn shot(&self, name: &str) {
        shot(&self.c, name).await;
    }
}

async fn sign_in(t: &Tab) {
    t.go("/").await;
    t.wait_path("/login").await;
    t.shot("login").await;
    t.type_into("#username", "alice").await;
    t.type_into("#password", "correct horse").await;
    t.click("form button[type=submit]").await;
    t.wait_path("/library").await;
    assert!(t.text("body").await.contains("Your library is empty"));
}

/// The real Goodreads export through the upload form (its script shows progress, then
/// follows the redirect to the summary), and its books in the library.
async fn import_goodreads(t: &Tab) {
    t.go("/import").await;
    let fixture = std::fs::canonicalize(GOODREADS).unwrap();
    t.type_into("#files", fixture.to_str().unwrap()).await;
    t.click("form[data-upload] button[type=submit]").await;
    until("the import summary", || async {
        t.query().await.starts_with("done=")
    })
    .await;
    let summary = t.text("body").await;
    assert!(summary.contains("Goodreads CSV"), "{summary}");
    assert!(summary.contains("0 failed"), "{summary}");
    t.shot("import").await;

    t.go("/library").await;
    let library = t.text("body").await;
    assert!(library.contains("La guerre des Gaules"), "{library}");
    assert!(library.contains("Sept secondes pour devenir un aigle"));
    t.shot("library").await;

    t.type_into("#q", "aigle").await;
    t.click("form.filters button[type=submit]").await;
    until("search results", || async {
        t.query().await.contains("q=aigle")
    })
    .await;
    let found = t.text("body").await;
    assert!(found.contains("Sept secondes") && !found.contains("La guerre des Gaules"));
}

/// Chooses StoryGraph's title over Goodreads' on an item the two disagree about.
async fn resolve_conflict(t: &Tab, app: &common::TestApp) {
    let item = seed_conflict(app).await;
    t.go(&format!("/library/{item}")).await;
    assert_eq!(t.text("h1").await, "Dune");
    t.shot("item").await;
    t.click("#field-title .alts button").await;
    until("the chosen title", || async {
        t.try_text("h1").await == "Dune: Deluxe Edition"
    })
    .await;
    assert!(t.text("#field-title").await.contains("from your edit"));
}

/// A possible duplicate, shown on the library and dismissed on its page.
async fn review_duplicate(t: &Tab, app: &common::TestApp) {
    seed_possible_duplicate(app, "Mistborn", "The Well of Ascension").await;
    t.go("/library").await;
    t.click("a[href='/library/duplicates']").await;
    t.wait_path("/library/duplicates").await;
    assert!(
        t.text("body")
            .await
            .contains("Mistborn: The Well of Ascension")
    );
    t.shot("duplicates").await;
    t.click("form[action^='/library/duplicates/'] input[value=dismiss] ~ button")
        .await;
    until("the dismissed pair", || async {
        t.try_text("body").await.contains("Nothing to review")
    })
    .await;
}

/// Undoes the Goodreads import: its books go, the seeded Dune stays.
async fn undo_import(t: &Tab) {
    t.go("/import").await;
    t.click("button[aria-label*='goodreads_library_export-2022.csv']")
        .await;
    until("the undone import", || async {
        t.try_text("body").await.contains("undone")
    })
    .await;
    t.go("/library").await;
    let library = t.text("body").await;
    assert!(!library.contains("La guerre des Gaules"), "{library}");
    assert!(library.contains("Dune"));
}

/// Hardcover linked with a pasted token, from its card.
async fn connect_hardcover(t: &Tab) {
    t.go("/connections").await;
    t.type_into("#token-hardcover", "hc-test-token").await;
    t.click("#provider-hardcover form[action='/connections/connect'] button")
        .await;
    until("the connected card", || async {
        t.query().await.starts_with("connected=")
    })
    .await;
    let card = t.text("#provider-hardcover").await;
    assert!(
        card.contains("Connected") && card.contains("reader"),
        "{card}"
    );
    t.shot("connections").await;
}

/// A token is shown once, then revoked; the activity page lists both.
async fn tokens_and_activity(t: &Tab, app: &common::TestApp) {
    t.go("/settings").await;
    t.type_into("#tok-name", "browser test").await;
    t.click("#tok-name ~ button").await;
    let token = css(&t.c, "#new-token")
        .await
        .prop("value")
        .await
        .unwrap()
        .unwrap();
    assert!(token.starts_with("bbpat_"));
    t.shot("settings").await;
    t.click("button[aria-label='Revoke browser test']").await;
    until("the revoked notice", || async {
        t.try_text("body").await.contains("was revoked")
    })
    .await;
    assert!(
        app.state
            .accounts
            .list_tokens("alice")
            .await
            .unwrap()
            .is_empty()
    );

    t.go("/activity").await;
    let activity = t.text("body").await;
    assert!(activity.contains("Access token revoked") && activity.contains("Signed in"));
    t.shot("activity").await;
}

#[tokio::test]
async fn a_reader_uses_the_web_app_in_a_real_browser() {
    let Some(bin) = find_chromedriver() else {
        assert!(
            std::env::var("BOOKBRIDGE_REQUIRE_PEERS").as_deref() != Ok("1"),
            "chromedriver is not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "\n*** SKIPPED browser test: chromedriver not found. \
             Install Debian's chromium and chromium-driver to run it. ***\n"
        );
        return;
    };

    // The real server on port 0.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    // Hardcover points at the fake Hardcover server.
    let (app, _fake) = hardcover_app().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(bb_web::serve(listener, app.state.clone(), async {
        let _ = stopped.await;
    }));
    let (_driver, port) = start_driver(&bin).await;
    let t = Tab {
        c: connect(port).await,
        base,
    };

    sign_in(&t).await;
    import_goodreads(&t).await;
    resolve_conflict(&t, &app).await;
    review_duplicate(&t, &app).await;
    undo_import(&t).await;
    connect_hardcover(&t).await;
    tokens_and_activity(&t, &app).await;

    // The same library on a phone.
    t.c.set_window_size(390, 844).await.unwrap();
    t.go("/library").await;
    t.shot("library-phone").await;
    t.c.set_window_size(1280, 900).await.unwrap();

    // Sign out; pages lead back to sign-in.
    t.click("form.signout button").await;
    t.wait_path("/login").await;
    t.go("/settings").await;
    assert_eq!(t.path().await, "/login");

    // With no account at all, the sign-in page explains the one command that makes one.
    app.state.accounts.delete_user("alice").await.unwrap();
    t.go("/login").await;
    assert!(t.text("body").await.contains("bookbridge user add NAME"));
    t.shot("first-run").await;

    t.c.close().await.unwrap();
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
