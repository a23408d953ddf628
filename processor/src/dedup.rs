//! Idempotent ingest, processor side: the idempotency keys one topic
//! partition has applied within the dedup window, so a producer's retry of
//! a request (same application, same `Idempotency-Key`, hence the same
//! record id) is applied once.
//!
//! A key is stored with the offset of the record that applied it
//! ([`Remembered`]), written before the flush that moves the checkpoint past
//! that record. A worker taking the partition over loads only the keys below
//! the stored checkpoint: a flush cut short between writing its keys and
//! moving the checkpoint leaves keys that are ignored and written again when
//! its records replay, so a crash never lets a duplicate through and never
//! drops a first delivery.
//!
//! The window is measured in ingest time (`received_at`): a record is a
//! duplicate when a record with its id was applied less than the window
//! before it was received. Keys leave memory once the newest record of the
//! partition is a window past them, so memory holds one window of keys:
//! [`Seen::bytes_per_key`] is 21 bytes over the table's load: 24 to 48.

use std::collections::HashMap;
use std::time::Duration;

use uuid::Uuid;

/// A key a partition applied: written with the flush, loaded on takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remembered {
    /// The record id derived from (application, idempotency key).
    pub identity: Uuid,
    /// The offset of the record that applied it.
    pub first_offset: i64,
    /// When ingest received that record (microseconds).
    pub received_at: i64,
}

/// One partition's applied keys within the window.
#[derive(Debug)]
pub struct Seen {
    window_secs: i64,
    /// Record id to the second it was received: 16 + 4 bytes a key.
    keys: HashMap<[u8; 16], u32>,
    /// Keys applied since the last flush, to store with it.
    pending: Vec<Remembered>,
    /// The newest receipt second applied: the clock keys expire by.
    newest: i64,
    /// When keys were last expired, on the same clock.
    swept: i64,
}

const MICROS: i64 = 1_000_000;

impl Seen {
    /// A partition's keys as stored (every row below its checkpoint; a key
    /// applied again after its window was stored once per application).
    pub fn restore(window: Duration, stored: impl IntoIterator<Item = Remembered>) -> Self {
        let mut seen = Self {
            window_secs: i64::try_from(window.as_secs()).unwrap_or(i64::MAX),
            keys: HashMap::new(),
            pending: Vec::new(),
            newest: 0,
            swept: 0,
        };
        for row in stored {
            let second = seconds(row.received_at);
            seen.newest = seen.newest.max(i64::from(second));
            seen.keys
                .entry(*row.identity.as_bytes())
                .and_modify(|at| *at = (*at).max(second))
                .or_insert(second);
        }
        seen.swept = seen.newest;
        seen.expire();
        seen
    }

    /// Whether the record at `offset` is the first with `identity` within
    /// the window; if so it is remembered, to be stored with the next flush.
    pub fn first(&mut self, identity: Uuid, offset: i64, received_at: i64) -> bool {
        let second = seconds(received_at);
        let within = self
            .keys
            .get(identity.as_bytes())
            .is_some_and(|applied| i64::from(second) - i64::from(*applied) < self.window_secs);
        if within {
            return false;
        }
        self.keys.insert(*identity.as_bytes(), second);
        self.pending.push(Remembered {
            identity,
            first_offset: offset,
            received_at,
        });
        self.newest = self.newest.max(i64::from(second));
        // Sweeping every 1/64 of the window keeps at most that much extra.
        if self.newest - self.swept >= (self.window_secs / 64).max(1) {
            self.expire();
            self.swept = self.newest;
        }
        true
    }

    /// The keys applied since the last flush, for the flush to store.
    pub fn take_pending(&mut self) -> Vec<Remembered> {
        std::mem::take(&mut self.pending)
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Bytes of memory per remembered key: the table's buckets (16-byte id,
    /// 4-byte second, 1 control byte each; the table keeps an eighth of
    /// them empty) over the keys it holds.
    #[expect(clippy::cast_precision_loss, reason = "a ratio to report")]
    pub fn bytes_per_key(&self) -> f64 {
        let slot = std::mem::size_of::<([u8; 16], u32)>() + 1;
        let buckets = (self.keys.capacity() * 8 / 7).next_power_of_two();
        (buckets * slot) as f64 / self.keys.len().max(1) as f64
    }

    /// Drops the keys a window older than the newest record.
    fn expire(&mut self) {
        let horizon = self.newest - self.window_secs;
        self.keys.retain(|_, second| i64::from(*second) > horizon);
        if self.keys.capacity() > 2 * self.keys.len().max(1024) {
            self.keys.shrink_to_fit();
        }
    }
}

/// Seconds since the epoch of a receipt time; u32 holds them until 2106.
fn seconds(micros: i64) -> u32 {
    u32::try_from(micros.div_euclid(MICROS)).unwrap_or(if micros < 0 { 0 } else { u32::MAX })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 3_600 * MICROS;

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    #[test]
    fn a_key_is_applied_once_within_the_window_and_again_after_it() {
        let mut seen = Seen::restore(Duration::from_secs(24 * 3_600), []);
        let start = 1_800_000_000 * MICROS;
        assert!(seen.first(id(1), 0, start));
        assert!(
            !seen.first(id(1), 1, start + 23 * HOUR),
            "a retry within the window"
        );
        assert!(seen.first(id(2), 2, start + HOUR));
        assert!(
            seen.first(id(1), 3, start + 24 * HOUR),
            "past the window it counts again"
        );
        let pending = seen.take_pending();
        assert_eq!(
            pending.iter().map(|r| r.first_offset).collect::<Vec<_>>(),
            [0, 2, 3]
        );
        assert!(seen.take_pending().is_empty());
    }

    #[test]
    fn restored_keys_keep_their_newest_application_and_expire_on_the_record_clock() {
        let start = 1_800_000_000 * MICROS;
        let stored = [
            Remembered {
                identity: id(1),
                first_offset: 0,
                received_at: start,
            },
            Remembered {
                identity: id(1),
                first_offset: 9,
                received_at: start + 30 * HOUR,
            },
            Remembered {
                identity: id(2),
                first_offset: 4,
                received_at: start + HOUR,
            },
        ];
        let mut seen = Seen::restore(Duration::from_secs(24 * 3_600), stored);
        // id 2 is 29 hours older than the newest key: gone on restore.
        assert_eq!(seen.len(), 1);
        assert!(!seen.first(id(1), 10, start + 31 * HOUR));
        assert!(seen.first(id(2), 11, start + 31 * HOUR));
    }

    #[test]
    fn memory_stays_within_64_bytes_a_key_and_one_window() {
        let window = Duration::from_secs(3_600);
        let mut seen = Seen::restore(window, []);
        let start = 1_800_000_000 * MICROS;
        // 200,000 keys over two windows: the first window's keys leave.
        for n in 0..200_000u32 {
            let at = start + i64::from(n) * (2 * HOUR / 200_000);
            assert!(seen.first(id(u128::from(n)), i64::from(n), at));
        }
        assert!(
            (100_000..=100_000 + 100_000 / 64 + 2).contains(&seen.len()),
            "one window of keys (and a sweep's slack), not {}",
            seen.len()
        );
        let bytes = seen.bytes_per_key();
        println!("dedup memory: {bytes:.1} bytes per remembered key");
        assert!(bytes <= 64.0, "{bytes} bytes per key");
    }
}
