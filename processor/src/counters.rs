//! The counters aggregate of one topic partition, without I/O.
//!
//! Totals are absolute and each remembers the last offset it includes, so
//! applying a record twice (a replay after a crash) changes nothing.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

/// A key's stored total and the last offset it includes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Total {
    pub value: i64,
    pub through_offset: i64,
}

/// What [`PartitionCounters::apply`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Added to the key's total.
    Counted,
    /// Already included (offset before the partition's next offset).
    Replayed,
}

/// The rows and checkpoint a flush writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushBatch {
    /// The checkpoint the store holds now; the write is fenced on it.
    pub expected_next_offset: i64,
    /// The checkpoint after this flush.
    pub next_offset: i64,
    /// Changed totals.
    pub rows: Vec<(Uuid, Total)>,
}

/// Counter totals of one partition.
#[derive(Debug, Clone, Default)]
pub struct PartitionCounters {
    /// The next offset to apply; everything before it is included.
    next_offset: i64,
    /// The checkpoint last written to (or read from) the store.
    stored_next_offset: i64,
    totals: HashMap<Uuid, Total>,
    dirty: HashSet<Uuid>,
}

impl PartitionCounters {
    /// State as stored: the checkpoint and the partition's totals.
    pub fn restore(next_offset: i64, totals: impl IntoIterator<Item = (Uuid, Total)>) -> Self {
        Self {
            next_offset,
            stored_next_offset: next_offset,
            totals: totals.into_iter().collect(),
            dirty: HashSet::new(),
        }
    }

    /// The next offset to apply.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// Adds `value` to `key` for the record at `offset`, unless included.
    pub fn apply(&mut self, offset: i64, key: Uuid, value: i64) -> Applied {
        if offset < self.next_offset {
            return Applied::Replayed;
        }
        let total = self.totals.entry(key).or_insert(Total {
            value: 0,
            through_offset: -1,
        });
        self.next_offset = offset + 1;
        if offset <= total.through_offset {
            return Applied::Replayed;
        }
        total.value = total.value.saturating_add(value);
        total.through_offset = offset;
        self.dirty.insert(key);
        Applied::Counted
    }

    /// Moves past a record that holds no increment (undecodable).
    pub fn skip(&mut self, offset: i64) {
        self.next_offset = self.next_offset.max(offset + 1);
    }

    /// Whether anything changed since the last flush.
    pub fn has_changes(&self) -> bool {
        self.next_offset != self.stored_next_offset
    }

    /// What a flush must write now.
    pub fn flush_batch(&self) -> FlushBatch {
        FlushBatch {
            expected_next_offset: self.stored_next_offset,
            next_offset: self.next_offset,
            rows: self
                .dirty
                .iter()
                .filter_map(|key| self.totals.get(key).map(|total| (*key, *total)))
                .collect(),
        }
    }

    /// Records that `batch` is stored.
    pub fn flushed(&mut self, batch: &FlushBatch) {
        self.stored_next_offset = batch.next_offset;
        for (key, _) in &batch.rows {
            self.dirty.remove(key);
        }
    }

    /// The current total of `key`.
    pub fn total(&self, key: &Uuid) -> Option<Total> {
        self.totals.get(key).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_per_key_and_checkpoints_the_next_offset() {
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let mut counters = PartitionCounters::default();
        assert_eq!(counters.apply(0, a, 3), Applied::Counted);
        assert_eq!(counters.apply(1, b, 4), Applied::Counted);
        assert_eq!(counters.apply(2, a, 5), Applied::Counted);
        assert_eq!(counters.total(&a).map(|t| t.value), Some(8));
        let batch = counters.flush_batch();
        assert_eq!(batch.expected_next_offset, 0);
        assert_eq!(batch.next_offset, 3);
        assert_eq!(batch.rows.len(), 2);
        counters.flushed(&batch);
        assert!(!counters.has_changes());
        assert!(counters.flush_batch().rows.is_empty());
    }

    #[test]
    fn replay_after_restore_changes_nothing() {
        let a = Uuid::new_v4();
        let mut first = PartitionCounters::default();
        for offset in 0..10 {
            first.apply(offset, a, 2);
        }
        let batch = first.flush_batch();
        let mut restored = PartitionCounters::restore(batch.next_offset, batch.rows.clone());
        for offset in 0..10 {
            assert_eq!(restored.apply(offset, a, 2), Applied::Replayed);
        }
        assert_eq!(restored.apply(10, a, 2), Applied::Counted);
        assert_eq!(
            restored.total(&a),
            Some(Total {
                value: 22,
                through_offset: 10
            })
        );
    }

    #[test]
    fn a_row_ahead_of_the_checkpoint_is_not_counted_twice() {
        // Rows carry their own offset: even if a checkpoint lagged a row,
        // the row's offset protects it.
        let a = Uuid::new_v4();
        let mut counters = PartitionCounters::restore(
            5,
            [(
                a,
                Total {
                    value: 7,
                    through_offset: 8,
                },
            )],
        );
        assert_eq!(counters.apply(8, a, 1), Applied::Replayed);
        assert_eq!(counters.apply(9, a, 1), Applied::Counted);
        assert_eq!(counters.total(&a).map(|t| t.value), Some(8));
    }

    #[test]
    fn skipped_records_advance_the_checkpoint() {
        let mut counters = PartitionCounters::default();
        counters.skip(0);
        assert!(counters.has_changes());
        assert_eq!(counters.flush_batch().next_offset, 1);
    }

    #[test]
    fn totals_saturate_instead_of_overflowing() {
        let a = Uuid::new_v4();
        let mut counters = PartitionCounters::default();
        counters.apply(0, a, i64::MAX);
        counters.apply(1, a, i64::MAX);
        assert_eq!(counters.total(&a).map(|t| t.value), Some(i64::MAX));
    }
}
