//! A load generator for `POST /v1/increment`: fixed request count, fixed
//! concurrency, reports throughput and latency percentiles, then (with
//! `--query-url`) waits until every total is queryable and exact and reports
//! how long that took after the last `202`.
//!
//! ```text
//! cargo run --release -p testcontainers-tests --bin loadgen -- \
//!     --url http://127.0.0.1:8080 --query-url http://127.0.0.1:8081
//! ```

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use serde_json::{Value, json};
use uuid::Uuid;

/// Increment load generator.
#[derive(Debug, Parser)]
struct Args {
    /// Ingest base URL.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Query API base URL; when given, totals are checked after the load.
    #[arg(long)]
    query_url: Option<String>,
    /// Requests to send.
    #[arg(long, default_value_t = 20_000)]
    requests: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// API key with the produce scope.
    #[arg(long, default_value = "dev-producer")]
    key: String,
    /// API key with the query scope, for checking totals.
    #[arg(long, default_value = "dev-analyst")]
    analyst_key: String,
    /// Distinct counter keys.
    #[arg(long, default_value_t = 1_000)]
    keys: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let http = testcontainers_tests::client_with_key(&args.key)?;
    let keys: Arc<Vec<Uuid>> = Arc::new((0..args.keys.max(1)).map(|_| Uuid::new_v4()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (http, keys, next, url, total) = (
            http.clone(),
            keys.clone(),
            next.clone(),
            args.url.clone(),
            args.requests,
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut sums: HashMap<Uuid, i64> = HashMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok((latencies, sums));
                }
                let key = keys[i % keys.len()];
                let value = i64::try_from(i % 9 + 1)?;
                let sent = Instant::now();
                let response = http
                    .post(format!("{url}/v1/increment"))
                    .json(&json!({ "key": key, "value": value }))
                    .send()
                    .await?;
                if response.status() != 202 {
                    bail!("request {i} answered {}", response.status());
                }
                latencies.push(sent.elapsed());
                *sums.entry(key).or_default() += value;
            }
        }));
    }
    let mut latencies = Vec::with_capacity(args.requests);
    let mut expected: HashMap<Uuid, i64> = HashMap::new();
    for worker in workers {
        let (l, sums) = worker.await??;
        latencies.extend(l);
        for (key, sum) in sums {
            *expected.entry(key).or_default() += sum;
        }
    }
    let elapsed = started.elapsed();
    let last_accepted = Instant::now();
    latencies.sort();
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p) as usize];
    println!(
        "{} increments in {:.2}s: {:.0}/s; latency p50 {:?} p99 {:?} max {:?}",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(0.50),
        pct(0.99),
        pct(1.0),
    );

    if let Some(query_url) = args.query_url {
        let http = testcontainers_tests::client_with_key(&args.analyst_key)?;
        let deadline = last_accepted + Duration::from_secs(120);
        let mut pending: Vec<(Uuid, i64)> = expected.into_iter().collect();
        while !pending.is_empty() {
            let mut still = Vec::new();
            for (key, want) in pending {
                let body: Value = http
                    .get(format!("{query_url}/v1/counters/{key}"))
                    .send()
                    .await?
                    .json()
                    .await?;
                let got = body["value"]
                    .as_i64()
                    .context("no value in counter answer")?;
                if got > want {
                    bail!("counter {key} overcounted: {got} > {want}");
                }
                if got < want {
                    still.push((key, want));
                }
            }
            pending = still;
            if Instant::now() > deadline {
                bail!("{} counters not exact 120s after the load", pending.len());
            }
            if !pending.is_empty() {
                tokio::time::sleep(testcontainers_tests::POLL_INTERVAL).await;
            }
        }
        println!(
            "every total exact and queryable {:.2}s after the last 202",
            last_accepted.elapsed().as_secs_f64()
        );
    }
    Ok(())
}
