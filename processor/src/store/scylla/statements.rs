//! Every CQL statement the processor runs, declared once with the typed
//! values it binds (`schemas::cql_statements!`): a function per statement
//! binds its values by name, so a statement cannot be missing or bound to
//! its neighbour's values. Every parameter is named after the column its
//! marker binds; `processor/tests/cql_statements.rs` checks each against the
//! migrations offline.
//!
//! Aggregate rows are written `USING TIMESTAMP` the offset they include: a
//! row is owned by one topic partition, so its offsets order its writes,
//! and a write of an older offset never overwrites a newer one, whoever
//! sends it and however late it lands.

use schemas::cql_statements;
use scylla::value::{CqlDate, CqlTimestamp};
use uuid::Uuid;

cql_statements! {
    /// Creates a partition's checkpoint at offset 0 if missing.
    ensure_checkpoint(topic: &str, partition: i32) =>
        "INSERT INTO partition_checkpoints (topic, partition, next_offset) VALUES (?, ?, 0) IF NOT EXISTS";
    /// Takes a partition over: a previous owner's mark and commit fail from now on.
    claim(owner: Uuid, topic: &str, partition: i32) =>
        "UPDATE partition_checkpoints SET owner = ? WHERE topic = ? AND partition = ? IF EXISTS";
    /// A partition's next offset and recovery mark.
    read_checkpoint(topic: &str, partition: i32) =>
        "SELECT next_offset, pending_through FROM partition_checkpoints WHERE topic = ? AND partition = ?";
    /// Step 1 of a flush: the last offset it writes, while the claim holds
    /// and no other flush of this checkpoint is marked (a mark that lands
    /// late never replaces another batch's).
    mark(pending_through: i64, updated_at: CqlTimestamp, topic: &str, partition: i32, next_offset: i64, owner: Uuid) =>
        "UPDATE partition_checkpoints SET pending_through = ?, updated_at = ? \
         WHERE topic = ? AND partition = ? IF next_offset = ? AND owner = ? AND pending_through = null";
    /// Step 1 of the flush that replays a cut-short batch: its mark must
    /// still be the one the partition was loaded with.
    remark(updated_at: CqlTimestamp, topic: &str, partition: i32, next_offset: i64, owner: Uuid, pending_through: i64) =>
        "UPDATE partition_checkpoints SET updated_at = ? \
         WHERE topic = ? AND partition = ? IF next_offset = ? AND owner = ? AND pending_through = ?";
    /// Step 3 of a flush: the checkpoint moves and the mark clears, while
    /// the claim and the flush's own mark hold.
    commit(next_offset: i64, updated_at: CqlTimestamp, topic: &str, partition: i32, next_offset_expected: i64, owner: Uuid, pending_through: i64) =>
        "UPDATE partition_checkpoints SET next_offset = ?, pending_through = null, updated_at = ? \
         WHERE topic = ? AND partition = ? IF next_offset = ? AND owner = ? AND pending_through = ?";
    /// A partition's freshness, newest report wins.
    progress(timestamp: i64, as_of: i64, topic: &str, partition: i32) =>
        "UPDATE partition_progress USING TIMESTAMP ? SET as_of = ? WHERE topic = ? AND partition = ?";
    /// A counter's stored total.
    read_counter(key: Uuid) =>
        "SELECT value, through_offset FROM counters WHERE key = ?";
    /// A counter's new total.
    write_counter(key: Uuid, value: i64, partition: i32, through_offset: i64, updated_at: CqlTimestamp, timestamp: i64) =>
        "INSERT INTO counters (key, value, partition, through_offset, updated_at) VALUES (?, ?, ?, ?, ?) \
         USING TIMESTAMP ?";
    /// A short code's clicks of one day and agent class.
    read_day(short_code: &str, day: CqlDate, browser: &str, os: &str, device: &str) =>
        "SELECT clicks, through_offset FROM clicks_by_day \
         WHERE short_code = ? AND day = ? AND browser = ? AND os = ? AND device = ?";
    /// Their new total.
    write_day(short_code: &str, day: CqlDate, browser: &str, os: &str, device: &str, clicks: i64, partition: i32, through_offset: i64, timestamp: i64) =>
        "INSERT INTO clicks_by_day (short_code, day, browser, os, device, clicks, partition, through_offset) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    /// A client's clicks of one month and short code.
    read_client_month(client_id: i64, month: &str, short_code: &str) =>
        "SELECT clicks, through_offset FROM clicks_by_client_month \
         WHERE client_id = ? AND month = ? AND short_code = ?";
    /// Their new total.
    write_client_month(client_id: i64, month: &str, short_code: &str, clicks: i64, partition: i32, through_offset: i64, timestamp: i64) =>
        "INSERT INTO clicks_by_client_month (client_id, month, short_code, clicks, partition, through_offset) \
         VALUES (?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    /// A short code's all-time clicks.
    read_code(short_code: &str) =>
        "SELECT clicks, through_offset FROM clicks_by_code WHERE short_code = ?";
    /// Their new total.
    write_code(short_code: &str, clicks: i64, partition: i32, through_offset: i64, timestamp: i64) =>
        "INSERT INTO clicks_by_code (short_code, clicks, partition, through_offset) VALUES (?, ?, ?, ?) \
         USING TIMESTAMP ?";
    /// A short code's bot clicks of one day.
    read_bot_day(short_code: &str, day: CqlDate) =>
        "SELECT clicks, through_offset FROM bot_clicks_by_day WHERE short_code = ? AND day = ?";
    /// Their new total.
    write_bot_day(short_code: &str, day: CqlDate, clicks: i64, partition: i32, through_offset: i64, timestamp: i64) =>
        "INSERT INTO bot_clicks_by_day (short_code, day, clicks, partition, through_offset) VALUES (?, ?, ?, ?, ?) \
         USING TIMESTAMP ?";
    /// A short code's preview fetches of one day.
    read_preview_day(short_code: &str, day: CqlDate) =>
        "SELECT clicks, through_offset FROM preview_clicks_by_day WHERE short_code = ? AND day = ?";
    /// Their new total.
    write_preview_day(short_code: &str, day: CqlDate, clicks: i64, partition: i32, through_offset: i64, timestamp: i64) =>
        "INSERT INTO preview_clicks_by_day (short_code, day, clicks, partition, through_offset) VALUES (?, ?, ?, ?, ?) \
         USING TIMESTAMP ?";
    /// A short code's visitor sketch of one day.
    read_visitors_day(short_code: &str, day: CqlDate) =>
        "SELECT sketch, through_offset FROM link_visitors_by_day WHERE short_code = ? AND day = ?";
    /// Its merged value.
    write_visitors_day(short_code: &str, day: CqlDate, sketch: &[u8], partition: i32, through_offset: i64, timestamp: i64) =>
        "INSERT INTO link_visitors_by_day (short_code, day, sketch, partition, through_offset) VALUES (?, ?, ?, ?, ?) \
         USING TIMESTAMP ?";
    /// The values a short code's breakdown holds for one day.
    read_dimension_values(short_code: &str, day: CqlDate, dimension: &str) =>
        "SELECT value FROM link_dimensions_by_day WHERE short_code = ? AND day = ? AND dimension = ?";
    /// One value's clicks.
    read_dimension(short_code: &str, day: CqlDate, dimension: &str, value: &str) =>
        "SELECT clicks, through_offset FROM link_dimensions_by_day \
         WHERE short_code = ? AND day = ? AND dimension = ? AND value = ?";
    /// Its new total.
    write_dimension(short_code: &str, day: CqlDate, dimension: &str, value: &str, clicks: i64, partition: i32, through_offset: i64, timestamp: i64) =>
        "INSERT INTO link_dimensions_by_day (short_code, day, dimension, value, clicks, partition, through_offset) \
         VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    /// An event in its session's partition.
    event_by_session(session_id: &str, occurred_at: i64, event_id: Uuid, received_at: i64, application_id: &str, category: &str, name: &str, data: &str, known_type: bool, user_id: Option<&str>, device_id: Option<&str>) =>
        "INSERT INTO events_by_session (session_id, occurred_at, event_id, received_at, application_id, category, \
         name, data, known_type, user_id, device_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// An event in its category's minute and shard partition.
    event_by_category_minute(category: &str, minute: CqlTimestamp, shard: i32, occurred_at: i64, event_id: Uuid, session_id: &str, received_at: i64, application_id: &str, name: &str, data: &str, known_type: bool, user_id: Option<&str>, device_id: Option<&str>) =>
        "INSERT INTO events_by_category_minute (category, minute, shard, occurred_at, event_id, session_id, \
         received_at, application_id, name, data, known_type, user_id, device_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// An event in its minute and shard partition.
    event_by_minute(minute: CqlTimestamp, shard: i32, occurred_at: i64, event_id: Uuid, session_id: &str, received_at: i64, application_id: &str, category: &str, name: &str, data: &str, known_type: bool, user_id: Option<&str>, device_id: Option<&str>) =>
        "INSERT INTO events_by_minute (minute, shard, occurred_at, event_id, session_id, received_at, \
         application_id, category, name, data, known_type, user_id, device_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// A listing's (minute, shard) partition holds rows.
    listing_bucket(scope: &str, day: CqlDate, minute: CqlTimestamp, shard: i32) =>
        "INSERT INTO listing_buckets (scope, day, minute, shard) VALUES (?, ?, ?, ?)";
    /// One partition's count of one event type.
    read_type_count(scope: &str, category: &str, name: &str, partition: i32) =>
        "SELECT events, through_offset FROM event_type_counts \
         WHERE scope = ? AND category = ? AND name = ? AND partition = ?";
    /// Its new total.
    write_type_count(scope: &str, category: &str, name: &str, partition: i32, events: i64, known_type: bool, through_offset: i64, timestamp: i64) =>
        "INSERT INTO event_type_counts (scope, category, name, partition, events, known_type, through_offset) \
         VALUES (?, ?, ?, ?, ?, ?, ?) USING TIMESTAMP ?";
    /// A reject or dead letter in its kind's minute and shard partition.
    error(kind: &str, minute: CqlTimestamp, shard: i32, occurred_at: i64, event_id: &str, application_id: Option<&str>, source: &str, status: Option<i32>, field: Option<&str>, reason: &str, message: &str, body: &[u8], replay_run: Option<&str>) =>
        "INSERT INTO errors_by_minute (kind, minute, shard, occurred_at, event_id, application_id, source, status, \
         field, reason, message, body, replay_run) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// A notification sent.
    notification(user_id: &str, occurred_at: i64, notification_id: &str, rule: &str, received_at: i64, device_id: Option<&str>, message: &str, data: &str, trigger_event_id: &str, late_by_micros: i64) =>
        "INSERT INTO notifications_by_user (user_id, occurred_at, notification_id, rule, received_at, device_id, \
         message, data, trigger_event_id, late_by_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// The highest event time a partition's rules have seen.
    read_watermark(topic: &str, partition: i32) =>
        "SELECT max_event_time FROM rule_watermarks WHERE topic = ? AND partition = ?";
    /// Its new value.
    write_watermark(topic: &str, partition: i32, max_event_time: i64) =>
        "INSERT INTO rule_watermarks (topic, partition, max_event_time) VALUES (?, ?, ?)";
    /// A partition's timers and open durations.
    read_rule_state(topic: &str, partition: i32) =>
        "SELECT kind, rule, user_id, correlation, at, event_id, device_id FROM rule_state \
         WHERE topic = ? AND partition = ?";
    /// One timer or open duration.
    write_rule_state(topic: &str, partition: i32, kind: &str, rule: &str, user_id: &str, correlation: &str, at: i64, event_id: &str, device_id: Option<&str>) =>
        "INSERT INTO rule_state (topic, partition, kind, rule, user_id, correlation, at, event_id, device_id) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)";
    /// One timer or open duration gone.
    delete_rule_state(topic: &str, partition: i32, kind: &str, rule: &str, user_id: &str, correlation: &str) =>
        "DELETE FROM rule_state WHERE topic = ? AND partition = ? AND kind = ? AND rule = ? AND user_id = ? \
         AND correlation = ?";
    /// A key a partition applied, kept for the dedup window and an hour.
    remember(topic: &str, partition: i32, hour: CqlTimestamp, identity: Uuid, first_offset: i64, received_at: i64, ttl: i32, timestamp: i64) =>
        "INSERT INTO dedup_keys (topic, partition, hour, identity, first_offset, received_at) \
         VALUES (?, ?, ?, ?, ?, ?) USING TTL ? AND TIMESTAMP ?";
    /// The keys a partition applied that ingest received in one UTC hour.
    read_remembered(topic: &str, partition: i32, hour: CqlTimestamp) =>
        "SELECT identity, first_offset, received_at FROM dedup_keys WHERE topic = ? AND partition = ? AND hour = ?";
}
