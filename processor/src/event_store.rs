//! The event store and the error log, without I/O: the rows a partition of
//! `events`, `ingest-rejects` or `dead-letters` adds since its last flush.
//!
//! Events and errors are stored once by id, so a replay inserts nothing new;
//! per-type event counts are deltas added to the partition's own row in the
//! same fenced transaction that moves the checkpoint.

use std::collections::HashMap;

use schemas::{DeadLetter, Event, Reject};

use crate::checkpoint::Checkpoint;
use crate::clicks::day_and_month;

/// Events of one partition since the last flush.
#[derive(Debug, Clone, Default)]
pub struct PartitionEvents {
    checkpoint: Checkpoint,
    events: Vec<(i64, Event)>,
    type_counts: HashMap<(String, String), (i64, bool)>,
}

/// What an events flush writes.
#[derive(Debug, Clone, Default)]
pub struct EventsBatch {
    pub expected_next_offset: i64,
    pub next_offset: i64,
    /// (offset, event, UTC day).
    pub events: Vec<(i64, Event, String)>,
    /// ((category, name), (added, known type)).
    pub type_counts: Vec<((String, String), (i64, bool))>,
}

impl PartitionEvents {
    /// State from the store's checkpoint.
    pub fn restore(next_offset: i64) -> Self {
        Self {
            checkpoint: Checkpoint::restore(next_offset),
            ..Self::default()
        }
    }

    /// Keeps `event` at `offset`; false if the store already includes it.
    pub fn apply(&mut self, offset: i64, event: Event) -> bool {
        if !self.checkpoint.admit(offset) {
            return false;
        }
        let count = self
            .type_counts
            .entry((event.category.clone(), event.name.clone()))
            .or_insert((0, event.known_type));
        count.0 += 1;
        self.events.push((offset, event));
        true
    }
}

/// Which error topic a partition belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// `ingest-rejects`.
    Reject,
    /// `dead-letters`.
    DeadLetter,
}

impl ErrorKind {
    /// As stored in the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Reject => schemas::store::error_kind::REJECT,
            ErrorKind::DeadLetter => schemas::store::error_kind::DEAD_LETTER,
        }
    }
}

/// One row of the error log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRow {
    pub kind: ErrorKind,
    pub event_id: String,
    pub day: String,
    pub occurred_at: i64,
    pub application_id: Option<String>,
    /// Endpoint of a reject, or `topic/partition@offset` of a dead letter.
    pub source: String,
    pub status: Option<i32>,
    pub field: Option<String>,
    /// Rule of a reject, or the dead letter's reason.
    pub reason: String,
    pub message: String,
    /// Body sample of a reject, or the dead letter's original bytes.
    pub body: Vec<u8>,
    /// The replay run that saw it fail (or be refused) again, if any.
    pub replay_run: Option<String>,
}

/// The most of a refused body the error listing keeps (the reject record
/// keeps it whole, for replay).
pub const MAX_BODY_SAMPLE: usize = 4 * 1024;

impl From<Reject> for ErrorRow {
    fn from(reject: Reject) -> Self {
        Self {
            kind: ErrorKind::Reject,
            event_id: reject.event_id.to_string(),
            day: day_and_month(reject.occurred_at).0,
            occurred_at: reject.occurred_at,
            application_id: Some(reject.application_id),
            source: reject.endpoint,
            status: Some(reject.status),
            field: reject.field,
            reason: reject.rule,
            message: reject.message,
            body: without_addresses(&reject.body[..reject.body.len().min(MAX_BODY_SAMPLE)]),
            replay_run: reject.replay_run,
        }
    }
}

/// What stands in for a visitor's address in a stored body sample.
pub const REDACTED: &str = "(redacted)";

