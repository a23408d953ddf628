//! Delivery of notifications and events to webhook destinations, at least
//! once, each destination isolated (DESIGN.md guarantee 7).
//!
//! Every destination — the built-in notify webhook (`--notify-url`) and
//! those of the destinations file — consumes on its own, in its own
//! consumer group and task, so a slow or failing destination delays only
//! itself. Within a destination each user's records are delivered in order,
//! one at a time, while other users of the same partition go ahead; failed
//! attempts are retried with exponential backoff and full jitter, then the
//! record goes to `dead-letters` with the last error. Every request carries
//! the record's id (the notification's deterministic id or the event id) as
//! `webhook-id` and `Idempotency-Key`, and the Standard Webhooks timestamp
//! and, when the destination has secrets, signature.
//!
//! - [`destinations`]: the destinations file and the notify destination.
//! - [`backoff`]: retry delays.
//! - [`signature`]: request signing.
//! - [`lanes`]: per-key order and safe commit points, without I/O.
//! - [`pace`]: a destination's request rate, slowed by `429`/`503`.
//! - [`payload`]: the JSON bodies destinations receive.
//! - [`control`]: pause and resume, on the `destination-states` topic.
//! - [`outcomes`]: last success and last error, on `destination-health`.
//! - `worker`: one destination's loop.

pub mod backoff;
pub mod control;
pub mod destinations;
pub mod lanes;
pub mod outcomes;
pub mod pace;
pub mod payload;
pub mod signature;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

use rdkafka::ClientConfig;
use schemas::Codec;
use thiserror::Error;
use tokio_util::sync::CancellationToken;
use tracing::info;

pub use backoff::Backoff;
pub use destinations::{Destination, DestinationsError, Filter, Source};

/// The request header naming the replay run of a replayed record (and
/// the Kafka header of a record `eventide replay` wrote back).
pub const REPLAY_HEADER: &str = "eventide-replay";

/// The replay run a record's Kafka headers name, if any.
pub fn replay_run<H: rdkafka::message::Headers>(headers: &H) -> Option<String> {
    headers
        .iter()
        .find(|header| header.key == REPLAY_HEADER)
        .and_then(|header| header.value)
        .and_then(|value| std::str::from_utf8(value).ok())
        .map(str::to_owned)
}

/// Metric names.
pub mod metrics {
    /// Records delivered, by `destination`.
    pub const DELIVERED: &str = "eventide_delivery_delivered_total";
    /// Requests sent to a destination (first tries and retries), by `destination`.
    pub const ATTEMPTED: &str = "eventide_delivery_attempts_total";
    /// Attempts that failed and were retried, by `destination`.
    pub const RETRIED: &str = "eventide_delivery_retried_total";
    /// Records given up on and dead-lettered, by `destination`.
    pub const DEAD_LETTERED: &str = "eventide_delivery_dead_lettered_total";
    /// Seconds from the first attempt to success, by `destination`.
    pub const DELIVERY_SECONDS: &str = "eventide_delivery_seconds";
    /// Requests/s a destination is paced to now (its `rate_limit`, or less
    /// after `429`/`503` answers); 0 when unpaced. By `destination`.
    pub const PACE: &str = "eventide_delivery_pace";
    /// Times a destination paused itself after failing for its
    /// `auto_pause_after`, by `destination`.
    pub const AUTO_PAUSED: &str = "eventide_delivery_auto_paused_total";
    /// 1 while a destination is paused, else 0; by `destination`.
    pub const PAUSED: &str = "eventide_delivery_paused";
}

/// Delivery's options.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "delivery_settings")]
#[command(next_help_heading = "Delivery")]
pub struct Settings {
    /// Base URL of the notification service: every notification is
    /// `POST`ed to `{url}/v1/notify`. No notify destination when unset.
    #[arg(long, env = "EVENTIDE_NOTIFY_URL", global = true, value_parser = http_url)]
    pub notify_url: Option<String>,

    /// Secrets the notify requests are signed with (Standard Webhooks,
    /// `whsec_…`), oldest first, separated by spaces or commas: during a
    /// rotation both the old and the new one sign.
    #[arg(
        long,
        env = "EVENTIDE_NOTIFY_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub notify_secret: Option<String>,

    /// Further webhook destinations (TOML), each with filters.
    #[arg(long, env = "EVENTIDE_DESTINATIONS_FILE", global = true)]
    pub destinations_file: Option<PathBuf>,

