//! Property-based tests of every ingest body parser: arbitrary bytes, and
//! arbitrary JSON shaped like each endpoint's body (the known field names
//! with values of any type, NULs and control characters included), give a
//! value or a typed error, never a panic. `PROPTEST_CASES` sets the count
//! (256 by default in CI).

use ingest::event_types::EventTypes;
use ingest::validation::{
    Context, parse_app_event, parse_batch, parse_event, parse_increment, parse_json, parse_object,
    parse_redirect, parse_track,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Field names the endpoints know, plus a few they do not.
const NAMES: &[&str] = &[
    "key",
    "value",
    "short_code",
    "full_url",
    "client_id",
    "user_agent",
    "referrer",
    "timestamp",
    "session_id",
    "category",
    "name",
    "data",
    "user_id",
    "device_id",
    "type",
    "userId",
    "payload",
    "training_program_title",
    "duration",
    "host",
    "path",
    "occurred_at",
    "unknown",
    "",
];

/// Any JSON value, a few levels deep, with text that includes control
/// characters, NULs, long runs and non-ASCII.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        "\\PC{0,40}".prop_map(Value::String),
        "[\\x00-\\x1f a-z0-9:.-]{0,24}".prop_map(Value::String),
        Just(Value::String("e2085be5-9137-4e4e-80b5-f1ffddc25423".into())),
        Just(Value::String("2021-01-01T09:15:27.243860Z".into())),
    ];
    leaf.prop_recursive(3, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(NAMES), inner), 0..8).prop_map(|pairs| {
                Value::Object(
                    pairs
                        .into_iter()
                        .map(|(name, value)| (name.to_owned(), value))
                        .collect(),
                )
            }),
        ]
    })
}

/// An object shaped like a body: known names with any values.
fn body() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((prop::sample::select(NAMES), json()), 0..10)
        .prop_map(|pairs| pairs.into_iter().map(|(n, v)| (n.to_owned(), v)).collect())
}

fn with_context<T>(check: impl FnOnce(&Context<'_>) -> T) -> T {
    let event_types = EventTypes::compile().expect("the shipped schemas compile");
    let context = Context {
        now: 1_700_000_000_000_000,
        max_skew_micros: 300_000_000,
        user_agent: Some("Mozilla/5.0"),
        event_types: &event_types,
    };
    check(&context)
}

proptest! {
    #[test]
    fn arbitrary_bytes_are_json_or_a_typed_error(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_json(&bytes);
        let _ = parse_object(&bytes);
        with_context(|context| parse_batch(&bytes, 10, context).map(|items| items.len())).ok();
    }

    #[test]
    fn arbitrary_bodies_parse_or_name_what_is_wrong(object in body()) {
        with_context(|context| {
            let _ = parse_increment(&object);
            let _ = parse_redirect(&object, context);
            let _ = parse_event(&object, context);
            let _ = parse_app_event(&object, context);
            let _ = parse_track(&object, context);
        });
    }

    #[test]
    fn arbitrary_batches_give_one_answer_per_item(items in prop::collection::vec(body(), 0..12)) {
        let body = serde_json::to_vec(&items).expect("serialises");
        let answered = with_context(|context| parse_batch(&body, 100, context));
        if let Ok(answers) = answered {
            prop_assert_eq!(answers.len(), items.len());
        }
    }
}
