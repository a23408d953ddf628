//! The ingest service's options: each a `--flag` with an `EVENTIDE_*`
//! environment fallback.

use std::net::SocketAddr;
use std::time::Duration;

/// Options of the ingest service.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "ingest_settings")]
#[command(next_help_heading = "Ingest")]
pub struct Settings {
    /// Address the ingest HTTP server listens on.
    #[arg(
        id = "ingest_listen",
        long = "ingest-listen",
        env = "EVENTIDE_INGEST_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: SocketAddr,

    /// How long a write may wait for the broker's acknowledgement before the
    /// request is answered 503.
    #[arg(long, env = "EVENTIDE_PRODUCE_TIMEOUT", default_value = "5s", value_parser = produce_timeout, global = true)]
    pub produce_timeout: Duration,

    /// How long the producer keeps retrying a record before giving up
    /// (librdkafka `message.timeout.ms`; at least `--produce-timeout`). A
    /// request answered 503 may still be written within this time: the 503
    /// means "not acknowledged", not "dropped".
    #[arg(long, env = "EVENTIDE_DELIVERY_TIMEOUT", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub delivery_timeout: Duration,

    /// How long the producer may wait to fill a batch (librdkafka `linger.ms`).
    #[arg(long, env = "EVENTIDE_PRODUCE_LINGER", default_value = "2ms", value_parser = humantime::parse_duration, global = true)]
    pub produce_linger: Duration,

    /// Largest request body accepted, in bytes; larger bodies get 413.
    #[arg(long, env = "EVENTIDE_MAX_BODY", default_value_t = 1024 * 1024, global = true)]
    pub max_body: usize,

    /// Most items one `POST /v1/batch` may hold.
    #[arg(
        long,
        env = "EVENTIDE_MAX_BATCH",
        default_value_t = 1000,
        global = true
    )]
    pub max_batch: usize,

    /// How far in the future an event's timestamp may be before it is refused.
    #[arg(long, env = "EVENTIDE_MAX_CLOCK_SKEW", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub max_clock_skew: Duration,

    /// Origins whose pages may call ingest (CORS), comma-separated:
    /// `https://app.example.com`, or `*` for any; off when empty. Preflights
    /// are answered without an API key.
    #[arg(long = "cors-allow-origin", env = "EVENTIDE_CORS_ALLOW_ORIGIN", value_delimiter = ',', value_parser = crate::cors::Origin::parse, global = true)]
    pub cors_allow_origins: Vec<crate::cors::Origin>,

    /// Requests per second each API key may make (its keys-file entry may
    /// set its own); excess gets 429 with Retry-After.
    #[arg(long, env = "EVENTIDE_RATE_LIMIT", default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..), global = true)]
    pub rate_limit: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            produce_timeout: Duration::from_secs(5),
            delivery_timeout: Duration::from_secs(300),
            produce_linger: Duration::from_millis(2),
            max_body: 1024 * 1024,
            max_batch: 1000,
            max_clock_skew: Duration::from_secs(300),
            rate_limit: 10_000,
            cors_allow_origins: Vec::new(),
        }
    }
}

/// Options that contradict each other.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A write would be answered 503 before the producer gives up on it,
    /// and then given up while the client retries: say which is meant.
    #[error(
        "--produce-timeout ({produce:?}) is longer than --delivery-timeout ({delivery:?}); a write cannot wait longer than the producer tries it"
    )]
    ProduceBeyondDelivery {
        produce: Duration,
        delivery: Duration,
    },
}

impl Settings {
    /// Checks the options against each other.
    ///
    /// # Errors
    ///
    /// [`SettingsError`] naming the flags that contradict each other.
    pub fn validate(&self) -> Result<(), SettingsError> {
        if self.produce_timeout > self.delivery_timeout {
            return Err(SettingsError::ProduceBeyondDelivery {
                produce: self.produce_timeout,
                delivery: self.delivery_timeout,
            });
        }
        Ok(())
    }
}

/// A produce timeout: at least 10 ms (a shorter one answers every write 503
/// while the record still lands).
fn produce_timeout(text: &str) -> Result<Duration, String> {
    const MIN: Duration = Duration::from_millis(10);
    let timeout = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if timeout < MIN {
        return Err(format!("must be at least 10ms, got {text}"));
    }
    Ok(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_produce_timeout_past_the_delivery_timeout_is_refused() {
        let mut settings = Settings::default();
        assert_eq!(settings.validate(), Ok(()));
        settings.produce_timeout = Duration::from_secs(10);
        settings.delivery_timeout = Duration::from_secs(5);
        let err = settings.validate().expect_err("contradiction");
        assert!(err.to_string().contains("--delivery-timeout"), "{err}");
        settings.delivery_timeout = settings.produce_timeout;
        assert_eq!(settings.validate(), Ok(()));
    }

    #[test]
    fn produce_timeouts_under_10ms_are_refused() {
        assert!(produce_timeout("0s").is_err());
        assert!(produce_timeout("9ms").is_err());
        assert_eq!(produce_timeout("10ms"), Ok(Duration::from_millis(10)));
    }
}
