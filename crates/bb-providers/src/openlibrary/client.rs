//! The reading-log client: `GET /people/{username}/books/{shelf}.json?page=&limit=` for the
//! four shelves, paged as the dossier says, each request paid for from the shared budget
//! first and sent with an identifying `User-Agent` that carries a contact (§1).

use super::mapping::{DEFAULT_COVERS_URL, map_entry};
use super::{OpenLibraryError, PROVIDER_ID, SHELVES};
use crate::hardcover::RateBudget;
use crate::http::{self, OutageKind, ResponseClass};
use bb_core::clock::Clock;
use bb_core::library::record::SourceRecord;
use reqwest::header::{self, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// The documented site root.
pub const DEFAULT_BASE_URL: &str = "https://openlibrary.org";

/// Entries per page: the documented default (§2). Dossier unsure whether a larger `limit`
/// is honoured; the default is what every client gets.
pub const PAGE_SIZE: u32 = 100;

/// A listing longer than this many pages per shelf is not a reading log but a server
/// ignoring `page`: stop rather than loop.
const MAX_PAGES: u32 = 2_000;

/// A reading-log page is ~1 KB per entry (§2's example); 100 entries with long
/// `edition_key` lists stay far below this.
const MAX_PAGE_BYTES: usize = 8 * 1024 * 1024;

/// When a 429 carries no `Retry-After`: nginx's per-IP bucket refills within a minute.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_mins(1);

#[derive(Debug, Clone)]
pub struct OpenLibraryConfig {
    /// The site root; tests and mirrors point it elsewhere.
    pub base_url: String,
    /// Where cover URLs point (`{covers_url}/b/id/{id}-L.jpg`).
    pub covers_url: String,
    /// How to reach whoever runs this instance (an e-mail address or a URL). Open Library
    /// asks every client to name itself and a contact (§1).
    pub contact: String,
    /// How long a request may sleep for the budget before giving up with
    /// `BudgetExhausted`. Zero never sleeps (tests driving a manual clock use that).
    pub max_budget_wait: Duration,
}

impl Default for OpenLibraryConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            covers_url: DEFAULT_COVERS_URL.into(),
            contact: String::new(),
            max_budget_wait: Duration::from_mins(1),
        }
    }
}

impl OpenLibraryConfig {
    /// `bookbridge/0.1.0 (self-hosted library sync; CONTACT)`. nginx counts a UA as
    /// identifying when it holds `http` or `@` among others (§1); a contact that has
    /// neither gets the `+http` marker bots conventionally use, so it still does.
    pub fn user_agent(&self) -> String {
        let contact = self.contact.trim();
        let contact = if contact.is_empty() {
            "+https://openlibrary.org/developers/api".to_owned()
        } else if contact.contains('@') || contact.contains("http") {
            contact.to_owned()
        } else {
            format!("+http {contact}")
        };
        format!(
            "bookbridge/{} (self-hosted library sync; {contact})",
            env!("CARGO_PKG_VERSION")
        )
    }
}

/// Everything on a user's four shelves.
#[derive(Debug, Default)]
pub struct ReadingLog {
    pub records: Vec<SourceRecord>,
    /// Entries that could not be mapped: `(work key or position, reason)`.
    pub failures: Vec<String>,
    /// False when a shelf gave fewer distinct works than its `numFound` promised (the log
    /// changed while it was read): nothing may be withdrawn on the strength of such a
    /// listing.
    pub complete: bool,
    pub requests: u32,
}

#[derive(Debug, Deserialize)]
struct ShelfPage {
    #[serde(rename = "numFound")]
    num_found: Option<u64>,
    reading_log_entries: Vec<Value>,
}

#[derive(Debug, Deserialize, Default)]
struct ErrorBody {
    detail: Option<Value>,
}

/// Reads one user's public reading log.
#[derive(Debug, Clone)]
pub struct OpenLibraryClient {
    http: reqwest::Client,
    config: OpenLibraryConfig,
    user_agent: HeaderValue,
    budget: Arc<dyn RateBudget>,
    clock: Arc<dyn Clock>,
}

