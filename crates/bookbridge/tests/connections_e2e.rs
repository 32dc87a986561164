//! Connections through the real binary: two `serve` processes sharing one PostgreSQL
//! refresh one OAuth connection (at the real `oidc-provider` peer, which rotates refresh
//! tokens and revokes the whole grant when one is used twice) 50 times concurrently; and
//! the CLI's `providers`, `connect`, `connections`, `sync` and `disconnect` against the
//! fake Hardcover, with `[providers.hardcover]` pointing at it from `bookbridge.toml`.

#![allow(clippy::unwrap_used, clippy::too_many_lines)]

#[path = "../../bb-providers/tests/peers/oidc/peer.rs"]
mod peer;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

const BIN: &str = env!("CARGO_BIN_EXE_bookbridge");

fn master_key() -> String {
    use base64::Engine as _;
    let bytes: [u8; 32] = std::array::from_fn(|i| u8::try_from(i * 7 % 251).unwrap());
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn cli(data_dir: &Path, config: &Path, db_url: Option<&str>, log: &str) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir")
        .arg(data_dir)
        .arg("--config")
        .arg(config);
    if let Some(url) = db_url {
        cmd.arg("--database-url").arg(url);
    }
    cmd.env_remove("BOOKBRIDGE_DATABASE_URL")
        .env_remove("BOOKBRIDGE_MASTER_KEY_FILE")
        .env("BOOKBRIDGE_MASTER_KEY", master_key())
        .env("BOOKBRIDGE_LOG", log);
    cmd
}

