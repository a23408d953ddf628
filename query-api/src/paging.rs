//! Keyset paging: results are ordered by (time, id) and a cursor is the
//! position of the last row returned, so a page never skips or repeats a row
//! while new rows arrive (a new row lands on a later page or, if it sorts
//! before the cursor, on none already read — never twice).

use std::collections::HashMap;

use crate::error::ApiError;
pub use crate::store::bounds::{Page, Position, rfc3339};

/// Rows per page unless `limit` says otherwise.
pub const DEFAULT_LIMIT: u32 = 100;
/// The most rows one page holds.
pub const MAX_LIMIT: u32 = 1_000;

/// What a cursor looks like: the hex (either case) of `<time>:<id>`, the
/// time an integer of at most 18 digits, the id ASCII. Every cursor this API
/// returns matches it, and every string that matches is taken.
pub const CURSOR_PATTERN: &str = "^(?:2[dD])?(?:3[0-9]){1,18}3[aA](?:[0-7][0-9a-fA-F])*$";

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
    fn cursors_in_either_case_are_taken() {
        // The document's CURSOR_PATTERN admits upper-case hex; so does the parser.
        for (time, id) in [
            (
                1_614_529_372_000_000,
                "e2085be5-9137-4e4e-80b5-f1ffddc25423",
            ),
            (-5, "a:b"),
            (999_999_999_999_999_999, ""),
        ] {
            let position = Position {
                time,
                id: id.into(),
            };
            let cursor = position.cursor();
            assert_eq!(Position::parse(&cursor), Some(position.clone()));
            assert_eq!(Position::parse(&cursor.to_uppercase()), Some(position));
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
