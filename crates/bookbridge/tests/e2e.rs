//! The real binary, end to end: CLI creates a user, `serve` on port 0, sign in over HTTP,
//! a token from the CLI, `/api/me` both ways, restart, and everything is still there. Run
//! on SQLite and on PostgreSQL.

// Test helpers outside #[test] fns unwrap too: a failure there is a test failure.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_bookbridge");

fn cli(data_dir: &Path, db_url: Option<&str>) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(data_dir);
    if let Some(url) = db_url {
        cmd.arg("--database-url").arg(url);
    }
    // The parent's configuration must not leak in.
    cmd.env_remove("BOOKBRIDGE_MASTER_KEY")
        .env_remove("BOOKBRIDGE_MASTER_KEY_FILE")
        .env_remove("BOOKBRIDGE_DATABASE_URL")
        .env("BOOKBRIDGE_LOG", "info");
    cmd
}

/// `cli` with arguments, by value.
fn cli_args(data_dir: &Path, db_url: Option<&str>, args: &[&str]) -> Command {
    let mut cmd = cli(data_dir, db_url);
    cmd.args(args);
    cmd
}

fn run_ok(mut cmd: Command, stdin: &str) -> String {
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
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every audit event name in a data dir's SQLite database, oldest first.
async fn audit_events(data_dir: &Path) -> Vec<String> {
    let url = format!("sqlite://{}", data_dir.join("bookbridge.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let events = sqlx::query_scalar("SELECT event FROM audit_log ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    events
}

/// A fresh data directory (inside a temp dir that lives as long as the returned guard)
/// holding one user, `alice`, created through the CLI.
fn data_dir_with_alice() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    run_ok(
        cli_args(&data, None, &["user", "add", "alice"]),
        "a long passphrase\n",
    );
    (dir, data)
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    /// Starts `serve` on port 0 and waits for its "listening on" line, then for `/readyz`.
    async fn start(cmd: Command) -> Server {
        Self::start_logging(cmd, None).await
    }

    /// Like `start`, with the server's log (stderr) written to `log`.
    async fn start_logging(mut cmd: Command, log: Option<&Path>) -> Server {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).unwrap()),
            None => Stdio::null(),
        };
        let mut child = cmd
            .args(["serve", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::task::spawn_blocking(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            line
        })
        .await
        .unwrap();
        let base = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_owned();
        let ready = reqwest::get(format!("{base}/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200);
        Server { child, base }
    }

    /// SIGTERM, then the process must exit cleanly.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown exits 0, got {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

async fn login(client: &reqwest::Client, base: &str, password: &str) -> reqwest::Response {
    client
        .post(format!("{base}/api/session"))
        .json(&serde_json::json!({"username": "alice", "password": password}))
        .send()
        .await
        .unwrap()
}

async fn me(
    client: &reqwest::Client,
    base: &str,
    header: (&str, &str),
) -> (u16, serde_json::Value) {
    let r = client
        .get(format!("{base}/api/me"))
        .header(header.0, header.1)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or_default())
}

async fn full_flow(data_dir: &Path, db_url: Option<&str>) {
    let out = run_ok(
        cli_args(data_dir, db_url, &["user", "add", "alice"]),
        "a long passphrase\n",
    );
    assert!(out.is_empty(), "user add prints nothing on stdout: {out:?}");
    let users = run_ok(cli_args(data_dir, db_url, &["user", "list"]), "");
    assert!(users.starts_with("alice\t"), "{users}");

    let server = Server::start(cli(data_dir, db_url)).await;
    let client = reqwest::Client::new();
    assert_eq!(
        login(&client, &server.base, "wrong password")
            .await
            .status(),
        401
    );
    let ok = login(&client, &server.base, "a long passphrase").await;
    assert_eq!(ok.status(), 200);
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    let token = run_ok(
        cli_args(
            data_dir,
            db_url,
            &["token", "create", "--user", "alice", "--name", "e2e"],
        ),
        "",
    );
    let token = token.trim().to_owned();
    assert!(
        token.starts_with("bbpat_") && !token.contains(char::is_whitespace),
        "token alone on stdout: {token:?}"
    );
    let bearer = format!("Bearer {token}");

    let expected = serde_json::json!({"username": "alice"});
    assert_eq!(
        me(&client, &server.base, ("cookie", &cookie)).await,
        (200, expected.clone())
    );
    assert_eq!(
        me(&client, &server.base, ("authorization", &bearer)).await,
        (200, expected.clone())
    );
    assert_eq!(
        me(
            &client,
            &server.base,
            ("authorization", "Bearer bbpat_wrong")
        )
        .await
        .0,
        401
    );
    server.stop();

    // Restart: the user, the session and the token are all still there.
    let server = Server::start(cli(data_dir, db_url)).await;
    assert_eq!(
        me(&client, &server.base, ("cookie", &cookie)).await,
        (200, expected.clone())
    );
    assert_eq!(
        me(&client, &server.base, ("authorization", &bearer)).await,
        (200, expected)
    );
    assert_eq!(
        login(&client, &server.base, "a long passphrase")
            .await
            .status(),
        200
    );
    server.stop();

    let listed = run_ok(
        cli_args(data_dir, db_url, &["token", "list", "--user", "alice"]),
        "",
    );
    assert!(
        listed.contains("e2e") && listed.contains("last used"),
        "{listed}"
    );
    assert!(!listed.contains(&token));
    let audit = run_ok(
        cli_args(data_dir, db_url, &["audit", "--user", "alice"]),
        "",
    );
    for event in [
        "user_created",
        "login_failed",
        "login_succeeded",
        "token_created",
    ] {
        assert!(audit.contains(event), "audit lacks {event}: {audit}");
    }
}

#[tokio::test]
async fn sqlite_full_flow_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    full_flow(&data, None).await;
    let key = data.join("master.key");
    assert!(key.exists(), "master key created on first start");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}

#[tokio::test]
async fn postgres_full_flow_survives_restart() {
    let Some(base) = bb_store::testing::postgres_base_url("postgres_full_flow_survives_restart")
    else {
        return;
    };
    let url = bb_store::testing::create_postgres_database(&base)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    full_flow(&dir.path().join("data"), Some(&url)).await;
}

#[tokio::test]
async fn a_wrong_master_key_stops_start_up() {
    let (_dir, data) = data_dir_with_alice();
    // First start creates and registers the key file's key.
    Server::start(cli(&data, None)).await.stop();
    let other = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    let out = cli(&data, None)
        .env("BOOKBRIDGE_MASTER_KEY", other)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key check failed"), "{err}");
    assert!(!err.contains(other), "the key is never echoed");
}

#[test]
fn help_lists_every_subcommand_with_one_line() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for sub in [
        "serve", "migrate", "user", "token", "audit", "keys", "config",
    ] {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{sub} ")))
            .unwrap_or_else(|| panic!("{sub} missing:\n{help}"));
        assert!(
            line.split_whitespace().count() > 2,
            "{sub} has a description: {line}"
        );
    }
}

