//! [`RetryPolicy`]: a schedule plus the limits around it, with the profile presets.

use std::time::Duration;

use super::time::duration_to_millis;
use super::{Classifier, ClientErrors, ConfigError, Jitter, OutcomeClass, RateLimit};

const SECOND: u64 = 1000;
const MINUTE: u64 = 60 * SECOND;
const HOUR: u64 = 60 * MINUTE;

/// A policy's schedule as [`RetryPolicy::schedule`] reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum RetrySchedule {
    /// The delay before each retry; the last one repeats.
    Delays(Vec<Duration>),
    /// `base × factor^(retry − 1)`, capped at `cap`.
    Exponential {
        /// The first retry's delay.
        base: Duration,
        /// The growth factor.
        factor: f64,
        /// The longest delay.
        cap: Duration,
    },
}

/// When the retries happen: delays between the end of one attempt and the start of the next.
#[derive(Debug, Clone, PartialEq)]
enum Schedule {
    /// Delay before retry `i + 1`, in milliseconds; the last one repeats.
    List(Box<[u64]>),
    /// `base × factor^(retry − 1)`, capped, in milliseconds.
    Exponential { base: u64, factor: f64, cap: u64 },
}

impl Schedule {
    /// The nominal delay in ms before retry `retry` (1-based: retry 1 is the second attempt).
    #[inline]
    fn nominal_ms(&self, retry: u32) -> u64 {
        let i = retry.saturating_sub(1);
        match self {
            Schedule::List(delays) => {
                let last = delays.len() - 1;
                delays[(i as usize).min(last)]
            }
            Schedule::Exponential { base, factor, cap } => {
                let exp = i32::try_from(i).unwrap_or(i32::MAX);
                let d = (*base as f64) * factor.powi(exp);
                // `as` saturates (and maps NaN to 0); the cap bounds it anyway.
                if d >= *cap as f64 { *cap } else { d as u64 }
            }
        }
    }
}

/// A retry policy: the schedule, how many attempts, how old a delivery may get, jitter, the
/// per-attempt timeout, `Retry-After` handling, outcome classification and the endpoint's
/// rate limit. Built once, shared by reference; [`RetryPolicy::plan`] makes the decisions.
///
/// Delays are measured from the end of the previous attempt (the time passed to
/// [`DeliveryState::record`](crate::retry::DeliveryState::record)). The presets reproduce the
/// four source systems and Standard Webhooks; each documents its full timeline, with
/// offsets from the first attempt assuming attempts that fail instantly.
///
/// `Retry-After` (delay-seconds or HTTP-date) is honoured on `429` and `503`: the next attempt
/// waits for the later of the scheduled delay and the header, the header capped at
/// [`retry_after_cap`](RetryPolicyBuilder::retry_after_cap) (default 1 h).
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    schedule: Schedule,
    max_attempts: u32,
    max_age_ms: Option<u64>,
    jitter: Jitter,
    timeout: Duration,
    retry_after_cap_ms: u64,
    classifier: Classifier,
    rate_limit: Option<RateLimit>,
    attempts_range: (u32, u32),
}

impl RetryPolicy {
    /// The retry schedule: the delays or the exponential curve.
    pub fn schedule(&self) -> RetrySchedule {
        match &self.schedule {
            Schedule::List(d) => {
                RetrySchedule::Delays(d.iter().map(|&ms| Duration::from_millis(ms)).collect())
            }
            Schedule::Exponential { base, factor, cap } => RetrySchedule::Exponential {
                base: Duration::from_millis(*base),
                factor: *factor,
                cap: Duration::from_millis(*cap),
            },
        }
    }

    /// The range [`max_attempts`](RetryPolicyBuilder::max_attempts) must fall in (task-hub:
    /// 1 to 10; otherwise 1 to `u32::MAX`).
    pub fn max_attempts_range(&self) -> (u32, u32) {
        self.attempts_range
    }

