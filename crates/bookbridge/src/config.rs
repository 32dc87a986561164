//! Configuration, loaded once: defaults → `bookbridge.toml` (`--config`) → `BOOKBRIDGE_*`
//! environment (`__` nests: `BOOKBRIDGE_SERVE__BIND`) → command-line flags. This is the only
//! module that reads the environment. Unknown keys are an error naming the key.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where bookbridge keeps its files (the SQLite database, the master key).
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default `sqlite://<data_dir>/bookbridge.db`.
    pub database_url: Option<String>,
    /// The address browsers use to reach bookbridge; the base of every redirect URI.
    /// `https://…` turns on Secure cookies and HSTS.
    pub public_url: url::Url,
    /// One or more base64 master keys, comma-separated. Prefer `master_key_file`.
    #[serde(skip_serializing)]
    pub master_key: Option<SecretString>,
    /// A file with one base64 master key per line; default `<data_dir>/master.key`,
    /// created on first start.
    pub master_key_file: Option<PathBuf>,
    /// Log filter, as for `RUST_LOG` (`info`, `bookbridge=debug,info`, …).
    pub log: String,
    /// `text` or `json`.
    pub log_format: LogFormat,
    pub serve: ServeConfig,
    pub session: SessionConfig,
    pub login: LoginConfig,
    pub connections: ConnectionsSettings,
    pub providers: ProvidersConfig,
    /// Generic OAuth 2 providers (`[[oauth_provider]]` tables). Holds client secrets:
    /// never serialised.
    #[serde(skip_serializing)]
    pub oauth_provider: Vec<bb_providers::oauth::OAuthProviderConfig>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConnectionsSettings {
    /// Refresh access tokens this many seconds before they expire.
    pub refresh_margin_secs: u64,
    /// Refresh credentials unused for this many hours (keeps refresh tokens alive).
    pub keepalive_hours: u64,
    /// Hours between scheduled syncs of each connection.
    pub sync_interval_hours: u64,
    /// Connect attempts allowed per user and provider per hour.
    pub connect_attempts_per_hour: u32,
    /// Manual syncs allowed per user per day.
    pub manual_syncs_per_day: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    pub hardcover: HardcoverSettings,
    pub audible: AudibleSettings,
    pub openlibrary: OpenLibrarySettings,
}

/// Open Library's public reading logs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpenLibrarySettings {
    /// The site root; point it elsewhere for a mirror or a test server.
    pub base_url: String,
    /// Where cover images are linked from.
    pub covers_url: String,
    /// An e-mail address or URL Open Library can reach this instance's operator at; it
    /// goes in the `User-Agent`, as Open Library asks of every client.
    pub contact: String,
    /// Requests sent at once before the per-minute rate applies, shared by every
    /// connection and instance.
    pub burst: u32,
    pub requests_per_minute: u32,
}

impl Default for OpenLibrarySettings {
    fn default() -> Self {
        let limit = bb_providers::openlibrary::provider::RATE_LIMIT;
        Self {
            base_url: bb_providers::openlibrary::client::DEFAULT_BASE_URL.into(),
            covers_url: bb_providers::openlibrary::mapping::DEFAULT_COVERS_URL.into(),
            contact: String::new(),
            burst: limit.capacity,
            requests_per_minute: limit.per_minute,
        }
    }
}

/// Audible's hosts follow the marketplace; these replace them (tests, unusual setups).
/// The sign-in address given to the user always stays Amazon's own.
#[derive(Debug, Clone, Deserialize, Serialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AudibleSettings {
    /// Instead of `https://api.amazon.{tld}` (register, token, deregister).
    pub auth_base_url: Option<String>,
    /// Instead of `https://api.audible.{tld}` (library, positions, stats, wishlist).
    pub api_base_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HardcoverSettings {
    /// The API root; point it elsewhere for a mirror or a test server.
    pub base_url: String,
    /// Requests sent at once before the per-minute rate applies, shared by every
    /// connection and instance.
    pub burst: u32,
    pub requests_per_minute: u32,
}

impl Default for ConnectionsSettings {
    fn default() -> Self {
        Self {
            refresh_margin_secs: 300,
            keepalive_hours: 24 * 7,
            sync_interval_hours: 12,
            connect_attempts_per_hour: 5,
            manual_syncs_per_day: 30,
        }
    }
}

