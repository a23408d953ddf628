//! Query API latency at a fixed request rate over a large store.
//!
//! Fills a fresh SQLite store through the processor's own write path (the
//! same flushes the consumer makes) with `--events` events and `--clicks`
//! redirect clicks, starts the query API on it, then sends requests at a
//! fixed rate, open loop (each request leaves when it is due, whether or not
//! earlier ones were answered, so a slow answer cannot hold the load back;
//! latency is timed from when it left), over a mix of stats,
//! reports, counters, event pages and event types. Prints p50/p90/p99/max
//! per endpoint.
//!
//! `cargo run --release -p testcontainers-tests --bin query-bench -- --events 1000000 --clicks 1000000 --rate 1000 --seconds 30`

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use processor::clicks::{Click, PartitionClicks};
use processor::event_store::PartitionEvents;
use processor::store::Stored;
use processor::user_agent::UserAgents;
use schemas::Event;
use schemas::keys::{ApiKeys, Auth, DEV_ANALYST_KEY};
use tokio::sync::Mutex;
use uuid::Uuid;

const BATCH: usize = 20_000;
const PARTITIONS: i32 = 4;
const SESSIONS: usize = 50_000;
const SHORT_CODES: usize = 1_000;
const CLIENTS: i64 = 100;
const DAYS: i64 = 90;
/// 2021-01-01T00:00:00Z.
const START: i64 = 1_609_459_200_000_000;
const DAY: i64 = 86_400_000_000;

const AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
];

struct Args {
    events: usize,
    clicks: usize,
    /// Short codes the clicks spread over (a multiple of the partitions).
    codes: usize,
    rate: u64,
    seconds: u64,
    /// Sequential requests per console view (0: the console is not measured).
    console_rounds: usize,
}

