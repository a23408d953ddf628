//! The processor's end-to-end speed beside raw consumption from the same
//! in-process broker.
//!
//! Writes `--records` increments (Avro, 10,000 keys) straight to the
//! increments topic with no processor running, then
//! 1. reads them all with a bare rdkafka consumer: records/s;
//! 2. starts the processor and waits until the stored totals add up to
//!    `--records`: records/s from its first stored total to the last.
//!
//! Both clocks start at the first record seen, so group joins are not
//! counted.
//!
//! `cargo run --release -p testcontainers-tests --bin consume-ratio -- --records 300000`

use std::time::{Duration, Instant};

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use schemas::{Increment, Topic};
use testcontainers_tests::{Options, Pipeline, arg};
use uuid::Uuid;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records = arg("--records", 300_000)?;
    let mut pipeline = Pipeline::start(Options {
        // A static member that left is never expired by tansu.
        static_membership: false,
        flush_interval: Duration::from_secs(1),
        ..Options::default()
    })
    .await?;
    pipeline.stop_processor().await?;
    let topic = pipeline.names.name(Topic::Increments);
    let producer: FutureProducer = pipeline
        .kafka()
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("queue.buffering.max.messages", "200000")
        .create()?;
    let mut pending = Vec::new();
    for i in 0..records {
        let key = Uuid::from_u128((i % 10_000) as u128 + 1);
        let increment = Increment {
            event_id: Uuid::now_v7(),
            occurred_at: 1_614_556_800_000_000,
            received_at: 1_614_556_800_000_000,
            application_id: "bench".into(),
            key,
            value: 1,
            idempotency_key: None,
        };
        let payload = pipeline.codec.encode(&increment).await?;
        let key = key.to_string();
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
    println!("wrote {records} increments");

    let consumer: StreamConsumer = pipeline
        .kafka()
        .set("group.id", format!("raw-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[&topic])?;
    let mut first = None;
    for _ in 0..records {
        let message = consumer.recv().await?;
        first.get_or_insert_with(Instant::now);
        drop(message);
    }
    let raw = records as f64 / first.map_or(1.0, |f| f.elapsed().as_secs_f64());
    drop(consumer);
    println!("raw consume: {raw:.0} records/s");

    let db = libsql::Builder::new_local(pipeline.data_dir().join("eventide.db"))
        .build()
        .await?;
    let conn = db.connect()?;
    pipeline.start_processor("p1");
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let mut rows = conn
            .query("SELECT COALESCE(SUM(value), 0) FROM counters", ())
            .await?;
        let total: i64 = match rows.next().await? {
            Some(row) => row.get(0)?,
            None => 0,
        };
        if total > 0 {
            first.get_or_insert((Instant::now(), total));
        }
        if total >= records as i64 {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "stored {total} of {records}");
        tokio::time::sleep(testcontainers_tests::POLL_INTERVAL).await;
    }
    let (since, at_first) = first.unwrap_or((Instant::now(), 0));
    let processed = (records as i64 - at_first) as f64 / since.elapsed().as_secs_f64();
    println!(
        "processor end to end (read, decode, aggregate, store): {processed:.0} records/s = {:.0}% of raw consume",
        100.0 * processed / raw
    );
    Ok(())
}
