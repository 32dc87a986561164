//! A fake Open Library built from the protocol dossier (`shared/providers/openlibrary.md`),
//! not from our client: the public reading log `GET /people/{username}/books/{shelf}.json`
//! with `page` (1-based) and `limit` (default 100), `numFound`, entries newest first in the
//! documented shape (`logged_date` as `YYYY/MM/DD, HH:MM:SS`, no zone), 404 for an unknown
//! user, 403 `{"detail":"This reading log is private"}`, and 429 with `Retry-After`.
//!
//! Tests steer it through hooks: shelf moves and removals upstream, a log made private,
//! queued failures, a delay before every answer (to catch a sync mid-run), and a request
//! log with each `User-Agent`. Where the dossier is unsure, the fake picks the reading that
//! is harder on a client and says so (look for "dossier unsure").

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bb_core::clock::Clock;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// The four shelves (§2), in the order seeded books are dealt onto them.
pub const SHELVES: [&str; 4] = [
    "want-to-read",
    "currently-reading",
    "already-read",
    "stopped-reading",
];

/// The documented default page size (§2).
pub const DEFAULT_LIMIT: usize = 100;

/// One user the fake knows.
#[derive(Debug, Clone)]
pub struct FakeUser {
    pub username: String,
    /// Whether "public reading log" is on.
    pub public: bool,
    /// How many seeded works the log holds, dealt round-robin onto the four shelves.
    pub books: usize,
}

#[derive(Debug, Clone)]
pub struct FakeOpenLibraryConfig {
    pub users: Vec<FakeUser>,
    /// Stamps `logged_date` on seeding and on moves.
    pub clock: Arc<dyn Clock>,
}

impl FakeOpenLibraryConfig {
    /// A public user `reader` with `books` works, and a private user `hermit` with 3.
    pub fn new(clock: Arc<dyn Clock>, books: usize) -> Self {
        Self {
            users: vec![
                FakeUser {
                    username: "reader".into(),
                    public: true,
                    books,
                },
                FakeUser {
                    username: "hermit".into(),
                    public: false,
                    books: 3,
                },
            ],
            clock,
        }
    }
}

/// A canned failure for the next request.
#[derive(Debug, Clone)]
pub enum Failure {
    /// 429 with `Retry-After: {secs}` (nginx's per-IP limit, §1).
    RateLimited { retry_after_secs: u64 },
    /// 503 with an HTML maintenance page (§7: "5xx/503 during maintenance").
    Maintenance,
    /// 200 with a body that is not JSON.
    Garbage,
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    pub path: String,
    pub query: BTreeMap<String, String>,
    pub status: u16,
    pub user_agent: Option<String>,
}

#[derive(Debug, Default)]
struct User {
    public: bool,
    /// Shelf → entries, newest first.
    shelves: HashMap<&'static str, Vec<Value>>,
}

#[derive(Debug)]
struct Inner {
    users: HashMap<String, User>,
    failures: VecDeque<Failure>,
    requests: Vec<RequestRecord>,
    delay: Duration,
    /// `(after this many requests, username, work key)`: removals made mid-listing.
    removals: Vec<(usize, String, String)>,
}

#[derive(Debug, Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    clock: Arc<dyn Clock>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn stamp(&self) -> String {
        self.clock.now().format("%Y/%m/%d, %H:%M:%S").to_string()
    }
}

