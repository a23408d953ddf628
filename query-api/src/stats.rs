//! Click statistics and monthly client reports, without I/O: zero-filled
//! time series over UTC days or months, optionally split by browser, OS,
//! device class or a breakdown (country, referrer, ...), the top values of
//! one, and the per-short-code report a client is billed by.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, Months, NaiveDate};
use processor::enrich::Dimension;
use processor::sketch::Sketch;
use serde::Serialize;

/// How a series is bucketed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Granularity {
    Day,
    Month,
}

impl Granularity {
    /// From the `granularity` parameter.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "day" => Some(Self::Day),
            "month" => Some(Self::Month),
            _ => None,
        }
    }

    /// The bucket a `YYYY-MM-DD` day falls in.
    pub fn bucket(self, day: &str) -> String {
        match self {
            Self::Day => day.to_owned(),
            Self::Month => day.get(..7).unwrap_or(day).to_owned(),
        }
    }

    /// How many buckets `from` to `to` inclusive holds, without building
    /// them: a request's size is checked before any work proportional to it.
    pub fn count(self, from: NaiveDate, to: NaiveDate) -> i64 {
        let count = match self {
            Self::Day => (to - from).num_days() + 1,
            Self::Month => {
                let months = |day: NaiveDate| i64::from(day.year()) * 12 + i64::from(day.month0());
                months(to) - months(from) + 1
            }
        };
        count.max(0)
    }

    /// Every bucket from `from` to `to` inclusive.
    pub fn buckets(self, from: NaiveDate, to: NaiveDate) -> Vec<String> {
        let mut buckets = Vec::new();
        match self {
            Self::Day => {
                let mut day = from;
                while day <= to {
                    buckets.push(day.format("%Y-%m-%d").to_string());
                    let Some(next) = day.succ_opt() else { break };
                    day = next;
                }
            }
            Self::Month => {
                let Some(mut month) = from.with_day(1) else {
                    return buckets;
                };
                while month <= to {
                    buckets.push(month.format("%Y-%m").to_string());
                    let Some(next) = month.checked_add_months(Months::new(1)) else {
                        break;
                    };
                    month = next;
                }
            }
        }
        buckets
    }
}

/// What a series may be split by: an agent class (`clicks_by_day`) or a
/// breakdown (`link_dimensions_by_day`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Browser,
    Os,
    Device,
    Breakdown(Dimension),
}

impl GroupBy {
    /// Every split, in the order the API documents them.
    pub fn all() -> Vec<Self> {
        [Self::Browser, Self::Os, Self::Device]
            .into_iter()
            .chain(Dimension::ALL.map(Self::Breakdown))
            .collect()
    }

    /// From the `group_by` (or `dimension`) parameter.
    pub fn parse(text: &str) -> Option<Self> {
        Self::all().into_iter().find(|group| group.name() == text)
    }

    /// Its name in the API; for an agent class, the `clicks_by_day` column.
    pub fn name(self) -> &'static str {
        match self {
            Self::Browser => "browser",
            Self::Os => "os",
            Self::Device => "device",
            Self::Breakdown(dimension) => dimension.as_str(),
        }
    }

    /// Every name, for messages.
    pub fn names() -> String {
        Self::all()
            .into_iter()
            .map(|group| format!("`{}`", group.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// One stored row: human clicks of a day, by group (empty without grouping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DayClicks {
    pub day: String,
    pub group: String,
    pub clicks: i64,
}

/// One bucket of a series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Point {
    pub period: String,
    pub clicks: i64,
    pub bot_clicks: i64,
    /// Link-preview fetches (HEAD requests, chat and social card fetchers).
    pub previews: i64,
    /// Distinct people (by keyed address and user agent) in the period,
    /// estimated (HyperLogLog, within 2%): not a sum of days.
    pub unique_visitors: u64,
    /// Clicks per group, every group of the range present (zero-filled).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<BTreeMap<String, i64>>,
}

/// A zero-filled series with its totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Series {
    pub total_clicks: i64,
    pub total_bot_clicks: i64,
    pub total_previews: i64,
    /// Distinct people over the whole range.
    pub total_unique_visitors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_totals: Option<BTreeMap<String, i64>>,
    pub series: Vec<Point>,
}

/// What a link's series is made of, per day.
#[derive(Debug, Clone, Copy, Default)]
pub struct Daily<'a> {
    /// People's clicks, by group when split.
    pub humans: &'a [DayClicks],
    pub bots: &'a [(String, i64)],
    pub previews: &'a [(String, i64)],
    /// Visitor sketches.
    pub visitors: &'a [(String, Sketch)],
}

