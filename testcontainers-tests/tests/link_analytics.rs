//! Link analytics through the whole pipeline on the local default: clicks
//! posted to ingest with addresses, referrers, UTM tags, QR sources, preview
//! fetchers and a crawler come back from the query API in every breakdown
//! with exact counts; a breakdown holds its first `--max-dimension-values`
//! values and counts the rest as `(other)`; no address reaches the store.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, eventually};

const DEADLINE: Duration = Duration::from_secs(60);
const CODE: &str = "analytics";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";

/// A database the test writes: three networks, three countries; London
/// in the GeoIP2 city layout, California's Mountain View in
/// ip-location-db's flat one, Switzerland as a country only.
fn country_database(dir: &std::path::Path) -> anyhow::Result<std::path::PathBuf> {
    let mut writer = mmdb_writer::Writer::new("Eventide-Test-City");
    for (network, record) in [
        (
            "81.2.69.0/24",
            json!({"country": {"iso_code": "GB"},
                "subdivisions": [{"iso_code": "ENG", "names": {"en": "England"}}],
                "city": {"names": {"en": "London"}}}),
        ),
        ("2001:db8::/32", json!({"country": {"iso_code": "CH"}})),
        (
            "8.8.8.0/24",
            json!({"country_code": "US", "state1": "California", "city": "Mountain View"}),
        ),
    ] {
        writer.insert(network.parse::<ipnet::IpNet>()?, &record)?;
    }
    let path = dir.join("countries.mmdb");
    std::fs::write(&path, writer.to_bytes()?)?;
    Ok(path)
}

/// One click: `(ip, referrer, utm_source, source, user agent, method)`.
fn click(
    ip: Option<&str>,
    referrer: Option<&str>,
    utm: Option<&str>,
    source: Option<&str>,
    agent: &str,
    method: &str,
) -> Value {
    let mut url = "https://shop.example/spring".to_owned();
    if let Some(utm) = utm {
        url.push_str(&format!("?utm_source={utm}&utm_medium=email"));
    }
    let mut body = json!({"short_code": CODE, "full_url": url, "client_id": 7,
        "user_agent": agent, "method": method});
    let object = body.as_object_mut().expect("an object");
    for (field, value) in [("ip", ip), ("referrer", referrer), ("source", source)] {
        if let Some(value) = value {
            object.insert(field.into(), json!(value));
        }
    }
    body
}

/// `group_totals` of [`CODE`]'s stats split by `group_by`, once people's
/// clicks reach `humans`.
async fn totals(
    pipeline: &Pipeline,
    group_by: &str,
    humans: i64,
) -> anyhow::Result<(Value, BTreeMap<String, i64>)> {
    totals_of(pipeline, CODE, group_by, humans).await
}

/// `group_totals` of `code`'s stats split by `group_by`, once people's
/// clicks reach `humans`.
async fn totals_of(
    pipeline: &Pipeline,
    code: &str,
    group_by: &str,
    humans: i64,
) -> anyhow::Result<(Value, BTreeMap<String, i64>)> {
    eventually(DEADLINE, || async {
        let (status, body) = pipeline
            .query(&format!("/v1/links/{code}/stats?group_by={group_by}"))
            .await?;
        Ok(if status == 200 && body["total_clicks"] == humans {
            let totals: BTreeMap<String, i64> =
                serde_json::from_value(body["group_totals"].clone()).unwrap_or_default();
            Ok((body, totals))
        } else {
            Err(format!("{status}: {body}"))
        })
    })
    .await
}

