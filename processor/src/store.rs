//! The processor's write side of the store, on either backend: the embedded
//! SQLite file (local default) or ScyllaDB (production). Both keep the same
//! logical tables and the same guarantee: a flush writes a partition's
//! changed rows as absolute values with the offset they include, fenced on
//! the checkpoint it expects, so totals stay exact across crashes, restarts
//! and rebalances.

mod scylla;
mod sqlite;

use std::path::PathBuf;

use schemas::store::StoreLocation;
use thiserror::Error;

pub use self::scylla::ScyllaStore;
pub use self::sqlite::SqliteStore;
use crate::clicks::{ClicksBatch, PartitionClicks};
use crate::counters::{FlushBatch, PartitionCounters};
use crate::event_store::{ErrorsBatch, EventsBatch, PartitionErrors, PartitionEvents};
use crate::notifications::{NotificationsBatch, PartitionNotifications};
use crate::rules::Rules;
use crate::rules::engine::{PartitionRules, RulesBatch};

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
        on_backend!(self, load_counters(topic, partition))
    }

    /// Adds a counters batch to the stored totals, fenced.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    pub async fn flush_counters(
        &self,
        topic: &str,
        partition: i32,
        batch: &FlushBatch,
    ) -> Result<FlushOutcome, StoreError> {
        on_backend!(self, flush_counters(topic, partition, batch))
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
        on_backend!(self, load_clicks(topic, partition))
    }

    /// Adds a clicks batch to the click tables, fenced.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    pub async fn flush_clicks(
        &self,
        topic: &str,
        partition: i32,
        batch: &ClicksBatch,
    ) -> Result<FlushOutcome, StoreError> {
        on_backend!(self, flush_clicks(topic, partition, batch))
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
        on_backend!(self, load_events(topic, partition))
    }

    /// Stores a batch of events and per-type counts, fenced.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    pub async fn flush_events(
        &self,
        topic: &str,
        partition: i32,
        batch: &EventsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        on_backend!(self, flush_events(topic, partition, batch))
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
        on_backend!(self, load_errors(topic, partition))
    }

    /// Stores a batch of rejects or dead letters, fenced.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    pub async fn flush_errors(
        &self,
        topic: &str,
        partition: i32,
        batch: &ErrorsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        on_backend!(self, flush_errors(topic, partition, batch))
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
        on_backend!(self, load_notifications(topic, partition))
    }

    /// Stores a batch of notifications once by id, fenced.
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
        on_backend!(self, flush_notifications(topic, partition, batch))
    }

    /// An events partition's rule state: checkpoint, highest event time and
    /// every pending timer and open duration of a configured rule.
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
        on_backend!(self, load_rules(topic, partition, rules))
    }

    /// Writes a partition's changed rule state and watermark, fenced.
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
        on_backend!(self, flush_rules(topic, partition, batch))
    }
}
