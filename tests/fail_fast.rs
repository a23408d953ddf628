//! Fail fast and say why: options that contradict each other, a data dir
//! that cannot be written, a schema missing from a lookup-only registry,
//! and a stop signal during a slow start each end the `eventide` binary at
//! once, naming the cause.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{Eventide, free_port};

/// Far below the 60 s a start could hang before; wide for a loaded machine.
const AT_ONCE: Duration = Duration::from_secs(15);

#[tokio::test]
async fn a_produce_timeout_past_the_delivery_timeout_stops_the_start_naming_both() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let eventide = Eventide::start(
        data_dir.path(),
        &[
            ("EVENTIDE_PRODUCE_TIMEOUT", "10s"),
            ("EVENTIDE_DELIVERY_TIMEOUT", "5s"),
        ],
    );
    let (status, output) = eventide.exited(AT_ONCE).await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("--produce-timeout") && output.contains("--delivery-timeout"),
        "{output}"
    );
    assert!(
        !output.contains("local broker ready"),
        "checked before the broker starts: {output}"
    );
}

#[tokio::test]
async fn a_read_only_data_dir_stops_the_start_naming_the_path_and_the_cause() {
    let parent = tempfile::tempdir().expect("temp dir");
    let read_only = parent.path().join("ro");
    std::fs::create_dir(&read_only).expect("mount point");
    // Root ignores permission bits: only a read-only mount is read-only to it.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "ro,size=1m", "tmpfs"])
        .arg(&read_only)
        .status();
    if !mounted.is_ok_and(|status| status.success()) {
        support::report_skipped(
            "fail_fast::read_only_data_dir",
            "mounting a read-only tmpfs needs root",
        );
        return;
    }
    let eventide = Eventide::start(&read_only, &[]);
    let (status, output) = eventide.exited(AT_ONCE).await;
    drop(Command::new("umount").arg("-l").arg(&read_only).status());
    assert!(!status.success(), "{output}");
    assert!(
        output.contains(&read_only.display().to_string())
            && output.contains("Read-only file system"),
        "{output}"
    );
}

#[tokio::test]
async fn sigterm_during_a_slow_start_ends_it_at_once() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    // A broker address where nothing answers: creating topics would wait
    // for it until its own timeout.
    let nowhere = format!("127.0.0.1:{}", free_port());
    let eventide = Eventide::start(
        data_dir.path(),
        &[("EVENTIDE_KAFKA_BROKERS", nowhere.as_str())],
    );
    // The listeners are bound first; once ingest's accepts a connection the
    // start is past them and waiting on the broker.
    let ingest = eventide.ingest.trim_start_matches("http://").to_owned();
    eventide::wait::eventually(support::DEADLINE, || async {
        Ok(match tokio::net::TcpStream::connect(&ingest).await {
            Ok(_) => Ok(()),
            Err(err) => Err(err.to_string()),
        })
    })
    .await
    .expect("the listeners are bound");
    eventide.signal_term();
    let (status, output) = eventide.exited(AT_ONCE).await;
    assert!(
        status.success(),
        "a requested stop is not a failure: {output}"
    );
    assert!(output.contains("stopped during start"), "{output}");
}

#[tokio::test]
async fn a_lookup_only_registry_without_our_schemas_stops_the_start_naming_the_subject() {
    // A registry that knows no subject at all.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            [("content-type", "application/vnd.schemaregistry.v1+json")],
            r#"{"error_code": 40401, "message": "Subject not found"}"#,
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let data_dir = tempfile::tempdir().expect("temp dir");
    let eventide = Eventide::start(
        data_dir.path(),
        &[
            ("EVENTIDE_SCHEMA_REGISTRY_URL", url.as_str()),
            ("EVENTIDE_SCHEMA_REGISTRY_AUTO_REGISTER", "false"),
        ],
    );
    let (status, output) = eventide.exited(AT_ONCE).await;
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("-value") && output.contains("registering is off"),
        "{output}"
    );
    assert!(
        !output.contains("local broker ready"),
        "checked before the broker starts: {output}"
    );
}

#[tokio::test]
async fn schemas_register_names_what_it_needs_and_what_the_registry_refused() {
    let run = |env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_eventide"));
        command
            .args(["schemas", "register"])
            .env_remove("EVENTIDE_SCHEMA_REGISTRY_URL");
        for (name, value) in env {
            command.env(name, value);
        }
        let output = command.output().expect("eventide runs");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status, text)
    };
    let (status, output) = run(&[]);
    assert!(!status.success(), "{output}");
    assert!(output.contains("--schema-registry-url"), "{output}");

    // A registry that knows nothing and allows no mode change.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let app = axum::Router::new().fallback(|| async {
        (
            axum::http::StatusCode::NOT_FOUND,
            [("content-type", "application/vnd.schemaregistry.v1+json")],
            r#"{"error_code": 40401, "message": "Not found"}"#,
        )
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let (status, output) =
        tokio::task::spawn_blocking(move || run(&[("EVENTIDE_SCHEMA_REGISTRY_URL", url.as_str())]))
            .await
            .expect("runs");
    assert!(!status.success(), "{output}");
    assert!(
        output.contains("IMPORT mode") && output.contains("dead-letters-value"),
        "{output}"
    );
}