fn expect(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn clicks_come_back_in_every_breakdown_exactly_and_no_address_is_stored() -> anyhow::Result<()>
{
    let dir = tempfile::tempdir()?;
    let pipeline = Pipeline::start(Options {
        geoip_db: Some(country_database(dir.path())?),
        max_dimension_values: 3,
        ..Options::default()
    })
    .await?;
    let google = "https://www.google.com/search?q=spring";
    let mut clicks = Vec::new();
    for _ in 0..4 {
        clicks.push(click(
            Some("81.2.69.142"),
            Some(google),
            Some("newsletter"),
            Some("qr"),
            CHROME,
            "GET",
        ));
    }
    for _ in 0..3 {
        clicks.push(click(Some("2001:db8::7"), None, None, None, CHROME, "GET"));
    }
    for _ in 0..2 {
        clicks.push(click(
            Some("8.8.8.8"),
            Some("https://t.co/x"),
            None,
            None,
            CHROME,
            "GET",
        ));
    }
    clicks.push(click(None, None, None, None, CHROME, "GET"));
    // Five more referrers: the three places are taken, all five are (other).
    for n in 1..=5 {
        let referrer = format!("https://r{n}.example/post");
        clicks.push(click(
            Some("81.2.69.9"),
            Some(&referrer),
            None,
            None,
            CHROME,
            "GET",
        ));
    }
    // Not people: a chat app's preview, a HEAD, a crawler.
    clicks.push(click(
        Some("81.2.69.142"),
        None,
        None,
        None,
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "GET",
    ));
    clicks.push(click(Some("81.2.69.142"), None, None, None, CHROME, "HEAD"));
    clicks.push(click(
        Some("8.8.8.8"),
        None,
        None,
        None,
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "GET",
    ));
    for body in &clicks {
        let (status, answer) = pipeline.post_to("/v1/redirects", body).await?;
        anyhow::ensure!(status == 202, "{status}: {answer}");
    }
    const HUMANS: i64 = 15;

    // Everything sent is stored once the last click (the crawler's) is.
    eventually(DEADLINE, || async {
        let (_, body) = pipeline.query(&format!("/v1/links/{CODE}/stats")).await?;
        Ok(if body["total_bot_clicks"] == 1 {
            Ok(())
        } else {
            Err(format!("not all stored yet: {body}"))
        })
    })
    .await?;
    let (stats, countries) = totals(&pipeline, "country", HUMANS).await?;
    assert_eq!(
        countries,
        expect(&[("GB", 9), ("CH", 3), ("US", 2), ("unknown", 1)])
    );
    assert_eq!(
        (
            &stats["total_previews"],
            &stats["total_bot_clicks"],
            &stats["total_unique_visitors"]
        ),
        (&json!(2), &json!(1), &json!(4)),
        "four people with an address (one without), each counted once: {stats}"
    );
    let (_, regions) = totals(&pipeline, "region", HUMANS).await?;
    assert_eq!(
        regions,
        expect(&[("GB-ENG", 9), ("unknown", 4), ("California", 2)])
    );
    let (_, cities) = totals(&pipeline, "city", HUMANS).await?;
    assert_eq!(
        cities,
        expect(&[("London", 9), ("unknown", 4), ("Mountain View", 2)])
    );
    let (_, referrers) = totals(&pipeline, "referrer", HUMANS).await?;
    assert_eq!(
        referrers,
        expect(&[
            ("google.com", 4),
            ("(none)", 4),
            ("t.co", 2),
            ("(other)", 5)
        ])
    );
    let (_, channels) = totals(&pipeline, "referrer_channel", HUMANS).await?;
    assert_eq!(
        channels,
        expect(&[("search", 4), ("direct", 4), ("social", 2), ("other", 5)])
    );
    let (_, sources) = totals(&pipeline, "utm_source", HUMANS).await?;
    assert_eq!(sources, expect(&[("newsletter", 4), ("(none)", 11)]));
    let (_, mediums) = totals(&pipeline, "utm_medium", HUMANS).await?;
    assert_eq!(mediums, expect(&[("email", 4), ("(none)", 11)]));
    let (_, campaigns) = totals(&pipeline, "utm_campaign", HUMANS).await?;
    assert_eq!(campaigns, expect(&[("(none)", 15)]));
    let (_, reached) = totals(&pipeline, "source", HUMANS).await?;
    assert_eq!(reached, expect(&[("qr", 4), ("link", 11)]));
    let (_, browsers) = totals(&pipeline, "browser", HUMANS).await?;
    assert_eq!(browsers, expect(&[("Chrome", 15)]));

    let (status, top) = pipeline
        .query(&format!("/v1/links/{CODE}/top?dimension=country&limit=2"))
        .await?;
    assert_eq!(status, 200, "{top}");
    assert_eq!(
        (&top["values"], &top["total_clicks"]),
        (
            &json!([{"value": "GB", "clicks": 9}, {"value": "CH", "clicks": 3}]),
            &json!(HUMANS)
        ),
        "{top}"
    );
    for (query, parameter) in [
        ("top", "dimension"),
        ("top?dimension=ip", "dimension"),
        ("top?dimension=country&limit=0", "limit"),
        ("stats?group_by=ip", "group_by"),
    ] {
        let (status, refused) = pipeline.query(&format!("/v1/links/{CODE}/{query}")).await?;
        assert_eq!(
            (status, &refused["error"]["parameter"]),
            (400, &json!(parameter)),
            "{query}: {refused}"
        );
    }

    let month = chrono::Utc::now().format("%Y-%m");
    let (status, report) = pipeline
        .query(&format!("/v1/clients/7/reports/{month}"))
        .await?;
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        report["short_codes"][0],
        json!({"short_code": CODE, "clicks": HUMANS, "unique_visitors": 4, "previews": 2}),
        "{report}"
    );

    // A refused click's body is listed without its address.
    let refused = json!({"short_code": CODE, "full_url": "https://shop.example/",
        "client_id": -1, "user_agent": CHROME, "ip": "81.2.69.77"});
    let (status, _) = pipeline.post_to("/v1/redirects", &refused).await?;
    assert_eq!(status, 400);
    let listed = eventually(DEADLINE, || async {
        let (_, body) = pipeline.query("/v1/errors?kind=reject").await?;
        let rows = body["errors"].as_array().cloned().unwrap_or_default();
        Ok(
            match rows.iter().find(|row| row["source"] == "/v1/redirects") {
                Some(row) => Ok(row.clone()),
                None => Err(format!("not listed yet: {body}")),
            },
        )
    })
    .await?;
    let sample = listed["body"].as_str().unwrap_or_default();
    assert!(
        sample.contains("(redacted)") && !sample.contains("81.2.69.77"),
        "{listed}"
    );

    // The addresses were used and dropped: not in the store, nor its log.
    for entry in std::fs::read_dir(pipeline.data_dir())? {
        let path = entry?.path();
        if !path.is_file() || !path.to_string_lossy().contains("eventide.db") {
            continue;
        }
        let bytes = std::fs::read(&path)?;
        for address in [
            "81.2.69.142",
            "81.2.69.9",
            "81.2.69.77",
            "2001:db8::7",
            "8.8.8.8",
        ] {
            assert!(
                !bytes
                    .windows(address.len())
                    .any(|window| window == address.as_bytes()),
                "{address} found in {}",
                path.display()
            );
        }
    }
    Ok(())
}

