//! JSON parsing that refuses an object naming one key twice: `serde_json`
//! keeps the last, so two parsers of the same body (ours and a downstream
//! consumer's) could disagree about what it says.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Parses `body`; on a duplicate key, the error is `Err` and `duplicate`
/// names the key.
pub(super) fn parse(body: &[u8], duplicate: &RefCell<Option<String>>) -> serde_json::Result<Value> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let value = Strict { duplicate }.deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A JSON value whose objects may not repeat a key.
#[derive(Clone, Copy)]
struct Strict<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for Strict<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, value: bool) -> Result<Value, E> {
        Ok(Value::Bool(value))
    }

    fn visit_i64<E>(self, value: i64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_u64<E>(self, value: u64) -> Result<Value, E> {
        Ok(Value::Number(value.into()))
    }

    fn visit_f64<E>(self, value: f64) -> Result<Value, E> {
        Ok(Number::from_f64(value).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, value: &str) -> Result<Value, E> {
        Ok(Value::String(value.to_owned()))
    }

    fn visit_string<E>(self, value: String) -> Result<Value, E> {
        Ok(Value::String(value))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if object.contains_key(&key) {
                let message = format!("duplicate key `{key}`");
                *self.duplicate.borrow_mut() = Some(key);
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(self)?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict(text: &str) -> (serde_json::Result<Value>, Option<String>) {
        let duplicate = RefCell::new(None);
        let parsed = parse(text.as_bytes(), &duplicate);
        (parsed, duplicate.into_inner())
    }

    #[test]
    fn values_parse_as_serde_json_parses_them() {
        for text in [
            r#"{"a": 1, "b": [1, 2.5, -3, "x", null, true], "c": {"d": {}}}"#,
            "[]",
            "18446744073709551615",
            r#""\u00e9""#,
        ] {
            let (parsed, duplicate) = strict(text);
            let expected: Value = serde_json::from_str(text).expect("json");
            assert_eq!(parsed.expect("parses"), expected, "{text}");
            assert_eq!(duplicate, None);
        }
    }

    #[test]
    fn a_key_named_twice_anywhere_is_refused_and_named() {
        for (text, key) in [
            (r#"{"value": 1, "value": 2}"#, "value"),
            (r#"{"data": {"host": "a", "host": "b"}}"#, "host"),
            (r#"[{"k": 1}, {"k": 1, "k": 1}]"#, "k"),
        ] {
            let (parsed, duplicate) = strict(text);
            assert!(parsed.is_err(), "{text}");
            assert_eq!(duplicate.as_deref(), Some(key), "{text}");
        }
        let (parsed, duplicate) = strict(r#"{"a": 1} trailing"#);
        assert!(parsed.is_err() && duplicate.is_none());
    }
}
