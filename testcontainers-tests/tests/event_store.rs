//! The event store and the error log end to end: events posted to ingest
//! are stored once each with their day, counted per type (unknown types
//! flagged), and refused requests and dead letters land in the error log.

use std::collections::BTreeSet;
use std::time::Duration;

use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use schemas::{Event, Increment};
use serde_json::json;
use testcontainers_tests::{Options, Pipeline, eventually};
use tokio::time::Instant;
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

/// Events are stored once each and counted once per type across a
/// processor crash. The crash comes after a flush (the processor holds the
/// partition and the store has its checkpoint and rows) and right after
/// another event it may hold unflushed, so a restart that resumed anywhere
/// but at the stored checkpoint would lose or double something.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn events_and_errors_are_stored_once_each() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start(Options::default()).await?;
    let session = Uuid::new_v4();
    let pageview = |path: &str| {
        json!({"session_id": session, "category": "page interaction", "name": "pageview",
            "data": {"host": "example.org", "path": path}, "timestamp": "2021-01-01 09:15:27.243860"})
    };
    for path in ["/", "/a"] {
        assert_eq!(
            pipeline.post_to("/v1/events", &pageview(path)).await?.0,
            202
        );
    }
    pipeline
        .wait_for_store(
            &[
                (format!("SELECT COUNT(*) FROM events WHERE session_id = '{session}'"), 2),
                ("SELECT COALESCE(SUM(events), 0) FROM event_type_counts WHERE name = 'pageview'".to_owned(), 2),
            ],
            DEADLINE,
        )
        .await?;
    assert_eq!(
        pipeline.post_to("/v1/events", &pageview("/b")).await?.0,
        202
    );
    pipeline.crash_processor().await;
    pipeline.start_processor("p0");
    let scroll = json!({"session_id": session, "category": "page interaction", "name": "scroll",
        "data": {"depth": 3}, "timestamp": "2021-01-02T00:00:01Z"});
    assert_eq!(pipeline.post_to("/v1/events", &scroll).await?.0, 202);
    assert_eq!(
        pipeline
            .post_to("/v1/events", &json!({"session_id": "nope"}))
            .await?
            .0,
        400
    );

    let expected = [
        (format!("SELECT COUNT(*) FROM events WHERE session_id = '{session}'"), 4),
        (format!("SELECT COUNT(*) FROM events WHERE session_id = '{session}' AND day = '2021-01-01'"), 3),
        ("SELECT COALESCE(SUM(events), 0) FROM event_type_counts WHERE name = 'pageview' AND known_type = 1".to_owned(), 3),
        ("SELECT COALESCE(SUM(events), 0) FROM event_type_counts WHERE name = 'scroll' AND known_type = 0".to_owned(), 1),
        ("SELECT COUNT(*) FROM errors WHERE kind = 'reject' AND source = '/v1/events' AND status = 400".to_owned(), 1),
    ];
    pipeline.wait_for_store(&expected, DEADLINE).await?;

    // The query API serves the per-type counts, unknown types flagged.
    let analyst = testcontainers_tests::client_with_key("dev-analyst")?;
    let answer: serde_json::Value = analyst
        .get(format!("{}/v1/event-types", pipeline.query_url))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let types = answer["event_types"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let find = |name: &str| {
        types
            .iter()
            .find(|t| t["name"] == name)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        (
            find("pageview")["events"].as_i64(),
            find("pageview")["known"].as_bool()
        ),
        (Some(3), Some(true)),
        "{answer}"
    );
    assert_eq!(
        (
            find("scroll")["events"].as_i64(),
            find("scroll")["known"].as_bool()
        ),
        (Some(1), Some(false)),
        "{answer}"
    );
    Ok(())
}

/// A record read back from its topic, with where it was.
#[derive(Debug)]
struct Positioned<R> {
    key: String,
    partition: i32,
    offset: i64,
    record: R,
}

