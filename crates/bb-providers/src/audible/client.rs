//! The Audible API client (`api.audible.{tld}`): every request signed with the device key
//! (§4.1), or carrying the access token when the key cannot sign (§4.2); the library in all
//! pages and incrementally (§7), listening positions (§8.1), finished dates (§8.3) and the
//! wishlist (§9).

use std::collections::HashMap;
use std::sync::Arc;

use bb_core::clock::Clock;
use bb_core::library::record::SourceRecord;
use bb_core::secret::ExposeSecret;
use chrono::{DateTime, Duration, Utc};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use tokio::sync::Mutex;
use tracing::{debug, info, instrument, warn};
use url::Url;

use super::credentials::DeviceCredentials;
use super::mapping::{map_library_item, map_wishlist_product};
use super::signing::{self, DeviceKey};
use super::token::refresh_access_token;
use super::wire::{self, On4xx, parse_utc};
use super::{AudibleConfig, AudibleError, PROVIDER_ID};
use crate::hardcover::RateBudget;
use crate::http;

/// Library page size: the API's maximum (§7), so a library of 5,000 titles is 5 requests.
pub const LIBRARY_PAGE_SIZE: usize = 1000;
/// ASINs per `annotations/lastpositions` call (§8.1).
pub const POSITIONS_PER_CALL: usize = 25;
/// Wishlist page size: the API's maximum (§9).
pub const WISHLIST_PAGE_SIZE: usize = 50;
/// Response groups of a library sync: everything the mapping reads. `provided_review` is
/// null unless `rating` is also requested (§7).
pub const LIBRARY_RESPONSE_GROUPS: &str = "contributors,product_attrs,product_desc,\
product_details,media,series,rating,provided_review,percent_complete,is_finished,\
listening_status";
/// Cover sizes asked for; the mapping keeps the largest.
pub const IMAGE_SIZES: &str = "500,1215";
/// Refresh the access token this long before it expires.
pub const REFRESH_MARGIN_MINUTES: i64 = 5;
/// The largest API answer read: a library page of 1000 titles with every response group
/// runs to several MiB.
pub const MAX_API_BODY_BYTES: usize = 64 * 1024 * 1024;
/// A guard against a server that never ends a listing.
const MAX_PAGES: u32 = 2_000;

/// In-run retries of the requests a sync can finish without (positions, finished dates,
/// wishlist) when Audible throttles or fails for a moment. The library pages are not
/// retried here: without them there is nothing to sync, and the job is retried as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The wait before the second attempt when Audible sends no `Retry-After`; doubled for
    /// each later attempt.
    pub first_backoff: std::time::Duration,
    /// The longest wait for one retry. A longer `Retry-After` ends the retries: the part is
    /// read again on the next run instead of holding this one.
    pub max_wait: std::time::Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 3,
            first_backoff: std::time::Duration::from_secs(2),
            max_wait: std::time::Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// How long to wait before attempt `failed + 1` after `failed` failed attempts, or
    /// `None` to give up (attempts used, or Audible asked for a longer pause than
    /// `max_wait`).
    pub fn wait_before_retry(
        &self,
        failed: u32,
        retry_after: Option<std::time::Duration>,
    ) -> Option<std::time::Duration> {
        if failed >= self.attempts {
            return None;
        }
        let wait = retry_after.unwrap_or_else(|| {
            self.first_backoff
                .saturating_mul(2u32.saturating_pow(failed.saturating_sub(1)))
        });
        (wait <= self.max_wait).then_some(wait)
    }
}

/// Whether a failed request is worth another try in the same run: throttling, outages
/// and answers cut short. Never an auth failure (that is the user's to fix) nor our own
/// budget (already waited for).
fn retryable(e: &AudibleError) -> bool {
    matches!(
        e,
        AudibleError::RateLimited { .. }
            | AudibleError::Outage { .. }
            | AudibleError::Garbage { .. }
    )
}

/// A header value marked sensitive, so that no `Debug` of the request or of the HTTP
/// stack's own logging prints it. An invalid value (a control character in a token) becomes
/// empty and the request fails as unauthenticated, which is what such a token means.
pub(crate) fn sensitive(value: &str) -> HeaderValue {
    let mut v = HeaderValue::from_str(value).unwrap_or_else(|_| HeaderValue::from_static(""));
    v.set_sensitive(true);
    v
}

