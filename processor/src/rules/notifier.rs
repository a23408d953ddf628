//! Fired notifications go to the `notifications` topic at once (so delivery
//! sees them within milliseconds of the timer firing) and are settled —
//! every acknowledgement awaited, failures resent — before the partition's
//! checkpoint moves past the events that fired them. A crash before that
//! replays the events and fires the same notifications again, with the same
//! ids: at least once on the topic, once in effect downstream.

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use schemas::{Codec, CodecError, Notification, Topic};
use thiserror::Error;
use tracing::{Instrument as _, warn};

/// How long a resend of an unacknowledged notification may take.
const RESEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why notifications could not be written.
#[derive(Debug, Error)]
pub enum NotifyError {
    /// The producer could not be created or the broker refused the write.
    #[error("notifications producer: {0}")]
    Kafka(#[from] KafkaError),
    /// A notification could not be encoded.
    #[error("notification encoding: {0}")]
    Codec(#[from] CodecError),
}

/// Writes notifications keyed by user id (acks=all, idempotent).
pub struct Notifier {
    producer: FutureProducer,
    codec: Codec,
    topic: String,
    in_flight: Vec<(Pending, DeliveryFuture)>,
    unsent: Vec<Pending>,
}

/// A notification with the trace headers of the event that fired it.
type Pending = (Notification, Option<OwnedHeaders>);

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("topic", &self.topic)
            .field("in_flight", &self.in_flight.len())
            .field("unsent", &self.unsent.len())
            .finish_non_exhaustive()
    }
}

impl Notifier {
    /// A writer on `kafka`.
    ///
    /// # Errors
    ///
    /// [`NotifyError::Kafka`] if librdkafka refuses the configuration.
    pub fn new(kafka: &ClientConfig, codec: Codec) -> Result<Self, NotifyError> {
        let producer = kafka
            .clone()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "0")
            .create()?;
        let topic = codec.names().name(Topic::Notifications);
        Ok(Self {
            producer,
            codec,
            topic,
            in_flight: Vec::new(),
            unsent: Vec::new(),
        })
    }

    /// Starts writing `notification` without waiting for the broker. Fired
    /// while an event's trace is current (its processing span), the rule's
    /// span continues that trace and the record carries it on.
    pub async fn send(&mut self, notification: Notification) {
        metrics::counter!(crate::metrics::NOTIFICATIONS_FIRED, "rule" => notification.rule.clone())
            .increment(1);
        metrics::counter!(crate::metrics::NOTIFICATIONS_LATE, "rule" => notification.rule.clone())
            .increment(u64::from(notification.late_by_micros > 0));
        #[expect(clippy::cast_precision_loss, reason = "seconds for a histogram")]
        metrics::histogram!(crate::metrics::NOTIFICATION_LATENESS_SECONDS, "rule" => notification.rule.clone())
            .record(notification.late_by_micros.max(0) as f64 / 1_000_000.0);
        let span = tracing::info_span!(
            "rule fired",
            otel.name = format!("rule {}", notification.rule),
            rule = %notification.rule,
            id = %notification.event_id
        );
        let headers = span.in_scope(|| {
            tracing::info!(rule = %notification.rule, id = %notification.event_id, late_by_micros = notification.late_by_micros, "rule fired");
            telemetry::propagation::kafka_headers(&telemetry::propagation::current_or(
                &opentelemetry::Context::new(),
            ))
        });
        let payload = match self.codec.encode(&notification).instrument(span).await {
            Ok(payload) => payload,
            Err(err) => {
                warn!(error = %err, "notification not encoded yet; retrying at the next flush");
                self.unsent.push((notification, headers));
                return;
            }
        };
        let mut record = FutureRecord::to(&self.topic)
            .key(notification.user_id.as_bytes())
            .payload(&payload);
        if let Some(headers) = &headers {
            record = record.headers(headers.clone());
        }
        match self.producer.send_result(record) {
            Ok(delivery) => self.in_flight.push(((notification, headers), delivery)),
            Err((err, _)) => {
                warn!(error = %err, "notification not queued yet; retrying at the next flush");
                self.unsent.push((notification, headers));
            }
        }
    }

    /// Waits until every notification sent so far is acknowledged, resending
    /// any the broker did not take.
    ///
    /// # Errors
    ///
    /// [`NotifyError`] if a notification still cannot be written; the
    /// partition must not move past its trigger then.
    pub async fn settle(&mut self) -> Result<(), NotifyError> {
        for (pending, delivery) in std::mem::take(&mut self.in_flight) {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((err, _))) => {
                    warn!(error = %err, id = %pending.0.event_id, "notification write failed; resending");
                    self.unsent.push(pending);
                }
                Err(_) => self.unsent.push(pending),
            }
        }
        while let Some((notification, headers)) = self.unsent.pop() {
            let payload = match self.codec.encode(&notification).await {
                Ok(payload) => payload,
                Err(err) => {
                    self.unsent.push((notification, headers));
                    return Err(err.into());
                }
            };
            let mut record = FutureRecord::to(&self.topic)
                .key(notification.user_id.as_bytes())
                .payload(&payload);
            if let Some(headers) = &headers {
                record = record.headers(headers.clone());
            }
            if let Err((err, _)) = self.producer.send(record, RESEND_TIMEOUT).await {
                self.unsent.push((notification, headers));
                return Err(err.into());
            }
        }
        Ok(())
    }
}
