//! The embedded store's SQLite tables (libSQL). The processor owns the write
//! side and applies [`SQLITE_DDL`]; the query API reads.
//!
//! Every aggregate row is owned by one topic partition and carries the last
//! offset it includes, so a replay after a crash can skip what a row already
//! holds (DESIGN.md guarantee 3).

/// Pragmas for every connection: WAL so readers never block the writer.
pub const SQLITE_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

/// Columns added to a table after it first shipped: `(table, column,
/// type)`. A store file made before gets them at open (`ALTER TABLE ... ADD
/// COLUMN`, only where missing); [`SQLITE_DDL`] already has them.
pub const SQLITE_ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    // The replay run that saw a dead letter fail again or a resubmitted
    // request refused again.
    ("errors", "replay_run", "TEXT"),
];

/// The tables, idempotent (`IF NOT EXISTS`).
pub const SQLITE_DDL: &[&str] = &[
    // Absolute totals per counter key; `partition` owns the row and
    // `through_offset` is the last increments offset included.
    "CREATE TABLE IF NOT EXISTS counters (
        key TEXT PRIMARY KEY,
        value INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS counters_by_partition ON counters (partition)",
    // Human clicks per short code, UTC day and agent classes (never the raw
    // user agent). Owned by the short code's redirects partition.
    "CREATE TABLE IF NOT EXISTS clicks_by_day (
        short_code TEXT NOT NULL,
        day TEXT NOT NULL,
        browser TEXT NOT NULL,
        os TEXT NOT NULL,
        device TEXT NOT NULL,
        clicks INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        PRIMARY KEY (short_code, day, browser, os, device)
    )",
    // Human clicks per paying client, month and short code: the monthly report.
    "CREATE TABLE IF NOT EXISTS clicks_by_client_month (
        client_id INTEGER NOT NULL,
        month TEXT NOT NULL,
        short_code TEXT NOT NULL,
        clicks INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        PRIMARY KEY (client_id, month, short_code)
    )",
    // All-time human clicks per short code.
    "CREATE TABLE IF NOT EXISTS clicks_by_code (
        short_code TEXT PRIMARY KEY,
        clicks INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL
    )",
    // Bot and crawler clicks per short code and day, apart from clients' totals.
    "CREATE TABLE IF NOT EXISTS bot_clicks_by_day (
        short_code TEXT NOT NULL,
        day TEXT NOT NULL,
        clicks INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        PRIMARY KEY (short_code, day)
    )",
    // Link-preview fetches (HEAD requests and preview fetchers) per short
    // code and day, apart from people and bots.
    "CREATE TABLE IF NOT EXISTS preview_clicks_by_day (
        short_code TEXT NOT NULL,
        day TEXT NOT NULL,
        clicks INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        PRIMARY KEY (short_code, day)
    )",
    // Human clicks per short code, day and breakdown value (country,
    // referrer, referrer_channel, utm_source, utm_medium, utm_campaign,
    // source): at most --max-dimension-values values per (short_code, day,
    // dimension), the rest under `(other)`.
    "CREATE TABLE IF NOT EXISTS link_dimensions_by_day (
        short_code TEXT NOT NULL,
        day TEXT NOT NULL,
        dimension TEXT NOT NULL,
        value TEXT NOT NULL,
        clicks INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        PRIMARY KEY (short_code, day, dimension, value)
    )",
    // People's unique-visitor sketch per short code and day (HyperLogLog,
    // processor::sketch): merged, never summed.
    "CREATE TABLE IF NOT EXISTS link_visitors_by_day (
        short_code TEXT NOT NULL,
        day TEXT NOT NULL,
        sketch BLOB NOT NULL,
        partition INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        PRIMARY KEY (short_code, day)
    )",
    // Every event once (by id), read by session, by (category, day) and by
    // time; replays are ignored by the primary key.
    "CREATE TABLE IF NOT EXISTS events (
        event_id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        category TEXT NOT NULL,
        name TEXT NOT NULL,
        day TEXT NOT NULL,
        occurred_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        application_id TEXT NOT NULL,
        data TEXT NOT NULL,
        known_type INTEGER NOT NULL,
        user_id TEXT,
        device_id TEXT,
        partition INTEGER NOT NULL,
        offset INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS events_by_session ON events (session_id, occurred_at, event_id)",
    "CREATE INDEX IF NOT EXISTS events_by_category_day ON events (category, day, occurred_at, event_id)",
    "CREATE INDEX IF NOT EXISTS events_by_time ON events (occurred_at, event_id)",
    // Events per (category, name); one row per events partition so each row
    // has one owner, summed when read.
    "CREATE TABLE IF NOT EXISTS event_type_counts (
        category TEXT NOT NULL,
        name TEXT NOT NULL,
        partition INTEGER NOT NULL,
        events INTEGER NOT NULL,
        known_type INTEGER NOT NULL,
        through_offset INTEGER NOT NULL,
        PRIMARY KEY (category, name, partition)
    )",
    // What ingest refused (kind `reject`) and what processing could not
    // decode (kind `dead_letter`), by day.
    "CREATE TABLE IF NOT EXISTS errors (
        kind TEXT NOT NULL,
        event_id TEXT NOT NULL,
        day TEXT NOT NULL,
        occurred_at INTEGER NOT NULL,
        application_id TEXT,
        source TEXT NOT NULL,
        status INTEGER,
        field TEXT,
        reason TEXT NOT NULL,
        message TEXT NOT NULL,
        body BLOB NOT NULL,
        replay_run TEXT,
        PRIMARY KEY (kind, event_id)
    )",
    "CREATE INDEX IF NOT EXISTS errors_by_day ON errors (kind, day, occurred_at, event_id)",
    // Session rules' pending state per events partition: absence timers
    // (kind `timer`, `at` = due time) and open durations (kind `open`, `at`
    // = start time), written with the partition's rules checkpoint.
    "CREATE TABLE IF NOT EXISTS rule_state (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        kind TEXT NOT NULL,
        rule TEXT NOT NULL,
        user_id TEXT NOT NULL,
        correlation TEXT NOT NULL,
        at INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        device_id TEXT,
        PRIMARY KEY (topic, partition, kind, rule, user_id, correlation)
    )",
    // The highest event time each events partition's rules have seen: the
    // watermark's base, restored with the timers.
    "CREATE TABLE IF NOT EXISTS rule_watermarks (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        max_event_time INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    )",
    // Every notification once (by its deterministic id), read by user.
    "CREATE TABLE IF NOT EXISTS notifications (
        notification_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        rule TEXT NOT NULL,
        occurred_at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        device_id TEXT,
        message TEXT NOT NULL,
        data TEXT NOT NULL,
        trigger_event_id TEXT NOT NULL,
        late_by_micros INTEGER NOT NULL,
        partition INTEGER NOT NULL,
        offset INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS notifications_by_user ON notifications (user_id, occurred_at, notification_id)",
    // Freshness per logical topic partition: the processing time up to which
    // everything the partition held was processed and stored (refreshed
    // while the processor is caught up). Answers carry the minimum as `as_of`.
    "CREATE TABLE IF NOT EXISTS partition_progress (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        as_of INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    )",
    // Per topic partition: the next offset to read, written in the same
    // transaction as the rows it covers. The processor resumes from here.
    "CREATE TABLE IF NOT EXISTS partition_checkpoints (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    )",
    // The idempotency keys a checkpoint's topic partition applied within the
    // dedup window: `first_offset` is the record that applied the key (a
    // loader keeps keys below its checkpoint; a key applied again after its
    // window has a row per application), `received_at` when ingest took it
    // (rows past the window are deleted at flushes).
    "CREATE TABLE IF NOT EXISTS dedup_keys (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        identity BLOB NOT NULL,
        first_offset INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (topic, partition, identity, first_offset)
    ) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS dedup_keys_by_age ON dedup_keys (topic, partition, received_at)",
];