/// 100,000 distinct (address, user agent) pairs over three days, people
/// returning across days: unique visitors within 2% per day and over the
/// range, and the range far below the sum of the days.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unique_visitors_are_within_two_percent_per_day_and_over_the_range() -> anyhow::Result<()> {
    const CODE: &str = "uniques";
    let pipeline = Pipeline::start(Options::default()).await?;
    let today = chrono::Utc::now().date_naive();
    let days = [
        today - chrono::Days::new(3),
        today - chrono::Days::new(2),
        today - chrono::Days::new(1),
    ];
    // Day 1: visitors 0..40k; day 2: 20k..60k; day 3: 40k..100k.
    let ranges = [0..40_000_u32, 20_000..60_000, 40_000..100_000];
    let mut posted = 0;
    for (day, visitors) in days.iter().zip(ranges.clone()) {
        let at = format!("{day}T12:00:00Z");
        let visitors: Vec<u32> = visitors.collect();
        for chunk in visitors.chunks(1_000) {
            let items: Vec<Value> = chunk
                .iter()
                .map(|n| {
                    json!({"type": "redirect", "short_code": CODE,
                        "full_url": "https://shop.example/", "client_id": 9,
                        "user_agent": format!("{CHROME} visitor/{}", n % 7),
                        "ip": format!("10.{}.{}.{}", n >> 16, (n >> 8) & 255, n & 255),
                        "occurred_at": at})
                })
                .collect();
            let (status, answer) = pipeline.post_to("/v1/batch", &json!(items)).await?;
            anyhow::ensure!(status == 202, "{status}: {:.600}", answer.to_string());
            posted += chunk.len();
        }
    }
    let path = format!("/v1/links/{CODE}/stats?from={}&to={}", days[0], days[2]);
    let stats = eventually(Duration::from_secs(180), || async {
        let (status, body) = pipeline.query(&path).await?;
        Ok(if status == 200 && body["total_clicks"] == posted {
            Ok(body)
        } else {
            Err(format!(
                "{status}: {} of {posted} clicks",
                body["total_clicks"]
            ))
        })
    })
    .await?;
    let within = |estimate: &Value, exact: f64| {
        estimate
            .as_f64()
            .is_some_and(|estimate| (estimate - exact).abs() / exact <= 0.02)
    };
    let per_day: Vec<Value> = stats["series"]
        .as_array()
        .map(|points| {
            points
                .iter()
                .map(|p| p["unique_visitors"].clone())
                .collect()
        })
        .unwrap_or_default();
    for (estimate, exact) in per_day.iter().zip([40_000.0, 40_000.0, 60_000.0]) {
        assert!(
            within(estimate, exact),
            "{estimate} for {exact}: {per_day:?}"
        );
    }
    assert!(
        within(&stats["total_unique_visitors"], 100_000.0),
        "the range: {} for 100000 (the days sum to 140000)",
        stats["total_unique_visitors"]
    );
    println!(
        "unique visitors: days {per_day:?} (exact 40000, 40000, 60000), range {} (exact 100000)",
        stats["total_unique_visitors"]
    );
    Ok(())
}

