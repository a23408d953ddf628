//! How long each request took, by service, route and status: one histogram
//! for every Eventide listener.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Seconds from a request's head to its response's head, by `service`,
/// `route` (the matched pattern, or `unmatched`) and `status`.
pub const REQUEST_SECONDS: &str = "eventide_http_request_seconds";

/// Middleware recording [`REQUEST_SECONDS`]; its state is the service name:
/// `router.layer(axum::middleware::from_fn_with_state("ingest", http_serve::timed))`.
pub async fn timed(
    State(service): State<&'static str>,
    matched: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let route = matched.map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(
        REQUEST_SECONDS,
        "service" => service,
        "route" => route,
        "status" => response.status().as_u16().to_string()
    )
    .record(started.elapsed().as_secs_f64());
    response
}
