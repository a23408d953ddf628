//! The OpenAPI 3.1 document at `/openapi.json`: every request body with the
//! rules [`crate::validation`] enforces (unknown fields refused, text
//! non-empty and free of control characters, bounds, formats, the data of
//! known event types), and every answer a write endpoint gives, errors
//! included. Validation itself is in [`crate::validation`]; this module only
//! describes it, reading its constants where one exists.
//!
//! What no schema can say is in the descriptions: a timestamp may be at most
//! `--max-clock-skew` ahead of the server's clock, a body at most
//! `--max-body` bytes, a batch at most `--max-batch` items (the document
//! states the defaults), and an object may not name one key twice.

#![allow(dead_code)] // the body types exist for their schemas only

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use utoipa::openapi::content::ContentBuilder;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::response::{Response, ResponseBuilder};
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ArrayBuilder, KnownFormat, Object, ObjectBuilder,
    OneOfBuilder, Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{IntoResponses, Modify, Number, OpenApi, PartialSchema, ToSchema};
use uuid::Uuid;

use http_serve::Refusal;

use crate::error::ApiError;
use crate::settings::Settings;
use crate::validation::{
    IDEMPOTENCY_FIELD, IDEMPOTENCY_HEADER, ITEM_TYPES, MAX_SHORT_CODE, Rule, ValidationError,
};
use schemas::identity::MAX_KEY_LEN;

/// Text as every string field is read: non-empty, no control character
/// (`char::is_control`: U+0000 to U+001F and U+007F to U+009F, NUL included).
pub const TEXT_PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]+$";

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC) on a real calendar day: February
/// 29th only in leap years.
pub const NAIVE_TIMESTAMP_PATTERN: &str = concat!(
    "^(?:",
    "[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])",
    "|[0-9]{4}-(?:0[13-9]|1[0-2])-(?:29|30)",
    "|[0-9]{4}-(?:0[13578]|1[02])-31",
    "|(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)-02-29",
    ") (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\\.[0-9]{1,9})?$"
);

/// An absolute http(s) URL with a host: a scheme, then a host of the
/// characters a URL host may hold whose last label starts with a letter (so
/// it is a name, not an IPv4 address), an optional port, and a path, query
/// or fragment.
pub const HTTP_URL_PATTERN: &str = concat!(
    "^[Hh][Tt][Tt][Pp][Ss]?://",
    "(?:[A-Za-z0-9_~!$&'()*+,;=-]+\\.)*[A-Za-z][A-Za-z0-9_~!$&'()*+,;=-]*",
    "(?::[0-9]{1,4})?",
    "(?:[/?#][^\\u0000-\\u0020\\u007F-\\u009F]*)?$"
);

/// Text: see [`TEXT_PATTERN`].
pub(crate) struct Text;

impl PartialSchema for Text {
    fn schema() -> RefOr<Schema> {
        text().into()
    }
}

impl ToSchema for Text {}

/// A visitor's IPv4 or IPv6 address.
pub(crate) struct IpAddress;

impl PartialSchema for IpAddress {
    fn schema() -> RefOr<Schema> {
        let version = |format| {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(format)))
        };
        AnyOfBuilder::new()
            .item(version(KnownFormat::Ipv4))
            .item(version(KnownFormat::Ipv6))
            .description(Some(
                "the visitor's address as the shortener saw it: used for the country and \
                 unique visitors, then dropped (never stored)",
            ))
            .into()
    }
}

impl ToSchema for IpAddress {}

/// The visitor's `Accept-Language` header.
pub(crate) struct AcceptLanguage;

impl PartialSchema for AcceptLanguage {
    fn schema() -> RefOr<Schema> {
        text()
            .max_length(Some(crate::validation::MAX_ACCEPT_LANGUAGE))
            .into()
    }
}

impl ToSchema for AcceptLanguage {}

/// The webhook destinations a record names: only these deliver it.
pub(crate) struct DestinationNames;

impl PartialSchema for DestinationNames {
    fn schema() -> RefOr<Schema> {
        let name = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^[a-z0-9_-]{1,64}$"));
        ArrayBuilder::new()
            .items(name)
            .min_items(Some(1))
            .max_items(Some(schemas::destination::MAX_PER_RECORD))
            .unique_items(true)
            .description(Some(
                "only these destinations deliver the record (each still applying its filter); \
                 absent: every destination whose filter matches. A key limited to some destinations \
                 (`destinations` in the keys file) naming another is answered 403",
            ))
            .into()
    }
}

impl ToSchema for DestinationNames {}

