//! The processor's write side on ScyllaDB (`scylla` driver, prepared
//! statements, the tables of `schemas/cql/`).
//!
//! ScyllaDB has no transaction spanning tables, so a flush is three steps:
//!
//! 1. mark: `pending_through` = the batch's last offset, a lightweight
//!    transaction fenced on the expected `next_offset`, on this processor's
//!    claim on the partition (loading a partition claims it, so a previous
//!    owner fails here and writes nothing) and on no other mark being
//!    there: a mark that lands late (a timed-out request completed by a
//!    later Paxos round) can never replace the mark of a batch whose rows
//!    are being written. The flush that replays a cut-short batch checks
//!    instead that the mark it was loaded with is still there;
//! 2. rows: every aggregate row read and written back as an absolute value
//!    with `through_offset` = the batch's last offset, unless the row's
//!    stored `through_offset` already reaches it (written before a crash),
//!    and written `USING TIMESTAMP` that offset;
//! 3. commit: `next_offset` moved and the mark cleared, fenced on the same
//!    checkpoint, claim and mark.
//!
//! A previous owner that passed its mark just before the new owner claimed
//! the partition leaves that mark for the new owner to load, so both write
//! the same records' rows from the same stored values: the same absolute
//! values at the same write timestamp. A write that lands late (a slow
//! previous owner, or a driver retrying an idempotent insert after a
//! timeout) carries the offset it includes as its write timestamp, so it
//! never overwrites a row that already includes later records: ScyllaDB
//! keeps the cell with the highest timestamp.
//!
//! After a crash between 1 and 3 the next owner loads the mark as a recovery
//! boundary ([`ScyllaStore::recovery_boundary`]) and flushes exactly the
//! crashed batch's records again before anything else, so each row either
//! already includes them (skipped) or gets them once. Inserts (events,
//! errors, notifications) and rule state are idempotent by key.
//!
//! # Layout
//!
//! - `statements`: every statement with the values it binds.
//! - `aggregates`: counters and clicks (read, add, write back).
//! - `events`: events, per-type counts, errors and notifications.
//! - `rules`: session rules' timers and watermark.
//! - `dedup`: the idempotency keys each partition applied.

mod aggregates;
mod dedup;
mod events;
mod rules;
mod statements;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt, stream};
use schemas::cql::{Bound, CqlExecutor, CqlRow, ExecuteError, FromCqlRow, SessionExecutor};
use schemas::store::ScyllaLocation;
use scylla::value::{CqlDate, CqlTimestamp, CqlValue};
use tracing::{error, info};

use self::statements as s;
use super::{FlushOutcome, StoreError};

/// How many row reads and writes of one flush run at once.
const CONCURRENT_ROWS: usize = 64;

/// The store on a ScyllaDB cluster, write side. Cheap to share.
#[derive(Clone, Debug)]
pub struct ScyllaStore {
    /// Runs the statements: a driver session, or the simulation's tables.
    executor: Arc<dyn CqlExecutor>,
    /// This processor's token: loading a partition claims its checkpoint
    /// row, and a flush's mark and commit hold only while the claim does.
    owner: uuid::Uuid,
    /// The cut-short batches found when partitions were loaded, by (topic,
    /// partition): (next offset, marked last offset). The flush replaying
    /// one checks the mark is still there instead of setting it.
    recovering: Arc<Mutex<Recovering>>,
}

/// Cut-short batches by (topic, partition): (next offset, marked last offset).
type Recovering = HashMap<(String, i32), (i64, i64)>;

/// A stored aggregate row: its value and the last offset it includes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Stored {
    value: i64,
    through_offset: i64,
}

/// What a row that gets `added` from a batch through `through` becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sum {
    /// The new absolute value to write.
    Write(i64),
    /// Nothing: the row already includes the batch (written by the same
    /// batch before a crash).
    Included,
    /// Nothing: the value would pass `i64::MAX`; the row keeps this one.
    Overflow(i64),
}

fn absolute(stored: Option<Stored>, added: i64, through: i64) -> Sum {
    match stored {
        Some(row) if row.through_offset >= through => Sum::Included,
        Some(row) => row
            .value
            .checked_add(added)
            .map_or(Sum::Overflow(row.value), Sum::Write),
        None => Sum::Write(added),
    }
}

/// A row left as it was because its new value would pass `i64::MAX`: the
/// row, its stored value and the amount that was not added.
type Overflowed<'a, T> = (&'a T, i64, i64);

impl From<ExecuteError> for StoreError {
    fn from(err: ExecuteError) -> Self {
        Self::Cql {
            during: err.statement,
            reason: err.reason,
        }
    }
}

