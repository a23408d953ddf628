//! The processor's write side of the embedded store (SQLite through libSQL).
//!
//! A flush writes a partition's changed totals and its checkpoint in one
//! transaction, fenced on the checkpoint it expects: if another processor
//! moved the partition on meanwhile (a rebalance), nothing is written and the
//! caller reloads. Together with per-row offsets this keeps totals exact
//! across crashes, restarts and rebalances.

use std::path::{Path, PathBuf};

use libsql::{Connection, Database, params};
use schemas::sql::{SQLITE_DDL, SQLITE_PRAGMAS};
use thiserror::Error;
use uuid::Uuid;

use crate::counters::{FlushBatch, PartitionCounters, Total};

/// Why the store could not be used.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The database file could not be opened or created.
    #[error("opening store at {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    /// A statement failed.
    #[error("store query failed: {0}")]
    Query(#[from] libsql::Error),
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

/// The embedded store, write side.
pub struct Store {
    /// Kept so the connection's database stays open.
    _db: Database,
    conn: Connection,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating if needed) the store file and applies the schema.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if the file cannot be opened or the DDL fails.
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
        Ok(Self { _db: db, conn })
    }

    /// The stored state of one increments partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or a row is corrupt.
    pub async fn load_counters(
        &self,
        topic: &str,
        partition: i32,
    ) -> Result<PartitionCounters, StoreError> {
        let next_offset = self.checkpoint(topic, partition).await?.unwrap_or(0);
        let mut rows = self
            .conn
            .query(
                "SELECT key, value, through_offset FROM counters WHERE partition = ?1",
                params![partition],
            )
            .await?;
        let mut totals = Vec::new();
        while let Some(row) = rows.next().await? {
            let key: String = row.get(0)?;
            let key = Uuid::try_parse(&key)
                .map_err(|err| StoreError::Corrupt(format!("counter key {key}: {err}")))?;
            totals.push((
                key,
                Total {
                    value: row.get(1)?,
                    through_offset: row.get(2)?,
                },
            ));
        }
        Ok(PartitionCounters::restore(next_offset, totals))
    }

    /// The stored next offset of a partition, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    pub async fn checkpoint(&self, topic: &str, partition: i32) -> Result<Option<i64>, StoreError> {
        let mut rows = self
            .conn
            .query(
                "SELECT next_offset FROM partition_checkpoints WHERE topic = ?1 AND partition = ?2",
                params![topic, partition],
            )
            .await?;
        match rows.next().await? {
            Some(row) => Ok(Some(row.get(0)?)),
            None => Ok(None),
        }
    }

    /// Writes `batch` for `partition` in one transaction, fenced on its
    /// expected checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the transaction is then rolled back.
    pub async fn flush_counters(
        &self,
        topic: &str,
        partition: i32,
        batch: &FlushBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let now = schemas::time::now_micros();
        let tx = self.conn.transaction().await?;
        let moved = if batch.expected_next_offset == 0 {
            tx.execute(
                "INSERT INTO partition_checkpoints (topic, partition, next_offset, updated_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at
                 WHERE partition_checkpoints.next_offset = 0",
                params![topic, partition, batch.next_offset, now],
            )
            .await?
        } else {
            tx.execute(
                "UPDATE partition_checkpoints SET next_offset = ?3, updated_at = ?4
                 WHERE topic = ?1 AND partition = ?2 AND next_offset = ?5",
                params![
                    topic,
                    partition,
                    batch.next_offset,
                    now,
                    batch.expected_next_offset
                ],
            )
            .await?
        };
        if moved == 0 {
            tx.rollback().await?;
            return Ok(FlushOutcome::Fenced);
        }
        let upsert = tx
            .prepare(
                "INSERT INTO counters (key, value, partition, through_offset, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, partition = excluded.partition,
                     through_offset = excluded.through_offset, updated_at = excluded.updated_at",
            )
            .await?;
        for (key, total) in &batch.rows {
            upsert
                .execute(params![
                    key.hyphenated().to_string(),
                    total.value,
                    partition,
                    total.through_offset,
                    now
                ])
                .await?;
            upsert.reset();
        }
        tx.commit().await?;
        Ok(FlushOutcome::Written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("store.db"))
            .await
            .expect("opens");
        (dir, store)
    }

    #[tokio::test]
    async fn flushed_totals_come_back_on_load() {
        let (_dir, store) = temp_store().await;
        let key = Uuid::new_v4();
        let mut counters = store.load_counters("inc", 3).await.expect("loads");
        counters.apply(0, key, 3);
        counters.apply(1, key, 4);
        let batch = counters.flush_batch();
        assert_eq!(
            store.flush_counters("inc", 3, &batch).await.expect("flush"),
            FlushOutcome::Written
        );
        counters.flushed(&batch);
        counters.apply(2, key, 5);
        let batch = counters.flush_batch();
        assert_eq!(
            store.flush_counters("inc", 3, &batch).await.expect("flush"),
            FlushOutcome::Written
        );

        let loaded = store.load_counters("inc", 3).await.expect("loads");
        assert_eq!(loaded.next_offset(), 3);
        assert_eq!(
            loaded.total(&key),
            Some(Total {
                value: 12,
                through_offset: 2
            })
        );
        assert!(
            store
                .load_counters("inc", 4)
                .await
                .expect("loads")
                .total(&key)
                .is_none()
        );
    }

    #[tokio::test]
    async fn a_stale_owner_is_fenced_off() {
        let (_dir, store) = temp_store().await;
        let key = Uuid::new_v4();
        let mut owner = store.load_counters("inc", 0).await.expect("loads");
        let mut zombie = store.load_counters("inc", 0).await.expect("loads");
        owner.apply(0, key, 1);
        zombie.apply(0, key, 1);
        assert_eq!(
            store
                .flush_counters("inc", 0, &owner.flush_batch())
                .await
                .expect("flush"),
            FlushOutcome::Written
        );
        assert_eq!(
            store
                .flush_counters("inc", 0, &zombie.flush_batch())
                .await
                .expect("flush"),
            FlushOutcome::Fenced
        );
        let loaded = store.load_counters("inc", 0).await.expect("loads");
        assert_eq!(loaded.total(&key).map(|t| t.value), Some(1));
    }
}
