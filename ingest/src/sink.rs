//! The Kafka producer behind every endpoint: idempotent, `acks=all`, and a
//! `send` that resolves only when the broker acknowledged the record.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::{KafkaError, KafkaResult};
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
    /// The broker did not acknowledge in time, or refused the write.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
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
    producer: FutureProducer,
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
    /// in-flight records expire bumps its epoch on its own (KIP-360), which
    /// tansu 0.6 does not know and answers by panicking its storage task. A
    /// slow broker must make callers wait, never make the producer expire
    /// records it has already sent.
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
                settings
                    .delivery_timeout
                    .max(settings.produce_timeout)
                    .as_millis()
                    .to_string(),
            )
            .set("linger.ms", settings.produce_linger.as_millis().to_string())
            .set("queue.buffering.max.messages", "200000");
        let producer = config.create()?;
        Ok(Self {
            producer,
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
        self.enqueue(topic, key, payload)?.await
    }

    /// Puts one record in the producer's queue now (so records enqueued in
    /// turn keep their order per partition) and returns a future of its
    /// acknowledgement.
    ///
    /// # Errors
    ///
    /// [`SinkError::QueueFull`] or [`SinkError::TooLarge`] at once.
    pub fn enqueue(
        &self,
        topic: Topic,
        key: &[u8],
        payload: &[u8],
    ) -> Result<impl Future<Output = Result<Written, SinkError>> + Send + 'static, SinkError> {
        let name = self.names.name(topic);
        let record = FutureRecord::to(&name).key(key).payload(payload);
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

    /// Whether the broker answers a metadata request within `timeout`.
    pub async fn broker_reachable(&self, timeout: Duration) -> bool {
        let producer = self.producer.clone();
        tokio::task::spawn_blocking(move || producer.client().fetch_metadata(None, timeout).is_ok())
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
