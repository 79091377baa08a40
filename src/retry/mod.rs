//! Retries: a transport-agnostic planner that tells a sender what to do with a delivery, and
//! the endpoint-level machinery around it.
//!
//! Everything here is pure: no I/O, no sleeping, no async runtime, no clock reads. The caller
//! passes the current time as a [`UnixMillis`] (milliseconds since the Unix epoch; see its docs
//! for why not `SystemTime`) and, where randomness is needed, a [`JitterSource`].
//!
//! | piece | what it does |
//! |---|---|
//! | [`RetryPolicy`] | schedule, attempts, maximum age, jitter, timeout, `Retry-After` cap, classification, rate limit; presets for the four source systems and Standard Webhooks |
//! | [`RetryPolicy::plan`] + [`DeliveryState`] | the planner: deliver now, retry at T, give up ([`GiveUpReason`]), or disable the endpoint |
//! | [`AttemptOutcome`], [`Classifier`] | what an attempt produced and what that means ([`OutcomeClass`]) |
//! | [`RetryAfter`] | strict `Retry-After` parsing (delay-seconds and HTTP-date) |
//! | [`RateLimitReset`] | `X-RateLimit-Reset` parsing (unix seconds, or a delay below 10⁹) |
//! | [`Jitter`], [`SeededJitter`], [`NoJitter`] | randomising delays, deterministically when asked |
//! | [`AutoDisable`], [`CircuitBreaker`] | endpoint health: disable after failing for days; pause while failing now |
//! | [`TokenBucket`], [`RateLimit`] | per-endpoint pacing |
//!
//! ## Presets
//!
//! | preset | attempts | delays after each failure | max age | timeout | extras |
//! |---|---|---|---|---|---|
//! | [`proposal_generator`](RetryPolicy::proposal_generator) | 6 | 1, 2, 4, 8, 16 s | 24 h | 5 s | |
//! | [`tasklink`](RetryPolicy::tasklink) | 5 | 5 min, 30 min, 2 h, 12 h | — | 10 s | |
//! | [`taskon`](RetryPolicy::taskon) | 4 | 10 s, 1 min, 5 min (chosen; the seed names none) | — | 30 s | |
//! | [`task_hub`](RetryPolicy::task_hub) | 6 (1..=10) | 5 s × 5ⁿ | — | 10 s | 60 requests/min, bursts of 10 ([`TASK_HUB_BURST`]: 004 budgets requests per minute, so events published together need not wait a second each) |
//! | [`standard_webhooks`](RetryPolicy::standard_webhooks) | 8 | 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h | — | 15 s | ±20 % jitter |
//!
//! ## A sender's loop
//!
//! ```
//! use hookrelay::retry::{
//!     Acquire, AttemptOutcome, AutoDisable, Decision, DeliveryState, RetryPolicy, SeededJitter,
//!     TokenBucket, UnixMillis,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = RetryPolicy::task_hub_builder().max_attempts(3).build()?;
//! let mut jitter = SeededJitter::from_os();
//! let now = UnixMillis::now();
//! let mut bucket = TokenBucket::new(policy.rate_limit().ok_or("no limit")?, now);
//! let mut health = AutoDisable::default();
//! let mut delivery = DeliveryState::new(now);
//!
//! if let Decision::DeliverNow { attempt } = policy.plan(&mut delivery, now, &mut jitter) {
//!     assert_eq!(attempt, 1);
//!     assert_eq!(bucket.try_acquire(now), Acquire::Ready);
//!     // ... send with `policy.timeout()`, then:
//!     let outcome = AttemptOutcome::from_response(429, Some(b"30"));
//!     health.observe(policy.classifier().classify(&outcome), now);
//!     delivery.record(outcome, now);
//! }
//! match policy.plan(&mut delivery, now, &mut jitter) {
//!     Decision::RetryAt { at, .. } => assert_eq!(at.saturating_duration_since(now).as_secs(), 30),
//!     other => panic!("unexpected {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```

mod error;
mod health;
mod jitter;
mod outcome;
mod planner;
mod policy;
mod rate_limit;
mod rate_limit_reset;
mod retry_after;
mod time;

pub use error::ConfigError;
pub use health::{
    AutoDisable, BreakerState, CircuitBreaker, CircuitBreakerBuilder, DisableReason, HealthChange,
    Permit,
};
pub use jitter::{Jitter, JitterSource, JitterWindow, NoJitter, SeededJitter};
pub use outcome::{AttemptOutcome, Classifier, ClientErrors, OutcomeClass};
pub use planner::{Decision, DeliveryState, GiveUpReason};
pub use policy::{RetryPolicy, RetryPolicyBuilder, RetrySchedule};
pub use rate_limit::{Acquire, RateLimit, TASK_HUB_BURST, TokenBucket};
pub use rate_limit_reset::{RateLimitReset, RateLimitResetError};
pub use retry_after::{RetryAfter, RetryAfterError};
pub use time::UnixMillis;
