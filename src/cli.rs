//! The command line. Every option is a `--flag` with an `EVENTIDE_*`
//! environment fallback; durations are written like `500ms`, `1s`, `10m`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

mod kafka;
mod scylla;

pub use self::kafka::{KafkaArgs, Property};
pub use self::scylla::{ScyllaArgs, ScyllaArgsError};

/// Eventide: Kafka-backed event ingestion and stream processing.
///
/// With no subcommand, runs the whole pipeline in one process on the local
/// defaults: an in-process Kafka-API broker and an SQLite store in the data
/// dir, ingest, processor and query API.
#[derive(Debug, Parser)]
#[command(name = "eventide", version)]
pub struct Cli {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub ingest: ingest::Settings,
    #[command(flatten)]
    pub processor: processor::Settings,
    #[command(flatten)]
    pub query: query_api::Settings,
    #[command(flatten)]
    pub delivery: processor::webhooks::Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Run one service against an external broker.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// The HTTP ingest service.
    Ingest,
    /// The stream processor, with webhook delivery.
    Processor,
    /// Webhook delivery alone (notifications and events to destinations).
    Delivery,
    /// The analysts' query API.
    QueryApi,
    /// Create every topic with `--partitions` and `--replication-factor`, then exit.
    CreateTopics,
    /// Apply the ScyllaDB schema (keyspace and tables of `schemas/cql/`) to
    /// the cluster at `--scylla-contact-points`, then exit. Idempotent: only
    /// migrations not yet recorded in the keyspace run.
    Migrate {
        /// Replication factor of the keyspace when it is created.
        #[arg(
            long,
            env = "EVENTIDE_SCYLLA_REPLICATION_FACTOR",
            default_value_t = 3,
            value_parser = clap::value_parser!(u32).range(1..)
        )]
        scylla_replication_factor: u32,
    },
    /// Send one item (argument) or NDJSON items (standard input) through
    /// ingest's batch endpoint; prints a result per item.
    Send {
        /// Ingest's base URL.
        #[arg(
            long,
            env = "EVENTIDE_INGEST_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
        /// API key with the produce scope.
        #[arg(long, env = "EVENTIDE_API_KEY", default_value = "dev-producer")]
        key: String,
        /// One item, `{"type": "increment"|"redirect"|"event"|"app"|"track", ...}`.
        item: Option<String>,
    },
    /// Generate load through the ingest client at a fixed rate.
    Loadgen {
        /// Ingest's base URL.
        #[arg(
            long,
            env = "EVENTIDE_INGEST_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
        /// API key with the produce scope.
        #[arg(long, env = "EVENTIDE_API_KEY", default_value = "dev-producer")]
        key: String,
        /// Items per second.
        #[arg(long, default_value_t = 5_000)]
        rate: u64,
        /// How long to run.
        #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
        duration: Duration,
        /// Share of each item type, e.g. `increment=60,redirect=30,event=10`.
        #[arg(long, default_value = "increment=1")]
        mix: crate::tools::Mix,
        /// Items per request.
        #[arg(long, default_value_t = 100)]
        batch: usize,
    },
    /// Schema registry tasks (`--schema-registry-url` and its credentials).
    Schemas {
        #[command(subcommand)]
        action: SchemasAction,
    },
    /// Webhook destinations: pause, resume, list, and signing secrets.
    Destinations {
        #[command(subcommand)]
        action: DestinationsAction,
    },
    /// Send dead letters back to the stage that gave up on them: a
    /// destination's to that destination only, or processing's (after the
    /// cause is fixed) back into processing. Each record at most once per run.
    Replay(ReplayArgs),
    /// Print the SHA-256 of an API key, as the keys file stores it.
    HashKey {
        /// The key (read from standard input when omitted).
        key: Option<String>,
    },
}

