//! Pause and resume: each destination's state lives on the compacted
//! `destination-states` topic, keyed by destination name, the newest record
//! winning. Every delivery process reads the topic to its end before any
//! destination starts (a paused destination never delivers after a
//! restart), then follows it, so a change reaches every replica within a
//! fetch (well under a second on an idle topic).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::{Codec, CodecError, DestinationState, Topic};
use thiserror::Error;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::scan::{Scan, ScanError};

/// How long loading the states to the topic's end may take.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the broker has to acknowledge a state change.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the states cannot be read or changed.
#[derive(Debug, Error)]
pub enum ControlError {
    /// The broker refused or could not be reached.
    #[error("destination states ({topic}): {source}")]
    Kafka {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// A state could not be encoded.
    #[error("destination state encoding: {0}")]
    Codec(#[from] CodecError),
    /// The topic could not be read to its end.
    #[error(transparent)]
    Scan(#[from] ScanError),
}

/// The newest state of every destination, as a process follows them.
#[derive(Debug, Clone, Default)]
pub struct States {
    watches: Arc<Mutex<HashMap<String, watch::Sender<Option<DestinationState>>>>>,
}

impl States {
    /// Follows `destination`'s state: `None` until it was ever changed
    /// (then it is not paused).
    pub fn watch(&self, destination: &str) -> watch::Receiver<Option<DestinationState>> {
        self.sender(destination).subscribe()
    }

    /// Every destination's newest state, by name.
    pub fn snapshot(&self) -> Vec<DestinationState> {
        let watches = self.watches.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<DestinationState> = watches
            .values()
            .filter_map(|sender| sender.borrow().clone())
            .collect();
        all.sort_by(|a, b| a.destination.cmp(&b.destination));
        all
    }

    fn set(&self, state: DestinationState) {
        self.sender(&state.destination).send_replace(Some(state));
    }

    fn sender(&self, destination: &str) -> watch::Sender<Option<DestinationState>> {
        self.watches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(destination.to_owned())
            .or_insert_with(|| watch::Sender::new(None))
            .clone()
    }
}

/// Whether `state` pauses its destination.
pub fn is_paused(state: &Option<DestinationState>) -> bool {
    state.as_ref().is_some_and(|state| state.paused)
}

/// Reads every state to the topic's end, then follows the topic until
/// `shutdown` in a task of its own.
///
/// # Errors
///
/// [`ControlError`] if the topic cannot be read to its end.
pub async fn follow(
    kafka: &ClientConfig,
    codec: Codec,
    shutdown: CancellationToken,
) -> Result<States, ControlError> {
    let topic = codec.names().name(Topic::DestinationStates);
    let mut scan = Scan::open(kafka, &topic, LOAD_TIMEOUT).await?;
    let states = States::default();
    // Up to the end before anything delivers.
    let deadline = Instant::now() + LOAD_TIMEOUT;
    while let Some(message) = scan.next(deadline).await? {
        apply(&states, &codec, message.payload()).await;
    }
    let paused: Vec<String> = states
        .snapshot()
        .into_iter()
        .filter(|state| state.paused)
        .map(|state| state.destination)
        .collect();
    info!(?paused, "destination states loaded");
    let following = states.clone();
    let consumer = scan.consumer.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                received = consumer.recv() => match received {
                    Ok(message) => apply(&following, &codec, message.payload()).await,
                    Err(err) => warn!(error = %err, "destination states: consumer error"),
                },
            }
        }
    });
    Ok(states)
}

async fn apply(states: &States, codec: &Codec, payload: Option<&[u8]>) {
    let Some(payload) = payload else { return };
    match codec.decode::<DestinationState>(payload).await {
        Ok(state) => {
            info!(destination = %state.destination, paused = state.paused, by = %state.changed_by, reason = %state.reason, "destination state");
            states.set(state);
        }
        Err(err) => warn!(error = %err, "destination states: undecodable record skipped"),
    }
}

/// A destination as an operator lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Status {
    pub destination: String,
    pub paused: bool,
    /// When the state last changed (RFC 3339), if it ever did.
    pub changed_at: Option<String>,
    /// Who changed it: `cli:<user>`, `api:<key>` or `auto-pause`.
    pub changed_by: Option<String>,
    pub reason: Option<String>,
    /// Records of its source topic its consumer group has not finished;
    /// `None` for a destination not configured here.
    pub lag: Option<i64>,
    /// When the receiver last answered `2xx` (RFC 3339), over every replica.
    pub last_success_at: Option<String>,
    /// When an attempt last failed (RFC 3339), over every replica.
    pub last_error_at: Option<String>,
    /// How that attempt failed.
    pub last_error: Option<String>,
}