/// A producer's identifier: text, or an integer (kept as its decimal text).
pub(crate) struct Id;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        let integer = ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(Number::Int(i64::MIN as isize)))
            .maximum(Some(Number::UInt(u64::MAX as usize)));
        OneOfBuilder::new()
            .item(text())
            .item(integer)
            .description(Some(
                "text, or an integer from -2^63 to 2^64-1 (stored as its decimal text)",
            ))
            .into()
    }
}

impl ToSchema for Id {}

/// When an event happened.
pub(crate) struct Timestamp;

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        let rfc3339 = ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)));
        let naive = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(NAIVE_TIMESTAMP_PATTERN));
        AnyOfBuilder::new()
            .item(rfc3339)
            .item(naive)
            .description(Some(
                "RFC 3339, or `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC; at most `--max-clock-skew` \
                 (default 5m) ahead of the server's clock, else 400 `future_timestamp`",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {}

/// A short link's code.
pub(crate) struct ShortCode;

impl PartialSchema for ShortCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(MAX_SHORT_CODE))
            .pattern(Some(format!("^[A-Za-z0-9_-]{{1,{MAX_SHORT_CODE}}}$")))
            .into()
    }
}

impl ToSchema for ShortCode {}

/// Where a short link leads.
pub(crate) struct HttpUrl;

impl PartialSchema for HttpUrl {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .pattern(Some(HTTP_URL_PATTERN))
            .description(Some("an absolute http or https URL with a host"))
            .into()
    }
}

impl ToSchema for HttpUrl {}

/// Any JSON value ingest can read: numbers within the range of a 64-bit
/// float (larger ones are refused as malformed JSON).
pub(crate) struct JsonValue;

impl PartialSchema for JsonValue {
    fn schema() -> RefOr<Schema> {
        json_value(
            true,
            "any JSON value, numbers within the range of a 64-bit float, nested at most 128 deep",
        )
    }
}

impl ToSchema for JsonValue {}

/// The payload of `/v1/track`: any JSON value but `null`, stored and
/// delivered unchanged.
pub(crate) struct Payload;

impl PartialSchema for Payload {
    fn schema() -> RefOr<Schema> {
        json_value(
            false,
            "any JSON value but null (a string, number, boolean, array or object), stored and delivered unchanged",
        )
    }
}

impl ToSchema for Payload {}

/// A JSON value, `null` included or not; nested values may be anything.
fn json_value(null: bool, description: &str) -> RefOr<Schema> {
    {
        let scalars: Vec<Type> = if null {
            vec![Type::Null, Type::Boolean, Type::String]
        } else {
            vec![Type::Boolean, Type::String]
        };
        let scalar = ObjectBuilder::new().schema_type(SchemaType::from_iter(scalars));
        let number = ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(Number::Float(f64::MIN)))
            .maximum(Some(Number::Float(f64::MAX)));
        let array = ArrayBuilder::new().items(Ref::from_schema_name(JsonValue::name()));
        AnyOfBuilder::new()
            .item(scalar)
            .item(number)
            .item(array)
            .item(json_object())
            .description(Some(description))
            .into()
    }
}

/// A JSON object of [`JsonValue`]s.
fn json_object() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(Ref::from_schema_name(JsonValue::name())))
}

/// A JSON object.
pub(crate) struct JsonObject;

impl PartialSchema for JsonObject {
    fn schema() -> RefOr<Schema> {
        json_object().into()
    }
}

impl ToSchema for JsonObject {}

/// A JSON object with at least one member.
pub(crate) struct NonEmptyObject;

impl PartialSchema for NonEmptyObject {
    fn schema() -> RefOr<Schema> {
        json_object().min_properties(Some(1)).into()
    }
}

impl ToSchema for NonEmptyObject {}

// `Deserialize` is derived on the body types only so that utoipa reads their
// `serde` attributes (`deny_unknown_fields`, `untagged`); nothing
// deserialises them.

/// `POST /v1/increment`.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct IncrementBody {
    /// The counter.
    key: Uuid,
    /// The amount to add.
    #[schema(minimum = 1)]
    value: i64,
}

