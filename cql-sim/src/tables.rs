//! In-memory tables with the ScyllaDB semantics the stores rely on:
//!
//! - every cell carries a write timestamp; the highest wins, whatever
//!   order writes arrive in (last-write-wins). On a tie a deletion wins
//!   over a value, and between values the greater serialized bytes win
//!   (ScyllaDB's `compare_atomic_cell_for_merge`);
//! - `INSERT` writes a row marker and the named cells only; `UPDATE`
//!   writes cells only; `DELETE` writes a row tombstone that shadows
//!   everything at or below its timestamp;
//! - a lightweight transaction reads and writes atomically (the caller
//!   applies one at a time: linearizable) and answers `[applied]`, with the
//!   current values of the condition's columns when not applied;
//! - a write without `USING TIMESTAMP` gets the coordinator's clock at the
//!   moment it is applied (the driver's default: server-side timestamps);
//! - reads name a full partition key (or say `ALLOW FILTERING`) and return
//!   rows in clustering order, every value type-checked against the column.

use std::collections::{BTreeMap, HashMap};

use scylla::value::{CqlDate, CqlTimestamp, CqlValue};
use thiserror::Error;

use crate::parse::{Cmp, Condition, Plan, Relation, TableDef, Term};
use schemas::cql::CqlRow;

/// Why a statement was refused, as the server would refuse it.
#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum Refused {
    #[error("unconfigured table {0}")]
    UnknownTable(String),
    #[error("undefined column {column} in {table}")]
    UnknownColumn { table: String, column: String },
    #[error("{0}")]
    Invalid(String),
}

/// A stored value, ordered as the key comparisons need.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    Boolean(bool),
    Int(i32),
    BigInt(i64),
    Text(String),
    Uuid(uuid::Uuid),
    Date(u32),
    Timestamp(i64),
    Blob(Vec<u8>),
}

impl Value {
    /// The value a bound `CqlValue` holds for a column of `cql_type`.
    fn bound(cql_type: &str, value: CqlValue) -> Result<Self, String> {
        Ok(match (cql_type, value) {
            ("boolean", CqlValue::Boolean(v)) => Self::Boolean(v),
            ("int", CqlValue::Int(v)) => Self::Int(v),
            ("bigint", CqlValue::BigInt(v)) => Self::BigInt(v),
            ("text" | "varchar", CqlValue::Text(v)) => Self::Text(v),
            ("uuid", CqlValue::Uuid(v)) => Self::Uuid(v),
            ("date", CqlValue::Date(CqlDate(v))) => Self::Date(v),
            ("timestamp", CqlValue::Timestamp(CqlTimestamp(v))) => Self::Timestamp(v),
            ("blob", CqlValue::Blob(v)) => Self::Blob(v),
            (cql_type, value) => return Err(format!("a {value:?} bound to a {cql_type} column")),
        })
    }

    /// A literal's value for a column of `cql_type`.
    fn literal(cql_type: &str, text: &str) -> Result<Self, String> {
        let refused = || format!("literal {text} for a {cql_type} column");
        Ok(match cql_type {
            "int" => Self::Int(text.parse().map_err(|_| refused())?),
            "bigint" => Self::BigInt(text.parse().map_err(|_| refused())?),
            "text" | "varchar" => Self::Text(
                text.strip_prefix('\'')
                    .and_then(|t| t.strip_suffix('\''))
                    .ok_or_else(refused)?
                    .replace("''", "'"),
            ),
            "boolean" => Self::Boolean(text.eq_ignore_ascii_case("true")),
            _ => return Err(refused()),
        })
    }

    fn into_cql(self) -> CqlValue {
        match self {
            Self::Boolean(v) => CqlValue::Boolean(v),
            Self::Int(v) => CqlValue::Int(v),
            Self::BigInt(v) => CqlValue::BigInt(v),
            Self::Text(v) => CqlValue::Text(v),
            Self::Uuid(v) => CqlValue::Uuid(v),
            Self::Date(v) => CqlValue::Date(CqlDate(v)),
            Self::Timestamp(v) => CqlValue::Timestamp(CqlTimestamp(v)),
            Self::Blob(v) => CqlValue::Blob(v),
        }
    }

