//! `POST /v1/track`: `{userId, payload}` of the delivery system
//! (`reference/002_*`), onto the events topic keyed by user id.

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
    fields.deny_unknown(&["userId", "payload"]);
    let user_id = fields.id("userId", true);
    let payload = fields.object("payload", true, true);
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
        let err =
            parse(json!({"userId": "u", "payload": []})).expect_err("payload must be an object");
        assert_eq!(first_of(&err), (Some("payload".into()), Rule::Type));
    }
}
