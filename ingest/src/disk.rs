//! The free-space floor of the data dir (`--min-free-disk`). On the local
//! default the broker's log lives in the data dir: below the floor, ingest
//! refuses writes with a `503` and a reason, `/readyz` says why, and writes
//! resume by themselves once space is freed. Reads, the processor and the
//! query API go on. Kafka and Redpanda stop taking produce requests below
//! a free-space threshold in the same way.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::{DISK_FREE_BYTES, DISK_LOW, DISK_MIN_FREE_BYTES};

/// The default floor: 1 GiB or 5% of the file system, whichever is smaller.
const DEFAULT_BYTES: u64 = 1 << 30;
const DEFAULT_PERCENT: u64 = 5;

/// How often the free space is measured.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// `--min-free-disk`: a size (`500MiB`, `2GB`, `1048576`) or a share of the
/// file system (`5%`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// At least this many bytes free.
    Bytes(u64),
    /// At least this percentage of the file system free.
    Percent(u8),
}

impl Floor {
    /// Parses a flag value.
    ///
    /// # Errors
    ///
    /// A message naming the accepted forms.
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Some(percent) = text.strip_suffix('%') {
            return match percent.trim().parse::<u8>() {
                Ok(p) if p <= 100 => Ok(Floor::Percent(p)),
                _ => Err(format!("{text:?}: a percentage is 0% to 100%")),
            };
        }
        let split = text
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let unit_bytes: u64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1,
            "kb" => 1_000,
            "mb" => 1_000_000,
            "gb" => 1_000_000_000,
            "tb" => 1_000_000_000_000,
            "kib" => 1 << 10,
            "mib" => 1 << 20,
            "gib" => 1 << 30,
            "tib" => 1 << 40,
            _ => {
                return Err(format!(
                    "{text:?}: write a size like 500MiB or 2GB, or a share like 5%"
                ));
            }
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(unit_bytes))
            .map(Floor::Bytes)
            .ok_or_else(|| format!("{text:?}: write a size like 500MiB or 2GB, or a share like 5%"))
    }

    /// The floor in bytes on a file system of `total` bytes; `None` is the
    /// default rule.
    pub fn bytes(floor: Option<Floor>, total: u64) -> u64 {
        match floor {
            Some(Floor::Bytes(bytes)) => bytes,
            Some(Floor::Percent(percent)) => share(total, u64::from(percent)),
            None => DEFAULT_BYTES.min(share(total, DEFAULT_PERCENT)),
        }
    }
}

fn share(total: u64, percent: u64) -> u64 {
    u64::try_from(u128::from(total) * u128::from(percent) / 100).unwrap_or(u64::MAX)
}

/// Writes are refused: the data dir has less free space than its floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the data dir has {free} bytes free, below --min-free-disk ({floor} bytes); writes resume once space is freed"
)]
pub struct LowDisk {
    /// Bytes free when last measured.
    pub free: u64,
    /// The floor, in bytes.
    pub floor: u64,
}

/// Measuring the data dir failed.
#[derive(Debug, thiserror::Error)]
#[error("measuring free space of {path}: {source}")]
pub struct DiskError {
    path: PathBuf,
    #[source]
    source: std::io::Error,
}

/// The data dir's free space against its floor, shared by every request.
#[derive(Debug, Clone)]
pub struct DiskWatch {
    state: Arc<State>,
}

#[derive(Debug)]
struct State {
    path: PathBuf,
    floor: Option<Floor>,
    free: AtomicU64,
    threshold: AtomicU64,
    low: AtomicBool,
}

impl DiskWatch {
    /// Watches `path` against `floor` (the default rule when `None`),
    /// measuring once now.
    ///
    /// # Errors
    ///
    /// [`DiskError`] naming the path when it cannot be measured.
    pub fn new(path: &Path, floor: Option<Floor>) -> Result<Self, DiskError> {
        let watch = Self {
            state: Arc::new(State {
                path: path.to_owned(),
                floor,
                free: AtomicU64::new(0),
                threshold: AtomicU64::new(0),
                low: AtomicBool::new(false),
            }),
        };
        watch.measure()?;
        Ok(watch)
    }

