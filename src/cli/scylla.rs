//! The ScyllaDB settings: where the cluster is, how to authenticate and
//! encrypt, which datacenter is local, and the consistency levels.

use std::path::PathBuf;

use clap::Args;
use schemas::cql::{Consistency, SerialConsistency, parse_consistency, parse_serial_consistency};
use schemas::store::{Credentials, ScyllaLocation, TlsFiles};

/// ScyllaDB settings (the store is SQLite unless contact points are set).
#[derive(Debug, Clone, Args)]
pub struct ScyllaArgs {
    /// ScyllaDB contact points (`host` or `host:port`, comma-separated).
    /// When set, the processor writes and the query API reads ScyllaDB
    /// instead of the SQLite file in the data dir.
    #[arg(
        long = "scylla-contact-points",
        env = "EVENTIDE_SCYLLA_CONTACT_POINTS",
        value_delimiter = ',',
        global = true
    )]
    pub contact_points: Vec<String>,

    /// ScyllaDB keyspace holding Eventide's tables.
    #[arg(
        long = "scylla-keyspace",
        env = "EVENTIDE_SCYLLA_KEYSPACE",
        default_value = "eventide",
        global = true
    )]
    pub keyspace: String,

    /// The local datacenter: requests go to its replicas first (token- and
    /// DC-aware routing) and `LOCAL_*` consistencies count there.
    #[arg(
        long = "scylla-datacenter",
        env = "EVENTIDE_SCYLLA_DATACENTER",
        global = true
    )]
    pub datacenter: Option<String>,

    /// Username for password authentication (with `--scylla-password`).
    #[arg(
        long = "scylla-username",
        env = "EVENTIDE_SCYLLA_USERNAME",
        global = true
    )]
    pub username: Option<String>,

    /// Password for password authentication; prefer the environment
    /// variable (a Kubernetes secret) to the flag.
    #[arg(
        long = "scylla-password",
        env = "EVENTIDE_SCYLLA_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub password: Option<String>,

    /// PEM file of the CA that signed the nodes' certificates: connects
    /// over TLS when set.
    #[arg(long = "scylla-tls-ca", env = "EVENTIDE_SCYLLA_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,

    /// PEM client certificate chain, for clusters that require client
    /// authentication (with `--scylla-tls-key`).
    #[arg(
        long = "scylla-tls-cert",
        env = "EVENTIDE_SCYLLA_TLS_CERT",
        global = true
    )]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of `--scylla-tls-cert`.
    #[arg(
        long = "scylla-tls-key",
        env = "EVENTIDE_SCYLLA_TLS_KEY",
        global = true
    )]
    pub tls_key: Option<PathBuf>,

    /// Consistency of reads and writes.
    #[arg(
        long = "scylla-consistency",
        env = "EVENTIDE_SCYLLA_CONSISTENCY",
        default_value = "LOCAL_QUORUM",
        value_parser = parse_consistency,
        global = true
    )]
    pub consistency: Consistency,

    /// Consistency of the Paxos phase of the checkpoint's lightweight
    /// transactions.
    #[arg(
        long = "scylla-serial-consistency",
        env = "EVENTIDE_SCYLLA_SERIAL_CONSISTENCY",
        default_value = "LOCAL_SERIAL",
        value_parser = parse_serial_consistency,
        global = true
    )]
    pub serial_consistency: SerialConsistency,
}

/// Why the ScyllaDB settings do not go together.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScyllaArgsError {
    #[error("--scylla-username and --scylla-password go together")]
    HalfCredentials,
    #[error("--scylla-tls-cert and --scylla-tls-key go together, and need --scylla-tls-ca")]
    HalfClientCertificate,
}

