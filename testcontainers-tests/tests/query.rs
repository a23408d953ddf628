//! The analysts' listings end to end over real HTTP: events by session and
//! category with stable cursors while new events arrive, and the error log
//! of rejects and dead letters.

use std::collections::HashSet;
use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, eventually};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

/// Follows `path`'s cursors to the end; returns every item under `field`.
async fn all_pages(
    pipeline: &Pipeline,
    path: &str,
    field: &str,
    mut between_pages: impl AsyncFnMut(usize) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for page in 0.. {
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(cursor) => format!("{path}{separator}cursor={cursor}"),
            None => path.to_owned(),
        };
        let (status, body) = pipeline.query(&url).await?;
        anyhow::ensure!(status == 200, "{url} answered {status}: {body}");
        items.extend(body[field].as_array().cloned().unwrap_or_default());
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        between_pages(page).await?;
    }
    Ok(items)
}

fn pageview(session: Uuid, second: u32) -> Value {
    json!({"session_id": session, "category": "page interaction", "name": "pageview",
           "data": {"host": "example.org", "path": format!("/{second}")},
           "timestamp": format!("2021-01-01T10:{:02}:{:02}Z", second / 60, second % 60)})
}

async fn wait_for_events(pipeline: &Pipeline, session: Uuid, count: usize) -> anyhow::Result<()> {
    eventually(DEADLINE, || async {
        let (_, body) = pipeline
            .query(&format!("/v1/events?session_id={session}&limit=1000"))
            .await?;
        let found = body["events"].as_array().map_or(0, Vec::len);
        Ok(if found == count {
            Ok(())
        } else {
            Err(format!("{found} of {count} events stored: {body}"))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_pages_never_skip_or_repeat_while_events_arrive() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let session = Uuid::new_v4();
    for second in 0..30 {
        let (status, body) = pipeline
            .post_to("/v1/events", &pageview(session, second * 2))
            .await?;
        assert_eq!(status, 202, "{body}");
    }
    wait_for_events(&pipeline, session, 30).await?;

    // Page through 7 at a time while new events arrive between pages, both
    // before and after the cursor in time.
    let mut next_second = 1;
    let listed = all_pages(
        &pipeline,
        &format!("/v1/events?session_id={session}&limit=7"),
        "events",
        async |_page| {
            for _ in 0..2 {
                let (status, _) = pipeline
                    .post_to("/v1/events", &pageview(session, next_second))
                    .await?;
                anyhow::ensure!(status == 202);
                next_second += 2;
            }
            Ok(())
        },
    )
    .await?;
    let ids: Vec<&str> = listed.iter().filter_map(|e| e["id"].as_str()).collect();
    let unique: HashSet<&str> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "an event was listed twice");
    let order: Vec<(String, &str)> = listed
        .iter()
        .map(|e| {
            (
                e["occurred_at"].as_str().unwrap_or_default().to_owned(),
                e["id"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(order, sorted, "pages are in (occurred_at, id) order");
    // Every event stored before paging began is listed.
    let paths: HashSet<String> = listed
        .iter()
        .filter_map(|e| e["data"]["path"].as_str().map(str::to_owned))
        .collect();
    for second in 0..30 {
        assert!(
            paths.contains(&format!("/{}", second * 2)),
            "/{} skipped",
            second * 2
        );
    }

    // By category and name within a time range: the first minute only.
    let (status, body) = pipeline
        .query("/v1/events?category=page%20interaction&name=pageview&from=2021-01-01T10:00:00Z&to=2021-01-01T10:01:00Z&limit=1000")
        .await?;
    assert_eq!(status, 200, "{body}");
    let listed: Vec<Value> = body["events"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["session_id"] == json!(session.to_string()))
        .collect();
    assert!(
        listed.iter().all(|e| e["occurred_at"]
            .as_str()
            .is_some_and(|t| t.starts_with("2021-01-01T10:00:"))),
        "only the first minute is listed"
    );
    // The originals sit on even seconds; the ones posted while paging, on odd.
    let originals = listed
        .iter()
        .filter(|e| {
            e["data"]["path"]
                .as_str()
                .and_then(|p| p.trim_start_matches('/').parse::<u32>().ok())
                .is_some_and(|second| second % 2 == 0)
        })
        .count();
    assert_eq!(originals, 30, "every original event is in the first minute");
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
