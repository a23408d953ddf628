//! The query API's read side of the embedded store (SQLite through libSQL).

use std::path::{Path, PathBuf};

use libsql::{Connection, Database, params};
use schemas::sql::{SQLITE_DDL, SQLITE_PRAGMAS};
use thiserror::Error;
use uuid::Uuid;

/// Why the store could not answer.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database file could not be opened.
    #[error("opening store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// A query failed.
    #[error("store query failed: {0}")]
    Query(#[from] libsql::Error),
}

/// How many events of one type were stored.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EventTypeCount {
    pub category: String,
    pub name: String,
    pub events: i64,
    /// False when no JSON Schema exists for the type.
    pub known: bool,
}

/// The embedded store, read side. Cheap to clone.
#[derive(Clone)]
pub struct ReadStore {
    _db: std::sync::Arc<Database>,
    conn: Connection,
}

impl std::fmt::Debug for ReadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadStore").finish_non_exhaustive()
    }
}

impl ReadStore {
    /// Opens the store file, creating the tables if the processor has not yet.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the file cannot be opened.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let open_error = |reason: String| StoreError::Open {
            path: path.to_path_buf(),
            reason,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| open_error(err.to_string()))?;
        }
        let db = libsql::Builder::new_local(path)
            .build()
            .await
            .map_err(|err| open_error(err.to_string()))?;
        let conn = db.connect().map_err(|err| open_error(err.to_string()))?;
        conn.execute_batch(SQLITE_PRAGMAS).await?;
        for ddl in SQLITE_DDL {
            conn.execute(ddl, ()).await?;
        }
        Ok(Self {
            _db: std::sync::Arc::new(db),
            conn,
        })
    }

    /// The stored total of a counter; 0 for a key never incremented.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub async fn counter(&self, key: Uuid) -> Result<i64, StoreError> {
        let mut rows = self
            .conn
            .query(
                "SELECT value FROM counters WHERE key = ?1",
                params![key.hyphenated().to_string()],
            )
            .await?;
        match rows.next().await? {
            Some(row) => Ok(row.get(0)?),
            None => Ok(0),
        }
    }

    /// Events per (category, name), summed over the partitions' rows, most
    /// frequent first; `known` is false for types with no JSON Schema.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub async fn event_types(&self) -> Result<Vec<EventTypeCount>, StoreError> {
        let mut rows = self
            .conn
            .query(
                "SELECT category, name, SUM(events), MAX(known_type) FROM event_type_counts
                 GROUP BY category, name ORDER BY SUM(events) DESC, category, name",
                (),
            )
            .await?;
        let mut counts = Vec::new();
        while let Some(row) = rows.next().await? {
            counts.push(EventTypeCount {
                category: row.get(0)?,
                name: row.get(1)?,
                events: row.get(2)?,
                known: row.get::<i64>(3)? != 0,
            });
        }
        Ok(counts)
    }

    /// Whether the store answers at all.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if it does not.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.conn.query("SELECT 1", ()).await?;
        Ok(())
    }
}
