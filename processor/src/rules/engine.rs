//! One events partition's rule state, without I/O: pending absence timers,
//! open durations and the partition's watermark, and the notifications they
//! produce.
//!
//! Everything runs on event time. A timer fires when the partition's
//! watermark (highest event time seen minus the allowed lateness) passes its
//! due time, when the awaited event arrives too late, or — so a quiet user is
//! still nudged — when processing time passes the due time plus the idle
//! grace while the partition has been idle that long. Notification ids are
//! derived from (rule, user, triggering event), so a timer that fires again
//! after a crash produces the same notification (fires once in effect).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use schemas::{Event, Notification};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::checkpoint::Checkpoint;
use crate::rules::definition::{MessageValues, Rule, Rules, Shape, format_seconds};

/// When timers fire.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// How far behind the highest event time seen the watermark stays.
    pub allowed_lateness: Duration,
    /// How long a partition must be idle before timers fire on processing time.
    pub idle_grace: Duration,
}

/// What a piece of rule state is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// An absence rule waiting for its awaited event.
    Timer,
    /// A duration rule's start waiting for its end.
    Open,
}

impl Kind {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Timer => "timer",
            Kind::Open => "open",
        }
    }

    /// From the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "timer" => Some(Kind::Timer),
            "open" => Some(Kind::Open),
            _ => None,
        }
    }
}

/// Whose state it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StateKey {
    pub kind: Kind,
    pub rule: Arc<str>,
    pub user: String,
    /// The correlation value of a duration rule; empty for timers.
    pub correlation: String,
}

/// A pending timer or open duration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// Due time of a timer, start time of an open duration (micros).
    pub at: i64,
    /// The event that started it.
    pub event_id: String,
    pub device_id: Option<String>,
}

/// One row of stored rule state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRow {
    pub key: StateKey,
    pub pending: Pending,
}

/// What a rules flush writes.
#[derive(Debug, Clone, Default)]
pub struct RulesBatch {
    pub expected_next_offset: i64,
    pub next_offset: i64,
    pub watermark: Option<i64>,
    pub upserts: Vec<StateRow>,
    pub deletes: Vec<StateKey>,
}

/// One partition's rule state.
#[derive(Debug)]
pub struct PartitionRules {
    checkpoint: Checkpoint,
    /// Highest event time seen (micros).
    max_event_time: Option<i64>,
    stored_max_event_time: Option<i64>,
    pending: HashMap<StateKey, Pending>,
    /// Timers by due time.
    due: BTreeSet<(i64, StateKey)>,
    changed: HashSet<StateKey>,
    last_activity: Instant,
}

impl PartitionRules {
    /// State as stored: checkpoint, highest event time and pending rows.
    /// Rows of rules no longer configured are left out.
    pub fn restore(
        next_offset: i64,
        max_event_time: Option<i64>,
        rows: Vec<StateRow>,
        rules: &Rules,
    ) -> Self {
        let mut state = Self {
            checkpoint: Checkpoint::restore(next_offset),
            max_event_time,
            stored_max_event_time: max_event_time,
            pending: HashMap::new(),
            due: BTreeSet::new(),
            changed: HashSet::new(),
            last_activity: Instant::now(),
        };
        for row in rows {
            match rules.get(&row.key.rule) {
                Some(rule) => {
                    let key = StateKey {
                        rule: rule.name.clone(),
                        ..row.key
                    };
                    state.insert(key, row.pending);
                }
                None => {
                    // The rule was removed: forget its state at the next flush.
                    state.changed.insert(row.key);
                }
            }
        }
        state
    }

