//! `POST /v1/batch`: a JSON array (or `{"items": [...]}`) of items, each
//! `{"type": "redirect"|"increment"|"event"|"app"|"track", ...}` with the
//! fields of that endpoint (an app item names its event type `event_type`)
//! and, optionally, its `idempotency_key`. Items are judged one by one: one bad item never
//! sinks the others.

use serde_json::{Map, Value};

use schemas::identity::IdempotencyKey;

use super::event::EventRequest;
use super::idempotency::take_item_key;
use super::increment::IncrementRequest;
use super::redirect::RedirectRequest;
use super::{
    Context, Rule, ValidationError, Violation, json_type, parse_app_event, parse_event,
    parse_increment, parse_json, parse_redirect, parse_track,
};

/// The item types a batch may hold.
pub(crate) const ITEM_TYPES: &[&str] = &["redirect", "increment", "event", "app", "track"];

/// One valid batch item with its idempotency key, if it named one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyedItem {
    pub item: BatchItem,
    pub idempotency_key: Option<IdempotencyKey>,
}

/// One valid batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchItem {
    Increment(IncrementRequest),
    Redirect(RedirectRequest),
    Event(EventRequest),
}

impl BatchItem {
    /// The destinations the item names, if any.
    pub fn destinations(&self) -> &[String] {
        match self {
            BatchItem::Event(event) => event.destinations.as_deref().unwrap_or_default(),
            BatchItem::Increment(_) | BatchItem::Redirect(_) => &[],
        }
    }
}

/// Parses a batch into per-item results.
///
/// # Errors
///
/// [`ValidationError`] when the body as a whole is unusable: not JSON, not
/// an array, or more than `max_items` items ([`Rule::MaxItems`]).
pub fn parse_batch(
    body: &[u8],
    max_items: usize,
    context: &Context<'_>,
) -> Result<Vec<Result<KeyedItem, ValidationError>>, ValidationError> {
    let items = match parse_json(body)? {
        Value::Array(items) => items,
        Value::Object(mut object) if object.len() == 1 && object.contains_key("items") => {
            match object.remove("items") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(whole(
                        Some("items"),
                        Rule::Type,
                        "`items` must be an array".into(),
                    ));
                }
            }
        }
        other => {
            let message = format!(
                "body must be an array of items or {{\"items\": [...]}}, got {}",
                json_type(&other)
            );
            return Err(whole(None, Rule::Type, message));
        }
    };
    if items.len() > max_items {
        let message = format!(
            "a batch holds at most {max_items} items, got {}",
            items.len()
        );
        return Err(whole(Some("items"), Rule::MaxItems, message));
    }
    Ok(items
        .into_iter()
        .map(|item| parse_item(item, context))
        .collect())
}

fn parse_item(item: Value, context: &Context<'_>) -> Result<KeyedItem, ValidationError> {
    let Value::Object(mut object) = item else {
        return Err(whole(
            None,
            Rule::Type,
            format!("an item must be an object, got {}", json_type(&item)),
        ));
    };
    let idempotency_key = take_item_key(&mut object)?;
    parse_typed(object, context).map(|item| KeyedItem {
        item,
        idempotency_key,
    })
}

fn parse_typed(
    mut object: Map<String, Value>,
    context: &Context<'_>,
) -> Result<BatchItem, ValidationError> {
    let kind = match object.remove("type") {
        Some(Value::String(kind)) => kind,
        Some(other) => {
            return Err(whole(
                Some("type"),
                Rule::Type,
                format!("`type` must be a string, got {}", json_type(&other)),
            ));
        }
        None => {
            return Err(whole(
                Some("type"),
                Rule::Required,
                format!("missing `type`; one of {}", ITEM_TYPES.join(", ")),
            ));
        }
    };
    // An app event's own `type` would collide with the item's: in a batch it
    // travels as `event_type`.
    if kind == "app"
        && let Some(event_type) = object.remove("event_type")
    {
        object.insert("type".to_owned(), event_type);
    }
    let object: Map<String, Value> = object;
    match kind.as_str() {
        "increment" => parse_increment(&object).map(BatchItem::Increment),
        "redirect" => parse_redirect(&object, context).map(BatchItem::Redirect),
        "event" => parse_event(&object, context).map(BatchItem::Event),
        "app" => parse_app_event(&object, context).map(BatchItem::Event),
        "track" => parse_track(&object, context).map(BatchItem::Event),
        other => Err(whole(
            Some("type"),
            Rule::Pattern,
            format!(
                "unknown item type `{other}`; one of {}",
                ITEM_TYPES.join(", ")
            ),
        )),
    }
}

