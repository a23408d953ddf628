//! The OpenAPI 3.1 document at `/openapi.json`, generated from the handlers'
//! annotations: every parameter with the rules the handlers enforce
//! (formats, bounds, patterns, enumerations, read from the constants of
//! [`crate::paging`] and the routes where one exists), the answer types of
//! the handlers that build their JSON inline, and every error answer.
//!
//! What no schema can say is in the descriptions: `name` needs `category`,
//! `to` must be after `from`, a stats range may hold at most
//! [`crate::routes::clicks::MAX_BUCKETS`] buckets, and unknown query
//! parameters are refused.

#![allow(dead_code)] // the answer and parameter types exist for the document only

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AnyOfBuilder, KnownFormat, Object, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoParams, IntoResponses, Modify, Number, OpenApi, ToSchema};

use crate::paging::{CURSOR_PATTERN, DEFAULT_LIMIT, MAX_LIMIT};
use crate::routes::clicks::MAX_SHORT_CODE;
use crate::stats::{Granularity, GroupBy, Point, ReportLine};
use crate::store::{EventTypeCount, StoredError, StoredEvent, StoredNotification};

/// A real calendar day, `YYYY-MM-DD`: February 29th only in leap years.
const DAY: &str = concat!(
    "(?:",
    "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])",
    "|[0-9]{4}-(?:0[13-9]|1[0-2])-(?:29|30)",
    "|[0-9]{4}-(?:0[13578]|1[02])-31",
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29",
    ")"
);

/// A UTC month, `YYYY-MM`.
pub const MONTH_PATTERN: &str = "^[0-9]{4}-(?:0[1-9]|1[0-2])$";

/// `YYYY-MM-DDTHH:MM:SS` without an offset (UTC).
pub fn naive_time_pattern() -> String {
    format!("^{DAY}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]$")
}

/// `YYYY-MM-DD`.
pub fn day_pattern() -> String {
    format!("^{DAY}$")
}

/// `GET /v1/counters/{key}`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CounterAnswer {
    key: uuid::Uuid,
    /// The stored total; 0 for a key never incremented.
    value: i64,
    /// Up to when the increments partitions were processed and stored (RFC 3339).
    as_of: Option<String>,
}

/// `GET /v1/event-types`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventTypesAnswer {
    #[schema(value_type = Vec<EventTypeCount>)]
    event_types: Vec<Value>,
}

