//! [`Dispatcher`]: claims due deliveries, signs and sends each attempt, records the result,
//! and asks the retry planner what comes next.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::watch;

use super::batching::join;
use super::sender::Shared;
use super::signing::{Attempt, signed_request};
use super::store::{
    AttemptError, AttemptRecord, Claim, DeadReason, DeliveryKind, DeliveryStore, NewBatch,
    NewMessage, NextStep, Release, StoreError,
};
use super::telemetry::{self, AttemptSpan, Limiter};
use super::{
    DeliveryId, Endpoint, EndpointId, EndpointStatus, MessageId, Notification, Transport,
    TransportError, TransportResponse,
};

/// The event type a batch is sent under, where the profile sends one.
pub const BATCH_EVENT: &str = "batch";
use crate::retry::{
    Acquire, AttemptOutcome, AutoDisable, BreakerState, CircuitBreaker, Decision, DeliveryState,
    DisableReason, HealthChange, JitterSource, OutcomeClass, Permit, RetryAfter, SeededJitter,
    TokenBucket, UnixMillis,
};
use crate::scheme::Scheme;

/// Configures a [`Dispatcher`]; made by [`Sender::dispatcher`](super::Sender::dispatcher).
pub struct DispatcherBuilder<S, T> {
    shared: Arc<Shared<S>>,
    transport: T,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    jitter: SeededJitter,
}

impl<S, T> fmt::Debug for DispatcherBuilder<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DispatcherBuilder")
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl<S: DeliveryStore, T: Transport> DispatcherBuilder<S, T> {
    pub(crate) fn new(shared: Arc<Shared<S>>, transport: T) -> Self {
        DispatcherBuilder {
            shared,
            transport,
            concurrency: 64,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            jitter: SeededJitter::from_os(),
        }
    }

    /// At most `n` attempts in flight across all endpoints (default 64, at least 1).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How long a claim holds (default 60 s, at least 1 s). An attempt's timeout is capped
    /// at three quarters of it, so a live worker always finishes before its lease runs out.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_secs(1));
        self
    }

    /// How often an idle dispatcher looks at the store even without a wake-up (default
    /// 1 s): covers work published by other processes.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.max(Duration::from_millis(1));
        self
    }

    /// Seeds the retry jitter (deterministic tests).
    pub fn jitter_seed(mut self, seed: u64) -> Self {
        self.jitter = SeededJitter::new(seed);
        self
    }

    /// The dispatcher.
    pub fn build(self) -> Dispatcher<S, T> {
        Dispatcher {
            shared: self.shared,
            transport: Arc::new(self.transport),
            concurrency: self.concurrency,
            lease: self.lease,
            poll_interval: self.poll_interval,
            jitter: self.jitter,
            gates: HashMap::new(),
            generation: u64::MAX,
            in_flight: FuturesUnordered::new(),
            idle: true,
            finished: Vec::new(),
            claimed: HashMap::new(),
            changes: Vec::new(),
            failing_marks: Vec::new(),
            depth_read_at: None,
        }
    }

    /// Builds the dispatcher and runs it on the current tokio runtime until
    /// [`DispatcherHandle::shutdown`].
    pub fn spawn(self) -> DispatcherHandle {
        self.build().spawn()
    }
}

/// Delivers due work from a store.
///
/// One loop per dispatcher: record finished attempts (in one batch), claim as many due
/// deliveries as there are free slots, start them, then sleep until an attempt finishes, work
/// is published, the next delivery falls due, or shutdown. Each endpoint's rate limit and
/// concurrency cap are state kept per endpoint: a claimed delivery whose endpoint is
/// saturated goes straight back to the store, due when the endpoint will have room, and that
/// endpoint is left out of claims until then — so a slow, dead or rate-limited endpoint never
/// holds a slot another endpoint could use.
pub struct Dispatcher<S, T> {
    shared: Arc<Shared<S>>,
    transport: Arc<T>,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    jitter: SeededJitter,
    gates: HashMap<EndpointId, Gate>,
    generation: u64,
    /// Attempts in flight, polled by the dispatcher's own task (no task per attempt).
    in_flight: FuturesUnordered<BoxFuture<'static, Finished>>,
    /// The last claim found nothing due.
    idle: bool,
    finished: Vec<Finished>,
    /// Claims held by attempts in flight, released on shutdown.
    claimed: HashMap<super::DeliveryId, super::store::FencingToken>,
    /// Health changes seen since the last record, applied after it.
    changes: Vec<Notification>,
    /// Failure runs that began or ended since the last record, to store.
    failing_marks: Vec<(EndpointId, Option<UnixMillis>)>,
    /// When the queue depth was last read for metrics.
    depth_read_at: Option<Instant>,
}

