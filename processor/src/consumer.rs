//! The consumer loop's per-topic worker: keeps each assigned partition's
//! aggregate in memory, flushes it to the store every flush interval and
//! commits offsets to Kafka only after the store write.
//!
//! The store, not Kafka, is the source of truth for where a partition stands:
//! Kafka's committed offset only says where to start reading, and records the
//! store already includes are skipped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, RebalanceProtocol, StreamConsumer,
};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, Offset, Statistics, TopicPartitionList};
use schemas::Codec;
use tokio::sync::mpsc;
use tracing::{Instrument as _, debug, info, warn};

use crate::aggregate::Aggregate;
use crate::dead_letters::{DeadLetterError, DeadLetters, Failed, PendingLetter};
use crate::dedup::Seen;
use crate::rules::NotifyError;
use crate::store::{Fenced as _, FlushOutcome, Store, StoreError};

/// Why handling a record failed; either stops the processor.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HandleError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    DeadLetter(#[from] DeadLetterError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
}

/// One record as read, owned so the consumer can be polled meanwhile.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) timestamp_ms: Option<i64>,
    /// The trace context its headers carry, if any.
    pub(crate) trace: Option<opentelemetry::Context>,
    /// The replay run that wrote it back (`eventide replay --stage
    /// processing`), if any.
    pub(crate) replay: Option<String>,
}

/// Why a record was not applied.
enum Skip {
    /// A retry of a record applied within the dedup window.
    Duplicate,
    /// The value cannot be decoded or applied: the reason.
    Undecodable(String),
}

/// How long a seek may block the loop.
const SEEK_TIMEOUT: Duration = Duration::from_secs(5);

/// Partitions the group takes away from this processor.
#[derive(Debug)]
pub(crate) struct Revoked {
    pub(crate) partitions: Vec<(String, i32)>,
    /// The callback left them assigned: the loop flushes them, then calls
    /// `unassign`, and only then does the group move them to their new owner.
    pub(crate) unassign: bool,
}

/// Forwards rebalances from librdkafka's callback to the loop. A revocation
/// is not acknowledged in the callback: the loop flushes the partitions
/// first and then unassigns them, so the next owner starts from a store that
/// holds everything this one read (librdkafka waits for the unassign before
/// it rejoins the group).
pub(crate) struct RebalanceContext {
    revoked: mpsc::UnboundedSender<Revoked>,
    assigned: mpsc::UnboundedSender<Vec<(String, i32)>>,
    /// Each partition's high watermark from librdkafka's statistics.
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
    /// The loop is gone or leaving: revocations are acknowledged at once
    /// (closing the consumer waits for them).
    closing: std::sync::atomic::AtomicBool,
}

