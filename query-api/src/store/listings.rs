//! What the paged listings take and return, whichever backend answers:
//! events by session, category or time, and the error log, each in
//! (time, id) order with keyset cursors ([`crate::store::bounds`]).

use serde::Serialize;

use crate::store::bounds::Position;

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter<'a> {
    pub session_id: Option<&'a str>,
    pub category: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// One stored event.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredEvent {
    pub id: String,
    pub session_id: String,
    pub application_id: String,
    pub category: String,
    pub name: String,
    pub occurred_at: String,
    pub received_at: String,
    pub known_type: bool,
    pub user_id: Option<String>,
    pub device_id: Option<String>,
    pub data: serde_json::Value,
    #[serde(skip)]
    pub position: Position,
}

/// Which errors to list.
#[derive(Debug, Clone, Default)]
pub struct ErrorFilter<'a> {
    /// `reject` or `dead_letter`.
    pub kind: Option<&'a str>,
    pub application_id: Option<&'a str>,
}

/// One stored reject or dead letter.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StoredError {
    pub id: String,
    pub kind: String,
    pub occurred_at: String,
    pub application_id: Option<String>,
    /// The endpoint of a reject, or `topic/partition@offset (stage)` of a dead letter.
    pub source: String,
    pub status: Option<i64>,
    pub field: Option<String>,
    /// The rule a reject broke, or why a record was dead-lettered.
    pub reason: String,
    pub message: String,
    /// The rejected body's sample (text), or the dead letter's original bytes (hex).
    pub body: String,
    /// The replay run that saw the record fail again (or the request be
    /// refused again); null for a first failure.
    pub replay_run: Option<String>,
    #[serde(skip)]
    pub position: Position,
}
