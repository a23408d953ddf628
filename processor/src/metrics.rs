//! The processor's metric names.

/// Records applied to an aggregate, by `topic`.
pub const RECORDS: &str = "eventide_processor_records_total";
/// Records skipped because the store already includes them, by `topic`.
pub const REPLAYED: &str = "eventide_processor_replayed_total";
/// Records that could not be decoded, by `topic` and `reason`.
pub const UNDECODABLE: &str = "eventide_processor_undecodable_total";
/// Seconds per store flush, by `backend`.
pub const FLUSH_SECONDS: &str = "eventide_processor_flush_seconds";
/// Records (offsets) each flush moves a partition's checkpoint past, by
/// `backend` and `checkpoint`.
pub const FLUSH_RECORDS: &str = "eventide_processor_flush_records";
/// Seconds since each topic's partitions were last all read and stored, by
/// `topic`: how stale its rows may be.
pub const FRESHNESS_SECONDS: &str = "eventide_processor_freshness_seconds";
/// Notifications fired after their moment (a timer seen late), by `rule`.
pub const NOTIFICATIONS_LATE: &str = "eventide_processor_notifications_late_total";
/// How late each notification fired, by `rule` (0 for on time).
pub const NOTIFICATION_LATENESS_SECONDS: &str = "eventide_processor_notification_lateness_seconds";
/// Flushes refused because another processor moved a partition on.
pub const FENCED: &str = "eventide_processor_fenced_flushes_total";
/// Records written to the dead-letters topic, by `stage`.
pub const DEAD_LETTERS: &str = "eventide_processor_dead_letters_total";
/// Notifications fired by rules, by `rule`.
pub const NOTIFICATIONS_FIRED: &str = "eventide_processor_notifications_fired_total";
/// Pending rule timers and open durations across held partitions.
pub const RULE_STATE_PENDING: &str = "eventide_processor_rule_state_pending";
/// Records not yet read, by `topic` and `partition` (librdkafka statistics).
pub const CONSUMER_LAG: &str = "eventide_processor_consumer_lag";
/// Retries dropped because their idempotency key was applied within the
/// dedup window, by `topic`.
pub const DUPLICATES: &str = "eventide_processor_duplicates_total";
/// Idempotency keys remembered, by `checkpoint` and `partition`.
pub const DEDUP_KEYS: &str = "eventide_processor_dedup_keys";
