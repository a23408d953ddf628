//! The store on ScyllaDB in a container: `eventide migrate`'s schema, then
//! the exactness scenarios with the processor writing and the query API
//! reading ScyllaDB (broker: the in-process one, or
//! `EVENTIDE_TEST_KAFKA_BROKERS`). Where no Docker engine runs, each test is
//! reported as skipped (`SKIPPED: ...` on stderr and in the skip report) and
//! asserts nothing; the same scenarios run on the SQLite store in
//! `tests/counters.rs` and on the simulated cluster in
//! `tests/scylla_simulated.rs` everywhere.

use std::time::Duration;

use schemas::store::{ScyllaLocation, StoreLocation};
use testcontainers_redpanda_rs::AsyncRunner;
use testcontainers_redpanda_rs::testcontainers::core::{IntoContainerPort, WaitFor};
use testcontainers_redpanda_rs::testcontainers::{GenericImage, ImageExt};
use testcontainers_tests::{Options, docker_or_skip, eventually, scenarios};

/// The ScyllaDB image the suite runs against.
const IMAGE: (&str, &str) = ("scylladb/scylla", "6.2");

/// Starts a one-node ScyllaDB, applies the schema in a fresh keyspace and
/// returns where it is, or `None` without Docker (`test` is then reported
/// as skipped).
async fn scylla(test: &str) -> anyhow::Result<Option<(impl Drop, ScyllaLocation)>> {
    if !docker_or_skip(&format!("scylla::{test}"))? {
        return Ok(None);
    }
    let container = GenericImage::new(IMAGE.0, IMAGE.1)
        .with_exposed_port(9042.tcp())
        .with_wait_for(WaitFor::message_on_stderr("init - serving"))
        .with_cmd([
            "--smp",
            "1",
            "--memory",
            "1G",
            "--overprovisioned",
            "1",
            "--developer-mode",
            "1",
        ])
        .start()
        .await?;
    let port = container.get_host_port_ipv4(9042).await?;
    let location = ScyllaLocation::new(
        &[format!("127.0.0.1:{port}")],
        &format!("eventide_{}", uuid::Uuid::new_v4().simple()),
    );
    // CQL may lag the log line a little: retry the first migration.
    let first = eventually(Duration::from_secs(60), || async {
        Ok(match schemas::cql::migrate(&location, 1).await {
            Ok(applied) => Ok(applied),
            Err(err) => Err(err.to_string()),
        })
    })
    .await?;
    anyhow::ensure!(
        first.len() == schemas::cql::MIGRATIONS.len(),
        "a fresh keyspace gets every migration, got {first:?}"
    );
    Ok(Some((container, location)))
}

fn on(location: &ScyllaLocation) -> Options {
    Options {
        store: Some(StoreLocation::Scylla(location.clone())),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_migrate_applies_each_migration_once() -> anyhow::Result<()> {
    let Some((_container, location)) = scylla("scylla_migrate_applies_each_migration_once").await?
    else {
        return Ok(());
    };
    let again = schemas::cql::migrate(&location, 1).await?;
    anyhow::ensure!(
        again.is_empty(),
        "a current schema applies nothing, got {again:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_concurrent_increments_are_exact() -> anyhow::Result<()> {
    let Some((_container, location)) = scylla("scylla_concurrent_increments_are_exact").await?
    else {
        return Ok(());
    };
    scenarios::concurrent_increments_are_exact(on(&location)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_processor_restarts_keep_totals_exact() -> anyhow::Result<()> {
    let Some((_container, location)) =
        scylla("scylla_processor_restarts_keep_totals_exact").await?
    else {
        return Ok(());
    };
    scenarios::processor_restarts_keep_totals_exact(on(&location)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_five_crashes_under_load_keep_totals_and_clicks_exact() -> anyhow::Result<()> {
    let Some((_container, location)) =
        scylla("scylla_five_crashes_under_load_keep_totals_and_clicks_exact").await?
    else {
        return Ok(());
    };
    scenarios::crashes_under_load_keep_totals_exact(on(&location)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_event_pages_never_skip_or_repeat_while_events_arrive() -> anyhow::Result<()> {
    let Some((_container, location)) =
        scylla("scylla_event_pages_never_skip_or_repeat_while_events_arrive").await?
    else {
        return Ok(());
    };
    scenarios::listings::event_pages_never_skip_or_repeat_while_events_arrive(on(&location)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scylla_series_reports_and_csv_follow_utc_days_and_months() -> anyhow::Result<()> {
    let Some((_container, location)) =
        scylla("scylla_series_reports_and_csv_follow_utc_days_and_months").await?
    else {
        return Ok(());
    };
    scenarios::stats::series_reports_and_csv_follow_utc_days_and_months(on(&location)).await
}
