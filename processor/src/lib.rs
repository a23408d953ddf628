//! Eventide's stateful stream processor.
//!
//! It consumes the topics ingest writes (`increments` for counters,
//! `redirects` for click statistics, `events` for the event store,
//! `ingest-rejects` and `dead-letters` for the error log), in a consumer group, one partition
//! at a time in offset order, keeps exact aggregates in memory and writes
//! them to the store as absolute values together with the offsets they
//! include. Offsets are committed to Kafka only after the store write, and
//! the store's own checkpoint decides what is replayed, so totals stay exact
//! across crashes, restarts and rebalances (DESIGN.md guarantee 3), and are
//! queryable within one flush interval (guarantee 4).
//!
//! # Layout
//!
//! - [`settings`]: the processor's command-line options.
//! - [`checkpoint`]: where a partition stands against the store.
//! - [`counters`]: the counters aggregate of one partition, without I/O.
//! - [`clicks`]: click statistics of one partition, without I/O.
//! - [`event_store`]: events and the error log of one partition, without I/O.
//! - [`user_agent`]: user agents to browser, OS and device classes.
//! - `aggregate`: what the loop needs from an aggregate; both implement it.
//! - [`store`]: the store's write side (SQLite through libSQL).
//! - [`dead_letters`]: undecodable records to the dead-letters topic.
//! - [`replay`]: dead letters sent back to the stage that gave up on them.
//! - [`scan`]: reading a topic to its end without a consumer group.
//! - `consumer`: the consumer loop, rebalances and flushes.
//! - `health`: `/healthz`, `/readyz` and `/metrics` for probes.
//! - `workers`: every topic worker, listed once.
//! - [`metrics`]: metric names.

mod aggregate;
pub mod checkpoint;
pub mod clicks;
mod consumer;
pub mod counters;
pub mod dead_letters;
pub mod dedup;
pub mod enrich;
pub mod event_store;
mod freshness;
mod health;
pub mod metrics;
pub mod notifications;
pub mod replay;
pub mod rules;
pub mod scan;
pub mod settings;
pub mod sketch;
pub mod store;
pub mod user_agent;
pub mod webhooks;
mod workers;

use rdkafka::ClientConfig;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::message::Message;
use schemas::Codec;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument as _, info, warn};

pub use settings::Settings;
pub use store::{Store, StoreError};

use consumer::{GroupConsumer, Io, RebalanceContext, Received};
use rules::PartitionRules;
use workers::Workers;

/// Everything the processor needs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The processor's own options.
    pub settings: Settings,
    /// Base Kafka client configuration (bootstrap servers, security).
    pub kafka: ClientConfig,
    /// Avro codec over the configured schema source.
    pub codec: Codec,
    /// The store: the SQLite file or a ScyllaDB keyspace.
    pub store: schemas::store::StoreLocation,
    /// Where `/metrics` renders from.
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Header timeout and connection cap of the health listener.
    pub http: http_serve::Limits,
}

