//! A fake Audible/Amazon built from the protocol dossier (`shared/providers/audible.md`),
//! not from our client: the sign-in redirect (§2), `/auth/register` (§3, checking the body,
//! PKCE and single use of the code, issuing a real RSA key pair), `/auth/token` in both
//! answer shapes (§5), `/auth/deregister` (§6), and the API (§7–9) behind signature
//! verification (§4.1) or the `x-amz-access-token` header (§4.2).
//!
//! Tests steer it through hooks: queued failures (401, 403, 429 with `Retry-After`, the
//! HTML 503 page, garbage), the refresh answer shape, library changes and revocations, and
//! logs of requests and deregistration bodies. Where the dossier is unsure, the fake picks
//! the reading that is harder on a client and says so (look for "dossier unsure").

mod seed;
pub mod signature;

pub use seed::{asin, isbn, library_item, wishlist_product};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bb_core::clock::Clock;
use chrono::{DateTime, Duration, Utc};
use ring::digest::{SHA256, digest};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Key pairs the fake hands out at registration, generated once with `openssl genrsa`
/// (PKCS#1 PEM, as §3 documents) beside the PKCS#1 DER of their public halves.
const KEYS: [(&str, &[u8]); 3] = [
    (
        include_str!("keys/device1.pem"),
        include_bytes!("keys/device1.pub.der"),
    ),
    (
        include_str!("keys/device2.pem"),
        include_bytes!("keys/device2.pub.der"),
    ),
    (
        include_str!("keys/device3.pem"),
        include_bytes!("keys/device3.pub.der"),
    ),
];
/// One of the issued key pairs (PKCS#1 PEM, PKCS#1 DER of the public half), for tests that
/// need a fixed key: the golden signing vectors compare our signatures with the reference
/// client's for this key.
pub const FIXED_DEVICE_KEY: (&str, &[u8]) = KEYS[0];

/// A 1024-bit key, the size of the dossier's fixtures (§3: "do not assume a key size").
const LEGACY_KEY: (&str, &[u8]) = (
    include_str!("keys/legacy1024.pem"),
    include_bytes!("keys/legacy1024.pub.der"),
);

/// The first `State-Token`; later ones count up from it (13 digits, as observed).
const STATE_TOKEN_BASE: u64 = 1_714_567_890_123;
/// Response groups the fake knows (a subset of mkb79's list; anything else is the
/// documented 400).
const KNOWN_GROUPS: [&str; 22] = [
    "contributors",
    "product_attrs",
    "product_desc",
    "product_extended_attrs",
    "product_details",
    "media",
    "series",
    "rating",
    "provided_review",
    "percent_complete",
    "is_finished",
    "listening_status",
    "is_archived",
    "is_visible",
    "relationships",
    "category_ladders",
    "customer_rights",
    "origin_asin",
    "order_details",
    "sku",
    "price",
    "badge_types",
];

/// Which shape `/auth/token` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefreshShape {
    /// `{"access_token","token_type","expires_in":3600}`
    Classic,
    /// `{"actor_access_token","actor_refresh_token","expires_in":"3600"}` without
    /// `access_token` (§5, late 2025).
    Actor,
}

/// A canned failure for the next request, whatever it is.
#[derive(Debug, Clone)]
pub enum Failure {
    Unauthorized401,
    Forbidden403,
    /// 429 with `Retry-After: secs`.
    RateLimited(u64),
    /// 503 with the HTML "Website Temporarily Unavailable" page (§10).
    Html503,
    /// 500 with `{"message":"Whoops! …"}`.
    Json500,
    /// 200 with a body that is not JSON.
    Garbage,
}

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    Signed,
    AccessToken,
    Refused,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub method: String,
    /// The request target as received.
    pub target: String,
    pub status: u16,
    pub auth: AuthMode,
    /// Headers as received (tests look for secrets in them only to prove they were sent).
    pub headers: HeaderMap,
}

#[derive(Debug, Clone)]
pub struct FakeAudibleConfig {
    pub clock: Arc<dyn Clock>,
    /// Library size.
    pub titles: usize,
    pub wishlist: usize,
    /// Hand out the 1024-bit key instead of 2048-bit ones.
    pub legacy_1024_bit_keys: bool,
    pub customer_given_name: String,
}

