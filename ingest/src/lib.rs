//! Eventide's ingest service: the HTTP front door for producers.
//!
//! A request is validated, turned into a record of its topic, encoded as
//! Avro in the Confluent framing and written to Kafka; the answer is `202`
//! only after the broker acknowledged the write (`acks=all`, idempotent
//! producer). Bad input gets a precise `400` and is recorded on the
//! `ingest-rejects` topic; a broker that cannot take the write gets `503`
//! with `Retry-After`. Nothing is answered `2xx` that is not durable.
//!
//! # Layout
//!
//! - [`settings`]: the service's command-line options.
//! - [`client`]: a typed producer client with batching and retries.
//! - [`validation`]: request bodies to typed requests, or a precise error,
//!   one module per endpoint shape.
//! - [`resubmit`]: a refused request judged again (`eventide replay --rejects`).
//! - [`event_types`]: event data checked against its type's JSON Schema.
//! - [`records`]: valid requests to the records written to Kafka.
//! - [`sink`]: the Kafka producer and its failure modes.
//! - [`rate_limit`]: token buckets per API key.
//! - [`rejects`]: recording refused requests for monitoring.
//! - [`error`]: the HTTP error type and its status mapping.
//! - [`metrics`]: metric names.
//! - [`openapi`]: the OpenAPI document served at `/openapi.json`.
//! - [`routes`]: the handlers, the middleware and the router.

pub mod client;
pub mod cors;
pub mod disk;
pub mod encoding;
pub mod error;
pub mod event_types;
pub mod metrics;
pub mod openapi;
pub mod rate_limit;
pub mod records;
pub mod rejects;
pub mod resubmit;
pub mod routes;
pub mod settings;
pub mod sink;
pub mod validation;

use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusHandle;
use rdkafka::ClientConfig;
use schemas::Codec;
use schemas::keys::Auth;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use error::ApiError;
pub use settings::{Settings, SettingsError};
pub use sink::{KafkaSink, SinkError};

/// Everything the service needs besides its listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// The service's own options.
    pub settings: Settings,
    /// Base Kafka client configuration (bootstrap servers, security).
    pub kafka: ClientConfig,
    /// Avro codec over the configured schema source.
    pub codec: Codec,
    /// How producers authenticate.
    pub auth: Auth,
    /// Where `/metrics` renders from.
    pub metrics: PrometheusHandle,
    /// Header timeout and connection cap of the listener.
    pub http: http_serve::Limits,
    /// The data dir's free-space floor, where the broker's log is local.
    pub disk: Option<disk::DiskWatch>,
}

/// Why the service stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The Kafka producer could not be created.
    #[error("kafka producer: {0}")]
    Producer(#[source] rdkafka::error::KafkaError),
    /// Serving HTTP failed.
    #[error("http server: {0}")]
    Serve(#[source] std::io::Error),
    /// Options contradict each other.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// A shipped event-type schema does not compile.
    #[error("event type schemas: {0}")]
    EventTypes(String),
}

/// Serves producers on `listener` until `shutdown` is cancelled.
///
/// Shutdown order: stop accepting connections, let in-flight requests finish
/// (each waits for its broker acknowledgement), then flush the producer.
///
/// # Errors
///
/// [`IngestError`] if the producer cannot be created or serving fails.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    config.settings.validate()?;
    let sink = KafkaSink::new(
        &config.kafka,
        &config.settings,
        config.codec.names().clone(),
    )
    .map_err(IngestError::Producer)?;
    let state = routes::AppState {
        rejects: rejects::RejectRecorder::new(sink.clone(), config.codec.clone()),
        sink: sink.clone(),
        codec: config.codec,
        limits: rate_limit::RateLimits::new(config.settings.rate_limit),
        settings: Arc::new(config.settings.clone()),
        auth: config.auth,
        event_types: Arc::new(event_types::EventTypes::compile().map_err(IngestError::EventTypes)?),
        metrics: config.metrics,
        disk: config.disk.clone(),
    };
    if let Some(watch) = config.disk {
        tokio::spawn(watch.run(shutdown.clone()));
    }
    let app = routes::router(state);
    if let Ok(addr) = listener.local_addr() {
        info!(%addr, "ingest listening");
    }
    http_serve::serve(listener, app, config.http, shutdown.cancelled_owned())
        .await
        .map_err(IngestError::Serve)?;
    info!("ingest stopped accepting; flushing producer");
    sink.flush(config.settings.produce_timeout).await;
    Ok(())
}
