//! Notifications of one `notifications` partition since the last flush,
//! without I/O. Stored once by their deterministic id, so a replay or a rule
//! firing twice after a crash stores nothing new.

use schemas::Notification;

use crate::checkpoint::Checkpoint;

/// Notifications of one partition since the last flush.
#[derive(Debug, Clone, Default)]
pub struct PartitionNotifications {
    checkpoint: Checkpoint,
    notifications: Vec<(i64, Notification)>,
}

/// What a notifications flush writes.
#[derive(Debug, Clone, Default)]
pub struct NotificationsBatch {
    pub expected_next_offset: i64,
    pub next_offset: i64,
    /// (offset, notification).
    pub notifications: Vec<(i64, Notification)>,
}

impl PartitionNotifications {
    /// State from the store's checkpoint.
    pub fn restore(next_offset: i64) -> Self {
        Self {
            checkpoint: Checkpoint::restore(next_offset),
            notifications: Vec::new(),
        }
    }

    /// Keeps `notification` at `offset`; false if the store already includes it.
    pub fn apply(&mut self, offset: i64, notification: Notification) -> bool {
        if !self.checkpoint.admit(offset) {
            return false;
        }
        self.notifications.push((offset, notification));
        true
    }
}

crate::partitioned!(PartitionNotifications);

impl crate::store::Stored for PartitionNotifications {
    type Setup = ();
    type Batch = NotificationsBatch;

    /// What a flush must write now.
    fn batch(&self) -> NotificationsBatch {
        NotificationsBatch {
            expected_next_offset: self.checkpoint.stored(),
            next_offset: self.checkpoint.next_offset(),
            notifications: self.notifications.clone(),
        }
    }

    /// Records that a batch is stored.
    fn flushed(&mut self, batch: &NotificationsBatch) {
        self.checkpoint.flushed(batch.next_offset);
        self.notifications.clear();
    }
}
