//! The query API's read side of the store: the embedded SQLite file (libSQL)
//! or a ScyllaDB cluster, behind one [`ReadStore`] whose answers are the same
//! in both (rows, order, paging).
//!
//! - `sqlite`: SQL over the tables of [`schemas::sql`].
//! - `scylla`: prepared CQL over the query-first tables of [`schemas::cql`];
//!   every read names a full partition key.
//! - `listings`: the filters and rows of the paged listings ([`EventFilter`],
//!   [`StoredEvent`], [`ErrorFilter`], [`StoredError`]).
//! - [`bounds`]: what a read asks for (time range, page, position); the
//!   store takes them and never parses HTTP parameters itself.

pub mod bounds;
mod listings;
mod scylla;
mod sqlite;

use std::path::PathBuf;
use std::sync::Arc;

use chrono::NaiveDate;
use schemas::store::StoreLocation;
use thiserror::Error;
use uuid::Uuid;

pub use listings::{ErrorFilter, EventFilter, StoredError, StoredEvent};

use self::bounds::{Page, Position, TimeRange};
use self::scylla::ScyllaStore;
use self::sqlite::SqliteStore;
use processor::sketch::Sketch;

use crate::stats::{DayClicks, GroupBy, ReportLine};

/// Why the store could not answer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database file could not be opened.
    #[error("opening store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// A query failed.
    #[error("store query failed: {0}")]
    Query(#[from] libsql::Error),
    /// The ScyllaDB cluster could not be reached, or its keyspace is missing.
    #[error(transparent)]
    Connect(#[from] schemas::cql::CqlError),
    /// A CQL statement failed, or returned rows of an unexpected shape.
    #[error("{during}: {reason}")]
    Cql {
        during: &'static str,
        reason: String,
    },
    /// The request is one this store cannot answer as asked (a range wider
    /// than the partitions it may read, a cursor it never returned): the
    /// client should change `parameter` (400, not 503).
    #[error("invalid parameter `{parameter}`: {message}")]
    Unanswerable {
        parameter: &'static str,
        message: String,
    },
    /// A stored value is not what the processor writes (a visitor sketch
    /// that does not decode).
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// How many events of one type were stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct EventTypeCount {
    pub category: String,
    pub name: String,
    pub events: i64,
    /// False when no JSON Schema exists for the type.
    pub known: bool,
}

/// One stored notification.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct StoredNotification {
    pub id: String,
    pub user_id: String,
    pub rule: String,
    pub message: String,
    pub device_id: Option<String>,
    /// Event time the rule fired at (RFC 3339).
    pub occurred_at: String,
    /// Processing time it fired at (RFC 3339).
    pub fired_at: String,
    pub trigger_event_id: String,
    pub late_by_seconds: f64,
    pub data: serde_json::Value,
    #[serde(skip)]
    pub position: Position,
}

/// The store, read side, on whichever backend it was opened. Cheap to clone.
/// Clicks counted apart from people's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Apart {
    /// Crawlers and automation.
    Bots,
    /// Link-preview fetchers and `HEAD` requests.
    Previews,
}

#[derive(Debug, Clone)]
pub struct ReadStore {
    backend: Backend,
}

/// The backend a [`ReadStore`] reads.
#[derive(Debug, Clone)]
enum Backend {
    Sqlite(SqliteStore),
    /// Shared: a session holds the cluster's connection pools.
    Scylla(Arc<ScyllaStore>),
}

impl ReadStore {
    /// Opens the store: the SQLite file (creating the tables if the
    /// processor has not yet), or a session to the ScyllaDB keyspace with
    /// every statement prepared.
    ///
    /// # Errors
    ///
    /// [`StoreError::Open`] if the file cannot be opened,
    /// [`StoreError::Connect`] if no contact point answers or the keyspace is
    /// missing, [`StoreError::Cql`] if a statement cannot be prepared (a
    /// table missing: run `eventide migrate`).
    pub async fn open(location: &StoreLocation) -> Result<Self, StoreError> {
        let backend = match location {
            StoreLocation::Sqlite(path) => Backend::Sqlite(SqliteStore::open(path).await?),
            StoreLocation::Scylla(location) => {
                Backend::Scylla(Arc::new(ScyllaStore::open(location).await?))
            }
            StoreLocation::Cql(executor) => {
                Backend::Scylla(Arc::new(ScyllaStore::with_executor(executor.0.clone())))
            }
        };
        Ok(Self { backend })
    }

