//! The processor's write side on ScyllaDB (`scylla` driver, prepared
//! statements, the tables of `schemas/cql/`).
//!
//! ScyllaDB has no transaction spanning tables, so a flush is three steps:
//!
//! 1. mark: `pending_through` = the batch's last offset, a lightweight
//!    transaction fenced on the expected `next_offset` and on this
//!    processor's claim on the partition (loading a partition claims it, so
//!    a previous owner fails here and writes nothing);
//! 2. rows: every aggregate row read and written back as an absolute value
//!    with `through_offset` = the batch's last offset, unless the row's
//!    stored `through_offset` already reaches it (written before a crash);
//! 3. commit: `next_offset` moved and the mark cleared, fenced the same way.
//!
//! A previous owner that passed its mark just before the new owner claimed
//! the partition leaves that mark for the new owner to load, so both write
//! the same records' rows from the same stored values: the same absolute
//! values, and whichever writes second skips (its `through_offset` is there).
//!
//! After a crash between 1 and 3 the next owner loads the mark as a recovery
//! boundary ([`ScyllaStore::recovery_boundary`]) and flushes exactly the
//! crashed batch's records again before anything else, so each row either
//! already includes them (skipped) or gets them once. Inserts (events,
//! errors, notifications) and rule state are idempotent by key.

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt, stream};
use schemas::store::ScyllaLocation;
use scylla::client::session::Session;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlDate, CqlTimestamp, CqlValue, Row};

use super::{FlushOutcome, StoreError};
use crate::clicks::{ClicksBatch, PartitionClicks};
use crate::counters::{FlushBatch, PartitionCounters};
use crate::event_store::{ErrorsBatch, EventsBatch, PartitionErrors, PartitionEvents};
use crate::notifications::{NotificationsBatch, PartitionNotifications};
use crate::rules::Rules;
use crate::rules::engine::{Kind, PartitionRules, Pending, RulesBatch, StateKey, StateRow};

/// How many row reads and writes of one flush run at once.
const CONCURRENT_ROWS: usize = 64;

/// The `scope` of the single `event_type_counts` partition.
const ALL_TYPES: &str = "all";

/// The store on a ScyllaDB cluster, write side. Cheap to share.
#[derive(Clone)]
pub struct ScyllaStore {
    session: Arc<Session>,
    statements: Arc<Statements>,
    /// This processor's token: loading a partition claims its checkpoint
    /// row, and a flush's mark and commit hold only while the claim does.
    owner: uuid::Uuid,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore").finish_non_exhaustive()
    }
}

/// Every statement the processor runs, prepared once.
struct Statements {
    ensure_checkpoint: PreparedStatement,
    claim: PreparedStatement,
    read_checkpoint: PreparedStatement,
    mark: PreparedStatement,
    commit: PreparedStatement,
    progress: PreparedStatement,
    read_counter: PreparedStatement,
    write_counter: PreparedStatement,
    read_day: PreparedStatement,
    write_day: PreparedStatement,
    read_client_month: PreparedStatement,
    write_client_month: PreparedStatement,
    read_code: PreparedStatement,
    write_code: PreparedStatement,
    read_bot_day: PreparedStatement,
    write_bot_day: PreparedStatement,
    event_by_session: PreparedStatement,
    event_by_category_day: PreparedStatement,
    event_by_hour: PreparedStatement,
    read_type_count: PreparedStatement,
    write_type_count: PreparedStatement,
    error: PreparedStatement,
    notification: PreparedStatement,
    read_watermark: PreparedStatement,
    write_watermark: PreparedStatement,
    read_rule_state: PreparedStatement,
    write_rule_state: PreparedStatement,
    delete_rule_state: PreparedStatement,
}

