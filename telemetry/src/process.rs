//! What every process reports about itself: `eventide_build_info{version}`
//! and, on Linux, CPU seconds, resident memory and open file descriptors
//! (the Prometheus client conventions' names), read from `/proc/self` every
//! few seconds.

use std::time::Duration;

/// 1 with the build's version as a label.
pub const BUILD_INFO: &str = "eventide_build_info";
/// User and system CPU seconds used so far.
pub const CPU_SECONDS: &str = "process_cpu_seconds_total";
/// Resident set size.
pub const RESIDENT_MEMORY_BYTES: &str = "process_resident_memory_bytes";
/// Open file descriptors.
pub const OPEN_FDS: &str = "process_open_fds";

/// How often the process gauges are read.
const INTERVAL: Duration = Duration::from_secs(5);

/// Sets the build info and keeps the process gauges current until the
/// runtime ends. Call once, inside a tokio runtime.
pub fn report(version: &'static str) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(INTERVAL);
        loop {
            tick.tick().await;
            // Set on every tick: the recorder may be installed after the start.
            metrics::gauge!(BUILD_INFO, "version" => version).set(1.0);
            read_proc();
        }
    });
}

/// Linux's `/proc/self`: clock ticks are 100 a second and pages 4 KiB on
/// every platform we ship.
fn read_proc() {
    const TICKS_PER_SECOND: f64 = 100.0;
    const PAGE_BYTES: f64 = 4096.0;
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the command name (which may hold spaces) in parentheses.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
            let ticks = |at: usize| fields.get(at).and_then(|v| v.parse::<f64>().ok());
            if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
                metrics::gauge!(CPU_SECONDS).set((user + system) / TICKS_PER_SECOND);
            }
            // rss is field 24 of the line, 22 here.
            if let Some(pages) = ticks(21) {
                metrics::gauge!(RESIDENT_MEMORY_BYTES).set(pages * PAGE_BYTES);
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
        #[expect(clippy::cast_precision_loss, reason = "a gauge")]
        metrics::gauge!(OPEN_FDS).set(entries.count() as f64);
    }
}
