//! Keyset paging: results are ordered by (time, id) and a cursor is the
//! position of the last row returned, so a page never skips or repeats a row
//! while new rows arrive (a new row lands on a later page or, if it sorts
//! before the cursor, on none already read — never twice).

use std::collections::HashMap;

use crate::error::ApiError;

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most rows one page holds.
pub const MAX_LIMIT: u32 = 1_000;

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

    fn parse(cursor: &str) -> Option<Self> {
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

impl Page {
    /// `limit` and `cursor` from the query string.
    ///
    /// # Errors
    ///
    /// [`ApiError::InvalidParameter`] naming `limit` or `cursor`.
    pub fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let limit = match query.get("limit") {
            None => DEFAULT_LIMIT,
            Some(text) => text
                .parse::<u32>()
                .ok()
                .filter(|limit| (1..=MAX_LIMIT).contains(limit))
                .ok_or_else(|| ApiError::InvalidParameter {
                    parameter: "limit",
                    message: format!("must be an integer from 1 to {MAX_LIMIT}"),
                })?,
        };
        let after = match query.get("cursor") {
            None => None,
            Some(cursor) => {
                Some(
                    Position::parse(cursor).ok_or_else(|| ApiError::InvalidParameter {
                        parameter: "cursor",
                        message: "is not a cursor this API returned".into(),
                    })?,
                )
            }
        };
        Ok(Self { limit, after })
    }

    /// Splits `limit + 1` fetched rows into the page and the cursor of the
    /// next page, if there is one.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        position: impl Fn(&T) -> Position,
    ) -> (Vec<T>, Option<String>) {
        let limit = self.limit as usize;
        if rows.len() <= limit {
            return (rows, None);
        }
        rows.truncate(limit);
        let next = rows.last().map(|row| position(row).cursor());
        (rows, next)
    }
}

/// `micros` as an RFC 3339 UTC time.
pub fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn cursors_round_trip_and_bad_ones_name_the_parameter() {
        let position = Position {
            time: 1_614_529_372_000_000,
            id: "a:b".into(),
        };
        let page = Page::from_query(&query(&[("cursor", &position.cursor())])).expect("valid");
        assert_eq!(page.after, Some(position));
        assert_eq!(page.limit, DEFAULT_LIMIT);
        for bad in ["zz", "6869", ""] {
            let err = Page::from_query(&query(&[("cursor", bad)])).expect_err(bad);
            assert!(err.to_string().contains("`cursor`"), "{err}");
        }
        for bad in ["0", "1001", "ten", "-1"] {
            let err = Page::from_query(&query(&[("limit", bad)])).expect_err(bad);
            assert!(err.to_string().contains("`limit`"), "{err}");
        }
    }

    #[test]
    fn one_row_beyond_the_limit_means_a_next_page() {
        let page = Page {
            limit: 2,
            after: None,
        };
        let position = |row: &i64| Position {
            time: *row,
            id: row.to_string(),
        };
        let (rows, next) = page.finish(vec![1, 2, 3], position);
        assert_eq!(rows, [1, 2]);
        assert_eq!(next, Some(position(&2).cursor()));
        assert_eq!(page.finish(vec![1, 2], position), (vec![1, 2], None));
    }
}
