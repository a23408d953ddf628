//! The OpenAPI document a client generator reads: every `$ref` resolves,
//! every operation describes the body of every status it can answer, and
//! every error the API renders has a documented status, code and shape.

use axum::response::IntoResponse;
use query_api::ApiError;
use query_api::StoreError;
use query_api::openapi::{ERROR_CODES, QueryApi};
use serde_json::Value;
use utoipa::OpenApi;

fn document() -> Value {
    serde_json::to_value(QueryApi::openapi()).expect("the document serialises")
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

/// One of every error the handlers render, and the listener's refusals.
fn every_error() -> Vec<axum::response::Response> {
    let errors = vec![
        ApiError::InvalidParameter {
            parameter: "limit",
            message: "must be an integer".into(),
        },
        ApiError::UnknownParameter {
            parameter: "x".into(),
            known: "none".into(),
        },
        ApiError::Unauthenticated,
        ApiError::Forbidden { action: "query" },
        ApiError::Unavailable("the broker is down".into()),
        ApiError::Internal("a bug".into()),
        ApiError::DeadlineExceeded {
            deadline: std::time::Duration::from_secs(1),
        },
        ApiError::NotFound { path: "/x".into() },
        ApiError::MethodNotAllowed {
            method: "PUT".into(),
            path: "/v1/events".into(),
        },
        ApiError::Store(StoreError::Cql {
            during: "reading",
            reason: "down".into(),
        }),
    ];
    // A variant added to ApiError fails to compile here until it is listed.
    for err in &errors {
        match err {
            ApiError::InvalidParameter { .. }
            | ApiError::UnknownParameter { .. }
            | ApiError::Unauthenticated
            | ApiError::Forbidden { .. }
            | ApiError::Unavailable(_)
            | ApiError::Internal(_)
            | ApiError::DeadlineExceeded { .. }
            | ApiError::NotFound { .. }
            | ApiError::MethodNotAllowed { .. }
            | ApiError::Store(_) => {}
        }
    }
    let refusals = vec![
        http_serve::Refusal::UriTooLong {
            length: 9000,
            limit: 8192,
        },
        http_serve::Refusal::HeadersTooLarge {
            length: 20_000,
            limit: 16_384,
        },
        http_serve::Refusal::TooManyHeaders { count: 101 },
        http_serve::Refusal::BodyTimeout {
            timeout: std::time::Duration::from_secs(30),
        },
    ];
    errors
        .into_iter()
        .map(IntoResponse::into_response)
        .chain(refusals.into_iter().map(IntoResponse::into_response))
        .collect()
}

#[tokio::test]
async fn every_error_is_documented_on_every_operation_with_its_code_and_shape() {
    let document = document();
    let detail = &document["components"]["schemas"]["ErrorDetail"];
    let documented_keys: Vec<&String> = detail["properties"]
        .as_object()
        .expect("ErrorDetail has properties")
        .keys()
        .collect();
    for response in every_error() {
        let status = response.status().as_u16().to_string();
        let body = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .expect("a body");
        let body: Value = serde_json::from_slice(&body).expect("a JSON body");
        let error = body["error"].as_object().expect("an error object");
        assert_eq!(body.as_object().map(|b| b.len()), Some(1), "{body}");
        let code = error["code"].as_str().expect("a code");
        assert!(ERROR_CODES.contains(&code), "{code} is not documented");
        for key in error.keys() {
            assert!(
                documented_keys.contains(&key),
                "{code}: `{key}` is not documented"
            );
        }
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("operations") {
                let schema = &operation["responses"][&status]["content"]["application/json"]["schema"]
                    ["$ref"];
                assert_eq!(
                    schema.as_str(),
                    Some("#/components/schemas/ErrorBody"),
                    "{method} {path} does not describe its {status} ({code})"
                );
            }
        }
    }
}