fn run(mut cmd: Command, stdin: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn run_ok(cmd: Command, stdin: &str) -> String {
    let (ok, out, err) = run(cmd, stdin);
    assert!(ok, "command failed: {err}");
    out
}

/// A data directory and `bookbridge.toml` for CLI runs, with the user `alice` added.
struct CliEnv {
    dir: tempfile::TempDir,
}

impl CliEnv {
    fn new(toml: &str) -> CliEnv {
        let env = CliEnv {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::write(env.config(), toml).unwrap();
        run_ok(env.cmd(&["user", "add", "alice"]), "a long passphrase\n");
        env
    }

    fn config(&self) -> std::path::PathBuf {
        self.dir.path().join("bookbridge.toml")
    }

    /// `bookbridge ARGS` on this directory and configuration, logging at debug.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = cli(&self.dir.path().join("data"), &self.config(), None, "debug");
        cmd.args(args);
        cmd
    }

    /// `bookbridge providers` lists `line`.
    fn assert_provider(&self, line: &str) {
        let providers = run_ok(self.cmd(&["providers"]), "");
        assert!(providers.contains(line), "{providers}");
    }

    /// `library --json` of `alice`.
    fn library(&self) -> Vec<serde_json::Value> {
        let out = run_ok(self.cmd(&["library", "--user", "alice", "--json"]), "");
        let library: serde_json::Value = serde_json::from_str(&out).unwrap();
        library["items"].as_array().unwrap().clone()
    }

    /// `connections --user alice --json`.
    fn connections(&self) -> serde_json::Value {
        let out = run_ok(self.cmd(&["connections", "--user", "alice", "--json"]), "");
        serde_json::from_str(&out).unwrap()
    }
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    async fn start(mut cmd: Command, log: &Path) -> Server {
        let mut child = cmd
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(log).unwrap()))
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .post(format!("{base}/api/session"))
        .json(&serde_json::json!({"username": "alice", "password": "a long passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn two_instances_refresh_one_rotating_connection_50_times_without_losing_the_grant() {
    let Some(pg) = bb_store::testing::postgres_base_url("two_instances_refresh_concurrently")
    else {
        return;
    };
    let Some(peer) = peer::Peer::start().await else {
        return;
    };
    let db = bb_store::testing::create_postgres_database(&pg)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bookbridge.toml");
    // The peer's table, nested under `[[oauth_provider]]` as an operator writes it.
    let provider = peer
        .config_toml(peer::BASIC_CLIENT, "client_secret_basic")
        .replace("[authorize_params]", "[oauth_provider.authorize_params]");
    std::fs::write(&config, format!("[[oauth_provider]]\n{provider}")).unwrap();
    let mut add = cli(&data, &config, Some(&db), "info");
    add.args(["user", "add", "alice"]);
    run_ok(add, "a long passphrase\n");
    let a = Server::start(
        cli(&data, &config, Some(&db), "debug"),
        &dir.path().join("a.log"),
    )
    .await;
    let b = Server::start(
        cli(&data, &config, Some(&db), "debug"),
        &dir.path().join("b.log"),
    )
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie_a = login(&http, &a.base).await;
    let cookie_b = login(&http, &b.base).await;

    // Connect through instance A; the provider's pages are played by the peer harness.
    let created: serde_json::Value = http
        .post(format!("{}/api/connections", a.base))
        .header("cookie", &cookie_a)
        .json(&serde_json::json!({"provider": "oidc-peer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_i64().unwrap();
    let url = url::Url::parse(created["authorize_url"].as_str().unwrap()).unwrap();
    let query = peer.authorize_as(&url, "reader-2").await;
    let r = http
        .get(format!("{}/oauth/callback/oidc-peer?{query}", a.base))
        .header("cookie", &cookie_a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        r.headers()["location"],
        format!("/connections?connected={id}").as_str()
    );

    // 50 forced refreshes at once, split across both instances.
    let http = Arc::new(http);
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (base, cookie) = if i % 2 == 0 {
            (a.base.clone(), cookie_a.clone())
        } else {
            (b.base.clone(), cookie_b.clone())
        };
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let r = http
                .post(format!("{base}/api/connections/{id}/refresh"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "a concurrent refresh failed: {body}");
    }
    // The grant survived: the connection is active and refreshes once more, on B.
    let view: serde_json::Value = http
        .post(format!("{}/api/connections/{id}/refresh", b.base))
        .header("cookie", &cookie_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(view["state"], "active", "{view}");

    // Disconnect from B revokes at the provider.
    let r: serde_json::Value = http
        .delete(format!("{}/api/connections/{id}?data=keep", b.base))
        .header("cookie", &cookie_b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["revoked"], true, "{r}");
    drop(a);
    drop(b);

    // Neither instance logged the authorization code or a session cookie.
    let code = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    for log in ["a.log", "b.log"] {
        let text = std::fs::read_to_string(dir.path().join(log)).unwrap();
        assert!(text.contains("refresh"), "{log} captured the flow");
        assert!(!text.contains(&code), "{log} holds the authorization code");
        let sid = cookie_a.split('=').nth(1).unwrap();
        assert!(!text.contains(sid), "{log} holds a session id");
    }
}

// Multi-threaded: the fake serves while the test blocks on the CLI child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_connects_syncs_and_disconnects_hardcover() {
    let clock: Arc<dyn bb_core::clock::Clock> = Arc::new(bb_core::clock::SystemClock);
    let fake =
        bb_testkit::hardcover::start(bb_testkit::hardcover::FakeHardcoverConfig::new(clock, 7))
            .await;
    let env = CliEnv::new(&format!(
        "[providers.hardcover]\nbase_url = \"{}\"\nburst = 100\nrequests_per_minute = 600\n",
        fake.base_url
    ));
    let c = |args: &[&str]| env.cmd(args);

    env.assert_provider("hardcover\tHardcover\tapi_token\tconfigured");

    // The token read from stdin (not the command line), with a pasted Bearer prefix.
    let (ok, out, err) = run(
        c(&["connect", "hardcover", "--user", "alice"]),
        "Bearer hc-test-token\n",
    );
    assert!(ok, "{err}");
    assert!(out.contains("active\treader"), "{out}");
    assert!(!out.contains("hc-test-token") && !err.contains("hc-test-token"));

    let (ok, out, err) = run(c(&["sync", "hardcover", "--user", "alice"]), "");
    assert!(ok, "{err}");
    assert!(!err.contains("hc-test-token"), "the token reached the log");
    let list = env.connections();
    assert_eq!(list[0]["state"], "active");
    assert_eq!(list[0]["last_sync"]["status"], "succeeded", "{list} {out}");
    assert_eq!(env.library().len(), 7);

    // Disconnect must say what happens to the data.
    let (ok, _, err) = run(c(&["disconnect", "hardcover", "--user", "alice"]), "");
    assert!(!ok && err.contains("--keep-data"), "{err}");
    let out = run_ok(
        c(&[
            "disconnect",
            "hardcover",
            "--user",
            "alice",
            "--delete-data",
        ]),
        "",
    );
    assert!(out.contains("cannot be told to revoke"), "{out}");
    assert_eq!(env.library().len(), 0);
    let list = env.connections();
    assert_eq!(list[0]["state"], "disconnected");
}

// Multi-threaded: the fake serves while the test blocks on the CLI child processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_connects_syncs_and_disconnects_an_openlibrary_feed() {
    let clock: Arc<dyn bb_core::clock::Clock> = Arc::new(bb_core::clock::SystemClock);
    let fake = bb_testkit::openlibrary::start(bb_testkit::openlibrary::FakeOpenLibraryConfig::new(
        clock, 9,
    ))
    .await;
    let env = CliEnv::new(&format!(
        "[providers.openlibrary]\nbase_url = \"{}\"\ncontact = \"ops@books.example\"\n",
        fake.base_url
    ));
    let c = |args: &[&str]| env.cmd(args);
    env.assert_provider("openlibrary\tOpen Library\tpublic_feed\tconfigured");

    // A private log is refused with what to do, and nothing is linked.
    let (ok, _, err) = run(
        c(&[
            "connect",
            "openlibrary",
            "--user",
            "alice",
            "--username",
            "hermit",
        ]),
        "",
    );
    assert!(!ok && err.contains("public reading log"), "{err}");
    let list = env.connections();
    assert_eq!(list, serde_json::json!([]));

    let out = run_ok(
        c(&[
            "connect",
            "openlibrary",
            "--user",
            "alice",
            "--username",
            "reader",
        ]),
        "",
    );
    assert!(out.contains("active\treader"), "{out}");
    let (ok, out, err) = run(c(&["sync", "openlibrary", "--user", "alice"]), "");
    assert!(ok, "{err}");
    let list = env.connections();
    assert_eq!(list[0]["last_sync"]["status"], "succeeded", "{list} {out}");
    assert_eq!(list[0]["last_sync"]["created"], 9, "{list}");
    assert_eq!(env.library().len(), 9);
    // The User-Agent names us and the contact from bookbridge.toml.
    assert!(fake.requests().iter().all(|r| {
        r.user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with("bookbridge/") && ua.contains("ops@books.example"))
    }));

    let out = run_ok(
        c(&[
            "disconnect",
            "openlibrary",
            "--user",
            "alice",
            "--delete-data",
        ]),
        "",
    );
    assert!(out.contains("its data was removed"), "{out}");
    assert_eq!(env.library().len(), 0);
}

/// A `serve` killed with SIGKILL while it syncs (against a slowed fake Open Library) leaves
/// a job whose lease stops being renewed; a second `serve` takes it over once the lease has
/// lapsed and finishes it: the right counts, every book once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_killed_mid_run_is_taken_over_and_finishes_without_duplicates() {
    const BOOKS: usize = 1_200; // 300 a shelf: three pages each, twelve requests a run
    let clock: Arc<dyn bb_core::clock::Clock> = Arc::new(bb_core::clock::SystemClock);
    let fake = bb_testkit::openlibrary::start(bb_testkit::openlibrary::FakeOpenLibraryConfig::new(
        clock, BOOKS,
    ))
    .await;
    fake.set_delay(std::time::Duration::from_millis(250));
    let env = CliEnv::new(&format!(
        "[serve]\njob_lease_secs = 2\n\n[providers.openlibrary]\nbase_url = \"{}\"\n\
         burst = 1000\nrequests_per_minute = 60000\n",
        fake.base_url
    ));
    let c = |args: &[&str]| env.cmd(args);
    // Linking queues the first sync; the first `serve` picks it up.
    run_ok(
        c(&[
            "connect",
            "openlibrary",
            "--user",
            "alice",
            "--username",
            "reader",
        ]),
        "",
    );
    let linked = fake.requests().len();
    let mut a = Server::start(c(&[]), &env.dir.path().join("a.log")).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_mins(2);
    while fake.requests().len() < linked + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the sync never started"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // SIGKILL: no shutdown, no cleanup; the lease simply stops being renewed.
    a.child.kill().unwrap();
    a.child.wait().unwrap();
    let before_b = fake.requests().len();
    assert!(
        before_b - linked < 12,
        "the first run finished before the kill"
    );

    let b = Server::start(c(&[]), &env.dir.path().join("b.log")).await;
    let http = reqwest::Client::new();
    let cookie = login(&http, &b.base).await;
    let connections: serde_json::Value = http
        .get(format!("{}/api/connections", b.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = connections[0]["id"].as_i64().unwrap();
    let runs = loop {
        let runs: serde_json::Value = http
            .get(format!("{}/api/connections/{id}/syncs", b.base))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if runs[0]["outcome"] == "succeeded" {
            break runs;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sync was not taken over: {runs}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    // One job, two attempts: the killed one and the takeover, which counted every book
    // once as new (the killed run had written nothing).
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert_eq!(runs[0]["job_id"], runs[1]["job_id"], "{runs:?}");
    assert_eq!(runs[0]["attempt"], 2, "{runs:?}");
    assert_eq!(runs[0]["created"], BOOKS, "{runs:?}");
    for field in ["updated", "unchanged", "removed", "failed"] {
        assert_eq!(runs[0][field], 0, "{field}: {runs:?}");
    }
    assert_eq!(
        fake.requests().len() - before_b,
        12,
        "the takeover read every page once"
    );
    drop(b);
    let items = env.library();
    assert_eq!(items.len(), BOOKS, "no book twice, none lost");
    let mut works: Vec<String> = items
        .iter()
        .map(|i| i["sources"][0]["external_id"].as_str().unwrap().to_owned())
        .collect();
    works.sort();
    works.dedup();
    assert_eq!(works.len(), BOOKS);
}

/// `bookbridge connect` for an OAuth provider, as desktop clients do it (RFC 8252): it
/// prints the authorize address, listens once on a loopback port, and completes the link
/// when the browser comes back there. The peer registers bookbridge as a native client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_connects_an_oauth_provider_through_a_loopback_listener() {
    let Some(peer) = peer::Peer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bookbridge.toml");
    let provider: String = peer
        .config_toml(peer::NATIVE_CLIENT, "none")
        .lines()
        .filter(|l| !l.trim_start().starts_with("client_secret ="))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("[authorize_params]", "[oauth_provider.authorize_params]");
    std::fs::write(&config, format!("[[oauth_provider]]\n{provider}")).unwrap();
    let c = |args: &[&str]| {
        let mut cmd = cli(&data, &config, None, "info");
        cmd.args(args);
        cmd
    };
    run_ok(c(&["user", "add", "alice"]), "a long passphrase\n");

    let mut child = c(&["connect", "oidc-peer", "--user", "alice"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (url_tx, url_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.trim_start().starts_with("http://") && line.contains("/auth") {
                url_tx.send(line.trim().to_owned()).unwrap();
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    let authorize = tokio::task::spawn_blocking(move || url_rx.recv().unwrap())
        .await
        .unwrap();
    let authorize = url::Url::parse(&authorize).unwrap();
    let redirect = authorize
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    // The provider's pages, then the browser lands on the CLI's loopback listener.
    let back = peer.authorize_to(&authorize, "reader-3", &redirect).await;
    assert!(back.as_str().starts_with(&redirect), "{back}");
    let page = reqwest::get(back.as_str())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("close this tab"), "{page}");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap())
        .await
        .unwrap();
    let out = reader.join().unwrap();
    assert!(status.success(), "connect failed: {out}");
    assert!(out.contains("oidc-peer\tactive\tReader reader-3"), "{out}");

    let list: serde_json::Value = serde_json::from_str(&run_ok(
        c(&["connections", "--user", "alice", "--json"]),
        "",
    ))
    .unwrap();
    assert_eq!(list[0]["state"], "active", "{list}");
    assert!(
        list[0]["scopes"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!("offline_access")),
        "{list}"
    );
    assert!(
        !list.to_string().contains("token\":"),
        "no token in the listing"
    );
}

/// `bookbridge connect audible --marketplace uk` prints Amazon's sign-in address, reads
/// the pasted landing address from stdin and registers the device; `bookbridge sync
/// audible` then reuses it with no sign-in; the device credentials are sealed on disk.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_connects_audible_by_pasting_the_landing_address_and_syncs() {
    let clock: Arc<dyn bb_core::clock::Clock> = Arc::new(bb_core::clock::SystemClock);
    let fake =
        bb_testkit::audible::start(bb_testkit::audible::FakeAudibleConfig::new(clock, 12)).await;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bookbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.audible]\nauth_base_url = \"{0}\"\napi_base_url = \"{0}\"\n",
            fake.base_url
        ),
    )
    .unwrap();
    let c = |args: &[&str]| {
        let mut cmd = cli(&data, &config, None, "debug");
        cmd.args(args);
        cmd
    };
    run_ok(c(&["user", "add", "alice"]), "a long passphrase\n");

    let mut child = c(&[
        "connect",
        "audible",
        "--user",
        "alice",
        "--marketplace",
        "uk",
    ])
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (url_tx, url_rx) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if line.trim_start().starts_with("https://") {
                url_tx.send(line.trim().to_owned()).unwrap();
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    });
    let sign_in = tokio::task::spawn_blocking(move || url_rx.recv().unwrap())
        .await
        .unwrap();
    assert!(
        sign_in.starts_with("https://www.amazon.co.uk/ap/signin?"),
        "{sign_in}"
    );
    let landing = fake.sign_in(&sign_in).unwrap();
    writeln!(stdin, "{landing}").unwrap();
    drop(stdin);
    let output = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let out = reader.join().unwrap();
    let err = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "connect failed: {out} {err}");
    assert!(out.contains("audible\tactive"), "{out}");
    assert!(
        out.contains("Amazon lists bookbridge among your devices"),
        "{out}"
    );
    assert_eq!(fake.active_devices(), 1);

    let (ok, _, err2) = run(c(&["sync", "audible", "--user", "alice"]), "");
    assert!(ok, "{err2}");
    let library: serde_json::Value =
        serde_json::from_str(&run_ok(c(&["library", "--user", "alice", "--json"]), "")).unwrap();
    assert!(
        library["items"].as_array().unwrap().len() >= 12,
        "{library}"
    );
    assert_eq!(fake.active_devices(), 1, "sync reused the device");

    // No device secret in any log line or in the database file.
    let creds = fake.register_bodies();
    assert_eq!(creds.len(), 1);
    let db = std::fs::read(data.join("bookbridge.db")).unwrap();
    for secret in fake.issued_secrets() {
        assert!(
            !err.contains(&secret) && !err2.contains(&secret),
            "a secret reached the log"
        );
        assert!(
            !db.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret is in the database file"
        );
    }
}
