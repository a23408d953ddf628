//! Webhook delivery end to end: app events through ingest, the processor's
//! rules and the notifications topic, to real HTTP receivers started in the
//! test (the notification service cannot run here; a small server stands in).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use processor::webhooks::{self, signature};
use schemas::{DeadLetter, Topic};
use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, eventually};
use tokio_util::sync::CancellationToken;

const DEADLINE: Duration = Duration::from_secs(60);

/// The notify destination's two active secrets, mid-rotation.
const OLD_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const NEW_SECRET: &str = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";

/// One request as a receiver saw it.
#[derive(Debug, Clone)]
struct Call {
    destination: String,
    idempotency_key: String,
    headers: HeaderMap,
    raw: Vec<u8>,
    body: Value,
    at: Instant,
    /// How the receiver answered.
    status: StatusCode,
}

/// How a receiver answers: by destination and body, and how many calls
/// with this idempotency key it saw before.
type Behaviour = dyn Fn(&str, &Value, usize) -> (StatusCode, Duration) + Send + Sync;

#[derive(Clone)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    behaviour: Arc<Behaviour>,
}

impl Receiver {
    /// Serves `POST /{destination}/...` on a free port; returns its base URL.
    async fn start(
        behaviour: impl Fn(&str, &Value, usize) -> (StatusCode, Duration) + Send + Sync + 'static,
    ) -> anyhow::Result<(Self, String)> {
        let receiver = Self {
            calls: Arc::default(),
            behaviour: Arc::new(behaviour),
        };
        let app = Router::new()
            .route("/{destination}/{*rest}", post(record))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        tokio::spawn(async move { axum::serve(listener, app).await });
        Ok((receiver, base))
    }

