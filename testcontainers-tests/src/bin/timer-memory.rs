//! What pending session timers cost: applies `--timers` app launches from
//! distinct users to one partition's rule state (the shipped rules), and
//! prints the resident memory they add and how fast they are created and
//! fired.
//!
//! `cargo run --release -p testcontainers-tests --bin timer-memory -- --timers 100000`

use std::time::{Duration, Instant};

use processor::rules::{PartitionRules, Rules, Timing};
use schemas::Event;
use uuid::Uuid;

/// Resident set size in bytes, from /proc (Linux).
fn rss() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1);
    let mut timers = 100_000_usize;
    while let Some(flag) = argv.next() {
        match (flag.as_str(), argv.next()) {
            ("--timers", Some(value)) => timers = value.parse()?,
            _ => anyhow::bail!("usage: timer-memory [--timers N]"),
        }
    }
    let rules = Rules::default_rules()?;
    let timing = Timing {
        allowed_lateness: Duration::from_secs(5),
        idle_grace: Duration::ZERO,
    };
    // 2021-03-01T09:00:00Z.
    let start = 1_614_589_200_000_000_i64;
    let events: Vec<Event> = (0..timers)
        .map(|i| Event {
            event_id: Uuid::now_v7(),
            occurred_at: start + i as i64,
            received_at: start,
            application_id: "fitness".into(),
            session_id: format!("user-{i:08}"),
            category: "app".into(),
            name: "app_launch".into(),
            data: "{}".into(),
            known_type: true,
            user_id: Some(format!("user-{i:08}")),
            device_id: Some(format!("device-{i:08}")),
            idempotency_key: None,
            destinations: None,
        })
        .collect();
    let before = rss().unwrap_or_default();
    let mut state = PartitionRules::restore(0, None, Vec::new(), &rules);
    let began = Instant::now();
    for (offset, event) in events.iter().enumerate() {
        state.apply(&rules, timing, offset as i64, event, event.occurred_at);
    }
    let created = began.elapsed();
    let after = rss().unwrap_or_default();
    let added = after.saturating_sub(before);
    println!(
        "{} pending timers: {:.1} MiB resident added ({} bytes per timer), created in {:.0} ms",
        state.pending_len(),
        added as f64 / (1024.0 * 1024.0),
        added / timers.max(1) as u64,
        created.as_secs_f64() * 1e3
    );
    let began = Instant::now();
    let fired = state.tick(&rules, timing, start + 3_600_000_000);
    println!(
        "fired {} notifications in {:.0} ms",
        fired.len(),
        began.elapsed().as_secs_f64() * 1e3
    );
    Ok(())
}
