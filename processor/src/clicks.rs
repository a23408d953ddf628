//! Click statistics of one redirects partition, without I/O.
//!
//! Every row is keyed by a short code, so it is owned by the partition the
//! short code hashes to. The aggregate keeps only the clicks added since the
//! last flush; the store adds them to its absolute values in the same
//! transaction that moves the partition's checkpoint, so a replay after a
//! crash adds nothing twice. A late click counts on the day it happened.
//!
//! People, bots and link previews are counted apart ([`Class`]); only
//! people's clicks enter the agent classes, the breakdowns by
//! [`Dimension`] and the clients' totals.

use std::collections::{HashMap, HashSet};

use chrono::DateTime;

use crate::checkpoint::Checkpoint;
use crate::enrich::{Class, Dimension, Enricher, Visit};
use crate::sketch::Sketch;
use crate::user_agent::Agent;

/// The aggregate's maps: `hashbrown`'s, looked up by `&str` without
/// allocating (`entry_ref`), hashed with foldhash (seeded per process).
type Map<K, V> = hashbrown::HashMap<K, V>;

/// The value new values of a breakdown are counted under once it holds
/// its most distinct values for a short code and day.
pub const OTHER: &str = "(other)";

/// The most distinct values of a breakdown per short code and day unless
/// `--max-dimension-values` says otherwise.
pub const DEFAULT_MAX_DIMENSION_VALUES: usize = 1_000;

/// What the redirects worker shares across its partitions.
#[derive(Debug)]
pub struct ClicksContext {
    pub enricher: Enricher,
    /// Distinct values kept per (short code, day, dimension).
    pub max_dimension_values: usize,
}

/// A human click's row: per short code, UTC day and agent classes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayRow {
    pub short_code: String,
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    pub browser: String,
    pub os: String,
    pub device: String,
}

/// A paying client's monthly row per short code.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientMonthRow {
    pub client_id: i64,
    /// `YYYY-MM` (UTC).
    pub month: String,
    pub short_code: String,
}

/// A bot's or preview's row: per short code and day, kept out of clients'
/// totals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BotDayRow {
    pub short_code: String,
    pub day: String,
}

/// A breakdown's row: human clicks per short code, day, dimension and value.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DimensionRow {
    pub short_code: String,
    pub day: String,
    pub dimension: Dimension,
    pub value: String,
}

/// Clicks of a breakdown's value in a batch, and the offset of its first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DimensionCount {
    pub clicks: i64,
    pub first_offset: i64,
}

/// One click, as the aggregate needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click<'a> {
    pub short_code: &'a str,
    pub client_id: i64,
    /// Microseconds since the epoch.
    pub occurred_at: i64,
    pub visit: &'a Visit<'a>,
}

/// What a flush must add, and the checkpoint it moves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClicksBatch {
    /// The checkpoint the store holds now; the write is fenced on it.
    pub expected_next_offset: i64,
    /// The checkpoint after this flush.
    pub next_offset: i64,
    /// The last offset this batch includes.
    pub through_offset: i64,
    pub by_day: Vec<(DayRow, i64)>,
    pub by_client_month: Vec<(ClientMonthRow, i64)>,
    /// Human clicks per short code (the all-time total).
    pub by_code: Vec<(String, i64)>,
    pub bots_by_day: Vec<(BotDayRow, i64)>,
    pub previews_by_day: Vec<(BotDayRow, i64)>,
    /// Human clicks per breakdown value, sorted by row: the store keeps at
    /// most `max_dimension_values` values per (short code, day, dimension)
    /// and counts the rest as [`OTHER`] ([`bound`]).
    pub by_dimension: Vec<(DimensionRow, DimensionCount)>,
    pub max_dimension_values: usize,
    /// People's visitor sketches per short code and day; the store merges
    /// them into its own (a merge twice is a merge once).
    pub visitors_by_day: Vec<(BotDayRow, Sketch)>,
}

/// Clicks of one partition since the last flush.
#[derive(Debug, Clone, Default)]
pub struct PartitionClicks {
    checkpoint: Checkpoint,
    /// Every click, by short code and UTC day, looked up by `&str` at both
    /// levels: a click of a known code, day and values allocates nothing.
    /// The flush's rows (per day, per client and month, per code) are
    /// summed from here.
    links: Map<String, Map<String, CodeDay>>,
    max_dimension_values: usize,
    days: DayCache,
}

/// One short code's clicks on one day.
#[derive(Debug, Clone, Default)]
struct CodeDay {
    /// People's clicks per agent classes.
    agents: Map<Agent, i64>,
    /// People's clicks per client (nearly always one).
    clients: Vec<(i64, i64)>,
    bots: i64,
    previews: i64,
    /// Per [`Dimension::ALL`] index: people's clicks per value.
    dimensions: [Map<String, DimensionCount>; crate::enrich::DIMENSIONS],
    visitors: Sketch,
}

