//! Link analytics across a crash, through the binary: clicks with addresses
//! stream in (each with an `idempotency_key`), the whole all-in-one is
//! killed with SIGKILL mid-stream, restarted, and every batch is sent again.
//! Every count comes back exact, and unique visitors equal the estimate of
//! a sketch of exactly the visitors sent: the replay changed no register.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use eventide::wait::eventually;
use futures::StreamExt;
use serde_json::{Value, json};
use support::{DEADLINE, Eventide};

/// Distinct visitors; each clicks [`CLICKS_EACH`] times.
const VISITORS: usize = 2_000;
const CLICKS_EACH: usize = 3;
/// Clicks per batch request.
const BATCH: usize = 200;
const CODE: &str = "crash-link";
const AGENT: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0";

fn address(visitor: usize) -> String {
    format!("10.9.{}.{}", visitor / 256, visitor % 256)
}

/// Every click as a batch item, visitors' clicks interleaved.
fn batches() -> Vec<Value> {
    let items: Vec<Value> = (0..VISITORS * CLICKS_EACH)
        .map(|n| {
            let visitor = n % VISITORS;
            let mut item = json!({"type": "redirect", "short_code": CODE,
                "full_url": "https://shop.example/?utm_source=crash", "client_id": 3,
                "user_agent": AGENT, "ip": address(visitor),
                "idempotency_key": format!("crash-click-{n}")});
            if n % 2 == 0 {
                item["referrer"] = json!("https://www.google.com/search?q=x");
            }
            item
        })
        .collect();
    items.chunks(BATCH).map(|chunk| json!(chunk)).collect()
}

/// Sends every batch, 4 at a time, until each is accepted or `stop`.
async fn send_all(
    http: &reqwest::Client,
    ingest: &str,
    batches: &[Value],
    accepted: &AtomicUsize,
    stop: &AtomicBool,
) {
    futures::stream::iter(batches)
        .for_each_concurrent(4, |batch| async move {
            while !stop.load(Ordering::Relaxed) {
                let sent = http
                    .post(format!("{ingest}/v1/batch"))
                    .bearer_auth("dev-producer")
                    .json(batch)
                    .send()
                    .await;
                match sent.map(|response| response.status().as_u16()) {
                    Ok(202) => {
                        accepted.fetch_add(BATCH, Ordering::Relaxed);
                        return;
                    }
                    Ok(429 | 503) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
                    Ok(other) => panic!("a batch answered {other}"),
                    // The process is gone: the batch is sent again after the restart.
                    Err(_) => return,
                }
            }
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_process_leaves_every_count_exact_and_uniques_unchanged() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let eventide = Eventide::start(data_dir.path(), &[]);
    eventide.wait_healthy(&http).await;
    let batches = Arc::new(batches());
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (http, ingest) = (http.clone(), eventide.ingest.clone());
        let (batches, accepted, stop) = (
            Arc::clone(&batches),
            Arc::clone(&accepted),
            Arc::clone(&stop),
        );
        tokio::spawn(async move { send_all(&http, &ingest, &batches, &accepted, &stop).await })
    };
    eventually(DEADLINE, || async {
        let sent = accepted.load(Ordering::Relaxed);
        Ok(if sent >= 2_000 {
            Ok(())
        } else {
            Err(format!("{sent} clicks accepted"))
        })
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    let killed = eventide.kill().await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9)
    );
    stop.store(true, Ordering::Relaxed);
    load.await.expect("the load ends");
    let before = accepted.load(Ordering::Relaxed);
    assert!(
        before < VISITORS * CLICKS_EACH,
        "the kill came mid-stream ({before} accepted)"
    );

    // A fresh consumer group: the store decides where partitions resume
    // (see tests/idempotent_ingest.rs).
    let eventide = Eventide::start(
        data_dir.path(),
        &[("EVENTIDE_GROUP_ID", "eventide-processor-after-crash")],
    );
    eventide.wait_healthy(&http).await;
    send_all(
        &http,
        &eventide.ingest,
        &batches,
        &AtomicUsize::new(0),
        &AtomicBool::new(false),
    )
    .await;

    let clicks = (VISITORS * CLICKS_EACH) as i64;
    let stats = |group_by: &'static str| {
        let (http, query) = (http.clone(), eventide.query.clone());
        async move {
            let body: Value = http
                .get(format!("{query}/v1/links/{CODE}/stats?group_by={group_by}"))
                .bearer_auth("dev-analyst")
                .send()
                .await?
                .json()
                .await?;
            anyhow::Ok(body)
        }
    };
    let channels = eventually(2 * DEADLINE, || async {
        let body = stats("referrer_channel").await?;
        Ok(if body["total_clicks"] == clicks {
            Ok(body)
        } else {
            Err(format!("{} of {clicks} clicks", body["total_clicks"]))
        })
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    let half = clicks / 2;
    assert_eq!(
        channels["group_totals"],
        json!({"search": half, "direct": half}),
        "{channels}"
    );
    let mut sketch = processor::sketch::Sketch::default();
    for visitor in 0..VISITORS {
        sketch.insert(processor::sketch::visitor_hash(
            processor::enrich::DEVELOPMENT_VISITOR_KEY.as_bytes(),
            &address(visitor),
            AGENT,
        ));
    }
    assert_eq!(
        channels["total_unique_visitors"],
        sketch.estimate(),
        "the stored sketch is the sketch of exactly the visitors sent"
    );
    let sources = stats("utm_source").await.expect("stats");
    assert_eq!(
        sources["group_totals"],
        json!({"crash": clicks}),
        "{sources}"
    );
    println!(
        "{before} of {clicks} clicks accepted before the kill; after the restart and a resend: {} clicks, {} unique visitors (exact {VISITORS})",
        channels["total_clicks"], channels["total_unique_visitors"]
    );
    for visitor in [0, VISITORS / 2, VISITORS - 1] {
        assert!(
            !eventide.output().contains(&address(visitor)),
            "an address in the log"
        );
    }
    assert!(eventide.terminate().await.success());
}
