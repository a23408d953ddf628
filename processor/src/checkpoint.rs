//! Where a partition's aggregate stands against the store: the next offset
//! to apply, and the one the store holds (what a flush is fenced on).

/// A partition's read position and stored checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// The next offset to apply; everything before it is included.
    next_offset: i64,
    /// The checkpoint last written to (or read from) the store.
    stored: i64,
}

impl Checkpoint {
    /// Standing at the store's checkpoint.
    pub fn restore(next_offset: i64) -> Self {
        Self {
            next_offset,
            stored: next_offset,
        }
    }

    /// The next offset to apply.
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }

    /// The checkpoint the store holds now.
    pub fn stored(&self) -> i64 {
        self.stored
    }

    /// Takes the record at `offset`; false if the store already includes it.
    pub fn admit(&mut self, offset: i64) -> bool {
        if offset < self.next_offset {
            return false;
        }
        self.next_offset = offset + 1;
        true
    }

    /// Moves past a record that holds nothing to apply (undecodable).
    pub fn skip(&mut self, offset: i64) {
        self.next_offset = self.next_offset.max(offset + 1);
    }

    /// Whether a flush has anything to write.
    pub fn has_changes(&self) -> bool {
        self.next_offset != self.stored
    }

    /// Records that the store now holds `next_offset`.
    pub fn flushed(&mut self, next_offset: i64) {
        self.stored = next_offset;
    }
}

/// A partition's state with its checkpoint: what every aggregate shares.
/// An aggregate names its checkpoint ([`partitioned!`](crate::partitioned));
/// the offsets it applied and skipped, and whether it has anything to flush,
/// come from there.
pub trait Partitioned {
    /// The partition's checkpoint.
    fn checkpoint(&self) -> &Checkpoint;
    /// The partition's checkpoint, to move.
    fn checkpoint_mut(&mut self) -> &mut Checkpoint;

    /// The next offset to apply.
    fn next_offset(&self) -> i64 {
        self.checkpoint().next_offset()
    }

    /// Moves past a record that holds nothing to apply (undecodable).
    fn skip(&mut self, offset: i64) {
        self.checkpoint_mut().skip(offset);
    }

    /// Whether anything changed since the last flush.
    fn has_changes(&self) -> bool {
        self.checkpoint().has_changes()
    }
}

/// Implements [`Partitioned`] for types whose `checkpoint` field is their
/// checkpoint.
#[macro_export]
macro_rules! partitioned {
    ($($partition:ty),* $(,)?) => {
        $(impl $crate::checkpoint::Partitioned for $partition {
            fn checkpoint(&self) -> &$crate::checkpoint::Checkpoint {
                &self.checkpoint
            }
            fn checkpoint_mut(&mut self) -> &mut $crate::checkpoint::Checkpoint {
                &mut self.checkpoint
            }
        })*
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_each_offset_once_and_tracks_what_is_stored() {
        let mut checkpoint = Checkpoint::restore(5);
        assert!(!checkpoint.admit(4), "the store includes it");
        assert!(!checkpoint.has_changes());
        assert!(checkpoint.admit(5));
        checkpoint.skip(6);
        assert_eq!((checkpoint.next_offset(), checkpoint.stored()), (7, 5));
        assert!(checkpoint.has_changes());
        checkpoint.flushed(7);
        assert!(!checkpoint.has_changes());
    }
}
