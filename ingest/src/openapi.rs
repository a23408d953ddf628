//! The OpenAPI 3.1 document at `/openapi.json`, generated from the handlers'
//! annotations and the body types below. The body types describe the wire
//! shapes for documentation; validation itself is in [`crate::validation`].

#![allow(dead_code)]

use serde_json::Value;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use uuid::Uuid;

/// `POST /v1/increment`.
#[derive(ToSchema)]
pub(crate) struct IncrementBody {
    /// The counter.
    key: Uuid,
    /// The amount to add.
    #[schema(minimum = 1)]
    value: i64,
}

/// `POST /v1/redirects`: one short-link click.
#[derive(ToSchema)]
pub(crate) struct RedirectBody {
    /// 1 to 16 of `[A-Za-z0-9_-]`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,16}$")]
    short_code: String,
    /// Absolute http or https URL.
    full_url: String,
    #[schema(minimum = 0)]
    client_id: i64,
    /// Defaults to the `User-Agent` header.
    user_agent: Option<String>,
    referrer: Option<String>,
    /// RFC 3339; defaults to now.
    occurred_at: Option<String>,
}

/// `POST /v1/events`: a behaviour event.
#[derive(ToSchema)]
pub(crate) struct EventBody {
    session_id: Uuid,
    category: String,
    name: String,
    /// Non-empty; checked against the JSON Schema of (category, name) when known.
    data: Value,
    /// RFC 3339 or `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC); at most `--max-clock-skew` ahead.
    timestamp: String,
}

/// `POST /v1/event`, original shape.
#[derive(ToSchema)]
pub(crate) struct AppEventOriginal {
    user_id: String,
    device_id: Option<String>,
    /// Event type; unknown types are accepted.
    r#type: String,
    /// `YYYY-MM-DD HH:MM:SS` (UTC) or RFC 3339.
    time_stamp: String,
    training_program_id: Option<String>,
    training_program_title: Option<String>,
}

/// `POST /v1/event`, improved shape.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct AppEventImproved {
    userId: String,
    deviceId: Option<String>,
    r#type: String,
    /// ISO 8601.
    timestamp: String,
    details: Option<Value>,
}

/// `POST /v1/event`: either shape.
#[derive(ToSchema)]
pub(crate) enum AppEventBody {
    Original(AppEventOriginal),
    Improved(AppEventImproved),
}

/// `POST /v1/track`.
#[derive(ToSchema)]
#[allow(non_snake_case)]
pub(crate) struct TrackBody {
    userId: String,
    /// A non-empty JSON object.
    payload: Value,
}

/// One `POST /v1/batch` item: `type` is `increment`, `redirect`, `event`,
/// `app` (its event type travels as `event_type`) or `track`, with the
/// fields of that endpoint.
#[derive(ToSchema)]
pub(crate) struct BatchItemBody {
    r#type: String,
}

/// `202 Accepted`.
#[derive(ToSchema)]
pub(crate) struct AcceptedBody {
    accepted: u64,
    ids: Vec<Uuid>,
    /// Batch only: the items refused, by index.
    errors: Option<Vec<ItemErrorBody>>,
}

/// A refused batch item.
#[derive(ToSchema)]
pub(crate) struct ItemErrorBody {
    index: u64,
    error: ErrorDetail,
}

/// What every write endpoint may answer.
#[derive(IntoResponses)]
pub(crate) enum IngestResponses {
    #[response(status = 202, description = "written and acknowledged by the broker")]
    Accepted(AcceptedBody),
    #[response(
        status = 400,
        description = "a rule broken; `field` and `rule` say which"
    )]
    Invalid(ErrorBody),
    #[response(status = 401, description = "no or unknown API key")]
    Unauthenticated(ErrorBody),
    #[response(status = 403, description = "the key lacks the produce scope")]
    Forbidden(ErrorBody),
    #[response(status = 413, description = "body or record too large")]
    TooLarge(ErrorBody),
    #[response(status = 415, description = "not application/json")]
    UnsupportedMediaType(ErrorBody),
    #[response(status = 429, description = "rate limited; see Retry-After")]
    RateLimited(ErrorBody),
    #[response(status = 503, description = "not written; retry after Retry-After")]
    Unavailable(ErrorBody),
}

/// Every error answer.
#[derive(ToSchema)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema)]
pub(crate) struct ErrorDetail {
    /// Stable code: invalid_request, unauthenticated, forbidden, body_too_large,
    /// record_too_large, unsupported_media_type, rate_limited, unavailable.
    code: String,
    message: String,
    /// The offending field, as a path from the body.
    field: Option<String>,
    /// The rule it broke (400 only).
    rule: Option<String>,
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

/// The ingest API document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Eventide ingest", description = "Producers post events; 202 means the broker acknowledged the write."),
    paths(
        crate::routes::increment,
        crate::routes::redirect,
        crate::routes::event,
        crate::routes::app_event,
        crate::routes::track,
        crate::routes::batch
    ),
    components(schemas(BatchItemBody)),
    modifiers(&BearerAuth),
    security(("api_key" = []))
)]
pub struct IngestApi;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_and_lists_every_endpoint() {
        let document = serde_json::to_value(IngestApi::openapi()).expect("serialises");
        assert!(
            document["openapi"]
                .as_str()
                .is_some_and(|v| v.starts_with("3.1"))
        );
        for path in [
            "/v1/increment",
            "/v1/redirects",
            "/v1/events",
            "/v1/event",
            "/v1/track",
            "/v1/batch",
        ] {
            assert!(
                document["paths"][path]["post"].is_object(),
                "{path} missing"
            );
        }
        assert!(document["components"]["schemas"]["IncrementBody"].is_object());
    }
}
