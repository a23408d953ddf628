//! Reading one partition of a listing in clustering order: from a time or
//! after a position, up to the range's end, keeping the rows a filter the
//! table cannot apply accepts, request after request until the page is full
//! or the partition holds nothing more.

use schemas::cql::{Bound, FromCqlRow, Statement};
use scylla::value::CqlValue;

use super::ScyllaStore;
use crate::store::StoreError;
use crate::store::bounds::Position;

/// Where a read within a partition starts.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Start {
    /// At this time, inclusive: the range's start.
    At(i64),
    /// After this (occurred_at, id) position: the cursor, or the last row read.
    After(i64, CqlValue),
}

impl Start {
    /// After the cursor when it is at or past `from`, else at `from`.
    pub(super) fn resume(from: i64, cursor: Option<(i64, CqlValue)>) -> Self {
        match cursor {
            Some((time, id)) if time >= from => Self::After(time, id),
            _ => Self::At(from),
        }
    }

    pub(super) fn time(&self) -> i64 {
        match self {
            Self::At(time) | Self::After(time, _) => *time,
        }
    }
}

/// One partition to read: its statements, key and bounds.
#[derive(Debug)]
pub(super) struct Scan<'a> {
    /// `... WHERE <key> AND occurred_at >= ? AND occurred_at < ? LIMIT ?`.
    pub(super) from: &'a Statement,
    /// `... WHERE <key> AND (occurred_at, id) > (?, ?) LIMIT ?`.
    pub(super) after: &'a Statement,
    /// The partition key's values, in the statements' order.
    pub(super) key: Vec<CqlValue>,
    /// Exclusive end of the range.
    pub(super) to: i64,
    /// Rows asked for per request: the rows still wanted, or a whole page
    /// when rows are filtered here.
    pub(super) chunk: usize,
}

impl Scan<'static> {
    /// The statement and values reading `self.chunk` rows from `start`.
    fn request(&self, start: &Start) -> Bound {
        let (form, values) = bind(&self.key, start, self.to, self.chunk);
        let statement = match form {
            Form::From => self.from,
            Form::After => self.after,
        };
        Bound {
            statement,
            values: values.into_iter().map(Some).collect(),
        }
    }
}

/// Which of a partition's two statements a read runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    From,
    After,
}

/// The values a read of `chunk` rows from `start` binds after the
/// partition's `key`: `occurred_at >= from AND occurred_at < to`, or
/// `(occurred_at, id) > (time, id)`; then the limit.
fn bind(key: &[CqlValue], start: &Start, to: i64, chunk: usize) -> (Form, Vec<CqlValue>) {
    let mut values = key.to_vec();
    let form = match start {
        Start::At(from) => {
            values.extend([CqlValue::BigInt(*from), CqlValue::BigInt(to)]);
            Form::From
        }
        Start::After(time, id) => {
            values.extend([CqlValue::BigInt(*time), id.clone()]);
            Form::After
        }
    };
    values.push(CqlValue::Int(i32::try_from(chunk).unwrap_or(i32::MAX)));
    (form, values)
}

/// A decoded row and its position in the partition.
#[derive(Debug)]
pub(super) struct Keyed<T> {
    pub(super) time: i64,
    pub(super) id: CqlValue,
    pub(super) row: T,
}

/// What follows a batch of a partition's rows.
#[derive(Debug, PartialEq)]
enum Next {
    /// The partition holds nothing more for this page.
    Done,
    /// Read on after this position.
    ReadOn(Start),
}

/// Moves the rows of `batch` (the answer to a request for `chunk` rows, in
/// clustering order) that `keep` accepts into `found`, until `found` holds
/// `want` rows or a row reaches `to`; then says whether the partition may
/// hold more.
fn absorb<T>(
    batch: Vec<Keyed<T>>,
    (to, chunk): (i64, usize),
    want: usize,
    keep: &impl Fn(&T) -> bool,
    found: &mut Vec<T>,
) -> Next {
    let fetched = batch.len();
    let mut last = None;
    for keyed in batch {
        if keyed.time >= to {
            return Next::Done;
        }
        if keep(&keyed.row) {
            found.push(keyed.row);
            if found.len() >= want {
                return Next::Done;
            }
        }
        last = Some((keyed.time, keyed.id));
    }
    match last {
        Some((time, id)) if fetched >= chunk => Next::ReadOn(Start::After(time, id)),
        _ => Next::Done,
    }
}

/// Merges two lists each in (time, id) order into one.
pub(super) fn merge<T>(
    first: Vec<T>,
    second: Vec<T>,
    position: impl Fn(&T) -> &Position,
) -> Vec<T> {
    let mut merged = Vec::with_capacity(first.len() + second.len());
    let mut first = first.into_iter().peekable();
    let mut second = second.into_iter().peekable();
    loop {
        let take_first = match (first.peek(), second.peek()) {
            (Some(a), Some(b)) => {
                let (a, b) = (position(a), position(b));
                (a.time, &a.id) <= (b.time, &b.id)
            }
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return merged,
        };
        let next = if take_first {
            first.next()
        } else {
            second.next()
        };
        merged.extend(next);
    }
}

