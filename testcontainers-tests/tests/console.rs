//! The analysts' console in a real browser: headless Chromium (Debian's
//! `chromium`, driven over WebDriver by `chromedriver`) against the local
//! default, with data sent through ingest. It signs in, reads a link's
//! chart and table and a breakdown and checks them against the API, opens
//! a client report and downloads its CSV, pages through a session's events,
//! sees a refused body shown as text, signs out; the browser logs no error
//! and reports no Content-Security-Policy violation.
//!
//! Without a browser the tests are reported as skipped; with
//! `EVENTIDE_REQUIRE_BROWSER=1` (CI installs one) they fail instead.
//! `EVENTIDE_CONSOLE_SCREENSHOTS=<dir>` saves a screenshot of each view.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, eventually, free_addr, report_skipped};

const DEADLINE: Duration = Duration::from_secs(60);
const CODE: &str = "spring-sale";
const OTHER_CODE: &str = "autumn";
const CLIENT: i64 = 7;
const NOTIFIED: &str = "athlete-1";
const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const FIREFOX: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
const SLACK: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";
const GOOGLEBOT: &str = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const REQUIRE_BROWSER_ENV: &str = "EVENTIDE_REQUIRE_BROWSER";
const SCREENSHOTS_ENV: &str = "EVENTIDE_CONSOLE_SCREENSHOTS";

/// Chromium and its driver, where Debian's packages put them.
fn browser_paths(test: &str) -> anyhow::Result<Option<(PathBuf, PathBuf)>> {
    let chromium = std::env::var_os("EVENTIDE_CHROMIUM")
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let driver = std::env::var_os("EVENTIDE_CHROMEDRIVER")
        .map_or_else(|| PathBuf::from("/usr/bin/chromedriver"), PathBuf::from);
    let missing: Vec<String> = [&chromium, &driver]
        .into_iter()
        .filter(|path| !path.exists())
        .map(|path| path.display().to_string())
        .collect();
    if missing.is_empty() {
        return Ok(Some((chromium, driver)));
    }
    let reason = format!(
        "no {} (Debian's chromium and chromium-driver; `bash scripts/install-browser.sh`)",
        missing.join(" or ")
    );
    anyhow::ensure!(
        std::env::var(REQUIRE_BROWSER_ENV).as_deref() != Ok("1"),
        "{test} needs a browser ({REQUIRE_BROWSER_ENV}=1): {reason}"
    );
    report_skipped(test, &reason)?;
    Ok(None)
}

/// A headless Chromium session; its driver and every browser process it
/// started (one process group) are killed when dropped, so no Chromium
/// outlives its test.
struct Browser {
    client: Client,
    driver: Child,
    downloads: tempfile::TempDir,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}

/// Kills chromedriver's process group (it and the Chromium it started),
/// then reaps chromedriver.
fn kill_group(driver: &mut Child) {
    let group = rustix::process::Pid::from_child(driver);
    // Already gone is fine: the driver is reaped below either way.
    let _gone = rustix::process::kill_process_group(group, rustix::process::Signal::KILL).is_err();
    drop(driver.kill());
    drop(driver.wait());
}