/// One `1.0/library` page as received.
#[derive(Debug, Clone)]
pub struct LibraryPage {
    pub items: Vec<Value>,
    /// The `Total-Count` header.
    pub total_count: Option<u64>,
    /// The `State-Token` header.
    pub state_token: Option<String>,
}

/// The outcome of a library sync.
#[derive(Debug, Clone, Default)]
pub struct LibrarySync {
    pub records: Vec<SourceRecord>,
    /// ASINs that came back `Revoked` (returned or refunded): withdrawn for this source,
    /// not deleted from the user's library.
    pub withdrawn: Vec<String>,
    /// Items that could not be mapped: (ASIN if known, what was wrong).
    pub failures: Vec<(Option<String>, String)>,
    /// Keep for the next incremental run.
    pub state_token: Option<String>,
    /// `Total-Count` of the first page.
    pub total_count: Option<u64>,
    /// Pages fetched.
    pub pages: u32,
}

/// The resume point of one title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListeningPosition {
    pub asin: String,
    pub position_ms: u64,
    pub last_updated: Option<DateTime<Utc>>,
}

/// When each title was marked finished, by ASIN.
pub type FinishedDates = HashMap<String, DateTime<Utc>>;

/// The wishlist.
#[derive(Debug, Clone, Default)]
pub struct WishlistSync {
    pub records: Vec<SourceRecord>,
    pub failures: Vec<(Option<String>, String)>,
}

struct State {
    credentials: DeviceCredentials,
    refreshed: bool,
}

/// A client for one registered device.
pub struct AudibleClient {
    http: reqwest::Client,
    config: AudibleConfig,
    clock: Arc<dyn Clock>,
    key: Option<DeviceKey>,
    state: Mutex<State>,
    /// The request budget asked before every API request, and how long a request may wait
    /// for it.
    budget: Option<(Arc<dyn RateBudget>, std::time::Duration)>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for AudibleClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudibleClient")
            .field("config", &self.config)
            .field("signing", &self.key.is_some())
            .finish_non_exhaustive()
    }
}

impl AudibleClient {
    /// A client for `credentials`. Signs with the device key when it can; otherwise (a key
    /// the signer does not support, see [`signing`]) it uses the access token and says so
    /// once in the log.
    pub fn new(
        http: reqwest::Client,
        config: AudibleConfig,
        clock: Arc<dyn Clock>,
        credentials: DeviceCredentials,
    ) -> AudibleClient {
        let key = match DeviceKey::parse(&credentials.device_private_key) {
            Ok(key) => Some(key),
            Err(e) => {
                warn!(provider = "audible", error = %e, "falling back to access-token requests");
                None
            }
        };
        AudibleClient {
            http,
            config,
            clock,
            key,
            state: Mutex::new(State {
                credentials,
                refreshed: false,
            }),
            budget: None,
            retry: RetryPolicy::default(),
        }
    }

    /// Asks `budget` before every API request, waiting up to `max_wait` for it; a longer
    /// wait fails the request with [`AudibleError::BudgetExhausted`] before anything is sent.
    #[must_use]
    pub fn with_budget(
        mut self,
        budget: Arc<dyn RateBudget>,
        max_wait: std::time::Duration,
    ) -> AudibleClient {
        self.budget = Some((budget, max_wait));
        self
    }

    /// Replaces the default [`RetryPolicy`].
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> AudibleClient {
        self.retry = retry;
        self
    }

    /// Takes one request from the budget, sleeping while the wait is within bounds.
    async fn reserve(&self) -> Result<(), AudibleError> {
        let Some((budget, max_wait)) = &self.budget else {
            return Ok(());
        };
        loop {
            match budget.acquire(PROVIDER_ID, 1).await {
                Ok(()) => return Ok(()),
                Err(wait) if wait.retry_after <= *max_wait && !max_wait.is_zero() => {
                    tokio::time::sleep(wait.retry_after).await;
                }
                Err(wait) => {
                    return Err(AudibleError::BudgetExhausted {
                        retry_after: wait.retry_after,
                    });
                }
            }
        }
    }

