//! The JSON Schema of each known event type's `data`, by (category, name).
//!
//! Files live in `schemas/events/<category>.<name>.json` with spaces in the
//! category or name written as `_`. An event whose type has no schema here is
//! accepted and stored as unknown (DESIGN.md guarantee 6); adding a type is
//! adding a file and a line below.

/// One known event type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventType {
    /// Category as producers send it, e.g. `page interaction`.
    pub category: &'static str,
    /// Name as producers send it, e.g. `pageview`.
    pub name: &'static str,
    /// JSON Schema (draft 2020-12) of the event's `data`.
    pub schema: &'static str,
}

/// Every known event type.
pub const EVENT_TYPES: &[EventType] = &[
    EventType {
        category: "page interaction",
        name: "pageview",
        schema: include_str!("../events/page_interaction.pageview.json"),
    },
    EventType {
        category: "page interaction",
        name: "cta click",
        schema: include_str!("../events/page_interaction.cta_click.json"),
    },
    EventType {
        category: "form interaction",
        name: "submit",
        schema: include_str!("../events/form_interaction.submit.json"),
    },
    EventType {
        category: APP_CATEGORY,
        name: "app_launch",
        schema: include_str!("../events/app.app_launch.json"),
    },
    EventType {
        category: APP_CATEGORY,
        name: "training_program_started",
        schema: include_str!("../events/app.training_program_started.json"),
    },
    EventType {
        category: APP_CATEGORY,
        name: "training_program_cancelled",
        schema: include_str!("../events/app.training_program_cancelled.json"),
    },
    EventType {
        category: APP_CATEGORY,
        name: "training_program_finished",
        schema: include_str!("../events/app.training_program_finished.json"),
    },
];

/// The category of app events (`POST /v1/event`).
pub const APP_CATEGORY: &str = "app";
/// The category of tracked payloads (`POST /v1/track`).
pub const TRACK_CATEGORY: &str = "track";

/// The known type with this category and name.
pub fn find(category: &str, name: &str) -> Option<&'static EventType> {
    EVENT_TYPES
        .iter()
        .find(|t| t.category == category && t.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_is_a_json_object_with_a_title_naming_its_type() {
        for event_type in EVENT_TYPES {
            let schema: serde_json::Value =
                serde_json::from_str(event_type.schema).expect("schema is JSON");
            let title = schema["title"].as_str().expect("schema has a title");
            assert_eq!(
                title,
                format!("{} / {}", event_type.category, event_type.name)
            );
            assert_eq!(schema["type"], "object");
        }
    }

    #[test]
    fn lookup_is_by_exact_category_and_name() {
        assert!(find("page interaction", "pageview").is_some());
        assert!(find("page interaction", "PageView").is_none());
        assert!(find("app", "app_launch").is_some());
    }
}
