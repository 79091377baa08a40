//! Endpoint health: [`AutoDisable`] (disable an endpoint that has failed for days) and
//! [`CircuitBreaker`] (pause an endpoint that is failing right now).

use std::time::Duration;

use super::time::duration_to_millis;
use super::{ConfigError, OutcomeClass, UnixMillis};

/// Why an endpoint was disabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DisableReason {
    /// It answered `410 Gone` (or another status classified
    /// [`OutcomeClass::DisableEndpoint`]).
    Gone,
    /// Every attempt since this instant failed, for longer than the window.
    FailingSince(UnixMillis),
}

/// What an observation changed; [`HealthChange::Disabled`] is reported once, at the
/// transition, so the caller can notify the endpoint's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HealthChange {
    /// Nothing worth reporting.
    Unchanged,
    /// A success after failures: the failure clock was reset.
    Recovered,
    /// The endpoint has just been disabled.
    Disabled(DisableReason),
}

/// Disables an endpoint after continuous failure for a window (default 5 days), or at once on
/// `410 Gone`. Any success resets the clock. Pure: the caller passes the time.
///
/// ```
/// use hookrelay::retry::{AutoDisable, DisableReason, HealthChange, OutcomeClass, UnixMillis};
/// use std::time::Duration;
///
/// let day = Duration::from_secs(86_400);
/// let t0 = UnixMillis::from_secs(1_700_000_000);
/// let mut health = AutoDisable::new(day * 5);
/// assert_eq!(health.observe(OutcomeClass::Retryable, t0), HealthChange::Unchanged);
/// assert_eq!(
///     health.observe(OutcomeClass::Retryable, t0.saturating_add(day * 5)),
///     HealthChange::Disabled(DisableReason::FailingSince(t0))
/// );
/// assert!(health.is_disabled());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoDisable {
    window_ms: u64,
    failing_since: Option<UnixMillis>,
    disabled: Option<DisableReason>,
}

impl Default for AutoDisable {
    /// A five-day window.
    fn default() -> Self {
        AutoDisable::new(AutoDisable::DEFAULT_WINDOW)
    }
}

impl AutoDisable {
    /// Five days, as Standard Webhooks senders commonly use.
    pub const DEFAULT_WINDOW: Duration = Duration::from_secs(5 * 24 * 60 * 60);

    /// Disables after failing continuously for `window` (a zero window disables on the first
    /// failure).
    pub fn new(window: Duration) -> Self {
        AutoDisable {
            window_ms: duration_to_millis(window),
            failing_since: None,
            disabled: None,
        }
    }

    /// Picks up a failure run that began at `failing_since` (as a store kept it), so that a
    /// restarted process does not start the clock afresh.
    pub fn resume(window: Duration, failing_since: Option<UnixMillis>) -> Self {
        AutoDisable {
            failing_since,
            ..AutoDisable::new(window)
        }
    }

    /// Records an attempt's class at `at`. Once disabled, observations change nothing until
    /// [`AutoDisable::enable`].
    pub fn observe(&mut self, class: OutcomeClass, at: UnixMillis) -> HealthChange {
        if self.disabled.is_some() {
            return HealthChange::Unchanged;
        }
        match class {
            OutcomeClass::Delivered => match self.failing_since.take() {
                Some(_) => HealthChange::Recovered,
                None => HealthChange::Unchanged,
            },
            OutcomeClass::DisableEndpoint => self.disable(DisableReason::Gone),
            _ => {
                let since = *self.failing_since.get_or_insert(at);
                if at.as_millis().saturating_sub(since.as_millis()) >= self.window_ms {
                    self.disable(DisableReason::FailingSince(since))
                } else {
                    HealthChange::Unchanged
                }
            }
        }
    }

    fn disable(&mut self, reason: DisableReason) -> HealthChange {
        self.disabled = Some(reason);
        HealthChange::Disabled(reason)
    }

    /// When the current run of failures began, if the endpoint is failing.
    pub fn failing_since(&self) -> Option<UnixMillis> {
        self.failing_since
    }

    /// Why the endpoint is disabled, if it is.
    pub fn disabled(&self) -> Option<DisableReason> {
        self.disabled
    }

    /// Whether the endpoint is disabled.
    pub fn is_disabled(&self) -> bool {
        self.disabled.is_some()
    }