    /// The value's bytes on the wire: ties between cells compare these.
    fn serialized(&self) -> Vec<u8> {
        match self {
            Self::Boolean(v) => vec![u8::from(*v)],
            Self::Int(v) => v.to_be_bytes().to_vec(),
            Self::BigInt(v) | Self::Timestamp(v) => v.to_be_bytes().to_vec(),
            Self::Text(v) => v.as_bytes().to_vec(),
            Self::Uuid(v) => v.as_bytes().to_vec(),
            Self::Date(v) => v.to_be_bytes().to_vec(),
            Self::Blob(v) => v.clone(),
        }
    }
}

/// One cell: a value (`None`: deleted) and its write timestamp.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cell {
    timestamp: i64,
    value: Option<Value>,
}

impl Cell {
    /// Whether `self` wins over `other` when both are written to one cell.
    fn beats(&self, other: &Self) -> bool {
        if self.timestamp != other.timestamp {
            return self.timestamp > other.timestamp;
        }
        match (&self.value, &other.value) {
            (None, Some(_)) => true,
            (Some(_), None) | (None, None) => false,
            (Some(mine), Some(theirs)) => mine.serialized() > theirs.serialized(),
        }
    }
}

/// A row: its marker (from `INSERT`), tombstone and regular cells.
#[derive(Debug, Clone, Default)]
struct Row {
    marker: Option<i64>,
    deleted_at: Option<i64>,
    cells: HashMap<String, Cell>,
}

impl Row {
    fn shadowed(&self, timestamp: i64) -> bool {
        self.deleted_at.is_some_and(|deleted| timestamp <= deleted)
    }

    fn write(&mut self, column: &str, cell: Cell) {
        match self.cells.get(column) {
            Some(old) if !cell.beats(old) => {}
            _ => {
                self.cells.insert(column.to_owned(), cell);
            }
        }
    }

    fn value(&self, column: &str) -> Option<&Value> {
        self.cells
            .get(column)
            .filter(|cell| !self.shadowed(cell.timestamp))
            .and_then(|cell| cell.value.as_ref())
    }

    fn is_live(&self) -> bool {
        self.marker.is_some_and(|at| !self.shadowed(at))
            || self
                .cells
                .values()
                .any(|cell| cell.value.is_some() && !self.shadowed(cell.timestamp))
    }
}

/// A partition's rows by clustering key.
type Clustered = BTreeMap<Vec<Value>, Row>;

/// One table's definition and rows, by partition key then clustering key.
#[derive(Debug, Clone)]
struct Table {
    def: TableDef,
    partitions: BTreeMap<Vec<Value>, Clustered>,
}

/// Every table of a keyspace.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    tables: HashMap<String, Table>,
}

/// The values bound to a statement, read by marker index.
struct Bindings<'a> {
    values: &'a [Option<CqlValue>],
}

impl Bindings<'_> {
    /// A term's value for a column of `cql_type`; `None` for null.
    fn value(&self, term: &Term, cql_type: &str) -> Result<Option<Value>, Refused> {
        match term {
            Term::Null => Ok(None),
            Term::Literal(text) => Value::literal(cql_type, text)
                .map(Some)
                .map_err(Refused::Invalid),
            Term::Marker(index) => match self.values.get(*index) {
                None => Err(Refused::Invalid(format!(
                    "no value bound to marker {index}"
                ))),
                Some(None) => Ok(None),
                Some(Some(value)) => Value::bound(cql_type, value.clone())
                    .map(Some)
                    .map_err(Refused::Invalid),
            },
        }
    }

    fn bigint(&self, term: &Term) -> Result<i64, Refused> {
        match self.value(term, "bigint")? {
            Some(Value::BigInt(value)) => Ok(value),
            _ => Err(Refused::Invalid("a bigint is required".into())),
        }
    }

    fn limit(&self, term: &Term) -> Result<usize, Refused> {
        let limit = match self.value(term, "int")? {
            Some(Value::Int(value)) => value,
            _ => return Err(Refused::Invalid("LIMIT must be an int".into())),
        };
        usize::try_from(limit)
            .ok()
            .filter(|limit| *limit > 0)
            .ok_or_else(|| Refused::Invalid("LIMIT must be strictly positive".into()))
    }
}

impl Tables {
    /// Empty tables as the migrations create them.
    pub fn new(defs: Vec<TableDef>) -> Self {
        Self {
            tables: defs
                .into_iter()
                .map(|def| {
                    (
                        def.name.clone(),
                        Table {
                            def,
                            partitions: BTreeMap::new(),
                        },
                    )
                })
                .collect(),
        }
    }