/// Buckets a link's daily counts over every period of the range; unique
/// visitors merge the days' sketches per period and over the range.
pub fn series(
    granularity: Granularity,
    from: NaiveDate,
    to: NaiveDate,
    grouped: bool,
    daily: Daily<'_>,
) -> Series {
    let Daily {
        humans,
        bots,
        previews,
        visitors,
    } = daily;
    let groups: BTreeSet<&str> = humans.iter().map(|row| row.group.as_str()).collect();
    let mut points: BTreeMap<String, Point> = granularity
        .buckets(from, to)
        .into_iter()
        .map(|period| {
            let point = Point {
                period: period.clone(),
                clicks: 0,
                bot_clicks: 0,
                previews: 0,
                unique_visitors: 0,
                groups: grouped.then(|| groups.iter().map(|g| ((*g).to_owned(), 0)).collect()),
            };
            (period, point)
        })
        .collect();
    let mut group_totals: BTreeMap<String, i64> =
        groups.iter().map(|g| ((*g).to_owned(), 0)).collect();
    for row in humans {
        if let Some(point) = points.get_mut(&granularity.bucket(&row.day)) {
            point.clicks += row.clicks;
            if let Some(by_group) = point.groups.as_mut() {
                *by_group.entry(row.group.clone()).or_default() += row.clicks;
            }
            *group_totals.entry(row.group.clone()).or_default() += row.clicks;
        }
    }
    for (day, clicks) in bots {
        if let Some(point) = points.get_mut(&granularity.bucket(day)) {
            point.bot_clicks += clicks;
        }
    }
    for (day, fetches) in previews {
        if let Some(point) = points.get_mut(&granularity.bucket(day)) {
            point.previews += fetches;
        }
    }
    let mut period_sketches: BTreeMap<String, Sketch> = BTreeMap::new();
    let mut range_sketch = Sketch::default();
    for (day, sketch) in visitors {
        let period = granularity.bucket(day);
        if points.contains_key(&period) {
            period_sketches.entry(period).or_default().merge(sketch);
            range_sketch.merge(sketch);
        }
    }
    for (period, sketch) in &period_sketches {
        if let Some(point) = points.get_mut(period) {
            point.unique_visitors = sketch.estimate();
        }
    }
    let series: Vec<Point> = points.into_values().collect();
    Series {
        total_unique_visitors: range_sketch.estimate(),
        total_clicks: series.iter().map(|p| p.clicks).sum(),
        total_bot_clicks: series.iter().map(|p| p.bot_clicks).sum(),
        total_previews: series.iter().map(|p| p.previews).sum(),
        group_totals: grouped.then_some(group_totals),
        series,
    }
}

/// One value of a split and its human clicks over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TopValue {
    pub value: String,
    pub clicks: i64,
}

/// The `limit` values of `rows` (one split, per day) with the most clicks
/// over the range, most first (ties by value), and the clicks of all.
pub fn top(rows: &[DayClicks], limit: usize) -> (Vec<TopValue>, i64) {
    let mut sums: BTreeMap<&str, i64> = BTreeMap::new();
    for row in rows {
        *sums.entry(row.group.as_str()).or_default() += row.clicks;
    }
    let total = sums.values().sum();
    let mut values: Vec<TopValue> = sums
        .into_iter()
        .map(|(value, clicks)| TopValue {
            value: value.to_owned(),
            clicks,
        })
        .collect();
    values.sort_by(|a, b| b.clicks.cmp(&a.clicks).then_with(|| a.value.cmp(&b.value)));
    values.truncate(limit);
    (values, total)
}

/// One line of a client's monthly report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReportLine {
    pub short_code: String,
    /// People's clicks.
    pub clicks: i64,
    /// Distinct people over the month (estimated).
    pub unique_visitors: u64,
    /// Link-preview fetches over the month.
    pub previews: i64,
}

impl ReportLine {
    /// A line with its clicks; visitors and previews are read apart.
    pub fn clicks(short_code: String, clicks: i64) -> Self {
        Self {
            short_code,
            clicks,
            unique_visitors: 0,
            previews: 0,
        }
    }
}

