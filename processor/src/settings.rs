//! The processor's options: each a `--flag` with an `EVENTIDE_*` environment
//! fallback.

use std::time::Duration;

/// The longest flush interval allowed: stored totals are never staler.
pub const MAX_FLUSH_INTERVAL: Duration = Duration::from_secs(10);

/// Options of the processor.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "processor_settings")]
#[command(next_help_heading = "Processor")]
pub struct Settings {
    /// Address of the processor's health and metrics HTTP server.
    #[arg(
        id = "processor_listen",
        long = "processor-listen",
        env = "EVENTIDE_PROCESSOR_LISTEN",
        default_value = "127.0.0.1:8082",
        global = true
    )]
    pub listen: std::net::SocketAddr,

    /// How often aggregates are written to the store (at most 10s).
    #[arg(long, env = "EVENTIDE_FLUSH_INTERVAL", default_value = "1s", value_parser = parse_flush_interval, global = true)]
    pub flush_interval: Duration,

    /// How long a record's idempotency key is remembered: a retry received
    /// within this of the first is applied once; later it counts again.
    /// Memory holds one window of keys (at most 48 bytes each).
    #[arg(long, env = "EVENTIDE_DEDUP_WINDOW", default_value = "24h", value_parser = parse_dedup_window, global = true)]
    pub dedup_window: Duration,

    /// Consumer group the processors share partitions in.
    #[arg(
        long,
        env = "EVENTIDE_GROUP_ID",
        default_value = "eventide-processor",
        global = true
    )]
    pub group_id: String,

    /// Stable identity of this processor instance (Kafka static membership,
    /// `group.instance.id`): a restarted instance gets its partitions back at
    /// once instead of after the session timeout. Use the pod name.
    #[arg(long, env = "EVENTIDE_INSTANCE_ID", global = true)]
    pub instance_id: Option<String>,

    /// How long the group waits for a silent member before moving its partitions.
    #[arg(long, env = "EVENTIDE_SESSION_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub session_timeout: Duration,

    /// Session rules file (TOML); the shipped fitness rules when unset.
    #[arg(long, env = "EVENTIDE_RULES_FILE", global = true)]
    pub rules_file: Option<std::path::PathBuf>,

    /// How far behind the highest event time seen a partition's watermark
    /// stays, so slightly out-of-order events still count for timers.
    #[arg(long, env = "EVENTIDE_ALLOWED_LATENESS", default_value = "5s", value_parser = humantime::parse_duration, global = true)]
    pub allowed_lateness: Duration,

    /// How long a partition must be idle before its due timers fire on
    /// processing time (so a quiet user is still nudged).
    #[arg(long, env = "EVENTIDE_IDLE_GRACE", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub idle_grace: Duration,

    /// How long a fetch may wait for new records (librdkafka
    /// `fetch.wait.max.ms`). The in-process broker holds every fetch this
    /// long, so it bounds freshness from below; a longer wait means fewer
    /// fetches competing with produce requests for the broker.
    #[arg(long, env = "EVENTIDE_FETCH_WAIT", default_value = "50ms", value_parser = parse_fetch_wait, global = true)]
    pub fetch_wait: Duration,

    /// A MaxMind-format country (or city) database (GeoLite2, DB-IP, the
    /// ip-location-db files): clicks' addresses are placed in countries.
    /// Without one every click's country is `unknown`.
    #[arg(long, env = "EVENTIDE_GEOIP_DB", global = true)]
    pub geoip_db: Option<std::path::PathBuf>,

    /// Distinct values kept per short code, day and breakdown (referrer,
    /// UTM tags, ...); clicks of further values count as `(other)`.
    #[arg(long, env = "EVENTIDE_MAX_DIMENSION_VALUES", default_value_t = crate::clicks::DEFAULT_MAX_DIMENSION_VALUES, value_parser = parse_max_dimension_values, global = true)]
    pub max_dimension_values: usize,

    /// The secret unique visitors are counted by: each click's (address,
    /// user agent) is hashed with it and only the hash enters the day's
    /// sketch. Set a long random value and keep it; a new key makes every
    /// visitor new (ranges spanning the change count returning visitors
    /// twice). Unset, a built-in development key is used, with a warning.
    #[arg(
        long,
        env = "EVENTIDE_VISITOR_HASH_KEY",
        hide_env_values = true,
        global = true
    )]
    pub visitor_hash_key: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 8082)),
            flush_interval: Duration::from_secs(1),
            dedup_window: Duration::from_secs(24 * 3_600),
            group_id: "eventide-processor".into(),
            instance_id: None,
            session_timeout: Duration::from_secs(10),
            rules_file: None,
            allowed_lateness: Duration::from_secs(5),
            idle_grace: Duration::from_secs(30),
            fetch_wait: Duration::from_millis(50),
            geoip_db: None,
            max_dimension_values: crate::clicks::DEFAULT_MAX_DIMENSION_VALUES,
            visitor_hash_key: None,
        }
    }
}

fn parse_max_dimension_values(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=100_000).contains(&n) => Ok(n),
        _ => Err("must be a whole number from 1 to 100000".into()),
    }
}

fn parse_flush_interval(text: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if interval.is_zero() || interval > MAX_FLUSH_INTERVAL {
        return Err(format!(
            "must be above 0 and at most {}",
            humantime::format_duration(MAX_FLUSH_INTERVAL)
        ));
    }
    Ok(interval)
}

/// The longest dedup window: ScyllaDB's TTL and memory both grow with it.
pub const MAX_DEDUP_WINDOW: Duration = Duration::from_secs(7 * 24 * 3_600);

fn parse_dedup_window(text: &str) -> Result<Duration, String> {
    let window = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if window < Duration::from_secs(1) || window > MAX_DEDUP_WINDOW {
        return Err(format!(
            "must be from 1s to {}",
            humantime::format_duration(MAX_DEDUP_WINDOW)
        ));
    }
    Ok(window)
}

/// The longest fetch wait allowed (librdkafka's own limit is 300 s; a
/// processor that waits longer than a flush interval only looks stuck).
pub const MAX_FETCH_WAIT: Duration = Duration::from_secs(5);

fn parse_fetch_wait(text: &str) -> Result<Duration, String> {
    let wait = humantime::parse_duration(text).map_err(|err| err.to_string())?;
    if wait < Duration::from_millis(1) || wait > MAX_FETCH_WAIT {
        return Err(format!(
            "must be from 1ms to {}",
            humantime::format_duration(MAX_FETCH_WAIT)
        ));
    }
    Ok(wait)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flush_interval_is_bounded() {
        assert_eq!(
            parse_flush_interval("500ms"),
            Ok(Duration::from_millis(500))
        );
        assert_eq!(parse_flush_interval("10s"), Ok(MAX_FLUSH_INTERVAL));
        assert!(parse_flush_interval("11s").is_err());
        assert!(parse_flush_interval("0s").is_err());
        assert!(parse_flush_interval("soon").is_err());
    }

    #[test]
    fn fetch_wait_is_bounded() {
        assert_eq!(parse_fetch_wait("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_fetch_wait("5s"), Ok(MAX_FETCH_WAIT));
        assert!(parse_fetch_wait("6s").is_err());
        assert!(parse_fetch_wait("0s").is_err());
        assert!(parse_fetch_wait("900us").is_err());
    }
}