impl RebalanceContext {
    pub(crate) fn new(
        revoked: mpsc::UnboundedSender<Revoked>,
        assigned: mpsc::UnboundedSender<Vec<(String, i32)>>,
    ) -> Self {
        Self {
            revoked,
            assigned,
            high_watermarks: Mutex::new(HashMap::new()),
            closing: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// From now on nobody flushes revoked partitions: acknowledge them in
    /// the callback.
    pub(crate) fn close(&self) {
        self.closing
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }

    fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        let watermarks = self.high_watermarks.lock().ok()?;
        watermarks.get(&(topic.to_owned(), partition)).copied()
    }
}

/// librdkafka's statistics (every `statistics.interval.ms`) give each
/// partition's high watermark and lag without a blocking broker call.
impl ClientContext for RebalanceContext {
    fn stats(&self, statistics: Statistics) {
        let Ok(mut watermarks) = self.high_watermarks.lock() else {
            return;
        };
        for (topic, stats) in statistics.topics {
            for (partition, stats) in stats.partitions {
                if partition < 0 || stats.hi_offset < 0 {
                    continue;
                }
                watermarks.insert((topic.clone(), partition), stats.hi_offset);
                if stats.consumer_lag >= 0 {
                    #[expect(clippy::cast_precision_loss, reason = "a gauge")]
                    metrics::gauge!(crate::metrics::CONSUMER_LAG, "topic" => topic.clone(), "partition" => partition.to_string())
                        .set(stats.consumer_lag as f64);
                }
            }
        }
    }
}

impl ConsumerContext for RebalanceContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let listed: Vec<(String, i32)> = partitions
            .elements()
            .iter()
            .map(|e| (e.topic().to_owned(), e.partition()))
            .collect();
        let cooperative = matches!(
            consumer.rebalance_protocol(),
            RebalanceProtocol::Cooperative
        );
        let outcome = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                info!(partitions = ?listed, "partitions assigned");
                drop(self.assigned.send(listed));
                if cooperative {
                    consumer.incremental_assign(partitions)
                } else {
                    consumer.assign(partitions)
                }
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                // While closing nobody flushes any more (the loop has already
                // flushed everything), and cooperative revocations are
                // incremental: acknowledge those at once.
                let closing = self.closing.load(std::sync::atomic::Ordering::SeqCst);
                let defer = !cooperative && !closing && !consumer.closed();
                info!(partitions = ?listed, flush_first = defer, "partitions revoked");
                drop(self.revoked.send(Revoked {
                    partitions: listed,
                    unassign: defer,
                }));
                match (defer, cooperative) {
                    (true, _) => Ok(()),
                    (false, true) => consumer.incremental_unassign(partitions),
                    (false, false) => consumer.unassign(),
                }
            }
            other => {
                warn!(error = ?other, "rebalance failed");
                Ok(())
            }
        };
        if let Err(err) = outcome {
            warn!(error = %err, "applying a rebalance failed");
        }
    }
}

pub(crate) type GroupConsumer = StreamConsumer<RebalanceContext>;

/// Marks the consumer's context closing when dropped: declared after the
/// consumer, it drops first on every way out of the loop (return, error,
/// abort), so closing the consumer never waits for a loop that is gone.
pub(crate) struct CloseGuard<'a>(pub(crate) &'a GroupConsumer);

impl Drop for CloseGuard<'_> {
    fn drop(&mut self) {
        self.0.context().close();
    }
}

/// One assigned partition's state.
#[derive(Debug)]
struct PartitionState<A> {
    aggregate: A,
    /// Just loaded from the store: the first record read decides whether the
    /// consumer must seek back to the stored checkpoint.
    fresh: bool,
    /// Where a half-written flush ended before a crash (ScyllaDB): no flush
    /// may cross it, so the replayed flush writes exactly the same records
    /// and every row tells by its offset whether it already holds them.
    boundary: Option<i64>,
    /// Dead letters written but not yet acknowledged: every one is awaited
    /// before a flush moves the checkpoint past its record.
    letters: Vec<PendingLetter>,
    /// The idempotency keys applied within the window, for aggregates that
    /// apply each once.
    seen: Option<Seen>,
}

/// Dead letters a partition may have in flight before its worker waits for
/// them (bounds memory and the producer queue during a flood).
const MAX_PENDING_LETTERS: usize = 1_000;

impl<A: Aggregate> PartitionState<A> {
    async fn load(
        io: &Io<'_>,
        context: &A::Context,
        store_name: &str,
        partition: i32,
    ) -> Result<Self, HandleError> {
        let aggregate = A::load(io.store, context, store_name, partition).await?;
        let boundary = io.store.recovery_boundary(store_name, partition).await?;
        if let Some(boundary) = boundary {
            info!(
                checkpoint = store_name,
                partition,
                next_offset = aggregate.next_offset(),
                boundary,
                "a flush was cut short; replaying exactly its records first"
            );
        }
        let seen = if A::DEDUPLICATES {
            let stored = io
                .store
                .remembered(
                    store_name,
                    partition,
                    aggregate.next_offset(),
                    io.dedup_window,
                )
                .await?;
            Some(Seen::restore(io.dedup_window, stored))
        } else {
            None
        };
        Ok(Self {
            aggregate,
            fresh: true,
            boundary,
            letters: Vec::new(),
            seen,
        })
    }

    /// Waits until the broker holds every dead letter written so far.
    async fn letters_acknowledged(&mut self) -> Result<(), DeadLetterError> {
        let pending = std::mem::take(&mut self.letters);
        for acknowledged in
            futures::future::join_all(pending.into_iter().map(PendingLetter::acknowledged)).await
        {
            acknowledged?;
        }
        Ok(())
    }

