//! The ingest endpoints.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use schemas::{Codec, Increment, Topic};
use serde_json::{Value, json};
use tracing::warn;
use uuid::Uuid;

use crate::error::ApiError;
use crate::rejects::{Refusal, RejectRecorder};
use crate::settings::Settings;
use crate::sink::KafkaSink;
use crate::validation::parse_increment;

/// Stamped on records until API keys identify the producing application.
pub const ANONYMOUS_APPLICATION: &str = "anonymous";

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub sink: KafkaSink,
    pub codec: Codec,
    pub settings: Arc<Settings>,
    pub rejects: RejectRecorder,
}

/// The ingest router.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.max_body;
    Router::new()
        .route("/v1/increment", post(increment))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// `POST /v1/increment {"key": <uuid>, "value": <int64 >= 1>}`.
async fn increment(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    const ENDPOINT: &str = "/v1/increment";
    let body = body.map_err(|_| {
        let err = ApiError::BodyTooLarge {
            limit: state.settings.max_body,
        };
        refuse(&state, ENDPOINT, &err, &[]);
        err
    })?;
    let request = parse_increment(&body).map_err(|invalid| {
        let err = ApiError::from(invalid);
        refuse(&state, ENDPOINT, &err, &body);
        err
    })?;

    let now = schemas::time::now_micros();
    let record = Increment {
        event_id: Uuid::now_v7(),
        occurred_at: now,
        received_at: now,
        application_id: ANONYMOUS_APPLICATION.to_owned(),
        key: request.key,
        value: request.value,
    };
    let payload = state.codec.encode(&record).await.map_err(|err| {
        warn!(error = %err, "encoding increment failed");
        ApiError::Unavailable
    })?;
    let key = record.key.hyphenated().to_string();
    state
        .sink
        .send(Topic::Increments, key.as_bytes(), &payload)
        .await
        .inspect_err(|err| warn!(error = %err, "increment not written"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": 1, "ids": [record.event_id] })),
    ))
}

fn refuse(state: &AppState, endpoint: &str, err: &ApiError, body: &[u8]) {
    state.rejects.record(&Refusal {
        application_id: ANONYMOUS_APPLICATION,
        endpoint,
        status: err.status().as_u16(),
        violation: err.violation(),
        code: err.code(),
        body,
    });
}
