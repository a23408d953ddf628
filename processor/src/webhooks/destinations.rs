//! Webhook destinations: the built-in notify destination and the ones in the
//! destinations file, each with its own filters and consumer group.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;

use super::signature::Signer;

/// Why the destinations cannot be used.
#[derive(Debug, Error)]
pub enum DestinationsError {
    /// The file cannot be read.
    #[error("destinations file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown fields.
    #[error("destinations file {origin}: {message}")]
    Syntax { origin: String, message: String },
    /// A destination is well-formed but unusable.
    #[error("destinations file {origin}: destination `{name}`: {message}")]
    Invalid {
        origin: String,
        name: String,
        message: String,
    },
}

/// What a destination consumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The `events` topic: every accepted event that passes the filter.
    Events,
    /// The `notifications` topic: what the session rules decided.
    Notifications,
}

/// Which records a destination receives; an empty list matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Event categories.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Event names, or rule names for notifications.
    #[serde(default)]
    pub names: Vec<String>,
    /// Producing application ids (events only).
    #[serde(default)]
    pub applications: Vec<String>,
}

impl Filter {
    /// Whether a record with these attributes passes.
    pub fn matches(&self, category: Option<&str>, name: &str, application: Option<&str>) -> bool {
        let allows = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|item| item == v))
        };
        allows(&self.categories, category)
            && allows(&self.names, Some(name))
            && allows(&self.applications, application)
    }
}

/// One webhook destination.
#[derive(Clone, PartialEq)]
pub struct Destination {
    /// Unique; names the consumer group and the dead-letter stage.
    pub name: String,
    /// Where records are `POST`ed.
    pub url: String,
    /// Active signing secrets (`whsec_…`), oldest first; none leaves
    /// requests unsigned.
    pub secrets: Vec<String>,
    pub source: Source,
    pub filter: Filter,
    /// Longest wait for one answer.
    pub timeout: Duration,
    /// Most requests per second; unlimited when `None`.
    pub rate_limit: Option<f64>,
    /// Most requests in flight at once; [`DEFAULT_MAX_CONCURRENCY`] when
    /// `None`.
    pub max_concurrency: Option<usize>,
    /// Pause the destination once every attempt has failed for this long.
    pub auto_pause_after: Option<Duration>,
}

impl std::fmt::Debug for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Destination")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secrets", &self.secrets.len())
            .field("source", &self.source)
            .field("filter", &self.filter)
            .field("timeout", &self.timeout)
            .field("rate_limit", &self.rate_limit)
            .field("max_concurrency", &self.max_concurrency)
            .field("auto_pause_after", &self.auto_pause_after)
            .finish()
    }
}

/// Requests in flight to one destination unless it says otherwise: enough
/// to keep a fast receiver busy over keep-alive connections, few enough not
/// to open a connection per user.
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;

/// How long a destination waits for an answer unless it says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