    /// How many timers and open durations are pending.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Runs the rules on `event` at `offset`; `None` if the store already
    /// includes it, else the notifications it fires, in firing order.
    pub fn apply(
        &mut self,
        rules: &Rules,
        timing: Timing,
        offset: i64,
        event: &Event,
        now: i64,
    ) -> Option<Vec<Notification>> {
        self.last_activity = Instant::now();
        if !self.checkpoint.admit(offset) {
            return None;
        }
        let time = event.occurred_at;
        self.max_event_time = Some(self.max_event_time.map_or(time, |max| max.max(time)));
        let mut fired = Vec::new();
        if let Some(watermark) = self.watermark(timing) {
            self.fire_due(rules, watermark, now, &mut fired);
        }
        let user = event.user_id.as_deref().unwrap_or(&event.session_id);
        for rule in rules.iter().filter(|rule| rule.category == event.category) {
            match &rule.shape {
                Shape::Absence { on, expect, within } => {
                    let key = StateKey {
                        kind: Kind::Timer,
                        rule: rule.name.clone(),
                        user: user.to_owned(),
                        correlation: String::new(),
                    };
                    if &event.name == expect
                        && let Some(timer) = self.remove(&key)
                    {
                        // The awaited event came, but later than the window.
                        if time > timer.at {
                            fired.push(absence(rule, &key, &timer, *within, now));
                        }
                    }
                    if &event.name == on && !self.pending.contains_key(&key) {
                        let timer = Pending {
                            at: time.saturating_add(*within),
                            event_id: event.event_id.to_string(),
                            device_id: event.device_id.clone(),
                        };
                        self.insert(key, timer);
                    }
                }
                Shape::Duration {
                    start,
                    end,
                    cancel,
                    correlate,
                    longer_than,
                } => {
                    let is_start = &event.name == start;
                    let is_end = &event.name == end;
                    let is_cancel = cancel.contains(&event.name);
                    if !(is_start || is_end || is_cancel) {
                        continue;
                    }
                    let Some(correlation) = correlation_value(&event.data, correlate) else {
                        continue;
                    };
                    let key = StateKey {
                        kind: Kind::Open,
                        rule: rule.name.clone(),
                        user: user.to_owned(),
                        correlation,
                    };
                    if is_start {
                        let open = Pending {
                            at: time,
                            event_id: event.event_id.to_string(),
                            device_id: event.device_id.clone(),
                        };
                        self.insert(key, open);
                    } else if let Some(open) = self.remove(&key)
                        && is_end
                    {
                        let lasted = time - open.at;
                        if lasted > *longer_than {
                            fired.push(duration(rule, &key, &open, event, lasted, now));
                        }
                    }
                }
            }
        }
        Some(fired)
    }

    /// Fires timers on processing time if the partition has been idle for
    /// the idle grace: each timer whose due time plus the grace has passed.
    pub fn tick(&mut self, rules: &Rules, timing: Timing, now: i64) -> Vec<Notification> {
        let mut fired = Vec::new();
        if self.last_activity.elapsed() < timing.idle_grace {
            return fired;
        }
        let grace = i64::try_from(timing.idle_grace.as_micros()).unwrap_or(i64::MAX);
        self.fire_due(rules, now.saturating_sub(grace), now, &mut fired);
        fired
    }

    /// Highest event time seen minus the allowed lateness.
    fn watermark(&self, timing: Timing) -> Option<i64> {
        let lateness = i64::try_from(timing.allowed_lateness.as_micros()).unwrap_or(i64::MAX);
        self.max_event_time.map(|max| max.saturating_sub(lateness))
    }

    fn fire_due(&mut self, rules: &Rules, through: i64, now: i64, fired: &mut Vec<Notification>) {
        while let Some((due, _)) = self.due.first()
            && *due <= through
        {
            let Some((_, key)) = self.due.pop_first() else {
                break;
            };
            let Some(timer) = self.remove(&key) else {
                continue;
            };
            if let Some(rule) = rules.get(&key.rule)
                && let Shape::Absence { within, .. } = rule.shape
            {
                fired.push(absence(rule, &key, &timer, within, now));
            }
        }
    }

    fn insert(&mut self, key: StateKey, pending: Pending) {
        if key.kind == Kind::Timer {
            self.due.insert((pending.at, key.clone()));
        }
        if let Some(old) = self.pending.insert(key.clone(), pending)
            && key.kind == Kind::Timer
        {
            self.due.remove(&(old.at, key.clone()));
        }
        self.changed.insert(key);
    }

    fn remove(&mut self, key: &StateKey) -> Option<Pending> {
        let pending = self.pending.remove(key)?;
        if key.kind == Kind::Timer {
            self.due.remove(&(pending.at, key.clone()));
        }
        self.changed.insert(key.clone());
        Some(pending)
    }
}