impl CodeDay {
    fn count(&mut self, click: &Click<'_>, offset: i64) {
        let visit = click.visit;
        match visit.class {
            Class::Bot => {
                self.bots += 1;
                return;
            }
            Class::Preview => {
                self.previews += 1;
                return;
            }
            Class::Human => {}
        }
        match self.agents.get_mut(visit.agent) {
            Some(clicks) => *clicks += 1,
            None => {
                self.agents.insert(visit.agent.clone(), 1);
            }
        }
        match self
            .clients
            .iter_mut()
            .find(|(id, _)| *id == click.client_id)
        {
            Some((_, clicks)) => *clicks += 1,
            None => self.clients.push((click.client_id, 1)),
        }
        for (values, value) in self.dimensions.iter_mut().zip(&visit.dimensions) {
            match values.get_mut(*value) {
                Some(count) => count.clicks += 1,
                None => {
                    values.insert(
                        (*value).to_owned(),
                        DimensionCount {
                            clicks: 1,
                            first_offset: offset,
                        },
                    );
                }
            }
        }
        if let Some(visitor) = visit.visitor {
            self.visitors.insert(visitor);
        }
    }

    /// People's clicks.
    fn humans(&self) -> i64 {
        self.agents.values().sum()
    }
}

/// The UTC day of the last click, so clicks of one day (nearly all of
/// them) skip the date formatting.
#[derive(Debug, Clone, Default)]
struct DayCache {
    /// Microseconds: the day's first instant, and the next day's.
    start: i64,
    end: i64,
    day: String,
}

impl DayCache {
    const DAY_MICROS: i64 = 86_400_000_000;

    /// `YYYY-MM-DD` (UTC) of `micros`.
    fn of(&mut self, micros: i64) -> &str {
        if !(self.start..self.end).contains(&micros) {
            self.day = day_and_month(micros).0;
            self.start = micros - micros.rem_euclid(Self::DAY_MICROS);
            self.end = self.start + Self::DAY_MICROS;
        }
        &self.day
    }
}

/// `YYYY-MM` of a `YYYY-MM-DD` day.
fn month_of(day: &str) -> &str {
    day.get(..7).unwrap_or(day)
}

impl PartitionClicks {
    /// State from the store's checkpoint, keeping `max_dimension_values`
    /// values per breakdown.
    pub fn restore(next_offset: i64, max_dimension_values: usize) -> Self {
        Self {
            checkpoint: Checkpoint::restore(next_offset),
            max_dimension_values,
            ..Self::default()
        }
    }

    /// Counts `click` at `offset`; false if the store already includes it.
    pub fn apply(&mut self, offset: i64, click: &Click<'_>) -> bool {
        if !self.checkpoint.admit(offset) {
            return false;
        }
        let day = self.days.of(click.occurred_at);
        self.links
            .entry_ref(click.short_code)
            .or_default()
            .entry_ref(day)
            .or_default()
            .count(click, offset);
        true
    }
}

/// What one (short code, day, dimension) adds: values already `stored`
/// grow; new ones, taken in the order of their first click (`rows` sorted
/// by [`DimensionCount::first_offset`]), are kept while fewer than `cap`
/// values are stored, the rest go to [`OTHER`]. The same stored set and
/// rows give the same answer, so a replayed or retried flush decides as
/// the first did.
pub fn bound(
    rows: &[(&str, DimensionCount)],
    stored: &HashSet<String>,
    cap: usize,
) -> Vec<(String, i64)> {
    let mut ordered: Vec<&(&str, DimensionCount)> = rows.iter().collect();
    ordered.sort_by_key(|(value, count)| (count.first_offset, *value));
    let mut held = stored.iter().filter(|value| *value != OTHER).count();
    let mut added: Vec<(String, i64)> = Vec::new();
    let mut other = 0;
    for (value, count) in ordered {
        if *value == OTHER || stored.contains(*value) {
            added.push(((*value).to_owned(), count.clicks));
        } else if held < cap {
            held += 1;
            added.push(((*value).to_owned(), count.clicks));
        } else {
            other += count.clicks;
        }
    }
    if other > 0 {
        match added.iter_mut().find(|(value, _)| value == OTHER) {
            Some((_, clicks)) => *clicks += other,
            None => added.push((OTHER.to_owned(), other)),
        }
    }
    added
}

/// The UTC day (`YYYY-MM-DD`) and month (`YYYY-MM`) of a timestamp.
pub fn day_and_month(micros: i64) -> (String, String) {
    let at = DateTime::from_timestamp_micros(micros).unwrap_or_default();
    (
        at.format("%Y-%m-%d").to_string(),
        at.format("%Y-%m").to_string(),
    )
}

