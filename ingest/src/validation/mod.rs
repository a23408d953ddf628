//! Request bodies to typed requests, or an error that names the field and
//! the rule it broke. Nothing here does I/O; the clock and the event-type
//! schemas are passed in.
//!
//! One module per endpoint shape; [`Fields`] holds the checks they share.

mod app;
mod batch;
mod event;
mod idempotency;
mod increment;
mod redirect;
mod strict_json;
mod track;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event_types::EventTypes;

pub use app::parse_app_event;
pub(crate) use batch::ITEM_TYPES;
pub use batch::{BatchItem, KeyedItem, parse_batch};
pub use event::{EventRequest, parse_event};
pub use idempotency::parse_key as parse_idempotency_key;
pub(crate) use idempotency::{FIELD as IDEMPOTENCY_FIELD, HEADER as IDEMPOTENCY_HEADER};
pub use increment::{IncrementRequest, parse_increment};
pub(crate) use redirect::MAX_SHORT_CODE;
pub use redirect::{MAX_ACCEPT_LANGUAGE, RedirectRequest, parse_redirect};
pub use track::parse_track;

/// The rule a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The body is not JSON.
    MalformedJson,
    /// An object names one key twice.
    DuplicateKey,
    /// The body or a field has the wrong JSON type.
    Type,
    /// A required field is missing.
    Required,
    /// A field the endpoint does not know.
    UnknownField,
    /// A string that must be a UUID is not one.
    Uuid,
    /// A number below its minimum.
    Minimum,
    /// A number outside the range of its type.
    Range,
    /// A string that does not match its pattern or length.
    Pattern,
    /// A URL that is not absolute http(s).
    Url,
    /// A timestamp in neither accepted format.
    Timestamp,
    /// A timestamp further in the future than the allowed clock skew.
    FutureTimestamp,
    /// An object or string that must not be empty.
    NonEmpty,
    /// Text that holds a control character (NUL included): identifiers and
    /// names are text, not bytes.
    ControlCharacter,
    /// Event data that breaks its type's JSON Schema.
    Schema,
    /// A batch with more items than allowed.
    MaxItems,
    /// A batch none of whose items is valid.
    NoValidItem,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The field as a path from the body (`value`, `data.host`); `None` for
    /// the body as a whole.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// The rule it broke.
    pub rule: Rule,
    /// What was wrong, for humans.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(field: Option<&str>, rule: Rule, message: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_owned),
            rule,
            message: message.into(),
        }
    }
}

/// Every rule a request broke, first one first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .violations.first().map_or("invalid request", |v| v.message.as_str()))]
pub struct ValidationError {
    /// Never empty.
    pub violations: Vec<Violation>,
}

impl ValidationError {
    pub(crate) fn one(violation: Violation) -> Self {
        Self {
            violations: vec![violation],
        }
    }

    /// The first violation.
    pub fn first(&self) -> Option<&Violation> {
        self.violations.first()
    }
}

/// What parsing needs from outside the body.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// Now, in microseconds since the epoch.
    pub now: i64,
    /// How far in the future a timestamp may be.
    pub max_skew_micros: i64,
    /// The request's `User-Agent` header, for redirects that carry none.
    pub user_agent: Option<&'a str>,
    /// JSON Schemas of the known event types.
    pub event_types: &'a EventTypes,
}

