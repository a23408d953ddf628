//! Session rules end to end: app events through ingest, the processor's rules
//! and timers, the notifications topic, the store and
//! `GET /v1/notifications`.

use std::time::Duration;

use serde_json::{Value, json};
use testcontainers_tests::{Options, Pipeline, eventually};

const DEADLINE: Duration = Duration::from_secs(60);

/// Every stored notification of `user`, following the cursors.
async fn notifications(pipeline: &Pipeline, user: &str) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/notifications?user_id={user}&limit=1");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, body) = pipeline.query(&path).await?;
        anyhow::ensure!(status == 200, "notifications answered {status}: {body}");
        all.extend(
            body["notifications"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
        );
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return Ok(all),
        }
    }
}

/// Waits until `user` has exactly `count` stored notifications.
async fn wait_for_notifications(
    pipeline: &Pipeline,
    user: &str,
    count: usize,
) -> anyhow::Result<Vec<Value>> {
    eventually(DEADLINE, || async {
        let found = notifications(pipeline, user).await?;
        Ok(if found.len() == count {
            Ok(found)
        } else {
            Err(format!(
                "{user} has {} notifications: {found:?}",
                found.len()
            ))
        })
    })
    .await
}

async fn post_app_event(pipeline: &Pipeline, event: &Value) -> anyhow::Result<()> {
    let (status, body) = pipeline.post_to("/v1/event", event).await?;
    anyhow::ensure!(status == 202, "ingest answered {status}: {body}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_snapshot_congratulates_foo1_and_nudges_foo2() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        ..Options::default()
    })
    .await?;
    // reference/004's own snapshot, in its own shape.
    let snapshot = [
        json!({"user_id": "foo2", "device_id": "bar2", "type": "app_launch", "time_stamp": "2021-02-28 16:22:52"}),
        json!({"user_id": "foo1", "device_id": "bar1", "type": "training_program_started",
               "training_program_id": "2352", "training_program_title": "7 Minutes of HIIT Training",
               "time_stamp": "2021-02-28 16:23:25"}),
        json!({"user_id": "foo2", "device_id": "bar2", "type": "training_program_started",
               "training_program_id": "2352", "time_stamp": "2021-02-28 16:52:00"}),
        json!({"user_id": "foo2", "device_id": "bar2", "type": "training_program_cancelled",
               "training_program_id": "2352", "time_stamp": "2021-02-28 16:54:21"}),
        json!({"user_id": "foo1", "device_id": "bar1", "type": "training_program_finished",
               "training_program_id": "2352", "time_stamp": "2021-02-28 16:59:43"}),
    ];
    for event in &snapshot {
        post_app_event(&pipeline, event).await?;
    }
    let foo1 = wait_for_notifications(&pipeline, "foo1", 1).await?;
    assert_eq!(foo1[0]["rule"], "daily-dose-congratulation");
    assert!(
        foo1[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("36 minutes")),
        "{}",
        foo1[0]
    );
    assert_eq!(foo1[0]["data"]["seconds"], 2178.0);
    assert_eq!(foo1[0]["device_id"], "bar1");
    let foo2 = wait_for_notifications(&pipeline, "foo2", 1).await?;
    assert_eq!(foo2[0]["rule"], "training-nudge");
    assert_eq!(foo2[0]["occurred_at"], "2021-02-28T16:32:52Z");
    assert_eq!(foo2[0]["device_id"], "bar2");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boundaries_exactly_thirty_minutes_a_cancelled_program_and_a_start_at_9_59_notify_nobody()
