//! Records the processor cannot decode go to the `dead-letters` topic with
//! the reason and the original bytes, and the partition moves on
//! (DESIGN.md guarantee 6).

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use schemas::{Codec, CodecError, DeadLetter, Topic};
use thiserror::Error;
use uuid::Uuid;

/// Why a dead letter could not be written.
#[derive(Debug, Error)]
pub enum DeadLetterError {
    /// The producer could not be created or the broker refused the write.
    #[error("dead-letter producer: {0}")]
    Kafka(#[from] KafkaError),
    /// The dead letter itself could not be encoded.
    #[error("dead-letter encoding: {0}")]
    Codec(#[from] CodecError),
}

/// The record that failed, as read.
#[derive(Debug, Clone, Copy)]
pub struct Failed<'a> {
    /// Physical topic name.
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    /// The broker timestamp in milliseconds, if any.
    pub timestamp_ms: Option<i64>,
    /// The trace its headers carried: the letter carries it on.
    pub trace: Option<&'a opentelemetry::Context>,
    /// The replay run that sent it back, if it was replayed.
    pub replay: Option<&'a str>,
}

/// How long the broker has to acknowledge a dead letter (librdkafka's
/// default). Long on purpose: an idempotent producer whose records expire
/// bumps its own epoch, which tansu 0.6 answers by panicking its storage
/// task; the partition cannot move past the letter anyway.
const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// A dead letter in the producer's hands, not yet acknowledged.
#[must_use = "a dead letter is only durable once acknowledged"]
pub struct PendingLetter {
    delivery: DeliveryFuture,
    stage: String,
}

impl std::fmt::Debug for PendingLetter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingLetter")
            .field("stage", &self.stage)
            .finish_non_exhaustive()
    }
}

impl PendingLetter {
    /// Waits until the broker has the dead letter.
    ///
    /// # Errors
    ///
    /// [`DeadLetterError::Kafka`] if the broker refused it or it timed out.
    pub async fn acknowledged(self) -> Result<(), DeadLetterError> {
        match self.delivery.await {
            Ok(Ok(_)) => {
                metrics::counter!(crate::metrics::DEAD_LETTERS, "stage" => self.stage).increment(1);
                Ok(())
            }
            Ok(Err((err, _))) => Err(err.into()),
            Err(_) => Err(KafkaError::Canceled.into()),
        }
    }
}

/// Writes dead letters: one at a time ([`DeadLetters::send`]) or many in
/// flight ([`DeadLetters::enqueue`], acknowledged before the offset moves).
#[derive(Clone)]
pub struct DeadLetters {
    producer: FutureProducer,
    codec: Codec,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters").finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// A writer on `kafka` (acks=all, idempotent).
    ///
    /// # Errors
    ///
    /// [`DeadLetterError::Kafka`] if librdkafka refuses the configuration.
    pub fn new(kafka: &ClientConfig, codec: Codec) -> Result<Self, DeadLetterError> {
        let producer = kafka
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .create()?;
        Ok(Self { producer, codec })
    }

    /// Writes `failed` with `reason` and waits until the broker has it, so
    /// the partition only moves past a record once its dead letter is durable.
    ///
    /// # Errors
    ///
    /// [`DeadLetterError`] if it cannot be written.
    pub async fn send(
        &self,
        stage: &str,
        failed: Failed<'_>,
        reason: &str,
    ) -> Result<(), DeadLetterError> {
        self.enqueue(stage, failed, reason)
            .await?
            .acknowledged()
            .await
    }

    /// Hands `failed` with `reason` to the producer and returns at once; the
    /// caller awaits [`PendingLetter::acknowledged`] before its checkpoint
    /// moves past the record. Many letters in flight share produce requests,
    /// so a run of undecodable records drains at the broker's batch rate,
    /// not one round trip per record.
    ///
    /// # Errors
    ///
    /// [`DeadLetterError`] if it cannot be encoded or queued.
    pub async fn enqueue(
        &self,
        stage: &str,
        failed: Failed<'_>,
        reason: &str,
    ) -> Result<PendingLetter, DeadLetterError> {
        let now = schemas::time::now_micros();
        let letter = DeadLetter {
            event_id: Uuid::now_v7(),
            occurred_at: failed
                .timestamp_ms
                .map_or(now, |ms| ms.saturating_mul(1000)),
            received_at: now,
            stage: stage.to_owned(),
            topic: failed.topic.to_owned(),
            partition: failed.partition,
            offset: failed.offset,
            key: failed.key.map(<[u8]>::to_vec),
            payload: failed.payload.to_vec(),
            reason: reason.to_owned(),
            replay_run: failed.replay.map(str::to_owned),
        };
        let payload = self.codec.encode(&letter).await?;
        let topic = self.codec.names().name(Topic::DeadLetters);
        let key = failed.key.unwrap_or_default();
        let mut record = FutureRecord::to(&topic).key(key).payload(&payload);
        if let Some(headers) = failed.trace.and_then(telemetry::propagation::kafka_headers) {
            record = record.headers(headers);
        }
        let delivery = self.producer.send_result(record).map_err(|(err, _)| err)?;
        Ok(PendingLetter {
            delivery,
            stage: stage.to_owned(),
        })
    }
}
