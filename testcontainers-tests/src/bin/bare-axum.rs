//! Benchmark ceiling: an axum handler that reads the body and answers 202,
//! with no validation and no Kafka. `bench/ingest.sh` measures it beside
//! ingest to show what the framework alone costs.

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18090".to_owned());
    let app = Router::new().route(
        "/v1/increment",
        post(|body: Bytes| async move {
            (
                StatusCode::ACCEPTED,
                format!("{{\"accepted\":1,\"len\":{}}}", body.len()),
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await?;
    Ok(())
}