/// A refused body as the error listing keeps it: every `ip` field (a
/// redirect's visitor address, in a single request or a batch item)
/// replaced by [`REDACTED`]. A body that names `ip` but is not JSON (or is
/// cut at the sample's end) is withheld whole: no address is ever stored.
pub fn without_addresses(body: &[u8]) -> Vec<u8> {
    const FIELD: &[u8] = b"\"ip\"";
    if !body.windows(FIELD.len()).any(|window| window == FIELD) {
        return body.to_vec();
    }
    fn redact(value: &mut serde_json::Value) {
        match value {
            serde_json::Value::Object(object) => {
                for (key, field) in object.iter_mut() {
                    if key == "ip" {
                        *field = serde_json::Value::String(REDACTED.to_owned());
                    } else {
                        redact(field);
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
            _ => {}
        }
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            redact(&mut value);
            value.to_string().into_bytes()
        }
        Err(_) => format!(
            "(withheld: the body names an `ip` and is not whole JSON; {} bytes)",
            body.len()
        )
        .into_bytes(),
    }
}

impl From<DeadLetter> for ErrorRow {
    fn from(letter: DeadLetter) -> Self {
        Self {
            kind: ErrorKind::DeadLetter,
            event_id: letter.event_id.to_string(),
            day: day_and_month(letter.received_at).0,
            occurred_at: letter.received_at,
            application_id: None,
            source: format!(
                "{}/{}@{} ({})",
                letter.topic, letter.partition, letter.offset, letter.stage
            ),
            status: None,
            field: None,
            message: letter.reason.clone(),
            reason: letter.reason,
            body: letter.payload,
            replay_run: letter.replay_run,
        }
    }
}

/// Error rows of one partition since the last flush.
#[derive(Debug, Clone, Default)]
pub struct PartitionErrors {
    checkpoint: Checkpoint,
    rows: Vec<ErrorRow>,
}

/// What an errors flush writes.
#[derive(Debug, Clone, Default)]
pub struct ErrorsBatch {
    pub expected_next_offset: i64,
    pub next_offset: i64,
    pub rows: Vec<ErrorRow>,
}

impl PartitionErrors {
    /// State from the store's checkpoint.
    pub fn restore(next_offset: i64) -> Self {
        Self {
            checkpoint: Checkpoint::restore(next_offset),
            rows: Vec::new(),
        }
    }

    /// Keeps `row` at `offset`; false if the store already includes it.
    pub fn apply(&mut self, offset: i64, row: ErrorRow) -> bool {
        if !self.checkpoint.admit(offset) {
            return false;
        }
        self.rows.push(row);
        true
    }
}

crate::partitioned!(PartitionEvents, PartitionErrors);

impl crate::store::Stored for PartitionEvents {
    type Setup = ();
    type Batch = EventsBatch;

    /// What a flush must write now.
    fn batch(&self) -> EventsBatch {
        let mut type_counts: Vec<_> = self
            .type_counts
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect();
        type_counts.sort();
        EventsBatch {
            expected_next_offset: self.checkpoint.stored(),
            next_offset: self.checkpoint.next_offset(),
            events: self
                .events
                .iter()
                .map(|(offset, event)| (*offset, event.clone(), day_and_month(event.occurred_at).0))
                .collect(),
            type_counts,
        }
    }

    /// Records that a batch is stored.
    fn flushed(&mut self, batch: &EventsBatch) {
        self.checkpoint.flushed(batch.next_offset);
        self.events.clear();
        self.type_counts.clear();
    }
}

impl crate::store::Stored for PartitionErrors {
    type Setup = ();
    type Batch = ErrorsBatch;

    /// What a flush must write now.
    fn batch(&self) -> ErrorsBatch {
        ErrorsBatch {
            expected_next_offset: self.checkpoint.stored(),
            next_offset: self.checkpoint.next_offset(),
            rows: self.rows.clone(),
        }
    }

    /// Records that a batch is stored.
    fn flushed(&mut self, batch: &ErrorsBatch) {
        self.checkpoint.flushed(batch.next_offset);
        self.rows.clear();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_never_reach_a_stored_body_sample() {
        let single = br#"{"short_code":"a","ip":"81.2.69.142","user_agent":"x"}"#;
        let kept = String::from_utf8(without_addresses(single)).expect("utf-8");
        assert!(
            !kept.contains("81.2.69.142") && kept.contains(REDACTED),
            "{kept}"
        );
        let batch = br#"[{"type":"redirect","ip":"2001:db8::1"},{"items":[{"ip":"10.0.0.1"}]}]"#;
        let kept = String::from_utf8(without_addresses(batch)).expect("utf-8");
        assert!(
            !kept.contains("2001:db8") && !kept.contains("10.0.0.1"),
            "{kept}"
        );
        let cut = br#"{"short_code":"a","ip":"81.2.69.142","user_ag"#;
        let kept = String::from_utf8(without_addresses(cut)).expect("utf-8");
        assert!(!kept.contains("81.2"), "{kept}");
        let other = br#"{"key":"k","value":1}"#;
        assert_eq!(without_addresses(other), other.to_vec());
    }

    use super::*;
    use crate::checkpoint::Partitioned;
    use crate::store::Stored;
    use uuid::Uuid;

    fn event(name: &str, known: bool) -> Event {
        Event {
            event_id: Uuid::now_v7(),
            occurred_at: 1_706_742_000_000_000,
            received_at: 1_706_742_000_000_000,
            application_id: "web".into(),
            session_id: "s".into(),
            category: "page interaction".into(),
            name: name.into(),
            data: "{}".into(),
            known_type: known,
            user_id: None,
            device_id: None,
            idempotency_key: None,
            destinations: None,
        }
    }

    #[test]
    fn events_are_kept_with_their_day_and_counted_per_type() {
        let mut events = PartitionEvents::restore(3);
        assert!(!events.apply(2, event("pageview", true)), "already stored");
        assert!(events.apply(3, event("pageview", true)));
        assert!(events.apply(4, event("scroll", false)));
        assert!(events.apply(5, event("pageview", true)));
        let batch = events.batch();
        assert_eq!(batch.events.len(), 3);
        assert_eq!(batch.events[0].2, "2024-01-31");
        let counts: Vec<(&str, i64, bool)> = batch
            .type_counts
            .iter()
            .map(|((_, name), (n, known))| (name.as_str(), *n, *known))
            .collect();
        assert_eq!(counts, vec![("pageview", 2, true), ("scroll", 1, false)]);
        events.flushed(&batch);
        assert!(!events.has_changes());
        assert!(events.batch().events.is_empty());
    }
}