/// The CQL of [`Statements`], by field, so tests can read it.
const CQL: &[(&str, &str)] = &[
    (
        "ensure_checkpoint",
        "INSERT INTO partition_checkpoints (topic, partition, next_offset) VALUES (?, ?, 0) IF NOT EXISTS",
    ),
    (
        "read_checkpoint",
        "SELECT next_offset, pending_through FROM partition_checkpoints WHERE topic = ? AND partition = ?",
    ),
    (
        "mark",
        "UPDATE partition_checkpoints SET pending_through = ?, updated_at = ? WHERE topic = ? AND partition = ? IF next_offset = ?",
    ),
    (
        "commit",
        "UPDATE partition_checkpoints SET next_offset = ?, pending_through = null, updated_at = ? WHERE topic = ? AND partition = ? IF next_offset = ?",
    ),
    (
        "progress",
        "UPDATE partition_progress USING TIMESTAMP ? SET as_of = ? WHERE topic = ? AND partition = ?",
    ),
    (
        "read_counter",
        "SELECT value, through_offset FROM counters WHERE key = ?",
    ),
    (
        "write_counter",
        "INSERT INTO counters (key, value, partition, through_offset, updated_at) VALUES (?, ?, ?, ?, ?)",
    ),
    (
        "read_day",
        "SELECT clicks, through_offset FROM clicks_by_day WHERE short_code = ? AND day = ? AND browser = ? AND os = ? AND device = ?",
    ),
    (
        "write_day",
        "INSERT INTO clicks_by_day (short_code, day, browser, os, device, clicks, partition, through_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "read_client_month",
        "SELECT clicks, through_offset FROM clicks_by_client_month WHERE client_id = ? AND month = ? AND short_code = ?",
    ),
    (
        "write_client_month",
        "INSERT INTO clicks_by_client_month (client_id, month, short_code, clicks, partition, through_offset) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    (
        "read_code",
        "SELECT clicks, through_offset FROM clicks_by_code WHERE short_code = ?",
    ),
    (
        "write_code",
        "INSERT INTO clicks_by_code (short_code, clicks, partition, through_offset) VALUES (?, ?, ?, ?)",
    ),
    (
        "read_bot_day",
        "SELECT clicks, through_offset FROM bot_clicks_by_day WHERE short_code = ? AND day = ?",
    ),
    (
        "write_bot_day",
        "INSERT INTO bot_clicks_by_day (short_code, day, clicks, partition, through_offset) VALUES (?, ?, ?, ?, ?)",
    ),
    (
        "event_by_session",
        "INSERT INTO events_by_session (session_id, occurred_at, event_id, received_at, application_id, category, name, data, known_type, user_id, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "event_by_category_day",
        "INSERT INTO events_by_category_day (category, day, occurred_at, event_id, session_id, received_at, application_id, name, data, known_type, user_id, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "event_by_hour",
        "INSERT INTO events_by_hour (hour, occurred_at, event_id, session_id, received_at, application_id, category, name, data, known_type, user_id, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "read_type_count",
        "SELECT events, through_offset FROM event_type_counts WHERE scope = ? AND category = ? AND name = ? AND partition = ?",
    ),
    (
        "write_type_count",
        "INSERT INTO event_type_counts (scope, category, name, partition, events, known_type, through_offset) VALUES (?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "error",
        "INSERT INTO errors_by_day (kind, day, occurred_at, event_id, application_id, source, status, field, reason, message, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "notification",
        "INSERT INTO notifications_by_user (user_id, occurred_at, notification_id, rule, received_at, device_id, message, data, trigger_event_id, late_by_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "read_watermark",
        "SELECT max_event_time FROM rule_watermarks WHERE topic = ? AND partition = ?",
    ),
    (
        "write_watermark",
        "INSERT INTO rule_watermarks (topic, partition, max_event_time) VALUES (?, ?, ?)",
    ),
    (
        "read_rule_state",
        "SELECT kind, rule, user_id, correlation, at, event_id, device_id FROM rule_state WHERE topic = ? AND partition = ?",
    ),
    (
        "write_rule_state",
        "INSERT INTO rule_state (topic, partition, kind, rule, user_id, correlation, at, event_id, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ),
    (
        "delete_rule_state",
        "DELETE FROM rule_state WHERE topic = ? AND partition = ? AND kind = ? AND rule = ? AND user_id = ? AND correlation = ?",
    ),
];

impl Statements {
    async fn prepare(session: &Session) -> Result<Self, StoreError> {
        let mut prepared = Vec::with_capacity(CQL.len());
        for &(name, cql) in CQL {
            let mut statement = session
                .prepare(cql)
                .await
                .map_err(|err| StoreError::cql(name, err))?;
            // Everything but the fenced checkpoint moves can be retried.
            statement.set_is_idempotent(!cql.contains(" IF "));
            prepared.push(statement);
        }
        let mut prepared = prepared.into_iter();
        let mut next = || {
            prepared
                .next()
                .ok_or_else(|| StoreError::Corrupt("statement list ended early".into()))
        };
        Ok(Self {
            ensure_checkpoint: next()?,
            claim: next()?,
            read_checkpoint: next()?,
            mark: next()?,
            commit: next()?,
            progress: next()?,
            read_counter: next()?,
            write_counter: next()?,
            read_day: next()?,
            write_day: next()?,
            read_client_month: next()?,
            write_client_month: next()?,
            read_code: next()?,
            write_code: next()?,
            read_bot_day: next()?,
            write_bot_day: next()?,
            event_by_session: next()?,
            event_by_category_day: next()?,
            event_by_hour: next()?,
            read_type_count: next()?,
            write_type_count: next()?,
            error: next()?,
            notification: next()?,
            read_watermark: next()?,
            write_watermark: next()?,
            read_rule_state: next()?,
            write_rule_state: next()?,
            delete_rule_state: next()?,
        })
    }
}

/// A stored aggregate row: its value and the last offset it includes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stored {
    value: i64,
    through_offset: i64,
}

