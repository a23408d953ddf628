//! Every CQL statement the read side runs, prepared once when the store
//! opens. Each names the full partition key of its table
//! (`schemas/cql/001_tables.cql`) and restricts nothing but key columns, so
//! none needs `ALLOW FILTERING`; a test below checks both against the schema.
//!
//! A listing has two forms: from a time (`occurred_at >= ? AND occurred_at
//! < ?`), and after a cursor (`(occurred_at, id) > (?, ?)`). The second has no
//! upper bound in CQL because ScyllaDB refuses to mix single- and
//! multi-column restrictions on clustering columns (scylladb#4244): the range
//! end is applied to its rows as they are read.

use schemas::cql_statements;
use scylla::value::{CqlDate, CqlTimestamp};
use uuid::Uuid;

/// The columns of an event, the same in its three tables (the partition key
/// of each is selectable too).
macro_rules! event_columns {
    () => {
        "occurred_at, event_id, session_id, category, name, received_at, application_id, \
         data, known_type, user_id, device_id"
    };
}

/// The columns of a reject or dead letter.
macro_rules! error_columns {
    () => {
        "occurred_at, event_id, application_id, source, status, field, reason, message, body, replay_run"
    };
}

cql_statements! {
    /// `/readyz`: the coordinator's own row.
    ping() => "SELECT key FROM system.local WHERE key = 'local'";
    /// A counter's total.
    counter(key: Uuid) => "SELECT value FROM counters WHERE key = ?";
    /// The one `scope = 'all'` partition of per-type counts.
    event_types(scope: &str) =>
        "SELECT category, name, events, known_type FROM event_type_counts WHERE scope = ?";
    /// A topic's partitions' freshness.
    progress(topic: &str) =>
        "SELECT as_of FROM partition_progress WHERE topic = ?";
    /// A short code's human clicks over a day range.
    clicks_by_day(short_code: &str, day_from: CqlDate, day_to: CqlDate) =>
        "SELECT day, browser, os, device, clicks FROM clicks_by_day \
         WHERE short_code = ? AND day >= ? AND day <= ?";
    /// A short code's bot clicks over a day range.
    bot_clicks_by_day(short_code: &str, day_from: CqlDate, day_to: CqlDate) =>
        "SELECT day, clicks FROM bot_clicks_by_day \
         WHERE short_code = ? AND day >= ? AND day <= ?";
    /// A short code's link previews over a day range.
    preview_clicks_by_day(short_code: &str, day_from: CqlDate, day_to: CqlDate) =>
        "SELECT day, clicks FROM preview_clicks_by_day \
         WHERE short_code = ? AND day >= ? AND day <= ?";
    /// A short code's breakdowns over a day range (every dimension: CQL
    /// cannot restrict the dimension after a range of days).
    link_dimensions_by_day(short_code: &str, day_from: CqlDate, day_to: CqlDate) =>
        "SELECT day, dimension, value, clicks FROM link_dimensions_by_day \
         WHERE short_code = ? AND day >= ? AND day <= ?";
    /// A short code's visitor sketches over a day range.
    link_visitors_by_day(short_code: &str, day_from: CqlDate, day_to: CqlDate) =>
        "SELECT day, sketch FROM link_visitors_by_day \
         WHERE short_code = ? AND day >= ? AND day <= ?";
    /// A client's month.
    client_month(client_id: i64, month: &str) =>
        "SELECT short_code, clicks FROM clicks_by_client_month WHERE client_id = ? AND month = ?";
    /// A user's notifications after a position (`(i64::MIN, '')` for the first page).
    notifications(user_id: &str, occurred_at: i64, notification_id: &str, limit: i32) =>
        "SELECT occurred_at, notification_id, rule, message, device_id, received_at, \
         trigger_event_id, late_by_micros, data FROM notifications_by_user \
         WHERE user_id = ? AND (occurred_at, notification_id) > (?, ?) LIMIT ?";
    /// A session's events from a time.
    session_from(session_id: &str, occurred_at_from: i64, occurred_at_to: i64, limit: i32) => concat!(
        "SELECT ", event_columns!(), " FROM events_by_session \
         WHERE session_id = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// A session's events after a cursor.
    session_after(session_id: &str, occurred_at: i64, event_id: Uuid, limit: i32) => concat!(
        "SELECT ", event_columns!(), " FROM events_by_session \
         WHERE session_id = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
    /// The (minute, shard) partitions of a listing holding rows on one day.
    listing_buckets(scope: &str, day: CqlDate) =>
        "SELECT minute, shard FROM listing_buckets WHERE scope = ? AND day = ?";
    /// A category's events of one minute and shard, from a time.
    category_minute_from(category: &str, minute: CqlTimestamp, shard: i32, occurred_at_from: i64, occurred_at_to: i64, limit: i32) => concat!(
        "SELECT ", event_columns!(), " FROM events_by_category_minute \
         WHERE category = ? AND minute = ? AND shard = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// A category's events of one minute and shard, after a cursor.
    category_minute_after(category: &str, minute: CqlTimestamp, shard: i32, occurred_at: i64, event_id: Uuid, limit: i32) => concat!(
        "SELECT ", event_columns!(), " FROM events_by_category_minute \
         WHERE category = ? AND minute = ? AND shard = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
    /// One minute and shard of events, from a time.
    minute_from(minute: CqlTimestamp, shard: i32, occurred_at_from: i64, occurred_at_to: i64, limit: i32) => concat!(
        "SELECT ", event_columns!(), " FROM events_by_minute \
         WHERE minute = ? AND shard = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// One minute and shard of events, after a cursor.
    minute_after(minute: CqlTimestamp, shard: i32, occurred_at: i64, event_id: Uuid, limit: i32) => concat!(
        "SELECT ", event_columns!(), " FROM events_by_minute \
         WHERE minute = ? AND shard = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
    /// One kind's errors of one minute and shard, from a time.
    errors_from(kind: &str, minute: CqlTimestamp, shard: i32, occurred_at_from: i64, occurred_at_to: i64, limit: i32) => concat!(
        "SELECT ", error_columns!(), " FROM errors_by_minute \
         WHERE kind = ? AND minute = ? AND shard = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// One kind's errors of one minute and shard, after a cursor.
    errors_after(kind: &str, minute: CqlTimestamp, shard: i32, occurred_at: i64, event_id: &str, limit: i32) => concat!(
        "SELECT ", error_columns!(), " FROM errors_by_minute \
         WHERE kind = ? AND minute = ? AND shard = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
}

#[cfg(test)]
mod tests {
    use cql_sim::check::problems;
    use cql_sim::parse::migration_tables;

    use super::*;

    #[test]
    fn every_statement_names_its_full_partition_key_and_never_filters() {
        let tables = migration_tables(schemas::cql::MIGRATIONS).expect("the migrations parse");
        assert!(tables.len() >= 15, "{tables:?}");
        for statement in ALL {
            let found = problems(statement.cql, Some(statement.binds), &tables);
            assert_eq!(found, Vec::<String>::new(), "{}", statement.name);
        }
    }
}
