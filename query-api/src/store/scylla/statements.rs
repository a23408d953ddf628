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

use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;

use crate::store::StoreError;

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
        "occurred_at, event_id, application_id, source, status, field, reason, message, body"
    };
}

/// Declares the statements: each field of [`Statements`] with what it reads
/// (for errors) and its CQL, and in tests the list of every CQL text.
macro_rules! statements {
    ($($(#[doc = $doc:literal])* $field:ident: $during:literal => $cql:expr;)*) => {
        /// Every statement the read side runs, prepared.
        #[derive(Debug)]
        pub(super) struct Statements {
            $($(#[doc = $doc])* pub(super) $field: Prepared,)*
        }

        impl Statements {
            /// Prepares every statement on `session`.
            ///
            /// # Errors
            ///
            /// [`StoreError::Cql`] naming the statement that could not be
            /// prepared (a table missing: run `eventide migrate`).
            pub(super) async fn prepare(session: &Session) -> Result<Self, StoreError> {
                Ok(Self {
                    $($field: Prepared::new(session, $during, $cql).await?,)*
                })
            }
        }

        /// The CQL of every statement.
        #[cfg(test)]
        pub(super) const ALL: &[&str] = &[$($cql,)*];
    };
}

statements! {
    /// `/readyz`: the coordinator's own row.
    ping: "pinging the cluster" => "SELECT key FROM system.local WHERE key = 'local'";
    /// A counter's total.
    counter: "reading counters" => "SELECT value FROM counters WHERE key = ?";
    /// The one `scope = 'all'` partition of per-type counts.
    event_types: "reading event_type_counts" =>
        "SELECT category, name, events, known_type FROM event_type_counts WHERE scope = ?";
    /// A topic's partitions' freshness.
    progress: "reading partition_progress" =>
        "SELECT as_of FROM partition_progress WHERE topic = ?";
    /// A short code's human clicks over a day range.
    clicks_by_day: "reading clicks_by_day" =>
        "SELECT day, browser, os, device, clicks FROM clicks_by_day \
         WHERE short_code = ? AND day >= ? AND day <= ?";
    /// A short code's bot clicks over a day range.
    bot_clicks_by_day: "reading bot_clicks_by_day" =>
        "SELECT day, clicks FROM bot_clicks_by_day \
         WHERE short_code = ? AND day >= ? AND day <= ?";
    /// A client's month.
    client_month: "reading clicks_by_client_month" =>
        "SELECT short_code, clicks FROM clicks_by_client_month WHERE client_id = ? AND month = ?";
    /// A user's notifications after a position (`(i64::MIN, '')` for the first page).
    notifications: "reading notifications_by_user" =>
        "SELECT occurred_at, notification_id, rule, message, device_id, received_at, \
         trigger_event_id, late_by_micros, data FROM notifications_by_user \
         WHERE user_id = ? AND (occurred_at, notification_id) > (?, ?) LIMIT ?";
    /// A session's events from a time.
    session_from: "reading events_by_session" => concat!(
        "SELECT ", event_columns!(), " FROM events_by_session \
         WHERE session_id = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// A session's events after a cursor.
    session_after: "reading events_by_session" => concat!(
        "SELECT ", event_columns!(), " FROM events_by_session \
         WHERE session_id = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
    /// A category's events of one day, from a time.
    category_day_from: "reading events_by_category_day" => concat!(
        "SELECT ", event_columns!(), " FROM events_by_category_day \
         WHERE category = ? AND day = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// A category's events of one day, after a cursor.
    category_day_after: "reading events_by_category_day" => concat!(
        "SELECT ", event_columns!(), " FROM events_by_category_day \
         WHERE category = ? AND day = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
    /// One hour's events, from a time.
    hour_from: "reading events_by_hour" => concat!(
        "SELECT ", event_columns!(), " FROM events_by_hour \
         WHERE hour = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// One hour's events, after a cursor.
    hour_after: "reading events_by_hour" => concat!(
        "SELECT ", event_columns!(), " FROM events_by_hour \
         WHERE hour = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
    /// One kind's errors of one day, from a time.
    errors_from: "reading errors_by_day" => concat!(
        "SELECT ", error_columns!(), " FROM errors_by_day \
         WHERE kind = ? AND day = ? AND occurred_at >= ? AND occurred_at < ? LIMIT ?");
    /// One kind's errors of one day, after a cursor.
    errors_after: "reading errors_by_day" => concat!(
        "SELECT ", error_columns!(), " FROM errors_by_day \
         WHERE kind = ? AND day = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?");
}

/// A prepared statement and what it reads, for errors.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) during: &'static str,
    pub(super) statement: PreparedStatement,
}

impl Prepared {
    async fn new(session: &Session, during: &'static str, cql: &str) -> Result<Self, StoreError> {
        let statement = session.prepare(cql).await.map_err(|err| StoreError::Cql {
            during: "preparing the read statements (run `eventide migrate` first)",
            reason: format!("{cql}: {err}"),
        })?;
        Ok(Self { during, statement })
    }
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
        for cql in ALL {
            assert_eq!(problems(cql, None, &tables), Vec::<String>::new(), "{cql}");
        }
    }
}
