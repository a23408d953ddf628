//! A destination's request pace, without I/O: an optional configured
//! ceiling (`rate_limit`, requests/s), slowed down when the receiver says it
//! is overwhelmed (`429`, `503`) and sped up again while it keeps answering.
//!
//! Requests are spaced at least `1 / rate` apart, with no burst: any window
//! of `w` seconds holds at most `rate × w + 1` requests. A request asks for
//! the next slot and, when it is not yet due, waits until it is and asks
//! again: nobody holds a slot far ahead, so a rate that rises again speeds
//! up the requests already waiting. A throttling answer
//! halves the rate (from the configured ceiling, or from the rate just
//! observed when there is none) and, with `Retry-After`, holds every request
//! of the destination until then. Each second without a throttling answer
//! raises the rate by half, back up to the ceiling, or to no pacing at all
//! once it is well past the rate at which the receiver complained.

use std::time::{Duration, Instant};

/// The slowest a throttled destination goes, requests/s.
const FLOOR: f64 = 0.5;
/// How often the rate may rise.
const RISE_EVERY: Duration = Duration::from_secs(1);
/// Factor of each rise.
const RISE: f64 = 1.5;
/// With no ceiling, pacing stops once the rate is this many times the one
/// at which the receiver last complained.
const RELEASE: f64 = 4.0;

/// The pace of one destination.
#[derive(Debug)]
pub struct Pace {
    /// The configured ceiling.
    limit: Option<f64>,
    /// The rate now; `None` is unpaced.
    rate: Option<f64>,
    /// The earliest time the next request may go.
    next: Instant,
    /// When the rate last changed.
    changed: Instant,
    /// When the rate was last cut.
    cut: Option<Instant>,
    /// Requests begun in the current second, and when it began: the
    /// observed rate an unlimited destination is halved from.
    window: (Instant, u32),
    /// Requests in the last whole second.
    observed: u32,
    /// The rate at the last throttling answer.
    complained_at: f64,
}

impl Pace {
    /// A pace with ceiling `limit` (requests/s), unpaced when `None`.
    pub fn new(limit: Option<f64>, now: Instant) -> Self {
        let limit = limit.filter(|rate| rate.is_finite() && *rate > 0.0);
        Self {
            limit,
            rate: limit,
            next: now,
            changed: now,
            cut: None,
            window: (now, 0),
            observed: 0,
            complained_at: 0.0,
        }
    }

    /// Takes the slot if one is due at `now`; else `Err` with when the
    /// next one is, to ask again then.
    ///
    /// # Errors
    ///
    /// The time of the next slot, later than `now`.
    pub fn take(&mut self, now: Instant) -> Result<(), Instant> {
        if self.next > now {
            return Err(self.next);
        }
        self.roll(now);
        self.window.1 += 1;
        if let Some(rate) = self.rate {
            self.next = now + Duration::from_secs_f64(1.0 / rate);
        }
        Ok(())
    }

    /// The spacing of requests now; zero when unpaced.
    pub fn interval(&self) -> Duration {
        self.rate
            .map_or(Duration::ZERO, |rate| Duration::from_secs_f64(1.0 / rate))
    }

    /// The receiver answered `429` or `503`, asking to wait `retry_after`.
    pub fn throttled(&mut self, now: Instant, retry_after: Option<Duration>) {
        self.roll(now);
        let from = self
            .rate
            .unwrap_or_else(|| f64::from(self.observed.max(self.window.1)).max(1.0));
        // One cut per rise period: a burst of answers to requests already on
        // their way is one complaint, not twenty.
        if self
            .cut
            .is_none_or(|cut| now.duration_since(cut) >= RISE_EVERY)
        {
            self.complained_at = from;
            self.rate = Some((from / 2.0).max(FLOOR));
            self.changed = now;
            self.cut = Some(now);
        }
        if let Some(wait) = retry_after {
            self.next = self.next.max(now + wait);
        }
    }

    /// The receiver accepted a request.
    pub fn succeeded(&mut self, now: Instant) {
        let Some(rate) = self.rate else { return };
        if now.duration_since(self.changed) < RISE_EVERY || Some(rate) == self.limit {
            return;
        }
        let risen = rate * RISE;
        self.rate = match self.limit {
            Some(limit) => Some(risen.min(limit)),
            None if risen >= self.complained_at * RELEASE => None,
            None => Some(risen),
        };
        self.changed = now;
    }

