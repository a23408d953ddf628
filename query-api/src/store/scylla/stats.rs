//! Reads behind the stats, report and event-type answers, on ScyllaDB. CQL
//! has no GROUP BY over regular columns, so the sums SQLite computes are made
//! here, over the rows of the one partition each answer reads.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use scylla::value::CqlDate;

use super::ScyllaStore;
use super::buckets::{cql_date, day_text};
use super::statements as s;
use crate::stats::{DayClicks, GroupBy, ReportLine};
use crate::store::{Apart, EventTypeCount, StoreError};

/// A `clicks_by_day` row: day, browser, os, device, clicks.
type ClickRow = (CqlDate, String, String, String, i64);

impl ScyllaStore {
    /// Human clicks of `short_code` per day (and group) from `from` to `to`
    /// inclusive, in (day, group) order.
    pub(crate) async fn link_clicks(
        &self,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
        group_by: Option<GroupBy>,
    ) -> Result<Vec<DayClicks>, StoreError> {
        if let Some(GroupBy::Breakdown(dimension)) = group_by {
            let rows: Vec<(CqlDate, String, String, i64)> = self
                .select(s::link_dimensions_by_day(
                    short_code,
                    cql_date(from)?,
                    cql_date(to)?,
                ))
                .await?;
            let rows = rows
                .into_iter()
                .filter(|(_, name, _, _)| name == dimension.as_str())
                .map(|(day, _, value, clicks)| (day, value, String::new(), String::new(), clicks))
                .collect();
            return sum_clicks(rows, Some(GroupBy::Browser));
        }
        let rows: Vec<ClickRow> = self
            .select(s::clicks_by_day(short_code, cql_date(from)?, cql_date(to)?))
            .await?;
        sum_clicks(rows, group_by)
    }

    /// Bot and crawler clicks, or link previews, of `short_code` per day,
    /// in day order.
    pub(crate) async fn apart_clicks(
        &self,
        apart: Apart,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let (from, to) = (cql_date(from)?, cql_date(to)?);
        let statement = match apart {
            Apart::Bots => s::bot_clicks_by_day(short_code, from, to),
            Apart::Previews => s::preview_clicks_by_day(short_code, from, to),
        };
        let rows: Vec<(CqlDate, i64)> = self.select(statement).await?;
        rows.into_iter()
            .map(|(day, clicks)| Ok((day_text(day)?, clicks)))
            .collect()
    }

    /// The stored visitor sketches of `short_code` per day, in day order.
    pub(crate) async fn visitor_sketches(
        &self,
        short_code: &str,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let rows: Vec<(CqlDate, Vec<u8>)> = self
            .select(s::link_visitors_by_day(
                short_code,
                cql_date(from)?,
                cql_date(to)?,
            ))
            .await?;
        rows.into_iter()
            .map(|(day, sketch)| Ok((day_text(day)?, sketch)))
            .collect()
    }

    /// A client's human clicks per short code in `month` (`YYYY-MM`), most
    /// clicked first.
    pub(crate) async fn client_report(
        &self,
        client_id: i64,
        month: &str,
    ) -> Result<Vec<ReportLine>, StoreError> {
        let rows: Vec<(String, i64)> = self.select(s::client_month(client_id, month)).await?;
        Ok(report(rows))
    }
}

/// Sums `clicks_by_day` rows per day and group (the `group_by` column, or
/// `""` without one), in (day, group) order, as SQLite's GROUP BY does.
fn sum_clicks(
    rows: Vec<ClickRow>,
    group_by: Option<GroupBy>,
) -> Result<Vec<DayClicks>, StoreError> {
    let mut sums: BTreeMap<(u32, String), i64> = BTreeMap::new();
    for (day, browser, os, device, clicks) in rows {
        let group = match group_by {
            None | Some(GroupBy::Breakdown(_)) => String::new(),
            Some(GroupBy::Browser) => browser,
            Some(GroupBy::Os) => os,
            Some(GroupBy::Device) => device,
        };
        let sum = sums.entry((day.0, group)).or_default();
        *sum = sum.saturating_add(clicks);
    }
    sums.into_iter()
        .map(|((day, group), clicks)| {
            Ok(DayClicks {
                day: day_text(CqlDate(day))?,
                group,
                clicks,
            })
        })
        .collect()
}

