//! Each role, run as its own process the way the chart deploys it, serves
//! the series an operator needs on its own `/metrics`: ingest, the processor
//! (with delivery) and the query API beside an all-in-one that provides the
//! broker.

mod support;

use eventide::wait::eventually;
use serde_json::json;
use support::{DEADLINE, Eventide};

/// Waits until `process`'s `/metrics` serves every one of `series` (line
/// prefixes).
async fn serves(http: &reqwest::Client, process: &Eventide, role: &str, series: &[&str]) {
    let served = eventually(DEADLINE, || async {
        let text = http
            .get(format!("{}/metrics", process.ingest))
            .send()
            .await?
            .text()
            .await?;
        let missing: Vec<&str> = series
            .iter()
            .copied()
            .filter(|s| !text.lines().any(|line| line.starts_with(s)))
            .collect();
        Ok(if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("{role} does not serve {missing:?} yet"))
        })
    })
    .await;
    if let Err(err) = served {
        panic!("{err}");
    }
}

/// What every process reports about itself.
const PROCESS: &[&str] = &[
    "eventide_build_info{version=",
    "process_cpu_seconds_total ",
    "process_resident_memory_bytes ",
    "process_open_fds ",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_serves_its_own_series() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let all_in_one = Eventide::start(data_dir.path(), &[]);
    all_in_one.wait_healthy(&http).await;
    let broker = all_in_one.broker.clone();
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let notify = format!("http://{}", receiver.local_addr().expect("address"));
    tokio::spawn(async move {
        axum::serve(
            receiver,
            axum::Router::new().route("/v1/notify", axum::routing::post(|| async { "" })),
        )
        .await
    });
    // A single service needs a keys file: the development keys, hashed.
    let keys = data_dir.path().join("keys.toml");
    std::fs::write(
        &keys,
        format!(
            "[[keys]]\nid = \"producer\"\napplication = \"roles\"\nsha256 = \"{}\"\nscopes = [\"produce\"]\n\n\
             [[keys]]\nid = \"analyst\"\napplication = \"roles\"\nsha256 = \"{}\"\nscopes = [\"query\"]\n",
            schemas::keys::hash_key("dev-producer"),
            schemas::keys::hash_key("dev-analyst")
        ),
    )
    .expect("writes the keys file");
    let keys = keys.to_string_lossy().into_owned();
    let with_keys = [("EVENTIDE_KEYS_FILE", keys.as_str())];
    let ingest = Eventide::start_role(data_dir.path(), &broker, "ingest", &with_keys);
    let query = Eventide::start_role(data_dir.path(), &broker, "query-api", &with_keys);
    let processor = Eventide::start_role(
        data_dir.path(),
        &broker,
        "processor",
        &[("EVENTIDE_NOTIFY_URL", notify.as_str())],
    );
    for (name, role) in [
        ("ingest", &ingest),
        ("query-api", &query),
        ("processor", &processor),
    ] {
        let healthy = eventually(DEADLINE, || async {
            let up = http
                .get(format!("{}/healthz", role.ingest))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            Ok(if up {
                Ok(())
            } else {
                Err(format!("{name} not healthy"))
            })
        })
        .await;
        if let Err(err) = healthy {
            panic!("{err}:\n{}", role.output());
        }
    }
    // Increments on many keys reach every partition, so the role processor
    // flushes whichever it holds.
    for _ in 0..40 {
        let key = uuid::Uuid::new_v4().to_string();
        let status = http
            .post(format!("{}/v1/increment", ingest.ingest))
            .bearer_auth("dev-producer")
            .json(&json!({"key": key, "value": 1}))
            .send()
            .await
            .expect("ingest answers")
            .status();
        assert_eq!(status, 202);
        let status = http
            .get(format!("{}/v1/counters/{key}", query.ingest))
            .bearer_auth("dev-analyst")
            .send()
            .await
            .expect("the query API answers")
            .status();
        assert!(status.is_success() || status == 404, "{status}");
    }
    let with = |own: &[&'static str]| [own, PROCESS].concat();
    serves(
        &http,
        &ingest,
        "ingest",
        &with(&[
            "eventide_http_request_seconds_bucket{service=\"ingest\"",
            "eventide_ingest_producer_queue_messages ",
            "eventide_ingest_broker_rtt_p99_seconds{",
        ]),
    )
    .await;
    serves(
        &http,
        &query,
        "query-api",
        &with(&["eventide_http_request_seconds_bucket{service=\"query-api\""]),
    )
    .await;
    serves(
        &http,
        &processor,
        "processor",
        &with(&[
            "eventide_processor_consumer_lag{",
            "eventide_processor_flush_seconds_bucket{",
            "eventide_processor_flush_records_bucket{",
            "eventide_processor_freshness_seconds{",
            "eventide_processor_rule_state_pending ",
            "eventide_delivery_attempts_total{destination=\"notify\"}",
            "eventide_delivery_dead_lettered_total{destination=\"notify\"}",
        ]),
    )
    .await;
}
