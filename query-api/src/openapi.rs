//! The OpenAPI 3.1 document at `/openapi.json`, generated from the handlers'
//! annotations; the answer types below describe the wire shapes of the
//! handlers that build their JSON inline.

#![allow(dead_code)]

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

use crate::stats::{Point, ReportLine};
use crate::store::{EventTypeCount, StoredError, StoredEvent, StoredNotification};

/// `GET /v1/counters/{key}`.
#[derive(ToSchema)]
pub(crate) struct CounterAnswer {
    key: uuid::Uuid,
    value: i64,
    /// Up to when the increments partitions were processed and stored (RFC 3339).
    as_of: Option<String>,
}

/// `GET /v1/event-types`.
#[derive(ToSchema)]
pub(crate) struct EventTypesAnswer {
    event_types: Vec<EventTypeCount>,
}

/// `GET /v1/notifications`.
#[derive(ToSchema)]
pub(crate) struct NotificationsPage {
    notifications: Vec<StoredNotification>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/events`.
#[derive(ToSchema)]
pub(crate) struct EventsPage {
    events: Vec<StoredEvent>,
    next_cursor: Option<String>,
}

/// `GET /v1/errors`.
#[derive(ToSchema)]
pub(crate) struct ErrorsPage {
    errors: Vec<StoredError>,
    next_cursor: Option<String>,
}

/// `GET /v1/links/{short_code}/stats`: human clicks (bots apart), zero-filled.
#[derive(ToSchema)]
pub(crate) struct LinkStats {
    short_code: String,
    from: String,
    to: String,
    /// `day` or `month`.
    granularity: String,
    group_by: Option<String>,
    total_clicks: i64,
    total_bot_clicks: i64,
    /// With `group_by`: clicks per browser, OS or device class.
    group_totals: Option<std::collections::BTreeMap<String, i64>>,
    series: Vec<Point>,
    /// Up to when the redirects partitions were processed and stored (RFC 3339).
    as_of: Option<String>,
}

/// `GET /v1/clients/{client_id}/reports/{month}` as JSON.
#[derive(ToSchema)]
pub(crate) struct ClientReport {
    client_id: i64,
    month: String,
    total_clicks: i64,
    /// Most clicked first.
    short_codes: Vec<ReportLine>,
    as_of: Option<String>,
}

/// Every error answer.
#[derive(ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// invalid_parameter, unknown_parameter, unauthenticated, forbidden, internal, unavailable.
    code: String,
    message: String,
    /// The offending parameter (400 only).
    parameter: Option<String>,
}

/// What every query endpoint may answer besides 200.
#[derive(IntoResponses)]
pub(crate) enum ErrorResponses {
    #[response(status = 400, description = "a bad parameter; `parameter` names it")]
    Invalid(ErrorBody),
    #[response(status = 401, description = "no or unknown API key")]
    Unauthenticated(ErrorBody),
    #[response(status = 403, description = "the key lacks the query scope")]
    Forbidden(ErrorBody),
    #[response(status = 503, description = "the store is unavailable")]
    Unavailable(ErrorBody),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The query API document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Eventide query API", description = "Analysts read click statistics, client reports, counters, events, errors and notifications. Every /v1 call needs `Authorization: Bearer <key>` with the query scope."),
    paths(
        crate::routes::clicks::link_stats,
        crate::routes::clicks::client_report,
        crate::routes::counter,
        crate::routes::events,
        crate::routes::event_types,
        crate::routes::errors,
        crate::routes::notifications
    ),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
pub struct QueryApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_endpoint() {
        let document = serde_json::to_value(QueryApi::openapi()).expect("serialises");
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        for path in [
            "/v1/links/{short_code}/stats",
            "/v1/clients/{client_id}/reports/{month}",
            "/v1/counters/{key}",
            "/v1/events",
            "/v1/event-types",
            "/v1/errors",
            "/v1/notifications",
        ] {
            assert!(document["paths"][path]["get"].is_object(), "{path} missing");
        }
        let events = &document["paths"]["/v1/events"]["get"];
        let parameters: Vec<&str> = events["parameters"]
            .as_array()
            .map(|p| p.iter().filter_map(|p| p["name"].as_str()).collect())
            .unwrap_or_default();
        assert!(parameters.contains(&"cursor") && parameters.contains(&"session_id"));
        assert!(events["responses"]["400"].is_object());
    }
}
