//! The Hardcover GraphQL client: one POST endpoint, the user's personal token as a Bearer
//! header, every response classified into data, bad credentials, rate limiting, outage or
//! rejection, and the paginated `user_books` listing.
//!
//! It owns a minimal reqwest client (no redirects, timeouts, User-Agent) until the shared
//! `crate::http` client is available to build on.

use super::budget::RateBudget;
use super::mapping::map_user_book;
use super::wire::{
    GraphQlError, GraphQlRequest, GraphQlResponse, HttpErrorBody, LibraryData, MeData,
};
use super::{HardcoverError, PROVIDER_ID, normalize_token};
use bb_core::clock::Clock;
use bb_core::library::record::SourceRecord;
use bb_core::secret::{ExposeSecret, SecretString};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The documented API root; the endpoint is this plus [`GRAPHQL_PATH`].
pub const DEFAULT_BASE_URL: &str = "https://api.hardcover.app";
pub const GRAPHQL_PATH: &str = "/v1/graphql";

/// A body larger than this is not an answer we asked for.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct HardcoverConfig {
    /// The API root (scheme, host, optional port); tests point it at the fake.
    pub base_url: String,
    /// Hardcover stops queries at 30 s; a little more lets its own 408 arrive first.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
    /// `user_books` per page. The dossier documents no maximum for `limit`.
    pub page_size: u32,
    /// How long a request may sleep for the local budget before giving up with
    /// `BudgetExhausted`. Zero never sleeps (tests driving a manual clock use that).
    pub max_budget_wait: Duration,
}

impl Default for HardcoverConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.into(),
            timeout: Duration::from_secs(35),
            connect_timeout: Duration::from_secs(10),
            // The dossier recommends a descriptive User-Agent.
            user_agent: concat!(
                "bookbridge/",
                env!("CARGO_PKG_VERSION"),
                " (self-hosted library sync)"
            )
            .into(),
            page_size: 100,
            max_budget_wait: Duration::from_mins(1),
        }
    }
}

/// The Hardcover account a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: i64,
    pub username: String,
}

/// An item the listing returned but mapping could not use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFailure {
    pub user_book_id: Option<i64>,
    pub reason: String,
}

/// The outcome of a complete listing: every page was read, so anything missing from
/// `records` is really gone from the user's Hardcover library.
#[derive(Debug, Clone)]
pub struct FullSync {
    pub records: Vec<SourceRecord>,
    pub failures: Vec<ItemFailure>,
    pub pages: u32,
}

/// A client for one user's token.
#[derive(Debug)]
pub struct HardcoverClient {
    http: reqwest::Client,
    endpoint: Url,
    token: SecretString,
    budget: Arc<dyn RateBudget>,
    clock: Arc<dyn Clock>,
    page_size: u32,
    max_budget_wait: Duration,
}

const ME_QUERY: &str = "query BookbridgeMe { me { id username } }";

// The dossier's library query, widened to everything the mapping uses and with every
// read-through instead of the latest only. Dossier unsure: a maximum query depth of 3 is
// on the roadmap (one summary says enforced); `book { contributions { author { name } } }`
// is as deep as the docs' own example, and no deeper.
const LIBRARY_QUERY: &str = "query BookbridgeLibrary($uid: Int!, $limit: Int!, $offset: Int!) {
  user_books(where: {user_id: {_eq: $uid}}, order_by: {id: asc}, limit: $limit, offset: $offset) {
    id book_id edition_id status_id rating review_raw reviewed_at date_added created_at updated_at
    user_book_reads(order_by: {id: asc}) {
      id started_at finished_at progress progress_pages progress_seconds edition_id }
    book { id title subtitle pages image { url }
      contributions { author { name } contribution }
      featured_book_series { position series { name } } }
    edition { id title isbn_13 isbn_10 asin pages audio_seconds release_date edition_format
      reading_format_id publisher { name } }
  }
}";