    /// A builder for a custom policy, starting from: exponential 1 s × 2 capped at 1 h,
    /// 8 attempts, [`Jitter::Full`], 10 s timeout, no maximum age, `Retry-After` capped at
    /// 1 h, default classification, no rate limit.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            schedule: ScheduleSpec::Exponential {
                base: Duration::from_secs(1),
                factor: 2.0,
                cap: Duration::from_secs(3600),
            },
            max_attempts: 8,
            max_age: None,
            jitter: Jitter::Full,
            timeout: Duration::from_secs(10),
            retry_after_cap: Duration::from_secs(3600),
            classifier: Classifier::new(),
            rate_limit: None,
            attempts_range: (1, u32::MAX),
        }
    }

    /// A builder holding this policy's settings, to adjust a preset.
    pub fn to_builder(&self) -> RetryPolicyBuilder {
        RetryPolicyBuilder {
            schedule: match &self.schedule {
                Schedule::List(d) => {
                    ScheduleSpec::List(d.iter().map(|&ms| Duration::from_millis(ms)).collect())
                }
                Schedule::Exponential { base, factor, cap } => ScheduleSpec::Exponential {
                    base: Duration::from_millis(*base),
                    factor: *factor,
                    cap: Duration::from_millis(*cap),
                },
            },
            max_attempts: self.max_attempts,
            max_age: self.max_age(),
            jitter: self.jitter,
            timeout: self.timeout,
            retry_after_cap: self.retry_after_cap(),
            classifier: self.classifier.clone(),
            rate_limit: self.rate_limit,
            attempts_range: self.attempts_range,
        }
    }

    /// Proposal Generator (seed 001): "immediate retry, exponential backoff (1s, 2s, 4s, 8s,
    /// 16s), maximum 5 retries", read as **6 attempts** (DESIGN.md, interop trap 8); events
    /// older than **24 h** are dropped; **5 s** timeout; no jitter.
    ///
    /// | attempt | delay after previous | offset from first |
    /// |---|---|---|
    /// | 1 | — | 0 s |
    /// | 2 | 1 s | 1 s |
    /// | 3 | 2 s | 3 s |
    /// | 4 | 4 s | 7 s |
    /// | 5 | 8 s | 15 s |
    /// | 6 | 16 s | 31 s |
    pub fn proposal_generator() -> Self {
        Self::preset(
            &[SECOND, 2 * SECOND, 4 * SECOND, 8 * SECOND, 16 * SECOND],
            6,
            Some(24 * HOUR),
            5,
        )
    }

    /// TaskLink SA (seed 002): **5 attempts**, each delay after the previous attempt;
    /// **10 s** timeout; no maximum age; no jitter.
    ///
    /// | attempt | delay after previous | offset from first |
    /// |---|---|---|
    /// | 1 | — | 0 |
    /// | 2 | 5 min | 5 min |
    /// | 3 | 30 min | 35 min |
    /// | 4 | 2 h | 2 h 35 min |
    /// | 5 | 12 h | 14 h 35 min |
    pub fn tasklink() -> Self {
        Self::preset(&[5 * MINUTE, 30 * MINUTE, 2 * HOUR, 12 * HOUR], 5, None, 10)
    }

    /// TaskOn (seed 003): "retry up to 3 times", so **4 attempts**; **30 s** timeout (the
    /// seed asks receivers to answer within 30 s). The seed names no delays; hookrelay chooses
    /// 10 s, 1 min, 5 min — reward notifications are user-visible, so retries come quickly,
    /// and growing gaps ride out a short outage. No maximum age; no jitter.
    ///
    /// | attempt | delay after previous | offset from first |
    /// |---|---|---|
    /// | 1 | — | 0 |
    /// | 2 | 10 s | 10 s |
    /// | 3 | 1 min | 1 min 10 s |
    /// | 4 | 5 min | 6 min 10 s |
    pub fn taskon() -> Self {
        Self::preset(&[10 * SECOND, MINUTE, 5 * MINUTE], 4, None, 30)
    }

    /// Task hub (seed 004): delays **5 s, 25 s, 125 s, …** (× 5, uncapped), **6 attempts** by
    /// default (the seed allows configuring up to 10: use [`RetryPolicy::task_hub_builder`]);
    /// **10 s** timeout; rate limit **60 requests/min** per endpoint with bursts of up to
    /// **10** ([`TASK_HUB_BURST`](crate::retry::TASK_HUB_BURST)); no maximum age; no jitter.
    ///
    /// The seed documents the limit as a per-minute budget ("60 requests per minute per
    /// endpoint", with `X-RateLimit-Reset` naming when the window resets), not as one request
    /// a second: ten events published together are sent at once rather than spread over ten
    /// seconds, and the sustained rate stays one a second. A full burst plus a minute of
    /// sustained sending puts at most 69 requests in any 60-second span; set
    /// [`RateLimit::per_minute(60)`](RateLimit::per_minute) on the endpoint for strict pacing.
    ///
    /// | attempt | delay after previous | offset from first |
    /// |---|---|---|
    /// | 1 | — | 0 |
    /// | 2 | 5 s | 5 s |
    /// | 3 | 25 s | 30 s |
    /// | 4 | 125 s | 155 s |
    /// | 5 | 625 s | 780 s (13 min) |
    /// | 6 | 3 125 s | 3 905 s (65 min 5 s) |
    /// | 7 (if configured) | 15 625 s | 19 530 s |
    /// | 8 (if configured) | 78 125 s | 97 655 s |
    /// | 9 (if configured) | 390 625 s | 488 280 s |
    /// | 10 (if configured) | 1 953 125 s | 2 441 405 s (about 28 days) |
    pub fn task_hub() -> Self {
        Self::task_hub_builder()
            .build()
            .expect("the task-hub preset is valid")
    }

    /// A builder for the task-hub preset whose [`max_attempts`](RetryPolicyBuilder::max_attempts)
    /// accepts only `1..=10`, as the seed allows; `build()` refuses other values with
    /// [`ConfigError::MaxAttempts`].
    ///
    /// ```
    /// use hookrelay::retry::{ConfigError, RetryPolicy};
    ///
    /// let ten = RetryPolicy::task_hub_builder().max_attempts(10).build()?;
    /// assert_eq!(ten.max_attempts(), 10);
    /// assert!(matches!(
    ///     RetryPolicy::task_hub_builder().max_attempts(11).build(),
    ///     Err(ConfigError::MaxAttempts { got: 11, min: 1, max: 10 })
    /// ));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn task_hub_builder() -> RetryPolicyBuilder {
        let mut b = Self::builder()
            .exponential(Duration::from_secs(5), 5.0, Duration::MAX)
            .max_attempts(6)
            .jitter(Jitter::None)
            .timeout(Duration::from_secs(10))
            .rate_limit(
                RateLimit::new(60, Duration::from_secs(60), super::TASK_HUB_BURST)
                    .expect("60/min with a burst of 10 is a valid rate"),
            );
        b.attempts_range = (1, 10);
        b
    }

    /// Standard Webhooks (as Svix documents it): **8 attempts**, each delay after the previous,
    /// with **±20 %** jitter; **15 s** timeout; no maximum age.
    ///
    /// | attempt | delay after previous (nominal) | offset from first (nominal) |
    /// |---|---|---|
    /// | 1 | — | 0 |
    /// | 2 | 5 s | 5 s |
    /// | 3 | 5 min | 5 min 5 s |
    /// | 4 | 30 min | 35 min 5 s |
    /// | 5 | 2 h | 2 h 35 min 5 s |
    /// | 6 | 5 h | 7 h 35 min 5 s |
    /// | 7 | 10 h | 17 h 35 min 5 s |
    /// | 8 | 10 h | 27 h 35 min 5 s |
    pub fn standard_webhooks() -> Self {
        let mut p = Self::preset(
            &[
                5 * SECOND,
                5 * MINUTE,
                30 * MINUTE,
                2 * HOUR,
                5 * HOUR,
                10 * HOUR,
                10 * HOUR,
            ],
            8,
            None,
            15,
        );
        p.jitter = Jitter::Proportional { percent: 20 };
        p
    }

    fn preset(delays_ms: &[u64], attempts: u32, max_age_ms: Option<u64>, timeout_s: u64) -> Self {
        RetryPolicy {
            schedule: Schedule::List(delays_ms.into()),
            max_attempts: attempts,
            max_age_ms,
            jitter: Jitter::None,
            timeout: Duration::from_secs(timeout_s),
            retry_after_cap_ms: HOUR,
            classifier: Classifier::new(),
            rate_limit: None,
            attempts_range: (1, u32::MAX),
        }
    }

    /// Attempts in all, the first included.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// How old (since [`DeliveryState::new`](crate::retry::DeliveryState::new)) a delivery may
    /// get before it is given up as expired; `None` for no limit.
    pub fn max_age(&self) -> Option<Duration> {
        self.max_age_ms.map(Duration::from_millis)
    }

    /// The jitter mode.
    pub fn jitter(&self) -> Jitter {
        self.jitter
    }

    /// The per-attempt request timeout the sender should apply.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The longest wait a `Retry-After` header can impose.
    pub fn retry_after_cap(&self) -> Duration {
        Duration::from_millis(self.retry_after_cap_ms)
    }

    /// The outcome classification.
    pub fn classifier(&self) -> &Classifier {
        &self.classifier
    }

    /// The per-endpoint rate limit, if any; build a [`TokenBucket`](crate::retry::TokenBucket)
    /// from it per endpoint.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// The nominal (un-jittered) delay before retry `retry` (1-based: retry 1 is attempt 2),
    /// or `None` if the policy allows no such retry.
    pub fn nominal_delay(&self, retry: u32) -> Option<Duration> {
        (retry >= 1 && retry < self.max_attempts)
            .then(|| Duration::from_millis(self.schedule.nominal_ms(retry)))
    }

    /// All nominal delays, one per retry (`max_attempts − 1` of them).
    pub fn nominal_delays(&self) -> Vec<Duration> {
        (1..self.max_attempts)
            .filter_map(|r| self.nominal_delay(r))
            .collect()
    }

    #[inline]
    pub(crate) fn nominal_ms(&self, retry: u32) -> u64 {
        self.schedule.nominal_ms(retry)
    }

    #[inline]
    pub(crate) fn max_age_ms(&self) -> Option<u64> {
        self.max_age_ms
    }

    #[inline]
    pub(crate) fn retry_after_cap_ms(&self) -> u64 {
        self.retry_after_cap_ms
    }
}

