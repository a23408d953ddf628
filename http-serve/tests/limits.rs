//! The limits over real sockets: idle and half-sent connections are closed
//! after the header timeout, a request target or header fields over their
//! limits and a body that does not arrive are answered in the JSON error
//! format, requests within the limits are answered as before, shutdown
//! waits for the request in flight.

use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{get, post};
use http_serve::{Limits, serve};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long the test waits for the server to close a connection: the
/// header timeout plus a wide margin for a loaded machine.
const CLOSED_WITHIN: Duration = Duration::from_secs(20);

struct Server {
    addr: String,
    cancel: CancellationToken,
    /// Notified when `/slow` starts handling a request.
    started: Arc<Notify>,
    /// `/slow` answers once this is notified.
    release: Arc<Notify>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

async fn start(limits: Limits) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("address").to_string();
    let started = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (notify, wait) = (Arc::clone(&started), Arc::clone(&release));
    let app = Router::new()
        .route("/fast", get(|| async { "done" }))
        .route(
            "/echo",
            post(|body: Bytes| async move { format!("{} bytes", body.len()) }),
        )
        .route(
            "/slow",
            get(move || {
                let (notify, wait) = (Arc::clone(&notify), Arc::clone(&wait));
                async move {
                    notify.notify_one();
                    wait.notified().await;
                    "done"
                }
            }),
        );
    let cancel = CancellationToken::new();
    let task = tokio::spawn(serve(
        listener,
        app,
        limits,
        cancel.clone().cancelled_owned(),
    ));
    Server {
        addr,
        cancel,
        started,
        release,
        task,
    }
}

/// Reads until the server closes the connection; what it sent before.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(CLOSED_WITHIN, stream.read_to_end(&mut seen)).await;
    assert!(
        read.is_ok(),
        "the server kept the connection open past {CLOSED_WITHIN:?}"
    );
    String::from_utf8_lossy(&seen).into_owned()
}

#[tokio::test]
async fn idle_and_half_sent_connections_are_closed_after_the_header_timeout() {
    let limits = Limits {
        header_timeout: Duration::from_millis(200),
        max_connections: 100,
        ..Limits::default()
    };
    let server = start(limits).await;
    let addr = server.addr.clone();
    let mut idle = TcpStream::connect(&addr).await.expect("connects");
    let mut half = TcpStream::connect(&addr).await.expect("connects");
    half.write_all(b"GET /fast HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("writes");
    until_closed(&mut idle).await;
    until_closed(&mut half).await;
    // A whole request is still answered.
    let body = reqwest::get(format!("http://{addr}/fast"))
        .await
        .expect("answers")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "done");
}

#[tokio::test]
async fn shutdown_lets_the_request_in_flight_finish() {
    let server = start(Limits::default()).await;
    let request = tokio::spawn(reqwest::get(format!("http://{}/slow", server.addr)));
    server.started.notified().await;
    server.cancel.cancel();
    // Shutdown has begun with the request still in its handler.
    server.release.notify_one();
    let answer = request.await.expect("joins").expect("answered");
    assert_eq!(answer.text().await.expect("body"), "done");
    let served = tokio::time::timeout(CLOSED_WITHIN, server.task).await;
    assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
}

/// Sends `request` on a fresh connection and reads the answer until the
/// server closes it: the status line, the headers and the body.
async fn exchange(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(request).await.expect("writes");
    until_closed(&mut stream).await
}

/// The JSON error body of a raw answer, checked to carry `code`.
fn error_code(answer: &str) -> String {
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .expect("an answer has a head and a body");
    let body: serde_json::Value = serde_json::from_str(body).expect("the body is JSON");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "no message in {body}");
    body["error"]["code"]
        .as_str()
        .expect("the error names a code")
        .to_owned()
}

#[tokio::test]
async fn a_request_target_over_the_limit_is_a_json_414() {
    let limits = Limits {
        max_uri_bytes: 1024,
        ..Limits::default()
    };
    let server = start(limits).await;
    let long = "a".repeat(2000);
    let answer = exchange(
        &server.addr,
        format!("GET /fast?q={long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 414"), "{answer}");
    assert_eq!(error_code(&answer), "uri_too_long");
    // Within the limit, the same route answers.
    let short = "a".repeat(900);
    let answer = exchange(
        &server.addr,
        format!("GET /fast?q={short} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn header_fields_over_the_limits_are_a_json_431() {
    let limits = Limits {
        max_header_bytes: 4096,
        ..Limits::default()
    };
    let server = start(limits).await;
    let big = format!("X-Big: {}\r\n", "b".repeat(5000));
    let answer = exchange(
        &server.addr,
        format!("GET /fast HTTP/1.1\r\nHost: x\r\n{big}Connection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(error_code(&answer), "headers_too_large");

    let many: String = (0..=http_serve::MAX_HEADER_FIELDS)
        .map(|i| format!("X-F{i}: v\r\n"))
        .collect();
    let answer = exchange(
        &server.addr,
        format!("GET /fast HTTP/1.1\r\nHost: x\r\n{many}Connection: close\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(error_code(&answer), "too_many_headers");
}

#[tokio::test]
async fn a_body_that_does_not_arrive_is_a_json_408_and_a_whole_one_is_read() {
    let limits = Limits {
        body_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start(limits).await;
    // Ten bytes promised, three sent, the connection kept open.
    let mut stream = TcpStream::connect(&server.addr).await.expect("connects");
    stream
        .write_all(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        .await
        .expect("writes");
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert_eq!(error_code(&answer), "body_timeout");

    let answer = exchange(
        &server.addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("10 bytes"), "{answer}");
}

#[test]
fn a_body_timeout_is_recognised_through_the_errors_that_wrap_it() {
    let wrapped = axum::Error::new(http_serve::BodyTimedOut);
    assert!(http_serve::is_body_timeout(&wrapped));
    let other = axum::Error::new(std::io::Error::other("reset"));
    assert!(!http_serve::is_body_timeout(&other));
}
