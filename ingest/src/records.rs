//! Valid requests to the records ingest writes: each stamped with its event
//! id (fresh, or derived from the producer's idempotency key), the receiving
//! time and the producing application.

use schemas::identity::IdempotencyKey;
use schemas::{Codec, CodecError, Event, Increment, Redirect, Topic};
use uuid::Uuid;

use crate::validation::BatchItem;

/// A record on its way to its topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outgoing {
    Increment(Increment),
    Redirect(Redirect),
    Event(Event),
}

impl Outgoing {
    /// The record for a valid request from `application_id`, received
    /// `now`: its id derived from the idempotency key when the producer sent
    /// one (every retry carries the same id), else fresh.
    pub fn from_item(
        item: BatchItem,
        idempotency_key: Option<IdempotencyKey>,
        application_id: &str,
        now: i64,
    ) -> Self {
        let event_id = idempotency_key
            .as_ref()
            .map_or_else(Uuid::now_v7, |key| key.record_id(application_id));
        let idempotency_key = idempotency_key.map(IdempotencyKey::into_string);
        let application_id = application_id.to_owned();
        match item {
            BatchItem::Increment(inc) => Outgoing::Increment(Increment {
                event_id,
                occurred_at: now,
                received_at: now,
                application_id,
                key: inc.key,
                value: inc.value,
                idempotency_key,
            }),
            BatchItem::Redirect(red) => Outgoing::Redirect(Redirect {
                event_id,
                occurred_at: red.occurred_at,
                received_at: now,
                application_id,
                short_code: red.short_code,
                full_url: red.full_url,
                client_id: red.client_id,
                user_agent: red.user_agent,
                referrer: red.referrer,
                idempotency_key,
                ip: red.ip,
                method: red.method,
                source: red.source,
                accept_language: red.accept_language,
            }),
            BatchItem::Event(ev) => Outgoing::Event(Event {
                event_id,
                occurred_at: ev.occurred_at,
                received_at: now,
                application_id,
                session_id: ev.session_id,
                category: ev.category,
                name: ev.name,
                data: ev.data.to_string(),
                known_type: ev.known_type,
                user_id: ev.user_id,
                device_id: ev.device_id,
                idempotency_key,
                destinations: ev.destinations,
            }),
        }
    }

    /// The record's id, answered to the producer.
    pub fn event_id(&self) -> Uuid {
        match self {
            Outgoing::Increment(r) => r.event_id,
            Outgoing::Redirect(r) => r.event_id,
            Outgoing::Event(r) => r.event_id,
        }
    }

    /// The topic it goes to.
    pub fn topic(&self) -> Topic {
        match self {
            Outgoing::Increment(_) => Topic::Increments,
            Outgoing::Redirect(_) => Topic::Redirects,
            Outgoing::Event(_) => Topic::Events,
        }
    }

    /// Its partition key: counter key, short code, or session.
    pub fn key(&self) -> String {
        match self {
            Outgoing::Increment(r) => r.key.hyphenated().to_string(),
            Outgoing::Redirect(r) => r.short_code.clone(),
            Outgoing::Event(r) => r.session_id.clone(),
        }
    }

    /// The framed Avro value.
    ///
    /// # Errors
    ///
    /// [`CodecError`] if the schema source fails.
    pub async fn encode(&self, codec: &Codec) -> Result<Vec<u8>, CodecError> {
        match self {
            Outgoing::Increment(r) => codec.encode(r).await,
            Outgoing::Redirect(r) => codec.encode(r).await,
            Outgoing::Event(r) => codec.encode(r).await,
        }
    }
}
