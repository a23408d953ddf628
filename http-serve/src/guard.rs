//! The checks every request passes before its handler: the request target
//! and header fields within their limits, and a deadline on its body. What
//! the HTTP layer would refuse with an empty body is answered here in the
//! documented error format, `{"error": {"code", "message"}}`.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::{Frame, SizeHint};
use serde_json::json;
use tokio::time::{Instant, Sleep};
use tracing::debug;

use crate::limits::{Limits, MAX_HEADER_FIELDS};

/// Requests refused by a listener's limits, by `reason`.
pub const REFUSED_METRIC: &str = "eventide_http_refused_total";

/// Why a request was refused before its handler answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The request target is longer than `--http-max-uri-bytes`: 414.
    #[error("request target of {length} bytes is longer than the limit of {limit} bytes")]
    UriTooLong { length: usize, limit: u32 },
    /// The header fields take more than `--http-max-header-bytes`: 431.
    #[error("header fields of {length} bytes are larger than the limit of {limit} bytes")]
    HeadersTooLarge { length: usize, limit: u32 },
    /// More header fields than [`MAX_HEADER_FIELDS`]: 431.
    #[error("{count} header fields are more than the limit of {MAX_HEADER_FIELDS}")]
    TooManyHeaders { count: usize },
    /// The body did not arrive within `--http-body-timeout`: 408.
    #[error("the request body did not arrive within {timeout:?}")]
    BodyTimeout { timeout: Duration },
}

impl Refusal {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::UriTooLong { .. } => StatusCode::URI_TOO_LONG,
            Refusal::HeadersTooLarge { .. } | Refusal::TooManyHeaders { .. } => {
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
            }
            Refusal::BodyTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::UriTooLong { .. } => "uri_too_long",
            Refusal::HeadersTooLarge { .. } => "headers_too_large",
            Refusal::TooManyHeaders { .. } => "too_many_headers",
            Refusal::BodyTimeout { .. } => "body_timeout",
        }
    }

    /// What the request's head breaks, if anything.
    fn of_head(request: &Request, limits: &Limits) -> Option<Self> {
        let target = request
            .uri()
            .path_and_query()
            .map_or(0, |target| target.as_str().len());
        if target > limits.max_uri_bytes as usize {
            return Some(Refusal::UriTooLong {
                length: target,
                limit: limits.max_uri_bytes,
            });
        }
        let headers = request.headers();
        if headers.len() > MAX_HEADER_FIELDS {
            return Some(Refusal::TooManyHeaders {
                count: headers.len(),
            });
        }
        // As sent: `name: value\r\n` for each field.
        let length: usize = headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len() + 4)
            .sum();
        (length > limits.max_header_bytes as usize).then_some(Refusal::HeadersTooLarge {
            length,
            limit: limits.max_header_bytes,
        })
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        metrics::counter!(REFUSED_METRIC, "reason" => self.code()).increment(1);
        debug!(
            reason = self.code(),
            "request refused by the listener's limits"
        );
        let mut response = (
            self.status(),
            Json(json!({ "error": { "code": self.code(), "message": self.to_string() } })),
        )
            .into_response();
        // A body that never came, or a head that was not read whole, leaves
        // the connection in an unknown state: close it.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        response
    }
}

/// The error a request body gives when its deadline passes; handlers may
/// recognise it with [`is_body_timeout`] to answer `408` themselves.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether `err`, or any error it was caused by, is a body deadline passing.
pub fn is_body_timeout(err: &(dyn StdError + 'static)) -> bool {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if err.is::<BodyTimedOut>() {
            return true;
        }
        cause = err.source();
    }
    false
}

/// The middleware: refuses a head over the limits, gives the body a
/// deadline, and answers `408` if that deadline passed while the handler
/// read it, whatever the handler made of the error.
pub(crate) async fn guard(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    if let Some(refusal) = Refusal::of_head(&request, &limits) {
        return refusal.into_response();
    }
    let expired = Arc::new(AtomicBool::new(false));
    let (parts, body) = request.into_parts();
    let body = Body::new(Deadline {
        inner: body,
        sleep: tokio::time::sleep_until(Instant::now() + limits.body_timeout),
        expired: Arc::clone(&expired),
    });
    let response = next.run(Request::from_parts(parts, body)).await;
    if expired.load(Ordering::Acquire) {
        return Refusal::BodyTimeout {
            timeout: limits.body_timeout,
        }
        .into_response();
    }
    response
}

pin_project_lite::pin_project! {
    /// A body that fails with [`BodyTimedOut`] once its deadline passes.
    struct Deadline {
        #[pin]
        inner: Body,
        #[pin]
        sleep: Sleep,
        expired: Arc<AtomicBool>,
    }
}

impl http_body::Body for Deadline {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame);
        }
        match this.sleep.poll(cx) {
            Poll::Ready(()) => {
                this.expired.store(true, Ordering::Release);
                Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
