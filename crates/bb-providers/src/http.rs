//! The shared outbound HTTP client and the one classification of provider answers.
//!
//! Every provider call goes through [`build_client`]: it never follows redirects (a token
//! endpoint that redirects could hand a code or secret to another host — RFC 6749 10.9,
//! SECURITY.md A9), it has connect and total timeouts, and it says who we are. Answers are
//! sorted by [`classify_status`] / [`classify_transport`] into the few outcomes callers act
//! on differently: an outage (retry later, the connection stays active), a rate limit (retry
//! after the provider's `Retry-After`), and a rejection (the request or its credentials are
//! wrong; retrying will not help).
//!
//! Nothing here logs or returns a body or a header value: either may carry a token.

use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::{StatusCode, redirect};

/// `User-Agent` of every outbound request. Public APIs (OpenLibrary and friends) ask for one
/// that names the client.
pub const USER_AGENT: &str = concat!("bookbridge/", env!("CARGO_PKG_VERSION"));

/// The largest response body we read. Token and userinfo answers are a few hundred bytes; a
/// provider sending megabytes is broken, and we must not buffer it.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Timeouts of the shared client.
#[derive(Debug, Clone, Copy)]
pub struct HttpSettings {
    /// Time allowed to open the TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Time allowed for the whole request, body included.
    pub timeout: Duration,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
        }
    }
}

/// The client could not be built (the TLS backend failed to initialise).
#[derive(Debug, thiserror::Error)]
#[error("could not build the outbound HTTP client")]
pub struct ClientBuildError;

/// Builds the outbound client: rustls, no redirects, timeouts, our `User-Agent`.
pub fn build_client(settings: HttpSettings) -> Result<reqwest::Client, ClientBuildError> {
    reqwest::Client::builder()
        .redirect(redirect::Policy::none())
        .connect_timeout(settings.connect_timeout)
        .timeout(settings.timeout)
        .user_agent(USER_AGENT)
        .build()
        .map_err(|_| ClientBuildError)
}

/// Why a provider is considered down rather than saying no.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutageKind {
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be opened (refused, DNS, TLS).
    Connect,
    /// The connection broke mid-request, or another transport failure.
    Transport,
    /// A 5xx other than a 503 carrying `Retry-After`.
    ServerError(u16),
    /// A status no well-behaved endpoint answers with here (a redirect, 1xx): the provider or
    /// its URL in our configuration is wrong, which is not the user's fault either.
    UnexpectedStatus(u16),
    /// A success status with a body that is not what the protocol promises (HTML, truncated
    /// JSON, missing fields, too large).
    GarbageBody,
}

/// How a provider answered, for the decision the caller must make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    /// 2xx.
    Success,
    /// 429, or 503 with a usable `Retry-After`: come back later. `retry_after` is `None` when
    /// the provider gave no (parseable) hint; the caller uses its own backoff.
    RateLimited { retry_after: Option<Duration> },
    /// The provider is down or broken; retry later with backoff.
    Outage(OutageKind),
    /// A 4xx (other than 429): the request or its credentials are wrong.
    Rejected { status: u16 },
}

/// Sorts an answer by its status and headers. `now` turns an HTTP-date `Retry-After` into a
/// delay; pass the injected clock's time.
pub fn classify_status(
    status: StatusCode,
    headers: &HeaderMap,
    now: DateTime<Utc>,
) -> ResponseClass {
    let retry_after = || {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now))
    };
    match status.as_u16() {
        200..=299 => ResponseClass::Success,
        429 => ResponseClass::RateLimited {
            retry_after: retry_after(),
        },
        // RFC 7009 2.2.1 and common practice: a 503 with Retry-After is "not now", and the
        // hint is worth more than our backoff. Without it, it is an ordinary outage.
        503 => match retry_after() {
            Some(delay) => ResponseClass::RateLimited {
                retry_after: Some(delay),
            },
            None => ResponseClass::Outage(OutageKind::ServerError(503)),
        },
        code @ 400..=499 => ResponseClass::Rejected { status: code },
        code @ 500..=599 => ResponseClass::Outage(OutageKind::ServerError(code)),
        code => ResponseClass::Outage(OutageKind::UnexpectedStatus(code)),
    }
}

