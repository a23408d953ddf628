//! The rules file: declarative session rules of known shapes, checked
//! against the event catalogue when loaded so a rule naming an unknown event
//! type, field or placeholder fails at start, never at run time.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

/// The rules Eventide ships: the fitness app's nudge and congratulation.
pub const DEFAULT_RULES: &str = include_str!("../../rules.toml");

/// Why a rules file cannot be used.
#[derive(Debug, Error)]
pub enum RulesError {
    /// The file cannot be read.
    #[error("rules file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has fields no rule shape knows.
    #[error("rules file {origin}: {message}")]
    Syntax { origin: String, message: String },
    /// A rule is well-formed but refers to something that does not exist.
    #[error("rules file {origin}: rule `{rule}`: {message}")]
    Invalid {
        origin: String,
        rule: String,
        message: String,
    },
}

/// A validated set of rules.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

/// One rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Unique name; part of every notification id it produces.
    pub name: Arc<str>,
    /// The category its events belong to.
    pub category: String,
    /// What it reacts to.
    pub shape: Shape,
    /// The notification text.
    pub message: Template,
}

/// The rule shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shape {
    /// On `on`, notify unless `expect` follows for the same user within
    /// `within` (microseconds, event time).
    Absence {
        on: String,
        expect: String,
        within: i64,
    },
    /// On `end` closing an earlier `start` of the same user and `correlate`
    /// value, notify if it lasted strictly longer than `longer_than`
    /// (microseconds); a `cancel` event closes it quietly.
    Duration {
        start: String,
        end: String,
        cancel: Vec<String>,
        correlate: String,
        longer_than: i64,
    },
}

impl Rules {
    /// The shipped default rules.
    ///
    /// # Errors
    ///
    /// [`RulesError`] only if the shipped file is broken (a test checks it is not).
    pub fn default_rules() -> Result<Self, RulesError> {
        Self::parse(DEFAULT_RULES, "(built-in default)")
    }

