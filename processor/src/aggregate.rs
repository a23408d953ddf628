//! What the consumer loop needs from a per-partition aggregate: load its
//! state, decode and apply a record, and flush a fenced batch. Counters,
//! clicks, events and rules name each record's identity, so the loop applies
//! a producer's retries once (`dedup`).

use schemas::identity::Identified;
use schemas::{Codec, DeadLetter, Event, Increment, Notification, Redirect, Reject};
use uuid::Uuid;

use crate::checkpoint::Partitioned;
use crate::clicks::{Click, ClicksContext, PartitionClicks};
use crate::counters::{Applied, PartitionCounters};
use crate::event_store::{ErrorKind, ErrorRow, PartitionErrors, PartitionEvents};
use crate::notifications::PartitionNotifications;
use crate::rules::Rules;
use crate::rules::{NotifyError, PartitionRules, RulesContext};
use crate::store::{Fenced, FlushOutcome, Kept, Store, StoreError};

/// A per-partition aggregate the consumer loop drives.
pub(crate) trait Aggregate: Kept + Partitioned + Send {
    /// Shared by every partition of the topic (caches and the like).
    type Context: Send;

    /// Whether undecodable records go to dead letters; false for a worker
    /// that shares its topic with one that already does.
    const DEAD_LETTERS: bool = true;

    /// Whether the records' idempotency keys are applied once ([`Self::identity`]).
    const DEDUPLICATES: bool = false;

    /// What loading the partition needs from the context.
    fn setup(context: &Self::Context) -> &Self::Setup;
    /// The partition's stored state.
    async fn load(
        store: &Store,
        context: &Self::Context,
        topic: &str,
        partition: i32,
    ) -> Result<Self, StoreError> {
        store
            .load::<Self>(topic, partition, Self::setup(context))
            .await
    }
    /// The value type of the topic.
    type Record: Send;
    /// Decodes one record's value.
    async fn decode(
        context: &Self::Context,
        codec: &Codec,
        payload: &[u8],
    ) -> Result<Self::Record, String>;
    /// `(identity, received_at)` of a record whose producer sent an
    /// idempotency key, for the aggregates that apply each key once.
    fn identity(_record: &Self::Record) -> Option<(Uuid, i64)> {
        None
    }
    /// Applies one decoded record; `Ok(false)` if already included.
    async fn apply(
        &mut self,
        context: &mut Self::Context,
        offset: i64,
        record: Self::Record,
    ) -> Result<bool, String>;
    /// The checkpoint a batch moves to.
    fn batch_next_offset(batch: &Self::Batch) -> i64 {
        batch.next_offset()
    }
    /// Writes a batch, fenced on the checkpoint it expects.
    async fn flush(
        store: &Store,
        topic: &str,
        partition: i32,
        batch: &Self::Batch,
    ) -> Result<FlushOutcome, StoreError> {
        store.flush::<Self>(topic, partition, batch).await
    }

    /// Acts on processing time (every flush interval), before the flush.
    async fn tick(&mut self, _context: &mut Self::Context) {}

    /// Makes what the partition sent elsewhere durable before its
    /// checkpoint moves past the records that caused it.
    async fn before_flush(&mut self, _context: &mut Self::Context) -> Result<(), NotifyError> {
        Ok(())
    }
}

impl Aggregate for PartitionCounters {
    type Context = ();

    fn setup(_: &Self::Context) -> &() {
        &()
    }

    type Record = Increment;

    async fn decode(_: &Self::Context, codec: &Codec, payload: &[u8]) -> Result<Increment, String> {
        codec.decode(payload).await.map_err(|err| err.to_string())
    }

    const DEDUPLICATES: bool = true;

    fn identity(record: &Self::Record) -> Option<(Uuid, i64)> {
        record.identity()
    }

    async fn apply(
        &mut self,
        _: &mut (),
        offset: i64,
        increment: Increment,
    ) -> Result<bool, String> {
        match PartitionCounters::apply(self, offset, increment.key, increment.value) {
            Applied::Counted => Ok(true),
            Applied::Replayed => Ok(false),
            Applied::Overflow => Err(format!(
                "{}: adding {} to counter {} would pass {} within one flush",
                crate::counters::OVERFLOW_REASON,
                increment.value,
                increment.key,
                i64::MAX
            )),
        }
    }
}

impl Aggregate for PartitionClicks {
    type Context = ClicksContext;

    fn setup(context: &Self::Context) -> &usize {
        &context.max_dimension_values
    }

    type Record = Redirect;