    /// The live rows of a table, every column (by name) of each; for tests
    /// that check what is stored.
    pub fn dump(&self, table: &str) -> Vec<HashMap<String, CqlValue>> {
        let Some(table) = self.tables.get(table) else {
            return Vec::new();
        };
        let mut rows = Vec::new();
        for (partition, clustered) in &table.partitions {
            for (clustering, row) in clustered {
                if !row.is_live() {
                    continue;
                }
                let mut columns: HashMap<String, CqlValue> = HashMap::new();
                let keys = table.def.partition_key.iter().zip(partition);
                let clusters = table.def.clustering.iter().zip(clustering);
                for (name, value) in keys.chain(clusters) {
                    columns.insert(name.clone(), value.clone().into_cql());
                }
                for column in &table.def.columns {
                    if let Some(value) = row.value(&column.name) {
                        columns.insert(column.name.clone(), value.clone().into_cql());
                    }
                }
                rows.push(columns);
            }
        }
        rows
    }

    /// Runs a plan with its bound values; `now` is the coordinator's clock
    /// (the write timestamp of a write without `USING TIMESTAMP`).
    ///
    /// # Errors
    ///
    /// [`Refused`] as the server would refuse the statement.
    pub fn apply(
        &mut self,
        plan: &Plan,
        values: &[Option<CqlValue>],
        now: i64,
    ) -> Result<Vec<CqlRow>, Refused> {
        let bindings = Bindings { values };
        if let Plan::Select { table, columns, .. } = plan
            && table == "system.local"
            && columns == &["key"]
        {
            // Every node answers its own row: the readiness ping.
            return Ok(vec![vec![Some(CqlValue::Text("local".into()))]]);
        }
        let table = self
            .tables
            .get_mut(plan.table())
            .ok_or_else(|| Refused::UnknownTable(plan.table().to_owned()))?;
        match plan {
            Plan::Select {
                columns,
                filter,
                limit,
                allow_filtering,
                ..
            } => table.select(columns, filter, limit.as_ref(), *allow_filtering, &bindings),
            Plan::Insert {
                values,
                condition,
                timestamp,
                ..
            } => {
                let key: Vec<Relation> = values
                    .iter()
                    .filter(|(column, _)| table.def.is_key(column))
                    .map(|(column, term)| Relation {
                        columns: vec![column.clone()],
                        cmp: Cmp::Eq,
                        terms: vec![term.clone()],
                    })
                    .collect();
                let (partition, clustering) = table.primary_key(&key, &bindings)?;
                let timestamp = match timestamp {
                    Some(term) => bindings.bigint(term)?,
                    None => now,
                };
                let regular: Vec<(String, Option<Value>)> = values
                    .iter()
                    .filter(|(column, _)| !table.def.is_key(column))
                    .map(|(column, term)| {
                        Ok((
                            column.clone(),
                            bindings.value(term, table.column_type(column)?)?,
                        ))
                    })
                    .collect::<Result<_, Refused>>()?;
                let row = table
                    .partitions
                    .entry(partition)
                    .or_default()
                    .entry(clustering)
                    .or_default();
                if *condition == Condition::NotExists && row.is_live() {
                    let mut answer = vec![Some(CqlValue::Boolean(false))];
                    answer.extend(
                        values
                            .iter()
                            .map(|(column, _)| row.value(column).cloned().map(Value::into_cql)),
                    );
                    return Ok(vec![answer]);
                }
                row.marker = Some(row.marker.map_or(timestamp, |at| at.max(timestamp)));
                for (column, value) in regular {
                    row.write(&column, Cell { timestamp, value });
                }
                Ok(applied(condition))
            }
            Plan::Update {
                timestamp,
                set,
                keys,
                condition,
                ..
            } => {
                let (partition, clustering) = table.primary_key(keys, &bindings)?;
                let timestamp = match timestamp {
                    Some(term) => bindings.bigint(term)?,
                    None => now,
                };
                let cells: Vec<(String, Option<Value>)> = set
                    .iter()
                    .map(|(column, term)| {
                        if table.def.is_key(column) {
                            return Err(Refused::Invalid(format!(
                                "PRIMARY KEY part {column} found in SET part"
                            )));
                        }
                        Ok((
                            column.clone(),
                            bindings.value(term, table.column_type(column)?)?,
                        ))
                    })
                    .collect::<Result<_, Refused>>()?;
                let expected: Vec<(String, Option<Value>)> = match condition {
                    Condition::Equal(pairs) => pairs
                        .iter()
                        .map(|(column, term)| {
                            Ok((
                                column.clone(),
                                bindings.value(term, table.column_type(column)?)?,
                            ))
                        })
                        .collect::<Result<_, Refused>>()?,
                    _ => Vec::new(),
                };
                let row = table
                    .partitions
                    .entry(partition)
                    .or_default()
                    .entry(clustering)
                    .or_default();
                let holds = match condition {
                    Condition::None => true,
                    Condition::Exists => row.is_live(),
                    Condition::NotExists => !row.is_live(),
                    Condition::Equal(_) => {
                        row.is_live()
                            && expected
                                .iter()
                                .all(|(column, value)| row.value(column) == value.as_ref())
                    }
                };
                if !holds {
                    let mut answer = vec![Some(CqlValue::Boolean(false))];
                    answer.extend(
                        expected
                            .iter()
                            .map(|(column, _)| row.value(column).cloned().map(Value::into_cql)),
                    );
                    return Ok(vec![answer]);
                }
                for (column, value) in cells {
                    row.write(&column, Cell { timestamp, value });
                }
                Ok(applied(condition))
            }
            Plan::Delete {
                timestamp, keys, ..
            } => {
                let (partition, clustering) = table.primary_key(keys, &bindings)?;
                let timestamp = match timestamp {
                    Some(term) => bindings.bigint(term)?,
                    None => now,
                };
                let row = table
                    .partitions
                    .entry(partition)
                    .or_default()
                    .entry(clustering)
                    .or_default();
                row.deleted_at = Some(row.deleted_at.map_or(timestamp, |at| at.max(timestamp)));
                Ok(Vec::new())
            }
        }
    }
}