impl Status {
    fn new(destination: String) -> Self {
        Self {
            destination,
            paused: false,
            changed_at: None,
            changed_by: None,
            reason: None,
            lag: None,
            last_success_at: None,
            last_error_at: None,
            last_error: None,
        }
    }
}

/// Microseconds since the epoch as RFC 3339.
fn rfc3339(micros: i64) -> Option<String> {
    chrono::DateTime::from_timestamp_micros(micros).map(|at| at.to_rfc3339())
}

/// Every destination's state (configured ones and any with a state or a
/// health report), last success and last error, and the lag of the
/// configured ones, by name.
///
/// # Errors
///
/// [`ControlError`] if the states or the offsets cannot be read.
pub async fn statuses(
    kafka: &ClientConfig,
    codec: &Codec,
    configured: &[super::Destination],
    group_prefix: &str,
) -> Result<Vec<Status>, ControlError> {
    let stop = CancellationToken::new();
    let states = follow(kafka, codec.clone(), stop.clone()).await;
    stop.cancel();
    let mut rows: std::collections::BTreeMap<String, Status> = states?
        .snapshot()
        .into_iter()
        .map(|state| {
            let status = Status {
                paused: state.paused,
                changed_at: rfc3339(state.changed_at),
                changed_by: Some(state.changed_by),
                reason: Some(state.reason),
                ..Status::new(state.destination.clone())
            };
            (state.destination, status)
        })
        .collect();
    for (name, merged) in super::outcomes::load(kafka, codec).await? {
        let status = rows
            .entry(name.clone())
            .or_insert_with(|| Status::new(name));
        status.last_success_at = merged.last_success_at.and_then(rfc3339);
        status.last_error_at = merged.last_error_at.and_then(rfc3339);
        status.last_error = merged.last_error;
    }
    for destination in configured {
        let topic = codec.names().name(match destination.source {
            super::Source::Events => Topic::Events,
            super::Source::Notifications => Topic::Notifications,
        });
        let group = format!("{group_prefix}-{}", destination.name);
        let (config, name) = (kafka.clone(), topic.clone());
        let lag = tokio::task::spawn_blocking(move || lag(&config, &group, &name))
            .await
            .map_err(|err| ScanError::Task {
                topic: topic.clone(),
                reason: err.to_string(),
            })?
            .map_err(|source| ControlError::Kafka { topic, source })?;
        rows.entry(destination.name.clone())
            .or_insert_with(|| Status::new(destination.name.clone()))
            .lag = Some(lag);
    }
    Ok(rows.into_values().collect())
}

/// Records of `topic` that the consumer group `group` has not finished.
fn lag(kafka: &ClientConfig, group: &str, topic: &str) -> Result<i64, rdkafka::error::KafkaError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = kafka.clone().set("group.id", group).create()?;
    let metadata = consumer.fetch_metadata(Some(topic), LOAD_TIMEOUT)?;
    let mut partitions = TopicPartitionList::new();
    for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
        partitions.add_partition(topic, partition.id());
    }
    let committed = consumer.committed_offsets(partitions, LOAD_TIMEOUT)?;
    let mut lag = 0;
    for element in committed.elements() {
        let (low, high) = consumer.fetch_watermarks(topic, element.partition(), LOAD_TIMEOUT)?;
        let done = match element.offset() {
            Offset::Offset(offset) => offset,
            _ => low,
        };
        lag += (high - done).max(0);
    }
    Ok(lag)
}

/// Writes a state change and waits until the broker has it.
///
/// # Errors
///
/// [`ControlError`] if it cannot be encoded or written.
pub async fn publish(
    kafka: &ClientConfig,
    codec: &Codec,
    state: &DestinationState,
) -> Result<(), ControlError> {
    let topic = codec.names().name(Topic::DestinationStates);
    let kafka_error = |source| ControlError::Kafka {
        topic: topic.clone(),
        source,
    };
    let producer: FutureProducer = kafka
        .clone()
        .set("acks", "all")
        .set("message.timeout.ms", SEND_TIMEOUT.as_millis().to_string())
        .create()
        .map_err(kafka_error)?;
    let payload = codec.encode(state).await?;
    producer
        .send(
            FutureRecord::to(&topic)
                .key(&state.destination)
                .payload(&payload),
            SEND_TIMEOUT,
        )
        .await
        .map_err(|(err, _)| kafka_error(err))?;
    Ok(())
}
