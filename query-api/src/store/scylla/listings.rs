//! Paged listings on ScyllaDB, in (time, id) order with the same keyset
//! cursors as SQLite ([`crate::paging`]).
//!
//! - By session: the one `events_by_session` partition; a category, name or
//!   range is applied to its rows (the range in CQL where it can be).
//! - By category: `events_by_category_day`, one partition per UTC day of the
//!   range, oldest first; a name is applied to the rows.
//! - By time alone: `events_by_hour`, one partition per UTC hour.
//! - The error log: `errors_by_day`, one partition per kind and UTC day, the
//!   two kinds merged day by day; an application is applied to the rows.
//! - Notifications: the user's `notifications_by_user` partition.
//!
//! Buckets partition time, so walking them in order and each in clustering
//! order yields the global (occurred_at, id) order; a page stops as soon as
//! it holds `limit + 1` rows. Event ids are `uuid`s, which ScyllaDB orders
//! by version then bytes: for ingest's v7 ids that is their text order, as
//! in SQLite.

use scylla::value::CqlValue;
use uuid::Uuid;

use super::ScyllaStore;
use super::buckets::{self, Unit, day_of, hour_of};
use super::rows::{ErrorRow, NotificationRow, error, event, notification};
use super::scan::{Scan, Start, merge};
use super::statements as s;
use crate::paging::{Page, Position};
use crate::params::TimeRange;
use crate::store::{
    ErrorFilter, EventFilter, StoreError, StoredError, StoredEvent, StoredNotification,
};

/// The error log's kinds: one `errors_by_day` partition each per day.
const ERROR_KINDS: [&str; 2] = ["dead_letter", "reject"];

/// An events cursor's position as bind values.
///
/// # Errors
///
/// [`StoreError::Unanswerable`] naming `cursor` when its id is not an event
/// id (the SQLite store would compare any text; this one binds a `uuid`).
fn event_cursor(position: &Position) -> Result<(i64, CqlValue), StoreError> {
    let id = Uuid::try_parse(&position.id).map_err(|_| StoreError::Unanswerable {
        parameter: "cursor",
        message: "is not a cursor this API returned".into(),
    })?;
    Ok((position.time, CqlValue::Uuid(id)))
}

/// Rows in a page: `limit`, plus one telling whether another page follows.
fn page_rows(page: &Page) -> usize {
    page.limit as usize + 1
}

impl ScyllaStore {
    /// Events matching `filter` in `range`, one page plus one row.
    pub(crate) async fn events(
        &self,
        filter: &EventFilter<'_>,
        range: TimeRange,
        page: &Page,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let rows = page_rows(page);
        let cursor = page.after.as_ref().map(event_cursor).transpose()?;
        if let Some(session) = filter.session_id {
            let scan = Scan {
                from: &s::session_from::STATEMENT,
                after: &s::session_after::STATEMENT,
                key: vec![CqlValue::Text(session.to_owned())],
                to: range.to,
                chunk: rows,
            };
            let keep = |event: &StoredEvent| {
                filter.category.is_none_or(|c| event.category == c)
                    && filter.name.is_none_or(|n| event.name == n)
            };
            return self
                .read(&scan, Start::resume(range.from, cursor), rows, event, keep)
                .await;
        }
        let unit = match filter.category {
            Some(_) => Unit::Day,
            None => Unit::Hour,
        };
        let resume_at = cursor.as_ref().map(|(time, _)| *time);
        let walk = buckets::walk(range, resume_at, schemas::time::now_micros(), unit)?;
        let keep = |event: &StoredEvent| filter.name.is_none_or(|n| event.name == n);
        let mut start = Start::resume(walk.from, cursor);
        let mut found = Vec::new();
        for bucket in walk.buckets {
            let want = rows - found.len();
            let (from, after, key) = match filter.category {
                Some(category) => (
                    &s::category_day_from::STATEMENT,
                    &s::category_day_after::STATEMENT,
                    vec![
                        CqlValue::Text(category.to_owned()),
                        CqlValue::Date(day_of(bucket)?),
                    ],
                ),
                None => (
                    &s::hour_from::STATEMENT,
                    &s::hour_after::STATEMENT,
                    vec![CqlValue::Timestamp(hour_of(bucket))],
                ),
            };
            let scan = Scan {
                from,
                after,
                key,
                to: walk.to,
                chunk: if filter.name.is_some() { rows } else { want },
            };
            found.extend(self.read(&scan, start, want, event, keep).await?);
            if found.len() >= rows {
                break;
            }
            start = Start::At(walk.from);
        }
        Ok(found)
    }

