//! The ScyllaDB schema: CQL migrations in `schemas/cql/`, applied in order
//! by `eventide migrate`. Same logical tables as [`crate::sql`], laid out
//! query-first (every read names a full partition key).
//!
//! - [`bind`]: statements declared once with their typed values
//!   ([`cql_statements!`](crate::cql_statements)).
//! - [`executor`]: the seam that executes one prepared statement, and the
//!   real one over a `scylla` session.
//! - [`layout`]: how keys encode days, minutes, shards and scopes.

pub mod bind;
pub mod executor;
pub mod layout;

pub use bind::{Bind, Bound, CqlRow, FromCql, FromCqlRow, Statement, ToCql};
pub use executor::{
    Consistencies, CqlExecutor, ExecuteError, Execution, SessionExecutor, parse_consistency,
    parse_serial_consistency,
};
pub use scylla::statement::{Consistency, SerialConsistency};

use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::load_balancing::DefaultPolicy;
use thiserror::Error;

use std::path::Path;
use std::sync::Arc;

use crate::store::{ScyllaLocation, TlsFiles};

/// Why the cluster could not be reached or migrated.
#[derive(Debug, Error)]
pub enum CqlError {
    /// No session could be opened to the contact points.
    #[error("connecting to ScyllaDB at {points}: {reason}")]
    Connect { points: String, reason: String },
    /// The keyspace name is not a plain CQL identifier.
    #[error(
        "keyspace {0:?} is not a valid name (letters, digits and _, at most 48, not starting with a digit)"
    )]
    Keyspace(String),
    /// The TLS files could not be read or used.
    #[error("ScyllaDB TLS: {0}")]
    Tls(String),
    /// A statement failed.
    #[error("{during}: {reason}")]
    Statement { during: String, reason: String },
}

impl CqlError {
    fn statement(during: impl Into<String>, err: impl std::fmt::Display) -> Self {
        Self::Statement {
            during: during.into(),
            reason: err.to_string(),
        }
    }
}

/// Opens a session to the cluster and switches it to the keyspace.
///
/// # Errors
///
/// [`CqlError`] if no contact point answers or the keyspace is missing (run
/// `eventide migrate` first).
pub async fn connect(location: &ScyllaLocation) -> Result<Session, CqlError> {
    let session = open(location).await?;
    check_keyspace(&location.keyspace)?;
    session
        .use_keyspace(&location.keyspace, false)
        .await
        .map_err(|err| {
            CqlError::statement(
                format!(
                    "using keyspace {} (run `eventide migrate` first)",
                    location.keyspace
                ),
                err,
            )
        })?;
    Ok(session)
}

async fn open(location: &ScyllaLocation) -> Result<Session, CqlError> {
    let mut balancing = DefaultPolicy::builder().token_aware(true);
    if let Some(datacenter) = &location.datacenter {
        balancing = balancing.prefer_datacenter(datacenter.clone());
    }
    let profile = ExecutionProfile::builder()
        .load_balancing_policy(balancing.build())
        .consistency(location.consistencies.regular)
        .serial_consistency(Some(location.consistencies.serial))
        .build();
    let mut builder = SessionBuilder::new()
        .known_nodes(&location.contact_points)
        .default_execution_profile_handle(profile.into_handle());
    if let Some(credentials) = &location.credentials {
        builder = builder.user(&credentials.username, &credentials.password);
    }
    if let Some(files) = &location.tls {
        builder = builder.tls_context(Some(tls_config(files)?));
    }
    builder.build().await.map_err(|err| CqlError::Connect {
        points: location.contact_points.join(","),
        reason: err.to_string(),
    })
}

/// The rustls client configuration for `files` (ring as the provider:
/// explicit, since the build holds two).
fn tls_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, CqlError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let tls = |what: &str, path: &Path, err: &dyn std::fmt::Display| {
        CqlError::Tls(format!("{what} {}: {err}", path.display()))
    };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&files.ca)
        .map_err(|err| tls("reading CA", &files.ca, &err))?
    {
        let cert = cert.map_err(|err| tls("reading CA", &files.ca, &err))?;
        roots
            .add(cert)
            .map_err(|err| tls("using CA", &files.ca, &err))?;
    }
    if roots.is_empty() {
        return Err(tls("reading CA", &files.ca, &"no certificate in the file"));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|err| CqlError::Tls(err.to_string()))?
    .with_root_certificates(roots);
    let config = match &files.client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_file_iter(cert)
                .map_err(|err| tls("reading client certificate", cert, &err))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| tls("reading client certificate", cert, &err))?;
            let key_der = PrivateKeyDer::from_pem_file(key)
                .map_err(|err| tls("reading client key", key, &err))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|err| tls("using client certificate", cert, &err))?
        }
    };
    Ok(Arc::new(config))
}