impl Cli {
    /// The role whose service names the process's own spans: the
    /// subcommand's, `None` for the all-in-one and the tools.
    pub fn role(&self) -> Option<&'static str> {
        match self.command {
            Some(Command::Ingest) => Some("ingest"),
            Some(Command::Processor) => Some("processor"),
            Some(Command::Delivery) => Some("delivery"),
            Some(Command::QueryApi) => Some("query-api"),
            _ => None,
        }
    }
}

/// What `eventide schemas` does.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum SchemasAction {
    /// Write every version of the compiled-in catalogue to the registry
    /// under the id the catalogue pins for it (the registry's IMPORT mode),
    /// and print the id of each: run it before moving a system that ran on
    /// the catalogue to a registry, so records already written keep their
    /// meaning. Versions already there are left alone; an id the registry
    /// gave another schema stops it, naming the id.
    Register,
}

/// What `eventide replay` replays.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct ReplayArgs {
    /// A destination's dead letters (stage `delivery:<name>`).
    #[arg(long)]
    pub destination: Option<String>,
    /// `processing`: records the processor could not decode.
    #[arg(long)]
    pub stage: Option<String>,
    /// With `--stage processing`: only records of this topic (`events`, …).
    #[arg(long)]
    pub topic: Option<String>,
    /// Only dead letters written at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Only dead letters written before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// Only this user's records.
    #[arg(long)]
    pub user_id: Option<String>,
    /// Refused requests (`ingest-rejects`) of `--application`, judged again
    /// by ingest's validation: those now valid are written, the rest are
    /// refused again with the reason.
    #[arg(long, requires = "application")]
    pub rejects: bool,
    /// With `--rejects`: the application whose refused requests to resubmit.
    #[arg(long)]
    pub application: Option<String>,
    /// Print what would be replayed (time, id, user, reason); send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// What `eventide destinations` does.