impl<S, T> fmt::Debug for Dispatcher<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("concurrency", &self.concurrency)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

/// One endpoint's limits and health, as this dispatcher keeps them.
struct Gate {
    endpoint: Arc<Endpoint>,
    scheme: Arc<dyn Scheme>,
    bucket: Option<TokenBucket>,
    in_flight: u32,
    /// Left out of claims until then (our rate limit, the receiver's pacing, an open
    /// breaker).
    blocked_until: Option<UnixMillis>,
    health: Option<AutoDisable>,
    breaker: Option<CircuitBreaker>,
}

impl Gate {
    fn new(endpoint: Arc<Endpoint>, now: UnixMillis) -> Self {
        Gate {
            scheme: Arc::from(endpoint.scheme()),
            bucket: endpoint.rate_limit().map(|l| TokenBucket::new(l, now)),
            health: endpoint
                .auto_disable_after()
                .map(|window| AutoDisable::resume(window, endpoint.failing_since())),
            breaker: endpoint
                .circuit_breaker()
                .and_then(|b| b.clone().build().ok()),
            endpoint,
            in_flight: 0,
            blocked_until: None,
        }
    }

    fn saturated(&self, now: UnixMillis) -> bool {
        self.in_flight >= self.endpoint.concurrency().get()
            || self.blocked_until.is_some_and(|t| t > now)
    }

    fn block_until(&mut self, at: UnixMillis) {
        self.blocked_until = Some(self.blocked_until.map_or(at, |t| t.max(at)));
    }

    /// Room for one more attempt now, or when there will be.
    fn admit(&mut self, now: UnixMillis) -> Result<(), UnixMillis> {
        if self.in_flight >= self.endpoint.concurrency().get() {
            // Due again at once; the endpoint is skipped until an attempt finishes.
            return Err(now);
        }
        if let Some(until) = self.blocked_until.filter(|t| *t > now) {
            return Err(until);
        }
        if let Some(breaker) = &mut self.breaker {
            if let Permit::PausedUntil(until) = breaker.check(now) {
                self.block_until(until);
                return Err(until);
            }
        }
        if let Some(bucket) = &mut self.bucket {
            if let Acquire::Wait(wait) = bucket.try_acquire(now) {
                let at = now.saturating_add(wait);
                self.blocked_until = Some(at);
                telemetry::rate_limited(self.endpoint.profile(), Limiter::Ours);
                return Err(at);
            }
        }
        self.in_flight += 1;
        Ok(())
    }

    /// Feeds one attempt's class to the health trackers; what changed, to notify, and the
    /// failure clock when a run of failures began or ended (to store).
    fn observe(
        &mut self,
        class: OutcomeClass,
        now: UnixMillis,
        marks: &mut Vec<(EndpointId, Option<UnixMillis>)>,
    ) -> Vec<Notification> {
        let mut changes = Vec::new();
        let id = self.endpoint.id();
        if let Some(health) = &mut self.health {
            let before = health.failing_since();
            if let HealthChange::Disabled(reason) = health.observe(class, now) {
                changes.push(Notification::EndpointDisabled {
                    endpoint: id.clone(),
                    reason,
                });
            }
            if health.failing_since() != before {
                marks.push((id.clone(), health.failing_since()));
            }
        }
        if let Some(breaker) = &mut self.breaker {
            let was_closed = breaker.state() == BreakerState::Closed;
            breaker.observe(class, now);
            match breaker.state() {
                BreakerState::Open { until } => {
                    self.blocked_until = Some(until);
                    changes.push(Notification::EndpointPaused {
                        endpoint: id.clone(),
                        until,
                    });
                }
                BreakerState::Closed if !was_closed => {
                    changes.push(Notification::EndpointResumed {
                        endpoint: id.clone(),
                    });
                }
                _ => {}
            }
        }
        changes
    }
}