/// Sorts a transport failure (no usable answer at all). Every such failure is an outage:
/// none of them says anything about the user's credentials.
pub fn classify_transport(err: &reqwest::Error) -> OutageKind {
    if err.is_timeout() {
        OutageKind::Timeout
    } else if err.is_connect() {
        OutageKind::Connect
    } else if err.is_body() || err.is_decode() {
        OutageKind::GarbageBody
    } else {
        OutageKind::Transport
    }
}

/// Parses `Retry-After` (RFC 9110 10.2.3): delay-seconds or an HTTP-date. A date in the past
/// means "now" (zero). Unparseable values give `None`.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    // IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT") is what servers send; chrono's RFC 2822
    // parser accepts it, including the `GMT` zone. The obsolete RFC 850 and asctime forms are
    // not worth a dependency: they fall back to the caller's backoff.
    let at = DateTime::parse_from_rfc2822(value)
        .ok()?
        .with_timezone(&Utc);
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

/// Reads a body up to [`MAX_BODY_BYTES`]. A body that is too large or breaks off is garbage.
pub async fn read_body_capped(response: reqwest::Response) -> Result<Vec<u8>, OutageKind> {
    read_body_limited(response, MAX_BODY_BYTES).await
}

/// [`read_body_capped`] with another limit, for listings that are large by design (an
/// Audible library page of 1000 titles is several MiB).
pub async fn read_body_limited(
    mut response: reqwest::Response,
    max_bytes: usize,
) -> Result<Vec<u8>, OutageKind> {
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        return Err(OutageKind::GarbageBody);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| classify_transport(&e))? {
        if body.len() + chunk.len() > max_bytes {
            return Err(OutageKind::GarbageBody);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Sends a request and reads its answer, classifying transport failures. The status and
/// headers are returned for [`classify_status`]; the body is capped.
pub async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), OutageKind> {
    send_limited(request, MAX_BODY_BYTES).await
}

/// [`send`] with another body limit (see [`read_body_limited`]).
pub async fn send_limited(
    request: reqwest::RequestBuilder,
    max_bytes: usize,
) -> Result<(StatusCode, HeaderMap, Vec<u8>), OutageKind> {
    let response = request.send().await.map_err(|e| classify_transport(&e))?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = read_body_limited(response, max_bytes).await?;
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use reqwest::header::HeaderValue;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 1, 12, 0, 0).unwrap()
    }

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(v) = retry_after {
            h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        assert_eq!(parse_retry_after("120", at()), Some(Duration::from_mins(2)));
        assert_eq!(
            parse_retry_after("Sun, 01 Nov 2026 12:01:30 GMT", at()),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Sun, 01 Nov 2026 11:00:00 GMT", at()),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", at()), None);
        assert_eq!(parse_retry_after("-5", at()), None);
    }

    #[test]
    fn statuses_are_sorted_for_the_caller() {
        let c = |s: u16, ra: Option<&str>| {
            classify_status(StatusCode::from_u16(s).unwrap(), &headers(ra), at())
        };
        assert_eq!(c(200, None), ResponseClass::Success);
        assert_eq!(c(204, None), ResponseClass::Success);
        assert_eq!(
            c(429, Some("7")),
            ResponseClass::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        assert_eq!(
            c(429, None),
            ResponseClass::RateLimited { retry_after: None }
        );
        assert_eq!(
            c(503, Some("Sun, 01 Nov 2026 12:00:10 GMT")),
            ResponseClass::RateLimited {
                retry_after: Some(Duration::from_secs(10))
            }
        );
        assert_eq!(
            c(503, None),
            ResponseClass::Outage(OutageKind::ServerError(503))
        );
        assert_eq!(
            c(500, None),
            ResponseClass::Outage(OutageKind::ServerError(500))
        );
        assert_eq!(c(400, None), ResponseClass::Rejected { status: 400 });
        assert_eq!(c(401, None), ResponseClass::Rejected { status: 401 });
        assert_eq!(
            c(302, None),
            ResponseClass::Outage(OutageKind::UnexpectedStatus(302))
        );
    }

    #[test]
    fn user_agent_names_us_and_our_version() {
        assert!(USER_AGENT.starts_with("bookbridge/"));
        assert!(USER_AGENT.len() > "bookbridge/".len());
    }
}
