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

use schemas::store::ScyllaLocation;
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::{PagingState, PagingStateResponse};
use scylla::serialize::row::SerializeRow;
use uuid::Uuid;

use self::statements::{Prepared, Statements};
use crate::store::{EventTypeCount, StoreError};

/// The `scope` of `event_type_counts`' one partition.
const EVENT_TYPES_SCOPE: &str = "all";

/// A session to the keyspace with every statement prepared.
#[derive(Debug)]
pub(crate) struct ScyllaStore {
    session: Session,
    statements: Statements,
}

impl ScyllaStore {
    /// Connects to the keyspace and prepares every statement.
    ///
    /// # Errors
    ///
    /// [`StoreError::Connect`] if no contact point answers or the keyspace is
    /// missing, [`StoreError::Cql`] if a statement cannot be prepared.
    pub(crate) async fn open(location: &ScyllaLocation) -> Result<Self, StoreError> {
        let session = schemas::cql::connect(location).await?;
        let statements = Statements::prepare(&session).await?;
        tracing::info!(
            contact_points = %location.contact_points.join(","),
            keyspace = %location.keyspace,
            datacenter = location.datacenter.as_deref().unwrap_or("any"),
            "query API reads ScyllaDB"
        );
        Ok(Self {
            session,
            statements,
        })
    }

    /// Every row `statement` selects with `values`, page after page, decoded
    /// as `R` (a tuple of the selected columns).
    ///
    /// # Errors
    ///
    /// [`StoreError::Cql`] if a page cannot be read or a row does not decode
    /// as `R` (a null where a value is required, a column of another type).
    async fn select<R>(
        &self,
        statement: &Prepared,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'frame> DeserializeRow<'frame, 'frame>,
    {
        let failed = |err: &dyn std::fmt::Display| StoreError::Cql {
            during: statement.during,
            reason: err.to_string(),
        };
        let mut found = Vec::new();
        let mut paging = PagingState::start();
        loop {
            let (result, next) = self
                .session
                .execute_single_page(&statement.statement, &values, paging)
                .await
                .map_err(|err| failed(&err))?;
            let rows = result.into_rows_result().map_err(|err| failed(&err))?;
            for row in rows.rows::<R>().map_err(|err| failed(&err))? {
                found.push(row.map_err(|err| failed(&err))?);
            }
            match next {
                PagingStateResponse::HasMorePages { state } => paging = state,
                PagingStateResponse::NoMorePages => return Ok(found),
            }
        }
    }

    /// The stored total of a counter; 0 for a key never incremented.
    pub(crate) async fn counter(&self, key: Uuid) -> Result<i64, StoreError> {
        let rows: Vec<(i64,)> = self.select(&self.statements.counter, (key,)).await?;
        Ok(rows.first().map_or(0, |(value,)| *value))
    }

    /// Events per (category, name), summed over the partitions' rows, most
    /// frequent first.
    pub(crate) async fn event_types(&self) -> Result<Vec<EventTypeCount>, StoreError> {
        let rows: Vec<(String, String, i64, bool)> = self
            .select(&self.statements.event_types, (EVENT_TYPES_SCOPE,))
            .await?;
        Ok(stats::sum_event_types(rows))
    }

    /// Whether the cluster answers at all.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        let _: Vec<(String,)> = self.select(&self.statements.ping, ()).await?;
        Ok(())
    }

    /// The minimum `as_of` over the logical `topic`'s partitions, if any.
    pub(crate) async fn as_of(&self, topic: &str) -> Result<Option<i64>, StoreError> {
        let rows: Vec<(i64,)> = self.select(&self.statements.progress, (topic,)).await?;
        Ok(rows.into_iter().map(|(as_of,)| as_of).min())
    }
}
