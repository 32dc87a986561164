//! Test harness for the real OAuth peer: starts `node server.js` (panva/oidc-provider) on
//! loopback, and plays the user's browser through its own login and consent pages.
//!
//! Included by the `oauth_peer` test with `#[path]`. When `node` or this folder's
//! `node_modules` is missing the tests skip with a loud banner — unless
//! `BOOKBRIDGE_REQUIRE_PEERS=1`, which CI sets so a broken install cannot pass as a skip.

#![allow(dead_code)] // not every test uses every helper

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::header::LOCATION;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use url::Url;

/// Matches `CLIENT_SECRET` in server.js: `:`, `+` and `%` all need form-encoding in Basic auth.
pub const CLIENT_SECRET: &str = "peer:secret+with%25odd chars/ok?";
pub const BASIC_CLIENT: &str = "bookbridge-basic";
pub const POST_CLIENT: &str = "bookbridge-post";
pub const REDIRECT_URI: &str = "http://127.0.0.1:8080/oauth/callback/oidc-peer";

/// A running oidc-provider. Killed when dropped (and it exits by itself when our end of its
/// stdin closes, should this process die without running destructors).
pub struct Peer {
    child: Child,
    _stdin: ChildStdin,
    stderr: Arc<Mutex<String>>,
    pub issuer: String,
    pub metadata: Value,
    http: reqwest::Client,
}

/// This folder, found from the including test crate's manifest (bb-providers and bb-web
/// both include this file).
fn peer_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../bb-providers/tests/peers/oidc")
}

fn skip(reason: &str) -> Option<Peer> {
    assert!(
        std::env::var("BOOKBRIDGE_REQUIRE_PEERS").map_or(true, |v| v != "1"),
        "BOOKBRIDGE_REQUIRE_PEERS=1 but the OAuth peer is unavailable: {reason}"
    );
    eprintln!(
        "\n==================== SKIPPED ====================\n\
         OAuth peer test skipped: {reason}.\n\
         Install it with: npm ci --prefix crates/bb-providers/tests/peers/oidc\n\
         =================================================\n"
    );
    None
}

impl Peer {
    /// Starts a fresh provider on a free loopback port, or `None` (after a SKIPPED banner)
    /// when node or the package is not installed.
    pub async fn start() -> Option<Peer> {
        let dir = peer_dir();
        if !dir.join("node_modules/oidc-provider/package.json").exists() {
            return skip(&format!("{} has no node_modules", dir.display()));
        }
        let node_ok = Command::new("node")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success());
        if !node_ok {
            return skip("`node` is not on PATH");
        }

        let mut child = Command::new("node")
            .arg("server.js")
            .arg("0")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node server.js");
        let stdin = child.stdin.take().expect("stdin");
        let stderr = Arc::new(Mutex::new(String::new()));
        {
            let mut pipe = child.stderr.take().expect("stderr");
            let sink = Arc::clone(&stderr);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    sink.lock()
                        .unwrap()
                        .push_str(&String::from_utf8_lossy(&buf[..n]));
                }
            });
        }

        // Wait for the line the server prints once it accepts connections: no sleeping.
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = line.strip_prefix("OIDC_PEER_LISTENING port=") {
                    return port.trim().parse::<u16>().ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(port) = port else {
            let _ = child.start_kill();
            panic!(
                "oidc peer did not start; its stderr:\n{}",
                stderr.lock().unwrap()
            );
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let issuer = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let metadata: Value = http
            .get(format!("{issuer}/.well-known/openid-configuration"))
            .send()
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery json");
        assert_eq!(metadata["issuer"], issuer.as_str());
        Some(Peer {
            child,
            _stdin: stdin,
            stderr,
            issuer,
            metadata,
            http,
        })
    }

    /// An endpoint URL from the provider's discovery document.
    pub fn endpoint(&self, name: &str) -> String {
        self.metadata[name]
            .as_str()
            .unwrap_or_else(|| panic!("no {name} in discovery"))
            .to_owned()
    }

    /// The `[[oauth_provider]]` table bookbridge would be configured with for this peer.
    pub fn config_toml(&self, client_id: &str, method: &str) -> String {
        format!(
            r#"
            id = "oidc-peer"
            name = "OIDC peer"
            authorize_url = "{authorize}"
            token_url = "{token}"
            revocation_url = "{revocation}"
            userinfo_url = "{userinfo}"
            issuer = "{issuer}"
            authorization_response_iss_parameter_supported = true
            scopes = ["openid", "profile", "offline_access"]
            client_id = "{client_id}"
            client_secret = "{secret}"
            token_endpoint_auth_method = "{method}"

            [authorize_params]
            prompt = "consent"
            "#,
            authorize = self.endpoint("authorization_endpoint"),
            token = self.endpoint("token_endpoint"),
            revocation = self.endpoint("revocation_endpoint"),
            userinfo = self.endpoint("userinfo_endpoint"),
            issuer = self.issuer,
            secret = CLIENT_SECRET.replace('\\', "\\\\").replace('"', "\\\""),
        )
    }

    /// Plays the user's browser: follows the authorisation request through the provider's
    /// login and consent pages (plain HTTP with a cookie jar) until the provider redirects
    /// to `redirect_uri`, and returns that redirect's query string — what our callback
    /// handler would receive.
    pub async fn authorize_as(&self, authorize_url: &Url, login: &str) -> String {
        let browser = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let mut url = authorize_url.clone();
        let mut pending_post: Option<Vec<(&str, String)>> = None;
        for _ in 0..20 {
            let response = match pending_post.take() {
                Some(form) => browser.post(url.clone()).form(&form).send().await,
                None => browser.get(url.clone()).send().await,
            }
            .expect("browser request");
            let status = response.status();
            if status.is_redirection() {
                let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
                let next = url.join(&location).unwrap();
                if next.as_str().starts_with(REDIRECT_URI) {
                    return next.query().unwrap_or_default().to_owned();
                }
                url = next;
                continue;
            }
            let html = response.text().await.unwrap();
            assert!(
                status.is_success(),
                "provider page {url} said {status}: {html}"
            );
            // The dev interaction pages post back to the page's own URL with a `prompt` field.
            if html.contains(r#"name="prompt" value="login""#) {
                pending_post = Some(vec![
                    ("prompt", "login".into()),
                    ("login", login.into()),
                    ("password", "any password".into()),
                ]);
            } else if html.contains(r#"name="prompt" value="consent""#) {
                pending_post = Some(vec![("prompt", "consent".into())]);
            } else {
                panic!("unexpected provider page at {url}: {html}");
            }
        }
        panic!("the provider never redirected back to {REDIRECT_URI}");
    }

    /// RFC 7662 introspection, authenticated as `client_id`: is the token active?
    pub async fn is_active(&self, client_id: &str, token: &str) -> bool {
        let body: Value = self
            .http
            .post(self.endpoint("introspection_endpoint"))
            .basic_auth(form_encode(client_id), Some(form_encode(CLIENT_SECRET)))
            .form(&[("token", token)])
            .send()
            .await
            .expect("introspection")
            .json()
            .await
            .expect("introspection json");
        body["active"].as_bool().expect("active is a boolean")
    }

    /// What the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