    /// The rules in `path` (TOML).
    ///
    /// # Errors
    ///
    /// [`RulesError`] naming the file, the rule and the problem.
    pub fn load(path: &Path) -> Result<Self, RulesError> {
        let text = std::fs::read_to_string(path).map_err(|source| RulesError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Rules from TOML text; `origin` names it in errors.
    ///
    /// # Errors
    ///
    /// [`RulesError::Syntax`] or [`RulesError::Invalid`].
    pub fn parse(text: &str, origin: &str) -> Result<Self, RulesError> {
        let file: RulesFile = toml::from_str(text).map_err(|err| RulesError::Syntax {
            origin: origin.to_owned(),
            message: err.to_string(),
        })?;
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(file.rule.len());
        for spec in file.rule {
            let invalid = |rule: &str, message: String| RulesError::Invalid {
                origin: origin.to_owned(),
                rule: rule.to_owned(),
                message,
            };
            let rule = spec
                .validate()
                .map_err(|message| invalid(spec.name(), message))?;
            if !names.insert(rule.name.clone()) {
                return Err(invalid(&rule.name, "another rule has this name".into()));
            }
            rules.push(rule);
        }
        Ok(Self { rules })
    }

    /// Every rule, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }

    /// The rule with this name.
    pub fn get(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|rule| &*rule.name == name)
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<RuleSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
enum RuleSpec {
    Absence(AbsenceSpec),
    Duration(DurationSpec),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AbsenceSpec {
    name: String,
    #[serde(default = "app_category")]
    category: String,
    on: String,
    expect: String,
    within: String,
    message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DurationSpec {
    name: String,
    #[serde(default = "app_category")]
    category: String,
    start: String,
    end: String,
    #[serde(default)]
    cancel: Vec<String>,
    correlate: String,
    longer_than: String,
    message: String,
}

fn app_category() -> String {
    schemas::event_types::APP_CATEGORY.to_owned()
}

impl RuleSpec {
    fn name(&self) -> &str {
        match self {
            RuleSpec::Absence(spec) => &spec.name,
            RuleSpec::Duration(spec) => &spec.name,
        }
    }

    fn validate(&self) -> Result<Rule, String> {
        let (name, category, message, shape) = match self {
            RuleSpec::Absence(spec) => {
                for event in [&spec.on, &spec.expect] {
                    known_type(&spec.category, event)?;
                }
                if spec.on == spec.expect {
                    return Err("`on` and `expect` must be different event types".into());
                }
                let shape = Shape::Absence {
                    on: spec.on.clone(),
                    expect: spec.expect.clone(),
                    within: micros("within", &spec.within)?,
                };
                (&spec.name, &spec.category, &spec.message, shape)
            }
            RuleSpec::Duration(spec) => {
                for event in [&spec.start, &spec.end].into_iter().chain(&spec.cancel) {
                    let properties = known_type(&spec.category, event)?;
                    if !properties.contains(&spec.correlate) {
                        return Err(format!(
                            "correlate field `{}` is not a property of {}/{}",
                            spec.correlate, spec.category, event
                        ));
                    }
                }
                let shape = Shape::Duration {
                    start: spec.start.clone(),
                    end: spec.end.clone(),
                    cancel: spec.cancel.clone(),
                    correlate: spec.correlate.clone(),
                    longer_than: micros("longer_than", &spec.longer_than)?,
                };
                (&spec.name, &spec.category, &spec.message, shape)
            }
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("name must be non-empty [A-Za-z0-9_-]".into());
        }
        Ok(Rule {
            name: Arc::from(name.as_str()),
            category: category.clone(),
            shape,
            message: Template::parse(message)?,
        })
    }
}

/// The top-level properties of a known event type's JSON Schema.
fn known_type(category: &str, name: &str) -> Result<HashSet<String>, String> {
    let event_type = schemas::event_types::find(category, name).ok_or_else(|| {
        format!("event type {category}/{name} has no JSON Schema in schemas/events (unknown types match no rule)")
    })?;
    let schema: serde_json::Value = serde_json::from_str(event_type.schema)
        .map_err(|err| format!("schema of {category}/{name} is not JSON: {err}"))?;
    Ok(schema
        .get("properties")
        .and_then(serde_json::Value::as_object)
        .map(|properties| properties.keys().cloned().collect())
        .unwrap_or_default())
}

fn micros(field: &str, text: &str) -> Result<i64, String> {
    let duration: Duration = humantime::parse_duration(text)
        .map_err(|err| format!("`{field}` = {text:?} is not a duration: {err}"))?;
    if duration.is_zero() {
        return Err(format!("`{field}` must be above zero"));
    }
    i64::try_from(duration.as_micros()).map_err(|_| format!("`{field}` is too long"))
}

/// A message with `{placeholder}`s, checked when loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Value(Placeholder),
}

/// The values a message can mention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder {
    UserId,
    Rule,
    Minutes,
    Seconds,
}

/// What a notification's message is rendered from.
#[derive(Debug, Clone, Copy)]
pub struct MessageValues<'a> {
    pub user_id: &'a str,
    pub rule: &'a str,
    /// The measured duration or absence window, in microseconds.
    pub micros: i64,
}

impl Template {
    fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| "message has a `{` without a closing `}`".to_owned())?;
            let placeholder = match &after[..close] {
                "user_id" => Placeholder::UserId,
                "rule" => Placeholder::Rule,
                "minutes" => Placeholder::Minutes,
                "seconds" => Placeholder::Seconds,
                other => {
                    return Err(format!(
                        "message placeholder {{{other}}} is unknown (known: {{user_id}}, {{rule}}, {{minutes}}, {{seconds}})"
                    ));
                }
            };
            parts.push(Part::Value(placeholder));
            rest = &after[close + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self { parts })
    }

    /// The message with its placeholders filled in: minutes are whole
    /// minutes rounded down, seconds exact.
    pub fn render(&self, values: MessageValues<'_>) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Value(Placeholder::UserId) => out.push_str(values.user_id),
                Part::Value(Placeholder::Rule) => out.push_str(values.rule),
                Part::Value(Placeholder::Minutes) => {
                    out.push_str(&(values.micros / 60_000_000).to_string());
                }
                Part::Value(Placeholder::Seconds) => {
                    out.push_str(&format_seconds(values.micros));
                }
            }
        }
        out
    }
}

