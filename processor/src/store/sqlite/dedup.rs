//! The idempotency keys of each partition in the embedded store
//! (`dedup_keys`).

use std::time::Duration;

use libsql::params;

use super::SqliteStore;
use crate::dedup::Remembered;
use crate::store::StoreError;

impl SqliteStore {
    /// Stores keys a partition applied, and deletes its keys received more
    /// than the window (and an hour's margin) ago.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails; nothing is written then.
    pub async fn remember(
        &self,
        topic: &str,
        partition: i32,
        keys: &[Remembered],
        window: Duration,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().await?;
        for key in keys {
            tx.execute(
                "INSERT OR IGNORE INTO dedup_keys (topic, partition, identity, first_offset, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    topic,
                    partition,
                    key.identity.as_bytes().to_vec(),
                    key.first_offset,
                    key.received_at
                ],
            )
            .await?;
        }
        tx.execute(
            "DELETE FROM dedup_keys WHERE topic = ?1 AND partition = ?2 AND received_at < ?3",
            params![topic, partition, super::super::dedup_horizon(window)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The keys a partition applied below its checkpoint `below`.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or an identity is not 16 bytes.
    pub async fn remembered(
        &self,
        topic: &str,
        partition: i32,
        below: i64,
        window: Duration,
    ) -> Result<Vec<Remembered>, StoreError> {
        let mut rows = self
            .conn
            .query(
                "SELECT identity, first_offset, received_at FROM dedup_keys
                 WHERE topic = ?1 AND partition = ?2 AND first_offset < ?3 AND received_at >= ?4",
                params![topic, partition, below, super::super::dedup_horizon(window)],
            )
            .await?;
        let mut keys = Vec::new();
        while let Some(row) = rows.next().await? {
            let bytes: Vec<u8> = row.get(0)?;
            let identity = uuid::Uuid::from_slice(&bytes)
                .map_err(|err| StoreError::Corrupt(format!("dedup_keys.identity: {err}")))?;
            keys.push(Remembered {
                identity,
                first_offset: row.get(1)?,
                received_at: row.get(2)?,
            });
        }
        Ok(keys)
    }
}