impl ScyllaArgs {
    /// The cluster, or `None` when no contact point is set (SQLite).
    ///
    /// # Errors
    ///
    /// [`ScyllaArgsError`] for settings that only make sense together.
    pub fn location(&self) -> Result<Option<ScyllaLocation>, ScyllaArgsError> {
        let mut location = ScyllaLocation::new(&self.contact_points, &self.keyspace);
        if location.contact_points.is_empty() {
            return Ok(None);
        }
        location.datacenter = self.datacenter.clone().filter(|dc| !dc.is_empty());
        location.credentials = match (&self.username, &self.password) {
            (Some(username), Some(password)) => Some(Credentials {
                username: username.clone(),
                password: password.clone(),
            }),
            (None, None) => None,
            _ => return Err(ScyllaArgsError::HalfCredentials),
        };
        location.tls = match (&self.tls_ca, &self.tls_cert, &self.tls_key) {
            (None, None, None) => None,
            (Some(ca), None, None) => Some(TlsFiles {
                ca: ca.clone(),
                client: None,
            }),
            (Some(ca), Some(cert), Some(key)) => Some(TlsFiles {
                ca: ca.clone(),
                client: Some((cert.clone(), key.clone())),
            }),
            _ => return Err(ScyllaArgsError::HalfClientCertificate),
        };
        location.consistencies.regular = self.consistency;
        location.consistencies.serial = self.serial_consistency;
        Ok(Some(location))
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;
    use schemas::store::StoreLocation;

    use super::*;
    use crate::cli::Cli;

    fn store(args: &[&str]) -> Result<StoreLocation, ScyllaArgsError> {
        let mut argv = vec!["eventide"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("parses").common.store()
    }

    #[test]
    fn production_settings_reach_the_location() {
        let Ok(StoreLocation::Scylla(location)) = store(&[
            "--scylla-contact-points",
            "10.0.0.1,10.0.0.2:19042",
            "--scylla-datacenter",
            "eu-west-1",
            "--scylla-username",
            "eventide",
            "--scylla-password",
            "s3cret",
            "--scylla-tls-ca",
            "/tls/ca.crt",
            "--scylla-consistency",
            "quorum",
            "--scylla-serial-consistency",
            "SERIAL",
        ]) else {
            panic!("contact points choose ScyllaDB");
        };
        assert_eq!(location.contact_points, ["10.0.0.1:9042", "10.0.0.2:19042"]);
        assert_eq!(location.datacenter.as_deref(), Some("eu-west-1"));
        assert_eq!(
            location.credentials.as_ref().map(|c| c.username.as_str()),
            Some("eventide")
        );
        assert!(
            !format!("{location:?}").contains("s3cret"),
            "the password is never printed"
        );
        assert_eq!(
            location.tls.as_ref().map(|t| t.client.is_none()),
            Some(true)
        );
        assert_eq!(location.consistencies.regular, Consistency::Quorum);
        assert_eq!(location.consistencies.serial, SerialConsistency::Serial);
    }

    #[test]
    fn defaults_are_local_quorum_and_local_serial_and_sqlite_without_contact_points() {
        assert!(matches!(store(&[]), Ok(StoreLocation::Sqlite(_))));
        let Ok(StoreLocation::Scylla(location)) = store(&["--scylla-contact-points", "scylla"])
        else {
            panic!("contact points choose ScyllaDB");
        };
        assert_eq!(
            location.consistencies,
            schemas::cql::Consistencies::default()
        );
        assert_eq!(location.consistencies.regular, Consistency::LocalQuorum);
        assert!(location.credentials.is_none() && location.tls.is_none());
    }

    #[test]
    fn settings_that_go_together_are_refused_alone() {
        let points = ["--scylla-contact-points", "scylla"];
        for (extra, expected) in [
            (
                &["--scylla-username", "u"][..],
                ScyllaArgsError::HalfCredentials,
            ),
            (
                &["--scylla-password", "p"][..],
                ScyllaArgsError::HalfCredentials,
            ),
            (
                &["--scylla-tls-cert", "c"][..],
                ScyllaArgsError::HalfClientCertificate,
            ),
            (
                &["--scylla-tls-ca", "a", "--scylla-tls-key", "k"][..],
                ScyllaArgsError::HalfClientCertificate,
            ),
        ] {
            let args: Vec<&str> = points.iter().chain(extra).copied().collect();
            assert_eq!(store(&args), Err(expected), "{args:?}");
        }
        let bad = Cli::try_parse_from(["eventide", "--scylla-consistency", "MOST"]);
        assert!(bad.is_err());
    }
}