/// 5,000 distinct referrers on one link and day: the first 1,000 (the
/// default `--max-dimension-values`) are kept, the other 4,000 clicks count
/// as `(other)`, and the total stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_thousand_referrers_keep_a_thousand_and_other() -> anyhow::Result<()> {
    const CODE: &str = "many-referrers";
    const REFERRERS: usize = 5_000;
    let pipeline = Pipeline::start(Options::default()).await?;
    let items: Vec<Value> = (0..REFERRERS)
        .map(|n| {
            json!({"type": "redirect", "short_code": CODE, "full_url": "https://shop.example/",
                "client_id": 4, "user_agent": CHROME,
                "referrer": format!("https://site{n}.example/page")})
        })
        .collect();
    for chunk in items.chunks(1_000) {
        let (status, answer) = pipeline.post_to("/v1/batch", &json!(chunk)).await?;
        anyhow::ensure!(status == 202, "{status}: {:.300}", answer.to_string());
    }
    let (_, referrers) = totals_of(&pipeline, CODE, "referrer", REFERRERS as i64).await?;
    assert_eq!(referrers.len(), 1_001, "1,000 hosts and (other)");
    assert_eq!(referrers.get("(other)"), Some(&4_000));
    assert_eq!(referrers.values().sum::<i64>(), REFERRERS as i64);
    let (status, top) = pipeline
        .query(&format!("/v1/links/{CODE}/top?dimension=referrer&limit=1"))
        .await?;
    assert_eq!(status, 200, "{top}");
    assert_eq!(
        top["values"],
        json!([{"value": "(other)", "clicks": 4_000}]),
        "{top}"
    );
    Ok(())
}
