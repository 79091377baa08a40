//! What the dispatcher reports: metrics through the [`metrics`](https://docs.rs/metrics)
//! facade (feature `metrics`) and one `tracing` span per attempt (feature `tracing`).
//! Without the features every function here compiles to nothing.
//!
//! ## Metrics
//!
//! Labels are bounded: a profile name, an outcome, a status class, a reason or a source from
//! the fixed sets below — never a URL, an id or a payload.
//!
//! | name | kind | labels | what |
//! |---|---|---|---|
//! | `hookrelay_attempts_total` | counter | `profile`, `outcome`, `status_class` | attempts made, by what came of them |
//! | `hookrelay_attempt_duration_seconds` | histogram | `profile`, `status_class` | time from sending to the answer (or the error) |
//! | `hookrelay_retries_total` | counter | `profile` | attempts that failed and were scheduled again |
//! | `hookrelay_rate_limited_total` | counter | `profile`, `source` | deliveries held back by our limit (`source=ours`) or paced by the receiver (`source=receiver`: `429`, `X-RateLimit-Remaining: 0`) |
//! | `hookrelay_throttled_total` | counter | `profile` | progress events superseded by a later state before they were sent |
//! | `hookrelay_dead_letters_total` | counter | `profile`, `reason` | deliveries given up on |
//! | `hookrelay_expired_total` | counter | `profile` | deliveries past their maximum age |
//! | `hookrelay_endpoints_disabled_total` | counter | `profile`, `reason` | endpoints disabled (`gone`, `failing`) |
//! | `hookrelay_queue_depth` | gauge | `state` | deliveries `pending` or `in_flight` in the store, read every 5 s |
//!
//! `outcome` ∈ `delivered`, `retry`, `paced`, `dead`, `expired`, `disabled`;
//! `status_class` ∈ `2xx`, `3xx`, `4xx`, `5xx`, `timeout`, `connection`, `refused`, `other`;
//! `reason` (dead letters) ∈ `exhausted`, `not_retryable`, `endpoint_gone`, `refused`.
//!
//! ## Tracing
//!
//! One span per attempt, target `hookrelay::send`, name `attempt`, at `INFO`, with fields
//! `profile`, `endpoint`, `delivery`, `attempt`, and, once known, `status` (the HTTP status,
//! if one came) and `outcome` (as above). Never a body, a secret, a signature header or a
//! URL. A store failure the dispatcher retries is a `WARN` event with the same target.

#[cfg(feature = "metrics")]
use metrics::{counter, gauge, histogram};

#[cfg(feature = "metrics")]
use super::store::DeadReason;
use super::store::{AttemptError, AttemptRecord, NextStep};
use crate::profile::Profile;

/// Metric names, for dashboards and tests.
pub mod names {
    /// Attempts made.
    pub const ATTEMPTS: &str = "hookrelay_attempts_total";
    /// Attempt latency.
    pub const ATTEMPT_DURATION: &str = "hookrelay_attempt_duration_seconds";
    /// Retries scheduled.
    pub const RETRIES: &str = "hookrelay_retries_total";
    /// Rate-limit hits, ours and the receiver's.
    pub const RATE_LIMITED: &str = "hookrelay_rate_limited_total";
    /// Progress events superseded by throttling.
    pub const THROTTLED: &str = "hookrelay_throttled_total";
    /// Dead letters.
    pub const DEAD_LETTERS: &str = "hookrelay_dead_letters_total";
    /// Expired deliveries.
    pub const EXPIRED: &str = "hookrelay_expired_total";
    /// Endpoints disabled.
    pub const ENDPOINTS_DISABLED: &str = "hookrelay_endpoints_disabled_total";
    /// Queue depth.
    pub const QUEUE_DEPTH: &str = "hookrelay_queue_depth";
}

/// Who held a delivery back.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Limiter {
    Ours,
    Receiver,
}

/// The outcome label of a recorded attempt.
#[cfg_attr(not(any(feature = "metrics", feature = "tracing")), allow(dead_code))]
pub(crate) fn outcome(record: &AttemptRecord) -> &'static str {
    match record.next {
        NextStep::Delivered => "delivered",
        NextStep::RetryAt(_) if !record.charged => "paced",
        NextStep::RetryAt(_) => "retry",
        NextStep::DeadLetter(_) => "dead",
        NextStep::DisableEndpoint => "disabled",
        NextStep::Expire => "expired",
    }
}