fn args() -> anyhow::Result<Args> {
    let mut parsed = Args {
        events: 1_000_000,
        clicks: 1_000_000,
        codes: SHORT_CODES,
        rate: 1_000,
        seconds: 30,
        console_rounds: 0,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let value = argv
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--events" => parsed.events = value.parse()?,
            "--clicks" => parsed.clicks = value.parse()?,
            "--codes" => parsed.codes = value.parse()?,
            "--rate" => parsed.rate = value.parse()?,
            "--seconds" => parsed.seconds = value.parse()?,
            "--console-rounds" => parsed.console_rounds = value.parse()?,
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(parsed)
}

fn session(i: usize) -> Uuid {
    Uuid::from_u128(0x5e55_0000_0000_0000_0000_0000_0000_0000 + i as u128)
}

async fn fill(store: &processor::Store, args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    for partition in 0..PARTITIONS {
        let mut events = PartitionEvents::restore(0);
        let share = args.events / PARTITIONS as usize;
        for i in 0..share {
            let n = i * PARTITIONS as usize + partition as usize;
            let at = START + (n as i64 * 7_777_777) % (DAYS * DAY);
            let event = Event {
                event_id: Uuid::now_v7(),
                occurred_at: at,
                received_at: at,
                application_id: "bench".into(),
                session_id: session(n % SESSIONS).to_string(),
                category: "page interaction".into(),
                name: if n.is_multiple_of(5) {
                    "cta click"
                } else {
                    "pageview"
                }
                .into(),
                data: format!(r#"{{"host":"example.org","path":"/p/{}"}}"#, n % 997),
                known_type: true,
                user_id: None,
                device_id: None,
                idempotency_key: None,
                destinations: None,
            };
            events.apply(i as i64, event);
            if i % BATCH == BATCH - 1 || i + 1 == share {
                let batch = events.batch();
                store
                    .flush::<processor::event_store::PartitionEvents>("events", partition, &batch)
                    .await?;
                events.flushed(&batch);
            }
        }
    }
    println!(
        "stored {} events in {:.1}s",
        args.events,
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let mut parser = UserAgents::default();
    let agents: Vec<_> = AGENTS.iter().map(|a| parser.classify(a)).collect();
    let classified: Vec<_> = agents
        .iter()
        .enumerate()
        .map(|(i, agent)| processor::enrich::Visit {
            class: if agent.bot {
                processor::enrich::Class::Bot
            } else {
                processor::enrich::Class::Human
            },
            agent,
            dimensions: [
                ["GB", "US", "CH"][i % 3],
                ["GB-ENG", "US-CA", "CH-ZH"][i % 3],
                ["London", "San Francisco", "Zurich"][i % 3],
                ["google.com", "(none)"][i % 2],
                ["search", "direct"][i % 2],
                "(none)",
                "(none)",
                "(none)",
                "link",
            ],
            visitor: None,
        })
        .collect();
    for partition in 0..PARTITIONS {
        let mut clicks =
            PartitionClicks::restore(0, processor::clicks::DEFAULT_MAX_DIMENSION_VALUES);
        let share = args.clicks / PARTITIONS as usize;
        for i in 0..share {
            let n = i * PARTITIONS as usize + partition as usize;
            // n % codes keeps each code on one partition, as keying does.
            let code = format!("code{}", n % args.codes);
            // Enriched as the processor would: 20 countries, 200 referrer
            // hosts, 20 visitors per code.
            let mut visit = classified[n % classified.len()].clone();
            let (country, host) = (format!("C{}", n % 20), format!("site{}.example", n % 200));
            visit.dimensions[0] = &country;
            visit.dimensions[3] = &host;
            visit.visitor = Some(processor::sketch::visitor_hash(
                b"bench",
                &format!("10.0.{}.{}", (n / args.codes) % 20, n % args.codes),
                "ua",
            ));
            let click = Click {
                short_code: &code,
                client_id: (n % args.codes) as i64 % CLIENTS,
                occurred_at: START + (n as i64 * 3_333_331) % (DAYS * DAY),
                visit: &visit,
            };
            clicks.apply(i as i64, &click);
            if i % BATCH == BATCH - 1 || i + 1 == share {
                let batch = clicks.batch();
                store
                    .flush::<processor::clicks::PartitionClicks>("redirects", partition, &batch)
                    .await?;
                clicks.flushed(&batch);
            }
        }
    }
    println!(
        "stored {} clicks in {:.1}s",
        args.clicks,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

fn request(i: u64) -> (&'static str, String) {
    let n = i as usize;
    match i % 5 {
        0 => (
            "stats",
            format!(
                "/v1/links/code{}/stats?from=2021-01-01&to=2021-03-31",
                n % SHORT_CODES
            ),
        ),
        1 => (
            "report",
            format!("/v1/clients/{}/reports/2021-02", i as i64 % CLIENTS),
        ),
        2 => (
            "events by session",
            format!(
                "/v1/events?session_id={}&limit=100",
                session(n * 7 % SESSIONS)
            ),
        ),
        3 => (
            "counter",
            format!("/v1/counters/{}", Uuid::from_u128(i as u128)),
        ),
        _ => (
            "events by category",
            format!(
                "/v1/events?category=page%20interaction&from=2021-02-{:02}&to=2021-02-{:02}&limit=100",
                n % 27 + 1,
                n % 27 + 1
            ),
        ),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = args()?;
    let dir = tempfile::tempdir()?;
    let store_path = dir.path().join("eventide.db");
    {
        let store =
            processor::Store::open(&schemas::store::StoreLocation::Sqlite(store_path.clone()))
                .await?;
        fill(&store, &args).await?;
    }
    let size = |suffix: &str| {
        std::fs::metadata(dir.path().join(format!("eventide.db{suffix}"))).map_or(0, |m| m.len())
    };
    println!(
        "store size: {:.1} MiB (file {:.1} MiB + WAL {:.1} MiB)",
        (size("") + size("-wal")) as f64 / 1048576.0,
        size("") as f64 / 1048576.0,
        size("-wal") as f64 / 1048576.0
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let config = query_api::Config {
        settings: query_api::Settings {
            console: true,
            ..query_api::Settings::default()
        },
        store: schemas::store::StoreLocation::Sqlite(store_path),
        auth: Auth::Keys(ApiKeys::development()),
        metrics: eventide::telemetry::prometheus(),
        http: http_serve::Limits::default(),
        admin: None,
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    tokio::spawn(query_api::run(config, listener, shutdown.clone()));
    let client = testcontainers_tests::client_with_key(DEV_ANALYST_KEY)?;
    // Warm up: every endpoint once.
    for i in 0..5 {
        let (_, path) = request(i);
        client
            .get(format!("{base}{path}"))
            .send()
            .await?
            .error_for_status()?;
    }
    if args.console_rounds > 0 {
        console_views(&base, args.console_rounds).await?;
    }

    let latencies: Arc<Mutex<BTreeMap<&'static str, Vec<Duration>>>> = Arc::default();
    let total = args.rate * args.seconds;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let begin = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    let failures = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for i in 0..total {
        let due = begin + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due).await;
        let (endpoint, path) = request(i);
        let client = client.clone();
        let url = format!("{base}{path}");
        let latencies = latencies.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let sent = tokio::time::Instant::now();
            let ok = matches!(client.get(&url).send().await, Ok(r) if r.status().is_success());
            let took = sent.elapsed();
            if !ok {
                failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            latencies
                .lock()
                .await
                .entry(endpoint)
                .or_default()
                .push(took);
        }));
    }
    for task in tasks {
        task.await?;
    }
    let elapsed = begin.elapsed().as_secs_f64();
    let lag = begin
        .elapsed()
        .saturating_sub(interval.mul_f64(total as f64));
    println!(
        "the generator finished {:.1} ms behind schedule",
        lag.as_secs_f64() * 1e3
    );
    shutdown.cancel();
    let mut all = Vec::new();
    println!(
        "{total} requests at {} req/s offered, {:.0} req/s achieved, {} failed",
        args.rate,
        total as f64 / elapsed,
        failures.load(std::sync::atomic::Ordering::Relaxed)
    );
    println!("| endpoint | requests | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|");
    let mut latencies = latencies.lock().await;
    for (endpoint, samples) in latencies.iter_mut() {
        all.extend_from_slice(samples);
        print_row(endpoint, samples);
    }
    print_row("all", &mut all);
    Ok(())
}

/// Each console view, `rounds` times one after another, signed in: the
/// page's bytes (HTML; the stylesheet once, cached after) and its time from
/// request to last byte.
async fn console_views(base: &str, rounds: usize) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let signed_in = http
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={DEV_ANALYST_KEY}&next=%2Fconsole"))
        .send()
        .await?;
    let cookie = signed_in
        .headers()
        .get("set-cookie")
        .context("a session cookie")?
        .to_str()?
        .split(';')
        .next()
        .unwrap_or("")
        .to_owned();
    let stylesheet = http
        .get(format!("{base}/console/console.css"))
        .send()
        .await?
        .bytes()
        .await?
        .len();
    println!("console stylesheet: {stylesheet} bytes (cached an hour)");
    let views = [
        (
            "links: 90 days",
            "/console/links/code1?from=2021-01-01&to=2021-03-31".to_owned(),
        ),
        (
            "links: 90 days + referrer breakdown",
            "/console/links/code1?from=2021-01-01&to=2021-03-31&group_by=referrer".to_owned(),
        ),
        (
            "client report",
            "/console/clients/3/reports/2021-02".to_owned(),
        ),
        (
            "events of a session (100)",
            format!("/console/events?session_id={}&limit=100", session(7)),
        ),
        (
            "events of a category, one day (100)",
            "/console/events?category=page%20interaction&from=2021-02-03&to=2021-02-03&limit=100"
                .to_owned(),
        ),
        ("event types", "/console/events".to_owned()),
        ("errors", "/console/errors".to_owned()),
    ];
    println!("| view | HTML bytes | gzip bytes | p50 ms | p90 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|---|---|");
    for (name, path) in views {
        let html = http
            .get(format!("{base}{path}"))
            .header("cookie", &cookie)
            .send()
            .await?
            .bytes()
            .await?
            .len();
        // Timed as a browser asks: compressed (this client does not inflate).
        let mut samples = Vec::with_capacity(rounds);
        let mut bytes = 0;
        for _ in 0..rounds {
            let sent = Instant::now();
            let response = http
                .get(format!("{base}{path}"))
                .header("cookie", &cookie)
                .header("accept-encoding", "gzip")
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            bytes = response.bytes().await?.len();
            samples.push(sent.elapsed());
        }
        samples.sort_unstable();
        let at = |q: f64| {
            let index = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
            samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        println!(
            "| {name} | {html} | {bytes} | {:.2} | {:.2} | {:.2} | {:.2} |",
            at(0.5),
            at(0.9),
            at(0.99),
            at(1.0)
        );
    }
    Ok(())
}

fn print_row(name: &str, samples: &mut [Duration]) {
    samples.sort_unstable();
    let at = |q: f64| {
        let index = ((samples.len() as f64 * q).ceil() as usize).saturating_sub(1);
        samples.get(index).map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "| {name} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
        samples.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    );
}