impl FakeAudibleConfig {
    pub fn new(clock: Arc<dyn Clock>, titles: usize) -> Self {
        Self {
            clock,
            titles,
            wishlist: 7,
            legacy_1024_bit_keys: false,
            customer_given_name: "Anna".into(),
        }
    }
}

#[derive(Debug)]
struct Device {
    public_key_der: &'static [u8],
    deregistered: bool,
}

#[derive(Debug)]
struct PendingCode {
    challenge: String,
    client_id: String,
    used: bool,
    issued_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
struct Entry {
    item: Value,
    n: usize,
    version: u64,
    revoked: bool,
}

#[derive(Debug)]
struct Inner {
    codes: HashMap<String, PendingCode>,
    devices: HashMap<String, Device>,
    access_tokens: HashMap<String, (String, DateTime<Utc>)>,
    refresh_tokens: HashMap<String, String>,
    registrations: usize,
    library: Vec<Entry>,
    version: u64,
    positions: HashMap<String, (u64, String)>,
    finished_events: Vec<Value>,
    wishlist: Vec<Value>,
    failures: VecDeque<Failure>,
    /// Failures for one path only: (path, failure), served in order to requests on it.
    failures_on: VecDeque<(String, Failure)>,
    requests: Vec<RequestRecord>,
    register_bodies: Vec<Value>,
    deregister_bodies: Vec<Value>,
    refresh_shape: RefreshShape,
    counter: u64,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
    legacy_keys: bool,
    given_name: String,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake; stops when dropped.
pub struct FakeAudible {
    pub base_url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FakeAudible {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAudible")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Drop for FakeAudible {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds 127.0.0.1:0 and serves until dropped. One server plays both `api.amazon.{tld}`
/// and `api.audible.{tld}` (and the sign-in page), as the host overrides allow.
pub async fn start(config: FakeAudibleConfig) -> FakeAudible {
    let library = (0..config.titles)
        .map(|n| Entry {
            item: seed::library_item(n),
            n,
            version: 0,
            revoked: false,
        })
        .collect::<Vec<_>>();
    let positions = (0..config.titles)
        .filter(|n| n % 5 == 1 || n % 5 == 3 || n % 5 == 4)
        .map(|n| {
            // §8.1: both timestamp forms occur.
            let updated = if n % 2 == 0 {
                format!("2025-02-{:02} 20:14:07.512", 1 + n % 28)
            } else {
                format!("2025-02-{:02}T20:14:07.512Z", 1 + n % 28)
            };
            (seed::asin(n), (60_000 * (n as u64 + 1) + 500, updated))
        })
        .collect();
    let finished_events = (0..config.titles)
        .filter(|n| n % 5 == 2)
        .map(|n| {
            json!({"asin": seed::asin(n), "is_marked_as_finished": true,
                   "event_timestamp": format!("2024-{:02}-{:02}T21:05:00Z", 1 + n % 12, 1 + n % 28),
                   "update_date": null})
        })
        .collect();
    let shared = Shared {
        inner: Arc::new(Mutex::new(Inner {
            codes: HashMap::new(),
            devices: HashMap::new(),
            access_tokens: HashMap::new(),
            refresh_tokens: HashMap::new(),
            registrations: 0,
            library,
            version: 0,
            positions,
            finished_events,
            wishlist: (0..config.wishlist).map(seed::wishlist_product).collect(),
            failures: VecDeque::new(),
            failures_on: VecDeque::new(),
            requests: Vec::new(),
            register_bodies: Vec::new(),
            deregister_bodies: Vec::new(),
            refresh_shape: RefreshShape::Classic,
            counter: 0,
        })),
        clock: config.clock,
        legacy_keys: config.legacy_1024_bit_keys,
        given_name: config.customer_given_name,
    };
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Audible on loopback");
    let addr = listener.local_addr().expect("local address of the fake");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeAudible {
        base_url: format!("http://{addr}"),
        shared,
        task,
    }
}

impl FakeAudible {
    /// Queues failures, served one per request in order.
    pub fn fail_next(&self, failure: Failure) {
        self.shared.lock().failures.push_back(failure);
    }

    /// Queues a failure for the next request on `path` (such as `/1.0/wishlist`); other
    /// paths are served normally. Several queued for one path are served in order.
    pub fn fail_next_on(&self, path: &str, failure: Failure) {
        self.shared
            .lock()
            .failures_on
            .push_back((path.to_owned(), failure));
    }

    /// Requests received per path (query left out), failed ones included: what a sync
    /// cost, endpoint by endpoint.
    pub fn request_counts(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for r in &self.shared.lock().requests {
            let path = r
                .target
                .split_once('?')
                .map_or(r.target.as_str(), |(p, _)| p);
            *counts.entry(path.to_owned()).or_insert(0) += 1;
        }
        counts
    }

    pub fn set_refresh_shape(&self, shape: RefreshShape) {
        self.shared.lock().refresh_shape = shape;
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// Forgets the requests received so far (for counting one step's requests).
    pub fn reset_requests(&self) {
        self.shared.lock().requests.clear();
    }

    pub fn register_bodies(&self) -> Vec<Value> {
        self.shared.lock().register_bodies.clone()
    }

    /// Every `/auth/deregister` body received, refused ones included.
    pub fn deregister_bodies(&self) -> Vec<Value> {
        self.shared.lock().deregister_bodies.clone()
    }

    /// Devices registered and not deregistered.
    /// Every adp token, access token and refresh token handed out so far, for tests that
    /// scan logs and databases for secrets.
    pub fn issued_secrets(&self) -> Vec<String> {
        let inner = self
            .shared
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        inner
            .devices
            .keys()
            .chain(inner.access_tokens.keys())
            .chain(inner.refresh_tokens.keys())
            .cloned()
            .collect()
    }

    pub fn active_devices(&self) -> usize {
        self.shared
            .lock()
            .devices
            .values()
            .filter(|d| !d.deregistered)
            .count()
    }

    /// Deregisters every device as if the user removed it on Amazon's devices page.
    pub fn remove_all_devices_on_amazon(&self) {
        for d in self.shared.lock().devices.values_mut() {
            d.deregistered = true;
        }
    }

    /// Plays the user signing in: what Amazon's sign-in does with the `/ap/signin` URL the
    /// client built, ending in the maplanding address the browser shows.
    pub fn sign_in(&self, sign_in_url: &str) -> Result<String, String> {
        let url = url::Url::parse(sign_in_url).map_err(|e| e.to_string())?;
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        let need = |k: &str| q.get(k).cloned().ok_or(format!("missing {k}"));
        if need("openid.oa2.code_challenge_method")? != "S256"
            || need("openid.oa2.response_type")? != "code"
            || need("openid.oa2.scope")? != "device_auth_access"
            || need("openid.mode")? != "checkid_setup"
        {
            return Err("not an OAuth2-extension sign-in request".into());
        }
        let return_to = need("openid.return_to")?;
        if !return_to.ends_with("/ap/maplanding") {
            return Err("return_to is not maplanding".into());
        }
        let client_id = need("openid.oa2.client_id")?;
        let client_id = client_id
            .strip_prefix("device:")
            .ok_or("client_id without device: prefix")?
            .to_owned();
        let challenge = need("openid.oa2.code_challenge")?;
        let mut inner = self.shared.lock();
        inner.counter += 1;
        let code = format!("ANcode{:014}", inner.counter);
        inner.codes.insert(
            code.clone(),
            PendingCode {
                challenge,
                client_id,
                used: false,
                issued_at: self.shared.clock.now(),
            },
        );
        let assoc = need("openid.assoc_handle")?;
        Ok(format!(
            "{return_to}?openid.assoc_handle={assoc}&openid.mode=id_res\
             &openid.claimed_id=https%3A%2F%2Fwww.amazon.com%2Fap%2Fid%2Famzn1.account.AEXAMPLE\
             &openid.oa2.authorization_code={code}&openid.pape.auth_time=2026-11-21T10%3A00%3A00Z\
             &openid.return_to={}&openid.signed=assoc_handle%2Cclaimed_id&openid.sig=abc%3D",
            url::form_urlencoded::byte_serialize(return_to.as_bytes()).collect::<String>()
        ))
    }

    /// Changes a title (a new position in the listening state) so the next incremental
    /// sync returns it.
    pub fn touch(&self, n: usize, percent: f64) {
        let mut inner = self.shared.lock();
        inner.version += 1;
        let v = inner.version;
        if let Some(e) = inner.library.iter_mut().find(|e| e.n == n) {
            e.item["percent_complete"] = json!(percent);
            e.item["listening_status"]["percent_complete"] = json!(percent);
            e.version = v;
        }
    }

    /// Adds a new purchase.
    pub fn add_title(&self, n: usize) {
        let mut inner = self.shared.lock();
        inner.version += 1;
        let v = inner.version;
        inner.library.push(Entry {
            item: seed::library_item(n),
            n,
            version: v,
            revoked: false,
        });
    }

    /// Puts the `n`-th wishlist product on the wishlist (the wishlist has no versions: a
    /// client sees it by reading the wishlist again).
    pub fn wish(&self, n: usize) {
        self.shared.lock().wishlist.push(seed::wishlist_product(n));
    }

    /// Takes the product with `asin` off the wishlist.
    pub fn unwish(&self, asin: &str) {
        self.shared
            .lock()
            .wishlist
            .retain(|p| p["asin"].as_str() != Some(asin));
    }

    /// Returns a title (refund): it comes back `Revoked` in incremental syncs.
    pub fn revoke(&self, n: usize) {
        let mut inner = self.shared.lock();
        inner.version += 1;
        let v = inner.version;
        if let Some(e) = inner.library.iter_mut().find(|e| e.n == n) {
            e.revoked = true;
            e.version = v;
            e.item["status"] = json!("Revoked");
        }
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json;charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn auth_error() -> Response {
    json_response(
        StatusCode::UNAUTHORIZED,
        &json!({"message": "Request could not be authenticated"}),
    )
}

fn validation_error(what: &str) -> Response {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"message": format!("1 validation error detected: {what}")}),
    )
}

fn envelope_error(status: StatusCode, code: &str, message: &str) -> Response {
    json_response(
        status,
        &json!({"request_id": "1fba0c3e", "response": {"error": {"code": code, "index": "xYLIw==", "message": message}}}),
    )
}

fn failure_response(f: &Failure) -> Response {
    match f {
        Failure::Unauthorized401 => auth_error(),
        Failure::Forbidden403 => json_response(
            StatusCode::FORBIDDEN,
            &json!({"message": "Request could not be authenticated"}),
        ),
        Failure::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                (header::CONTENT_TYPE, "application/json".to_owned()),
                (header::RETRY_AFTER, secs.to_string()),
            ],
            json!({"message": "Rate exceeded"}).to_string(),
        )
            .into_response(),
        Failure::Html503 => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            "<!DOCTYPE html><html><head><title>Website Temporarily Unavailable</title></head>\
             <body><h1>Website Temporarily Unavailable</h1><p>We are performing scheduled \
             maintenance.</p></body></html>",
        )
            .into_response(),
        Failure::Json500 => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"message": "Whoops! Looks like something went wrong."}),
        ),
        Failure::Garbage => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            "{\"items\": [{\"asin\": ",
        )
            .into_response(),
    }
}

