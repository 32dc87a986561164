//! Private wire handling: the one place an Audible/Amazon HTTP answer is sorted into a body
//! to parse or an [`AudibleError`], and the small JSON readers the endpoints share.

use chrono::{DateTime, NaiveDateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, HeaderMap};
use serde_json::Value;

use super::AudibleError;
use crate::http::{self, OutageKind, ResponseClass};

/// How a 4xx (other than 429) is read at a given endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum On4xx {
    /// API calls: 401/403 mean the device or token is no longer accepted; other 4xx are our
    /// request being wrong.
    Api,
    /// `/auth/register`: any refusal is about the code (§3: "treat any `response.error` as
    /// re-login needed").
    Register,
    /// `/auth/token`: any 4xx means the refresh token is dead (§5, unverified body shape).
    Refresh,
}

/// Sorts a transport failure.
pub(crate) fn transport(kind: OutageKind) -> AudibleError {
    AudibleError::Outage {
        reason: outage_reason(kind),
        retry_after: None,
    }
}

fn outage_reason(kind: OutageKind) -> String {
    match kind {
        OutageKind::Timeout => "no answer in time".into(),
        OutageKind::Connect => "could not connect".into(),
        OutageKind::Transport => "the connection broke".into(),
        OutageKind::ServerError(code) => format!("HTTP {code}"),
        OutageKind::UnexpectedStatus(code) => format!("unexpected HTTP {code}"),
        OutageKind::GarbageBody => "the answer was cut off or too large".into(),
    }
}

/// The body of a successful JSON answer, or the error the status and body mean.
pub(crate) fn json_answer(
    what: &'static str,
    on_4xx: On4xx,
    (status, headers, body): (StatusCode, HeaderMap, Vec<u8>),
    now: DateTime<Utc>,
) -> Result<Value, AudibleError> {
    match http::classify_status(status, &headers, now) {
        ResponseClass::Success => parse_json(what, &headers, &body),
        ResponseClass::RateLimited { retry_after } => {
            Err(AudibleError::RateLimited { retry_after })
        }
        ResponseClass::Outage(kind) => Err(AudibleError::Outage {
            reason: if is_html(&headers, &body) {
                format!("{}, maintenance page", outage_reason(kind))
            } else {
                outage_reason(kind)
            },
            retry_after: None,
        }),
        ResponseClass::Rejected { status } => {
            let message = error_message(&body);
            Err(match on_4xx {
                On4xx::Api if status == 401 || status == 403 => AudibleError::NeedsReauth {
                    reason: format!("HTTP {status} from {what}"),
                },
                On4xx::Api => AudibleError::Rejected {
                    what,
                    status,
                    message,
                },
                On4xx::Register => AudibleError::CodeRejected { reason: message },
                On4xx::Refresh => AudibleError::NeedsReauth {
                    reason: format!("the token refresh was refused (HTTP {status})"),
                },
            })
        }
    }
}

fn is_html(headers: &HeaderMap, body: &[u8]) -> bool {
    let ct = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    ct.contains("html")
        || body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'<')
}

/// JSON or a clear error. Checks the Content-Type first (§10: maintenance pages are HTML).
fn parse_json(what: &'static str, headers: &HeaderMap, body: &[u8]) -> Result<Value, AudibleError> {
    if is_html(headers, body) {
        return Err(AudibleError::Garbage {
            what,
            problem: "an HTML page instead of JSON".into(),
        });
    }
    serde_json::from_slice(body).map_err(|e| AudibleError::Garbage {
        what,
        problem: format!("not JSON ({})", e.classify_name()),
    })
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Io => "unreadable",
            serde_json::error::Category::Syntax => "syntax error",
            serde_json::error::Category::Data => "unexpected data",
            serde_json::error::Category::Eof => "cut off",
        }
    }
}

/// A short, printable error message from one of the documented error shapes:
/// `{"message"}`, `{"response":{"error":{"code","message"}}}`, `{"error","error_description"}`.
/// Truncated and stripped of control characters; never includes tokens (Amazon's messages
/// are fixed texts, and we take only these fields).
fn error_message(body: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let envelope = v.pointer("/response/error");
    let text = envelope
        .and_then(|e| {
            let code = e.get("code").and_then(Value::as_str);
            let msg = e.get("message").and_then(Value::as_str);
            match (code, msg) {
                (Some(c), Some(m)) => Some(format!("{c}: {m}")),
                (Some(c), None) => Some(c.to_owned()),
                (None, Some(m)) => Some(m.to_owned()),
                (None, None) => None,
            }
        })
        .or_else(|| v.get("message").and_then(Value::as_str).map(str::to_owned))
        .or_else(|| {
            let e = v.get("error").and_then(Value::as_str)?;
            Some(match v.get("error_description").and_then(Value::as_str) {
                Some(d) => format!("{e}: {d}"),
                None => e.to_owned(),
            })
        })?;
    let clean: String = text.chars().filter(|c| !c.is_control()).take(200).collect();
    (!clean.trim().is_empty()).then_some(clean)
}