/// Reads `R`'s topic from the beginning until `want` records that `mine`
/// picks were read; returns them in (partition, offset) order.
async fn read_positioned<R: schemas::Record>(
    pipeline: &Pipeline,
    want: usize,
    mine: impl Fn(&R) -> bool,
) -> anyhow::Result<Vec<Positioned<R>>> {
    let consumer: StreamConsumer = pipeline
        .kafka()
        .set("group.id", format!("reader-{}", Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .create()?;
    consumer.subscribe(&[&pipeline.names.name(R::TOPIC)])?;
    let until = Instant::now() + DEADLINE;
    let mut read = Vec::new();
    while read.len() < want {
        anyhow::ensure!(
            Instant::now() < until,
            "{} of {want} records read from {} after {DEADLINE:?}",
            read.len(),
            R::TOPIC.default_name()
        );
        let Ok(message) = tokio::time::timeout(Duration::from_millis(500), consumer.recv()).await
        else {
            continue;
        };
        let message = message?;
        let record: R = pipeline
            .codec
            .decode(message.payload().unwrap_or_default())
            .await?;
        if mine(&record) {
            read.push(Positioned {
                key: String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned(),
                partition: message.partition(),
                offset: message.offset(),
                record,
            });
        }
    }
    read.sort_by_key(|r| (r.partition, r.offset));
    Ok(read)
}

/// Guarantee 2 (order per key): records posted one after another for one
/// key (a counter key, a session) are on one partition in the order posted,
/// interleaved with another key's; the processor stores each event at that
/// position, and the session's listing gives them in the order posted
/// (equal timestamps: the order comes from the ids ingest gives in turn).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn records_of_one_key_keep_their_order_on_the_partition_and_in_the_store()
-> anyhow::Result<()> {
    const POSTS: i64 = 20;
    let pipeline = Pipeline::start(Options {
        partitions: 4,
        ..Options::default()
    })
    .await?;
    let (key, session, other_session) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let event = |session: Uuid, n: i64| {
        json!({"session_id": session, "category": "page interaction", "name": "scroll",
               "data": {"n": n}, "timestamp": "2021-03-04T05:06:07Z"})
    };
    let mut posted = Vec::new();
    for n in 1..=POSTS {
        let (status, answer) = pipeline
            .post_increment(&json!({ "key": key, "value": n }))
            .await?;
        anyhow::ensure!(status == 202, "{answer}");
        let (status, answer) = pipeline.post_to("/v1/events", &event(session, n)).await?;
        anyhow::ensure!(status == 202, "{answer}");
        posted.push(answer["ids"][0].as_str().unwrap_or_default().to_owned());
        let (status, answer) = pipeline
            .post_to("/v1/events", &event(other_session, n))
            .await?;
        anyhow::ensure!(status == 202, "{answer}");
    }
    let want = usize::try_from(POSTS)?;

    let increments = read_positioned::<Increment>(&pipeline, want, |i| i.key == key).await?;
    let partitions: BTreeSet<i32> = increments.iter().map(|i| i.partition).collect();
    anyhow::ensure!(
        partitions.len() == 1,
        "one key's increments on partitions {partitions:?}"
    );
    let values: Vec<i64> = increments.iter().map(|i| i.record.value).collect();
    anyhow::ensure!(
        values == (1..=POSTS).collect::<Vec<_>>(),
        "increments in partition order: {values:?}"
    );
    anyhow::ensure!(increments.iter().all(|i| i.key == key.to_string()));

    let events =
        read_positioned::<Event>(&pipeline, want, |e| e.session_id == session.to_string()).await?;
    let partitions: BTreeSet<i32> = events.iter().map(|e| e.partition).collect();
    anyhow::ensure!(
        partitions.len() == 1,
        "one session's events on partitions {partitions:?}"
    );
    let on_topic: Vec<String> = events
        .iter()
        .map(|e| e.record.event_id.to_string())
        .collect();
    anyhow::ensure!(
        on_topic == posted,
        "events in partition order {on_topic:?}, posted {posted:?}"
    );
    anyhow::ensure!(events.iter().all(|e| e.key == session.to_string()));

    // Stored at the positions they were read from.
    let at_positions: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "(event_id = '{}' AND partition = {} AND \"offset\" = {})",
                e.record.event_id, e.partition, e.offset
            )
        })
        .collect();
    pipeline
        .wait_for_store(
            &[(
                format!(
                    "SELECT COUNT(*) FROM events WHERE {}",
                    at_positions.join(" OR ")
                ),
                POSTS,
            )],
            DEADLINE,
        )
        .await?;
    // And listed in the order posted.
    let listed = eventually(DEADLINE, || async {
        let (status, body) = pipeline
            .query(&format!("/v1/events?session_id={session}&limit=1000"))
            .await?;
        anyhow::ensure!(status == 200, "{body}");
        let ids: Vec<String> = body["events"]
            .as_array()
            .map(|events| {
                events
                    .iter()
                    .filter_map(|e| e["id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        Ok(if ids.len() == posted.len() {
            Ok(ids)
        } else {
            Err(format!("{} of {} listed: {body}", ids.len(), posted.len()))
        })
    })
    .await?;
    anyhow::ensure!(
        listed == posted,
        "the session's listing {listed:?}, posted {posted:?}"
    );
    Ok(())
}