impl OpenLibraryClient {
    pub fn new(
        http: reqwest::Client,
        config: OpenLibraryConfig,
        budget: Arc<dyn RateBudget>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let user_agent = HeaderValue::from_str(&config.user_agent())
            .unwrap_or_else(|_| HeaderValue::from_static(http::USER_AGENT));
        Self {
            http,
            config,
            user_agent,
            budget,
            clock,
        }
    }

    pub fn config(&self) -> &OpenLibraryConfig {
        &self.config
    }

    /// Checks that `username` exists and its log is public, with one one-entry page.
    pub async fn check_user(&self, username: &str) -> Result<(), OpenLibraryError> {
        self.page(username, SHELVES[0], 1, 1).await.map(|_| ())
    }

    /// Reads all four shelves. Any error aborts the run, so a partial listing is never
    /// mistaken for a complete one.
    pub async fn reading_log(&self, username: &str) -> Result<ReadingLog, OpenLibraryError> {
        let mut log = ReadingLog {
            complete: true,
            ..ReadingLog::default()
        };
        // A work is on one shelf at a time, but a move while we page can show it on two:
        // keep the entry logged last (the newer shelf). The opposite move (onto a shelf
        // already read, off one not yet read) hides it from this run entirely, and no count
        // shows it; it is withdrawn and comes back with the next run. The reading log has
        // no snapshot or cursor that would avoid this.
        let mut seen: HashMap<String, usize> = HashMap::new();
        for shelf in SHELVES {
            // What the shelf promised (the largest `numFound` any page gave) against the
            // distinct works it delivered: a shelf edited while we page shifts entries
            // across page boundaries, skipping one or repeating one, and then the two differ.
            let mut promised: u64 = 0;
            let mut delivered: HashSet<String> = HashSet::new();
            let mut previous_first: Option<Value> = None;
            for page in 1..=MAX_PAGES {
                let body = self.page(username, shelf, page, PAGE_SIZE).await?;
                log.requests += 1;
                let first = body
                    .reading_log_entries
                    .first()
                    .map(|e| e["work"]["key"].clone());
                if first.is_some() && first == previous_first {
                    return Err(OpenLibraryError::Rejected(format!(
                        "the {shelf} listing did not advance between pages"
                    )));
                }
                previous_first = first;
                promised = promised.max(body.num_found.unwrap_or(0));
                let count = body.reading_log_entries.len();
                for (i, raw) in body.reading_log_entries.iter().enumerate() {
                    delivered.insert(
                        raw["work"]["key"]
                            .as_str()
                            .map_or_else(|| format!("#{page}.{i}"), str::to_owned),
                    );
                    self.add(&mut log, &mut seen, shelf, raw);
                }
                // Dossier §2: "increment `page` until `page * limit >= numFound` or an
                // empty list". Without `numFound`, only the empty page ends it.
                let done = count == 0
                    || body
                        .num_found
                        .is_some_and(|n| u64::from(page) * u64::from(PAGE_SIZE) >= n);
                if done {
                    if (delivered.len() as u64) < promised {
                        log.complete = false;
                    }
                    break;
                }
                if page == MAX_PAGES {
                    return Err(OpenLibraryError::Rejected(format!(
                        "the {shelf} listing did not end after {MAX_PAGES} pages"
                    )));
                }
            }
        }
        Ok(log)
    }

    fn add(
        &self,
        log: &mut ReadingLog,
        seen: &mut HashMap<String, usize>,
        slug: &str,
        raw: &Value,
    ) {
        match map_entry(slug, raw, &self.config.covers_url) {
            Ok(record) => {
                let key = record.external_id.clone().unwrap_or_default();
                if let Some(&at) = seen.get(&key) {
                    if record.status_at >= log.records[at].status_at {
                        log.records[at] = record;
                    }
                } else {
                    seen.insert(key, log.records.len());
                    log.records.push(record);
                }
            }
            Err(reason) => {
                let key = raw["work"]["key"].as_str().unwrap_or("an entry");
                log.failures.push(format!("{slug}: {key}: {reason}"));
            }
        }
    }