#[derive(Debug, Clone, PartialEq)]
enum ScheduleSpec {
    List(Vec<Duration>),
    Exponential {
        base: Duration,
        factor: f64,
        cap: Duration,
    },
}

/// Builds a [`RetryPolicy`]. Setters never fail; [`build`](RetryPolicyBuilder::build)
/// validates.
///
/// ```
/// use hookrelay::retry::{ClientErrors, Jitter, RetryPolicy};
/// use std::time::Duration;
///
/// let policy = RetryPolicy::builder()
///     .exponential(Duration::from_secs(2), 3.0, Duration::from_secs(600))
///     .jitter(Jitter::Equal)
///     .max_attempts(6)
///     .max_age(Duration::from_secs(3600))
///     .client_errors(ClientErrors::Final)
///     .build()?;
/// assert_eq!(policy.nominal_delay(3), Some(Duration::from_secs(18)));
/// # Ok::<(), hookrelay::retry::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicyBuilder {
    schedule: ScheduleSpec,
    max_attempts: u32,
    max_age: Option<Duration>,
    jitter: Jitter,
    timeout: Duration,
    retry_after_cap: Duration,
    classifier: Classifier,
    rate_limit: Option<RateLimit>,
    attempts_range: (u32, u32),
}

impl RetryPolicyBuilder {
    /// An explicit list of delays, one per retry. If the policy allows more retries than the
    /// list has delays, the last delay repeats; extra delays are never used.
    pub fn delays(mut self, delays: impl IntoIterator<Item = Duration>) -> Self {
        self.schedule = ScheduleSpec::List(delays.into_iter().collect());
        self
    }