async fn handle(State(shared): State<Shared>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 4 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string);
    let failure = {
        let mut inner = shared.lock();
        let path = parts.uri.path();
        match inner.failures_on.iter().position(|(p, _)| p == path) {
            Some(i) => inner.failures_on.remove(i).map(|(_, f)| f),
            None => inner.failures.pop_front(),
        }
    };
    let (response, auth) = match failure {
        Some(f) => (failure_response(&f), AuthMode::None),
        None => route(&shared, &parts.method, &target, &parts.headers, &body),
    };
    shared.lock().requests.push(RequestRecord {
        method: parts.method.to_string(),
        target,
        status: response.status().as_u16(),
        auth,
        headers: parts.headers.clone(),
    });
    response
}

fn route(
    shared: &Shared,
    method: &Method,
    target: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> (Response, AuthMode) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let q: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    match (method.as_str(), path) {
        ("POST", "/auth/register") => (register(shared, body), AuthMode::None),
        ("POST", "/auth/token") => (refresh(shared, body), AuthMode::None),
        ("POST", "/auth/deregister") => deregister(shared, headers, body),
        ("GET", p) if p.starts_with("/1.0/") => {
            let auth = authenticate(shared, method.as_str(), target, headers, body);
            if auth == AuthMode::Refused {
                return (auth_error(), auth);
            }
            let response = match p {
                "/1.0/library" => library(shared, &q),
                "/1.0/annotations/lastpositions" => positions(shared, &q),
                "/1.0/stats/status/finished" => finished(shared, &q),
                "/1.0/wishlist" => wishlist(shared, &q),
                _ => json_response(StatusCode::NOT_FOUND, &json!({"message": "Not found"})),
            };
            (response, auth)
        }
        _ => (
            json_response(StatusCode::NOT_FOUND, &json!({"message": "Not found"})),
            AuthMode::None,
        ),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// §4.1 signing first; else §4.2 `x-amz-access-token`. `Authorization: Bearer` is refused
/// on the API since late 2025 (§4.2).
fn authenticate(
    shared: &Shared,
    method: &str,
    target: &str,
    headers: &HeaderMap,
    body: &Bytes,
) -> AuthMode {
    let now = shared.clock.now();
    let inner = shared.lock();
    if let Some(adp) = header_str(headers, "x-adp-token") {
        let Some(device) = inner.devices.get(adp).filter(|d| !d.deregistered) else {
            return AuthMode::Refused;
        };
        let checked = signature::verify(
            device.public_key_der,
            header_str(headers, "x-adp-alg"),
            header_str(headers, "x-adp-signature"),
            adp,
            method,
            target,
            body,
            now,
        );
        return if checked.is_ok() {
            AuthMode::Signed
        } else {
            AuthMode::Refused
        };
    }
    if let Some(token) = header_str(headers, "x-amz-access-token") {
        let valid = inner
            .access_tokens
            .get(token)
            .is_some_and(|(adp, expires)| {
                *expires > now && inner.devices.get(adp).is_some_and(|d| !d.deregistered)
            });
        return if valid {
            AuthMode::AccessToken
        } else {
            AuthMode::Refused
        };
    }
    AuthMode::Refused
}

fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest(&SHA256, verifier.as_bytes()))
}

