//! The `eventide` binary as a user runs it, for the tests that start it:
//! free ports, its output drained and kept, health awaited, SIGTERM.

#![allow(dead_code)]

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use eventide::wait::eventually;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// How long a test waits for the binary to reach a state.
pub(crate) const DEADLINE: Duration = Duration::from_secs(60);

pub(crate) struct Eventide {
    pub(crate) child: Child,
    /// Everything it wrote to stdout and stderr so far (drained so it
    /// never blocks on a full pipe).
    pub(crate) output: Arc<Mutex<String>>,
    drains: Vec<tokio::task::JoinHandle<()>>,
    pub(crate) broker: String,
    pub(crate) ingest: String,
    pub(crate) query: String,
}

impl Eventide {
    /// Starts the all-in-one on `data_dir` with free ports and `env` set.
    pub(crate) fn start(data_dir: &Path, env: &[(&str, &str)]) -> Self {
        Self::start_with_broker(data_dir, free_port(), env)
    }

    /// `eventide processor` alone on `data_dir`'s store, consuming from the
    /// broker at `broker` (another process's local broker): a second member
    /// of the processors' group.
    pub(crate) fn start_processor(data_dir: &Path, broker: &str) -> Self {
        Self::start_role(data_dir, broker, "processor", &[])
    }

    /// `eventide <role>` alone (`ingest`, `processor` or `query-api`) on
    /// `data_dir`'s store and the broker at `broker`; its HTTP address (the
    /// role's `/metrics`) is in `ingest`.
    pub(crate) fn start_role(
        data_dir: &Path,
        broker: &str,
        role: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let listen = match role {
            "ingest" => "EVENTIDE_INGEST_LISTEN",
            "query-api" => "EVENTIDE_QUERY_LISTEN",
            _ => "EVENTIDE_PROCESSOR_LISTEN",
        };
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventide"));
        command
            .arg(role)
            .env("EVENTIDE_KAFKA_BROKERS", broker)
            .env(listen, &addr);
        let mut started = Self::spawn(command, data_dir, env);
        started.broker = broker.to_owned();
        started.ingest = format!("http://{addr}");
        started
    }

    /// As [`Eventide::start`], with the local broker on `broker`.
    pub(crate) fn start_with_broker(data_dir: &Path, broker: u16, env: &[(&str, &str)]) -> Self {
        let [ingest, query, processor] = [free_port(), free_port(), free_port()];
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventide"));
        command
            .env(
                "EVENTIDE_LOCAL_BROKER_LISTEN",
                format!("127.0.0.1:{broker}"),
            )
            .env("EVENTIDE_INGEST_LISTEN", format!("127.0.0.1:{ingest}"))
            .env("EVENTIDE_QUERY_LISTEN", format!("127.0.0.1:{query}"))
            .env(
                "EVENTIDE_PROCESSOR_LISTEN",
                format!("127.0.0.1:{processor}"),
            );
        let mut started = Self::spawn(command, data_dir, env);
        started.broker = format!("127.0.0.1:{broker}");
        started.ingest = format!("http://127.0.0.1:{ingest}");
        started.query = format!("http://127.0.0.1:{query}");
        started
    }

    /// Runs `command` on `data_dir` with `env`, its output drained.
    fn spawn(mut command: tokio::process::Command, data_dir: &Path, env: &[(&str, &str)]) -> Self {
        command
            .env("EVENTIDE_DATA_DIR", data_dir)
            .env("EVENTIDE_LOG_FORMAT", "json")
            // The machine's own disk is not what these tests test (the
            // low-disk test sets its floor on a file system it mounts).
            .env("EVENTIDE_MIN_FREE_DISK", "0");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("eventide starts");
        let output = Arc::new(Mutex::new(String::new()));
        let mut drains = Vec::new();
        if let Some(pipe) = child.stdout.take() {
            drains.push(tokio::spawn(drain(pipe, Arc::clone(&output))));
        }
        if let Some(pipe) = child.stderr.take() {
            drains.push(tokio::spawn(drain(pipe, Arc::clone(&output))));
        }
        Self {
            child,
            output,
            drains,
            broker: String::new(),
            ingest: String::new(),
            query: String::new(),
        }
    }