/// Creates the keyspace if missing and applies every migration not yet
/// recorded in its `schema_migrations` table, oldest first. Returns the
/// versions applied now (empty when the schema is current).
///
/// # Errors
///
/// [`CqlError`] naming the statement that failed.
pub async fn migrate(
    location: &ScyllaLocation,
    replication_factor: u32,
) -> Result<Vec<u32>, CqlError> {
    check_keyspace(&location.keyspace)?;
    let session = open(location).await?;
    let keyspace = &location.keyspace;
    run(&session, &create_keyspace(keyspace, replication_factor)).await?;
    session
        .use_keyspace(keyspace, false)
        .await
        .map_err(|err| CqlError::statement(format!("using keyspace {keyspace}"), err))?;
    run(
        &session,
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text, applied_at timestamp)",
    )
    .await?;
    let applied = session
        .query_unpaged("SELECT version FROM schema_migrations", ())
        .await
        .map_err(|err| CqlError::statement("reading schema_migrations", err))?
        .into_rows_result()
        .map_err(|err| CqlError::statement("reading schema_migrations", err))?;
    let applied: Vec<i32> = applied
        .rows::<(i32,)>()
        .map_err(|err| CqlError::statement("reading schema_migrations", err))?
        .map(|row| row.map(|(version,)| version))
        .collect::<Result<_, _>>()
        .map_err(|err| CqlError::statement("reading schema_migrations", err))?;
    let mut now_applied = Vec::new();
    for migration in pending(MIGRATIONS, &applied) {
        for statement in statements(migration.cql) {
            // ALTER ... ADD has no IF NOT EXISTS: a column there already
            // (a run stopped before recording its version) is skipped.
            if let Some((table, column)) = added_column(&statement)
                && has_column(&session, keyspace, table, column).await?
            {
                continue;
            }
            run(&session, &statement).await?;
        }
        let version = i32::try_from(migration.version)
            .map_err(|err| CqlError::statement("recording a migration", err))?;
        let at = scylla::value::CqlTimestamp(crate::time::now_micros() / 1000);
        session
            .query_unpaged(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, migration.name, at),
            )
            .await
            .map_err(|err| CqlError::statement("recording a migration", err))?;
        now_applied.push(migration.version);
    }
    session
        .await_schema_agreement()
        .await
        .map_err(|err| CqlError::statement("waiting for schema agreement", err))?;
    Ok(now_applied)
}

/// `(table, column)` of an `ALTER TABLE <table> ADD <column> <type>`.
fn added_column(statement: &str) -> Option<(&str, &str)> {
    let words: Vec<&str> = statement.split_whitespace().collect();
    match words.as_slice() {
        [alter, table_word, table, add, column, _type]
            if alter.eq_ignore_ascii_case("ALTER")
                && table_word.eq_ignore_ascii_case("TABLE")
                && add.eq_ignore_ascii_case("ADD") =>
        {
            Some((table, column))
        }
        _ => None,
    }
}

/// Whether `keyspace.table` has `column` (ScyllaDB's `system_schema`).
async fn has_column(
    session: &Session,
    keyspace: &str,
    table: &str,
    column: &str,
) -> Result<bool, CqlError> {
    let what = "reading system_schema.columns";
    let rows = session
        .query_unpaged(
            "SELECT column_name FROM system_schema.columns \
             WHERE keyspace_name = ? AND table_name = ? AND column_name = ?",
            (keyspace, table, column),
        )
        .await
        .map_err(|err| CqlError::statement(what, err))?
        .into_rows_result()
        .map_err(|err| CqlError::statement(what, err))?;
    Ok(rows.rows_num() > 0)
}

async fn run(session: &Session, statement: &str) -> Result<(), CqlError> {
    session
        .query_unpaged(statement, ())
        .await
        .map(drop)
        .map_err(|err| CqlError::statement(statement.to_owned(), err))
}

/// The migrations whose version is not among `applied`, oldest first.
fn pending<'a>(migrations: &'a [Migration], applied: &[i32]) -> Vec<&'a Migration> {
    migrations
        .iter()
        .filter(|m| {
            !applied
                .iter()
                .any(|version| i64::from(*version) == i64::from(m.version))
        })
        .collect()
}

/// A keyspace name must be a plain identifier: it is spliced into CQL.
fn check_keyspace(keyspace: &str) -> Result<(), CqlError> {
    let valid = !keyspace.is_empty()
        && keyspace.len() <= 48
        && !keyspace.starts_with(|c: char| c.is_ascii_digit())
        && keyspace
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(CqlError::Keyspace(keyspace.to_owned()))
    }
}

/// One migration: a version and its CQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    pub cql: &'static str,
}

