//! The web app in a real headless Chromium, driven over `WebDriver` (fantoccini) against
//! the real server on port 0: sign in, import the real Goodreads export as a background
//! job (its progress bar, then its summary) and see its books, filter them by rating,
//! resolve a conflict, undo an import, connect Hardcover with a token, sync it and
//! disconnect removing its books, link Audible by pasting the landing address (fake
//! Audible), connect a generic OAuth provider through the real `oidc-provider` peer, create
//! and revoke a token, see each connection's sync history on the activity page, sign out.
//! A screenshot of each main page is saved (see `screenshot_dir`).
//!
//! Needs Debian's `chromium` and `chromium-driver`. Without `chromedriver` the test skips
//! loudly, unless `BOOKBRIDGE_REQUIRE_PEERS=1` (CI), where it fails; the same goes for the
//! OAuth peer (`npm ci --prefix crates/bb-providers/tests/peers/oidc`), whose step alone is
//! skipped when it is missing.
#![allow(clippy::unwrap_used)]

mod common;
#[path = "../../bb-providers/tests/peers/oidc/peer.rs"]
mod peer;
mod ui_support;

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use ui_support::{
    GOODREADS, audible_provider, hardcover_provider, seed_conflict, seed_possible_duplicate,
};

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

/// What a reader without a mouse, or using a screen reader, meets. Every form control on
/// every main page has an accessible name (a label, `aria-label` or `aria-labelledby`).
/// The first Tab stop skips to the content, the library search is reached with Tab alone
/// and submitted with Enter, and the synced Hardcover books show their covers.
async fn covers_names_and_keyboard(t: &Tab, app: &common::TestApp) {
    for path in [
        "/library",
        "/import",
        "/connections",
        "/activity",
        "/settings",
        "/library/duplicates",
    ] {
        t.go(path).await;
        let unnamed =
            t.c.execute(
                r#"return Array.from(document.querySelectorAll("input, select, textarea"))
                     .filter(e => e.type !== "hidden" && e.type !== "submit"
                                  && !e.closest("[hidden]"))
                     .filter(e => !(e.labels && e.labels.length)
                                  && !e.getAttribute("aria-label")
                                  && !e.getAttribute("aria-labelledby"))
                     .map(e => e.outerHTML);"#,
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            unnamed,
            serde_json::json!([]),
            "{path}: controls without a name"
        );
    }

    t.go("/library").await;
    let covers =
        t.c.execute(
            r#"return Array.from(document.querySelectorAll("img.cover"))
                 .map(i => i.getAttribute("src"));"#,
            vec![],
        )
        .await
        .unwrap();
    assert!(
        covers.as_array().is_some_and(|all| all.iter().any(|src| src
            .as_str()
            .is_some_and(|s| s.starts_with("https://assets.hardcover.app/edition/")))),
        "the synced books' covers: {covers}"
    );

    let press = |key: Key| {
        KeyActions::new("keyboard".into())
            .then(KeyAction::Down { value: key.into() })
            .then(KeyAction::Up { value: key.into() })
    };
    let focused = || async {
        t.c.execute(
            "const e = document.activeElement; return [e.id, e.textContent.trim()];",
            vec![],
        )
        .await
        .unwrap()
    };
    t.c.perform_actions(press(Key::Tab)).await.unwrap();
    assert_eq!(
        focused().await[1],
        "Skip to content",
        "the first Tab stop skips the navigation"
    );
    let mut stops = 1;
    while focused().await[0] != "q" {
        assert!(stops < 20, "the search field is not reached with Tab");
        t.c.perform_actions(press(Key::Tab)).await.unwrap();
        stops += 1;
    }
    let user = app.state.library.user_id("alice").await.unwrap();
    let items = app.state.library.all_items(user).await.unwrap();
    let title = items[0]["title"].as_str().unwrap().to_owned();
    let other = items
        .iter()
        .filter_map(|i| i["title"].as_str())
        .find(|o| !o.contains(&title) && !title.contains(o))
        .unwrap()
        .to_owned();
    t.type_into("#q", &title).await;
    t.c.perform_actions(press(Key::Enter)).await.unwrap();
    until("a search submitted with Enter", || async {
        t.query().await.contains("q=")
    })
    .await;
    let found = t.text("body").await;
    assert!(
        found.contains(&title) && !found.contains(&other),
        "{title} found, {other} not: {found}"
    );
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

/// The real Goodreads export through the upload form. The server's inline limit is small,
/// so the file becomes an import job: the page shows its bar (the script follows the job
/// over the API) until the job has run, then reloads itself into the summary. Then its
/// books in the library, searched and filtered by rating.
async fn import_goodreads(t: &Tab, app: &common::TestApp) {
    t.go("/import").await;
    let fixture = std::fs::canonicalize(GOODREADS).unwrap();
    t.type_into("#files", fixture.to_str().unwrap()).await;
    t.click("form[data-upload] button[type=submit]").await;
    until("the import job's progress", || async {
        t.query().await.starts_with("done=")
            && t.try_text("[data-job-status]")
                .await
                .starts_with("Waiting to start")
    })
    .await;
    assert!(
        t.text("h2")
            .await
            .starts_with("Importing goodreads_library_export-2022.csv"),
        "{}",
        t.text("body").await
    );
    css(&t.c, "progress.job[data-job-bar]").await;
    t.shot("import-progress").await;

    // The job runs as `serve`'s runner would run it (with whatever else is due: the first
    // Hardcover connection's sync, which finds it disconnected); the page notices by itself.
    app.job_runner().drain().await.unwrap();
    until("the import summary", || async {
        t.try_text("body")
            .await
            .contains("Imported goodreads_library_export-2022.csv")
    })
    .await;
    let summary = t.text("body").await;
    assert!(summary.contains("Goodreads CSV"), "{summary}");
    assert!(summary.contains("0 failed"), "{summary}");
    assert!(t.c.find(Locator::Css("progress.job")).await.is_err());
    t.shot("import").await;
    drop_a_file(t).await;

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

    // Five stars only: Sept secondes (5) stays, La guerre des Gaules (unrated) goes.
    t.go("/library").await;
    css(&t.c, "#rating")
        .await
        .select_by_value("5")
        .await
        .unwrap();
    t.click("form.filters button[type=submit]").await;
    until("the rating filter", || async {
        t.query().await.contains("rating=5")
    })
    .await;
    let five = t.text("body").await;
    assert!(five.contains("Sept secondes") && !five.contains("La guerre des Gaules"));
    assert_eq!(
        css(&t.c, "#rating")
            .await
            .prop("value")
            .await
            .unwrap()
            .as_deref(),
        Some("5"),
        "the choice stays selected"
    );
}

/// A file dropped on the upload zone becomes the form's file (the drop a user makes with
/// the mouse, dispatched as the browser would).
async fn drop_a_file(t: &Tab) {
    t.go("/import").await;
    let dropped =
        t.c.execute(
            r##"const dt = new DataTransfer();
               dt.items.add(new File(["Title,Author\n"], "dropped.csv", { type: "text/csv" }));
               document.querySelector("[data-dropzone]").dispatchEvent(
                 new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
               const files = document.querySelector("#files").files;
               return files.length === 1 ? files[0].name : null;"##,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(dropped.as_str(), Some("dropped.csv"));
    assert_eq!(t.text("[data-status]").await, "1 file(s) ready to import");
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

/// Hardcover linked with a pasted token, from its card; returns the connection's id.
async fn connect_hardcover(t: &Tab) -> i64 {
    t.go("/connections").await;
    t.type_into("#token-hardcover", "hc-test-token").await;
    t.click("#provider-hardcover form[action='/connections/connect'] button")
        .await;
    until("the connected card", || async {
        t.query().await.starts_with("connected=")
    })
    .await;
    let id = t.query().await["connected=".len()..].parse().unwrap();
    let card = t.text(&format!("#connection-{id}")).await;
    assert!(
        card.contains("Connected") && card.contains("reader"),
        "{card}"
    );
    id
}

/// Hardcover's books come in with a sync (run as the `connection.sync` job would run
/// it: no job runner in this test), then go again when it is disconnected choosing
/// "remove" on its card.
async fn sync_then_disconnect_removing_data(t: &Tab, app: &common::TestApp) {
    let id = connect_hardcover(t).await;
    let counts = app
        .state
        .connections
        .run_sync(bb_core::ids::ConnectionId(id))
        .await
        .unwrap();
    let user = app.state.library.user_id("alice").await.unwrap();
    let items = app.state.library.all_items(user).await.unwrap();
    assert!(!items.is_empty(), "the sync brought books: {counts:?}");
    t.go("/library").await;
    let library = t.text("body").await;
    let title = items[0]["title"].as_str().unwrap();
    assert!(library.contains(title), "{title} in {library}");

    t.go("/connections").await;
    let card = format!("#connection-{id}");
    t.click(&format!("{card} details:last-of-type summary"))
        .await;
    t.click(&format!("{card} input[name=data][value=delete]"))
        .await;
    t.click(&format!(
        "{card} form[action$='/disconnect'] button[type=submit]"
    ))
    .await;
    until("the disconnected notice", || async {
        t.query().await == "done=disconnected"
    })
    .await;
    assert!(t.c.find(Locator::Css(&card)).await.is_err(), "card gone");
    t.go("/library").await;
    let library = t.text("body").await;
    assert!(library.contains("Your library is empty"), "{library}");
}

/// Audible through its card: a marketplace, the sign-in link (the fake plays Amazon's
/// sign-in on it, as the user would in the new tab), the pasted landing address.
async fn connect_audible(t: &Tab, fake: &bb_testkit::audible::FakeAudible) {
    t.go("/connections").await;
    css(&t.c, "#market-audible")
        .await
        .select_by_value("uk")
        .await
        .unwrap();
    t.click("#provider-audible form[action='/connections/connect'] button[type=submit]")
        .await;
    until("the sign-in step", || async {
        t.try_text("h1").await == "Connect Audible"
    })
    .await;
    let steps = t.text("body").await;
    assert!(
        steps.contains("registers itself as a device on your account"),
        "{steps}"
    );
    t.shot("connect-audible").await;
    let link = css(&t.c, "a.button[target=_blank]")
        .await
        .attr("href")
        .await
        .unwrap()
        .unwrap();
    assert!(
        link.starts_with("https://www.amazon.co.uk/ap/signin?"),
        "{link}"
    );
    let landing = fake.sign_in(&link).unwrap();
    t.type_into("#landed", &landing).await;
    t.click("form[action$='/complete'] button[type=submit]")
        .await;
    until("the connected card", || async {
        t.query().await.starts_with("connected=")
    })
    .await;
    let card = t.text("#provider-audible .linked").await;
    assert!(
        card.contains("Connected") && card.contains("(United Kingdom)"),
        "{card}"
    );
}

/// A generic OAuth provider: the real `oidc-provider` peer's login and consent pages in
/// the browser, then back to bookbridge's callback.
async fn connect_oidc(t: &Tab) {
    t.go("/connections").await;
    t.click("#provider-oidc-peer form[action='/connections/connect'] button")
        .await;
    t.click("a.button.primary[rel=noreferrer]").await;
    // The peer's own (development) sign-in and consent pages.
    t.type_into("input[name=login]", "reader-1").await;
    t.type_into("input[name=password]", "any password").await;
    t.click("button[type=submit]").await;
    until("the consent page", || async {
        t.try_text("body").await.contains("Authorize")
    })
    .await;
    t.click("button[type=submit]").await;
    // The peer only accepts the redirect URI registered for it, on bookbridge's usual
    // public address 127.0.0.1:8080 (the app's `public_url` in these tests), while this
    // server listens on a free port: so the browser lands on 127.0.0.1:8080 (an error
    // page, or whatever else listens there), and the test carries that address's query —
    // code, state, iss — to this server's same callback path, which is what the browser
    // would have requested had bookbridge been on 8080. The session cookie is the same
    // either way (cookies ignore the port).
    until("the redirect to the registered callback", || async {
        let url = t.c.current_url().await.unwrap();
        url.as_str().starts_with(peer::REDIRECT_URI)
    })
    .await;
    let landed = t.c.current_url().await.unwrap();
    t.go(&format!(
        "/oauth/callback/oidc-peer?{}",
        landed.query().unwrap()
    ))
    .await;
    until("the connected card", || async {
        t.query().await.starts_with("connected=")
    })
    .await;
    let card = t.text("#provider-oidc-peer .linked").await;
    assert!(
        card.contains("Connected") && card.contains("reader-1"),
        "{card}"
    );
    // It brings an account, not books, and the card says so.
    let brings = t.text("#provider-oidc-peer > p").await;
    assert!(brings.starts_with("Brings: no books (yet)"), "{brings}");
}

/// The app with Hardcover and Audible on their fakes, and the peer as a generic OAuth
/// provider configured as `connections_api.rs` does.
async fn app_with_providers(
    peer: Option<&peer::Peer>,
) -> (
    common::TestApp,
    bb_testkit::hardcover::FakeHardcover,
    bb_testkit::audible::FakeAudible,
) {
    use bb_core::clock::Clock;
    // Uploads above 1 KiB become import jobs (the Goodreads fixture is 2.2 KiB).
    let mut app = common::app().await.with_inline_max(1024);
    let clock: Arc<dyn Clock> = app.clock.clone();
    let (hardcover, hardcover_fake) = hardcover_provider(&clock).await;
    let (audible, audible_fake) = audible_provider(&clock).await;
    let mut providers = vec![hardcover, audible];
    if let Some(peer) = peer {
        let config: bb_providers::oauth::OAuthProviderConfig =
            toml::from_str(&peer.config_toml(peer::BASIC_CLIENT, "client_secret_basic")).unwrap();
        let provider = bb_providers::oauth::OAuthProvider::from_config(config).unwrap();
        // The peer checks token lifetimes against real time.
        let client = bb_providers::oauth::OAuthClient::new(
            bb_providers::http::build_client(bb_providers::http::HttpSettings::default()).unwrap(),
            Arc::new(bb_core::clock::SystemClock),
        );
        providers.push(Arc::new(bb_providers::oauth::OAuthConnector::new(
            provider, client,
        )));
    }
    app.state.connections = common::connections_with(&app, &clock, providers);
    (app, hardcover_fake, audible_fake)
}

/// A token is shown once, then revoked; the activity page lists both, and the sync history
/// of each connection (`hardcover`: the linked Hardcover's id).
async fn tokens_and_activity(t: &Tab, app: &common::TestApp, hardcover: i64) {
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
    // Times in the browser's locale (en-GB here); the server's UTC text stays as the title.
    let time = css(&t.c, "time").await;
    let shown = time.text().await.unwrap();
    let fallback = time.attr("title").await.unwrap().unwrap_or_default();
    assert!(
        fallback.ends_with(" UTC") && !shown.ends_with(" UTC"),
        "{shown} / {fallback}"
    );
    let activity = t.text("body").await;
    assert!(activity.contains("Access token revoked") && activity.contains("Signed in"));
    // Each connection's sync history: the linked Hardcover's first sync ran (drained
    // before); the disconnected one's history stays, marked so.
    let history = t.text(&format!("#syncs-{hardcover}")).await;
    assert!(history.starts_with("Hardcover · reader\n"), "{history}");
    let runs = t.text(&format!("#syncs-{hardcover} tbody")).await;
    assert!(
        runs.contains("Finished") && runs.contains(" new, "),
        "{runs}"
    );
    let sections = t.text("section[aria-labelledby=syncs-h]").await;
    assert!(
        sections.contains("Hardcover · reader (disconnected)"),
        "{sections}"
    );
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
    // Hardcover and Audible point at their fakes; the OAuth peer is a real provider.
    let peer = peer::Peer::start().await;
    let (app, _hardcover, audible) = app_with_providers(peer.as_ref()).await;
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
    sync_then_disconnect_removing_data(&t, &app).await;
    import_goodreads(&t, &app).await;
    resolve_conflict(&t, &app).await;
    review_duplicate(&t, &app).await;
    undo_import(&t).await;
    let hardcover = connect_hardcover(&t).await;
    connect_audible(&t, &audible).await;
    if peer.is_some() {
        connect_oidc(&t).await;
    }
    // The first syncs the links queued run, as `serve`'s runner would run them.
    app.job_runner().drain().await.unwrap();
    t.go("/connections").await;
    t.shot("connections").await;
    tokens_and_activity(&t, &app, hardcover).await;
    covers_names_and_keyboard(&t, &app).await;

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