impl Default for HardcoverSettings {
    fn default() -> Self {
        Self {
            base_url: bb_providers::hardcover::client::DEFAULT_BASE_URL.into(),
            burst: 10,
            requests_per_minute: 50,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServeConfig {
    /// Address and port to listen on.
    pub bind: SocketAddr,
    /// Uploads larger than this are stored and imported by a background job.
    pub import_inline_max_bytes: usize,
    /// How long a background job's claim lasts without renewal: the job of an instance
    /// that died mid-run is taken over by another once this has passed.
    pub job_lease_secs: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused this long ends.
    pub idle_minutes: i64,
    /// A session ends this long after sign-in, used or not.
    pub absolute_hours: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed sign-ins allowed per account per window before answering 429.
    pub failures_per_account: i64,
    /// Failed sign-ins allowed per client IP per window before answering 429.
    pub failures_per_ip: i64,
    pub window_minutes: i64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: url::Url::parse("http://127.0.0.1:8080").unwrap_or_else(|_| unreachable!()),
            master_key: None,
            master_key_file: None,
            log: "info".into(),
            log_format: LogFormat::Text,
            serve: ServeConfig::default(),
            session: SessionConfig::default(),
            login: LoginConfig::default(),
            connections: ConnectionsSettings::default(),
            providers: ProvidersConfig::default(),
            oauth_provider: Vec::new(),
        }
    }
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            import_inline_max_bytes: 2 << 20,
            job_lease_secs: 300,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_minutes: 12 * 60,
            absolute_hours: 30 * 24,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            failures_per_account: 10,
            failures_per_ip: 50,
            window_minutes: 15,
        }
    }
}

/// Values given on the command line; they override everything else.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serve: Option<ServeOverride>,
}

#[derive(Debug, Serialize)]
pub struct ServeOverride {
    pub bind: SocketAddr,
}