/// The value to write for a row that gets `added` from a batch through
/// `through`, or `None` when the row already includes the batch (it was
/// written by the same batch before a crash).
fn absolute(stored: Option<Stored>, added: i64, through: i64) -> Option<i64> {
    match stored {
        Some(row) if row.through_offset >= through => None,
        Some(row) => Some(row.value.saturating_add(added)),
        None => Some(added),
    }
}

impl ScyllaStore {
    /// Connects to the cluster's keyspace and prepares every statement.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the cluster or the keyspace cannot be reached (run
    /// `eventide migrate` first) or a statement does not prepare.
    pub async fn open(location: &ScyllaLocation) -> Result<Self, StoreError> {
        let session = schemas::cql::connect(location).await?;
        let statements = Statements::prepare(&session).await?;
        Ok(Self {
            session: Arc::new(session),
            statements: Arc::new(statements),
            owner: uuid::Uuid::new_v4(),
        })
    }

    async fn execute(
        &self,
        during: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<scylla::response::query_result::QueryResult, StoreError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map_err(|err| StoreError::cql(during, err))
    }

    /// A lightweight transaction: whether it was applied.
    async fn conditional(
        &self,
        during: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<bool, StoreError> {
        let rows = self
            .execute(during, statement, values)
            .await?
            .into_rows_result()
            .map_err(|err| StoreError::cql(during, err))?;
        let row = rows
            .maybe_first_row::<Row>()
            .map_err(|err| StoreError::cql(during, err))?;
        match row.as_ref().and_then(|row| row.columns.first()) {
            Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
            other => Err(StoreError::Corrupt(format!(
                "{during}: no [applied] column in {other:?}"
            ))),
        }
    }

    /// The first row of a single-row read, if any.
    async fn read_one<R>(
        &self,
        during: &'static str,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Option<R>, StoreError>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
    {
        let rows = self
            .execute(during, statement, values)
            .await?
            .into_rows_result()
            .map_err(|err| StoreError::cql(during, err))?;
        rows.maybe_first_row::<R>()
            .map_err(|err| StoreError::cql(during, err))
    }

    /// Takes a partition over: creates its checkpoint row at 0 if missing
    /// (every flush is fenced on it) and claims it for this processor, so a
    /// previous owner's later mark or commit fails. Returns the stored next
    /// offset.
    async fn claim(&self, topic: &str, partition: i32) -> Result<i64, StoreError> {
        let s = &self.statements;
        self.conditional(
            "creating a checkpoint",
            &s.ensure_checkpoint,
            (topic, partition),
        )
        .await?;
        self.conditional(
            "claiming a checkpoint",
            &s.claim,
            (self.owner, topic, partition),
        )
        .await?;
        Ok(self.checkpoint_row(topic, partition).await?.0)
    }

    /// A partition's stored next offset and recovery mark, without claiming.
    async fn checkpoint_row(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> = self
            .read_one(
                "reading a checkpoint",
                &self.statements.read_checkpoint,
                (topic, partition),
            )
            .await?;
        let (next, pending) = row.unwrap_or_default();
        Ok((next.unwrap_or(0), pending))
    }

    /// The stored next offset of a partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn checkpoint(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
        Ok(Some(self.checkpoint_row(topic, partition).await?.0))
    }

    /// Where a flush that crashed between its mark and its commit ended
    /// (the offset after its last record): the first flush after a load
    /// must end exactly there.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn recovery_boundary(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, StoreError> {
        let (next, pending) = self.checkpoint_row(topic, partition).await?;
        Ok(pending
            .filter(|through| *through >= next)
            .map(|through| through + 1))
    }

