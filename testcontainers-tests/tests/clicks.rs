//! Click statistics end to end: redirects posted to ingest become exact
//! per-day, per-client-month and per-code rows in the store, bots apart,
//! late clicks on their own day, across a processor crash.

use std::time::Duration;

use serde_json::json;
use testcontainers_tests::{Options, Pipeline};

const CHROME_ANDROID: &str = "Mozilla/5.0 (Linux; Android 4.0.4; Galaxy Nexus Build/IMM76B) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.133 Mobile Safari/535.19";
const EDGE_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/91.0.4472.124 Safari/537.36 Edg/91.0.864.59";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

async fn click(
    pipeline: &Pipeline,
    code: &str,
    client: i64,
    agent: &str,
    at: &str,
) -> anyhow::Result<()> {
    let (status, answer) = pipeline
        .post_to(
            "/v1/redirects",
            &json!({"short_code": code, "full_url": "https://example.org/", "client_id": client, "user_agent": agent, "occurred_at": at}),
        )
        .await?;
    anyhow::ensure!(status == 202, "{answer}");
    Ok(())
}

/// The crash comes after a flush (the processor holds the partitions and the
/// store has their checkpoints and rows) and right after a click it may
/// hold unflushed, so a restart that resumed anywhere but at the stored
/// checkpoint would lose or double a click.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clicks_are_counted_exactly_per_day_client_and_code() -> anyhow::Result<()> {
    let mut pipeline = Pipeline::start(Options::default()).await?;
    for _ in 0..2 {
        click(&pipeline, "abc", 7, CHROME_ANDROID, "2024-01-31T23:00:00Z").await?;
    }
    click(&pipeline, "xyz", 8, EDGE_WINDOWS, "2024-02-01T10:00:00Z").await?;
    pipeline
        .wait_for_store(
            &[
                (
                    "SELECT clicks FROM clicks_by_code WHERE short_code = 'abc'".to_owned(),
                    2,
                ),
                (
                    "SELECT clicks FROM clicks_by_code WHERE short_code = 'xyz'".to_owned(),
                    1,
                ),
            ],
            Duration::from_secs(60),
        )
        .await?;
    click(&pipeline, "abc", 7, CHROME_ANDROID, "2024-01-31T23:30:00Z").await?;
    pipeline.crash_processor().await;
    pipeline.start_processor("p0");
    click(&pipeline, "abc", 7, CHROME_ANDROID, "2024-02-01T01:00:00Z").await?;
    click(&pipeline, "abc", 7, GOOGLEBOT, "2024-02-01T02:00:00Z").await?;
    click(&pipeline, "xyz", 8, EDGE_WINDOWS, "2024-02-01T11:00:00Z").await?;

    let expected = [
        (
            "SELECT clicks FROM clicks_by_client_month WHERE client_id = 7 AND month = '2024-01' AND short_code = 'abc'",
            3,
        ),
        (
            "SELECT clicks FROM clicks_by_client_month WHERE client_id = 7 AND month = '2024-02' AND short_code = 'abc'",
            1,
        ),
        (
            "SELECT clicks FROM clicks_by_client_month WHERE client_id = 8 AND month = '2024-02' AND short_code = 'xyz'",
            2,
        ),
        (
            "SELECT clicks FROM clicks_by_code WHERE short_code = 'abc'",
            4,
        ),
        (
            "SELECT clicks FROM clicks_by_code WHERE short_code = 'xyz'",
            2,
        ),
        (
            "SELECT clicks FROM bot_clicks_by_day WHERE short_code = 'abc' AND day = '2024-02-01'",
            1,
        ),
        (
            "SELECT clicks FROM clicks_by_day WHERE short_code = 'abc' AND day = '2024-01-31' AND browser = 'Chrome' AND os = 'Android' AND device = 'smartphone'",
            3,
        ),
        (
            "SELECT COUNT(*) FROM clicks_by_day WHERE browser LIKE '%bot%' OR device = 'crawler'",
            0,
        ),
    ];
    let expected: Vec<(String, i64)> = expected
        .iter()
        .map(|(sql, want)| ((*sql).to_owned(), *want))
        .collect();
    pipeline
        .wait_for_store(&expected, Duration::from_secs(60))
        .await
}