/// A correlation field's value as text (strings as they are, numbers printed).
fn correlation_value(data: &str, field: &str) -> Option<String> {
    let data: serde_json::Value = serde_json::from_str(data).ok()?;
    match data.get(field)? {
        serde_json::Value::String(text) => Some(text.clone()),
        serde_json::Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// `micros` as an RFC 3339 UTC time.
fn rfc3339(micros: i64) -> String {
    chrono::DateTime::from_timestamp_micros(micros)
        .map(|time| time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
        .unwrap_or_default()
}

/// The deterministic notification id of (rule, user, triggering event).
pub fn notification_id(rule: &str, user: &str, trigger_event_id: &str) -> String {
    let digest = Sha256::new()
        .chain_update(rule.as_bytes())
        .chain_update([0])
        .chain_update(user.as_bytes())
        .chain_update([0])
        .chain_update(trigger_event_id.as_bytes())
        .finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn absence(rule: &Rule, key: &StateKey, timer: &Pending, within: i64, now: i64) -> Notification {
    let late_by = now.saturating_sub(timer.at).max(0);
    let data = json!({
        "kind": "absence",
        "trigger_event_id": timer.event_id,
        "window_seconds": within / 1_000_000,
        "due_at": rfc3339(timer.at),
        "late_by_seconds": format_seconds(late_by).parse::<f64>().unwrap_or_default(),
    });
    Notification {
        event_id: notification_id(&rule.name, &key.user, &timer.event_id),
        occurred_at: timer.at,
        received_at: now,
        rule: rule.name.to_string(),
        user_id: key.user.clone(),
        device_id: timer.device_id.clone(),
        message: rule.message.render(MessageValues {
            user_id: &key.user,
            rule: &rule.name,
            micros: within,
        }),
        data: data.to_string(),
        trigger_event_id: timer.event_id.clone(),
        late_by_micros: late_by,
    }
}

fn duration(
    rule: &Rule,
    key: &StateKey,
    open: &Pending,
    end: &Event,
    lasted: i64,
    now: i64,
) -> Notification {
    let end_id = end.event_id.to_string();
    let data = json!({
        "kind": "duration",
        "correlation": key.correlation,
        "started_at": rfc3339(open.at),
        "finished_at": rfc3339(end.occurred_at),
        "minutes": lasted / 60_000_000,
        "seconds": format_seconds(lasted).parse::<f64>().unwrap_or_default(),
        "start_event_id": open.event_id,
    });
    Notification {
        event_id: notification_id(&rule.name, &key.user, &end_id),
        occurred_at: end.occurred_at,
        received_at: now,
        rule: rule.name.to_string(),
        user_id: key.user.clone(),
        device_id: end.device_id.clone().or_else(|| open.device_id.clone()),
        message: rule.message.render(MessageValues {
            user_id: &key.user,
            rule: &rule.name,
            micros: lasted,
        }),
        data: data.to_string(),
        trigger_event_id: end_id,
        late_by_micros: 0,
    }
}

impl crate::checkpoint::Partitioned for PartitionRules {
    fn checkpoint(&self) -> &Checkpoint {
        &self.checkpoint
    }

    fn checkpoint_mut(&mut self) -> &mut Checkpoint {
        &mut self.checkpoint
    }

    /// Whether anything changed since the last flush: records, timers or
    /// the highest event time.
    /// Whether a flush has anything to write.
    fn has_changes(&self) -> bool {
        self.checkpoint.has_changes()
            || !self.changed.is_empty()
            || self.max_event_time != self.stored_max_event_time
    }
}

impl crate::store::Stored for PartitionRules {
    type Setup = Rules;
    type Batch = RulesBatch;

    /// What a flush must write now.
    fn batch(&self) -> RulesBatch {
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        for key in &self.changed {
            match self.pending.get(key) {
                Some(pending) => upserts.push(StateRow {
                    key: key.clone(),
                    pending: pending.clone(),
                }),
                None => deletes.push(key.clone()),
            }
        }
        RulesBatch {
            expected_next_offset: self.checkpoint.stored(),
            next_offset: self.checkpoint.next_offset(),
            watermark: self.max_event_time,
            upserts,
            deletes,
        }
    }

    /// Records that a batch is stored.
    fn flushed(&mut self, batch: &RulesBatch) {
        self.checkpoint.flushed(batch.next_offset);
        self.stored_max_event_time = batch.watermark;
        for row in &batch.upserts {
            // Unchanged since the batch was taken: stored.
            if self.pending.get(&row.key) == Some(&row.pending) {
                self.changed.remove(&row.key);
            }
        }
        for key in &batch.deletes {
            if !self.pending.contains_key(key) {
                self.changed.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::Partitioned;
    use crate::store::Stored;
    use uuid::Uuid;

    const MINUTE: i64 = 60_000_000;

    fn timing() -> Timing {
        Timing {
            allowed_lateness: Duration::from_secs(5),
            idle_grace: Duration::from_secs(3600),
        }
    }

    /// `2021-02-28 16:22:52`-style time of the reference, in micros.
    fn at(text: &str) -> i64 {
        let time = chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
            .expect("reference timestamp");
        time.and_utc().timestamp_micros()
    }

    fn event(user: &str, name: &str, time: i64, program: Option<&str>) -> Event {
        let data = match program {
            Some(id) => json!({"training_program_id": id}),
            None => json!({}),
        };
        Event {
            event_id: Uuid::new_v4(),
            occurred_at: time,
            received_at: time,
            application_id: "fitness".into(),
            session_id: user.into(),
            category: "app".into(),
            name: name.into(),
            data: data.to_string(),
            known_type: true,
            user_id: Some(user.into()),
            device_id: Some(format!("device-{user}")),
            idempotency_key: None,
            destinations: None,
        }
    }

    struct Run {
        state: PartitionRules,
        rules: Rules,
        offset: i64,
        fired: Vec<Notification>,
    }

    impl Run {
        fn new() -> Self {
            let rules = Rules::default_rules().expect("default rules");
            Self {
                state: PartitionRules::restore(0, None, Vec::new(), &rules),
                rules,
                offset: 0,
                fired: Vec::new(),
            }
        }

        fn send(&mut self, event: &Event) {
            let fired = self
                .state
                .apply(&self.rules, timing(), self.offset, event, event.occurred_at)
                .expect("new offset");
            self.offset += 1;
            self.fired.extend(fired);
        }

        fn rules_fired(&self) -> Vec<(&str, &str)> {
            self.fired
                .iter()
                .map(|n| (n.rule.as_str(), n.user_id.as_str()))
                .collect()
        }
    }

    #[test]
    fn the_reference_snapshot_congratulates_foo1_and_nudges_foo2() {
        let mut run = Run::new();
        run.send(&event(
            "foo2",
            "app_launch",
            at("2021-02-28 16:22:52"),
            None,
        ));
        run.send(&event(
            "foo1",
            "training_program_started",
            at("2021-02-28 16:23:25"),
            Some("2352"),
        ));
        run.send(&event(
            "foo2",
            "training_program_started",
            at("2021-02-28 16:52:00"),
            Some("2352"),
        ));
        run.send(&event(
            "foo2",
            "training_program_cancelled",
            at("2021-02-28 16:54:21"),
            Some("2352"),
        ));
        run.send(&event(
            "foo1",
            "training_program_finished",
            at("2021-02-28 16:59:43"),
            Some("2352"),
        ));
        assert_eq!(
            run.rules_fired(),
            [
                ("training-nudge", "foo2"),
                ("daily-dose-congratulation", "foo1")
            ]
        );
        let congratulation = &run.fired[1];
        assert!(
            congratulation.message.contains("36 minutes"),
            "{}",
            congratulation.message
        );
        let data: serde_json::Value = serde_json::from_str(&congratulation.data).expect("json");
        assert_eq!(data["seconds"], 2178.0);
        assert_eq!(congratulation.device_id.as_deref(), Some("device-foo1"));
        let nudge = &run.fired[0];
        assert_eq!(nudge.occurred_at, at("2021-02-28 16:32:52"));
    }

    #[test]
    fn exactly_thirty_minutes_or_a_cancelled_program_do_not_qualify() {
        let mut run = Run::new();
        let start = at("2021-03-01 08:00:00");
        run.send(&event("a", "training_program_started", start, Some("1")));
        run.send(&event(
            "a",
            "training_program_finished",
            start + 30 * MINUTE,
            Some("1"),
        ));
        run.send(&event("b", "training_program_started", start, Some("1")));
        run.send(&event(
            "b",
            "training_program_cancelled",
            start + 40 * MINUTE,
            Some("1"),
        ));
        run.send(&event(
            "b",
            "training_program_finished",
            start + 41 * MINUTE,
            Some("1"),
        ));
        // Another program's finish does not close this one.
        run.send(&event("c", "training_program_started", start, Some("1")));
        run.send(&event(
            "c",
            "training_program_finished",
            start + 45 * MINUTE,
            Some("2"),
        ));
        assert!(run.fired.is_empty(), "{:?}", run.rules_fired());
        run.send(&event(
            "c",
            "training_program_finished",
            start + 30 * MINUTE + 1,
            Some("1"),
        ));
        assert_eq!(run.rules_fired(), [("daily-dose-congratulation", "c")]);
        assert!(run.fired[0].message.contains("30 minutes"));
    }

    #[test]
    fn a_start_within_the_window_cancels_the_nudge_and_one_after_it_does_not() {
        let mut run = Run::new();
        let launch = at("2021-03-01 09:00:00");
        run.send(&event("early", "app_launch", launch, None));
        run.send(&event(
            "early",
            "training_program_started",
            launch + 9 * MINUTE + 59_000_000,
            Some("1"),
        ));
        run.send(&event("exact", "app_launch", launch, None));
        run.send(&event(
            "exact",
            "training_program_started",
            launch + 10 * MINUTE,
            Some("1"),
        ));
        assert!(run.fired.is_empty(), "{:?}", run.rules_fired());
        // Started 10:01 after the launch: the window passed; the late start
        // fires the nudge at once, before the watermark does.
        run.send(&event("late", "app_launch", launch, None));
        run.send(&event(
            "late",
            "training_program_started",
            launch + 10 * MINUTE + 1_000_000,
            Some("1"),
        ));
        assert_eq!(run.rules_fired(), [("training-nudge", "late")]);
    }

    #[test]
    fn a_repeated_launch_while_a_nudge_is_pending_gives_one_nudge() {
        let mut run = Run::new();
        let launch = at("2021-03-01 09:00:00");
        run.send(&event("u", "app_launch", launch, None));
        run.send(&event("u", "app_launch", launch + 2 * MINUTE, None));
        // Another user's event moves the watermark past the first due time.
        run.send(&event(
            "other",
            "profile_viewed",
            launch + 20 * MINUTE,
            None,
        ));
        assert_eq!(run.rules_fired(), [("training-nudge", "u")]);
        assert_eq!(run.fired[0].occurred_at, launch + 10 * MINUTE);
        assert_eq!(run.state.pending_len(), 0);
    }

    #[test]
    fn an_idle_partition_fires_due_timers_on_processing_time_and_says_how_late() {
        let rules = Rules::default_rules().expect("rules");
        let timing = Timing {
            allowed_lateness: Duration::from_secs(5),
            idle_grace: Duration::ZERO,
        };
        let mut state = PartitionRules::restore(0, None, Vec::new(), &rules);
        let launch = at("2021-03-01 09:00:00");
        let fired = state
            .apply(
                &rules,
                timing,
                0,
                &event("u", "app_launch", launch, None),
                launch,
            )
            .expect("applied");
        assert!(fired.is_empty());
        assert!(state.tick(&rules, timing, launch + 9 * MINUTE).is_empty());
        let now = launch + 25 * MINUTE;
        let fired = state.tick(&rules, timing, now);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].late_by_micros, 15 * MINUTE);
        assert!(state.tick(&rules, timing, now).is_empty(), "fires once");
    }

    #[test]
    fn state_survives_a_flush_and_restore_and_fires_with_the_same_id() {
        let rules = Rules::default_rules().expect("rules");
        let mut state = PartitionRules::restore(0, None, Vec::new(), &rules);
        let launch = at("2021-03-01 09:00:00");
        let trigger = event("u", "app_launch", launch, None);
        state.apply(&rules, timing(), 0, &trigger, launch);
        let batch = state.batch();
        assert_eq!(batch.upserts.len(), 1);
        state.flushed(&batch);
        assert!(!state.has_changes());
        let mut restored =
            PartitionRules::restore(batch.next_offset, batch.watermark, batch.upserts, &rules);
        assert!(
            restored
                .apply(&rules, timing(), 0, &trigger, launch)
                .is_none(),
            "replayed offsets are skipped"
        );
        let fired = restored.tick(
            &rules,
            Timing {
                idle_grace: Duration::ZERO,
                ..timing()
            },
            launch + 11 * MINUTE,
        );
        let before_crash = state.tick(
            &rules,
            Timing {
                idle_grace: Duration::ZERO,
                ..timing()
            },
            launch + 11 * MINUTE,
        );
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].event_id, before_crash[0].event_id);
        assert_eq!(
            fired[0].event_id,
            notification_id("training-nudge", "u", &trigger.event_id.to_string())
        );
        let batch = restored.batch();
        assert_eq!(batch.deletes.len(), 1, "the fired timer is deleted");
    }
}
