//! The query endpoints. Every `/v1` route needs an API key with the `query`
//! scope; probes and metrics do not.

pub mod admin;
pub(crate) mod clicks;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use schemas::keys::{Auth, Scope};
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

use crate::error::ApiError;
use crate::paging::Page;
use crate::params::{TimeRange, only, text};
use crate::store::ReadStore;
use crate::store::{ErrorFilter, EventFilter};

/// Shared by every handler.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: ReadStore,
    pub auth: Auth,
    pub metrics: PrometheusHandle,
    /// Concurrency and deadline of analyst reads.
    pub limits: crate::limits::QueryLimits,
    /// Delivery control (`/v1/admin`); 503 there when `None`.
    pub admin: Option<admin::Admin>,
    /// The analysts' console (`/console`); not routed when `None`.
    pub console: Option<crate::console::Console>,
}

/// The query router.
pub fn router(state: AppState) -> Router {
    let analysts = Router::new()
        .route("/v1/counters/{key}", get(counter))
        .route("/v1/event-types", get(event_types))
        .route("/v1/notifications", get(notifications))
        .route("/v1/events", get(events))
        .route("/v1/links/{short_code}/stats", get(clicks::link_stats))
        .route("/v1/links/{short_code}/top", get(clicks::link_top))
        .route(
            "/v1/clients/{client_id}/reports/{month}",
            get(clicks::client_report),
        )
        .route("/v1/errors", get(errors))
        // Outermost last: authenticate, then wait for a permit and run
        // within the deadline.
        .route_layer(middleware::from_fn_with_state(
            state.limits.clone(),
            crate::limits::bounded,
        ))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_query_scope,
        ));
    let operators = Router::new()
        .route("/v1/admin/destinations", get(admin::destinations))
        .route(
            "/v1/admin/destinations/{name}/pause",
            axum::routing::post(admin::pause),
        )
        .route(
            "/v1/admin/destinations/{name}/resume",
            axum::routing::post(admin::resume),
        )
        .route("/v1/admin/replays", axum::routing::post(admin::replays))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            require_admin_scope,
        ));
    let console = crate::console::router(&state);
    Router::new()
        .merge(analysts)
        .merge(operators)
        .merge(console)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(render_metrics))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(docs))
        .fallback(no_endpoint)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn_with_state(
            "query-api",
            http_serve::timed,
        ))
        .with_state(state)
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

/// 401 without a known key, 403 without the `query` scope.
async fn require_query_scope(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    require(&state, &request, Scope::Query, "query")?;
    Ok(next.run(request).await)
}

/// 401 without a known key, 403 without the `admin` scope.
async fn require_admin_scope(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    require(&state, &request, Scope::Admin, "steer delivery")?;
    Ok(next.run(request).await)
}

fn require(
    state: &AppState,
    request: &Request,
    scope: Scope,
    action: &'static str,
) -> Result<(), ApiError> {
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = state
        .auth
        .principal(authorization)
        .ok_or(ApiError::Unauthenticated)?;
    if principal.may(scope) {
        Ok(())
    } else {
        Err(ApiError::Forbidden { action })
    }
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.store.ping().await?;
    Ok(Json(json!({ "status": "ready" })))
}

async fn render_metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
}

/// `GET /v1/counters/{key}` → `{"key": ..., "value": <total>}`.
#[utoipa::path(get, path = "/v1/counters/{key}", tag = "counters",
    params(("key" = uuid::Uuid, Path, description = "the counter key (hyphenated UUID)")),
    responses((status = 200, body = crate::openapi::CounterAnswer), crate::openapi::ErrorResponses))]
pub(crate) async fn counter(
    State(state): State<AppState>,
    Path(key): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    only(&query, &[])?;
    let key = Uuid::try_parse(&key).map_err(|_| ApiError::InvalidParameter {
        parameter: "key",
        message: "must be a UUID".into(),
    })?;
    let value = state.store.counter(key).await?;
    let as_of = state
        .store
        .as_of(schemas::Topic::Increments.default_name())
        .await?;
    Ok((
        StatusCode::OK,
        Json(json!({ "key": key, "value": value, "as_of": as_of.map(crate::paging::rfc3339) })),
    ))
}

