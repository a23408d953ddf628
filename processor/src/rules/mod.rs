//! Session rules: declarative rules of known shapes (absence, duration) run
//! on event time over the `events` topic, with durable per-partition timers,
//! producing notifications with deterministic ids to the `notifications`
//! topic (DESIGN.md guarantee 5).
//!
//! - [`definition`]: the rules file and its load-time checks.
//! - [`engine`]: one partition's timers and open durations, without I/O.
//! - [`notifier`]: writes fired notifications to Kafka and settles them
//!   before the partition's checkpoint moves past their trigger.

pub mod definition;
pub mod engine;
pub mod notifier;

use std::sync::Arc;

pub use definition::{Rules, RulesError};
pub use engine::{PartitionRules, Timing};
pub use notifier::{Notifier, NotifyError};

/// What the rules worker shares across its partitions.
#[derive(Debug)]
pub struct RulesContext {
    pub rules: Arc<Rules>,
    pub timing: Timing,
    pub notifier: Notifier,
}
