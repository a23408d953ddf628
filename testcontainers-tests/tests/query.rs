//! The analysts' reads end to end over real HTTP: a new count is queryable
//! within a flush interval, events are listed by session and category with
//! stable cursors while new events arrive, and the error log of rejects and
//! dead letters.

use std::time::Duration;

use anyhow::Context;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use testcontainers_tests::scenarios::listings;
use testcontainers_tests::{Options, Pipeline, eventually};
use tokio::time::Instant;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

/// Guarantee 4 (fresh): once the processor has caught up, an increment is
/// queryable within one flush interval of its `202`, plus a margin for the
/// hops around the flush: the processor's fetch (`--fetch-wait` 50 ms), the
/// store write and the next look of the poll, on a loaded CI machine. Five
/// probes, each on its own deadline counted from its `202`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_count_is_queryable_within_the_flush_interval_and_a_margin() -> anyhow::Result<()> {
    /// The processor's default.
    const FLUSH_INTERVAL: Duration = Duration::from_secs(1);
    const MARGIN: Duration = Duration::from_secs(1);
    let pipeline = Pipeline::start(Options {
        flush_interval: FLUSH_INTERVAL,
        ..Options::default()
    })
    .await?;
    // Caught up: the processor holds its partitions and has flushed.
    pipeline.warm_up().await?;
    for probe in 1..=5 {
        let key = Uuid::new_v4();
        let (status, answer) = pipeline
            .post_increment(&json!({ "key": key, "value": probe }))
            .await?;
        anyhow::ensure!(status == 202, "probe {probe}: {answer}");
        let acknowledged = Instant::now();
        eventually(FLUSH_INTERVAL + MARGIN, || async {
            let got = pipeline.counter(key).await?;
            Ok(if got == probe {
                Ok(())
            } else {
                Err(format!("counter is {got}, want {probe}"))
            })
        })
        .await
        .with_context(|| format!("probe {probe} not queryable in time"))?;
        let took = acknowledged.elapsed();
        // `eventually` looks once more after its deadline; a look that only
        // started in time is not in time.
        anyhow::ensure!(
            took <= FLUSH_INTERVAL + MARGIN,
            "probe {probe} queryable after {took:?}, over {:?}",
            FLUSH_INTERVAL + MARGIN
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_listing_parameters_name_the_parameter() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    for (path, parameter) in [
        ("/v1/events?limit=0", "limit"),
        ("/v1/events?limit=1001", "limit"),
        ("/v1/events?from=yesterday", "from"),
        ("/v1/events?from=2021-02-01&to=2021-01-01", "to"),
        ("/v1/events?cursor=xyz", "cursor"),
        ("/v1/events?name=pageview", "name"),
        ("/v1/events?sesion_id=x", "sesion_id"),
        ("/v1/errors?kind=oops", "kind"),
    ] {
        let (status, body) = pipeline.query(path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["parameter"], parameter, "{path}: {body}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejects_and_dead_letters_are_listed_with_their_reasons() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let (status, _) = pipeline
        .post_to(
            "/v1/events",
            &json!({"session_id": "not-a-uuid", "category": "c", "name": "n",
                    "data": {"a": 1}, "timestamp": "2021-01-01T00:00:00Z"}),
        )
        .await?;
    assert_eq!(status, 400);
    // Bytes no schema decodes, straight onto the events topic.
    let producer: FutureProducer = pipeline.kafka().create()?;
    let topic = pipeline.names.name(schemas::Topic::Events);
    producer
        .send(
            FutureRecord::to(&topic).key("k").payload(&b"not avro"[..]),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(err, _)| err)?;

    let rejects = eventually(DEADLINE, || async {
        let (_, body) = pipeline.query("/v1/errors?kind=reject").await?;
        let rows = body["errors"].as_array().cloned().unwrap_or_default();
        Ok(if rows.is_empty() {
            Err("no reject listed yet".to_owned())
        } else {
            Ok(rows)
        })
    })
    .await?;
    assert_eq!(rejects[0]["field"], "session_id", "{}", rejects[0]);
    assert_eq!(rejects[0]["status"], 400);
    assert_eq!(rejects[0]["source"], "/v1/events");

    let letters = eventually(DEADLINE, || async {
        let (_, body) = pipeline.query("/v1/errors?kind=dead_letter").await?;
        let rows = body["errors"].as_array().cloned().unwrap_or_default();
        Ok(if rows.is_empty() {
            Err("no dead letter listed yet".to_owned())
        } else {
            Ok(rows)
        })
    })
    .await?;
    assert_eq!(letters[0]["body"], hex_of(b"not avro"), "{}", letters[0]);
    assert!(
        letters[0]["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{}",
        letters[0]
    );
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_and_the_docs_page_describe_every_endpoint() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let plain = reqwest::Client::new();
    let document: Value = plain
        .get(format!("{}/openapi.json", pipeline.query_url))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    assert!(
        document["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1"))
    );
    let page = plain
        .get(format!("{}/docs", pipeline.query_url))
        .send()
        .await?
        .error_for_status()?
        .text()
        .await?;
    let paths = document["paths"].as_object().cloned().unwrap_or_default();
    assert!(paths.len() >= 7, "{paths:?}");
    for path in paths.keys() {
        assert!(page.contains(path.as_str()), "/docs lacks {path}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_pages_never_skip_or_repeat_while_events_arrive() -> anyhow::Result<()> {
    listings::event_pages_never_skip_or_repeat_while_events_arrive(Options::default()).await
}
