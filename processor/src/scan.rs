//! Reading a topic from its beginning to the end it had when the read
//! began, without a consumer group: what the destination states and
//! `eventide replay` need.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedMessage;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use thiserror::Error;
use tracing::warn;

/// Why a topic could not be read to its end.
#[derive(Debug, Error)]
pub enum ScanError {
    /// The broker refused or could not be reached.
    #[error("reading {topic}: {source}")]
    Kafka {
        topic: String,
        #[source]
        source: KafkaError,
    },
    /// The end was not reached in time.
    #[error("{topic} not read to its end in time")]
    Timeout { topic: String },
    /// A blocking broker call's thread ended abnormally.
    #[error("reading {topic}: {reason}")]
    Task { topic: String, reason: String },
}

/// A consumer assigned every partition of one topic from its beginning.
pub struct Scan {
    pub consumer: Arc<StreamConsumer>,
    topic: String,
    /// Each partition's end when the scan began.
    ends: HashMap<i32, i64>,
    /// Partitions not yet read to their end, with the end.
    behind: HashMap<i32, i64>,
}

impl std::fmt::Debug for Scan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scan")
            .field("topic", &self.topic)
            .field("ends", &self.ends)
            .finish_non_exhaustive()
    }
}

impl Scan {
    /// Assigns every partition of `topic` from its beginning and notes
    /// where each ends now.
    ///
    /// # Errors
    ///
    /// [`ScanError`] if the broker cannot say.
    pub async fn open(
        kafka: &ClientConfig,
        topic: &str,
        timeout: Duration,
    ) -> Result<Self, ScanError> {
        let kafka_error = |source| ScanError::Kafka {
            topic: topic.to_owned(),
            source,
        };
        let consumer: StreamConsumer = kafka
            .clone()
            // Assigned, not subscribed: no group membership, no commits.
            .set("group.id", "eventide-scan")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "100")
            .create()
            .map_err(kafka_error)?;
        let consumer = Arc::new(consumer);
        let ends = {
            let (consumer, name) = (consumer.clone(), topic.to_owned());
            tokio::task::spawn_blocking(move || ends(&consumer, &name, timeout))
                .await
                .map_err(|err| ScanError::Task {
                    topic: topic.to_owned(),
                    reason: err.to_string(),
                })?
                .map_err(kafka_error)?
        };
        let mut assignment = TopicPartitionList::new();
        for partition in ends.keys() {
            assignment
                .add_partition_offset(topic, *partition, Offset::Beginning)
                .map_err(kafka_error)?;
        }
        consumer.assign(&assignment).map_err(kafka_error)?;
        let behind = ends
            .iter()
            .filter(|(_, end)| **end > 0)
            .map(|(partition, end)| (*partition, *end))
            .collect();
        Ok(Self {
            consumer,
            topic: topic.to_owned(),
            ends,
            behind,
        })
    }

    /// Records to read in all: the sum of the ends (an upper bound once
    /// retention has deleted the oldest).
    pub fn total(&self) -> u64 {
        self.ends
            .values()
            .map(|end| u64::try_from(*end).unwrap_or_default())
            .sum()
    }

    /// The next record before the ends, in order per partition; `None`
    /// once every partition is read to its end.
    ///
    /// # Errors
    ///
    /// [`ScanError::Timeout`] if the ends are not reached by `deadline`.
    pub async fn next(&mut self, deadline: Instant) -> Result<Option<OwnedMessage>, ScanError> {
        use rdkafka::message::Message as _;
        loop {
            if self.behind.is_empty() {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let message = match tokio::time::timeout(left, self.consumer.recv()).await {
                Err(_) => {
                    return Err(ScanError::Timeout {
                        topic: self.topic.clone(),
                    });
                }
                Ok(Err(err)) => {
                    warn!(topic = %self.topic, error = %err, "scan: consumer error");
                    continue;
                }
                Ok(Ok(message)) => message,
            };
            let partition = message.partition();
            let Some(end) = self.behind.get(&partition).copied() else {
                continue;
            };
            if message.offset() + 1 >= end {
                self.behind.remove(&partition);
            }
            if message.offset() < end {
                return Ok(Some(message.detach()));
            }
        }
    }
}

/// Each partition's end offset.
fn ends(
    consumer: &StreamConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<HashMap<i32, i64>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut ends = HashMap::new();
    for partition in metadata
        .topics()
        .iter()
        .flat_map(|topic| topic.partitions())
    {
        let (_, high) = consumer.fetch_watermarks(topic, partition.id(), timeout)?;
        ends.insert(partition.id(), high);
    }
    Ok(ends)
}
