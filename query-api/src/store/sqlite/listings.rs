//! Paged listings on SQLite: events by session, category or time, and the
//! error log, in (time, id) order with keyset cursors.

use libsql::Value as SqlValue;

use super::SqliteStore;
use crate::store::bounds::{Page, Position, TimeRange, rfc3339};
use crate::store::{ErrorFilter, EventFilter, StoreError, StoredError, StoredEvent};

/// A WHERE clause built from optional filters, with positional parameters.
#[derive(Debug, Default)]
struct Conditions {
    clauses: Vec<String>,
    values: Vec<SqlValue>,
}

impl Conditions {
    /// Adds `clause`, numbering its `?`s after the parameters so far.
    fn add(&mut self, clause: &str, values: impl IntoIterator<Item = SqlValue>) {
        let mut numbered = String::new();
        let mut values = values.into_iter();
        let mut pieces = clause.split('?');
        if let Some(first) = pieces.next() {
            numbered.push_str(first);
        }
        for piece in pieces {
            if let Some(value) = values.next() {
                self.values.push(value);
            }
            numbered.push_str(&format!("?{}", self.values.len()));
            numbered.push_str(piece);
        }
        self.clauses.push(numbered);
    }

    fn paged(mut self, time: &str, id: &str, range: TimeRange, page: &Page) -> Self {
        self.add(
            &format!("{time} >= ? AND {time} < ?"),
            [SqlValue::Integer(range.from), SqlValue::Integer(range.to)],
        );
        if let Some(after) = &page.after {
            self.add(
                &format!("({time}, {id}) > (?, ?)"),
                [
                    SqlValue::Integer(after.time),
                    SqlValue::Text(after.id.clone()),
                ],
            );
        }
        self
    }

    fn sql(&self, select: &str, time: &str, id: &str, page: &Page) -> String {
        format!(
            "{select} WHERE {} ORDER BY {time}, {id} LIMIT {}",
            self.clauses.join(" AND "),
            u64::from(page.limit) + 1
        )
    }
}

impl SqliteStore {
    /// Events matching `filter` in `range`, one page plus one row.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn events(
        &self,
        filter: &EventFilter<'_>,
        range: TimeRange,
        page: &Page,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let mut conditions = Conditions::default();
        if let Some(session) = filter.session_id {
            conditions.add("session_id = ?", [SqlValue::Text(session.to_owned())]);
        }
        if let Some(category) = filter.category {
            conditions.add("category = ?", [SqlValue::Text(category.to_owned())]);
            // Bound the day too, so the (category, day, ...) index narrows
            // the scan to the range's days.
            match range.days() {
                // One day: an equality, so the index also gives the order
                // and the scan stops after one page.
                Some((first, last)) if first == last => {
                    conditions.add("day = ?", [SqlValue::Text(first)]);
                }
                Some((first, last)) => conditions.add(
                    "day >= ? AND day <= ?",
                    [SqlValue::Text(first), SqlValue::Text(last)],
                ),
                None => {}
            }
        }
        if let Some(name) = filter.name {
            conditions.add("name = ?", [SqlValue::Text(name.to_owned())]);
        }
        let conditions = conditions.paged("occurred_at", "event_id", range, page);
        let sql = conditions.sql(
            "SELECT event_id, session_id, application_id, category, name, occurred_at,
                    received_at, known_type, user_id, device_id, data FROM events",
            "occurred_at",
            "event_id",
            page,
        );
        let mut rows = self
            .conn()
            .query(&sql, libsql::params_from_iter(conditions.values))
            .await?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().await? {
            let id: String = row.get(0)?;
            let occurred_at: i64 = row.get(5)?;
            let data: String = row.get(10)?;
            found.push(StoredEvent {
                position: Position {
                    time: occurred_at,
                    id: id.clone(),
                },
                id,
                session_id: row.get(1)?,
                application_id: row.get(2)?,
                category: row.get(3)?,
                name: row.get(4)?,
                occurred_at: rfc3339(occurred_at),
                received_at: rfc3339(row.get(6)?),
                known_type: row.get::<i64>(7)? != 0,
                user_id: row.get(8)?,
                device_id: row.get(9)?,
                data: serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data)),
            });
        }
        Ok(found)
    }

    /// Rejects and dead letters matching `filter` in `range`, one page plus one row.
    ///
    /// # Errors
    ///
    /// [`StoreError::Query`] if the query fails.
    pub(crate) async fn errors(
        &self,
        filter: &ErrorFilter<'_>,
        range: TimeRange,
        page: &Page,
    ) -> Result<Vec<StoredError>, StoreError> {
        let mut conditions = Conditions::default();
        if let Some(kind) = filter.kind {
            conditions.add("kind = ?", [SqlValue::Text(kind.to_owned())]);
        }
        if let Some(application) = filter.application_id {
            conditions.add(
                "application_id = ?",
                [SqlValue::Text(application.to_owned())],
            );
        }
        let conditions = conditions.paged("occurred_at", "event_id", range, page);
        let sql = conditions.sql(
            "SELECT event_id, kind, occurred_at, application_id, source, status, field, reason,
                    message, body, replay_run FROM errors",
            "occurred_at",
            "event_id",
            page,
        );
        let mut rows = self
            .conn()
            .query(&sql, libsql::params_from_iter(conditions.values))
            .await?;
        let mut found = Vec::new();
        while let Some(row) = rows.next().await? {
            let id: String = row.get(0)?;
            let kind: String = row.get(1)?;
            let occurred_at: i64 = row.get(2)?;
            let body: Vec<u8> = row.get(9)?;
            let body = if kind == schemas::store::error_kind::REJECT {
                String::from_utf8_lossy(&body).into_owned()
            } else {
                hex::encode(&body)
            };
            found.push(StoredError {
                position: Position {
                    time: occurred_at,
                    id: id.clone(),
                },
                id,
                kind,
                occurred_at: rfc3339(occurred_at),
                application_id: row.get(3)?,
                source: row.get(4)?,
                status: row.get(5)?,
                field: row.get(6)?,
                reason: row.get(7)?,
                message: row.get(8)?,
                body,
                replay_run: row.get(10)?,
            });
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order() {
        let mut conditions = Conditions::default();
        conditions.add("a = ?", [SqlValue::Integer(1)]);
        conditions.add(
            "b >= ? AND b < ?",
            [SqlValue::Integer(2), SqlValue::Integer(3)],
        );
        assert_eq!(conditions.clauses, ["a = ?1", "b >= ?2 AND b < ?3"]);
        assert_eq!(conditions.values.len(), 3);
    }
}
