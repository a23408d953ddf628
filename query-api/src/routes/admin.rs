//! Delivery control for operators, over HTTP: the same operations as
//! `eventide destinations` and `eventide replay`, for keys with the `admin`
//! scope (`403` for others).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use processor::replay::rejects::{self, RejectsSelection};
use processor::replay::{self, Selection, Target};
use processor::webhooks::control;
use rdkafka::ClientConfig;
use schemas::{Codec, DestinationState};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use crate::error::ApiError;

/// Most records a dry run lists; it counts them all.
const DRY_RUN_LISTED: usize = 1_000;

/// What the admin routes need: the broker, the codec, the delivery
/// configuration (to name the destinations and their consumer groups) and
/// ingest's limits (to judge refused requests again).
#[derive(Debug, Clone)]
pub struct Admin {
    pub kafka: ClientConfig,
    pub codec: Codec,
    pub delivery: processor::webhooks::Settings,
    pub limits: rejects::Limits,
}

/// The admin configuration, or 503 when this process has none.
fn admin(state: &AppState) -> Result<&Admin, ApiError> {
    state.admin.as_ref().ok_or(ApiError::Unavailable(
        "delivery control is not configured in this process".into(),
    ))
}

/// The configured destinations, or 503.
fn configured(admin: &Admin) -> Result<Vec<processor::webhooks::Destination>, ApiError> {
    admin
        .delivery
        .destinations()
        .map_err(|err| ApiError::Unavailable(format!("destinations: {err}")))
}

/// `GET /v1/admin/destinations` → each destination's state and lag.
#[utoipa::path(get, path = "/v1/admin/destinations", tag = "admin",
    responses((status = 200, body = crate::openapi::DestinationsAnswer), crate::openapi::AdminErrorResponses))]
pub(crate) async fn destinations(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    destination_statuses(&state).await.map(Json)
}

/// Each destination's state and lag.
pub(crate) async fn destination_statuses(state: &AppState) -> Result<Value, ApiError> {
    let admin = admin(state)?;
    let statuses = control::statuses(
        &admin.kafka,
        &admin.codec,
        &configured(admin)?,
        &admin.delivery.delivery_group_prefix,
    )
    .await
    .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    Ok(json!({ "destinations": statuses }))
}

/// The optional body of pause and resume.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Change {
    #[serde(default)]
    reason: String,
}

/// `POST /v1/admin/destinations/{name}/pause` → the destination holds its
/// records, on every replica, until resumed.
#[utoipa::path(post, path = "/v1/admin/destinations/{name}/pause", tag = "admin",
    params(("name" = String, Path, description = "a configured destination")),
    request_body(content = Option<crate::openapi::ChangeBody>, content_type = "application/json"),
    responses((status = 200, body = crate::openapi::StateAnswer), crate::openapi::AdminErrorResponses))]
pub(crate) async fn pause(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    change(&state, &headers, &name, true, body).await
}

/// `POST /v1/admin/destinations/{name}/resume` → its held records go out.
#[utoipa::path(post, path = "/v1/admin/destinations/{name}/resume", tag = "admin",
    params(("name" = String, Path, description = "a configured destination")),
    request_body(content = Option<crate::openapi::ChangeBody>, content_type = "application/json"),
    responses((status = 200, body = crate::openapi::StateAnswer), crate::openapi::AdminErrorResponses))]
pub(crate) async fn resume(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    Path(name): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    change(&state, &headers, &name, false, body).await
}

async fn change(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    name: &str,
    paused: bool,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let change: Change = json_body(body)?.unwrap_or_default();
    let actor = format!("api:{}", key_id(state, headers));
    set_paused(state, name, paused, change.reason, actor)
        .await
        .map(Json)
}

/// Pauses or resumes `name` on every replica, as `changed_by`.
pub(crate) async fn set_paused(
    state: &AppState,
    name: &str,
    paused: bool,
    reason: String,
    changed_by: String,
) -> Result<Value, ApiError> {
    let admin = admin(state)?;
    known_destination(admin, name)?;
    let state_record = DestinationState {
        destination: name.to_owned(),
        paused,
        changed_at: schemas::time::now_micros(),
        changed_by,
        reason,
    };
    control::publish(&admin.kafka, &admin.codec, &state_record)
        .await
        .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    Ok(json!({
        "destination": name,
        "paused": paused,
        "changed_by": state_record.changed_by,
        "reason": state_record.reason,
    }))
}

/// What `POST /v1/admin/replays` takes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayRequest {
    /// Refused requests of `application`, judged again.
    #[serde(default)]
    pub(crate) rejects: bool,
    pub(crate) application: Option<String>,
    pub(crate) destination: Option<String>,
    pub(crate) stage: Option<String>,
    pub(crate) topic: Option<String>,
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) user_id: Option<String>,
    #[serde(default)]
    pub(crate) dry_run: bool,
}

/// `POST /v1/admin/replays` → a replay run's count (and, on a dry run, the
/// records it would replay).
#[utoipa::path(post, path = "/v1/admin/replays", tag = "admin",
    request_body(content = crate::openapi::ReplayBody, content_type = "application/json"),
    responses((status = 200, body = crate::openapi::ReplayAnswer), crate::openapi::AdminErrorResponses))]