    /// Runs a flush's three steps; `rows` writes the rows (step 2).
    async fn fenced<F>(
        &self,
        topic: &str,
        partition: i32,
        expected: i64,
        next: i64,
        rows: F,
    ) -> Result<FlushOutcome, StoreError>
    where
        F: Future<Output = Result<(), StoreError>>,
    {
        let s = &self.statements;
        let now = CqlTimestamp(schemas::time::now_micros() / 1000);
        let through = next - 1;
        if !self
            .conditional(
                "marking a flush",
                &s.mark,
                (through, now, topic, partition, expected, self.owner),
            )
            .await?
        {
            return Ok(FlushOutcome::Fenced);
        }
        rows.await?;
        if !self
            .conditional(
                "committing a flush",
                &s.commit,
                (next, now, topic, partition, expected, self.owner),
            )
            .await?
        {
            return Ok(FlushOutcome::Fenced);
        }
        Ok(FlushOutcome::Written)
    }

    /// Reads each row, adds its amount unless the row already includes the
    /// batch, and writes it back; `CONCURRENT_ROWS` at a time.
    #[allow(clippy::too_many_arguments)]
    async fn add_all<'a, T, K, V>(
        &self,
        during: &'static str,
        rows: &'a [(T, i64)],
        through: i64,
        read: &PreparedStatement,
        read_values: impl Fn(&'a T) -> K,
        write: &PreparedStatement,
        write_values: impl Fn(&'a T, i64) -> V,
    ) -> Result<(), StoreError>
    where
        K: SerializeRow,
        V: SerializeRow,
    {
        // Futures collected from plain iterators, not a stream of closures:
        // a closure taking a reference inside a stream makes the flush
        // future not `Send` for every lifetime (rust-lang/rust#102211).
        let reads: Vec<_> = rows
            .iter()
            .map(|(row, added)| self.stored_plus(during, read, read_values(row), *added, through))
            .collect();
        let values: Vec<Option<i64>> = stream::iter(reads)
            .buffered(CONCURRENT_ROWS)
            .try_collect()
            .await?;
        let writes: Vec<V> = rows
            .iter()
            .zip(values)
            .filter_map(|((row, _), value)| value.map(|value| write_values(row, value)))
            .collect();
        self.write_all(during, write, writes).await
    }

    /// A row's new absolute value, or `None` if it already includes the batch.
    async fn stored_plus(
        &self,
        during: &'static str,
        read: &PreparedStatement,
        key: impl SerializeRow,
        added: i64,
        through: i64,
    ) -> Result<Option<i64>, StoreError> {
        let stored: Option<(Option<i64>, Option<i64>)> = self.read_one(during, read, key).await?;
        let stored = stored.map(|(value, through_offset)| Stored {
            value: value.unwrap_or(0),
            through_offset: through_offset.unwrap_or(-1),
        });
        Ok(absolute(stored, added, through))
    }

    /// Writes every statement of `values`, `CONCURRENT_ROWS` at a time.
    async fn write_all<V: SerializeRow>(
        &self,
        during: &'static str,
        statement: &PreparedStatement,
        values: Vec<V>,
    ) -> Result<(), StoreError> {
        let writes: Vec<_> = values
            .into_iter()
            .map(|values| self.execute(during, statement, values))
            .collect();
        stream::iter(writes)
            .buffer_unordered(CONCURRENT_ROWS)
            .try_for_each(|_| std::future::ready(Ok(())))
            .await
    }

    /// Records that these partitions' rows include everything they held at
    /// `as_of`; the write timestamp is `as_of`, so an older report never
    /// overwrites a newer one.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if writing fails.
    pub async fn record_progress(
        &self,
        partitions: &[(&str, i32)],
        as_of: i64,
    ) -> Result<(), StoreError> {
        self.write_all(
            "recording progress",
            &self.statements.progress,
            partitions
                .iter()
                .map(|(topic, partition)| (as_of, as_of, *topic, *partition))
                .collect(),
        )
        .await
    }

    /// The stored checkpoint of an increments partition, as counter state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn load_counters(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionCounters, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionCounters::restore(next))
    }

