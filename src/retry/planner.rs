//! The planner: [`DeliveryState`] (one delivery's history), [`RetryPolicy::plan`] and its
//! [`Decision`].

use super::{AttemptOutcome, JitterSource, OutcomeClass, RetryAfter, RetryPolicy, UnixMillis};

/// What the sender should do with a delivery now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Decision {
    /// Send attempt number `attempt` (1-based) now.
    DeliverNow {
        /// The attempt about to be made (1 for the first).
        attempt: u32,
    },
    /// Send attempt number `attempt` at `at`, not before.
    RetryAt {
        /// When the attempt is due.
        at: UnixMillis,
        /// The attempt to be made then.
        attempt: u32,
    },
    /// The last attempt was accepted: the delivery is done.
    Delivered,
    /// Stop retrying; dead-letter the delivery.
    GiveUp(GiveUpReason),
    /// Stop, and disable the endpoint (`410 Gone` by default).
    DisableEndpoint,
}

impl Decision {
    /// Whether the delivery is finished (delivered, given up or its endpoint disabled).
    pub const fn is_final(&self) -> bool {
        !matches!(self, Decision::DeliverNow { .. } | Decision::RetryAt { .. })
    }
}

/// Why a delivery was given up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GiveUpReason {
    /// Every attempt the policy allows has been made.
    Exhausted,
    /// The delivery is, or by its next attempt would be, older than the policy's maximum age.
    Expired,
    /// The last outcome is classified [`OutcomeClass::Final`].
    NotRetryable,
}

const KIND_STATUS: u8 = 0;
const KIND_TIMEOUT: u8 = 1;
const KIND_CONNECTION: u8 = 2;
const KIND_OTHER: u8 = 3;
const HAS_NEXT: u8 = 1;
const HAS_NOT_BEFORE: u8 = 2;

/// One delivery's planning state: when it was created, how many attempts were made, when the
/// last one ended and how, and the next attempt time once planned. 40 bytes, `Copy`-cheap,
/// no heap.
///
/// `created_at` is the delivery's birth: its maximum age is measured from here. For a delivery
/// attempted as soon as it is created, this is the first attempt's time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryState {
    created_at: UnixMillis,
    last_attempt_at: UnixMillis,
    next_at: UnixMillis,
    not_before: UnixMillis,
    attempts: u32,
    last_code: u16,
    last_kind: u8,
    flags: u8,
}

impl DeliveryState {
    /// A delivery created at `created_at`, not attempted yet.
    pub const fn new(created_at: UnixMillis) -> Self {
        DeliveryState {
            created_at,
            last_attempt_at: created_at,
            next_at: UnixMillis::EPOCH,
            not_before: UnixMillis::EPOCH,
            attempts: 0,
            last_code: 0,
            last_kind: KIND_OTHER,
            flags: 0,
        }
    }

    /// Rebuilds the state of a delivery loaded from a store: `attempts` made so far (at least
    /// one, else this is [`DeliveryState::new`]), the last ending at `last_attempt_at` with
    /// `last_outcome`.
    pub fn resume(
        created_at: UnixMillis,
        attempts: u32,
        last_attempt_at: UnixMillis,
        last_outcome: AttemptOutcome,
    ) -> Self {
        let mut s = DeliveryState::new(created_at);
        if attempts > 0 {
            s.record(last_outcome, last_attempt_at);
            s.attempts = attempts;
        }
        s
    }

    /// Records the outcome of an attempt that ended at `at`. Delays and `Retry-After` are
    /// measured from `at`. Clears any planned next time.
    pub fn record(&mut self, outcome: AttemptOutcome, at: UnixMillis) {
        self.attempts = self.attempts.saturating_add(1);
        self.last_attempt_at = at;
        self.flags = 0;
        self.last_code = 0;
        self.not_before = UnixMillis::EPOCH;
        self.last_kind = match outcome {
            AttemptOutcome::Status { code, retry_after } => {
                self.last_code = code;
                if let Some(ra) = retry_after {
                    self.not_before = ra.not_before(at);
                    self.flags |= HAS_NOT_BEFORE;
                }
                KIND_STATUS
            }
            AttemptOutcome::Timeout => KIND_TIMEOUT,
            AttemptOutcome::ConnectionError => KIND_CONNECTION,
            AttemptOutcome::Other => KIND_OTHER,
        };
    }

