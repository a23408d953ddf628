//! The `eventide` binary on the local defaults, as a user runs it: start it,
//! post increments, read the total, stop it with SIGTERM, start it again on
//! the same data dir and find everything still there.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use eventide::wait::eventually;
use tokio::process::Child;

use serde_json::{Value, json};

const DEADLINE: Duration = Duration::from_secs(60);

struct Eventide {
    child: Child,
    ingest: String,
    query: String,
}

impl Eventide {
    fn start(data_dir: &Path) -> Self {
        let [broker, ingest, query] = [free_port(), free_port(), free_port()];
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventide"))
            .env("EVENTIDE_DATA_DIR", data_dir)
            .env(
                "EVENTIDE_LOCAL_BROKER_LISTEN",
                format!("127.0.0.1:{broker}"),
            )
            .env("EVENTIDE_INGEST_LISTEN", format!("127.0.0.1:{ingest}"))
            .env("EVENTIDE_QUERY_LISTEN", format!("127.0.0.1:{query}"))
            .env("EVENTIDE_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("eventide starts");
        Self {
            child,
            ingest: format!("http://127.0.0.1:{ingest}"),
            query: format!("http://127.0.0.1:{query}"),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("eventide exits after SIGTERM")
            .expect("wait works")
    }
}

impl Drop for Eventide {
    fn drop(&mut self) {
        drop(self.child.start_kill());
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

async fn wait_healthy(http: &reqwest::Client, url: &str) {
    eventually(DEADLINE, || async {
        let healthy = http
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        Ok(if healthy {
            Ok(())
        } else {
            Err(format!("{url} not healthy"))
        })
    })
    .await
    .expect("the service becomes healthy");
}

async fn post(http: &reqwest::Client, eventide: &Eventide, body: Value) -> (u16, Value) {
    let response = http
        .post(format!("{}/v1/increment", eventide.ingest))
        .bearer_auth("dev-producer")
        .json(&body)
        .send()
        .await
        .expect("ingest answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn wait_for_total(http: &reqwest::Client, eventide: &Eventide, key: &str, want: i64) {
    eventually(DEADLINE, || async {
        let body: Value = http
            .get(format!("{}/v1/counters/{key}", eventide.query))
            .bearer_auth("dev-analyst")
            .send()
            .await?
            .json()
            .await?;
        Ok(if body["value"] == want {
            Ok(())
        } else {
            Err(format!("counter {key} is {body}, want {want}"))
        })
    })
    .await
    .expect("the total is reached");
}

#[tokio::test]
async fn counts_survive_a_graceful_restart_of_the_binary() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let key = uuid::Uuid::new_v4().to_string();

    let eventide = Eventide::start(data_dir.path());
    wait_healthy(&http, &eventide.ingest).await;
    wait_healthy(&http, &eventide.query).await;
    for value in [3, 4, 5] {
        let (status, body) = post(&http, &eventide, json!({ "key": key, "value": value })).await;
        assert_eq!(status, 202, "{body}");
        assert_eq!(body["accepted"], 1);
    }
    let (status, body) = post(&http, &eventide, json!({ "key": key, "value": 0 })).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("value"))
    );
    let (status, body) = post(
        &http,
        &eventide,
        json!({ "key": key, "value": 1, "extra": 1 }),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (400, Some("extra"))
    );
    wait_for_total(&http, &eventide, &key, 12).await;

    // `eventide send` writes through the same ingest and prints each item's id.
    let sent = Command::new(env!("CARGO_BIN_EXE_eventide"))
        .args(["send", "--url", &eventide.ingest, "--key", "dev-producer"])
        .arg(json!({"type": "increment", "key": key, "value": 8}).to_string())
        .output()
        .expect("eventide send runs");
    assert!(
        sent.status.success(),
        "send failed: {}",
        String::from_utf8_lossy(&sent.stderr)
    );
    let line: Value = serde_json::from_slice(&sent.stdout).expect("one JSON result line");
    assert!(line["id"].is_string(), "{line}");
    wait_for_total(&http, &eventide, &key, 20).await;
    let status = eventide.terminate().await;
    assert!(status.success(), "graceful shutdown exits 0, got {status}");

    let eventide = Eventide::start(data_dir.path());
    wait_healthy(&http, &eventide.ingest).await;
    wait_healthy(&http, &eventide.query).await;
    wait_for_total(&http, &eventide, &key, 20).await;
    let (status, _) = post(&http, &eventide, json!({ "key": key, "value": 10 })).await;
    assert_eq!(status, 202);
    wait_for_total(&http, &eventide, &key, 30).await;
    assert!(eventide.terminate().await.success());
}
