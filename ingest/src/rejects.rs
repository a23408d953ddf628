//! Refused requests are recorded on the `ingest-rejects` topic, so bad input
//! is visible to monitoring without ever blocking good input.

use schemas::{Codec, Reject, Topic};
use tracing::warn;
use uuid::Uuid;

use crate::error::ApiError;
use crate::sink::KafkaSink;

/// The record of a refused request: the whole body as read (within
/// `--max-body`), so a replay can resubmit it.
pub fn reject_record(
    application_id: &str,
    endpoint: &str,
    err: &ApiError,
    body: &[u8],
    idempotency_key: Option<&str>,
) -> Reject {
    let now = schemas::time::now_micros();
    let violation = err.violation();
    Reject {
        event_id: Uuid::now_v7(),
        occurred_at: now,
        received_at: now,
        application_id: application_id.to_owned(),
        endpoint: endpoint.to_owned(),
        status: i32::from(err.status().as_u16()),
        field: violation.and_then(|v| v.field.clone()),
        rule: err.reason(),
        message: violation.map_or_else(|| err.to_string(), |v| v.message.clone()),
        body: body.to_vec(),
        idempotency_key: idempotency_key.map(str::to_owned),
        replay_run: None,
    }
}

/// Writes reject records in the background.
#[derive(Debug, Clone)]
pub struct RejectRecorder {
    sink: KafkaSink,
    codec: Codec,
}

impl RejectRecorder {
    /// A recorder writing through `sink`.
    pub fn new(sink: KafkaSink, codec: Codec) -> Self {
        Self { sink, codec }
    }

    /// Counts the refusal and records it without making the caller wait for
    /// the broker; a failure to record is logged and counted, never turned
    /// into another error.
    pub fn record(&self, application_id: &str, endpoint: &str, err: &ApiError, body: &[u8]) {
        self.record_keyed(application_id, endpoint, err, body, None);
    }

    /// As [`RejectRecorder::record`], with the request's idempotency key.
    pub fn record_keyed(
        &self,
        application_id: &str,
        endpoint: &str,
        err: &ApiError,
        body: &[u8],
        idempotency_key: Option<&str>,
    ) {
        let reject = reject_record(application_id, endpoint, err, body, idempotency_key);
        metrics::counter!(crate::metrics::REJECTS, "reason" => reject.rule.clone()).increment(1);
        let recorder = self.clone();
        tokio::spawn(async move {
            let written = match recorder.codec.encode(&reject).await {
                Ok(payload) => recorder
                    .sink
                    .send(
                        Topic::IngestRejects,
                        reject.application_id.as_bytes(),
                        &payload,
                    )
                    .await
                    .map_err(|err| err.to_string()),
                Err(err) => Err(err.to_string()),
            };
            if let Err(reason) = written {
                metrics::counter!(crate::metrics::REJECTS_LOST).increment(1);
                warn!(endpoint = %reject.endpoint, reason, "failed to record reject");
            }
        });
    }
}