/// A string at `pointer`, or a clear error naming the field.
pub(crate) fn required_str<'a>(
    v: &'a Value,
    what: &'static str,
    pointer: &str,
) -> Result<&'a str, AudibleError> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| AudibleError::Garbage {
            what,
            problem: format!("no {}", pointer.trim_start_matches('/').replace('/', ".")),
        })
}

/// `expires_in` as a number or a numeric string (§3); 3600 when absent (§5).
pub(crate) fn expires_in(v: Option<&Value>) -> Result<i64, String> {
    match v {
        None | Some(Value::Null) => Ok(3600),
        Some(Value::Number(n)) => n
            .as_i64()
            .filter(|s| *s > 0)
            .ok_or_else(|| format!("expires_in is {n}")),
        Some(Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|s| *s > 0)
            .ok_or_else(|| "expires_in is not a number of seconds".to_owned()),
        Some(_) => Err("expires_in is neither a number nor text".into()),
    }
}

/// A UTC timestamp in the forms the API uses: RFC 3339 (`…Z`, `…+00:00`), and the
/// zone-less `2025-02-11 20:14:07.512` of lastpositions (§8.1: assume UTC).
pub(crate) fn parse_utc(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|n| n.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn at() -> DateTime<Utc> {
        parse_utc("2026-11-01T12:00:00Z").unwrap()
    }

    fn answer(status: u16, ct: &str, body: &str, on: On4xx) -> Result<Value, AudibleError> {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        json_answer(
            "the library",
            on,
            (
                StatusCode::from_u16(status).unwrap(),
                h,
                body.as_bytes().to_vec(),
            ),
            at(),
        )
    }

    #[test]
    fn statuses_become_decisions() {
        let json = "application/json";
        assert!(answer(200, json, "{}", On4xx::Api).is_ok());
        assert!(
            answer(
                401,
                json,
                r#"{"message":"Request could not be authenticated"}"#,
                On4xx::Api
            )
            .unwrap_err()
            .needs_reauth()
        );
        assert!(
            answer(403, json, "{}", On4xx::Api)
                .unwrap_err()
                .needs_reauth()
        );
        let e = answer(
            400,
            json,
            r#"{"message":"Invalid response group"}"#,
            On4xx::Api,
        )
        .unwrap_err();
        assert!(e.to_string().contains("Invalid response group"), "{e}");
        assert!(!e.is_transient() && !e.needs_reauth());
        let e = answer(
            503,
            "text/html",
            "<html>Website Temporarily Unavailable</html>",
            On4xx::Api,
        )
        .unwrap_err();
        assert!(e.is_transient(), "{e}");
        assert!(e.to_string().contains("maintenance page"), "{e}");
        assert!(
            answer(500, json, r#"{"message":"Whoops!"}"#, On4xx::Api)
                .unwrap_err()
                .is_transient()
        );
        assert!(
            answer(429, json, "{}", On4xx::Api)
                .unwrap_err()
                .is_transient()
        );
        let e = answer(400, json, r#"{"request_id":"x","response":{"error":{"code":"InvalidValue","message":"code used"}}}"#, On4xx::Register).unwrap_err();
        assert!(matches!(e, AudibleError::CodeRejected { .. }));
        assert!(e.to_string().contains("InvalidValue: code used"), "{e}");
        assert!(
            answer(400, json, r#"{"error":"invalid_grant"}"#, On4xx::Refresh)
                .unwrap_err()
                .needs_reauth()
        );
    }

    #[test]
    fn garbage_is_named() {
        let e = answer(200, "text/html", "<html>", On4xx::Api).unwrap_err();
        assert!(matches!(e, AudibleError::Garbage { .. }));
        assert!(e.to_string().contains("HTML"), "{e}");
        let e = answer(200, "application/json", "{\"items\": [", On4xx::Api).unwrap_err();
        assert!(e.to_string().contains("the library"), "{e}");
        assert!(e.to_string().contains("cut off"), "{e}");
    }

    #[test]
    fn expiry_and_timestamps_in_every_observed_shape() {
        assert_eq!(expires_in(Some(&Value::from("3600"))), Ok(3600));
        assert_eq!(expires_in(Some(&Value::from(1800))), Ok(1800));
        assert_eq!(expires_in(None), Ok(3600));
        assert!(expires_in(Some(&Value::from("soon"))).is_err());
        assert!(expires_in(Some(&Value::from(-1))).is_err());
        let want = parse_utc("2025-02-11T20:14:07.512Z").unwrap();
        assert_eq!(parse_utc("2025-02-11 20:14:07.512"), Some(want));
        assert_eq!(parse_utc("2025-02-11T20:14:07.512+00:00"), Some(want));
        assert_eq!(parse_utc("yesterday"), None);
    }
}