#[test]
fn config_example_and_unknown_keys() {
    let out = Command::new(BIN)
        .args(["config", "example"])
        .output()
        .unwrap();
    let example = String::from_utf8(out.stdout).unwrap();
    assert!(example.contains("bind = \"127.0.0.1:8080\""));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bookbridge.toml");
    std::fs::write(&file, "data_dri = \"x\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("--config")
        .arg(&file)
        .args(["user", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("data_dri"), "the unknown key is named: {err}");
    let out = Command::new(BIN)
        .env("BOOKBRIDGE_SERVE__BNID", "x")
        .args(["--data-dir", dir.path().to_str().unwrap(), "user", "list"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("bnid"));
}

#[test]
fn layering_env_file_and_flags() {
    // The file sets data_dir, the environment overrides it, the flag overrides both.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bookbridge.toml");
    std::fs::write(
        &file,
        format!(
            "data_dir = \"{}\"\n",
            dir.path().join("from-file").display()
        ),
    )
    .unwrap();
    let run = |env: Option<&Path>, flag: Option<&Path>| {
        let mut cmd = Command::new(BIN);
        cmd.arg("--config")
            .arg(&file)
            .env_remove("BOOKBRIDGE_DATA_DIR")
            .env_remove("BOOKBRIDGE_DATABASE_URL");
        if let Some(e) = env {
            cmd.env("BOOKBRIDGE_DATA_DIR", e);
        }
        if let Some(f) = flag {
            cmd.arg("--data-dir").arg(f);
        }
        let mut child = cmd
            .args(["user", "add", "bob"])
            .stdin(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(b"another passphrase\n")
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    run(None, None);
    assert!(dir.path().join("from-file/bookbridge.db").exists());
    run(Some(&dir.path().join("from-env")), None);
    assert!(dir.path().join("from-env/bookbridge.db").exists());
    run(
        Some(&dir.path().join("from-env2")),
        Some(&dir.path().join("from-flag")),
    );
    assert!(dir.path().join("from-flag/bookbridge.db").exists());
    assert!(!dir.path().join("from-env2").exists());
}

#[tokio::test]
async fn logs_hold_no_password_cookie_or_token() {
    let (dir, data) = data_dir_with_alice();
    let token = run_ok(
        cli_args(&data, None, &["token", "create", "--user", "alice"]),
        "",
    );
    let token = token.trim();
    let log = dir.path().join("serve.log");
    let mut cmd = cli(&data, None);
    cmd.env("BOOKBRIDGE_LOG", "debug");
    let server = Server::start_logging(cmd, Some(&log)).await;
    let client = reqwest::Client::new();
    let _ = login(&client, &server.base, "wrong passphrase").await;
    let ok = login(&client, &server.base, "a long passphrase").await;
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let session_id = cookie.split_once('=').unwrap().1.to_owned();
    let _ = me(&client, &server.base, ("cookie", &cookie)).await;
    let _ = me(
        &client,
        &server.base,
        ("authorization", &format!("Bearer {token}")),
    )
    .await;
    let _ = client
        .delete(format!("{}/api/session", server.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    server.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("/api/me"), "the log is real: {text}");
    for secret in [
        "a long passphrase",
        "wrong passphrase",
        session_id.as_str(),
        token,
    ] {
        assert!(!text.contains(secret), "log leaks {secret:?}:\n{text}");
    }
}

/// `import` prints its summary, the library lists what it brought, and the command leaves
/// the SQLite library in its one file: the write-ahead log is folded in when the command
/// closes the database, so copying `bookbridge.db` alone copies everything.
#[test]
fn a_cli_import_leaves_the_library_in_one_file() {
    let (_dir, data) = data_dir_with_alice();
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/real/goodreads/goodreads_library_export-2022.csv"
    );
    let out = run_ok(
        cli_args(&data, None, &["import", "--user", "alice", "--json", file]),
        "",
    );
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    let rows = summary["rows"].as_u64().unwrap();
    assert!(rows > 0, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(data.join("bookbridge.db").exists());
    assert!(
        !data.join("bookbridge.db-wal").exists(),
        "the write-ahead log outlived the command"
    );
    let listed: serde_json::Value = serde_json::from_str(&run_ok(
        cli_args(&data, None, &["library", "--user", "alice", "--json"]),
        "",
    ))
    .unwrap();
    let created = summary["created"].as_u64().unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len() as u64, created);
    assert!(!data.join("bookbridge.db-wal").exists());
}

#[tokio::test]
async fn passwd_and_delete_from_the_cli() {
    let (_dir, data) = data_dir_with_alice();
    let short = cli_args(&data, None, &["user", "add", "bob"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut short = short;
    short.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = short.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8 characters"));

    let server = Server::start(cli(&data, None)).await;
    let client = reqwest::Client::new();
    let ok = login(&client, &server.base, "a long passphrase").await;
    let cookie = ok.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    run_ok(
        cli_args(&data, None, &["user", "passwd", "alice"]),
        "the new passphrase\n",
    );
    assert_eq!(
        me(&client, &server.base, ("cookie", &cookie)).await.0,
        401,
        "sessions end on a password change"
    );
    assert_eq!(
        login(&client, &server.base, "a long passphrase")
            .await
            .status(),
        401
    );
    assert_eq!(
        login(&client, &server.base, "the new passphrase")
            .await
            .status(),
        200
    );
    run_ok(cli_args(&data, None, &["user", "delete", "alice"]), "");
    assert_eq!(
        login(&client, &server.base, "the new passphrase")
            .await
            .status(),
        401
    );
    server.stop();
    assert_eq!(run_ok(cli_args(&data, None, &["user", "list"]), ""), "");
    let events = audit_events(&data).await;
    assert!(events.iter().any(|e| e == "password_changed"), "{events:?}");
    assert!(events.iter().any(|e| e == "user_deleted"), "{events:?}");
}

#[tokio::test]
async fn keys_rotate_status_and_retire_from_the_cli() {
    let (_dir, data) = data_dir_with_alice();
    Server::start(cli(&data, None)).await.stop();
    let key_file = data.join("master.key");
    let before = std::fs::read_to_string(&key_file).unwrap();
    let refused = cli_args(&data, None, &["keys", "retire", "1"])
        .output()
        .unwrap();
    assert!(!refused.status.success(), "the primary cannot be retired");

    let out = run_ok(cli_args(&data, None, &["keys", "rotate"]), "");
    assert!(out.contains("version 2"), "{out}");
    let after = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(
        after
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count(),
        2,
        "new key appended"
    );
    assert!(
        after.contains(
            before
                .lines()
                .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                .unwrap()
        )
    );
    let status = run_ok(cli_args(&data, None, &["keys", "status"]), "");
    assert!(status.contains("version 2\tprimary"), "{status}");
    // Version 1 now wraps nothing and is not primary: it can go.
    run_ok(cli_args(&data, None, &["keys", "retire", "1"]), "");
    let status = run_ok(cli_args(&data, None, &["keys", "status"]), "");
    assert!(status.contains("version 1\tretired"), "{status}");
    let system = run_ok(cli_args(&data, None, &["audit"]), "");
    assert!(
        system.contains("key_rotated") && system.contains("key_retired"),
        "{system}"
    );
    let alices = run_ok(cli_args(&data, None, &["audit", "--user", "alice"]), "");
    assert!(
        !alices.contains("key_rotated"),
        "system events are not a user's: {alices}"
    );
    // The server still starts and serves.
    let server = Server::start(cli(&data, None)).await;
    let client = reqwest::Client::new();
    assert_eq!(
        login(&client, &server.base, "a long passphrase")
            .await
            .status(),
        200
    );
    server.stop();
}

#[tokio::test]
async fn a_lost_key_file_never_means_plaintext() {
    // The database knows a master key; a fresh key made in place of a lost file must be
    // refused, not silently used.
    let (_dir, data) = data_dir_with_alice();
    Server::start(cli(&data, None)).await.stop();
    std::fs::remove_file(data.join("master.key")).unwrap();
    let out = cli_args(&data, None, &["serve", "--bind", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("key check failed"));
}

/// `serve` runs the import job: an upload above the inline limit answers 202 and is
/// imported in the background; a server stopped before it ran picks the job up on start.
#[tokio::test]
async fn serve_imports_a_large_upload_as_a_background_job() {
    let (_dir, data) = data_dir_with_alice();
    let token = run_ok(
        cli_args(
            &data,
            None,
            &["token", "create", "--user", "alice", "--name", "e2e"],
        ),
        "",
    );
    let auth = format!("Bearer {}", token.trim());
    let file = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/real/goodreads/goodreads_library_export-2022.csv"
    ))
    .unwrap();
    let boundary = "e2e-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"gr.csv\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());

    let serve = || {
        let mut cmd = cli(&data, None);
        cmd.env("BOOKBRIDGE_SERVE__IMPORT_INLINE_MAX_BYTES", "1024");
        cmd
    };
    let client = reqwest::Client::new();
    let server = Server::start(serve()).await;
    let queued = client
        .post(format!("{}/api/imports", server.base))
        .header("authorization", &auth)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(queued.status(), 202);
    let queued: serde_json::Value = queued.json().await.unwrap();
    let id = queued["id"].as_i64().unwrap();
    // Stopped at once: the job may or may not have run; a restart must finish it.
    server.stop();
    let server = Server::start(serve()).await;
    let url = format!("{}/api/imports/{id}", server.base);
    let mut status = serde_json::Value::Null;
    // The runner polls every second; give it a generous bound, checking as it goes.
    for _ in 0..300 {
        status = client
            .get(&url)
            .header("authorization", &auth)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["state"] == "done" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(status["state"], "done", "{status}");
    assert_eq!(status["progress"]["job_state"], "succeeded", "{status}");
    assert_eq!(status["failed"], 0, "{status}");
    assert!(status["created"].as_u64().unwrap() > 0, "{status}");
    assert_eq!(status["progress"]["rows_total"], status["rows"]);
    server.stop();
}