/// Parses one record's object for a single-record endpoint.
pub type SingleParser = fn(&Map<String, Value>, &Context<'_>) -> Result<BatchItem, ValidationError>;

/// The parser of each single-record endpoint, by path: what the routes and
/// a replay of refused requests both use.
pub fn single_parser(endpoint: &str) -> Option<SingleParser> {
    let parser: SingleParser = match endpoint {
        "/v1/increment" => |object, _| parse_increment(object).map(BatchItem::Increment),
        "/v1/redirects" => {
            |object, context| parse_redirect(object, context).map(BatchItem::Redirect)
        }
        "/v1/events" => |object, context| parse_event(object, context).map(BatchItem::Event),
        "/v1/event" => |object, context| parse_app_event(object, context).map(BatchItem::Event),
        "/v1/track" => |object, context| parse_track(object, context).map(BatchItem::Event),
        _ => return None,
    };
    Some(parser)
}

/// Parses a body as JSON, naming line and column when it is not.
///
/// # Errors
///
/// [`Rule::MalformedJson`].
pub fn parse_json(body: &[u8]) -> Result<Value, ValidationError> {
    let duplicate = std::cell::RefCell::new(None);
    strict_json::parse(body, &duplicate).map_err(|err| {
        let violation = match duplicate.into_inner() {
            Some(key) => Violation::new(
                Some(&key),
                Rule::DuplicateKey,
                format!(
                    "`{key}` appears twice in one object (line {} column {})",
                    err.line(),
                    err.column()
                ),
            ),
            None => Violation::new(
                None,
                Rule::MalformedJson,
                format!(
                    "body is not valid JSON at line {} column {}: {err}",
                    err.line(),
                    err.column()
                ),
            ),
        };
        ValidationError::one(violation)
    })
}

/// The body as a JSON object.
///
/// # Errors
///
/// [`Rule::MalformedJson`] or [`Rule::Type`].
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ValidationError> {
    match parse_json(body)? {
        Value::Object(object) => Ok(object),
        other => Err(ValidationError::one(Violation::new(
            None,
            Rule::Type,
            format!("body must be a JSON object, got {}", json_type(&other)),
        ))),
    }
}

/// Checks on the fields of one JSON object, collecting every violation.
#[derive(Debug)]
pub(crate) struct Fields<'a> {
    object: &'a Map<String, Value>,
    violations: Vec<Violation>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(object: &'a Map<String, Value>) -> Self {
        Self {
            object,
            violations: Vec::new(),
        }
    }

    pub(crate) fn has(&self, name: &str) -> bool {
        self.object.contains_key(name)
    }

    pub(crate) fn push(&mut self, field: &str, rule: Rule, message: impl Into<String>) {
        self.violations
            .push(Violation::new(Some(field), rule, message));
    }

    /// Every field not in `known` is a violation.
    pub(crate) fn deny_unknown(&mut self, known: &[&str]) {
        for name in self.object.keys() {
            if !known.contains(&name.as_str()) {
                let message = format!(
                    "unknown field `{name}`; allowed fields are {}",
                    known.join(", ")
                );
                self.violations
                    .push(Violation::new(Some(name), Rule::UnknownField, message));
            }
        }
    }

    fn get(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        match self.object.get(name) {
            Some(Value::Null) | None => {
                if required {
                    self.push(
                        name,
                        Rule::Required,
                        format!("missing required field `{name}`"),
                    );
                }
                None
            }
            Some(value) => Some(value),
        }
    }

    /// Any JSON value but `null`.
    pub(crate) fn value(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        self.get(name, required)
    }

    /// A string field, non-empty when present.
    pub(crate) fn string(&mut self, name: &str, required: bool) -> Option<&'a str> {
        match self.get(name, required)? {
            Value::String(text) if text.is_empty() => {
                self.push(name, Rule::NonEmpty, format!("`{name}` must not be empty"));
                None
            }
            Value::String(text) => match text.char_indices().find(|(_, c)| c.is_control()) {
                Some((at, c)) => {
                    let message = format!(
                        "`{name}` must not contain control characters (U+{:04X} at byte {at})",
                        u32::from(c)
                    );
                    self.push(name, Rule::ControlCharacter, message);
                    None
                }
                None => Some(text),
            },
            other => {
                let message = format!("`{name}` must be a string, got {}", json_type(other));
                self.push(name, Rule::Type, message);
                None
            }
        }
    }

    /// The optional `destinations` list: `Ok(None)` when absent, else 1 to
    /// 16 distinct destination names; `Err` after recording what is wrong.
    pub(crate) fn destinations(&mut self) -> Result<Option<Vec<String>>, ()> {
        use schemas::destination::{MAX_PER_RECORD, is_valid_name};
        const FIELD: &str = "destinations";
        let Some(value) = self.get(FIELD, false) else {
            return Ok(None);
        };
        let Value::Array(items) = value else {
            let message = format!(
                "`{FIELD}` must be an array of destination names, got {}",
                json_type(value)
            );
            self.push(FIELD, Rule::Type, message);
            return Err(());
        };
        if items.is_empty() {
            let message = format!("`{FIELD}` must name at least one destination, or be left out");
            self.push(FIELD, Rule::NonEmpty, message);
            return Err(());
        }
        if items.len() > MAX_PER_RECORD {
            let message = format!("`{FIELD}` may name at most {MAX_PER_RECORD} destinations");
            self.push(FIELD, Rule::MaxItems, message);
            return Err(());
        }
        let mut names: Vec<String> = Vec::with_capacity(items.len());
        let mut broken = false;
        for (index, item) in items.iter().enumerate() {
            let field = format!("{FIELD}[{index}]");
            match item {
                Value::String(name) if !is_valid_name(name) => {
                    self.push(
                        &field,
                        Rule::Pattern,
                        format!(
                            "`{field}` must be 1 to 64 of [a-z0-9_-], as destinations are named"
                        ),
                    );
                    broken = true;
                }
                Value::String(name) if names.contains(name) => {
                    self.push(
                        &field,
                        Rule::Pattern,
                        format!("`{field}` names {name:?} twice"),
                    );
                    broken = true;
                }
                Value::String(name) => names.push(name.clone()),
                other => {
                    let message = format!("`{field}` must be a string, got {}", json_type(other));
                    self.push(&field, Rule::Type, message);
                    broken = true;
                }
            }
        }
        if broken { Err(()) } else { Ok(Some(names)) }
    }

    /// A string field or an integer, as text (ids sent either way).
    pub(crate) fn id(&mut self, name: &str, required: bool) -> Option<String> {
        match self.get(name, required)? {
            Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
            // `42.0` is the integer JSON Schema says it is.
            Value::Number(number) if whole(number).is_some() => {
                whole(number).map(|n| n.to_string())
            }
            Value::String(_) => self.string(name, required).map(str::to_owned),
            other => {
                let message = format!(
                    "`{name}` must be a string or an integer, got {}",
                    json_type(other)
                );
                self.push(name, Rule::Type, message);
                None
            }
        }
    }

    pub(crate) fn uuid(&mut self, name: &str) -> Option<Uuid> {
        let text = self.string(name, true)?;
        match Uuid::try_parse(text) {
            Ok(id) => Some(id),
            Err(_) => {
                let message =
                    format!("`{name}` must be a UUID such as 0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c");
                self.push(name, Rule::Uuid, message);
                None
            }
        }
    }

    /// An integer field of at least `minimum`.
    pub(crate) fn integer(&mut self, name: &str, minimum: i64) -> Option<i64> {
        let value = self.get(name, true)?;
        let Value::Number(number) = value else {
            let message = format!("`{name}` must be an integer, got {}", json_type(value));
            self.push(name, Rule::Type, message);
            return None;
        };
        let Some(int) = number
            .as_i64()
            .or_else(|| whole(number).and_then(|n| i64::try_from(n).ok()))
        else {
            let (rule, message) = if number.is_u64() || whole(number).is_some() {
                (
                    Rule::Range,
                    format!("`{name}` must fit in a signed 64-bit integer"),
                )
            } else {
                (
                    Rule::Type,
                    format!("`{name}` must be an integer, got {number}"),
                )
            };
            self.push(name, rule, message);
            return None;
        };
        if int < minimum {
            self.push(
                name,
                Rule::Minimum,
                format!("`{name}` must be at least {minimum}, got {int}"),
            );
            return None;
        }
        Some(int)
    }

    /// A JSON object field; non-empty when `non_empty`.
    pub(crate) fn object(
        &mut self,
        name: &str,
        required: bool,
        non_empty: bool,
    ) -> Option<&'a Map<String, Value>> {
        match self.get(name, required)? {
            Value::Object(object) if non_empty && object.is_empty() => {
                self.push(
                    name,
                    Rule::NonEmpty,
                    format!("`{name}` must be a non-empty object"),
                );
                None
            }
            Value::Object(object) => Some(object),
            other => {
                let message = format!("`{name}` must be a JSON object, got {}", json_type(other));
                self.push(name, Rule::Type, message);
                None
            }
        }
    }

    /// A timestamp: RFC 3339 or `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC), not
    /// further in the future than the allowed skew.
    pub(crate) fn timestamp(
        &mut self,
        name: &str,
        required: bool,
        context: &Context<'_>,
    ) -> Option<i64> {
        let text = self.string(name, required)?;
        let Some(micros) = parse_timestamp(text) else {
            let message = format!(
                "`{name}` must be RFC 3339 or `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC, got `{text}`"
            );
            self.push(name, Rule::Timestamp, message);
            return None;
        };
        if micros > context.now.saturating_add(context.max_skew_micros) {
            let ahead = (micros - context.now) / 1_000_000;
            let message =
                format!("`{name}` is {ahead}s in the future, more than the allowed clock skew");
            self.push(name, Rule::FutureTimestamp, message);
            return None;
        }
        Some(micros)
    }

    /// The parsed value if nothing was violated.
    pub(crate) fn finish<T>(self, value: Option<T>) -> Result<T, ValidationError> {
        match value {
            Some(value) if self.violations.is_empty() => Ok(value),
            _ if self.violations.is_empty() => Err(ValidationError::one(Violation::new(
                None,
                Rule::Type,
                "invalid request",
            ))),
            _ => Err(ValidationError {
                violations: self.violations,
            }),
        }
    }

    pub(crate) fn extend(&mut self, violations: Vec<Violation>) {
        self.violations.extend(violations);
    }
}

