//! The counters aggregate of one topic partition, without I/O.
//!
//! It keeps only what was added since the last flush, so its memory follows
//! the keys touched in one flush interval, not every key ever seen. The store
//! adds the deltas to its absolute totals in the same transaction that moves
//! the partition's checkpoint, so a replay after a crash adds nothing twice.
//!
//! Totals are `i64` and never clamped: an increment that would take the
//! added amount past `i64::MAX` is refused here and dead-lettered with the
//! reason `counter_overflow`; a flush whose amount would take a stored total
//! past it leaves the total as it was and writes [`overflow_error`] to the
//! error log in the same transaction.

use std::collections::HashMap;

use uuid::Uuid;

use crate::checkpoint::Checkpoint;
use crate::clicks::day_and_month;
use crate::event_store::{ErrorKind, ErrorRow};

/// What [`PartitionCounters::apply`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Added to the key's total.
    Counted,
    /// Already included (offset before the partition's next offset).
    Replayed,
    /// Refused: the amount added since the last flush would pass `i64::MAX`.
    Overflow,
}

/// What a flush adds and the checkpoint it moves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushBatch {
    /// The checkpoint the store holds now; the write is fenced on it.
    pub expected_next_offset: i64,
    /// The checkpoint after this flush.
    pub next_offset: i64,
    /// The last offset this batch includes.
    pub through_offset: i64,
    /// Amount added per key since the last flush, sorted by key.
    pub rows: Vec<(Uuid, i64)>,
}

/// Counter increments of one partition since the last flush.
#[derive(Debug, Clone, Default)]
pub struct PartitionCounters {
    checkpoint: Checkpoint,
    added: HashMap<Uuid, i64>,
}

impl PartitionCounters {
    /// State from the store's checkpoint.
    pub fn restore(next_offset: i64) -> Self {
        Self {
            checkpoint: Checkpoint::restore(next_offset),
            added: HashMap::new(),
        }
    }

    /// Adds `value` to `key` for the record at `offset`, unless included.
    pub fn apply(&mut self, offset: i64, key: Uuid, value: i64) -> Applied {
        if offset < self.checkpoint.next_offset() {
            return Applied::Replayed;
        }
        let Some(sum) = self.added(&key).checked_add(value) else {
            // Not admitted: the caller dead-letters the record and skips it.
            return Applied::Overflow;
        };
        self.checkpoint.admit(offset);
        self.added.insert(key, sum);
        Applied::Counted
    }

    /// What was added to `key` since the last flush.
    pub fn added(&self, key: &Uuid) -> i64 {
        self.added.get(key).copied().unwrap_or(0)
    }
}

crate::partitioned!(PartitionCounters);

/// The error-log row of a flush that could not add `added` to the stored
/// `total` of `key` without passing `i64::MAX`: the total stays as it was,
/// and the row says which increments were refused (the key's records of
/// `topic`/`partition` in this batch, through `through_offset`).
pub fn overflow_error(
    topic: &str,
    partition: i32,
    through_offset: i64,
    key: Uuid,
    total: i64,
    added: i64,
) -> ErrorRow {
    tracing::warn!(%key, total, added, "counter total would pass i64::MAX; increments refused into the error log");
    let now = schemas::time::now_micros();
    ErrorRow {
        kind: ErrorKind::DeadLetter,
        event_id: format!("counter-overflow/{topic}/{partition}/{through_offset}/{key}"),
        day: day_and_month(now).0,
        occurred_at: now,
        application_id: None,
        source: format!("{topic}/{partition}@..={through_offset} (processor)"),
        status: None,
        field: Some("value".to_owned()),
        reason: OVERFLOW_REASON.to_owned(),
        message: format!(
            "counter {key} holds {total}; adding {added} would pass {max}: the increments of this flush for it were refused and the total left as it was",
            max = i64::MAX
        ),
        body: Vec::new(),
        replay_run: None,
    }
}

/// The reason of a refused increment, in dead letters and the error log.
pub const OVERFLOW_REASON: &str = "counter_overflow";

impl crate::store::Stored for PartitionCounters {
    type Setup = ();
    type Batch = FlushBatch;

    /// What a flush must write now.
    fn batch(&self) -> FlushBatch {
        let mut rows: Vec<(Uuid, i64)> = self.added.iter().map(|(k, v)| (*k, *v)).collect();
        rows.sort();
        FlushBatch {
            expected_next_offset: self.checkpoint.stored(),
            next_offset: self.checkpoint.next_offset(),
            through_offset: self.checkpoint.next_offset() - 1,
            rows,
        }
    }

    /// Records that `batch` is stored: its increments are the store's now.
    fn flushed(&mut self, batch: &FlushBatch) {
        self.checkpoint.flushed(batch.next_offset);
        self.added.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Partitioned;
    use crate::store::Stored;

    #[test]
    fn sums_per_key_and_checkpoints_the_next_offset() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut counters = PartitionCounters::default();
        assert_eq!(counters.apply(0, a, 3), Applied::Counted);
        assert_eq!(counters.apply(1, b, 4), Applied::Counted);
        assert_eq!(counters.apply(2, a, 5), Applied::Counted);
        assert_eq!(counters.added(&a), 8);
        let batch = counters.batch();
        assert_eq!(
            (
                batch.expected_next_offset,
                batch.next_offset,
                batch.through_offset
            ),
            (0, 3, 2)
        );
        assert_eq!(batch.rows.len(), 2);
        counters.flushed(&batch);
        assert!(!counters.has_changes());
        assert!(
            counters.batch().rows.is_empty(),
            "flushed increments are the store's"
        );
    }

    #[test]
    fn replay_after_restore_adds_nothing() {
        let a = Uuid::new_v4();
        let mut restored = PartitionCounters::restore(10);
        for offset in 0..10 {
            assert_eq!(restored.apply(offset, a, 2), Applied::Replayed);
        }
        assert!(!restored.has_changes());
        assert_eq!(restored.apply(10, a, 2), Applied::Counted);
        assert_eq!(restored.batch().rows, vec![(a, 2)]);
    }

    #[test]
    fn skipped_records_advance_the_checkpoint() {
        let mut counters = PartitionCounters::default();
        counters.skip(0);
        assert!(counters.has_changes());
        assert_eq!(counters.batch().next_offset, 1);
    }

    #[test]
    fn an_increment_past_the_largest_total_is_refused_not_clamped() {
        let a = Uuid::new_v4();
        let mut counters = PartitionCounters::default();
        assert_eq!(counters.apply(0, a, i64::MAX - 1), Applied::Counted);
        assert_eq!(counters.apply(1, a, 2), Applied::Overflow);
        assert_eq!(counters.added(&a), i64::MAX - 1, "nothing was clamped");
        // The refused record is skipped by the caller; later ones still count.
        counters.skip(1);
        assert_eq!(counters.apply(2, a, 1), Applied::Counted);
        assert_eq!(counters.added(&a), i64::MAX);
        assert_eq!(counters.batch().next_offset, 3);
    }
}
