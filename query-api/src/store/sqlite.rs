//! The read side on the embedded store (SQLite through libSQL): one file,
//! several WAL reader connections.

mod listings;
mod stats;

use std::path::Path;

use libsql::{Connection, Database, params};
use schemas::sql::SQLITE_PRAGMAS;
use uuid::Uuid;

use super::{EventTypeCount, StoreError, StoredNotification};
use crate::store::bounds::{Page, Position, rfc3339};

/// The embedded store, read side. Cheap to clone.
#[derive(Clone)]
pub(crate) struct SqliteStore {
    _db: std::sync::Arc<Database>,
    /// Several connections, so reads run side by side (WAL readers never
    /// block each other or the processor's writes).
    conns: std::sync::Arc<[Connection]>,
    next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// How many connections the query API reads through.
const READ_CONNECTIONS: usize = 4;

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the store file, creating the tables if the processor has not yet.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the file cannot be opened.
    pub(crate) async fn open(path: &Path) -> Result<Self, StoreError> {
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
        let mut conns = Vec::with_capacity(READ_CONNECTIONS);
        for _ in 0..READ_CONNECTIONS {
            let conn = db.connect().map_err(|err| open_error(err.to_string()))?;
            conn.execute_batch(SQLITE_PRAGMAS).await?;
            conns.push(conn);
        }
        processor::store::apply_sqlite_ddl(&conns[0]).await?;
        Ok(Self {
            _db: std::sync::Arc::new(db),
            conns: conns.into(),
            next: std::sync::Arc::default(),
        })
    }

    /// The next connection, round robin.
    fn conn(&self) -> &Connection {
        let i = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        &self.conns[i % self.conns.len()]
    }

    /// The stored total of a counter; 0 for a key never incremented.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn counter(&self, key: Uuid) -> Result<i64, StoreError> {
        let mut rows = self
            .conn()
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
    pub(crate) async fn event_types(&self) -> Result<Vec<EventTypeCount>, StoreError> {
        let mut rows = self
            .conn()
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

    /// A user's notifications in (time, id) order, one page plus one row
    /// (so the caller knows whether another page follows).
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn notifications(
        &self,
        user_id: &str,
        page: &Page,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let (after_time, after_id) = page
            .after
            .as_ref()
            .map_or((i64::MIN, String::new()), |p| (p.time, p.id.clone()));
        let mut rows = self
            .conn()
            .query(
                "SELECT notification_id, user_id, rule, message, device_id, occurred_at, received_at,
                        trigger_event_id, late_by_micros, data
                 FROM notifications
                 WHERE user_id = ?1 AND (occurred_at, notification_id) > (?2, ?3)
                 ORDER BY occurred_at, notification_id LIMIT ?4",
                params![user_id, after_time, after_id, i64::from(page.limit) + 1],
            )
            .await?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().await? {
            let id: String = row.get(0)?;
            let occurred_at: i64 = row.get(5)?;
            let data: String = row.get(9)?;
            #[expect(clippy::cast_precision_loss, reason = "seconds for display")]
            let late_by_seconds = row.get::<i64>(8)? as f64 / 1e6;
            found.push(StoredNotification {
                position: Position {
                    time: occurred_at,
                    id: id.clone(),
                },
                id,
                user_id: row.get(1)?,
                rule: row.get(2)?,
                message: row.get(3)?,
                device_id: row.get(4)?,
                occurred_at: rfc3339(occurred_at),
                fired_at: rfc3339(row.get(6)?),
                trigger_event_id: row.get(7)?,
                late_by_seconds,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
            });
        }
        Ok(found)
    }

    /// Whether the store answers at all.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if it does not.
    pub(crate) async fn ping(&self) -> Result<(), StoreError> {
        self.conn().query("SELECT 1", ()).await?;
        Ok(())
    }
}
