//! CQL text to a plan the tables can run, through a real CQL parser
//! (`cql3-parser`, the tree-sitter CQL grammar shotover uses).
//!
//! That grammar refuses bind markers where ScyllaDB takes them (`SET c = ?`,
//! `USING TTL ? AND TIMESTAMP ?`, `LIMIT ?`) and a clustering order of several
//! columns, so the text is rewritten first: every `?` becomes the literal
//! [`MARKER`], and `CLUSTERING ORDER BY (a ASC, b ASC)` one clause per
//! column. Markers are then numbered in the order the grammar puts them
//! (`USING`, `SET`, `WHERE`, `IF` for an update; values then `USING` for an
//! insert), and the count must equal the `?`s of the text, so nothing the
//! parser dropped goes unnoticed.

use cql3_parser::alter_table::AlterTableOperation;
use cql3_parser::cassandra_ast::CassandraAST;
use cql3_parser::cassandra_statement::CassandraStatement;
use cql3_parser::common::{
    DataTypeName, FQName, Identifier, Operand, RelationElement, RelationOperator,
};
use cql3_parser::insert::InsertValues;
use cql3_parser::select::SelectElement;
use thiserror::Error;

/// What a `?` is rewritten to before parsing.
pub const MARKER: &str = "987654321";

/// The clustering column added to `PRIMARY KEY ((a, b))`, which the grammar
/// refuses without one; removed again after parsing.
const NO_CLUSTERING: &str = "sim_no_clustering_column";

/// Why a text is not a statement the simulation runs.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
#[error("{cql}: {reason}")]
pub struct ParseError {
    pub cql: String,
    pub reason: String,
}

/// A value in a statement: a bind marker (its index), a literal, or null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    Marker(usize),
    /// The literal's text as written (`0`, `'local'`).
    Literal(String),
    Null,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

/// `column op term`, or `(a, b) op (x, y)` (lexicographic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relation {
    pub columns: Vec<String>,
    pub cmp: Cmp,
    pub terms: Vec<Term>,
}

/// The condition of a lightweight transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// A plain write.
    None,
    /// `IF NOT EXISTS`.
    NotExists,
    /// `IF EXISTS`.
    Exists,
    /// `IF a = ? AND b = ?`.
    Equal(Vec<(String, Term)>),
}

/// A statement, ready to run against the tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    Insert {
        table: String,
        values: Vec<(String, Term)>,
        condition: Condition,
        /// `USING TTL`: bound and checked, never enforced (the simulation
        /// has no clock; the stores never rely on expiry for correctness).
        ttl: Option<Term>,
        timestamp: Option<Term>,
    },
    Update {
        table: String,
        timestamp: Option<Term>,
        set: Vec<(String, Term)>,
        keys: Vec<Relation>,
        condition: Condition,
    },
    Delete {
        table: String,
        timestamp: Option<Term>,
        keys: Vec<Relation>,
    },
    Select {
        table: String,
        columns: Vec<String>,
        filter: Vec<Relation>,
        limit: Option<Term>,
        allow_filtering: bool,
    },
}

impl Plan {
    /// Forgets `USING TIMESTAMP` (its marker stays bound, unread).
    pub fn drop_write_timestamp(&mut self) {
        match self {
            Self::Insert { timestamp, .. }
            | Self::Update { timestamp, .. }
            | Self::Delete { timestamp, .. } => *timestamp = None,
            Self::Select { .. } => {}
        }
    }

    /// The table the statement names.
    pub fn table(&self) -> &str {
        match self {
            Self::Insert { table, .. }
            | Self::Update { table, .. }
            | Self::Delete { table, .. }
            | Self::Select { table, .. } => table,
        }
    }
}

/// A column of a table and its CQL type (lowercase: `text`, `bigint`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub cql_type: String,
}

/// A table as its migration creates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    pub name: String,
    pub columns: Vec<Column>,
    pub partition_key: Vec<String>,
    pub clustering: Vec<String>,
}

impl TableDef {
    /// A column's CQL type.
    pub fn column_type(&self, name: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|column| column.name == name)
            .map(|column| column.cql_type.as_str())
    }

    /// Whether `name` is part of the primary key.
    pub fn is_key(&self, name: &str) -> bool {
        self.partition_key
            .iter()
            .chain(&self.clustering)
            .any(|key| key == name)
    }
}

