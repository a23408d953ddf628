//! Where the aggregate store lives: the embedded SQLite file (local default)
//! or a ScyllaDB cluster (production). The processor writes and the query API
//! reads the same logical tables in either.

use std::path::PathBuf;

/// The store backend and how to reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// A SQLite file (libSQL), WAL mode.
    Sqlite(PathBuf),
    /// A ScyllaDB cluster, schema applied by `eventide migrate`.
    Scylla(ScyllaLocation),
}

/// How to reach a ScyllaDB cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaLocation {
    /// `host` or `host:port` (port 9042 when omitted).
    pub contact_points: Vec<String>,
    /// Keyspace holding Eventide's tables.
    pub keyspace: String,
}

impl StoreLocation {
    /// ScyllaDB when contact points are given, else the SQLite file.
    pub fn choose(sqlite: PathBuf, contact_points: &[String], keyspace: &str) -> Self {
        let points: Vec<String> = contact_points
            .iter()
            .map(|point| point.trim())
            .filter(|point| !point.is_empty())
            .map(with_default_port)
            .collect();
        if points.is_empty() {
            Self::Sqlite(sqlite)
        } else {
            Self::Scylla(ScyllaLocation {
                contact_points: points,
                keyspace: keyspace.to_owned(),
            })
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