impl ScyllaStore {
    /// Up to `want` rows of one partition from `start`, in clustering order,
    /// that `keep` accepts and that fall before `scan.to`.
    pub(super) async fn read<R: FromCqlRow, T>(
        &self,
        scan: &Scan<'static>,
        mut start: Start,
        want: usize,
        decode: impl Fn(R) -> Keyed<T>,
        keep: impl Fn(&T) -> bool,
    ) -> Result<Vec<T>, StoreError> {
        let mut found = Vec::new();
        if want == 0 || start.time() >= scan.to {
            return Ok(found);
        }
        loop {
            let rows: Vec<R> = self.select(scan.request(&start)).await?;
            let batch = rows.into_iter().map(&decode).collect();
            match absorb(batch, (scan.to, scan.chunk), want, &keep, &mut found) {
                Next::Done => return Ok(found),
                Next::ReadOn(after) => start = after,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(id: &str) -> CqlValue {
        CqlValue::Text(id.to_owned())
    }

    fn keyed(time: i64, id: &str) -> Keyed<(i64, String)> {
        Keyed {
            time,
            id: text(id),
            row: (time, id.to_owned()),
        }
    }

    fn at(time: i64, id: &str) -> Position {
        Position {
            time,
            id: id.to_owned(),
        }
    }

    #[test]
    fn a_cursor_at_or_past_from_resumes_after_itself() {
        assert_eq!(
            Start::resume(100, Some((150, text("a")))),
            Start::After(150, text("a"))
        );
        assert_eq!(
            Start::resume(100, Some((100, text("a")))),
            Start::After(100, text("a"))
        );
        assert_eq!(Start::resume(100, Some((99, text("a")))), Start::At(100));
        assert_eq!(Start::resume(100, None), Start::At(100));
    }

    #[test]
    fn cursors_bind_as_a_clustering_tuple_and_ranges_as_bounds() {
        let id = uuid::Uuid::now_v7();
        let key = [text("session")];
        assert_eq!(
            bind(&key, &Start::After(15, CqlValue::Uuid(id)), 20, 101),
            (
                Form::After,
                vec![
                    text("session"),
                    CqlValue::BigInt(15),
                    CqlValue::Uuid(id),
                    CqlValue::Int(101)
                ]
            )
        );
        assert_eq!(
            bind(&key, &Start::At(10), 20, 101),
            (
                Form::From,
                vec![
                    text("session"),
                    CqlValue::BigInt(10),
                    CqlValue::BigInt(20),
                    CqlValue::Int(101)
                ]
            )
        );
        // Past an i32, the limit is capped rather than wrapped.
        let (_, values) = bind(&key, &Start::At(10), 20, usize::MAX);
        assert_eq!(values.last(), Some(&CqlValue::Int(i32::MAX)));
    }

    #[test]
    fn a_full_answer_reads_on_after_its_last_row_and_a_short_one_ends() {
        let keep_all = |_: &(i64, String)| true;
        let mut found = Vec::new();
        let next = absorb(
            vec![keyed(1, "a"), keyed(2, "b")],
            (100, 2),
            10,
            &keep_all,
            &mut found,
        );
        assert_eq!(next, Next::ReadOn(Start::After(2, text("b"))));
        let next = absorb(vec![keyed(3, "c")], (100, 2), 10, &keep_all, &mut found);
        assert_eq!(next, Next::Done);
        assert_eq!(found.len(), 3);
    }

    #[test]
    fn rows_stop_at_the_range_end_or_a_full_page() {
        let keep_all = |_: &(i64, String)| true;
        let mut found = Vec::new();
        let batch = vec![keyed(1, "a"), keyed(5, "b"), keyed(6, "c")];
        assert_eq!(absorb(batch, (5, 3), 10, &keep_all, &mut found), Next::Done);
        assert_eq!(found, [(1, "a".to_owned())]);
        let mut found = Vec::new();
        let batch = vec![keyed(1, "a"), keyed(2, "b"), keyed(3, "c")];
        assert_eq!(
            absorb(batch, (100, 3), 2, &keep_all, &mut found),
            Next::Done
        );
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn filtered_rows_are_skipped_but_reading_resumes_after_them() {
        let only_b = |row: &(i64, String)| row.1 == "b";
        let mut found = Vec::new();
        let batch = vec![keyed(1, "a"), keyed(2, "b"), keyed(3, "c")];
        let next = absorb(batch, (100, 3), 10, &only_b, &mut found);
        assert_eq!(next, Next::ReadOn(Start::After(3, text("c"))));
        assert_eq!(found, [(2, "b".to_owned())]);
    }

    #[test]
    fn kinds_merge_in_time_then_id_order() {
        let rejects = vec![at(1, "b"), at(3, "a"), at(5, "a")];
        let dead_letters = vec![at(1, "a"), at(3, "b"), at(4, "a")];
        let merged = merge(rejects, dead_letters, |p| p);
        let order: Vec<(i64, &str)> = merged.iter().map(|p| (p.time, p.id.as_str())).collect();
        assert_eq!(
            order,
            [(1, "a"), (1, "b"), (3, "a"), (3, "b"), (4, "a"), (5, "a")]
        );
        assert_eq!(merge(Vec::new(), vec![at(1, "a")], |p| p).len(), 1);
    }
}