/// An attempt that ran.
struct Finished {
    claim: Claim,
    attempt: u32,
    started_at: UnixMillis,
    latency: Duration,
    result: Result<TransportResponse, TransportError>,
    span: AttemptSpan,
}

/// What stopping left behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Attempts that finished (and were recorded) during the shutdown.
    pub finished: usize,
    /// Attempts abandoned at the deadline; their claims were released (if the release
    /// failed, their leases run out instead).
    pub released: usize,
}

/// A running dispatcher.
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<Result<ShutdownReport, StoreError>>,
}

impl DispatcherHandle {
    /// Stops claiming, waits up to `deadline` for attempts in flight to finish and be
    /// recorded, and hands the rest back to the store.
    pub async fn shutdown(self, deadline: Duration) -> Result<ShutdownReport, StoreError> {
        let _ = self.stop.send(Some(Instant::now() + deadline));
        match self.task.await {
            Ok(result) => result,
            Err(_) => Err(StoreError::Backend("the dispatcher task panicked".into())),
        }
    }
}

impl<S: DeliveryStore, T: Transport> Dispatcher<S, T> {
    /// Runs on the current tokio runtime until [`DispatcherHandle::shutdown`].
    pub fn spawn(self) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(None);
        let task = tokio::spawn(self.run(stopped));
        DispatcherHandle { stop, task }
    }

    /// Delivers everything due by the clock's current time, waiting for each attempt, until
    /// nothing is due; returns how many attempts were made. For tests with a
    /// [`ManualClock`](super::ManualClock) and for one-shot tools.
    pub async fn run_due(&mut self) -> Result<usize, StoreError> {
        let mut attempts = 0;
        self.report_queue_depth().await;
        loop {
            let started = self.claim_and_start().await?;
            if started == 0 && self.in_flight.is_empty() {
                return Ok(attempts);
            }
            attempts += started;
            while let Some(done) = self.in_flight.next().await {
                self.finished.push(done);
            }
        }
    }

    async fn run(
        mut self,
        mut stop: watch::Receiver<Option<Instant>>,
    ) -> Result<ShutdownReport, StoreError> {
        loop {
            if stop.borrow().is_some() {
                break;
            }
            // Register interest before looking at the store, so a publish between the
            // claim and the wait still wakes us.
            let shared = Arc::clone(&self.shared);
            let wake = shared.wake.notified();
            tokio::pin!(wake);
            wake.as_mut().enable();
            // Work committed by other processes (PostgreSQL: LISTEN/NOTIFY); never resolves
            // for stores without such a signal.
            let new_work = shared.store.new_work();
            tokio::pin!(new_work);

            if let Err(e) = self.step().await {
                telemetry::store_failed(&e);
                tokio::time::sleep(self.poll_interval).await;
                continue;
            }
            self.report_queue_depth().await;
            let sleep_for = self.sleep_for().await;
            tokio::select! {
                _ = &mut wake => {}
                _ = &mut new_work => {}
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.finished.push(done);
                    self.linger().await;
                }
                _ = tokio::time::sleep(sleep_for) => {}
                _ = stop.changed() => {}
            }
        }
        let deadline = (*stop.borrow()).unwrap_or_else(Instant::now);
        self.drain(deadline).await
    }

    /// Collects more finished attempts for up to the store's batch window, so that one
    /// commit records many (SQLite); a no-op for stores without a window.
    async fn linger(&mut self) {
        let window = self.shared.store.batch_window();
        if window.is_zero() {
            return;
        }
        let deadline = tokio::time::Instant::now() + window;
        while !self.in_flight.is_empty() {
            tokio::select! {
                Some(done) = self.in_flight.next() => self.finished.push(done),
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
    }

    /// Reads the store's queue depth for metrics, at most every 5 s.
    async fn report_queue_depth(&mut self) {
        if !telemetry::REPORTS_QUEUE_DEPTH
            || self
                .depth_read_at
                .is_some_and(|at| at.elapsed() < Duration::from_secs(5))
        {
            return;
        }
        self.depth_read_at = Some(Instant::now());
        if let Ok((pending, in_flight)) = self.shared.store.queue_depth(self.shared.now()).await {
            telemetry::queue_depth(pending, in_flight);
        }
    }

    /// One round: record what finished, claim and start what is due.
    async fn step(&mut self) -> Result<(), StoreError> {
        while let Some(Some(done)) = self.in_flight.next().now_or_never() {
            self.finished.push(done);
        }
        self.idle = self.claim_and_start().await? == 0;
        Ok(())
    }

    async fn sleep_for(&mut self) -> Duration {
        let now = self.shared.now();
        let mut wait = self.poll_interval;
        // Ask the store only when the last claim found nothing: while work flows, every
        // finished attempt wakes the loop anyway.
        if self.idle && self.in_flight.len() < self.concurrency {
            if let Ok(Some(at)) = self.shared.store.next_due().await {
                wait = wait.min(at.saturating_duration_since(now));
            }
        }
        for gate in self.gates.values() {
            if let Some(until) = gate.blocked_until {
                if until > now {
                    wait = wait.min(until.saturating_duration_since(now));
                }
            }
        }
        wait.max(Duration::from_millis(1))
    }

    async fn drain(&mut self, deadline: Instant) -> Result<ShutdownReport, StoreError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(remaining, async {
            while let Some(done) = self.in_flight.next().await {
                self.finished.push(done);
            }
        })
        .await;
        // Whatever is still running is abandoned here; its claims are released below.
        self.in_flight = FuturesUnordered::new();
        let report = ShutdownReport {
            finished: self.finished.len(),
            released: self.claimed.len(),
        };
        self.record_finished().await?;
        let now = self.shared.now();
        let releases: Vec<Release> = self
            .claimed
            .drain()
            .map(|(delivery, token)| Release {
                delivery,
                token,
                due_at: now,
            })
            .collect();
        if !releases.is_empty() {
            self.shared.store.release(releases).await?;
        }
        Ok(report)
    }

    /// Reloads endpoint settings when this process changed an endpoint.
    async fn refresh_endpoints(&mut self) -> Result<(), StoreError> {
        let generation = self.shared.generation.load(Ordering::SeqCst);
        if generation == self.generation {
            return Ok(());
        }
        let now = self.shared.now();
        let endpoints = self.shared.store.endpoints().await?;
        let mut gates = HashMap::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let id = endpoint.id().clone();
            let gate = match self.gates.remove(&id) {
                // Same settings: keep the bucket, the counters and the health trackers.
                Some(mut old) if same_limits(&old.endpoint, &endpoint) => {
                    if endpoint.status() == EndpointStatus::Active {
                        // Enabled again by hand: a clean failure clock.
                        if let Some(health) = old.health.as_mut().filter(|h| h.is_disabled()) {
                            health.enable();
                        }
                    }
                    old.scheme = Arc::from(endpoint.scheme());
                    old.endpoint = endpoint;
                    old
                }
                Some(old) => {
                    let mut gate = Gate::new(endpoint, now);
                    gate.in_flight = old.in_flight;
                    gate
                }
                None => Gate::new(endpoint, now),
            };
            gates.insert(id, gate);
        }
        self.gates = gates;
        self.generation = generation;
        Ok(())
    }

    /// Records what finished and claims what is due, in one store call, then starts the
    /// claimed attempts.
    async fn claim_and_start(&mut self) -> Result<usize, StoreError> {
        self.refresh_endpoints().await?;
        let records = self.plan_finished();
        let disables = records.iter().any(|r| r.next == NextStep::DisableEndpoint);
        let free = self.concurrency.saturating_sub(self.in_flight.len());
        let now = self.shared.now();
        let claims = if free == 0 {
            if !records.is_empty() {
                self.shared.store.record(records).await?;
            }
            Vec::new()
        } else {
            let skip: Vec<EndpointId> = self
                .gates
                .iter()
                .filter(|(_, gate)| gate.saturated(now))
                .map(|(id, _)| id.clone())
                .collect();
            if records.is_empty() {
                self.shared
                    .store
                    .claim(now, free, self.lease, &skip)
                    .await?
            } else {
                // Stale results are refused by the store one by one; nothing to do here.
                let (_, claims) = self
                    .shared
                    .store
                    .record_and_claim(records, now, free, self.lease, &skip)
                    .await?;
                claims
            }
        };
        if disables || !self.changes.is_empty() || !self.failing_marks.is_empty() {
            self.apply_changes().await?;
            self.shared.endpoints_changed();
            self.refresh_endpoints().await?;
        }
        let mut started = 0;
        let mut releases = Vec::new();
        let mut expired = Vec::new();
        let mut to_batch: HashMap<EndpointId, Vec<Claim>> = HashMap::new();
        for claim in claims {
            if !self.gates.contains_key(&claim.endpoint) {
                // Registered by another process: load it.
                if let Some(endpoint) = self.shared.store.endpoint(&claim.endpoint).await? {
                    self.gates
                        .insert(claim.endpoint.clone(), Gate::new(endpoint, now));
                }
            }
            let Some(gate) = self.gates.get_mut(&claim.endpoint) else {
                releases.push(Release {
                    delivery: claim.delivery,
                    token: claim.token,
                    due_at: now.saturating_add(self.poll_interval),
                });
                continue;
            };
            let endpoint = Arc::clone(&gate.endpoint);
            let policy = endpoint.retry_policy();
            // A delivery queued again by hand is attempted whatever its age.
            if !claim.manual
                && policy
                    .max_age()
                    .is_some_and(|age| now > claim.created_at.saturating_add(age))
            {
                expired.push(no_response(claim, 0, now, None, NextStep::Expire));
                telemetry::recorded(endpoint.profile(), &expired[expired.len() - 1]);
                continue;
            }
            if claim.kind == DeliveryKind::Event && endpoint.batching().is_some() {
                to_batch
                    .entry(claim.endpoint.clone())
                    .or_default()
                    .push(claim);
                continue;
            }
            started += usize::from(self.start(claim, now, &mut releases, &mut expired));
        }
        for (endpoint, members) in to_batch {
            for claim in self
                .form_batches(&endpoint, members, now, &mut releases)
                .await?
            {
                started += usize::from(self.start(claim, now, &mut releases, &mut expired));
            }
        }
        if !releases.is_empty() {
            self.shared.store.release(releases).await?;
        }
        if !expired.is_empty() {
            self.shared.store.record(expired).await?;
        }
        Ok(started)
    }

    /// Starts one claimed attempt if its endpoint has room; otherwise hands it back (or, if
    /// it cannot be signed, dead-letters it). Whether it started.
    fn start(
        &mut self,
        claim: Claim,
        now: UnixMillis,
        releases: &mut Vec<Release>,
        expired: &mut Vec<AttemptRecord>,
    ) -> bool {
        let Some(gate) = self.gates.get_mut(&claim.endpoint) else {
            releases.push(Release {
                delivery: claim.delivery,
                token: claim.token,
                due_at: now.saturating_add(self.poll_interval),
            });
            return false;
        };
        let endpoint = Arc::clone(&gate.endpoint);
        let policy = endpoint.retry_policy();
        if let Err(at) = gate.admit(now) {
            releases.push(Release {
                delivery: claim.delivery,
                token: claim.token,
                due_at: at,
            });
            return false;
        }
        let attempt = claim.attempts.saturating_add(1);
        // A live worker always finishes (or times out) before its lease runs out.
        let timeout = policy.timeout().min(self.lease.mul_f64(0.75));
        let request = signed_request(
            &endpoint,
            &*gate.scheme,
            &Attempt {
                event_id: claim.event_id.as_str(),
                event_type: claim.event_type.as_str(),
                delivery_id: claim.delivery.as_str(),
                attempt,
            },
            &claim.body,
            now,
            timeout,
        );
        match request {
            Ok(request) => {
                self.claimed.insert(claim.delivery.clone(), claim.token);
                let transport = Arc::clone(&self.transport);
                let span = AttemptSpan::new(
                    endpoint.profile(),
                    claim.endpoint.as_str(),
                    claim.delivery.as_str(),
                    attempt,
                );
                let send = span.instrument(async move { transport.send(request).await });
                self.in_flight.push(
                    async move {
                        let begun = Instant::now();
                        let result = send.await;
                        Finished {
                            claim,
                            attempt,
                            started_at: now,
                            latency: begun.elapsed(),
                            result,
                            span,
                        }
                    }
                    .boxed(),
                );
                true
            }
            Err(_) => {
                gate.in_flight = gate.in_flight.saturating_sub(1);
                let next = NextStep::DeadLetter(DeadReason::Refused);
                let error = Some(AttemptError::Unsignable);
                expired.push(no_response(claim, attempt, now, error, next));
                telemetry::recorded(endpoint.profile(), &expired[expired.len() - 1]);
                false
            }
        }
    }

    /// Turns claimed event deliveries of one batching endpoint into batch deliveries: full
    /// batches and batches whose oldest event waited `max_wait` are formed (and returned,
    /// claimed); the rest go back to the store, due when their wait ends.
    async fn form_batches(
        &mut self,
        endpoint: &EndpointId,
        mut members: Vec<Claim>,
        now: UnixMillis,
        releases: &mut Vec<Release>,
    ) -> Result<Vec<Claim>, StoreError> {
        let Some(batching) = self
            .gates
            .get(endpoint)
            .and_then(|gate| gate.endpoint.batching())
        else {
            return Ok(Vec::new());
        };
        members.sort_by_key(|c| c.created_at);
        let size = usize::try_from(batching.max_events()).unwrap_or(usize::MAX);
        let mut formed = Vec::new();
        for chunk in members.chunks(size) {
            let oldest = chunk[0].created_at;
            let ready_at = oldest.saturating_add(batching.max_wait());
            if chunk.len() < size && ready_at > now {
                releases.extend(chunk.iter().map(|c| Release {
                    delivery: c.delivery.clone(),
                    token: c.token,
                    due_at: ready_at,
                }));
                continue;
            }
            let batch = NewBatch {
                message: NewMessage {
                    id: MessageId::generate(),
                    event_id: super::id::random_id("bat_").into(),
                    event_type: BATCH_EVENT.into(),
                    created_at: oldest,
                    bodies: vec![join(chunk.iter().map(|c| &c.body))],
                },
                delivery: DeliveryId::generate(),
                endpoint: endpoint.clone(),
                members: chunk
                    .iter()
                    .map(|c| (c.delivery.clone(), c.token))
                    .collect(),
            };
            if let Some(claim) = self.shared.store.form_batch(batch, now, self.lease).await? {
                formed.push(claim);
            }
        }
        Ok(formed)
    }

    /// Records every finished attempt in one store call and plans what comes next.
    async fn record_finished(&mut self) -> Result<(), StoreError> {
        let records = self.plan_finished();
        if records.is_empty() {
            return Ok(());
        }
        let disables = records.iter().any(|r| r.next == NextStep::DisableEndpoint);
        // Stale results (a lease that ran out) are refused by the store; nothing to do here.
        self.shared.store.record(records).await?;
        if disables || !self.changes.is_empty() || !self.failing_marks.is_empty() {
            self.apply_changes().await?;
            self.shared.endpoints_changed();
        }
        Ok(())
    }

    /// Disables the endpoints that failed past their window (`410 Gone` is disabled by the
    /// store with the result) and tells the app about every health change.
    async fn apply_changes(&mut self) -> Result<(), StoreError> {
        for (endpoint, since) in std::mem::take(&mut self.failing_marks) {
            match self.shared.store.set_failing_since(&endpoint, since).await {
                Ok(()) | Err(StoreError::UnknownEndpoint) => {}
                Err(e) => return Err(e),
            }
        }
        for change in std::mem::take(&mut self.changes) {
            if let Notification::EndpointDisabled {
                endpoint,
                reason: DisableReason::FailingSince(since),
            } = &change
            {
                let note = format!(
                    "disabled after failing continuously since {} ms after the unix epoch",
                    since.as_millis()
                );
                match self
                    .shared
                    .store
                    .set_endpoint_status(endpoint, EndpointStatus::Disabled, Some(&note))
                    .await
                {
                    Ok(()) | Err(StoreError::UnknownEndpoint) => {}
                    Err(e) => return Err(e),
                }
            }
            if let Notification::EndpointDisabled { endpoint, reason } = &change {
                if let Some(gate) = self.gates.get(endpoint) {
                    let why = match reason {
                        DisableReason::Gone => "gone",
                        _ => "failing",
                    };
                    telemetry::endpoint_disabled(gate.endpoint.profile(), why);
                }
            }
            self.shared.notify(change);
        }
        Ok(())
    }

    /// Asks the planner what comes after each finished attempt, frees their slots and feeds
    /// the endpoints' health trackers.
    fn plan_finished(&mut self) -> Vec<AttemptRecord> {
        let finished = std::mem::take(&mut self.finished);
        let now = self.shared.now();
        let mut records = Vec::with_capacity(finished.len());
        for done in finished {
            self.claimed.remove(&done.claim.delivery);
            let span = done.span.clone();
            let record = match self.gates.get_mut(&done.claim.endpoint) {
                Some(gate) => {
                    gate.in_flight = gate.in_flight.saturating_sub(1);
                    let (record, class) = plan_next(gate, done, now, &mut self.jitter);
                    telemetry::recorded(gate.endpoint.profile(), &record);
                    if record.charged || class == OutcomeClass::Delivered {
                        let changes = gate.observe(class, now, &mut self.failing_marks);
                        self.changes.extend(changes);
                    }
                    record
                }
                None => plan_next_without_endpoint(done, now),
            };
            span.finish(&record);
            records.push(record);
        }
        records
    }
}