    /// Re-enables the endpoint (an operator fixed it) with a clean failure clock.
    pub fn enable(&mut self) {
        self.disabled = None;
        self.failing_since = None;
    }
}

/// The circuit breaker's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum BreakerState {
    /// Deliveries flow.
    Closed,
    /// Deliveries are paused until `until`.
    Open {
        /// When a probe may be sent.
        until: UnixMillis,
    },
    /// One probe was let through at `probe_sent_at`; the rest wait for its result.
    HalfOpen {
        /// When the probe was permitted.
        probe_sent_at: UnixMillis,
    },
}

/// The answer of [`CircuitBreaker::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permit {
    /// Send.
    Allow,
    /// Send this one delivery as a probe; its result closes or re-opens the breaker.
    Probe,
    /// Do not send; the delivery keeps its place and may be tried again at this instant.
    PausedUntil(UnixMillis),
}

const BUCKETS: usize = 10;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Bucket {
    ok: u32,
    failed: u32,
}

/// A circuit breaker for one endpoint: when the failure ratio over a rolling window reaches a
/// threshold (given a minimum number of requests), it opens and *pauses* deliveries for a
/// cool-down; then it lets one probe through (half-open): success closes it, failure opens it
/// again. It never drops a delivery: [`Permit::PausedUntil`] tells the caller when to ask
/// again. If a probe's result never arrives, another probe is allowed after a further
/// cool-down.
///
/// The rolling window is kept in 10 buckets of `window / 10` each, so a result ages out
/// between 0.9 × and 1 × the window after it was recorded. State is fixed-size, no heap.
///
/// ```
/// use hookrelay::retry::{CircuitBreaker, Permit, UnixMillis};
/// use std::time::Duration;
///
/// let mut breaker = CircuitBreaker::builder()
///     .failure_percent(50)
///     .min_requests(4)
///     .window(Duration::from_secs(60))
///     .cool_down(Duration::from_secs(30))
///     .build()?;
/// let t0 = UnixMillis::from_secs(1_700_000_000);
/// for _ in 0..4 {
///     assert_eq!(breaker.check(t0), Permit::Allow);
///     breaker.record_failure(t0);
/// }
/// let until = t0.saturating_add(Duration::from_secs(30));
/// assert_eq!(breaker.check(t0), Permit::PausedUntil(until));
/// assert_eq!(breaker.check(until), Permit::Probe);
/// breaker.record_success(until);
/// assert_eq!(breaker.check(until), Permit::Allow);
/// # Ok::<(), hookrelay::retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreaker {
    failure_percent: u8,
    min_requests: u32,
    cool_down_ms: u64,
    bucket_ms: u64,
    head: u64,
    buckets: [Bucket; BUCKETS],
    state: BreakerState,
}

