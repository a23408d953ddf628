//! The shared scenarios on the ScyllaDB store code without a ScyllaDB: the
//! processor's write side and the query API's read side run their real CQL
//! over `cql-sim`'s in-memory cluster (tables from the real migrations,
//! last-write-wins by write timestamp, lightweight transactions, reads in
//! clustering order), on the in-process broker. Every Scylla statement of
//! both services is exercised here in every CI run; `tests/scylla.rs` runs
//! the same scenarios against a real ScyllaDB where Docker exists.

use cql_sim::Cluster;
use testcontainers_tests::Options;
use testcontainers_tests::scenarios::{self, listings, stats};

fn on_simulated_scylla() -> Options {
    Options {
        store: Some(Cluster::immediate().location()),
        ..Options::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_scylla_series_reports_and_csv_follow_utc_days_and_months() -> anyhow::Result<()>
{
    stats::series_reports_and_csv_follow_utc_days_and_months(on_simulated_scylla()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_scylla_event_pages_never_skip_or_repeat_while_events_arrive()
-> anyhow::Result<()> {
    listings::event_pages_never_skip_or_repeat_while_events_arrive(on_simulated_scylla()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_scylla_concurrent_increments_are_exact() -> anyhow::Result<()> {
    scenarios::concurrent_increments_are_exact(on_simulated_scylla()).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn simulated_scylla_processor_restarts_keep_totals_exact() -> anyhow::Result<()> {
    scenarios::processor_restarts_keep_totals_exact(on_simulated_scylla()).await
}
