//! The logical topics of DESIGN.md and how they map to physical names.

use std::fmt;

/// A logical topic. Code names topics by this enum; [`TopicNames`] turns it
/// into the physical name on the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Short-link clicks, keyed by short code.
    Redirects,
    /// Counter increments, keyed by counter key.
    Increments,
    /// Behaviour and app events, keyed by session id.
    Events,
    /// Rule notifications, keyed by user or session id.
    Notifications,
    /// Requests ingest refused, keyed by application id.
    IngestRejects,
    /// Records that could not be processed or delivered, keyed by original key.
    DeadLetters,
    /// Whether each webhook destination is paused, keyed by destination
    /// name; compacted, the newest record per key is the state.
    DestinationStates,
    /// What each delivery replica last saw of each destination (last
    /// success, last error), keyed by destination and replica; compacted.
    DestinationHealth,
    /// Dead-lettered records sent back to the stage that gave up on them,
    /// keyed by the original key.
    Replays,
}

impl Topic {
    /// Every topic, in a stable order.
    pub const ALL: [Topic; 9] = [
        Topic::Redirects,
        Topic::Increments,
        Topic::Events,
        Topic::Notifications,
        Topic::IngestRejects,
        Topic::DeadLetters,
        Topic::DestinationStates,
        Topic::DestinationHealth,
        Topic::Replays,
    ];

    /// The default physical name (without prefix).
    pub fn default_name(self) -> &'static str {
        match self {
            Topic::Redirects => "redirects",
            Topic::Increments => "increments",
            Topic::Events => "events",
            Topic::Notifications => "notifications",
            Topic::IngestRejects => "ingest-rejects",
            Topic::DeadLetters => "dead-letters",
            Topic::DestinationStates => "destination-states",
            Topic::DestinationHealth => "destination-health",
            Topic::Replays => "replays",
        }
    }

    /// The side topics: written only when something is refused, fails or a
    /// rule fires, read by the processor's error log and by delivery. They
    /// get their own, smaller partition count: every partition a consumer
    /// holds costs the broker a read on every fetch, busy or not.
    pub fn is_low_volume(self) -> bool {
        matches!(
            self,
            Topic::Notifications
                | Topic::IngestRejects
                | Topic::DeadLetters
                | Topic::DestinationStates
                | Topic::DestinationHealth
                | Topic::Replays
        )
    }

    /// Whether the topic is compacted (the newest record per key is kept
    /// forever) rather than deleted after the retention period: a state
    /// must outlive any retention.
    pub fn is_compacted(self) -> bool {
        matches!(self, Topic::DestinationStates | Topic::DestinationHealth)
    }
}

/// How many partitions each topic is created with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicPartitions {
    /// Redirects, increments and events: the processor's parallelism.
    pub data: i32,
    /// Notifications, ingest-rejects and dead-letters ([`Topic::is_low_volume`]).
    pub low_volume: i32,
}

impl TopicPartitions {
    /// The partition count of `topic`.
    pub fn of(self, topic: Topic) -> i32 {
        if topic.is_low_volume() {
            self.low_volume
        } else {
            self.data
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.default_name())
    }
}

/// Maps logical topics to physical names: an optional prefix lets several
/// deployments (or tests) share one cluster without sharing topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicNames {
    prefix: String,
}

impl TopicNames {
    /// Names with `prefix` prepended to every default name.
    pub fn with_prefix(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// The physical topic name.
    pub fn name(&self, topic: Topic) -> String {
        format!("{}{}", self.prefix, topic.default_name())
    }

    /// The registry subject under the topic name strategy: `<topic>-value`.
    pub fn value_subject(&self, topic: Topic) -> String {
        format!("{}-value", self.name(topic))
    }

    /// The logical topic a physical name belongs to, if any.
    pub fn logical(&self, physical: &str) -> Option<Topic> {
        let bare = physical.strip_prefix(self.prefix.as_str())?;
        Topic::ALL.into_iter().find(|t| t.default_name() == bare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_topics_get_the_low_volume_count() {
        let partitions = TopicPartitions {
            data: 4,
            low_volume: 1,
        };
        let counts: Vec<(Topic, i32)> = Topic::ALL
            .iter()
            .map(|topic| (*topic, partitions.of(*topic)))
            .collect();
        assert_eq!(
            counts,
            [
                (Topic::Redirects, 4),
                (Topic::Increments, 4),
                (Topic::Events, 4),
                (Topic::Notifications, 1),
                (Topic::IngestRejects, 1),
                (Topic::DeadLetters, 1),
                (Topic::DestinationStates, 1),
                (Topic::DestinationHealth, 1),
                (Topic::Replays, 1),
            ]
        );
    }

    #[test]
    fn prefixed_names_round_trip_to_logical_topics() {
        let names = TopicNames::with_prefix("t42.");
        for topic in Topic::ALL {
            let physical = names.name(topic);
            assert!(physical.starts_with("t42."));
            assert_eq!(names.logical(&physical), Some(topic));
        }
        assert_eq!(names.logical("increments"), None);
        assert_eq!(
            names.value_subject(Topic::IngestRejects),
            "t42.ingest-rejects-value"
        );
    }
}