/// The constant parts of the §3 body (iOS persona), field by field.
fn register_body_has_dossier_shape(v: &Value) -> bool {
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let expected_static = [
        ("/registration_data/domain", "Device"),
        ("/registration_data/app_version", "3.56.2"),
        ("/registration_data/device_type", "A2CZJZGLK2JJVM"),
        ("/registration_data/os_version", "15.0.0"),
        ("/registration_data/software_version", "35602678"),
        ("/registration_data/device_model", "iPhone"),
        ("/registration_data/app_name", "Audible"),
        (
            "/registration_data/device_name",
            "%FIRST_NAME%%FIRST_NAME_POSSESSIVE_STRING%%DUPE_STRATEGY_1ST%Audible for iPhone",
        ),
        ("/auth_data/code_algorithm", "SHA-256"),
        ("/auth_data/client_domain", "DeviceLegacy"),
    ];
    expected_static.iter().all(|(p, want)| s(p) == *want)
        && v["requested_token_type"]
            == json!([
                "bearer",
                "mac_dms",
                "website_cookies",
                "store_authentication_cookie"
            ])
        && v["requested_extensions"] == json!(["device_info", "customer_info"])
        && v["cookies"]["website_cookies"] == json!([])
        && s("/cookies/domain").starts_with(".amazon.")
}

