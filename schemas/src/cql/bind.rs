//! Statements bound by name: each CQL statement a service runs is declared
//! once, with its name, its text and the typed values it binds, by
//! [`cql_statements!`](crate::cql_statements). A missing statement or a value
//! of the wrong type is a compile error; the offline check
//! (`cql_sim::check`, run by `processor/tests/cql_statements.rs`) compares every bound value's name and
//! CQL type with the column its marker binds in the migrations.

use scylla::value::{CqlDate, CqlTimestamp, CqlValue};

/// A row of CQL values, as bound to a statement or read from a result: one
/// entry per marker or column, `None` for null.
pub type CqlRow = Vec<Option<CqlValue>>;

/// One statement: its name (for errors), its CQL and what it binds.
#[derive(Debug)]
pub struct Statement {
    /// What the statement does, unique per service.
    pub name: &'static str,
    /// The CQL text, as prepared.
    pub cql: &'static str,
    /// Every bound value in marker order.
    pub binds: &'static [Bind],
}

/// One bound value: the column its marker binds (or `timestamp` for `USING
/// TIMESTAMP ?`, `limit` for `LIMIT ?`) and its CQL type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bind {
    /// The column name, optionally followed by `_` and a qualifier (`from`,
    /// `to`, `expected`) when one column is bound twice.
    pub name: &'static str,
    /// The CQL type of the Rust value bound (`text`, `bigint`, ...).
    pub cql_type: &'static str,
}

impl Statement {
    /// Whether this is a lightweight transaction (answers `[applied]`).
    pub fn is_conditional(&self) -> bool {
        self.cql.contains(" IF ")
    }

    /// Whether this statement reads rows.
    pub fn is_read(&self) -> bool {
        self.cql
            .trim_start()
            .to_ascii_uppercase()
            .starts_with("SELECT")
    }

    /// Whether a driver may safely send it twice: everything but a
    /// lightweight transaction (whose second attempt would see its own
    /// first one applied).
    pub fn is_idempotent(&self) -> bool {
        !self.is_conditional()
    }
}

/// A statement with its values, ready to execute.
#[derive(Debug, Clone)]
pub struct Bound {
    pub statement: &'static Statement,
    pub values: CqlRow,
}

/// A Rust type bound to a CQL marker.
pub trait ToCql {
    /// The CQL type this binds as.
    const CQL_TYPE: &'static str;
    /// The value, `None` for null.
    fn to_cql(self) -> Option<CqlValue>;
}

macro_rules! to_cql {
    ($($ty:ty => $cql_type:literal, $value:ident => $make:expr;)*) => {
        $(impl ToCql for $ty {
            const CQL_TYPE: &'static str = $cql_type;
            fn to_cql(self) -> Option<CqlValue> {
                let $value = self;
                Some($make)
            }
        })*
    };
}

to_cql! {
    &str => "text", value => CqlValue::Text(value.to_owned());
    String => "text", value => CqlValue::Text(value);
    i32 => "int", value => CqlValue::Int(value);
    i64 => "bigint", value => CqlValue::BigInt(value);
    bool => "boolean", value => CqlValue::Boolean(value);
    uuid::Uuid => "uuid", value => CqlValue::Uuid(value);
    CqlTimestamp => "timestamp", value => CqlValue::Timestamp(value);
    CqlDate => "date", value => CqlValue::Date(value);
    &[u8] => "blob", value => CqlValue::Blob(value.to_vec());
}

impl<T: ToCql> ToCql for Option<T> {
    const CQL_TYPE: &'static str = T::CQL_TYPE;
    fn to_cql(self) -> Option<CqlValue> {
        self.and_then(ToCql::to_cql)
    }
}

/// A Rust type read from a result column.
pub trait FromCql: Sized {
    /// The value of a column, `None` when it is null.
    ///
    /// # Errors
    ///
    /// A description of the mismatch when the column holds another type.
    fn from_cql(value: Option<CqlValue>) -> Result<Self, String>;
}

macro_rules! from_cql {
    ($($ty:ty => $variant:ident;)*) => {
        $(impl FromCql for $ty {
            fn from_cql(value: Option<CqlValue>) -> Result<Self, String> {
                match value {
                    Some(CqlValue::$variant(value)) => Ok(value),
                    other => Err(format!(
                        concat!("expected ", stringify!($variant), ", found {:?}"),
                        other
                    )),
                }
            }
        })*
    };
}