/// `GET /v1/event-types` → `{"event_types": [{category, name, events, known}]}`.
#[utoipa::path(get, path = "/v1/event-types", tag = "events",
    responses((status = 200, body = crate::openapi::EventTypesAnswer), crate::openapi::ErrorResponses))]
pub(crate) async fn event_types(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&query, &[])?;
    let counts = state.store.event_types().await?;
    Ok(Json(json!({ "event_types": counts })))
}

/// `GET /v1/notifications?user_id=&limit=&cursor=` → a user's notifications
/// in (time, id) order: `{"notifications": [...], "next_cursor": ...}`.
#[utoipa::path(get, path = "/v1/notifications", tag = "notifications",
    params(crate::openapi::NotificationParams, crate::openapi::PageParams),
    responses((status = 200, body = crate::openapi::NotificationsPage), crate::openapi::ErrorResponses))]
pub(crate) async fn notifications(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&query, &["user_id", "limit", "cursor"])?;
    let user_id = query
        .get("user_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ApiError::InvalidParameter {
            parameter: "user_id",
            message: "is required".into(),
        })?;
    let page = Page::from_query(&query)?;
    let rows = state.store.notifications(user_id, &page).await?;
    let (rows, next_cursor) = page.finish(rows, |row| row.position.clone());
    Ok(Json(
        json!({ "notifications": rows, "next_cursor": next_cursor }),
    ))
}

/// `GET /v1/events?session_id=|category=[&name]&from&to&limit&cursor` →
/// events in (occurred_at, id) order: `{"events": [...], "next_cursor": ...}`.
#[utoipa::path(get, path = "/v1/events", tag = "events",
    params(crate::openapi::EventFilterParams, crate::openapi::RangeParams, crate::openapi::PageParams),
    responses((status = 200, body = crate::openapi::EventsPage), crate::openapi::ErrorResponses))]
pub(crate) async fn events(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(
        &query,
        &[
            "session_id",
            "category",
            "name",
            "from",
            "to",
            "limit",
            "cursor",
        ],
    )?;
    let filter = EventFilter {
        session_id: text(&query, "session_id")?,
        category: text(&query, "category")?,
        name: text(&query, "name")?,
    };
    if filter.name.is_some() && filter.category.is_none() {
        return Err(ApiError::InvalidParameter {
            parameter: "name",
            message: "needs `category`".into(),
        });
    }
    let range = TimeRange::from_query(&query)?;
    let page = Page::from_query(&query)?;
    let rows = state.store.events(&filter, range, &page).await?;
    let (rows, next_cursor) = page.finish(rows, |row| row.position.clone());
    Ok(Json(json!({ "events": rows, "next_cursor": next_cursor })))
}

/// `GET /v1/errors?kind=reject|dead_letter&app&from&to&limit&cursor` → what
/// ingest rejected and what processing could not decode, with reasons.
#[utoipa::path(get, path = "/v1/errors", tag = "errors",
    params(crate::openapi::ErrorFilterParams, crate::openapi::RangeParams, crate::openapi::PageParams),
    responses((status = 200, body = crate::openapi::ErrorsPage), crate::openapi::ErrorResponses))]
pub(crate) async fn errors(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    only(&query, &["kind", "app", "from", "to", "limit", "cursor"])?;
    let kind = text(&query, "kind")?;
    if let Some(kind) = kind
        && !schemas::store::error_kind::ALL.contains(&kind)
    {
        return Err(ApiError::InvalidParameter {
            parameter: "kind",
            message: "must be `reject` or `dead_letter`".into(),
        });
    }
    let filter = ErrorFilter {
        kind,
        application_id: text(&query, "app")?,
    };
    let range = TimeRange::from_query(&query)?;
    let page = Page::from_query(&query)?;
    let rows = state.store.errors(&filter, range, &page).await?;
    let (rows, next_cursor) = page.finish(rows, |row| row.position.clone());
    Ok(Json(json!({ "errors": rows, "next_cursor": next_cursor })))
}

async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    use utoipa::OpenApi;
    Json(crate::openapi::QueryApi::openapi())
}

/// A browsable reference of every endpoint, rendered from the OpenAPI
/// document (self-contained: no scripts, no external assets).
async fn docs() -> axum::response::Html<String> {
    use utoipa::OpenApi;
    let document = serde_json::to_value(crate::openapi::QueryApi::openapi()).unwrap_or_default();
    axum::response::Html(crate::docs::render(&document))
}