    /// Exponential delays: `base × factor^(n − 1)` before retry `n`, never above `cap`
    /// (`Duration::MAX` for no cap). `factor` must be finite and at least 1.
    pub fn exponential(mut self, base: Duration, factor: f64, cap: Duration) -> Self {
        self.schedule = ScheduleSpec::Exponential { base, factor, cap };
        self
    }

    /// Attempts in all, the first included (at least 1).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// The range [`max_attempts`](Self::max_attempts) must fall in, checked by
    /// [`build`](Self::build) (task-hub's "configurable up to 10" is 1 to 10).
    pub fn max_attempts_range(mut self, min: u32, max: u32) -> Self {
        self.attempts_range = (min, max);
        self
    }

    /// Give a delivery up as expired once it is older than `age`.
    pub fn max_age(mut self, age: Duration) -> Self {
        self.max_age = Some(age);
        self
    }

    /// No maximum age.
    pub fn without_max_age(mut self) -> Self {
        self.max_age = None;
        self
    }

    /// The jitter mode.
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// The per-attempt request timeout (must be non-zero).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The longest wait a `Retry-After` header can impose (default 1 h). `Duration::ZERO`
    /// makes the planner ignore `Retry-After`.
    pub fn retry_after_cap(mut self, cap: Duration) -> Self {
        self.retry_after_cap = cap;
        self
    }

    /// How otherwise unlisted `4xx` statuses are treated.
    pub fn client_errors(mut self, client_errors: ClientErrors) -> Self {
        self.classifier = self.classifier.with_client_errors(client_errors);
        self
    }

    /// Classifies status `code` as `class`, overriding the defaults.
    pub fn classify_status(mut self, code: u16, class: OutcomeClass) -> Self {
        self.classifier = self.classifier.with_status(code, class);
        self
    }

    /// Replaces the whole classifier.
    pub fn classifier(mut self, classifier: Classifier) -> Self {
        self.classifier = classifier;
        self
    }

