//! The Kafka producer behind every endpoint: idempotent, `acks=all`, and a
//! `send` that resolves only when the broker acknowledged the record.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use schemas::{Topic, TopicNames};
use thiserror::Error;

use crate::settings::Settings;

/// Why a record was not written.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SinkError {
    /// The producer's local queue is full: the broker is slower than producers.
    #[error("producer queue is full")]
    QueueFull,
    /// The record is larger than the broker accepts.
    #[error("record too large for the broker")]
    TooLarge,
    /// librdkafka reported every broker connection down and no metadata
    /// request has succeeded since: refused at once, never queued.
    #[error("no broker is reachable")]
    BrokersDown,
    /// The broker did not acknowledge in time, or refused the write.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
}

/// How long one probe of a down broker may take, and the pause between two.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// What the sink knows of the brokers. librdkafka reports "all brokers
/// down" also when idle connections were closed and would reopen at once, so
/// that report only raises suspicion; a failed metadata request confirms it.
#[derive(Debug, Default)]
struct BrokerHealth {
    /// librdkafka reported every broker connection down.
    suspect: AtomicBool,
    /// A metadata request failed since: writes are refused.
    down: AtomicBool,
    /// A probe runs.
    probing: AtomicBool,
}

/// The producer's client context: notes "all brokers down" and logs the rest
/// as the default context does.
#[derive(Debug, Clone)]
pub struct SinkContext {
    health: Arc<BrokerHealth>,
}

impl ClientContext for SinkContext {
    /// librdkafka's statistics (every `statistics.interval.ms`): the
    /// producer's queue and each broker's round-trip time.
    fn stats(&self, statistics: rdkafka::Statistics) {
        #[expect(clippy::cast_precision_loss, reason = "gauges")]
        {
            metrics::gauge!(crate::metrics::PRODUCER_QUEUE_MESSAGES).set(statistics.msg_cnt as f64);
            metrics::gauge!(crate::metrics::PRODUCER_QUEUE_BYTES).set(statistics.msg_size as f64);
            for broker in statistics.brokers.values() {
                if let Some(rtt) = &broker.rtt {
                    metrics::gauge!(crate::metrics::BROKER_RTT_SECONDS, "broker" => broker.name.clone())
                        .set(rtt.p99 as f64 / 1_000_000.0);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.health.suspect.store(true, Ordering::Relaxed);
        }
        tracing::error!("librdkafka: {error}: {reason}");
    }
}

/// Where an acknowledged record landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub partition: i32,
    pub offset: i64,
}

/// A cheap-to-clone handle on the shared producer.
#[derive(Clone)]
pub struct KafkaSink {
    producer: FutureProducer<SinkContext>,
    health: Arc<BrokerHealth>,
    /// Held by every clone of the sink; a probe stops once all are gone.
    alive: Arc<()>,
    names: TopicNames,
    /// How long a caller waits for an acknowledgement (`--produce-timeout`).
    ack_timeout: Duration,
}

impl std::fmt::Debug for KafkaSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

impl KafkaSink {
    /// A producer on `base` with durability settings forced on.
    ///
    /// Callers wait `--produce-timeout` for an acknowledgement, but librdkafka
    /// keeps the record for `--delivery-timeout`: an idempotent producer whose
    /// records expire bumps its epoch on its own (librdkafka does so on any
    /// message timeout: it leaves a gap in the sequence numbers), which tansu
    /// 0.6 does not know and answers by panicking its storage task. A slow
    /// broker must make callers wait, never make the producer expire records.
    ///
    /// # Errors
    ///
    /// [`KafkaError`] if librdkafka rejects the configuration.
    pub fn new(base: &ClientConfig, settings: &Settings, names: TopicNames) -> KafkaResult<Self> {
        let mut config = base.clone();
        config
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                settings.delivery_timeout.as_millis().to_string(),
            )
            .set("linger.ms", settings.produce_linger.as_millis().to_string())
            .set("queue.buffering.max.messages", "200000")
            // Queue depth and broker round trips for /metrics.
            .set("statistics.interval.ms", "5000");
        let health = Arc::new(BrokerHealth::default());
        let producer = config.create_with_context(SinkContext {
            health: Arc::clone(&health),
        })?;
        Ok(Self {
            producer,
            health,
            alive: Arc::new(()),
            names,
            ack_timeout: settings.produce_timeout,
        })
    }

    /// Writes one record and waits for the broker's acknowledgement.
    ///
    /// # Errors
    ///
    /// [`SinkError`] saying whether to retry (`QueueFull`, `Unavailable`) or
    /// not (`TooLarge`).
    pub async fn send(
        &self,
        topic: Topic,
        key: &[u8],
        payload: &[u8],
    ) -> Result<Written, SinkError> {
        self.enqueue(topic, key, payload, None)?.await
    }

