//! Time buckets, without I/O: the UTC days and hours whose partitions a
//! listing walks, how far that walk may go, and the CQL values naming them.
//!
//! A listing by time reads `events_by_hour`, one partition per UTC hour; by
//! category `events_by_category_day` and the error log `errors_by_day`, one
//! per UTC day. SQLite answers any range with one indexed scan; here every
//! bucket costs a read, so the walk is bounded:
//!
//! - an open (or far future) `to` ends at [`FUTURE_MARGIN`] past now: ingest
//!   refuses events more than `--max-clock-skew` (default 5m) ahead;
//! - an open `from` starts the walk at most [`MAX_HOURS`] / [`MAX_DAYS`]
//!   buckets before that end (the most recent window);
//! - an explicit range wider than that is refused with a 400 naming `from`,
//!   rather than answered in part.

use chrono::NaiveDate;
use scylla::value::CqlDate;

use crate::store::StoreError;
use crate::store::bounds::TimeRange;

use schemas::cql::layout::{self, DAY_MICROS, HOUR_MICROS};

/// The most hourly partitions one listing by time reads: 31 days.
pub(crate) const MAX_HOURS: usize = 31 * 24;
/// The most daily partitions (per kind) one listing by category or of the
/// error log reads: a leap year.
pub(crate) const MAX_DAYS: usize = 366;
/// How far past now a walk goes: more than any sane clock skew.
pub(crate) const FUTURE_MARGIN: i64 = DAY_MICROS;

/// A bucket size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Hour,
    Day,
}

impl Unit {
    pub(super) fn micros(self) -> i64 {
        match self {
            Self::Hour => HOUR_MICROS,
            Self::Day => DAY_MICROS,
        }
    }

    /// The most buckets of this size one walk reads.
    pub(super) fn max_buckets(self) -> usize {
        match self {
            Self::Hour => MAX_HOURS,
            Self::Day => MAX_DAYS,
        }
    }

    /// The start of the bucket holding `micros`.
    pub(super) fn floor(self, micros: i64) -> i64 {
        micros.div_euclid(self.micros()) * self.micros()
    }

    fn name(self) -> &'static str {
        match self {
            Self::Hour => "hours",
            Self::Day => "days",
        }
    }
}

/// The buckets a listing reads, oldest first, and the bounds it binds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Walk {
    /// Inclusive lower bound on `occurred_at` (the range's, or the window's
    /// start when the range has none).
    pub(super) from: i64,
    /// Exclusive upper bound on `occurred_at`.
    pub(super) to: i64,
    /// The start (microseconds) of each bucket to read, in order; the first
    /// holds `resume_at` when a cursor is past `from`.
    pub(super) buckets: Vec<i64>,
}

/// Plans the walk over `range` in buckets of `unit`, resuming at the
/// cursor's time `resume_at` if any, `now` being the current time.
///
/// # Errors
///
/// [`StoreError::Unanswerable`] naming `from` when an explicit range spans
/// more than `unit.max_buckets()` buckets.
pub(super) fn walk(
    range: TimeRange,
    resume_at: Option<i64>,
    now: i64,
    unit: Unit,
) -> Result<Walk, StoreError> {
    let max = unit.max_buckets();
    let to = range.to.min(now.saturating_add(FUTURE_MARGIN));
    let from = if range.from == i64::MIN {
        let window = i64::try_from(max).unwrap_or(i64::MAX) - 1;
        unit.floor(to.saturating_sub(1))
            .saturating_sub(window.saturating_mul(unit.micros()))
    } else {
        range.from
    };
    if from < to && span(from, to, unit) > max as i128 {
        return Err(StoreError::Unanswerable {
            parameter: "from",
            message: format!(
                "must be at most {max} {} before `to` with the ScyllaDB store (it reads one partition per UTC {})",
                unit.name(),
                unit.name().trim_end_matches('s'),
            ),
        });
    }
    let begin = resume_at.map_or(from, |at| at.max(from));
    let mut buckets = Vec::new();
    if begin < to {
        let mut bucket = unit.floor(begin);
        while bucket < to {
            buckets.push(bucket);
            bucket = bucket.saturating_add(unit.micros());
        }
    }
    Ok(Walk { from, to, buckets })
}

/// How many buckets `[from, to)` touches (`from < to`).
fn span(from: i64, to: i64, unit: Unit) -> i128 {
    let first = i128::from(unit.floor(from));
    let last = i128::from(unit.floor(to - 1));
    (last - first) / i128::from(unit.micros()) + 1
}

/// The `date` of a calendar day (`schemas::cql::layout`).
///
/// # Errors
///
/// [`StoreError::Unanswerable`] naming `from` for a day CQL cannot hold.
pub(super) fn cql_date(day: NaiveDate) -> Result<CqlDate, StoreError> {
    layout::date_of(day).ok_or_else(|| StoreError::Unanswerable {
        parameter: "from",
        message: format!("is too far from 1970 ({day})"),
    })
}

