//! The offline check of a statement against the migrations: parsed by the
//! real CQL grammar, every table and column must exist, every bound value
//! must bind a marker of its name and CQL type, in order, every read and
//! every write must name a full key, nothing may need `ALLOW FILTERING`,
//! and every `IF` must test regular columns of its table.

use schemas::cql::Bind;

use crate::parse::{Cmp, Condition, Plan, Relation, TableDef, Term, plan};

/// Every problem of `cql` against `tables`; empty when it is sound.
/// `binds` are the values the service binds (`None` when it does not
/// declare them: the marker count and types go unchecked).
pub fn problems(cql: &str, binds: Option<&[Bind]>, tables: &[TableDef]) -> Vec<String> {
    let plan = match plan(cql) {
        Ok(plan) => plan,
        Err(err) => return vec![err.reason],
    };
    if plan.table() == "system.local" {
        return system_local(&plan);
    }
    let Some(table) = tables.iter().find(|table| table.name == plan.table()) else {
        return vec![format!("table {} is not in the migrations", plan.table())];
    };
    let mut problems = Vec::new();
    let targets = targets(&plan);
    for (column, _) in targets.iter().filter(|(column, _)| !is_special(column)) {
        if table.column_type(column).is_none() {
            problems.push(format!("column {column} is not in {}", table.name));
        }
    }
    match &plan {
        Plan::Select {
            filter,
            allow_filtering,
            columns,
            ..
        } => {
            if *allow_filtering {
                problems.push("ALLOW FILTERING".into());
            }
            for column in columns {
                if table.column_type(column).is_none() {
                    problems.push(format!("selected column {column} is not in {}", table.name));
                }
            }
            problems.extend(read_key(table, filter));
        }
        Plan::Insert {
            values, condition, ..
        } => {
            for key in table.partition_key.iter().chain(&table.clustering) {
                if !values.iter().any(|(column, _)| column == key) {
                    problems.push(format!("key column {key} is not written"));
                }
            }
            problems.extend(conditions(table, condition));
        }
        Plan::Update {
            keys,
            condition,
            set,
            ..
        } => {
            problems.extend(full_key(table, keys));
            for (column, _) in set {
                if table.is_key(column) {
                    problems.push(format!("key column {column} is set"));
                }
            }
            problems.extend(conditions(table, condition));
        }
        Plan::Delete { keys, .. } => problems.extend(full_key(table, keys)),
    }
    if let Some(binds) = binds {
        problems.extend(bound(table, &targets, binds));
    }
    problems
}

/// `system.local` is read by its own key only (the readiness ping).
fn system_local(plan: &Plan) -> Vec<String> {
    match plan {
        Plan::Select { filter, .. }
            if filter.len() == 1
                && filter[0].columns == ["key"]
                && filter[0].cmp == Cmp::Eq
                && filter[0].terms == [Term::Literal("'local'".into())] =>
        {
            Vec::new()
        }
        _ => vec!["system.local is read by its key only".into()],
    }
}

fn is_special(target: &str) -> bool {
    target == "timestamp" || target == "limit" || target == "ttl"
}

/// What each marker binds, in marker order: a column, `ttl`, `timestamp` or
/// `limit`.
fn targets(plan: &Plan) -> Vec<(String, Term)> {
    let mut targets: Vec<(String, Term)> = Vec::new();
    let relations = |targets: &mut Vec<(String, Term)>, relations: &[Relation]| {
        for relation in relations {
            for (column, term) in relation.columns.iter().zip(&relation.terms) {
                targets.push((column.clone(), term.clone()));
            }
        }
    };
    match plan {
        Plan::Insert {
            values,
            ttl,
            timestamp,
            ..
        } => {
            targets.extend(values.iter().cloned());
            targets.extend(ttl.iter().map(|t| ("ttl".to_owned(), t.clone())));
            targets.extend(
                timestamp
                    .iter()
                    .map(|t| ("timestamp".to_owned(), t.clone())),
            );
        }
        Plan::Update {
            timestamp,
            set,
            keys,
            condition,
            ..
        } => {
            targets.extend(
                timestamp
                    .iter()
                    .map(|t| ("timestamp".to_owned(), t.clone())),
            );
            targets.extend(set.iter().cloned());
            relations(&mut targets, keys);
            if let Condition::Equal(pairs) = condition {
                targets.extend(pairs.iter().cloned());
            }
        }
        Plan::Delete {
            timestamp, keys, ..
        } => {
            targets.extend(
                timestamp
                    .iter()
                    .map(|t| ("timestamp".to_owned(), t.clone())),
            );
            relations(&mut targets, keys);
        }
        Plan::Select { filter, limit, .. } => {
            relations(&mut targets, filter);
            targets.extend(limit.iter().map(|t| ("limit".to_owned(), t.clone())));
        }
    }
    targets
}