impl Browser {
    async fn start(chromium: &Path, driver: &Path) -> anyhow::Result<Self> {
        let port = free_addr()?.port();
        let mut driver = Command::new(driver)
            .arg(format!("--port={port}"))
            // Its own process group, which Chromium joins: one kill ends both.
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting chromedriver")?;
        let webdriver = format!("http://127.0.0.1:{port}");
        let ready = eventually(DEADLINE, || async {
            let Ok(response) = reqwest::get(format!("{webdriver}/status")).await else {
                return Ok(Err("chromedriver is not listening yet".to_owned()));
            };
            let status: Value = response.json().await?;
            Ok(if status["value"]["ready"] == true {
                Ok(())
            } else {
                Err(format!("chromedriver is not ready: {status}"))
            })
        })
        .await;
        if let Err(err) = ready {
            kill_group(&mut driver);
            return Err(err);
        }
        let downloads = tempfile::tempdir()?;
        let profile = tempfile::tempdir()?;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
                "prefs": {
                    "download.default_directory": downloads.path(),
                    "download.prompt_for_download": false,
                },
            },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let Value::Object(capabilities) = capabilities else {
            anyhow::bail!("capabilities are an object");
        };
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&webdriver)
            .await;
        let client = match client {
            Ok(client) => client,
            Err(err) => {
                kill_group(&mut driver);
                anyhow::bail!("starting chromium: {err}");
            }
        };
        let browser = Self {
            client,
            driver,
            downloads,
            _profile: profile,
        };
        // Headless Chromium saves downloads only where it is told to.
        browser
            .client
            .issue_cmd(Cdp {
                command: "Browser.setDownloadBehavior",
                params: json!({"behavior": "allow", "downloadPath": browser.downloads.path()}),
            })
            .await
            .context("allowing downloads")?;
        Ok(browser)
    }

    /// The browser's console messages since the last call, as
    /// `(level, message)`.
    async fn log(&self) -> anyhow::Result<Vec<(String, String)>> {
        let entries = self.client.issue_cmd(BrowserLog).await?;
        Ok(entries
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| {
                        (
                            entry["level"].as_str().unwrap_or("").to_owned(),
                            entry["message"].as_str().unwrap_or("").to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The path and query the browser shows.
    async fn at(&self) -> anyhow::Result<String> {
        let url = self.client.current_url().await?;
        Ok(match url.query() {
            Some(query) => format!("{}?{query}", url.path()),
            None => url.path().to_owned(),
        })
    }

    /// The path and query once they satisfy `there`: a click's navigation
    /// may still be under way when the click returns.
    async fn arrive(&self, there: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        eventually(DEADLINE, || async {
            let at = self.at().await?;
            Ok(if there(&at) {
                Ok(at)
            } else {
                Err(format!("at {at}"))
            })
        })
        .await
    }

    /// The text of the first element matching `css` once it satisfies
    /// `done`: a click's page may still be loading when the click returns.
    async fn text_once(&self, css: &str, done: impl Fn(&str) -> bool) -> anyhow::Result<String> {
        eventually(DEADLINE, || async {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            Ok(if done(&text) {
                Ok(text)
            } else {
                Err(format!("{css}: {text:?}"))
            })
        })
        .await
    }

    /// `table`'s body rows once they satisfy `done` (see [`Self::text_once`]).
    async fn table_once(
        &self,
        table: &str,
        done: impl Fn(&[Vec<String>]) -> bool,
    ) -> anyhow::Result<Vec<Vec<String>>> {
        eventually(DEADLINE, || async {
            let rows = self.table(table).await.unwrap_or_default();
            Ok(if done(&rows) {
                Ok(rows)
            } else {
                Err(format!("{table}: {rows:?}"))
            })
        })
        .await
    }

    /// The text of every cell of `table`'s body rows.
    async fn table(&self, table: &str) -> anyhow::Result<Vec<Vec<String>>> {
        let mut rows = Vec::new();
        for row in self
            .client
            .find_all(Locator::Css(&format!("{table} tbody tr")))
            .await?
        {
            let mut cells = Vec::new();
            for cell in row.find_all(Locator::Css("th, td")).await? {
                cells.push(cell.text().await?.trim().to_owned());
            }
            rows.push(cells);
        }
        Ok(rows)
    }

    /// Saves the page as `<name>.png` when screenshots are asked for.
    async fn screenshot(&self, name: &str) -> anyhow::Result<()> {
        let Some(dir) = std::env::var_os(SCREENSHOTS_ENV) else {
            return Ok(());
        };
        // The whole page, not only the window: as tall as the document.
        let (width, height) = self.client.get_window_size().await?;
        let document = self
            .client
            .execute("return document.documentElement.scrollHeight", vec![])
            .await?
            .as_u64()
            .unwrap_or(height)
            .clamp(300, 3_000);
        let width = u32::try_from(width)?;
        self.client
            .set_window_size(width, u32::try_from(document + 140)?)
            .await?;
        let png = self.client.screenshot().await;
        self.client
            .set_window_size(width, u32::try_from(height)?)
            .await?;
        let png = png?;
        std::fs::create_dir_all(&dir)?;
        std::fs::write(Path::new(&dir).join(format!("{name}.png")), png)?;
        Ok(())
    }

    /// Fails on any error the browser logged (a refused resource, a policy
    /// violation, a script error).
    async fn no_errors(&self, during: &str) -> anyhow::Result<()> {
        let severe: Vec<_> = self
            .log()
            .await?
            .into_iter()
            .filter(|(level, _)| level == "SEVERE")
            .collect();
        anyhow::ensure!(severe.is_empty(), "{during}: the browser logged {severe:?}");
        Ok(())
    }
}

/// chromedriver's console log (`goog:loggingPrefs`).
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or("")))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// A DevTools command through chromedriver.
#[derive(Debug)]
struct Cdp {
    command: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or("")
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"cmd": self.command, "params": self.params}).to_string()),
        )
    }
}

