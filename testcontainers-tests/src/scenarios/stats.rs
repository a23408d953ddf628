//! Click statistics scenarios over real HTTP on clicks that went through
//! ingest and the processor, shared by every store backend: SQLite always
//! (`tests/stats.rs`), ScyllaDB where Docker exists (`tests/scylla.rs`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::{Options, Pipeline, eventually};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

async fn click(pipeline: &Pipeline, code: &str, agent: &str, at: &str) -> anyhow::Result<()> {
    let body = json!({"short_code": code, "full_url": "https://example.org/", "client_id": 42,
                      "user_agent": agent, "occurred_at": at});
    let (status, answer) = pipeline.post_to("/v1/redirects", &body).await?;
    anyhow::ensure!(status == 202, "{status}: {answer}");
    Ok(())
}

async fn stats(pipeline: &Pipeline, path: &str) -> anyhow::Result<Value> {
    let (status, body) = pipeline.query(path).await?;
    anyhow::ensure!(status == 200, "{path}: {status} {body}");
    Ok(body)
}

/// Zero-filled daily and monthly series in UTC, bots apart, group totals,
/// the monthly client report as JSON and as CSV parsed back.
///
/// # Errors
///
/// If the pipeline fails or an answer is wrong.
pub async fn series_reports_and_csv_follow_utc_days_and_months(
    options: Options,
) -> anyhow::Result<()> {
    let pipeline = Pipeline::start(options).await?;
    click(&pipeline, "stat-x", CHROME, "2021-01-31T23:59:59Z").await?;
    click(&pipeline, "stat-x", FIREFOX, "2021-02-01T00:00:00Z").await?;
    click(&pipeline, "stat-x", CHROME, "2021-02-01T10:00:00+05:00").await?;
    click(&pipeline, "stat-x", GOOGLEBOT, "2021-02-03T12:00:00Z").await?;
    click(&pipeline, "stat-y", FIREFOX, "2021-02-10T08:00:00Z").await?;
    click(&pipeline, "stat-y", FIREFOX, "2021-02-28T23:00:00Z").await?;

    let daily = eventually(Duration::from_secs(60), || async {
        let body = stats(
            &pipeline,
            "/v1/links/stat-x/stats?from=2021-01-30&to=2021-02-03",
        )
        .await?;
        Ok(
            if body["total_clicks"] == 3
                && body["total_bot_clicks"] == 1
                && body["as_of"].is_string()
            {
                Ok(body)
            } else {
                Err(format!("not yet: {body}"))
            },
        )
    })
    .await?;
    let points: Vec<(String, i64, i64)> = daily["series"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p["period"].as_str().unwrap_or_default().to_owned(),
                p["clicks"].as_i64().unwrap_or(-1),
                p["bot_clicks"].as_i64().unwrap_or(-1),
            )
        })
        .collect();
    assert_eq!(
        points,
        [
            ("2021-01-30".to_owned(), 0, 0),
            ("2021-01-31".to_owned(), 1, 0),
            ("2021-02-01".to_owned(), 2, 0),
            ("2021-02-02".to_owned(), 0, 0),
            ("2021-02-03".to_owned(), 0, 1),
        ],
        "10:00+05:00 is 05:00 UTC on Feb 1st, 23:59:59Z stays in January: {daily}"
    );
    let as_of = daily["as_of"].as_str().unwrap_or_default();
    let as_of = chrono::DateTime::parse_from_rfc3339(as_of)?;
    assert!(chrono::Utc::now().signed_duration_since(as_of) < chrono::Duration::minutes(5));

    let monthly = stats(
        &pipeline,
        "/v1/links/stat-x/stats?from=2021-01&to=2021-02&granularity=month&group_by=browser",
    )
    .await?;
    let months: Vec<(&str, i64)> = monthly["series"]
        .as_array()
        .map(|series| {
            series
                .iter()
                .map(|p| {
                    (
                        p["period"].as_str().unwrap_or_default(),
                        p["clicks"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(months, [("2021-01", 1), ("2021-02", 2)], "{monthly}");
    let totals = monthly["group_totals"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut by_browser: Vec<i64> = totals.values().filter_map(Value::as_i64).collect();
    by_browser.sort_unstable();
    assert_eq!(by_browser, [1, 2], "{monthly}");
    assert!(totals.keys().any(|k| k.contains("Chrome")), "{monthly}");
    // Every group appears in every period, zero-filled.
    for point in monthly["series"].as_array().cloned().unwrap_or_default() {
        assert_eq!(
            point["groups"].as_object().map(|g| g.len()),
            Some(2),
            "{point}"
        );
    }

    let report = eventually(Duration::from_secs(60), || async {
        let body = stats(&pipeline, "/v1/clients/42/reports/2021-02").await?;
        Ok(if body["total_clicks"] == 4 {
            Ok(body)
        } else {
            Err(format!("not yet: {body}"))
        })
    })
    .await?;
    // Ties are ordered by short code.
    assert_eq!(
        report["short_codes"][0],
        json!({"short_code": "stat-x", "clicks": 2, "unique_visitors": 0, "previews": 0})
    );
    assert_eq!(
        report["short_codes"][1],
        json!({"short_code": "stat-y", "clicks": 2, "unique_visitors": 0, "previews": 0})
    );
    let january = stats(&pipeline, "/v1/clients/42/reports/2021-01").await?;
    assert_eq!(january["total_clicks"], 1, "{january}");

    let csv = crate::client_with_key(&pipeline.analyst_key)?
        .get(format!(
            "{}/v1/clients/42/reports/2021-02",
            pipeline.query_url
        ))
        .header("accept", "text/csv")
        .send()
        .await?;
    assert!(
        csv.headers()["content-type"]
            .to_str()?
            .starts_with("text/csv"),
        "{:?}",
        csv.headers()
    );
    let text = csv.text().await?;
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    assert_eq!(
        reader.headers()?.iter().collect::<Vec<_>>(),
        [
            "client_id",
            "month",
            "short_code",
            "clicks",
            "unique_visitors",
            "previews"
        ]
    );
    let mut total = 0;
    for record in reader.records() {
        let record = record?;
        assert_eq!(&record[0], "42");
        assert_eq!(&record[1], "2021-02");
        total += record[3].parse::<i64>()?;
    }
    assert_eq!(total, 4);
    Ok(())
}
