//! The counters slice end to end over real HTTP, the in-process Kafka-API
//! broker and the SQLite store: exact totals under concurrency and across
//! processor restarts, and precise errors for bad input.

use std::time::Duration;

use anyhow::Context;
use schemas::{Reject, Topic};
use serde_json::json;
use testcontainers_tests::scenarios::{self, SETTLE};
use testcontainers_tests::{Options, Pipeline};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_increments_are_counted_exactly() -> anyhow::Result<()> {
    scenarios::concurrent_increments_are_exact(Options::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processor_crash_and_restart_mid_stream_keeps_totals_exact() -> anyhow::Result<()> {
    scenarios::processor_restarts_keep_totals_exact(Options::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_processor_crashes_under_100k_records_keep_every_total_exact() -> anyhow::Result<()> {
    scenarios::crashes_under_load_keep_totals_exact(Options::default()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_processor_leaving_the_group_mid_stream_keeps_totals_exact() -> anyhow::Result<()> {
    scenarios::a_processor_leaving_the_group_keeps_totals_exact(Options::default()).await
}

/// A processor that dies fails the test waiting on it at once, with the
/// processor's own error, instead of at the wait's deadline (here it cannot
/// read its rules file, so it stops as soon as it starts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_processor_that_dies_fails_the_waiting_test_at_once_with_its_error() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let missing = dir.path().join("no-such-rules.toml");
    let pipeline = Pipeline::start(Options {
        rules_file: Some(missing.clone()),
        ..Options::default()
    })
    .await?;
    let key = Uuid::new_v4();
    let (status, answer) = pipeline
        .post_increment(&json!({ "key": key, "value": 1 }))
        .await?;
    anyhow::ensure!(status == 202, "{answer}");
    let waiting = tokio::time::Instant::now();
    let Err(err) = pipeline.wait_for_counters(&[(key, 1)], SETTLE).await else {
        anyhow::bail!("a dead processor counted the increment");
    };
    let waited = waiting.elapsed();
    anyhow::ensure!(
        waited < SETTLE / 6,
        "the wait ended after {waited:?}, not at once: {err:#}"
    );
    let said = format!("{err:#}");
    anyhow::ensure!(
        said.contains("processor p0 failed") && said.contains(&missing.display().to_string()),
        "{said}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_increments_get_precise_400s_and_are_recorded_as_rejects() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let key = Uuid::new_v4();
    let cases = [
        (json!({ "key": key, "value": 0 }), "value", "minimum"),
        (
            json!({ "key": key, "value": 1, "extra": true }),
            "extra",
            "unknown_field",
        ),
        (json!({ "key": key }), "value", "required"),
        (json!({ "key": "not-a-uuid", "value": 1 }), "key", "uuid"),
        (json!({ "key": key, "value": "1" }), "value", "type"),
    ];
    for (body, field, rule) in &cases {
        let (status, answer) = pipeline.post_increment(body).await?;
        assert_eq!(status, 400, "{body} → {answer}");
        assert_eq!(answer["error"]["field"], *field, "{body} → {answer}");
        assert_eq!(answer["error"]["rule"], *rule, "{body} → {answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{answer}"
        );
    }
    let malformed = pipeline
        .http
        .post(format!("{}/v1/increment", pipeline.ingest_url))
        .header("content-type", "application/json")
        .body("{\"key\":")
        .send()
        .await?;
    assert_eq!(malformed.status(), 400);
    let answer: serde_json::Value = malformed.json().await?;
    assert_eq!(answer["error"]["rule"], "malformed_json");

    // Nothing invalid was counted; a valid increment afterwards is.
    let (status, _) = pipeline
        .post_increment(&json!({ "key": key, "value": 2 }))
        .await?;
    assert_eq!(status, 202);
    pipeline.wait_for_counters(&[(key, 2)], SETTLE).await?;

    // Every refusal is on the rejects topic with its field and rule.
    let rejects = pipeline
        .read_topic::<Reject>(Topic::IngestRejects, SETTLE, |read| {
            read.len() > cases.len()
        })
        .await?;
    let mut seen = Vec::new();
    for (_, reject) in rejects {
        assert_eq!(reject.endpoint, "/v1/increment");
        assert_eq!(
            reject.application_id, "dev",
            "rejects name the key's application"
        );
        assert_eq!(reject.status, 400);
        seen.push((reject.field, reject.rule));
    }
    for (_, field, rule) in &cases {
        assert!(
            seen.contains(&(Some((*field).to_owned()), (*rule).to_owned())),
            "no reject recorded for {field}/{rule}; saw {seen:?}"
        );
    }
    assert!(
        seen.contains(&(None, "malformed_json".to_owned())),
        "saw {seen:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_counters_are_zero_and_bad_keys_are_400() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    assert_eq!(pipeline.counter(Uuid::new_v4()).await?, 0);
    let analyst = testcontainers_tests::client_with_key("dev-analyst")?;
    let response = analyst
        .get(format!("{}/v1/counters/nope", pipeline.query_url))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let answer: serde_json::Value = response.json().await?;
    assert_eq!(answer["error"]["parameter"], "key");

    // Reads need a key with the query scope.
    let url = format!("{}/v1/counters/{}", pipeline.query_url, Uuid::new_v4());
    assert_eq!(reqwest::get(&url).await?.status(), 401);
    assert_eq!(
        pipeline.http.get(&url).send().await?.status(),
        403,
        "the producer key may not query"
    );
    assert_eq!(analyst.get(&url).send().await?.status(), 200);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_record_mid_partition_is_dead_lettered_and_the_rest_counted() -> anyhow::Result<()>
{
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use schemas::DeadLetter;

    let pipeline = Pipeline::start(Options {
        partitions: 1,
        ..Options::default()
    })
    .await?;
    let key = Uuid::new_v4();
    let one = json!({ "key": key, "value": 1 });
    let two = json!({ "key": key, "value": 2 });
    for _ in 0..5 {
        assert_eq!(pipeline.post_increment(&one).await?.0, 202);
    }
    let corrupt = vec![0xde, 0xad, 0xbe, 0xef, 0x01, 0x02];
    let producer: FutureProducer = pipeline.kafka().create()?;
    let topic = pipeline.names.name(Topic::Increments);
    let key_text = key.to_string();
    producer
        .send(
            FutureRecord::to(&topic).key(&key_text).payload(&corrupt),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(err, _)| err)?;
    for _ in 0..5 {
        assert_eq!(pipeline.post_increment(&two).await?.0, 202);
    }
    pipeline.wait_for_counters(&[(key, 15)], SETTLE).await?;

    let letters = pipeline
        .read_topic::<DeadLetter>(Topic::DeadLetters, SETTLE, |read| !read.is_empty())
        .await?;
    let (letter_key, letter) = letters
        .first()
        .context("the corrupt record was dead-lettered")?;
    assert_eq!(letter_key, &key_text);
    assert_eq!(letter.payload, corrupt);
    assert_eq!(
        (letter.topic.as_str(), letter.partition, letter.offset),
        (topic.as_str(), 0, 5)
    );
    assert!(letter.reason.contains("magic byte"), "{}", letter.reason);
    assert_eq!(letter.stage, "processor");

    // The processor files the dead letter in the error log too.
    let hex: String = corrupt.iter().map(|b| format!("{b:02x}")).collect();
    let logged =
        format!("SELECT COUNT(*) FROM errors WHERE kind = 'dead_letter' AND body = X'{hex}'");
    pipeline.wait_for_store(&[(logged, 1)], SETTLE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_corrupt_records_is_dead_lettered_once_each_and_totals_stay_exact()
-> anyhow::Result<()> {
    use std::collections::BTreeSet;

    use schemas::DeadLetter;

    const CORRUPT: usize = 3_000;
    let pipeline = Pipeline::start(Options {
        partitions: 2,
        ..Options::default()
    })
    .await?;
    let key = Uuid::new_v4();
    let payloads: Vec<Vec<u8>> = (0..CORRUPT)
        .map(|i| format!("corrupt-{i:05}").into_bytes())
        .collect();
    let records: Vec<(String, Vec<u8>)> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| (format!("poison-{}", i % 50), payload.clone()))
        .collect();
    pipeline.produce_raw(Topic::Increments, &records).await?;
    for value in 1..=10 {
        let body = json!({ "key": key, "value": value });
        assert_eq!(pipeline.post_increment(&body).await?.0, 202);
    }
    pipeline.wait_for_counters(&[(key, 55)], SETTLE).await?;

    let letters = pipeline
        .read_topic::<DeadLetter>(Topic::DeadLetters, SETTLE, |read| read.len() >= CORRUPT)
        .await?;
    let positions: BTreeSet<(i32, i64)> = letters
        .iter()
        .map(|(_, letter)| (letter.partition, letter.offset))
        .collect();
    assert_eq!(letters.len(), CORRUPT, "one dead letter per corrupt record");
    assert_eq!(positions.len(), CORRUPT, "no record dead-lettered twice");
    let carried: BTreeSet<&[u8]> = letters
        .iter()
        .map(|(_, letter)| letter.payload.as_slice())
        .collect();
    let sent: BTreeSet<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    assert_eq!(carried, sent, "every corrupt payload kept as read");

    // The error log holds each of them once.
    let logged = "SELECT COUNT(*) FROM errors WHERE kind = 'dead_letter'".to_owned();
    pipeline
        .wait_for_store(&[(logged, i64::try_from(CORRUPT)?)], SETTLE)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn data_topics_get_the_partition_count_and_side_topics_the_low_volume_one()
-> anyhow::Result<()> {
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let pipeline = Pipeline::start(Options {
        partitions: 3,
        low_volume_partitions: 2,
        ..Options::default()
    })
    .await?;
    let consumer: BaseConsumer = pipeline.kafka().create()?;
    let metadata =
        tokio::task::spawn_blocking(move || consumer.fetch_metadata(None, Duration::from_secs(10)))
            .await??;
    for topic in Topic::ALL {
        let name = pipeline.names.name(topic);
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .with_context(|| format!("{name} exists"))?;
        let want = if topic.is_low_volume() { 2 } else { 3 };
        assert_eq!(found.partitions().len(), want, "{name}");
    }
    Ok(())
}

/// The broker goes down and comes back while 16 clients post increments,
/// each to its own key. The outage is real: the broker stays down until a
/// request sent during it was answered `503`, and comes back only then;
/// the load goes on until 300 requests sent after the restart got `202`.
/// Every `202` is counted exactly once (one missing or doubled fails), and a
/// `503` (not acknowledged in time) is counted once or not at all, never
/// twice. Producer retries across the restart are deduplicated by the
/// idempotent producer; the processor's replay by its checkpoints.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_restart_under_load_counts_every_acknowledged_increment_once() -> anyhow::Result<()>
{
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

    use futures::StreamExt;

    /// When a request was sent, relative to the outage.
    const UP: u8 = 0;
    const DOWN: u8 = 1;
    const RESTARTED: u8 = 2;
    /// `202`s wanted before the outage and after the restart.
    const EACH_SIDE: usize = 300;

    let mut options = Options::default();
    // The first writes of an outage wait this long for their 503.
    options.ingest.produce_timeout = Duration::from_secs(2);
    let mut pipeline = Pipeline::start(options).await?;
    pipeline.warm_up().await?;

    let phase = Arc::new(AtomicU8::new(UP));
    let stop = Arc::new(AtomicBool::new(false));
    // 202s by the phase their request was sent in, and 503s of the outage.
    let accepted: Arc<[AtomicUsize; 3]> = Arc::new(Default::default());
    let refused_in_outage = Arc::new(AtomicUsize::new(0));
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..16 {
        let (http, url) = (
            pipeline.http.clone(),
            format!("{}/v1/increment", pipeline.ingest_url),
        );
        let (phase, stop, accepted, refused_in_outage) = (
            Arc::clone(&phase),
            Arc::clone(&stop),
            Arc::clone(&accepted),
            Arc::clone(&refused_in_outage),
        );
        clients.spawn(async move {
            let mut answers = Vec::new();
            let mut i = client;
            while !stop.load(Ordering::Relaxed) {
                i += 16;
                let sent_in = phase.load(Ordering::Relaxed);
                let (key, value) = (Uuid::new_v4(), testcontainers_tests::increment_value(i));
                let status = http
                    .post(&url)
                    .json(&json!({ "key": key, "value": value }))
                    .send()
                    .await?
                    .status()
                    .as_u16();
                match status {
                    202 => {
                        accepted[usize::from(sent_in)].fetch_add(1, Ordering::Relaxed);
                    }
                    503 => {
                        if sent_in == DOWN {
                            refused_in_outage.fetch_add(1, Ordering::Relaxed);
                        }
                        // A client backs off after a 503 (load shaping, not a
                        // wait for anything): refused-at-once answers would
                        // otherwise run to tens of thousands.
                        tokio::time::sleep(testcontainers_tests::POLL_INTERVAL).await;
                    }
                    other => anyhow::bail!("increment {i} answered {other}"),
                }
                answers.push((key, value, status));
            }
            anyhow::Ok(answers)
        });
    }
    at_least("202s before the outage", EACH_SIDE, || {
        accepted[usize::from(UP)].load(Ordering::Relaxed)
    })
    .await?;
    pipeline.stop_broker();
    phase.store(DOWN, Ordering::Relaxed);
    at_least("503s to requests sent during the outage", 1, || {
        refused_in_outage.load(Ordering::Relaxed)
    })
    .await?;
    pipeline.restart_broker().await?;
    phase.store(RESTARTED, Ordering::Relaxed);
    at_least("202s to requests sent after the restart", EACH_SIDE, || {
        accepted[usize::from(RESTARTED)].load(Ordering::Relaxed)
    })
    .await?;
    stop.store(true, Ordering::Relaxed);

    let mut acknowledged = Vec::new();
    let mut unacknowledged = Vec::new();
    while let Some(answers) = clients.join_next().await {
        for (key, value, status) in answers?? {
            match status {
                202 => acknowledged.push((key, value)),
                _ => unacknowledged.push((key, value)),
            }
        }
    }
    let summary = format!(
        "{} acknowledged ({:?} sent up, down, restarted), {} not ({} sent during the outage)",
        acknowledged.len(),
        accepted.each_ref().map(|n| n.load(Ordering::Relaxed)),
        unacknowledged.len(),
        refused_in_outage.load(Ordering::Relaxed),
    );
    pipeline
        .wait_for_counters(&acknowledged, SETTLE * 2)
        .await
        .context(summary)?;
    let pipeline = &pipeline;
    let mut counts = futures::stream::iter(unacknowledged)
        .map(|(key, value)| async move { anyhow::Ok((value, pipeline.counter(key).await?)) })
        .buffer_unordered(16);
    while let Some(counted) = counts.next().await {
        let (value, got) = counted?;
        anyhow::ensure!(
            got == 0 || got == value,
            "a 503'd increment of {value} is counted as {got}"
        );
    }
    Ok(())
}

/// Waits until `count()` reaches `want`.
async fn at_least(what: &str, want: usize, count: impl Fn() -> usize) -> anyhow::Result<()> {
    let count = &count;
    testcontainers_tests::eventually(SETTLE, || async move {
        let got = count();
        Ok(if got >= want {
            Ok(())
        } else {
            Err(format!("{got} {what}, want {want}"))
        })
    })
    .await
}

/// The in-process broker deletes records past `--retention` at its next
/// maintenance (tansu does so only for topics created with
/// `cleanup.policy=delete`, which ours are); what they counted stays
/// counted, and records written afterwards are read and counted on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_past_retention_leave_the_broker_log_and_their_counts_stay() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options {
        partitions: 2,
        // Long enough for the processor to count a record first, even on a
        // loaded CI machine.
        retention: Duration::from_secs(30),
        broker_maintenance: Duration::from_secs(1),
        ..Options::default()
    })
    .await?;
    let warmup = pipeline.warm_up().await?;
    let key = Uuid::new_v4();
    for value in 1..=5 {
        let (status, answer) = pipeline
            .post_increment(&json!({ "key": key, "value": value }))
            .await?;
        assert_eq!(status, 202, "{answer}");
    }
    pipeline.wait_for_counters(&[(key, 15)], SETTLE).await?;

    let topic = pipeline.codec.names().name(Topic::Increments);
    let watermarks = |topic: String| {
        let kafka = pipeline.kafka();
        async move {
            tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<(i64, i64)>> {
                use rdkafka::consumer::{BaseConsumer, Consumer};
                let consumer: BaseConsumer = kafka.create()?;
                (0..2)
                    .map(|partition| {
                        Ok(consumer.fetch_watermarks(&topic, partition, Duration::from_secs(5))?)
                    })
                    .collect()
            })
            .await?
        }
    };
    let written: i64 = watermarks(topic.clone())
        .await?
        .iter()
        .map(|(_, high)| high)
        .sum();
    assert_eq!(written, 6, "six records were written");
    testcontainers_tests::eventually(SETTLE, || async {
        let marks = watermarks(topic.clone()).await?;
        Ok(if marks.iter().all(|(low, high)| low == high) {
            Ok(())
        } else {
            Err(format!("(low, high) per partition: {marks:?}"))
        })
    })
    .await?;

    let (status, answer) = pipeline
        .post_increment(&json!({ "key": key, "value": 10 }))
        .await?;
    assert_eq!(status, 202, "{answer}");
    pipeline
        .wait_for_counters(&[(warmup, 1), (key, 25)], SETTLE)
        .await?;
    Ok(())
}
