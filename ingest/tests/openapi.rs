//! The OpenAPI document a client generator reads: every `$ref` resolves,
//! every answer has its body described, and request bodies the parsers
//! accept (or refuse) are valid (or invalid) against the document's schemas.

use ingest::event_types::EventTypes;
use ingest::openapi::IngestApi;
use ingest::validation::{
    Context, parse_app_event, parse_batch, parse_event, parse_increment, parse_object,
    parse_redirect, parse_track,
};
use serde_json::{Value, json};
use utoipa::OpenApi;

fn document() -> Value {
    serde_json::to_value(IngestApi::openapi()).expect("the document serialises")
}

/// Every `{"$ref": "#/..."}` in `value`, with where it was found.
fn refs<'a>(value: &'a Value, at: String, found: &mut Vec<(String, &'a str)>) {
    match value {
        Value::Object(object) => {
            if let Some(Value::String(target)) = object.get("$ref") {
                found.push((at.clone(), target));
            }
            for (key, child) in object {
                refs(child, format!("{at}/{key}"), found);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                refs(child, format!("{at}/{index}"), found);
            }
        }
        _ => {}
    }
}

#[test]
fn every_ref_resolves() {
    let document = document();
    let mut found = Vec::new();
    refs(&document, String::new(), &mut found);
    assert!(!found.is_empty(), "the document references no schema");
    let dangling: Vec<String> = found
        .iter()
        .filter(|(_, target)| {
            target
                .strip_prefix('#')
                .is_none_or(|pointer| document.pointer(pointer).is_none())
        })
        .map(|(at, target)| format!("{at} -> {target}"))
        .collect();
    assert!(dangling.is_empty(), "dangling references: {dangling:#?}");
}

#[test]
fn every_answer_of_every_operation_has_its_body_described() {
    let document = document();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("operations") {
            let responses = operation["responses"].as_object().expect("responses");
            for status in [
                "202", "400", "401", "403", "404", "405", "408", "413", "414", "415", "429", "431",
                "503",
            ] {
                let schema = &responses
                    .get(status)
                    .unwrap_or_else(|| panic!("{method} {path}: no {status}"))["content"]["application/json"]
                    ["schema"];
                assert!(schema.is_object(), "{method} {path} {status}: no schema");
            }
            for status in ["429", "503"] {
                assert!(
                    responses[status]["headers"]["Retry-After"].is_object(),
                    "{method} {path} {status}: no Retry-After"
                );
            }
        }
    }
}

/// A validator of `body` against the schema at `pointer` in the document.
fn validator(document: &Value, pointer: &str) -> jsonschema::Validator {
    let schema = json!({ "$ref": format!("#{pointer}"), "components": document["components"] });
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap_or_else(|err| panic!("{pointer}: {err}"))
}

fn request_schema(document: &Value, path: &str) -> jsonschema::Validator {
    let schema = &document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        ["$ref"];
    let pointer = schema
        .as_str()
        .and_then(|s| s.strip_prefix('#'))
        .unwrap_or_else(|| panic!("{path}: the body schema is not a reference"));
    validator(document, pointer)
}

