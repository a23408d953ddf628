//! Per-key lanes within a destination, without I/O: one delivery in flight
//! per key (user or session) so each user's records arrive in order, while
//! other keys of the same partition go ahead; and per partition the lowest
//! unfinished offset, the only safe commit point (at least once).

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::Hash;

/// Delivery bookkeeping of one destination; `P` names a partition (of
/// which topic, when a destination reads more than one).
#[derive(Debug)]
pub struct Lanes<J, P = i32> {
    /// Unfinished offsets per partition.
    unfinished: HashMap<P, BTreeSet<i64>>,
    /// One past the highest offset seen per partition.
    next: HashMap<P, i64>,
    /// Records waiting behind their key's delivery in flight.
    waiting: HashMap<String, VecDeque<J>>,
    /// Keys with a delivery in flight.
    active: HashSet<String>,
}

impl<J, P> Default for Lanes<J, P> {
    fn default() -> Self {
        Self {
            unfinished: HashMap::new(),
            next: HashMap::new(),
            waiting: HashMap::new(),
            active: HashSet::new(),
        }
    }
}

impl<J, P: Copy + Eq + Hash + Ord> Lanes<J, P> {
    /// Takes the record at `offset`; returns the job if its key is free to
    /// start now, else queues it behind the key's delivery in flight. A
    /// record seen before (redelivered) is dropped.
    pub fn admit(&mut self, partition: P, offset: i64, key: &str, job: J) -> Option<J> {
        if !self.see(partition, offset) {
            return None;
        }
        self.unfinished.entry(partition).or_default().insert(offset);
        if self.active.insert(key.to_owned()) {
            Some(job)
        } else {
            self.waiting
                .entry(key.to_owned())
                .or_default()
                .push_back(job);
            None
        }
    }

    /// A record with nothing to deliver (filtered out): finished as soon as
    /// it is seen.
    pub fn pass(&mut self, partition: P, offset: i64) {
        self.see(partition, offset);
    }

    /// A record finished apart from any key lane (an undecodable record
    /// whose dead letter is being written): unfinished until
    /// [`Lanes::release`]. `false` for a record seen before.
    pub fn hold(&mut self, partition: P, offset: i64) -> bool {
        if !self.see(partition, offset) {
            return false;
        }
        self.unfinished.entry(partition).or_default().insert(offset);
        true
    }

    /// Finishes a record taken with [`Lanes::hold`].
    pub fn release(&mut self, partition: P, offset: i64) {
        if let Some(offsets) = self.unfinished.get_mut(&partition) {
            offsets.remove(&offset);
        }
    }

    /// Marks `offset` of `key` finished; returns the key's next job, if any.
    pub fn finish(&mut self, partition: P, offset: i64, key: &str) -> Option<J> {
        if let Some(offsets) = self.unfinished.get_mut(&partition) {
            offsets.remove(&offset);
        }
        let next = self.waiting.get_mut(key).and_then(VecDeque::pop_front);
        if next.is_none() {
            self.active.remove(key);
            self.waiting.remove(key);
        }
        next
    }

    /// Records seen but not finished.
    pub fn pending(&self) -> usize {
        self.unfinished.values().map(BTreeSet::len).sum()
    }

    /// Per partition, the offset to commit: the lowest unfinished one, or
    /// one past the highest seen when all are finished.
    pub fn committable(&self) -> Vec<(P, i64)> {
        let mut commits: Vec<(P, i64)> = self
            .next
            .iter()
            .map(|(partition, next)| {
                let lowest = self
                    .unfinished
                    .get(partition)
                    .and_then(|offsets| offsets.first().copied());
                (*partition, lowest.unwrap_or(*next))
            })
            .collect();
        commits.sort_unstable();
        commits
    }

    fn see(&mut self, partition: P, offset: i64) -> bool {
        let next = self.next.entry(partition).or_insert(offset);
        if offset < *next {
            return false;
        }
        *next = offset + 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_delivery_per_key_and_others_go_ahead() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.admit(0, 10, "a", "a1"), Some("a1"));
        assert_eq!(lanes.admit(0, 11, "a", "a2"), None, "waits behind a1");
        assert_eq!(
            lanes.admit(0, 12, "b", "b1"),
            Some("b1"),
            "b is not held up"
        );
        assert_eq!(lanes.finish(0, 12, "b"), None);
        assert_eq!(lanes.finish(0, 10, "a"), Some("a2"));
        assert_eq!(lanes.finish(0, 11, "a"), None);
        assert_eq!(lanes.pending(), 0);
    }

    #[test]
    fn commits_stop_at_the_lowest_unfinished_offset() {
        let mut lanes = Lanes::default();
        lanes.admit(0, 5, "slow", ());
        lanes.admit(0, 6, "fast", ());
        lanes.pass(0, 7);
        lanes.admit(1, 0, "other", ());
        lanes.finish(0, 6, "fast");
        assert_eq!(lanes.committable(), [(0, 5), (1, 0)]);
        lanes.finish(0, 5, "slow");
        lanes.finish(1, 0, "other");
        assert_eq!(lanes.committable(), [(0, 8), (1, 1)]);
    }

    #[test]
    fn a_redelivered_record_is_not_delivered_twice() {
        let mut lanes = Lanes::default();
        assert_eq!(lanes.admit(0, 3, "a", 1), Some(1));
        assert_eq!(lanes.admit(0, 3, "a", 1), None);
        assert_eq!(lanes.finish(0, 3, "a"), None);
        assert_eq!(lanes.pending(), 0);
    }

    #[test]
    fn a_held_record_blocks_the_commit_until_released_and_no_key_waits_on_it() {
        let mut lanes: Lanes<&str> = Lanes::default();
        assert!(lanes.hold(0, 10));
        assert!(!lanes.hold(0, 10), "a redelivered record is not held twice");
        assert_eq!(lanes.admit(0, 11, "u1", "job-11"), Some("job-11"));
        assert_eq!(lanes.finish(0, 11, "u1"), None);
        assert_eq!(lanes.committable(), vec![(0, 10)]);
        assert_eq!(lanes.pending(), 1);
        lanes.release(0, 10);
        assert_eq!(lanes.committable(), vec![(0, 12)]);
        assert_eq!(lanes.pending(), 0);
    }
}
