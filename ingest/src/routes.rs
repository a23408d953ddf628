//! The ingest endpoints and the middleware around them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, FailedToBufferBody};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use metrics_exporter_prometheus::PrometheusHandle;
use schemas::Codec;
use schemas::keys::{Auth, Principal, Scope};
use serde_json::{Value, json};
use tracing::{Instrument, info_span, warn};
use uuid::Uuid;

use crate::encoding::Encoding;
use crate::error::ApiError;
use crate::event_types::EventTypes;
use crate::rate_limit::RateLimits;
use crate::records::Outgoing;
use crate::rejects::RejectRecorder;
use crate::settings::Settings;
use crate::sink::KafkaSink;
use crate::validation::{
    BatchItem, Context, IDEMPOTENCY_HEADER, ValidationError, parse_batch, parse_idempotency_key,
    parse_object, single_parser,
};
use schemas::identity::IdempotencyKey;

/// The header carrying a request's id, taken from the caller or minted.
pub const REQUEST_ID: &str = "x-request-id";

/// How long `/readyz` waits for broker metadata.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub sink: KafkaSink,
    pub codec: Codec,
    pub settings: Arc<Settings>,
    pub rejects: RejectRecorder,
    pub auth: Auth,
    pub limits: RateLimits,
    pub event_types: Arc<EventTypes>,
    pub metrics: PrometheusHandle,
    pub disk: Option<crate::disk::DiskWatch>,
}

/// The ingest router.
pub fn router(state: AppState) -> Router {
    let max_body = state.settings.max_body;
    let cors = crate::cors::layer(&state.settings.cors_allow_origins);
    let router = Router::new()
        .route("/v1/increment", post(increment))
        .route("/v1/redirects", post(redirect))
        .route("/v1/events", post(event))
        .route("/v1/event", post(app_event))
        .route("/v1/track", post(track))
        .route("/v1/batch", post(batch))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .route("/openapi.json", get(openapi))
        .fallback(no_endpoint)
        .method_not_allowed_fallback(wrong_method)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn(observe))
        .layer(middleware::from_fn_with_state("ingest", http_serve::timed))
        .with_state(state);
    // Outermost: a preflight is answered before authentication.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}

/// A path with no endpoint: a JSON 404 like every other error.
async fn no_endpoint(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound {
        path: uri.path().to_owned(),
    }
}

/// A method the endpoint does not take: a JSON 405.
async fn wrong_method(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::MethodNotAllowed {
        method: method.to_string(),
        path: uri.path().to_owned(),
    }
}

/// Gives every request an id (in its span and its response), continues the
/// caller's W3C trace (`traceparent`) in its span, and counts it by route
/// and status.
async fn observe(matched: Option<MatchedPath>, request: Request, next: Next) -> Response {
    let request_id = request
        .headers()
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= 128)
        .map_or_else(|| Uuid::now_v7().to_string(), str::to_owned);
    let route = matched.map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let span = info_span!(
        "request",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        %request_id,
        %route
    );
    telemetry::propagation::continue_trace(
        &span,
        &telemetry::propagation::from_http(request.headers()),
    );
    let mut response = next.run(request).instrument(span).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(crate::metrics::REQUESTS, "route" => route, "status" => status).increment(1);
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the data dir is above its free-space floor and the broker
/// answers a metadata request.
async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(Err(low)) = state.disk.as_ref().map(crate::disk::DiskWatch::admit) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "status": "low disk",
                "free_bytes": low.free,
                "min_free_bytes": low.floor,
            })),
        )
            .into_response();
    }
    if state.sink.broker_reachable(READY_TIMEOUT).await {
        Json(json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "broker unreachable" })),
        )
            .into_response()
    }
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    Json(crate::openapi::IngestApi::openapi())
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// The accepted answer of a single-record endpoint.
type Accepted = (StatusCode, Json<Value>);

/// `POST /v1/increment {"key": <uuid>, "value": <int64 >= 1>}`.
#[utoipa::path(post, path = "/v1/increment", request_body = crate::openapi::IncrementBody,
    responses(crate::openapi::IngestResponses))]
pub(crate) async fn increment(
    state: State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, ApiError> {
    single(state, headers, body, "/v1/increment").await
}

/// `POST /v1/redirects`: one short-link click.
#[utoipa::path(post, path = "/v1/redirects", request_body = crate::openapi::RedirectBody,
    responses(crate::openapi::IngestResponses))]
pub(crate) async fn redirect(
    state: State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, ApiError> {
    single(state, headers, body, "/v1/redirects").await
}

/// `POST /v1/events`: a behaviour event.
#[utoipa::path(post, path = "/v1/events", request_body = crate::openapi::EventBody,
    responses(crate::openapi::IngestResponses))]
