//! Paged listings on ScyllaDB, in (time, id) order with the same keyset
//! cursors as SQLite ([`crate::store::bounds`]).
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
use std::collections::{BTreeMap, HashMap};

use schemas::cql::layout::{self, Listing};
use scylla::value::CqlTimestamp;

use super::buckets::{self, Unit};
use super::rows::{ErrorRow, NotificationRow, error, event, notification};
use super::scan::{Scan, Start, merge};
use super::statements as s;
use crate::store::bounds::{Page, Position, TimeRange};
use crate::store::{
    ErrorFilter, EventFilter, StoreError, StoredError, StoredEvent, StoredNotification,
};

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

/// The index partitions a request read: (scope, day) to (minute, shard).
type Index = HashMap<(String, u32), Vec<(CqlTimestamp, i32)>>;

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
        let (listing, from, after) = match filter.category {
            Some(category) => (
                Listing::Category(category),
                &s::category_minute_from::STATEMENT,
                &s::category_minute_after::STATEMENT,
            ),
            None => (
                Listing::Events,
                &s::minute_from::STATEMENT,
                &s::minute_after::STATEMENT,
            ),
        };
        let key = |minute: i64, shard: i32| {
            let mut key: Vec<CqlValue> = filter
                .category
                .map(|category| CqlValue::Text(category.to_owned()))
                .into_iter()
                .collect();
            key.extend([
                CqlValue::Timestamp(CqlTimestamp(minute)),
                CqlValue::Int(shard),
            ]);
            key
        };
        let resume_at = cursor.as_ref().map(|(time, _)| *time);
        let walk = buckets::walk(range, resume_at, schemas::time::now_micros(), unit)?;
        let keep = |event: &StoredEvent| filter.name.is_none_or(|n| event.name == n);
        let mut start = Start::resume(walk.from, cursor);
        let mut found = Vec::new();
        let mut index = Index::default();
        for bucket in walk.buckets {
            let minutes = self
                .partitions(&mut index, &[listing], bucket, unit, &start, walk.to)
                .await?;
            for shards in minutes.into_values() {
                let want = rows - found.len();
                let mut of_minute = Vec::new();
                for (_, minute, shard) in shards {
                    let scan = Scan {
                        from,
                        after,
                        key: key(minute, shard),
                        to: walk.to,
                        chunk: if filter.name.is_some() { rows } else { want },
                    };
                    let part = self.read(&scan, start.clone(), want, event, keep).await?;
                    of_minute = merge(of_minute, part, |e: &StoredEvent| &e.position);
                }
                of_minute.truncate(want);
                found.extend(of_minute);
                if found.len() >= rows {
                    return Ok(found);
                }
                start = Start::At(walk.from);
            }
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
            None => schemas::store::error_kind::ALL.to_vec(),
        };
        let listings: Vec<Listing<'_>> = kinds.iter().map(|kind| Listing::Errors(kind)).collect();
        let resume_at = cursor.as_ref().map(|(time, _)| *time);
        let walk = buckets::walk(range, resume_at, schemas::time::now_micros(), Unit::Day)?;
        let keep = |error: &StoredError| {
            filter
                .application_id
                .is_none_or(|app| error.application_id.as_deref() == Some(app))
        };
        let mut start = Start::resume(walk.from, cursor);
        let mut found = Vec::new();
        let mut index = Index::default();
        for bucket in walk.buckets {
            let minutes = self
                .partitions(&mut index, &listings, bucket, Unit::Day, &start, walk.to)
                .await?;
            for shards in minutes.into_values() {
                let want = rows - found.len();
                let mut of_minute = Vec::new();
                for (which, minute, shard) in shards {
                    let kind = kinds[which];
                    let scan = Scan {
                        from: &s::errors_from::STATEMENT,
                        after: &s::errors_after::STATEMENT,
                        key: vec![
                            CqlValue::Text(kind.to_owned()),
                            CqlValue::Timestamp(CqlTimestamp(minute)),
                            CqlValue::Int(shard),
                        ],
                        to: walk.to,
                        chunk: if filter.application_id.is_some() {
                            rows
                        } else {
                            want
                        },
                    };
                    let decode = |row: ErrorRow| error(kind, row);
                    let part = self.read(&scan, start.clone(), want, decode, keep).await?;
                    of_minute = merge(of_minute, part, |e: &StoredError| &e.position);
                }
                of_minute.truncate(want);
                found.extend(of_minute);
                if found.len() >= rows {
                    return Ok(found);
                }
                start = Start::At(walk.from);
            }
        }
        Ok(found)
    }

    /// The (minute, shard) partitions of `listings` holding rows in the
    /// bucket of `unit` starting at `bucket`, from `start`'s minute to `to`,
    /// by minute: (which listing, minute key, shard). Each day's index
    /// partition is read once per request.
    async fn partitions(
        &self,
        index: &mut Index,
        listings: &[Listing<'_>],
        bucket: i64,
        unit: Unit,
        start: &Start,
        to: i64,
    ) -> Result<BTreeMap<i64, Vec<(usize, i64, i32)>>, StoreError> {
        let day = layout::day_of(bucket);
        let first = start.time().max(bucket);
        let end = to.min(bucket.saturating_add(unit.micros()));
        let mut minutes: BTreeMap<i64, Vec<(usize, i64, i32)>> = BTreeMap::new();
        for (which, listing) in listings.iter().enumerate() {
            let scope = listing.scope();
            let entries = match index.get(&(scope.clone(), day.0)) {
                Some(entries) => entries,
                None => {
                    let rows: Vec<(CqlTimestamp, i32)> =
                        self.select(s::listing_buckets(&scope, day)).await?;
                    index.entry((scope, day.0)).or_insert(rows)
                }
            };
            for (minute, shard) in entries.iter() {
                let begins = layout::minute_micros(*minute);
                if begins.saturating_add(layout::MINUTE_MICROS) <= first || begins >= end {
                    continue;
                }
                minutes
                    .entry(minute.0)
                    .or_default()
                    .push((which, minute.0, *shard));
            }
        }
        Ok(minutes)
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
