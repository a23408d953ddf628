//! The limits of one listener, as flags with their defaults.

use std::time::Duration;

/// Most header fields one request may carry; more is a `431`.
pub const MAX_HEADER_FIELDS: usize = 100;

/// The limits of one HTTP listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::Args)]
#[group(id = "http_limits")]
#[command(next_help_heading = "HTTP listeners")]
pub struct Limits {
    /// How long a connection may take to send a request's headers (also how
    /// long an idle keep-alive connection stays open); then it is closed.
    #[arg(
        long = "http-header-timeout",
        env = "EVENTIDE_HTTP_HEADER_TIMEOUT",
        default_value = "10s",
        value_parser = positive,
        global = true
    )]
    pub header_timeout: Duration,

    /// How long a request's body may take to arrive once its headers have;
    /// then the request is answered `408` and the connection closed.
    #[arg(
        long = "http-body-timeout",
        env = "EVENTIDE_HTTP_BODY_TIMEOUT",
        default_value = "30s",
        value_parser = positive,
        global = true
    )]
    pub body_timeout: Duration,

    /// Longest request target (path and query) in bytes; longer is a `414`.
    #[arg(
        long = "http-max-uri-bytes",
        env = "EVENTIDE_HTTP_MAX_URI_BYTES",
        default_value_t = 8 * 1024,
        value_parser = clap::value_parser!(u32).range(64..=60 * 1024),
        global = true
    )]
    pub max_uri_bytes: u32,

    /// Most bytes of header fields (names, values and separators) one request
    /// may send; more, or more than 100 fields, is a `431`.
    #[arg(
        long = "http-max-header-bytes",
        env = "EVENTIDE_HTTP_MAX_HEADER_BYTES",
        default_value_t = 16 * 1024,
        value_parser = clap::value_parser!(u32).range(1024..=1024 * 1024),
        global = true
    )]
    pub max_header_bytes: u32,

    /// Most connections one listener keeps open; more wait until one closes.
    #[arg(
        long = "http-max-connections",
        env = "EVENTIDE_HTTP_MAX_CONNECTIONS",
        default_value_t = 10_000,
        value_parser = clap::value_parser!(u32).range(1..),
        global = true
    )]
    pub max_connections: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_connections: 10_000,
        }
    }
}

impl Limits {
    /// The HTTP layer's own read buffer: large enough that a request up to
    /// four times over the limits still reaches [`crate::guard`] and gets
    /// its JSON answer; beyond that hyper refuses it itself, with an empty
    /// body, before any of it is buffered further.
    pub(crate) fn read_buffer(&self) -> usize {
        let limits = u64::from(self.max_uri_bytes) + u64::from(self.max_header_bytes);
        usize::try_from(limits.saturating_mul(4))
            .unwrap_or(usize::MAX)
            .max(8192)
    }
}

fn positive(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration >= Duration::from_millis(1) => Ok(duration),
        Ok(_) => Err(format!("must be at least 1ms, got {text}")),
        Err(err) => Err(err.to_string()),
    }
}