/// A running fake; the server stops when this is dropped.
#[derive(Debug)]
pub struct FakeOpenLibrary {
    /// `http://127.0.0.1:PORT`, the site root.
    pub base_url: String,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeOpenLibrary {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const ADJECTIVES: &[&str] = &[
    "Glass", "Amber", "Paper", "Iron", "Salt", "Velvet", "Copper", "Ivory", "Cedar",
];
const NOUNS: &[&str] = &[
    "Harbor",
    "Atlas",
    "Meridian",
    "Lighthouse",
    "Orchard",
    "Compass",
    "Ferry",
    "Observatory",
];
const AUTHORS: &[&str] = &[
    "Mira Solberg",
    "Tariq Hale",
    "June Okonkwo",
    "Pavel Reyes",
    "Ada Lindgren",
];

/// The work key of seeded work `i` of user number `u`.
pub fn work_key(u: usize, i: usize) -> String {
    format!("/works/OL{}W", 1_000_000 + u * 100_000 + i)
}

/// Seeded work `i` of user `u`: every field §2 lists, `edition_key` long as it can be.
#[allow(clippy::cast_possible_wrap)] // small seeded numbers
fn seeded_entry(u: usize, i: usize, logged: &str) -> Value {
    let n = 1_000_000 + u * 100_000 + i;
    let title = format!(
        "The {} {} {i}",
        ADJECTIVES[i % ADJECTIVES.len()],
        NOUNS[(i / ADJECTIVES.len()) % NOUNS.len()]
    );
    let author = AUTHORS[i % AUTHORS.len()];
    let editions: Vec<String> = (0..=(i % 7))
        .map(|e| format!("OL{}M", n * 10 + e))
        .collect();
    json!({
        "work": {
            "title": title,
            "key": work_key(u, i),
            "author_keys": [format!("/authors/OL{}A", 700 + i % AUTHORS.len())],
            "author_names": [author],
            "first_publish_year": 1950 + (i % 70) as i64,
            "lending_edition_s": null,
            "edition_key": editions,
            // Every fifth work has no cover (§6: absent or -1).
            "cover_id": if i % 5 == 4 { json!(-1) } else { json!(10_000_000 + n) },
            "cover_edition_key": editions[0],
        },
        "logged_edition": if i.is_multiple_of(3) { Value::Null } else { json!(format!("/books/{}", editions[0])) },
        "logged_date": logged,
    })
}

/// Binds 127.0.0.1:0, seeds every user's log and serves until dropped.
pub async fn start(config: FakeOpenLibraryConfig) -> FakeOpenLibrary {
    let shared = Shared {
        inner: Arc::new(Mutex::new(Inner {
            users: HashMap::new(),
            failures: VecDeque::new(),
            requests: Vec::new(),
            delay: Duration::ZERO,
            removals: Vec::new(),
        })),
        clock: config.clock,
    };
    let logged = shared.stamp();
    {
        let mut inner = shared.lock();
        for (u, fake) in config.users.iter().enumerate() {
            let mut user = User {
                public: fake.public,
                shelves: HashMap::new(),
            };
            for i in 0..fake.books {
                user.shelves
                    .entry(SHELVES[i % SHELVES.len()])
                    .or_default()
                    .push(seeded_entry(u, i, &logged));
            }
            inner.users.insert(fake.username.clone(), user);
        }
    }
    let app = Router::new()
        .route("/people/{username}/books/{shelf}", get(reading_log))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the fake Open Library on loopback");
    let addr = listener.local_addr().expect("local address of the fake");
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    FakeOpenLibrary {
        base_url: format!("http://{addr}"),
        shared,
        task,
    }
}

impl FakeOpenLibrary {
    /// Queues a failure for the next request.
    pub fn fail_next(&self, failure: Failure) {
        self.shared.lock().failures.push_back(failure);
    }

    /// Waits this long before every answer (a slow server, to catch a sync mid-run).
    pub fn set_delay(&self, delay: Duration) {
        self.shared.lock().delay = delay;
    }

    /// Turns "public reading log" on or off.
    pub fn set_public(&self, username: &str, public: bool) {
        if let Some(u) = self.shared.lock().users.get_mut(username) {
            u.public = public;
        }
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.lock().requests.clone()
    }

    /// The work keys on a shelf, newest first.
    pub fn shelf(&self, username: &str, name: &str) -> Vec<String> {
        self.shared
            .lock()
            .users
            .get(username)
            .and_then(|u| u.shelves.get(name))
            .map(|l| {
                l.iter()
                    .filter_map(|e| e["work"]["key"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Moves a work to another shelf, as the website does: off its shelf (a work is on one
    /// preset shelf at a time, §4) and onto the top of `to`, logged now. False when the user
    /// does not have it.
    pub fn move_work(&self, username: &str, work_key: &str, to: &str) -> bool {
        let stamp = self.shared.stamp();
        let mut inner = self.shared.lock();
        let Some(user) = inner.users.get_mut(username) else {
            return false;
        };
        let Some(mut entry) = take(user, work_key) else {
            return false;
        };
        entry["logged_date"] = json!(stamp);
        let to = SHELVES.into_iter().find(|s| *s == to).unwrap_or(SHELVES[0]);
        user.shelves.entry(to).or_default().insert(0, entry);
        true
    }

    /// Removes a work once `after` more requests have been answered: the user editing
    /// their log while a client pages through it.
    pub fn remove_after(&self, after: usize, username: &str, work_key: &str) {
        let mut inner = self.shared.lock();
        let at = inner.requests.len() + after;
        inner
            .removals
            .push((at, username.to_owned(), work_key.to_owned()));
    }

    /// Removes a work from the reading log (`bookshelf_id=-1`, §4).
    pub fn remove_work(&self, username: &str, work_key: &str) -> bool {
        let mut inner = self.shared.lock();
        inner
            .users
            .get_mut(username)
            .and_then(|u| take(u, work_key))
            .is_some()
    }
}

fn take(user: &mut User, work_key: &str) -> Option<Value> {
    for list in user.shelves.values_mut() {
        if let Some(at) = list
            .iter()
            .position(|e| e["work"]["key"].as_str() == Some(work_key))
        {
            return Some(list.remove(at));
        }
    }
    None
}

fn detail(status: StatusCode, detail: &str) -> Response {
    (status, axum::Json(json!({ "detail": detail }))).into_response()
}

async fn reading_log(
    State(shared): State<Shared>,
    Path((username, shelf_file)): Path<(String, String)>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let response = answer(&shared, &username, &shelf_file, &query);
    // Logged on arrival, answered after the delay: a client killed while it waits has its
    // request counted all the same.
    let delay = {
        let mut inner = shared.lock();
        inner.requests.push(RequestRecord {
            path: format!("/people/{username}/books/{shelf_file}"),
            query,
            status: response.status().as_u16(),
            user_agent: headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        let served = inner.requests.len();
        let due: Vec<(String, String)> = inner
            .removals
            .iter()
            .filter(|(at, _, _)| *at <= served)
            .map(|(_, u, w)| (u.clone(), w.clone()))
            .collect();
        inner.removals.retain(|(at, _, _)| *at > served);
        for (user, work) in due {
            if let Some(u) = inner.users.get_mut(&user) {
                take(u, &work);
            }
        }
        inner.delay
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

fn answer(
    shared: &Shared,
    username: &str,
    shelf_file: &str,
    query: &BTreeMap<String, String>,
) -> Response {
    let mut inner = shared.lock();
    match inner.failures.pop_front() {
        Some(Failure::RateLimited { retry_after_secs }) => {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, retry_after_secs.to_string())],
                "<html><body><h1>429 Too Many Requests</h1></body></html>",
            )
                .into_response();
        }
        Some(Failure::Maintenance) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::CONTENT_TYPE, "text/html")],
                "<html><body>Open Library is down for maintenance</body></html>",
            )
                .into_response();
        }
        Some(Failure::Garbage) => {
            return (StatusCode::OK, "{\"page\": 1, \"reading_log_en").into_response();
        }
        None => {}
    }
    let Some(shelf) = shelf_file
        .strip_suffix(".json")
        .and_then(|s| SHELVES.into_iter().find(|x| *x == s))
    else {
        // Dossier unsure how an unknown shelf answers; FastAPI validates the path enum
        // with a 422 and a `detail` list.
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({"detail": [{"loc": ["path", "shelf"], "msg": "invalid shelf"}]})),
        )
            .into_response();
    };
    let Some(user) = inner.users.get_mut(username) else {
        // §7: `{"detail": …}` with 404 for an unknown user; the exact text is not given.
        return detail(StatusCode::NOT_FOUND, "User not found");
    };
    if !user.public {
        return detail(StatusCode::FORBIDDEN, "This reading log is private");
    }
    // FastAPI validates query parameters: 422 with a `detail` list naming the field.
    let number = |k: &str, default: usize| match query.get(k) {
        None => Some(default),
        Some(v) => v.parse::<usize>().ok().filter(|n| *n >= 1),
    };
    let invalid = |k: &str| {
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(
                json!({"detail": [{"loc": ["query", k], "msg": "must be a positive integer"}]}),
            ),
        )
            .into_response()
    };
    let Some(page) = number("page", 1) else {
        return invalid("page");
    };
    // Dossier unsure about a maximum `limit`; the fake caps it at the default, so a client
    // that asks for more and trusts it would miss entries.
    let Some(limit) = number("limit", DEFAULT_LIMIT).map(|l| l.min(DEFAULT_LIMIT)) else {
        return invalid("limit");
    };
    let entries = user.shelves.get(shelf).cloned().unwrap_or_default();
    let start = (page - 1).saturating_mul(limit);
    let slice: Vec<Value> = entries.iter().skip(start).take(limit).cloned().collect();
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json!({"page": page, "numFound": entries.len(), "reading_log_entries": slice}).to_string(),
    )
        .into_response()
}
