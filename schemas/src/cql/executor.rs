//! The seam between a store's protocol and a cluster: executing one
//! prepared statement. [`SessionExecutor`] is the real one (the `scylla`
//! driver); the simulation (`cql-sim`) runs the same statements over
//! in-memory tables with ScyllaDB's semantics.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

use futures::TryStreamExt;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::Row;
use thiserror::Error;

use super::bind::{Bound, CqlRow, Statement};

/// The future of one execution.
pub type Execution<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<CqlRow>, ExecuteError>> + Send + 'a>>;

/// Why a statement did not run (or may not have: a timeout leaves a write's
/// fate unknown, and the caller must treat it as maybe applied).
#[derive(Debug, Clone, Error)]
#[error("{statement}: {reason}")]
pub struct ExecuteError {
    /// The statement's name.
    pub statement: &'static str,
    pub reason: String,
}

/// Executes prepared statements.
pub trait CqlExecutor: Send + Sync + fmt::Debug {
    /// Runs one bound statement and returns every row it answers (all
    /// pages; for a lightweight transaction, the `[applied]` row).
    fn execute(&self, bound: Bound) -> Execution<'_>;
}

/// The consistency levels statements run at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consistencies {
    /// Plain reads and writes.
    pub regular: Consistency,
    /// The Paxos phase of lightweight transactions.
    pub serial: SerialConsistency,
}

/// A consistency level by its CQL name (`LOCAL_QUORUM`, `quorum`, ...).
///
/// # Errors
///
/// The names accepted, when `name` is none of them.
pub fn parse_consistency(name: &str) -> Result<Consistency, String> {
    Ok(match name.to_ascii_uppercase().replace('-', "_").as_str() {
        "ANY" => Consistency::Any,
        "ONE" => Consistency::One,
        "TWO" => Consistency::Two,
        "THREE" => Consistency::Three,
        "QUORUM" => Consistency::Quorum,
        "ALL" => Consistency::All,
        "LOCAL_QUORUM" => Consistency::LocalQuorum,
        "EACH_QUORUM" => Consistency::EachQuorum,
        "LOCAL_ONE" => Consistency::LocalOne,
        _ => {
            return Err(format!(
                "{name:?} is not a consistency level (ONE, TWO, THREE, QUORUM, ALL, LOCAL_QUORUM, EACH_QUORUM, LOCAL_ONE, ANY)"
            ));
        }
    })
}

/// A serial consistency level by its CQL name (`LOCAL_SERIAL`, `SERIAL`).
///
/// # Errors
///
/// The names accepted, when `name` is neither.
pub fn parse_serial_consistency(name: &str) -> Result<SerialConsistency, String> {
    match name.to_ascii_uppercase().replace('-', "_").as_str() {
        "SERIAL" => Ok(SerialConsistency::Serial),
        "LOCAL_SERIAL" => Ok(SerialConsistency::LocalSerial),
        _ => Err(format!(
            "{name:?} is not a serial consistency level (SERIAL, LOCAL_SERIAL)"
        )),
    }
}

impl Default for Consistencies {
    fn default() -> Self {
        Self {
            regular: Consistency::LocalQuorum,
            serial: SerialConsistency::LocalSerial,
        }
    }
}

/// Statements prepared on a `scylla` session.
pub struct SessionExecutor {
    session: Session,
    prepared: HashMap<&'static str, PreparedStatement>,
}

impl fmt::Debug for SessionExecutor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionExecutor")
            .field("statements", &self.prepared.len())
            .finish_non_exhaustive()
    }
}

impl SessionExecutor {
    /// Prepares every statement on `session`, at `consistencies`; only
    /// statements that are safe to repeat are marked idempotent (so the
    /// driver may retry them after a timeout).
    ///
    /// # Errors
    ///
    /// [`ExecuteError`] naming the first statement that did not prepare (a
    /// table or column missing: run `eventide migrate`).
    pub async fn prepare(
        session: Session,
        statements: &[&'static Statement],
        consistencies: Consistencies,
    ) -> Result<Self, ExecuteError> {
        let mut prepared = HashMap::with_capacity(statements.len());
        for statement in statements {
            let mut ready = session
                .prepare(statement.cql)
                .await
                .map_err(|err| ExecuteError {
                    statement: statement.name,
                    reason: format!("preparing (run `eventide migrate` first): {err}"),
                })?;
            ready.set_is_idempotent(statement.is_idempotent());
            ready.set_consistency(consistencies.regular);
            ready.set_serial_consistency(Some(consistencies.serial));
            if prepared.insert(statement.name, ready).is_some() {
                return Err(ExecuteError {
                    statement: statement.name,
                    reason: "declared twice".into(),
                });
            }
        }
        Ok(Self { session, prepared })
    }

    async fn run(&self, bound: Bound) -> Result<Vec<CqlRow>, ExecuteError> {
        let name = bound.statement.name;
        let failed = |err: &dyn fmt::Display| ExecuteError {
            statement: name,
            reason: err.to_string(),
        };
        let prepared = self
            .prepared
            .get(name)
            .ok_or_else(|| failed(&"not prepared"))?;
        if bound.statement.is_read() {
            let pager = self
                .session
                .execute_iter(prepared.clone(), bound.values)
                .await
                .map_err(|err| failed(&err))?;
            let rows: Vec<Row> = pager
                .rows_stream::<Row>()
                .map_err(|err| failed(&err))?
                .try_collect()
                .await
                .map_err(|err| failed(&err))?;
            return Ok(rows.into_iter().map(|row| row.columns).collect());
        }
        let result = self
            .session
            .execute_unpaged(prepared, bound.values)
            .await
            .map_err(|err| failed(&err))?;
        if !result.is_rows() {
            return Ok(Vec::new());
        }
        let rows = result.into_rows_result().map_err(|err| failed(&err))?;
        rows.rows::<Row>()
            .map_err(|err| failed(&err))?
            .map(|row| row.map(|row| row.columns).map_err(|err| failed(&err)))
            .collect()
    }
}

impl CqlExecutor for SessionExecutor {
    fn execute(&self, bound: Bound) -> Execution<'_> {
        Box::pin(self.run(bound))
    }
}
