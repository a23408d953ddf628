//! Request bodies to typed requests, or an error that names the field and
//! the rule it broke.

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

/// The rule a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// The body is not JSON.
    MalformedJson,
    /// The body or a field has the wrong JSON type.
    Type,
    /// A required field is missing.
    Required,
    /// A field the endpoint does not know.
    UnknownField,
    /// A string that must be a UUID is not one.
    Uuid,
    /// A number below its minimum.
    Minimum,
    /// A number outside the range of its type.
    Range,
}

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The field, as a JSON path from the body (`key`, `value`); `None` for
    /// the body as a whole.
    pub field: Option<String>,
    /// The rule it broke.
    pub rule: Rule,
    /// What was wrong, for humans.
    pub message: String,
}

impl Violation {
    fn new(field: Option<&str>, rule: Rule, message: impl Into<String>) -> Self {
        Self {
            field: field.map(str::to_owned),
            rule,
            message: message.into(),
        }
    }
}

/// Every rule a request broke, first one first.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .violations.first().map_or("invalid request", |v| v.message.as_str()))]
pub struct ValidationError {
    /// Never empty.
    pub violations: Vec<Violation>,
}

impl ValidationError {
    fn one(violation: Violation) -> Self {
        Self {
            violations: vec![violation],
        }
    }

    /// The first violation.
    pub fn first(&self) -> Option<&Violation> {
        self.violations.first()
    }
}

/// A valid `POST /v1/increment` body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncrementRequest {
    /// The counter.
    pub key: Uuid,
    /// At least 1.
    pub value: i64,
}

/// Parses `{"key": <uuid>, "value": <int64 >= 1>}` with no other fields.
///
/// # Errors
///
/// [`ValidationError`] listing every broken rule.
pub fn parse_increment(body: &[u8]) -> Result<IncrementRequest, ValidationError> {
    let object = parse_object(body)?;
    let mut violations = unknown_fields(&object, &["key", "value"]);
    let key = required(&object, "key", &mut violations)
        .and_then(|v| uuid_field("key", v, &mut violations));
    let value = required(&object, "value", &mut violations)
        .and_then(|v| int64_field("value", v, &mut violations))
        .and_then(|value| {
            if value >= 1 {
                Some(value)
            } else {
                violations.push(Violation::new(
                    Some("value"),
                    Rule::Minimum,
                    format!("value must be at least 1, got {value}"),
                ));
                None
            }
        });
    match (key, value) {
        (Some(key), Some(value)) if violations.is_empty() => Ok(IncrementRequest { key, value }),
        _ => Err(ValidationError { violations }),
    }
}

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ValidationError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(ValidationError::one(Violation::new(
            None,
            Rule::Type,
            format!("body must be a JSON object, got {}", json_type(&other)),
        ))),
        Err(err) => Err(ValidationError::one(Violation::new(
            None,
            Rule::MalformedJson,
            format!("body is not valid JSON: {err}"),
        ))),
    }
}

fn unknown_fields(object: &Map<String, Value>, known: &[&str]) -> Vec<Violation> {
    object
        .keys()
        .filter(|name| !known.contains(&name.as_str()))
        .map(|name| {
            Violation::new(
                Some(name),
                Rule::UnknownField,
                format!(
                    "unknown field `{name}`; allowed fields are {}",
                    known.join(", ")
                ),
            )
        })
        .collect()
}

fn required<'a>(
    object: &'a Map<String, Value>,
    field: &str,
    violations: &mut Vec<Violation>,
) -> Option<&'a Value> {
    let value = object.get(field);
    if value.is_none() {
        violations.push(Violation::new(
            Some(field),
            Rule::Required,
            format!("missing required field `{field}`"),
        ));
    }
    value
}

fn uuid_field(field: &str, value: &Value, violations: &mut Vec<Violation>) -> Option<Uuid> {
    let Value::String(text) = value else {
        violations.push(Violation::new(
            Some(field),
            Rule::Type,
            format!(
                "`{field}` must be a string holding a UUID, got {}",
                json_type(value)
            ),
        ));
        return None;
    };
    match Uuid::try_parse(text) {
        Ok(id) => Some(id),
        Err(_) => {
            violations.push(Violation::new(
                Some(field),
                Rule::Uuid,
                format!("`{field}` must be a UUID such as 0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c"),
            ));
            None
        }
    }
}

fn int64_field(field: &str, value: &Value, violations: &mut Vec<Violation>) -> Option<i64> {
    let Value::Number(number) = value else {
        violations.push(Violation::new(
            Some(field),
            Rule::Type,
            format!("`{field}` must be an integer, got {}", json_type(value)),
        ));
        return None;
    };
    if let Some(int) = number.as_i64() {
        return Some(int);
    }
    let (rule, message) = if number.is_u64() {
        (
            Rule::Range,
            format!("`{field}` must fit in a signed 64-bit integer"),
        )
    } else {
        (
            Rule::Type,
            format!("`{field}` must be an integer, got {number}"),
        )
    };
    violations.push(Violation::new(Some(field), rule, message));
    None
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "0b6c2c56-9a43-4f1e-8a8e-0e1d2f3a4b5c";

    fn first(body: &str) -> (Option<String>, Rule) {
        let err = parse_increment(body.as_bytes()).expect_err("must be rejected");
        let v = err.first().expect("at least one violation").clone();
        (v.field, v.rule)
    }

    #[test]
    fn accepts_a_valid_increment() {
        let body = format!(r#"{{"key": "{KEY}", "value": 3}}"#);
        let parsed = parse_increment(body.as_bytes()).expect("valid");
        assert_eq!(parsed.value, 3);
        assert_eq!(parsed.key.to_string(), KEY);
        let max = format!(r#"{{"key": "{KEY}", "value": {}}}"#, i64::MAX);
        assert_eq!(
            parse_increment(max.as_bytes()).expect("valid").value,
            i64::MAX
        );
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
            assert_eq!(
                first(&body),
                (field.map(str::to_owned), rule),
                "body: {body}"
            );
        }
    }

    #[test]
    fn reports_every_violation() {
        let err = parse_increment(br#"{"key": "x", "value": 0, "a": 1}"#).expect_err("invalid");
        let rules: Vec<Rule> = err.violations.iter().map(|v| v.rule).collect();
        assert_eq!(rules, vec![Rule::UnknownField, Rule::Uuid, Rule::Minimum]);
    }
}