    fn calls(&self, destination: &str) -> Vec<Call> {
        self.calls
            .lock()
            .map(|calls| {
                calls
                    .iter()
                    .filter(|c| c.destination == destination)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Successful calls of `destination`, in arrival order.
    fn delivered(&self, destination: &str) -> Vec<Call> {
        self.calls(destination)
            .into_iter()
            .filter(|call| call.status.is_success())
            .collect()
    }
}

async fn record(
    State(receiver): State<Receiver>,
    axum::extract::Path((destination, _rest)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let call = Call {
        destination: destination.clone(),
        idempotency_key: header("idempotency-key").unwrap_or_default(),
        headers: headers.clone(),
        raw: body.to_vec(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        at: Instant::now(),
        status: StatusCode::OK,
    };
    let before = receiver.calls.lock().map_or(0, |calls| {
        calls
            .iter()
            .filter(|c| c.destination == destination && c.idempotency_key == call.idempotency_key)
            .count()
    });
    let (status, delay) = (receiver.behaviour)(&destination, &call.body, before);
    if let Ok(mut calls) = receiver.calls.lock() {
        calls.push(Call { status, ..call });
    }
    tokio::time::sleep(delay).await;
    if status == StatusCode::TOO_MANY_REQUESTS {
        // A rate-limited receiver says when to come back: in seconds, or as
        // an HTTP date (whole seconds, so 1 to 2 s from now) for `dated-*`.
        let after = if destination.starts_with("dated") {
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(2))
        } else {
            "1".to_owned()
        };
        return (status, [(axum::http::header::RETRY_AFTER, after)]).into_response();
    }
    status.into_response()
}

/// Fast retries so limits are reached within a test.
fn delivery(destinations_file: Option<PathBuf>, notify_url: Option<String>) -> webhooks::Settings {
    webhooks::Settings {
        notify_url,
        notify_secret: Some(format!("{OLD_SECRET} {NEW_SECRET}")),
        destinations_file,
        retry_initial: Duration::from_millis(20),
        retry_cap: Duration::from_millis(100),
        retry_max_attempts: 4,
        ..webhooks::Settings::default()
    }
}

/// A pipeline whose delivery reads `destinations` (a destinations file's
/// TOML); the directory holding the file lives as long as the pipeline.
async fn with_destinations(destinations: &str) -> anyhow::Result<(Pipeline, tempfile::TempDir)> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("destinations.toml");
    std::fs::write(&file, destinations)?;
    let pipeline = Pipeline::start(Options {
        delivery: Some(delivery(Some(file), None)),
        ..Options::default()
    })
    .await?;
    Ok((pipeline, dir))
}

fn app_event(user: &str, kind: &str, at: &str) -> Value {
    json!({"user_id": user, "device_id": format!("dev-{user}"), "type": kind,
           "training_program_id": "1", "time_stamp": at})
}

async fn post_events(pipeline: &Pipeline, events: &[Value]) -> anyhow::Result<()> {
    for event in events {
        let (status, body) = pipeline.post_to("/v1/event", event).await?;
        anyhow::ensure!(status == 202, "{status}: {body}");
    }
    Ok(())
}

async fn wait_for(
    receiver: &Receiver,
    destination: &str,
    count: usize,
) -> anyhow::Result<Vec<Call>> {
    eventually(DEADLINE, || async {
        let delivered = receiver.delivered(destination);
        Ok(if delivered.len() >= count {
            Ok(delivered)
        } else {
            Err(format!(
                "{destination}: {} of {count} delivered, {} calls",
                delivered.len(),
                receiver.calls(destination).len()
            ))
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn notifications_reach_the_notify_webhook_signed_with_the_reference_fields()
-> anyhow::Result<()> {
    // The notify service fails its first two calls for each notification.
    let (receiver, base) = Receiver::start(|_, _, before| {
        if before < 2 {
            (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO)
        } else {
            (StatusCode::OK, Duration::ZERO)
        }
    })
    .await?;
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        delivery: Some(delivery(None, Some(format!("{base}/notify")))),
        ..Options::default()
    })
    .await?;
    let posted = Instant::now();
    post_events(
        &pipeline,
        &[
            app_event("foo1", "training_program_started", "2021-02-28 16:23:25"),
            app_event("foo1", "training_program_finished", "2021-02-28 16:59:43"),
        ],
    )
    .await?;
    let delivered = wait_for(&receiver, "notify", 1).await?;
    let call = &delivered[0];
    println!(
        "event in -> webhook answered: {:.0} ms (two 503s and retries included)",
        call.at.duration_since(posted).as_secs_f64() * 1e3
    );
    assert_eq!(call.body["rule"], "daily-dose-congratulation");
    assert_eq!(call.body["user_id"], "foo1");
    assert_eq!(call.body["deviceId"], "dev-foo1");
    assert_eq!(call.body["msg"], call.body["message"]);
    assert!(
        call.body["msg"]
            .as_str()
            .is_some_and(|m| m.contains("36 minutes")),
        "{}",
        call.body
    );
    assert_eq!(
        call.body["id"].as_str(),
        Some(call.idempotency_key.as_str())
    );
    // Three calls in all, one id, each signed by the Standard Webhooks
    // scheme with both active secrets, as the reference library verifies.
    let calls = receiver.calls("notify");
    assert_eq!(calls.len(), 3, "{calls:?}");
    for attempt in &calls {
        assert_eq!(attempt.idempotency_key, call.idempotency_key);
        assert_eq!(
            attempt
                .headers
                .get(signature::ID)
                .and_then(|v| v.to_str().ok()),
            Some(call.idempotency_key.as_str())
        );
        assert_eq!(
            attempt
                .headers
                .get("user-agent")
                .and_then(|v| v.to_str().ok()),
            Some(concat!("Eventide/", env!("CARGO_PKG_VERSION")))
        );
        for secret in [OLD_SECRET, NEW_SECRET] {
            standardwebhooks::Webhook::new(secret)?.verify(&attempt.raw, &attempt.headers)?;
        }
    }
    assert_receivers_refuse_forgeries_and_replays(&calls[0])?;
    // The stored notification has the same id.
    let id = call.body["id"].clone();
    eventually(DEADLINE, || async {
        let (_, stored) = pipeline.query("/v1/notifications?user_id=foo1").await?;
        Ok(if stored["notifications"][0]["id"] == id {
            Ok(())
        } else {
            Err(format!("stored: {stored}"))
        })
    })
    .await?;
    Ok(())
}

/// A tampered body, an unknown secret and the same request captured and
/// replayed ten minutes later are each refused by a receiver verifying with
/// the Standard Webhooks reference library.
fn assert_receivers_refuse_forgeries_and_replays(call: &Call) -> anyhow::Result<()> {
    use standardwebhooks::{Webhook, WebhookError};
    let sent: i64 = call
        .headers
        .get(signature::TIMESTAMP)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no timestamp: {:?}", call.headers))?;
    let skew = (chrono::Utc::now().timestamp() - sent).abs();
    assert!(skew <= 60, "timestamp {sent} is {skew} s off");
    let receiver = Webhook::new(NEW_SECRET)?;
    let mut tampered = call.raw.clone();
    tampered.push(b' ');
    assert!(matches!(
        receiver.verify(&tampered, &call.headers),
        Err(WebhookError::InvalidSignature)
    ));
    assert!(matches!(
        Webhook::new("whsec_c2VjcmV0LW5vYm9keS1lbHNlLWhhcy1ibGFo")?
            .verify(&call.raw, &call.headers),
        Err(WebhookError::InvalidSignature)
    ));
    let mut replayed = call.headers.clone();
    replayed.insert(signature::TIMESTAMP, (sent - 600).into());
    assert!(matches!(
        receiver.verify(&call.raw, &replayed),
        Err(WebhookError::TimestampTooOldError)
    ));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_is_down_gets_its_records_dead_lettered_with_the_last_error()
-> anyhow::Result<()> {
    let closed = testcontainers_tests::free_addr()?;
    let (pipeline, _dir) = with_destinations(&format!(
        "[[destination]]\nname = \"gone\"\nurl = \"http://{closed}/hook\"\n"
    ))
    .await?;
    post_events(
        &pipeline,
        &[app_event("lost", "app_launch", "2021-02-28 16:22:52")],
    )
    .await?;
    let letters = pipeline
        .read_topic::<DeadLetter>(Topic::DeadLetters, DEADLINE, |read| {
            read.iter().any(|(_, l)| l.stage == "delivery:gone")
        })
        .await?;
    let letter = letters
        .iter()
        .map(|(_, l)| l)
        .find(|l| l.stage == "delivery:gone")
        .ok_or_else(|| anyhow::anyhow!("no dead letter from delivery: {letters:?}"))?;
    assert!(
        letter.reason.contains("after 4 attempt(s)") && letter.reason.contains("request failed"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.topic, pipeline.names.name(Topic::Events));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_destination_does_not_delay_a_fast_one_and_order_per_user_holds()
-> anyhow::Result<()> {
    let (receiver, base) = Receiver::start(|destination, _, _| match destination {
        "slow" => (StatusCode::OK, Duration::from_secs(2)),
        _ => (StatusCode::OK, Duration::ZERO),
    })
    .await?;
    let (pipeline, _dir) = with_destinations(&format!(
        r#"[[destination]]
name = "fast"
url = "{base}/fast/hook"

[[destination]]
name = "slow"
url = "{base}/slow/hook"

[[destination]]
name = "launches"
url = "{base}/launches/hook"
[destination.filter]
names = ["app_launch"]
"#
    ))
    .await?;
    let mut events = Vec::new();
    for i in 0..20 {
        let kind = if i % 5 == 0 {
            "app_launch"
        } else {
            "screen_viewed"
        };
        events.push(app_event(
            "walker",
            kind,
            &format!("2021-03-01 10:00:{i:02}"),
        ));
    }
    post_events(&pipeline, &events).await?;
    let fast = wait_for(&receiver, "fast", 20).await?;
    let slow_so_far = receiver.delivered("slow").len();
    assert!(
        slow_so_far < 20,
        "the slow destination ({slow_so_far} delivered) kept pace only because it was not slow"
    );
    let times: Vec<&str> = fast
        .iter()
        .filter_map(|c| c.body["occurred_at"].as_str())
        .collect();
    let mut sorted = times.clone();
    sorted.sort_unstable();
    assert_eq!(times, sorted, "one user's records arrive in order");
    let launches = wait_for(&receiver, "launches", 4).await?;
    assert!(
        launches.iter().all(|c| c.body["name"] == "app_launch"),
        "the filter passes only app launches"
    );
    assert_eq!(launches.len(), 4);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_user_does_not_delay_a_healthy_user_in_the_same_partition() -> anyhow::Result<()>
{
    let (receiver, base) = Receiver::start(|_, body, _| {
        if body["user_id"] == "broken" {
            (StatusCode::SERVICE_UNAVAILABLE, Duration::ZERO)
        } else {
            (StatusCode::OK, Duration::ZERO)
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!("[[destination]]\nname = \"hook\"\nurl = \"{base}/hook/in\"\n"),
    )?;
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        delivery: Some(webhooks::Settings {
            // The broken user keeps retrying for the whole test.
            retry_max_attempts: 1_000,
            ..delivery(Some(file), None)
        }),
        ..Options::default()
    })
    .await?;
    let mut events = vec![
        app_event("broken", "app_launch", "2021-03-01 10:00:00"),
        app_event("broken", "screen_viewed", "2021-03-01 10:00:01"),
    ];
    for i in 0..5 {
        events.push(app_event(
            "healthy",
            "screen_viewed",
            &format!("2021-03-01 10:00:1{i}"),
        ));
    }
    post_events(&pipeline, &events).await?;
    let healthy = wait_for(&receiver, "hook", 5).await?;
    assert!(healthy.iter().all(|c| c.body["user_id"] == "healthy"));
    let broken_calls = receiver
        .calls("hook")
        .into_iter()
        .filter(|c| c.body["user_id"] == "broken")
        .collect::<Vec<_>>();
    assert!(!broken_calls.is_empty(), "the broken user was tried");
    let keys: std::collections::HashSet<&str> = broken_calls
        .iter()
        .map(|c| c.idempotency_key.as_str())
        .collect();
    assert_eq!(
        keys.len(),
        1,
        "the broken user's second record waits behind its first"
    );
    Ok(())
}

fn one_destination(dir: &tempfile::TempDir, name: &str, base: &str) -> anyhow::Result<PathBuf> {
    let file = dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!("[[destination]]\nname = \"{name}\"\nurl = \"{base}/{name}/hook\"\n"),
    )?;
    Ok(file)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_with_retry_after_is_retried_no_sooner_than_asked() -> anyhow::Result<()> {
    let (receiver, base) = Receiver::start(|_, _, before| {
        if before == 0 {
            (StatusCode::TOO_MANY_REQUESTS, Duration::ZERO)
        } else {
            (StatusCode::OK, Duration::ZERO)
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let pipeline = Pipeline::start(Options {
        delivery: Some(webhooks::Settings {
            // The receiver's 1 s must win over a backoff of at most 20 ms.
            retry_cap: Duration::from_secs(5),
            ..delivery(Some(one_destination(&dir, "limited", &base)?), None)
        }),
        ..Options::default()
    })
    .await?;
    post_events(
        &pipeline,
        &[app_event("paced", "app_launch", "2021-02-28 16:22:52")],
    )
    .await?;
    let delivered = wait_for(&receiver, "limited", 1).await?;
    let calls = receiver.calls("limited");
    assert_eq!(calls.len(), 2, "one 429, then the delivery: {calls:?}");
    assert_eq!(calls[0].idempotency_key, delivered[0].idempotency_key);
    let waited = calls[1].at.duration_since(calls[0].at);
    assert!(
        waited >= Duration::from_millis(900),
        "retried after {waited:?}, the receiver asked for 1 s"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_4xx_answer_is_dead_lettered_at_once_without_retrying() -> anyhow::Result<()> {
    let (receiver, base) =
        Receiver::start(|_, _, _| (StatusCode::UNPROCESSABLE_ENTITY, Duration::ZERO)).await?;
    let dir = tempfile::tempdir()?;
    let pipeline = Pipeline::start(Options {
        delivery: Some(delivery(
            Some(one_destination(&dir, "strict", &base)?),
            None,
        )),
        ..Options::default()
    })
    .await?;
    post_events(
        &pipeline,
        &[app_event("refused", "app_launch", "2021-02-28 16:22:52")],
    )
    .await?;
    let letters = pipeline
        .read_topic::<DeadLetter>(Topic::DeadLetters, DEADLINE, |read| {
            read.iter().any(|(_, l)| l.stage == "delivery:strict")
        })
        .await?;
    let letter = letters
        .iter()
        .map(|(_, l)| l)
        .find(|l| l.stage == "delivery:strict")
        .ok_or_else(|| anyhow::anyhow!("no dead letter from delivery: {letters:?}"))?;
    assert!(
        letter.reason.contains("after 1 attempt(s)") && letter.reason.contains("422"),
        "{}",
        letter.reason
    );
    assert_eq!(receiver.calls("strict").len(), 1, "a 4xx is not retried");
    Ok(())
}

/// Undecodable records on `events` are dead-lettered by each destination
/// (many in flight at once, each durable before its offset is committed)
/// and never block the records around them, which are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn undecodable_records_are_dead_lettered_per_destination_and_the_rest_delivered()
-> anyhow::Result<()> {
    use std::collections::BTreeSet;

    const CORRUPT: usize = 500;
    let (receiver, base) = Receiver::start(|_, _, _| (StatusCode::OK, Duration::ZERO)).await?;
    let (pipeline, _dir) = with_destinations(&format!(
        "[[destination]]\nname = \"all\"\nurl = \"{base}/all/hook\"\n"
    ))
    .await?;
    post_events(
        &pipeline,
        &[app_event("before", "app_launch", "2021-03-01 10:00:00")],
    )
    .await?;
    let payloads: Vec<Vec<u8>> = (0..CORRUPT)
        .map(|i| format!("corrupt-{i:04}").into_bytes())
        .collect();
    let records: Vec<(String, Vec<u8>)> = payloads
        .iter()
        .enumerate()
        .map(|(i, payload)| (format!("poison-{}", i % 20), payload.clone()))
        .collect();
    pipeline.produce_raw(Topic::Events, &records).await?;
    post_events(
        &pipeline,
        &[app_event("after", "app_launch", "2021-03-01 10:00:01")],
    )
    .await?;

    let delivered = wait_for(&receiver, "all", 2).await?;
    let users: BTreeSet<&str> = delivered
        .iter()
        .filter_map(|c| c.body["user_id"].as_str())
        .collect();
    assert_eq!(users, BTreeSet::from(["after", "before"]), "{delivered:?}");
    let letters = pipeline
        .read_topic::<DeadLetter>(Topic::DeadLetters, DEADLINE, |read| {
            read.iter()
                .filter(|(_, l)| l.stage == "delivery:all")
                .count()
                >= CORRUPT
        })
        .await?;
    let mine: Vec<&DeadLetter> = letters
        .iter()
        .map(|(_, l)| l)
        .filter(|l| l.stage == "delivery:all")
        .collect();
    let positions: BTreeSet<(i32, i64)> = mine.iter().map(|l| (l.partition, l.offset)).collect();
    assert_eq!(
        mine.len(),
        CORRUPT,
        "one dead letter per undecodable record"
    );
    assert_eq!(positions.len(), CORRUPT, "none dead-lettered twice");
    let carried: BTreeSet<&[u8]> = mine.iter().map(|l| l.payload.as_slice()).collect();
    let sent: BTreeSet<&[u8]> = payloads.iter().map(Vec::as_slice).collect();
    assert_eq!(carried, sent, "every payload kept as read");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_json_track_payload_is_delivered_unchanged() -> anyhow::Result<()> {
    let (receiver, base) = Receiver::start(|_, _, _| (StatusCode::OK, Duration::ZERO)).await?;
    let (pipeline, _dir) = with_destinations(&format!(
        r#"[[destination]]
name = "tracked"
url = "{base}/tracked/hook"
"#
    ))
    .await?;
    // The delivery system's own example payload is a string.
    let payloads = [
        json!("some_payload"),
        json!(42),
        json!([1, "two", {"three": 3}]),
        json!({"plan": "pro"}),
    ];
    for payload in &payloads {
        let (status, body) = pipeline
            .post_to(
                "/v1/track",
                &json!({"userId": "tracker", "payload": payload}),
            )
            .await?;
        anyhow::ensure!(status == 202, "{payload}: {status} {body}");
    }
    let (status, body) = pipeline
        .post_to("/v1/track", &json!({"userId": "tracker", "payload": null}))
        .await?;
    assert_eq!(
        (status, &body["error"]["field"]),
        (400, &json!("payload")),
        "{body}"
    );
    let delivered = wait_for(&receiver, "tracked", payloads.len()).await?;
    let data: Vec<&Value> = delivered.iter().map(|call| &call.body["data"]).collect();
    assert_eq!(
        data,
        payloads.iter().collect::<Vec<_>>(),
        "in order, unchanged"
    );
    Ok(())
}

/// Arrival times of `calls`, in seconds from the first.
fn arrivals(calls: &[Call]) -> Vec<f64> {
    let Some(first) = calls.first().map(|c| c.at) else {
        return Vec::new();
    };
    calls
        .iter()
        .map(|c| c.at.duration_since(first).as_secs_f64())
        .collect()
}

/// The most arrivals within any window of `width` seconds.
fn busiest_window(times: &[f64], width: f64) -> usize {
    (0..times.len())
        .map(|i| {
            times[i..]
                .iter()
                .take_while(|t| **t < times[i] + width)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_destination_limited_to_20_per_second_never_exceeds_it() -> anyhow::Result<()> {
    const RECORDS: usize = 300;
    let (receiver, base) = Receiver::start(|_, _, _| (StatusCode::OK, Duration::ZERO)).await?;
    let (pipeline, _dir) = with_destinations(&format!(
        "[[destination]]\nname = \"paced\"\nurl = \"{base}/paced/hook\"\nrate_limit = 20\n"
    ))
    .await?;
    // Many users, so per-user order is not what holds deliveries back; one
    // batch, so the backlog is there before delivery starts, however slow
    // the machine is at posting.
    let items: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let mut item = app_event(
                &format!("user-{}", i % 60),
                "screen_viewed",
                &format!("2021-03-01 10:{:02}:{:02}", i / 60, i % 60),
            );
            item["event_type"] = item["type"].take();
            item["type"] = json!("app");
            item
        })
        .collect();
    let (status, body) = pipeline
        .post_to("/v1/batch", &json!({ "items": items }))
        .await?;
    anyhow::ensure!(status == 202, "{status}: {body}");
    let delivered = eventually(Duration::from_secs(90), || async {
        let delivered = receiver.delivered("paced");
        Ok(if delivered.len() >= RECORDS {
            Ok(delivered)
        } else {
            Err(format!("{} of {RECORDS} delivered", delivered.len()))
        })
    })
    .await?;
    let times = arrivals(&receiver.calls("paced"));
    let busiest = busiest_window(&times, 10.0);
    println!(
        "rate_limit 20/s: {} requests in {:.1} s; busiest 10 s window {busiest}, busiest 1 s window {}",
        times.len(),
        times.last().copied().unwrap_or_default(),
        busiest_window(&times, 1.0)
    );
    // Never over the limit (+10%); and near it, not throttled to a crawl
    // (the floor leaves room for a busy machine waking waiters late).
    assert!(
        (150..=220).contains(&busiest),
        "busiest 10 s window held {busiest} requests; at most 220 (20/s +10%), at least 150"
    );
    assert_eq!(delivered.len(), RECORDS, "each record delivered once");
    Ok(())
}

/// A receiver that answers `429` with an HTTP-date `Retry-After` to a burst
/// slows the whole destination: the retries come paced at half the rate of
/// the burst, not all at once when the date passes, and then everything is
/// delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_429_burst_slows_the_destination_down_and_it_recovers() -> anyhow::Result<()> {
    const RECORDS: usize = 40;
    // Everything in the first second after the first call is refused.
    let first_call: Arc<Mutex<Option<Instant>>> = Arc::default();
    let (receiver, base) = Receiver::start(move |_, _, _| {
        let Ok(mut first) = first_call.lock() else {
            return (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO);
        };
        let first = *first.get_or_insert_with(Instant::now);
        if first.elapsed() < Duration::from_secs(1) {
            (StatusCode::TOO_MANY_REQUESTS, Duration::ZERO)
        } else {
            (StatusCode::OK, Duration::ZERO)
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        delivery: Some(webhooks::Settings {
            retry_cap: Duration::from_secs(5),
            ..delivery(Some(one_destination(&dir, "dated-limited", &base)?), None)
        }),
        ..Options::default()
    })
    .await?;
    // One batch, so the first attempts go out together.
    let items: Vec<Value> = (0..RECORDS)
        .map(|i| {
            let mut item = app_event(&format!("user-{i}"), "app_launch", "2021-03-01 10:00:00");
            item["event_type"] = json!("app_launch");
            item["type"] = json!("app");
            item
        })
        .collect();
    let (status, body) = pipeline
        .post_to("/v1/batch", &json!({ "items": items }))
        .await?;
    anyhow::ensure!(status == 200 || status == 202, "{status}: {body}");
    let delivered = eventually(DEADLINE, || async {
        let delivered = receiver.delivered("dated-limited");
        Ok(if delivered.len() >= RECORDS {
            Ok(delivered)
        } else {
            Err(format!(
                "{} of {RECORDS} delivered, {} calls",
                delivered.len(),
                receiver.calls("dated-limited").len()
            ))
        })
    })
    .await?;
    assert_eq!(delivered.len(), RECORDS);
    let calls = receiver.calls("dated-limited");
    let first_refusal = calls[0].at;
    let retries: Vec<&Call> = calls.iter().filter(|c| c.at >= delivered[0].at).collect();
    let waited = delivered[0].at.duration_since(first_refusal);
    assert!(
        waited >= Duration::from_millis(900),
        "the first retry came {waited:?} after a Retry-After of 1 to 2 s"
    );
    let times: Vec<f64> = retries
        .iter()
        .map(|c| c.at.duration_since(delivered[0].at).as_secs_f64())
        .collect();
    let burst = busiest_window(&times, 0.2);
    println!(
        "429 burst of {}: retries over {:.2} s, busiest 200 ms window {burst}",
        calls.len() - retries.len(),
        times.last().copied().unwrap_or_default()
    );
    // Unpaced, all 40 retries would come at once when the date passes;
    // paced at 20/s rising by half per quiet second, at most ~10 do.
    assert!(
        burst <= 15,
        "{burst} retries within 200 ms: the destination was not slowed down"
    );
    Ok(())
}

/// One delivery process of its own (a replica), stopped gracefully by
/// cancelling its token.
struct Replica {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), webhooks::DeliveryError>>,
}

impl Replica {
    fn start(pipeline: &Pipeline, settings: &webhooks::Settings) -> Self {
        let config = webhooks::DeliveryConfig {
            settings: settings.clone(),
            kafka: pipeline.kafka(),
            codec: pipeline.codec.clone(),
        };
        let stop = CancellationToken::new();
        let task = tokio::spawn(webhooks::run(config, stop.clone()));
        Self { stop, task }
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        self.task.await??;
        Ok(())
    }
}

async fn set_paused(pipeline: &Pipeline, name: &str, paused: bool) -> anyhow::Result<()> {
    let state = schemas::DestinationState {
        destination: name.to_owned(),
        paused,
        changed_at: schemas::time::now_micros(),
        changed_by: "test".into(),
        reason: "receiver maintenance".into(),
    };
    webhooks::control::publish(&pipeline.kafka(), &pipeline.codec, &state).await?;
    Ok(())
}

/// Each user's `occurred_at` values in arrival order.
fn per_user_times(calls: &[Call]) -> HashMap<String, Vec<String>> {
    let mut times: HashMap<String, Vec<String>> = HashMap::new();
    for call in calls {
        times
            .entry(call.body["user_id"].as_str().unwrap_or_default().to_owned())
            .or_default()
            .push(
                call.body["occurred_at"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            );
    }
    times
}

/// A paused destination receives nothing — while two delivery replicas
/// run, and after both restart — while another destination gets every
/// record; resumed, it receives every record once, each user's in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paused_destination_holds_everything_until_resumed_across_a_restart() -> anyhow::Result<()>
{
    const PER_ROUND: usize = 40;
    let (receiver, base) = Receiver::start(|_, _, _| (StatusCode::OK, Duration::ZERO)).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!(
            "[[destination]]\nname = \"held\"\nurl = \"{base}/held/hook\"\n\n\
             [[destination]]\nname = \"free\"\nurl = \"{base}/free/hook\"\n"
        ),
    )?;
    let pipeline = Pipeline::start(Options {
        partitions: 2,
        ..Options::default()
    })
    .await?;
    let settings = delivery(Some(file), None);
    set_paused(&pipeline, "held", true).await?;
    let round = |first: usize| -> Vec<Value> {
        (first..first + PER_ROUND)
            .map(|i| {
                app_event(
                    &format!("user-{}", i % 8),
                    "screen_viewed",
                    &format!("2021-03-01 10:{:02}:{:02}", i / 60, i % 60),
                )
            })
            .collect()
    };

    // Two replicas share the partitions; both hold.
    let replicas = [
        Replica::start(&pipeline, &settings),
        Replica::start(&pipeline, &settings),
    ];
    post_events(&pipeline, &round(0)).await?;
    wait_for(&receiver, "free", PER_ROUND).await?;
    assert!(
        receiver.calls("held").is_empty(),
        "a paused destination was called"
    );

    // Both restart; the pause holds.
    for replica in replicas {
        replica.stop().await?;
    }
    let replicas = [
        Replica::start(&pipeline, &settings),
        Replica::start(&pipeline, &settings),
    ];
    post_events(&pipeline, &round(PER_ROUND)).await?;
    wait_for(&receiver, "free", 2 * PER_ROUND).await?;
    assert!(
        receiver.calls("held").is_empty(),
        "a paused destination was called after a restart"
    );

    // Resumed: everything, once, each user's in order.
    set_paused(&pipeline, "held", false).await?;
    let held = wait_for(&receiver, "held", 2 * PER_ROUND).await?;
    let ids: std::collections::HashSet<&str> = held
        .iter()
        .filter_map(|c| c.headers.get(signature::ID)?.to_str().ok())
        .collect();
    assert_eq!(ids.len(), 2 * PER_ROUND, "each record once, by webhook-id");
    for (user, times) in per_user_times(&held) {
        let mut sorted = times.clone();
        sorted.sort_unstable();
        assert_eq!(times, sorted, "{user}'s records out of order");
    }
    assert_eq!(receiver.calls("held").len(), 2 * PER_ROUND, "nothing twice");
    for replica in replicas {
        replica.stop().await?;
    }
    Ok(())
}

/// A destination failing for longer than its `auto_pause_after` pauses
/// itself — recorded on the states topic and listed in `GET /v1/errors` —
/// holds its records instead of dead-lettering them, and delivers them all
/// once resumed after the receiver recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_destination_failing_too_long_pauses_itself_and_loses_nothing() -> anyhow::Result<()> {
    const RECORDS: usize = 10;
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answer = healthy.clone();
    let (receiver, base) = Receiver::start(move |_, _, _| {
        if answer.load(std::sync::atomic::Ordering::SeqCst) {
            (StatusCode::OK, Duration::ZERO)
        } else {
            (StatusCode::BAD_GATEWAY, Duration::ZERO)
        }
    })
    .await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!(
            "[[destination]]\nname = \"flaky\"\nurl = \"{base}/flaky/hook\"\nauto_pause_after = \"2s\"\n"
        ),
    )?;
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        delivery: Some(webhooks::Settings {
            // Records retry for longer than auto_pause_after.
            retry_max_attempts: 1_000,
            ..delivery(Some(file), None)
        }),
        ..Options::default()
    })
    .await?;
    let events: Vec<Value> = (0..RECORDS)
        .map(|i| {
            app_event(
                &format!("user-{}", i % 3),
                "screen_viewed",
                &format!("2021-03-01 10:00:{i:02}"),
            )
        })
        .collect();
    // Records keep coming, so the destination keeps failing for 2 s.
    for event in &events {
        post_events(&pipeline, std::slice::from_ref(event)).await?;
        tokio::task::yield_now().await;
    }
    let errors = eventually(DEADLINE, || async {
        let (_, body) = pipeline.query("/v1/errors?kind=dead_letter").await?;
        let rows = body["errors"].as_array().cloned().unwrap_or_default();
        Ok(
            match rows.iter().find(|row| {
                row["source"]
                    .as_str()
                    .is_some_and(|source| source.ends_with("(auto-pause:flaky)"))
            }) {
                Some(row) => Ok(row.clone()),
                None => Err(format!("no auto-pause listed: {rows:?}")),
            },
        )
    })
    .await?;
    assert!(
        errors["reason"]
            .as_str()
            .is_some_and(|r| r.contains("auto_pause_after 2s") && r.contains("502")),
        "{errors}"
    );
    let stop = CancellationToken::new();
    let states =
        webhooks::control::follow(&pipeline.kafka(), pipeline.codec.clone(), stop.clone()).await?;
    let state = states.watch("flaky").borrow().clone();
    stop.cancel();
    let state = state.ok_or_else(|| anyhow::anyhow!("no state for flaky"))?;
    assert!(
        state.paused && state.changed_by == "auto-pause",
        "{state:?}"
    );

    // Nothing was dead-lettered (a dead-lettered record is finished and
    // never sent again): the receiver recovers, the operator resumes, and
    // every record arrives.
    healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    set_paused(&pipeline, "flaky", false).await?;
    let delivered = wait_for(&receiver, "flaky", RECORDS).await?;
    let ids: std::collections::HashSet<String> = delivered
        .iter()
        .map(|c| c.idempotency_key.clone())
        .collect();
    assert_eq!(ids.len(), RECORDS, "{delivered:?}");
    Ok(())
}

/// Dead letters of `stage` on the topic, once there are at least `count`.
async fn letters_of(
    pipeline: &Pipeline,
    stage: &str,
    count: usize,
) -> anyhow::Result<Vec<DeadLetter>> {
    let read = pipeline
        .read_topic::<DeadLetter>(Topic::DeadLetters, DEADLINE, |read| {
            read.iter().filter(|(_, l)| l.stage == stage).count() >= count
        })
        .await?;
    let mine: Vec<DeadLetter> = read
        .into_iter()
        .map(|(_, l)| l)
        .filter(|l| l.stage == stage)
        .collect();
    anyhow::ensure!(
        mine.len() >= count,
        "{} of {count} dead letters of {stage}",
        mine.len()
    );
    Ok(mine)
}

async fn replay_destination(
    pipeline: &Pipeline,
    name: &str,
) -> anyhow::Result<(uuid::Uuid, processor::replay::Progress)> {
    let selection = processor::replay::Selection {
        target: processor::replay::Target::Destination(name.to_owned()),
        since: None,
        until: None,
        user_id: None,
    };
    Ok(processor::replay::run(
        &pipeline.kafka(),
        &pipeline.codec,
        &selection,
        "test",
        false,
        |_| {},
        |_| {},
    )
    .await?)
}

/// A destination that was down has its dead letters replayed after it
/// recovers: it receives every record exactly once (by `webhook-id`), each
/// user's in order, marked with the run — although each record was
/// dead-lettered twice (a replay while it was still down failed again) —
/// while the other destination and the aggregates saw each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_down_destinations_dead_letters_are_replayed_to_it_alone_once_each() -> anyhow::Result<()>
{
    const RECORDS: usize = 60;
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answer = up.clone();
    let (receiver, base) = Receiver::start(move |destination, _, _| {
        // Broken, not overloaded: a 503 would also slow the destination.
        if destination == "down" && !answer.load(std::sync::atomic::Ordering::SeqCst) {
            (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)
        } else {
            (StatusCode::OK, Duration::ZERO)
        }
    })
    .await?;
    let (pipeline, _dir) = with_destinations(&format!(
        "[[destination]]\nname = \"down\"\nurl = \"{base}/down/hook\"\n\n\
         [[destination]]\nname = \"other\"\nurl = \"{base}/other/hook\"\n"
    ))
    .await?;
    let events: Vec<Value> = (0..RECORDS)
        .map(|i| {
            app_event(
                &format!("user-{}", i % 6),
                "replayed_view",
                &format!("2021-03-01 10:{:02}:{:02}", i / 60, i % 60),
            )
        })
        .collect();
    post_events(&pipeline, &events).await?;
    letters_of(&pipeline, "delivery:down", RECORDS).await?;

    // Replayed while still down: each fails again, a second dead letter.
    let (first_run, first) = replay_destination(&pipeline, "down").await?;
    assert_eq!((first.replayed, first.repeats), (RECORDS as u64, 0));
    letters_of(&pipeline, "delivery:down", 2 * RECORDS).await?;
    // The error listing tells the second failures by their run.
    let runs = eventually(DEADLINE, || async {
        let (_, body) = pipeline
            .query("/v1/errors?kind=dead_letter&limit=1000")
            .await?;
        let rows = body["errors"].as_array().cloned().unwrap_or_default();
        let runs: Vec<Value> = rows
            .iter()
            .filter(|row| {
                row["source"]
                    .as_str()
                    .is_some_and(|s| s.ends_with("(delivery:down)"))
            })
            .map(|row| row["replay_run"].clone())
            .collect();
        Ok(if runs.len() >= 2 * RECORDS {
            Ok(runs)
        } else {
            Err(format!("{} listed", runs.len()))
        })
    })
    .await?;
    let replayed = runs
        .iter()
        .filter(|run| run.as_str() == Some(first_run.to_string().as_str()))
        .count();
    let first_failures = runs.iter().filter(|run| run.is_null()).count();
    assert_eq!((replayed, first_failures), (RECORDS, RECORDS), "{runs:?}");

    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let started = Instant::now();
    let (run, done) = replay_destination(&pipeline, "down").await?;
    assert_eq!(
        (done.replayed, done.repeats),
        (RECORDS as u64, RECORDS as u64),
        "each record once per run, though dead-lettered twice"
    );
    let delivered = wait_for(&receiver, "down", RECORDS).await?;
    println!(
        "replay: {RECORDS} records read back and delivered in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let ids: std::collections::HashSet<&str> = delivered
        .iter()
        .filter_map(|c| c.headers.get(signature::ID)?.to_str().ok())
        .collect();
    assert_eq!(ids.len(), RECORDS, "every record, once, by webhook-id");
    assert_eq!(delivered.len(), RECORDS, "nothing delivered twice");
    assert!(
        delivered.iter().all(|c| c
            .headers
            .get(webhooks::REPLAY_HEADER)
            .and_then(|v| v.to_str().ok())
            == Some(run.to_string().as_str())),
        "each marked with the run"
    );
    for (user, times) in per_user_times(&delivered) {
        let mut sorted = times.clone();
        sorted.sort_unstable();
        assert_eq!(times, sorted, "{user}'s records out of order");
    }

    // The other destination and the aggregates: each record once.
    let other = wait_for(&receiver, "other", RECORDS).await?;
    assert_eq!(receiver.calls("other").len(), RECORDS, "{other:?}");
    let counted = eventually(DEADLINE, || async {
        let (_, types) = pipeline.query("/v1/event-types").await?;
        let counted = types["event_types"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == "replayed_view"))
            .and_then(|t| t["events"].as_u64())
            .unwrap_or_default();
        Ok(if counted >= RECORDS as u64 {
            Ok(counted)
        } else {
            Err(format!("{counted} counted: {types}"))
        })
    })
    .await?;
    assert_eq!(counted, RECORDS as u64, "the aggregates counted each once");
    Ok(())
}

/// A record naming destinations reaches only those; one naming none
/// reaches every destination; a key limited to some destinations is
/// answered 403 (field and rule named) when a record names another.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_record_naming_destinations_reaches_only_those() -> anyhow::Result<()> {
    use schemas::keys::{ApiKeys, Auth, DEV_ANALYST_KEY, DEV_PRODUCER_KEY, hash_key};
    let (receiver, base) = Receiver::start(|_, _, _| (StatusCode::OK, Duration::ZERO)).await?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!(
            "[[destination]]\nname = \"crm\"\nurl = \"{base}/crm/hook\"\n\n\
             [[destination]]\nname = \"analytics\"\nurl = \"{base}/analytics/hook\"\n"
        ),
    )?;
    let keys = ApiKeys::from_toml(&format!(
        "[[keys]]\nid = \"producer\"\napplication = \"dev\"\nsha256 = \"{}\"\nscopes = [\"produce\"]\n\n\
         [[keys]]\nid = \"analyst\"\napplication = \"dev\"\nsha256 = \"{}\"\nscopes = [\"query\"]\n\n\
         [[keys]]\nid = \"crm-only\"\napplication = \"crm-app\"\nsha256 = \"{}\"\nscopes = [\"produce\"]\ndestinations = [\"crm\"]\n",
        hash_key(DEV_PRODUCER_KEY),
        hash_key(DEV_ANALYST_KEY),
        hash_key("crm-only-key"),
    ))?;
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        auth: Auth::Keys(keys),
        delivery: Some(delivery(Some(file), None)),
        ..Options::default()
    })
    .await?;
    let track = |payload: &str, destinations: Option<Value>| {
        let mut body = json!({"userId": "router", "payload": payload});
        if let Some(named) = destinations {
            body["destinations"] = named;
        }
        body
    };
    for (body, path) in [
        (track("crm only", Some(json!(["crm"]))), "/v1/track"),
        (
            track("analytics only", Some(json!(["analytics"]))),
            "/v1/track",
        ),
        (
            json!({"items": [{"type": "track", "userId": "router", "payload": "batch crm",
                              "destinations": ["crm"]}]}),
            "/v1/batch",
        ),
        (track("everyone", None), "/v1/track"),
    ] {
        let (status, answer) = pipeline.post_to(path, &body).await?;
        anyhow::ensure!(status == 202, "{path} {body}: {status} {answer}");
    }
    let (status, answer) = pipeline
        .post_to("/v1/track", &track("nobody", Some(json!(["Not A Name"]))))
        .await?;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["field"], "destinations[0]", "{answer}");

    // The limited key: its own destination yes, another no.
    let limited = |body: Value| {
        let url = format!("{}/v1/track", pipeline.ingest_url);
        async move {
            let response = reqwest::Client::new()
                .post(url)
                .bearer_auth("crm-only-key")
                .json(&body)
                .send()
                .await?;
            let status = response.status().as_u16();
            anyhow::Ok((
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            ))
        }
    };
    let (status, answer) = limited(track("limited crm", Some(json!(["crm"])))).await?;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = limited(track(
        "limited analytics",
        Some(json!(["crm", "analytics"])),
    ))
    .await?;
    assert_eq!(status, 403, "{answer}");
    assert_eq!(
        (&answer["error"]["field"], &answer["error"]["rule"]),
        (&json!("destinations"), &json!("destination_not_allowed")),
        "{answer}"
    );
    // The last record names nobody: once each destination has it, it has
    // decided on every record of this user before it (one user, in order).
    let (status, _) = limited(track("last", None)).await?;
    assert_eq!(status, 202);

    let payloads = |destination: &str| -> Vec<String> {
        receiver
            .delivered(destination)
            .iter()
            .filter_map(|c| c.body["data"].as_str().map(str::to_owned))
            .collect()
    };
    wait_for(&receiver, "crm", 5).await?;
    wait_for(&receiver, "analytics", 3).await?;
    assert_eq!(
        payloads("crm"),
        ["crm only", "batch crm", "everyone", "limited crm", "last"]
    );
    assert_eq!(
        payloads("analytics"),
        ["analytics only", "everyone", "last"]
    );
    Ok(())
}

/// The admin API does over HTTP what the CLI does, for `admin` keys only:
/// list, pause (404 for an unknown destination), resume, and replay (dry
/// run listing the records, then for real, delivered once each).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_pauses_resumes_lists_and_replays() -> anyhow::Result<()> {
    use schemas::keys::{DEV_ADMIN_KEY, DEV_ANALYST_KEY};
    const RECORDS: usize = 5;
    let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let answer = up.clone();
    let (receiver, base) = Receiver::start(move |_, _, _| {
        if answer.load(std::sync::atomic::Ordering::SeqCst) {
            (StatusCode::OK, Duration::ZERO)
        } else {
            (StatusCode::INTERNAL_SERVER_ERROR, Duration::ZERO)
        }
    })
    .await?;
    let (pipeline, _dir) = with_destinations(&format!(
        "[[destination]]\nname = \"hook\"\nurl = \"{base}/hook/in\"\n"
    ))
    .await?;
    let http = reqwest::Client::new();
    let call = |method: reqwest::Method, path: &str, key: &str, body: Option<Value>| {
        let request = http
            .request(method, format!("{}{path}", pipeline.query_url))
            .bearer_auth(key);
        let request = match body {
            Some(body) => request.json(&body),
            None => request,
        };
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            anyhow::Ok((
                status,
                response.json::<Value>().await.unwrap_or(Value::Null),
            ))
        }
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;

    let (status, _) = call(get.clone(), "/v1/admin/destinations", DEV_ANALYST_KEY, None).await?;
    assert_eq!(status, 403, "an analyst key may not steer delivery");
    let (status, listed) = call(get.clone(), "/v1/admin/destinations", DEV_ADMIN_KEY, None).await?;
    assert_eq!(status, 200, "{listed}");
    assert_eq!(listed["destinations"][0]["destination"], "hook", "{listed}");
    assert_eq!(listed["destinations"][0]["paused"], false, "{listed}");

    let pause = "/v1/admin/destinations/hook/pause";
    let (status, paused) = call(
        post.clone(),
        pause,
        DEV_ADMIN_KEY,
        Some(json!({"reason": "upgrade"})),
    )
    .await?;
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["changed_by"], format!("api:{DEV_ADMIN_KEY}"));
    let (_, listed) = call(get.clone(), "/v1/admin/destinations", DEV_ADMIN_KEY, None).await?;
    assert_eq!(
        (
            &listed["destinations"][0]["paused"],
            &listed["destinations"][0]["reason"]
        ),
        (&json!(true), &json!("upgrade")),
        "{listed}"
    );
    let (status, missing) = call(
        post.clone(),
        "/v1/admin/destinations/nope/pause",
        DEV_ADMIN_KEY,
        None,
    )
    .await?;
    assert_eq!(
        (status, &missing["error"]["code"]),
        (404, &json!("not_found")),
        "{missing}"
    );
    let (status, _) = call(
        post.clone(),
        "/v1/admin/destinations/hook/resume",
        DEV_ADMIN_KEY,
        None,
    )
    .await?;
    assert_eq!(status, 200);

    // Dead letters while the receiver fails, then a dry run and a replay.
    let events: Vec<Value> = (0..RECORDS)
        .map(|i| {
            app_event(
                "admin-user",
                "admin_view",
                &format!("2021-03-01 10:00:{i:02}"),
            )
        })
        .collect();
    post_events(&pipeline, &events).await?;
    letters_of(&pipeline, "delivery:hook", RECORDS).await?;
    // The listing shows how the destination fails, and that it never
    // succeeded.
    let failing = eventually(DEADLINE, || async {
        let (_, listed) = call(get.clone(), "/v1/admin/destinations", DEV_ADMIN_KEY, None).await?;
        let hook = listed["destinations"][0].clone();
        Ok(
            if hook["last_error"]
                .as_str()
                .is_some_and(|e| e.contains("500"))
            {
                Ok(hook)
            } else {
                Err(format!("no last error yet: {listed}"))
            },
        )
    })
    .await?;
    assert!(
        failing["last_success_at"].is_null() && failing["last_error_at"].is_string(),
        "{failing}"
    );
    for (body, parameter) in [
        (json!({}), "destination"),
        (json!({"stage": "delivery"}), "stage"),
        (
            json!({"destination": "hook", "since": "yesterday"}),
            "since",
        ),
        (json!({"destination": "hook", "bogus": 1}), "body"),
    ] {
        let (status, refused) = call(
            post.clone(),
            "/v1/admin/replays",
            DEV_ADMIN_KEY,
            Some(body.clone()),
        )
        .await?;
        assert_eq!(
            (status, &refused["error"]["parameter"]),
            (400, &json!(parameter)),
            "{body}: {refused}"
        );
    }
    let (status, dry) = call(
        post.clone(),
        "/v1/admin/replays",
        DEV_ADMIN_KEY,
        Some(json!({"destination": "hook", "dry_run": true})),
    )
    .await?;
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["replayed"], RECORDS, "{dry}");
    assert_eq!(
        dry["records"].as_array().map(Vec::len),
        Some(RECORDS),
        "{dry}"
    );
    assert!(receiver.delivered("hook").is_empty());

    up.store(true, std::sync::atomic::Ordering::SeqCst);
    let (status, run) = call(
        post.clone(),
        "/v1/admin/replays",
        DEV_ADMIN_KEY,
        Some(json!({"destination": "hook"})),
    )
    .await?;
    assert_eq!((status, &run["replayed"]), (200, &json!(RECORDS)), "{run}");
    let delivered = wait_for(&receiver, "hook", RECORDS).await?;
    assert!(
        delivered.iter().all(|c| c
            .headers
            .get(webhooks::REPLAY_HEADER)
            .and_then(|v| v.to_str().ok())
            == run["run_id"].as_str()),
        "{run}"
    );
    // Now it succeeds: the last success is newer than the last error,
    // which stays listed.
    let recovered = eventually(DEADLINE, || async {
        let (_, listed) = call(get.clone(), "/v1/admin/destinations", DEV_ADMIN_KEY, None).await?;
        let hook = listed["destinations"][0].clone();
        Ok(if hook["last_success_at"].is_string() {
            Ok(hook)
        } else {
            Err(format!("no last success yet: {listed}"))
        })
    })
    .await?;
    let at = |field: &str| {
        recovered[field]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
    };
    assert!(
        at("last_success_at") > at("last_error_at") && at("last_error_at").is_some(),
        "{recovered}"
    );
    assert_eq!(
        recovered["last_error"], failing["last_error"],
        "{recovered}"
    );
    Ok(())
}

/// Refused requests resubmitted over the admin API are judged now: an
/// event refused for being 6 s ahead under a 2 s clock-skew limit passes
/// once its time is within the limit and is stored once; a malformed body
/// is refused again and listed in `GET /v1/errors` with the run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_admin_api_resubmits_refused_requests_judged_now() -> anyhow::Result<()> {
    use schemas::keys::{DEV_ADMIN_KEY, DEV_ANALYST_KEY};
    let pipeline = Pipeline::start(Options {
        ingest: ingest::Settings {
            max_clock_skew: Duration::from_secs(2),
            rate_limit: 1_000_000,
            ..ingest::Settings::default()
        },
        ..Options::default()
    })
    .await?;
    let http = reqwest::Client::new();
    let session = uuid::Uuid::new_v4().to_string();
    let ahead = (chrono::Utc::now() + chrono::Duration::seconds(6))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let early = json!({"session_id": session, "category": "page interaction",
        "name": "scrolled", "data": {"depth": 0.5}, "timestamp": ahead});
    for body in [early.to_string(), "{\"session_id\": ".to_owned()] {
        let refused = http
            .post(format!("{}/v1/events", pipeline.ingest_url))
            .bearer_auth("dev-producer")
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await?;
        assert_eq!(refused.status().as_u16(), 400);
    }
    let replay = |key: &'static str, body: Value| {
        let request = http
            .post(format!("{}/v1/admin/replays", pipeline.query_url))
            .bearer_auth(key)
            .json(&body);
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            anyhow::Ok((status, response.json::<Value>().await?))
        }
    };
    let (status, _) = replay(
        DEV_ANALYST_KEY,
        json!({"rejects": true, "application": "dev"}),
    )
    .await?;
    assert_eq!(status, 403, "an analyst key may not resubmit");
    for (body, parameter) in [
        (json!({"rejects": true}), "application"),
        (
            json!({"rejects": true, "application": "dev", "destination": "x"}),
            "destination",
        ),
        (json!({"application": "dev"}), "application"),
    ] {
        let (status, refused) = replay(DEV_ADMIN_KEY, body.clone()).await?;
        assert_eq!(
            (status, &refused["error"]["parameter"]),
            (400, &json!(parameter)),
            "{body}: {refused}"
        );
    }
    // A dry run writes nothing; once the event's time is within the limit
    // it says the event would be written.
    let dry = eventually(DEADLINE, || async {
        let (status, dry) = replay(
            DEV_ADMIN_KEY,
            json!({"rejects": true, "application": "dev", "dry_run": true}),
        )
        .await?;
        Ok(
            if status == 200 && dry["resubmitted"] == 2 && dry["written"] == 1 {
                Ok(dry)
            } else {
                Err(format!("{status}: {dry}"))
            },
        )
    })
    .await?;
    assert_eq!(dry["refused_again"], 1, "{dry}");
    assert_eq!(dry["requests"].as_array().map(Vec::len), Some(2), "{dry}");

    let (status, run) = replay(
        DEV_ADMIN_KEY,
        json!({"rejects": true, "application": "dev"}),
    )
    .await?;
    assert_eq!(status, 200, "{run}");
    assert_eq!(
        (&run["stage"], &run["written"], &run["refused_again"]),
        (&json!("ingest"), &json!(1), &json!(1)),
        "{run}"
    );
    let run_id = run["run_id"].as_str().unwrap_or_default().to_owned();
    let stored = eventually(DEADLINE, || async {
        let (_, body) = pipeline
            .query(&format!("/v1/events?session_id={session}"))
            .await?;
        let events = body["events"].as_array().cloned().unwrap_or_default();
        Ok(if events.is_empty() {
            Err(format!("not stored yet: {body}"))
        } else {
            Ok(events)
        })
    })
    .await?;
    assert_eq!(stored.len(), 1, "{stored:?}");
    let again = eventually(DEADLINE, || async {
        let (_, body) = pipeline.query("/v1/errors?kind=reject").await?;
        let rows = body["errors"].as_array().cloned().unwrap_or_default();
        Ok(
            match rows
                .iter()
                .find(|row| row["replay_run"].as_str() == Some(run_id.as_str()))
            {
                Some(row) => Ok(row.clone()),
                None => Err(format!("not listed with run {run_id} yet: {body}")),
            },
        )
    })
    .await?;
    assert_eq!(again["body"], "{\"session_id\": ", "{again}");
    Ok(())
}
