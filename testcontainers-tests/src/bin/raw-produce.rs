//! Benchmark ceiling: raw rdkafka producing into a broker with the same
//! durability settings as ingest (acks=all, idempotent), no HTTP. Prints
//! acknowledged records per second.
//!
//! `raw-produce <bootstrap> <topic> <records> <payload bytes>`

use std::time::Instant;

use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    let topic = args.next().unwrap_or_else(|| "increments".to_owned());
    let records: usize = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let size: usize = args.next().map_or(Ok(90), |n| n.parse())?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "2")
        .set("queue.buffering.max.messages", "200000")
        .create()?;
    let payload = vec![7u8; size];
    let started = Instant::now();
    let mut pending = Vec::with_capacity(records);
    for i in 0..records {
        let key = format!("k{}", i % 1000);
        let record = FutureRecord::to(&topic).key(&key).payload(&payload);
        pending.push(producer.send_result(record).map_err(|(err, _)| err)?);
        if pending.len() >= 10_000 {
            for delivery in futures::future::join_all(pending.drain(..)).await {
                delivery?.map_err(|(err, _)| err)?;
            }
        }
    }
    for delivery in futures::future::join_all(pending).await {
        delivery?.map_err(|(err, _)| err)?;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{records} records acknowledged in {secs:.2}s: {:.0} records/s",
        records as f64 / secs
    );
    Ok(())
}
