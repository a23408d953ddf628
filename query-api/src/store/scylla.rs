//! The read side on ScyllaDB: prepared CQL over the query-first tables of
//! `schemas/cql/`, each read naming a full partition key, answering exactly
//! what the SQLite side answers (rows, order, paging).
//!
//! - [`statements`]: every CQL text, prepared once at open.
//! - [`buckets`]: the UTC days and hours a listing walks, and its bounds.
//! - [`listings`]: events, the error log and notifications, paged.
//! - [`scan`]: reading one partition of a listing, request by request.
//! - [`rows`]: the rows listings read, decoded into answers.
//! - [`stats`]: click series, client reports, freshness.

mod buckets;
mod listings;
mod rows;
mod scan;
mod statements;
mod stats;

use std::sync::Arc;

use schemas::cql::layout::EVENT_TYPES_SCOPE;
use schemas::cql::{Bound, CqlExecutor, FromCqlRow, SessionExecutor};
use schemas::store::ScyllaLocation;
use uuid::Uuid;

use self::statements as s;
use crate::store::{EventTypeCount, StoreError};

/// The read side over an executor of its statements (a driver session, or
/// the simulation's tables).
#[derive(Debug)]
pub(crate) struct ScyllaStore {
    executor: Arc<dyn CqlExecutor>,
}

impl ScyllaStore {
    /// Connects to the keyspace and prepares every statement.
    ///
    /// # Errors
    ///
    /// [`StoreError::Connect`] if no contact point answers or the keyspace is
    /// missing, [`StoreError::Cql`] if a statement cannot be prepared (run
    /// `eventide migrate`).
    pub(crate) async fn open(location: &ScyllaLocation) -> Result<Self, StoreError> {
        let session = schemas::cql::connect(location).await?;
        let executor = SessionExecutor::prepare(session, s::ALL, location.consistencies)
            .await
            .map_err(|err| StoreError::Cql {
                during: "preparing the read statements",
                reason: err.to_string(),
            })?;
        tracing::info!(
            contact_points = %location.contact_points.join(","),
            keyspace = %location.keyspace,
            datacenter = location.datacenter.as_deref().unwrap_or("any"),
            "query API reads ScyllaDB"
        );
        Ok(Self::with_executor(Arc::new(executor)))
    }

    /// The read side over any executor of its statements.
    pub(crate) fn with_executor(executor: Arc<dyn CqlExecutor>) -> Self {
        Self { executor }
    }

    /// Every row a bound statement selects (all pages), decoded as `R` (a
    /// tuple of the selected columns).
    ///
    /// # Errors
    ///
    /// [`StoreError::Cql`] if the statement fails or a row does not decode
    /// as `R` (a null where a value is required, a column of another type).
    async fn select<R: FromCqlRow>(&self, bound: Bound) -> Result<Vec<R>, StoreError> {
        let during = bound.statement.name;
        let failed = |reason: String| StoreError::Cql { during, reason };
        let rows = self
            .executor
            .execute(bound)
            .await
            .map_err(|err| failed(err.reason))?;
        rows.into_iter()
            .map(|row| R::from_row(row).map_err(failed))
            .collect()
    }

    /// The stored total of a counter; 0 for a key never incremented.
    pub(crate) async fn counter(&self, key: Uuid) -> Result<i64, StoreError> {
        let rows: Vec<(i64,)> = self.select(s::counter(key)).await?;
        Ok(rows.first().map_or(0, |(value,)| *value))
    }

    /// Events per (category, name), summed over the partitions' rows, most
    /// frequent first.
    pub(crate) async fn event_types(&self) -> Result<Vec<EventTypeCount>, StoreError> {
        let rows: Vec<(String, String, i64, bool)> =
            self.select(s::event_types(EVENT_TYPES_SCOPE)).await?;
        Ok(stats::sum_event_types(rows))
    }

    /// Whether the cluster answers at all.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let _: Vec<(String,)> = self.select(s::ping()).await?;
        Ok(())
    }

    /// The minimum `as_of` over the logical `topic`'s partitions, if any.
    pub(crate) async fn as_of(&self, topic: &str) -> Result<Option<i64>, StoreError> {
        let rows: Vec<(i64,)> = self.select(s::progress(topic)).await?;
        Ok(rows.into_iter().map(|(as_of,)| as_of).min())
    }
}