    /// Measures again; logs and records a change of state.
    ///
    /// # Errors
    ///
    /// [`DiskError`] when the file system cannot be asked; the last
    /// measurement stays in force.
    pub fn measure(&self) -> Result<(), DiskError> {
        let state = &self.state;
        let stats = rustix::fs::statvfs(&state.path).map_err(|err| DiskError {
            path: state.path.clone(),
            source: err.into(),
        })?;
        let free = stats.f_bavail.saturating_mul(stats.f_frsize);
        let total = stats.f_blocks.saturating_mul(stats.f_frsize);
        let floor = Floor::bytes(state.floor, total);
        let low = free < floor;
        state.free.store(free, Ordering::Relaxed);
        state.threshold.store(floor, Ordering::Relaxed);
        let was_low = state.low.swap(low, Ordering::AcqRel);
        match (was_low, low) {
            (false, true) => warn!(
                path = %state.path.display(), free, floor,
                "free disk space below --min-free-disk: refusing writes until space is freed"
            ),
            (true, false) => info!(
                path = %state.path.display(), free, floor,
                "free disk space above --min-free-disk again: accepting writes"
            ),
            _ => {}
        }
        #[allow(clippy::cast_precision_loss)]
        {
            metrics::gauge!(DISK_FREE_BYTES).set(free as f64);
            metrics::gauge!(DISK_MIN_FREE_BYTES).set(floor as f64);
        }
        metrics::gauge!(DISK_LOW).set(if low { 1.0 } else { 0.0 });
        Ok(())
    }

    /// `Ok` while writes may go on.
    ///
    /// # Errors
    ///
    /// [`LowDisk`] below the floor.
    pub fn admit(&self) -> Result<(), LowDisk> {
        let state = &self.state;
        if state.low.load(Ordering::Acquire) {
            Err(LowDisk {
                free: state.free.load(Ordering::Relaxed),
                floor: state.threshold.load(Ordering::Relaxed),
            })
        } else {
            Ok(())
        }
    }

    /// Measures every [`CHECK_EVERY`] until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let mut ticks = tokio::time::interval(CHECK_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                () = stop.cancelled() => return,
            }
            if let Err(err) = self.measure() {
                warn!(error = %err, "free disk space unknown; keeping the last state");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_shares_parse_and_nonsense_is_refused() {
        assert_eq!(Floor::parse("1048576"), Ok(Floor::Bytes(1 << 20)));
        assert_eq!(Floor::parse("500MiB"), Ok(Floor::Bytes(500 << 20)));
        assert_eq!(Floor::parse("2 GB"), Ok(Floor::Bytes(2_000_000_000)));
        assert_eq!(Floor::parse("5%"), Ok(Floor::Percent(5)));
        for bad in ["", "5 parsecs", "101%", "-1GiB", "GiB", "99999999999999TiB"] {
            assert!(Floor::parse(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn the_default_is_1_gib_or_5_percent_whichever_is_smaller() {
        assert_eq!(Floor::bytes(None, 100 << 30), 1 << 30);
        assert_eq!(Floor::bytes(None, 10 << 30), (10 << 30) / 20);
        assert_eq!(Floor::bytes(Some(Floor::Percent(50)), 1000), 500);
        assert_eq!(Floor::bytes(Some(Floor::Bytes(7)), 1000), 7);
    }

    #[test]
    fn a_floor_above_the_free_space_refuses_and_one_below_admits() {
        let dir = std::env::temp_dir();
        let refusing = DiskWatch::new(&dir, Some(Floor::Percent(100))).expect("measures");
        let low = refusing.admit().expect_err("nobody has a whole disk free");
        assert!(low.free < low.floor, "{low}");
        let admitting = DiskWatch::new(&dir, Some(Floor::Bytes(0))).expect("measures");
        assert_eq!(admitting.admit(), Ok(()));
    }

    #[test]
    fn a_missing_path_is_an_error_naming_it() {
        let err = DiskWatch::new(Path::new("/no/such/eventide/dir"), None).expect_err("fails");
        assert!(err.to_string().contains("/no/such/eventide/dir"), "{err}");
    }
}
