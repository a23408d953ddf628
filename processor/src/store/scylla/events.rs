//! Events, per-type counts, errors and notifications on ScyllaDB: inserts
//! idempotent by key, and the per-type counts added like any aggregate,
//! under the fenced checkpoint.

use std::collections::BTreeSet;

use schemas::cql::Bound;
use schemas::cql::layout::{self, EVENT_TYPES_SCOPE, Listing};
use scylla::value::CqlTimestamp;

use super::{ScyllaStore, statements as s};
use crate::event_store::{ErrorRow, ErrorsBatch, EventsBatch, PartitionErrors, PartitionEvents};
use crate::notifications::{NotificationsBatch, PartitionNotifications};
use crate::store::{FlushOutcome, Keeps, StoreError};

/// The `listing_buckets` rows of a batch: each (scope, minute, shard) once.
#[derive(Debug, Default)]
struct Buckets(BTreeSet<(String, i64, i32)>);

impl Buckets {
    /// The (minute, shard) partition of a row of `listing` at
    /// `occurred_at` with this id, noted for the index.
    fn note(&mut self, listing: Listing<'_>, occurred_at: i64, id: &[u8]) -> (CqlTimestamp, i32) {
        let (minute, shard) = (layout::minute_of(occurred_at), layout::shard_of(id));
        self.0.insert((listing.scope(), minute.0, shard));
        (minute, shard)
    }

    /// The index rows.
    fn writes(self) -> Vec<Bound> {
        self.0
            .into_iter()
            .map(|(scope, minute, shard)| {
                let minute = CqlTimestamp(minute);
                let day = layout::day_of(layout::minute_micros(minute));
                s::listing_bucket(&scope, day, minute, shard)
            })
            .collect()
    }
}

impl Keeps<PartitionEvents> for ScyllaStore {
    /// The stored checkpoint of an events partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionEvents, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionEvents::restore(next))
    }

    /// Writes each event to its three read paths and adds the per-type
    /// counts.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails or a day is malformed.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &EventsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let through = batch.next_offset - 1;
        let rows = async {
            let mut writes = Vec::with_capacity(batch.events.len() * 3);
            let mut buckets = Buckets::default();
            for (_, e, _) in &batch.events {
                let (user, device) = (e.user_id.as_deref(), e.device_id.as_deref());
                writes.push(s::event_by_session(
                    &e.session_id,
                    e.occurred_at,
                    e.event_id,
                    e.received_at,
                    &e.application_id,
                    &e.category,
                    &e.name,
                    &e.data,
                    e.known_type,
                    user,
                    device,
                ));
                let id = e.event_id.as_bytes();
                let (minute, shard) =
                    buckets.note(Listing::Category(&e.category), e.occurred_at, id);
                writes.push(s::event_by_category_minute(
                    &e.category,
                    minute,
                    shard,
                    e.occurred_at,
                    e.event_id,
                    &e.session_id,
                    e.received_at,
                    &e.application_id,
                    &e.name,
                    &e.data,
                    e.known_type,
                    user,
                    device,
                ));
                buckets.note(Listing::Events, e.occurred_at, id);
                writes.push(s::event_by_minute(
                    minute,
                    shard,
                    e.occurred_at,
                    e.event_id,
                    &e.session_id,
                    e.received_at,
                    &e.application_id,
                    &e.category,
                    &e.name,
                    &e.data,
                    e.known_type,
                    user,
                    device,
                ));
            }
            // Index rows first: a reader finds the partitions it reads there.
            self.write_all(buckets.writes()).await?;
            self.write_all(writes).await?;
            let counts: Vec<((&str, &str, bool), i64)> = batch
                .type_counts
                .iter()
                .map(|((category, name), (added, known))| {
                    ((category.as_str(), name.as_str(), *known), *added)
                })
                .collect();
            self.add_all(
                &counts,
                through,
                |(category, name, _)| {
                    s::read_type_count(EVENT_TYPES_SCOPE, category, name, partition)
                },
                |(category, name, known), events| {
                    s::write_type_count(
                        EVENT_TYPES_SCOPE,
                        category,
                        name,
                        partition,
                        events,
                        *known,
                        through,
                        through,
                    )
                },
            )
            .await?;
            // Type counts grow by one per event: no row reaches i64::MAX.
            Ok(())
        };
        self.fenced(
            topic,
            partition,
            batch.expected_next_offset,
            batch.next_offset,
            rows,
        )
        .await
    }
}

impl Keeps<PartitionErrors> for ScyllaStore {
    /// The stored checkpoint of a rejects or dead-letters partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionErrors, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionErrors::restore(next))
    }

    /// Inserts error rows (idempotent by key) under the fenced checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails or a day is malformed.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &ErrorsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let rows = self.write_errors(&batch.rows);
        self.fenced(
            topic,
            partition,
            batch.expected_next_offset,
            batch.next_offset,
            rows,
        )
        .await
    }
}

impl ScyllaStore {
    /// Adds `rows` to the error log (idempotent by key): the listing index
    /// first, so a reader finds the partitions it reads there.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    pub(super) async fn write_errors(&self, rows: &[ErrorRow]) -> Result<(), StoreError> {
        let mut buckets = Buckets::default();
        let writes: Vec<Bound> = rows
            .iter()
            .map(|row| {
                let listing = Listing::Errors(row.kind.as_str());
                let (minute, shard) =
                    buckets.note(listing, row.occurred_at, row.event_id.as_bytes());
                s::error(
                    row.kind.as_str(),
                    minute,
                    shard,
                    row.occurred_at,
                    &row.event_id,
                    row.application_id.as_deref(),
                    &row.source,
                    row.status,
                    row.field.as_deref(),
                    &row.reason,
                    &row.message,
                    &row.body,
                    row.replay_run.as_deref(),
                )
            })
            .collect();
        self.write_all(buckets.writes()).await?;
        self.write_all(writes).await
    }
}

impl Keeps<PartitionNotifications> for ScyllaStore {
    /// A notifications partition's stored checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionNotifications, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionNotifications::restore(next))
    }

    /// Inserts notifications (idempotent by id) under the fenced checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &NotificationsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let writes = batch
            .notifications
            .iter()
            .map(|(_, n)| {
                s::notification(
                    &n.user_id,
                    n.occurred_at,
                    &n.event_id,
                    &n.rule,
                    n.received_at,
                    n.device_id.as_deref(),
                    &n.message,
                    &n.data,
                    &n.trigger_event_id,
                    n.late_by_micros,
                )
            })
            .collect();
        self.fenced(
            topic,
            partition,
            batch.expected_next_offset,
            batch.next_offset,
            self.write_all(writes),
        )
        .await
    }
}