/// Seconds with as many decimals as needed (`1815`, `1815.25`).
pub fn format_seconds(micros: i64) -> String {
    let whole = micros / 1_000_000;
    let fraction = (micros % 1_000_000).abs();
    if fraction == 0 {
        whole.to_string()
    } else {
        format!("{whole}.{fraction:06}")
            .trim_end_matches('0')
            .to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(text: &str) -> String {
        match Rules::parse(text, "test") {
            Err(err) => err.to_string(),
            Ok(rules) => panic!("accepted {rules:?}"),
        }
    }

    #[test]
    fn the_shipped_rules_are_the_fitness_nudge_and_congratulation() {
        let rules = Rules::default_rules().expect("default rules load");
        let nudge = rules.get("training-nudge").expect("nudge rule");
        assert_eq!(
            nudge.shape,
            Shape::Absence {
                on: "app_launch".into(),
                expect: "training_program_started".into(),
                within: 600_000_000,
            }
        );
        let congratulation = rules
            .get("daily-dose-congratulation")
            .expect("congratulation rule");
        assert!(matches!(
            &congratulation.shape,
            Shape::Duration { correlate, longer_than: 1_800_000_000, cancel, .. }
                if correlate == "training_program_id" && cancel == &["training_program_cancelled"]
        ));
    }

    #[test]
    fn unknown_event_types_fields_and_placeholders_fail_at_load() {
        let unknown_type = invalid(
            r#"[[rule]]
            name = "x"
            kind = "absence"
            on = "app_launch"
            expect = "workout_begun"
            within = "1m"
            message = "hi""#,
        );
        assert!(unknown_type.contains("app/workout_begun"), "{unknown_type}");
        let unknown_field = invalid(
            r#"[[rule]]
            name = "x"
            kind = "duration"
            start = "training_program_started"
            end = "training_program_finished"
            correlate = "program"
            longer_than = "1m"
            message = "hi""#,
        );
        assert!(unknown_field.contains("`program`"), "{unknown_field}");
        let unknown_placeholder = invalid(
            r#"[[rule]]
            name = "x"
            kind = "absence"
            on = "app_launch"
            expect = "training_program_started"
            within = "1m"
            message = "hi {name}""#,
        );
        assert!(
            unknown_placeholder.contains("{name}"),
            "{unknown_placeholder}"
        );
        let unknown_key = invalid(
            r#"[[rule]]
            name = "x"
            kind = "absence"
            on = "app_launch"
            expect = "training_program_started"
            within = "1m"
            wihtin = "2m"
            message = "hi""#,
        );
        assert!(unknown_key.contains("wihtin"), "{unknown_key}");
        let bad_duration = invalid(
            r#"[[rule]]
            name = "x"
            kind = "absence"
            on = "app_launch"
            expect = "training_program_started"
            within = "ten minutes"
            message = "hi""#,
        );
        assert!(bad_duration.contains("`within`"), "{bad_duration}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let rule = r#"[[rule]]
            name = "x"
            kind = "absence"
            on = "app_launch"
            expect = "training_program_started"
            within = "1m"
            message = "hi"
            "#;
        assert!(invalid(&format!("{rule}\n{rule}")).contains("another rule"));
    }

    #[test]
    fn messages_take_whole_minutes_rounded_down_and_exact_seconds() {
        let template =
            Template::parse("{user_id}: {minutes} min ({seconds} s) by {rule}").expect("parses");
        let values = MessageValues {
            user_id: "foo1",
            rule: "r",
            micros: 36 * 60_000_000 + 18_500_000,
        };
        assert_eq!(template.render(values), "foo1: 36 min (2178.5 s) by r");
        assert_eq!(format_seconds(1_800_000_000), "1800");
        assert_eq!(format_seconds(1_800_000_001), "1800.000001");
    }
}
