//! Listing scenarios over real HTTP on events that went through ingest and
//! the processor, shared by every store backend: SQLite always
//! (`tests/query.rs`), ScyllaDB where Docker exists (`tests/scylla.rs`).

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use crate::{Options, Pipeline, eventually};

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

/// Events of one session paged 7 at a time while new ones arrive between
/// pages: none repeated, none skipped, in `(occurred_at, id)` order; then a
/// category + name listing within one minute.
///
/// # Errors
///
/// If the pipeline fails or a listing is wrong.
pub async fn event_pages_never_skip_or_repeat_while_events_arrive(
    options: Options,
) -> anyhow::Result<()> {
    let pipeline = Pipeline::start(options).await?;
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
