//! The event store and the error log end to end: events posted to ingest
//! are stored once each with their day, counted per type (unknown types
//! flagged), and refused requests and dead letters land in the error log.

use std::time::Duration;

use serde_json::json;
use testcontainers_tests::{Options, Pipeline};
use uuid::Uuid;

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
        (format!("SELECT COUNT(*) FROM events WHERE session_id = '{session}'"), 3),
        (format!("SELECT COUNT(*) FROM events WHERE session_id = '{session}' AND day = '2021-01-01'"), 2),
        ("SELECT COALESCE(SUM(events), 0) FROM event_type_counts WHERE name = 'pageview' AND known_type = 1".to_owned(), 2),
        ("SELECT COALESCE(SUM(events), 0) FROM event_type_counts WHERE name = 'scroll' AND known_type = 0".to_owned(), 1),
        ("SELECT COUNT(*) FROM errors WHERE kind = 'reject' AND source = '/v1/events' AND status = 400".to_owned(), 1),
    ];
    pipeline
        .wait_for_store(&expected, Duration::from_secs(60))
        .await?;

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
        (Some(2), Some(true)),
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
