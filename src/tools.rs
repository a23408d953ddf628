//! Producer tools on top of [`ingest::client`]: `eventide send` and
//! `eventide loadgen`.

use std::io::BufRead;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use ingest::client::{Client, ItemResult};
use serde_json::{Value, json};
use uuid::Uuid;

/// Sends one item (`item`) or NDJSON items from standard input; prints one
/// result line per item. Fails if any item was rejected.
///
/// # Errors
///
/// If input is not JSON, a send gives up, or an item was rejected.
pub async fn send(url: &str, key: &str, item: Option<&str>) -> anyhow::Result<()> {
    let items: Vec<Value> = match item {
        Some(text) => vec![serde_json::from_str(text).context("the item is not JSON")?],
        None => std::io::stdin()
            .lock()
            .lines()
            .enumerate()
            .filter(|(_, line)| line.as_ref().map_or(true, |l| !l.trim().is_empty()))
            .map(|(n, line)| {
                let line = line.context("reading standard input")?;
                serde_json::from_str(&line).with_context(|| format!("line {} is not JSON", n + 1))
            })
            .collect::<anyhow::Result<_>>()?,
    };
    let results = Client::new(url, key).send(items).await?;
    let mut rejected = 0;
    for (index, result) in results.iter().enumerate() {
        let line = match result {
            ItemResult::Accepted(id) => json!({ "index": index, "id": id }),
            ItemResult::Rejected(error) => {
                rejected += 1;
                json!({ "index": index, "error": error })
            }
        };
        println!("{line}");
    }
    if rejected > 0 {
        bail!("{rejected} of {} items rejected", results.len());
    }
    Ok(())
}

/// The share of each item type in generated load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mix(Vec<(String, u32)>);

impl std::str::FromStr for Mix {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let mut shares = Vec::new();
        for part in text.split(',').filter(|p| !p.is_empty()) {
            let (kind, weight) = part
                .split_once('=')
                .ok_or(format!("expected type=weight, got `{part}`"))?;
            if !["increment", "redirect", "event", "app", "track"].contains(&kind) {
                return Err(format!("unknown item type `{kind}`"));
            }
            let weight: u32 = weight
                .parse()
                .map_err(|_| format!("weight of `{kind}` is not a number"))?;
            shares.push((kind.to_owned(), weight));
        }
        if shares.iter().map(|(_, w)| w).sum::<u32>() == 0 {
            return Err("the mix needs a positive weight".into());
        }
        Ok(Mix(shares))
    }
}

impl Mix {
    fn kind(&self, n: u64) -> &str {
        let total: u64 = self.0.iter().map(|(_, w)| u64::from(*w)).sum();
        let mut at = n % total;
        for (kind, weight) in &self.0 {
            if at < u64::from(*weight) {
                return kind;
            }
            at -= u64::from(*weight);
        }
        "increment"
    }
}

fn generated_item(kind: &str, n: u64) -> Value {
    let now = chrono_now();
    match kind {
        "redirect" => {
            json!({"type": "redirect", "short_code": format!("c{}", n % 500), "full_url": "https://example.org/landing",
            "client_id": n % 50, "user_agent": "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"})
        }
        "event" => {
            json!({"type": "event", "session_id": Uuid::from_u128(u128::from(n % 1000)), "category": "page interaction",
            "name": "pageview", "data": {"host": "example.org", "path": format!("/p/{}", n % 20)}, "timestamp": now})
        }
        "app" => {
            json!({"type": "app", "event_type": "app_launch", "userId": format!("user-{}", n % 1000), "timestamp": now})
        }
        "track" => {
            json!({"type": "track", "userId": format!("user-{}", n % 1000), "payload": {"n": n}})
        }
        _ => {
            json!({"type": "increment", "key": Uuid::from_u128(u128::from(n % 1000)), "value": 1 + n % 5})
        }
    }
}

fn chrono_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Generates `rate` items per second for `duration` in batches of `batch`,
/// then prints what was accepted and the batch latency percentiles.
///
/// # Errors
///
/// If sending fails for good.
pub async fn loadgen(
    url: &str,
    key: &str,
    rate: u64,
    duration: Duration,
    mix: Mix,
    batch: usize,
) -> anyhow::Result<()> {
    let client = Arc::new(Client::new(url, key));
    let batch = batch.max(1) as u64;
    let batches_per_second = (rate as f64 / batch as f64).max(0.001);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / batches_per_second));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut n = 0u64;
    while started.elapsed() < duration {
        tick.tick().await;
        let items: Vec<Value> = (n..n + batch)
            .map(|i| generated_item(mix.kind(i), i))
            .collect();
        n += batch;
        let client = Arc::clone(&client);
        tasks.spawn(async move {
            let sent = Instant::now();
            let results = client.send_batch(items).await;
            (sent.elapsed(), results)
        });
    }
    let (mut accepted, mut rejected, mut latencies) = (0usize, 0usize, Vec::new());
    while let Some(joined) = tasks.join_next().await {
        let (latency, results) = joined?;
        latencies.push(latency);
        for result in results? {
            match result {
                ItemResult::Accepted(_) => accepted += 1,
                ItemResult::Rejected(_) => rejected += 1,
            }
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len().saturating_sub(1)) as f64 * p) as usize)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "{accepted} accepted, {rejected} rejected in {elapsed:.1}s: {:.0} items/s; batch of {batch} latency p50 {:?} p99 {:?}",
        accepted as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixes_parse_and_spread_by_weight() {
        let mix: Mix = "increment=3,redirect=1".parse().expect("parses");
        let kinds: Vec<&str> = (0..4).map(|n| mix.kind(n)).collect();
        assert_eq!(
            kinds,
            vec!["increment", "increment", "increment", "redirect"]
        );
        assert!("increment=0".parse::<Mix>().is_err());
        assert!("bogus=1".parse::<Mix>().is_err());
    }

    #[test]
    fn generated_timestamps_are_rfc3339() {
        assert!(ingest::validation::parse_timestamp(&chrono_now()).is_some());
    }
}
