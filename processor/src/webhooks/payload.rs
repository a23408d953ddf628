//! What destinations receive: the JSON bodies of notifications and events,
//! written straight from the records (the event's own JSON data embedded as
//! it is stored, not parsed and written again).

use serde::Serialize;
use serde_json::value::RawValue;

use schemas::{Event, Notification};

/// The stored JSON data, embedded as is; `null` if it is not JSON.
fn data(text: &str) -> Option<&RawValue> {
    serde_json::from_str::<&RawValue>(text).ok()
}

/// `micros` as an RFC 3339 UTC time.
fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// What the notify webhook receives: our fields, plus the reference's own
/// `deviceId` and `msg` so today's notification service keeps working.
#[derive(Serialize)]
struct NotificationBody<'a> {
    id: &'a str,
    user_id: &'a str,
    rule: &'a str,
    message: &'a str,
    data: Option<&'a RawValue>,
    occurred_at: String,
    late_by_seconds: f64,
    #[serde(rename = "deviceId")]
    device_id: Option<&'a str>,
    msg: &'a str,
}

/// What an events destination receives.
#[derive(Serialize)]
struct EventBody<'a> {
    id: String,
    application_id: &'a str,
    session_id: &'a str,
    user_id: Option<&'a str>,
    device_id: Option<&'a str>,
    category: &'a str,
    name: &'a str,
    occurred_at: String,
    received_at: String,
    data: Option<&'a RawValue>,
}

/// A notification's body.
///
/// # Errors
///
/// Never in practice: every field serialises.
pub fn notification(n: &Notification) -> Result<Vec<u8>, serde_json::Error> {
    #[expect(clippy::cast_precision_loss, reason = "seconds for display")]
    let late_by_seconds = n.late_by_micros as f64 / 1e6;
    serde_json::to_vec(&NotificationBody {
        id: &n.event_id,
        user_id: &n.user_id,
        rule: &n.rule,
        message: &n.message,
        data: data(&n.data),
        occurred_at: rfc3339(n.occurred_at),
        late_by_seconds,
        device_id: n.device_id.as_deref(),
        msg: &n.message,
    })
}

/// An event's body.
///
/// # Errors
///
/// Never in practice: every field serialises.
pub fn event(e: &Event) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&EventBody {
        id: e.event_id.to_string(),
        application_id: &e.application_id,
        session_id: &e.session_id,
        user_id: e.user_id.as_deref(),
        device_id: e.device_id.as_deref(),
        category: &e.category,
        name: &e.name,
        occurred_at: rfc3339(e.occurred_at),
        received_at: rfc3339(e.received_at),
        data: data(&e.data),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn an_event_body_embeds_its_data_and_names_every_field() {
        let e = Event {
            event_id: uuid::Uuid::nil(),
            occurred_at: 1_614_592_800_000_000,
            received_at: 1_614_592_800_500_000,
            application_id: "web".into(),
            session_id: "s".into(),
            category: "app".into(),
            name: "opened".into(),
            data: r#"{"n": [1, 2.5, "x"]}"#.into(),
            known_type: true,
            user_id: Some("u".into()),
            device_id: None,
            idempotency_key: None,
            destinations: None,
        };
        let body: Value = serde_json::from_slice(&event(&e).expect("serialises")).expect("json");
        assert_eq!(
            body,
            json!({"id": "00000000-0000-0000-0000-000000000000", "application_id": "web",
                   "session_id": "s", "user_id": "u", "device_id": null, "category": "app",
                   "name": "opened", "occurred_at": "2021-03-01T10:00:00Z",
                   "received_at": "2021-03-01T10:00:00.500Z", "data": {"n": [1, 2.5, "x"]}})
        );
    }

    #[test]
    fn a_notification_body_keeps_the_reference_fields_and_nulls_broken_data() {
        let n = Notification {
            event_id: "n1".into(),
            occurred_at: 0,
            received_at: 0,
            rule: "r".into(),
            user_id: "u".into(),
            device_id: Some("d".into()),
            message: "hi".into(),
            data: "not json".into(),
            trigger_event_id: "t".into(),
            late_by_micros: 1_500_000,
        };
        let body: Value =
            serde_json::from_slice(&notification(&n).expect("serialises")).expect("json");
        assert_eq!(body["deviceId"], "d");
        assert_eq!(body["msg"], body["message"]);
        assert_eq!(body["data"], Value::Null);
        assert_eq!(body["late_by_seconds"], 1.5);
    }
}
