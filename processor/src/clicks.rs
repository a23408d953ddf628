//! Click statistics of one redirects partition, without I/O.
//!
//! Every row is keyed by a short code, so it is owned by the partition the
//! short code hashes to. The aggregate keeps only the clicks added since the
//! last flush; the store adds them to its absolute values in the same
//! transaction that moves the partition's checkpoint, so a replay after a
//! crash adds nothing twice. A late click counts on the day it happened.

use std::collections::HashMap;

use chrono::DateTime;

use crate::checkpoint::Checkpoint;
use crate::user_agent::Agent;

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

/// A bot's row: per short code and day, kept out of clients' totals.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BotDayRow {
    pub short_code: String,
    pub day: String,
}

/// One click, as the aggregate needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Click<'a> {
    pub short_code: &'a str,
    pub client_id: i64,
    /// Microseconds since the epoch.
    pub occurred_at: i64,
    pub agent: &'a Agent,
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
}

/// Clicks of one partition since the last flush.
#[derive(Debug, Clone, Default)]
pub struct PartitionClicks {
    checkpoint: Checkpoint,
    by_day: HashMap<DayRow, i64>,
    by_client_month: HashMap<ClientMonthRow, i64>,
    by_code: HashMap<String, i64>,
    bots_by_day: HashMap<BotDayRow, i64>,
    days: DayCache,
}

/// The UTC day and month of the last click's day, so clicks of one day
/// (nearly all of them) skip the date formatting.
#[derive(Debug, Clone, Default)]
struct DayCache {
    /// Microseconds: the day's first instant, and the next day's.
    start: i64,
    end: i64,
    day: String,
    month: String,
}

impl DayCache {
    const DAY_MICROS: i64 = 86_400_000_000;

    fn of(&mut self, micros: i64) -> (String, String) {
        if !(self.start..self.end).contains(&micros) {
            let (day, month) = day_and_month(micros);
            self.start = micros - micros.rem_euclid(Self::DAY_MICROS);
            self.end = self.start + Self::DAY_MICROS;
            self.day = day;
            self.month = month;
        }
        (self.day.clone(), self.month.clone())
    }
}

impl PartitionClicks {
    /// State from the store's checkpoint.
    pub fn restore(next_offset: i64) -> Self {
        Self {
            checkpoint: Checkpoint::restore(next_offset),
            ..Self::default()
        }
    }

    /// Counts `click` at `offset`; false if the store already includes it.
    pub fn apply(&mut self, offset: i64, click: &Click<'_>) -> bool {
        if !self.checkpoint.admit(offset) {
            return false;
        }
        let (day, month) = self.days.of(click.occurred_at);
        if click.agent.bot {
            *self
                .bots_by_day
                .entry(BotDayRow {
                    short_code: click.short_code.to_owned(),
                    day,
                })
                .or_default() += 1;
            return true;
        }
        *self
            .by_day
            .entry(DayRow {
                short_code: click.short_code.to_owned(),
                day,
                browser: click.agent.browser.clone(),
                os: click.agent.os.clone(),
                device: click.agent.device.clone(),
            })
            .or_default() += 1;
        *self
            .by_client_month
            .entry(ClientMonthRow {
                client_id: click.client_id,
                month,
                short_code: click.short_code.to_owned(),
            })
            .or_default() += 1;
        match self.by_code.get_mut(click.short_code) {
            Some(clicks) => *clicks += 1,
            None => {
                self.by_code.insert(click.short_code.to_owned(), 1);
            }
        }
        true
    }
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
    type Setup = ();
    type Batch = ClicksBatch;

    /// What a flush must write now.
    fn batch(&self) -> ClicksBatch {
        fn sorted<K: Clone + Ord>(map: &HashMap<K, i64>) -> Vec<(K, i64)> {
            let mut rows: Vec<(K, i64)> = map.iter().map(|(k, v)| (k.clone(), *v)).collect();
            rows.sort();
            rows
        }
        ClicksBatch {
            expected_next_offset: self.checkpoint.stored(),
            next_offset: self.checkpoint.next_offset(),
            through_offset: self.checkpoint.next_offset() - 1,
            by_day: sorted(&self.by_day),
            by_client_month: sorted(&self.by_client_month),
            by_code: sorted(&self.by_code),
            bots_by_day: sorted(&self.bots_by_day),
        }
    }

    /// Records that `batch` is stored: its clicks are the store's now.
    fn flushed(&mut self, batch: &ClicksBatch) {
        self.checkpoint.flushed(batch.next_offset);
        self.by_day.clear();
        self.by_client_month.clear();
        self.by_code.clear();
        self.bots_by_day.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Partitioned;
    use crate::store::Stored;

    fn agent(bot: bool) -> Agent {
        Agent {
            browser: "Chrome".into(),
            os: "Android".into(),
            device: "smartphone".into(),
            bot,
        }
    }

    const JAN_31_23H: i64 = 1_706_742_000_000_000; // 2024-01-31T23:00:00Z
    const FEB_1_01H: i64 = 1_706_749_200_000_000; // 2024-02-01T01:00:00Z

    #[test]
    fn the_day_cache_switches_at_utc_midnight_both_ways() {
        let mut days = DayCache::default();
        let midnight = 1_706_745_600_000_000; // 2024-02-01T00:00:00Z
        assert_eq!(days.of(midnight - 1).0, "2024-01-31");
        assert_eq!(days.of(midnight), ("2024-02-01".into(), "2024-02".into()));
        assert_eq!(days.of(midnight + 86_399_999_999).0, "2024-02-01");
        assert_eq!(days.of(midnight + 86_400_000_000).0, "2024-02-02");
        assert_eq!(days.of(JAN_31_23H), ("2024-01-31".into(), "2024-01".into()));
        assert_eq!(days.of(-1).0, "1969-12-31");
    }

    #[test]
    fn clicks_land_on_their_utc_day_and_month() {
        let (human, bot) = (agent(false), agent(true));
        let mut clicks = PartitionClicks::default();
        let click = |at, agent| Click {
            short_code: "abc",
            client_id: 7,
            occurred_at: at,
            agent,
        };
        assert!(clicks.apply(0, &click(JAN_31_23H, &human)));
        assert!(clicks.apply(1, &click(FEB_1_01H, &human)));
        assert!(clicks.apply(2, &click(FEB_1_01H, &human)));
        assert!(clicks.apply(3, &click(FEB_1_01H, &bot)));
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
        assert_eq!(
            (
                batch.expected_next_offset,
                batch.next_offset,
                batch.through_offset
            ),
            (0, 4, 3)
        );
    }

    #[test]
    fn a_late_click_counts_on_its_own_day_and_replays_count_nothing() {
        let human = agent(false);
        let mut clicks = PartitionClicks::restore(10);
        let late = Click {
            short_code: "abc",
            client_id: 7,
            occurred_at: JAN_31_23H,
            agent: &human,
        };
        assert!(!clicks.apply(9, &late), "already in the store");
        assert!(clicks.apply(10, &late));
        let batch = clicks.batch();
        assert_eq!(batch.by_day[0].0.day, "2024-01-31");
        clicks.flushed(&batch);
        assert!(!clicks.has_changes());
        assert!(clicks.batch().by_day.is_empty());
    }
}
