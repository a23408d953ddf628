//! The query API's options: each a `--flag` with an `EVENTIDE_*` environment
//! fallback.

use std::net::SocketAddr;

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
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8081)),
        }
    }
}
