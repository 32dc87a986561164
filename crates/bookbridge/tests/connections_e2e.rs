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
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = dir.path().join("bookbridge.toml");
    std::fs::write(
        &config,
        format!(
            "[providers.hardcover]\nbase_url = \"{}\"\nburst = 100\nrequests_per_minute = 600\n",
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

    let providers = run_ok(c(&["providers"]), "");
    assert!(
        providers.contains("hardcover\tHardcover\tapi_token\tconfigured"),
        "{providers}"
    );

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
    let list: serde_json::Value = serde_json::from_str(&run_ok(
        c(&["connections", "--user", "alice", "--json"]),
        "",
    ))
    .unwrap();
    assert_eq!(list[0]["state"], "active");
    assert_eq!(list[0]["last_sync"]["status"], "succeeded", "{list} {out}");
    let library: serde_json::Value =
        serde_json::from_str(&run_ok(c(&["library", "--user", "alice", "--json"]), "")).unwrap();
    assert_eq!(library["items"].as_array().unwrap().len(), 7);

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
    let library: serde_json::Value =
        serde_json::from_str(&run_ok(c(&["library", "--user", "alice", "--json"]), "")).unwrap();
    assert_eq!(library["items"].as_array().unwrap().len(), 0);
    let list: serde_json::Value = serde_json::from_str(&run_ok(
        c(&["connections", "--user", "alice", "--json"]),
        "",
    ))
    .unwrap();
    assert_eq!(list[0]["state"], "disconnected");
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