fn whole(field: Option<&str>, rule: Rule, message: String) -> ValidationError {
    ValidationError::one(Violation::new(field, rule, message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::{first_of, with_context};
    use serde_json::json;

    fn parse(
        body: Value,
        max: usize,
    ) -> Result<Vec<Result<BatchItem, ValidationError>>, ValidationError> {
        with_context(Some("agent"), |context| {
            parse_batch(body.to_string().as_bytes(), max, context)
        })
        .map(|items| {
            items
                .into_iter()
                .map(|item| item.map(|keyed| keyed.item))
                .collect()
        })
    }

    #[test]
    fn judges_each_item_on_its_own() {
        let key = "0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c";
        let results = parse(
            json!([
                {"type": "increment", "key": key, "value": 2},
                {"type": "increment", "key": key, "value": 0},
                {"type": "redirect", "short_code": "abc", "full_url": "https://e.org/", "client_id": 1},
                {"type": "nope"},
                {"type": "track", "userId": "u", "payload": {"a": 1}},
                7,
                {"type": "app", "event_type": "app_launch", "user_id": "u", "time_stamp": "2021-02-28 16:22:52"}
            ]),
            10,
        )
        .expect("a batch");
        assert!(matches!(results[0], Ok(BatchItem::Increment(_))));
        assert_eq!(
            first_of(results[1].as_ref().expect_err("bad value")),
            (Some("value".into()), Rule::Minimum)
        );
        assert!(matches!(&results[2], Ok(BatchItem::Redirect(r)) if r.user_agent == "agent"));
        assert_eq!(
            first_of(results[3].as_ref().expect_err("bad type")),
            (Some("type".into()), Rule::Pattern)
        );
        assert!(matches!(results[4], Ok(BatchItem::Event(_))));
        assert_eq!(
            first_of(results[5].as_ref().expect_err("not an object")),
            (None, Rule::Type)
        );
    }

    #[test]
    fn an_item_may_name_its_idempotency_key() {
        let key = "0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c";
        let items = with_context(None, |context| {
            let body = json!([
                {"type": "increment", "key": key, "value": 1, "idempotency_key": "order-7"},
                {"type": "increment", "key": key, "value": 1, "idempotency_key": ""},
                {"type": "increment", "key": key, "value": 1, "idempotency_key": 7},
                {"type": "increment", "key": key, "value": 1, "idempotency_key": "café"}
            ]);
            parse_batch(body.to_string().as_bytes(), 10, context)
        })
        .expect("a batch");
        let first = items[0].as_ref().expect("valid");
        assert_eq!(
            first.idempotency_key.as_ref().map(IdempotencyKey::as_str),
            Some("order-7")
        );
        let field = Some("idempotency_key".to_owned());
        for (at, rule) in [(1, Rule::NonEmpty), (2, Rule::Type), (3, Rule::Pattern)] {
            assert_eq!(
                first_of(items[at].as_ref().expect_err("bad key")),
                (field.clone(), rule),
                "item {at}"
            );
        }
    }

    #[test]
    fn the_items_wrapper_works_and_the_size_is_bounded() {
        assert_eq!(
            parse(json!({"items": []}), 1).expect("empty batch").len(),
            0
        );
        let err = parse(json!([{}, {}]), 1).expect_err("too many");
        assert_eq!(first_of(&err), (Some("items".into()), Rule::MaxItems));
        let err = parse(json!("x"), 1).expect_err("not a batch");
        assert_eq!(first_of(&err), (None, Rule::Type));
    }
}