/// A redirect through ingest's batch.
fn click(code: &str, day: chrono::NaiveDate, agent: &str, extra: Value) -> Value {
    let mut item = json!({"type": "redirect", "short_code": code,
        "full_url": "https://shop.example/spring?utm_source=newsletter", "client_id": CLIENT,
        "user_agent": agent, "occurred_at": format!("{day}T00:00:01Z")});
    if let (Some(item), Some(extra)) = (item.as_object_mut(), extra.as_object()) {
        item.extend(extra.clone());
    }
    item
}

/// Sends the clicks, events and a refused request the tests look at, and
/// waits until the store has them.
async fn send(pipeline: &Pipeline, session: uuid::Uuid) -> anyhow::Result<[chrono::NaiveDate; 3]> {
    let today = chrono::Utc::now().date_naive();
    let days = [
        today - chrono::Days::new(2),
        today - chrono::Days::new(1),
        today,
    ];
    let mut items = Vec::new();
    for n in 0..5 {
        items.push(click(
            CODE,
            days[0],
            CHROME,
            json!({"ip": format!("10.0.0.{n}")}),
        ));
    }
    for n in 0..3 {
        items.push(click(
            CODE,
            days[1],
            FIREFOX,
            json!({"ip": format!("10.0.1.{n}"), "referrer": "https://www.google.com/search?q=spring"}),
        ));
    }
    items.push(click(CODE, days[1], SLACK, json!({})));
    items.push(click(CODE, days[1], CHROME, json!({"method": "HEAD"})));
    items.push(click(CODE, days[1], GOOGLEBOT, json!({})));
    for n in 0..4 {
        items.push(click(
            CODE,
            days[2],
            CHROME,
            json!({"ip": format!("10.0.0.{n}"), "source": "qr"}),
        ));
    }
    for _ in 0..2 {
        items.push(click(OTHER_CODE, days[2], FIREFOX, json!({})));
    }
    let (status, answer) = pipeline.post_to("/v1/batch", &json!(items)).await?;
    anyhow::ensure!(status == 202, "{status}: {answer}");
    let now = chrono::Utc::now();
    for n in 0..12_i64 {
        let at = now - chrono::Duration::seconds(60 - n);
        let (status, answer) = pipeline
            .post_to(
                "/v1/events",
                &json!({"session_id": session, "category": "page", "name": "view",
                    "data": {"path": format!("/products/{n}"), "n": n},
                    "timestamp": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)}),
            )
            .await?;
        anyhow::ensure!(status == 202, "{status}: {answer}");
    }
    // A 36-minute program: the duration rule congratulates its user.
    for event in [
        json!({"user_id": NOTIFIED, "device_id": "phone", "type": "training_program_started",
            "training_program_id": "2352", "time_stamp": "2021-02-28 16:23:25"}),
        json!({"user_id": NOTIFIED, "device_id": "phone", "type": "training_program_finished",
            "training_program_id": "2352", "time_stamp": "2021-02-28 16:59:43"}),
    ] {
        let (status, answer) = pipeline.post_to("/v1/event", &event).await?;
        anyhow::ensure!(status == 202, "{status}: {answer}");
    }
    // Refused (no `name`): its body is listed with the errors, as text.
    let (status, _) = pipeline
        .post_to(
            "/v1/events",
            &json!({"session_id": session, "category": "page",
                "data": {"x": "<script>alert(1)</script>"}}),
        )
        .await?;
    anyhow::ensure!(status == 400, "the malformed event was {status}");
    let range = format!("from={}&to={}", days[0], days[2]);
    eventually(DEADLINE, || async {
        let (_, stats) = pipeline
            .query(&format!("/v1/links/{CODE}/stats?{range}"))
            .await?;
        let (_, events) = pipeline
            .query(&format!("/v1/events?session_id={session}"))
            .await?;
        let (_, errors) = pipeline.query("/v1/errors?kind=reject").await?;
        let (_, notified) = pipeline
            .query(&format!("/v1/notifications?user_id={NOTIFIED}"))
            .await?;
        let (_, other) = pipeline
            .query(&format!("/v1/links/{OTHER_CODE}/stats?from={}", days[2]))
            .await?;
        let stored = stats["total_clicks"] == 12
            && stats["total_bot_clicks"] == 1
            && stats["total_previews"] == 2
            && other["total_clicks"] == 2
            && events["events"].as_array().map(Vec::len) == Some(12)
            && errors["errors"].as_array().is_some_and(|e| !e.is_empty())
            && notified["notifications"].as_array().map(Vec::len) == Some(1);
        Ok(if stored {
            Ok(())
        } else {
            Err(format!("not stored yet: {stats} {events} {errors}"))
        })
    })
    .await?;
    Ok(days)
}

