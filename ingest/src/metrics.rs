//! Ingest's metric names. Every refused or dropped item increments a
//! counter with a `reason` label.

/// Requests by `route` and `status`.
pub const REQUESTS: &str = "eventide_ingest_requests_total";
/// Seconds from enqueueing a record to the broker's acknowledgement, by `topic`.
pub const PRODUCE_SECONDS: &str = "eventide_ingest_produce_seconds";
/// Records acknowledged by the broker, by `topic`.
pub const RECORDS: &str = "eventide_ingest_records_total";
/// Refused requests or batch items, by `reason` (the error code or rule).
pub const REJECTS: &str = "eventide_ingest_rejects_total";
/// Requests refused by a rate limit, by `key`.
pub const RATE_LIMITED: &str = "eventide_ingest_rate_limited_total";
/// Reject records that could not be written, by `reason`.
pub const REJECTS_LOST: &str = "eventide_ingest_rejects_unrecorded_total";
/// Bytes free in the data dir's file system (local default).
pub const DISK_FREE_BYTES: &str = "eventide_disk_free_bytes";
/// The `--min-free-disk` floor, in bytes.
pub const DISK_MIN_FREE_BYTES: &str = "eventide_disk_min_free_bytes";
/// 1 while writes are refused for low disk, else 0.
pub const DISK_LOW: &str = "eventide_disk_low";
/// Records in the producer's queue, not yet acknowledged (librdkafka statistics).
pub const PRODUCER_QUEUE_MESSAGES: &str = "eventide_ingest_producer_queue_messages";
/// Bytes in the producer's queue (librdkafka statistics).
pub const PRODUCER_QUEUE_BYTES: &str = "eventide_ingest_producer_queue_bytes";
/// 99th percentile of the broker round-trip time, by `broker`, over the last
/// statistics interval.
pub const BROKER_RTT_SECONDS: &str = "eventide_ingest_broker_rtt_p99_seconds";
