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
    use std::collections::BTreeMap;

    use super::*;

    /// A table's partition key and clustering columns, from its DDL.
    #[derive(Debug, Default)]
    struct Key {
        partition: Vec<String>,
        clustering: Vec<String>,
    }

    fn columns(list: &str) -> Vec<String> {
        list.split(',').map(|c| c.trim().to_owned()).collect()
    }

    /// Every table of the CQL migrations with its primary key.
    fn tables() -> BTreeMap<String, Key> {
        let mut tables = BTreeMap::new();
        for migration in schemas::cql::MIGRATIONS {
            for ddl in schemas::cql::statements(migration.cql) {
                let Some(rest) = ddl.strip_prefix("CREATE TABLE IF NOT EXISTS ") else {
                    continue;
                };
                let (name, body) = rest.split_once(" (").expect("a column list");
                let key = if let Some((_, key)) = body.split_once("PRIMARY KEY ((") {
                    let (partition, rest) = key.split_once(')').expect("closed partition key");
                    let clustering = rest.split(')').next().unwrap_or_default();
                    Key {
                        partition: columns(partition),
                        clustering: columns(clustering.trim_start_matches(','))
                            .into_iter()
                            .filter(|c| !c.is_empty())
                            .collect(),
                    }
                } else {
                    // `key uuid PRIMARY KEY,`: the column declared inline.
                    let (before, _) = body.split_once(" PRIMARY KEY").expect("a primary key");
                    let declaration = before.rsplit(',').next().unwrap_or(before);
                    let column = declaration.split_whitespace().next().expect("a column");
                    Key {
                        partition: vec![column.to_owned()],
                        clustering: Vec::new(),
                    }
                };
                tables.insert(name.to_owned(), key);
            }
        }
        tables
    }

    /// The columns each relation of a WHERE clause restricts, with its operator.
    fn relations(cql: &str) -> Vec<(Vec<String>, String)> {
        let (_, clause) = cql.split_once(" WHERE ").expect("a WHERE clause");
        let clause = clause.split(" LIMIT ").next().unwrap_or(clause);
        clause
            .split(" AND ")
            .map(|relation| {
                let (at, operator) = [" >= ", " <= ", " = ", " > ", " < "]
                    .iter()
                    .filter_map(|op| relation.find(op).map(|at| (at, op.trim())))
                    .min()
                    .unwrap_or_else(|| panic!("no operator in {relation}"));
                let restricted = relation[..at].trim_matches(|c| c == '(' || c == ')');
                (columns(restricted), operator.to_owned())
            })
            .collect()
    }

    /// What is wrong with `cql` as a query-first read of the schema's tables.
    fn problems(cql: &str, tables: &BTreeMap<String, Key>) -> Vec<String> {
        let mut problems = Vec::new();
        let upper = cql.to_uppercase();
        for banned in ["ALLOW FILTERING", " IN ", "TOKEN("] {
            if upper.contains(banned) {
                problems.push(format!("uses {}", banned.trim()));
            }
        }
        let Some((_, after_from)) = cql.split_once(" FROM ") else {
            return vec!["not a SELECT".into()];
        };
        let table = after_from.split_whitespace().next().unwrap_or_default();
        let relations = relations(cql);
        if table == "system.local" {
            if relations != [(vec!["key".to_owned()], "=".to_owned())] {
                problems.push("system.local is read by its key".into());
            }
            return problems;
        }
        let Some(key) = tables.get(table) else {
            return vec![format!("{table} is not in the schema")];
        };
        for column in &key.partition {
            if !relations.contains(&(vec![column.clone()], "=".to_owned())) {
                problems.push(format!("partition key column {column} is not named"));
            }
        }
        for (restricted, operator) in &relations {
            for column in restricted {
                if !key.partition.contains(column) && !key.clustering.contains(column) {
                    problems.push(format!("{column} is not a key column"));
                } else if key.partition.contains(column) && operator != "=" {
                    problems.push(format!("partition key column {column} is ranged"));
                }
            }
            if restricted.len() > 1 && key.clustering.get(..restricted.len()) != Some(restricted) {
                problems.push(format!("{restricted:?} are not leading clustering columns"));
            }
        }
        // ScyllaDB refuses a single- and a multi-column restriction on
        // clustering columns together (scylladb#4244).
        let on_clustering =
            |restricted: &Vec<String>| restricted.iter().any(|c| key.clustering.contains(c));
        let single = relations
            .iter()
            .any(|(r, _)| r.len() == 1 && on_clustering(r));
        let multi = relations.iter().any(|(r, _)| r.len() > 1);
        if single && multi {
            problems.push("mixes single- and multi-column clustering restrictions".into());
        }
        problems
    }

    #[test]
    fn every_statement_names_its_full_partition_key_and_never_filters() {
        let tables = tables();
        assert!(tables.len() >= 15, "{tables:?}");
        for cql in ALL {
            assert_eq!(problems(cql, &tables), Vec::<String>::new(), "{cql}");
        }
    }

    #[test]
    fn reads_that_would_scan_or_filter_are_caught() {
        let tables = tables();
        for bad in [
            "SELECT body FROM errors_by_day WHERE kind = ? AND occurred_at >= ?",
            "SELECT value FROM counters WHERE key = ? AND value = ? ALLOW FILTERING",
            "SELECT name FROM events_by_hour WHERE hour > ?",
            "SELECT name FROM events_by_session WHERE session_id = ? AND name = ?",
            "SELECT name FROM events_by_session WHERE session_id = ? AND (event_id, occurred_at) > (?, ?)",
            "SELECT name FROM events_by_session WHERE session_id = ? AND (occurred_at, event_id) > (?, ?) AND occurred_at < ?",
            "SELECT name FROM events WHERE session_id = ?",
        ] {
            assert!(!problems(bad, &tables).is_empty(), "{bad}");
        }
    }

    #[test]
    fn the_schema_parser_reads_inline_and_composite_keys() {
        let tables = tables();
        assert_eq!(tables["counters"].partition, ["key"]);
        assert_eq!(tables["errors_by_day"].partition, ["kind", "day"]);
        assert_eq!(
            tables["errors_by_day"].clustering,
            ["occurred_at", "event_id"]
        );
        assert_eq!(tables["partition_progress"].clustering, ["partition"]);
        assert_eq!(
            relations("SELECT a FROM t WHERE k = ? AND (c, d) > (?, ?) LIMIT ?"),
            [
                (vec!["k".to_owned()], "=".to_owned()),
                (vec!["c".to_owned(), "d".to_owned()], ">".to_owned())
            ]
        );
    }
}