    /// What it printed so far.
    pub(crate) fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Sends SIGKILL and waits for the exit status.
    pub(crate) async fn kill(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("eventide dies on SIGKILL")
            .expect("wait works")
    }

    /// Sends SIGTERM and waits for the exit status.
    pub(crate) async fn terminate(mut self) -> std::process::ExitStatus {
        self.signal_term();
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("eventide exits after SIGTERM")
            .expect("wait works")
    }

    /// Waits for it to exit on its own within `within`: the status and
    /// everything it printed.
    pub(crate) async fn exited(mut self, within: Duration) -> (std::process::ExitStatus, String) {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("eventide still runs after {within:?}:\n{}", self.output()))
            .expect("wait works");
        // The pipes close with the process: the drains end with its last line.
        for drain in std::mem::take(&mut self.drains) {
            drop(tokio::time::timeout(DEADLINE, drain).await);
        }
        (status, self.output())
    }

    /// Sends SIGTERM without waiting.
    pub(crate) fn signal_term(&self) {
        let pid = self.child.id().expect("still running").to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits until ingest and the query API answer `/healthz`.
    pub(crate) async fn wait_healthy(&self, http: &reqwest::Client) {
        for url in [&self.ingest, &self.query] {
            wait_healthy(http, url).await;
        }
    }

    /// Posts `{"key", "value"}` to `/v1/increment`: the status, the
    /// `Retry-After` header and the body.
    pub(crate) async fn increment(
        &self,
        http: &reqwest::Client,
        key: &str,
        value: i64,
    ) -> (u16, Option<String>, Value) {
        let response = http
            .post(format!("{}/v1/increment", self.ingest))
            .bearer_auth("dev-producer")
            .json(&serde_json::json!({ "key": key, "value": value }))
            .send()
            .await
            .expect("ingest answers");
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (
            status,
            retry_after,
            response.json().await.unwrap_or(Value::Null),
        )
    }

    /// The counter's total as the query API serves it: status and body.
    pub(crate) async fn counter(&self, http: &reqwest::Client, key: &str) -> (u16, Value) {
        let response = http
            .get(format!("{}/v1/counters/{key}", self.query))
            .bearer_auth("dev-analyst")
            .send()
            .await
            .expect("the query API answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Waits until the counter's total is `want`.
    pub(crate) async fn wait_for_total(&self, http: &reqwest::Client, key: &str, want: i64) {
        eventually(DEADLINE, || async {
            let (_, body) = self.counter(http, key).await;
            Ok(if body["value"] == want {
                Ok(())
            } else {
                Err(format!("counter {key} is {body}, want {want}"))
            })
        })
        .await
        .expect("the total is reached");
    }
}

impl Drop for Eventide {
    fn drop(&mut self) {
        drop(self.child.start_kill());
    }
}

async fn drain(pipe: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<String>>) {
    let mut lines = BufReader::new(pipe).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let mut seen = into.lock().unwrap_or_else(PoisonError::into_inner);
        seen.push_str(&line);
        seen.push('\n');
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

pub(crate) async fn wait_healthy(http: &reqwest::Client, url: &str) {
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

/// Reports the test as skipped where it cannot run, visibly (see the README).
pub(crate) fn report_skipped(test: &str, reason: &str) {
    use std::io::Write;
    let line = format!("SKIPPED: {test}: {reason}\n");
    eprint!("{line}");
    let path = std::env::var_os("EVENTIDE_SKIP_REPORT")
        .filter(|path| !path.is_empty())
        .map_or_else(
            || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/skipped-suites.txt"),
            std::path::PathBuf::from,
        );
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut report| report.write_all(line.as_bytes()));
    assert!(
        written.is_ok(),
        "the skip could not be reported in {}",
        path.display()
    );
}