    /// When the delivery was created.
    pub fn created_at(&self) -> UnixMillis {
        self.created_at
    }

    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// When the last attempt ended, if there was one.
    pub fn last_attempt_at(&self) -> Option<UnixMillis> {
        (self.attempts > 0).then_some(self.last_attempt_at)
    }

    /// The last attempt's outcome, if there was one (a `Retry-After` comes back as
    /// [`RetryAfter::At`], resolved against the attempt's end).
    pub fn last_outcome(&self) -> Option<AttemptOutcome> {
        (self.attempts > 0).then(|| self.outcome())
    }

    /// The next attempt's time, once [`RetryPolicy::plan`] has scheduled one.
    pub fn next_attempt_at(&self) -> Option<UnixMillis> {
        (self.flags & HAS_NEXT != 0).then_some(self.next_at)
    }

    #[inline]
    fn outcome(&self) -> AttemptOutcome {
        match self.last_kind {
            KIND_STATUS => AttemptOutcome::Status {
                code: self.last_code,
                retry_after: (self.flags & HAS_NOT_BEFORE != 0)
                    .then_some(RetryAfter::At(self.not_before)),
            },
            KIND_TIMEOUT => AttemptOutcome::Timeout,
            KIND_CONNECTION => AttemptOutcome::ConnectionError,
            _ => AttemptOutcome::Other,
        }
    }
}

impl RetryPolicy {
    /// Decides what to do with a delivery at `now`: the planner.
    ///
    /// Pure apart from `state`: no I/O, no clock, no sleeping, no allocation. Randomness comes
    /// only from `jitter` ([`NoJitter`](crate::retry::NoJitter) makes it deterministic). The
    /// first call after [`DeliveryState::record`] draws jitter and remembers the time in
    /// `state`, so asking again ("what now?") gives the same time until it is due, when the
    /// answer becomes [`Decision::DeliverNow`].
    ///
    /// Order of rules: no attempt yet → deliver now (unless expired); the last outcome
    /// [`Delivered`](OutcomeClass::Delivered) → [`Decision::Delivered`];
    /// [`DisableEndpoint`](OutcomeClass::DisableEndpoint) → [`Decision::DisableEndpoint`];
    /// [`Final`](OutcomeClass::Final) → give up, not retryable; all attempts made → give up,
    /// exhausted; the next attempt (scheduled delay with jitter, pushed back by an honoured
    /// `Retry-After`) later than the maximum age, or `now` already past it → give up, expired;
    /// otherwise deliver now or retry at the scheduled time.
    ///
    /// ```
    /// use hookrelay::retry::{AttemptOutcome, Decision, DeliveryState, NoJitter, RetryPolicy, UnixMillis};
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let policy = RetryPolicy::builder()
    ///     .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(60))
    ///     .max_attempts(3)
    ///     .build()?;
    /// let t0 = UnixMillis::from_secs(1_700_000_000);
    /// let mut delivery = DeliveryState::new(t0);
    /// assert_eq!(policy.plan(&mut delivery, t0, &mut NoJitter), Decision::DeliverNow { attempt: 1 });
    ///
    /// // The endpoint is overloaded and asks for two minutes; the policy caps that at one hour.
    /// delivery.record(AttemptOutcome::from_response(503, Some(b"120")), t0);
    /// let at = t0.saturating_add(Duration::from_secs(120));
    /// assert_eq!(policy.plan(&mut delivery, t0, &mut NoJitter), Decision::RetryAt { at, attempt: 2 });
    /// assert_eq!(policy.plan(&mut delivery, at, &mut NoJitter), Decision::DeliverNow { attempt: 2 });
    ///
    /// delivery.record(AttemptOutcome::status(200), at);
    /// assert_eq!(policy.plan(&mut delivery, at, &mut NoJitter), Decision::Delivered);
    /// # Ok(())
    /// # }
    /// ```
    pub fn plan<J: JitterSource + ?Sized>(
        &self,
        state: &mut DeliveryState,
        now: UnixMillis,
        jitter: &mut J,
    ) -> Decision {
        let deadline = self
            .max_age_ms()
            .map(|age| state.created_at.as_millis().saturating_add(age));
        let expired = |t: UnixMillis| deadline.is_some_and(|d| t.as_millis() > d);

        if state.attempts == 0 {
            return if expired(now) {
                Decision::GiveUp(GiveUpReason::Expired)
            } else {
                Decision::DeliverNow { attempt: 1 }
            };
        }
        let outcome = state.outcome();
        match self.classifier().classify(&outcome) {
            OutcomeClass::Delivered => return Decision::Delivered,
            OutcomeClass::DisableEndpoint => return Decision::DisableEndpoint,
            OutcomeClass::Final => return Decision::GiveUp(GiveUpReason::NotRetryable),
            OutcomeClass::Retryable => {}
        }
        if state.attempts >= self.max_attempts() {
            return Decision::GiveUp(GiveUpReason::Exhausted);
        }
        let at = if state.flags & HAS_NEXT != 0 {
            state.next_at
        } else {
            let at = self.schedule_next(state, &outcome, jitter);
            state.next_at = at;
            state.flags |= HAS_NEXT;
            at
        };
        if expired(at.max(now)) {
            return Decision::GiveUp(GiveUpReason::Expired);
        }
        let attempt = state.attempts.saturating_add(1);
        if at <= now {
            Decision::DeliverNow { attempt }
        } else {
            Decision::RetryAt { at, attempt }
        }
    }

