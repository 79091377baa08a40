//! [`Gate`]: one endpoint's limits as this dispatcher keeps them — rate limit, concurrency
//! cap, the receiver's pacing and the circuit breaker.

use std::sync::Arc;

use super::super::Endpoint;
use super::super::telemetry::{self, Limiter};
use crate::retry::{Acquire, AutoDisable, CircuitBreaker, Permit, TokenBucket, UnixMillis};
use crate::scheme::Scheme;

/// One endpoint's limits and health, as this dispatcher keeps them.
pub(super) struct Gate {
    pub(super) endpoint: Arc<Endpoint>,
    pub(super) scheme: Option<Arc<dyn Scheme>>,
    pub(super) bucket: Option<TokenBucket>,
    pub(super) in_flight: u32,
    /// Claims of this endpoint waiting in the dispatcher's ready buffer.
    pub(super) waiting: u32,
    /// Left out of claims until then (our rate limit, the receiver's pacing, an open
    /// breaker).
    pub(super) blocked_until: Option<UnixMillis>,
    pub(super) health: Option<AutoDisable>,
    pub(super) breaker: Option<CircuitBreaker>,
}

impl Gate {
    pub(super) fn new(endpoint: Arc<Endpoint>, now: UnixMillis) -> Self {
        Gate {
            scheme: endpoint.scheme().ok().map(Arc::from),
            bucket: endpoint.rate_limit().map(|l| TokenBucket::new(l, now)),
            health: endpoint
                .auto_disable_after()
                .map(|window| AutoDisable::resume(window, endpoint.failing_since())),
            breaker: endpoint
                .circuit_breaker()
                .and_then(|b| b.clone().build().ok()),
            endpoint,
            in_flight: 0,
            waiting: 0,
            blocked_until: None,
        }
    }

    /// Whether the endpoint should be left out of claims at `now`: it is held until later,
    /// or as many of its deliveries as its cap are in flight and as many again wait in the
    /// ready buffer.
    pub(super) fn saturated(&self, now: UnixMillis) -> bool {
        let cap = self.endpoint.concurrency().get();
        self.in_flight.saturating_add(self.waiting) >= cap.saturating_mul(2)
            || self.blocked_until.is_some_and(|t| t > now)
    }

    /// Whether as many attempts as the endpoint's cap are in flight.
    pub(super) fn at_cap(&self) -> bool {
        self.in_flight >= self.endpoint.concurrency().get()
    }

    /// Holds every delivery to the endpoint until `at` (or later, if already held longer).
    pub(super) fn block_until(&mut self, at: UnixMillis) {
        self.blocked_until = Some(self.blocked_until.map_or(at, |t| t.max(at)));
    }

    /// The receiver asked us to wait until `until`: the instruction
    /// [`plan`](super::plan::plan) hands back, applied.
    pub(super) fn pace(&mut self, until: UnixMillis) {
        self.block_until(until);
        telemetry::rate_limited(self.endpoint.profile(), Limiter::Receiver);
    }

    /// An attempt finished: its slot is free again.
    pub(super) fn finished(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Room for one more attempt now, or when there will be.
    pub(super) fn admit(&mut self, now: UnixMillis) -> Result<(), UnixMillis> {
        if self.in_flight >= self.endpoint.concurrency().get() {
            // Due again at once; the endpoint is skipped until an attempt finishes.
            return Err(now);
        }
        if let Some(until) = self.blocked_until.filter(|t| *t > now) {
            return Err(until);
        }
        if let Some(breaker) = &mut self.breaker
            && let Permit::PausedUntil(until) = breaker.check(now)
        {
            self.block_until(until);
            return Err(until);
        }
        if let Some(bucket) = &mut self.bucket
            && let Acquire::Wait(wait) = bucket.try_acquire(now)
        {
            let at = now.saturating_add(wait);
            self.blocked_until = Some(at);
            telemetry::rate_limited(self.endpoint.profile(), Limiter::Ours);
            return Err(at);
        }
        self.in_flight += 1;
        Ok(())
    }
}

/// Whether two versions of an endpoint have the same limits (so a reload keeps the gate).
pub(super) fn same_limits(a: &Endpoint, b: &Endpoint) -> bool {
    a.rate_limit() == b.rate_limit()
        && a.concurrency() == b.concurrency()
        && a.auto_disable_after() == b.auto_disable_after()
        && a.circuit_breaker() == b.circuit_breaker()
}