    /// The stored total of a counter; 0 for a key never incremented.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails.
    pub async fn counter(&self, key: Uuid) -> Result<i64, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.counter(key).await,
            Backend::Scylla(store) => store.counter(key).await,
        }
    }

    /// Events per (category, name), summed over the partitions' rows, most
    /// frequent first; `known` is false for types with no JSON Schema.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails.
    pub async fn event_types(&self) -> Result<Vec<EventTypeCount>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.event_types().await,
            Backend::Scylla(store) => store.event_types().await,
        }
    }

    /// A user's notifications in (time, id) order, one page plus one row
    /// (so the caller knows whether another page follows).
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails.
    pub async fn notifications(
        &self,
        user_id: &str,
        page: &Page,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.notifications(user_id, page).await,
            Backend::Scylla(store) => store.notifications(user_id, page).await,
        }
    }

    /// Whether the store answers at all.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.ping().await,
            Backend::Scylla(store) => store.ping().await,
        }
    }

    /// Events matching `filter` in `range`, one page plus one row.
    ///
    /// On ScyllaDB a listing by category reads one partition per UTC day and
    /// a listing by time alone one per UTC hour: an open `to` ends a day past
    /// now, an open `from` starts the walk `MAX_DAYS` (366) days or
    /// `MAX_HOURS` (744) hours before `to`, and a wider explicit range is
    /// refused ([`StoreError::Unanswerable`]); see `store/scylla/buckets.rs`.
    /// A listing by session reads its one partition, whatever the range.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unanswerable`] for such a range or a foreign cursor,
    /// else [`StoreError`] if a read fails.
    pub async fn events(
        &self,
        filter: &EventFilter<'_>,
        range: TimeRange,
        page: &Page,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.events(filter, range, page).await,
            Backend::Scylla(store) => store.events(filter, range, page).await,
        }
    }

    /// Rejects and dead letters matching `filter` in `range`, one page plus
    /// one row.
    ///
    /// On ScyllaDB this reads one partition per kind and UTC day, within the
    /// same bounds as a listing of events by category.
    ///
    /// # Errors
    ///
    /// [`StoreError::Unanswerable`] for too wide a range on ScyllaDB, else
    /// [`StoreError`] if a read fails.
    pub async fn errors(
        &self,
        filter: &ErrorFilter<'_>,
        range: TimeRange,
        page: &Page,
    ) -> Result<Vec<StoredError>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.errors(filter, range, page).await,
            Backend::Scylla(store) => store.errors(filter, range, page).await,
        }
    }

    /// Human clicks of `short_code` per day (and group) from `from` to `to`
    /// inclusive, in day order.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails.
    pub async fn link_clicks(
        &self,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
        group_by: Option<GroupBy>,
    ) -> Result<Vec<DayClicks>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.link_clicks(short_code, from, to, group_by).await,
            Backend::Scylla(store) => store.link_clicks(short_code, from, to, group_by).await,
        }
    }

    /// Bot and crawler clicks, or link previews, of `short_code` per day,
    /// in day order.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails.
    pub async fn apart_clicks(
        &self,
        apart: Apart,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.apart_clicks(apart, short_code, from, to).await,
            Backend::Scylla(store) => store.apart_clicks(apart, short_code, from, to).await,
        }
    }

    /// The visitor sketches of `short_code` per day, in day order.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails or a stored sketch is corrupt.
    pub async fn visitor_sketches(
        &self,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, Sketch)>, StoreError> {
        let rows = match &self.backend {
            Backend::Sqlite(store) => store.visitor_sketches(short_code, from, to).await?,
            Backend::Scylla(store) => store.visitor_sketches(short_code, from, to).await?,
        };
        rows.into_iter()
            .map(|(day, bytes)| {
                Sketch::from_bytes(&bytes)
                    .map(|sketch| (day, sketch))
                    .map_err(|err| StoreError::Corrupt(format!("{short_code}: {err}")))
            })
            .collect()
    }

    /// A client's human clicks per short code in `month` (`YYYY-MM`), most
    /// clicked first.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails.
    pub async fn client_report(
        &self,
        client_id: i64,
        month: &str,
    ) -> Result<Vec<ReportLine>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.client_report(client_id, month).await,
            Backend::Scylla(store) => store.client_report(client_id, month).await,
        }
    }

    /// The processing time up to which every reported partition of the
    /// logical `topic` was processed and stored (their minimum), if any was.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the read fails.
    pub async fn as_of(&self, topic: &str) -> Result<Option<i64>, StoreError> {
        match &self.backend {
            Backend::Sqlite(store) => store.as_of(topic).await,
            Backend::Scylla(store) => store.as_of(topic).await,
        }
    }
}
