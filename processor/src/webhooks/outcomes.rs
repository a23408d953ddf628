//! Last success and last error per destination, for `eventide destinations
//! list` and `GET /v1/admin/destinations`.
//!
//! Each delivery replica notes how its attempts end ([`Outcomes`]) and, at
//! most every [`REPORT_INTERVAL`] when something changed, writes what it saw
//! to the compacted `destination-health` topic, keyed by destination and
//! replica. A listing reads the topic to its end and merges the replicas:
//! the newest success and the newest error win.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::{Codec, DestinationHealth, Topic};
use tokio_util::sync::CancellationToken;
use tracing::warn;

use super::control::ControlError;
use crate::scan::Scan;

/// How often a replica reports at most.
pub const REPORT_INTERVAL: Duration = Duration::from_secs(2);
/// How long reading the reports to the topic's end may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the broker has to acknowledge a report.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest error text a report keeps.
const MAX_ERROR: usize = 512;

/// What one replica saw of one destination.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Seen {
    last_success_at: Option<i64>,
    last_error_at: Option<i64>,
    last_error: Option<String>,
    /// Changed since the last report.
    changed: bool,
}

/// How a destination's attempts ended in this process, shared by its
/// deliveries and its reporter.
#[derive(Debug, Clone, Default)]
pub struct Outcomes {
    seen: Arc<Mutex<Seen>>,
}

impl Outcomes {
    /// Notes a `2xx` answer.
    pub fn succeeded(&self) {
        let mut seen = self.seen();
        seen.last_success_at = Some(schemas::time::now_micros());
        seen.changed = true;
    }

    /// Notes a failed attempt and why.
    pub fn failed(&self, reason: &str) {
        let mut cut = reason.to_owned();
        if cut.len() > MAX_ERROR {
            let end = (0..=MAX_ERROR)
                .rev()
                .find(|i| cut.is_char_boundary(*i))
                .unwrap_or(0);
            cut.truncate(end);
        }
        let mut seen = self.seen();
        seen.last_error_at = Some(schemas::time::now_micros());
        seen.last_error = Some(cut);
        seen.changed = true;
    }

    /// What changed since the last call, if anything.
    fn take_changed(&self) -> Option<Seen> {
        let mut seen = self.seen();
        if !seen.changed {
            return None;
        }
        seen.changed = false;
        Some(seen.clone())
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// This process as a replica: host name (the pod's name on Kubernetes) and
/// process id.
pub fn replica() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".to_owned());
    format!("{host}/{}", std::process::id())
}

/// Writes `destination`'s outcomes when they change, at most every
/// [`REPORT_INTERVAL`], and once more at `shutdown`. A report the broker
/// refuses is logged and sent again with the next change.
pub async fn report(
    mut kafka: ClientConfig,
    codec: Codec,
    destination: String,
    outcomes: Outcomes,
    shutdown: CancellationToken,
) {
    let topic = codec.names().name(Topic::DestinationHealth);
    let producer: FutureProducer = match kafka
        .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
        .create()
    {
        Ok(producer) => producer,
        Err(err) => {
            warn!(%destination, error = %err, "destination health not reported: no producer");
            return;
        }
    };
    let replica = replica();
    let key = format!("{destination}/{replica}");
    let mut tick = tokio::time::interval(REPORT_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let last = tokio::select! {
            () = shutdown.cancelled() => true,
            _ = tick.tick() => false,
        };
        if let Some(seen) = outcomes.take_changed() {
            let health = DestinationHealth {
                destination: destination.clone(),
                replica: replica.clone(),
                reported_at: schemas::time::now_micros(),
                last_success_at: seen.last_success_at,
                last_error_at: seen.last_error_at,
                last_error: seen.last_error,
            };
            let sent = match codec.encode(&health).await {
                Ok(payload) => producer
                    .send(
                        FutureRecord::to(&topic).key(&key).payload(&payload),
                        SEND_TIMEOUT,
                    )
                    .await
                    .map(drop)
                    .map_err(|(err, _)| err.to_string()),
                Err(err) => Err(err.to_string()),
            };
            if let Err(err) = sent {
                warn!(%destination, error = %err, "destination health not reported; again with the next change");
                outcomes.seen().changed = true;
            }
        }
        if last {
            return;
        }
    }
}

/// A destination's newest success and error over every replica.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Merged {
    pub last_success_at: Option<i64>,
    pub last_error_at: Option<i64>,
    pub last_error: Option<String>,
}

impl Merged {
    fn add(&mut self, health: DestinationHealth) {
        if health.last_success_at > self.last_success_at {
            self.last_success_at = health.last_success_at;
        }
        if health.last_error_at > self.last_error_at {
            self.last_error_at = health.last_error_at;
            self.last_error = health.last_error;
        }
    }
}

/// Every destination's merged outcomes, by name.
///
/// # Errors
///
/// [`ControlError`] if the topic cannot be read to its end.
pub async fn load(
    kafka: &ClientConfig,
    codec: &Codec,
) -> Result<HashMap<String, Merged>, ControlError> {
    let topic = codec.names().name(Topic::DestinationHealth);
    let mut scan = Scan::open(kafka, &topic, LOAD_TIMEOUT).await?;
    let deadline = Instant::now() + LOAD_TIMEOUT;
    // The newest report per key (compaction may not have run yet).
    let mut newest: HashMap<Vec<u8>, DestinationHealth> = HashMap::new();
    while let Some(message) = scan.next(deadline).await? {
        let (Some(key), Some(payload)) = (message.key(), message.payload()) else {
            continue;
        };
        match codec.decode::<DestinationHealth>(payload).await {
            Ok(health) => {
                newest.insert(key.to_vec(), health);
            }
            Err(err) => warn!(error = %err, "destination health: undecodable record skipped"),
        }
    }
    let mut merged: HashMap<String, Merged> = HashMap::new();
    for health in newest.into_values() {
        merged
            .entry(health.destination.clone())
            .or_default()
            .add(health);
    }
    Ok(merged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(
        replica: &str,
        success: Option<i64>,
        error: Option<(i64, &str)>,
    ) -> DestinationHealth {
        DestinationHealth {
            destination: "crm".into(),
            replica: replica.into(),
            reported_at: 0,
            last_success_at: success,
            last_error_at: error.map(|(at, _)| at),
            last_error: error.map(|(_, why)| why.to_owned()),
        }
    }

    #[test]
    fn the_newest_success_and_the_newest_error_win_across_replicas() {
        let mut merged = Merged::default();
        merged.add(report("a", Some(10), Some((30, "answered 502"))));
        merged.add(report("b", Some(20), Some((5, "timed out"))));
        merged.add(report("c", None, None));
        assert_eq!(
            merged,
            Merged {
                last_success_at: Some(20),
                last_error_at: Some(30),
                last_error: Some("answered 502".into()),
            }
        );
    }

    #[test]
    fn only_changes_are_reported_and_long_errors_are_cut_on_a_char_boundary() {
        let outcomes = Outcomes::default();
        assert_eq!(outcomes.take_changed(), None);
        outcomes.failed(&"é".repeat(MAX_ERROR));
        let seen = outcomes.take_changed().expect("changed");
        let error = seen.last_error.expect("error");
        assert!(error.len() <= MAX_ERROR && error.chars().all(|c| c == 'é'));
        assert_eq!(outcomes.take_changed(), None);
        outcomes.succeeded();
        let seen = outcomes.take_changed().expect("changed");
        assert!(seen.last_success_at.is_some() && seen.last_error_at.is_some());
    }
}
