//! librdkafka client properties, as librdkafka users write them, without
//! splitting values: a properties file (`--kafka-properties-file`), one
//! property per line in `EVENTIDE_KAFKA_OPTIONS`, and repeated
//! `--kafka-option key=value`; later ones override earlier ones. A value
//! may hold commas, `=` and spaces; values are never printed.

use std::fmt;
use std::path::PathBuf;

/// One property; `Debug` hides its value (passwords are properties).
#[derive(Clone, PartialEq, Eq)]
pub struct Property {
    pub key: String,
    pub value: String,
}

impl fmt::Debug for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}=<redacted>", self.key)
    }
}

/// Properties given together (a file's or a variable's lines).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Properties(pub Vec<Property>);

/// Where librdkafka's client properties come from.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
#[group(id = "kafka_properties")]
pub struct KafkaArgs {
    /// A librdkafka client property, `key=value` (SASL, TLS, ...); repeatable,
    /// never split: the value is everything after the first `=`.
    #[arg(long = "kafka-option", value_parser = parse_property, global = true)]
    pub options: Vec<Property>,

    /// A file of librdkafka properties, one `key=value` per line (`#` and `!`
    /// start comments), as in librdkafka's and Java clients' configuration.
    #[arg(long, env = "EVENTIDE_KAFKA_PROPERTIES_FILE", global = true)]
    pub kafka_properties_file: Option<PathBuf>,

    /// librdkafka properties, one `key=value` per line (the environment
    /// form of `--kafka-option`).
    #[arg(long = "kafka-options", env = "EVENTIDE_KAFKA_OPTIONS", value_parser = parse_lines, hide = true, global = true)]
    pub lines: Option<Properties>,
}

impl KafkaArgs {
    /// Every property: the file's, then the variable's, then the flags'.
    ///
    /// # Errors
    ///
    /// If the file cannot be read or a line is not `key=value`, naming the
    /// file and line.
    pub fn properties(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut all = Vec::new();
        if let Some(path) = &self.kafka_properties_file {
            let text = std::fs::read_to_string(path).map_err(|err| {
                anyhow::anyhow!("--kafka-properties-file {}: {err}", path.display())
            })?;
            let file = parse_lines(&text).map_err(|err| {
                anyhow::anyhow!("--kafka-properties-file {}: {err}", path.display())
            })?;
            all.extend(file.0);
        }
        all.extend(self.lines.iter().flat_map(|lines| lines.0.iter().cloned()));
        all.extend(self.options.iter().cloned());
        Ok(all.into_iter().map(|p| (p.key, p.value)).collect())
    }
}

/// `key=value`: the key trimmed, the value everything after the first `=`
/// (trimmed at its ends only).
///
/// # Errors
///
/// A message that shows the key, never the value.
pub(super) fn parse_property(text: &str) -> Result<Property, String> {
    match text.split_once('=') {
        Some((key, value))
            if !key.trim().is_empty() && !key.trim().contains(char::is_whitespace) =>
        {
            Ok(Property {
                key: key.trim().to_owned(),
                value: value.trim().to_owned(),
            })
        }
        Some((key, _)) => Err(format!("expected key=value, got the key {:?}", key.trim())),
        None => Err("expected key=value, found no `=`".to_owned()),
    }
}

/// Lines of `key=value`; blank lines and `#` or `!` comments skipped.
///
/// # Errors
///
/// The first bad line's number.
pub(super) fn parse_lines(text: &str) -> Result<Properties, String> {
    let mut properties = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let property = parse_property(line).map_err(|err| format!("line {}: {err}", number + 1))?;
        properties.push(property);
    }
    Ok(Properties(properties))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_keep_commas_equals_signs_and_spaces() {
        let property = parse_property("sasl.password= pa,ss=x y ").expect("parses");
        assert_eq!(
            (property.key.as_str(), property.value.as_str()),
            ("sasl.password", "pa,ss=x y")
        );
        assert_eq!(format!("{property:?}"), "sasl.password=<redacted>");
        assert!(parse_property("no equals sign").is_err());
        let err = parse_property("=secret").expect_err("no key");
        assert!(!err.contains("secret"), "{err}");
    }

    #[test]
    fn lines_skip_comments_and_name_a_bad_line() {
        let text = "# SASL\nsecurity.protocol=SASL_SSL\n\n! java comment\nsasl.password=a,b=c\n";
        let Properties(properties) = parse_lines(text).expect("parses");
        assert_eq!(properties.len(), 2);
        assert_eq!(properties[1].value, "a,b=c");
        let err = parse_lines("a=1\nbroken\n").expect_err("bad line");
        assert!(err.starts_with("line 2"), "{err}");
    }
}
