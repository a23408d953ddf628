//! `eventide destinations` as an operator runs it against a running
//! all-in-one: pause, list, resume, and a fresh signing secret. The running
//! delivery follows each change (its log says so) without a restart.

mod support;

use std::process::Output;

use eventide::wait::eventually;
use support::{DEADLINE, Eventide, free_port};

/// Runs `eventide destinations <args>` against `broker` with `file`.
async fn destinations(broker: &str, file: &std::path::Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_eventide"))
        .arg("destinations")
        .args(args)
        .env("EVENTIDE_KAFKA_BROKERS", broker)
        .env("EVENTIDE_DESTINATIONS_FILE", file)
        .env("USER", "operator")
        .output()
        .await
        .expect("eventide runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Waits until the all-in-one logged a state change of `hook` to `paused`.
async fn logged(process: &Eventide, paused: bool) {
    let wanted = format!("\"paused\":{paused}");
    let seen = eventually(DEADLINE, || async {
        let output = process.output();
        Ok(
            if output.lines().any(|line| {
                line.contains("destination state")
                    && line.contains("\"destination\":\"hook\"")
                    && line.contains(&wanted)
            }) {
                Ok(())
            } else {
                Err(format!("no state change to paused={paused} logged yet"))
            },
        )
    })
    .await;
    if let Err(err) = seen {
        panic!("{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_pauses_lists_and_resumes_a_destination() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let file = data_dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!(
            "[[destination]]\nname = \"hook\"\nurl = \"http://127.0.0.1:{}/in\"\n",
            free_port()
        ),
    )
    .expect("destinations file");
    let file_env = file.display().to_string();
    let http = reqwest::Client::new();
    let process = Eventide::start(
        data_dir.path(),
        &[("EVENTIDE_DESTINATIONS_FILE", file_env.as_str())],
    );
    process.wait_healthy(&http).await;
    let broker = process.broker.clone();

    let paused = destinations(
        &broker,
        &file,
        &["pause", "hook", "--reason", "receiver upgrade"],
    )
    .await;
    assert!(paused.status.success(), "{}", text(&paused));
    assert_eq!(
        String::from_utf8_lossy(&paused.stdout).trim(),
        "hook: paused"
    );
    logged(&process, true).await;

    let listed = destinations(&broker, &file, &["list"]).await;
    assert!(listed.status.success(), "{}", text(&listed));
    let row = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .find(|line| line.starts_with("hook\t"))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no row for hook: {}", text(&listed)));
    let columns: Vec<&str> = row.split('\t').collect();
    assert_eq!(columns[1], "paused", "{row}");
    assert_eq!(columns[2], "0", "lag: {row}");
    assert_eq!(columns[4], "cli:operator", "{row}");
    assert_eq!(columns[5], "receiver upgrade", "{row}");

    let unknown = destinations(&broker, &file, &["pause", "nope"]).await;
    assert!(!unknown.status.success());
    assert!(
        text(&unknown).contains("no destination is named") && text(&unknown).contains("nope"),
        "{}",
        text(&unknown)
    );

    let resumed = destinations(&broker, &file, &["resume", "hook"]).await;
    assert!(resumed.status.success(), "{}", text(&resumed));
    logged(&process, false).await;
    let listed = destinations(&broker, &file, &["list"]).await;
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("hook\tactive\t"),
        "{}",
        text(&listed)
    );

    let secret = destinations(&broker, &file, &["new-secret"]).await;
    let secret = String::from_utf8_lossy(&secret.stdout).trim().to_owned();
    assert!(
        processor::webhooks::signature::Signer::new(std::slice::from_ref(&secret)).is_ok(),
        "{secret}"
    );
    assert_ne!(
        secret,
        String::from_utf8_lossy(&destinations(&broker, &file, &["new-secret"]).await.stdout).trim()
    );
}

/// `eventide replay` as an operator runs it: a dry run lists the dead
/// letters of a destination that refused a record, then the replay sends
/// it back and counts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_dry_runs_and_replays_a_destinations_dead_letters() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let file = data_dir.path().join("destinations.toml");
    std::fs::write(
        &file,
        format!(
            "[[destination]]\nname = \"gone\"\nurl = \"http://127.0.0.1:{}/in\"\n",
            free_port()
        ),
    )
    .expect("destinations file");
    let file_env = file.display().to_string();
    let http = reqwest::Client::new();
    let process = Eventide::start(
        data_dir.path(),
        &[
            ("EVENTIDE_DESTINATIONS_FILE", file_env.as_str()),
            ("EVENTIDE_RETRY_MAX_ATTEMPTS", "1"),
        ],
    );
    process.wait_healthy(&http).await;
    let broker = process.broker.clone();
    let accepted = http
        .post(format!("{}/v1/event", process.ingest))
        .bearer_auth("dev-producer")
        .json(
            &serde_json::json!({"user_id": "u-replay", "device_id": "d", "type": "app_launch",
                                  "training_program_id": "1", "time_stamp": "2021-02-28 16:22:52"}),
        )
        .send()
        .await
        .expect("ingest answers");
    assert_eq!(accepted.status().as_u16(), 202);

    let listed = eventually(DEADLINE, || async {
        let output =
            destinations_replay(&broker, &file, &["--destination", "gone", "--dry-run"]).await;
        let out = text(&output);
        Ok(if out.contains("would replay 1 record(s)") {
            Ok(out)
        } else {
            Err(format!("not dead-lettered yet: {out}"))
        })
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    assert!(listed.contains("\tu-replay\t"), "{listed}");
    assert!(listed.contains("failed after 1 attempt(s)"), "{listed}");

    let other_user = destinations_replay(
        &broker,
        &file,
        &[
            "--destination",
            "gone",
            "--user-id",
            "someone-else",
            "--dry-run",
        ],
    )
    .await;
    assert!(
        text(&other_user).contains("would replay 0 record(s)"),
        "{}",
        text(&other_user)
    );

    let replayed = destinations_replay(&broker, &file, &["--destination", "gone"]).await;
    assert!(replayed.status.success(), "{}", text(&replayed));
    assert!(
        text(&replayed).contains("1 record(s) replayed to delivery:gone"),
        "{}",
        text(&replayed)
    );
    let refused = destinations_replay(&broker, &file, &["--stage", "nothing"]).await;
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("only `processing`"),
        "{}",
        text(&refused)
    );
}

/// Runs `eventide replay <args>` against `broker` with `file`.
async fn destinations_replay(broker: &str, file: &std::path::Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_eventide"))
        .arg("replay")
        .args(args)
        .env("EVENTIDE_KAFKA_BROKERS", broker)
        .env("EVENTIDE_DESTINATIONS_FILE", file)
        .output()
        .await
        .expect("eventide runs")
}

/// `eventide replay --rejects`: refused requests judged again by ingest's
/// validation after the cause is fixed (here the clock-skew limit was too
/// strict): the one now valid is written and reaches the store, the one
/// still malformed is refused again, each once per run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_resubmits_refused_requests_after_a_fix() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let http = reqwest::Client::new();
    let process = Eventide::start(data_dir.path(), &[("EVENTIDE_MAX_CLOCK_SKEW", "1s")]);
    process.wait_healthy(&http).await;
    let broker = process.broker.clone();
    let session = uuid::Uuid::new_v4().to_string();
    let ahead = (chrono::Utc::now() + chrono::Duration::minutes(30))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let post = |body: String| {
        http.post(format!("{}/v1/events", process.ingest))
            .bearer_auth("dev-producer")
            .header("content-type", "application/json")
            .header("idempotency-key", "resubmitted-once")
            .body(body)
            .send()
    };
    let early = serde_json::json!({"session_id": session, "category": "page interaction",
        "name": "scrolled", "data": {"depth": 0.5}, "timestamp": ahead});
    let refused = post(early.to_string()).await.expect("ingest answers");
    assert_eq!(refused.status().as_u16(), 400);
    let malformed = post("{\"session_id\": ".to_owned())
        .await
        .expect("ingest answers");
    assert_eq!(malformed.status().as_u16(), 400);

    let replay = |extra: &'static [&'static str]| {
        let broker = broker.clone();
        async move {
            let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_eventide"));
            command
                .args(["replay", "--rejects", "--application", "dev"])
                .args(extra)
                .env("EVENTIDE_KAFKA_BROKERS", &broker)
                .env("EVENTIDE_MAX_CLOCK_SKEW", "2h");
            command.output().await.expect("eventide runs")
        }
    };
    let dry = eventually(DEADLINE, || async {
        let out = text(&replay(&["--dry-run"]).await);
        Ok(if out.contains("2 refused request(s)") {
            Ok(out)
        } else {
            Err(format!("rejects not all recorded yet: {out}"))
        })
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    assert!(
        dry.contains("1 record(s) written, 1 refused again"),
        "{dry}"
    );

    let done = replay(&[]).await;
    assert!(done.status.success(), "{}", text(&done));
    assert!(
        text(&done).contains(
            "2 refused request(s) of dev resubmitted: 1 record(s) written, 1 refused again"
        ),
        "{}",
        text(&done)
    );
    let stored = eventually(DEADLINE, || async {
        let body: serde_json::Value = http
            .get(format!("{}/v1/events?session_id={session}", process.query))
            .bearer_auth("dev-analyst")
            .send()
            .await?
            .json()
            .await?;
        let events = body["events"].as_array().cloned().unwrap_or_default();
        Ok(if events.is_empty() {
            Err(format!("not stored yet: {body}"))
        } else {
            Ok(events)
        })
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0]["name"], "scrolled");
    // The request refused again is listed with the run that resubmitted it.
    let run = text(&done)
        .split_whitespace()
        .skip_while(|word| *word != "replay")
        .nth(1)
        .map(|run| run.trim_end_matches(':').to_owned())
        .unwrap_or_else(|| panic!("no run id: {}", text(&done)));
    let again = eventually(DEADLINE, || async {
        let body: serde_json::Value = http
            .get(format!("{}/v1/errors?kind=reject", process.query))
            .bearer_auth("dev-analyst")
            .send()
            .await?
            .json()
            .await?;
        let rows = body["errors"].as_array().cloned().unwrap_or_default();
        Ok(
            match rows
                .iter()
                .find(|row| row["replay_run"].as_str() == Some(&run))
            {
                Some(row) => Ok((row.clone(), rows.len())),
                None => Err(format!("not listed with run {run} yet: {body}")),
            },
        )
    })
    .await
    .unwrap_or_else(|err| panic!("{err}"));
    assert_eq!(again.0["body"], "{\"session_id\": ", "{again:?}");
    assert_eq!(again.1, 3, "two first refusals and one again: {again:?}");
}