impl ScyllaStore {
    /// Connects to the cluster's keyspace and prepares every statement.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the cluster or the keyspace cannot be reached, or a
    /// statement does not prepare (a table missing: run `eventide migrate`).
    pub async fn open(location: &ScyllaLocation) -> Result<Self, StoreError> {
        let session = schemas::cql::connect(location).await?;
        let executor = SessionExecutor::prepare(session, s::ALL, location.consistencies).await?;
        info!(
            contact_points = %location.contact_points.join(","),
            keyspace = %location.keyspace,
            datacenter = location.datacenter.as_deref().unwrap_or("any"),
            statements = s::ALL.len(),
            "processor store on ScyllaDB"
        );
        Ok(Self::with_executor(Arc::new(executor)))
    }

    /// The store over any executor of its statements (the simulation runs
    /// it over in-memory tables), as a new owner of whatever it loads.
    pub fn with_executor(executor: Arc<dyn CqlExecutor>) -> Self {
        Self {
            executor,
            owner: uuid::Uuid::new_v4(),
            recovering: Arc::default(),
        }
    }

    /// Every statement the processor runs.
    pub fn statements() -> &'static [&'static schemas::cql::Statement] {
        s::ALL
    }

    async fn run(&self, bound: Bound) -> Result<Vec<CqlRow>, StoreError> {
        Ok(self.executor.execute(bound).await?)
    }

    /// A lightweight transaction: whether it was applied.
    async fn conditional(&self, bound: Bound) -> Result<bool, StoreError> {
        let name = bound.statement.name;
        let rows = self.run(bound).await?;
        match rows.first().and_then(|row| row.first()) {
            Some(Some(CqlValue::Boolean(applied))) => Ok(*applied),
            other => Err(StoreError::Corrupt(format!(
                "{name}: no [applied] column in {other:?}"
            ))),
        }
    }

    /// The first row of a single-row read, if any.
    async fn read_one<R: FromCqlRow>(&self, bound: Bound) -> Result<Option<R>, StoreError> {
        let name = bound.statement.name;
        let rows = self.run(bound).await?;
        rows.into_iter()
            .next()
            .map(R::from_row)
            .transpose()
            .map_err(|err| StoreError::Corrupt(format!("{name}: {err}")))
    }

    /// Every row of a read.
    async fn read_all<R: FromCqlRow>(&self, bound: Bound) -> Result<Vec<R>, StoreError> {
        let name = bound.statement.name;
        let rows = self.run(bound).await?;
        rows.into_iter()
            .map(R::from_row)
            .collect::<Result<_, _>>()
            .map_err(|err| StoreError::Corrupt(format!("{name}: {err}")))
    }

    /// Takes a partition over: creates its checkpoint row at 0 if missing
    /// (every flush is fenced on it) and claims it for this processor, so a
    /// previous owner's later mark or commit fails. Returns the stored next
    /// offset.
    async fn claim(&self, topic: &str, partition: i32) -> Result<i64, StoreError> {
        self.conditional(s::ensure_checkpoint(topic, partition))
            .await?;
        if !self
            .conditional(s::claim(self.owner, topic, partition))
            .await?
        {
            return Err(StoreError::Corrupt(format!(
                "checkpoint of {topic}/{partition} vanished while claiming it"
            )));
        }
        Ok(self.checkpoint_row(topic, partition).await?.0)
    }

    /// A partition's stored next offset and recovery mark, without claiming.
    async fn checkpoint_row(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<(i64, Option<i64>), StoreError> {
        let row: Option<(Option<i64>, Option<i64>)> =
            self.read_one(s::read_checkpoint(topic, partition)).await?;
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
        let cut_short = pending.filter(|through| *through >= next);
        let mut recovering = self.recovering();
        match cut_short {
            Some(through) => recovering.insert((topic.to_owned(), partition), (next, through)),
            None => recovering.remove(&(topic.to_owned(), partition)),
        };
        Ok(cut_short.map(|through| through + 1))
    }

    fn recovering(&self) -> std::sync::MutexGuard<'_, Recovering> {
        // The map is consistent after any panic: entries are single inserts.
        self.recovering
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let now = CqlTimestamp(schemas::time::now_micros() / 1000);
        let through = next - 1;
        let key = (topic.to_owned(), partition);
        let replaying = self.recovering().get(&key) == Some(&(expected, through));
        let marked = if replaying {
            s::remark(now, topic, partition, expected, self.owner, through)
        } else {
            s::mark(through, now, topic, partition, expected, self.owner)
        };
        if !self.conditional(marked).await? {
            self.recovering().remove(&key);
            return Ok(FlushOutcome::Fenced);
        }
        rows.await?;
        let committed = s::commit(next, now, topic, partition, expected, self.owner, through);
        let outcome = if self.conditional(committed).await? {
            FlushOutcome::Written
        } else {
            FlushOutcome::Fenced
        };
        self.recovering().remove(&key);
        Ok(outcome)
    }

    /// Reads each row, adds its amount unless the row already includes the
    /// batch, and writes it back; `CONCURRENT_ROWS` at a time. `read` binds
    /// a row's key, `write` its key and new absolute value. Rows whose value
    /// would pass `i64::MAX` are left as they were, logged and returned.
    async fn add_all<'a, T>(
        &self,
        rows: &'a [(T, i64)],
        through: i64,
        read: impl Fn(&'a T) -> Bound,
        write: impl Fn(&'a T, i64) -> Bound,
    ) -> Result<Vec<Overflowed<'a, T>>, StoreError> {
        // Futures collected from plain iterators, not a stream of closures:
        // a closure taking a reference inside a stream makes the flush
        // future not `Send` for every lifetime (rust-lang/rust#102211).
        let reads: Vec<_> = rows
            .iter()
            .map(|(row, added)| self.stored_plus(read(row), *added, through))
            .collect();
        let sums: Vec<Sum> = stream::iter(reads)
            .buffered(CONCURRENT_ROWS)
            .try_collect()
            .await?;
        let mut writes = Vec::with_capacity(rows.len());
        let mut overflowed = Vec::new();
        for ((row, added), sum) in rows.iter().zip(sums) {
            match sum {
                Sum::Write(value) => writes.push(write(row, value)),
                Sum::Included => {}
                Sum::Overflow(stored) => overflowed.push((row, stored, *added)),
            }
        }
        if !overflowed.is_empty() {
            error!(
                rows = overflowed.len(),
                "aggregate rows would pass i64::MAX; left as they were"
            );
        }
        self.write_all(writes).await?;
        Ok(overflowed)
    }

    /// What a row becomes with `added` from a batch through `through`.
    async fn stored_plus(&self, read: Bound, added: i64, through: i64) -> Result<Sum, StoreError> {
        let stored: Option<(Option<i64>, Option<i64>)> = self.read_one(read).await?;
        let stored = stored.map(|(value, through_offset)| Stored {
            value: value.unwrap_or(0),
            through_offset: through_offset.unwrap_or(-1),
        });
        Ok(absolute(stored, added, through))
    }

    /// Runs every statement of `writes`, `CONCURRENT_ROWS` at a time.
    async fn write_all(&self, writes: Vec<Bound>) -> Result<(), StoreError> {
        let writes: Vec<_> = writes.into_iter().map(|bound| self.run(bound)).collect();
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
            partitions
                .iter()
                .map(|(topic, partition)| s::progress(as_of, as_of, topic, *partition))
                .collect(),
        )
        .await
    }
}

