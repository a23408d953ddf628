//! Ingest-to-queryable latency at a steady rate on the local defaults.
//!
//! Runs the pipeline in-process and posts `--rate` increments per second in
//! batches of 100 for `--seconds`; one item in every tenth batch is a probe
//! with a key of its own. A watcher reads the store every 20 ms and notes
//! when each probe's total appears; the latency is from the batch's `202` to
//! then. Prints p50/p99 and the flush interval in use.
//!
//! `cargo run --release -p testcontainers-tests --bin freshness -- --rate 10000 --seconds 30`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, arg};
use uuid::Uuid;

const BATCH: u64 = 100;
/// How often the watcher reads the store: the latency figures' resolution.
const WATCH_INTERVAL: Duration = Duration::from_millis(20);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let rate = arg("--rate", 10_000)?;
    let seconds = arg("--seconds", 30)?;
    let options = Options {
        flush_interval: Duration::from_secs(1),
        ..Options::default()
    };
    let flush = options.flush_interval;
    let pipeline = Arc::new(Pipeline::start(options).await?);
    // Warm up: the processor has joined its group and stores totals.
    let warm = Uuid::new_v4();
    pipeline
        .post_increment(&json!({"key": warm, "value": 1}))
        .await?;
    pipeline
        .wait_for_store(
            &[(
                format!("SELECT COUNT(*) FROM counters WHERE key = '{warm}'"),
                1,
            )],
            Duration::from_secs(60),
        )
        .await?;
    // Accepted probes: key -> when its batch was answered.
    let accepted: Arc<Mutex<HashMap<Uuid, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let done = tokio_util::sync::CancellationToken::new();

    let watcher = {
        let accepted = accepted.clone();
        let latencies = latencies.clone();
        let done = done.clone();
        let store = pipeline.data_dir().join("eventide.db");
        tokio::spawn(async move {
            let db = libsql::Builder::new_local(store).build().await?;
            let conn = db.connect()?;
            loop {
                let waiting: Vec<Uuid> = accepted
                    .lock()
                    .map(|a| a.keys().copied().collect())
                    .unwrap_or_default();
                if waiting.is_empty() && done.is_cancelled() {
                    return Ok::<_, anyhow::Error>(());
                }
                if !waiting.is_empty() {
                    let list = waiting
                        .iter()
                        .map(|k| format!("'{k}'"))
                        .collect::<Vec<_>>()
                        .join(",");
                    let mut rows = conn
                        .query(
                            &format!("SELECT key FROM counters WHERE key IN ({list})"),
                            (),
                        )
                        .await?;
                    let now = Instant::now();
                    while let Some(row) = rows.next().await? {
                        let key: String = row.get(0)?;
                        let Ok(key) = Uuid::parse_str(&key) else {
                            continue;
                        };
                        if let (Ok(mut a), Ok(mut l)) = (accepted.lock(), latencies.lock())
                            && let Some(at) = a.remove(&key)
                        {
                            l.push(now.saturating_duration_since(at));
                        }
                    }
                }
                tokio::time::sleep(WATCH_INTERVAL).await;
            }
        })
    };

    let batches = rate * seconds / BATCH;
    let interval = Duration::from_secs_f64(BATCH as f64 / rate as f64);
    let began = tokio::time::Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for b in 0..batches {
        tokio::time::sleep_until(began + interval.mul_f64(b as f64)).await;
        let probe = (b % 10 == 0).then(Uuid::new_v4);
        let items: Vec<Value> = (0..BATCH)
            .map(|i| {
                let key = match (i, probe) {
                    (0, Some(probe)) => probe,
                    _ => Uuid::from_u128(u128::from((b * BATCH + i) % 10_000) + 1),
                };
                json!({"type": "increment", "key": key, "value": 1})
            })
            .collect();
        let pipeline = pipeline.clone();
        let accepted = accepted.clone();
        tasks.spawn(async move {
            let (status, _) = pipeline.post_to("/v1/batch", &Value::Array(items)).await?;
            anyhow::ensure!(status == 202, "batch answered {status}");
            if let (Some(probe), Ok(mut a)) = (probe, accepted.lock()) {
                a.insert(probe, Instant::now());
            }
            Ok(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    let achieved = (batches * BATCH) as f64 / began.elapsed().as_secs_f64();
    done.cancel();
    tokio::time::timeout(Duration::from_secs(60), watcher).await???;
    let mut latencies = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{:.0} increments/s posted; ingest 202 -> in the store, {} probes, flush interval {:?}: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        achieved,
        latencies.len(),
        flush,
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );
    Ok(())
}
