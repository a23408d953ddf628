//! The processor's write side of the embedded store (SQLite through libSQL).
//!
//! A flush writes a partition's changed totals and its checkpoint in one
//! transaction, fenced on the checkpoint it expects: if another processor
//! moved the partition on meanwhile (a rebalance), nothing is written and the
//! caller reloads. Together with per-row offsets this keeps totals exact
//! across crashes, restarts and rebalances.

mod dedup;
mod notifications;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use libsql::{Connection, Database, params};
use schemas::sql::{SQLITE_ADDED_COLUMNS, SQLITE_DDL, SQLITE_PRAGMAS};

use crate::clicks::{ClicksBatch, DimensionCount, PartitionClicks, bound};
use crate::counters::{FlushBatch, PartitionCounters};
use crate::event_store::{ErrorRow, ErrorsBatch, EventsBatch, PartitionErrors, PartitionEvents};
use crate::sketch::Sketch;

use super::{FlushOutcome, Keeps, StoreError};

/// The embedded store, write side.
pub struct SqliteStore {
    /// Kept so the connection's database stays open.
    _db: Database,
    conn: Connection,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").finish_non_exhaustive()
    }
}

impl SqliteStore {
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
        apply_ddl(&conn).await?;
        Ok(Self { _db: db, conn })
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
        if partitions.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().await?;
        for (topic, partition) in partitions {
            tx.execute(
                "INSERT INTO partition_progress (topic, partition, as_of) VALUES (?1, ?2, ?3)
                 ON CONFLICT (topic, partition) DO UPDATE SET as_of = MAX(as_of, excluded.as_of)",
                params![*topic, *partition, as_of],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
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
}

/// Moves a partition's checkpoint from `expected` to `next`; false when the
/// stored checkpoint is not `expected` (another processor moved it on).
impl SqliteStore {
    /// Opens a flush's transaction and moves the partition's checkpoint
    /// from `expected` to `next` in it; `None` (rolled back) when the
    /// checkpoint is no longer `expected`: another processor moved it on.
    async fn begin_fenced(
        &self,
        topic: &str,
        partition: i32,
        expected: i64,
        next: i64,
    ) -> Result<Option<libsql::Transaction>, StoreError> {
        let tx = self.conn.transaction().await?;
        if fence(&tx, topic, partition, expected, next).await? {
            Ok(Some(tx))
        } else {
            tx.rollback().await?;
            Ok(None)
        }
    }
}

async fn fence(
    tx: &libsql::Transaction,
    topic: &str,
    partition: i32,
    expected: i64,
    next: i64,
) -> Result<bool, StoreError> {
    let now = schemas::time::now_micros();
    let moved = if expected == 0 {
        tx.execute(
            "INSERT INTO partition_checkpoints (topic, partition, next_offset, updated_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (topic, partition) DO UPDATE SET next_offset = excluded.next_offset, updated_at = excluded.updated_at
             WHERE partition_checkpoints.next_offset = 0",
            params![topic, partition, next, now],
        )
        .await?
    } else {
        tx.execute(
            "UPDATE partition_checkpoints SET next_offset = ?3, updated_at = ?4
             WHERE topic = ?1 AND partition = ?2 AND next_offset = ?5",
            params![topic, partition, next, now, expected],
        )
        .await?
    };
    Ok(moved > 0)
}

async fn stored_value(
    tx: &libsql::Transaction,
    sql: &str,
    keys: impl libsql::params::IntoParams,
) -> Result<i64, StoreError> {
    let mut rows = tx.query(sql, keys).await?;
    match rows.next().await? {
        Some(row) => Ok(row.get(0)?),
        None => Ok(0),
    }
}

impl Keeps<PartitionCounters> for SqliteStore {
    /// The stored checkpoint of an increments partition, as counter state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionCounters, StoreError> {
        Ok(PartitionCounters::restore(
            self.checkpoint(topic, partition).await?.unwrap_or(0),
        ))
    }

    /// Adds `batch` to the stored totals and moves the partition's
    /// checkpoint, in one transaction fenced on the expected checkpoint.
    /// Each total is read and written back as an absolute value with the
    /// offset it includes.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the transaction is rolled back.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &FlushBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let now = schemas::time::now_micros();
        let Some(tx) = self
            .begin_fenced(
                topic,
                partition,
                batch.expected_next_offset,
                batch.next_offset,
            )
            .await?
        else {
            return Ok(FlushOutcome::Fenced);
        };
        for (uuid, added) in &batch.rows {
            let key = uuid.hyphenated().to_string();
            let current = stored_value(
                &tx,
                "SELECT value FROM counters WHERE key = ?1",
                params![key.as_str()],
            )
            .await?;
            let Some(total) = current.checked_add(*added) else {
                let refused = crate::counters::overflow_error(
                    topic,
                    partition,
                    batch.through_offset,
                    *uuid,
                    current,
                    *added,
                );
                insert_error(&tx, &refused).await?;
                continue;
            };
            tx.execute(
                "INSERT INTO counters (key, value, partition, through_offset, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value, partition = excluded.partition,
                     through_offset = excluded.through_offset, updated_at = excluded.updated_at",
                params![key.as_str(), total, partition, batch.through_offset, now],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(FlushOutcome::Written)
    }
}

impl Keeps<PartitionClicks> for SqliteStore {
    /// The stored checkpoint of a redirects partition, as click state.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        max_dimension_values: &usize,
    ) -> Result<PartitionClicks, StoreError> {
        Ok(PartitionClicks::restore(
            self.checkpoint(topic, partition).await?.unwrap_or(0),
            *max_dimension_values,
        ))
    }

    /// Adds `batch` to the stored click rows and moves the partition's
    /// checkpoint, in one transaction fenced on the expected checkpoint.
    /// Each row is read and written back as an absolute value with the
    /// offset it includes.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the transaction is rolled back.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &ClicksBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let Some(tx) = self
            .begin_fenced(
                topic,
                partition,
                batch.expected_next_offset,
                batch.next_offset,
            )
            .await?
        else {
            return Ok(FlushOutcome::Fenced);
        };
        let through = batch.through_offset;
        for (row, added) in &batch.by_day {
            let keys = params![
                row.short_code.as_str(),
                row.day.as_str(),
                row.browser.as_str(),
                row.os.as_str(),
                row.device.as_str()
            ];
            let current = stored_value(&tx, "SELECT clicks FROM clicks_by_day WHERE short_code = ?1 AND day = ?2 AND browser = ?3 AND os = ?4 AND device = ?5", keys).await?;
            tx.execute(
                "INSERT INTO clicks_by_day (short_code, day, browser, os, device, clicks, partition, through_offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
                 ON CONFLICT (short_code, day, browser, os, device) DO UPDATE SET clicks = excluded.clicks, through_offset = excluded.through_offset",
                params![row.short_code.as_str(), row.day.as_str(), row.browser.as_str(), row.os.as_str(), row.device.as_str(), current + added, partition, through],
            )
            .await?;
        }
        for (row, added) in &batch.by_client_month {
            let keys = params![row.client_id, row.month.as_str(), row.short_code.as_str()];
            let current = stored_value(&tx, "SELECT clicks FROM clicks_by_client_month WHERE client_id = ?1 AND month = ?2 AND short_code = ?3", keys).await?;
            tx.execute(
                "INSERT INTO clicks_by_client_month (client_id, month, short_code, clicks, partition, through_offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (client_id, month, short_code) DO UPDATE SET clicks = excluded.clicks, through_offset = excluded.through_offset",
                params![row.client_id, row.month.as_str(), row.short_code.as_str(), current + added, partition, through],
            )
            .await?;
        }
        for (short_code, added) in &batch.by_code {
            let current = stored_value(
                &tx,
                "SELECT clicks FROM clicks_by_code WHERE short_code = ?1",
                params![short_code.as_str()],
            )
            .await?;
            tx.execute(
                "INSERT INTO clicks_by_code (short_code, clicks, partition, through_offset) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (short_code) DO UPDATE SET clicks = excluded.clicks, through_offset = excluded.through_offset",
                params![short_code.as_str(), current + added, partition, through],
            )
            .await?;
        }
        for (table, rows) in [
            ("bot_clicks_by_day", &batch.bots_by_day),
            ("preview_clicks_by_day", &batch.previews_by_day),
        ] {
            for (row, added) in rows {
                let keys = params![row.short_code.as_str(), row.day.as_str()];
                let current = stored_value(
                    &tx,
                    &format!("SELECT clicks FROM {table} WHERE short_code = ?1 AND day = ?2"),
                    keys,
                )
                .await?;
                tx.execute(
                    &format!(
                        "INSERT INTO {table} (short_code, day, clicks, partition, through_offset) VALUES (?1, ?2, ?3, ?4, ?5)
                         ON CONFLICT (short_code, day) DO UPDATE SET clicks = excluded.clicks, through_offset = excluded.through_offset"
                    ),
                    params![row.short_code.as_str(), row.day.as_str(), current + added, partition, through],
                )
                .await?;
            }
        }
        for group in batch.by_dimension.chunk_by(|(a, _), (b, _)| {
            (&a.short_code, &a.day, a.dimension) == (&b.short_code, &b.day, b.dimension)
        }) {
            let Some((first, _)) = group.first() else {
                continue;
            };
            let dimension = first.dimension.as_str();
            let mut rows = tx
                .query(
                    "SELECT value, clicks FROM link_dimensions_by_day WHERE short_code = ?1 AND day = ?2 AND dimension = ?3",
                    params![first.short_code.as_str(), first.day.as_str(), dimension],
                )
                .await?;
            let mut stored: HashMap<String, i64> = HashMap::new();
            while let Some(row) = rows.next().await? {
                stored.insert(row.get(0)?, row.get(1)?);
            }
            let values: Vec<(&str, DimensionCount)> = group
                .iter()
                .map(|(row, count)| (row.value.as_str(), *count))
                .collect();
            let held: HashSet<String> = stored.keys().cloned().collect();
            let cap = first.dimension.cap(batch.max_dimension_values);
            for (value, added) in bound(&values, &held, cap) {
                let current = stored.get(&value).copied().unwrap_or(0);
                tx.execute(
                    "INSERT INTO link_dimensions_by_day (short_code, day, dimension, value, clicks, partition, through_offset)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT (short_code, day, dimension, value) DO UPDATE SET clicks = excluded.clicks, through_offset = excluded.through_offset",
                    params![first.short_code.as_str(), first.day.as_str(), dimension, value, current + added, partition, through],
                )
                .await?;
            }
        }
        for (row, sketch) in &batch.visitors_by_day {
            let mut rows = tx
                .query(
                    "SELECT sketch FROM link_visitors_by_day WHERE short_code = ?1 AND day = ?2",
                    params![row.short_code.as_str(), row.day.as_str()],
                )
                .await?;
            let mut merged = match rows.next().await? {
                Some(stored) => Sketch::from_bytes(&stored.get::<Vec<u8>>(0)?).map_err(|err| {
                    StoreError::Corrupt(format!("link_visitors_by_day {}: {err}", row.short_code))
                })?,
                None => Sketch::default(),
            };
            merged.merge(sketch);
            tx.execute(
                "INSERT INTO link_visitors_by_day (short_code, day, sketch, partition, through_offset) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (short_code, day) DO UPDATE SET sketch = excluded.sketch, through_offset = excluded.through_offset",
                params![row.short_code.as_str(), row.day.as_str(), merged.to_bytes(), partition, through],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(FlushOutcome::Written)
    }
}

impl Keeps<PartitionEvents> for SqliteStore {
    /// The stored checkpoint of an events partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionEvents, StoreError> {
        Ok(PartitionEvents::restore(
            self.checkpoint(topic, partition).await?.unwrap_or(0),
        ))
    }

    /// Inserts new events (ignoring ids already stored), adds per-type
    /// counts to the partition's rows, and moves the fenced checkpoint, in
    /// one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the transaction is rolled back.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &EventsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let Some(tx) = self
            .begin_fenced(
                topic,
                partition,
                batch.expected_next_offset,
                batch.next_offset,
            )
            .await?
        else {
            return Ok(FlushOutcome::Fenced);
        };
        let insert = tx
            .prepare(
                "INSERT OR IGNORE INTO events (event_id, session_id, category, name, day, occurred_at, received_at,
                     application_id, data, known_type, user_id, device_id, partition, offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )
            .await?;
        for (offset, event, day) in &batch.events {
            insert
                .execute(params![
                    event.event_id.to_string(),
                    event.session_id.as_str(),
                    event.category.as_str(),
                    event.name.as_str(),
                    day.as_str(),
                    event.occurred_at,
                    event.received_at,
                    event.application_id.as_str(),
                    event.data.as_str(),
                    i64::from(event.known_type),
                    event.user_id.clone(),
                    event.device_id.clone(),
                    partition,
                    *offset
                ])
                .await?;
            insert.reset();
        }
        let through = batch.next_offset - 1;
        for ((category, name), (added, known)) in &batch.type_counts {
            let current = stored_value(
                &tx,
                "SELECT events FROM event_type_counts WHERE category = ?1 AND name = ?2 AND partition = ?3",
                params![category.as_str(), name.as_str(), partition],
            )
            .await?;
            tx.execute(
                "INSERT INTO event_type_counts (category, name, partition, events, known_type, through_offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (category, name, partition) DO UPDATE SET events = excluded.events,
                     known_type = excluded.known_type, through_offset = excluded.through_offset",
                params![category.as_str(), name.as_str(), partition, current + added, i64::from(*known), through],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(FlushOutcome::Written)
    }
}

impl Keeps<PartitionErrors> for SqliteStore {
    /// The stored checkpoint of a rejects or dead-letters partition.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionErrors, StoreError> {
        Ok(PartitionErrors::restore(
            self.checkpoint(topic, partition).await?.unwrap_or(0),
        ))
    }

    /// Inserts new error rows (ignoring ids already stored) and moves the
    /// fenced checkpoint, in one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; the transaction is rolled back.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &ErrorsBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let Some(tx) = self
            .begin_fenced(
                topic,
                partition,
                batch.expected_next_offset,
                batch.next_offset,
            )
            .await?
        else {
            return Ok(FlushOutcome::Fenced);
        };
        for row in &batch.rows {
            insert_error(&tx, row).await?;
        }
        tx.commit().await?;
        Ok(FlushOutcome::Written)
    }
}