/// Checks the §3 body field by field; a body that differs is the documented error envelope.
fn register(shared: &Shared, body: &Bytes) -> Response {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "The request body is not JSON.",
        );
    };
    let mut inner = shared.lock();
    inner.register_bodies.push(v.clone());
    let s = |p: &str| v.pointer(p).and_then(Value::as_str).unwrap_or_default();
    let shape_ok = register_body_has_dossier_shape(&v);
    if !shape_ok {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "The request is malformed.",
        );
    }
    let code = s("/auth_data/authorization_code").to_owned();
    let serial = s("/registration_data/device_serial").to_owned();
    let client_id = s("/auth_data/client_id").to_owned();
    let verifier = s("/auth_data/code_verifier").to_owned();
    let now = shared.clock.now();
    let Some(pending) = inner.codes.get_mut(&code) else {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "The authorization code is invalid.",
        );
    };
    // §2.4: single use and short-lived (minutes). Dossier unsure of the exact error: the
    // example for a stale code is `ServerError`, so that is what the fake answers.
    if pending.used || now - pending.issued_at > Duration::minutes(5) {
        pending.used = true;
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "ServerError",
            "The server has encountered a runtime error.",
        );
    }
    pending.used = true;
    let expected_client = hex_of(&format!("{serial}#A2CZJZGLK2JJVM"));
    if pending.client_id != client_id
        || client_id != expected_client
        || s256(&verifier) != pending.challenge
    {
        return envelope_error(
            StatusCode::BAD_REQUEST,
            "InvalidValue",
            "The client or verifier does not match the authorization.",
        );
    }
    issue_device(shared, &mut inner, &serial, now)
}

