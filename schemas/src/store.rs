//! Where the aggregate store lives: the embedded SQLite file (local default)
//! or a ScyllaDB cluster (production). The processor writes and the query API
//! reads the same logical tables in either.

use std::path::PathBuf;

use crate::cql::Consistencies;

/// The `kind` column of the error log (both backends): which topic a row
/// came from.
pub mod error_kind {
    /// A request ingest refused (`ingest-rejects`).
    pub const REJECT: &str = "reject";
    /// A record the processor or delivery could not use (`dead-letters`).
    pub const DEAD_LETTER: &str = "dead_letter";
    /// Every kind.
    pub const ALL: [&str; 2] = [DEAD_LETTER, REJECT];
}

/// The store backend and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file (libSQL), WAL mode.
    Sqlite(PathBuf),
    /// A ScyllaDB cluster, schema applied by `eventide migrate`.
    Scylla(ScyllaLocation),
    /// The ScyllaDB store's statements run by a given executor over tables
    /// it keeps: the simulation's in-memory cluster (`cql-sim`), in tests.
    Cql(SharedExecutor),
}

/// An executor both services share, compared by identity.
#[derive(Debug, Clone)]
pub struct SharedExecutor(pub std::sync::Arc<dyn crate::cql::CqlExecutor>);

impl PartialEq for SharedExecutor {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedExecutor {}

/// How to reach a ScyllaDB cluster.
#[derive(Clone, PartialEq, Eq)]
pub struct ScyllaLocation {
    /// `host` or `host:port` (port 9042 when omitted).
    pub contact_points: Vec<String>,
    /// Keyspace holding Eventide's tables.
    pub keyspace: String,
    /// The local datacenter: requests go to its replicas first (token- and
    /// DC-aware), and `LOCAL_*` consistencies count there. `None`: any.
    pub datacenter: Option<String>,
    /// Username and password for password authentication.
    pub credentials: Option<Credentials>,
    /// TLS to the nodes: the CA that signed their certificates, and a
    /// client certificate when the cluster requires one.
    pub tls: Option<TlsFiles>,
    /// The consistency levels of every statement.
    pub consistencies: Consistencies,
}

/// A username and password (the password is never printed).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

/// PEM files for TLS to a cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA certificate(s) the nodes' certificates are checked against.
    pub ca: PathBuf,
    /// A client certificate chain and its private key, for clusters that
    /// require client authentication.
    pub client: Option<(PathBuf, PathBuf)>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl std::fmt::Debug for ScyllaLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaLocation")
            .field("contact_points", &self.contact_points)
            .field("keyspace", &self.keyspace)
            .field("datacenter", &self.datacenter)
            .field("credentials", &self.credentials)
            .field("tls", &self.tls)
            .field("consistencies", &self.consistencies)
            .finish()
    }
}

impl ScyllaLocation {
    /// A cluster at `contact_points` (port 9042 added where missing), with
    /// no datacenter preference, no authentication and the default
    /// consistencies (`LOCAL_QUORUM`, `LOCAL_SERIAL`).
    pub fn new(contact_points: &[String], keyspace: &str) -> Self {
        Self {
            contact_points: contact_points
                .iter()
                .map(|point| point.trim())
                .filter(|point| !point.is_empty())
                .map(with_default_port)
                .collect(),
            keyspace: keyspace.to_owned(),
            datacenter: None,
            credentials: None,
            tls: None,
            consistencies: Consistencies::default(),
        }
    }
}

impl StoreLocation {
    /// ScyllaDB when contact points are given, else the SQLite file.
    pub fn choose(sqlite: PathBuf, contact_points: &[String], keyspace: &str) -> Self {
        let location = ScyllaLocation::new(contact_points, keyspace);
        if location.contact_points.is_empty() {
            Self::Sqlite(sqlite)
        } else {
            Self::Scylla(location)
        }
    }
}

fn with_default_port(point: &str) -> String {
    let has_port = match point.rsplit_once(':') {
        // `[::1]:9042` or `host:9042`; a bare IPv6 address has several colons.
        Some((host, port)) => {
            port.parse::<u16>().is_ok() && (host.ends_with(']') || !host.contains(':'))
        }
        None => false,
    };
    if has_port {
        point.to_owned()
    } else {
        format!("{point}:9042")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contact_points_choose_scylla_and_get_the_default_port() {
        let sqlite = PathBuf::from("data/eventide.db");
        assert_eq!(
            StoreLocation::choose(sqlite.clone(), &[], "eventide"),
            StoreLocation::Sqlite(sqlite.clone())
        );
        assert_eq!(
            StoreLocation::choose(sqlite.clone(), &[" ".into()], "eventide"),
            StoreLocation::Sqlite(sqlite.clone())
        );
        let StoreLocation::Scylla(location) = StoreLocation::choose(
            sqlite,
            &[
                "scylla-0".into(),
                "10.0.0.2:19042".into(),
                "[::1]:9042".into(),
            ],
            "ks",
        ) else {
            panic!("contact points given");
        };
        assert_eq!(
            location.contact_points,
            ["scylla-0:9042", "10.0.0.2:19042", "[::1]:9042"]
        );
        assert_eq!(location.keyspace, "ks");
    }
}
