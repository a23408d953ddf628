//! The counters slice end to end over real HTTP, the in-process Kafka-API
//! broker and the SQLite store: exact totals under concurrency and across
//! processor restarts, and precise errors for bad input.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use schemas::{Reject, Topic};
use serde_json::json;
use testcontainers_tests::{Options, Pipeline};
use tokio::time::Instant;
use uuid::Uuid;

const SETTLE: Duration = Duration::from_secs(60);

/// Posts `total` increments spread over `keys` from `clients` concurrent
/// clients; returns the exact sum per key of what was accepted. `progress`
/// counts accepted requests so a test can act mid-stream.
async fn post_load(
    pipeline: Arc<Pipeline>,
    keys: Arc<Vec<Uuid>>,
    total: usize,
    clients: usize,
    progress: Arc<AtomicUsize>,
) -> anyhow::Result<HashMap<Uuid, i64>> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (pipeline, keys, next, progress) = (
            pipeline.clone(),
            keys.clone(),
            next.clone(),
            progress.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut sums: HashMap<Uuid, i64> = HashMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return anyhow::Ok(sums);
                }
                let key = keys[i % keys.len()];
                let value = i64::try_from(i % 7 + 1)?;
                let (status, body) = pipeline
                    .post_increment(&json!({ "key": key, "value": value }))
                    .await?;
                anyhow::ensure!(status == 202, "increment {i} answered {status}: {body}");
                *sums.entry(key).or_default() += value;
                progress.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut expected: HashMap<Uuid, i64> = HashMap::new();
    for worker in workers {
        for (key, sum) in worker.await?? {
            *expected.entry(key).or_default() += sum;
        }
    }
    Ok(expected)
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ten_thousand_concurrent_increments_are_counted_exactly() -> anyhow::Result<()> {
    let pipeline = Arc::new(Pipeline::start(Options::default()).await?);
    let keys = keys(100);
    let progress = Arc::new(AtomicUsize::new(0));
    let expected = post_load(pipeline.clone(), keys.clone(), 10_000, 32, progress).await?;
    assert_eq!(expected.len(), 100);
    assert_eq!(
        expected.values().sum::<i64>(),
        (0..10_000).map(|i| (i % 7 + 1) as i64).sum::<i64>()
    );
    pipeline.wait_for_counters(&sorted(expected), SETTLE).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processor_crash_and_restart_mid_stream_keeps_totals_exact() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start(Options::default()).await?;
    // Let the first processor join and flush before anything is posted, so
    // the crash below really loses unflushed state.
    let warmup = Uuid::new_v4();
    pipeline
        .post_increment(&json!({ "key": warmup, "value": 1 }))
        .await?;
    pipeline.wait_for_counters(&[(warmup, 1)], SETTLE).await?;

    let keys = keys(50);
    let progress = Arc::new(AtomicUsize::new(0));
    let pipeline_handle = Arc::new(std::sync::Mutex::new(()));
    drop(pipeline_handle);
    // The load runs against the URLs; the pipeline itself stays here so the
    // test can restart its processor mid-stream.
    let target = Arc::new(UrlsOnly::of(&pipeline));
    let load = tokio::spawn(
        target
            .clone()
            .post(keys.clone(), 6_000, 16, progress.clone()),
    );

    wait_for_progress(&progress, 2_000).await;
    pipeline.crash_processor().await;
    pipeline.start_processor("p0");

    wait_for_progress(&progress, 4_000).await;
    pipeline.stop_processor().await?;
    pipeline.start_processor("p0");

    let expected = load.await??;
    assert_eq!(
        expected.values().sum::<i64>(),
        (0..6_000).map(|i| (i % 7 + 1) as i64).sum::<i64>()
    );
    pipeline.wait_for_counters(&sorted(expected), SETTLE).await
}

/// Just the ingest endpoint, shareable with a load task while the test
/// keeps `&mut Pipeline` for restarts.
struct UrlsOnly {
    ingest_url: String,
    http: reqwest::Client,
}

impl UrlsOnly {
    fn of(pipeline: &Pipeline) -> Self {
        Self {
            ingest_url: pipeline.ingest_url.clone(),
            http: pipeline.http.clone(),
        }
    }

    async fn post(
        self: Arc<Self>,
        keys: Arc<Vec<Uuid>>,
        total: usize,
        clients: usize,
        progress: Arc<AtomicUsize>,
    ) -> anyhow::Result<HashMap<Uuid, i64>> {
        let next = Arc::new(AtomicUsize::new(0));
        let mut workers = Vec::new();
        for _ in 0..clients {
            let (me, keys, next, progress) =
                (self.clone(), keys.clone(), next.clone(), progress.clone());
            workers.push(tokio::spawn(async move {
                let mut sums: HashMap<Uuid, i64> = HashMap::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return anyhow::Ok(sums);
                    }
                    let key = keys[i % keys.len()];
                    let value = i64::try_from(i % 7 + 1)?;
                    let response = me
                        .http
                        .post(format!("{}/v1/increment", me.ingest_url))
                        .json(&json!({ "key": key, "value": value }))
                        .send()
                        .await?;
                    anyhow::ensure!(
                        response.status() == 202,
                        "increment {i} answered {}",
                        response.status()
                    );
                    *sums.entry(key).or_default() += value;
                    progress.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut expected: HashMap<Uuid, i64> = HashMap::new();
        for worker in workers {
            for (key, sum) in worker.await?? {
                *expected.entry(key).or_default() += sum;
            }
        }
        Ok(expected)
    }
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
        assert_eq!(answer["field"], *field, "{body} → {answer}");
        assert_eq!(answer["rule"], *rule, "{body} → {answer}");
        assert!(
            answer["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "{answer}"
        );
    }
    let malformed = pipeline
        .http
        .post(format!("{}/v1/increment", pipeline.ingest_url))
        .body("{\"key\":")
        .send()
        .await?;
    assert_eq!(malformed.status(), 400);
    let answer: serde_json::Value = malformed.json().await?;
    assert_eq!(answer["rule"], "malformed_json");

    // Nothing invalid was counted; a valid increment afterwards is.
    let (status, _) = pipeline
        .post_increment(&json!({ "key": key, "value": 2 }))
        .await?;
    assert_eq!(status, 202);
    pipeline.wait_for_counters(&[(key, 2)], SETTLE).await?;

    // Every refusal is on the rejects topic with its field and rule.
    let consumer: StreamConsumer = pipeline
        .kafka()
        .set("group.id", format!("rejects-reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .create()?;
    consumer.subscribe(&[&pipeline.names.name(Topic::IngestRejects)])?;
    let mut seen = Vec::new();
    let until = Instant::now() + SETTLE;
    while seen.len() < cases.len() + 1 && Instant::now() < until {
        let Ok(Ok(message)) = tokio::time::timeout(Duration::from_secs(1), consumer.recv()).await
        else {
            continue;
        };
        let reject: Reject = pipeline
            .codec
            .decode(message.payload().unwrap_or_default())
            .await?;
        assert_eq!(reject.endpoint, "/v1/increment");
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
    let response = pipeline
        .http
        .get(format!("{}/v1/counters/nope", pipeline.query_url))
        .send()
        .await?;
    assert_eq!(response.status(), 400);
    let answer: serde_json::Value = response.json().await?;
    assert_eq!(answer["parameter"], "key");
    Ok(())
}