pub(crate) async fn event(
    state: State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, ApiError> {
    single(state, headers, body, "/v1/events").await
}

/// `POST /v1/event`: an app event, in either shape.
#[utoipa::path(post, path = "/v1/event", request_body = crate::openapi::AppEventBody,
    responses(crate::openapi::IngestResponses))]
pub(crate) async fn app_event(
    state: State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, ApiError> {
    single(state, headers, body, "/v1/event").await
}

/// `POST /v1/track {userId, payload}`.
#[utoipa::path(post, path = "/v1/track", request_body = crate::openapi::TrackBody,
    responses(crate::openapi::IngestResponses))]
pub(crate) async fn track(
    state: State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Accepted, ApiError> {
    single(state, headers, body, "/v1/track").await
}

async fn single(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: &'static str,
) -> Result<Accepted, ApiError> {
    let principal = admit(&state, &headers)?;
    let parse = single_parser(endpoint).ok_or_else(|| ApiError::NotFound {
        path: endpoint.to_owned(),
    })?;
    let idempotency_key = idempotency_key(&headers)
        .map_err(ApiError::from)
        .inspect_err(|err| {
            state
                .rejects
                .record(&principal.application, endpoint, err, &[])
        })?;
    let (body, now) = read_json_body(&state, &headers, body).inspect_err(|err| {
        state
            .rejects
            .record(&principal.application, endpoint, err, &[])
    })?;
    let event_types = Arc::clone(&state.event_types);
    let context = context(&state, &headers, now, &event_types);
    let key = idempotency_key.as_ref().map(IdempotencyKey::as_str);
    let item = parse_object(&body)
        .and_then(|object| parse(&object, &context))
        .map_err(ApiError::from)
        .inspect_err(|err| {
            state
                .rejects
                .record_keyed(&principal.application, endpoint, err, &body, key)
        })?;
    allowed_destinations(&principal, &item).inspect_err(|err| {
        state
            .rejects
            .record_keyed(&principal.application, endpoint, err, &body, key)
    })?;
    let outgoing = Outgoing::from_item(item, idempotency_key, &principal.application, now);
    let payload = outgoing.encode(&state.codec).await.map_err(|err| {
        warn!(error = %err, "encoding failed");
        ApiError::Unavailable {
            why: "the record could not be encoded (schema registry unreachable?)",
        }
    })?;
    state
        .sink
        .enqueue(
            outgoing.topic(),
            outgoing.key().as_bytes(),
            &payload,
            trace_headers(&headers),
        )?
        .await
        .inspect_err(|err| warn!(error = %err, topic = %outgoing.topic(), "record not written"))?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": 1, "ids": [outgoing.event_id()] })),
    ))
}

/// `POST /v1/batch`: valid items are written, invalid ones are listed by
/// index; 503 if any valid item could not be written.
#[utoipa::path(post, path = "/v1/batch", request_body = Vec<crate::openapi::BatchItemBody>,
    responses(crate::openapi::IngestResponses))]
pub(crate) async fn batch(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    const ENDPOINT: &str = "/v1/batch";
    let principal = admit(&state, &headers)?;
    let (body, now) = read_json_body(&state, &headers, body).inspect_err(|err| {
        state
            .rejects
            .record(&principal.application, ENDPOINT, err, &[])
    })?;
    let event_types = Arc::clone(&state.event_types);
    let context = context(&state, &headers, now, &event_types);
    let results = parse_batch(&body, state.settings.max_batch, &context)
        .map_err(ApiError::from)
        .inspect_err(|err| {
            state
                .rejects
                .record(&principal.application, ENDPOINT, err, &body)
        })?;

    let mut errors = Vec::new();
    let mut outgoing = Vec::new();
    for (index, result) in results.into_iter().enumerate() {
        let result = result.map_err(ApiError::from).and_then(|keyed| {
            allowed_destinations(&principal, &keyed.item)?;
            Ok(keyed)
        });
        match result {
            Ok(keyed) => outgoing.push((
                index,
                Outgoing::from_item(
                    keyed.item,
                    keyed.idempotency_key,
                    &principal.application,
                    now,
                ),
            )),
            Err(err) => {
                state
                    .rejects
                    .record(&principal.application, ENDPOINT, &err, &body);
                errors.push(json!({ "index": index, "error": err.body() }));
            }
        }
    }
    if outgoing.is_empty() && !errors.is_empty() {
        // Nothing to write: the batch as a whole is refused, with every
        // item's error (each already recorded in the rejects topic).
        let refused = ApiError::from(crate::validation::ValidationError::one(
            crate::validation::Violation::new(
                None,
                crate::validation::Rule::NoValidItem,
                format!("none of the {} items is valid; see `errors`", errors.len()),
            ),
        ));
        let body = json!({ "accepted": 0, "ids": [], "errors": errors, "error": refused.body() });
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    // Encode everything first, then enqueue in item order so records of one
    // key keep their order, then await every acknowledgement together.
    let trace = trace_headers(&headers);
    let mut pending = Vec::with_capacity(outgoing.len());
    let mut unwritten = 0usize;
    for (index, record) in &outgoing {
        let enqueued = match record.encode(&state.codec).await {
            Ok(payload) => state
                .sink
                .enqueue(
                    record.topic(),
                    record.key().as_bytes(),
                    &payload,
                    trace.clone(),
                )
                .map_err(ApiError::from),
            Err(err) => {
                warn!(error = %err, "encoding failed");
                Err(ApiError::Unavailable {
                    why: "the record could not be encoded (schema registry unreachable?)",
                })
            }
        };
        match enqueued {
            Ok(delivery) => pending.push((*index, record.event_id(), delivery)),
            Err(err) => {
                unwritten += 1;
                errors.push(json!({ "index": index, "error": err.body() }));
            }
        }
    }
    let (indices, deliveries): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .map(|(index, id, delivery)| ((index, id), delivery))
        .unzip();
    let mut ids = Vec::new();
    for ((index, id), written) in indices
        .into_iter()
        .zip(futures::future::join_all(deliveries).await)
    {
        match written {
            Ok(_) => ids.push(id),
            Err(err) => {
                unwritten += 1;
                errors.push(json!({ "index": index, "error": ApiError::from(err).body() }));
            }
        }
    }
    errors.sort_by_key(|e| e["index"].as_u64());
    let answer = json!({ "accepted": ids.len(), "ids": ids, "errors": errors });
    if unwritten > 0 {
        let mut body = answer;
        body["error"] = ApiError::Unavailable {
            why: "some items were not written",
        }
        .body();
        let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response();
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(1u64));
        return Ok(response);
    }
    Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
}

