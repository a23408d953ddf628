//! Eventide's query API: the read side of the store, for analysts.
//!
//! The processor writes absolute aggregates to the store; this service reads
//! them and answers over HTTP. It never writes.
//!
//! # Layout
//!
//! - [`settings`]: the service's command-line options.
//! - [`store`]: the store's read side, on SQLite (libSQL) or ScyllaDB.
//! - [`error`]: the HTTP error type.
//! - [`routes`]: the handlers and the router.
//! - [`console`]: the analysts' console, HTML over the same handlers.

pub mod console;
pub mod docs;
pub mod error;
pub mod limits;
pub mod openapi;
pub mod paging;
pub mod params;
pub mod routes;
pub mod settings;
pub mod stats;
pub mod store;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use error::ApiError;
pub use settings::Settings;
pub use store::{ReadStore, StoreError};

/// Everything the service needs besides its listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service's own options.
    pub settings: Settings,
    /// The store the processor writes: a SQLite file or a ScyllaDB keyspace.
    pub store: schemas::store::StoreLocation,
    /// How analysts authenticate.
    pub auth: schemas::keys::Auth,
    /// Where `/metrics` renders from.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Header timeout and connection cap of the listener.
    pub http: http_serve::Limits,
    /// Delivery control for `admin` keys; `/v1/admin` answers 503 without.
    pub admin: Option<routes::admin::Admin>,
}

/// Why the service stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum QueryApiError {
    /// The store could not be opened.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Serving HTTP failed.
    #[error("http server: {0}")]
    Serve(#[source] std::io::Error),
}

/// Serves analysts on `listener` until `shutdown` is cancelled, finishing
/// in-flight requests first.
///
/// # Errors
///
/// [`QueryApiError`] if the store cannot be opened or serving fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), QueryApiError> {
    let store = ReadStore::open(&config.store).await?;
    let limits = limits::QueryLimits::new(
        usize::from(config.settings.concurrency),
        config.settings.deadline,
    );
    let app = routes::router(routes::AppState {
        store,
        auth: config.auth,
        metrics: config.metrics,
        limits,
        admin: config.admin,
        console: config.settings.console.then(|| {
            console::Console::new(
                config.settings.console_secret.as_deref(),
                config.settings.console_session_ttl,
            )
        }),
    });
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "query api listening");
    }
    http_serve::serve(listener, app, config.http, shutdown.cancelled_owned())
        .await
        .map_err(QueryApiError::Serve)
}
