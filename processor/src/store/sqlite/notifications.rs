//! Notifications and session-rule state in the embedded store.

use libsql::params;

use super::{FlushOutcome, Keeps, SqliteStore, StoreError};
use crate::notifications::{NotificationsBatch, PartitionNotifications};
use crate::rules::Rules;
use crate::rules::engine::{Kind, PartitionRules, Pending, RulesBatch, StateKey, StateRow};

impl Keeps<PartitionNotifications> for SqliteStore {
    /// A notifications partition's stored checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        _setup: &(),
    ) -> Result<PartitionNotifications, StoreError> {
        Ok(PartitionNotifications::restore(
            self.checkpoint(topic, partition).await?.unwrap_or(0),
        ))
    }

    /// Inserts a batch's notifications (once by id) and moves the fenced
    /// checkpoint, in one transaction.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if writing fails.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &NotificationsBatch,
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
                "INSERT OR IGNORE INTO notifications (notification_id, user_id, rule, occurred_at,
                     received_at, device_id, message, data, trigger_event_id, late_by_micros, partition, offset)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )
            .await?;
        for (offset, n) in &batch.notifications {
            insert
                .execute(params![
                    n.event_id.as_str(),
                    n.user_id.as_str(),
                    n.rule.as_str(),
                    n.occurred_at,
                    n.received_at,
                    n.device_id.clone(),
                    n.message.as_str(),
                    n.data.as_str(),
                    n.trigger_event_id.as_str(),
                    n.late_by_micros,
                    partition,
                    *offset
                ])
                .await?;
            insert.reset();
        }
        tx.commit().await?;
        Ok(FlushOutcome::Written)
    }
}

impl Keeps<PartitionRules> for SqliteStore {
    /// An events partition's rule state: checkpoint (under `topic`, the
    /// rules worker's own checkpoint name), highest event time, and every
    /// pending timer and open duration of a configured rule.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if reading fails or a row is corrupt.
    async fn load(
        &self,
        topic: &str,
        partition: i32,
        rules: &Rules,
    ) -> Result<PartitionRules, StoreError> {
        let next_offset = self.checkpoint(topic, partition).await?.unwrap_or(0);
        let mut watermark = self
            .conn
            .query(
                "SELECT max_event_time FROM rule_watermarks WHERE topic = ?1 AND partition = ?2",
                params![topic, partition],
            )
            .await?;
        let max_event_time = match watermark.next().await? {
            Some(row) => Some(row.get::<i64>(0)?),
            None => None,
        };
        let mut rows = self
            .conn
            .query(
                "SELECT kind, rule, user_id, correlation, at, event_id, device_id
                 FROM rule_state WHERE topic = ?1 AND partition = ?2",
                params![topic, partition],
            )
            .await?;
        let mut state = Vec::new();
        while let Some(row) = rows.next().await? {
            let kind: String = row.get(0)?;
            let kind = Kind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("rule_state kind {kind:?}")))?;
            let rule: String = row.get(1)?;
            state.push(StateRow {
                key: StateKey {
                    kind,
                    rule: rule.into(),
                    user: row.get(2)?,
                    correlation: row.get(3)?,
                },
                pending: Pending {
                    at: row.get(4)?,
                    event_id: row.get(5)?,
                    device_id: row.get(6)?,
                },
            });
        }
        Ok(PartitionRules::restore(
            next_offset,
            max_event_time,
            state,
            rules,
        ))
    }

    /// Writes a partition's changed rule state, highest event time and
    /// checkpoint in one transaction fenced on the expected checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if writing fails.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &RulesBatch,
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
        if let Some(max_event_time) = batch.watermark {
            tx.execute(
                "INSERT INTO rule_watermarks (topic, partition, max_event_time) VALUES (?1, ?2, ?3)
                 ON CONFLICT (topic, partition) DO UPDATE SET max_event_time = excluded.max_event_time",
                params![topic, partition, max_event_time],
            )
            .await?;
        }
        let upsert = tx
            .prepare(
                "INSERT INTO rule_state (topic, partition, kind, rule, user_id, correlation, at, event_id, device_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (topic, partition, kind, rule, user_id, correlation) DO UPDATE SET
                     at = excluded.at, event_id = excluded.event_id, device_id = excluded.device_id",
            )
            .await?;
        for row in &batch.upserts {
            upsert
                .execute(params![
                    topic,
                    partition,
                    row.key.kind.as_str(),
                    &*row.key.rule,
                    row.key.user.as_str(),
                    row.key.correlation.as_str(),
                    row.pending.at,
                    row.pending.event_id.as_str(),
                    row.pending.device_id.clone()
                ])
                .await?;
            upsert.reset();
        }
        let delete = tx
            .prepare(
                "DELETE FROM rule_state WHERE topic = ?1 AND partition = ?2 AND kind = ?3
                     AND rule = ?4 AND user_id = ?5 AND correlation = ?6",
            )
            .await?;
        for key in &batch.deletes {
            delete
                .execute(params![
                    topic,
                    partition,
                    key.kind.as_str(),
                    &*key.rule,
                    key.user.as_str(),
                    key.correlation.as_str()
                ])
                .await?;
            delete.reset();
        }
        tx.commit().await?;
        Ok(FlushOutcome::Written)
    }
}