/// The logical table names, for code that names them.
pub mod tables {
    /// Counter totals by key.
    pub const COUNTERS: &str = "counters";
    /// Human clicks by short code and day.
    pub const CLICKS_BY_DAY: &str = "clicks_by_day";
    /// Human clicks by client, month and short code.
    pub const CLICKS_BY_CLIENT_MONTH: &str = "clicks_by_client_month";
    /// All-time human clicks by short code.
    pub const CLICKS_BY_CODE: &str = "clicks_by_code";
    /// Bot clicks by short code and day.
    pub const BOT_CLICKS_BY_DAY: &str = "bot_clicks_by_day";
    /// Link-preview fetches by short code and day.
    pub const PREVIEW_CLICKS_BY_DAY: &str = "preview_clicks_by_day";
    /// Human clicks by short code, day, dimension and value.
    pub const LINK_DIMENSIONS_BY_DAY: &str = "link_dimensions_by_day";
    /// Unique-visitor sketches by short code and day.
    pub const LINK_VISITORS_BY_DAY: &str = "link_visitors_by_day";
    /// Every event, by id.
    pub const EVENTS: &str = "events";
    /// Events per (category, name, partition).
    pub const EVENT_TYPE_COUNTS: &str = "event_type_counts";
    /// Rejects and dead letters by day.
    pub const ERRORS: &str = "errors";
    /// Session rules' timers and open durations.
    pub const RULE_STATE: &str = "rule_state";
    /// Highest event time per events partition, for the rules' watermark.
    pub const RULE_WATERMARKS: &str = "rule_watermarks";
    /// Notifications by user.
    pub const NOTIFICATIONS: &str = "notifications";
    /// Freshness per logical topic partition.
    pub const PARTITION_PROGRESS: &str = "partition_progress";
    /// Per-partition checkpoints.
    pub const PARTITION_CHECKPOINTS: &str = "partition_checkpoints";
    /// Applied idempotency keys per partition.
    pub const DEDUP_KEYS: &str = "dedup_keys";
}