/// The status class label of a recorded attempt.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn status_class(status: Option<u16>, error: Option<AttemptError>) -> &'static str {
    match (status, error) {
        (Some(200..=299), _) => "2xx",
        (Some(300..=399), _) => "3xx",
        (Some(400..=499), _) => "4xx",
        (Some(500..=599), _) => "5xx",
        (_, Some(AttemptError::Timeout)) => "timeout",
        (_, Some(AttemptError::Connection)) => "connection",
        (_, Some(AttemptError::Refused(_))) => "refused",
        _ => "other",
    }
}

/// One attempt's record, as it is stored.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn recorded(profile: Profile, record: &AttemptRecord) {
    #[cfg(feature = "metrics")]
    {
        let profile = profile.name();
        let class = status_class(record.status, record.error);
        if record.attempt > 0 {
            counter!(names::ATTEMPTS, "profile" => profile, "outcome" => outcome(record), "status_class" => class)
                .increment(1);
            histogram!(names::ATTEMPT_DURATION, "profile" => profile, "status_class" => class)
                .record(record.latency.as_secs_f64());
        }
        match record.next {
            NextStep::RetryAt(_) if record.charged => {
                counter!(names::RETRIES, "profile" => profile).increment(1);
            }
            NextStep::RetryAt(_) => {}
            NextStep::DeadLetter(reason) => dead_letter(profile, reason),
            NextStep::DisableEndpoint => dead_letter(profile, DeadReason::EndpointGone),
            NextStep::Expire => counter!(names::EXPIRED, "profile" => profile).increment(1),
            NextStep::Delivered => {}
        }
    }
}

#[cfg(feature = "metrics")]
fn dead_letter(profile: &'static str, reason: DeadReason) {
    counter!(names::DEAD_LETTERS, "profile" => profile, "reason" => reason.as_str()).increment(1);
}

/// A delivery held back by a rate limit.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn rate_limited(profile: Profile, by: Limiter) {
    #[cfg(feature = "metrics")]
    {
        let source = match by {
            Limiter::Ours => "ours",
            Limiter::Receiver => "receiver",
        };
        counter!(names::RATE_LIMITED, "profile" => profile.name(), "source" => source).increment(1);
    }
}

/// Progress events superseded at publish.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn throttled(profile: Profile, n: u32) {
    #[cfg(feature = "metrics")]
    if n > 0 {
        counter!(names::THROTTLED, "profile" => profile.name()).increment(u64::from(n));
    }
}

/// An endpoint disabled: `gone` (410) or `failing` (continuous failure).
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn endpoint_disabled(profile: Profile, reason: &'static str) {
    #[cfg(feature = "metrics")]
    counter!(names::ENDPOINTS_DISABLED, "profile" => profile.name(), "reason" => reason)
        .increment(1);
}

/// The store's queue, as last read.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(crate) fn queue_depth(pending: u64, in_flight: u64) {
    #[cfg(feature = "metrics")]
    {
        gauge!(names::QUEUE_DEPTH, "state" => "pending").set(pending as f64);
        gauge!(names::QUEUE_DEPTH, "state" => "in_flight").set(in_flight as f64);
    }
}

/// Whether anything reads the queue depth (the dispatcher skips the store query otherwise).
pub(crate) const REPORTS_QUEUE_DEPTH: bool = cfg!(feature = "metrics");

/// The span of one attempt; a unit without the feature.
#[derive(Debug, Clone)]
pub(crate) struct AttemptSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl AttemptSpan {
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(profile: Profile, endpoint: &str, delivery: &str, attempt: u32) -> Self {
        AttemptSpan {
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(
                target: "hookrelay::send",
                "attempt",
                profile = profile.name(),
                endpoint,
                delivery,
                attempt,
                status = tracing::field::Empty,
                outcome = tracing::field::Empty,
            ),
        }
    }

    /// Runs `future` inside the span.
    pub(crate) fn instrument<F: std::future::Future>(
        &self,
        future: F,
    ) -> impl std::future::Future<Output = F::Output> + use<F> {
        #[cfg(feature = "tracing")]
        {
            tracing::Instrument::instrument(future, self.span.clone())
        }
        #[cfg(not(feature = "tracing"))]
        {
            future
        }
    }

    /// Records what came of the attempt.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn finish(&self, record: &AttemptRecord) {
        #[cfg(feature = "tracing")]
        {
            if let Some(status) = record.status {
                self.span.record("status", status);
            }
            self.span.record("outcome", outcome(record));
        }
    }
}

/// The store failed; the dispatcher retries.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn store_failed(error: &super::store::StoreError) {
    #[cfg(feature = "tracing")]
    {
        let error = crate::store_error::Chain(error);
        tracing::warn!(target: "hookrelay::send", %error, "delivery store failed; retrying");
    }
}