/// The record headers carrying this request's trace: the request span's when
/// traces are exported, else the caller's `traceparent` passed on as it came.
fn trace_headers(headers: &HeaderMap) -> Option<rdkafka::message::OwnedHeaders> {
    let caller = telemetry::propagation::from_http(headers);
    telemetry::propagation::kafka_headers(&telemetry::propagation::current_or(&caller))
}

/// The `Idempotency-Key` header, if sent.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<IdempotencyKey>, ValidationError> {
    let Some(value) = headers.get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    // A header value that is not visible ASCII fails the same rule.
    let text = value.to_str().unwrap_or("\u{0}");
    parse_idempotency_key(IDEMPOTENCY_HEADER, text).map(Some)
}

/// Refuses an item naming a destination its key may not name.
fn allowed_destinations(principal: &Principal, item: &BatchItem) -> Result<(), ApiError> {
    match principal.forbidden_destination(item.destinations()) {
        Some(name) => Err(ApiError::DestinationNotAllowed {
            name: name.to_owned(),
            allowed: principal.destinations.clone().unwrap_or_default(),
        }),
        None => Ok(()),
    }
}

/// Authenticates with the produce scope and takes a rate-limit token.
fn admit(state: &AppState, headers: &HeaderMap) -> Result<Principal, ApiError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = state
        .auth
        .principal(authorization)
        .ok_or(ApiError::Unauthenticated)?;
    if !principal.may(Scope::Produce) {
        return Err(ApiError::Forbidden {
            action: "produce events",
        });
    }
    if let Some(disk) = &state.disk {
        disk.admit()?;
    }
    state.limits.check(&principal).map_err(|wait| {
        metrics::counter!(crate::metrics::RATE_LIMITED, "key" => principal.key_id.clone())
            .increment(1);
        ApiError::rate_limited(wait)
    })?;
    Ok(principal)
}

/// The body, if declared JSON, decoded and within `--max-body` (compressed
/// and decompressed), and the time it arrived.
fn read_json_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Bytes, i64), ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|mime| {
            let mime = mime.trim().to_ascii_lowercase();
            mime == "application/json"
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
        .unwrap_or(false);
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    // Refused before the body is read: an encoding ingest cannot decode.
    let encoding = Encoding::of(headers)?;
    let body = body.map_err(|rejection| {
        if http_serve::is_body_timeout(&rejection) {
            ApiError::BodyTimeout
        } else if matches!(
            rejection,
            BytesRejection::FailedToBufferBody(FailedToBufferBody::LengthLimitError(_))
        ) {
            ApiError::BodyTooLarge {
                limit: state.settings.max_body,
            }
        } else {
            ApiError::BodyUnreadable
        }
    })?;
    let body = encoding.decode(body, state.settings.max_body)?;
    Ok((body, schemas::time::now_micros()))
}

fn context<'a>(
    state: &AppState,
    headers: &'a HeaderMap,
    now: i64,
    event_types: &'a EventTypes,
) -> Context<'a> {
    Context {
        now,
        max_skew_micros: i64::try_from(state.settings.max_clock_skew.as_micros())
            .unwrap_or(i64::MAX),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok()),
        event_types,
    }
}
