//! Every statement of the processor's ScyllaDB store, checked offline
//! against the migrations by a real CQL grammar (`cql_sim::check`): tables
//! and columns exist, every bound value binds the marker of its column with
//! its CQL type, in order, every read and write names a full key, nothing
//! filters, every `IF` tests regular columns.

use cql_sim::check::problems;
use cql_sim::parse::migration_tables;
use processor::store::ScyllaStore;
use schemas::cql::Statement;

#[test]
fn every_processor_statement_matches_the_migrations() {
    let tables = migration_tables(schemas::cql::MIGRATIONS).expect("the migrations parse");
    let statements = ScyllaStore::statements();
    assert!(statements.len() >= 29, "{}", statements.len());
    for statement in statements {
        let found = problems(statement.cql, Some(statement.binds), &tables);
        assert!(found.is_empty(), "{}: {found:?}", statement.name);
    }
}

#[test]
fn a_mutated_statement_fails_the_check() {
    let tables = migration_tables(schemas::cql::MIGRATIONS).expect("the migrations parse");
    for original in ScyllaStore::statements() {
        let mutations = [
            // The first marker dropped.
            original.cql.replacen(", ?", "", 1),
            // A column renamed.
            original.cql.replacen("partition", "partitions", 1),
        ];
        for cql in mutations.into_iter().filter(|cql| cql != original.cql) {
            let mutated = Statement {
                name: original.name,
                cql: Box::leak(cql.into_boxed_str()),
                binds: original.binds,
            };
            assert!(
                !problems(mutated.cql, Some(mutated.binds), &tables).is_empty(),
                "{}: {}",
                mutated.name,
                mutated.cql
            );
        }
    }
}
