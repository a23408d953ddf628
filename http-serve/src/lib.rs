//! Serving an axum router on a listener with the limits every Eventide
//! listener needs, which `axum::serve` does not set:
//!
//! - a **header read timeout**: a connection that sends no request, or only
//!   part of its headers, within `--http-header-timeout` is closed (idle
//!   keep-alive connections included: the timeout runs while the next
//!   request's headers are awaited);
//! - a **cap on connections** per listener (`--http-max-connections`):
//!   beyond it, new connections wait in the kernel's backlog until one
//!   closes; the ones in flight are never hurt;
//! - **limits on the request head** (`--http-max-uri-bytes`,
//!   `--http-max-header-bytes`, 100 fields) and a **body deadline**
//!   (`--http-body-timeout`), answered `414`, `431` and `408` in the
//!   documented JSON error format by [`guard`](Refusal).
//!
//! Shutdown is graceful as before: stop accepting, let requests in flight
//! finish, return.

mod guard;
mod limits;
mod timing;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::debug;

pub use guard::{BodyTimedOut, REFUSED_METRIC, Refusal, is_body_timeout};
pub use limits::{Limits, MAX_HEADER_FIELDS};
pub use timing::{REQUEST_SECONDS, timed};

/// Serves `app` on `listener` within `limits` until `shutdown` resolves,
/// then waits for the requests in flight.
///
/// # Errors
///
/// Never for a connection's own failure (it is closed and logged); the
/// `Result` is kept for listener failures that end serving.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(
        usize::try_from(limits.max_connections).unwrap_or(usize::MAX),
    ));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(limits.read_buffer())
        .max_headers(MAX_HEADER_FIELDS * 4)
        .keep_alive(true);
    let app = app.layer(axum::middleware::from_fn_with_state(limits, guard::guard));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors and the like: wait, then go on.
                    debug!(error = %err, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                debug!(error = %err, "connection closed with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