crate::partitioned!(PartitionClicks);

impl crate::store::Stored for PartitionClicks {
    /// `max_dimension_values`.
    type Setup = usize;
    type Batch = ClicksBatch;

    /// What a flush must write now.
    fn batch(&self) -> ClicksBatch {
        let mut by_day = Vec::new();
        let mut by_client_month: HashMap<ClientMonthRow, i64> = HashMap::new();
        let mut by_code = Vec::new();
        let mut bots_by_day = Vec::new();
        let mut previews_by_day = Vec::new();
        let mut by_dimension = Vec::new();
        for (code, days) in &self.links {
            let mut humans = 0;
            for (day, code_day) in days {
                let row = || BotDayRow {
                    short_code: code.clone(),
                    day: day.clone(),
                };
                if code_day.bots > 0 {
                    bots_by_day.push((row(), code_day.bots));
                }
                if code_day.previews > 0 {
                    previews_by_day.push((row(), code_day.previews));
                }
                humans += code_day.humans();
                by_day.extend(code_day.agents.iter().map(|(agent, clicks)| {
                    let row = DayRow {
                        short_code: code.clone(),
                        day: day.clone(),
                        browser: agent.browser.to_string(),
                        os: agent.os.to_string(),
                        device: agent.device.to_string(),
                    };
                    (row, *clicks)
                }));
                for (client_id, clicks) in &code_day.clients {
                    *by_client_month
                        .entry(ClientMonthRow {
                            client_id: *client_id,
                            month: month_of(day).to_owned(),
                            short_code: code.clone(),
                        })
                        .or_default() += clicks;
                }
                for (dimension, values) in Dimension::ALL.iter().zip(&code_day.dimensions) {
                    by_dimension.extend(values.iter().map(|(value, count)| {
                        let row = DimensionRow {
                            short_code: code.clone(),
                            day: day.clone(),
                            dimension: *dimension,
                            value: value.clone(),
                        };
                        (row, *count)
                    }));
                }
            }
            if humans > 0 {
                by_code.push((code.clone(), humans));
            }
        }
        let mut by_client_month: Vec<(ClientMonthRow, i64)> = by_client_month.into_iter().collect();
        by_day.sort();
        by_client_month.sort();
        by_code.sort();
        bots_by_day.sort();
        previews_by_day.sort();
        by_dimension.sort();
        ClicksBatch {
            expected_next_offset: self.checkpoint.stored(),
            next_offset: self.checkpoint.next_offset(),
            through_offset: self.checkpoint.next_offset() - 1,
            by_day,
            by_client_month,
            by_code,
            bots_by_day,
            previews_by_day,
            by_dimension,
            max_dimension_values: self.max_dimension_values,
            visitors_by_day: {
                let mut rows: Vec<(BotDayRow, Sketch)> = Vec::new();
                for (code, days) in &self.links {
                    for (day, code_day) in days {
                        if !code_day.visitors.is_empty() {
                            let row = BotDayRow {
                                short_code: code.clone(),
                                day: day.clone(),
                            };
                            rows.push((row, code_day.visitors.clone()));
                        }
                    }
                }
                rows.sort_by(|a, b| a.0.cmp(&b.0));
                rows
            },
        }
    }

    /// Records that `batch` is stored: its clicks are the store's now.
    fn flushed(&mut self, batch: &ClicksBatch) {
        self.checkpoint.flushed(batch.next_offset);
        self.links.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Partitioned;
    use crate::store::Stored;

    fn visit(class: Class) -> Visit<'static> {
        Visit {
            class,
            agent: crate::user_agent::chrome_on_android(class == Class::Bot),
            dimensions: [
                "GB",
                "GB-ENG",
                "London",
                "google.com",
                "search",
                "(none)",
                "(none)",
                "(none)",
                "qr",
            ],
            visitor: Some(42),
        }
    }

    const JAN_31_23H: i64 = 1_706_742_000_000_000; // 2024-01-31T23:00:00Z
    const FEB_1_01H: i64 = 1_706_749_200_000_000; // 2024-02-01T01:00:00Z

    #[test]
    fn the_day_cache_switches_at_utc_midnight_both_ways() {
        let mut days = DayCache::default();
        let midnight = 1_706_745_600_000_000; // 2024-02-01T00:00:00Z
        assert_eq!(days.of(midnight - 1), "2024-01-31");
        assert_eq!(days.of(midnight), "2024-02-01");
        assert_eq!(month_of(days.of(midnight)), "2024-02");
        assert_eq!(days.of(midnight + 86_399_999_999), "2024-02-01");
        assert_eq!(days.of(midnight + 86_400_000_000), "2024-02-02");
        assert_eq!(days.of(JAN_31_23H), "2024-01-31");
        assert_eq!(days.of(-1), "1969-12-31");
        assert_eq!(
            days.of(0),
            "1970-01-01",
            "the cache's empty range is not day 0"
        );
    }