    #[inline]
    fn schedule_next<J: JitterSource + ?Sized>(
        &self,
        state: &DeliveryState,
        outcome: &AttemptOutcome,
        jitter: &mut J,
    ) -> UnixMillis {
        let nominal = self.nominal_ms(state.attempts);
        let mut delay = self.jitter().window(nominal).pick_millis(jitter);
        if let AttemptOutcome::Status {
            code: 429 | 503,
            retry_after: Some(RetryAfter::At(not_before)),
        } = *outcome
        {
            let asked = not_before
                .as_millis()
                .saturating_sub(state.last_attempt_at.as_millis());
            delay = delay.max(asked.min(self.retry_after_cap_ms()));
        }
        UnixMillis::from_millis(state.last_attempt_at.as_millis().saturating_add(delay))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::NoJitter;
    use std::time::Duration;

    #[test]
    fn state_is_small() {
        assert_eq!(std::mem::size_of::<DeliveryState>(), 40);
    }

    #[test]
    fn resume_matches_recorded_history() {
        let t0 = UnixMillis::from_secs(1000);
        let mut live = DeliveryState::new(t0);
        live.record(AttemptOutcome::Timeout, t0);
        live.record(AttemptOutcome::status(500), UnixMillis::from_secs(1002));
        let resumed = DeliveryState::resume(
            t0,
            2,
            UnixMillis::from_secs(1002),
            AttemptOutcome::status(500),
        );
        assert_eq!(live, resumed);
        let p = RetryPolicy::proposal_generator();
        assert_eq!(
            p.plan(&mut resumed.clone(), t0, &mut NoJitter),
            Decision::RetryAt {
                at: UnixMillis::from_secs(1004),
                attempt: 3
            }
        );
    }

    #[test]
    fn retry_after_ignored_on_other_statuses() {
        let p = RetryPolicy::proposal_generator();
        let t0 = UnixMillis::from_secs(1000);
        let mut s = DeliveryState::new(t0);
        s.record(AttemptOutcome::from_response(500, Some(b"600")), t0);
        assert_eq!(
            p.plan(&mut s, t0, &mut NoJitter),
            Decision::RetryAt {
                at: t0.saturating_add(Duration::from_secs(1)),
                attempt: 2
            }
        );
    }
}
