//! Every topic worker of the processor, listed once: the struct below and
//! [`each!`], which runs a step on every worker in that order. Adding an
//! aggregate adds one field, one line of `each!` and one in
//! [`Workers::new`]; the loop in `lib.rs` never names a worker.

use rdkafka::consumer::CommitMode;
use schemas::{Topic, TopicNames};

use crate::clicks::ClicksContext;
use crate::clicks::PartitionClicks;
use crate::consumer::{HandleError, Io, Received, Revoked, TopicWorker};
use crate::counters::PartitionCounters;
use crate::event_store::{ErrorKind, PartitionErrors, PartitionEvents};
use crate::notifications::PartitionNotifications;
use crate::rules::{PartitionRules, RulesContext};

/// One worker per (topic, aggregate).
pub(crate) struct Workers {
    counters: TopicWorker<PartitionCounters>,
    clicks: TopicWorker<PartitionClicks>,
    events: TopicWorker<PartitionEvents>,
    /// Session rules, over the events topic with checkpoints of their own.
    session_rules: TopicWorker<PartitionRules>,
    notifications: TopicWorker<PartitionNotifications>,
    rejects: TopicWorker<PartitionErrors>,
    letters: TopicWorker<PartitionErrors>,
}

/// Runs `$body` with `$worker` bound to each worker in turn.
macro_rules! each {
    ($workers:expr, |$worker:ident| $body:expr) => {{
        let workers = $workers;
        {
            let $worker = &mut workers.counters;
            $body
        }
        {
            let $worker = &mut workers.clicks;
            $body
        }
        {
            let $worker = &mut workers.events;
            $body
        }
        {
            let $worker = &mut workers.session_rules;
            $body
        }
        {
            let $worker = &mut workers.notifications;
            $body
        }
        {
            let $worker = &mut workers.rejects;
            $body
        }
        {
            let $worker = &mut workers.letters;
            $body
        }
    }};
}

impl Workers {
    /// Every worker, on the physical topics of `names`.
    pub(crate) fn new(names: &TopicNames, rules: RulesContext, clicks: ClicksContext) -> Self {
        let worker = |topic| names.name(topic);
        Self {
            counters: TopicWorker::new(worker(Topic::Increments), Topic::Increments, ()),
            clicks: TopicWorker::new(worker(Topic::Redirects), Topic::Redirects, clicks),
            events: TopicWorker::new(worker(Topic::Events), Topic::Events, ()),
            session_rules: TopicWorker::new(worker(Topic::Events), Topic::Events, rules)
                .with_checkpoint_suffix("rules"),
            notifications: TopicWorker::new(worker(Topic::Notifications), Topic::Notifications, ()),
            rejects: TopicWorker::new(
                worker(Topic::IngestRejects),
                Topic::IngestRejects,
                ErrorKind::Reject,
            ),
            letters: TopicWorker::new(
                worker(Topic::DeadLetters),
                Topic::DeadLetters,
                ErrorKind::DeadLetter,
            ),
        }
    }

    /// The physical topics to subscribe to, each once.
    pub(crate) fn topics(&mut self) -> Vec<String> {
        let mut topics: Vec<String> = Vec::new();
        each!(self, |worker| {
            if !topics.iter().any(|topic| topic == worker.topic()) {
                topics.push(worker.topic().to_owned());
            }
        });
        topics
    }

    /// The session rules' worker (timers act on processing time).
    pub(crate) fn session_rules(&mut self) -> &mut TopicWorker<PartitionRules> {
        &mut self.session_rules
    }

    /// Flushes and lets go of revoked partitions.
    pub(crate) async fn release(
        &mut self,
        io: &Io<'_>,
        revoked: &Revoked,
    ) -> Result<(), HandleError> {
        each!(self, |worker| {
            let partitions: Vec<i32> = revoked
                .partitions
                .iter()
                .filter(|(topic, _)| topic == worker.topic())
                .map(|(_, partition)| *partition)
                .collect();
            worker.release(io, &partitions).await?;
        });
        Ok(())
    }

    /// Flushes every partition with changes and commits their offsets.
    pub(crate) async fn flush_all(
        &mut self,
        io: &Io<'_>,
        mode: CommitMode,
    ) -> Result<(), HandleError> {
        each!(self, |worker| worker.flush_all(io, mode).await?);
        Ok(())
    }

    /// The (logical topic, partition)s whose stored rows are current.
    pub(crate) fn fresh(&mut self, caught_up: &[(String, i32)]) -> Vec<(&'static str, i32)> {
        let mut fresh = Vec::new();
        each!(self, |worker| fresh.extend(worker.fresh(caught_up)));
        fresh
    }

    /// Hands a record to every worker of its topic.
    pub(crate) async fn handle(
        &mut self,
        io: &Io<'_>,
        topic: &str,
        record: &Received,
    ) -> Result<(), HandleError> {
        each!(self, |worker| {
            if worker.topic() == topic {
                worker.handle(io, record).await?;
            }
        });
        Ok(())
    }
}
