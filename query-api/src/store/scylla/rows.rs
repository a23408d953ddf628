//! The rows the listings read, as tuples of their selected columns, and
//! their answers: the same fields, formats and positions as the SQLite side
//! gives (ids as text, times as RFC 3339, `data` as JSON).

use scylla::value::CqlValue;
use uuid::Uuid;

use super::scan::Keyed;
use crate::store::bounds::{Position, rfc3339};
use crate::store::{StoredError, StoredEvent, StoredNotification};

/// An event row: occurred_at, event_id, session_id, category, name,
/// received_at, application_id, data, known_type, user_id, device_id.
pub(super) type EventRow = (
    i64,
    Uuid,
    String,
    String,
    String,
    i64,
    String,
    String,
    bool,
    Option<String>,
    Option<String>,
);

/// An error row: occurred_at, event_id, application_id, source, status,
/// field, reason, message, body, replay_run.
pub(super) type ErrorRow = (
    i64,
    String,
    Option<String>,
    String,
    Option<i32>,
    Option<String>,
    String,
    String,
    Vec<u8>,
    Option<String>,
);

/// A notification row: occurred_at, notification_id, rule, message,
/// device_id, received_at, trigger_event_id, late_by_micros, data.
pub(super) type NotificationRow = (
    i64,
    String,
    String,
    String,
    Option<String>,
    i64,
    String,
    i64,
    String,
);

/// Stored text as JSON, or as a JSON string when it is not JSON.
fn json(data: String) -> serde_json::Value {
    serde_json::from_str(&data).unwrap_or(serde_json::Value::String(data))
}

pub(super) fn event(row: EventRow) -> Keyed<StoredEvent> {
    let (occurred_at, event_id, session_id, category, name, received_at, application_id) =
        (row.0, row.1, row.2, row.3, row.4, row.5, row.6);
    let (data, known_type, user_id, device_id) = (row.7, row.8, row.9, row.10);
    let id = event_id.hyphenated().to_string();
    Keyed {
        time: occurred_at,
        id: CqlValue::Uuid(event_id),
        row: StoredEvent {
            position: Position {
                time: occurred_at,
                id: id.clone(),
            },
            id,
            session_id,
            application_id,
            category,
            name,
            occurred_at: rfc3339(occurred_at),
            received_at: rfc3339(received_at),
            known_type,
            user_id,
            device_id,
            data: json(data),
        },
    }
}

pub(super) fn error(kind: &str, row: ErrorRow) -> Keyed<StoredError> {
    let (occurred_at, event_id, application_id, source, status) =
        (row.0, row.1, row.2, row.3, row.4);
    let (field, reason, message, body, replay_run) = (row.5, row.6, row.7, row.8, row.9);
    let body = if kind == schemas::store::error_kind::REJECT {
        String::from_utf8_lossy(&body).into_owned()
    } else {
        hex::encode(&body)
    };
    Keyed {
        time: occurred_at,
        id: CqlValue::Text(event_id.clone()),
        row: StoredError {
            position: Position {
                time: occurred_at,
                id: event_id.clone(),
            },
            id: event_id,
            kind: kind.to_owned(),
            occurred_at: rfc3339(occurred_at),
            application_id,
            source,
            status: status.map(i64::from),
            field,
            reason,
            message,
            body,
            replay_run,
        },
    }
}

pub(super) fn notification(user_id: &str, row: NotificationRow) -> StoredNotification {
    let (occurred_at, id, rule, message, device_id) = (row.0, row.1, row.2, row.3, row.4);
    let (received_at, trigger_event_id, late_by_micros, data) = (row.5, row.6, row.7, row.8);
    #[expect(clippy::cast_precision_loss, reason = "seconds for display")]
    let late_by_seconds = late_by_micros as f64 / 1e6;
    StoredNotification {
        position: Position {
            time: occurred_at,
            id: id.clone(),
        },
        id,
        user_id: user_id.to_owned(),
        rule,
        message,
        device_id,
        occurred_at: rfc3339(occurred_at),
        fired_at: rfc3339(received_at),
        trigger_event_id,
        late_by_seconds,
        data: json(data),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(time: i64, id: &str) -> Position {
        Position {
            time,
            id: id.to_owned(),
        }
    }

    #[test]
    fn rows_decode_as_the_sqlite_side_answers() {
        let id = Uuid::now_v7();
        let row: EventRow = (
            1_614_529_372_000_000,
            id,
            "s".into(),
            "ui".into(),
            "click".into(),
            1_614_529_373_000_000,
            "web".into(),
            "not json".into(),
            true,
            None,
            Some("d".into()),
        );
        let keyed = event(row);
        assert_eq!(keyed.id, CqlValue::Uuid(id));
        assert_eq!(keyed.row.id, id.to_string());
        assert_eq!(
            keyed.row.position,
            at(1_614_529_372_000_000, &id.to_string())
        );
        assert_eq!(keyed.row.occurred_at, "2021-02-28T16:22:52Z");
        assert_eq!(keyed.row.data, serde_json::json!("not json"));
        let row = |body: &[u8]| -> ErrorRow {
            (
                7,
                "e".into(),
                None,
                "src".into(),
                Some(400),
                None,
                "r".into(),
                "m".into(),
                body.to_vec(),
                Some("run".into()),
            )
        };
        assert_eq!(error("reject", row(b"{}")).row.body, "{}");
        assert_eq!(error("dead_letter", row(&[0xff, 0x01])).row.body, "ff01");
        assert_eq!(
            error("dead_letter", row(&[])).row.replay_run.as_deref(),
            Some("run")
        );
        assert_eq!(error("reject", row(b"")).row.status, Some(400));
        let notified = notification(
            "u",
            (
                2_000_000,
                "n".into(),
                "rule".into(),
                "msg".into(),
                None,
                3_000_000,
                "e".into(),
                1_500_000,
                "{\"a\":1}".into(),
            ),
        );
        assert_eq!(notified.late_by_seconds, 1.5);
        assert_eq!(notified.data, serde_json::json!({"a": 1}));
        assert_eq!(notified.position, at(2_000_000, "n"));
    }
}
