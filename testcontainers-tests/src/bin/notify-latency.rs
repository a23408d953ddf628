//! Notification latency and delivery throughput on the local defaults.
//!
//! Runs the pipeline in-process with a notify receiver and one events
//! destination (small HTTP servers here), then
//! 1. posts `--notifications` finished training programs (each fires the
//!    congratulation rule at once) one after another and times each from the
//!    finishing event's `202` to the notify webhook's call: p50/p99;
//! 2. posts `--events` app events in batches of 500 over `--users` users and
//!    times until the events destination has received them all: events/s.
//!
//! `cargo run --release -p testcontainers-tests --bin notify-latency -- --notifications 200 --events 20000`

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, arg, eventually};

#[derive(Clone, Default)]
struct Seen {
    /// First arrival per (destination, user) for notifications.
    notify: Arc<Mutex<HashMap<String, Instant>>>,
    events: Arc<Mutex<usize>>,
}

async fn receive(
    State(seen): State<Seen>,
    Path((destination, _)): Path<(String, String)>,
    body: Bytes,
) -> StatusCode {
    let now = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if destination == "notify" {
        if let (Some(user), Ok(mut notify)) = (body["user_id"].as_str(), seen.notify.lock()) {
            notify.entry(user.to_owned()).or_insert(now);
        }
    } else if let Ok(mut events) = seen.events.lock() {
        *events += 1;
    }
    StatusCode::OK
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let notifications = arg("--notifications", 200)?;
    let total_events = arg("--events", 20_000)?;
    let users = arg("--users", 1_000)?;
    let seen = Seen::default();
    let app = Router::new()
        .route("/{destination}/{*rest}", post(receive))
        .with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let dir = tempfile::tempdir()?;
    let destinations = dir.path().join("destinations.toml");
    std::fs::write(
        &destinations,
        format!("[[destination]]\nname = \"all-events\"\nurl = \"{base}/events/in\"\n"),
    )?;
    let pipeline = Pipeline::start(Options {
        delivery: Some(processor::webhooks::Settings {
            notify_url: Some(format!("{base}/notify")),
            destinations_file: Some(destinations),
            ..processor::webhooks::Settings::default()
        }),
        ..Options::default()
    })
    .await?;
    let program = |user: &str, kind: &str, at: &str| json!({"user_id": user, "device_id": "d", "type": kind, "training_program_id": "1", "time_stamp": at});

    // Warm up: consumer groups joined, first notification through.
    pipeline
        .post_to(
            "/v1/event",
            &program("warm", "training_program_started", "2021-03-01 08:00:00"),
        )
        .await?;
    pipeline
        .post_to(
            "/v1/event",
            &program("warm", "training_program_finished", "2021-03-01 09:00:00"),
        )
        .await?;
    eventually(Duration::from_secs(60), || async {
        let ready = seen.notify.lock().is_ok_and(|n| n.contains_key("warm"));
        Ok(if ready {
            Ok(())
        } else {
            Err("warming up".to_owned())
        })
    })
    .await?;

    let mut latencies = Vec::with_capacity(notifications);
    for i in 0..notifications {
        let user = format!("u{i}");
        pipeline
            .post_to(
                "/v1/event",
                &program(&user, "training_program_started", "2021-03-01 08:00:00"),
            )
            .await?;
        let (status, _) = pipeline
            .post_to(
                "/v1/event",
                &program(&user, "training_program_finished", "2021-03-01 08:45:00"),
            )
            .await?;
        anyhow::ensure!(status == 202);
        let accepted = Instant::now();
        let arrived = eventually(Duration::from_secs(30), || async {
            let at = seen.notify.lock().ok().and_then(|n| n.get(&user).copied());
            Ok(at.ok_or_else(|| "not yet".to_owned()))
        })
        .await?;
        latencies.push(arrived.saturating_duration_since(accepted));
    }
    latencies.sort_unstable();
    let at = |q: f64| {
        let i = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "notification latency (finishing event's 202 -> notify webhook called), {} samples: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(1.0)
    );

    let already = seen.events.lock().map_or(0, |e| *e);
    let began = Instant::now();
    let mut sent = 0;
    while sent < total_events {
        let batch: Vec<Value> = (sent..(sent + 500).min(total_events))
            .map(|i| {
                json!({"type": "app", "user_id": format!("user{}", i % users), "event_type": "screen_viewed",
                       "time_stamp": "2021-03-01 10:00:00"})
            })
            .collect();
        let (status, body) = pipeline.post_to("/v1/batch", &Value::Array(batch)).await?;
        anyhow::ensure!(status == 202, "{body}");
        sent += 500;
    }
    let target = already + total_events;
    eventually(Duration::from_secs(600), || async {
        let got = seen.events.lock().map_or(0, |e| *e);
        Ok(if got >= target {
            Ok(())
        } else {
            Err(format!("{got} of {target}"))
        })
    })
    .await?;
    let seconds = began.elapsed().as_secs_f64();
    println!(
        "delivery throughput, one events destination, {users} users: {total_events} events in {seconds:.1} s = {:.0} events/s (ingest included)",
        total_events as f64 / seconds
    );
    Ok(())
}