type Parse = fn(&Value, &Context<'_>) -> bool;

/// Bodies of every endpoint, each with what its parser says of it.
fn cases() -> Vec<(&'static str, Value, Parse)> {
    fn object(body: &Value) -> serde_json::Map<String, Value> {
        parse_object(body.to_string().as_bytes()).expect("an object")
    }
    let increment: Parse = |b, _| parse_increment(&object(b)).is_ok();
    let redirect: Parse = |b, c| parse_redirect(&object(b), c).is_ok();
    let event: Parse = |b, c| parse_event(&object(b), c).is_ok();
    let app: Parse = |b, c| parse_app_event(&object(b), c).is_ok();
    let track: Parse = |b, c| parse_track(&object(b), c).is_ok();
    // As the handler judges a batch: refused whole when it is not a batch,
    // or has items and none of them is valid.
    let batch: Parse = |b, c| {
        parse_batch(b.to_string().as_bytes(), 1000, c)
            .is_ok_and(|items| items.is_empty() || items.iter().any(Result::is_ok))
    };
    let key = "0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c";
    let session = "e2085be5-9137-4e4e-80b5-f1ffddc25423";
    let pageview = json!({"session_id": session, "category": "page interaction", "name": "pageview",
        "data": {"host": "example.org", "path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"});
    let mut cases: Vec<(&str, Value, Parse)> = vec![
        ("/v1/increment", json!({"key": key, "value": 3}), increment),
        (
            "/v1/increment",
            json!({"key": key, "value": i64::MAX}),
            increment,
        ),
        ("/v1/increment", json!({"key": key, "value": 0}), increment),
        (
            "/v1/increment",
            json!({"key": key, "value": 1.5}),
            increment,
        ),
        (
            "/v1/increment",
            json!({"key": key, "value": 1, "extra": 1}),
            increment,
        ),
        (
            "/v1/increment",
            json!({"key": "nope", "value": 1}),
            increment,
        ),
        ("/v1/increment", json!({"value": 1}), increment),
        (
            "/v1/redirects",
            json!({"short_code": "abc_12-Z", "full_url": "https://example.org/x?y=1", "client_id": 7, "user_agent": "Mozilla/5.0"}),
            redirect,
        ),
        (
            "/v1/redirects",
            json!({"short_code": "abc", "full_url": "http://a.b", "client_id": 0, "user_agent": "ua", "referrer": null, "occurred_at": "2021-02-28T16:22:52Z"}),
            redirect,
        ),
        (
            "/v1/redirects",
            json!({"short_code": "this-code-is-far-too-long", "full_url": "https://e.org/", "client_id": 7, "user_agent": "ua"}),
            redirect,
        ),
        (
            "/v1/redirects",
            json!({"short_code": "abc", "full_url": "ftp://e.org/", "client_id": 7, "user_agent": "ua"}),
            redirect,
        ),
        (
            "/v1/redirects",
            json!({"short_code": "abc", "full_url": "https://e.org/", "client_id": -1, "user_agent": "ua"}),
            redirect,
        ),
        (
            "/v1/redirects",
            json!({"short_code": "abc", "full_url": "https://e.org/", "client_id": 1, "user_agent": null}),
            redirect,
        ),
        (
            "/v1/redirects",
            json!({"short_code": "abc", "full_url": "https://e.org/", "client_id": 1, "user_agent": "a\u{0000}b"}),
            redirect,
        ),
        ("/v1/events", pageview.clone(), event),
        (
            "/v1/events",
            json!({"session_id": session, "category": "page interaction", "name": "scroll", "data": {"depth": 0.5}, "timestamp": "2021-01-01T09:15:27Z"}),
            event,
        ),
        (
            "/v1/events",
            json!({"session_id": session, "category": "page interaction", "name": "pageview", "data": {"host": "x"}, "timestamp": "2021-01-01T09:15:27Z"}),
            event,
        ),
        (
            "/v1/events",
            json!({"session_id": session, "category": "a\u{0007}", "name": "n", "data": {"a": 1}, "timestamp": "2021-01-01T09:15:27Z"}),
            event,
        ),
        (
            "/v1/events",
            json!({"session_id": session, "category": "c", "name": "n", "data": {}, "timestamp": "2021-01-01T09:15:27Z"}),
            event,
        ),
        (
            "/v1/events",
            json!({"session_id": session, "category": "c", "name": "n", "data": {"a": 1}, "timestamp": "2021-02-29 00:00:00"}),
            event,
        ),
        (
            "/v1/event",
            json!({"user_id": "foo1", "device_id": "bar1", "type": "training_program_started", "training_program_id": 2352, "training_program_title": "7 Minutes", "time_stamp": "2021-02-28 16:23:25"}),
            app,
        ),
        (
            "/v1/event",
            json!({"user_id": 7, "type": "training_program_started", "time_stamp": "2021-02-28 16:23:25"}),
            app,
        ),
        (
            "/v1/event",
            json!({"userId": "foo1", "deviceId": "bar1", "type": "training_program_started", "timestamp": "2021-02-28T16:23:25Z", "details": {"training_program_id": "2352"}}),
            app,
        ),
        (
            "/v1/event",
            json!({"userId": "foo1", "type": "training_program_finished", "timestamp": "2021-02-28T16:23:25Z"}),
            app,
        ),
        (
            "/v1/event",
            json!({"userId": "u", "type": "app_launch", "timestamp": "2021-02-28T16:23:25Z"}),
            app,
        ),
        (
            "/v1/event",
            json!({"user_id": "u", "type": "profile_viewed", "time_stamp": "2021-02-28 16:22:52"}),
            app,
        ),
        (
            "/v1/event",
            json!({"user_id": "u", "userId": "u", "type": "app_launch", "timestamp": "2021-02-28T16:23:25Z"}),
            app,
        ),
        (
            "/v1/event",
            json!({"Original": {"user_id": "u", "type": "app_launch", "time_stamp": "2021-02-28 16:22:52"}}),
            app,
        ),
        (
            "/v1/track",
            json!({"userId": 42, "payload": {"plan": "pro"}}),
            track,
        ),
        ("/v1/track", json!({"userId": "u", "payload": {}}), track),
        (
            "/v1/track",
            json!({"userId": "u", "payload": "some_payload"}),
            track,
        ),
        (
            "/v1/track",
            json!({"userId": "u", "payload": [1, null]}),
            track,
        ),
        ("/v1/track", json!({"userId": "u", "payload": null}), track),
        (
            "/v1/track",
            json!({"userId": "", "payload": {"a": 1}}),
            track,
        ),
        (
            "/v1/track",
            json!({"userId": 18_446_744_073_709_551_615_u64, "payload": {"a": 1}}),
            track,
        ),
        (
            "/v1/batch",
            json!([{"type": "increment", "key": key, "value": 2}, {"type": "track", "userId": "u", "payload": {"a": 1}},
            {"type": "app", "event_type": "app_launch", "user_id": "u", "time_stamp": "2021-02-28 16:22:52"},
            {"type": "redirect", "short_code": "abc", "full_url": "https://e.org/", "client_id": 1, "user_agent": "ua"}]),
            batch,
        ),
        (
            "/v1/batch",
            json!({"items": [{"type": "increment", "key": key, "value": 2}]}),
            batch,
        ),
        ("/v1/batch", json!([{"type": "nope"}]), batch),
        (
            "/v1/batch",
            json!([{"type": "nope"}, 7, {"type": "increment", "key": key, "value": 1}]),
            batch,
        ),
        ("/v1/batch", json!([]), batch),
        ("/v1/batch", json!({"items": [7], "more": 1}), batch),
        (
            "/v1/batch",
            json!([{"type": "increment", "key": key, "value": 0}]),
            batch,
        ),
        (
            "/v1/batch",
            json!([{"type": "app", "event_type": "training_program_finished", "user_id": "u", "time_stamp": "2021-02-28 16:22:52"}]),
            batch,
        ),
    ];
    let mut pageview_item = pageview;
    pageview_item["type"] = json!("event");
    cases.push(("/v1/batch", json!([pageview_item]), batch));
    cases
}

#[test]
fn the_schemas_accept_what_the_parsers_accept_and_refuse_what_they_refuse() {
    let document = document();
    let event_types = EventTypes::compile().expect("shipped schemas compile");
    let context = Context {
        now: 1_700_000_000_000_000,
        max_skew_micros: 300_000_000,
        user_agent: None,
        event_types: &event_types,
    };
    for (path, body, parse) in cases() {
        let accepted = parse(&body, &context);
        let valid = request_schema(&document, path).is_valid(&body);
        assert_eq!(
            valid, accepted,
            "{path} {body}: schema says {valid}, parser {accepted}"
        );
    }
}