/// `POST /v1/redirects`: one short-link click.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RedirectBody {
    #[schema(value_type = ShortCode)]
    short_code: String,
    #[schema(value_type = HttpUrl)]
    full_url: String,
    /// The paying client.
    #[schema(minimum = 0)]
    client_id: i64,
    /// Defaults to the `User-Agent` header; one of the two is required.
    #[schema(value_type = Text, required = false)]
    user_agent: String,
    #[schema(value_type = Option<Text>)]
    referrer: Option<String>,
    /// Defaults to when the request arrived.
    #[schema(value_type = Timestamp, required = false)]
    occurred_at: String,
    /// The visitor's IPv4 or IPv6 address as the shortener saw it: used for
    /// the country and unique visitors, then dropped (never stored).
    #[schema(value_type = Option<IpAddress>, required = false)]
    ip: Option<String>,
    /// `HEAD` requests count as previews, not clicks.
    #[schema(required = false, pattern = "^(GET|HEAD)$")]
    method: Option<String>,
    /// How the link was reached: `link` (the default), `qr`, or a label.
    #[schema(required = false, pattern = "^[a-z0-9_-]{1,32}$")]
    source: Option<String>,
    /// The visitor's `Accept-Language` header.
    #[schema(value_type = Option<AcceptLanguage>, required = false)]
    accept_language: Option<String>,
}

/// `POST /v1/events`: a behaviour event. When (category, name) is a known
/// event type, `data` must match its JSON Schema.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventBody {
    session_id: Uuid,
    #[schema(value_type = Text)]
    category: String,
    #[schema(value_type = Text)]
    name: String,
    #[schema(value_type = NonEmptyObject)]
    data: Map<String, Value>,
    #[schema(value_type = Timestamp)]
    timestamp: String,
    #[schema(value_type = Option<DestinationNames>)]
    destinations: Option<Vec<String>>,
}

/// `POST /v1/event`, original shape.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AppEventOriginal {
    #[schema(value_type = Id)]
    user_id: String,
    #[schema(value_type = Option<Id>)]
    device_id: Option<String>,
    /// The event type; unknown types are accepted.
    #[schema(value_type = Text)]
    r#type: String,
    #[schema(value_type = Timestamp)]
    time_stamp: String,
    #[schema(value_type = Option<Id>)]
    training_program_id: Option<String>,
    #[schema(value_type = Option<Text>)]
    training_program_title: Option<String>,
}

/// `POST /v1/event`, improved shape (told apart by its `userId`).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub(crate) struct AppEventImproved {
    #[schema(value_type = Id)]
    userId: String,
    #[schema(value_type = Option<Id>)]
    deviceId: Option<String>,
    /// The event type; unknown types are accepted.
    #[schema(value_type = Text)]
    r#type: String,
    #[schema(value_type = Timestamp)]
    timestamp: String,
    /// The event's data (default `{}`).
    #[schema(value_type = Option<JsonObject>)]
    details: Option<Map<String, Value>>,
}

/// `POST /v1/event`: either shape, as it is (no wrapper). When the type is a
/// known event type of category `app`, its data must match its JSON Schema.
#[derive(ToSchema, Deserialize)]
#[serde(untagged)]
pub(crate) enum AppEventBody {
    Original(AppEventOriginal),
    Improved(AppEventImproved),
}

/// `POST /v1/track`: a payload, keyed by its user; it happened now.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(non_snake_case)]
pub(crate) struct TrackBody {
    #[schema(value_type = Id)]
    userId: String,
    #[schema(value_type = Payload)]
    payload: Value,
    #[schema(value_type = Option<DestinationNames>)]
    destinations: Option<Vec<String>>,
}

/// `202 Accepted` of a single-record endpoint.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AcceptedBody {
    /// Always 1.
    #[schema(minimum = 1, maximum = 1)]
    accepted: u64,
    /// The id of the written event.
    #[schema(min_items = 1, max_items = 1)]
    ids: Vec<Uuid>,
}

/// What `POST /v1/batch` answers: the ids of the items written, and the
/// items refused or not written, by index. With `error`, the batch as a
/// whole failed (400 `no_valid_item`, or 503 when a valid item could not be
/// written).
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BatchAnswer {
    accepted: u64,
    /// The ids of the written items, in item order.
    ids: Vec<Uuid>,
    /// Each refused or unwritten item, by index.
    errors: Vec<ItemErrorBody>,
    error: Option<ErrorDetail>,
}

/// A refused or unwritten batch item.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ItemErrorBody {
    index: u64,
    error: ErrorDetail,
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
    /// 400 only: the first broken rule's field, as a path from the body
    /// (`value`, `data.host`); null for the body as a whole.
    field: Option<Option<String>>,
    /// 400 only: the first broken rule.
    #[schema(schema_with = rules, required = false)]
    rule: String,
    /// 400 only: every broken rule, first one first.
    violations: Option<Vec<ViolationBody>>,
}