/// RFC 3339, or `YYYY-MM-DD HH:MM:SS[.ffffff]` taken as UTC, to microseconds.
pub fn parse_timestamp(text: &str) -> Option<i64> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc).timestamp_micros());
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc().timestamp_micros())
}

pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A number written with a zero fraction (`334.0`, `1e3`) as the integer it
/// is; JSON Schema's `integer` accepts these. Only below 2^53 in magnitude:
/// beyond it a float no longer tells which integer was written (an integer
/// literal past 64 bits is read as the nearest float, `i64::MIN` for
/// -9223372036854775809), so such numbers are refused, not guessed.
fn whole(number: &serde_json::Number) -> Option<i128> {
    let float = number.as_f64()?;
    let bound = 9_007_199_254_740_992.0_f64;
    #[allow(clippy::cast_possible_truncation)]
    (float.fract() == 0.0 && float.abs() < bound).then_some(float as i128)
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;

    pub(crate) const NOW: i64 = 1_700_000_000_000_000;

    pub(crate) fn with_context<T>(
        user_agent: Option<&str>,
        f: impl FnOnce(&Context<'_>) -> T,
    ) -> T {
        let event_types = EventTypes::compile().expect("shipped schemas compile");
        let context = Context {
            now: NOW,
            max_skew_micros: 300_000_000,
            user_agent,
            event_types: &event_types,
        };
        f(&context)
    }

    /// The (field, rule) of the first violation.
    pub(crate) fn first_of(err: &ValidationError) -> (Option<String>, Rule) {
        let v = err.first().expect("at least one violation");
        (v.field.clone(), v.rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_in_both_formats() {
        assert_eq!(
            parse_timestamp("2021-02-28 16:22:52"),
            Some(1_614_529_372_000_000)
        );
        assert_eq!(
            parse_timestamp("2021-02-28T16:22:52Z"),
            Some(1_614_529_372_000_000)
        );
        assert_eq!(
            parse_timestamp("2021-02-28T18:22:52+02:00"),
            Some(1_614_529_372_000_000)
        );
        assert_eq!(
            parse_timestamp("2021-02-28 16:22:52.250000"),
            Some(1_614_529_372_250_000)
        );
        assert_eq!(parse_timestamp("28/02/2021"), None);
        assert_eq!(parse_timestamp(""), None);
    }

    #[test]
    fn malformed_json_names_line_and_column() {
        let err = parse_json(b"{\n  \"key\": ,\n}").expect_err("malformed");
        let message = &err.first().expect("violation").message;
        assert!(message.contains("line 2 column"), "{message}");
    }
}