    /// Adds a counters batch to the stored totals (see the module docs).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the partition is then replayed.
    pub async fn flush_counters(
        &self,
        topic: &str,
        partition: i32,
        batch: &FlushBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let s = &self.statements;
        let through = batch.through_offset;
        let now = CqlTimestamp(schemas::time::now_micros() / 1000);
        let rows = self.add_all(
            "flushing counters",
            &batch.rows,
            through,
            &s.read_counter,
            |key| (*key,),
            &s.write_counter,
            |key, value| (*key, value, partition, through, now),
        );
        self.fenced(
            topic,
            partition,
            batch.expected_next_offset,
            batch.next_offset,
            rows,
        )
        .await
    }

    /// The stored checkpoint of a redirects partition, as click state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn load_clicks(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionClicks, StoreError> {
        let next = self.claim(topic, partition).await?;
        Ok(PartitionClicks::restore(next))
    }

    /// Adds a clicks batch to the four click tables (see the module docs).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails or a day is malformed.
    pub async fn flush_clicks(
        &self,
        topic: &str,
        partition: i32,
        batch: &ClicksBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let s = &self.statements;
        let through = batch.through_offset;
        let rows = async {
            let by_day = with_dates(&batch.by_day, |row| &row.day)?;
            self.add_all(
                "flushing clicks by day",
                &by_day,
                through,
                &s.read_day,
                |(row, day)| {
                    (
                        row.short_code.as_str(),
                        *day,
                        row.browser.as_str(),
                        row.os.as_str(),
                        row.device.as_str(),
                    )
                },
                &s.write_day,
                |(row, day), clicks| {
                    (
                        row.short_code.as_str(),
                        *day,
                        row.browser.as_str(),
                        row.os.as_str(),
                        row.device.as_str(),
                        clicks,
                        partition,
                        through,
                    )
                },
            )
            .await?;
            self.add_all(
                "flushing clicks by client and month",
                &batch.by_client_month,
                through,
                &s.read_client_month,
                |row| (row.client_id, row.month.as_str(), row.short_code.as_str()),
                &s.write_client_month,
                |row, clicks| {
                    (
                        row.client_id,
                        row.month.as_str(),
                        row.short_code.as_str(),
                        clicks,
                        partition,
                        through,
                    )
                },
            )
            .await?;
            self.add_all(
                "flushing clicks by code",
                &batch.by_code,
                through,
                &s.read_code,
                |code| (code.as_str(),),
                &s.write_code,
                |code, clicks| (code.as_str(), clicks, partition, through),
            )
            .await?;
            let bots = with_dates(&batch.bots_by_day, |row| &row.day)?;
            self.add_all(
                "flushing bot clicks",
                &bots,
                through,
                &s.read_bot_day,
                |(row, day)| (row.short_code.as_str(), *day),
                &s.write_bot_day,
                |(row, day), clicks| (row.short_code.as_str(), *day, clicks, partition, through),
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
    /// counts (see the module docs).
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
        let s = &self.statements;
        let through = batch.next_offset - 1;
        let rows = async {
            let mut by_category_day = Vec::with_capacity(batch.events.len());
            for (_, event, day) in &batch.events {
                by_category_day.push((event, cql_date(day)?));
            }
            self.write_all(
                "writing events by session",
                &s.event_by_session,
                batch
                    .events
                    .iter()
                    .map(|(_, e, _)| {
                        (
                            e.session_id.as_str(),
                            e.occurred_at,
                            e.event_id,
                            e.received_at,
                            e.application_id.as_str(),
                            e.category.as_str(),
                            e.name.as_str(),
                            e.data.as_str(),
                            e.known_type,
                            e.user_id.as_deref(),
                            e.device_id.as_deref(),
                        )
                    })
                    .collect(),
            )
            .await?;
            self.write_all(
                "writing events by category and day",
                &s.event_by_category_day,
                by_category_day
                    .iter()
                    .map(|(e, day)| {
                        (
                            e.category.as_str(),
                            *day,
                            e.occurred_at,
                            e.event_id,
                            e.session_id.as_str(),
                            e.received_at,
                            e.application_id.as_str(),
                            e.name.as_str(),
                            e.data.as_str(),
                            e.known_type,
                            e.user_id.as_deref(),
                            e.device_id.as_deref(),
                        )
                    })
                    .collect(),
            )
            .await?;
            self.write_all(
                "writing events by hour",
                &s.event_by_hour,
                batch
                    .events
                    .iter()
                    .map(|(_, e, _)| {
                        (
                            hour_bucket(e.occurred_at),
                            e.occurred_at,
                            e.event_id,
                            e.session_id.as_str(),
                            e.received_at,
                            e.application_id.as_str(),
                            e.category.as_str(),
                            e.name.as_str(),
                            e.data.as_str(),
                            e.known_type,
                            e.user_id.as_deref(),
                            e.device_id.as_deref(),
                        )
                    })
                    .collect(),
            )
            .await?;
            let counts: Vec<((&str, &str, bool), i64)> = batch
                .type_counts
                .iter()
                .map(|((category, name), (added, known))| {
                    ((category.as_str(), name.as_str(), *known), *added)
                })
                .collect();
            self.add_all(
                "flushing event type counts",
                &counts,
                through,
                &s.read_type_count,
                |(category, name, _)| (ALL_TYPES, *category, *name, partition),
                &s.write_type_count,
                |(category, name, known), events| {
                    (
                        ALL_TYPES, *category, *name, partition, events, *known, through,
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
        let s = &self.statements;
        let rows = async {
            let rows = batch
                .rows
                .iter()
                .map(|row| Ok((row, cql_date(&row.day)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            self.write_all(
                "writing errors",
                &s.error,
                rows.iter()
                    .map(|(row, day)| {
                        (
                            row.kind.as_str(),
                            *day,
                            row.occurred_at,
                            row.event_id.as_str(),
                            row.application_id.as_deref(),
                            row.source.as_str(),
                            row.status,
                            row.field.as_deref(),
                            row.reason.as_str(),
                            row.message.as_str(),
                            row.body.as_slice(),
                        )
                    })
                    .collect(),
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
        let s = &self.statements;
        let rows = self.write_all(
            "writing notifications",
            &s.notification,
            batch
                .notifications
                .iter()
                .map(|(_, n)| {
                    (
                        n.user_id.as_str(),
                        n.occurred_at,
                        n.event_id.as_str(),
                        n.rule.as_str(),
                        n.received_at,
                        n.device_id.as_deref(),
                        n.message.as_str(),
                        n.data.as_str(),
                        n.trigger_event_id.as_str(),
                        n.late_by_micros,
                    )
                })
                .collect(),
        );
        self.fenced(
            topic,
            partition,
            batch.expected_next_offset,
            batch.next_offset,
            rows,
        )
        .await
    }

    /// An events partition's rule state (see the SQLite store's twin).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or a row is corrupt.
    pub async fn load_rules(
        &self,
        topic: &str,
        partition: i32,
        rules: &Rules,
    ) -> Result<PartitionRules, StoreError> {
        let s = &self.statements;
        let next = self.claim(topic, partition).await?;
        let watermark: Option<(Option<i64>,)> = self
            .read_one(
                "reading a rule watermark",
                &s.read_watermark,
                (topic, partition),
            )
            .await?;
        let max_event_time = watermark.and_then(|(time,)| time);
        type StateColumns = (String, String, String, String, i64, String, Option<String>);
        let during = "reading rule state";
        let mut rows = self
            .session
            .execute_iter(s.read_rule_state.clone(), (topic, partition))
            .await
            .map_err(|err| StoreError::cql(during, err))?
            .rows_stream::<StateColumns>()
            .map_err(|err| StoreError::cql(during, err))?;
        let mut state = Vec::new();
        while let Some((kind, rule, user, correlation, at, event_id, device_id)) = rows
            .try_next()
            .await
            .map_err(|err| StoreError::cql(during, err))?
        {
            let kind = Kind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("rule_state kind {kind:?}")))?;
            state.push(StateRow {
                key: StateKey {
                    kind,
                    rule: rule.into(),
                    user,
                    correlation,
                },
                pending: Pending {
                    at,
                    event_id,
                    device_id,
                },
            });
        }
        Ok(PartitionRules::restore(next, max_event_time, state, rules))
    }

    /// Writes changed rule state and the highest event time (absolute,
    /// idempotent by key) under the fenced checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    pub async fn flush_rules(
        &self,
        topic: &str,
        partition: i32,
        batch: &RulesBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let s = &self.statements;
        let rows = async {
            if let Some(max_event_time) = batch.watermark {
                self.execute(
                    "writing a rule watermark",
                    &s.write_watermark,
                    (topic, partition, max_event_time),
                )
                .await?;
            }
            self.write_all(
                "writing rule state",
                &s.write_rule_state,
                batch
                    .upserts
                    .iter()
                    .map(|row| {
                        (
                            topic,
                            partition,
                            row.key.kind.as_str(),
                            &*row.key.rule,
                            row.key.user.as_str(),
                            row.key.correlation.as_str(),
                            row.pending.at,
                            row.pending.event_id.as_str(),
                            row.pending.device_id.as_deref(),
                        )
                    })
                    .collect(),
            )
            .await?;
            self.write_all(
                "deleting rule state",
                &s.delete_rule_state,
                batch
                    .deletes
                    .iter()
                    .map(|key| {
                        (
                            topic,
                            partition,
                            key.kind.as_str(),
                            &*key.rule,
                            key.user.as_str(),
                            key.correlation.as_str(),
                        )
                    })
                    .collect(),
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
}

/// A `YYYY-MM-DD` day as a CQL `date` (days since the epoch, offset by 2^31).
fn cql_date(day: &str) -> Result<CqlDate, StoreError> {
    let date = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .map_err(|err| StoreError::Corrupt(format!("day {day:?}: {err}")))?;
    let days = date
        .signed_duration_since(chrono::NaiveDate::default())
        .num_days();
    u32::try_from(days + (1_i64 << 31))
        .map(CqlDate)
        .map_err(|_| StoreError::Corrupt(format!("day {day:?} out of range")))
}

/// A row with its day as a CQL `date`, and its amount.
type Dated<'a, T, A> = ((&'a T, CqlDate), A);

/// Each item with its day as a CQL `date`.
fn with_dates<'a, T, A: Copy>(
    items: &'a [(T, A)],
    day: impl Fn(&T) -> &String,
) -> Result<Vec<Dated<'a, T, A>>, StoreError>
where
    T: 'a,
{
    items
        .iter()
        .map(|(item, amount)| Ok(((item, cql_date(day(item))?), *amount)))
        .collect()
}

/// The UTC hour an event time (micros) falls in, as a CQL timestamp.
fn hour_bucket(occurred_at: i64) -> CqlTimestamp {
    const HOUR_MICROS: i64 = 3_600_000_000;
    CqlTimestamp(occurred_at.div_euclid(HOUR_MICROS) * (HOUR_MICROS / 1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_the_batch_already_reached_is_skipped_and_others_add_up() {
        assert_eq!(absolute(None, 5, 10), Some(5));
        let row = Stored {
            value: 7,
            through_offset: 3,
        };
        assert_eq!(absolute(Some(row), 5, 10), Some(12));
        let crashed = Stored {
            value: 12,
            through_offset: 10,
        };
        assert_eq!(
            absolute(Some(crashed), 5, 10),
            None,
            "written before a crash"
        );
    }

    #[test]
    fn days_and_hours_map_to_cql_types() {
        assert_eq!(cql_date("1970-01-01").expect("date"), CqlDate(1 << 31));
        assert_eq!(
            cql_date("2024-02-01").expect("date"),
            CqlDate((1 << 31) + 19_754)
        );
        assert!(cql_date("2024-13-01").is_err());
        // 2024-02-01T10:59:59.999999Z falls in the 10:00 bucket.
        assert_eq!(
            hour_bucket(1_706_785_199_999_999),
            CqlTimestamp(1_706_781_600_000)
        );
        assert_eq!(hour_bucket(-1), CqlTimestamp(-3_600_000));
    }

    #[test]
    fn every_statement_names_a_full_key_and_only_checkpoint_moves_are_conditional() {
        for (name, cql) in CQL {
            assert!(!cql.to_uppercase().contains("ALLOW FILTERING"), "{name}");
            let conditional = cql.contains(" IF ");
            assert_eq!(
                conditional,
                ["ensure_checkpoint", "claim", "mark", "commit"].contains(name),
                "{name}"
            );
        }
        let names: Vec<&str> = CQL.iter().map(|(name, _)| *name).collect();
        let mut unique = names.clone();
        unique.dedup();
        assert_eq!(names, unique);
    }
}