/// Each bound value against the marker it binds.
fn bound(table: &TableDef, targets: &[(String, Term)], binds: &[Bind]) -> Vec<String> {
    let markers: Vec<&String> = targets
        .iter()
        .filter(|(_, term)| matches!(term, Term::Marker(_)))
        .map(|(target, _)| target)
        .collect();
    let mut problems = Vec::new();
    if markers.len() != binds.len() {
        problems.push(format!(
            "{} markers but {} values bound",
            markers.len(),
            binds.len()
        ));
    }
    for (at, (target, bind)) in markers.iter().zip(binds).enumerate() {
        let names_it = bind.name == target.as_str()
            || bind
                .name
                .strip_prefix(target.as_str())
                .is_some_and(|rest| rest.starts_with('_'));
        if !names_it {
            problems.push(format!(
                "value {at} ({}) binds the marker of {target}",
                bind.name
            ));
        }
        let expected = match target.as_str() {
            "timestamp" => Some("bigint"),
            "limit" | "ttl" => Some("int"),
            column => table.column_type(column),
        };
        if let Some(expected) = expected
            && expected != bind.cql_type
        {
            problems.push(format!(
                "value {at} ({}) is a {} for a {expected} marker ({target})",
                bind.name, bind.cql_type
            ));
        }
    }
    problems
}

/// A single-row write names its whole primary key by equality.
fn full_key(table: &TableDef, keys: &[Relation]) -> Vec<String> {
    let mut problems = Vec::new();
    for key in table.partition_key.iter().chain(&table.clustering) {
        let named = keys
            .iter()
            .any(|r| r.cmp == Cmp::Eq && r.columns.len() == 1 && &r.columns[0] == key);
        if !named {
            problems.push(format!("key column {key} is not named by equality"));
        }
    }
    for relation in keys {
        for column in &relation.columns {
            if !table.is_key(column) {
                problems.push(format!("{column} in WHERE is not a key column"));
            }
        }
    }
    problems
}

/// A read names its whole partition key by equality and restricts
/// clustering columns only as ScyllaDB serves without filtering.
fn read_key(table: &TableDef, filter: &[Relation]) -> Vec<String> {
    let mut problems = Vec::new();
    for key in &table.partition_key {
        let named = filter
            .iter()
            .any(|r| r.cmp == Cmp::Eq && r.columns.len() == 1 && &r.columns[0] == key);
        if !named {
            problems.push(format!(
                "partition key column {key} is not named by equality"
            ));
        }
    }
    let on_clustering: Vec<&Relation> = filter
        .iter()
        .filter(|r| !r.columns.iter().all(|c| table.partition_key.contains(c)))
        .collect();
    for relation in &on_clustering {
        for column in &relation.columns {
            if table.partition_key.contains(column) {
                problems.push(format!("partition key column {column} is ranged"));
            } else if !table.clustering.contains(column) {
                problems.push(format!(
                    "{column} is not a key column (needs ALLOW FILTERING)"
                ));
            }
        }
        if relation.columns.len() > 1 {
            let equal_prefix = on_clustering
                .iter()
                .filter(|r| r.cmp == Cmp::Eq && r.columns.len() == 1)
                .count();
            let expected = table
                .clustering
                .get(equal_prefix..equal_prefix + relation.columns.len());
            if expected != Some(relation.columns.as_slice()) {
                problems.push(format!(
                    "{:?} are not the next clustering columns in order",
                    relation.columns
                ));
            }
        }
    }
    // ScyllaDB refuses single- and multi-column restrictions on clustering
    // columns together (scylladb#4244).
    let single = on_clustering
        .iter()
        .any(|r| r.columns.len() == 1 && r.cmp != Cmp::Eq);
    let multi = on_clustering.iter().any(|r| r.columns.len() > 1);
    if single && multi {
        problems.push("mixes single- and multi-column clustering restrictions".into());
    }
    // A range on a clustering column needs every earlier one fixed.
    for relation in on_clustering.iter().filter(|r| r.columns.len() == 1) {
        let Some(at) = table
            .clustering
            .iter()
            .position(|c| c == &relation.columns[0])
        else {
            continue;
        };
        for earlier in &table.clustering[..at] {
            let fixed = on_clustering
                .iter()
                .any(|r| r.cmp == Cmp::Eq && r.columns.len() == 1 && &r.columns[0] == earlier);
            if !fixed {
                problems.push(format!(
                    "{} is restricted but the earlier clustering column {earlier} is not fixed",
                    relation.columns[0]
                ));
            }
        }
    }
    problems
}