    /// Puts one record in the producer's queue now (so records enqueued in
    /// turn keep their order per partition) and returns a future of its
    /// acknowledgement.
    ///
    /// Once librdkafka reported every broker down and a metadata request
    /// failed too, records are refused at once with
    /// [`SinkError::BrokersDown`] instead of queued: a request that would only
    /// get a 503 after `--produce-timeout` gets it now, and its record cannot
    /// land later beside the client's retry. A probe lets writes through
    /// again as soon as a metadata request succeeds.
    ///
    /// # Errors
    ///
    /// [`SinkError::BrokersDown`], [`SinkError::QueueFull`] or
    /// [`SinkError::TooLarge`] at once.
    pub fn enqueue(
        &self,
        topic: Topic,
        key: &[u8],
        payload: &[u8],
        headers: Option<OwnedHeaders>,
    ) -> Result<impl Future<Output = Result<Written, SinkError>> + Send + 'static, SinkError> {
        if self.health.down.load(Ordering::Relaxed) {
            self.probe_until_up();
            return Err(SinkError::BrokersDown);
        }
        if self.health.suspect.load(Ordering::Relaxed) {
            self.probe_until_up();
        }
        let name = self.names.name(topic);
        let mut record = FutureRecord::to(&name).key(key).payload(payload);
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        let delivery = self
            .producer
            .send_result(record)
            .map_err(|(err, _)| classify(&err))?;
        let started = std::time::Instant::now();
        let ack_timeout = self.ack_timeout;
        Ok(async move {
            let written = match tokio::time::timeout(ack_timeout, delivery).await {
                Ok(Ok(Ok(delivered))) => Ok(Written {
                    partition: delivered.partition,
                    offset: delivered.offset,
                }),
                Ok(Ok(Err((err, _)))) => Err(classify(&err)),
                Ok(Err(_)) => Err(SinkError::Unavailable(
                    "producer dropped the delivery".into(),
                )),
                Err(_) => Err(SinkError::Unavailable(format!(
                    "no acknowledgement within {ack_timeout:?}"
                ))),
            };
            let topic_label = topic.default_name();
            metrics::histogram!(crate::metrics::PRODUCE_SECONDS, "topic" => topic_label)
                .record(started.elapsed().as_secs_f64());
            if written.is_ok() {
                metrics::counter!(crate::metrics::RECORDS, "topic" => topic_label).increment(1);
            }
            written
        })
    }

    /// Starts, unless one runs, a probe: a failed metadata request marks the
    /// brokers down, a successful one clears both marks and ends it.
    fn probe_until_up(&self) {
        if self.health.probing.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.health.probing.store(false, Ordering::Release);
            return;
        };
        let (producer, health) = (self.producer.clone(), Arc::clone(&self.health));
        let topic = self.names.name(Topic::Events);
        let sink_alive = Arc::downgrade(&self.alive);
        runtime.spawn_blocking(move || {
            while sink_alive.strong_count() > 0 {
                if producer
                    .client()
                    .fetch_metadata(Some(&topic), PROBE_TIMEOUT)
                    .is_ok()
                {
                    health.suspect.store(false, Ordering::Relaxed);
                    if health.down.swap(false, Ordering::Relaxed) {
                        tracing::info!("a broker answers again; accepting writes");
                    }
                    break;
                }
                if !health.down.swap(true, Ordering::Relaxed) {
                    tracing::warn!("no broker answers; refusing writes until one does");
                }
                std::thread::sleep(PROBE_TIMEOUT);
            }
            health.probing.store(false, Ordering::Release);
        });
    }

    /// Whether the broker answers a metadata request within `timeout`.
    /// Asks for one topic's metadata, not the whole cluster's.
    pub async fn broker_reachable(&self, timeout: Duration) -> bool {
        let producer = self.producer.clone();
        let topic = self.names.name(Topic::Events);
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .is_ok()
        })
        .await
        .unwrap_or(false)
    }

    /// Waits up to `timeout` for every queued record to be acknowledged.
    pub async fn flush(&self, timeout: Duration) {
        let producer = self.producer.clone();
        let flushed = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        match flushed {
            Ok(Ok(())) => {}
            Ok(Err(err)) => tracing::warn!(error = %err, "producer flush incomplete"),
            Err(err) => tracing::warn!(error = %err, "producer flush task failed"),
        }
    }
}

fn classify(err: &KafkaError) -> SinkError {
    match err.rdkafka_error_code() {
        Some(RDKafkaErrorCode::QueueFull) => SinkError::QueueFull,
        Some(RDKafkaErrorCode::MessageSizeTooLarge) => SinkError::TooLarge,
        _ => SinkError::Unavailable(err.to_string()),
    }
}
