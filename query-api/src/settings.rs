//! The query API's options: each a `--flag` with an `EVENTIDE_*` environment
//! fallback.

use std::net::SocketAddr;
use std::time::Duration;

/// Options of the query API.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "query_settings")]
#[command(next_help_heading = "Query API")]
pub struct Settings {
    /// Address the query API listens on.
    #[arg(
        id = "query_listen",
        long = "query-listen",
        env = "EVENTIDE_QUERY_LISTEN",
        default_value = "127.0.0.1:8081",
        global = true
    )]
    pub listen: SocketAddr,

    /// How many analyst reads run at once; the rest wait their turn (within
    /// `--query-deadline`).
    #[arg(
        long = "query-concurrency",
        env = "EVENTIDE_QUERY_CONCURRENCY",
        default_value_t = 8,
        value_parser = clap::value_parser!(u16).range(1..),
        global = true
    )]
    pub concurrency: u16,

    /// The longest an analyst request may take, waiting included; past it
    /// the answer is `503` with `Retry-After`.
    #[arg(
        long = "query-deadline",
        env = "EVENTIDE_QUERY_DEADLINE",
        default_value = "10s",
        value_parser = deadline,
        global = true
    )]
    pub deadline: Duration,

    /// Serve the analysts' console at `/console` (always on in the
    /// all-in-one on the local default).
    #[arg(
        long = "console",
        env = "EVENTIDE_CONSOLE",
        default_value_t = false,
        global = true
    )]
    pub console: bool,

    /// The secret that signs console sessions; every replica behind one
    /// address needs the same. Without it each process draws its own, and
    /// its sessions end when it stops.
    #[arg(
        long = "console-secret",
        env = "EVENTIDE_CONSOLE_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub console_secret: Option<String>,

    /// How long a console session lasts after signing in.
    #[arg(
        long = "console-session-ttl",
        env = "EVENTIDE_CONSOLE_SESSION_TTL",
        default_value = "12h",
        value_parser = deadline,
        global = true
    )]
    pub console_session_ttl: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
            concurrency: 8,
            deadline: Duration::from_secs(10),
            console: false,
            console_secret: None,
            console_session_ttl: Duration::from_secs(12 * 3600),
        }
    }
}

/// A query deadline: at least a millisecond.
fn deadline(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(deadline) if deadline >= Duration::from_millis(1) => Ok(deadline),
        Ok(_) => Err(format!("must be at least 1ms, got {text}")),
        Err(err) => Err(err.to_string()),
    }
}
