//! Bounded work per analyst request: at most `--query-concurrency` reads run
//! at once (the rest wait their turn), and a request that has not answered
//! within `--query-deadline`, waiting included, is a `503` with
//! `Retry-After`. In the all-in-one, analysts can never starve ingest of the
//! store or the CPU; in split deployments the same limits protect each pod.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// The limits every analyst request runs under.
#[derive(Debug, Clone)]
pub struct QueryLimits {
    /// One permit per read that may run at once.
    permits: Arc<Semaphore>,
    /// The longest a request may take, waiting for a permit included.
    deadline: Duration,
}

impl QueryLimits {
    /// At most `concurrency` reads at once (at least one), each answered
    /// within `deadline`.
    pub fn new(concurrency: usize, deadline: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            deadline,
        }
    }
}

/// Runs `work` within the limits: its response, or
/// [`ApiError::DeadlineExceeded`] once the deadline passes.
pub(crate) async fn within(
    limits: &QueryLimits,
    work: impl Future<Output = Response>,
) -> Result<Response, ApiError> {
    let work = async {
        // A closed semaphore never happens (it lives as long as the state);
        // without a permit the request still runs rather than fail.
        let _permit = limits.permits.acquire().await.ok();
        work.await
    };
    tokio::time::timeout(limits.deadline, work)
        .await
        .map_err(|_| ApiError::DeadlineExceeded {
            deadline: limits.deadline,
        })
}

/// Runs a request within the limits; past the deadline, the API's JSON
/// `503`.
pub(crate) async fn bounded(
    State(limits): State<QueryLimits>,
    request: Request,
    next: Next,
) -> Response {
    within(&limits, next.run(request))
        .await
        .unwrap_or_else(IntoResponse::into_response)
}

#[cfg(test)]
mod tests {
    use axum::Router;
    use axum::body::Body;
    use axum::http::StatusCode;
    use axum::routing::get;
    use tower::ServiceExt;

    use super::*;

    fn app(limits: QueryLimits) -> Router {
        Router::new()
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    "done"
                }),
            )
            .route_layer(axum::middleware::from_fn_with_state(limits, bounded))
    }

    fn get_slow() -> Request {
        Request::builder()
            .uri("/slow")
            .body(Body::empty())
            .expect("request")
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_past_its_deadline_is_a_503_with_retry_after() {
        let response = app(QueryLimits::new(4, Duration::from_secs(1)))
            .oneshot(get_slow())
            .await
            .expect("answers");
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
        let fast = app(QueryLimits::new(4, Duration::from_secs(10)))
            .oneshot(get_slow())
            .await
            .expect("answers");
        assert_eq!(fast.status(), StatusCode::OK);
    }

    #[tokio::test(start_paused = true)]
    async fn requests_beyond_the_concurrency_wait_their_turn_within_the_deadline() {
        // One at a time, 5 s each: the second finishes at 10 s, inside an
        // 11 s deadline; the third would finish at 15 s and is refused.
        let app = app(QueryLimits::new(1, Duration::from_secs(11)));
        let requests = (0..3).map(|_| app.clone().oneshot(get_slow()));
        let statuses: Vec<StatusCode> = futures::future::join_all(requests)
            .await
            .into_iter()
            .map(|answer| answer.expect("answers").status())
            .collect();
        let refused = statuses
            .iter()
            .filter(|status| **status == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        assert_eq!((statuses.len() - refused, refused), (2, 1), "{statuses:?}");
    }
}