/// A report as CSV (RFC 4180: CRLF line ends, a header row).
///
/// # Errors
///
/// If the CSV writer fails (it writes to memory, so only on a bug).
pub fn report_csv(client_id: i64, month: &str, lines: &[ReportLine]) -> Result<String, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    writer.write_record([
        "client_id",
        "month",
        "short_code",
        "clicks",
        "unique_visitors",
        "previews",
    ])?;
    for line in lines {
        writer.write_record([
            client_id.to_string(),
            month.to_owned(),
            line.short_code.clone(),
            line.clicks.to_string(),
            line.unique_visitors.to_string(),
            line.previews.to_string(),
        ])?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|err| csv::Error::from(err.into_error()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("day")
    }

    fn row(day: &str, group: &str, clicks: i64) -> DayClicks {
        DayClicks {
            day: day.into(),
            group: group.into(),
            clicks,
        }
    }

    #[test]
    fn bucket_counts_match_the_buckets_and_need_none_built() {
        for (granularity, from, to) in [
            (Granularity::Day, "2021-02-27", "2021-03-01"),
            (Granularity::Day, "2024-01-01", "2024-12-31"),
            (Granularity::Month, "2020-11-15", "2021-02-01"),
            (Granularity::Month, "2021-02-28", "2021-02-01"),
        ] {
            let (from, to) = (day(from), day(to));
            let built = granularity.buckets(from, to).len();
            assert_eq!(granularity.count(from, to), built as i64, "{from}..{to}");
        }
        // The range that cost 1.4 s and 115 MB when every bucket was built.
        let (first, last) = (day("0001-01-01"), day("9999-12-31"));
        assert_eq!(Granularity::Day.count(first, last), 3_652_059);
        assert_eq!(Granularity::Month.count(first, last), 119_988);
    }

    #[test]
    fn days_are_zero_filled_and_totalled() {
        let result = series(
            Granularity::Day,
            day("2021-02-27"),
            day("2021-03-01"),
            false,
            Daily {
                humans: &[row("2021-02-28", "", 3), row("2021-03-01", "", 2)],
                bots: &[("2021-02-27".into(), 5)],
                previews: &[("2021-03-01".into(), 4)],
                visitors: &[],
            },
        );
        let periods: Vec<(&str, i64, i64, i64)> = result
            .series
            .iter()
            .map(|p| (p.period.as_str(), p.clicks, p.bot_clicks, p.previews))
            .collect();
        assert_eq!(
            periods,
            [
                ("2021-02-27", 0, 5, 0),
                ("2021-02-28", 3, 0, 0),
                ("2021-03-01", 2, 0, 4)
            ]
        );
        assert_eq!(
            (
                result.total_clicks,
                result.total_bot_clicks,
                result.total_previews
            ),
            (5, 5, 4)
        );
    }

    #[test]
    fn months_cross_year_ends_and_groups_are_zero_filled() {
        let result = series(
            Granularity::Month,
            day("2020-12-15"),
            day("2021-02-01"),
            true,
            Daily {
                humans: &[
                    row("2020-12-31", "Chrome", 1),
                    row("2021-02-01", "Firefox", 4),
                ],
                ..Daily::default()
            },
        );
        let periods: Vec<&str> = result.series.iter().map(|p| p.period.as_str()).collect();
        assert_eq!(periods, ["2020-12", "2021-01", "2021-02"]);
        let january = result.series[1].groups.clone().expect("grouped");
        assert_eq!(january.get("Chrome"), Some(&0));
        assert_eq!(january.get("Firefox"), Some(&0));
        assert_eq!(
            result.group_totals.expect("totals").get("Firefox"),
            Some(&4)
        );
    }

    #[test]
    fn unique_visitors_merge_days_per_period_and_over_the_range() {
        let sketch = |visitors: std::ops::Range<u64>| {
            let mut sketch = Sketch::default();
            for n in visitors {
                sketch.insert(processor::sketch::visitor_hash(b"k", &n.to_string(), "ua"));
            }
            sketch
        };
        // The same 100 people on both days, 50 new on the second.
        let visitors = [
            ("2021-02-28".to_owned(), sketch(0..100)),
            ("2021-03-01".to_owned(), sketch(0..150)),
        ];
        let result = series(
            Granularity::Day,
            day("2021-02-27"),
            day("2021-03-01"),
            false,
            Daily {
                visitors: &visitors,
                ..Daily::default()
            },
        );
        let per_day: Vec<u64> = result.series.iter().map(|p| p.unique_visitors).collect();
        let near = |estimate: u64, exact: f64| (estimate as f64 - exact).abs() <= exact * 0.02;
        assert_eq!(per_day[0], 0);
        assert!(
            near(per_day[1], 100.0) && near(per_day[2], 150.0),
            "{per_day:?}"
        );
        assert!(
            near(result.total_unique_visitors, 150.0),
            "not 250: the range is merged, got {}",
            result.total_unique_visitors
        );
    }

    #[test]
    fn top_values_sum_over_days_most_first_and_splits_parse_by_name() {
        let rows = [
            row("2021-02-01", "t.co", 2),
            row("2021-02-02", "google.com", 3),
            row("2021-02-03", "t.co", 2),
            row("2021-02-03", "(other)", 1),
            row("2021-02-03", "bing.com", 1),
        ];
        let (values, total) = top(&rows, 2);
        assert_eq!(
            values,
            [
                TopValue {
                    value: "t.co".into(),
                    clicks: 4
                },
                TopValue {
                    value: "google.com".into(),
                    clicks: 3
                },
            ]
        );
        assert_eq!(total, 9, "the total counts every value, listed or not");
        for group in GroupBy::all() {
            assert_eq!(GroupBy::parse(group.name()), Some(group));
        }
        assert_eq!(
            GroupBy::parse("referrer_channel"),
            Some(GroupBy::Breakdown(Dimension::ReferrerChannel))
        );
        assert_eq!(GroupBy::parse("ip"), None);
    }

    #[test]
    fn reports_are_rfc_4180_with_a_header() {
        let csv = report_csv(
            7,
            "2021-02",
            &[ReportLine {
                short_code: "abc".into(),
                clicks: 3,
                unique_visitors: 2,
                previews: 1,
            }],
        )
        .expect("csv");
        assert_eq!(
            csv,
            "client_id,month,short_code,clicks,unique_visitors,previews\r\n7,2021-02,abc,3,2,1\r\n"
        );
    }
}
