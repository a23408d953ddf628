//! The producer client against a running pipeline: per-item results, and
//! retries that honour `429 Retry-After` until everything is written.

use std::time::Duration;

use ingest::client::{Client, ItemResult, RetryPolicy};
use schemas::keys::{ApiKeys, Auth, hash_key};
use serde_json::json;
use testcontainers_tests::{Options, Pipeline};
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_client_reports_each_item_and_rides_out_rate_limits() -> anyhow::Result<()> {
    let keys = ApiKeys::from_toml(&format!(
        "[[keys]]\nid = \"slow\"\napplication = \"batcher\"\nsha256 = \"{}\"\nscopes = [\"produce\"]\nrate_limit = 1\n\
         [[keys]]\nid = \"analyst\"\napplication = \"bi\"\nsha256 = \"{}\"\nscopes = [\"query\"]\n",
        hash_key("slow-key"),
        hash_key("analyst-key")
    ))?;
    let pipeline = Pipeline::start(Options {
        auth: Auth::Keys(keys),
        analyst_key: "analyst-key".into(),
        ..Options::default()
    })
    .await?;
    let counter = Uuid::new_v4();
    let mut client = Client::new(&pipeline.ingest_url, "slow-key").with_retry(RetryPolicy {
        initial: Duration::from_millis(50),
        max: Duration::from_secs(2),
        max_retries: 10,
    });
    // Two items per request against a limit of one request per second: the
    // second and third requests meet 429 and must wait for Retry-After.
    client.chunk = 2;
    let items = vec![
        json!({"type": "increment", "key": counter, "value": 2}),
        json!({"type": "increment", "key": counter, "value": 0}),
        json!({"type": "increment", "key": counter, "value": 3}),
        json!({"type": "app", "event_type": "app_launch", "user_id": "u1", "time_stamp": "2021-02-28 16:22:52"}),
        json!({"type": "increment", "key": counter, "value": 4}),
        json!({"type": "bogus"}),
    ];
    let results = client.send(items).await?;
    assert_eq!(results.len(), 6);
    let accepted: Vec<usize> = results
        .iter()
        .enumerate()
        .filter(|(_, r)| matches!(r, ItemResult::Accepted(_)))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(accepted, vec![0, 2, 3, 4], "{results:?}");
    assert!(matches!(&results[1], ItemResult::Rejected(e) if e["field"] == "value"));
    assert!(matches!(&results[5], ItemResult::Rejected(e) if e["field"] == "type"));
    pipeline
        .wait_for_counters(&[(counter, 9)], Duration::from_secs(30))
        .await
}
