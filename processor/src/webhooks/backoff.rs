//! Retry delays: exponential backoff with full jitter (AWS Architecture
//! Blog, "Exponential Backoff And Jitter"): attempt `n` waits a uniformly
//! random time in `[0, min(cap, initial * factor^n)]`, so failing
//! deliveries spread out instead of retrying in lockstep.

use std::time::Duration;

/// When to retry and when to give up.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub cap: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Give up once this much time has passed since the first attempt.
    pub max_elapsed: Option<Duration>,
}

impl Backoff {
    /// The ceiling of the wait after failed attempt `attempt` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let grown = self.initial.as_secs_f64() * self.factor.powi(exponent);
        if !grown.is_finite() || grown >= self.cap.as_secs_f64() {
            self.cap
        } else {
            Duration::from_secs_f64(grown.max(0.0))
        }
    }

    /// A full-jitter wait after failed attempt `attempt`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        ceiling.mul_f64(rand::random::<f64>())
    }

    /// Whether another attempt may follow `attempts` failed ones begun
    /// `elapsed` ago.
    pub fn may_retry(&self, attempts: u32, elapsed: Duration) -> bool {
        attempts < self.max_attempts && self.max_elapsed.is_none_or(|limit| elapsed < limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backoff() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            factor: 2.0,
            cap: Duration::from_secs(1),
            max_attempts: 4,
            max_elapsed: Some(Duration::from_secs(60)),
        }
    }

    #[test]
    fn ceilings_grow_by_the_factor_up_to_the_cap() {
        let b = backoff();
        assert_eq!(b.ceiling(0), Duration::from_millis(100));
        assert_eq!(b.ceiling(2), Duration::from_millis(400));
        assert_eq!(b.ceiling(4), Duration::from_secs(1));
        assert_eq!(b.ceiling(1_000), Duration::from_secs(1));
    }

    #[test]
    fn delays_are_jittered_within_the_ceiling() {
        let b = backoff();
        let delays: Vec<Duration> = (0..200).map(|_| b.delay(3)).collect();
        assert!(delays.iter().all(|d| *d <= b.ceiling(3)));
        let distinct: std::collections::HashSet<Duration> = delays.iter().copied().collect();
        assert!(distinct.len() > 100, "full jitter spreads the delays");
    }

    #[test]
    fn attempts_and_elapsed_time_both_limit_retries() {
        let b = backoff();
        assert!(b.may_retry(3, Duration::from_secs(1)));
        assert!(!b.may_retry(4, Duration::from_secs(1)));
        assert!(!b.may_retry(1, Duration::from_secs(61)));
    }
}
