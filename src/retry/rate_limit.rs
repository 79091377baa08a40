//! Per-endpoint rate limiting as a pure token bucket ([`RateLimit`], [`TokenBucket`]).

use std::time::Duration;

use super::time::duration_to_millis;
use super::{ConfigError, UnixMillis};

/// The burst the task-hub preset allows on top of its 60 requests a minute (seed 004).
///
/// 004 states its limit as a budget per minute ("60 requests per minute per endpoint", with a
/// `X-RateLimit-Reset` time when the window resets), so a handful of events published
/// together need not be spread one a second: up to 10 go at once, then the bucket refills at
/// one a second. Over a long backlog the rate is still 60 a minute; a full burst followed by
/// a minute of sending puts at most `60 + 10 - 1 = 69` requests in a 60-second span.
pub const TASK_HUB_BURST: u32 = 10;

/// A rate: `requests` per `interval`, allowing bursts of up to `burst` requests.
///
/// With `burst = 1` requests are strictly paced, one every `interval / requests`; a backlog
/// after an outage then drains at the rate, never in one burst.
///
/// ```
/// use hookrelay::retry::RateLimit;
/// use std::time::Duration;
///
/// let limit = RateLimit::new(60, Duration::from_secs(60), 1)?;
/// assert_eq!(limit, RateLimit::per_minute(60)?);
/// # Ok::<(), hookrelay::retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    requests: u32,
    interval_ms: u64,
    burst: u32,
}

impl RateLimit {
    /// `requests` per `interval`, bursts of up to `burst`. All three must be non-zero (the
    /// interval at least one millisecond).
    pub fn new(requests: u32, interval: Duration, burst: u32) -> Result<Self, ConfigError> {
        let interval_ms = duration_to_millis(interval);
        if requests == 0 {
            return Err(ConfigError::ZeroCount("requests per interval"));
        }
        if interval_ms == 0 {
            return Err(ConfigError::ZeroDuration("rate-limit interval"));
        }
        if burst == 0 {
            return Err(ConfigError::ZeroCount("burst"));
        }
        Ok(RateLimit {
            requests,
            interval_ms,
            burst,
        })
    }

    /// `requests` per minute, strictly paced (burst 1): `per_minute(60)` is one request per
    /// second. (The task-hub preset allows bursts: see [`TASK_HUB_BURST`].)
    pub fn per_minute(requests: u32) -> Result<Self, ConfigError> {
        Self::new(requests, Duration::from_secs(60), 1)
    }

    /// Requests allowed per interval.
    pub fn requests(&self) -> u32 {
        self.requests
    }

    /// The interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(self.interval_ms)
    }

    /// The largest burst.
    pub fn burst(&self) -> u32 {
        self.burst
    }
}

/// The answer of [`TokenBucket::try_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acquire {
    /// A token was taken: send now.
    Ready,
    /// No token: ask again after this long. Nothing was taken.
    Wait(Duration),
}

/// A token bucket for one endpoint. Pure: the caller passes the time, the bucket never sleeps.
///
/// Arithmetic is exact integer arithmetic in "token-milliseconds": each millisecond adds
/// `requests` units, each request costs `interval` (in ms) units, and the bucket holds at most
/// `burst × interval` units. The bucket starts full. A clock that steps backwards adds nothing.
///
/// ```
/// use hookrelay::retry::{Acquire, RateLimit, TokenBucket, UnixMillis};
/// use std::time::Duration;
///
/// let t0 = UnixMillis::from_secs(1_700_000_000);
/// let mut bucket = TokenBucket::new(RateLimit::per_minute(60)?, t0);
/// assert_eq!(bucket.try_acquire(t0), Acquire::Ready);
/// assert_eq!(bucket.try_acquire(t0), Acquire::Wait(Duration::from_secs(1)));
/// # Ok::<(), hookrelay::retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenBucket {
    limit: RateLimit,
    level: u64,
    updated: UnixMillis,
}

impl TokenBucket {
    /// A full bucket for `limit`, as of `now`.
    pub fn new(limit: RateLimit, now: UnixMillis) -> Self {
        TokenBucket {
            limit,
            level: Self::capacity(&limit),
            updated: now,
        }
    }

    fn capacity(limit: &RateLimit) -> u64 {
        u64::from(limit.burst).saturating_mul(limit.interval_ms)
    }

    /// The configured rate.
    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    fn refill(&mut self, now: UnixMillis) {
        let elapsed = now.as_millis().saturating_sub(self.updated.as_millis());
        if elapsed > 0 {
            let added = elapsed.saturating_mul(u64::from(self.limit.requests));
            self.level = self
                .level
                .saturating_add(added)
                .min(Self::capacity(&self.limit));
            self.updated = now;
        }
    }

    /// Takes one token if there is one, or says how long until there will be.
    pub fn try_acquire(&mut self, now: UnixMillis) -> Acquire {
        self.refill(now);
        let cost = self.limit.interval_ms;
        if self.level >= cost {
            self.level -= cost;
            Acquire::Ready
        } else {
            let missing = cost - self.level;
            let requests = u64::from(self.limit.requests);
            Acquire::Wait(Duration::from_millis(missing.div_ceil(requests)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_zeroes() {
        assert!(RateLimit::new(0, Duration::from_secs(1), 1).is_err());
        assert!(RateLimit::new(1, Duration::from_micros(10), 1).is_err());
        assert!(RateLimit::new(1, Duration::from_secs(1), 0).is_err());
    }

    #[test]
    fn burst_then_paced() {
        let t0 = UnixMillis::from_secs(100);
        let limit = RateLimit::new(10, Duration::from_secs(1), 3).unwrap();
        let mut b = TokenBucket::new(limit, t0);
        for _ in 0..3 {
            assert_eq!(b.try_acquire(t0), Acquire::Ready);
        }
        assert_eq!(b.try_acquire(t0), Acquire::Wait(Duration::from_millis(100)));
        let t1 = t0.saturating_add(Duration::from_millis(99));
        assert_eq!(b.try_acquire(t1), Acquire::Wait(Duration::from_millis(1)));
        let t2 = t0.saturating_add(Duration::from_millis(100));
        assert_eq!(b.try_acquire(t2), Acquire::Ready);
    }

    #[test]
    fn clock_going_backwards_adds_nothing() {
        let t0 = UnixMillis::from_secs(100);
        let mut b = TokenBucket::new(RateLimit::per_minute(60).unwrap(), t0);
        assert_eq!(b.try_acquire(t0), Acquire::Ready);
        assert!(matches!(
            b.try_acquire(UnixMillis::from_secs(50)),
            Acquire::Wait(_)
        ));
        assert_eq!(
            b.try_acquire(t0),
            Acquire::Wait(Duration::from_secs(1)),
            "the earlier time did not move the bucket's clock back"
        );
    }
}
