//! The HTTP layer's own edges on the `eventide` binary, over raw sockets:
//! a body that does not arrive is a JSON `408` that ingest records in the
//! error log, a request target or header fields over their limits are a
//! JSON `414` or `431` on every listener.

mod support;

use eventide::wait::eventually;
use serde_json::Value;
use support::{DEADLINE, Eventide};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head_and_body` and reads until the server closes the connection.
async fn exchange(url: &str, head_and_body: &[u8]) -> String {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(head_and_body).await.expect("writes");
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("the server answers and closes")
        .expect("reads");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The status and the JSON error code of a raw answer.
fn status_and_code(answer: &str) -> (u16, String) {
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer}"));
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let body: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {answer}"));
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (status, code)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_body_is_a_recorded_408_and_oversized_heads_are_json_414_and_431() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let eventide = Eventide::start(data_dir.path(), &[("EVENTIDE_HTTP_BODY_TIMEOUT", "500ms")]);
    let http = reqwest::Client::new();
    eventide.wait_healthy(&http).await;

    // Ten bytes of a promised hundred, then nothing.
    let mut stream = TcpStream::connect(eventide.ingest.trim_start_matches("http://"))
        .await
        .expect("connects");
    stream
        .write_all(
            b"POST /v1/increment HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer dev-producer\r\n\
              Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"key\": \"",
        )
        .await
        .expect("writes");
    let mut answer = Vec::new();
    tokio::time::timeout(DEADLINE, stream.read_to_end(&mut answer))
        .await
        .expect("answered and closed")
        .expect("reads");
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(
        status_and_code(&answer),
        (408, "body_timeout".to_owned()),
        "{answer}"
    );

    // Recorded for monitoring: the error log has it.
    eventually(DEADLINE, || async {
        let errors: Value = http
            .get(format!("{}/v1/errors?kind=reject", eventide.query))
            .bearer_auth("dev-analyst")
            .send()
            .await?
            .json()
            .await?;
        let recorded = errors["errors"]
            .as_array()
            .is_some_and(|rows| rows.iter().any(|row| row["reason"] == "body_timeout"));
        Ok(if recorded {
            Ok(())
        } else {
            Err(format!("not in the error log: {errors}"))
        })
    })
    .await
    .expect("the timeout is in the error log");

    let long = "a".repeat(9 * 1024);
    for url in [&eventide.ingest, &eventide.query] {
        let answer = exchange(
            url,
            format!("GET /healthz?pad={long} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(
            status_and_code(&answer),
            (414, "uri_too_long".to_owned()),
            "{url}: {answer}"
        );
        let big = format!("X-Pad: {}\r\n", "b".repeat(17 * 1024));
        let answer = exchange(
            url,
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{big}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
        assert_eq!(
            status_and_code(&answer),
            (431, "headers_too_large".to_owned()),
            "{url}: {answer}"
        );
    }
    assert!(eventide.terminate().await.success());
}

/// Posts `body` to `/v1/increment` with `Content-Encoding: encoding`.
async fn post_encoded(
    http: &reqwest::Client,
    eventide: &Eventide,
    encoding: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let response = http
        .post(format!("{}/v1/increment", eventide.ingest))
        .bearer_auth("dev-producer")
        .header("content-type", "application/json")
        .header("content-encoding", encoding)
        .body(body)
        .send()
        .await
        .expect("ingest answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("compresses");
    encoder.finish().expect("finishes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_bodies_are_read_bombs_are_413_and_unknown_encodings_415() {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let eventide = Eventide::start(data_dir.path(), &[("EVENTIDE_MAX_BODY", "65536")]);
    let http = reqwest::Client::new();
    eventide.wait_healthy(&http).await;
    let key = uuid::Uuid::new_v4().to_string();
    let increment = |value: i64| serde_json::json!({ "key": key, "value": value }).to_string();

    let (status, body) =
        post_encoded(&http, &eventide, "gzip", gzip(increment(2).as_bytes())).await;
    assert_eq!(status, 202, "{body}");
    let zstd = zstd::encode_all(increment(3).as_bytes(), 3).expect("compresses");
    let (status, body) = post_encoded(&http, &eventide, "zstd", zstd).await;
    assert_eq!(status, 202, "{body}");
    eventide.wait_for_total(&http, &key, 5).await;

    // 64 MiB of whitespace around a valid body: 64 KiB of gzip.
    let mut bomb = vec![b' '; 64 << 20];
    bomb.extend(increment(100).as_bytes());
    let bomb = gzip(&bomb);
    assert!(bomb.len() < 65_536, "{} bytes", bomb.len());
    let (status, body) = post_encoded(&http, &eventide, "gzip", bomb).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (413, &Value::from("body_too_large")),
        "{body}"
    );

    let (status, body) = post_encoded(&http, &eventide, "br", increment(1).into_bytes()).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (415, &Value::from("unsupported_encoding")),
        "{body}"
    );
    let (status, body) = post_encoded(&http, &eventide, "gzip", increment(1).into_bytes()).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &Value::from("corrupt_encoding")),
        "{body}"
    );

    // Nothing refused was counted.
    eventide.wait_for_total(&http, &key, 5).await;
    assert!(eventide.terminate().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preflight_from_an_allowed_origin_passes_and_from_another_does_not() {
    const ALLOWED: &str = "https://app.example.com";
    let data_dir = tempfile::tempdir().expect("temp dir");
    let eventide = Eventide::start(data_dir.path(), &[("EVENTIDE_CORS_ALLOW_ORIGIN", ALLOWED)]);
    let http = reqwest::Client::new();
    eventide.wait_healthy(&http).await;
    let preflight = |origin: &'static str| {
        http.request(
            reqwest::Method::OPTIONS,
            format!("{}/v1/increment", eventide.ingest),
        )
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,content-encoding,idempotency-key",
        )
        .send()
    };

    // No API key: a preflight never carries one.
    let allowed = preflight(ALLOWED).await.expect("answers");
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], ALLOWED);
    let allow_headers = headers["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_ascii_lowercase();
    for header in [
        "authorization",
        "content-type",
        "content-encoding",
        "idempotency-key",
    ] {
        assert!(
            allow_headers.contains(header),
            "{header} not in {allow_headers}"
        );
    }

    let other = preflight("https://evil.example").await.expect("answers");
    assert!(
        other.headers().get("access-control-allow-origin").is_none(),
        "another origin was allowed: {:?}",
        other.headers()
    );

    // The request itself carries the header the browser checks.
    let posted = http
        .post(format!("{}/v1/increment", eventide.ingest))
        .header("origin", ALLOWED)
        .bearer_auth("dev-producer")
        .json(&serde_json::json!({ "key": uuid::Uuid::new_v4(), "value": 1 }))
        .send()
        .await
        .expect("answers");
    assert_eq!(posted.status(), 202);
    assert_eq!(posted.headers()["access-control-allow-origin"], ALLOWED);
    assert!(eventide.terminate().await.success());
}
