//! The limits over real sockets: idle and half-sent connections are closed
//! after the header timeout, requests are answered as before, shutdown
//! waits for the request in flight.

use std::time::Duration;

use axum::Router;
use axum::routing::get;
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