    /// Whether a flush now would end before the recovery boundary.
    fn short_of_boundary(&self) -> bool {
        self.boundary
            .is_some_and(|boundary| self.aggregate.next_offset() < boundary)
    }
}

/// One topic's aggregate over every partition this processor holds.
pub(crate) struct TopicWorker<A: Aggregate> {
    /// Physical topic name.
    topic: String,
    /// Name of the partitions' checkpoints in the store: the topic, unless
    /// several workers consume the same topic.
    store_name: String,
    /// Logical topic, for metric labels.
    logical: schemas::Topic,
    context: A::Context,
    partitions: HashMap<i32, PartitionState<A>>,
}

impl<A: Aggregate> TopicWorker<A> {
    pub(crate) fn new(topic: String, logical: schemas::Topic, context: A::Context) -> Self {
        Self {
            store_name: topic.clone(),
            topic,
            logical,
            context,
            partitions: HashMap::new(),
        }
    }

    /// Keeps this worker's checkpoints under `<topic>#<suffix>`, apart from
    /// another worker's on the same topic.
    pub(crate) fn with_checkpoint_suffix(mut self, suffix: &str) -> Self {
        self.store_name = format!("{}#{suffix}", self.topic);
        self
    }

    /// The aggregates of the partitions held, for gauges.
    pub(crate) fn aggregates(&self) -> impl Iterator<Item = &A> {
        self.partitions.values().map(|state| &state.aggregate)
    }

    /// Loads the state of newly assigned partitions now rather than at their
    /// first record, for aggregates that act on processing time (timers).
    pub(crate) async fn load(
        &mut self,
        io: &Io<'_>,
        partitions: &[i32],
    ) -> Result<(), HandleError> {
        for partition in partitions {
            if self.partitions.contains_key(partition) {
                continue;
            }
            let state =
                PartitionState::<A>::load(io, &self.context, &self.store_name, *partition).await?;
            debug!(topic = %self.topic, partition, next_offset = state.aggregate.next_offset(), "partition state loaded on assignment");
            self.partitions.insert(*partition, state);
        }
        Ok(())
    }

    /// Lets every partition act on processing time.
    pub(crate) async fn tick(&mut self) {
        for state in self.partitions.values_mut() {
            state.aggregate.tick(&mut self.context).await;
        }
    }

    /// Of `caught_up` partitions, those of this topic with nothing left to
    /// flush, by logical topic name: their stored rows are current. A second
    /// worker on a topic (its checkpoints suffixed) leaves this to the first.
    pub(crate) fn fresh(&self, caught_up: &[(String, i32)]) -> Vec<(&'static str, i32)> {
        if self.store_name != self.topic {
            return Vec::new();
        }
        caught_up
            .iter()
            .filter(|(topic, partition)| {
                topic == &self.topic
                    && self
                        .partitions
                        .get(partition)
                        .is_none_or(|state| !state.aggregate.has_changes())
            })
            .map(|(_, partition)| (self.logical.default_name(), *partition))
            .collect()
    }

    /// The physical topic this worker consumes.
    pub(crate) fn topic(&self) -> &str {
        &self.topic
    }

