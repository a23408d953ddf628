//! The end-to-end scenarios on containers: Redpanda for Kafka and its
//! built-in Confluent-compatible schema registry. Where no Docker engine
//! runs, each test is reported as skipped (`SKIPPED: ...` on stderr and in
//! the skip report) and asserts nothing; the same scenarios run on the local
//! defaults in `tests/counters.rs` everywhere.

use testcontainers_redpanda_rs::{AsyncRunner, REDPANDA_PORT, Redpanda, SCHEMA_REGISTRY_PORT};
use testcontainers_tests::{Options, docker_or_skip, scenarios};

/// Starts Redpanda and returns pipeline options pointing at it, or `None`
/// when Docker is absent (`test` is then reported as skipped).
async fn redpanda(test: &str) -> anyhow::Result<Option<(impl Drop, Options)>> {
    if !docker_or_skip(&format!("containers::{test}"))? {
        return Ok(None);
    }
    let container = Redpanda::default().start().await?;
    let kafka = container.get_host_port_ipv4(REDPANDA_PORT).await?;
    let registry = container.get_host_port_ipv4(SCHEMA_REGISTRY_PORT).await?;
    let options = Options {
        kafka_brokers: Some(format!("127.0.0.1:{kafka}")),
        schema_registry_url: Some(format!("http://127.0.0.1:{registry}")),
        ..Options::default()
    };
    Ok(Some((container, options)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redpanda_concurrent_increments_are_exact() -> anyhow::Result<()> {
    let Some((_container, options)) = redpanda("redpanda_concurrent_increments_are_exact").await?
    else {
        return Ok(());
    };
    scenarios::concurrent_increments_are_exact(options).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redpanda_processor_restarts_keep_totals_exact() -> anyhow::Result<()> {
    let Some((_container, options)) =
        redpanda("redpanda_processor_restarts_keep_totals_exact").await?
    else {
        return Ok(());
    };
    scenarios::processor_restarts_keep_totals_exact(options).await
}