#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum DestinationsAction {
    /// Pause a destination: every delivery replica holds its records (none
    /// is skipped or dead-lettered) until it is resumed; durable.
    Pause {
        /// The destination's name.
        name: String,
        /// Why, shown by `list`.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Resume a paused destination: its held records go out, in order.
    Resume {
        /// The destination's name.
        name: String,
        /// Why, shown by `list`.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Print each destination's state, lag (records not yet finished),
    /// when and by whom it last changed, and why.
    List,
    /// Print a fresh signing secret (`whsec_` and 32 random bytes in
    /// base64) for a destination's `secrets` or `--notify-secret`.
    NewSecret,
}

/// Options every service shares.
#[derive(Debug, Clone, clap::Args)]
#[group(id = "common_args")]
#[command(next_help_heading = "Common")]
pub struct CommonArgs {
    /// Directory for the local broker's log and the SQLite store.
    #[arg(
        long,
        env = "EVENTIDE_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,

    /// Kafka bootstrap servers. Required by the service subcommands; with no
    /// subcommand, given means "use this broker instead of the in-process one".
    #[arg(long, env = "EVENTIDE_KAFKA_BROKERS", global = true)]
    pub kafka_brokers: Option<String>,

    /// Extra librdkafka client properties.
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Where the in-process broker listens (local default only).
    #[arg(
        long,
        env = "EVENTIDE_LOCAL_BROKER_LISTEN",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub local_broker_listen: SocketAddr,

    /// Free space the data dir keeps (local default): below it ingest answers
    /// writes `503 low_disk` until space is freed; reads go on. A size
    /// (`500MiB`, `2GB`) or a share (`5%`); default 1 GiB or 5% of the file
    /// system, whichever is smaller.
    #[arg(long, env = "EVENTIDE_MIN_FREE_DISK", value_parser = ingest::disk::Floor::parse, global = true)]
    pub min_free_disk: Option<ingest::disk::Floor>,

    /// How often the in-process broker deletes records past `--retention`
    /// (local default only).
    #[arg(long, env = "EVENTIDE_LOCAL_BROKER_MAINTENANCE", default_value = "10m", value_parser = parse_positive_duration, global = true)]
    pub local_broker_maintenance: Duration,

    /// How long topics created at start keep records (`retention.ms`, with
    /// `cleanup.policy=delete`).
    #[arg(long, env = "EVENTIDE_RETENTION", default_value = "7d", value_parser = parse_positive_duration, global = true)]
    pub retention: Duration,

    /// Partitions of the data topics (redirects, increments, events) created
    /// at start: how many processors can share the work.
    #[arg(long, env = "EVENTIDE_PARTITIONS", default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..), global = true)]
    pub partitions: i32,

    /// Partitions of the low-volume topics (notifications, ingest-rejects,
    /// dead-letters) created at start. Every partition a consumer holds costs
    /// the broker a read on each fetch, busy or not.
    #[arg(long, env = "EVENTIDE_LOW_VOLUME_PARTITIONS", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..), global = true)]
    pub low_volume_partitions: i32,

    /// Replication factor of each topic created at start.
    #[arg(long, env = "EVENTIDE_REPLICATION_FACTOR", default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..), global = true)]
    pub replication_factor: i32,

    /// Prefix of every physical topic name (and registry subject).
    #[arg(long, env = "EVENTIDE_TOPIC_PREFIX", default_value = "", global = true)]
    pub topic_prefix: String,

    /// Confluent-compatible schema registry; without it the compiled-in
    /// catalogue's pinned ids are used.
    #[arg(long, env = "EVENTIDE_SCHEMA_REGISTRY_URL", global = true)]
    pub schema_registry_url: Option<String>,

    /// Basic-auth user of the schema registry (Confluent Cloud: the API key).
    #[arg(
        long,
        env = "EVENTIDE_SCHEMA_REGISTRY_USERNAME",
        requires = "schema_registry_password",
        global = true
    )]
    pub schema_registry_username: Option<String>,

    /// Basic-auth password of the schema registry (the API secret); never logged.
    #[arg(
        long,
        env = "EVENTIDE_SCHEMA_REGISTRY_PASSWORD",
        requires = "schema_registry_username",
        hide_env_values = true,
        global = true
    )]
    pub schema_registry_password: Option<String>,

    /// Register this build's schemas under their subjects (`true`), or only
    /// look them up (`false`): then each must be its subject's latest
    /// version, checked at start, which fails naming the subject.
    #[arg(long, env = "EVENTIDE_SCHEMA_REGISTRY_AUTO_REGISTER", default_value_t = true, action = clap::ArgAction::Set, global = true)]
    pub schema_registry_auto_register: bool,

    /// Bearer token for the schema registry, instead of basic auth; never logged.
    #[arg(
        long,
        env = "EVENTIDE_SCHEMA_REGISTRY_TOKEN",
        conflicts_with = "schema_registry_username",
        hide_env_values = true,
        global = true
    )]
    pub schema_registry_token: Option<String>,

    /// API keys file (TOML: id, application, sha256, scopes, rate_limit).
    /// Without it the all-in-one local default accepts the development keys
    /// `dev-producer` and `dev-analyst`; single services refuse to start.
    #[arg(long, env = "EVENTIDE_KEYS_FILE", global = true)]
    pub keys_file: Option<PathBuf>,

    /// Accept every request without an API key (development only).
    #[arg(long, env = "EVENTIDE_INSECURE_NO_AUTH", global = true)]
    pub insecure_no_auth: bool,

    /// Where the ScyllaDB store is and how to reach it.
    #[command(flatten)]
    pub scylla: ScyllaArgs,

    /// Header timeout and connection cap of every HTTP listener.
    #[command(flatten)]
    pub http: http_serve::Limits,

    /// Log line format.
    #[arg(
        long,
        env = "EVENTIDE_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,

    /// How long a graceful shutdown may take before the process gives up.
    #[arg(long, env = "EVENTIDE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub shutdown_timeout: Duration,
}

