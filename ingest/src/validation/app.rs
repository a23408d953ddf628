//! `POST /v1/event`: the fitness app's events (`reference/004_*`), in the
//! original snake_case shape or the improved camelCase one, mapped onto the
//! events envelope (category `app`, name = type, session = user id).
//!
//! Original: `{user_id, device_id, type, time_stamp, training_program_id?,
//! training_program_title?}`. Improved: `{userId, deviceId, type, timestamp
//! (ISO 8601), details{}}`. Unknown `type` values are accepted.

use serde_json::{Map, Value};

use super::event::{EventRequest, check_type};
use super::{Context, Fields, ValidationError};
use schemas::event_types::APP_CATEGORY;

/// Parses an app event in either shape (the improved one is recognised by
/// its `userId` field).
///
/// # Errors
///
/// [`ValidationError`] listing every broken rule.
pub fn parse_app_event(
    object: &Map<String, Value>,
    context: &Context<'_>,
) -> Result<EventRequest, ValidationError> {
    if object.contains_key("userId") {
        parse_improved(object, context)
    } else {
        parse_original(object, context)
    }
}

fn parse_original(
    object: &Map<String, Value>,
    context: &Context<'_>,
) -> Result<EventRequest, ValidationError> {
    let mut fields = Fields::new(object);
    fields.deny_unknown(&[
        "user_id",
        "device_id",
        "type",
        "time_stamp",
        "training_program_id",
        "training_program_title",
    ]);
    let user_id = fields.id("user_id", true);
    let device_id = fields.id("device_id", false);
    let kind = fields.string("type", true);
    let occurred_at = fields.timestamp("time_stamp", true, context);
    let mut data = Map::new();
    if let Some(id) = fields.id("training_program_id", false) {
        data.insert("training_program_id".into(), Value::String(id));
    }
    if let Some(title) = fields.string("training_program_title", false) {
        data.insert(
            "training_program_title".into(),
            Value::String(title.to_owned()),
        );
    }
    let known_type = check_type(&mut fields, Some(APP_CATEGORY), kind, Some(&data), context);
    let request = envelope(user_id, device_id, kind, data, occurred_at, known_type);
    fields.finish(request)
}

fn parse_improved(
    object: &Map<String, Value>,
    context: &Context<'_>,
) -> Result<EventRequest, ValidationError> {
    let mut fields = Fields::new(object);
    fields.deny_unknown(&["userId", "deviceId", "type", "timestamp", "details"]);
    let user_id = fields.id("userId", true);
    let device_id = fields.id("deviceId", false);
    let kind = fields.string("type", true);
    let occurred_at = fields.timestamp("timestamp", true, context);
    let data = fields
        .object("details", false, false)
        .cloned()
        .unwrap_or_default();
    let known_type = check_type(&mut fields, Some(APP_CATEGORY), kind, Some(&data), context);
    let request = envelope(user_id, device_id, kind, data, occurred_at, known_type);
    fields.finish(request)
}

fn envelope(
    user_id: Option<String>,
    device_id: Option<String>,
    kind: Option<&str>,
    data: Map<String, Value>,
    occurred_at: Option<i64>,
    known_type: Option<bool>,
) -> Option<EventRequest> {
    let user_id = user_id?;
    Some(EventRequest {
        session_id: user_id.clone(),
        category: APP_CATEGORY.to_owned(),
        name: kind?.to_owned(),
        data: Value::Object(data),
        occurred_at: occurred_at?,
        known_type: known_type?,
        user_id: Some(user_id),
        device_id,
        destinations: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{first_of, with_context};
    use crate::validation::{Rule, parse_object};
    use serde_json::json;

    fn parse(body: Value) -> Result<EventRequest, ValidationError> {
        let object = parse_object(body.to_string().as_bytes())?;
        with_context(None, |context| parse_app_event(&object, context))
    }

    #[test]
    fn both_shapes_map_onto_the_same_envelope() {
        let original = parse(json!({
            "user_id": "foo1", "device_id": "bar1", "type": "training_program_started",
            "training_program_id": 2352, "training_program_title": "7 Minutes of HIIT Training",
            "time_stamp": "2021-02-28 16:23:25"
        }))
        .expect("original shape");
        let improved = parse(json!({
            "userId": "foo1", "deviceId": "bar1", "type": "training_program_started",
            "timestamp": "2021-02-28T16:23:25Z",
            "details": {"training_program_id": "2352", "training_program_title": "7 Minutes of HIIT Training"}
        }))
        .expect("improved shape");
        assert_eq!(original, improved);
        assert_eq!(original.session_id, "foo1");
        assert_eq!(original.category, "app");
        assert!(original.known_type);
    }

    #[test]
    fn unknown_types_are_accepted() {
        let event = parse(
            json!({"user_id": "u", "type": "profile_viewed", "time_stamp": "2021-02-28 16:22:52"}),
        )
        .expect("unknown type accepted");
        assert!(!event.known_type);
    }

    #[test]
    fn known_types_are_validated() {
        let err = parse(json!({"user_id": "u", "type": "training_program_finished", "time_stamp": "2021-02-28 16:22:52"}))
            .expect_err("a finished program needs its id");
        assert_eq!(first_of(&err), (Some("data".into()), Rule::Schema));
        let err = parse(json!({"userId": "u", "type": "app_launch"})).expect_err("no timestamp");
        assert_eq!(first_of(&err), (Some("timestamp".into()), Rule::Required));
    }
}
