//! Serving an axum router on a listener with the limits every Eventide
//! listener needs, which `axum::serve` does not set:
//!
//! - a **header read timeout**: a connection that sends no request, or only
//!   part of its headers, within `--http-header-timeout` is closed (idle
//!   keep-alive connections included: the timeout runs while the next
//!   request's headers are awaited);
//! - a **cap on connections** per listener (`--http-max-connections`):
//!   beyond it, new connections wait in the kernel's backlog until one
//!   closes; the ones in flight are never hurt.
//!
//! Shutdown is graceful as before: stop accepting, let requests in flight
//! finish, return.

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

/// The limits of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
#[group(id = "http_limits")]
#[command(next_help_heading = "HTTP listeners")]
pub struct Limits {
    /// How long a connection may take to send a request's headers (also how
    /// long an idle keep-alive connection stays open); then it is closed.
    #[arg(
        long = "http-header-timeout",
        env = "EVENTIDE_HTTP_HEADER_TIMEOUT",
        default_value = "10s",
        value_parser = positive,
        global = true
    )]
    pub header_timeout: Duration,

    /// Most connections one listener keeps open; more wait until one closes.
    #[arg(
        long = "http-max-connections",
        env = "EVENTIDE_HTTP_MAX_CONNECTIONS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub max_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            max_connections: 10_000,
        }
    }
}

fn positive(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration >= Duration::from_millis(1) => Ok(duration),
        Ok(_) => Err(format!("must be at least 1ms, got {text}")),
        Err(err) => Err(err.to_string()),
    }
}

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
        .keep_alive(true);
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