/// Sums `event_type_counts` rows (category, name, events, known) over the
/// partitions that own them: most events first, then by category and name;
/// known when any row says so (SQLite's `MAX(known_type)`).
pub(super) fn sum_event_types(rows: Vec<(String, String, i64, bool)>) -> Vec<EventTypeCount> {
    let mut sums: BTreeMap<(String, String), (i64, bool)> = BTreeMap::new();
    for (category, name, events, known) in rows {
        let (sum, any_known) = sums.entry((category, name)).or_default();
        *sum = sum.saturating_add(events);
        *any_known |= known;
    }
    let mut counts: Vec<EventTypeCount> = sums
        .into_iter()
        .map(|((category, name), (events, known))| EventTypeCount {
            category,
            name,
            events,
            known,
        })
        .collect();
    // Stable: equal counts keep the map's (category, name) order.
    counts.sort_by_key(|count| std::cmp::Reverse(count.events));
    counts
}

/// A client's month, most clicked first, then by short code.
fn report(rows: Vec<(String, i64)>) -> Vec<ReportLine> {
    let mut lines: Vec<ReportLine> = rows
        .into_iter()
        .map(|(short_code, clicks)| ReportLine::clicks(short_code, clicks))
        .collect();
    lines.sort_by(|a, b| {
        b.clicks
            .cmp(&a.clicks)
            .then_with(|| a.short_code.cmp(&b.short_code))
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> CqlDate {
        cql_date(NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("day")).expect("date")
    }

    fn click(on: &str, browser: &str, os: &str, clicks: i64) -> ClickRow {
        (day(on), browser.into(), os.into(), "desktop".into(), clicks)
    }

    fn rows() -> Vec<ClickRow> {
        vec![
            click("2021-02-28", "Chrome", "Linux", 2),
            click("2021-02-28", "Chrome", "Windows", 3),
            click("2021-02-28", "Firefox", "Linux", 1),
            click("2021-03-01", "Chrome", "Linux", 4),
        ]
    }

    fn as_tuples(clicks: &[DayClicks]) -> Vec<(&str, &str, i64)> {
        clicks
            .iter()
            .map(|c| (c.day.as_str(), c.group.as_str(), c.clicks))
            .collect()
    }

    #[test]
    fn clicks_are_summed_per_day_without_a_group() {
        let sums = sum_clicks(rows(), None).expect("sums");
        assert_eq!(
            as_tuples(&sums),
            [("2021-02-28", "", 6), ("2021-03-01", "", 4)]
        );
    }

    #[test]
    fn clicks_are_summed_per_day_and_group() {
        let by_browser = sum_clicks(rows(), Some(GroupBy::Browser)).expect("sums");
        assert_eq!(
            as_tuples(&by_browser),
            [
                ("2021-02-28", "Chrome", 5),
                ("2021-02-28", "Firefox", 1),
                ("2021-03-01", "Chrome", 4)
            ]
        );
        let by_os = sum_clicks(rows(), Some(GroupBy::Os)).expect("sums");
        assert_eq!(
            as_tuples(&by_os),
            [
                ("2021-02-28", "Linux", 3),
                ("2021-02-28", "Windows", 3),
                ("2021-03-01", "Linux", 4)
            ]
        );
        let by_device = sum_clicks(rows(), Some(GroupBy::Device)).expect("sums");
        assert_eq!(by_device.len(), 2);
    }

    #[test]
    fn a_malformed_day_is_an_error_not_a_panic() {
        let rows = vec![(
            CqlDate(u32::MAX),
            String::new(),
            String::new(),
            String::new(),
            1,
        )];
        assert!(matches!(
            sum_clicks(rows, None),
            Err(StoreError::Cql { .. })
        ));
    }

    #[test]
    fn event_types_sum_partitions_and_sort_by_count_then_name() {
        let row = |category: &str, name: &str, events: i64, known: bool| {
            (category.to_owned(), name.to_owned(), events, known)
        };
        let counts = sum_event_types(vec![
            row("ui", "click", 2, false),
            row("page", "view", 3, true),
            row("ui", "click", 2, true),
            row("ui", "scroll", 4, false),
            row("app", "open", 1, false),
        ]);
        let flat: Vec<(&str, &str, i64, bool)> = counts
            .iter()
            .map(|c| (c.category.as_str(), c.name.as_str(), c.events, c.known))
            .collect();
        assert_eq!(
            flat,
            [
                ("ui", "click", 4, true),
                ("ui", "scroll", 4, false),
                ("page", "view", 3, true),
                ("app", "open", 1, false),
            ]
        );
    }

    #[test]
    fn reports_are_most_clicked_first_then_by_code() {
        let lines = report(vec![("b".into(), 1), ("c".into(), 5), ("a".into(), 1)]);
        let flat: Vec<(&str, i64)> = lines
            .iter()
            .map(|l| (l.short_code.as_str(), l.clicks))
            .collect();
        assert_eq!(flat, [("c", 5), ("a", 1), ("b", 1)]);
    }
}
