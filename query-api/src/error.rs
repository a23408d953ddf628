//! The HTTP error type: a stable code, a status and a precise message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tracing::error;

use crate::store::StoreError;

/// Why a query was not answered.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A path or query parameter is invalid: 400.
    #[error("invalid parameter `{parameter}`: {message}")]
    InvalidParameter {
        parameter: &'static str,
        message: String,
    },
    /// A query parameter the endpoint does not know: 400.
    #[error("unknown parameter `{parameter}` (known: {known})")]
    UnknownParameter { parameter: String, known: String },
    /// No or an unknown API key: 401.
    #[error("missing or unknown API key; send `Authorization: Bearer <key>`")]
    Unauthenticated,
    /// The key lacks the scope: 403.
    #[error("this API key may not {action}")]
    Forbidden { action: &'static str },
    /// The broker or the delivery configuration cannot be used now: 503.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// A bug on our side: 500.
    #[error("internal error")]
    Internal(String),
    /// The request did not answer within `--query-deadline`: 503.
    #[error("the query did not finish within {deadline:?}; retry later or narrow it")]
    DeadlineExceeded { deadline: std::time::Duration },
    /// No endpoint at this path: 404.
    #[error("no endpoint at {path}")]
    NotFound { path: String },
    /// The endpoint does not take this method: 405.
    #[error("{path} does not take {method}")]
    MethodNotAllowed { method: String, path: String },
    /// The store failed: 503.
    #[error("store unavailable")]
    Store(StoreError),
}

impl From<StoreError> for ApiError {
    /// A request the store cannot answer as asked is the client's to change
    /// (400 naming the parameter); any other store failure is a 503.
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unanswerable { parameter, message } => {
                Self::InvalidParameter { parameter, message }
            }
            other => Self::Store(other),
        }
    }
}

impl ApiError {
    /// The status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidParameter { .. } | Self::UnknownParameter { .. } => {
                StatusCode::BAD_REQUEST
            }
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) | Self::DeadlineExceeded { .. } | Self::Store(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::InvalidParameter { parameter, message } => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": {
                    "code": "invalid_parameter",
                    "parameter": parameter,
                    "message": format!("`{parameter}` {message}"),
                }})),
            )
                .into_response(),
            ApiError::UnknownParameter { parameter, .. } => (
                StatusCode::BAD_REQUEST,
                Json(json!({ "error": {
                    "code": "unknown_parameter",
                    "parameter": parameter,
                    "message": self.to_string(),
                }})),
            )
                .into_response(),
            ApiError::Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                [(axum::http::header::WWW_AUTHENTICATE, "Bearer")],
                Json(
                    json!({ "error": { "code": "unauthenticated", "message": self.to_string() } }),
                ),
            )
                .into_response(),
            ApiError::Forbidden { .. } => (
                StatusCode::FORBIDDEN,
                Json(json!({ "error": { "code": "forbidden", "message": self.to_string() } })),
            )
                .into_response(),
            ApiError::DeadlineExceeded { .. } => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(axum::http::header::RETRY_AFTER, "1")],
                Json(
                    json!({ "error": { "code": "deadline_exceeded", "message": self.to_string() } }),
                ),
            )
                .into_response(),
            ApiError::NotFound { .. } => (
                StatusCode::NOT_FOUND,
                Json(json!({ "error": { "code": "not_found", "message": self.to_string() } })),
            )
                .into_response(),
            ApiError::MethodNotAllowed { .. } => (
                StatusCode::METHOD_NOT_ALLOWED,
                Json(
                    json!({ "error": { "code": "method_not_allowed", "message": self.to_string() } }),
                ),
            )
                .into_response(),
            ApiError::Internal(reason) => {
                error!(reason, "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({ "error": { "code": "internal", "message": self.to_string() } })),
                )
                    .into_response()
            }
            ApiError::Unavailable(reason) => {
                error!(reason, "admin operation failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(
                        json!({ "error": { "code": "unavailable", "message": self.to_string() } }),
                    ),
                )
                    .into_response()
            }
            ApiError::Store(err) => {
                error!(error = %err, "store query failed");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    Json(
                        json!({ "error": { "code": "unavailable", "message": self.to_string() } }),
                    ),
                )
                    .into_response()
            }
        }
    }
}