/// A `YYYY-MM-DD` day as a CQL `date` (`schemas::cql::layout`).
fn cql_date(day: &str) -> Result<CqlDate, StoreError> {
    schemas::cql::layout::date_of_text(day)
        .ok_or_else(|| StoreError::Corrupt(format!("day {day:?} is not a CQL date")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_row_the_batch_already_reached_is_skipped_and_others_add_up() {
        assert_eq!(absolute(None, 5, 10), Sum::Write(5));
        let row = Stored {
            value: 7,
            through_offset: 3,
        };
        assert_eq!(absolute(Some(row), 5, 10), Sum::Write(12));
        let crashed = Stored {
            value: 12,
            through_offset: 10,
        };
        assert_eq!(
            absolute(Some(crashed), 5, 10),
            Sum::Included,
            "written before a crash"
        );
        let full = Stored {
            value: i64::MAX - 1,
            through_offset: 3,
        };
        assert_eq!(
            absolute(Some(full), 2, 10),
            Sum::Overflow(i64::MAX - 1),
            "never clamped"
        );
    }

    #[test]
    fn days_map_to_cql_dates() {
        assert_eq!(cql_date("1970-01-01").expect("date"), CqlDate(1 << 31));
        assert_eq!(
            cql_date("2024-02-01").expect("date"),
            CqlDate((1 << 31) + 19_754)
        );
        assert!(cql_date("2024-13-01").is_err());
    }

    #[test]
    fn statements_have_unique_names_and_only_checkpoint_moves_are_conditional() {
        let mut names: Vec<&str> = s::ALL.iter().map(|statement| statement.name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a name declared twice");
        for statement in s::ALL {
            assert_eq!(
                statement.is_conditional(),
                ["ensure_checkpoint", "claim", "mark", "remark", "commit"]
                    .contains(&statement.name),
                "{}",
                statement.name
            );
            let markers = statement.cql.matches('?').count();
            assert_eq!(markers, statement.binds.len(), "{}", statement.name);
        }
        let fenced = |name: &str| {
            let statement = s::ALL.iter().find(|st| st.name == name).expect(name);
            statement
                .cql
                .contains("IF next_offset = ? AND owner = ? AND pending_through = ")
        };
        assert!(fenced("mark") && fenced("remark") && fenced("commit"));
    }
}
