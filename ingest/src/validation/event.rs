//! `POST /v1/events`: "The Eye" events (`reference/003_*`):
//! `{session_id, category, name, data, timestamp}`.

use serde_json::{Map, Value};

use super::{Context, Fields, ValidationError};
use crate::event_types::TypeCheck;

/// A valid event in the common envelope every event endpoint maps onto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRequest {
    /// Partition key: a session, or a user for app and track events.
    pub session_id: String,
    pub category: String,
    pub name: String,
    /// An object, except on `/v1/track`, whose payload is any JSON value.
    pub data: Value,
    /// Microseconds since the epoch.
    pub occurred_at: i64,
    /// False when no JSON Schema exists for (category, name).
    pub known_type: bool,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    /// The webhook destinations the producer named, if any.
    pub destinations: Option<Vec<String>>,
}

/// Parses an event object, validating `data` against its type's schema.
///
/// # Errors
///
/// [`ValidationError`] listing every broken rule.
pub fn parse_event(
    object: &Map<String, Value>,
    context: &Context<'_>,
) -> Result<EventRequest, ValidationError> {
    let mut fields = Fields::new(object);
    fields.deny_unknown(&[
        "session_id",
        "category",
        "name",
        "data",
        "timestamp",
        "destinations",
    ]);
    let session_id = fields.uuid("session_id");
    let category = fields.string("category", true);
    let name = fields.string("name", true);
    let data = fields.object("data", true, true);
    let occurred_at = fields.timestamp("timestamp", true, context);
    let destinations = fields.destinations();
    let known_type = check_type(&mut fields, category, name, data, context);
    let request = (|| {
        Some(EventRequest {
            session_id: session_id?.hyphenated().to_string(),
            category: category?.to_owned(),
            name: name?.to_owned(),
            data: Value::Object(data?.clone()),
            occurred_at: occurred_at?,
            known_type: known_type?,
            user_id: None,
            device_id: None,
            destinations: destinations.ok()?,
        })
    })();
    fields.finish(request)
}

/// Validates `data` against the type's schema; `Some(known)` when checkable.
pub(super) fn check_type(
    fields: &mut Fields<'_>,
    category: Option<&str>,
    name: Option<&str>,
    data: Option<&Map<String, Value>>,
    context: &Context<'_>,
) -> Option<bool> {
    let (category, name, data) = (category?, name?, data?);
    match context
        .event_types
        .check(category, name, &Value::Object(data.clone()))
    {
        TypeCheck::Unknown => Some(false),
        TypeCheck::Known(violations) => {
            fields.extend(violations);
            Some(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{first_of, with_context};
    use crate::validation::{Rule, parse_object};
    use serde_json::json;

    fn parse(body: Value) -> Result<EventRequest, ValidationError> {
        let object = parse_object(body.to_string().as_bytes())?;
        with_context(None, |context| parse_event(&object, context))
    }

    fn pageview() -> Value {
        json!({
            "session_id": "e2085be5-9137-4e4e-80b5-f1ffddc25423",
            "category": "page interaction",
            "name": "pageview",
            "data": {"host": "www.consumeraffairs.com", "path": "/"},
            "timestamp": "2021-01-01 09:15:27.243860"
        })
    }

    #[test]
    fn accepts_the_reference_pageview() {
        let event = parse(pageview()).expect("valid");
        assert!(event.known_type);
        assert_eq!(event.occurred_at, 1_609_492_527_243_860);
    }

    #[test]
    fn destinations_are_kept_when_named_and_each_broken_name_is_named() {
        assert_eq!(parse(pageview()).expect("valid").destinations, None);
        let mut body = pageview();
        body["destinations"] = json!(["crm", "analytics"]);
        assert_eq!(
            parse(body).expect("valid").destinations,
            Some(vec!["crm".to_owned(), "analytics".to_owned()])
        );
        let too_many: Vec<String> = (0..17).map(|i| format!("d{i}")).collect();
        for (named, field, rule) in [
            (json!("crm"), "destinations", Rule::Type),
            (json!([]), "destinations", Rule::NonEmpty),
            (json!(too_many), "destinations", Rule::MaxItems),
            (json!(["crm", "CRM"]), "destinations[1]", Rule::Pattern),
            (json!(["crm", "crm"]), "destinations[1]", Rule::Pattern),
            (json!(["crm", 7]), "destinations[1]", Rule::Type),
        ] {
            let mut body = pageview();
            body["destinations"] = named.clone();
            let err = parse(body).expect_err("invalid");
            assert_eq!(first_of(&err), (Some(field.to_owned()), rule), "{named}");
        }
    }

    #[test]
    fn an_unknown_type_is_accepted_and_marked_unknown() {
        let mut body = pageview();
        body["name"] = json!("scroll");
        body["data"] = json!({"depth": 0.5});
        assert!(!parse(body).expect("valid").known_type);
    }

    #[test]
    fn names_each_broken_rule() {
        let cases = [
            ("session_id", json!("not-a-uuid"), "session_id", Rule::Uuid),
            ("data", json!({}), "data", Rule::NonEmpty),
            ("data", json!("text"), "data", Rule::Type),
            ("data", json!({"host": "x"}), "data", Rule::Schema),
            (
                "data",
                json!({"host": "x", "path": 1}),
                "data.path",
                Rule::Schema,
            ),
            (
                "timestamp",
                json!("2999-01-01 00:00:00"),
                "timestamp",
                Rule::FutureTimestamp,
            ),
            ("category", json!(""), "category", Rule::NonEmpty),
            (
                "category",
                json!("page interaction\u{0000}"),
                "category",
                Rule::ControlCharacter,
            ),
            (
                "name",
                json!("pageview\u{0000}x"),
                "name",
                Rule::ControlCharacter,
            ),
            ("name", json!("page\nview"), "name", Rule::ControlCharacter),
        ];
        for (field, value, named, rule) in cases {
            let mut body = pageview();
            body[field] = value.clone();
            let err = parse(body).expect_err("invalid");
            assert_eq!(
                first_of(&err),
                (Some(named.to_owned()), rule),
                "{field} = {value}"
            );
        }
    }
}