impl HardcoverClient {
    /// A client for the token the user pasted (a `Bearer ` prefix is fine).
    pub fn new(
        config: &HardcoverConfig,
        pasted_token: &str,
        budget: Arc<dyn RateBudget>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, HardcoverError> {
        let token = normalize_token(pasted_token).ok_or(HardcoverError::InvalidToken)?;
        let endpoint = Url::parse(config.base_url.trim_end_matches('/'))
            .and_then(|u| u.join(GRAPHQL_PATH))
            .map_err(|_| HardcoverError::Rejected {
                code: None,
                message: "the configured Hardcover base URL is not a URL".into(),
            })?;
        let http = reqwest::Client::builder()
            // Never follow redirects: a redirect would carry the token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .timeout(config.timeout)
            .connect_timeout(config.connect_timeout)
            .user_agent(config.user_agent.clone())
            .build()
            .map_err(|_| HardcoverError::Outage("could not build an HTTP client".into()))?;
        Ok(Self {
            http,
            endpoint,
            token,
            budget,
            clock,
            page_size: config.page_size.max(1),
            max_budget_wait: config.max_budget_wait,
        })
    }

    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Validates the token and names its account (`me` is an array; the user is element 0).
    pub async fn me(&self) -> Result<Account, HardcoverError> {
        let data: MeData = self.request("BookbridgeMe", ME_QUERY, json!({})).await?;
        let user = data
            .me
            .into_iter()
            .next()
            .ok_or(HardcoverError::NoAccount)?;
        Ok(Account {
            id: user.id,
            username: user.username.unwrap_or_default(),
        })
    }

    /// One page of the user's `user_books`, items exactly as received.
    pub async fn library_page(
        &self,
        user_id: i64,
        offset: u32,
    ) -> Result<Vec<Value>, HardcoverError> {
        let data: LibraryData = self
            .request(
                "BookbridgeLibrary",
                LIBRARY_QUERY,
                json!({"uid": user_id, "limit": self.page_size, "offset": offset}),
            )
            .await?;
        Ok(data.user_books)
    }

    /// Reads the whole library: `limit`/`offset` pages ordered by id, stopping at the first
    /// page shorter than `limit` (dossier §3). Any error aborts the run, so a partial
    /// listing is never mistaken for a complete one.
    pub async fn full_sync(&self, user_id: i64) -> Result<FullSync, HardcoverError> {
        let mut out = FullSync {
            records: Vec::new(),
            failures: Vec::new(),
            pages: 0,
        };
        let mut offset: u32 = 0;
        let mut last_id: Option<i64> = None;
        loop {
            let page = self.library_page(user_id, offset).await?;
            out.pages += 1;
            let len = u32::try_from(page.len()).unwrap_or(u32::MAX);
            // Ordered by id, each page must start after the previous one ended; a server
            // ignoring `offset` would otherwise loop forever.
            let first_id = page
                .first()
                .and_then(|v| v.get("id"))
                .and_then(Value::as_i64);
            if let (Some(first), Some(last)) = (first_id, last_id)
                && first <= last
            {
                return Err(HardcoverError::Rejected {
                    code: Some("pagination".into()),
                    message: "the library listing did not advance between pages".into(),
                });
            }
            for item in page {
                let id = item.get("id").and_then(Value::as_i64);
                last_id = id.or(last_id);
                match map_user_book(&item) {
                    Ok(record) => out.records.push(record),
                    Err(reason) => out.failures.push(ItemFailure {
                        user_book_id: id,
                        reason,
                    }),
                }
            }
            if len < self.page_size {
                return Ok(out);
            }
            offset = offset.saturating_add(len);
        }
    }

    /// Sends one GraphQL operation with one top-level field (each top-level field is billed
    /// as one request, so one per request keeps budget and bill equal), budget first.
    pub(crate) async fn request<T: DeserializeOwned>(
        &self,
        operation: &str,
        query: &str,
        variables: Value,
    ) -> Result<T, HardcoverError> {
        self.reserve(1).await?;
        self.send(operation, query, variables).await
    }

    /// Sends without asking the budget: for requests already paid for with [`Self::reserve`].
    pub(crate) async fn send<T: DeserializeOwned>(
        &self,
        operation: &str,
        query: &str,
        variables: Value,
    ) -> Result<T, HardcoverError> {
        let body = GraphQlRequest {
            query,
            variables,
            operation_name: operation,
        };
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", self.token.expose_secret()))
            .map_err(|_| HardcoverError::InvalidToken)?;
        auth.set_sensitive(true);
        let sent = self
            .http
            .post(self.endpoint.clone())
            .header(header::AUTHORIZATION, auth)
            .header(header::ACCEPT, "application/json")
            .json(&body)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => return Err(HardcoverError::Outage(transport_reason(&e).into())),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = read_capped(response).await?;
        let data = self.classify(status, &headers, &bytes)?;
        serde_json::from_value(data).map_err(|_| {
            HardcoverError::Outage("Hardcover answered with an unexpected data shape".into())
        })
    }

    /// Takes `cost` requests from the budget at once, sleeping up to `max_budget_wait`.
    pub(crate) async fn reserve(&self, cost: u32) -> Result<(), HardcoverError> {
        loop {
            match self.budget.acquire(PROVIDER_ID, cost).await {
                Ok(()) => return Ok(()),
                Err(wait) if wait.retry_after <= self.max_budget_wait => {
                    tokio::time::sleep(wait.retry_after).await;
                    // Manual clocks do not move while we sleep; do not spin on them.
                    if self.max_budget_wait.is_zero() {
                        return Err(HardcoverError::BudgetExhausted {
                            retry_after: wait.retry_after,
                        });
                    }
                }
                Err(wait) => {
                    return Err(HardcoverError::BudgetExhausted {
                        retry_after: wait.retry_after,
                    });
                }
            }
        }
    }

    /// HTTP status and body → the data object, or the error the caller acts on.
    fn classify(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<Value, HardcoverError> {
        if status == StatusCode::OK {
            let parsed: GraphQlResponse = serde_json::from_slice(body).map_err(|_| {
                HardcoverError::Outage("Hardcover answered with a body that is not JSON".into())
            })?;
            if !parsed.errors.is_empty() {
                return Err(self.graphql_errors(&parsed.errors));
            }
            return parsed
                .data
                .filter(Value::is_object)
                .ok_or_else(|| HardcoverError::Outage("Hardcover answered without data".into()));
        }
        let err: HttpErrorBody = serde_json::from_slice(body).unwrap_or_default();
        let described = || {
            self.scrub(
                err.error_description
                    .as_deref()
                    .or(err.message.as_deref())
                    .or(err.error.as_deref())
                    .unwrap_or(""),
            )
        };
        match status.as_u16() {
            401 => Err(HardcoverError::NeedsReauth {
                reason: non_empty(described(), "token missing, invalid or expired"),
            }),
            403 => {
                if !err.errors.is_empty() {
                    // `top_level_limit_exceeded` and friends: our request, not the token.
                    return Err(self.graphql_errors(&err.errors));
                }
                match err.error.as_deref() {
                    // The token lacks a permission (scopes arrived in August 2026): only a
                    // new token with the right permissions helps.
                    Some("insufficient_scope" | "invalid_token") => {
                        Err(HardcoverError::NeedsReauth {
                            reason: non_empty(described(), "the token lacks a permission"),
                        })
                    }
                    code => Err(HardcoverError::Rejected {
                        code: code.map(String::from),
                        message: non_empty(described(), "forbidden"),
                    }),
                }
            }
            429 => Err(HardcoverError::RateLimited {
                retry_after: self.retry_after(headers),
            }),
            408 | 500..=599 => Err(HardcoverError::Outage(format!("HTTP {}", status.as_u16()))),
            // A redirect was not followed (it could carry the token elsewhere); a moved
            // endpoint or a maintenance page is not something the user can fix.
            300..=399 => Err(HardcoverError::Outage(format!(
                "unexpected redirect (HTTP {})",
                status.as_u16()
            ))),
            code => Err(HardcoverError::Rejected {
                code: err.error.clone().or_else(|| Some(code.to_string())),
                message: non_empty(described(), &format!("HTTP {code}")),
            }),
        }
    }

    fn graphql_errors(&self, errors: &[GraphQlError]) -> HardcoverError {
        let first = &errors[0];
        let code = first.extensions.as_ref().and_then(|e| e.code.clone());
        // Hasura reports a bad or expired JWT as a GraphQL error with HTTP 200; Hardcover
        // documents 401 for tokens, so this is a guard for older deployments.
        if matches!(code.as_deref(), Some("invalid-jwt" | "access-denied")) {
            return HardcoverError::NeedsReauth {
                reason: self.scrub(&first.message),
            };
        }
        HardcoverError::Rejected {
            code,
            message: non_empty(self.scrub(&first.message), "GraphQL error"),
        }
    }

    /// Retry-After (seconds or an HTTP date), else the `t=` of the `RateLimit` header,
    /// else a minute — the documented window.
    fn retry_after(&self, headers: &HeaderMap) -> Duration {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        if let Some(v) = text("retry-after") {
            if let Ok(secs) = v.trim().parse::<u64>() {
                return Duration::from_secs(secs);
            }
            if let Ok(at) = chrono::DateTime::parse_from_rfc2822(v.trim()) {
                let secs = (at.with_timezone(&chrono::Utc) - self.clock.now()).num_seconds();
                return Duration::from_secs(u64::try_from(secs).unwrap_or(0));
            }
        }
        // `"Free";r=0;t=42, "daily";…`: the first policy is the per-minute one.
        if let Some(t) = text("ratelimit")
            .and_then(|v| v.split(',').next())
            .and_then(|p| p.split(';').find_map(|kv| kv.trim().strip_prefix("t=")))
            .and_then(|t| t.trim().parse::<u64>().ok())
        {
            return Duration::from_secs(t);
        }
        Duration::from_mins(1)
    }

    /// Error text from the server, shortened and with the token removed should it ever be
    /// echoed back.
    fn scrub(&self, message: &str) -> String {
        let mut m: String = message.chars().take(200).collect();
        let token = self.token.expose_secret();
        if !token.is_empty() && m.contains(token) {
            m = m.replace(token, "[redacted]");
        }
        m
    }
}

fn non_empty(s: String, fallback: &str) -> String {
    if s.trim().is_empty() {
        fallback.to_owned()
    } else {
        s
    }
}

fn transport_reason(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "the request timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    }
}

async fn read_capped(mut response: reqwest::Response) -> Result<Vec<u8>, HardcoverError> {
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY_BYTES {
                    return Err(HardcoverError::Outage("the response was too large".into()));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(HardcoverError::Outage(transport_reason(&e).into())),
        }
    }
}