impl Destination {
    /// The notify destination of the fitness app: `POST {base}/v1/notify`
    /// for every notification.
    pub fn notify(base: &str, secrets: Vec<String>) -> Self {
        Self {
            name: "notify".into(),
            url: format!("{}/v1/notify", base.trim_end_matches('/')),
            secrets,
            source: Source::Notifications,
            filter: Filter::default(),
            timeout: DEFAULT_TIMEOUT,
            rate_limit: None,
            max_concurrency: None,
            auto_pause_after: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationsFile {
    #[serde(default)]
    destination: Vec<DestinationSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DestinationSpec {
    name: String,
    url: String,
    secret: Option<String>,
    secrets: Option<Vec<String>>,
    secret_env: Option<String>,
    #[serde(default = "events_source")]
    source: Source,
    timeout: Option<String>,
    rate_limit: Option<f64>,
    max_concurrency: Option<usize>,
    auto_pause_after: Option<String>,
    #[serde(default)]
    filter: Filter,
}

/// Secrets given in one string (an environment variable, `--notify-secret`):
/// separated by spaces or commas, oldest first.
pub fn split_secrets(text: &str) -> Vec<String> {
    text.split([' ', ','])
        .filter(|part| !part.is_empty())
        .map(str::to_owned)
        .collect()
}

fn events_source() -> Source {
    Source::Events
}

/// The destinations in `path` (TOML).
///
/// # Errors
///
/// [`DestinationsError`] naming the file, the destination and the problem.
pub fn load(path: &Path) -> Result<Vec<Destination>, DestinationsError> {
    let text = std::fs::read_to_string(path).map_err(|source| DestinationsError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse(&text, &path.display().to_string(), |name| {
        std::env::var(name).ok()
    })
}

/// Destinations from TOML text; `env` resolves `secret_env`.
///
/// # Errors
///
/// [`DestinationsError`] naming the destination and the problem.
pub fn parse(
    text: &str,
    origin: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Vec<Destination>, DestinationsError> {
    let file: DestinationsFile = toml::from_str(text).map_err(|err| DestinationsError::Syntax {
        origin: origin.to_owned(),
        message: err.to_string(),
    })?;
    let mut names = HashSet::new();
    let mut destinations = Vec::new();
    for spec in file.destination {
        let invalid = |message: String| DestinationsError::Invalid {
            origin: origin.to_owned(),
            name: spec.name.clone(),
            message,
        };
        if !schemas::destination::is_valid_name(&spec.name) {
            return Err(invalid("name must be 1 to 64 of [a-z0-9_-]".into()));
        }
        if !names.insert(spec.name.clone()) {
            return Err(invalid("another destination has this name".into()));
        }
        let url = reqwest::Url::parse(&spec.url)
            .map_err(|err| invalid(format!("url {:?}: {err}", spec.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(invalid("url must be http or https".into()));
        }
        let secrets = match (&spec.secret, &spec.secrets, &spec.secret_env) {
            (None, None, None) => Vec::new(),
            (Some(secret), None, None) => vec![secret.clone()],
            (None, Some(secrets), None) => secrets.clone(),
            (None, None, Some(name)) => split_secrets(
                &env(name)
                    .ok_or_else(|| invalid(format!("environment variable {name} is not set")))?,
            ),
            _ => {
                return Err(invalid(
                    "set one of `secret`, `secrets` and `secret_env`".into(),
                ));
            }
        };
        Signer::new(&secrets).map_err(|err| invalid(err.to_string()))?;
        let timeout = match &spec.timeout {
            None => DEFAULT_TIMEOUT,
            Some(text) => humantime::parse_duration(text)
                .map_err(|err| invalid(format!("timeout {text:?}: {err}")))?,
        };
        if let Some(rate) = spec.rate_limit
            && !(rate.is_finite() && rate > 0.0)
        {
            return Err(invalid(format!(
                "rate_limit must be more than 0 requests/s, not {rate}"
            )));
        }
        let auto_pause_after = match &spec.auto_pause_after {
            None => None,
            Some(text) => Some(
                humantime::parse_duration(text)
                    .ok()
                    .filter(|after| !after.is_zero())
                    .ok_or_else(|| {
                        invalid(format!(
                            "auto_pause_after {text:?} must be a duration like \"10m\""
                        ))
                    })?,
            ),
        };
        if spec.max_concurrency == Some(0) {
            return Err(invalid("max_concurrency must be at least 1".into()));
        }
        destinations.push(Destination {
            name: spec.name.clone(),
            url: spec.url.clone(),
            secrets,
            source: spec.source,
            filter: spec.filter.clone(),
            timeout,
            rate_limit: spec.rate_limit,
            max_concurrency: spec.max_concurrency,
            auto_pause_after,
        });
    }
    Ok(destinations)
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
        [[destination]]
        name = "analytics"
        url = "https://analytics.example/hook"
        secret_env = "ANALYTICS_SECRET"
        timeout = "2s"
        rate_limit = 20
        max_concurrency = 4
        auto_pause_after = "15m"
        [destination.filter]
        categories = ["app"]
        names = ["app_launch"]

        [[destination]]
        name = "audit"
        url = "http://audit.internal:9000/in"
        source = "notifications"
    "#;

    /// The Standard Webhooks specification's example secret.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn env(name: &str) -> Option<String> {
        (name == "ANALYTICS_SECRET").then(|| format!("{SECRET} {SECRET}"))
    }

    #[test]
    fn a_file_gives_destinations_with_secrets_filters_and_timeouts() {
        let destinations = parse(FILE, "test", env).expect("valid");
        assert_eq!(destinations.len(), 2);
        assert_eq!(
            destinations[0].secrets,
            [SECRET, SECRET],
            "two active secrets"
        );
        assert_eq!(destinations[0].timeout, Duration::from_secs(2));
        assert_eq!(destinations[0].rate_limit, Some(20.0));
        assert_eq!(destinations[0].max_concurrency, Some(4));
        assert_eq!(destinations[1].rate_limit, None);
        assert_eq!(
            destinations[0].auto_pause_after,
            Some(Duration::from_secs(900))
        );
        assert_eq!(destinations[0].source, Source::Events);
        assert_eq!(destinations[1].source, Source::Notifications);
        assert!(!format!("{:?}", destinations[0]).contains(SECRET));
        let notify = Destination::notify("http://notify:8080/", Vec::new());
        assert_eq!(notify.url, "http://notify:8080/v1/notify");
    }

    #[test]
    fn each_problem_is_named() {
        let cases = [
            (
                r#"[[destination]]
                name = "Bad Name"
                url = "http://x""#,
                "name",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "ftp://x""#,
                "http or https",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "not a url""#,
                "url",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                secret_env = "MISSING""#,
                "MISSING",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                [[destination]]
                name = "a"
                url = "http://y""#,
                "another destination",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                retries = 3"#,
                "retries",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                secret = "s"
                secret_env = "ANALYTICS_SECRET""#,
                "one of",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                secrets = ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "s3cret"]"#,
                "secret #2 must be `whsec_`",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                timeout = "soon""#,
                "timeout",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                rate_limit = 0"#,
                "rate_limit must be more than 0",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                max_concurrency = 0"#,
                "max_concurrency must be at least 1",
            ),
            (
                r#"[[destination]]
                name = "a"
                url = "http://x"
                auto_pause_after = "later""#,
                "auto_pause_after",
            ),
        ];
        for (text, expected) in cases {
            let err = parse(text, "test", env).expect_err(expected).to_string();
            assert!(err.contains(expected), "{err} lacks {expected}");
        }
    }

    #[test]
    fn filters_match_every_listed_attribute() {
        let filter = Filter {
            categories: vec!["app".into()],
            names: vec!["app_launch".into(), "training_program_started".into()],
            applications: Vec::new(),
        };
        assert!(filter.matches(Some("app"), "app_launch", Some("fitness")));
        assert!(!filter.matches(Some("app"), "profile_viewed", Some("fitness")));
        assert!(!filter.matches(Some("track"), "app_launch", None));
        assert!(Filter::default().matches(None, "anything", None));
    }
}
