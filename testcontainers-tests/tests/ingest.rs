//! Every producer endpoint over real HTTP against the in-process broker:
//! what is accepted lands on its topic with its key; what is refused gets
//! the precise status and is visible on the rejects topic.

use std::time::Duration;

use schemas::keys::{ApiKeys, Auth, hash_key};
use schemas::{Event, Redirect, Reject, Topic};
use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, client_with_key};
use uuid::Uuid;

const DEADLINE: Duration = Duration::from_secs(30);

async fn post(
    http: &reqwest::Client,
    url: String,
    body: &Value,
) -> anyhow::Result<(u16, reqwest::header::HeaderMap, Value)> {
    let response = http.post(url).json(body).send().await?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    Ok((
        status,
        headers,
        response.json().await.unwrap_or(Value::Null),
    ))
}

fn ids(answer: &Value) -> Vec<Uuid> {
    answer["ids"]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().and_then(|s| Uuid::parse_str(s).ok()))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_endpoint_writes_its_topic_with_its_key() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let url = |path: &str| format!("{}{path}", pipeline.ingest_url);
    let session = Uuid::new_v4();

    let response = pipeline
        .http
        .post(url("/v1/redirects"))
        .header(
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        )
        .header("x-request-id", "req-42")
        .json(&json!({"short_code": "abc", "full_url": "https://example.org/a", "client_id": 42}))
        .send()
        .await?;
    assert_eq!(response.status(), 202);
    assert_eq!(
        response.headers().get("x-request-id").map(|v| v.as_bytes()),
        Some(&b"req-42"[..])
    );
    let redirect_id = ids(&response.json().await?)[0];

    let pageview = json!({"session_id": session, "category": "page interaction", "name": "pageview",
        "data": {"host": "example.org", "path": "/"}, "timestamp": "2021-01-01 09:15:27.243860"});
    let (status, _, answer) = post(&pipeline.http, url("/v1/events"), &pageview).await?;
    assert_eq!(status, 202, "{answer}");
    let pageview_id = ids(&answer)[0];
    let unknown = json!({"session_id": session, "category": "page interaction", "name": "scroll",
        "data": {"depth": 3}, "timestamp": "2021-01-01T09:16:00Z"});
    let (status, _, answer) = post(&pipeline.http, url("/v1/events"), &unknown).await?;
    assert_eq!(status, 202, "{answer}");
    let unknown_id = ids(&answer)[0];

    let (status, _, answer) = post(&pipeline.http, url("/v1/event"), &json!({"user_id": "foo1", "device_id": "bar1",
        "type": "training_program_started", "training_program_id": "2352", "time_stamp": "2021-02-28 16:23:25"})).await?;
    assert_eq!(status, 202, "{answer}");
    let (status, _, answer) = post(&pipeline.http, url("/v1/event"), &json!({"userId": "foo1", "deviceId": "bar1",
        "type": "training_program_finished", "timestamp": "2021-02-28T16:59:43Z", "details": {"training_program_id": "2352"}})).await?;
    assert_eq!(status, 202, "{answer}");
    let (status, _, answer) = post(
        &pipeline.http,
        url("/v1/track"),
        &json!({"userId": "foo1", "payload": {"plan": "pro"}}),
    )
    .await?;
    assert_eq!(status, 202, "{answer}");

    let redirects = pipeline
        .read_topic::<Redirect>(Topic::Redirects, DEADLINE, |read| !read.is_empty())
        .await?;
    let (key, redirect) = &redirects[0];
    assert_eq!((key.as_str(), redirect.event_id), ("abc", redirect_id));
    assert_eq!(redirect.application_id, "dev");
    assert_eq!(
        redirect.user_agent, "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
        "user agent from the header"
    );
    assert_eq!(redirect.client_id, 42);

    let events = pipeline
        .read_topic::<Event>(Topic::Events, DEADLINE, |read| read.len() >= 5)
        .await?;
    assert_eq!(events.len(), 5, "{events:?}");
    let by_id = |id: Uuid| events.iter().find(|(_, e)| e.event_id == id);
    let (key, stored) = by_id(pageview_id).expect("pageview stored");
    assert_eq!(key, &session.to_string());
    assert!(stored.known_type);
    assert_eq!(stored.occurred_at, 1_609_492_527_243_860);
    assert!(!by_id(unknown_id).expect("unknown type stored").1.known_type);
    let app: Vec<_> = events.iter().filter(|(_, e)| e.category == "app").collect();
    assert_eq!(app.len(), 2);
    assert!(
        app.iter()
            .all(|(key, e)| key == "foo1" && e.device_id.as_deref() == Some("bar1"))
    );
    assert!(
        events
            .iter()
            .any(|(key, e)| key == "foo1" && e.category == "track" && e.data.contains("pro"))
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_have_precise_statuses_and_are_recorded() -> anyhow::Result<()> {
    let limited = hash_key("limited-key");
    let keys = ApiKeys::from_toml(&format!(
        "[[keys]]\nid = \"producer\"\napplication = \"web\"\nsha256 = \"{}\"\nscopes = [\"produce\"]\n\
         [[keys]]\nid = \"analyst\"\napplication = \"bi\"\nsha256 = \"{}\"\nscopes = [\"query\"]\n\
         [[keys]]\nid = \"limited\"\napplication = \"slow\"\nsha256 = \"{limited}\"\nscopes = [\"produce\"]\nrate_limit = 2\n",
        hash_key("producer-key"),
        hash_key("analyst-key"),
    ))?;
    let mut options = Options {
        auth: Auth::Keys(keys),
        ..Options::default()
    };
    options.ingest.max_body = 512;
    let pipeline = Pipeline::start(options).await?;
    let url = format!("{}/v1/increment", pipeline.ingest_url);
    let increment = json!({"key": Uuid::new_v4(), "value": 1});

    let (status, headers, answer) = post(&reqwest::Client::new(), url.clone(), &increment).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(
        headers.get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let (status, _, _) = post(&client_with_key("wrong")?, url.clone(), &increment).await?;
    assert_eq!(status, 401);
    let (status, _, answer) =
        post(&client_with_key("analyst-key")?, url.clone(), &increment).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );

    let producer = client_with_key("producer-key")?;
    let (status, _, answer) = post(&producer, url.clone(), &increment).await?;
    assert_eq!(status, 202, "{answer}");

    let text = producer
        .post(url.clone())
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await?;
    assert_eq!(text.status(), 415);
    let big = json!({"key": Uuid::new_v4(), "value": 1, "pad": "x".repeat(1024)});
    let (status, _, answer) = post(&producer, url.clone(), &big).await?;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("body_too_large"))
    );
    let malformed = producer
        .post(url.clone())
        .header("content-type", "application/json")
        .body("{\n \"key\": }")
        .send()
        .await?;
    assert_eq!(malformed.status(), 400);
    let answer: Value = malformed.json().await?;
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("line 2 column")),
        "{answer}"
    );

    let duplicate = producer
        .post(url.clone())
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"key": "{}", "value": 1, "value": 1000}}"#,
            Uuid::new_v4()
        ))
        .send()
        .await?;
    assert_eq!(duplicate.status(), 400);
    let answer: Value = duplicate.json().await?;
    assert_eq!(
        (
            answer["error"]["rule"].as_str(),
            answer["error"]["field"].as_str()
        ),
        (Some("duplicate_key"), Some("value")),
        "{answer}"
    );
    let compressed = producer
        .post(url.clone())
        .header("content-type", "application/json")
        .header("content-encoding", "br")
        .body(increment.to_string())
        .send()
        .await?;
    assert_eq!(compressed.status(), 415);
    let answer: Value = compressed.json().await?;
    assert_eq!(answer["error"]["code"], "unsupported_encoding", "{answer}");
    // The auth scheme is case-insensitive (RFC 9110).
    let lower = reqwest::Client::new()
        .post(url.clone())
        .header("authorization", "bearer producer-key")
        .json(&increment)
        .send()
        .await?;
    assert_eq!(lower.status(), 202);

    let events = format!("{}/v1/events", pipeline.ingest_url);
    let future = json!({"session_id": Uuid::new_v4(), "category": "c", "name": "n", "data": {"a": 1}, "timestamp": "2999-01-01T00:00:00Z"});
    let (status, _, answer) = post(&producer, events.clone(), &future).await?;
    assert_eq!(
        (status, answer["error"]["rule"].as_str()),
        (400, Some("future_timestamp"))
    );
    let bad_pageview = json!({"session_id": Uuid::new_v4(), "category": "page interaction", "name": "pageview",
        "data": {"host": "example.org", "path": 7}, "timestamp": "2021-01-01T00:00:00Z"});
    let (status, _, answer) = post(&producer, events, &bad_pageview).await?;
    assert_eq!(
        (
            status,
            answer["error"]["field"].as_str(),
            answer["error"]["rule"].as_str()
        ),
        (400, Some("data.path"), Some("schema"))
    );

    let slow = client_with_key("limited-key")?;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..4 {
        let (status, headers, _) = post(&slow, url.clone(), &increment).await?;
        statuses.push(status);
        if status == 429 {
            retry_after = headers
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
        }
    }
    assert!(
        statuses.contains(&429),
        "a key limited to 2/s is limited: {statuses:?}"
    );
    assert!(retry_after.is_some_and(|secs| secs.parse::<u64>().is_ok_and(|s| s >= 1)));

    let rejects = pipeline
        .read_topic::<Reject>(Topic::IngestRejects, DEADLINE, |read| read.len() >= 7)
        .await?;
    let rules: Vec<(&str, &str)> = rejects
        .iter()
        .map(|(key, r)| (key.as_str(), r.rule.as_str()))
        .collect();
    for rule in [
        "unsupported_media_type",
        "body_too_large",
        "malformed_json",
        "duplicate_key",
        "unsupported_encoding",
        "future_timestamp",
        "schema",
    ] {
        assert!(
            rules.contains(&("web", rule)),
            "no `{rule}` reject from application web in {rules:?}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_batch_writes_its_valid_items_and_lists_the_rest() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let key = Uuid::new_v4();
    let batch = json!([
        {"type": "increment", "key": key, "value": 2},
        {"type": "increment", "key": key, "value": 0},
        {"type": "increment", "key": key, "value": 3},
        {"type": "redirect", "short_code": "bad code", "full_url": "https://e.org/", "client_id": 1},
        {"type": "app", "user_id": "u1", "type_": "x"},
        {"type": "track", "userId": "u1", "payload": {"n": 1}}
    ]);
    let (status, _, answer) = post(
        &pipeline.http,
        format!("{}/v1/batch", pipeline.ingest_url),
        &batch,
    )
    .await?;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 3, "{answer}");
    let failed: Vec<u64> = answer["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["index"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(failed, vec![1, 3, 4], "{answer}");
    assert_eq!(answer["errors"][0]["error"]["field"], "value");
    pipeline.wait_for_counters(&[(key, 5)], DEADLINE).await?;

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"type": "increment", "key": key, "value": 1}))
        .collect();
    let (status, _, answer) = post(
        &pipeline.http,
        format!("{}/v1/batch", pipeline.ingest_url),
        &json!(too_many),
    )
    .await?;
    assert_eq!(
        (status, answer["error"]["rule"].as_str()),
        (400, Some("max_items"))
    );

    // No valid item: the batch is a 400 carrying every item's error.
    let (status, _, answer) = post(
        &pipeline.http,
        format!("{}/v1/batch", pipeline.ingest_url),
        &json!([
            {"type": "increment", "key": key, "value": 0},
            {"type": "event", "session_id": "x", "category": "page\u{0000}", "name": "pageview", "data": {}},
        ]),
    )
    .await?;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["error"]["rule"], "no_valid_item", "{answer}");
    assert_eq!(answer["accepted"], 0, "{answer}");
    let failed: Vec<u64> = answer["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(|e| e["index"].as_u64()).collect())
        .unwrap_or_default();
    assert_eq!(failed, vec![0, 1], "{answer}");
    Ok(())
}

