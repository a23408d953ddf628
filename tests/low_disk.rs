//! Low disk is a state, not a crash: the `eventide` binary on a small
//! file system the test mounts (tmpfs, as root). Below `--min-free-disk`
//! ingest answers `503 low_disk` with `Retry-After`, `/readyz` says why,
//! the query API keeps serving; once space is freed writes resume without
//! a restart; a restart with too little space comes up refusing writes
//! instead of dying; every acknowledged increment is counted exactly once.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use serde_json::Value;
use support::{DEADLINE, Eventide};

/// The file system the test mounts, and the floor it sets.
const FILE_SYSTEM_MIB: u64 = 256;
const FLOOR_MIB: u64 = 96;

/// A tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    _parent: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    /// Mounts it, or says why it cannot be mounted here.
    fn mount() -> Result<Self, String> {
        let parent = tempfile::tempdir().map_err(|err| err.to_string())?;
        let path = parent.path().join("disk");
        std::fs::create_dir(&path).map_err(|err| err.to_string())?;
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={FILE_SYSTEM_MIB}m"),
                "tmpfs",
            ])
            .arg(&path)
            .output()
            .map_err(|err| format!("running mount: {err}"))?;
        if !mounted.status.success() {
            return Err(format!(
                "mounting a tmpfs needs root: {}",
                String::from_utf8_lossy(&mounted.stderr).trim()
            ));
        }
        Ok(Self {
            _parent: parent,
            path,
        })
    }

    fn free_bytes(&self) -> u64 {
        let stats = rustix::fs::statvfs(&self.path).expect("statvfs of the mount");
        stats.f_bavail * stats.f_frsize
    }

    /// Fills the file system until `leave` bytes are free.
    fn fill_leaving(&self, leave: u64) -> PathBuf {
        let ballast = self.path.join("ballast");
        let free = self.free_bytes();
        let size = free.saturating_sub(leave);
        let file = std::fs::File::create(&ballast).expect("ballast file");
        // tmpfs allocates on write; set_len would leave a hole that uses no space.
        let chunk = vec![0xA5u8; 1 << 20];
        let mut written = 0;
        use std::io::Write;
        let mut writer = std::io::BufWriter::new(file);
        while written < size {
            let n = usize::try_from((size - written).min(chunk.len() as u64)).unwrap_or(0);
            writer.write_all(&chunk[..n]).expect("writes ballast");
            written += n as u64;
        }
        writer.flush().expect("flushes ballast");
        ballast
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: the binary may still be closing its files.
        drop(Command::new("umount").arg("-l").arg(&self.path).status());
    }
}

/// Posts increments of 1 until one answers `want`; returns how many were
/// acknowledged (`202`) on the way.
async fn post_until(
    eventide: &Eventide,
    http: &reqwest::Client,
    key: &str,
    want: u16,
) -> (i64, Option<String>, Value) {
    let started = Instant::now();
    let mut acknowledged = 0;
    loop {
        let (status, retry_after, body) = eventide.increment(http, key, 1).await;
        match status {
            202 => acknowledged += 1,
            503 => {}
            other => panic!("unexpected {other}: {body}"),
        }
        if status == want {
            return (acknowledged, retry_after, body);
        }
        assert!(
            started.elapsed() < DEADLINE,
            "ingest never answered {want}; last {status} {body}"
        );
        // Polling with a deadline: each look is a real write, counted above.
        tokio::time::sleep(eventide::wait::POLL_INTERVAL).await;
    }
}

/// Checks the refusal and the state around it while the disk is low.
async fn check_low_disk_state(
    eventide: &Eventide,
    http: &reqwest::Client,
    key: &str,
    refused: (Option<String>, Value),
) {
    let (retry_after, body) = refused;
    assert_eq!(body["error"]["code"], "low_disk", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("--min-free-disk")),
        "{body}"
    );
    assert!(
        retry_after
            .as_deref()
            .and_then(|s| s.parse::<u64>().ok())
            .is_some_and(|s| s >= 1),
        "no Retry-After: {retry_after:?}"
    );
    let ready = http
        .get(format!("{}/readyz", eventide.ingest))
        .send()
        .await
        .expect("readyz answers");
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.expect("readyz body");
    assert_eq!(ready["status"], "low disk", "{ready}");
    let metrics = http
        .get(format!("{}/metrics", eventide.ingest))
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics body");
    assert!(
        metrics.lines().any(|line| line == "eventide_disk_low 1"),
        "the metric does not show low disk"
    );
    // Reads go on.
    let (status, counter) = eventide.counter(http, key).await;
    assert_eq!(status, 200, "{counter}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_floor_writes_wait_and_resume_by_themselves_and_a_restart_survives() {
    let disk = match SmallDisk::mount() {
        Ok(disk) => disk,
        Err(reason) => {
            support::report_skipped("low_disk", &reason);
            return;
        }
    };
    let data_dir = disk.path.join("data");
    std::fs::create_dir(&data_dir).expect("data dir");
    let floor = format!("{FLOOR_MIB}MiB");
    let env = [("EVENTIDE_MIN_FREE_DISK", floor.as_str())];
    let http = reqwest::Client::new();
    let key = uuid::Uuid::new_v4().to_string();
    let started = Instant::now();
    let at = || format!("{:.1}s", started.elapsed().as_secs_f64());

    let eventide = Eventide::start(&data_dir, &env);
    eventide.wait_healthy(&http).await;
    let (mut acknowledged, ..) = post_until(&eventide, &http, &key, 202).await;
    timeline(&at(), "writes accepted");

    // Below the floor: refused, with the reason, while reads go on.
    let ballast = disk.fill_leaving((FLOOR_MIB - 32) << 20);
    let (before, retry_after, refused) = post_until(&eventide, &http, &key, 503).await;
    acknowledged += before;
    timeline(&at(), "writes refused: low disk");
    check_low_disk_state(&eventide, &http, &key, (retry_after, refused)).await;
    eventide.wait_for_total(&http, &key, acknowledged).await;

    // Space freed: writes resume without a restart.
    std::fs::remove_file(&ballast).expect("frees the ballast");
    let (after, ..) = post_until(&eventide, &http, &key, 202).await;
    acknowledged += after;
    timeline(&at(), "writes accepted again");
    eventide.wait_for_total(&http, &key, acknowledged).await;
    assert!(eventide.terminate().await.success());

    // A restart with too little space comes up, refusing writes.
    let ballast = disk.fill_leaving((FLOOR_MIB - 32) << 20);
    let eventide = Eventide::start(&data_dir, &env);
    eventide.wait_healthy(&http).await;
    timeline(&at(), "restarted below the floor");
    let (before, retry_after, refused) = post_until(&eventide, &http, &key, 503).await;
    assert_eq!(before, 0, "a write was acknowledged below the floor");
    check_low_disk_state(&eventide, &http, &key, (retry_after, refused)).await;
    eventide.wait_for_total(&http, &key, acknowledged).await;

    std::fs::remove_file(&ballast).expect("frees the ballast");
    let (after, ..) = post_until(&eventide, &http, &key, 202).await;
    acknowledged += after;
    timeline(&at(), "writes accepted after the restart");
    eventide.wait_for_total(&http, &key, acknowledged).await;
    assert!(eventide.terminate().await.success());
}

/// The timeline, for the closing note and for reading a failure.
fn timeline(at: &str, what: &str) {
    println!("low_disk timeline {at}: {what}");
}