/// One broken rule.
#[derive(ToSchema, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViolationBody {
    /// The field as a path from the body; absent for the body as a whole.
    #[schema(required = false)]
    field: String,
    #[schema(schema_with = rules)]
    rule: String,
    message: String,
}

/// A string with the [`TEXT_PATTERN`] rule.
fn text() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .pattern(Some(TEXT_PATTERN))
}

/// One of every error, so the codes are read from [`ApiError::code`].
fn every_error() -> Vec<ApiError> {
    let invalid = ValidationError { violations: vec![] };
    let low_disk = crate::disk::LowDisk { free: 0, floor: 0 };
    let every = vec![
        ApiError::Invalid(invalid),
        ApiError::Unauthenticated,
        ApiError::Forbidden { action: "" },
        ApiError::DestinationNotAllowed {
            name: String::new(),
            allowed: Vec::new(),
        },
        ApiError::BodyTooLarge { limit: 0 },
        ApiError::BodyTimeout,
        ApiError::BodyUnreadable,
        ApiError::RecordTooLarge,
        ApiError::UnsupportedMediaType,
        ApiError::UnsupportedEncoding(String::new()),
        ApiError::CorruptEncoding {
            encoding: "gzip",
            reason: String::new(),
        },
        ApiError::RateLimited {
            retry_after_secs: 1,
        },
        ApiError::NotFound {
            path: String::new(),
        },
        ApiError::MethodNotAllowed {
            method: String::new(),
            path: String::new(),
        },
        ApiError::LowDisk(low_disk),
        ApiError::Unavailable { why: "" },
    ];
    // A variant added to ApiError fails to compile here until it is listed.
    for err in &every {
        match err {
            ApiError::Invalid(_)
            | ApiError::Unauthenticated
            | ApiError::Forbidden { .. }
            | ApiError::DestinationNotAllowed { .. }
            | ApiError::BodyTooLarge { .. }
            | ApiError::BodyTimeout
            | ApiError::BodyUnreadable
            | ApiError::RecordTooLarge
            | ApiError::UnsupportedMediaType
            | ApiError::UnsupportedEncoding(_)
            | ApiError::CorruptEncoding { .. }
            | ApiError::RateLimited { .. }
            | ApiError::NotFound { .. }
            | ApiError::MethodNotAllowed { .. }
            | ApiError::LowDisk(_)
            | ApiError::Unavailable { .. } => {}
        }
    }
    every
}

/// Every rule, so the names are read from its `Serialize`.
const EVERY_RULE: [Rule; 17] = [
    Rule::MalformedJson,
    Rule::DuplicateKey,
    Rule::Type,
    Rule::Required,
    Rule::UnknownField,
    Rule::Uuid,
    Rule::Minimum,
    Rule::Range,
    Rule::Pattern,
    Rule::Url,
    Rule::Timestamp,
    Rule::FutureTimestamp,
    Rule::NonEmpty,
    Rule::ControlCharacter,
    Rule::Schema,
    Rule::MaxItems,
    Rule::NoValidItem,
];

/// A rule added to [`Rule`] fails to compile here until it is listed above.
const fn listed(rule: Rule) {
    match rule {
        Rule::MalformedJson
        | Rule::DuplicateKey
        | Rule::Type
        | Rule::Required
        | Rule::UnknownField
        | Rule::Uuid
        | Rule::Minimum
        | Rule::Range
        | Rule::Pattern
        | Rule::Url
        | Rule::Timestamp
        | Rule::FutureTimestamp
        | Rule::NonEmpty
        | Rule::ControlCharacter
        | Rule::Schema
        | Rule::MaxItems
        | Rule::NoValidItem => {}
    }
}

/// One of every refusal of the HTTP layer, before any handler.
fn every_refusal() -> Vec<Refusal> {
    let every = vec![
        Refusal::UriTooLong {
            length: 0,
            limit: 0,
        },
        Refusal::HeadersTooLarge {
            length: 0,
            limit: 0,
        },
        Refusal::TooManyHeaders { count: 0 },
        Refusal::BodyTimeout {
            timeout: std::time::Duration::ZERO,
        },
    ];
    // A variant added to Refusal fails to compile here until it is listed.
    for refusal in &every {
        match refusal {
            Refusal::UriTooLong { .. }
            | Refusal::HeadersTooLarge { .. }
            | Refusal::TooManyHeaders { .. }
            | Refusal::BodyTimeout { .. } => {}
        }
    }
    every
}

