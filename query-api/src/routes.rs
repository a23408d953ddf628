//! The query endpoints.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::ApiError;
use crate::store::ReadStore;

/// The query router.
pub fn router(store: ReadStore) -> Router {
    Router::new()
        .route("/v1/counters/{key}", get(counter))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(store)
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(store): State<ReadStore>) -> Result<Json<Value>, ApiError> {
    store.ping().await?;
    Ok(Json(json!({ "status": "ready" })))
}

/// `GET /v1/counters/{key}` → `{"key": ..., "value": <total>}`.
async fn counter(
    State(store): State<ReadStore>,
    Path(key): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let key = Uuid::try_parse(&key).map_err(|_| ApiError::InvalidParameter {
        parameter: "key",
        message: "must be a UUID".into(),
    })?;
    let value = store.counter(key).await?;
    Ok((StatusCode::OK, Json(json!({ "key": key, "value": value }))))
}
