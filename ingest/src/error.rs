//! The HTTP error type: every failure maps to a stable code, a status and a
//! precise message, never internal error text.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::sink::SinkError;
use crate::validation::{ValidationError, Violation};

/// Seconds a client should wait before retrying a 503.
const RETRY_AFTER_SECS: u64 = 1;

/// Why a request was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body broke a rule: 400.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// The body is larger than `--max-body`: 413.
    #[error("request body larger than {limit} bytes")]
    BodyTooLarge { limit: usize },
    /// The record is larger than the broker accepts: 413.
    #[error("record too large for the broker")]
    RecordTooLarge,
    /// The broker or schema registry cannot take the write now: 503.
    #[error("temporarily unavailable")]
    Unavailable,
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) => StatusCode::BAD_REQUEST,
            ApiError::BodyTooLarge { .. } | ApiError::RecordTooLarge => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(_) => "invalid_request",
            ApiError::BodyTooLarge { .. } => "body_too_large",
            ApiError::RecordTooLarge => "record_too_large",
            ApiError::Unavailable => "unavailable",
        }
    }

    /// The first violation, for invalid requests.
    pub fn violation(&self) -> Option<&Violation> {
        match self {
            ApiError::Invalid(err) => err.first(),
            _ => None,
        }
    }
}

impl From<SinkError> for ApiError {
    fn from(err: SinkError) -> Self {
        match err {
            SinkError::TooLarge => ApiError::RecordTooLarge,
            SinkError::QueueFull | SinkError::Unavailable(_) => ApiError::Unavailable,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = match &self {
            ApiError::Invalid(err) => {
                let first = err.first();
                json!({
                    "error": self.code(),
                    "message": err.to_string(),
                    "field": first.and_then(|v| v.field.clone()),
                    "rule": first.map(|v| v.rule),
                    "violations": err.violations,
                })
            }
            other => json!({ "error": other.code(), "message": other.to_string() }),
        };
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
        }
        response
    }
}
