//! Refused requests are recorded on the `ingest-rejects` topic, so bad input
//! is visible to monitoring without ever blocking good input.

use schemas::{Codec, Reject, Topic};
use tracing::warn;
use uuid::Uuid;

use crate::sink::KafkaSink;
use crate::validation::Violation;

/// The most of a refused body kept in its reject record.
pub const MAX_BODY_SAMPLE: usize = 4 * 1024;

/// Writes reject records in the background.
#[derive(Debug, Clone)]
pub struct RejectRecorder {
    sink: KafkaSink,
    codec: Codec,
}

/// What was refused and why.
#[derive(Debug, Clone)]
pub struct Refusal<'a> {
    pub application_id: &'a str,
    pub endpoint: &'a str,
    pub status: u16,
    pub violation: Option<&'a Violation>,
    pub code: &'a str,
    pub body: &'a [u8],
}

impl RejectRecorder {
    /// A recorder writing through `sink`.
    pub fn new(sink: KafkaSink, codec: Codec) -> Self {
        Self { sink, codec }
    }

    /// Records `refusal` without making the caller wait for the broker; a
    /// failure to record is logged, never turned into another error.
    pub fn record(&self, refusal: &Refusal<'_>) {
        let now = schemas::time::now_micros();
        let reject = Reject {
            event_id: Uuid::now_v7(),
            occurred_at: now,
            received_at: now,
            application_id: refusal.application_id.to_owned(),
            endpoint: refusal.endpoint.to_owned(),
            status: i32::from(refusal.status),
            field: refusal.violation.and_then(|v| v.field.clone()),
            rule: refusal.violation.map_or_else(
                || refusal.code.to_owned(),
                |v| {
                    serde_json::to_value(v.rule)
                        .ok()
                        .and_then(|rule| rule.as_str().map(str::to_owned))
                        .unwrap_or_else(|| refusal.code.to_owned())
                },
            ),
            message: refusal
                .violation
                .map_or_else(|| refusal.code.to_owned(), |v| v.message.clone()),
            body: refusal.body[..refusal.body.len().min(MAX_BODY_SAMPLE)].to_vec(),
        };
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
                warn!(endpoint = %reject.endpoint, reason, "failed to record reject");
            }
        });
    }
}