-> anyhow::Result<()> {
    // Idle firing waits for 3 s of silence; one batch arrives far faster.
    let pipeline = Pipeline::start(Options {
        partitions: 1,
        idle_grace: Duration::from_secs(3),
        ..Options::default()
    })
    .await?;
    let app = |user: &str, kind: &str, at: &str| {
        json!({"type": "app", "user_id": user, "event_type": kind,
               "training_program_id": "7", "time_stamp": at})
    };
    let launch = |user: &str, at: &str| json!({"type": "app", "user_id": user, "event_type": "app_launch", "time_stamp": at});
    let batch = json!([
        app("exact", "training_program_started", "2021-03-01 08:00:00"),
        app("exact", "training_program_finished", "2021-03-01 08:30:00"),
        app(
            "cancelled",
            "training_program_started",
            "2021-03-01 08:00:00"
        ),
        app(
            "cancelled",
            "training_program_cancelled",
            "2021-03-01 08:45:00"
        ),
        app(
            "cancelled",
            "training_program_finished",
            "2021-03-01 08:46:00"
        ),
        launch("early", "2021-03-01 09:00:00"),
        app("early", "training_program_started", "2021-03-01 09:09:59"),
        app("longer", "training_program_started", "2021-03-01 08:00:00"),
        app("longer", "training_program_finished", "2021-03-01 08:30:01"),
        // Launched last and never starts: its nudge fires after everything
        // above was applied in this one partition.
        launch("sentinel", "2021-03-01 09:10:00"),
    ]);
    let (status, body) = pipeline.post_to("/v1/batch", &batch).await?;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["accepted"], 10, "{body}");
    let longer = wait_for_notifications(&pipeline, "longer", 1).await?;
    assert!(
        longer[0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("30 minutes")),
        "30:01 is strictly longer and rounds down to 30 minutes: {}",
        longer[0]
    );
    let sentinel = wait_for_notifications(&pipeline, "sentinel", 1).await?;
    assert_eq!(sentinel[0]["rule"], "training-nudge");
    for user in ["exact", "cancelled", "early"] {
        let found = notifications(&pipeline, user).await?;
        assert!(found.is_empty(), "{user} was notified: {found:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timer_due_while_the_processor_is_down_fires_once_on_restart_and_says_how_late()
-> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let rules_file = dir.path().join("rules.toml");
    std::fs::write(
        &rules_file,
        r#"[[rule]]
name = "quick-nudge"
kind = "absence"
on = "app_launch"
expect = "training_program_started"
within = "2s"
message = "{user_id}: still no program after {seconds} s"
"#,
    )?;
    let mut pipeline = Pipeline::start(Options {
        partitions: 1,
        rules_file: Some(rules_file),
        idle_grace: Duration::from_millis(500),
        ..Options::default()
    })
    .await?;
    let launched = chrono::Utc::now();
    post_app_event(
        &pipeline,
        &json!({"userId": "sleeper", "deviceId": "phone", "type": "app_launch",
                "timestamp": launched.to_rfc3339()}),
    )
    .await?;
    // The timer is stored with its partition before the crash.
    pipeline
        .wait_for_store(
            &[(
                "SELECT COUNT(*) FROM rule_state WHERE user_id = 'sleeper' AND kind = 'timer'"
                    .into(),
                1,
            )],
            DEADLINE,
        )
        .await?;
    pipeline.crash_processor().await;
    // Downtime: no processor runs until the timer is a second overdue.
    let overdue = launched + chrono::Duration::seconds(3);
    eventually(DEADLINE, || async {
        Ok(if chrono::Utc::now() > overdue {
            Ok(())
        } else {
            Err("the timer is not overdue yet".to_owned())
        })
    })
    .await?;
    // The same instance id, as a restarted pod keeps its name.
    pipeline.start_processor("p0");
    let fired = wait_for_notifications(&pipeline, "sleeper", 1).await?;
    assert_eq!(fired[0]["rule"], "quick-nudge");
    assert_eq!(fired[0]["message"], "sleeper: still no program after 2 s");
    let late = fired[0]["late_by_seconds"].as_f64().unwrap_or_default();
    assert!(
        late >= 1.0,
        "fired {late}s late, after a restart at least 1s past due"
    );
    // Once in effect: the store holds one row, and the timer is gone.
    pipeline
        .wait_for_store(
            &[
                (
                    "SELECT COUNT(*) FROM notifications WHERE user_id = 'sleeper'".into(),
                    1,
                ),
                (
                    "SELECT COUNT(*) FROM rule_state WHERE user_id = 'sleeper'".into(),
                    0,
                ),
            ],
            DEADLINE,
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifications_need_a_user_and_a_query_key() -> anyhow::Result<()> {
    let pipeline = Pipeline::start(Options::default()).await?;
    let (status, body) = pipeline.query("/v1/notifications").await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "user_id");
    let (status, body) = pipeline
        .query("/v1/notifications?user_id=u&cursor=nope")
        .await?;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["parameter"], "cursor");
    let status = reqwest::Client::new()
        .get(format!("{}/v1/notifications?user_id=u", pipeline.query_url))
        .send()
        .await?
        .status();
    assert_eq!(status, 401);
    Ok(())
}
