//! How the ScyllaDB tables encode keys, in one place for the processor that
//! writes them and the query API that reads them: days as CQL `date`s, the
//! minute and shard a listing row lives in, the scopes of
//! `listing_buckets`, and the one partition of per-type counts.

use scylla::value::{CqlDate, CqlTimestamp};

/// The `scope` of `event_type_counts`' single partition.
pub const EVENT_TYPES_SCOPE: &str = "all";

/// How many shards a listing's minute is spread over: at 100,000 events/s
/// sustained a minute holds 6,000,000 rows, 93,750 per shard.
pub const SHARDS: u32 = 64;

/// Microseconds in a minute, an hour and a day.
pub const MINUTE_MICROS: i64 = 60_000_000;
pub const HOUR_MICROS: i64 = 60 * MINUTE_MICROS;
pub const DAY_MICROS: i64 = 24 * HOUR_MICROS;

/// `CqlDate` counts days with 1970-01-01 at 2^31.
const CQL_EPOCH_DAY: i64 = 1 << 31;

/// The CQL `date` `days` after 1970-01-01, if CQL can hold it.
pub fn date_from_days(days: i64) -> Option<CqlDate> {
    days.checked_add(CQL_EPOCH_DAY)
        .and_then(|raw| u32::try_from(raw).ok())
        .map(CqlDate)
}

/// Days after 1970-01-01 of a CQL `date`.
pub fn days_of_date(date: CqlDate) -> i64 {
    i64::from(date.0) - CQL_EPOCH_DAY
}

/// A calendar day as a CQL `date`, if CQL can hold it.
pub fn date_of(day: chrono::NaiveDate) -> Option<CqlDate> {
    date_from_days(
        day.signed_duration_since(chrono::NaiveDate::default())
            .num_days(),
    )
}

/// A `YYYY-MM-DD` day (as the processor and SQLite keep days) as a CQL
/// `date`, if it is one.
pub fn date_of_text(day: &str) -> Option<CqlDate> {
    chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .ok()
        .and_then(date_of)
}

/// A CQL `date` as `YYYY-MM-DD`, if chrono can represent it.
pub fn date_text(date: CqlDate) -> Option<String> {
    chrono::TimeDelta::try_days(days_of_date(date))
        .and_then(|offset| chrono::NaiveDate::default().checked_add_signed(offset))
        .map(|day| day.format("%Y-%m-%d").to_string())
}

/// The UTC day (as a CQL `date`) an event time in microseconds falls in.
pub fn day_of(micros: i64) -> CqlDate {
    // Every i64 of microseconds is within CQL's date range.
    date_from_days(micros.div_euclid(DAY_MICROS)).unwrap_or(CqlDate(0))
}

/// The UTC minute an event time falls in, as the `minute` key.
pub fn minute_of(micros: i64) -> CqlTimestamp {
    CqlTimestamp(micros.div_euclid(MINUTE_MICROS) * (MINUTE_MICROS / 1000))
}

/// The start of a `minute` key, in microseconds.
pub fn minute_micros(minute: CqlTimestamp) -> i64 {
    minute.0.saturating_mul(1000)
}

/// The shard of a listing row: FNV-1a of its id's bytes, so every process
/// agrees and ids spread evenly.
pub fn shard_of(id: &[u8]) -> i32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in id {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    // The remainder is below SHARDS (64): it fits.
    i32::try_from(hash % u64::from(SHARDS)).unwrap_or(0)
}

/// A listing whose partitions `listing_buckets` indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listing<'a> {
    /// Every event, by time.
    Events,
    /// One category's events.
    Category(&'a str),
    /// One kind of error (`reject`, `dead_letter`).
    Errors(&'a str),
}

impl Listing<'_> {
    /// The `scope` of its `listing_buckets` rows.
    pub fn scope(self) -> String {
        match self {
            Self::Events => "events".to_owned(),
            Self::Category(category) => format!("category:{category}"),
            Self::Errors(kind) => format!("errors:{kind}"),
        }
    }
}

/// The `dedup_keys` partition (UTC hour) of a key received at `micros`.
pub fn dedup_hour(micros: i64) -> CqlTimestamp {
    CqlTimestamp(micros.div_euclid(HOUR_MICROS) * (HOUR_MICROS / 1_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_minutes_and_shards_encode_as_both_sides_expect() {
        // 2024-02-01T10:59:59.999999Z.
        let at = 1_706_785_199_999_999;
        assert_eq!(day_of(at), CqlDate((1 << 31) + 19_754));
        assert_eq!(days_of_date(day_of(at)), 19_754);
        assert_eq!(day_of(-1), CqlDate((1 << 31) - 1));
        assert_eq!(minute_of(at), CqlTimestamp(1_706_785_140_000));
        assert_eq!(minute_micros(minute_of(at)), 1_706_785_140_000_000);
        assert_eq!(minute_of(-1), CqlTimestamp(-60_000));
        let shards: std::collections::BTreeSet<i32> =
            (0u32..10_000).map(|n| shard_of(&n.to_be_bytes())).collect();
        assert_eq!(shards.len(), SHARDS as usize, "ids spread over every shard");
        assert!(
            shards
                .iter()
                .all(|shard| (0..SHARDS as i32).contains(shard))
        );
        assert_eq!(shard_of(b"abc"), shard_of(b"abc"));
        assert_eq!(Listing::Category("page").scope(), "category:page");
        assert_eq!(date_of_text("2024-02-01"), Some(day_of(at)));
        assert_eq!(date_of_text("1970-01-01"), Some(CqlDate(1 << 31)));
        assert_eq!(date_of_text("2024-13-01"), None);
        assert_eq!(date_text(day_of(at)).as_deref(), Some("2024-02-01"));
        assert_eq!(Listing::Errors("reject").scope(), "errors:reject");
    }
}