/// The answer of an applied write: `[applied] = true` for a transaction.
fn applied(condition: &Condition) -> Vec<CqlRow> {
    if *condition == Condition::None {
        Vec::new()
    } else {
        vec![vec![Some(CqlValue::Boolean(true))]]
    }
}

impl Table {
    fn column_type(&self, column: &str) -> Result<&str, Refused> {
        self.def
            .column_type(column)
            .ok_or_else(|| Refused::UnknownColumn {
                table: self.def.name.clone(),
                column: column.to_owned(),
            })
    }

    /// The single value an equality names for `column`.
    fn equal_to(
        &self,
        relations: &[Relation],
        column: &str,
        bindings: &Bindings<'_>,
    ) -> Result<Option<Value>, Refused> {
        let mut found = None;
        for relation in relations {
            if relation.cmp == Cmp::Eq
                && relation.columns.len() == 1
                && relation.columns[0] == column
            {
                let value = bindings
                    .value(&relation.terms[0], self.column_type(column)?)?
                    .ok_or_else(|| Refused::Invalid(format!("invalid null value for {column}")))?;
                if found.replace(value).is_some() {
                    return Err(Refused::Invalid(format!("{column} restricted twice")));
                }
            }
        }
        Ok(found)
    }

    /// The full primary key of a single-row write: every key column by
    /// equality, nothing else.
    fn primary_key(
        &self,
        relations: &[Relation],
        bindings: &Bindings<'_>,
    ) -> Result<(Vec<Value>, Vec<Value>), Refused> {
        for relation in relations {
            for column in &relation.columns {
                self.column_type(column)?;
                if !self.def.is_key(column) {
                    return Err(Refused::Invalid(format!(
                        "non PRIMARY KEY column {column} in WHERE"
                    )));
                }
            }
        }
        let key = |columns: &[String]| -> Result<Vec<Value>, Refused> {
            columns
                .iter()
                .map(|column| {
                    self.equal_to(relations, column, bindings)?.ok_or_else(|| {
                        Refused::Invalid(format!("missing PRIMARY KEY part {column}"))
                    })
                })
                .collect()
        };
        Ok((key(&self.def.partition_key)?, key(&self.def.clustering)?))
    }

