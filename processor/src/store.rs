//! The processor's write side of the store, on either backend: the embedded
//! SQLite file (local default) or ScyllaDB (production). Both keep the same
//! logical tables and the same guarantee: a flush writes a partition's
//! changed rows as absolute values with the offset they include, fenced on
//! the checkpoint it expects, so totals stay exact across crashes, restarts
//! and rebalances.
//!
//! Each aggregate is [`Stored`] (its load setup, its batch, and how a batch
//! is taken and marked stored, beside its logic), and each backend
//! [`Keeps`] it (one load and one flush per
//! aggregate, in `sqlite` and `scylla`); [`Store::load`] and
//! [`Store::flush`] dispatch to the configured backend for any aggregate
//! both keep. Adding an aggregate touches one module per backend.

mod scylla;
mod sqlite;

use std::path::PathBuf;
use std::time::Duration;

use schemas::store::StoreLocation;
use thiserror::Error;

pub use self::scylla::ScyllaStore;
pub use self::sqlite::{SqliteStore, apply_ddl as apply_sqlite_ddl};
use crate::clicks::ClicksBatch;
use crate::counters::FlushBatch;
use crate::dedup::Remembered;
use crate::event_store::{ErrorsBatch, EventsBatch};
use crate::notifications::NotificationsBatch;
use crate::rules::engine::RulesBatch;

/// Why the store could not be used.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("opening store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// A SQLite statement failed.
    #[error("store query failed: {0}")]
    Query(#[from] libsql::Error),
    /// The ScyllaDB cluster or keyspace could not be reached.
    #[error(transparent)]
    Connect(#[from] schemas::cql::CqlError),
    /// A CQL statement failed.
    #[error("{during}: {reason}")]
    Cql {
        during: &'static str,
        reason: String,
    },
    /// A stored value is not what the schema promises.
    #[error("corrupt stored row: {0}")]
    Corrupt(String),
}

/// Whether a fenced flush was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOutcome {
    /// Rows and checkpoint are stored.
    Written,
    /// The checkpoint moved under us: another processor owns the partition now.
    Fenced,
}

/// The store, write side, on the configured backend.
#[derive(Debug)]
pub enum Store {
    Sqlite(SqliteStore),
    Scylla(ScyllaStore),
}

/// Calls the same method on whichever backend this is.
macro_rules! on_backend {
    ($store:expr, $method:ident($($arg:expr),*)) => {
        match $store {
            Store::Sqlite(store) => store.$method($($arg),*).await,
            Store::Scylla(store) => store.$method($($arg),*).await,
        }
    };
}

impl Store {
    /// Opens the store at `location`: the SQLite file (created with its
    /// tables if missing) or the ScyllaDB keyspace (which `eventide migrate`
    /// must have created).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the store cannot be opened.
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        Ok(match location {
            StoreLocation::Sqlite(path) => Self::Sqlite(SqliteStore::open(path).await?),
            StoreLocation::Scylla(cluster) => Self::Scylla(ScyllaStore::open(cluster).await?),
            StoreLocation::Cql(executor) => {
                Self::Scylla(ScyllaStore::with_executor(executor.0.clone()))
            }
        })
    }

    /// The backend's name, for metric labels: `sqlite` or `scylla`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Scylla(_) => "scylla",
        }
    }

    /// Where the first flush after loading a partition must end, if a flush
    /// crashed half-written (ScyllaDB only; SQLite flushes are atomic).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn recovery_boundary(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<Option<i64>, StoreError> {
        match self {
            Self::Sqlite(_) => Ok(None),
            Self::Scylla(store) => store.recovery_boundary(topic, partition).await,
        }
    }

    /// Records that the stored rows of these (logical topic, partition)s
    /// include everything the partitions held at `as_of`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if writing fails.
    pub async fn record_progress(
        &self,
        partitions: &[(&str, i32)],
        as_of: i64,
    ) -> Result<(), StoreError> {
        on_backend!(self, record_progress(partitions, as_of))
    }

    /// The stored next offset of a partition, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn checkpoint(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
        on_backend!(self, checkpoint(topic, partition))
    }

    /// Stores the idempotency keys a partition applied since its last
    /// flush; called before the flush that moves its checkpoint past them
    /// (a key counts only below the checkpoint, see `dedup`).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if writing fails; the partition is then replayed.
    pub async fn remember(
        &self,
        topic: &str,
        partition: i32,
        keys: &[Remembered],
        window: Duration,
    ) -> Result<(), StoreError> {
        if keys.is_empty() {
            return Ok(());
        }
        on_backend!(self, remember(topic, partition, keys, window))
    }

    /// The idempotency keys a partition applied below its checkpoint
    /// `below`, received within the window (and an hour) of now.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or a stored row is corrupt.
    pub async fn remembered(
        &self,
        topic: &str,
        partition: i32,
        below: i64,
        window: Duration,
    ) -> Result<Vec<Remembered>, StoreError> {
        on_backend!(self, remembered(topic, partition, below, window))
    }

    /// A partition's stored state of aggregate `A`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or a stored row is corrupt.
    pub async fn load<A: Kept>(
        &self,
        topic: &str,
        partition: i32,
        setup: &A::Setup,
    ) -> Result<A, StoreError> {
        A::load_from(self, topic, partition, setup).await
    }

    /// Writes a batch of aggregate `A`, fenced on the checkpoint it expects.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the partition is then replayed.
    pub async fn flush<A: Kept>(
        &self,
        topic: &str,
        partition: i32,
        batch: &A::Batch,
    ) -> Result<FlushOutcome, StoreError> {
        A::flush_to(self, topic, partition, batch).await
    }
}