/// `GET /v1/notifications`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NotificationsPage {
    #[schema(value_type = Vec<StoredNotification>)]
    notifications: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/events`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsPage {
    #[schema(value_type = Vec<StoredEvent>)]
    events: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// `GET /v1/errors`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorsPage {
    #[schema(value_type = Vec<StoredError>)]
    errors: Vec<Value>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<String>,
}

/// One destination in `GET /v1/admin/destinations`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationStatus {
    destination: String,
    paused: bool,
    /// When the state last changed (RFC 3339); null if it never did.
    changed_at: Option<String>,
    /// `cli:<user>`, `api:<key id>` or `auto-pause`.
    changed_by: Option<String>,
    reason: Option<String>,
    /// Records of its source topic not yet finished; null for a destination
    /// with a state that is not configured here.
    lag: Option<i64>,
    /// When the receiver last answered 2xx (RFC 3339), over every delivery
    /// replica; reported at most every 2 s. Null if never seen.
    last_success_at: Option<String>,
    /// When an attempt last failed (RFC 3339), over every replica.
    last_error_at: Option<String>,
    /// How that attempt failed (`answered 502 Bad Gateway`, `request failed: ...`).
    last_error: Option<String>,
}

/// `GET /v1/admin/destinations`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct DestinationsAnswer {
    destinations: Vec<DestinationStatus>,
}

/// The optional body of pause and resume.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeBody {
    /// Why, shown by the destinations listing.
    reason: Option<String>,
}

/// What pause and resume answer: the state now.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateAnswer {
    destination: String,
    paused: bool,
    changed_by: String,
    reason: String,
}

/// `POST /v1/admin/replays`: name `destination`, or `stage` `processing`,
/// or `rejects` with `application`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayBody {
    /// Refused requests of `application`, judged again by ingest's
    /// validation now: those that pass are written, the rest refused again.
    rejects: Option<bool>,
    /// With `rejects`: whose refused requests.
    application: Option<String>,
    /// A configured destination: its dead letters go back to it alone.
    destination: Option<String>,
    /// `processing`: records the processor could not decode go back to
    /// their topic.
    stage: Option<String>,
    /// With `stage`: only records of this topic (`increments`, `events`, ...).
    topic: Option<String>,
    /// Dead-lettered (refused) at or after (RFC 3339).
    since: Option<String>,
    /// Dead-lettered (refused) before (RFC 3339).
    until: Option<String>,
    /// Only this user's records.
    user_id: Option<String>,
    /// Count and list (at most 1,000) what would be replayed; send nothing.
    dry_run: Option<bool>,
}

/// What a replay answers: dead letters replayed, or (stage `ingest`)
/// refused requests resubmitted.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayAnswer {
    run_id: uuid::Uuid,
    /// `delivery:<name>`, `processor`, or `ingest` for `rejects`.
    stage: String,
    dry_run: bool,
    /// Records replayed (would be, on a dry run), each once.
    replayed: Option<u64>,
    /// Dead letters of records already replayed in this run, or refused
    /// requests already resubmitted in it.
    repeats: u64,
    /// Dead letters (or rejects) read.
    read: u64,
    /// On a dry run of dead letters: the records, at most 1,000.
    #[schema(value_type = Option<Vec<Object>>)]
    records: Option<Vec<Value>>,
    /// `rejects`: the application.
    application: Option<String>,
    /// `rejects`: requests judged again.
    resubmitted: Option<u64>,
    /// `rejects`: records written (would be, on a dry run).
    written: Option<u64>,
    /// `rejects`: requests or batch items refused again (a new reject each,
    /// with the run as `replay_run`).
    refused_again: Option<u64>,
    /// `rejects`: requests refused for how they arrived, left alone.
    not_resubmittable: Option<u64>,
    /// `rejects` dry run: each request judged (at most 1,000).
    #[schema(value_type = Option<Vec<Object>>)]
    requests: Option<Vec<Value>>,
}

/// `GET /v1/links/{short_code}/stats`: human clicks (bots apart), zero-filled.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkStats {
    short_code: String,
    /// The first day of the series, `YYYY-MM-DD`.
    from: String,
    /// The last day of the series, `YYYY-MM-DD`.
    to: String,
    #[schema(schema_with = granularities)]
    granularity: String,
    #[schema(schema_with = group_bys_or_null)]
    group_by: Option<String>,
    total_clicks: i64,
    total_bot_clicks: i64,
    /// HEAD requests and link-preview fetchers (Slack, X, Facebook, ...).
    total_previews: i64,
    /// Distinct people over the whole range (HyperLogLog estimate within
    /// 2%; days' sketches merged, not summed). Clicks without `ip` have no
    /// visitor.
    total_unique_visitors: u64,
    /// With `group_by`: human clicks per value of the split.
    group_totals: Option<BTreeMap<String, i64>>,
    #[schema(value_type = Vec<Point>)]
    series: Vec<Value>,
    /// Up to when the redirects partitions were processed and stored (RFC 3339).
    as_of: Option<String>,
}

/// `GET /v1/clients/{client_id}/reports/{month}` as JSON.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClientReport {
    client_id: i64,
    month: String,
    total_clicks: i64,
    /// Most clicked first.
    #[schema(value_type = Vec<ReportLine>)]
    short_codes: Vec<Value>,
    as_of: Option<String>,
}

/// Every error answer.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorBody {
    error: ErrorDetail,
}

/// What went wrong.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ErrorDetail {
    #[schema(schema_with = error_codes)]
    code: String,
    /// For humans; not stable.
    message: String,
    /// 400 only: the offending parameter.
    #[schema(required = false)]
    parameter: String,
}

/// The stable codes of [`ErrorDetail`]: the handlers' (`crate::error`) and
/// the listener's ([`http_serve::Refusal`]). `tests/openapi.rs` renders every
/// error and checks its code is listed here.
pub const ERROR_CODES: &[&str] = &[
    "invalid_parameter",
    "unknown_parameter",
    "unauthenticated",
    "forbidden",
    "not_found",
    "method_not_allowed",
    "internal",
    "deadline_exceeded",
    "unavailable",
    "uri_too_long",
    "headers_too_large",
    "too_many_headers",
    "body_timeout",
];

fn error_codes() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(ERROR_CODES.iter().copied()))
        .description(Some("stable, machine-readable"))
        .build()
}

fn granularities() -> Object {
    let names = [Granularity::Day, Granularity::Month]
        .iter()
        .filter_map(|g| serde_json::to_value(g).ok());
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .build()
}

fn group_bys() -> Vec<&'static str> {
    GroupBy::all().into_iter().map(GroupBy::name).collect()
}

fn group_bys_or_null() -> Schema {
    let names: Vec<Value> = group_bys()
        .into_iter()
        .map(Value::from)
        .chain([Value::Null])
        .collect();
    ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::String,
            Type::Null,
        ]))
        .enum_values(Some(names))
        .into()
}

/// Rows per page: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent.
fn limit() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(MAX_LIMIT))
        .default(Some(DEFAULT_LIMIT.into()))
        .build()
}

fn cursor() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(2))
        .pattern(Some(CURSOR_PATTERN))
        .build()
}

fn non_empty() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .build()
}

/// A time bound of a listing: RFC 3339, `YYYY-MM-DDTHH:MM:SS` (UTC) or a
/// UTC day.
fn instant() -> Schema {
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(naive_time_pattern())),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(day_pattern())),
        )
        .into()
}

/// A bound of a stats series: a UTC day or month.
fn day_or_month() -> Schema {
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(day_pattern())),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(MONTH_PATTERN)),
        )
        .into()
}

fn short_code() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_SHORT_CODE))
        .pattern(Some(format!("^[A-Za-z0-9_-]{{1,{MAX_SHORT_CODE}}}$")))
        .build()
}

fn client_id() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
        .minimum(Some(0))
        .maximum(Some(Number::Int(i64::MAX as isize)))
        .build()
}

fn month() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(MONTH_PATTERN))
        .build()
}

fn error_kind() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(schemas::store::error_kind::ALL))
        .build()
}

fn group_by() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(group_bys()))
        .build()
}

fn top_limit() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(1))
        .maximum(Some(crate::routes::clicks::MAX_TOP))
        .default(Some(crate::routes::clicks::DEFAULT_TOP.into()))
        .build()
}

/// Marker types whose schema is built by a function, so a parameter can name
/// it as its `value_type` (`schema_with` would drop its description and
/// whether it is required).
macro_rules! schema_of {
    ($($(#[$doc:meta])* $name:ident => $build:expr;)*) => {$(
        $(#[$doc])*
        pub(crate) struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $build.into()
            }
        }

        impl ToSchema for $name {}
    )*};
}

schema_of! {
    /// Rows per page.
    Limit => limit();
    /// A cursor.
    Cursor => cursor();
    /// Non-empty text.
    NonEmpty => non_empty();
    /// A bound of a listing.
    Instant => instant();
    /// A bound of a stats series.
    DayOrMonth => day_or_month();
    /// A short code.
    ShortCode => short_code();
    /// A client id.
    ClientId => client_id();
    /// A UTC month.
    Month => month();
    /// An error kind.
    ErrorKind => error_kind();
    /// A bucket size.
    GranularityName => granularities();
    /// A split: an agent class or a breakdown.
    GroupByName => group_by();
    /// How many top values.
    TopLimit => top_limit();
}

/// `limit` and `cursor` of a keyset listing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PageParams {
    /// Rows per page.
    #[param(value_type = Option<Limit>, inline)]
    limit: Option<u32>,
    /// `next_cursor` of the previous page (opaque).
    #[param(value_type = Option<Cursor>, inline)]
    cursor: Option<String>,
}

/// The time range of a listing.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeParams {
    /// From this RFC 3339 time, `YYYY-MM-DDTHH:MM:SS` (UTC) or UTC day, inclusive.
    #[param(value_type = Option<Instant>, inline)]
    from: Option<String>,
    /// To this time (exclusive) or through this UTC day (inclusive); after `from`.
    #[param(value_type = Option<Instant>, inline)]
    to: Option<String>,
}

/// `GET /v1/events` filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EventFilterParams {
    /// One session's events.
    #[param(value_type = Option<NonEmpty>, inline)]
    session_id: Option<String>,
    /// One category's events.
    #[param(value_type = Option<NonEmpty>, inline)]
    category: Option<String>,
    /// With `category`: one event type.
    #[param(value_type = Option<NonEmpty>, inline)]
    name: Option<String>,
}

/// `GET /v1/errors` filters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ErrorFilterParams {
    /// Rejects (ingest refused the request) or dead letters (processing could not use a record).
    #[param(value_type = Option<ErrorKind>, inline)]
    kind: Option<String>,
    /// The producing application id.
    #[param(value_type = Option<NonEmpty>, inline)]
    app: Option<String>,
}

/// `GET /v1/notifications` parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct NotificationParams {
    /// Whose notifications.
    #[param(value_type = NonEmpty, inline)]
    user_id: String,
}

/// The short link of `GET /v1/links/{short_code}/stats`.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ShortCodePath {
    /// The short link, as ingest accepts it.
    #[param(value_type = ShortCode, inline)]
    short_code: String,
}

/// `GET /v1/links/{short_code}/stats` query parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LinkStatsQuery {
    /// First UTC day or month (default: 29 days or 11 months before `to`).
    #[param(value_type = Option<DayOrMonth>, inline)]
    from: Option<String>,
    /// Last UTC day or month, inclusive (default: today); not before
    /// `from`. A range of too many buckets is refused, naming `from`.
    #[param(value_type = Option<DayOrMonth>, inline)]
    to: Option<String>,
    /// Bucket size (default `day`).
    #[param(value_type = Option<GranularityName>, inline)]
    granularity: Option<String>,
    /// Split people's clicks by the agent's browser, OS or device class, or
    /// by country, referrer host, referrer channel (direct, search, social,
    /// email, other), UTM tag or source. Referrer and UTM values past
    /// `--max-dimension-values` per day are `(other)`.
    #[param(value_type = Option<GroupByName>, inline)]
    group_by: Option<String>,
}

/// `GET /v1/links/{short_code}/top` parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct LinkTopQuery {
    /// Which split to rank (as `group_by` of the stats).
    #[param(value_type = GroupByName, inline)]
    dimension: String,
    /// First UTC day or month (default: 29 days before `to`).
    #[param(value_type = Option<DayOrMonth>, inline)]
    from: Option<String>,
    /// Last UTC day or month, inclusive (default: today); before `from`, no
    /// day is selected.
    #[param(value_type = Option<DayOrMonth>, inline)]
    to: Option<String>,
    /// Values listed, 1 to 1000 (default 10).
    #[param(value_type = Option<TopLimit>, inline)]
    limit: Option<u32>,
}

/// `GET /v1/links/{short_code}/top`: a split's values with the most human
/// clicks over the range.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkTop {
    short_code: String,
    #[schema(schema_with = group_by)]
    dimension: String,
    from: String,
    to: String,
    /// People's clicks over the range, every value counted (listed or not).
    total_clicks: i64,
    #[schema(value_type = Vec<crate::stats::TopValue>)]
    values: Vec<Value>,
    as_of: Option<String>,
}

/// `GET /v1/clients/{client_id}/reports/{month}` parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub(crate) struct ClientReportParams {
    /// The paying client.
    #[param(value_type = ClientId, inline)]
    client_id: i64,
    /// The UTC month, `YYYY-MM`.
    #[param(value_type = Month, inline)]
    month: String,
}

/// An error answer with its description.
fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build(),
    )
}

/// What every admin endpoint may answer besides 200.
pub(crate) struct AdminErrorResponses;

impl IntoResponses for AdminErrorResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let mut all = ErrorResponses::responses();
        for (status, description) in [
            (
                "400",
                "a bad body or field; `parameter` names it (`invalid_parameter`)",
            ),
            ("403", "the key lacks the admin scope"),
            ("404", "no such destination, or no endpoint at this path"),
            (
                "503",
                "the broker cannot be reached, or delivery control is not configured (`unavailable`)",
            ),
        ] {
            all.insert(
                status.to_owned(),
                error_response(description).build().into(),
            );
        }
        all
    }
}

/// What every query endpoint may answer besides 200.
pub(crate) struct ErrorResponses;

impl IntoResponses for ErrorResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let www_authenticate = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["Bearer"])),
            )
            .description(Some("the scheme to authenticate with"))
            .build();
        let retry_after = HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some(
                "with `deadline_exceeded`: seconds to wait before retrying",
            ))
            .build();
        [
            (
                "400",
                error_response(
                    "a bad or unknown parameter; `parameter` names it (`invalid_parameter`, `unknown_parameter`)",
                ),
            ),
            (
                "401",
                error_response("no or unknown API key").header("WWW-Authenticate", www_authenticate),
            ),
            ("403", error_response("the key lacks the query scope")),
            ("404", error_response("no endpoint at this path")),
            ("405", error_response("the endpoint does not take this method")),
            (
                "408",
                error_response("a request body did not arrive within `--http-body-timeout` (default 30s)"),
            ),
            (
                "414",
                error_response("the request target is longer than `--http-max-uri-bytes` (default 8 KiB)"),
            ),
            (
                "431",
                error_response("the header fields are larger than `--http-max-header-bytes` (default 16 KiB) or too many"),
            ),
            ("500", error_response("a bug on our side (`internal`)")),
            (
                "503",
                error_response(
                    "the store is unavailable (`unavailable`), or the request did not answer within `--query-deadline` (`deadline_exceeded`, with `Retry-After`)",
                )
                .header("Retry-After", retry_after),
            ),
        ]
        .into_iter()
        .map(|(status, response)| (status.to_owned(), response.build().into()))
        .collect()
    }
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
    info(title = "Eventide query API", description = "Analysts read click statistics, client reports, counters, events, errors and notifications. Every /v1 call needs `Authorization: Bearer <key>` with the query scope. A query parameter an endpoint does not know is refused (400 `unknown_parameter`), so a typo is never ignored."),
    paths(
        crate::routes::clicks::link_stats,
        crate::routes::clicks::link_top,
        crate::routes::clicks::client_report,
        crate::routes::counter,
        crate::routes::events,
        crate::routes::event_types,
        crate::routes::errors,
        crate::routes::notifications,
        crate::routes::admin::destinations,
        crate::routes::admin::pause,
        crate::routes::admin::resume,
        crate::routes::admin::replays
    ),
    components(schemas(ErrorBody, ErrorDetail)),
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
