//! The idempotency keys of each partition on ScyllaDB (`dedup_keys`): one
//! partition per (checkpoint, topic partition, UTC hour of receipt), rows
//! written `USING TTL` the window and an hour, so they leave on their own.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use schemas::cql::layout::{HOUR_MICROS, dedup_hour};

use super::{CONCURRENT_ROWS, ScyllaStore, statements as s};
use crate::dedup::Remembered;
use crate::store::StoreError;

impl ScyllaStore {
    /// Stores keys a partition applied, each at the write timestamp of its
    /// offset.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a write fails; the flush is then replayed.
    pub async fn remember(
        &self,
        topic: &str,
        partition: i32,
        keys: &[Remembered],
        window: Duration,
    ) -> Result<(), StoreError> {
        let ttl = i32::try_from(window.as_secs().saturating_add(3_600)).unwrap_or(i32::MAX);
        let writes = keys
            .iter()
            .map(|key| {
                s::remember(
                    topic,
                    partition,
                    dedup_hour(key.received_at),
                    key.identity,
                    key.first_offset,
                    key.received_at,
                    ttl,
                    key.first_offset,
                )
            })
            .collect();
        self.write_all(writes).await?;
        Ok(())
    }

    /// The keys a partition applied below its checkpoint `below`, from the
    /// hours of the window (with an hour's margin each side).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a read fails or a row is corrupt.
    pub async fn remembered(
        &self,
        topic: &str,
        partition: i32,
        below: i64,
        window: Duration,
    ) -> Result<Vec<Remembered>, StoreError> {
        let first = super::super::dedup_horizon(window).div_euclid(HOUR_MICROS);
        let last = schemas::time::now_micros().div_euclid(HOUR_MICROS) + 1;
        // Futures collected from a plain iterator, not a stream of closures
        // (rust-lang/rust#102211, as in `add_all`).
        let reads: Vec<_> = (first..=last)
            .map(|hour| {
                self.read_all::<(uuid::Uuid, i64, i64)>(s::read_remembered(
                    topic,
                    partition,
                    dedup_hour(hour * HOUR_MICROS),
                ))
            })
            .collect();
        let rows: Vec<Vec<(uuid::Uuid, i64, i64)>> = stream::iter(reads)
            .buffer_unordered(CONCURRENT_ROWS)
            .try_collect()
            .await?;
        Ok(rows
            .into_iter()
            .flatten()
            .filter(|(_, first_offset, _)| *first_offset < below)
            .map(|(identity, first_offset, received_at)| Remembered {
                identity,
                first_offset,
                received_at,
            })
            .collect())
    }
}
