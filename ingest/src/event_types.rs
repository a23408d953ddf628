//! Validation of event `data` against the JSON Schema of its
//! (category, name), compiled once at startup from `schemas::event_types`.

use std::collections::HashMap;

use serde_json::Value;

use crate::validation::{Rule, Violation};

/// What checking an event's type said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeCheck {
    /// A known type; the data's violations of its schema (empty if valid).
    Known(Vec<Violation>),
    /// No schema for this type: accepted and stored as unknown.
    Unknown,
}

/// Compiled schemas of every known event type.
pub struct EventTypes {
    validators: HashMap<(&'static str, &'static str), jsonschema::Validator>,
}

impl std::fmt::Debug for EventTypes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventTypes")
            .field("known", &self.validators.len())
            .finish()
    }
}

impl EventTypes {
    /// Compiles every shipped schema.
    ///
    /// # Errors
    ///
    /// A message naming the type whose schema does not compile.
    pub fn compile() -> Result<Self, String> {
        let mut validators = HashMap::new();
        for event_type in schemas::event_types::EVENT_TYPES {
            let name = format!("{} / {}", event_type.category, event_type.name);
            let schema: Value = serde_json::from_str(event_type.schema)
                .map_err(|err| format!("schema of {name}: {err}"))?;
            let validator = jsonschema::validator_for(&schema)
                .map_err(|err| format!("schema of {name}: {err}"))?;
            validators.insert((event_type.category, event_type.name), validator);
        }
        Ok(Self { validators })
    }

    /// Checks `data` against its type's schema, if the type is known.
    pub fn check(&self, category: &str, name: &str, data: &Value) -> TypeCheck {
        let Some(validator) = self.validators.get(&(category, name)) else {
            return TypeCheck::Unknown;
        };
        let violations = validator
            .iter_errors(data)
            .map(|error| {
                let pointer = error.instance_path().to_string();
                let field = if pointer.is_empty() {
                    "data".to_owned()
                } else {
                    format!("data{}", pointer.replace('/', "."))
                };
                Violation::new(Some(&field), Rule::Schema, format!("`{field}`: {error}"))
            })
            .collect();
        TypeCheck::Known(violations)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn known_types_are_validated_and_unknown_ones_pass_as_unknown() {
        let types = EventTypes::compile().expect("compiles");
        let pageview = json!({"host": "example.org", "path": "/"});
        assert_eq!(
            types.check("page interaction", "pageview", &pageview),
            TypeCheck::Known(vec![])
        );
        let TypeCheck::Known(violations) = types.check(
            "page interaction",
            "pageview",
            &json!({"host": "x", "path": 3}),
        ) else {
            panic!("pageview is a known type");
        };
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field.as_deref(), Some("data.path"));
        assert_eq!(violations[0].rule, Rule::Schema);
        let TypeCheck::Known(missing) = types.check(
            "form interaction",
            "submit",
            &json!({"host": "x", "path": "/"}),
        ) else {
            panic!("submit is a known type");
        };
        assert_eq!(missing[0].field.as_deref(), Some("data"));
        assert_eq!(
            types.check("page interaction", "scroll", &pageview),
            TypeCheck::Unknown
        );
    }
}
