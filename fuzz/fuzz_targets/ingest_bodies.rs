//! Every ingest body parser on arbitrary bytes: the JSON reader, each
//! endpoint's validator on whatever object the bytes hold, and batches.
#![no_main]

use std::sync::LazyLock;

use ingest::event_types::EventTypes;
use ingest::validation::{
    Context, parse_app_event, parse_batch, parse_event, parse_increment, parse_json, parse_object,
    parse_redirect, parse_track,
};
use libfuzzer_sys::fuzz_target;

static EVENT_TYPES: LazyLock<EventTypes> =
    LazyLock::new(|| EventTypes::compile().expect("the shipped schemas compile"));

fuzz_target!(|bytes: &[u8]| {
    let context = Context {
        now: 1_700_000_000_000_000,
        max_skew_micros: 300_000_000,
        user_agent: Some("Mozilla/5.0"),
        event_types: &EVENT_TYPES,
    };
    let _ = parse_json(bytes);
    if let Ok(object) = parse_object(bytes) {
        let _ = parse_increment(&object);
        let _ = parse_redirect(&object, &context);
        let _ = parse_event(&object, &context);
        let _ = parse_app_event(&object, &context);
        let _ = parse_track(&object, &context);
    }
    if let Ok(items) = parse_batch(bytes, 100, &context) {
        assert!(items.len() <= 100, "a batch answers at most its limit");
    }
});