fn error_codes() -> Object {
    let handlers = every_error().iter().map(ApiError::code).collect::<Vec<_>>();
    let listener = every_refusal()
        .iter()
        .map(Refusal::code)
        .collect::<Vec<_>>();
    let mut codes: Vec<&str> = handlers.into_iter().chain(listener).collect();
    codes.sort_unstable();
    codes.dedup();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(codes))
        .description(Some("stable, machine-readable"))
        .build()
}

fn rules() -> Object {
    let names: Vec<Value> = EVERY_RULE
        .iter()
        .filter_map(|rule| serde_json::to_value(rule).ok())
        .collect();
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(names))
        .build()
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

/// Adds a `Retry-After` header (whole seconds) to a response.
fn with_retry_after(response: ResponseBuilder) -> ResponseBuilder {
    response.header(
        "Retry-After",
        HeaderBuilder::new()
            .schema(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(1)),
            )
            .description(Some("seconds to wait before retrying"))
            .build(),
    )
}

/// The 4xx and 5xx every write endpoint may answer.
fn error_responses() -> BTreeMap<String, RefOr<Response>> {
    let www_authenticate = HeaderBuilder::new()
        .schema(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(["Bearer"])),
        )
        .description(Some("the scheme to authenticate with"))
        .build();
    [
        (
            "400",
            error_response(
                "a rule broken (`invalid_request`: `field` and `rule` name the first, `violations` \
                 lists all), a compressed body that does not decompress (`corrupt_encoding`), or \
                 a body not read whole (`body_unreadable`)",
            ),
        ),
        (
            "401",
            error_response("no or unknown API key").header("WWW-Authenticate", www_authenticate),
        ),
        ("403", error_response("the key lacks the produce scope, or a record names a destination the key may not name")),
        ("404", error_response("no endpoint at this path")),
        ("405", error_response("the endpoint does not take this method")),
        (
            "408",
            error_response("the body did not arrive within `--http-body-timeout` (default 30s); the connection is closed"),
        ),
        (
            "413",
            error_response("the body, decompressed, is larger than `--max-body` (default 1 MiB), or the record larger than the broker takes"),
        ),
        (
            "415",
            error_response(
                "the body is not declared `application/json` (or `application/*+json`), or is \
                 compressed with an encoding other than gzip, deflate or zstd",
            ),
        ),
        (
            "414",
            error_response("the request target is longer than `--http-max-uri-bytes` (default 8 KiB)"),
        ),
        (
            "429",
            with_retry_after(error_response("the key's rate limit is spent")),
        ),
        (
            "431",
            error_response("the header fields are larger than `--http-max-header-bytes` (default 16 KiB) or too many"),
        ),
        (
            "503",
            with_retry_after(error_response(
                "not written (broker unreachable or slow, data dir low on disk); retry after `Retry-After`",
            )),
        ),
    ]
    .into_iter()
    .map(|(status, response)| (status.to_owned(), response.build().into()))
    .collect()
}

/// What every single-record write endpoint may answer.
pub(crate) struct IngestResponses;

impl IntoResponses for IngestResponses {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let accepted = ResponseBuilder::new()
            .description("written and acknowledged by the broker")
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name(AcceptedBody::name())))
                    .build(),
            );
        let mut responses = error_responses();
        responses.insert("202".to_owned(), accepted.build().into());
        responses
    }
}

/// JSON Schema keywords utoipa's schema types have no field for (`if`,
/// `then`, `const`, `allOf` beside `properties`) ride in extensions, which
/// serialise as keys of the schema object itself.
fn with_keywords(object: &mut Object, keywords: Value) {
    let Value::Object(keywords) = keywords else {
        return;
    };
    let extensions = object
        .extensions
        .get_or_insert_with(|| ExtensionsBuilder::new().build());
    for (key, value) in keywords {
        extensions.insert(key, value);
    }
}

/// The JSON Schema of each known event type in `category` whose data must
/// be more than an object (a rule that says only that adds nothing, and
/// generators handle fewer `if`s better), without its `$schema` (it is
/// embedded in this document's dialect).
fn known_types(category: Option<&str>) -> Vec<(&'static str, &'static str, Value)> {
    const SAY_NOTHING: [&str; 4] = ["$schema", "title", "description", "type"];
    schemas::event_types::EVENT_TYPES
        .iter()
        .filter(|t| category.is_none_or(|c| c == t.category))
        .filter_map(|t| {
            let mut schema: Value = serde_json::from_str(t.schema).ok()?;
            let object = schema.as_object_mut()?;
            if object.keys().all(|key| SAY_NOTHING.contains(&key.as_str())) {
                return None;
            }
            object.remove("$schema");
            Some((t.category, t.name, schema))
        })
        .collect()
}