/// Signs in through the form the console sends an unknown visitor to, and
/// checks it lands on `wanted`.
async fn sign_in(
    browser: &Browser,
    query_url: &str,
    key: &str,
    wanted: &str,
) -> anyhow::Result<()> {
    browser.client.goto(&format!("{query_url}{wanted}")).await?;
    let at = browser.at().await?;
    anyhow::ensure!(
        at.starts_with("/console/sign-in?next="),
        "a visitor is sent to sign in, not to {at}"
    );
    browser.screenshot("sign-in").await?;
    browser
        .client
        .find(Locator::Id("key"))
        .await?
        .send_keys(key)
        .await?;
    browser
        .client
        .find(Locator::Css("form.sign-in button[type=submit]"))
        .await?
        .click()
        .await?;
    // The form's navigation may still be under way when the click returns
    // (a loaded machine): wait for it to land.
    let at = eventually(DEADLINE, || async {
        let at = browser.at().await?;
        Ok(if at.starts_with("/console/sign-in") {
            Err(format!("still at {at}"))
        } else {
            Ok(at)
        })
    })
    .await?;
    anyhow::ensure!(at == wanted, "signing in returns to {wanted}, not {at}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_analyst_reads_links_reports_events_and_errors_in_a_browser() -> anyhow::Result<()> {
    let test = "console::an_analyst_reads_links_reports_events_and_errors_in_a_browser";
    let Some((chromium, driver)) = browser_paths(test)? else {
        return Ok(());
    };
    let pipeline = Pipeline::start(Options::default()).await?;
    let session = uuid::Uuid::new_v4();
    let days = send(&pipeline, session).await?;
    let browser = Browser::start(&chromium, &driver).await?;
    let console = &pipeline.query_url;

    // Links: the chart and the table say what the API says.
    let range = format!("from={}&to={}", days[0], days[2]);
    let link = format!("/console/links/{CODE}?{range}");
    sign_in(&browser, console, "dev-analyst", &link).await?;
    browser.screenshot("link").await?;
    let (_, stats) = pipeline
        .query(&format!("/v1/links/{CODE}/stats?{range}"))
        .await?;
    let from_api: Vec<Vec<String>> = stats["series"]
        .as_array()
        .context("a series")?
        .iter()
        .map(|point| {
            vec![
                point["period"].as_str().unwrap_or("").to_owned(),
                point["clicks"].to_string(),
                point["bot_clicks"].to_string(),
                point["previews"].to_string(),
                point["unique_visitors"].to_string(),
            ]
        })
        .collect();
    assert_eq!(browser.table("#series").await?, from_api);
    for (id, field) in [
        ("total-clicks", "total_clicks"),
        ("total-bot-clicks", "total_bot_clicks"),
        ("total-previews", "total_previews"),
        ("total-unique-visitors", "total_unique_visitors"),
    ] {
        let shown = browser.client.find(Locator::Id(id)).await?.text().await?;
        assert_eq!(shown, stats[field].to_string(), "{id}");
    }
    // Each column of the chart stacks the day's people, bots and previews.
    let mut charted = Vec::new();
    for column in browser
        .client
        .find_all(Locator::Css("#clicks-chart g[data-label]"))
        .await?
    {
        let mut values = vec![column.attr("data-label").await?.unwrap_or_default()];
        for mark in column.find_all(Locator::Css("rect")).await? {
            values.push(mark.attr("data-value").await?.unwrap_or_default());
        }
        charted.push(values);
    }
    let from_api_chart: Vec<Vec<String>> = from_api.iter().map(|row| row[..4].to_vec()).collect();
    assert_eq!(charted, from_api_chart);
    assert_eq!(
        stats["total_clicks"], 12,
        "people's clicks: 5 + 3 + 4; the crawler and the previews apart"
    );

    // A breakdown, chosen by its link, is the API's top list.
    browser
        .client
        .find(Locator::Css("ul.splits a[href*='group_by=browser']"))
        .await?
        .click()
        .await?;
    let at = browser.arrive(|at| at.contains("group_by=browser")).await?;
    assert!(at.contains("group_by=browser"), "{at}");
    browser.screenshot("link-breakdown").await?;
    let (_, top) = pipeline
        .query(&format!(
            "/v1/links/{CODE}/top?dimension=browser&{range}&limit=20"
        ))
        .await?;
    let shown: BTreeMap<String, String> = browser
        .table("table.bars")
        .await?
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    let from_api: BTreeMap<String, String> = top["values"]
        .as_array()
        .context("values")?
        .iter()
        .map(|v| {
            (
                v["value"].as_str().unwrap_or("").to_owned(),
                v["clicks"].to_string(),
            )
        })
        .collect();
    assert_eq!(shown, from_api);
    assert_eq!(shown.len(), 2, "Chrome and Firefox: {shown:?}");
    browser.no_errors("the link view").await?;
    let source = browser.client.source().await?;
    assert!(!source.contains("<script"), "the console sends no script");

    // The keyboard reaches the content first: Tab lands on the skip link,
    // Enter follows it.
    browser
        .client
        .find(Locator::Css("body"))
        .await?
        .send_keys(&fantoccini::key::Key::Tab)
        .await?;
    let focused = browser.client.active_element().await?;
    assert_eq!(focused.text().await?, "Skip to content");
    focused.send_keys(&fantoccini::key::Key::Enter).await?;
    let at = browser.at().await?;
    assert!(
        browser.client.current_url().await?.fragment() == Some("main"),
        "{at}"
    );

    // Every field has a label, and a phone-width page does not scroll
    // sideways (wide tables scroll in their own box).
    let unlabelled = browser
        .client
        .execute(
            "return [...document.querySelectorAll('input:not([type=hidden]), select')]\
             .filter(e => !e.labels || e.labels.length === 0).map(e => e.name)",
            vec![],
        )
        .await?;
    assert_eq!(unlabelled, json!([]), "fields without a label");
    browser.client.set_window_size(390, 844).await?;
    browser.client.refresh().await?;
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
            vec![],
        )
        .await?;
    browser.screenshot("link-phone").await?;
    assert!(
        overflow.as_i64().is_some_and(|px| px <= 0),
        "at phone width the page scrolls sideways by {overflow} px"
    );
    browser.client.set_window_size(1280, 900).await?;

    // Client report: its codes most clicked first, and the API's CSV.
    let month = days[2].format("%Y-%m").to_string();
    browser
        .client
        .goto(&format!(
            "{console}/console/clients/{CLIENT}/reports/{month}"
        ))
        .await?;
    browser.screenshot("client-report").await?;
    let (_, report) = pipeline
        .query(&format!("/v1/clients/{CLIENT}/reports/{month}"))
        .await?;
    let from_api: Vec<Vec<String>> = report["short_codes"]
        .as_array()
        .context("codes")?
        .iter()
        .map(|line| {
            vec![
                line["short_code"].as_str().unwrap_or("").to_owned(),
                line["clicks"].to_string(),
                line["unique_visitors"].to_string(),
                line["previews"].to_string(),
            ]
        })
        .collect();
    assert_eq!(browser.table("#report").await?, from_api);
    assert_eq!(from_api.first().map(|row| row[0].as_str()), Some(CODE));
    browser
        .client
        .find(Locator::LinkText("Download CSV"))
        .await?
        .click()
        .await?;
    let file = browser
        .downloads
        .path()
        .join(format!("client-{CLIENT}-{month}.csv"));
    let downloaded = eventually(DEADLINE, || async {
        Ok(std::fs::read_to_string(&file).map_err(|err| format!("{}: {err}", file.display())))
    })
    .await?;
    let csv = testcontainers_tests::client_with_key(&pipeline.analyst_key)?
        .get(format!("{console}/v1/clients/{CLIENT}/reports/{month}"))
        .header("accept", "text/csv")
        .send()
        .await?
        .text()
        .await?;
    assert_eq!(downloaded, csv, "the download is the API's CSV");

    // Events: a session's twelve, five a page, in the API's order.
    browser
        .client
        .goto(&format!(
            "{console}/console/events?session_id={session}&limit=5"
        ))
        .await?;
    browser.screenshot("events").await?;
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        pages += 1;
        for event in browser
            .client
            .find_all(Locator::Css("#events > li"))
            .await?
        {
            seen.push(event.attr("data-id").await?.unwrap_or_default());
        }
        match browser.client.find(Locator::Css("a[rel=next]")).await {
            Ok(next) => {
                let href = next.attr("href").await?.unwrap_or_default();
                next.click().await?;
                browser.arrive(|at| at == href).await?;
            }
            Err(_) => break,
        }
        anyhow::ensure!(pages < 10, "paging does not end");
    }
    let (_, events) = pipeline
        .query(&format!("/v1/events?session_id={session}&limit=100"))
        .await?;
    let from_api: Vec<String> = events["events"]
        .as_array()
        .context("events")?
        .iter()
        .map(|event| event["id"].as_str().unwrap_or("").to_owned())
        .collect();
    assert_eq!(seen, from_api);
    assert_eq!(pages, 3, "12 events at 5 a page");
    let types = browser.table("#event-types").await?;
    assert!(
        types.iter().any(|row| row[..3] == ["page", "view", "12"]),
        "{types:?}"
    );

    // Notifications: the user's, as the API lists them.
    browser
        .client
        .goto(&format!(
            "{console}/console/notifications?user_id={NOTIFIED}"
        ))
        .await?;
    browser.screenshot("notifications").await?;
    let (_, notified) = pipeline
        .query(&format!("/v1/notifications?user_id={NOTIFIED}"))
        .await?;
    let from_api: Vec<Vec<String>> = notified["notifications"]
        .as_array()
        .context("notifications")?
        .iter()
        .map(|row| {
            ["fired_at", "rule", "message", "occurred_at"]
                .iter()
                .map(|field| row[*field].as_str().unwrap_or("").to_owned())
                .collect()
        })
        .collect();
    let shown: Vec<Vec<String>> = browser
        .table("#notifications")
        .await?
        .into_iter()
        .map(|row| row[..4].to_vec())
        .collect();
    assert_eq!(shown, from_api);
    assert_eq!(from_api[0][1], "daily-dose-congratulation");

    // Errors: the refused body is shown as text, never run.
    browser
        .client
        .goto(&format!("{console}/console/errors?kind=reject"))
        .await?;
    browser.screenshot("errors").await?;
    let samples = browser
        .client
        .find_all(Locator::Css("#errors pre.data"))
        .await?;
    let mut bodies = Vec::new();
    for sample in samples {
        bodies.push(sample.prop("textContent").await?.unwrap_or_default());
    }
    assert!(
        bodies
            .iter()
            .any(|body| body.contains("<script>alert(1)</script>")),
        "{bodies:?}"
    );
    browser
        .no_errors("the reports, events and errors views")
        .await?;

    // Signing out ends the session: the next page asks to sign in again.
    browser
        .client
        .find(Locator::Css("form.session button"))
        .await?
        .click()
        .await?;
    assert_eq!(
        browser.arrive(|at| at == "/console/sign-in").await?,
        "/console/sign-in"
    );
    browser.client.goto(&format!("{console}{link}")).await?;
    let at = browser.at().await?;
    assert!(at.starts_with("/console/sign-in?next="), "{at}");
    browser.no_errors("signing out").await?;

    // No page broke its policy.
    let metrics = reqwest::get(format!("{console}/metrics"))
        .await?
        .text()
        .await?;
    assert!(
        !metrics
            .lines()
            .any(|line| line.starts_with(query_api::console::CSP_VIOLATIONS_METRIC)),
        "the browser reported policy violations"
    );
    Ok(())
}

