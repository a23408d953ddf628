//! The HTTP error type: every failure maps to a status and a body
//! `{"error": {"code", "message", "field"?, "rule"?, "violations"?}}`,
//! never internal error text.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::disk::LowDisk;
use crate::encoding::DecodeError;
use crate::sink::SinkError;
use crate::validation::{ValidationError, Violation};

/// Seconds a client should wait before retrying a 503.
const UNAVAILABLE_RETRY_SECS: u64 = 1;
/// Seconds a client should wait before retrying while the disk is low:
/// space is freed by an operator, not in a second.
const LOW_DISK_RETRY_SECS: u64 = 10;

/// The rule a record breaks when it names a destination its key may not.
pub const DESTINATION_NOT_ALLOWED: &str = "destination_not_allowed";

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body broke a rule: 400.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// No or an unknown API key: 401.
    #[error("missing or unknown API key; send `Authorization: Bearer <key>`")]
    Unauthenticated,
    /// The key lacks the scope: 403.
    #[error("this API key may not {action}")]
    Forbidden { action: &'static str },
    /// The record names a destination the key may not name: 403.
    #[error("this API key may not name destination {name:?}; it may name {allowed:?}")]
    DestinationNotAllowed { name: String, allowed: Vec<String> },
    /// The body is larger than `--max-body`: 413.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The body did not arrive within `--http-body-timeout`: 408.
    #[error("the request body did not arrive within the body timeout")]
    BodyTimeout,
    /// The body is not valid in its declared `Content-Encoding`: 400.
    #[error("body is not valid {encoding}: {reason}")]
    CorruptEncoding {
        encoding: &'static str,
        reason: String,
    },
    /// The connection failed while the body was read: 400.
    #[error("the request body could not be read whole")]
    BodyUnreadable,
    /// The record is larger than the broker accepts: 413.
    #[error("record too large for the broker")]
    RecordTooLarge,
    /// The body is not declared as JSON: 415.
    #[error("content type must be application/json")]
    UnsupportedMediaType,
    /// The body is compressed with an encoding ingest does not read: 415.
    #[error("content encoding {0:?} is not supported; send gzip, deflate, zstd or identity")]
    UnsupportedEncoding(String),
    /// The key's rate limit is spent: 429.
    #[error("rate limit exceeded; retry after {retry_after_secs}s")]
    RateLimited { retry_after_secs: u64 },
    /// No endpoint at this path: 404.
    #[error("no endpoint at {path}")]
    NotFound { path: String },
    /// The endpoint does not take this method: 405.
    #[error("{path} does not take {method}")]
    MethodNotAllowed { method: String, path: String },
    /// The data dir is below `--min-free-disk`: 503 until space is freed.
    #[error(transparent)]
    LowDisk(#[from] LowDisk),
    /// The broker or schema registry cannot take the write now: 503.
    #[error("temporarily unavailable ({why}); retry later")]
    Unavailable { why: &'static str },
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::BodyUnreadable | ApiError::CorruptEncoding { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } | ApiError::DestinationNotAllowed { .. } => {
                StatusCode::FORBIDDEN
            }
            ApiError::BodyTooLarge { .. } | ApiError::RecordTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::UnsupportedMediaType | ApiError::UnsupportedEncoding(_) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } | ApiError::LowDisk(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::BodyUnreadable => "body_unreadable",
            ApiError::CorruptEncoding { .. } => "corrupt_encoding",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::Forbidden { .. } | ApiError::DestinationNotAllowed { .. } => "forbidden",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::RecordTooLarge => "record_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::UnsupportedEncoding(_) => "unsupported_encoding",
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable { .. } => "unavailable",
            ApiError::LowDisk(_) => "low_disk",
        }
    }

    /// The first violation, for invalid requests.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            ApiError::Invalid(err) => err.first(),
            _ => None,
        }
    }

    /// The metrics and rejects reason: the first rule for invalid requests,
    /// else the code.
    pub fn reason(&self) -> String {
        if let ApiError::DestinationNotAllowed { .. } = self {
            return DESTINATION_NOT_ALLOWED.to_owned();
        }
        self.violation()
            .and_then(|v| serde_json::to_value(v.rule).ok())
            .and_then(|rule| rule.as_str().map(str::to_owned))
            .unwrap_or_else(|| self.code().to_owned())
    }

    /// The `{"code", "message", ...}` object.
    pub fn body(&self) -> Value {
        match self {
            ApiError::Invalid(err) => {
                let first = err.first();
                json!({
                    "code": self.code(),
                    "message": err.to_string(),
                    "field": first.and_then(|v| v.field.clone()),
                    "rule": first.map(|v| v.rule),
                    "violations": err.violations,
                })
            }
            ApiError::DestinationNotAllowed { .. } => json!({
                "code": self.code(),
                "message": self.to_string(),
                "field": "destinations",
                "rule": DESTINATION_NOT_ALLOWED,
            }),
            other => json!({ "code": other.code(), "message": other.to_string() }),
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            ApiError::Unavailable { .. } => Some(UNAVAILABLE_RETRY_SECS),
            ApiError::LowDisk(_) => Some(LOW_DISK_RETRY_SECS),
            _ => None,
        }
    }

    /// A 429 for a wait of `wait`, rounded up to whole seconds.
    pub fn rate_limited(wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError::RateLimited {
            retry_after_secs: secs.max(1),
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Unsupported(coding) => ApiError::UnsupportedEncoding(coding),
            DecodeError::TooLarge { limit } => ApiError::BodyTooLarge { limit },
            DecodeError::Corrupt { encoding, reason } => {
                ApiError::CorruptEncoding { encoding, reason }
            }
        }
    }
}

impl From<SinkError> for ApiError {
    fn from(err: SinkError) -> Self {
        match err {
            SinkError::TooLarge => ApiError::RecordTooLarge,
            SinkError::QueueFull => ApiError::Unavailable {
                why: "the producer queue is full",
            },
            SinkError::BrokersDown => ApiError::Unavailable {
                why: "no broker is reachable",
            },
            SinkError::Unavailable(_) => ApiError::Unavailable {
                why: "the broker did not acknowledge in time",
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status(), Json(json!({ "error": self.body() }))).into_response();
        if let Some(secs) = self.retry_after() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if matches!(self, ApiError::Unauthenticated) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert!(matches!(
            ApiError::rate_limited(Duration::from_millis(1)),
            ApiError::RateLimited {
                retry_after_secs: 1
            }
        ));
        assert!(matches!(
            ApiError::rate_limited(Duration::from_millis(1500)),
            ApiError::RateLimited {
                retry_after_secs: 2
            }
        ));
    }
}