fn same_limits(a: &Endpoint, b: &Endpoint) -> bool {
    a.rate_limit() == b.rate_limit()
        && a.concurrency() == b.concurrency()
        && a.auto_disable_after() == b.auto_disable_after()
        && a.circuit_breaker() == b.circuit_breaker()
}

fn outcome_of(
    result: &Result<TransportResponse, TransportError>,
) -> (AttemptOutcome, Option<AttemptError>) {
    match result {
        Ok(response) => (
            AttemptOutcome::from_response(
                response.status,
                response.header("retry-after").map(str::as_bytes),
            ),
            None,
        ),
        Err(TransportError::Timeout) => (AttemptOutcome::Timeout, Some(AttemptError::Timeout)),
        Err(TransportError::Connection) => (
            AttemptOutcome::ConnectionError,
            Some(AttemptError::Connection),
        ),
        Err(TransportError::Refused(why)) => {
            (AttemptOutcome::Other, Some(AttemptError::Refused(*why)))
        }
        Err(_) => (AttemptOutcome::Other, Some(AttemptError::Other)),
    }
}

/// When the receiver asked us to wait: `Retry-After` on a `429`, or `X-RateLimit-Remaining:
/// 0` with `X-RateLimit-Reset` (unix seconds; a value below 10^9 is read as seconds from
/// now) on any answer. Clamped to the policy's `Retry-After` cap.
fn paced_until(response: &TransportResponse, now: UnixMillis, cap: Duration) -> Option<UnixMillis> {
    let latest = now.saturating_add(cap);
    if response.status == 429 {
        if let Some(value) = response.header("retry-after") {
            if let Ok(after) = RetryAfter::parse(value.as_bytes()) {
                return Some(after.not_before(now).clamp(now, latest));
            }
        }
    }
    let exhausted = response
        .header("x-ratelimit-remaining")
        .is_some_and(|v| v.trim() == "0");
    let reset: u64 = response.header("x-ratelimit-reset")?.trim().parse().ok()?;
    if !exhausted {
        return None;
    }
    let at = if reset < 1_000_000_000 {
        now.saturating_add(Duration::from_secs(reset))
    } else {
        UnixMillis::from_secs(reset)
    };
    Some(at.clamp(now, latest))
}

