//! `eventide migrate` as an operator (or the chart's hook Job) runs it where
//! the cluster is missing or misconfigured: it fails at once, saying what to
//! fix, and never reports success. Its success path needs ScyllaDB and runs
//! in `testcontainers-tests/tests/scylla.rs` where Docker exists.

use std::net::TcpListener;
use std::process::Command;

fn migrate(env: &[(&str, &str)]) -> (bool, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_eventide"));
    command
        .arg("migrate")
        .env_remove("EVENTIDE_SCYLLA_CONTACT_POINTS")
        .env_remove("EVENTIDE_SCYLLA_KEYSPACE");
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().expect("eventide runs");
    // Logs (and so the error) go to standard output; read both streams.
    let mut said = String::from_utf8_lossy(&output.stdout).into_owned();
    said.push_str(&String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}

#[test]
fn without_contact_points_it_names_the_setting() {
    let (ok, said) = migrate(&[]);
    assert!(!ok, "nothing to migrate must not look like success");
    assert!(said.contains("EVENTIDE_SCYLLA_CONTACT_POINTS"), "{said}");
}

#[test]
fn an_unreachable_cluster_is_named() {
    // A port nothing listens on: bind, note it, release it.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port();
    let point = format!("127.0.0.1:{port}");
    let (ok, said) = migrate(&[("EVENTIDE_SCYLLA_CONTACT_POINTS", &point)]);
    assert!(!ok);
    assert!(
        said.contains(&format!("connecting to ScyllaDB at {point}")),
        "{said}"
    );
}

#[test]
fn a_keyspace_that_is_not_a_plain_name_is_refused_before_connecting() {
    let (ok, said) = migrate(&[
        ("EVENTIDE_SCYLLA_CONTACT_POINTS", "127.0.0.1:9042"),
        ("EVENTIDE_SCYLLA_KEYSPACE", "prod; DROP KEYSPACE x"),
    ]);
    assert!(!ok);
    assert!(said.contains("is not a valid name"), "{said}");
}
