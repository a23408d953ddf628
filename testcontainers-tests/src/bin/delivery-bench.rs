//! Delivery throughput to one destination beside its ceiling: a bare load
//! client against the same receiver.
//!
//! 1. The ceiling: `--concurrency` tasks post a typical event body to a fast
//!    receiver (an axum handler counting requests) over keep-alive
//!    connections for `--records` requests: requests/s.
//! 2. Delivery: `--records` events of `--users` users are written to the
//!    events topic first; then one delivery process with one destination
//!    starts and delivers them all to the same receiver: deliveries/s from
//!    its first request to its last (the consumer group's join excluded),
//!    and the ratio to the ceiling.
//!
//! `cargo run --release -p testcontainers-tests --bin delivery-bench -- --records 50000`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use schemas::{Event, Topic};
use testcontainers_tests::{Options, Pipeline, arg, eventually};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Requests the receiver answered, and when the first and last came.
#[derive(Default)]
struct Counted {
    requests: AtomicU64,
    first: std::sync::Mutex<Option<Instant>>,
    last: std::sync::Mutex<Option<Instant>>,
}

impl Counted {
    fn reset(&self) {
        self.requests.store(0, Ordering::SeqCst);
        *self.first.lock().unwrap_or_else(|e| e.into_inner()) = None;
        *self.last.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    fn span(&self) -> Duration {
        let first = *self.first.lock().unwrap_or_else(|e| e.into_inner());
        let last = *self.last.lock().unwrap_or_else(|e| e.into_inner());
        match (first, last) {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

async fn receive(State(counted): State<Arc<Counted>>, body: Bytes) -> StatusCode {
    let now = Instant::now();
    if !body.is_empty() {
        counted.requests.fetch_add(1, Ordering::SeqCst);
        counted
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(now);
        *counted.last.lock().unwrap_or_else(|e| e.into_inner()) = Some(now);
    }
    StatusCode::OK
}

fn event(i: usize, users: usize) -> Event {
    let user = format!("user-{}", i % users);
    Event {
        event_id: Uuid::now_v7(),
        occurred_at: 1_614_592_800_000_000 + i64::try_from(i).unwrap_or_default(),
        received_at: 1_614_592_800_000_000,
        application_id: "bench".into(),
        session_id: user.clone(),
        category: "app".into(),
        name: "screen_viewed".into(),
        data: r#"{"screen":"home","duration_ms":1234}"#.into(),
        known_type: false,
        user_id: Some(user),
        device_id: Some(format!("device-{i}")),
        idempotency_key: None,
        destinations: None,
    }
}

/// The ceiling: `concurrency` tasks posting `total` bodies like the
/// delivered ones.
async fn bare(url: &str, total: u64, concurrency: u64, body: Vec<u8>) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicU64::new(0));
    let began = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        let (http, next, url, body) = (http.clone(), next.clone(), url.to_owned(), body.clone());
        tasks.spawn(async move {
            while next.fetch_add(1, Ordering::SeqCst) < total {
                let response = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await?;
                anyhow::ensure!(response.status().is_success());
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    Ok(total as f64 / began.elapsed().as_secs_f64())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let records: usize = arg("--records", 50_000)?;
    let users: usize = arg("--users", 1_000)?;
    let concurrency: u64 = arg("--concurrency", 64)?;
    let counted = Arc::new(Counted::default());
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(counted.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });

    let pipeline = Pipeline::start(Options {
        partitions: 2,
        ..Options::default()
    })
    .await?;
    let mut payloads = Vec::with_capacity(records);
    for i in 0..records {
        let record = event(i, users);
        payloads.push((
            record.session_id.clone(),
            pipeline.codec.encode(&record).await?,
        ));
    }
    for chunk in payloads.chunks(5_000) {
        pipeline.produce_raw(Topic::Events, chunk).await?;
    }
    let sample = serde_json::to_vec(&serde_json::json!({
        "id": Uuid::now_v7().to_string(), "application_id": "bench", "session_id": "user-1",
        "user_id": "user-1", "device_id": "device-1", "category": "app", "name": "screen_viewed",
        "occurred_at": "2021-03-01T10:00:00Z", "received_at": "2021-03-01T10:00:00Z",
        "data": {"screen": "home", "duration_ms": 1234}
    }))?;
    let ceiling = bare(&url, records as u64, concurrency, sample).await?;
    counted.reset();

    let dir = tempfile::tempdir()?;
    let file = dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!("[[destination]]\nname = \"bench\"\nurl = \"{url}\"\n"),
    )?;
    let config = processor::webhooks::DeliveryConfig {
        settings: processor::webhooks::Settings {
            destinations_file: Some(file),
            ..processor::webhooks::Settings::default()
        },
        kafka: pipeline.kafka(),
        codec: pipeline.codec.clone(),
    };
    let stop = CancellationToken::new();
    let delivery = tokio::spawn(processor::webhooks::run(config, stop.clone()));
    eventually(Duration::from_secs(600), || async {
        let got = counted.requests.load(Ordering::SeqCst);
        Ok(if got >= records as u64 {
            Ok(())
        } else {
            Err(format!("{got} of {records} delivered"))
        })
    })
    .await?;
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    let rate = records as f64 / counted.span().as_secs_f64();
    stop.cancel();
    delivery.await??;
    println!(
        "bare client ({concurrency} connections): {ceiling:.0} requests/s; \
         delivery, one destination, {users} users: {records} records at {rate:.0} deliveries/s \
         = x{:.2} of the ceiling",
        rate / ceiling
    );
    Ok(())
}