/// An `IF` tests regular columns of the table.
fn conditions(table: &TableDef, condition: &Condition) -> Vec<String> {
    let Condition::Equal(pairs) = condition else {
        return Vec::new();
    };
    pairs
        .iter()
        .filter_map(|(column, _)| {
            if table.column_type(column).is_none() {
                Some(format!("IF names {column}, not a column of {}", table.name))
            } else if table.is_key(column) {
                Some(format!("IF names key column {column}"))
            } else {
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::migration_tables;

    fn tables() -> Vec<TableDef> {
        migration_tables(schemas::cql::MIGRATIONS).expect("migrations")
    }

    const fn bind(name: &'static str, cql_type: &'static str) -> Bind {
        Bind { name, cql_type }
    }

    const WRITE: &str =
        "INSERT INTO counters (key, value, through_offset) VALUES (?, ?, ?) USING TIMESTAMP ?";
    const WRITE_BINDS: &[Bind] = &[
        bind("key", "uuid"),
        bind("value", "bigint"),
        bind("through_offset", "bigint"),
        bind("timestamp", "bigint"),
    ];

    #[test]
    fn a_sound_statement_has_no_problems() {
        assert_eq!(
            problems(WRITE, Some(WRITE_BINDS), &tables()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_mutation_of_a_statement_is_caught() {
        let tables = tables();
        for (cql, binds) in [
            // a column renamed
            (WRITE.replace("through_offset", "through"), WRITE_BINDS),
            // a marker dropped
            (WRITE.replace("USING TIMESTAMP ?", ""), WRITE_BINDS),
            // values bound in another order
            (
                WRITE.replace(
                    "(key, value, through_offset)",
                    "(key, through_offset, value)",
                ),
                WRITE_BINDS,
            ),
            // a value of another type
            (
                WRITE.to_owned(),
                &[
                    bind("key", "text"),
                    WRITE_BINDS[1],
                    WRITE_BINDS[2],
                    WRITE_BINDS[3],
                ][..],
            ),
            // a key column missing
            (
                WRITE
                    .replace("(key, value", "(value")
                    .replacen("?, ", "", 1),
                &WRITE_BINDS[1..],
            ),
            // a table renamed
            (WRITE.replace("counters", "counter"), WRITE_BINDS),
        ] {
            assert!(!problems(&cql, Some(binds), &tables).is_empty(), "{cql}");
        }
    }

    #[test]
    fn reads_that_would_scan_or_filter_are_caught() {
        let tables = tables();
        for bad in [
            "SELECT body FROM errors_by_day WHERE kind = ? AND occurred_at >= ?",
            "SELECT value FROM counters WHERE key = ? ALLOW FILTERING",
            "SELECT name FROM events_by_hour WHERE hour > ?",
            "SELECT name FROM events_by_session WHERE session_id = ? AND name = ?",
            "SELECT name FROM events_by_session WHERE session_id = ? AND (event_id, occurred_at) > (?, ?)",
            "SELECT name FROM events_by_session WHERE session_id = ? AND (occurred_at, event_id) > (?, ?) AND occurred_at < ?",
            "SELECT name FROM events WHERE session_id = ?",
            "SELECT clicks FROM clicks_by_day WHERE short_code = ? AND browser = ?",
            "SELECT nothing FROM counters WHERE key = ?",
        ] {
            assert!(!problems(bad, None, &tables).is_empty(), "{bad}");
        }
    }

    #[test]
    fn conditions_test_regular_columns_and_writes_name_whole_keys() {
        let tables = tables();
        for bad in [
            "UPDATE partition_checkpoints SET owner = ? WHERE topic = ? IF EXISTS",
            "UPDATE partition_checkpoints SET owner = ? WHERE topic = ? AND partition = ? IF missing = ?",
            "UPDATE partition_checkpoints SET owner = ? WHERE topic = ? AND partition = ? IF topic = ?",
            "DELETE FROM rule_state WHERE topic = ? AND partition = ?",
        ] {
            assert!(!problems(bad, None, &tables).is_empty(), "{bad}");
        }
    }
}