/// While the broker is stopped every write is answered `503` (a `202` then
/// could not have been acknowledged, and fails the test), soon refused at
/// once and never written; after the restart, every `202` is on the topic
/// and in the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broker_outage_answers_503_and_every_202_is_durable() -> anyhow::Result<()> {
    let mut options = Options::default();
    options.ingest.produce_timeout = Duration::from_secs(2);
    let mut pipeline = Pipeline::start(options).await?;
    let url = format!("{}/v1/track", pipeline.ingest_url);
    let mut accepted = Vec::new();
    for i in 0..20 {
        let (status, _, answer) = post(
            &pipeline.http,
            url.clone(),
            &json!({"userId": "u", "payload": {"i": i}}),
        )
        .await?;
        assert_eq!(status, 202, "{answer}");
        accepted.extend(ids(&answer));
    }
    let ready = pipeline
        .http
        .get(format!("{}/readyz", pipeline.ingest_url))
        .send()
        .await?;
    assert_eq!(ready.status(), 200);

    pipeline.stop_broker();
    // Each write waits up to --produce-timeout for its 503 until a failed
    // metadata request confirms the outage; from then on writes are refused
    // at once and never queued. The broker is stopped: nothing can
    // acknowledge a write now, so a 202 fails the test.
    let mut i = 0;
    let first_refused = eventide::wait::eventually(DEADLINE, || {
        i += 1;
        let (http, url, marker) = (pipeline.http.clone(), url.clone(), format!("down-{i}"));
        async move {
            let (status, headers, answer) = post(
                &http,
                url,
                &json!({"userId": "u", "payload": {"marker": marker}}),
            )
            .await?;
            anyhow::ensure!(
                status == 503,
                "{status} while the broker is stopped: {answer}"
            );
            anyhow::ensure!(headers.contains_key("retry-after"), "{answer}");
            anyhow::ensure!(answer["error"]["code"] == "unavailable", "{answer}");
            let message = answer["error"]["message"].as_str().unwrap_or_default();
            Ok(if message.contains("no broker is reachable") {
                Ok(marker)
            } else {
                Err(format!("503 ({message}), not yet refused at once"))
            })
        }
    })
    .await?;
    // From then on, every write is refused at once.
    let mut refused_at_once = vec![first_refused];
    for n in 0..5 {
        let marker = format!("refused-{n}");
        let (status, _, answer) = post(
            &pipeline.http,
            url.clone(),
            &json!({"userId": "u", "payload": {"marker": marker}}),
        )
        .await?;
        assert_eq!(status, 503, "{answer}");
        assert!(
            answer["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("no broker is reachable")),
            "{answer}"
        );
        refused_at_once.push(marker);
    }
    let not_ready = pipeline
        .http
        .get(format!("{}/readyz", pipeline.ingest_url))
        .send()
        .await?;
    assert_eq!(not_ready.status(), 503);

    pipeline.restart_broker().await?;
    // Writes are let through again once a broker answers.
    let after = eventide::wait::eventually(DEADLINE, || async {
        let (status, _, answer) = post(
            &pipeline.http,
            url.clone(),
            &json!({"userId": "u", "payload": {"marker": "after"}}),
        )
        .await?;
        Ok(match status {
            202 => Ok(ids(&answer)),
            other => Err(format!("{other} after the restart: {answer}")),
        })
    })
    .await?;
    accepted.extend(after);
    let events = pipeline
        .read_topic::<Event>(Topic::Events, DEADLINE * 2, |read| {
            accepted
                .iter()
                .all(|id| read.iter().any(|(_, e)| e.event_id == *id))
        })
        .await?;
    for id in &accepted {
        assert!(
            events.iter().any(|(_, e)| e.event_id == *id),
            "accepted {id} is not on the topic"
        );
    }
    for marker in &refused_at_once {
        let quoted = format!("\"{marker}\"");
        assert!(
            !events.iter().any(|(_, e)| e.data.contains(&quoted)),
            "{marker} was refused at once, yet it is on the topic"
        );
    }
    // And every accepted event is in the store, once.
    let listed: Vec<String> = accepted.iter().map(|id| format!("'{id}'")).collect();
    pipeline
        .wait_for_store(
            &[(
                format!(
                    "SELECT COUNT(*) FROM events WHERE event_id IN ({})",
                    listed.join(", ")
                ),
                i64::try_from(accepted.len())?,
            )],
            DEADLINE * 2,
        )
        .await?;
    let metrics = pipeline
        .http
        .get(format!("{}/metrics", pipeline.ingest_url))
        .send()
        .await?
        .text()
        .await?;
    assert!(
        metrics.contains("eventide_ingest_requests_total"),
        "{metrics}"
    );
    Ok(())
}