/// Environment variables with the prefix that are not configuration: the test suite's.
const NOT_CONFIG: &[&str] = &["test_postgres_url", "require_peers"];

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, String> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            if !path.exists() {
                return Err(format!("config file {} does not exist", path.display()));
            }
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment
            .merge(
                Env::prefixed("BOOKBRIDGE_")
                    .filter(|k| !NOT_CONFIG.contains(&k.as_str().to_ascii_lowercase().as_str()))
                    .split("__"),
            )
            .merge(Serialized::defaults(overrides));
        figment.extract().map_err(|e| describe(&e))
    }

    pub fn database_url(&self) -> String {
        self.database_url.clone().unwrap_or_else(|| {
            format!("sqlite://{}", self.data_dir.join("bookbridge.db").display())
        })
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// figment's errors name the key and where it came from; keep that and drop the rest.
fn describe(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
        .map(|err| {
            let source = err
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            let key = if err.path.is_empty() {
                String::new()
            } else {
                format!(" at `{}`", err.path.join("."))
            };
            format!("configuration error{key}: {}{source}", err.kind)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `bookbridge config example`: every option with its default and meaning.
pub const EXAMPLE: &str = r#"# bookbridge.toml — every option, with its default. Pass with --config FILE.
# Each option can also be set in the environment: BOOKBRIDGE_<KEY>, with __ for nesting
# (BOOKBRIDGE_SERVE__BIND=0.0.0.0:8080). Command-line flags override both.

# Where bookbridge keeps its files (the SQLite database, the master key). Flag: --data-dir.
data_dir = "./data"

# sqlite://PATH or postgres://USER@HOST/DB. Default: sqlite://<data_dir>/bookbridge.db.
# Flag: --database-url.
# database_url = "postgres://bookbridge@127.0.0.1:5432/bookbridge"

# The address browsers use to reach bookbridge; the base of every OAuth redirect URI.
# https:// turns on Secure cookies with the __Host- prefix, and HSTS.
public_url = "http://127.0.0.1:8080"

# Master key(s) that encrypt every stored credential: one or more base64 32-byte keys,
# comma-separated. Set it in the environment (BOOKBRIDGE_MASTER_KEY), never in this file.
# master_key = "…"

# A file with one base64 master key per line (mode 0600). Default: <data_dir>/master.key,
# created on first start when no key is given.
# master_key_file = "/run/secrets/bookbridge-master-key"

# Log filter, as for RUST_LOG.
log = "info"

# "text" or "json".
log_format = "text"

[serve]
# Address and port to listen on. Flag: serve --bind.
bind = "127.0.0.1:8080"
# Uploads to POST /api/imports larger than this many bytes are stored in the database and
# imported by a background job (202; progress at GET /api/imports/{id}); smaller ones are
# imported during the request.
import_inline_max_bytes = 2097152
# A background job (sync, import, write-back) is claimed for this many seconds and the
# claim renewed while it runs; if the instance dies mid-run, another one (or this one,
# restarted) takes the job over once the claim has lapsed.
job_lease_secs = 300

[session]
# A web session unused this long ends.
idle_minutes = 720
# A web session ends this long after sign-in, used or not.
absolute_hours = 720

[login]
# Failed sign-ins allowed per account, and per client IP, within window_minutes;
# further attempts get 429 with Retry-After until the window ends.
failures_per_account = 10
failures_per_ip = 50
window_minutes = 15

[connections]
# Refresh access tokens this many seconds before they expire.
refresh_margin_secs = 300
# Refresh credentials unused for this many hours, so refresh tokens that expire when
# idle stay alive.
keepalive_hours = 168
# Hours between scheduled syncs of each connection (a connection's own setting wins).
sync_interval_hours = 12
# Connect attempts per user and provider per hour, and manual syncs per user per day;
# more get 429 with Retry-After.
connect_attempts_per_hour = 5
manual_syncs_per_day = 30

[providers.hardcover]
# The Hardcover API root (tests and mirrors point it elsewhere).
base_url = "https://api.hardcover.app"
# Outbound budget shared by every connection and instance: a burst, then a steady rate.
# Hardcover allows 60 a minute with a burst of 10; 50 keeps any minute under 60.
burst = 10
requests_per_minute = 50

[providers.audible]
# Audible's hosts follow the marketplace the user picks; set these only to point
# bookbridge elsewhere (a test server). The sign-in address stays Amazon's own.
# auth_base_url = "http://127.0.0.1:9000"   # instead of https://api.amazon.{tld}
# api_base_url = "http://127.0.0.1:9000"    # instead of https://api.audible.{tld}

[providers.openlibrary]
# Open Library's site root and covers host (tests and mirrors point them elsewhere).
base_url = "https://openlibrary.org"
covers_url = "https://covers.openlibrary.org"
# How Open Library can reach whoever runs this instance (an e-mail address or a URL).
# It goes in the User-Agent, as Open Library asks of every client; set it.
contact = ""
# Outbound budget shared by every connection and instance. Open Library allows 180
# API requests a minute per IP; 100 leaves room for everything else on the address.
burst = 10
requests_per_minute = 100

# Generic OAuth 2 providers: adding one is configuration, not code. Repeat the table
# for each. Users connect at /connections; the redirect URI to register with the
# provider is <public_url>/oauth/callback/<id>.
# [[oauth_provider]]
# id = "example"                      # lowercase letters, digits, - and _
# name = "Example Books"
# authorize_url = "https://books.example/oauth/authorize"
# token_url = "https://books.example/oauth/token"
# revocation_url = "https://books.example/oauth/revoke"   # optional (RFC 7009)
# issuer = "https://books.example"    # optional; `iss` in the callback must equal it
# userinfo_url = "https://books.example/oauth/me"         # optional; names the account
# scopes = ["openid", "offline_access"]
# client_id = "bookbridge"
# client_secret_file = "/run/secrets/example"   # or client_secret; never logged
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_parses_to_the_defaults() {
        let from_example: Config = Figment::new()
            .merge(Toml::string(EXAMPLE))
            .extract()
            .expect("example parses");
        let defaults = Config::default();
        assert_eq!(
            serde_json::to_value(&from_example).unwrap(),
            serde_json::to_value(&defaults).unwrap()
        );
    }

    #[test]
    fn example_documents_every_option() {
        fn leaves(prefix: &str, v: &serde_json::Value, out: &mut Vec<String>) {
            if let serde_json::Value::Object(m) = v {
                for (k, v) in m {
                    leaves(k, v, out);
                }
            } else {
                out.push(prefix.to_owned());
            }
        }
        let mut keys = vec!["master_key".to_owned()];
        leaves(
            "",
            &serde_json::to_value(Config::default()).unwrap(),
            &mut keys,
        );
        for key in keys {
            assert!(
                EXAMPLE
                    .lines()
                    .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} ="))),
                "option {key} is missing from `config example`"
            );
        }
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[serve]\nbnid = \"0.0.0.0:1\"\n"))
            .extract::<Config>()
            .unwrap_err();
        let msg = describe(&err);
        assert!(msg.contains("bnid"), "{msg}");
    }
}
