//! Benchmark ceiling: raw rdkafka producing into a broker with the same
//! durability settings as ingest (acks=all, idempotent), no HTTP. Prints
//! acknowledged records per second.
//!
//! `raw-produce <bootstrap> <topic> <records> <payload bytes> [in flight]`
//!
//! The topic is created with 4 partitions (as the pipeline's, by default) if
//! it does not exist. On any topic but `increments` the payload is opaque
//! bytes: give one no processor reads. On `increments` each record is a
//! valid Avro increment (over 1,000 keys, `payload bytes` ignored), so the
//! running pipeline consumes and stores them as it does ingest's: the
//! ceiling for ingest's batches with the same work behind them.
//!
//! Without `in flight`, records are queued 10,000 at a time (the batch
//! ceiling). With it, that many senders each send one record and wait for
//! its acknowledgement before the next, as `in flight` HTTP connections that
//! each wait for a `202` do (the single-event ceiling). `linger.ms` is 2, as
//! ingest's default, unless `RAW_PRODUCE_LINGER_MS` says otherwise.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let brokers = args.next().unwrap_or_else(|| "127.0.0.1:9092".to_owned());
    let topic = args.next().unwrap_or_else(|| "increments".to_owned());
    let records: usize = args.next().map_or(Ok(100_000), |n| n.parse())?;
    let size: usize = args.next().map_or(Ok(90), |n| n.parse())?;
    let in_flight: Option<usize> = args.next().map(|n| n.parse()).transpose()?;
    create_topic(&brokers, &topic).await?;
    let linger = std::env::var("RAW_PRODUCE_LINGER_MS").unwrap_or_else(|_| "2".to_owned());
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", linger)
        .set("queue.buffering.max.messages", "200000")
        .create()?;
    let keyed = if topic == "increments" {
        increments().await?
    } else {
        (0..1000)
            .map(|i| (format!("k{i}"), vec![7u8; size]))
            .collect()
    };
    let started = Instant::now();
    match in_flight {
        None => queued(&producer, &topic, records, &keyed).await?,
        Some(senders) => one_at_a_time(&producer, &topic, records, &keyed, senders).await?,
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{records} records acknowledged in {secs:.2}s: {:.0} records/s",
        records as f64 / secs
    );
    Ok(())
}

async fn create_topic(brokers: &str, topic: &str) -> anyhow::Result<()> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new = NewTopic::new(topic, 4, TopicReplication::Fixed(1));
    for created in admin.create_topics([&new], &AdminOptions::new()).await? {
        match created {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => anyhow::bail!("cannot create {topic}: {code}"),
        }
    }
    Ok(())
}

/// 1,000 increments of 1 on as many keys, encoded as ingest writes them.
async fn increments() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let codec = schemas::Codec::new(
        schemas::SchemaSource::Catalogue,
        schemas::TopicNames::default(),
    )?;
    let now = schemas::time::now_micros();
    let mut keyed = Vec::with_capacity(1000);
    for _ in 0..1000 {
        let key = uuid::Uuid::new_v4();
        let increment = schemas::Increment {
            event_id: uuid::Uuid::now_v7(),
            occurred_at: now,
            received_at: now,
            application_id: "raw-produce".to_owned(),
            key,
            value: 1,
            idempotency_key: None,
        };
        keyed.push((key.to_string(), codec.encode(&increment).await?));
    }
    Ok(keyed)
}

/// Queues records 10,000 at a time and waits for each group's acknowledgements.
async fn queued(
    producer: &FutureProducer,
    topic: &str,
    records: usize,
    keyed: &[(String, Vec<u8>)],
) -> anyhow::Result<()> {
    let mut pending = Vec::with_capacity(records.min(10_000));
    for i in 0..records {
        let (key, payload) = &keyed[i % keyed.len()];
        let record = FutureRecord::to(topic).key(key).payload(payload);
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
    Ok(())
}

/// `senders` loops, each sending one record and awaiting its acknowledgement.
async fn one_at_a_time(
    producer: &FutureProducer,
    topic: &str,
    records: usize,
    keyed: &[(String, Vec<u8>)],
    senders: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(AtomicUsize::new(0));
    let sender = |next: Arc<AtomicUsize>| async move {
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= records {
                return anyhow::Ok(());
            }
            let (key, payload) = &keyed[i % keyed.len()];
            let record = FutureRecord::to(topic).key(key).payload(payload);
            producer
                .send_result(record)
                .map_err(|(err, _)| err)?
                .await?
                .map_err(|(err, _)| err)?;
        }
    };
    let all = (0..senders.max(1)).map(|_| sender(Arc::clone(&next)));
    for sent in futures::future::join_all(all).await {
        sent?;
    }
    Ok(())
}