    /// Prefix of each destination's consumer group (`<prefix>-<name>`).
    #[arg(
        long,
        env = "EVENTIDE_DELIVERY_GROUP_PREFIX",
        default_value = "eventide-delivery",
        global = true
    )]
    pub delivery_group_prefix: String,

    /// Ceiling of the first retry's delay.
    #[arg(long, env = "EVENTIDE_RETRY_INITIAL", default_value = "200ms", value_parser = humantime::parse_duration, global = true)]
    pub retry_initial: Duration,

    /// How much the delay ceiling grows per attempt.
    #[arg(
        long,
        env = "EVENTIDE_RETRY_FACTOR",
        default_value_t = 2.0,
        global = true
    )]
    pub retry_factor: f64,

    /// Largest delay between attempts.
    #[arg(long, env = "EVENTIDE_RETRY_CAP", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub retry_cap: Duration,

    /// Attempts per record, the first included, before it is dead-lettered.
    #[arg(
        long,
        env = "EVENTIDE_RETRY_MAX_ATTEMPTS",
        default_value_t = 8,
        global = true
    )]
    pub retry_max_attempts: u32,

    /// Give up on a record this long after its first attempt, whatever the attempts.
    #[arg(long, env = "EVENTIDE_RETRY_MAX_ELAPSED", value_parser = humantime::parse_duration, global = true)]
    pub retry_max_elapsed: Option<Duration>,

    /// Records per destination read but not yet finished; reading pauses above.
    #[arg(
        long,
        env = "EVENTIDE_DELIVERY_MAX_IN_FLIGHT",
        default_value_t = 1000,
        global = true
    )]
    pub delivery_max_in_flight: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            notify_url: None,
            notify_secret: None,
            destinations_file: None,
            delivery_group_prefix: "eventide-delivery".into(),
            retry_initial: Duration::from_millis(200),
            retry_factor: 2.0,
            retry_cap: Duration::from_secs(30),
            retry_max_attempts: 8,
            retry_max_elapsed: None,
            delivery_max_in_flight: 1000,
        }
    }
}

impl Settings {
    /// The retry policy.
    pub fn backoff(&self) -> Backoff {
        Backoff {
            initial: self.retry_initial,
            factor: self.retry_factor,
            cap: self.retry_cap,
            max_attempts: self.retry_max_attempts.max(1),
            max_elapsed: self.retry_max_elapsed,
        }
    }

    /// Every configured destination: notify first, then the file's.
    ///
    /// # Errors
    ///
    /// [`DestinationsError`] if the destinations file is unusable.
    pub fn destinations(&self) -> Result<Vec<Destination>, DestinationsError> {
        let mut all = Vec::new();
        if let Some(url) = &self.notify_url {
            let secrets = self
                .notify_secret
                .as_deref()
                .map(destinations::split_secrets)
                .unwrap_or_default();
            signature::Signer::new(&secrets).map_err(|err| DestinationsError::Invalid {
                origin: "--notify-secret".into(),
                name: "notify".into(),
                message: err.to_string(),
            })?;
            all.push(Destination::notify(url, secrets));
        }
        if let Some(path) = &self.destinations_file {
            all.extend(destinations::load(path)?);
        }
        Ok(all)
    }
}

/// An absolute `http` or `https` URL with a host, as given.
fn http_url(text: &str) -> Result<String, String> {
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {
            Ok(text.to_owned())
        }
        Ok(url) => Err(format!(
            "must be an absolute http(s) URL, not a {}: URL",
            url.scheme()
        )),
        Err(err) => Err(format!("must be an absolute http(s) URL ({err})")),
    }
}

/// Everything delivery needs.
#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    pub settings: Settings,
    /// Base Kafka client configuration.
    pub kafka: ClientConfig,
    pub codec: Codec,
}

/// Why delivery stopped abnormally.
#[derive(Debug, Error)]
pub enum DeliveryError {
    /// The destinations are misconfigured.
    #[error(transparent)]
    Destinations(#[from] DestinationsError),
    /// A consumer could not be created or subscribed.
    #[error("delivery consumer: {0}")]
    Consumer(#[source] rdkafka::error::KafkaError),
    /// The HTTP client could not be built.
    #[error("delivery http client: {0}")]
    Http(String),
    /// A dead letter could not be written.
    #[error(transparent)]
    DeadLetter(#[from] crate::dead_letters::DeadLetterError),
    /// The destination states could not be read.
    #[error(transparent)]
    Control(#[from] control::ControlError),
    /// A destination's task ended abnormally.
    #[error("destination task: {0}")]
    Task(String),
}

/// Delivers to every destination until `shutdown`; with none configured,
/// waits for `shutdown` doing nothing.
///
/// # Errors
///
/// [`DeliveryError`] if a destination cannot start or fails.
pub async fn run(config: DeliveryConfig, shutdown: CancellationToken) -> Result<(), DeliveryError> {
    let destinations = config.settings.destinations()?;
    if destinations.is_empty() {
        info!("no delivery destinations configured (--notify-url, --destinations-file)");
        shutdown.cancelled().await;
        return Ok(());
    }
    // Every state before any destination starts: a paused one must not
    // deliver a single record after a restart.
    let states = control::follow(&config.kafka, config.codec.clone(), shutdown.clone()).await?;
    let mut tasks = tokio::task::JoinSet::new();
    for destination in destinations {
        let state = states.watch(&destination.name);
        let worker = worker::Worker::new(
            destination,
            &config.kafka,
            config.codec.clone(),
            &config.settings.delivery_group_prefix,
            config.settings.backoff(),
            config.settings.delivery_max_in_flight,
            state,
        )?;
        tasks.spawn(worker.run(shutdown.clone()));
    }
    while let Some(finished) = tasks.join_next().await {
        finished.map_err(|err| DeliveryError::Task(err.to_string()))??;
    }
    Ok(())
}
