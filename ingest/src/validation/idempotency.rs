//! The producer's idempotency key: the `Idempotency-Key` header of a
//! single-event request or a batch item's `idempotency_key`, checked by
//! [`schemas::identity::IdempotencyKey`].

use schemas::identity::{IdempotencyKey, KeyError};
use serde_json::{Map, Value};

use super::{Rule, ValidationError, Violation, json_type};

/// The header a single-event request names its key in.
pub(crate) const HEADER: &str = "Idempotency-Key";
/// The field a batch item names its key in.
pub(crate) const FIELD: &str = "idempotency_key";

/// The key `value` of `field` (the header or the batch field).
///
/// # Errors
///
/// [`ValidationError`] naming `field`: empty ([`Rule::NonEmpty`]), too long
/// or not printable ASCII ([`Rule::Pattern`]).
pub fn parse_key(field: &str, value: &str) -> Result<IdempotencyKey, ValidationError> {
    IdempotencyKey::parse(value).map_err(|err| {
        let rule = match err {
            KeyError::Empty => Rule::NonEmpty,
            KeyError::TooLong | KeyError::NotPrintable => Rule::Pattern,
        };
        ValidationError::one(Violation::new(
            Some(field),
            rule,
            format!("`{field}` {err}"),
        ))
    })
}

/// Takes a batch item's `idempotency_key` out of it, if present.
///
/// # Errors
///
/// [`ValidationError`] if it is not a string or not a valid key.
pub(super) fn take_item_key(
    object: &mut Map<String, Value>,
) -> Result<Option<IdempotencyKey>, ValidationError> {
    match object.remove(FIELD) {
        None => Ok(None),
        Some(Value::String(key)) => parse_key(FIELD, &key).map(Some),
        Some(other) => Err(ValidationError::one(Violation::new(
            Some(FIELD),
            Rule::Type,
            format!("`{FIELD}` must be a string, got {}", json_type(&other)),
        ))),
    }
}
