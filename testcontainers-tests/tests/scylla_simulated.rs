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

mod spread_listings {
    //! Listings over minute and shard partitions: events and errors written
    //! by the processor's ScyllaDB store over three hours, read back a page
    //! at a time by the query API's: every row once, in (time, id) order.

    use cql_sim::Cluster;
    use processor::event_store::{ErrorKind, ErrorRow, EventsBatch};
    use processor::event_store::{PartitionErrors, PartitionEvents};
    use processor::store::{FlushOutcome, Keeps, Store};
    use query_api::paging::{Page, Position};
    use query_api::params::TimeRange;
    use query_api::store::{ErrorFilter, EventFilter, ReadStore};
    use schemas::Event;
    use uuid::Uuid;

    /// 2021-02-28T10:00:00Z.
    const START: i64 = 1_614_506_400_000_000;
    const HOURS: i64 = 3;
    const EVENTS: u64 = 600;

    fn time(n: u64) -> i64 {
        // Spread over three hours, several per minute, some minutes empty.
        START + ((n * 7_919) % (HOURS as u64 * 3_600)) as i64 * 1_000_000 + (n % 1_000) as i64
    }

    fn event(n: u64) -> Event {
        Event {
            event_id: Uuid::from_u128(u128::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1 << 100),
            occurred_at: time(n),
            received_at: time(n),
            application_id: "app".into(),
            session_id: format!("s{}", n % 13),
            category: if n.is_multiple_of(3) { "page" } else { "track" }.into(),
            name: "pageview".into(),
            data: "{}".into(),
            known_type: true,
            user_id: None,
            device_id: None,
            idempotency_key: None,
            destinations: None,
        }
    }

    fn range() -> TimeRange {
        TimeRange {
            from: START,
            to: START + HOURS * 3_600_000_000,
        }
    }

    /// Every page of a listing, `limit` at a time, concatenated.
    async fn pages<T, F, Fut>(limit: u32, position: impl Fn(&T) -> Position, read: F) -> Vec<T>
    where
        F: Fn(Page) -> Fut,
        Fut: std::future::Future<Output = Vec<T>>,
    {
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let mut rows = read(Page { limit, after }).await;
            let more = rows.len() > limit as usize;
            rows.truncate(limit as usize);
            after = rows.last().map(&position);
            all.extend(rows);
            if !more {
                return all;
            }
        }
    }

    #[tokio::test]
    async fn events_and_errors_spread_over_minutes_and_shards_list_in_order() -> anyhow::Result<()>
    {
        let cluster = Cluster::immediate();
        let location = cluster.location();
        let Store::Scylla(writer) = Store::open(&location).await? else {
            anyhow::bail!("the simulated cluster opens the ScyllaDB store");
        };
        let events: Vec<Event> = (0..EVENTS).map(event).collect();
        Keeps::<PartitionEvents>::load(&writer, "events", 0, &()).await?;
        let batch = EventsBatch {
            expected_next_offset: 0,
            next_offset: EVENTS as i64,
            events: events
                .iter()
                .enumerate()
                .map(|(offset, e)| (offset as i64, e.clone(), String::new()))
                .collect(),
            type_counts: Vec::new(),
        };
        anyhow::ensure!(
            Keeps::<PartitionEvents>::flush(&writer, "events", 0, &batch).await?
                == FlushOutcome::Written
        );
        let errors: Vec<ErrorRow> = (0..EVENTS / 3)
            .map(|n| ErrorRow {
                kind: if n.is_multiple_of(2) {
                    ErrorKind::Reject
                } else {
                    ErrorKind::DeadLetter
                },
                event_id: format!("e{n:05}"),
                day: String::new(),
                occurred_at: time(n * 3 + 1),
                application_id: Some("app".into()),
                source: "/v1/events".into(),
                status: Some(400),
                field: None,
                reason: "rule".into(),
                message: "bad".into(),
                body: b"{}".to_vec(),
                replay_run: n.is_multiple_of(5).then(|| format!("run-{n}")),
            })
            .collect();
        Keeps::<PartitionErrors>::load(&writer, "ingest-rejects", 0, &()).await?;
        let errors_batch = processor::event_store::ErrorsBatch {
            expected_next_offset: 0,
            next_offset: errors.len() as i64,
            rows: errors.clone(),
        };
        anyhow::ensure!(
            Keeps::<PartitionErrors>::flush(&writer, "ingest-rejects", 0, &errors_batch).await?
                == FlushOutcome::Written
        );

        let minutes = cluster.rows("events_by_minute").len();
        let partitions = cluster.rows("listing_buckets").len();
        anyhow::ensure!(
            minutes == EVENTS as usize && partitions > 180,
            "{minutes} rows in {partitions} partitions"
        );

        let reader = ReadStore::open(&location).await?;
        let position = |e: &query_api::store::StoredEvent| e.position.clone();
        let mut expected: Vec<(i64, String)> = events
            .iter()
            .map(|e| (e.occurred_at, e.event_id.to_string()))
            .collect();
        expected.sort();
        let everything = EventFilter::default();
        let listed = pages(7, position, |page| {
            let (reader, filter) = (&reader, &everything);
            async move { reader.events(filter, range(), &page).await.expect("events") }
        })
        .await;
        let listed: Vec<(i64, String)> = listed
            .iter()
            .map(|e| (e.position.time, e.id.clone()))
            .collect();
        anyhow::ensure!(
            listed == expected,
            "events by time: {} listed, {} stored",
            listed.len(),
            expected.len()
        );

        let pages_only = EventFilter {
            category: Some("page"),
            ..EventFilter::default()
        };
        let listed = pages(11, position, |page| {
            let (reader, filter) = (&reader, &pages_only);
            async move { reader.events(filter, range(), &page).await.expect("events") }
        })
        .await;
        let mut expected_pages: Vec<(i64, String)> = events
            .iter()
            .filter(|e| e.category == "page")
            .map(|e| (e.occurred_at, e.event_id.to_string()))
            .collect();
        expected_pages.sort();
        let listed: Vec<(i64, String)> = listed
            .iter()
            .map(|e| (e.position.time, e.id.clone()))
            .collect();
        anyhow::ensure!(listed == expected_pages, "events by category");

        let all_errors = ErrorFilter::default();
        let listed = pages(
            5,
            |e: &query_api::store::StoredError| e.position.clone(),
            |page| {
                let (reader, filter) = (&reader, &all_errors);
                async move { reader.errors(filter, range(), &page).await.expect("errors") }
            },
        )
        .await;
        let mut expected_errors: Vec<(i64, String, Option<String>)> = errors
            .iter()
            .map(|e| (e.occurred_at, e.event_id.clone(), e.replay_run.clone()))
            .collect();
        expected_errors.sort();
        let listed: Vec<(i64, String, Option<String>)> = listed
            .iter()
            .map(|e| (e.position.time, e.id.clone(), e.replay_run.clone()))
            .collect();
        anyhow::ensure!(
            listed == expected_errors,
            "the error log, both kinds merged, replay runs kept"
        );
        Ok(())
    }
}
