//! Idempotent ingest on the local default, through the binary: producers
//! that retry every request (twice, a tenth of them three times, copies of
//! one request sometimes in flight together) are counted once per
//! `Idempotency-Key`, also when a processor is killed with SIGKILL in the
//! middle, and when the whole process is, and every request is sent again
//! after the restart.

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use eventide::wait::eventually;
use futures::StreamExt;
use serde_json::{Value, json};
use support::{DEADLINE, Eventide};

/// Requests per test, each sent two or three times.
const REQUESTS: usize = 10_000;
/// Counters the requests spread over.
const COUNTERS: usize = 50;
/// Sends in flight at once.
const CONCURRENCY: usize = 32;

/// One producer request: a counter, an amount and the key every copy carries.
#[derive(Debug, Clone)]
struct Request {
    counter: String,
    value: i64,
    key: String,
    copies: usize,
}

fn requests(run: &str) -> Vec<Request> {
    let counters: Vec<String> = (0..COUNTERS)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    (0..REQUESTS)
        .map(|n| Request {
            counter: counters[n % COUNTERS].clone(),
            value: 1 + i64::try_from(n * 7 % 5).unwrap_or(0),
            key: format!("{run}-request-{n}"),
            copies: if n % 10 == 0 { 3 } else { 2 },
        })
        .collect()
}

/// Every copy of every request in the order they are sent: a third of the
/// second copies right behind their first (in flight together), the rest
/// after all first copies, in reverse, then the third copies.
fn schedule(requests: &[Request]) -> Vec<usize> {
    let mut order = Vec::new();
    let mut later = Vec::new();
    for (n, request) in requests.iter().enumerate() {
        order.push(n);
        if n % 3 == 0 {
            order.push(n);
        } else {
            later.push(n);
        }
        if request.copies == 3 {
            later.insert(0, n);
        }
    }
    order.extend(later.into_iter().rev());
    order
}

/// How one copy ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Sent {
    /// `202` with the record's id.
    Accepted(String),
    /// Ingest is gone (killed), or the test stopped sending.
    Unsent,
}