pub(crate) async fn replays(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>, ApiError> {
    let request: ReplayRequest = json_body(body)?.ok_or_else(|| ApiError::InvalidParameter {
        parameter: "body",
        message: "must be a JSON object naming `destination`, `stage` or `rejects`".into(),
    })?;
    let requested_by = format!("api:{}", key_id(&state, &headers));
    replay(&state, request, &requested_by).await.map(Json)
}

/// Runs a replay as `requested_by`: its counts (and, on a dry run, the
/// records it would replay).
pub(crate) async fn replay(
    state: &AppState,
    request: ReplayRequest,
    requested_by: &str,
) -> Result<Value, ApiError> {
    let admin = admin(state)?;
    let time = |field, text: &Option<String>| {
        text.as_deref()
            .map(|text| replay::parse_time(field, text))
            .transpose()
            .map_err(invalid)
    };
    if request.rejects {
        return resubmit(
            admin,
            &request,
            time("since", &request.since)?,
            time("until", &request.until)?,
        )
        .await;
    }
    if request.application.is_some() {
        return Err(ApiError::InvalidParameter {
            parameter: "application",
            message: "applies to `rejects` only".into(),
        });
    }
    let target = Target::parse(
        request.destination.as_deref(),
        request.stage.as_deref(),
        request.topic.as_deref(),
    )
    .map_err(invalid)?;
    if let Target::Destination(name) = &target {
        known_destination(admin, name)?;
    }
    let selection = Selection {
        target,
        since: time("since", &request.since)?,
        until: time("until", &request.until)?,
        user_id: request.user_id,
    };
    let mut listed = Vec::new();
    let (run_id, done) = replay::run(
        &admin.kafka,
        &admin.codec,
        &selection,
        requested_by,
        request.dry_run,
        |selected| {
            if request.dry_run && listed.len() < DRY_RUN_LISTED {
                listed.push(json!({
                    "id": selected.id,
                    "user_id": selected.user_id,
                    "dead_lettered_at": chrono::DateTime::from_timestamp_micros(selected.letter.received_at)
                        .map(|at| at.to_rfc3339()),
                    "reason": selected.letter.reason,
                }));
            }
        },
        |_| {},
    )
    .await
    .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    let mut answer = json!({
        "run_id": run_id,
        "stage": selection.target.stage(),
        "dry_run": request.dry_run,
        "replayed": done.replayed,
        "repeats": done.repeats,
        "read": done.read,
    });
    if request.dry_run {
        answer["records"] = Value::Array(listed);
    }
    Ok(answer)
}

/// `rejects`: the application's refused requests judged again by ingest's
/// validation; those that pass are written, the rest refused again.
async fn resubmit(
    admin: &Admin,
    request: &ReplayRequest,
    since: Option<i64>,
    until: Option<i64>,
) -> Result<Value, ApiError> {
    let Some(application) = request.application.clone() else {
        return Err(ApiError::InvalidParameter {
            parameter: "application",
            message: "`rejects` needs the application whose refused requests to resubmit".into(),
        });
    };
    for (field, given) in [
        ("destination", request.destination.is_some()),
        ("stage", request.stage.is_some()),
        ("topic", request.topic.is_some()),
        ("user_id", request.user_id.is_some()),
    ] {
        if given {
            return Err(ApiError::InvalidParameter {
                parameter: field,
                message: "does not apply to `rejects`".into(),
            });
        }
    }
    let selection = RejectsSelection {
        application,
        since,
        until,
    };
    let mut listed = Vec::new();
    let (run_id, counts) = rejects::run(
        &admin.kafka,
        &admin.codec,
        &selection,
        admin.limits,
        request.dry_run,
        |judged| {
            if request.dry_run && listed.len() < DRY_RUN_LISTED {
                listed.push(json!({
                    "id": judged.reject.event_id,
                    "endpoint": judged.reject.endpoint,
                    "refused_at": chrono::DateTime::from_timestamp_micros(judged.reject.received_at)
                        .map(|at| at.to_rfc3339()),
                    "records": judged.records,
                    "refused_again": judged.refused,
                }));
            }
        },
    )
    .await
    .map_err(|err| ApiError::Unavailable(err.to_string()))?;
    let mut answer = json!({
        "run_id": run_id,
        "stage": "ingest",
        "dry_run": request.dry_run,
        "application": selection.application,
        "resubmitted": counts.resubmitted,
        "written": counts.records,
        "refused_again": counts.refused_again,
        "not_resubmittable": counts.not_resubmittable,
        "repeats": counts.repeats,
        "read": counts.read,
    });
    if request.dry_run {
        answer["requests"] = Value::Array(listed);
    }
    Ok(answer)
}

/// The key's id, for `changed_by` and `requested_by`.
fn key_id(state: &AppState, headers: &axum::http::HeaderMap) -> String {
    let authorization = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    state
        .auth
        .principal(authorization)
        .map_or_else(|| "unknown".to_owned(), |p| p.key_id)
}

/// A JSON object body, `None` when empty.
fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<Option<T>, ApiError> {
    let body = body.map_err(|err| ApiError::InvalidParameter {
        parameter: "body",
        message: format!("could not be read: {err}"),
    })?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|err| ApiError::InvalidParameter {
            parameter: "body",
            message: format!("is not valid: {err}"),
        })
}

/// 404 unless `name` is a configured destination; where this process has
/// no destinations configured (a query API deployed without the
/// destinations file), any well-formed name, as the CLI does.
fn known_destination(admin: &Admin, name: &str) -> Result<(), ApiError> {
    let configured = configured(admin)?;
    let known = if configured.is_empty() {
        schemas::destination::is_valid_name(name)
    } else {
        configured.iter().any(|d| d.name == name)
    };
    if known {
        Ok(())
    } else {
        Err(ApiError::NotFound {
            path: format!("destination {name:?}"),
        })
    }
}

/// A 400 naming the field a replay request got wrong.
fn invalid(err: replay::SelectionError) -> ApiError {
    ApiError::InvalidParameter {
        parameter: err.field(),
        message: err.to_string(),
    }
}