/// Creates the tables that are missing and adds the columns a store file
/// made by an older version lacks; idempotent.
///
/// # Errors
///
/// The first statement libSQL refuses.
pub async fn apply_ddl(conn: &Connection) -> Result<(), libsql::Error> {
    for ddl in SQLITE_DDL {
        conn.execute(ddl, ()).await?;
    }
    for (table, column, kind) in SQLITE_ADDED_COLUMNS {
        let mut rows = conn
            .query(
                "SELECT COUNT(*) FROM pragma_table_info(?1) WHERE name = ?2",
                params![*table, *column],
            )
            .await?;
        let present = match rows.next().await? {
            Some(row) => row.get::<i64>(0)? > 0,
            None => false,
        };
        if !present {
            conn.execute(
                &format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"),
                (),
            )
            .await?;
        }
    }
    Ok(())
}

/// Adds `row` to the error log (idempotent by key) in `tx`.
async fn insert_error(tx: &libsql::Transaction, row: &ErrorRow) -> Result<(), StoreError> {
    tx.execute(
        "INSERT OR IGNORE INTO errors (kind, event_id, day, occurred_at, application_id, source, status, field, reason, message, body, replay_run)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            row.kind.as_str(),
            row.event_id.as_str(),
            row.day.as_str(),
            row.occurred_at,
            row.application_id.clone(),
            row.source.as_str(),
            row.status,
            row.field.clone(),
            row.reason.as_str(),
            row.message.as_str(),
            row.body.clone(),
            row.replay_run.clone()
        ],
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Partitioned;
    use crate::store::Stored;
    use uuid::Uuid;

    async fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("opens");
        (dir, store)
    }

    async fn total(store: &SqliteStore, key: Uuid) -> i64 {
        let mut rows = store
            .conn
            .query(
                "SELECT value FROM counters WHERE key = ?1",
                params![key.hyphenated().to_string()],
            )
            .await
            .expect("query");
        match rows.next().await.expect("row") {
            Some(row) => row.get(0).expect("value"),
            None => 0,
        }
    }

    #[tokio::test]
    async fn a_store_file_made_before_a_column_was_added_gets_it_at_open() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("store.db");
        {
            let db = libsql::Builder::new_local(&path).build().await.expect("db");
            let conn = db.connect().expect("conn");
            conn.execute(
                "CREATE TABLE errors (kind TEXT NOT NULL, event_id TEXT NOT NULL, day TEXT NOT NULL,
                 occurred_at INTEGER NOT NULL, application_id TEXT, source TEXT NOT NULL,
                 status INTEGER, field TEXT, reason TEXT NOT NULL, message TEXT NOT NULL,
                 body BLOB NOT NULL, PRIMARY KEY (kind, event_id))",
                (),
            )
            .await
            .expect("old table");
            conn.execute(
                "INSERT INTO errors VALUES ('reject', 'old', '2021-01-01', 1, NULL, '/v1/events', 400, NULL, 'r', 'm', x'')",
                (),
            )
            .await
            .expect("old row");
        }
        for _ in 0..2 {
            let store = SqliteStore::open(&path).await.expect("opens, twice");
            let mut rows = store
                .conn
                .query(
                    "SELECT event_id, replay_run FROM errors ORDER BY event_id",
                    (),
                )
                .await
                .expect("the new column");
            let row = rows.next().await.expect("row").expect("the old row kept");
            assert_eq!(row.get::<String>(0).expect("id"), "old");
            assert_eq!(row.get::<Option<String>>(1).expect("run"), None);
        }
    }

    #[tokio::test]
    async fn applied_keys_come_back_below_the_checkpoint_and_leave_past_the_window() {
        use crate::dedup::Remembered;
        use std::time::Duration;
        let (_dir, store) = temp_store().await;
        let window = Duration::from_secs(3_600);
        let now = schemas::time::now_micros();
        let key = |n: u128, first_offset: i64, received_at: i64| Remembered {
            identity: Uuid::from_u128(n),
            first_offset,
            received_at,
        };
        let hour = 3_600_000_000;
        let keys = [
            key(1, 0, now),
            key(2, 5, now),
            // Received three hours ago: past the window and its margin.
            key(3, 1, now - 3 * hour),
        ];
        store
            .remember("inc", 0, &keys, window)
            .await
            .expect("stored");
        // The same key again (a replay writes it again): one row.
        store
            .remember("inc", 0, &keys[..1], window)
            .await
            .expect("stored");
        store
            .remember("inc", 1, &[key(9, 0, now)], window)
            .await
            .expect("another partition");
        let below_5 = store.remembered("inc", 0, 5, window).await.expect("loads");
        assert_eq!(below_5, [keys[0]], "offset 5 is not below the checkpoint");
        let all = store.remembered("inc", 0, 6, window).await.expect("loads");
        assert_eq!(all.len(), 2, "{all:?}");
        let mut rows = store
            .conn
            .query("SELECT COUNT(*) FROM dedup_keys WHERE partition = 0", ())
            .await
            .expect("count");
        let stored: i64 = rows
            .next()
            .await
            .expect("row")
            .map(|row| row.get(0).expect("count"))
            .unwrap_or_default();
        assert_eq!(stored, 2, "the expired key was deleted");
    }

    #[tokio::test]
    async fn flushes_add_up_and_the_checkpoint_comes_back_on_load() {
        let (_dir, store) = temp_store().await;
        let key = Uuid::new_v4();
        let mut counters = Keeps::<PartitionCounters>::load(&store, "inc", 3, &())
            .await
            .expect("loads");
        counters.apply(0, key, 3);
        counters.apply(1, key, 4);
        let batch = counters.batch();
        assert_eq!(
            Keeps::<PartitionCounters>::flush(&store, "inc", 3, &batch)
                .await
                .expect("flush"),
            FlushOutcome::Written
        );
        counters.flushed(&batch);
        counters.apply(2, key, 5);
        let batch = counters.batch();
        assert_eq!(
            Keeps::<PartitionCounters>::flush(&store, "inc", 3, &batch)
                .await
                .expect("flush"),
            FlushOutcome::Written
        );

        assert_eq!(total(&store, key).await, 12);
        assert_eq!(
            Keeps::<PartitionCounters>::load(&store, "inc", 3, &())
                .await
                .expect("loads")
                .next_offset(),
            3
        );
        assert_eq!(
            Keeps::<PartitionCounters>::load(&store, "inc", 4, &())
                .await
                .expect("loads")
                .next_offset(),
            0
        );
    }

    #[tokio::test]
    async fn a_stale_owner_is_fenced_off() {
        let (_dir, store) = temp_store().await;
        let key = Uuid::new_v4();
        let mut owner = Keeps::<PartitionCounters>::load(&store, "inc", 0, &())
            .await
            .expect("loads");
        let mut zombie = Keeps::<PartitionCounters>::load(&store, "inc", 0, &())
            .await
            .expect("loads");
        owner.apply(0, key, 1);
        zombie.apply(0, key, 1);
        assert_eq!(
            Keeps::<PartitionCounters>::flush(&store, "inc", 0, &owner.batch())
                .await
                .expect("flush"),
            FlushOutcome::Written
        );
        assert_eq!(
            Keeps::<PartitionCounters>::flush(&store, "inc", 0, &zombie.batch())
                .await
                .expect("flush"),
            FlushOutcome::Fenced
        );
        assert_eq!(total(&store, key).await, 1);
    }

    #[tokio::test]
    async fn a_total_past_the_largest_is_refused_into_the_error_log_not_clamped() {
        let (_dir, store) = temp_store().await;
        let (full, other) = (Uuid::new_v4(), Uuid::new_v4());
        let mut counters = Keeps::<PartitionCounters>::load(&store, "inc", 0, &())
            .await
            .expect("loads");
        counters.apply(0, full, i64::MAX - 1);
        let batch = counters.batch();
        Keeps::<PartitionCounters>::flush(&store, "inc", 0, &batch)
            .await
            .expect("flush");
        counters.flushed(&batch);
        counters.apply(1, full, 2);
        counters.apply(2, other, 5);
        let batch = counters.batch();
        assert_eq!(
            Keeps::<PartitionCounters>::flush(&store, "inc", 0, &batch)
                .await
                .expect("flush"),
            FlushOutcome::Written
        );
        assert_eq!(total(&store, full).await, i64::MAX - 1, "left as it was");
        assert_eq!(
            total(&store, other).await,
            5,
            "the rest of the batch counts"
        );
        let mut rows = store
            .conn
            .query(
                "SELECT reason, field, message FROM errors WHERE event_id LIKE 'counter-overflow/%'",
                (),
            )
            .await
            .expect("query");
        let row = rows.next().await.expect("row").expect("an error row");
        let (reason, field, message): (String, String, String) = (
            row.get(0).expect("reason"),
            row.get(1).expect("field"),
            row.get(2).expect("message"),
        );
        assert_eq!(
            (reason.as_str(), field.as_str()),
            ("counter_overflow", "value")
        );
        assert!(message.contains(&full.to_string()), "{message}");
        assert!(rows.next().await.expect("row").is_none(), "one refusal");
    }
}