/// Acknowledgements slower than `--produce-timeout` get 503, but the record
/// stays with the producer: it is still written, and the broker keeps taking
/// writes. (Expiring records already in flight makes an idempotent producer
/// bump its own epoch, which tansu 0.6 answered by panicking its storage.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledgements_slower_than_the_produce_timeout_get_503_and_still_land()
-> anyhow::Result<()> {
    let mut options = Options::default();
    options.ingest.produce_timeout = Duration::from_millis(1);
    let pipeline = Pipeline::start(options).await?;
    let key = Uuid::new_v4();
    let mut total = 0;
    let mut answers = tokio::task::JoinSet::new();
    for value in 1..=500 {
        total += value;
        let http = pipeline.http.clone();
        let url = format!("{}/v1/increment", pipeline.ingest_url);
        answers.spawn(async move { post(&http, url, &json!({"key": key, "value": value})).await });
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(answer) = answers.join_next().await {
        let (status, headers, body) = answer??;
        match status {
            202 => {}
            503 => {
                assert!(headers.contains_key("retry-after"), "{body}");
                assert_eq!(body["error"]["code"], "unavailable", "{body}");
            }
            other => anyhow::bail!("unexpected {other}: {body}"),
        }
        *statuses.entry(status).or_default() += 1;
    }
    // Every increment is counted, the ones answered 503 included: a 503 means
    // "not acknowledged in time", never "dropped".
    pipeline
        .wait_for_counters(&[(key, total)], DEADLINE * 2)
        .await
        .map_err(|err| err.context(format!("answers: {statuses:?}")))?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_and_methods_answer_in_the_error_format() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    for (method, url, status, code) in [
        (
            reqwest::Method::GET,
            format!("{}/v1/nope", pipeline.ingest_url),
            404,
            "not_found",
        ),
        (
            reqwest::Method::GET,
            format!("{}/v1/increment", pipeline.ingest_url),
            405,
            "method_not_allowed",
        ),
        (
            reqwest::Method::GET,
            format!("{}/v1/nope", pipeline.query_url),
            404,
            "not_found",
        ),
        (
            reqwest::Method::DELETE,
            format!("{}/v1/events", pipeline.query_url),
            405,
            "method_not_allowed",
        ),
    ] {
        let response = pipeline.http.request(method.clone(), &url).send().await?;
        assert_eq!(response.status().as_u16(), status, "{method} {url}");
        let body: Value = response.json().await?;
        assert_eq!(body["error"]["code"], code, "{method} {url}: {body}");
        assert!(body["error"]["message"].is_string(), "{body}");
    }
    Ok(())
}
