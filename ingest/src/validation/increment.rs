//! `POST /v1/increment`: `{"key": <uuid>, "value": <int64 >= 1>}`, nothing else.

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{Fields, ValidationError};

/// A valid increment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncrementRequest {
    /// The counter.
    pub key: Uuid,
    /// At least 1.
    pub value: i64,
}

/// Parses an increment object.
///
/// # Errors
///
/// [`ValidationError`] listing every broken rule.
pub fn parse_increment(object: &Map<String, Value>) -> Result<IncrementRequest, ValidationError> {
    let mut fields = Fields::new(object);
    fields.deny_unknown(&["key", "value"]);
    let key = fields.uuid("key");
    let value = fields.integer("value", 1);
    let request = key
        .zip(value)
        .map(|(key, value)| IncrementRequest { key, value });
    fields.finish(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::test_support::first_of;
    use crate::validation::{Rule, parse_object};

    const KEY: &str = "0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c";

    fn parse(body: &str) -> Result<IncrementRequest, ValidationError> {
        parse_object(body.as_bytes()).and_then(|object| parse_increment(&object))
    }

    #[test]
    fn accepts_a_valid_increment() {
        let parsed = parse(&format!(r#"{{"key": "{KEY}", "value": 3}}"#)).expect("valid");
        assert_eq!((parsed.key.to_string().as_str(), parsed.value), (KEY, 3));
        let max = parse(&format!(r#"{{"key": "{KEY}", "value": {}}}"#, i64::MAX)).expect("valid");
        assert_eq!(max.value, i64::MAX);
        // JSON Schema's integers: a zero fraction is still an integer.
        let whole = parse(&format!(r#"{{"key": "{KEY}", "value": 334.0}}"#)).expect("valid");
        assert_eq!(whole.value, 334);
        let exponent = parse(&format!(r#"{{"key": "{KEY}", "value": 1e3}}"#)).expect("valid");
        assert_eq!(exponent.value, 1000);
        let precise = parse(&format!(
            r#"{{"key": "{KEY}", "value": 1891795990042501.0}}"#
        ))
        .expect("read exactly");
        assert_eq!(precise.value, 1_891_795_990_042_501);
        for refused in [
            "2.5",
            "1e19",
            "-0.5",
            "9007199254740993.0",
            "-9223372036854775809",
        ] {
            let body = format!(r#"{{"key": "{KEY}", "value": {refused}}}"#);
            assert!(parse(&body).is_err(), "{refused} accepted");
        }
    }

    #[test]
    fn names_the_field_and_rule_of_each_mistake() {
        let cases = [
            (
                format!(r#"{{"key": "{KEY}", "value": 0}}"#),
                Some("value"),
                Rule::Minimum,
            ),
            (
                format!(r#"{{"key": "{KEY}", "value": -4}}"#),
                Some("value"),
                Rule::Minimum,
            ),
            (
                format!(r#"{{"key": "{KEY}", "value": 1.5}}"#),
                Some("value"),
                Rule::Type,
            ),
            (
                format!(r#"{{"key": "{KEY}", "value": "3"}}"#),
                Some("value"),
                Rule::Type,
            ),
            (
                format!(r#"{{"key": "{KEY}", "value": 9223372036854775808}}"#),
                Some("value"),
                Rule::Range,
            ),
            (
                format!(r#"{{"key": "{KEY}"}}"#),
                Some("value"),
                Rule::Required,
            ),
            (
                format!(r#"{{"key": "{KEY}", "value": null}}"#),
                Some("value"),
                Rule::Required,
            ),
            (r#"{"value": 1}"#.to_owned(), Some("key"), Rule::Required),
            (
                r#"{"key": "nope", "value": 1}"#.to_owned(),
                Some("key"),
                Rule::Uuid,
            ),
            (
                r#"{"key": 12, "value": 1}"#.to_owned(),
                Some("key"),
                Rule::Type,
            ),
            (
                format!(r#"{{"key": "{KEY}", "value": 1, "extra": true}}"#),
                Some("extra"),
                Rule::UnknownField,
            ),
            (r#"{"key": "#.to_owned(), None, Rule::MalformedJson),
            (r#"[1, 2]"#.to_owned(), None, Rule::Type),
            (String::new(), None, Rule::MalformedJson),
        ];
        for (body, field, rule) in cases {
            let err = parse(&body).expect_err("must be rejected");
            assert_eq!(
                first_of(&err),
                (field.map(str::to_owned), rule),
                "body: {body}"
            );
        }
    }

    #[test]
    fn reports_every_violation() {
        let err = parse(r#"{"key": "x", "value": 0, "a": 1}"#).expect_err("invalid");
        let rules: Vec<Rule> = err.violations.iter().map(|v| v.rule).collect();
        assert_eq!(rules, vec![Rule::UnknownField, Rule::Uuid, Rule::Minimum]);
    }
}