/// What comes after an attempt, and its outcome class for the health trackers.
fn plan_next<J: JitterSource + ?Sized>(
    gate: &mut Gate,
    done: Finished,
    now: UnixMillis,
    jitter: &mut J,
) -> (AttemptRecord, OutcomeClass) {
    let (outcome, error) = outcome_of(&done.result);
    let endpoint = Arc::clone(&gate.endpoint);
    let policy = endpoint.retry_policy();
    let class = policy.classifier().classify(&outcome);
    if matches!(error, Some(AttemptError::Refused(_))) {
        // A refused destination is not retried: the URL must change first.
        let next = NextStep::DeadLetter(DeadReason::Refused);
        return (into_record(done, error, next, true), class);
    }
    if let Ok(response) = &done.result {
        if let Some(until) = paced_until(response, now, policy.retry_after_cap()) {
            // The receiver paces this endpoint: hold all of its deliveries, not just this one.
            gate.block_until(until);
            telemetry::rate_limited(endpoint.profile(), Limiter::Receiver);
            if response.status == 429 {
                // Waiting as asked is not a failure: the attempt is logged, not charged.
                return (
                    into_record(done, error, NextStep::RetryAt(until), false),
                    class,
                );
            }
        }
    }
    let mut state = DeliveryState::resume(
        done.claim.created_at,
        done.claim.charged,
        done.started_at,
        AttemptOutcome::Other,
    );
    state.record(outcome, now);
    let next = match policy.plan(&mut state, now, jitter) {
        Decision::DeliverNow { .. } => NextStep::RetryAt(now),
        Decision::RetryAt { at, .. } => NextStep::RetryAt(at),
        Decision::Delivered => NextStep::Delivered,
        Decision::GiveUp(reason) => NextStep::give_up(reason),
        Decision::DisableEndpoint => NextStep::DisableEndpoint,
    };
    (into_record(done, error, next, true), class)
}