/// Every migration, oldest first.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "tables",
        cql: include_str!("../../cql/001_tables.cql"),
    },
    Migration {
        version: 2,
        name: "listing_buckets",
        cql: include_str!("../../cql/002_listing_buckets.cql"),
    },
    Migration {
        version: 3,
        name: "dedup_keys",
        cql: include_str!("../../cql/003_dedup_keys.cql"),
    },
    Migration {
        version: 4,
        name: "replay_run",
        cql: include_str!("../../cql/004_replay_run.cql"),
    },
    Migration {
        version: 5,
        name: "link_analytics",
        cql: include_str!("../../cql/005_link_analytics.cql"),
    },
];

/// The statements of a CQL text: `--` comments dropped, split on `;`.
pub fn statements(cql: &str) -> Vec<String> {
    let without_comments: String = cql
        .lines()
        .map(|line| line.split_once("--").map_or(line, |(code, _)| code))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(|statement| statement.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|statement| !statement.is_empty())
        .collect()
}

/// The statement creating the keyspace.
pub fn create_keyspace(keyspace: &str, replication_factor: u32) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {keyspace} WITH replication = \
         {{'class': 'NetworkTopologyStrategy', 'replication_factor': {replication_factor}}}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all() -> Vec<String> {
        MIGRATIONS.iter().flat_map(|m| statements(m.cql)).collect()
    }

    #[test]
    fn every_statement_is_idempotent_and_no_aggregate_is_a_counter() {
        let statements = all();
        assert!(statements.len() >= 15, "{statements:?}");
        for statement in &statements {
            let upper = statement.to_uppercase();
            assert!(
                upper.starts_with("CREATE TABLE IF NOT EXISTS")
                    || upper.starts_with("CREATE INDEX IF NOT EXISTS")
                    || added_column(statement).is_some(),
                "not idempotent: {statement}"
            );
            let has_counter_type = upper
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .any(|word| word == "COUNTER");
            assert!(
                !has_counter_type,
                "counter columns break exactness: {statement}"
            );
            assert!(!upper.contains("ALLOW FILTERING"), "{statement}");
        }
    }

    #[test]
    fn every_logical_table_has_a_query_first_counterpart() {
        let statements = all().join("\n");
        for table in [
            "counters",
            "clicks_by_day",
            "clicks_by_client_month",
            "clicks_by_code",
            "bot_clicks_by_day",
            "events_by_session",
            "events_by_category_day",
            "events_by_hour",
            "event_type_counts",
            "errors_by_day",
            "notifications_by_user",
            "rule_state",
            "rule_watermarks",
            "partition_checkpoints",
            "partition_progress",
        ] {
            assert!(
                statements.contains(&format!("CREATE TABLE IF NOT EXISTS {table} (")),
                "{table} missing"
            );
        }
    }

    #[test]
    fn unreadable_or_empty_tls_files_are_refused_with_their_path() {
        let dir = std::env::temp_dir().join(format!("eventide-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let empty = dir.join("empty.crt");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        for ca in [dir.join("missing.crt"), empty] {
            let files = TlsFiles {
                ca: ca.clone(),
                client: None,
            };
            match tls_config(&files) {
                Err(CqlError::Tls(reason)) => {
                    assert!(reason.contains(&ca.display().to_string()), "{reason}")
                }
                other => panic!("{ca:?}: {other:?}"),
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn versions_increase_and_comments_are_dropped() {
        assert!(MIGRATIONS.windows(2).all(|w| w[0].version < w[1].version));
        assert_eq!(
            statements("-- a\nCREATE TABLE t (a int PRIMARY KEY); -- b\n"),
            ["CREATE TABLE t (a int PRIMARY KEY)"]
        );
        assert!(create_keyspace("eventide", 3).contains("'replication_factor': 3"));
    }

    #[test]
    fn an_added_column_is_read_from_its_alter_only() {
        assert_eq!(
            added_column("ALTER TABLE errors_by_minute ADD replay_run text"),
            Some(("errors_by_minute", "replay_run"))
        );
        assert_eq!(added_column("ALTER TABLE t DROP c"), None);
        assert_eq!(
            added_column("CREATE TABLE IF NOT EXISTS t (a int PRIMARY KEY)"),
            None
        );
    }

    #[test]
    fn only_unapplied_migrations_run_and_keyspace_names_are_checked() {
        assert_eq!(pending(MIGRATIONS, &[]).len(), MIGRATIONS.len());
        assert_eq!(pending(MIGRATIONS, &[1]).len(), MIGRATIONS.len() - 1);
        assert!(pending(MIGRATIONS, &[1, 2, 3, 4, 5]).is_empty());
        for good in ["eventide", "eventide_prod", "_x1"] {
            assert!(check_keyspace(good).is_ok(), "{good}");
        }
        for bad in ["", "1st", "a-b", "ks; DROP TABLE x", &"k".repeat(49)] {
            assert!(
                matches!(check_keyspace(bad), Err(CqlError::Keyspace(_))),
                "{bad}"
            );
        }
    }
}
