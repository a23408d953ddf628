//! How stale each topic's stored rows may be: seconds since its partitions
//! were last all read and flushed, as `eventide_processor_freshness_seconds`.

use std::collections::HashMap;
use std::time::Instant;

/// When each (logical topic, partition) was last fresh.
#[derive(Debug, Default)]
pub(crate) struct Freshness {
    last: HashMap<(&'static str, i32), Instant>,
}

impl Freshness {
    /// Notes the partitions fresh now and sets each topic's gauge to its
    /// stalest partition's age.
    pub(crate) fn observe(&mut self, fresh: &[(&'static str, i32)]) {
        let now = Instant::now();
        for partition in fresh {
            self.last.insert(*partition, now);
        }
        let mut stalest: HashMap<&'static str, f64> = HashMap::new();
        for ((topic, _), at) in &self.last {
            let age = now.duration_since(*at).as_secs_f64();
            let entry = stalest.entry(topic).or_default();
            *entry = entry.max(age);
        }
        for (topic, age) in stalest {
            metrics::gauge!(crate::metrics::FRESHNESS_SECONDS, "topic" => topic).set(age);
        }
    }
}
