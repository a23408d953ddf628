//! The ScyllaDB schema: CQL migrations in `schemas/cql/`, applied in order
//! by a migration command. Same logical tables as [`crate::sql`], laid out
//! query-first (every read names a full partition key).

/// One migration: a version and its CQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub cql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[Migration {
    version: 1,
    name: "tables",
    cql: include_str!("../cql/001_tables.cql"),
}];

/// The statements of a CQL text: `--` comments dropped, split on `;`.
pub fn statements(cql: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|statement| statement.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// The statement creating the keyspace.
pub fn create_keyspace(keyspace: &str, replication_factor: u32) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
         {{'class': 'NetworkTopologyStrategy', 'replication_factor': {replication_factor}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        MIGRATIONS.iter().flat_map(|m| statements(m.cql)).collect()
    }

    #[test]
    fn every_statement_is_idempotent_and_no_aggregate_is_a_counter() {
        let statements = all();
        assert!(statements.len() >= 15, "{statements:?}");
        for statement in &statements {
            let upper = statement.to_uppercase();
            assert!(
                upper.starts_with("CREATE TABLE IF NOT EXISTS")
                    || upper.starts_with("CREATE INDEX IF NOT EXISTS"),
                "not idempotent: {statement}"
            );
            let has_counter_type = upper
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|word| word == "COUNTER");
            assert!(
                !has_counter_type,
                "counter columns break exactness: {statement}"
            );
            assert!(!upper.contains("ALLOW FILTERING"), "{statement}");
        }
    }

    #[test]
    fn every_logical_table_has_a_query_first_counterpart() {
        let statements = all().join("\n");
        for table in [
            "counters",
            "clicks_by_day",
            "clicks_by_client_month",
            "clicks_by_code",
            "bot_clicks_by_day",
            "events_by_session",
            "events_by_category_day",
            "events_by_hour",
            "event_type_counts",
            "errors_by_day",
            "notifications_by_user",
            "rule_state",
            "rule_watermarks",
            "partition_checkpoints",
            "partition_progress",
        ] {
            assert!(
                statements.contains(&format!("CREATE TABLE IF NOT EXISTS {table} (")),
                "{table} missing"
            );
        }
    }

    #[test]
    fn versions_increase_and_comments_are_dropped() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(
            statements("-- a\nCREATE TABLE t (a int PRIMARY KEY); -- b\n"),
            ["CREATE TABLE t (a int PRIMARY KEY)"]
        );
        assert!(create_keyspace("eventide", 3).contains("'replication_factor': 3"));
    }
}