/// An HTTP client that shows redirects instead of following them.
fn no_redirects() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

/// Signs in with `key`; the session cookie (`name=value`).
async fn session_cookie(
    http: &reqwest::Client,
    console: &str,
    key: &str,
) -> anyhow::Result<String> {
    let response = http
        .post(format!("{console}/console/sign-in"))
        .form(&[("key", key), ("next", "/console")])
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 303,
        "signing in: {}",
        response.status()
    );
    let cookie = response
        .headers()
        .get("set-cookie")
        .context("a session cookie")?
        .to_str()?;
    Ok(cookie.split(';').next().unwrap_or("").to_owned())
}

/// The CSRF token a page's forms carry.
fn csrf_of(page: &str) -> anyhow::Result<String> {
    let start = page
        .find(r#"name="csrf" value=""#)
        .context("a CSRF field")?
        + r#"name="csrf" value=""#.len();
    let end = page[start..].find('"').context("the field's end")? + start;
    Ok(page[start..end].to_owned())
}

/// Sessions, forms and admin actions are guarded without a browser too:
/// signing in takes a known key with the `query` scope from this origin;
/// the cookie is HttpOnly, SameSite=Strict and cannot be altered; forms that
/// change anything need the session's CSRF token and an `admin` key; every
/// page carries the policy; a bad parameter is a page naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_console_guards_sessions_forms_and_admin_actions() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let console = pipeline.query_url.as_str();
    let http = no_redirects()?;

    let response = http.get(format!("{console}/console")).send().await?;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/console/sign-in?next=%2Fconsole"
    );
    let response = http
        .get(format!("{console}/console/sign-in"))
        .send()
        .await?;
    assert_eq!(
        response.headers()["content-security-policy"],
        query_api::console::CONTENT_SECURITY_POLICY
    );
    assert!(!response.text().await?.contains("<script"));

    let sign_in = |key: &'static str, origin: &str| {
        http.post(format!("{console}/console/sign-in"))
            .header("origin", origin)
            .form(&[("key", key), ("next", "/console/events")])
            .send()
    };
    let own = console;
    assert_eq!(sign_in("not-a-key", own).await?.status(), 401);
    assert_eq!(
        sign_in("dev-producer", own).await?.status(),
        403,
        "a producer key may not read"
    );
    assert_eq!(
        sign_in("dev-analyst", "http://evil.example")
            .await?
            .status(),
        403,
        "a sign-in posted from another site"
    );
    let response = sign_in("dev-analyst", own).await?;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/console/events");
    let set_cookie = response.headers()["set-cookie"].to_str()?.to_owned();
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} in {set_cookie}"
        );
    }
    let analyst = set_cookie.split(';').next().unwrap_or("").to_owned();

    let page = |cookie: String, path: &'static str| {
        http.get(format!("{console}{path}"))
            .header("cookie", cookie)
            .send()
    };
    let response = page(analyst.clone(), "/console/events").await?;
    assert_eq!(response.status(), 200);
    let events_page = response.text().await?;
    // One changed character of the signature, or of the key's hash, and
    // the cookie is nobody's.
    let mut forged = analyst.clone();
    let last = forged.pop().context("a cookie")?;
    forged.push(if last == '0' { '1' } else { '0' });
    let response = page(forged, "/console/events").await?;
    assert_eq!(response.status(), 303, "a forged cookie signs nobody in");

    // Pages are compressed for browsers that ask; a path with no page is
    // a page too.
    let response = http
        .get(format!("{console}/console/events"))
        .header("cookie", &analyst)
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    assert_eq!(response.headers()["content-encoding"], "gzip");
    let response = page(analyst.clone(), "/console/no/such/page").await?;
    assert_eq!(response.status(), 404);
    assert!(
        response.headers()["content-type"]
            .to_str()?
            .starts_with("text/html")
    );

    let response = page(analyst.clone(), "/console/links/bad!code").await?;
    assert_eq!(response.status(), 400);
    let body = response.text().await?;
    assert!(body.contains("short_code"), "{body}");

    // Forms that change something.
    let csrf = csrf_of(&events_page)?;
    let post = |path: &'static str, cookie: &str, fields: Vec<(&'static str, String)>| {
        http.post(format!("{console}{path}"))
            .header("cookie", cookie)
            .form(&fields)
            .send()
    };
    let replay = |csrf: String| {
        vec![
            ("csrf", csrf),
            ("target", "rejects".to_owned()),
            ("application", "dev".to_owned()),
            ("dry_run", "true".to_owned()),
        ]
    };
    let response = post("/console/replays", &analyst, replay(csrf.clone())).await?;
    assert_eq!(response.status(), 403, "an analyst key may not replay");
    let admin = session_cookie(&http, console, "dev-admin").await?;
    let admin_page = page(admin.clone(), "/console/errors").await?.text().await?;
    assert!(admin_page.contains("Destinations"), "admins see delivery");
    let admin_csrf = csrf_of(&admin_page)?;
    let response = post("/console/replays", &admin, replay(csrf.clone())).await?;
    assert_eq!(
        response.status(),
        403,
        "another session's CSRF token is refused"
    );
    let response = http
        .post(format!("{console}/console/replays"))
        .header("cookie", &admin)
        .header("sec-fetch-site", "cross-site")
        .form(&replay(admin_csrf.clone()))
        .send()
        .await?;
    assert_eq!(response.status(), 403, "a form posted from another site");
    let response = post("/console/replays", &admin, replay(admin_csrf.clone())).await?;
    assert_eq!(response.status(), 200);
    let body = response.text().await?;
    assert!(
        body.contains("ingest") && body.contains("dry_run"),
        "{body}"
    );

    // Signing out needs the token too, and ends the session.
    let response = post(
        "/console/sign-out",
        &analyst,
        vec![("csrf", admin_csrf.clone())],
    )
    .await?;
    assert_eq!(response.status(), 403);
    let response = post("/console/sign-out", &analyst, vec![("csrf", csrf)]).await?;
    assert_eq!(response.status(), 303);
    assert!(
        response.headers()["set-cookie"]
            .to_str()?
            .contains("Max-Age=0")
    );
    Ok(())
}