/// Sends one copy until ingest accepts it: a `503` or `429` is retried with
/// the same key, as every client library does.
async fn send(http: &reqwest::Client, ingest: &str, request: &Request, stop: &AtomicBool) -> Sent {
    loop {
        if stop.load(Ordering::Relaxed) {
            return Sent::Unsent;
        }
        let answer = http
            .post(format!("{ingest}/v1/increment"))
            .bearer_auth("dev-producer")
            .header("Idempotency-Key", &request.key)
            .json(&json!({ "key": request.counter, "value": request.value }))
            .send()
            .await;
        let response = match answer {
            Ok(response) => response,
            Err(err) if err.is_connect() => return Sent::Unsent,
            // Cut off mid-answer (the process died): it may have landed.
            Err(_) => return Sent::Unsent,
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        match status {
            202 => {
                let id = body["ids"][0].as_str().unwrap_or_default().to_owned();
                return Sent::Accepted(id);
            }
            429 | 503 => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            other => panic!("request {} answered {other}: {body}", request.key),
        }
    }
}

/// Sends every copy of `requests`; the ids ingest answered, by request.
async fn send_all(
    http: &reqwest::Client,
    ingest: &str,
    requests: &[Request],
    accepted: &AtomicUsize,
    stop: &AtomicBool,
) -> HashMap<usize, Vec<String>> {
    let answers: Vec<(usize, Sent)> = futures::stream::iter(schedule(requests))
        .map(|n| async move {
            let sent = send(http, ingest, &requests[n], stop).await;
            if matches!(sent, Sent::Accepted(_)) {
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            (n, sent)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    let mut ids: HashMap<usize, Vec<String>> = HashMap::new();
    for (n, sent) in answers {
        if let Sent::Accepted(id) = sent {
            ids.entry(n).or_default().push(id);
        }
    }
    ids
}

/// Every copy of a request was answered with one id: the key's.
fn assert_one_id_per_key(requests: &[Request], ids: &HashMap<usize, Vec<String>>) {
    for (n, answered) in ids {
        assert!(
            answered.windows(2).all(|pair| pair[0] == pair[1]),
            "request {} got several ids: {answered:?}",
            requests[*n].key
        );
    }
}

/// Sends one last keyed increment of 1 to every counter and waits until
/// each total is exactly the requests' sum plus that 1: the last increment
/// counted means every earlier record of its counter (earlier offsets of
/// the same partition) is applied, so a total past the sum is a double
/// count, not a race.
async fn assert_totals_exact(
    http: &reqwest::Client,
    eventide: &Eventide,
    requests: &[Request],
    deadline: std::time::Duration,
) {
    let mut expected: HashMap<String, i64> = HashMap::new();
    for request in requests {
        *expected.entry(request.counter.clone()).or_default() += request.value;
    }
    let never = AtomicBool::new(false);
    for (counter, total) in &mut expected {
        let last = Request {
            counter: counter.clone(),
            value: 1,
            key: format!("last-{counter}"),
            copies: 1,
        };
        assert!(matches!(
            send(http, &eventide.ingest, &last, &never).await,
            Sent::Accepted(_)
        ));
        *total += 1;
    }
    let expected = &expected;
    eventually(deadline, || async move {
        let mut wrong = Vec::new();
        for (counter, want) in expected {
            let (_, body) = eventide.counter(http, counter).await;
            let total = body["value"].as_i64().unwrap_or_default();
            if total != *want {
                wrong.push(format!("{counter}: {total}, want {want}"));
            }
        }
        Ok(if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{} counters off: {wrong:?}", wrong.len()))
        })
    })
    .await
    .unwrap_or_else(|err| {
        let output = eventide.output();
        let tail: Vec<&str> = output.lines().rev().take(40).collect();
        panic!(
            "every counter counts each request once: {err}\nlast log lines (newest first):\n{}",
            tail.join("\n")
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_sent_two_or_three_times_counts_once() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let eventide = Eventide::start(data_dir.path(), &[]);
    eventide.wait_healthy(&http).await;
    let requests = requests("a");
    let accepted = AtomicUsize::new(0);
    let ids = send_all(
        &http,
        &eventide.ingest,
        &requests,
        &accepted,
        &AtomicBool::new(false),
    )
    .await;
    let copies: usize = requests.iter().map(|r| r.copies).sum();
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        copies,
        "every copy accepted"
    );
    assert_eq!(ids.len(), REQUESTS);
    assert_one_id_per_key(&requests, &ids);
    assert_totals_exact(&http, &eventide, &requests, DEADLINE).await;
    // Every copy past the first was written and then dropped by the
    // processor (the all-in-one's metrics are served by each service).
    let metrics = http
        .get(format!("{}/metrics", eventide.ingest))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics text");
    let dropped: f64 = metrics
        .lines()
        .find(|line| {
            line.starts_with("eventide_processor_duplicates_total")
                && line.contains("topic=\"increments\"")
        })
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_default();
    #[expect(clippy::cast_precision_loss, reason = "small counts")]
    let retries = (copies - REQUESTS) as f64;
    assert_eq!(dropped, retries, "retries dropped by the processor");
    assert!(eventide.terminate().await.success());
}

/// Waits until `process` logged that the group gave it partitions.
async fn assigned(process: &Eventide) {
    eventually(DEADLINE, || async {
        Ok(if process.output().contains("partitions assigned") {
            Ok(())
        } else {
            Err("no partitions assigned yet".to_owned())
        })
    })
    .await
    .expect("the second processor joins the group");
}

/// Waits until `count` copies are accepted.
async fn accepted_at_least(accepted: &AtomicUsize, count: usize) {
    eventually(DEADLINE, || async {
        let now = accepted.load(Ordering::Relaxed);
        Ok(if now >= count {
            Ok(())
        } else {
            Err(format!("{now} of {count} accepted"))
        })
    })
    .await
    .expect("the load runs");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_count_once_across_a_killed_processor_and_a_killed_process() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let eventide = Eventide::start(data_dir.path(), &[]);
    eventide.wait_healthy(&http).await;
    // A second processor on the same store and group takes half the
    // partitions; it is killed under load and the first takes them back.
    let second = Eventide::start_processor(data_dir.path(), &eventide.broker);
    assigned(&second).await;

    let requests = Arc::new(requests("b"));
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (http, ingest) = (http.clone(), eventide.ingest.clone());
        let (requests, accepted, stop) = (
            Arc::clone(&requests),
            Arc::clone(&accepted),
            Arc::clone(&stop),
        );
        tokio::spawn(async move { send_all(&http, &ingest, &requests, &accepted, &stop).await })
    };
    accepted_at_least(&accepted, 3_000).await;
    let killed = second.kill().await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9)
    );
    accepted_at_least(&accepted, 8_000).await;
    let killed = eventide.kill().await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&killed),
        Some(9)
    );
    stop.store(true, Ordering::Relaxed);
    let before = load.await.expect("the load ends");
    let copies: usize = requests.iter().map(|r| r.copies).sum();
    let sent_before = accepted.load(Ordering::Relaxed);
    assert!(
        sent_before < copies,
        "the kill came before the load ended ({sent_before} of {copies})"
    );

    // The restarted process joins a consumer group of its own. The store,
    // not Kafka, decides where each partition resumes (its checkpoints, and
    // the dedup keys remembered below them), so a fresh group exercises the
    // same recovery. Rejoining the old group instead meets tansu 0.6's group
    // coordinator with the two killed members still in it: a CI run saw the
    // restarted processor assigned, revoked 3 s later, and never assigned
    // again within two minutes (README, Assumptions) — a broker limitation,
    // not what this test is about.
    let eventide = Eventide::start(
        data_dir.path(),
        &[("EVENTIDE_GROUP_ID", "eventide-processor-after-restart")],
    );
    eventide.wait_healthy(&http).await;
    let after = send_all(
        &http,
        &eventide.ingest,
        &requests,
        &AtomicUsize::new(0),
        &AtomicBool::new(false),
    )
    .await;
    assert_eq!(
        after.len(),
        REQUESTS,
        "every request accepted after the restart"
    );
    let mut ids = before;
    for (n, answered) in after {
        ids.entry(n).or_default().extend(answered);
    }
    assert_one_id_per_key(&requests, &ids);
    assert_totals_exact(&http, &eventide, &requests, 2 * DEADLINE).await;
    println!(
        "{sent_before} copies accepted before the kills, {} requests resent after",
        REQUESTS
    );
    assert!(eventide.terminate().await.success());
}