    /// [`Self::get`], tried again per the [`RetryPolicy`] when the failure is passing.
    async fn get_retrying(
        &self,
        what: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(HeaderMap, Value), AudibleError> {
        let mut failed = 0;
        loop {
            match self.get(what, path, query).await {
                Ok(answer) => return Ok(answer),
                Err(e) if retryable(&e) => {
                    failed += 1;
                    let Some(wait) = self.retry.wait_before_retry(failed, e.retry_after()) else {
                        return Err(e);
                    };
                    warn!(
                        provider = "audible",
                        what,
                        error = %e,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        "retrying"
                    );
                    tokio::time::sleep(wait).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Whether requests are signed (rather than carrying the access token).
    pub fn is_signing(&self) -> bool {
        self.key.is_some()
    }

    /// The current credentials, with a refreshed access token if one was obtained.
    pub async fn credentials(&self) -> DeviceCredentials {
        self.state.lock().await.credentials.clone()
    }

    /// Whether the access token was refreshed since the client was made: the caller seals
    /// [`credentials`](Self::credentials) again.
    pub async fn was_refreshed(&self) -> bool {
        self.state.lock().await.refreshed
    }

    /// Refreshes the access token now, whatever its expiry.
    pub async fn refresh_now(&self) -> Result<(), AudibleError> {
        let mut state = self.state.lock().await;
        let token =
            refresh_access_token(&self.http, &self.config, &*self.clock, &state.credentials)
                .await?;
        token.apply(&mut state.credentials);
        state.refreshed = true;
        Ok(())
    }

    /// A GET on the API; the answer's headers and JSON body.
    async fn get(
        &self,
        what: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<(HeaderMap, Value), AudibleError> {
        let marketplace = self.state.lock().await.credentials.marketplace;
        let base = self.config.api_base(marketplace);
        let mut url = Url::parse(&format!("{base}{path}")).map_err(|_| AudibleError::Rejected {
            what,
            status: 0,
            message: Some("the configured Audible API address is not a URL".into()),
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        // What is signed must be the request target exactly as it goes on the wire: the
        // `Url` is sent as it is, so its path and (already encoded) query are that target.
        let target = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_owned(),
        };
        let request = self
            .http
            .get(url)
            .header("Accept", "application/json")
            .header("Accept-Charset", "utf-8");
        // Budget first, then sign: a wait for the budget must not age the signature's
        // timestamp.
        self.reserve().await?;
        let request = self.authenticate(request, "GET", &target, b"").await?;
        let (status, headers, body) = http::send_limited(request, MAX_API_BODY_BYTES)
            .await
            .map_err(wire::transport)?;
        debug!(
            provider = "audible",
            what,
            status = status.as_u16(),
            "API answer"
        );
        let value = wire::json_answer(
            what,
            On4xx::Api,
            (status, headers.clone(), body),
            self.clock.now(),
        )?;
        Ok((headers, value))
    }

    /// Adds the signature headers, or the access-token header (refreshing it when due).
    async fn authenticate(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        target: &str,
        body: &[u8],
    ) -> Result<reqwest::RequestBuilder, AudibleError> {
        let mut state = self.state.lock().await;
        if let Some(key) = &self.key {
            let ts = signing::timestamp(self.clock.now());
            let headers = signing::signed_headers(
                key,
                &state.credentials.adp_token,
                method,
                target,
                body,
                &ts,
            );
            return Ok(headers.into_iter().fold(request, |r, (name, value)| {
                r.header(name, sensitive(&value))
            }));
        }
        if state
            .credentials
            .access_token_due(self.clock.now(), Duration::minutes(REFRESH_MARGIN_MINUTES))
        {
            let token =
                refresh_access_token(&self.http, &self.config, &*self.clock, &state.credentials)
                    .await?;
            token.apply(&mut state.credentials);
            state.refreshed = true;
        }
        // §4.2: `Authorization: Bearer` is no longer accepted by the API since late 2025.
        Ok(request.header(
            "x-amz-access-token",
            sensitive(state.credentials.access_token.expose_secret()),
        ))
    }

    /// One library page (1-based), optionally since a state token.
    pub async fn library_page(
        &self,
        page: u32,
        num_results: usize,
        state_token: Option<&str>,
    ) -> Result<LibraryPage, AudibleError> {
        let page_s = page.to_string();
        let num_s = num_results.to_string();
        let mut query = vec![
            ("num_results", num_s.as_str()),
            ("page", page_s.as_str()),
            ("response_groups", LIBRARY_RESPONSE_GROUPS),
            ("image_sizes", IMAGE_SIZES),
        ];
        if let Some(token) = state_token {
            query.push(("state_token", token));
        }
        let (headers, v) = self.get("the library", "/1.0/library", &query).await?;
        let items = match v.get("items") {
            Some(Value::Array(items)) => items.clone(),
            Some(Value::Null) | None if state_token.is_some() => Vec::new(),
            _ => {
                return Err(AudibleError::Garbage {
                    what: "the library",
                    problem: "no \"items\" list".into(),
                });
            }
        };
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Ok(LibraryPage {
            items,
            total_count: header("total-count").and_then(|t| t.parse().ok()),
            state_token: header("state-token"),
        })
    }

    /// The whole library, all pages.
    #[instrument(skip_all, fields(provider = "audible"))]
    pub async fn library_full(&self) -> Result<LibrarySync, AudibleError> {
        self.library_pages(None).await
    }

    /// What changed since `state_token` (from a previous [`LibrarySync`]).
    #[instrument(skip_all, fields(provider = "audible"))]
    pub async fn library_since(&self, state_token: &str) -> Result<LibrarySync, AudibleError> {
        self.library_pages(Some(state_token)).await
    }

    async fn library_pages(&self, since: Option<&str>) -> Result<LibrarySync, AudibleError> {
        let mut sync = LibrarySync::default();
        let mut seen = 0u64;
        for page in 1..=MAX_PAGES {
            let p = self.library_page(page, LIBRARY_PAGE_SIZE, since).await?;
            sync.pages = page;
            if page == 1 {
                // The first page's token: anything that changes while we page is sent
                // again next time, never lost.
                sync.state_token = p.state_token.or_else(|| since.map(str::to_owned));
                sync.total_count = p.total_count;
            }
            let count = p.items.len();
            seen += count as u64;
            for item in &p.items {
                let asin = item.get("asin").and_then(Value::as_str).map(str::to_owned);
                let revoked = item
                    .get("status")
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.eq_ignore_ascii_case("revoked"));
                match (revoked, asin) {
                    (true, Some(asin)) => sync.withdrawn.push(asin),
                    (true, None) => sync
                        .failures
                        .push((None, "a revoked item without an asin".into())),
                    (false, asin) => match map_library_item(item) {
                        Ok(record) => sync.records.push(record),
                        Err(problem) => sync.failures.push((asin, problem)),
                    },
                }
            }
            // A short or empty page is the last; so is reaching Total-Count. (Past
            // ~page 400 the API answers empty pages, §7.)
            if count < LIBRARY_PAGE_SIZE || sync.total_count.is_some_and(|t| seen >= t) {
                break;
            }
        }
        info!(
            records = sync.records.len(),
            withdrawn = sync.withdrawn.len(),
            failures = sync.failures.len(),
            pages = sync.pages,
            incremental = since.is_some(),
            "Audible library synced"
        );
        Ok(sync)
    }

    /// Resume positions of `asins`, 25 per call. Titles never played are left out.
    #[instrument(skip_all, fields(provider = "audible", asins = asins.len()))]
    pub async fn positions(
        &self,
        asins: &[String],
    ) -> Result<Vec<ListeningPosition>, AudibleError> {
        let mut out = Vec::new();
        for chunk in asins.chunks(POSITIONS_PER_CALL) {
            let asin_list = chunk.join(",");
            let (_, v) = self
                .get_retrying(
                    "the listening positions",
                    "/1.0/annotations/lastpositions",
                    &[("asins", asin_list.as_str())],
                )
                .await?;
            let annots = v
                .get("asin_last_position_heard_annots")
                .and_then(Value::as_array)
                .ok_or(AudibleError::Garbage {
                    what: "the listening positions",
                    problem: "no asin_last_position_heard_annots list".into(),
                })?;
            for a in annots {
                let Some(asin) = a.get("asin").and_then(Value::as_str) else {
                    continue;
                };
                let heard = a.get("last_position_heard");
                let exists = heard
                    .and_then(|l| l.get("status"))
                    .and_then(Value::as_str)
                    .is_none_or(|s| s.eq_ignore_ascii_case("exists"));
                let ms = heard
                    .and_then(|l| l.get("position_ms"))
                    .and_then(Value::as_u64);
                if let (true, Some(position_ms)) = (exists, ms) {
                    out.push(ListeningPosition {
                        asin: asin.to_owned(),
                        position_ms,
                        last_updated: heard
                            .and_then(|l| l.get("last_updated"))
                            .and_then(Value::as_str)
                            .and_then(parse_utc),
                    });
                }
            }
        }
        Ok(out)
    }

    /// When titles were marked finished (`stats/status/finished`, following
    /// `continuation_token`). The latest event per title decides: a title marked finished
    /// and later unmarked is not finished.
    #[instrument(skip_all, fields(provider = "audible"))]
    pub async fn finished_dates(&self) -> Result<FinishedDates, AudibleError> {
        let mut latest: HashMap<String, (DateTime<Utc>, bool)> = HashMap::new();
        let mut continuation: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut query = vec![("start_date", "2000-01-01T00:00:00Z")];
            if let Some(c) = continuation.as_deref() {
                query.push(("continuation_token", c));
            }
            let (_, v) = self
                .get_retrying("the finished titles", "/1.0/stats/status/finished", &query)
                .await?;
            let list = v
                .get("mark_as_finished_status_list")
                .and_then(Value::as_array)
                .ok_or(AudibleError::Garbage {
                    what: "the finished titles",
                    problem: "no mark_as_finished_status_list".into(),
                })?;
            for e in list {
                let (Some(asin), Some(at)) = (
                    e.get("asin").and_then(Value::as_str),
                    e.get("event_timestamp")
                        .and_then(Value::as_str)
                        .and_then(parse_utc),
                ) else {
                    continue;
                };
                let finished = e
                    .get("is_marked_as_finished")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let entry = latest.entry(asin.to_owned()).or_insert((at, finished));
                if at >= entry.0 {
                    *entry = (at, finished);
                }
            }
            let next = v
                .get("continuation_token")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned);
            if next.is_none() || next == continuation {
                break;
            }
            continuation = next;
        }
        Ok(latest
            .into_iter()
            .filter(|(_, (_, finished))| *finished)
            .map(|(asin, (at, _))| (asin, at))
            .collect())
    }

    /// The wishlist, all pages (0-based, 50 per page).
    #[instrument(skip_all, fields(provider = "audible"))]
    pub async fn wishlist(&self) -> Result<WishlistSync, AudibleError> {
        let mut sync = WishlistSync::default();
        let mut seen = 0u64;
        let num = WISHLIST_PAGE_SIZE.to_string();
        for page in 0..MAX_PAGES {
            let page_s = page.to_string();
            let (_, v) = self
                .get_retrying(
                    "the wishlist",
                    "/1.0/wishlist",
                    &[
                        ("num_results", num.as_str()),
                        ("page", page_s.as_str()),
                        (
                            "response_groups",
                            "contributors,media,product_attrs,product_desc,series",
                        ),
                        ("sort_by", "-DateAdded"),
                    ],
                )
                .await?;
            let products =
                v.get("products")
                    .and_then(Value::as_array)
                    .ok_or(AudibleError::Garbage {
                        what: "the wishlist",
                        problem: "no \"products\" list".into(),
                    })?;
            let total = v.get("total_results").and_then(Value::as_u64);
            seen += products.len() as u64;
            for p in products {
                match map_wishlist_product(p) {
                    Ok(r) => sync.records.push(r),
                    Err(problem) => sync.failures.push((
                        p.get("asin").and_then(Value::as_str).map(str::to_owned),
                        problem,
                    )),
                }
            }
            if products.len() < WISHLIST_PAGE_SIZE || total.is_some_and(|t| seen >= t) {
                break;
            }
        }
        Ok(sync)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration as D;

    #[test]
    fn retries_back_off_doubling_follow_retry_after_and_give_up() {
        let policy = RetryPolicy {
            attempts: 4,
            first_backoff: D::from_secs(2),
            max_wait: D::from_secs(30),
        };
        assert_eq!(policy.wait_before_retry(1, None), Some(D::from_secs(2)));
        assert_eq!(policy.wait_before_retry(2, None), Some(D::from_secs(4)));
        assert_eq!(policy.wait_before_retry(3, None), Some(D::from_secs(8)));
        // Attempts used up.
        assert_eq!(policy.wait_before_retry(4, None), None);
        // Audible's own hint wins, within bounds; a longer pause ends the retries.
        assert_eq!(
            policy.wait_before_retry(1, Some(D::from_secs(7))),
            Some(D::from_secs(7))
        );
        assert_eq!(policy.wait_before_retry(1, Some(D::from_secs(31))), None);
    }

    #[test]
    fn only_passing_failures_are_retried() {
        assert!(retryable(&AudibleError::Outage {
            reason: "HTTP 503".into(),
            retry_after: None
        }));
        assert!(retryable(&AudibleError::RateLimited { retry_after: None }));
        assert!(!retryable(&AudibleError::NeedsReauth {
            reason: "HTTP 401".into()
        }));
        assert!(!retryable(&AudibleError::BudgetExhausted {
            retry_after: D::from_secs(1)
        }));
    }
}