/// A new device: the next key pair, an adp token, tokens, and the §3 success answer with
/// the device name expanded as Amazon does ("Anna's 2nd Audible for iPhone").
fn issue_device(shared: &Shared, inner: &mut Inner, serial: &str, now: DateTime<Utc>) -> Response {
    inner.counter += 1;
    inner.registrations += 1;
    let k = inner.counter;
    let (pem, public) = if shared.legacy_keys {
        LEGACY_KEY
    } else {
        KEYS[inner.registrations % KEYS.len()]
    };
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let adp_token = format!(
        "{{enc:{}}}{{key:{}}}{{iv:{}}}{{name:{}}}{{serial:Mg==}}",
        b64(&format!("adp-enc-{k:06}")),
        b64(&format!("adp-key-{k:06}")),
        b64(&format!("adp-iv-{k:06}")),
        b64("ADPTokenEncryptionKey")
    );
    let access = format!("Atna|EwICIAccess{k:06}");
    let refresh = format!("Atnr|EwICIRefresh{k:06}");
    inner.devices.insert(
        adp_token.clone(),
        Device {
            public_key_der: public,
            deregistered: false,
        },
    );
    inner.access_tokens.insert(
        access.clone(),
        (adp_token.clone(), now + Duration::hours(1)),
    );
    inner
        .refresh_tokens
        .insert(refresh.clone(), adp_token.clone());
    let ordinal = match inner.registrations {
        1 => String::new(),
        2 => "2nd ".into(),
        3 => "3rd ".into(),
        n => format!("{n}th "),
    };
    let name = &shared.given_name;
    json_response(
        StatusCode::OK,
        &json!({"request_id": format!("6c1f{k:04}"), "response": {"success": {
            "tokens": {
                "bearer": {"access_token": access, "refresh_token": refresh, "expires_in": "3600"},
                "mac_dms": {"adp_token": adp_token, "device_private_key": pem},
                "website_cookies": [
                    {"Name": "session-id", "Value": "131-1234567-7654321", "Domain": ".amazon.com", "Path": "/", "Secure": "true", "HttpOnly": "false", "Expires": "01 Jan 2045 00:00:00 GMT"},
                    {"Name": "at-main", "Value": format!("\"Atza|IwEBCookie{k:06}\""), "Domain": ".amazon.com", "Path": "/", "Secure": "true", "HttpOnly": "true", "Expires": "01 Jan 2045 00:00:00 GMT"}
                ],
                "store_authentication_cookie": {"cookie": b64(&format!("store-cookie-{k:06}"))}
            },
            "extensions": {
                "device_info": {"device_name": format!("{name}'s {ordinal}Audible for iPhone"),
                                "device_serial_number": serial, "device_type": "A2CZJZGLK2JJVM"},
                "customer_info": {"account_pool": "Amazon", "user_id": "amzn1.account.AEXAMPLE",
                                  "home_region": "NA", "name": format!("{name} Example"), "given_name": name}
            }
        }}}),
    )
}

fn hex_of(s: &str) -> String {
    use std::fmt::Write as _;
    s.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// §5: a form body; the refresh token of a live device gives a new access token.
fn refresh(shared: &Shared, body: &Bytes) -> Response {
    let form: HashMap<String, String> = url::form_urlencoded::parse(body).into_owned().collect();
    let get = |k: &str| form.get(k).map_or("", String::as_str);
    if get("app_name") != "Audible"
        || get("source_token_type") != "refresh_token"
        || get("requested_token_type") != "access_token"
        || get("app_version").is_empty()
    {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_request", "error_description": "malformed token request"}),
        );
    }
    let now = shared.clock.now();
    let mut inner = shared.lock();
    let Some(adp) = inner.refresh_tokens.get(get("source_token")).cloned() else {
        return json_response(
            StatusCode::BAD_REQUEST,
            &json!({"error": "invalid_grant", "error_description": "The refresh token is invalid"}),
        );
    };
    if inner.devices.get(&adp).is_none_or(|d| d.deregistered) {
        // Dossier unsure of the body (§5): the fake uses the §3 envelope here, the OAuth
        // shape above, so clients must read both.
        return envelope_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "The device is not registered.",
        );
    }
    inner.counter += 1;
    let k = inner.counter;
    let access = format!("Atna|EwICIAccess{k:06}");
    inner
        .access_tokens
        .insert(access.clone(), (adp.clone(), now + Duration::hours(1)));
    let body = match inner.refresh_shape {
        RefreshShape::Classic => {
            json!({"access_token": access, "token_type": "bearer", "expires_in": 3600})
        }
        RefreshShape::Actor => {
            let rt = format!("Atnr|EwICIActorRefresh{k:06}");
            inner.refresh_tokens.insert(rt.clone(), adp);
            json!({"actor_access_token": access, "actor_refresh_token": rt, "token_type": "bearer", "expires_in": "3600"})
        }
    };
    json_response(StatusCode::OK, &body)
}