from_cql! {
    String => Text;
    i32 => Int;
    i64 => BigInt;
    bool => Boolean;
    uuid::Uuid => Uuid;
    Vec<u8> => Blob;
    CqlTimestamp => Timestamp;
    CqlDate => Date;
}

impl<T: FromCql> FromCql for Option<T> {
    fn from_cql(value: Option<CqlValue>) -> Result<Self, String> {
        value.map(|value| T::from_cql(Some(value))).transpose()
    }
}

/// A result row read into a tuple of [`FromCql`] types, column by column.
pub trait FromCqlRow: Sized {
    /// # Errors
    ///
    /// A description when the row has another width or a column another type.
    fn from_row(row: CqlRow) -> Result<Self, String>;
}

macro_rules! from_cql_row {
    ($($n:literal: $($t:ident)*;)*) => {
        $(impl<$($t: FromCql),*> FromCqlRow for ($($t,)*) {
            fn from_row(row: CqlRow) -> Result<Self, String> {
                if row.len() != $n {
                    return Err(format!("expected {} columns, found {}", $n, row.len()));
                }
                let mut columns = row.into_iter();
                Ok(($($t::from_cql(columns.next().flatten())?,)*))
            }
        })*
    };
}

from_cql_row! {
    1: A;
    2: A B;
    3: A B C;
    4: A B C D;
    5: A B C D E;
    6: A B C D E F;
    7: A B C D E F G;
    8: A B C D E F G H;
    9: A B C D E F G H I;
    10: A B C D E F G H I J;
    11: A B C D E F G H I J K;
    12: A B C D E F G H I J K L;
}

/// A [`CqlRow`] of Rust values, each converted by [`ToCql`].
#[macro_export]
macro_rules! cql_row {
    ($($value:expr),* $(,)?) => {
        vec![$($crate::cql::ToCql::to_cql($value)),*]
    };
}

/// Declares statements bound by name. For each
/// `name(param: Type, ...) => "CQL";` it makes a function `name(...) ->
/// Bound` and a module `name` holding its `STATEMENT`, and `ALL` lists every
/// statement (to prepare them and to check them offline).
///
/// Each parameter is named after the column its marker binds (`timestamp`
/// for `USING TIMESTAMP ?`, `limit` for `LIMIT ?`; `column_suffix` when a
/// column is bound twice), in marker order.
#[macro_export]
macro_rules! cql_statements {
    ($($(#[doc = $doc:literal])* $name:ident($($param:ident: $ty:ty),* $(,)?) => $cql:expr;)*) => {
        $(
            #[allow(dead_code)]
            pub(crate) mod $name {
                #[allow(unused_imports)]
                use super::*;
                $(#[doc = $doc])*
                pub(crate) static STATEMENT: $crate::cql::Statement = $crate::cql::Statement {
                    name: stringify!($name),
                    cql: $cql,
                    binds: &[$($crate::cql::Bind {
                        name: stringify!($param),
                        cql_type: <$ty as $crate::cql::ToCql>::CQL_TYPE,
                    }),*],
                };
            }

            $(#[doc = $doc])*
            #[allow(clippy::too_many_arguments, dead_code)]
            pub(crate) fn $name($($param: $ty),*) -> $crate::cql::Bound {
                $crate::cql::Bound {
                    statement: &$name::STATEMENT,
                    values: vec![$($crate::cql::ToCql::to_cql($param)),*],
                }
            }
        )*

        /// Every statement declared here.
        pub(crate) static ALL: &[&$crate::cql::Statement] = &[$(&$name::STATEMENT),*];
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_convert_both_ways_and_null_is_none() {
        assert_eq!(Some("a").to_cql(), Some(CqlValue::Text("a".into())));
        assert_eq!(None::<i64>.to_cql(), None);
        let row: CqlRow = vec![Some(CqlValue::BigInt(7)), None];
        let (value, through): (i64, Option<i64>) = FromCqlRow::from_row(row).expect("row");
        assert_eq!((value, through), (7, None));
        assert!(<(i64,)>::from_row(vec![Some(CqlValue::Int(7))]).is_err());
        assert!(<(i64,)>::from_row(vec![]).is_err());
    }
}