    fn select(
        &self,
        columns: &[String],
        filter: &[Relation],
        limit: Option<&Term>,
        allow_filtering: bool,
        bindings: &Bindings<'_>,
    ) -> Result<Vec<CqlRow>, Refused> {
        for column in columns {
            self.column_type(column)?;
        }
        let limit = limit.map(|term| bindings.limit(term)).transpose()?;
        let partition: Option<Vec<Value>> = self
            .def
            .partition_key
            .iter()
            .map(|column| self.equal_to(filter, column, bindings).transpose())
            .collect::<Option<Result<_, _>>>()
            .transpose()?;
        if partition.is_none() && !allow_filtering {
            return Err(Refused::Invalid(
                "cannot execute this query as it might involve data filtering: the partition key is not restricted".into(),
            ));
        }
        // Resolve every clustering restriction to (positions, cmp, values).
        let mut restrictions = Vec::new();
        for relation in filter {
            if relation
                .columns
                .iter()
                .all(|column| self.def.partition_key.contains(column))
            {
                continue;
            }
            let positions = relation
                .columns
                .iter()
                .map(|column| {
                    self.def.clustering.iter().position(|c| c == column).ok_or_else(|| {
                        Refused::Invalid(format!("{column} is not a clustering column; restricting it needs ALLOW FILTERING"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let values = relation
                .columns
                .iter()
                .zip(&relation.terms)
                .map(|(column, term)| {
                    bindings
                        .value(term, self.column_type(column)?)?
                        .ok_or_else(|| Refused::Invalid(format!("invalid null value for {column}")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            restrictions.push((positions, relation.cmp, values));
        }
        let mut answer = Vec::new();
        let partitions: Vec<(&Vec<Value>, &Clustered)> = match &partition {
            Some(key) => self.partitions.get_key_value(key).into_iter().collect(),
            None => self.partitions.iter().collect(),
        };
        for (partition_key, rows) in partitions {
            for (clustering, row) in rows {
                if !row.is_live() {
                    continue;
                }
                let matches = restrictions.iter().all(|(positions, cmp, values)| {
                    let have: Vec<&Value> = positions.iter().map(|at| &clustering[*at]).collect();
                    let want: Vec<&Value> = values.iter().collect();
                    let order = have.cmp(&want);
                    match cmp {
                        Cmp::Eq => order.is_eq(),
                        Cmp::Lt => order.is_lt(),
                        Cmp::Le => order.is_le(),
                        Cmp::Gt => order.is_gt(),
                        Cmp::Ge => order.is_ge(),
                    }
                });
                if !matches {
                    continue;
                }
                let row_values = columns
                    .iter()
                    .map(|column| {
                        if let Some(at) = self.def.partition_key.iter().position(|c| c == column) {
                            Some(partition_key[at].clone().into_cql())
                        } else if let Some(at) =
                            self.def.clustering.iter().position(|c| c == column)
                        {
                            Some(clustering[at].clone().into_cql())
                        } else {
                            row.value(column).cloned().map(Value::into_cql)
                        }
                    })
                    .collect();
                answer.push(row_values);
                if limit.is_some_and(|limit| answer.len() >= limit) {
                    return Ok(answer);
                }
            }
        }
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{migration_tables, plan};

    fn tables() -> Tables {
        Tables::new(migration_tables(schemas::cql::MIGRATIONS).expect("migrations"))
    }

    fn run(
        tables: &mut Tables,
        cql: &str,
        values: Vec<CqlValue>,
        now: i64,
    ) -> Result<Vec<CqlRow>, Refused> {
        let values: Vec<Option<CqlValue>> = values.into_iter().map(Some).collect();
        tables.apply(&plan(cql).expect("parses"), &values, now)
    }

    const WRITE: &str =
        "INSERT INTO counters (key, value, through_offset) VALUES (?, ?, ?) USING TIMESTAMP ?";
    const READ: &str = "SELECT value, through_offset FROM counters WHERE key = ?";

    #[test]
    fn the_highest_write_timestamp_wins_whatever_the_arrival_order() {
        let mut tables = tables();
        let key = CqlValue::Uuid(uuid::Uuid::from_u128(1));
        let write = |value: i64, ts: i64| {
            vec![
                key.clone(),
                CqlValue::BigInt(value),
                CqlValue::BigInt(ts),
                CqlValue::BigInt(ts),
            ]
        };
        run(&mut tables, WRITE, write(20, 9), 0).expect("newer");
        run(&mut tables, WRITE, write(10, 4), 100).expect("older, later");
        let rows = run(&mut tables, READ, vec![key.clone()], 0).expect("read");
        assert_eq!(
            rows,
            [vec![Some(CqlValue::BigInt(20)), Some(CqlValue::BigInt(9))]]
        );
        // Without USING TIMESTAMP the arrival time decides.
        let plain = "INSERT INTO counters (key, value) VALUES (?, ?)";
        run(
            &mut tables,
            plain,
            vec![key.clone(), CqlValue::BigInt(1)],
            101,
        )
        .expect("plain");
        let rows = run(&mut tables, READ, vec![key.clone()], 0).expect("read");
        assert_eq!(rows[0][0], Some(CqlValue::BigInt(1)));
        // A tie goes to the greater value.
        run(&mut tables, WRITE, write(0, 101), 0).expect("tie");
        let rows = run(&mut tables, READ, vec![key], 0).expect("read");
        assert_eq!(rows[0][0], Some(CqlValue::BigInt(1)));
    }

    #[test]
    fn transactions_compare_and_set_and_answer_applied() {
        let mut tables = tables();
        let topic = || CqlValue::Text("t".into());
        let ensure = "INSERT INTO partition_checkpoints (topic, partition, next_offset) VALUES (?, ?, 0) IF NOT EXISTS";
        let first = run(&mut tables, ensure, vec![topic(), CqlValue::Int(0)], 1).expect("ensure");
        assert_eq!(first, [vec![Some(CqlValue::Boolean(true))]]);
        let again = run(&mut tables, ensure, vec![topic(), CqlValue::Int(0)], 2).expect("ensure");
        assert_eq!(again[0][0], Some(CqlValue::Boolean(false)));
        let mark = "UPDATE partition_checkpoints SET pending_through = ? WHERE topic = ? AND partition = ? IF next_offset = ?";
        let moved = run(
            &mut tables,
            mark,
            vec![
                CqlValue::BigInt(5),
                topic(),
                CqlValue::Int(0),
                CqlValue::BigInt(3),
            ],
            3,
        )
        .expect("mark");
        assert_eq!(
            moved,
            [vec![
                Some(CqlValue::Boolean(false)),
                Some(CqlValue::BigInt(0))
            ]]
        );
        let held = run(
            &mut tables,
            mark,
            vec![
                CqlValue::BigInt(5),
                topic(),
                CqlValue::Int(0),
                CqlValue::BigInt(0),
            ],
            4,
        )
        .expect("mark");
        assert_eq!(held, [vec![Some(CqlValue::Boolean(true))]]);
    }

    #[test]
    fn the_server_refuses_what_scylla_refuses() {
        let mut tables = tables();
        let key = CqlValue::Uuid(uuid::Uuid::from_u128(1));
        assert!(matches!(
            run(
                &mut tables,
                "SELECT value FROM counters WHERE value = ?",
                vec![CqlValue::BigInt(1)],
                0
            ),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            run(
                &mut tables,
                "SELECT nope FROM counters WHERE key = ?",
                vec![key.clone()],
                0
            ),
            Err(Refused::UnknownColumn { .. })
        ));
        assert!(matches!(
            run(&mut tables, READ, vec![CqlValue::Text("x".into())], 0),
            Err(Refused::Invalid(_))
        ));
        assert!(matches!(
            run(
                &mut tables,
                "SELECT a FROM nowhere WHERE k = ?",
                vec![key],
                0
            ),
            Err(Refused::UnknownTable(_))
        ));
    }

    #[test]
    fn reads_walk_a_partition_in_clustering_order_with_tuples_and_limits() {
        let mut tables = tables();
        let write = "INSERT INTO events_by_session (session_id, occurred_at, event_id, name) VALUES (?, ?, ?, ?)";
        for (at, id) in [(3, 1), (1, 2), (2, 9), (2, 3)] {
            let values = vec![
                CqlValue::Text("s".into()),
                CqlValue::BigInt(at),
                CqlValue::Uuid(uuid::Uuid::from_u128(id)),
                CqlValue::Text(format!("{at}/{id}")),
            ];
            run(&mut tables, write, values, 1).expect("write");
        }
        let after = "SELECT name FROM events_by_session WHERE session_id = ? AND (occurred_at, event_id) > (?, ?) LIMIT ?";
        let rows = run(
            &mut tables,
            after,
            vec![
                CqlValue::Text("s".into()),
                CqlValue::BigInt(2),
                CqlValue::Uuid(uuid::Uuid::from_u128(3)),
                CqlValue::Int(5),
            ],
            0,
        )
        .expect("read");
        let names: Vec<_> = rows.into_iter().map(|row| row[0].clone()).collect();
        assert_eq!(
            names,
            [
                Some(CqlValue::Text("2/9".into())),
                Some(CqlValue::Text("3/1".into()))
            ]
        );
    }
}