#[cfg(test)]
mod click_tests {
    use super::*;
    use crate::checkpoint::Partitioned;
    use crate::clicks::Click;
    use crate::enrich::{Class, Visit};
    use crate::store::Stored;

    #[tokio::test]
    async fn click_flushes_add_up_and_a_stale_owner_is_fenced() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("opens");
        let mut visit = visit("news.example");
        visit.visitor = Some(7);
        let click = Click {
            short_code: "abc",
            client_id: 7,
            occurred_at: 1_706_742_000_000_000,
            visit: &visit,
        };
        let mut owner = Keeps::<PartitionClicks>::load(&store, "red", 1, &1000)
            .await
            .expect("loads");
        let mut zombie = Keeps::<PartitionClicks>::load(&store, "red", 1, &1000)
            .await
            .expect("loads");
        for offset in 0..3 {
            owner.apply(offset, &click);
            zombie.apply(offset, &click);
        }
        let batch = owner.batch();
        assert_eq!(
            Keeps::<PartitionClicks>::flush(&store, "red", 1, &batch)
                .await
                .expect("flush"),
            FlushOutcome::Written
        );
        owner.flushed(&batch);
        owner.apply(3, &click);
        let batch = owner.batch();
        assert_eq!(
            Keeps::<PartitionClicks>::flush(&store, "red", 1, &batch)
                .await
                .expect("flush"),
            FlushOutcome::Written
        );
        assert_eq!(
            Keeps::<PartitionClicks>::flush(&store, "red", 1, &zombie.batch())
                .await
                .expect("flush"),
            FlushOutcome::Fenced
        );