/// A stored `date` as `YYYY-MM-DD`, as the SQLite store keeps days.
///
/// # Errors
///
/// [`StoreError::Cql`] for a date chrono cannot represent (a malformed row).
pub(super) fn day_text(date: CqlDate) -> Result<String, StoreError> {
    layout::date_text(date).ok_or_else(|| StoreError::Cql {
        during: "decoding a day",
        reason: format!(
            "date {} days from 1970-01-01 is out of range",
            layout::days_of_date(date)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_614_529_372_000_000; // 2021-02-28T16:22:52Z

    fn micros(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .expect("time")
            .timestamp_micros()
    }

    fn range(from: &str, to: &str) -> TimeRange {
        TimeRange {
            from: micros(from),
            to: micros(to),
        }
    }

    #[test]
    fn hours_cover_the_range_and_partial_hours_at_both_ends() {
        let walk = walk(
            range("2021-02-28T10:30:00Z", "2021-02-28T13:00:00Z"),
            None,
            NOW,
            Unit::Hour,
        )
        .expect("narrow");
        assert_eq!(
            walk.buckets,
            [
                micros("2021-02-28T10:00:00Z"),
                micros("2021-02-28T11:00:00Z"),
                micros("2021-02-28T12:00:00Z"),
            ]
        );
        assert_eq!(
            (walk.from, walk.to),
            (
                micros("2021-02-28T10:30:00Z"),
                micros("2021-02-28T13:00:00Z")
            )
        );
    }

    #[test]
    fn days_cross_month_ends_and_a_cursor_skips_the_days_before_it() {
        let days = range("2021-02-27T00:00:00Z", "2021-03-02T00:00:00Z");
        let all = walk(days, None, NOW, Unit::Day).expect("narrow");
        let texts: Vec<String> = all
            .buckets
            .iter()
            .map(|b| day_text(layout::day_of(*b)).expect("text"))
            .collect();
        assert_eq!(texts, ["2021-02-27", "2021-02-28", "2021-03-01"]);
        let resumed =
            walk(days, Some(micros("2021-02-28T23:59:59Z")), NOW, Unit::Day).expect("narrow");
        assert_eq!(resumed.buckets, all.buckets[1..]);
        // A cursor before `from` does not widen the walk; past `to` ends it.
        let before = walk(days, Some(0), NOW, Unit::Day).expect("narrow");
        assert_eq!(before.buckets, all.buckets);
        let past =
            walk(days, Some(micros("2021-03-02T00:00:00Z")), NOW, Unit::Day).expect("narrow");
        assert!(past.buckets.is_empty());
    }

    #[test]
    fn open_ends_walk_the_most_recent_window() {
        let open = TimeRange {
            from: i64::MIN,
            to: i64::MAX,
        };
        let walk = walk(open, None, NOW, Unit::Hour).expect("window");
        assert_eq!(walk.buckets.len(), MAX_HOURS);
        assert_eq!(walk.to, NOW + FUTURE_MARGIN);
        assert_eq!(walk.buckets.last(), Some(&Unit::Hour.floor(walk.to - 1)));
        assert_eq!(walk.from, walk.buckets[0]);
    }

    #[test]
    fn a_range_wider_than_the_cap_names_from() {
        let wide = range("2020-01-01T00:00:00Z", "2021-01-02T00:00:00Z");
        match walk(wide, None, NOW, Unit::Day) {
            Err(StoreError::Unanswerable { parameter, message }) => {
                assert_eq!(parameter, "from");
                assert!(message.contains("366 days"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // A year to the day is fine; so is a far future end (clamped to now).
        assert!(
            walk(
                range("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
                None,
                NOW,
                Unit::Day
            )
            .is_ok()
        );
        let future = range("2021-02-01T00:00:00Z", "2099-01-01T00:00:00Z");
        let clamped = walk(future, None, NOW, Unit::Day).expect("clamped");
        assert_eq!(clamped.to, NOW + FUTURE_MARGIN);
        assert_eq!(clamped.buckets.len(), 29);
        assert!(
            walk(
                range("2021-01-01T00:00:00Z", "2021-02-01T01:00:00Z"),
                None,
                NOW,
                Unit::Hour
            )
            .is_err()
        );
    }

    #[test]
    fn cql_dates_count_from_two_to_the_31() {
        let epoch = NaiveDate::default();
        assert_eq!(epoch.to_string(), "1970-01-01");
        assert_eq!(cql_date(epoch).expect("date"), CqlDate(1 << 31));
        let day = NaiveDate::from_ymd_opt(2021, 2, 28).expect("day");
        let date = cql_date(day).expect("date");
        assert_eq!(date, CqlDate((1 << 31) + 18_686));
        assert_eq!(date, layout::day_of(micros("2021-02-28T16:22:52Z")));
        assert_eq!(day_text(date).expect("text"), "2021-02-28");
        assert_eq!(day_text(layout::day_of(-1)).expect("text"), "1969-12-31");
        assert!(day_text(CqlDate(u32::MAX)).is_err());
    }
}