    /// Applies one record.
    pub(crate) async fn handle(
        &mut self,
        io: &Io<'_>,
        record: &Received,
    ) -> Result<(), HandleError> {
        let Received {
            partition,
            offset,
            ref key,
            ref payload,
            timestamp_ms,
            ..
        } = *record;
        if let Some(state) = self.partitions.get_mut(&partition)
            && state.boundary.is_some_and(|boundary| offset >= boundary)
        {
            // Every record of the cut-short flush is applied: write them as
            // that flush did before anything newer joins the batch.
            state.boundary = None;
            self.flush(io, &[partition], CommitMode::Async).await?;
        }
        let state = match self.partitions.entry(partition) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => {
                let state =
                    PartitionState::<A>::load(io, &self.context, &self.store_name, partition)
                        .await?;
                debug!(topic = %self.topic, partition, next_offset = state.aggregate.next_offset(), "partition state loaded");
                entry.insert(state)
            }
        };
        if state.fresh {
            state.fresh = false;
            let stored = state.aggregate.next_offset();
            if offset > stored {
                info!(topic = %self.topic, partition, offset, stored, "read position is past the stored checkpoint; seeking back");
                if let Err(err) =
                    io.consumer
                        .seek(&self.topic, partition, Offset::Offset(stored), SEEK_TIMEOUT)
                {
                    warn!(partition, error = %err, "seek to the stored checkpoint failed; rereading from committed offset");
                    self.partitions.remove(&partition);
                }
                return Ok(());
            }
        }
        let topic_label = self.logical.default_name();
        let decoded = match payload {
            Some(bytes) => A::decode(&self.context, io.codec, bytes).await,
            None => Err("record has no value".to_owned()),
        };
        let applied = match decoded {
            Ok(record) => {
                let duplicate = offset >= state.aggregate.next_offset()
                    && A::identity(&record).is_some_and(|(identity, received_at)| {
                        state
                            .seen
                            .as_mut()
                            .is_some_and(|seen| !seen.first(identity, offset, received_at))
                    });
                if duplicate {
                    Err(Skip::Duplicate)
                } else {
                    state
                        .aggregate
                        .apply(&mut self.context, offset, record)
                        .await
                        .map_err(Skip::Undecodable)
                }
            }
            Err(reason) => Err(Skip::Undecodable(reason)),
        };
        match applied {
            Err(Skip::Duplicate) => {
                metrics::counter!(crate::metrics::DUPLICATES, "topic" => topic_label).increment(1);
                debug!(
                    partition,
                    offset, "skipped a retry of a record already applied"
                );
                state.aggregate.skip(offset);
            }
            Ok(true) => {
                metrics::counter!(crate::metrics::RECORDS, "topic" => topic_label).increment(1)
            }
            Ok(false) => {
                metrics::counter!(crate::metrics::REPLAYED, "topic" => topic_label).increment(1);
                debug!(
                    partition,
                    offset, "skipped a record the store already includes"
                );
            }
            Err(Skip::Undecodable(_)) if offset < state.aggregate.next_offset() => {
                // Dead-lettered before a restart: the checkpoint is past it.
                debug!(
                    partition,
                    offset, "skipped an undecodable record already dead-lettered"
                );
            }
            Err(Skip::Undecodable(reason)) if !A::DEAD_LETTERS => {
                debug!(topic = %self.topic, partition, offset, reason, "undecodable record; another worker dead-letters it");
                state.aggregate.skip(offset);
            }
            Err(Skip::Undecodable(reason)) => {
                metrics::counter!(crate::metrics::UNDECODABLE, "topic" => topic_label).increment(1);
                if state.letters.is_empty() {
                    // One line per run of undecodable records (a flood would
                    // otherwise log every record); the counter has them all.
                    warn!(topic = %self.topic, partition, offset, reason, "undecodable record; writing it to dead letters");
                } else {
                    debug!(topic = %self.topic, partition, offset, reason, "undecodable record; writing it to dead letters");
                }
                let failed = Failed {
                    topic: &self.topic,
                    partition,
                    offset,
                    key: key.as_deref(),
                    payload: payload.as_deref().unwrap_or_default(),
                    timestamp_ms,
                    trace: record.trace.as_ref(),
                    replay: record.replay.as_deref(),
                };
                let letter = io
                    .dead_letters
                    .enqueue("processor", failed, &reason)
                    .await?;
                state.letters.push(letter);
                state.aggregate.skip(offset);
                if state.letters.len() >= MAX_PENDING_LETTERS {
                    state.letters_acknowledged().await?;
                }
            }
        }
        Ok(())
    }

    /// Flushes every changed partition, then commits their offsets.
    pub(crate) async fn flush_all(
        &mut self,
        io: &Io<'_>,
        mode: CommitMode,
    ) -> Result<(), HandleError> {
        let changed: Vec<i32> = self
            .partitions
            .iter()
            .filter(|(_, state)| state.aggregate.has_changes())
            .map(|(partition, _)| *partition)
            .collect();
        self.flush(io, &changed, mode).await
    }

    /// Flushes and forgets partitions this processor no longer owns,
    /// committing their offsets before they are unassigned.
    pub(crate) async fn release(
        &mut self,
        io: &Io<'_>,
        partitions: &[i32],
    ) -> Result<(), HandleError> {
        self.flush(io, partitions, CommitMode::Sync).await?;
        for partition in partitions {
            self.partitions.remove(partition);
        }
        Ok(())
    }

    async fn flush(
        &mut self,
        io: &Io<'_>,
        partitions: &[i32],
        mode: CommitMode,
    ) -> Result<(), HandleError> {
        let mut commits = TopicPartitionList::new();
        for partition in partitions {
            let Some(state) = self.partitions.get_mut(partition) else {
                continue;
            };
            if !state.aggregate.has_changes() || state.short_of_boundary() {
                continue;
            }
            state.letters_acknowledged().await?;
            state.aggregate.before_flush(&mut self.context).await?;
            if let Some(seen) = state.seen.as_mut() {
                let keys = seen.take_pending();
                io.store
                    .remember(&self.store_name, *partition, &keys, io.dedup_window)
                    .await?;
                #[expect(clippy::cast_precision_loss, reason = "a gauge")]
                metrics::gauge!(crate::metrics::DEDUP_KEYS, "checkpoint" => self.store_name.clone(), "partition" => partition.to_string())
                    .set(seen.len() as f64);
            }
            let batch = state.aggregate.batch();
            let started = std::time::Instant::now();
            let span = tracing::info_span!(
                "flush",
                otel.name = format!("flush {}", self.store_name),
                partition = *partition
            );
            let outcome = A::flush(io.store, &self.store_name, *partition, &batch)
                .instrument(span)
                .await?;
            metrics::histogram!(crate::metrics::FLUSH_SECONDS, "backend" => io.store.backend())
                .record(started.elapsed().as_secs_f64());
            #[expect(clippy::cast_precision_loss, reason = "a count for a histogram")]
            metrics::histogram!(crate::metrics::FLUSH_RECORDS, "backend" => io.store.backend(), "checkpoint" => self.store_name.clone())
                .record((A::batch_next_offset(&batch) - batch.expected_next_offset()) as f64);
            match outcome {
                FlushOutcome::Written => {
                    state.aggregate.flushed(&batch);
                    state.boundary = None;
                    let next = A::batch_next_offset(&batch);
                    if let Err(err) =
                        commits.add_partition_offset(&self.topic, *partition, Offset::Offset(next))
                    {
                        warn!(partition, error = %err, "cannot build offset commit");
                    }
                }
                FlushOutcome::Fenced => {
                    metrics::counter!(crate::metrics::FENCED).increment(1);
                    warn!(topic = %self.topic, partition, "another processor moved this partition on; reloading its state");
                    self.partitions.remove(partition);
                }
            }
        }
        if commits.count() > 0
            && let Err(err) = io.consumer.commit(&commits, mode)
        {
            // The store already holds these offsets; a failed commit only
            // means more records are reread and skipped after a restart.
            debug!(error = %err, "offset commit failed");
        }
        Ok(())
    }
}

/// The assigned partitions whose records have all been read: the
/// consumer's position is at the (cached) high watermark.
pub(crate) fn caught_up(consumer: &GroupConsumer) -> Vec<(String, i32)> {
    let Ok(positions) = consumer.position() else {
        return Vec::new();
    };
    positions
        .elements()
        .iter()
        .filter_map(|element| {
            let high = consumer
                .context()
                .high_watermark(element.topic(), element.partition())?;
            let read_all = match element.offset() {
                Offset::Offset(position) => position >= high,
                _ => high == 0,
            };
            read_all.then(|| (element.topic().to_owned(), element.partition()))
        })
        .collect()
}

/// What every worker reads and writes through.
pub(crate) struct Io<'a> {
    pub(crate) consumer: &'a GroupConsumer,
    pub(crate) store: &'a Store,
    pub(crate) codec: &'a Codec,
    pub(crate) dead_letters: &'a DeadLetters,
    /// How long an idempotency key is remembered.
    pub(crate) dedup_window: Duration,
}