        let mut rows = store.conn.query("SELECT clicks, through_offset FROM clicks_by_client_month WHERE client_id = 7 AND month = '2024-01'", ()).await.expect("query");
        let row = rows.next().await.expect("row").expect("a row");
        assert_eq!(
            (
                row.get::<i64>(0).expect("clicks"),
                row.get::<i64>(1).expect("offset")
            ),
            (4, 3)
        );
        assert_eq!(
            Keeps::<PartitionClicks>::load(&store, "red", 1, &1000)
                .await
                .expect("loads")
                .next_offset(),
            4
        );
    }

    fn visit(referrer: &str) -> Visit<'_> {
        Visit {
            class: Class::Human,
            agent: crate::user_agent::chrome_on_android(false),
            dimensions: [
                "GB", "GB-ENG", "London", referrer, "other", "(none)", "(none)", "(none)", "link",
            ],
            visitor: None,
        }
    }

    #[tokio::test]
    async fn a_breakdown_keeps_its_first_values_across_flushes_and_counts_the_rest_as_other() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("store.db"))
            .await
            .expect("opens");
        let mut clicks = Keeps::<PartitionClicks>::load(&store, "red", 0, &2)
            .await
            .expect("loads");
        let mut offset = 0;
        for referrers in [&["a", "b", "a"][..], &["c", "a", "d", "c"][..]] {
            for referrer in referrers {
                let visit = visit(referrer);
                clicks.apply(
                    offset,
                    &Click {
                        short_code: "abc",
                        client_id: 7,
                        occurred_at: 1_706_742_000_000_000,
                        visit: &visit,
                    },
                );
                offset += 1;
            }
            let batch = clicks.batch();
            assert_eq!(
                Keeps::<PartitionClicks>::flush(&store, "red", 0, &batch)
                    .await
                    .expect("flush"),
                FlushOutcome::Written
            );
            clicks.flushed(&batch);
        }
        let mut rows = store
            .conn
            .query(
                "SELECT value, clicks FROM link_dimensions_by_day WHERE dimension = 'referrer' ORDER BY value",
                (),
            )
            .await
            .expect("query");
        let mut found = Vec::new();
        while let Some(row) = rows.next().await.expect("row") {
            found.push((
                row.get::<String>(0).expect("value"),
                row.get::<i64>(1).expect("clicks"),
            ));
        }
        assert_eq!(
            found,
            [("(other)", 3), ("a", 3), ("b", 1)].map(|(v, n)| (v.to_owned(), n)),
            "c and d came after a and b filled the two places"
        );
    }
}