/// The endpoint vanished mid-attempt: keep the result, retry later.
fn plan_next_without_endpoint(done: Finished, now: UnixMillis) -> AttemptRecord {
    let (_, error) = outcome_of(&done.result);
    let delivered = matches!(&done.result, Ok(r) if (200..300).contains(&r.status));
    let next = if delivered {
        NextStep::Delivered
    } else {
        NextStep::RetryAt(now.saturating_add(Duration::from_secs(60)))
    };
    into_record(done, error, next, true)
}

/// The record of a claim that got no attempt (expired) or whose attempt could not be made
/// (unsignable).
fn no_response(
    claim: Claim,
    attempt: u32,
    now: UnixMillis,
    error: Option<AttemptError>,
    next: NextStep,
) -> AttemptRecord {
    AttemptRecord {
        delivery: claim.delivery,
        token: claim.token,
        attempt,
        started_at: now,
        latency: Duration::ZERO,
        status: None,
        error,
        response_headers: Vec::new(),
        response_body: bytes::Bytes::new(),
        charged: attempt > 0,
        manual: claim.manual && attempt > 0,
        next,
    }
}

fn into_record(
    done: Finished,
    error: Option<AttemptError>,
    next: NextStep,
    charged: bool,
) -> AttemptRecord {
    let (status, response_headers, response_body) = match done.result {
        Ok(response) => (Some(response.status), response.headers, response.body),
        Err(_) => (None, Vec::new(), bytes::Bytes::new()),
    };
    AttemptRecord {
        delivery: done.claim.delivery,
        token: done.claim.token,
        attempt: done.attempt,
        started_at: done.started_at,
        latency: done.latency,
        status,
        error,
        response_headers,
        response_body,
        charged,
        manual: done.claim.manual,
        next,
    }
}