/// Parses one DML statement into a plan.
///
/// # Errors
///
/// [`ParseError`] if the grammar refuses it or it is not an insert, update,
/// delete or select.
pub fn plan(cql: &str) -> Result<Plan, ParseError> {
    let statement = parse_one(cql)?;
    let mut markers = Markers::default();
    let fail = |reason: String| ParseError {
        cql: cql.to_owned(),
        reason,
    };
    let plan = match statement {
        CassandraStatement::Insert(insert) => {
            let InsertValues::Values(values) = &insert.values else {
                return Err(fail("INSERT JSON is not supported".into()));
            };
            if values.len() != insert.columns.len() {
                return Err(fail("as many values as columns".into()));
            }
            let values = insert
                .columns
                .iter()
                .zip(values)
                .map(|(column, value)| Ok((ident(column), markers.term(value)?)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(fail)?;
            let ttl = insert
                .using_ttl
                .as_ref()
                .and_then(|using| using.ttl)
                .map(|ttl| markers.number(ttl));
            let timestamp = insert
                .using_ttl
                .as_ref()
                .and_then(|using| using.timestamp)
                .map(|ts| markers.number(ts));
            Plan::Insert {
                table: table(&insert.table_name),
                values,
                ttl,
                condition: if insert.if_not_exists {
                    Condition::NotExists
                } else {
                    Condition::None
                },
                timestamp,
            }
        }
        CassandraStatement::Update(update) => {
            let timestamp = update
                .using_ttl
                .as_ref()
                .and_then(|using| using.timestamp)
                .map(|ts| markers.number(ts));
            let set = update
                .assignments
                .iter()
                .map(|assignment| {
                    if assignment.operator.is_some() || assignment.name.idx.is_some() {
                        return Err("only `column = value` assignments".to_owned());
                    }
                    Ok((
                        ident(&assignment.name.column),
                        markers.term(&assignment.value)?,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(fail)?;
            let keys = relations(&update.where_clause, &mut markers).map_err(fail)?;
            let condition =
                condition(&update.if_clause, update.if_exists, &mut markers).map_err(fail)?;
            Plan::Update {
                table: table(&update.table_name),
                timestamp,
                set,
                keys,
                condition,
            }
        }
        CassandraStatement::Delete(delete) => {
            if !delete.columns.is_empty() || !delete.if_clause.is_empty() || delete.if_exists {
                return Err(fail("only whole-row deletes without conditions".into()));
            }
            let timestamp = delete.timestamp.map(|ts| markers.number(ts));
            Plan::Delete {
                table: table(&delete.table_name),
                timestamp,
                keys: relations(&delete.where_clause, &mut markers).map_err(fail)?,
            }
        }
        CassandraStatement::Select(select) => {
            if select.distinct || select.json || select.order.is_some() {
                return Err(fail("DISTINCT, JSON and ORDER BY are not supported".into()));
            }
            let columns = select
                .columns
                .iter()
                .map(|column| match column {
                    SelectElement::Column(named) if named.alias.is_none() => Ok(ident(&named.name)),
                    other => Err(format!("only plain columns are selected, not {other}")),
                })
                .collect::<Result<Vec<_>, String>>()
                .map_err(fail)?;
            let filter = relations(&select.where_clause, &mut markers).map_err(fail)?;
            let limit = select
                .limit
                .map(|limit| markers.number(u64::try_from(limit).unwrap_or(0)));
            Plan::Select {
                table: table(&select.table_name),
                columns,
                filter,
                limit,
                allow_filtering: select.filtering,
            }
        }
        other => return Err(fail(format!("not a statement the stores run: {other}"))),
    };
    let written = cql.matches('?').count();
    if markers.next != written {
        return Err(fail(format!(
            "the parser saw {} bind markers, the text has {written}",
            markers.next
        )));
    }
    Ok(plan)
}

/// Parses a migration's `CREATE TABLE`.
///
/// # Errors
///
/// [`ParseError`] if the grammar refuses it or it is not a `CREATE TABLE`.
pub fn table_def(cql: &str) -> Result<TableDef, ParseError> {
    let fail = |reason: String| ParseError {
        cql: cql.to_owned(),
        reason,
    };
    let CassandraStatement::CreateTable(create) = parse_one(cql)? else {
        return Err(fail("not a CREATE TABLE".into()));
    };
    let columns: Vec<Column> = create
        .columns
        .iter()
        .map(|column| Column {
            name: ident(&column.name),
            cql_type: type_name(&column.data_type.name),
        })
        .collect();
    let (partition_key, clustering) = match &create.key {
        Some(key) => (
            key.partition.iter().map(ident).collect(),
            key.clustering
                .iter()
                .map(ident)
                .filter(|column| column != NO_CLUSTERING)
                .collect(),
        ),
        None => (
            create
                .columns
                .iter()
                .filter(|column| column.primary_key)
                .map(|column| ident(&column.name))
                .collect(),
            Vec::new(),
        ),
    };
    let def = TableDef {
        name: table(&create.name),
        columns,
        partition_key,
        clustering,
    };
    for key in def.partition_key.iter().chain(&def.clustering) {
        if def.column_type(key).is_none() {
            return Err(fail(format!("key column {key} is not a column")));
        }
    }
    if def.partition_key.is_empty() {
        return Err(fail("no partition key".into()));
    }
    Ok(def)
}

/// The tables as the migrations leave them: each `CREATE TABLE` in order,
/// with the columns later `ALTER TABLE ... ADD`s give them.
///
/// # Errors
///
/// [`ParseError`] for the first statement that is neither a valid `CREATE
/// TABLE` nor an `ALTER TABLE ... ADD` of new columns to a created table.
pub fn migration_tables(
    migrations: &[schemas::cql::Migration],
) -> Result<Vec<TableDef>, ParseError> {
    let mut tables: Vec<TableDef> = Vec::new();
    for statement in migrations
        .iter()
        .flat_map(|migration| schemas::cql::statements(migration.cql))
    {
        if let CassandraStatement::AlterTable(alter) = parse_one(&statement)? {
            let fail = |reason: String| ParseError {
                cql: statement.clone(),
                reason,
            };
            let name = table(&alter.name);
            let AlterTableOperation::Add(columns) = alter.operation else {
                return Err(fail("only ALTER TABLE ... ADD is simulated".into()));
            };
            let def = tables
                .iter_mut()
                .find(|def| def.name == name)
                .ok_or_else(|| fail(format!("table {name} is not created before")))?;
            for column in columns {
                let name = ident(&column.name);
                if def.column_type(&name).is_some() {
                    return Err(fail(format!("column {name} exists already")));
                }
                def.columns.push(Column {
                    name,
                    cql_type: type_name(&column.data_type.name),
                });
            }
        } else {
            tables.push(table_def(&statement)?);
        }
    }
    Ok(tables)
}

/// Rewrites what the grammar refuses (see the module docs) and parses.
fn parse_one(cql: &str) -> Result<CassandraStatement, ParseError> {
    let fail = |reason: &str| ParseError {
        cql: cql.to_owned(),
        reason: reason.to_owned(),
    };
    if cql.contains(MARKER) || cql.contains(NO_CLUSTERING) {
        return Err(fail("holds the marker sentinel"));
    }
    let mut text = split_clustering_order(&cql.replace('?', MARKER));
    if text
        .trim_start()
        .to_ascii_uppercase()
        .starts_with("CREATE TABLE")
    {
        text = text.replace("))", &format!("), {NO_CLUSTERING})"));
    }
    // The grammar's crate panics on some input it refuses (unreachable!()).
    let parsed = std::panic::catch_unwind(move || {
        let ast = CassandraAST::new(&text);
        if ast.has_error() || ast.statements.len() != 1 {
            return None;
        }
        ast.statements
            .into_iter()
            .next()
            .map(|parsed| parsed.statement)
    });
    match parsed {
        Ok(Some(statement)) => Ok(statement),
        Ok(None) => Err(fail("the CQL grammar refuses it")),
        Err(_) => Err(fail("the CQL grammar refuses it (the parser panicked)")),
    }
}

/// `CLUSTERING ORDER BY (a ASC, b ASC)` as one clause per column.
fn split_clustering_order(cql: &str) -> String {
    const CLAUSE: &str = "CLUSTERING ORDER BY (";
    let upper = cql.to_ascii_uppercase();
    let Some(start) = upper.find(CLAUSE) else {
        return cql.to_owned();
    };
    let open = start + CLAUSE.len();
    let Some(close) = cql[open..].find(')').map(|at| open + at) else {
        return cql.to_owned();
    };
    let clauses: Vec<String> = cql[open..close]
        .split(',')
        .map(|column| format!("CLUSTERING ORDER BY ({})", column.trim()))
        .collect();
    format!(
        "{}{}{}",
        &cql[..start],
        clauses.join(" AND "),
        &cql[close + 1..]
    )
}

/// Numbers markers in the order they are met.
#[derive(Debug, Default)]
struct Markers {
    next: usize,
}

impl Markers {
    fn marker(&mut self) -> Term {
        self.next += 1;
        Term::Marker(self.next - 1)
    }

    /// A `USING TIMESTAMP` or `LIMIT` number: a marker if it is the sentinel.
    fn number(&mut self, value: u64) -> Term {
        if value.to_string() == MARKER {
            self.marker()
        } else {
            Term::Literal(value.to_string())
        }
    }

    fn term(&mut self, operand: &Operand) -> Result<Term, String> {
        match operand {
            Operand::Const(text) if text == MARKER => Ok(self.marker()),
            Operand::Const(text) => Ok(Term::Literal(text.clone())),
            Operand::Null => Ok(Term::Null),
            Operand::Param(name) => Err(format!("named marker {name} is not supported")),
            other => Err(format!("unsupported value {other}")),
        }
    }
}

fn relations(elements: &[RelationElement], markers: &mut Markers) -> Result<Vec<Relation>, String> {
    elements
        .iter()
        .map(|element| {
            let cmp = match element.oper {
                RelationOperator::Equal => Cmp::Eq,
                RelationOperator::LessThan => Cmp::Lt,
                RelationOperator::LessThanOrEqual => Cmp::Le,
                RelationOperator::GreaterThan => Cmp::Gt,
                RelationOperator::GreaterThanOrEqual => Cmp::Ge,
                ref other => return Err(format!("unsupported operator {other}")),
            };
            let (columns, terms) = match (&element.obj, &element.value) {
                (Operand::Column(column), value) => {
                    (vec![ident(column)], vec![markers.term(value)?])
                }
                (Operand::Tuple(columns), Operand::Tuple(values))
                    if columns.len() == values.len() =>
                {
                    let columns = columns
                        .iter()
                        .map(|column| match column {
                            Operand::Column(column) => Ok(ident(column)),
                            other => Err(format!("not a column: {other}")),
                        })
                        .collect::<Result<Vec<_>, String>>()?;
                    let terms = values
                        .iter()
                        .map(|value| markers.term(value))
                        .collect::<Result<Vec<_>, String>>()?;
                    (columns, terms)
                }
                _ => return Err(format!("unsupported relation {element}")),
            };
            Ok(Relation {
                columns,
                cmp,
                terms,
            })
        })
        .collect()
}

fn condition(
    elements: &[RelationElement],
    if_exists: bool,
    markers: &mut Markers,
) -> Result<Condition, String> {
    if if_exists {
        return Ok(Condition::Exists);
    }
    if elements.is_empty() {
        return Ok(Condition::None);
    }
    let relations = relations(elements, markers)?;
    relations
        .into_iter()
        .map(|relation| {
            match (
                relation.cmp,
                relation.columns.as_slice(),
                relation.terms.as_slice(),
            ) {
                (Cmp::Eq, [column], [term]) => Ok((column.clone(), term.clone())),
                _ => Err("only `IF column = value` conditions".to_owned()),
            }
        })
        .collect::<Result<_, _>>()
        .map(Condition::Equal)
}

/// An identifier as CQL resolves it: unquoted ones are case-insensitive.
fn ident(identifier: &Identifier) -> String {
    match identifier {
        Identifier::Unquoted(name) => name.to_lowercase(),
        Identifier::Quoted(name) => name.clone(),
    }
}

/// A table name; a keyspace-qualified one keeps its keyspace.
fn table(name: &FQName) -> String {
    match &name.keyspace {
        Some(keyspace) => format!("{}.{}", ident(keyspace), ident(&name.name)),
        None => ident(&name.name),
    }
}

fn type_name(name: &DataTypeName) -> String {
    match name {
        DataTypeName::VarChar => "text".to_owned(),
        other => other.to_string().to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_are_numbered_in_grammar_order_and_counted() {
        let plan = plan(
            "UPDATE t USING TIMESTAMP ? SET a = ?, b = null WHERE k = ? AND c = ? IF d = ? AND e = ?",
        )
        .expect("parses");
        let Plan::Update {
            timestamp,
            set,
            keys,
            condition,
            ..
        } = plan
        else {
            panic!("an update");
        };
        assert_eq!(timestamp, Some(Term::Marker(0)));
        assert_eq!(
            set,
            [("a".into(), Term::Marker(1)), ("b".into(), Term::Null)]
        );
        assert_eq!(keys[1].terms, [Term::Marker(3)]);
        assert_eq!(
            condition,
            Condition::Equal(vec![
                ("d".into(), Term::Marker(4)),
                ("e".into(), Term::Marker(5))
            ])
        );
        let insert = plan_insert("INSERT INTO t (a, b) VALUES (?, 0) USING TIMESTAMP ?");
        assert_eq!(insert.1, Some(Term::Marker(1)));
        assert_eq!(insert.0[1], ("b".into(), Term::Literal("0".into())));
    }

    fn plan_insert(cql: &str) -> (Vec<(String, Term)>, Option<Term>) {
        match plan(cql).expect("parses") {
            Plan::Insert {
                values, timestamp, ..
            } => (values, timestamp),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tuples_limits_and_filtering_are_read() {
        let Plan::Select {
            filter,
            limit,
            allow_filtering,
            ..
        } = plan("SELECT a FROM t WHERE k = ? AND (c, d) > (?, ?) LIMIT ? ALLOW FILTERING")
            .expect("parses")
        else {
            panic!("a select");
        };
        assert_eq!(filter[1].columns, ["c", "d"]);
        assert_eq!(filter[1].terms, [Term::Marker(1), Term::Marker(2)]);
        assert_eq!(limit, Some(Term::Marker(3)));
        assert!(allow_filtering);
    }

    #[test]
    fn what_the_grammar_refuses_is_an_error() {
        assert!(plan("SELECT value FROM counters WHERE key = ?, ?").is_err());
        assert!(plan("UPDATE t SET a = a + ? WHERE k = ?").is_err());
        assert!(plan("SELECT FROM").is_err());
    }

    #[test]
    fn every_migration_creates_a_table_with_its_keys() {
        let tables = migration_tables(schemas::cql::MIGRATIONS).expect("migrations parse");
        let day = tables
            .iter()
            .find(|t| t.name == "clicks_by_day")
            .expect("clicks_by_day");
        assert_eq!(day.partition_key, ["short_code"]);
        assert_eq!(day.clustering, ["day", "browser", "os", "device"]);
        assert_eq!(day.column_type("day"), Some("date"));
        let counters = tables
            .iter()
            .find(|t| t.name == "counters")
            .expect("counters");
        assert_eq!(counters.partition_key, ["key"]);
        let errors = tables
            .iter()
            .find(|t| t.name == "errors_by_day")
            .expect("errors");
        assert_eq!(errors.partition_key, ["kind", "day"]);
        assert_eq!(errors.clustering, ["occurred_at", "event_id"]);
        let by_minute = tables
            .iter()
            .find(|t| t.name == "errors_by_minute")
            .expect("errors_by_minute");
        assert_eq!(by_minute.column_type("replay_run"), Some("text"));
    }

    #[test]
    fn an_alter_adds_columns_to_a_created_table_only() {
        let migration = |cql: &'static str| schemas::cql::Migration {
            version: 1,
            name: "t",
            cql,
        };
        let create = "CREATE TABLE IF NOT EXISTS things (key uuid PRIMARY KEY, value bigint);";
        for refused in [
            "ALTER TABLE others ADD extra text;",
            "ALTER TABLE things ADD value text;",
            "ALTER TABLE things DROP value;",
        ] {
            assert!(
                migration_tables(&[migration(create), migration(refused)]).is_err(),
                "{refused}"
            );
        }
        let tables = migration_tables(&[
            migration(create),
            migration("ALTER TABLE things ADD extra bigint;"),
        ])
        .expect("parses");
        assert_eq!(tables[0].column_type("extra"), Some("bigint"));
    }
}