/// `/v1/events`: `data` matches the schema of a known (category, name).
fn event_type_rules() -> Value {
    let rules: Vec<Value> = known_types(None)
        .into_iter()
        .map(|(category, name, schema)| {
            json!({
                "if": {
                    "properties": {"category": {"const": category}, "name": {"const": name}},
                    "required": ["category", "name"]
                },
                "then": {"properties": {"data": schema}}
            })
        })
        .collect();
    json!({ "allOf": rules })
}

fn id_ref() -> String {
    Ref::from_schema_name(Id::name()).ref_location
}

/// The fields a known app event type requires of its data.
fn required_of(schema: &Value) -> Vec<Value> {
    schema["required"].as_array().cloned().unwrap_or_default()
}

/// `/v1/event`, original shape: the data is the top-level
/// `training_program_*` fields, so a known type's required data fields are
/// required at the top. `type_field` is `type`, or `event_type` in a batch.
fn app_original_rules(type_field: &str) -> Value {
    let rules: Vec<Value> = known_types(Some(schemas::event_types::APP_CATEGORY))
        .into_iter()
        .filter(|(_, _, schema)| !required_of(schema).is_empty())
        .map(|(_, name, schema)| {
            let required = required_of(&schema);
            // Present and not null: null is read as absent.
            let present: Map<String, Value> = required
                .iter()
                .filter_map(Value::as_str)
                .map(|field| (field.to_owned(), json!({ "$ref": id_ref() })))
                .collect();
            json!({
                "if": {"properties": {type_field: {"const": name}}, "required": [type_field]},
                "then": {"required": required, "properties": present}
            })
        })
        .collect();
    json!({ "allOf": rules })
}

/// `/v1/event`, improved shape: `details` matches a known type's schema (and
/// is required when the schema requires a field).
fn app_improved_rules(type_field: &str) -> Value {
    let rules: Vec<Value> = known_types(Some(schemas::event_types::APP_CATEGORY))
        .into_iter()
        .map(|(_, name, schema)| {
            let required = if required_of(&schema).is_empty() {
                json!([])
            } else {
                json!(["details"])
            };
            json!({
                "if": {"properties": {type_field: {"const": name}}, "required": [type_field]},
                "then": {"properties": {"details": schema}, "required": required}
            })
        })
        .collect();
    json!({ "allOf": rules })
}

/// The inline object schema of a derived body type.
fn object_of<T: PartialSchema>() -> Object {
    match T::schema() {
        RefOr::T(Schema::Object(object)) => object,
        _ => Object::new(),
    }
}

/// A body schema as a batch item: `type` names the kind and, for app
/// events, the event's own type travels as `event_type`.
fn as_item(mut object: Object, kind: &str) -> Object {
    if let Some(event_type) = object.properties.remove("type") {
        object
            .properties
            .insert("event_type".to_owned(), event_type);
        if let Some(required) = object.required.iter_mut().find(|r| *r == "type") {
            *required = "event_type".to_owned();
        }
    }
    let mut tag = ObjectBuilder::new().schema_type(Type::String).build();
    with_keywords(&mut tag, json!({ "const": kind }));
    object.properties.insert("type".to_owned(), tag.into());
    object.required.push("type".to_owned());
    object
        .properties
        .insert(IDEMPOTENCY_FIELD.to_owned(), idempotency_key().into());
    object
}

/// An idempotency key, as [`schemas::identity::IdempotencyKey`] checks it.
fn idempotency_key() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(MAX_KEY_LEN))
        .pattern(Some("^[!-~]([ -~]*[!-~])?$"))
        .description(Some(
            "the producer's key for this request: every retry with the same key (per application) \
             is applied once within the processor's `--dedup-window` (default 24h), and answered \
             with the same id",
        ))
        .build()
}

/// The `Idempotency-Key` header of a single-event endpoint.
fn idempotency_header() -> Parameter {
    ParameterBuilder::new()
        .name(IDEMPOTENCY_HEADER)
        .parameter_in(ParameterIn::Header)
        .required(utoipa::openapi::Required::False)
        .schema(Some(idempotency_key()))
        .build()
}

/// The shapes of one batch item kind, by its `type`.
fn item_shapes(kind: &str) -> Vec<Object> {
    match kind {
        "increment" => vec![as_item(object_of::<IncrementBody>(), kind)],
        "redirect" => vec![as_item(object_of::<RedirectBody>(), kind)],
        "event" => {
            let mut event = as_item(object_of::<EventBody>(), kind);
            with_keywords(&mut event, event_type_rules());
            vec![event]
        }
        "app" => {
            let mut original = as_item(object_of::<AppEventOriginal>(), kind);
            with_keywords(&mut original, app_original_rules("event_type"));
            let mut improved = as_item(object_of::<AppEventImproved>(), kind);
            with_keywords(&mut improved, app_improved_rules("event_type"));
            vec![original, improved]
        }
        "track" => vec![as_item(object_of::<TrackBody>(), kind)],
        _ => vec![],
    }
}

