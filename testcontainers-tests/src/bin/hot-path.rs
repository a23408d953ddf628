//! The processor's hot paths on one core, without Kafka or the store, and
//! what their state costs.
//!
//! 1. Clicks: Avro decode (Confluent framing) + user-agent classification
//!    through the bounded cache + the partition's click aggregate, per
//!    record, over `--records` pre-encoded redirects (1,000 short codes,
//!    50 distinct user agents).
//! 2. Counters: `--keys` distinct counter keys applied to one partition's
//!    aggregate; resident memory added per key.
//!
//! `cargo run --release -p testcontainers-tests --bin hot-path -- --records 1000000 --keys 1000000`

use std::time::Instant;

use processor::clicks::{Click, PartitionClicks};
use processor::counters::PartitionCounters;
use processor::user_agent::UserAgents;
use schemas::{Codec, Redirect, SchemaSource, TopicNames};
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
    let records = arg("--records", 1_000_000)?;
    let keys = arg("--keys", 1_000_000)?;
    let runtime = tokio::runtime::Builder::new_current_thread().build()?;
    let codec = Codec::new(SchemaSource::Catalogue, TopicNames::default())?;
    let agents: Vec<String> = (0..50)
        .map(|i| {
            format!(
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{}.0.0.0 Safari/537.36",
                70 + i
            )
        })
        .collect();
    let encoded: Vec<Vec<u8>> = runtime.block_on(async {
        let mut encoded = Vec::with_capacity(records);
        for i in 0..records {
            let redirect = Redirect {
                event_id: Uuid::now_v7(),
                occurred_at: 1_614_556_800_000_000 + i as i64 * 1_000_000,
                received_at: 1_614_556_800_000_000,
                application_id: "bench".into(),
                short_code: format!("code{}", i % 1_000),
                full_url: "https://example.org/landing".into(),
                client_id: (i % 100) as i64,
                user_agent: agents[i % agents.len()].clone(),
                referrer: None,
            };
            encoded.push(codec.encode(&redirect).await?);
        }
        Ok::<_, anyhow::Error>(encoded)
    })?;

    // Each stage alone, to see where the time goes.
    let began = Instant::now();
    let decoded: Vec<Redirect> = runtime.block_on(async {
        let mut decoded = Vec::with_capacity(records);
        for bytes in &encoded {
            decoded.push(codec.decode::<Redirect>(bytes).await?);
        }
        Ok::<_, anyhow::Error>(decoded)
    })?;
    let decode_seconds = began.elapsed().as_secs_f64();
    let mut user_agents = UserAgents::default();
    let began = Instant::now();
    let classified: Vec<_> = decoded
        .iter()
        .map(|r| user_agents.classify(&r.user_agent))
        .collect();
    let classify_seconds = began.elapsed().as_secs_f64();
    let mut clicks = PartitionClicks::restore(0);
    let began = Instant::now();
    for (offset, (redirect, agent)) in decoded.iter().zip(&classified).enumerate() {
        let click = Click {
            short_code: &redirect.short_code,
            client_id: redirect.client_id,
            occurred_at: redirect.occurred_at,
            agent,
        };
        clicks.apply(offset as i64, &click);
    }
    let aggregate_seconds = began.elapsed().as_secs_f64();
    let per = |seconds: f64| records as f64 / seconds;
    println!(
        "stages alone: decode {:.0}/s, classify (cached) {:.0}/s, aggregate {:.0}/s",
        per(decode_seconds),
        per(classify_seconds),
        per(aggregate_seconds)
    );
    drop((decoded, classified));

    let mut user_agents = UserAgents::default();
    let mut clicks = PartitionClicks::restore(0);
    let began = Instant::now();
    runtime.block_on(async {
        for (offset, bytes) in encoded.iter().enumerate() {
            let redirect: Redirect = codec.decode(bytes).await?;
            let agent = user_agents.classify(&redirect.user_agent);
            let click = Click {
                short_code: &redirect.short_code,
                client_id: redirect.client_id,
                occurred_at: redirect.occurred_at,
                agent: &agent,
            };
            clicks.apply(offset as i64, &click);
        }
        Ok::<_, anyhow::Error>(())
    })?;
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "clicks hot path (decode + classify + aggregate), one core: {records} records in {seconds:.2} s = {:.0} records/s",
        records as f64 / seconds
    );

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
