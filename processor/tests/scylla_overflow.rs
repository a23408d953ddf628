//! A counter total that would pass `i64::MAX` on the ScyllaDB store: the
//! real `ScyllaStore` over `cql-sim`'s cluster (real CQL, tables from the
//! real migrations) leaves the total as it was and writes the refusal to
//! the error log, never clamping it.

use cql_sim::Cluster;
use processor::counters::PartitionCounters;
use processor::store::{FlushOutcome, Keeps, ScyllaStore, Stored};
use scylla::value::CqlValue;
use uuid::Uuid;

fn total(cluster: &Cluster, key: Uuid) -> Option<i64> {
    cluster.rows("counters").into_iter().find_map(|row| {
        (row.get("key") == Some(&CqlValue::Uuid(key))).then(|| match row.get("value") {
            Some(CqlValue::BigInt(value)) => *value,
            _ => 0,
        })
    })
}

#[tokio::test]
async fn a_total_past_the_largest_is_refused_into_the_error_log_not_clamped() {
    let cluster = Cluster::immediate();
    let store = ScyllaStore::with_executor(cluster.client().1);
    let (full, other) = (Uuid::new_v4(), Uuid::new_v4());
    let mut counters = Keeps::<PartitionCounters>::load(&store, "increments", 0, &())
        .await
        .expect("loads");
    counters.apply(0, full, i64::MAX - 1);
    let batch = counters.batch();
    Keeps::<PartitionCounters>::flush(&store, "increments", 0, &batch)
        .await
        .expect("flush");
    counters.flushed(&batch);
    counters.apply(1, full, 2);
    counters.apply(2, other, 5);
    let batch = counters.batch();
    assert_eq!(
        Keeps::<PartitionCounters>::flush(&store, "increments", 0, &batch)
            .await
            .expect("flush"),
        FlushOutcome::Written
    );
    assert_eq!(total(&cluster, full), Some(i64::MAX - 1), "left as it was");
    assert_eq!(
        total(&cluster, other),
        Some(5),
        "the rest of the batch counts"
    );
    let refusals: Vec<_> = cluster
        .rows("errors_by_minute")
        .into_iter()
        .filter(|row| row.get("reason") == Some(&CqlValue::Text("counter_overflow".into())))
        .collect();
    assert_eq!(refusals.len(), 1, "one refusal in the error log");
    let message = match refusals[0].get("message") {
        Some(CqlValue::Text(message)) => message.clone(),
        other => panic!("no message: {other:?}"),
    };
    assert!(message.contains(&full.to_string()), "{message}");
}