/// §6: needs the access token; refuses anything but `deregister_all_existing_accounts:
/// false`. After success every credential but the current access token is dead.
fn deregister(shared: &Shared, headers: &HeaderMap, body: &Bytes) -> (Response, AuthMode) {
    let now = shared.clock.now();
    let mut inner = shared.lock();
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    inner.deregister_bodies.push(v.clone());
    let token = header_str(headers, "x-amz-access-token")
        .or_else(|| header_str(headers, "authorization").and_then(|h| h.strip_prefix("Bearer ")));
    let Some((adp, _)) = token
        .and_then(|t| inner.access_tokens.get(t))
        .filter(|(_, exp)| *exp > now)
        .cloned()
    else {
        return (auth_error(), AuthMode::Refused);
    };
    if v != json!({"deregister_all_existing_accounts": false}) {
        return (
            envelope_error(
                StatusCode::BAD_REQUEST,
                "InvalidValue",
                "The fake refuses anything but deregistering this one device.",
            ),
            AuthMode::AccessToken,
        );
    }
    let Some(device) = inner.devices.get_mut(&adp).filter(|d| !d.deregistered) else {
        return (auth_error(), AuthMode::Refused);
    };
    device.deregistered = true;
    inner.refresh_tokens.retain(|_, a| *a != adp);
    (
        json_response(
            StatusCode::OK,
            &json!({"request_id": "d3r3g", "response": {"success": {}}}),
        ),
        AuthMode::AccessToken,
    )
}

/// Which response group each field belongs to (fields not listed are always returned).
fn group_of(field: &str) -> Option<&'static str> {
    Some(match field {
        "authors" | "narrators" => "contributors",
        "title"
        | "subtitle"
        | "release_date"
        | "runtime_length_min"
        | "language"
        | "publisher_name"
        | "format_type"
        | "content_delivery_type" => "product_attrs",
        "isbn" => "product_details",
        "product_images" => "media",
        "series" => "series",
        "rating" => "rating",
        "provided_review" => "provided_review",
        "percent_complete" => "percent_complete",
        "is_finished" => "is_finished",
        "listening_status" => "listening_status",
        _ => return None,
    })
}

/// Keeps the fields of the requested groups; `provided_review` is null unless `rating`
/// is requested too (§7).
fn shape_item(item: &Value, n: usize, groups: &HashSet<&str>, sizes: &[u32]) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(o) = item.as_object() {
        for (k, v) in o {
            match group_of(k) {
                Some(g) if !groups.contains(g) => {}
                Some("provided_review") if !groups.contains("rating") => {
                    out.insert(k.clone(), Value::Null);
                }
                _ => {
                    out.insert(k.clone(), v.clone());
                }
            }
        }
    }
    if groups.contains("media") {
        out.insert("product_images".into(), seed::product_images(n, sizes));
    }
    Value::Object(out)
}

/// The requested groups, or the documented 400 for an unknown one.
fn parse_groups(q: &HashMap<String, String>) -> Result<HashSet<&'static str>, String> {
    let mut groups = HashSet::new();
    for g in q
        .get("response_groups")
        .map_or("", String::as_str)
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
    {
        match KNOWN_GROUPS.iter().find(|k| **k == g) {
            Some(k) => {
                groups.insert(*k);
            }
            None => return Err(format!("Invalid response group: {g}")),
        }
    }
    Ok(groups)
}

fn number(q: &HashMap<String, String>, key: &str, default: usize) -> Result<usize, String> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v.parse().map_err(|_| {
            format!("Value '{v}' at '{key}' failed to satisfy constraint: Member must be a number")
        }),
    }
}

