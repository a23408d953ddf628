//! What a read asks the store for, whichever HTTP parameters it came from:
//! a half-open time range, a page of a keyset listing and its position.
//! Parsing them from a query string (and its 400s) lives with the routes
//! (`params`, `paging`); the store only takes them.

use chrono::DateTime;

/// A half-open time range `[from, to)` in microseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    pub from: i64,
    pub to: i64,
}

impl TimeRange {
    /// The first and last UTC day (`YYYY-MM-DD`) the range touches, when
    /// both ends are set.
    pub fn days(&self) -> Option<(String, String)> {
        if self.from == i64::MIN || self.to == i64::MAX {
            return None;
        }
        let day = |micros: i64| {
            DateTime::from_timestamp_micros(micros).map(|t| t.format("%Y-%m-%d").to_string())
        };
        Some((day(self.from)?, day(self.to - 1)?))
    }
}

/// Where a page starts: after the row with this time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Microseconds since the epoch.
    pub time: i64,
    pub id: String,
}

impl Position {
    /// The opaque cursor naming this position.
    pub fn cursor(&self) -> String {
        hex::encode(format!("{}:{}", self.time, self.id))
    }

    /// The position a cursor names, if it is one.
    pub fn parse(cursor: &str) -> Option<Self> {
        let bytes = hex::decode(cursor).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (time, id) = text.split_once(':')?;
        Some(Self {
            time: time.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// One page request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    pub after: Option<Position>,
}

/// `micros` as an RFC 3339 UTC time.
pub fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}
