//! Counters and clicks on ScyllaDB: each row read, added to and written back
//! as an absolute value under the fenced checkpoint (see the module docs of
//! `store::scylla`).

use scylla::value::CqlTimestamp;

use std::collections::HashSet;

use scylla::value::CqlDate;

use super::{ScyllaStore, cql_date, statements as s};
use crate::clicks::{ClicksBatch, DimensionCount, PartitionClicks, bound};
use crate::counters::{FlushBatch, PartitionCounters, overflow_error};
use crate::enrich::Dimension;
use crate::sketch::Sketch;
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
        max_dimension_values: &usize,
    ) -> Result<PartitionClicks, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionClicks::restore(next, *max_dimension_values))
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
            let previews = batch
                .previews_by_day
                .iter()
                .map(|(row, clicks)| Ok(((row, cql_date(&row.day)?), *clicks)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.add_all(
                &previews,
                through,
                |(row, day)| s::read_preview_day(&row.short_code, *day),
                |(row, day), clicks| {
                    s::write_preview_day(&row.short_code, *day, clicks, partition, through, through)
                },
            )
            .await?;
            let dimensions = self.bounded_dimensions(batch).await?;
            self.merge_visitors(batch, partition, through).await?;
            self.add_all(
                &dimensions,
                through,
                |(code, day, dimension, value)| {
                    s::read_dimension(code, *day, dimension.as_str(), value)
                },
                |(code, day, dimension, value), clicks| {
                    s::write_dimension(
                        code,
                        *day,
                        dimension.as_str(),
                        value,
                        clicks,
                        partition,
                        through,
                        through,
                    )
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

impl ScyllaStore {
    /// Merges the batch's visitor sketches into the stored ones. A row
    /// already through this batch is left alone; merging again would change
    /// nothing anyway (register maximum).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails or a stored sketch is corrupt.
    async fn merge_visitors(
        &self,
        batch: &ClicksBatch,
        partition: i32,
        through: i64,
    ) -> Result<(), StoreError> {
        let mut writes = Vec::new();
        for (row, sketch) in &batch.visitors_by_day {
            let day = cql_date(&row.day)?;
            let stored: Option<(Option<Vec<u8>>, Option<i64>)> = self
                .read_one(s::read_visitors_day(&row.short_code, day))
                .await?;
            let (bytes, stored_through) = stored.unwrap_or((None, None));
            if stored_through.is_some_and(|stored| stored >= through) {
                continue;
            }
            let mut merged = match bytes {
                Some(bytes) => Sketch::from_bytes(&bytes).map_err(|err| {
                    StoreError::Corrupt(format!("link_visitors_by_day {}: {err}", row.short_code))
                })?,
                None => Sketch::default(),
            };
            merged.merge(sketch);
            writes.push(s::write_visitors_day(
                &row.short_code,
                day,
                &merged.to_bytes(),
                partition,
                through,
                through,
            ));
        }
        self.write_all(writes).await
    }
}

/// A breakdown row to add: short code, day, dimension and value.
type DimensionKey = (String, CqlDate, Dimension, String);

impl ScyllaStore {
    /// The batch's breakdown rows, each (short code, day, dimension) bound
    /// to its most values against the values stored now ([`bound`]).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or a day is malformed.
    async fn bounded_dimensions(
        &self,
        batch: &ClicksBatch,
    ) -> Result<Vec<(DimensionKey, i64)>, StoreError> {
        let mut rows = Vec::new();
        for group in batch.by_dimension.chunk_by(|(a, _), (b, _)| {
            (&a.short_code, &a.day, a.dimension) == (&b.short_code, &b.day, b.dimension)
        }) {
            let Some((first, _)) = group.first() else {
                continue;
            };
            let day = cql_date(&first.day)?;
            let stored: Vec<(String,)> = self
                .read_all(s::read_dimension_values(
                    &first.short_code,
                    day,
                    first.dimension.as_str(),
                ))
                .await?;
            let held: HashSet<String> = stored.into_iter().map(|(value,)| value).collect();
            let values: Vec<(&str, DimensionCount)> = group
                .iter()
                .map(|(row, count)| (row.value.as_str(), *count))
                .collect();
            let cap = first.dimension.cap(batch.max_dimension_values);
            for (value, added) in bound(&values, &held, cap) {
                rows.push((
                    (first.short_code.clone(), day, first.dimension, value),
                    added,
                ));
            }
        }
        Ok(rows)
    }
}
