//! Scenario bodies shared by every backend: the local defaults always, and
//! containers (Redpanda with its schema registry) where Docker exists.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::time::Instant;
use uuid::Uuid;

use crate::{Options, Pipeline, increment_value};

/// How long totals may take to settle after the load.
pub const SETTLE: Duration = Duration::from_secs(60);

/// 10,000 increments over 100 keys from 32 concurrent clients: every total
/// exact through the query API.
///
/// # Errors
///
/// If the pipeline fails or a total is off after [`SETTLE`].
pub async fn concurrent_increments_are_exact(options: Options) -> anyhow::Result<()> {
    let pipeline = Pipeline::start(options).await?;
    let keys = keys(100);
    let expected = pipeline
        .load_target()
        .post_increments(keys, 10_000, 32, Arc::new(AtomicUsize::new(0)))
        .await?;
    anyhow::ensure!(expected.len() == 100, "every key got increments");
    anyhow::ensure!(
        expected.values().sum::<i64>() == (0..10_000).map(increment_value).sum::<i64>()
    );
    pipeline.wait_for_counters(&sorted(expected), SETTLE).await
}

/// A processor crashes (no flush) and later stops gracefully while 6,000
/// increments stream in; its replacements still reach exact totals.
///
/// # Errors
///
/// If the pipeline fails or a total is off after [`SETTLE`].
pub async fn processor_restarts_keep_totals_exact(options: Options) -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start(options).await?;
    // Let the first processor join and flush before the load, so the crash
    // below really loses unflushed state.
    let warmup = Uuid::new_v4();
    pipeline
        .post_increment(&json!({ "key": warmup, "value": 1 }))
        .await?;
    pipeline.wait_for_counters(&[(warmup, 1)], SETTLE).await?;

    let progress = Arc::new(AtomicUsize::new(0));
    let load = tokio::spawn(pipeline.load_target().post_increments(
        keys(50),
        6_000,
        16,
        progress.clone(),
    ));

    wait_for_progress(&progress, 2_000).await;
    pipeline.crash_processor().await;
    pipeline.start_processor("p0");

    wait_for_progress(&progress, 4_000).await;
    pipeline.stop_processor().await?;
    pipeline.start_processor("p0");

    let expected = load.await??;
    anyhow::ensure!(expected.values().sum::<i64>() == (0..6_000).map(increment_value).sum::<i64>());
    pipeline.wait_for_counters(&sorted(expected), SETTLE).await
}

async fn wait_for_progress(progress: &AtomicUsize, at_least: usize) {
    let until = Instant::now() + SETTLE;
    while progress.load(Ordering::Relaxed) < at_least && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn keys(n: usize) -> Arc<Vec<Uuid>> {
    Arc::new((0..n).map(|_| Uuid::new_v4()).collect())
}

fn sorted(expected: HashMap<Uuid, i64>) -> Vec<(Uuid, i64)> {
    let mut list: Vec<_> = expected.into_iter().collect();
    list.sort();
    list
}