    #[test]
    fn clicks_land_on_their_utc_day_and_month() {
        let (human, bot, preview) = (
            visit(Class::Human),
            visit(Class::Bot),
            visit(Class::Preview),
        );
        let mut clicks = PartitionClicks::default();
        let click = |at, visit| Click {
            short_code: "abc",
            client_id: 7,
            occurred_at: at,
            visit,
        };
        assert!(clicks.apply(0, &click(JAN_31_23H, &human)));
        assert!(clicks.apply(1, &click(FEB_1_01H, &human)));
        assert!(clicks.apply(2, &click(FEB_1_01H, &human)));
        assert!(clicks.apply(3, &click(FEB_1_01H, &bot)));
        assert!(clicks.apply(4, &click(FEB_1_01H, &preview)));
        let batch = clicks.batch();
        let days: Vec<(&str, i64)> = batch
            .by_day
            .iter()
            .map(|(row, n)| (row.day.as_str(), *n))
            .collect();
        assert_eq!(days, vec![("2024-01-31", 1), ("2024-02-01", 2)]);
        let months: Vec<(&str, i64)> = batch
            .by_client_month
            .iter()
            .map(|(row, n)| (row.month.as_str(), *n))
            .collect();
        assert_eq!(months, vec![("2024-01", 1), ("2024-02", 2)]);
        assert_eq!(
            batch.by_code,
            vec![("abc".to_owned(), 3)],
            "bots stay out of the client total"
        );
        assert_eq!(batch.bots_by_day.len(), 1);
        assert_eq!(batch.previews_by_day.len(), 1);
        let countries: Vec<(&str, &str, i64, i64)> = batch
            .by_dimension
            .iter()
            .filter(|(row, _)| row.dimension == Dimension::Country)
            .map(|(row, count)| {
                (
                    row.day.as_str(),
                    row.value.as_str(),
                    count.clicks,
                    count.first_offset,
                )
            })
            .collect();
        assert_eq!(
            countries,
            [("2024-01-31", "GB", 1, 0), ("2024-02-01", "GB", 2, 1)],
            "people only, with the offset of each value's first click"
        );
        assert_eq!(batch.by_dimension.len(), 2 * Dimension::ALL.len());
        assert_eq!(
            (
                batch.expected_next_offset,
                batch.next_offset,
                batch.through_offset
            ),
            (0, 5, 4)
        );
    }

    #[test]
    fn a_late_click_counts_on_its_own_day_and_replays_count_nothing() {
        let human = visit(Class::Human);
        let mut clicks = PartitionClicks::restore(10, DEFAULT_MAX_DIMENSION_VALUES);
        let late = Click {
            short_code: "abc",
            client_id: 7,
            occurred_at: JAN_31_23H,
            visit: &human,
        };
        assert!(!clicks.apply(9, &late), "already in the store");
        assert!(clicks.apply(10, &late));
        let batch = clicks.batch();
        assert_eq!(batch.by_day[0].0.day, "2024-01-31");
        clicks.flushed(&batch);
        assert!(!clicks.has_changes());
        assert!(clicks.batch().by_day.is_empty());
    }

    fn count(clicks: i64, first_offset: i64) -> DimensionCount {
        DimensionCount {
            clicks,
            first_offset,
        }
    }

    #[test]
    fn new_values_past_the_cap_go_to_other_in_the_order_of_their_first_click() {
        let stored: HashSet<String> = ["a", "b", OTHER].map(str::to_owned).into();
        let rows = [
            ("z", count(5, 9)),
            ("b", count(2, 7)),
            ("y", count(3, 3)),
            ("x", count(1, 4)),
            (OTHER, count(1, 1)),
        ];
        let mut added = bound(&rows, &stored, 3);
        added.sort();
        assert_eq!(
            added,
            [("(other)", 1 + 1 + 5), ("b", 2), ("y", 3)].map(|(v, n)| (v.to_owned(), n)),
            "a, b and y held (y came first); x and z counted as other"
        );
        let total: i64 = rows.iter().map(|(_, c)| c.clicks).sum();
        assert_eq!(
            added.iter().map(|(_, n)| n).sum::<i64>(),
            total,
            "nothing lost"
        );
        // Retried after part of it was written (y stored now): the same.
        let retried: HashSet<String> = ["a", "b", "y", OTHER].map(str::to_owned).into();
        let mut again = bound(&rows, &retried, 3);
        again.sort();
        assert_eq!(again, added);
        // Room for everything: nothing is other.
        assert!(
            bound(&rows[..4], &HashSet::new(), 10)
                .iter()
                .all(|(v, _)| v != OTHER)
        );
    }
}
