//! Records the processor cannot decode go to the `dead-letters` topic with
//! the reason and the original bytes, and the partition moves on
//! (DESIGN.md guarantee 6).

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
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
}

/// Writes dead letters, waiting for each acknowledgement.
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
        };
        let payload = self.codec.encode(&letter).await?;
        let topic = self.codec.names().name(Topic::DeadLetters);
        let key = failed.key.unwrap_or_default();
        let record = FutureRecord::to(&topic).key(key).payload(&payload);
        self.producer
            .send(record, std::time::Duration::from_secs(30))
            .await
            .map_err(|(err, _)| err)?;
        metrics::counter!(crate::metrics::DEAD_LETTERS, "stage" => stage.to_owned()).increment(1);
        Ok(())
    }
}
