//! Events, per-type counts, errors and notifications on ScyllaDB: inserts
//! idempotent by key, and the per-type counts added like any aggregate,
//! under the fenced checkpoint.

use super::{ScyllaStore, cql_date, hour_bucket, statements as s};
use crate::event_store::{ErrorsBatch, EventsBatch, PartitionErrors, PartitionEvents};
use crate::notifications::{NotificationsBatch, PartitionNotifications};
use crate::store::{FlushOutcome, StoreError};

/// The `scope` of the single `event_type_counts` partition.
const ALL_TYPES: &str = "all";

impl ScyllaStore {
    /// The stored checkpoint of an events partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn load_events(
        &self,
        topic: &str,
        partition: i32,
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
    pub async fn flush_events(
        &self,
        topic: &str,
        partition: i32,
        batch: &EventsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let through = batch.next_offset - 1;
        let rows = async {
            let mut writes = Vec::with_capacity(batch.events.len() * 3);
            for (_, e, day) in &batch.events {
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
                writes.push(s::event_by_category_day(
                    &e.category,
                    cql_date(day)?,
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
                writes.push(s::event_by_hour(
                    hour_bucket(e.occurred_at),
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
                |(category, name, _)| s::read_type_count(ALL_TYPES, category, name, partition),
                |(category, name, known), events| {
                    s::write_type_count(
                        ALL_TYPES, category, name, partition, events, *known, through, through,
                    )
                },
            )
            .await
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

    /// The stored checkpoint of a rejects or dead-letters partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn load_errors(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionErrors, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionErrors::restore(next))
    }

    /// Inserts error rows (idempotent by key) under the fenced checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails or a day is malformed.
    pub async fn flush_errors(
        &self,
        topic: &str,
        partition: i32,
        batch: &ErrorsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let rows = async {
            let writes = batch
                .rows
                .iter()
                .map(|row| {
                    Ok(s::error(
                        row.kind.as_str(),
                        cql_date(&row.day)?,
                        row.occurred_at,
                        &row.event_id,
                        row.application_id.as_deref(),
                        &row.source,
                        row.status,
                        row.field.as_deref(),
                        &row.reason,
                        &row.message,
                        &row.body,
                    ))
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.write_all(writes).await
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

    /// A notifications partition's stored checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn load_notifications(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionNotifications, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionNotifications::restore(next))
    }

    /// Inserts notifications (idempotent by id) under the fenced checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    pub async fn flush_notifications(
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
