//! A processing dead letter replayed after its cause is removed is applied
//! once: an increment written with a schema id the registry does not know
//! yet is dead-lettered by the processor; once the registry has the schema
//! (the fix), `eventide replay --stage processing` writes it back and the
//! counter counts it exactly once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use schemas::{DeadLetter, Increment, Topic};
use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(60);

/// Schema text by id.
type Known = Arc<Mutex<HashMap<u32, String>>>;

fn registry_json(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [("content-type", "application/vnd.schemaregistry.v1+json")],
        body.to_string(),
    )
        .into_response()
}

/// `POST /subjects/{subject}/versions`: the same text, the same id.
async fn register(State(known): State<Known>, body: String) -> Response {
    let Some(schema) = serde_json::from_str::<Value>(&body)
        .ok()
        .and_then(|b| b["schema"].as_str().map(str::to_owned))
    else {
        return registry_json(
            StatusCode::UNPROCESSABLE_ENTITY,
            &json!({"error_code": 42201, "message": "Invalid schema"}),
        );
    };
    let Ok(mut known) = known.lock() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let id = match known.iter().find(|(_, text)| **text == schema) {
        Some((id, _)) => *id,
        None => {
            let id = 100 + u32::try_from(known.len()).unwrap_or_default();
            known.insert(id, schema);
            id
        }
    };
    registry_json(StatusCode::OK, &json!({ "id": id }))
}

/// `GET /schemas/ids/{id}`.
async fn by_id(State(known): State<Known>, Path(id): Path<u32>) -> Response {
    let text = known.lock().ok().and_then(|known| known.get(&id).cloned());
    match text {
        Some(schema) => registry_json(
            StatusCode::OK,
            &json!({ "schema": schema, "schemaType": "AVRO" }),
        ),
        None => registry_json(
            StatusCode::NOT_FOUND,
            &json!({"error_code": 40403, "message": "Schema not found"}),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_processing_dead_letter_replayed_after_the_fix_is_counted_once() -> anyhow::Result<()> {
    const LATE_ID: u32 = 777;
    let known: Known = Arc::default();
    let app = Router::new()
        .route("/subjects/{subject}/versions", post(register))
        .route("/schemas/ids/{id}", get(by_id))
        .with_state(known.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        schema_registry_url: Some(url),
        ..Options::default()
    })
    .await?;
    pipeline.warm_up().await?;

    // An increment framed with an id the registry does not know yet.
    let key = Uuid::new_v4();
    let increment = Increment {
        event_id: Uuid::now_v7(),
        occurred_at: schemas::time::now_micros(),
        received_at: schemas::time::now_micros(),
        application_id: "late".into(),
        key,
        value: 7,
        idempotency_key: None,
    };
    let mut framed = pipeline.codec.encode(&increment).await?;
    let written_id = u32::from_be_bytes([framed[1], framed[2], framed[3], framed[4]]);
    framed[1..5].copy_from_slice(&LATE_ID.to_be_bytes());
    pipeline
        .produce_raw(Topic::Increments, &[(key.to_string(), framed)])
        .await?;
    let letters = pipeline
        .read_topic::<DeadLetter>(Topic::DeadLetters, DEADLINE, |read| {
            read.iter()
                .any(|(_, l)| l.stage == processor::replay::PROCESSING_STAGE)
        })
        .await?;
    assert!(
        letters
            .iter()
            .any(|(_, l)| l.stage == "processor" && l.reason.contains(&LATE_ID.to_string())),
        "{letters:?}"
    );
    let (_, before) = pipeline.query(&format!("/v1/counters/{key}")).await?;
    assert_ne!(before["value"], 7, "not counted before the fix: {before}");

    // The fix: the registry learns the schema under that id.
    let schema = known
        .lock()
        .map_err(|_| anyhow::anyhow!("registry state"))?
        .get(&written_id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the increment schema was registered as {written_id}"))?;
    known
        .lock()
        .map_err(|_| anyhow::anyhow!("registry state"))?
        .insert(LATE_ID, schema);
    let selection = processor::replay::Selection {
        target: processor::replay::Target::Processing {
            topic: Some(Topic::Increments),
        },
        since: None,
        until: None,
        user_id: None,
    };
    let (_, done) = processor::replay::run(
        &pipeline.kafka(),
        &pipeline.codec,
        &selection,
        "test",
        false,
        |_| {},
        |_| {},
    )
    .await?;
    assert_eq!(done.replayed, 1, "{done:?}");
    pipeline.wait_for_counters(&[(key, 7)], DEADLINE).await?;
    // Counted once: a later increment of the same key adds to 7, not 14.
    let (status, _) = pipeline
        .post_increment(&json!({ "key": key, "value": 1 }))
        .await?;
    assert_eq!(status, 202);
    pipeline.wait_for_counters(&[(key, 8)], DEADLINE).await?;
    Ok(())
}