impl CircuitBreaker {
    /// A builder starting from: 50 % failures over 60 s with at least 20 requests, 30 s
    /// cool-down.
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            failure_percent: 50,
            window: Duration::from_secs(60),
            min_requests: 20,
            cool_down: Duration::from_secs(30),
        }
    }

    /// The current state (as of the last call; [`check`](Self::check) moves open to
    /// half-open).
    pub fn state(&self) -> BreakerState {
        self.state
    }

    /// May a delivery be sent at `now`?
    pub fn check(&mut self, now: UnixMillis) -> Permit {
        match self.state {
            BreakerState::Closed => Permit::Allow,
            BreakerState::Open { until } if now < until => Permit::PausedUntil(until),
            BreakerState::HalfOpen { probe_sent_at } => {
                let retry = probe_sent_at.saturating_add(Duration::from_millis(self.cool_down_ms));
                if now < retry {
                    Permit::PausedUntil(retry)
                } else {
                    self.state = BreakerState::HalfOpen { probe_sent_at: now };
                    Permit::Probe
                }
            }
            BreakerState::Open { .. } => {
                self.state = BreakerState::HalfOpen { probe_sent_at: now };
                Permit::Probe
            }
        }
    }

    /// Records an attempt's class: [`OutcomeClass::Delivered`] is a success, anything else a
    /// failure.
    pub fn observe(&mut self, class: OutcomeClass, now: UnixMillis) {
        if class.is_failure() {
            self.record_failure(now);
        } else {
            self.record_success(now);
        }
    }

    /// Records a successful attempt.
    pub fn record_success(&mut self, now: UnixMillis) {
        match self.state {
            BreakerState::HalfOpen { .. } => self.close(),
            BreakerState::Closed => {
                let b = self.bucket(now);
                b.ok = b.ok.saturating_add(1);
            }
            // A late result from before the breaker opened changes nothing.
            BreakerState::Open { .. } => {}
        }
    }

    /// Records a failed attempt.
    pub fn record_failure(&mut self, now: UnixMillis) {
        match self.state {
            BreakerState::HalfOpen { .. } => self.open(now),
            BreakerState::Closed => {
                let b = self.bucket(now);
                b.failed = b.failed.saturating_add(1);
                let (ok, failed) = self.buckets.iter().fold((0u64, 0u64), |(o, f), b| {
                    (o + u64::from(b.ok), f + u64::from(b.failed))
                });
                let total = ok + failed;
                if total >= u64::from(self.min_requests)
                    && failed * 100 >= u64::from(self.failure_percent) * total
                {
                    self.open(now);
                }
            }
            BreakerState::Open { .. } => {}
        }
    }

    fn open(&mut self, now: UnixMillis) {
        self.buckets = [Bucket::default(); BUCKETS];
        self.state = BreakerState::Open {
            until: now.saturating_add(Duration::from_millis(self.cool_down_ms)),
        };
    }

    fn close(&mut self) {
        self.buckets = [Bucket::default(); BUCKETS];
        self.state = BreakerState::Closed;
    }

    /// The bucket for `now`, clearing buckets that have aged out.
    fn bucket(&mut self, now: UnixMillis) -> &mut Bucket {
        let idx = now.as_millis() / self.bucket_ms;
        if idx > self.head {
            let steps = (idx - self.head).min(BUCKETS as u64);
            for k in 1..=steps {
                self.buckets[((self.head + k) % BUCKETS as u64) as usize] = Bucket::default();
            }
            self.head = idx;
        }
        // A clock that steps backwards counts into the newest bucket.
        &mut self.buckets[(self.head % BUCKETS as u64) as usize]
    }
}

/// Builds a [`CircuitBreaker`]; setters never fail, [`build`](Self::build) validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitBreakerBuilder {
    failure_percent: u8,
    window: Duration,
    min_requests: u32,
    cool_down: Duration,
}

impl CircuitBreakerBuilder {
    /// Open when at least this percentage of requests in the window failed (1..=100).
    pub fn failure_percent(mut self, percent: u8) -> Self {
        self.failure_percent = percent;
        self
    }

    /// The rolling window (at least 10 ms).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// Do not open before the window holds this many requests (at least 1).
    pub fn min_requests(mut self, n: u32) -> Self {
        self.min_requests = n;
        self
    }

    /// How long the breaker stays open before a probe (non-zero).
    pub fn cool_down(mut self, cool_down: Duration) -> Self {
        self.cool_down = cool_down;
        self
    }

    /// The settings as (failure percent, window, minimum requests, cool-down), e.g. for a
    /// store to persist.
    pub fn settings(&self) -> (u8, Duration, u32, Duration) {
        (
            self.failure_percent,
            self.window,
            self.min_requests,
            self.cool_down,
        )
    }

    /// Validates and builds a closed breaker.
    pub fn build(self) -> Result<CircuitBreaker, ConfigError> {
        if !(1..=100).contains(&self.failure_percent) {
            return Err(ConfigError::FailurePercent(self.failure_percent));
        }
        let bucket_ms = duration_to_millis(self.window) / BUCKETS as u64;
        if bucket_ms == 0 {
            return Err(ConfigError::ZeroDuration("breaker window"));
        }
        if self.min_requests == 0 {
            return Err(ConfigError::ZeroCount("minimum requests"));
        }
        if self.cool_down.is_zero() {
            return Err(ConfigError::ZeroDuration("cool-down"));
        }
        Ok(CircuitBreaker {
            failure_percent: self.failure_percent,
            min_requests: self.min_requests,
            cool_down_ms: duration_to_millis(self.cool_down),
            bucket_ms,
            head: 0,
            buckets: [Bucket::default(); BUCKETS],
            state: BreakerState::Closed,
        })
    }
}