/// Why the processor stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ProcessorError {
    /// The Kafka consumer could not be created or subscribed.
    #[error("kafka consumer: {0}")]
    Consumer(#[source] rdkafka::error::KafkaError),
    /// The store failed; processing cannot go on without losing exactness.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An undecodable record could not be dead-lettered; the partition
    /// cannot move past it.
    #[error(transparent)]
    DeadLetter(#[from] dead_letters::DeadLetterError),
    /// The rules file cannot be used.
    #[error(transparent)]
    Rules(#[from] rules::RulesError),
    /// Fired notifications could not be written; the partition cannot move
    /// past the events that fired them.
    #[error(transparent)]
    Notify(#[from] rules::NotifyError),
    /// The country database or a shipped list cannot be used.
    #[error(transparent)]
    Enrich(#[from] enrich::EnrichError),
}

impl From<consumer::HandleError> for ProcessorError {
    fn from(err: consumer::HandleError) -> Self {
        match err {
            consumer::HandleError::Store(err) => ProcessorError::Store(err),
            consumer::HandleError::DeadLetter(err) => ProcessorError::DeadLetter(err),
            consumer::HandleError::Notify(err) => ProcessorError::Notify(err),
        }
    }
}

/// Processes until `shutdown` is cancelled.
///
/// Shutdown order: stop reading, flush every partition to the store, commit
/// offsets synchronously, leave the group.
///
/// # Errors
///
/// [`ProcessorError`] if the consumer cannot start or the store fails.
pub async fn run(
    config: Config,
    listener: Option<tokio::net::TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), ProcessorError> {
    let readiness = health::Readiness::default();
    let health_shutdown = CancellationToken::new();
    let _stop_health = health_shutdown.clone().drop_guard();
    if let Some(listener) = listener {
        tokio::spawn(health::serve(
            listener,
            readiness.clone(),
            config.metrics.clone(),
            config.http,
            health_shutdown,
        ));
    }
    let rules = match &config.settings.rules_file {
        Some(path) => rules::Rules::load(path)?,
        None => rules::Rules::default_rules()?,
    };
    info!(rules = ?rules.iter().map(|rule| rule.name.to_string()).collect::<Vec<_>>(), "session rules loaded");
    let store = Store::open(&config.store).await?;
    let names = config.codec.names().clone();
    let rules_context = rules::RulesContext {
        rules: std::sync::Arc::new(rules),
        timing: rules::Timing {
            allowed_lateness: config.settings.allowed_lateness,
            idle_grace: config.settings.idle_grace,
        },
        notifier: rules::Notifier::new(&config.kafka, config.codec.clone())?,
    };
    let geo = match &config.settings.geoip_db {
        Some(path) => {
            let geo = enrich::geo::Geo::open(path).map_err(enrich::EnrichError::from)?;
            info!(database = %path.display(), "countries from the geoip database");
            Some(geo)
        }
        None => None,
    };
    let visitor_key = match &config.settings.visitor_hash_key {
        Some(key) => key.clone(),
        None => {
            warn!(
                "--visitor-hash-key is not set: unique visitors are hashed with the built-in development key"
            );
            enrich::DEVELOPMENT_VISITOR_KEY.to_owned()
        }
    };
    let clicks_context = clicks::ClicksContext {
        enricher: enrich::Enricher::new(geo)?.with_visitor_key(visitor_key.as_bytes()),
        max_dimension_values: config.settings.max_dimension_values,
    };
    let mut workers = Workers::new(&names, rules_context, clicks_context);
    let (revoked_tx, mut revoked_rx) = mpsc::unbounded_channel::<consumer::Revoked>();
    let (assigned_tx, mut assigned_rx) = mpsc::unbounded_channel::<Vec<(String, i32)>>();
    let consumer: GroupConsumer = consumer_config(&config)
        .create_with_context(RebalanceContext::new(revoked_tx, assigned_tx))
        .map_err(ProcessorError::Consumer)?;
    let close_guard = consumer::CloseGuard(&consumer);
    let topics = workers.topics();
    let subscribed: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer
        .subscribe(&subscribed)
        .map_err(ProcessorError::Consumer)?;
    info!(topics = ?topics, group = %config.settings.group_id, "processor consuming");
    readiness.set(true);

    let dead_letters = dead_letters::DeadLetters::new(&config.kafka, config.codec.clone())?;
    let io = Io {
        consumer: &consumer,
        store: &store,
        codec: &config.codec,
        dead_letters: &dead_letters,
        dedup_window: config.settings.dedup_window,
    };
    let mut freshness = freshness::Freshness::default();
    let mut flush_tick = tokio::time::interval(config.settings.flush_interval);
    flush_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(revoked) = revoked_rx.recv() => {
                workers.release(&io, &revoked).await?;
                if revoked.unassign {
                    // Flushed: now the group may hand them to their next owner.
                    if let Err(err) = consumer.unassign() {
                        warn!(error = %err, "unassigning revoked partitions failed");
                    }
                }
            }
            Some(assigned) = assigned_rx.recv() => {
                let session_rules = workers.session_rules();
                let partitions: Vec<i32> = assigned
                    .iter()
                    .filter(|(topic, _)| topic == session_rules.topic())
                    .map(|(_, partition)| *partition)
                    .collect();
                session_rules.load(&io, &partitions).await?;
            }
            _ = flush_tick.tick() => {
                let session_rules = workers.session_rules();
                session_rules.tick().await;
                let pending: usize = session_rules.aggregates().map(PartitionRules::pending_len).sum();
                #[expect(clippy::cast_precision_loss, reason = "a gauge")]
                ::metrics::gauge!(crate::metrics::RULE_STATE_PENDING).set(pending as f64);
                workers.flush_all(&io, CommitMode::Async).await?;
                let fresh = workers.fresh(&consumer::caught_up(&consumer));
                store.record_progress(&fresh, schemas::time::now_micros()).await?;
                freshness.observe(&fresh);
            }
            received = consumer.recv() => match received {
                Ok(message) => {
                    let topic = message.topic().to_owned();
                    let record = Received {
                        partition: message.partition(),
                        offset: message.offset(),
                        key: message.key().map(<[u8]>::to_vec),
                        payload: message.payload().map(<[u8]>::to_vec),
                        timestamp_ms: message.timestamp().to_millis(),
                        trace: message.headers().and_then(telemetry::propagation::from_kafka),
                        replay: message.headers().and_then(webhooks::replay_run),
                    };
                    drop(message);
                    // A record that carries a trace is processed in a span
                    // continuing it: the rules it fires pass it on.
                    let span = match &record.trace {
                        Some(trace) => {
                            let span = tracing::info_span!(
                                "process",
                                otel.name = format!("process {topic}"),
                                otel.kind = "consumer",
                                partition = record.partition,
                                offset = record.offset
                            );
                            telemetry::propagation::continue_trace(&span, trace);
                            span
                        }
                        None => tracing::Span::none(),
                    };
                    workers.handle(&io, &topic, &record).instrument(span).await?;
                }
                Err(err) => warn!(error = %err, "consumer error"),
            },
        }
    }
    readiness.set(false);
    info!("processor stopping; flushing store and committing offsets");
    consumer.context().close();
    workers.flush_all(&io, CommitMode::Sync).await?;
    consumer.unsubscribe();
    drop(close_guard);
    Ok(())
}

fn consumer_config(config: &Config) -> ClientConfig {
    let mut kafka = config.kafka.clone();
    kafka
        .set("group.id", &config.settings.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("partition.assignment.strategy", "range")
        .set("statistics.interval.ms", "1000")
        // A fetch waits at most this long for data: the hop's latency when
        // the broker does not answer early (tansu waits the full time).
        .set(
            "fetch.wait.max.ms",
            config.settings.fetch_wait.as_millis().to_string(),
        )
        .set(
            "session.timeout.ms",
            config.settings.session_timeout.as_millis().to_string(),
        );
    if let Some(instance) = &config.settings.instance_id {
        kafka.set("group.instance.id", instance);
    }
    kafka
}