/// §7: 1-based pages of at most 1000, `Total-Count`, `State-Token`, revoked items in
/// incremental answers.
fn library(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let groups = match parse_groups(q) {
        Ok(g) => g,
        Err(message) => {
            return json_response(StatusCode::BAD_REQUEST, &json!({"message": message}));
        }
    };
    let (num, page) = match (number(q, "num_results", 50), number(q, "page", 1)) {
        (Ok(n), Ok(p)) => (n, p),
        (Err(m), _) | (_, Err(m)) => return validation_error(&m),
    };
    if !(1..=1000).contains(&num) || page == 0 {
        return validation_error(&format!(
            "Value '{num}' at 'numResults' failed to satisfy constraint: Member must have value between 1 and 1000"
        ));
    }
    let sizes: Vec<u32> = q
        .get("image_sizes")
        .map_or("500", String::as_str)
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let inner = shared.lock();
    let since = match q.get("state_token") {
        None => None,
        Some(t) => match t
            .parse::<u64>()
            .ok()
            .and_then(|t| t.checked_sub(STATE_TOKEN_BASE))
        {
            Some(v) if v <= inner.version => Some(v),
            _ => return validation_error("Value at 'stateToken' failed to satisfy constraint"),
        },
    };
    let selected: Vec<&Entry> = inner
        .library
        .iter()
        .filter(|e| match since {
            None => !e.revoked,
            Some(v) => e.version > v,
        })
        .collect();
    let items: Vec<Value> = selected
        .iter()
        .skip((page - 1) * num)
        .take(num)
        .map(|e| shape_item(&e.item, e.n, &groups, &sizes))
        .collect();
    let body = json!({"items": items, "response_groups": ["always-returned"]});
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::HeaderName::from_static("total-count"),
                selected.len().to_string(),
            ),
            (
                header::HeaderName::from_static("state-token"),
                (STATE_TOKEN_BASE + inner.version).to_string(),
            ),
        ],
        body.to_string(),
    )
        .into_response()
}

/// §8.1: at most 25 ASINs per call.
fn positions(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let asins: Vec<&str> = q
        .get("asins")
        .map_or("", String::as_str)
        .split(',')
        .filter(|a| !a.is_empty())
        .collect();
    if asins.is_empty() || asins.len() > 25 {
        return validation_error(&format!(
            "Value at 'asins' failed to satisfy constraint: Member must have length between 1 and 25 (got {})",
            asins.len()
        ));
    }
    let inner = shared.lock();
    let annots: Vec<Value> = asins
        .iter()
        .map(|a| match inner.positions.get(*a) {
            Some((ms, updated)) => json!({"asin": a, "last_position_heard": {
                "position_ms": ms, "last_updated": updated, "status": "Exists"}}),
            None => json!({"asin": a, "last_position_heard": {"status": "DoesNotExist"}}),
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"asin_last_position_heard_annots": annots}),
    )
}

/// §8.3: fifty events per page, so clients must follow `continuation_token`.
fn finished(shared: &Shared, q: &HashMap<String, String>) -> Response {
    if q.get("start_date").is_none() {
        return validation_error("Value null at 'startDate' failed to satisfy constraint");
    }
    let from = q
        .get("continuation_token")
        .and_then(|c| c.strip_prefix("ct-"))
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let inner = shared.lock();
    let page: Vec<Value> = inner
        .finished_events
        .iter()
        .skip(from)
        .take(50)
        .cloned()
        .collect();
    let next = (from + 50 < inner.finished_events.len()).then(|| format!("ct-{}", from + 50));
    json_response(
        StatusCode::OK,
        &json!({"mark_as_finished_status_list": page, "continuation_token": next}),
    )
}

/// §9: 0-based pages of at most 50.
fn wishlist(shared: &Shared, q: &HashMap<String, String>) -> Response {
    let (num, page) = match (number(q, "num_results", 50), number(q, "page", 0)) {
        (Ok(n), Ok(p)) => (n, p),
        (Err(m), _) | (_, Err(m)) => return validation_error(&m),
    };
    if !(1..=50).contains(&num) {
        return validation_error(&format!(
            "Value '{num}' at 'numResults' failed to satisfy constraint: Member must have value between 1 and 50"
        ));
    }
    let inner = shared.lock();
    let products: Vec<Value> = inner
        .wishlist
        .iter()
        .skip(page * num)
        .take(num)
        .cloned()
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"products": products, "total_results": inner.wishlist.len()}),
    )
}