    /// The per-endpoint rate limit.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// No rate limit.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate_limit = None;
        self
    }

    /// Validates and builds the policy.
    pub fn build(self) -> Result<RetryPolicy, ConfigError> {
        let (min, max) = self.attempts_range;
        if !(min..=max).contains(&self.max_attempts) {
            return Err(ConfigError::MaxAttempts {
                got: self.max_attempts,
                min,
                max,
            });
        }
        let schedule = match self.schedule {
            ScheduleSpec::List(delays) if delays.is_empty() => {
                return Err(ConfigError::EmptyDelays);
            }
            ScheduleSpec::List(delays) => {
                Schedule::List(delays.into_iter().map(duration_to_millis).collect())
            }
            ScheduleSpec::Exponential { base, factor, cap } => {
                if !factor.is_finite() || factor < 1.0 {
                    return Err(ConfigError::InvalidFactor);
                }
                if cap < base {
                    return Err(ConfigError::CapBelowBase);
                }
                Schedule::Exponential {
                    base: duration_to_millis(base),
                    factor,
                    cap: duration_to_millis(cap),
                }
            }
        };
        if let Jitter::Proportional { percent } = self.jitter
            && percent > 100
        {
            return Err(ConfigError::JitterPercent(percent));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::ZeroDuration("timeout"));
        }
        Ok(RetryPolicy {
            schedule,
            max_attempts: self.max_attempts,
            max_age_ms: self.max_age.map(duration_to_millis),
            jitter: self.jitter,
            timeout: self.timeout,
            retry_after_cap_ms: duration_to_millis(self.retry_after_cap),
            classifier: self.classifier,
            rate_limit: self.rate_limit,
            attempts_range: self.attempts_range,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_errors() {
        let b = RetryPolicy::builder;
        assert_eq!(
            b().max_attempts(0).build(),
            Err(ConfigError::MaxAttempts {
                got: 0,
                min: 1,
                max: u32::MAX
            })
        );
        assert_eq!(b().delays([]).build(), Err(ConfigError::EmptyDelays));
        let s = Duration::from_secs(1);
        for f in [0.5, f64::NAN, f64::INFINITY, -2.0] {
            assert_eq!(
                b().exponential(s, f, s).build(),
                Err(ConfigError::InvalidFactor)
            );
        }
        assert_eq!(
            b().exponential(s * 2, 2.0, s).build(),
            Err(ConfigError::CapBelowBase)
        );
        assert_eq!(
            b().jitter(Jitter::Proportional { percent: 101 }).build(),
            Err(ConfigError::JitterPercent(101))
        );
        assert_eq!(
            b().timeout(Duration::ZERO).build(),
            Err(ConfigError::ZeroDuration("timeout"))
        );
        assert_eq!(
            ConfigError::MaxAttempts {
                got: 11,
                min: 1,
                max: 10
            }
            .to_string(),
            "max attempts 11 is outside 1..=10"
        );
    }

    #[test]
    fn exponential_is_capped_and_never_overflows() {
        let p = RetryPolicy::builder()
            .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(60))
            .max_attempts(u32::MAX)
            .build()
            .unwrap();
        assert_eq!(p.nominal_delay(1), Some(Duration::from_secs(1)));
        assert_eq!(p.nominal_delay(6), Some(Duration::from_secs(32)));
        assert_eq!(p.nominal_delay(7), Some(Duration::from_secs(60)));
        assert_eq!(p.nominal_delay(u32::MAX - 1), Some(Duration::from_secs(60)));
        let uncapped = RetryPolicy::builder()
            .exponential(Duration::from_secs(5), 5.0, Duration::MAX)
            .max_attempts(u32::MAX)
            .build()
            .unwrap();
        assert_eq!(
            uncapped.nominal_delay(u32::MAX - 1),
            Some(Duration::from_millis(u64::MAX))
        );
    }

    #[test]
    fn list_repeats_last_delay_and_to_builder_round_trips() {
        let p = RetryPolicy::builder()
            .delays([Duration::from_secs(1), Duration::from_secs(7)])
            .max_attempts(5)
            .build()
            .unwrap();
        assert_eq!(
            p.nominal_delays(),
            [1, 7, 7, 7].map(Duration::from_secs).to_vec()
        );
        for preset in [
            RetryPolicy::proposal_generator(),
            RetryPolicy::tasklink(),
            RetryPolicy::taskon(),
            RetryPolicy::task_hub(),
            RetryPolicy::standard_webhooks(),
        ] {
            assert_eq!(preset.to_builder().build().as_ref(), Ok(&preset));
        }
    }
}