impl CommonArgs {
    /// How to authenticate to the schema registry.
    pub fn registry_auth(&self) -> schemas::registry::RegistryAuth {
        use schemas::registry::RegistryAuth;
        match (
            &self.schema_registry_username,
            &self.schema_registry_password,
            &self.schema_registry_token,
        ) {
            (Some(username), Some(password), _) => RegistryAuth::Basic {
                username: username.clone(),
                password: password.clone(),
            },
            (_, _, Some(token)) => RegistryAuth::Bearer(token.clone()),
            _ => RegistryAuth::None,
        }
    }

    /// The SQLite store file in the data dir.
    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join("eventide.db")
    }

    /// ScyllaDB when contact points are set, else the SQLite file.
    ///
    /// # Errors
    ///
    /// [`ScyllaArgsError`] for ScyllaDB settings that only go together.
    pub fn store(&self) -> Result<schemas::store::StoreLocation, ScyllaArgsError> {
        Ok(match self.scylla.location()? {
            Some(location) => schemas::store::StoreLocation::Scylla(location),
            None => schemas::store::StoreLocation::Sqlite(self.store_path()),
        })
    }
}

fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(duration) if duration.is_zero() => Err("must be more than zero".to_owned()),
        Ok(duration) => Ok(duration),
        Err(err) => Err(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_line_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn timeouts_and_urls_that_cannot_work_are_refused_at_parse_time() {
        for args in [
            ["--produce-timeout", "0s"],
            ["--produce-timeout", "5ms"],
            ["--notify-url", "not-a-url"],
            ["--notify-url", "ftp://notify.example/"],
            ["--notify-url", "/relative/path"],
            ["--http-header-timeout", "0s"],
            ["--http-max-connections", "0"],
        ] {
            let mut argv = vec!["eventide"];
            argv.extend(args);
            let err = Cli::try_parse_from(&argv).expect_err("refused");
            assert!(err.to_string().contains(args[0]), "{argv:?}: {err}");
        }
        let cli = Cli::try_parse_from([
            "eventide",
            "--produce-timeout",
            "10ms",
            "--notify-url",
            "https://notify.example/base",
        ])
        .expect("valid");
        assert_eq!(cli.ingest.produce_timeout, Duration::from_millis(10));
        assert_eq!(cli.common.http, http_serve::Limits::default());
        assert_eq!(cli.common.http.header_timeout, Duration::from_secs(10));
    }

    #[test]
    fn defaults_and_flags_parse() {
        let cli = Cli::try_parse_from(["eventide"]).expect("defaults parse");
        assert_eq!(cli.command, None);
        assert_eq!(cli.processor.flush_interval, Duration::from_secs(1));
        assert_eq!(cli.common.partitions, 4);
        assert_eq!(cli.common.low_volume_partitions, 1);
        assert_eq!(cli.common.retention, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(
            cli.common.local_broker_maintenance,
            Duration::from_secs(600)
        );
        assert_eq!(cli.ingest.listen.port(), 8080);
        assert_eq!(cli.query.listen.port(), 8081);

        let cli = Cli::try_parse_from([
            "eventide",
            "processor",
            "--flush-interval",
            "500ms",
            "--kafka-brokers",
            "k:9092",
            "--kafka-option",
            "security.protocol=SASL_SSL",
        ])
        .expect("subcommand with flags parses");
        assert_eq!(cli.command, Some(Command::Processor));
        assert_eq!(cli.processor.flush_interval, Duration::from_millis(500));
        assert_eq!(
            cli.common.kafka.properties().expect("no file"),
            vec![("security.protocol".into(), "SASL_SSL".into())]
        );
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(Cli::try_parse_from(["eventide", "--flush-interval", "11s"]).is_err());
        assert!(Cli::try_parse_from(["eventide", "--partitions", "0"]).is_err());
        assert!(Cli::try_parse_from(["eventide", "--kafka-option", "novalue"]).is_err());
    }
}
