//! Click statistics and monthly client reports over real HTTP, on clicks
//! that went through ingest and the processor: zero-filled series, month
//! boundaries in UTC, bots kept apart, CSV parsed back, and `as_of`.

use testcontainers_tests::scenarios::stats;
use testcontainers_tests::{Options, Pipeline};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stats_parameters_name_the_parameter() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    for (path, parameter) in [
        ("/v1/links/stat-x/stats?granularity=week", "granularity"),
        ("/v1/links/stat-x/stats?group_by=planet", "group_by"),
        ("/v1/links/stat-x/stats?from=2021-13-01", "from"),
        ("/v1/links/stat-x/stats?from=2021-02-02&to=2021-02-01", "to"),
        (
            "/v1/links/stat-x/stats?from=1900-01-01&to=2021-01-01",
            "from",
        ),
        (
            "/v1/links/stat-x/stats?from=0001-01-01&to=9999-12-31",
            "from",
        ),
        (
            "/v1/links/stat-x/stats?from=0001-01&to=9999-12&granularity=month",
            "from",
        ),
        ("/v1/links/way-too-long-short-code/stats", "short_code"),
        ("/v1/clients/-1/reports/2021-02", "client_id"),
        ("/v1/clients/42/reports/2021-2", "month"),
    ] {
        let (status, body) = pipeline.query(path).await?;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["error"]["parameter"], parameter, "{path}: {body}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_reports_and_csv_follow_utc_days_and_months() -> anyhow::Result<()> {
    stats::series_reports_and_csv_follow_utc_days_and_months(Options::default()).await
}