/// One `POST /v1/batch` item: the body of its endpoint with a `type`.
pub(crate) struct BatchItemBody;

impl PartialSchema for BatchItemBody {
    fn schema() -> RefOr<Schema> {
        batch_item().into()
    }
}

impl ToSchema for BatchItemBody {}

fn batch_item() -> Schema {
    let shapes = ITEM_TYPES.iter().flat_map(|kind| item_shapes(kind));
    let mut one_of = OneOfBuilder::new().description(Some(
        "the body of the endpoint its `type` names; an app event's own type travels as `event_type`",
    ));
    for shape in shapes {
        one_of = one_of.item(shape);
    }
    one_of.build().into()
}

/// The `POST /v1/batch` body: an array of items, or `{"items": [...]}`.
/// Items are judged one by one, so an invalid item does not make the batch
/// invalid: the batch is refused only when it is too long or has items and
/// none of them is valid.
fn batch_body() -> Schema {
    let max_items = Settings::default().max_batch;
    let items = || {
        let mut array = ArrayBuilder::new()
            .max_items(Some(max_items))
            .description(Some(format!(
                "at most `--max-batch` (default {max_items}) items, each a `BatchItemBody` or refused \
                 on its own in the answer's `errors`; none, or at least one valid"
            )))
            .build();
        let at_least_one_valid = json!({ "contains": { "$ref": Ref::from_schema_name(BatchItemBody::name()).ref_location } });
        let one_valid_or_empty = json!({ "anyOf": [{ "maxItems": 0 }, at_least_one_valid] });
        let extensions = array
            .extensions
            .get_or_insert_with(|| ExtensionsBuilder::new().build());
        extensions.extend(one_valid_or_empty.as_object().cloned().unwrap_or_default());
        array
    };
    let wrapped = ObjectBuilder::new()
        .property("items", items())
        .required("items")
        .additional_properties(Some(AdditionalProperties::FreeForm(false)));
    OneOfBuilder::new()
        .item(items())
        .item(wrapped)
        .build()
        .into()
}

/// Completes what the handler annotations cannot say: the schemas the
/// answers name, the known event types' data rules, and the batch's own
/// body and answers.
struct Completion;

impl Modify for Completion {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        let schemas = &mut components.schemas;
        if let Some(RefOr::T(Schema::Object(event))) = schemas.get_mut(EventBody::name().as_ref()) {
            with_keywords(event, event_type_rules());
        }
        for (name, rules) in [
            (AppEventOriginal::name(), app_original_rules("type")),
            (AppEventImproved::name(), app_improved_rules("type")),
        ] {
            if let Some(RefOr::T(Schema::Object(shape))) = schemas.get_mut(name.as_ref()) {
                with_keywords(shape, rules);
            }
        }
        schemas.insert("BatchBody".to_owned(), batch_body().into());

        for (path, item) in &mut openapi.paths.paths {
            if path == "/v1/batch" {
                continue;
            }
            if let Some(post) = item.post.as_mut() {
                post.parameters
                    .get_or_insert_with(Vec::new)
                    .push(idempotency_header());
            }
        }

        let batch = openapi
            .paths
            .paths
            .get_mut("/v1/batch")
            .and_then(|item| item.post.as_mut());
        if let Some(batch) = batch {
            batch.request_body = Some(
                RequestBodyBuilder::new()
                    .required(Some(utoipa::openapi::Required::True))
                    .content(
                        "application/json",
                        ContentBuilder::new()
                            .schema(Some(Ref::from_schema_name("BatchBody")))
                            .build(),
                    )
                    .build(),
            );
            let answer = |description: &str| {
                ResponseBuilder::new().description(description).content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name(BatchAnswer::name())))
                        .build(),
                )
            };
            let either = |description: &str| {
                let schema = OneOfBuilder::new()
                    .item(Ref::from_schema_name(ErrorBody::name()))
                    .item(Ref::from_schema_name(BatchAnswer::name()));
                ResponseBuilder::new().description(description).content(
                    "application/json",
                    ContentBuilder::new().schema(Some(schema)).build(),
                )
            };
            let responses = &mut batch.responses.responses;
            responses.insert(
                "202".to_owned(),
                answer("the valid items written and acknowledged; refused ones in `errors`")
                    .build()
                    .into(),
            );
            responses.insert(
                "400".to_owned(),
                either("the body is not a batch (an error), or no item is valid (every item's error in `errors`)")
                    .build()
                    .into(),
            );
            responses.insert(
                "503".to_owned(),
                with_retry_after(either(
                    "a valid item was not written; the written ones in `ids`, the rest in `errors`",
                ))
                .build()
                .into(),
            );
        }
    }
}

