//! What the processor's counter state costs: `--keys` distinct counter keys
//! applied to one partition's aggregate, and the resident memory added per
//! key. (The per-record hot path's speed is the criterion bench
//! `cargo bench -p processor --bench hot_path`.)
//!
//! `cargo run --release -p testcontainers-tests --bin hot-path -- --keys 1000000`

use std::time::Instant;

use processor::counters::PartitionCounters;
use testcontainers_tests::arg;
use uuid::Uuid;

/// Resident set size in bytes, from /proc (Linux).
fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * 4096)
}

fn main() -> anyhow::Result<()> {
    let keys = arg("--keys", 1_000_000)?;
    let before = rss();
    let mut counters = PartitionCounters::restore(0);
    let began = Instant::now();
    for i in 0..keys {
        counters.apply(i as i64, Uuid::from_u128(i as u128 + 1), 1);
    }
    let seconds = began.elapsed().as_secs_f64();
    let added = rss().saturating_sub(before);
    println!(
        "counters: {keys} distinct keys applied in {seconds:.2} s ({:.0} keys/s); {:.1} MiB resident added = {} bytes per key",
        keys as f64 / seconds,
        added as f64 / (1024.0 * 1024.0),
        added / keys.max(1) as u64
    );
    Ok(())
}