    async fn page(
        &self,
        username: &str,
        slug: &str,
        page: u32,
        limit: u32,
    ) -> Result<ShelfPage, OpenLibraryError> {
        self.reserve().await?;
        let file = format!("{slug}.json");
        let mut url =
            reqwest::Url::parse(self.config.base_url.trim_end_matches('/')).map_err(|_| {
                OpenLibraryError::Rejected(
                    "the configured Open Library base URL is not a URL".into(),
                )
            })?;
        url.path_segments_mut()
            .map_err(|()| {
                OpenLibraryError::Rejected(
                    "the configured Open Library base URL is not a URL".into(),
                )
            })?
            .pop_if_empty()
            .extend(["people", username, "books", file.as_str()]);
        url.query_pairs_mut()
            .append_pair("page", &page.to_string())
            .append_pair("limit", &limit.to_string());
        let request = self
            .http
            .get(url)
            .header(header::USER_AGENT, self.user_agent.clone())
            .header(header::ACCEPT, "application/json");
        let (status, headers, body) = http::send_limited(request, MAX_PAGE_BYTES)
            .await
            .map_err(outage)?;
        match http::classify_status(status, &headers, self.clock.now()) {
            ResponseClass::Success => serde_json::from_slice(&body).map_err(|_| {
                OpenLibraryError::Outage("the reading log answer is not the documented JSON".into())
            }),
            ResponseClass::RateLimited { retry_after } => Err(OpenLibraryError::RateLimited {
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            }),
            ResponseClass::Outage(kind) => Err(outage(kind)),
            ResponseClass::Rejected { status: 404 } => {
                Err(OpenLibraryError::UnknownUser(username.to_owned()))
            }
            ResponseClass::Rejected { status: 403 } => {
                // §2: a private log is 403 `{"detail":"This reading log is private"}`. A 403
                // with another body is some other refusal (a block, a WAF page).
                let err: ErrorBody = serde_json::from_slice(&body).unwrap_or_default();
                let detail = err.detail.as_ref().and_then(Value::as_str).unwrap_or("");
                if detail.to_ascii_lowercase().contains("private") {
                    Err(OpenLibraryError::PrivateLog(username.to_owned()))
                } else {
                    Err(OpenLibraryError::Rejected("HTTP 403".into()))
                }
            }
            ResponseClass::Rejected { status } => {
                Err(OpenLibraryError::Rejected(format!("HTTP {status}")))
            }
        }
    }

    /// Takes one request from the shared budget, sleeping up to `max_budget_wait`.
    async fn reserve(&self) -> Result<(), OpenLibraryError> {
        loop {
            match self.budget.acquire(PROVIDER_ID, 1).await {
                Ok(()) => return Ok(()),
                Err(wait)
                    if !self.config.max_budget_wait.is_zero()
                        && wait.retry_after <= self.config.max_budget_wait =>
                {
                    tokio::time::sleep(wait.retry_after).await;
                }
                Err(wait) => {
                    return Err(OpenLibraryError::BudgetExhausted {
                        retry_after: wait.retry_after,
                    });
                }
            }
        }
    }
}

fn outage(kind: OutageKind) -> OpenLibraryError {
    OpenLibraryError::Outage(match kind {
        OutageKind::Timeout => "the request timed out".into(),
        OutageKind::Connect => "could not connect".into(),
        OutageKind::Transport => "the connection failed".into(),
        OutageKind::ServerError(code) | OutageKind::UnexpectedStatus(code) => {
            format!("HTTP {code}")
        }
        OutageKind::GarbageBody => "the answer was unreadable or too large".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_user_agent_names_us_and_a_contact() {
        let ua = |contact: &str| {
            OpenLibraryConfig {
                contact: contact.into(),
                ..OpenLibraryConfig::default()
            }
            .user_agent()
        };
        assert!(ua("admin@example.org").starts_with("bookbridge/"));
        assert!(ua("admin@example.org").ends_with("(self-hosted library sync; admin@example.org)"));
        // nginx's rule (§1): identifying when it holds bot, spider, crawl, http or @.
        for contact in ["", "books.example.org", "https://books.example.org"] {
            let ua = ua(contact);
            assert!(ua.contains("http") || ua.contains('@'), "{ua}");
        }
    }
}
