//! The embedded store's SQLite tables (libSQL). The processor owns the write
//! side and applies [`SQLITE_DDL`]; the query API reads.
//!
//! Every aggregate row is owned by one topic partition and carries the last
//! offset it includes, so a replay after a crash can skip what a row already
//! holds (DESIGN.md guarantee 3).

/// Pragmas for every connection: WAL so readers never block the writer.
pub const SQLITE_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;";

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
    // Per topic partition: the next offset to read, written in the same
    // transaction as the rows it covers. The processor resumes from here.
    "CREATE TABLE IF NOT EXISTS partition_checkpoints (
        topic TEXT NOT NULL,
        partition INTEGER NOT NULL,
        next_offset INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (topic, partition)
    )",
];

/// The logical table names, for code that names them.
pub mod tables {
    /// Counter totals by key.
    pub const COUNTERS: &str = "counters";
    /// Per-partition checkpoints.
    pub const PARTITION_CHECKPOINTS: &str = "partition_checkpoints";
}
