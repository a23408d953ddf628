//! Query-string parameters shared by the listing and stats endpoints, each
//! failing with a 400 that names the parameter and the rule.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::error::ApiError;
pub use crate::store::bounds::TimeRange;

impl TimeRange {
    /// `from` and `to` (RFC 3339, or a `YYYY-MM-DD` UTC day: `from` at its
    /// start, `to` through its end); open ends when absent.
    ///
    /// # Errors
    ///
    /// [`ApiError::InvalidParameter`] naming `from` or `to`.
    pub fn from_query(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let from = match query.get("from") {
            Some(text) => instant("from", text, false)?,
            None => i64::MIN,
        };
        let to = match query.get("to") {
            Some(text) => instant("to", text, true)?,
            None => i64::MAX,
        };
        if from >= to {
            return Err(ApiError::InvalidParameter {
                parameter: "to",
                message: "must be after `from`".into(),
            });
        }
        Ok(Self { from, to })
    }
}

/// An RFC 3339 time, or a UTC day (its start, or with `day_end` the start of
/// the next day, so `to=2021-02-28` includes all of the 28th).
fn instant(parameter: &'static str, text: &str, day_end: bool) -> Result<i64, ApiError> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Ok(time.with_timezone(&Utc).timestamp_micros());
    }
    if let Ok(time) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S") {
        return Ok(time.and_utc().timestamp_micros());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if day_end { day.succ_opt() } else { Some(day) };
        if let Some(start) = day.and_then(|d| d.and_hms_opt(0, 0, 0)) {
            return Ok(start.and_utc().timestamp_micros());
        }
    }
    Err(ApiError::InvalidParameter {
        parameter,
        message: "must be an RFC 3339 time (2021-02-28T16:22:52Z) or a day (2021-02-28)".into(),
    })
}

/// An optional non-empty text parameter.
pub fn text<'a>(
    query: &'a HashMap<String, String>,
    name: &'static str,
) -> Result<Option<&'a str>, ApiError> {
    match query.get(name) {
        None => Ok(None),
        Some(value) if value.is_empty() => Err(ApiError::InvalidParameter {
            parameter: name,
            message: "must not be empty".into(),
        }),
        Some(value) => Ok(Some(value)),
    }
}

/// Rejects parameters the endpoint does not know, so a typo is not ignored.
///
/// # Errors
///
/// [`ApiError::UnknownParameter`] naming the first unknown one.
pub fn only(query: &HashMap<String, String>, known: &[&str]) -> Result<(), ApiError> {
    let mut unknown: Vec<&String> = query
        .keys()
        .filter(|k| !known.contains(&k.as_str()))
        .collect();
    unknown.sort();
    match unknown.first() {
        None => Ok(()),
        Some(name) => Err(ApiError::UnknownParameter {
            parameter: (*name).clone(),
            known: match known {
                [] => "none".to_owned(),
                known => known.join(", "),
            },
        }),
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
    fn days_cover_whole_utc_days_and_times_are_exact() {
        let range = TimeRange::from_query(&query(&[("from", "2021-02-28"), ("to", "2021-02-28")]))
            .expect("valid");
        assert_eq!(range.to - range.from, 86_400_000_000);
        assert_eq!(
            range.days(),
            Some(("2021-02-28".to_owned(), "2021-02-28".to_owned()))
        );
        let range =
            TimeRange::from_query(&query(&[("from", "2021-02-28T16:22:52+01:00")])).expect("valid");
        assert_eq!(range.from, 1_614_525_772_000_000);
        assert_eq!(range.to, i64::MAX);
    }

    #[test]
    fn bad_times_and_empty_ranges_name_the_parameter() {
        let err = TimeRange::from_query(&query(&[("from", "yesterday")])).expect_err("bad");
        assert!(err.to_string().contains("`from`"), "{err}");
        let err = TimeRange::from_query(&query(&[("from", "2021-03-01"), ("to", "2021-02-01")]))
            .expect_err("empty");
        assert!(err.to_string().contains("`to`"), "{err}");
        let err = only(&query(&[("form", "x")]), &["from"]).expect_err("typo");
        assert!(err.to_string().contains("form"), "{err}");
    }
}
