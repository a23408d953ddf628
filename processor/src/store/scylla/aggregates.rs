//! Counters and clicks on ScyllaDB: each row read, added to and written back
//! as an absolute value under the fenced checkpoint (see the module docs of
//! `store::scylla`).

use scylla::value::CqlTimestamp;

use super::{ScyllaStore, cql_date, statements as s};
use crate::clicks::{ClicksBatch, PartitionClicks};
use crate::counters::{FlushBatch, PartitionCounters, overflow_error};
use crate::store::{FlushOutcome, Keeps, StoreError};

impl Keeps<PartitionCounters> for ScyllaStore {
    /// The stored checkpoint of an increments partition, as counter state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionCounters, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionCounters::restore(next))
    }

    /// Adds a counters batch to the stored totals.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the partition is then replayed.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &FlushBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let through = batch.through_offset;
        let now = CqlTimestamp(schemas::time::now_micros() / 1000);
        let rows = async {
            let overflowed = self
                .add_all(
                    &batch.rows,
                    through,
                    |key| s::read_counter(*key),
                    |key, value| s::write_counter(*key, value, partition, through, now, through),
                )
                .await?;
            let refused: Vec<_> = overflowed
                .into_iter()
                .map(|(key, total, added)| {
                    overflow_error(topic, partition, through, *key, total, added)
                })
                .collect();
            self.write_errors(&refused).await
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

impl Keeps<PartitionClicks> for ScyllaStore {
    /// The stored checkpoint of a redirects partition, as click state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionClicks, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionClicks::restore(next))
    }

    /// Adds a clicks batch to the four click tables.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails or a day is malformed.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &ClicksBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let through = batch.through_offset;
        let rows = async {
            let by_day = batch
                .by_day
                .iter()
                .map(|(row, clicks)| Ok(((row, cql_date(&row.day)?), *clicks)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.add_all(
                &by_day,
                through,
                |(row, day)| s::read_day(&row.short_code, *day, &row.browser, &row.os, &row.device),
                |(row, day), clicks| {
                    s::write_day(
                        &row.short_code,
                        *day,
                        &row.browser,
                        &row.os,
                        &row.device,
                        clicks,
                        partition,
                        through,
                        through,
                    )
                },
            )
            .await?;
            self.add_all(
                &batch.by_client_month,
                through,
                |row| s::read_client_month(row.client_id, &row.month, &row.short_code),
                |row, clicks| {
                    s::write_client_month(
                        row.client_id,
                        &row.month,
                        &row.short_code,
                        clicks,
                        partition,
                        through,
                        through,
                    )
                },
            )
            .await?;
            self.add_all(
                &batch.by_code,
                through,
                |code| s::read_code(code),
                |code, clicks| s::write_code(code, clicks, partition, through, through),
            )
            .await?;
            let bots = batch
                .bots_by_day
                .iter()
                .map(|(row, clicks)| Ok(((row, cql_date(&row.day)?), *clicks)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.add_all(
                &bots,
                through,
                |(row, day)| s::read_bot_day(&row.short_code, *day),
                |(row, day), clicks| {
                    s::write_bot_day(&row.short_code, *day, clicks, partition, through, through)
                },
            )
            .await?;
            // Click counts grow by one per click: no row reaches i64::MAX.
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
