//! The consumer loop: reads increments in a consumer group, keeps each
//! assigned partition's totals in memory, flushes them to the store every
//! flush interval and commits offsets to Kafka only after the store write.
//!
//! The store, not Kafka, is the source of truth for where a partition stands:
//! Kafka's committed offset only says where to start reading, and records the
//! store already includes are skipped.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use schemas::{Codec, Increment};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};

use crate::counters::{Applied, PartitionCounters};
use crate::dead_letters::{DeadLetterError, DeadLetters, Failed};
use crate::store::{FlushOutcome, Store, StoreError};

/// Why handling a record failed; either stops the processor.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
}

/// One record as read, owned so the consumer can be polled meanwhile.
#[derive(Debug)]
pub(crate) struct Received {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) timestamp_ms: Option<i64>,
}

/// How long a seek may block the loop.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// Forwards revocations from librdkafka's callback to the loop, so the loop
/// can flush and forget a partition before it works on anything else.
pub(crate) struct RebalanceContext {
    revoked: mpsc::UnboundedSender<Vec<i32>>,
}

impl RebalanceContext {
    pub(crate) fn new(revoked: mpsc::UnboundedSender<Vec<i32>>) -> Self {
        Self { revoked }
    }
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(list) => {
                let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "partitions revoked");
                drop(self.revoked.send(partitions));
            }
            Rebalance::Assign(list) => {
                let partitions: Vec<i32> = list.elements().iter().map(|e| e.partition()).collect();
                info!(?partitions, "partitions assigned");
            }
            Rebalance::Error(err) => warn!(error = %err, "rebalance failed"),
        }
    }
}

pub(crate) type GroupConsumer = StreamConsumer<RebalanceContext>;

/// One assigned partition's state.
#[derive(Debug)]
struct PartitionState {
    counters: PartitionCounters,
    /// Just loaded from the store: the first record read decides whether the
    /// consumer must seek back to the stored checkpoint.
    fresh: bool,
}

/// The counters aggregate of every partition this processor holds.
pub(crate) struct CountersWorker {
    store: Store,
    codec: Codec,
    dead_letters: DeadLetters,
    /// Physical name of the increments topic.
    topic: String,
    partitions: HashMap<i32, PartitionState>,
}

impl CountersWorker {
    pub(crate) fn new(
        store: Store,
        codec: Codec,
        dead_letters: DeadLetters,
        topic: String,
    ) -> Self {
        Self {
            store,
            codec,
            dead_letters,
            topic,
            partitions: HashMap::new(),
        }
    }

    /// Applies one record.
    pub(crate) async fn handle(
        &mut self,
        consumer: &GroupConsumer,
        record: Received,
    ) -> Result<(), HandleError> {
        let Received {
            partition,
            offset,
            ref key,
            ref payload,
            timestamp_ms,
        } = record;
        let state = match self.partitions.entry(partition) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let counters = self.store.load_counters(&self.topic, partition).await?;
                debug!(
                    partition,
                    next_offset = counters.next_offset(),
                    "partition state loaded"
                );
                entry.insert(PartitionState {
                    counters,
                    fresh: true,
                })
            }
        };
        if state.fresh {
            state.fresh = false;
            let stored = state.counters.next_offset();
            if offset > stored {
                info!(
                    partition,
                    offset, stored, "read position is past the stored checkpoint; seeking back"
                );
                if let Err(err) =
                    consumer.seek(&self.topic, partition, Offset::Offset(stored), SEEK_TIMEOUT)
                {
                    warn!(partition, error = %err, "seek to the stored checkpoint failed; rereading from committed offset");
                    self.partitions.remove(&partition);
                }
                return Ok(());
            }
        }
        let decoded = match payload {
            Some(bytes) => self
                .codec
                .decode::<Increment>(bytes)
                .await
                .map_err(|err| err.to_string()),
            None => Err("record has no value".to_owned()),
        };
        match decoded {
            Ok(increment) => {
                if state.counters.apply(offset, increment.key, increment.value) == Applied::Replayed
                {
                    debug!(
                        partition,
                        offset, "skipped a record the store already includes"
                    );
                }
            }
            Err(_) if offset < state.counters.next_offset() => {
                // Dead-lettered before a restart: the checkpoint is past it.
                debug!(
                    partition,
                    offset, "skipped an undecodable record already dead-lettered"
                );
            }
            Err(reason) => {
                metrics::counter!(crate::metrics::UNDECODABLE, "topic" => schemas::Topic::Increments.default_name())
                    .increment(1);
                warn!(
                    partition,
                    offset, reason, "undecodable increment; writing it to dead letters"
                );
                let failed = Failed {
                    topic: &self.topic,
                    partition,
                    offset,
                    key: key.as_deref(),
                    payload: payload.as_deref().unwrap_or_default(),
                    timestamp_ms,
                };
                self.dead_letters.send("processor", failed, &reason).await?;
                state.counters.skip(offset);
            }
        }
        Ok(())
    }

    /// Flushes every changed partition, then commits their offsets.
    pub(crate) async fn flush_all(
        &mut self,
        consumer: &GroupConsumer,
        mode: CommitMode,
    ) -> Result<(), StoreError> {
        let changed: Vec<i32> = self
            .partitions
            .iter()
            .filter(|(_, state)| state.counters.has_changes())
            .map(|(partition, _)| *partition)
            .collect();
        self.flush(consumer, &changed, mode).await
    }

    /// Flushes and forgets partitions this processor no longer owns.
    pub(crate) async fn release(
        &mut self,
        consumer: &GroupConsumer,
        partitions: &[i32],
    ) -> Result<(), StoreError> {
        self.flush(consumer, partitions, CommitMode::Async).await?;
        for partition in partitions {
            self.partitions.remove(partition);
        }
        Ok(())
    }

    async fn flush(
        &mut self,
        consumer: &GroupConsumer,
        partitions: &[i32],
        mode: CommitMode,
    ) -> Result<(), StoreError> {
        let mut commits = TopicPartitionList::new();
        for partition in partitions {
            let Some(state) = self.partitions.get_mut(partition) else {
                continue;
            };
            if !state.counters.has_changes() {
                continue;
            }
            let batch = state.counters.flush_batch();
            match self
                .store
                .flush_counters(&self.topic, *partition, &batch)
                .await?
            {
                FlushOutcome::Written => {
                    state.counters.flushed(&batch);
                    if let Err(err) = commits.add_partition_offset(
                        &self.topic,
                        *partition,
                        Offset::Offset(batch.next_offset),
                    ) {
                        warn!(partition, error = %err, "cannot build offset commit");
                    }
                }
                FlushOutcome::Fenced => {
                    metrics::counter!(crate::metrics::FENCED).increment(1);
                    warn!(
                        partition,
                        "another processor moved this partition on; reloading its state"
                    );
                    self.partitions.remove(partition);
                }
            }
        }
        if commits.count() > 0
            && let Err(err) = consumer.commit(&commits, mode)
        {
            // The store already holds these offsets; a failed commit only
            // means more records are reread and skipped after a restart.
            debug!(error = %err, "offset commit failed");
        }
        Ok(())
    }
}
