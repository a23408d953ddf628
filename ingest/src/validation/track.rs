//! `POST /v1/track`: `{userId, payload}` of the delivery system
//! (`reference/002_*`), onto the events topic keyed by user id. The payload
//! is any JSON value but `null`, stored and delivered unchanged.

use serde_json::{Map, Value};

use super::event::EventRequest;
use super::{Context, Fields, ValidationError};
use schemas::event_types::TRACK_CATEGORY;

/// The name every tracked event carries.
pub(crate) const TRACK_NAME: &str = "track";

/// Parses a tracked payload; it happened now.
///
/// # Errors
///
/// [`ValidationError`] listing every broken rule.
pub fn parse_track(
    object: &Map<String, Value>,
    context: &Context<'_>,
) -> Result<EventRequest, ValidationError> {
    let mut fields = Fields::new(object);
    fields.deny_unknown(&["userId", "payload", "destinations"]);
    let user_id = fields.id("userId", true);
    // Any JSON value, as the delivery system's own example (a string) shows.
    let payload = fields.value("payload", true);
    let destinations = fields.destinations();
    let request = (|| {
        let user_id = user_id?;
        Some(EventRequest {
            session_id: user_id.clone(),
            category: TRACK_CATEGORY.to_owned(),
            name: TRACK_NAME.to_owned(),
            data: payload?.clone(),
            occurred_at: context.now,
            known_type: true,
            user_id: Some(user_id),
            device_id: None,
            destinations: destinations.ok()?,
        })
    })();
    fields.finish(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{NOW, first_of, with_context};
    use crate::validation::{Rule, parse_object};
    use serde_json::json;

    fn parse(body: Value) -> Result<EventRequest, ValidationError> {
        let object = parse_object(body.to_string().as_bytes())?;
        with_context(None, |context| parse_track(&object, context))
    }

    #[test]
    fn a_payload_is_keyed_by_its_user() {
        let event = parse(json!({"userId": 42, "payload": {"plan": "pro"}})).expect("valid");
        assert_eq!((event.session_id.as_str(), event.occurred_at), ("42", NOW));
        for payload in [
            json!("some_payload"),
            json!(3.5),
            json!(false),
            json!([1, "a"]),
            json!({}),
        ] {
            let event = parse(json!({"userId": "u", "payload": payload})).expect("any JSON value");
            assert_eq!(event.data, payload, "stored unchanged");
        }
        let err = parse(json!({"userId": "u", "payload": null})).expect_err("null is no payload");
        assert_eq!(first_of(&err), (Some("payload".into()), Rule::Required));
        let err = parse(json!({"userId": "u"})).expect_err("missing");
        assert_eq!(first_of(&err), (Some("payload".into()), Rule::Required));
    }
}
