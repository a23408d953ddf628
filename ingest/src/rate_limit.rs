//! Token buckets per API key (`governor`): a key's own `rate_limit` from the
//! keys file, else `--rate-limit` per second, with a burst of one second's
//! worth.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use schemas::keys::Principal;

/// Per-key limiters, created on a key's first request.
#[derive(Debug, Clone)]
pub struct RateLimits {
    default_per_second: NonZeroU32,
    limiters: Arc<Mutex<HashMap<String, Arc<DefaultDirectRateLimiter>>>>,
}

impl RateLimits {
    /// Limits of `default_per_second` for keys without their own.
    pub fn new(default_per_second: u32) -> Self {
        Self {
            default_per_second: NonZeroU32::new(default_per_second).unwrap_or(NonZeroU32::MIN),
            limiters: Arc::default(),
        }
    }

    /// Takes one token for `principal`, or says how long until one is free.
    ///
    /// # Errors
    ///
    /// The wait before a retry can succeed.
    pub fn check(&self, principal: &Principal) -> Result<(), Duration> {
        let limiter = {
            let mut limiters = self.limiters.lock().unwrap_or_else(PoisonError::into_inner);
            limiters
                .entry(principal.key_id.clone())
                .or_insert_with(|| {
                    let per_second = principal
                        .rate_limit
                        .and_then(NonZeroU32::new)
                        .unwrap_or(self.default_per_second);
                    Arc::new(RateLimiter::direct(Quota::per_second(per_second)))
                })
                .clone()
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(key_id: &str, rate_limit: Option<u32>) -> Principal {
        Principal {
            key_id: key_id.into(),
            application: "app".into(),
            scopes: vec![],
            rate_limit,
            destinations: None,
        }
    }

    #[test]
    fn each_key_has_its_own_bucket() {
        let limits = RateLimits::new(3);
        let (a, b) = (principal("a", None), principal("b", Some(1)));
        assert!((0..3).all(|_| limits.check(&a).is_ok()));
        let wait = limits.check(&a).expect_err("a's burst is spent");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1));
        assert!(limits.check(&b).is_ok());
        assert!(limits.check(&b).is_err(), "b has its own limit of 1/s");
    }
}
