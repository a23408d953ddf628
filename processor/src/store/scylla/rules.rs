//! Session rules' timers, open durations and watermark on ScyllaDB (see
//! the SQLite store's twin), written under the fenced checkpoint.

use super::{ScyllaStore, statements as s};
use crate::rules::Rules;
use crate::rules::engine::{Kind, PartitionRules, Pending, RulesBatch, StateKey, StateRow};
use crate::store::{FlushOutcome, Keeps, StoreError};

/// The columns of a `rule_state` row as read.
type StateColumns = (String, String, String, String, i64, String, Option<String>);

impl Keeps<PartitionRules> for ScyllaStore {
    /// An events partition's rule state.
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
        let next = self.claim(topic, partition).await?;
        let watermark: Option<(Option<i64>,)> =
            self.read_one(s::read_watermark(topic, partition)).await?;
        let max_event_time = watermark.and_then(|(time,)| time);
        let rows: Vec<StateColumns> = self.read_all(s::read_rule_state(topic, partition)).await?;
        let mut state = Vec::with_capacity(rows.len());
        for (kind, rule, user, correlation, at, event_id, device_id) in rows {
            let kind = Kind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("rule_state kind {kind:?}")))?;
            state.push(StateRow {
                key: StateKey {
                    kind,
                    rule: rule.into(),
                    user,
                    correlation,
                },
                pending: Pending {
                    at,
                    event_id,
                    device_id,
                },
            });
        }
        Ok(PartitionRules::restore(next, max_event_time, state, rules))
    }

    /// Writes changed rule state and the highest event time (absolute,
    /// idempotent by key) under the fenced checkpoint.
    ///
    /// # Errors
    ///
    /// [`StoreError`] if a statement fails.
    async fn flush(
        &self,
        topic: &str,
        partition: i32,
        batch: &RulesBatch,
    ) -> Result<FlushOutcome, StoreError> {
        let rows = async {
            if let Some(max_event_time) = batch.watermark {
                self.run(s::write_watermark(topic, partition, max_event_time))
                    .await?;
            }
            let upserts = batch.upserts.iter().map(|row| {
                s::write_rule_state(
                    topic,
                    partition,
                    row.key.kind.as_str(),
                    &row.key.rule,
                    &row.key.user,
                    &row.key.correlation,
                    row.pending.at,
                    &row.pending.event_id,
                    row.pending.device_id.as_deref(),
                )
            });
            self.write_all(upserts.collect()).await?;
            let deletes = batch.deletes.iter().map(|key| {
                s::delete_rule_state(
                    topic,
                    partition,
                    key.kind.as_str(),
                    &key.rule,
                    &key.user,
                    &key.correlation,
                )
            });
            self.write_all(deletes.collect()).await
        };
        self.fenced(
            topic,
            partition,
            batch.expected_next_offset,
            batch.next_offset,
            rows,
        )
        .await
    }
}