    /// The rate now, requests/s; `None` when unpaced.
    pub fn rate(&self) -> Option<f64> {
        self.rate
    }

    /// Starts a new one-second window when the current one is over.
    fn roll(&mut self, now: Instant) {
        let (began, count) = self.window;
        if now.duration_since(began) >= Duration::from_secs(1) {
            self.observed = count;
            self.window = (now, 0);
        }
    }
}

/// A `Retry-After` value, in seconds or as an HTTP date, as a wait from `now`
/// (`None` if unreadable; a date in the past is no wait).
pub fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// When each of `n` requests, all asking from `now` and asking again
    /// when told, is sent.
    fn slots(pace: &mut Pace, now: Instant, n: usize) -> Vec<Duration> {
        let mut sent = Vec::new();
        let mut at = now;
        while sent.len() < n {
            match pace.take(at) {
                Ok(()) => sent.push(at.duration_since(now)),
                Err(next) => at = next,
            }
        }
        sent
    }

    #[test]
    fn a_limit_spaces_requests_evenly_without_a_burst() {
        let start = Instant::now();
        let mut pace = Pace::new(Some(20.0), start);
        let slots = slots(&mut pace, start, 201);
        assert_eq!(slots[0], Duration::ZERO);
        assert_eq!(slots[1], Duration::from_millis(50));
        // 201 requests asked for at once span 10 s: 20/s, never more.
        let last = slots[200].as_secs_f64();
        assert!((last - 10.0).abs() < 1e-6, "{last}");
    }

    #[test]
    fn waiting_requests_speed_up_when_the_rate_rises() {
        let start = Instant::now();
        let mut pace = Pace::new(Some(100.0), start);
        pace.throttled(start, None);
        pace.throttled(start + RISE_EVERY, None);
        assert_eq!(pace.rate(), Some(25.0));
        assert_eq!(pace.take(start + RISE_EVERY), Ok(()));
        let due = pace.take(start + RISE_EVERY).expect_err("paced");
        pace.succeeded(start + RISE_EVERY * 2);
        assert_eq!(pace.rate(), Some(37.5));
        assert_eq!(pace.take(due.max(start + RISE_EVERY * 2)), Ok(()));
        assert_eq!(pace.interval(), Duration::from_secs_f64(1.0 / 37.5));
    }

    #[test]
    fn unlimited_is_unpaced_until_the_receiver_complains() {
        let start = Instant::now();
        let mut pace = Pace::new(None, start);
        assert!(slots(&mut pace, start, 100).iter().all(Duration::is_zero));
        // 100 requests this second, then a 429: half that rate.
        pace.throttled(start + Duration::from_millis(1100), None);
        assert_eq!(pace.rate(), Some(50.0));
        // Further complaints within the second do not cut again.
        pace.throttled(start + Duration::from_millis(1200), None);
        assert_eq!(pace.rate(), Some(50.0));
        // Each quiet second raises it by half; pacing stops at 4x the 100/s
        // it complained at.
        let mut now = start + Duration::from_millis(1100);
        let mut rates = Vec::new();
        while let Some(rate) = pace.rate() {
            now += RISE_EVERY;
            pace.succeeded(now);
            rates.push(rate);
            assert!(rates.len() < 10, "{rates:?}");
        }
        assert_eq!(rates, [50.0, 75.0, 112.5, 168.75, 253.125, 379.6875]);
    }

    #[test]
    fn a_throttled_limit_recovers_to_the_limit_and_no_further() {
        let start = Instant::now();
        let mut pace = Pace::new(Some(100.0), start);
        pace.throttled(start, None);
        assert_eq!(pace.rate(), Some(50.0));
        for second in 1..10 {
            pace.succeeded(start + RISE_EVERY * second);
        }
        assert_eq!(pace.rate(), Some(100.0));
    }

    #[test]
    fn retry_after_holds_every_request_of_the_destination() {
        let start = Instant::now();
        let mut pace = Pace::new(None, start);
        pace.throttled(start, Some(Duration::from_secs(3)));
        assert_eq!(pace.take(start), Err(start + Duration::from_secs(3)));
        assert_eq!(pace.take(start + Duration::from_secs(3)), Ok(()));
    }

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(retry_after(" 7 ", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
    }
}