/// Keys received before this (microseconds) are past every dedup decision
/// still to come: the window, and an hour for ingest clocks that disagree.
fn dedup_horizon(window: Duration) -> i64 {
    let window = i64::try_from(window.as_micros()).unwrap_or(i64::MAX);
    schemas::time::now_micros()
        .saturating_sub(window)
        .saturating_sub(schemas::cql::layout::HOUR_MICROS)
}

/// An aggregate the store keeps per topic partition: what loading it needs
/// besides its checkpoint, and what one flush of it writes.
pub trait Stored: Sized {
    /// What loading needs besides the checkpoint (the rules, for rule state).
    type Setup: ?Sized + Sync;
    /// What one flush writes.
    type Batch: Fenced + Send + Sync;

    /// What a flush must write now.
    fn batch(&self) -> Self::Batch;

    /// Records that `batch` is stored: its changes are the store's now.
    fn flushed(&mut self, batch: &Self::Batch);
}

/// What a flush is fenced on: the checkpoint it expects and the one it
/// moves to.
pub trait Fenced {
    /// The checkpoint the store holds now; the write is fenced on it.
    fn expected_next_offset(&self) -> i64;
    /// The checkpoint after this flush.
    fn next_offset(&self) -> i64;
}

/// One backend's half of keeping aggregate `A`: adding an aggregate adds
/// one implementation per backend, nothing else in the store.
#[allow(
    async_fn_in_trait,
    reason = "callers name concrete aggregates: their futures are Send"
)]
pub trait Keeps<A: Stored> {
    /// A partition's stored state (claiming it, on ScyllaDB).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or a stored row is corrupt.
    async fn load(&self, topic: &str, partition: i32, setup: &A::Setup) -> Result<A, StoreError>;

    /// Writes a batch, fenced on the checkpoint it expects.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the partition is then replayed.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &A::Batch,
    ) -> Result<FlushOutcome, StoreError>;
}

/// An aggregate both backends keep.
#[allow(
    async_fn_in_trait,
    reason = "callers name concrete aggregates: their futures are Send"
)]
pub trait Kept: Stored {
    /// [`Keeps::load`] on whichever backend `store` is.
    ///
    /// # Errors
    ///
    /// As [`Keeps::load`].
    async fn load_from(
        store: &Store,
        topic: &str,
        partition: i32,
        setup: &Self::Setup,
    ) -> Result<Self, StoreError>;

    /// [`Keeps::flush`] on whichever backend `store` is.
    ///
    /// # Errors
    ///
    /// As [`Keeps::flush`].
    async fn flush_to(
        store: &Store,
        topic: &str,
        partition: i32,
        batch: &Self::Batch,
    ) -> Result<FlushOutcome, StoreError>;
}

impl<A: Stored> Kept for A
where
    SqliteStore: Keeps<A>,
    ScyllaStore: Keeps<A>,
{
    async fn load_from(
        store: &Store,
        topic: &str,
        partition: i32,
        setup: &A::Setup,
    ) -> Result<A, StoreError> {
        match store {
            Store::Sqlite(store) => Keeps::<A>::load(store, topic, partition, setup).await,
            Store::Scylla(store) => Keeps::<A>::load(store, topic, partition, setup).await,
        }
    }

    async fn flush_to(
        store: &Store,
        topic: &str,
        partition: i32,
        batch: &A::Batch,
    ) -> Result<FlushOutcome, StoreError> {
        match store {
            Store::Sqlite(store) => Keeps::<A>::flush(store, topic, partition, batch).await,
            Store::Scylla(store) => Keeps::<A>::flush(store, topic, partition, batch).await,
        }
    }
}

/// Every batch's fencing checkpoint: the fields each batch carries.
macro_rules! fenced {
    ($($batch:ty),* $(,)?) => {
        $(impl Fenced for $batch {
            fn expected_next_offset(&self) -> i64 {
                self.expected_next_offset
            }
            fn next_offset(&self) -> i64 {
                self.next_offset
            }
        })*
    };
}

fenced!(
    FlushBatch,
    ClicksBatch,
    EventsBatch,
    ErrorsBatch,
    NotificationsBatch,
    RulesBatch,
);