/// The ingest API document.
#[derive(Debug, OpenApi)]
#[openapi(
    info(title = "Eventide ingest", description = "Producers post events; 202 means the broker acknowledged the write. Every endpoint needs `Authorization: Bearer <key>` with the produce scope. Bodies are JSON objects that may not name a key twice, sent as they are or with `Content-Encoding: gzip`, `deflate` or `zstd` (`--max-body` applies to the decompressed size). A retried request counts once when it carries the same `Idempotency-Key` header (a batch item: `idempotency_key`)."),
    paths(
        crate::routes::increment,
        crate::routes::redirect,
        crate::routes::event,
        crate::routes::app_event,
        crate::routes::track,
        crate::routes::batch
    ),
    components(schemas(
        Text, Id, DestinationNames, Timestamp, ShortCode, HttpUrl, JsonValue, JsonObject, NonEmptyObject,
        IncrementBody, RedirectBody, EventBody, AppEventBody, AppEventOriginal,
        AppEventImproved, TrackBody, Payload, AcceptedBody, BatchAnswer, ItemErrorBody,
        ErrorBody, ErrorDetail, ViolationBody, BatchItemBody
    )),
    modifiers(&Completion),
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

    #[test]
    fn the_text_pattern_excludes_exactly_the_control_characters() {
        let pattern = regex_of(TEXT_PATTERN);
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            assert_eq!(
                pattern.is_valid(&json!(c.to_string())),
                !c.is_control(),
                "U+{:04X}",
                u32::from(c)
            );
        }
    }

    #[test]
    fn the_naive_timestamp_pattern_matches_what_the_parser_takes() {
        let pattern = regex_of(NAIVE_TIMESTAMP_PATTERN);
        for (text, valid) in [
            ("2021-02-28 16:22:52", true),
            ("2021-02-28 16:22:52.243860", true),
            ("2020-02-29 00:00:00", true),
            ("2000-02-29 00:00:00", true),
            ("0000-02-29 23:59:59", true),
            ("2021-12-31 23:59:59", true),
            ("2021-04-30 12:00:00", true),
            ("2021-02-29 16:22:52", false),
            ("1900-02-29 00:00:00", false),
            ("2021-04-31 12:00:00", false),
            ("2021-13-01 12:00:00", false),
            ("2021-02-28 24:00:00", false),
            ("2021-02-28T16:22:52", false),
            ("2021-02-28 16:22:52.", false),
        ] {
            assert_eq!(pattern.is_valid(&json!(text)), valid, "{text}");
            if valid {
                assert!(crate::validation::parse_timestamp(text).is_some(), "{text}");
            }
        }
        for year in 0..10_000 {
            let text = format!("{year:04}-02-29 00:00:00");
            assert_eq!(
                pattern.is_valid(&json!(text)),
                crate::validation::parse_timestamp(&text).is_some(),
                "{text}"
            );
        }
    }

    #[test]
    fn urls_the_pattern_admits_are_absolute_http_urls() {
        let pattern = regex_of(HTTP_URL_PATTERN);
        for (text, valid) in [
            ("https://example.org/x?y=1", true),
            ("http://a", true),
            ("HTTP://a.b-c.d:8080/p#f", true),
            ("http://a*", true),
            ("http://1.2.3.4/", false),
            ("ftp://example.org/", false),
            ("/relative", false),
            ("http://", false),
        ] {
            assert_eq!(pattern.is_valid(&json!(text)), valid, "{text}");
            if valid {
                let url = url::Url::parse(text).expect(text);
                assert!(matches!(url.scheme(), "http" | "https") && url.has_host());
            }
        }
    }

    #[test]
    fn every_batch_item_type_has_a_shape() {
        for kind in ITEM_TYPES {
            assert!(!item_shapes(kind).is_empty(), "{kind}");
        }
    }

    fn regex_of(pattern: &str) -> jsonschema::Validator {
        jsonschema::validator_for(&json!({ "type": "string", "pattern": pattern }))
            .expect("compiles")
    }
}