/// An operator pauses and resumes a destination and runs a dry-run replay
/// from the errors view, in a real browser; the API sees each change.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_operator_pauses_resumes_and_replays_in_a_browser() -> anyhow::Result<()> {
    let test = "console::an_operator_pauses_resumes_and_replays_in_a_browser";
    let Some((chromium, driver)) = browser_paths(test)? else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let destinations = dir.path().join("destinations.toml");
    // Nothing is delivered here: the receiver's address is never called.
    std::fs::write(
        &destinations,
        "[[destination]]\nname = \"crm\"\nurl = \"http://127.0.0.1:9/hook\"\n",
    )?;
    let pipeline = Pipeline::start(Options {
        delivery: Some(processor::webhooks::Settings {
            destinations_file: Some(destinations),
            ..processor::webhooks::Settings::default()
        }),
        ..Options::default()
    })
    .await?;
    let console = &pipeline.query_url;
    let admin_api = testcontainers_tests::client_with_key(schemas::keys::DEV_ADMIN_KEY)?;
    let state = || async {
        let listed: Value = admin_api
            .get(format!("{console}/v1/admin/destinations"))
            .send()
            .await?
            .json()
            .await?;
        anyhow::Ok(listed["destinations"][0].clone())
    };
    let browser = Browser::start(&chromium, &driver).await?;
    sign_in(&browser, console, "dev-admin", "/console/errors").await?;
    let row = browser.table("#destinations").await?;
    assert_eq!(row[0][0], "crm");
    assert!(row[0][1].starts_with("delivering"), "{row:?}");

    browser
        .client
        .find(Locator::Id("reason-crm"))
        .await?
        .send_keys("receiver maintenance")
        .await?;
    browser
        .client
        .find(Locator::Css("tr[data-destination=crm] button"))
        .await?
        .click()
        .await?;
    browser.text_once("h1", |h1| h1 == "Paused crm").await?;
    let paused = eventually(DEADLINE, || async {
        let now = state().await?;
        Ok(if now["paused"] == true {
            Ok(now)
        } else {
            Err(format!("not paused yet: {now}"))
        })
    })
    .await?;
    assert_eq!(paused["changed_by"], "console:dev-admin");
    assert_eq!(paused["reason"], "receiver maintenance");

    // The errors view shows it paused, and resumes it.
    eventually(DEADLINE, || async {
        browser
            .client
            .goto(&format!("{console}/console/errors"))
            .await?;
        let row = browser.table("#destinations").await?;
        Ok(if row[0][1].starts_with("paused") {
            Ok(())
        } else {
            Err(format!("shown as {row:?}"))
        })
    })
    .await?;
    browser.screenshot("errors-admin").await?;
    browser
        .client
        .find(Locator::Css("tr[data-destination=crm] button"))
        .await?
        .click()
        .await?;
    eventually(DEADLINE, || async {
        let now = state().await?;
        Ok(if now["paused"] == false {
            Ok(())
        } else {
            Err(format!("not resumed yet: {now}"))
        })
    })
    .await?;

    // A dry run over the destination's dead letters counts and sends
    // nothing.
    browser
        .client
        .goto(&format!("{console}/console/errors"))
        .await?;
    browser
        .client
        .find(Locator::Css("#replay-heading + form button[type=submit]"))
        .await?
        .click()
        .await?;
    let counts: BTreeMap<String, String> = browser
        .table_once("#replay", |rows| rows.iter().any(|row| row[0] == "dry_run"))
        .await?
        .into_iter()
        .map(|row| (row[0].clone(), row[1].clone()))
        .collect();
    assert_eq!(counts.get("dry_run").map(String::as_str), Some("true"));
    assert_eq!(counts.get("replayed").map(String::as_str), Some("0"));
    assert_eq!(
        counts.get("stage").map(String::as_str),
        Some("delivery:crm")
    );
    browser.no_errors("steering delivery").await?;
    Ok(())
}