    async fn decode(_: &Self::Context, codec: &Codec, payload: &[u8]) -> Result<Redirect, String> {
        codec.decode(payload).await.map_err(|err| err.to_string())
    }

    const DEDUPLICATES: bool = true;

    fn identity(record: &Self::Record) -> Option<(Uuid, i64)> {
        record.identity()
    }

    async fn apply(
        &mut self,
        context: &mut ClicksContext,
        offset: i64,
        redirect: Redirect,
    ) -> Result<bool, String> {
        // The address is used here and dropped with the record.
        let visit = context.enricher.visit(&redirect);
        let click = Click {
            short_code: &redirect.short_code,
            client_id: redirect.client_id,
            occurred_at: redirect.occurred_at,
            visit: &visit,
        };
        Ok(PartitionClicks::apply(self, offset, &click))
    }
}

impl Aggregate for PartitionEvents {
    type Context = ();

    fn setup(_: &Self::Context) -> &() {
        &()
    }

    type Record = Event;

    async fn decode(_: &Self::Context, codec: &Codec, payload: &[u8]) -> Result<Event, String> {
        codec.decode(payload).await.map_err(|err| err.to_string())
    }

    const DEDUPLICATES: bool = true;

    fn identity(record: &Self::Record) -> Option<(Uuid, i64)> {
        record.identity()
    }

    async fn apply(&mut self, _: &mut (), offset: i64, event: Event) -> Result<bool, String> {
        Ok(PartitionEvents::apply(self, offset, event))
    }
}

impl Aggregate for PartitionErrors {
    type Context = ErrorKind;

    fn setup(_: &Self::Context) -> &() {
        &()
    }

    type Record = ErrorRow;

    async fn decode(kind: &ErrorKind, codec: &Codec, payload: &[u8]) -> Result<ErrorRow, String> {
        Ok(match kind {
            ErrorKind::Reject => ErrorRow::from(
                codec
                    .decode::<Reject>(payload)
                    .await
                    .map_err(|err| err.to_string())?,
            ),
            ErrorKind::DeadLetter => ErrorRow::from(
                codec
                    .decode::<DeadLetter>(payload)
                    .await
                    .map_err(|err| err.to_string())?,
            ),
        })
    }

    async fn apply(
        &mut self,
        _: &mut ErrorKind,
        offset: i64,
        row: ErrorRow,
    ) -> Result<bool, String> {
        Ok(PartitionErrors::apply(self, offset, row))
    }
}

impl Aggregate for PartitionNotifications {
    type Context = ();

    fn setup(_: &Self::Context) -> &() {
        &()
    }

    type Record = Notification;

    async fn decode(
        _: &Self::Context,
        codec: &Codec,
        payload: &[u8],
    ) -> Result<Notification, String> {
        codec.decode(payload).await.map_err(|err| err.to_string())
    }

    async fn apply(
        &mut self,
        _: &mut (),
        offset: i64,
        notification: Notification,
    ) -> Result<bool, String> {
        Ok(PartitionNotifications::apply(self, offset, notification))
    }
}

/// Session rules over `events`: the events worker dead-letters what cannot
/// be decoded, so this one only moves past it.
impl Aggregate for PartitionRules {
    type Context = RulesContext;

    fn setup(context: &RulesContext) -> &Rules {
        &context.rules
    }

    const DEAD_LETTERS: bool = false;

    type Record = Event;

    async fn decode(_: &Self::Context, codec: &Codec, payload: &[u8]) -> Result<Event, String> {
        codec.decode(payload).await.map_err(|err| err.to_string())
    }

    const DEDUPLICATES: bool = true;

    fn identity(record: &Self::Record) -> Option<(Uuid, i64)> {
        record.identity()
    }

    async fn apply(
        &mut self,
        context: &mut RulesContext,
        offset: i64,
        event: Event,
    ) -> Result<bool, String> {
        let now = schemas::time::now_micros();
        let Some(fired) =
            PartitionRules::apply(self, &context.rules, context.timing, offset, &event, now)
        else {
            return Ok(false);
        };
        for notification in fired {
            context.notifier.send(notification).await;
        }
        Ok(true)
    }

    async fn tick(&mut self, context: &mut RulesContext) {
        let now = schemas::time::now_micros();
        for notification in PartitionRules::tick(self, &context.rules, context.timing, now) {
            context.notifier.send(notification).await;
        }
    }

    async fn before_flush(&mut self, context: &mut RulesContext) -> Result<(), NotifyError> {
        context.notifier.settle().await
    }
}