    /// Rejects and dead letters matching `filter` in `range`, one page plus
    /// one row.
    pub(crate) async fn errors(
        &self,
        filter: &ErrorFilter<'_>,
        range: TimeRange,
        page: &Page,
    ) -> Result<Vec<StoredError>, StoreError> {
        let rows = page_rows(page);
        let cursor = page
            .after
            .as_ref()
            .map(|p| (p.time, CqlValue::Text(p.id.clone())));
        let kinds: Vec<&str> = match filter.kind {
            Some(kind) => vec![kind],
            None => ERROR_KINDS.to_vec(),
        };
        let resume_at = cursor.as_ref().map(|(time, _)| *time);
        let walk = buckets::walk(range, resume_at, schemas::time::now_micros(), Unit::Day)?;
        let keep = |error: &StoredError| {
            filter
                .application_id
                .is_none_or(|app| error.application_id.as_deref() == Some(app))
        };
        let mut start = Start::resume(walk.from, cursor);
        let mut found = Vec::new();
        for bucket in walk.buckets {
            let want = rows - found.len();
            let day = day_of(bucket)?;
            let mut of_day = Vec::new();
            for kind in &kinds {
                let scan = Scan {
                    from: &s::errors_from::STATEMENT,
                    after: &s::errors_after::STATEMENT,
                    key: vec![CqlValue::Text((*kind).to_owned()), CqlValue::Date(day)],
                    to: walk.to,
                    chunk: if filter.application_id.is_some() {
                        rows
                    } else {
                        want
                    },
                };
                let decode = |row: ErrorRow| error(kind, row);
                let of_kind = self.read(&scan, start.clone(), want, decode, keep).await?;
                of_day = merge(of_day, of_kind, |e: &StoredError| &e.position);
            }
            of_day.truncate(want);
            found.extend(of_day);
            if found.len() >= rows {
                break;
            }
            start = Start::At(walk.from);
        }
        Ok(found)
    }

    /// A user's notifications in (time, id) order, one page plus one row.
    pub(crate) async fn notifications(
        &self,
        user_id: &str,
        page: &Page,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let (after_time, after_id) = page
            .after
            .as_ref()
            .map_or((i64::MIN, String::new()), |p| (p.time, p.id.clone()));
        let limit = i32::try_from(page_rows(page)).unwrap_or(i32::MAX);
        let rows: Vec<NotificationRow> = self
            .select(s::notifications(user_id, after_time, &after_id, limit))
            .await?;
        Ok(rows
            .into_iter()
            .map(|row| notification(user_id, row))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_cursors_bind_their_uuid_and_foreign_ones_name_the_parameter() {
        let id = Uuid::now_v7();
        let position = Position {
            time: 15,
            id: id.to_string(),
        };
        assert_eq!(
            event_cursor(&position).expect("an event id"),
            (15, CqlValue::Uuid(id))
        );
        let foreign = Position {
            time: 15,
            id: "not-an-id".into(),
        };
        match event_cursor(&foreign) {
            Err(StoreError::Unanswerable { parameter, .. }) => assert_eq!(parameter, "cursor"),
            other => panic!("{other:?}"),
        }
        let page = Page {
            limit: 2,
            after: None,
        };
        assert_eq!(page_rows(&page), 3);
    }
}
