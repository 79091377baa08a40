//! [`Dispatcher`]: claims due deliveries, signs and sends each attempt, records the result,
//! and asks the retry planner what comes next.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | the builder, the handle, the run loop, recording and shutdown |
//! | `attempt.rs` | one attempt's task on the runtime's workers: sign, send, read the answer |
//! | `gate.rs` | one endpoint's limits: rate limit, concurrency, the receiver's pacing, the breaker |
//! | `batch.rs` | batch formation |
//! | `health.rs` | health changes → the store and [`Notification`]s |
//! | `idle.rs` | what [`DispatcherHandle::wait_idle`] waits for, and [`NotIdle`] |
//! | `plan.rs` | outcome planning, a pure function of the attempt's result |
//! | `round.rs` | one store round (record, hand back, claim ahead), run beside the loop |

mod attempt;
mod batch;
mod gate;
mod health;
mod idle;
pub(crate) mod plan;
mod round;

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures_util::FutureExt as _;
use futures_util::stream::{FuturesUnordered, StreamExt as _};
use tokio::sync::{Notify, watch};

use super::sender::Shared;
use super::store::{
    AttemptError, AttemptRecord, ClaimedDelivery, DeadReason, DeliveryKind, DeliveryStore,
    NextStep, Release, StoreError,
};
use super::telemetry::{self, AttemptSpan};
use super::{EndpointId, EndpointStatus, Notification, Transport};
use crate::retry::{SeededJitter, UnixMillis};
use attempt::{Finished, Job, Ran};
use gate::{Gate, same_limits};
use idle::Activity;
pub use idle::NotIdle;
use plan::no_response;

/// The first wait after a store failure; it doubles up to [`LONGEST_STORE_BACKOFF`].
const FIRST_STORE_BACKOFF: Duration = Duration::from_millis(50);
/// The longest wait between tries while the store fails.
const LONGEST_STORE_BACKOFF: Duration = Duration::from_secs(2);
/// The longest lease or poll interval taken; longer ones are cut to this (about 30 years),
/// so that no instant computed from them overflows.
const LONGEST: Duration = Duration::from_secs(30 * 365 * 24 * 3600);

/// Store rounds a turn of the run loop may begin when the store answers at once (memory);
/// past them the loop yields and takes another turn.
const ROUNDS_PER_TURN: usize = 8;

/// `now + d`, or about 30 years from now where that would overflow.
fn instant_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(LONGEST))
        .unwrap_or(now)
}

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

    /// How long a claim holds (default 60 s, at least 1 s, at most about 30 years:
    /// `Duration::MAX` is taken as that). An attempt's timeout is capped at three quarters
    /// of it, so a live worker always finishes before its lease runs out.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_secs(1), LONGEST);
        self
    }

    /// How often an idle dispatcher looks at the store even without a wake-up (default
    /// 1 s, at least 1 ms, at most about 30 years): covers work published by other
    /// processes.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll_interval = every.clamp(Duration::from_millis(1), LONGEST);
        self
    }

    /// Seeds the retry jitter (deterministic tests).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
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
            finished: Vec::new(),
            unrecorded: Vec::new(),
            unsettled_changes: Vec::new(),
            unsettled_marks: Vec::new(),
            to_release: Vec::new(),
            ready: VecDeque::new(),
            unready: Vec::new(),
            round: None,
            last_round_records: 0,
            claim_wanted: true,
            record_due: None,
            again: false,
            backoff: None,
            claimed: HashMap::new(),
            changes: Vec::new(),
            failing_marks: Vec::new(),
            endpoints_dirty: false,
            depth_read_at: None,
            found_nothing: false,
            found_nothing_turn: 0,
            activity: watch::Sender::new(Activity::default()),
            poke: Arc::new(Notify::new()),
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
/// One loop per dispatcher: plan finished attempts, start claimed deliveries while there
/// are free slots, and send the store one round at a time — the results held (in one batch)
/// and a claim for the free slots plus claims ahead of them (as many as the concurrency, or
/// twice the results the last round recorded if more, at most 128) — that runs while the
/// loop goes on; then sleep until an attempt finishes, the round returns, work is published,
/// the next delivery falls due, or shutdown. Results that finish while a round is in the
/// store ride the next one, so a commit carries more as the load grows. Each endpoint's rate
/// limit and concurrency cap are state kept per endpoint: a claimed delivery whose endpoint is
/// saturated goes straight back to the store, due when the endpoint will have room, and that
/// endpoint is left out of claims until then — so a slow, dead or rate-limited endpoint never
/// holds a slot another endpoint could use.
///
/// **Store failures.** A store call that fails (database down, locked, connection lost)
/// does not stop the loop and does not lose results: the planned results the store did not
/// accept are kept, and recorded as soon as the store answers again, tried after 50 ms,
/// then doubling up to 2 s between tries. Until they are recorded the dispatcher claims
/// nothing new (so what it keeps stays bounded by its concurrency) and attempts none of
/// them again; attempts in flight still finish. Failures are logged through `tracing`
/// (feature `tracing`) under the target `hookrelay::send`.
pub struct Dispatcher<S, T> {
    shared: Arc<Shared<S>>,
    transport: Arc<T>,
    concurrency: usize,
    lease: Duration,
    poll_interval: Duration,
    jitter: SeededJitter,
    gates: HashMap<EndpointId, Gate>,
    generation: u64,
    /// Attempts in flight, each a task on the runtime's workers (signing, sending and
    /// reading the answer run there); this task only waits for them to finish.
    in_flight: FuturesUnordered<attempt::Running>,
    /// Attempts that finished, not planned yet.
    finished: Vec<Finished>,
    /// Planned results the store has not accepted yet (oldest first).
    unrecorded: Vec<AttemptRecord>,
    /// Health changes and failure clocks caused by results not stored yet.
    unsettled_changes: Vec<Notification>,
    unsettled_marks: Vec<(EndpointId, Option<UnixMillis>)>,
    /// Claims to hand back without an attempt (the endpoint had no room, the claim waited
    /// too long); sent with the next round.
    to_release: Vec<Release>,
    /// Claimed and ready to start when a slot frees (claims ahead of free capacity).
    ready: VecDeque<Ready>,
    /// Claimed, but needing the store before they are ready (an endpoint not loaded yet, a
    /// batching endpoint).
    unready: Vec<ClaimedDelivery>,
    /// The store round in flight, if any.
    round: Option<round::Round>,
    /// How many results the last round that the store took recorded: what sizes the claims
    /// ahead ([`Self::claim_limit`]).
    last_round_records: usize,
    /// Work may be due: a wake-up, a poll, or a claim that came back full.
    claim_wanted: bool,
    /// When results held must be recorded even if nothing else needs the store.
    record_due: Option<Instant>,
    /// The turn ended wanting another at once (a store that answers at once).
    again: bool,
    /// Set while the store fails: when to try it again, and how long the last wait was.
    backoff: Option<Backoff>,
    /// Claims held by attempts in flight, released on shutdown.
    claimed: HashMap<super::DeliveryId, super::store::FencingToken>,
    /// Health changes seen since the last record, applied after it.
    changes: Vec<Notification>,
    /// Failure runs that began or ended since the last record, to store.
    failing_marks: Vec<(EndpointId, Option<UnixMillis>)>,
    /// A recorded result disabled an endpoint: reload the endpoints.
    endpoints_dirty: bool,
    /// When the queue depth was last read for metrics.
    depth_read_at: Option<Instant>,
    /// The last claim returned no delivery (not even one to hand back).
    found_nothing: bool,
    /// The turn that began that claim.
    found_nothing_turn: u64,
    /// Told after each round of the run loop, for [`DispatcherHandle::wait_idle`].
    activity: watch::Sender<Activity>,
    /// Asks the run loop for a round now ([`DispatcherHandle::wait_idle`]).
    poke: Arc<Notify>,
}

impl<S, T> fmt::Debug for Dispatcher<S, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dispatcher")
            .field("concurrency", &self.concurrency)
            .field("in_flight", &self.in_flight.len())
            .field("unrecorded", &self.unrecorded.len())
            .finish_non_exhaustive()
    }
}

/// A claim waiting in the ready buffer, and since when.
struct Ready {
    claim: ClaimedDelivery,
    at: Instant,
}

/// The result of the round in the store (pending while there is none).
async fn round_result(
    round: &mut Option<round::Round>,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    match round {
        Some(round) => round.call.as_mut().await,
        None => std::future::pending().await,
    }
}

/// The store failed: when to try again.
#[derive(Debug, Clone, Copy)]
struct Backoff {
    wait: Duration,
    until: Instant,
}

/// What stopping left behind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// Attempts that finished during the shutdown and were recorded.
    pub finished: usize,
    /// Attempts abandoned at the deadline; their claims were released (if the release
    /// failed, their leases run out instead).
    pub released: usize,
    /// Results the store did not accept by the deadline (it kept failing). Their claims run
    /// out with their leases, and those deliveries are attempted again then.
    pub unrecorded: usize,
}

/// A running dispatcher.
#[derive(Debug)]
pub struct DispatcherHandle {
    stop: watch::Sender<Option<Instant>>,
    task: tokio::task::JoinHandle<Result<ShutdownReport, StoreError>>,
    activity: watch::Receiver<Activity>,
    poke: Arc<Notify>,
}

impl DispatcherHandle {
    /// Waits, up to `deadline`, until this dispatcher is idle: nothing it could claim is due
    /// now, and no attempt of it is in flight or waiting to be recorded (its result and any
    /// health change it caused are in the store).
    ///
    /// Deliveries due later do not count: a retry planned for 10 minutes from now, a
    /// delivery held back until an endpoint's rate limit, the receiver's `Retry-After` or an
    /// open circuit breaker lets it go, a delivery of a disabled or paused endpoint. Work
    /// published before the call is seen: only a round of the dispatcher that began after
    /// the call can report it idle (the call wakes it for one). No polling: it waits for the
    /// dispatcher's rounds, which attempts finishing, publishing and due times wake.
    ///
    /// A deadline that passes while work is due or in flight → [`NotIdle`]; a dispatcher
    /// that has stopped → [`NotIdle::is_stopped`]. `Duration::MAX` waits however long.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hookrelay::event::OutgoingEvent;
    /// use hookrelay::send::{MemoryStore, OutboundRequest, Sender, Transport};
    /// use hookrelay::send::{TransportError, TransportResponse};
    ///
    /// /// Answers every attempt `204 No Content` (a real app uses `ReqwestTransport`).
    /// struct Accept;
    ///
    /// impl Transport for Accept {
    ///     async fn send(&self, _: OutboundRequest) -> Result<TransportResponse, TransportError> {
    ///         Ok(TransportResponse::status(204))
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::new(MemoryStore::new());
    /// # use hookrelay::{Secret, profile::Profile, send::Endpoint};
    /// # sender.add_endpoint(
    /// #     Endpoint::builder("https://hooks.example/", Profile::GitHub)
    /// #         .secret(Secret::from_raw("s3cret")?)
    /// #         .build()?,
    /// # ).await?;
    /// let dispatcher = sender.dispatcher(Accept).spawn();
    /// let message = sender
    ///     .publish(OutgoingEvent::new("push", serde_json::json!({"ref": "main"})))
    ///     .await?;
    /// dispatcher.wait_idle(Duration::from_secs(30)).await?;
    /// for delivery in sender.deliveries_of(&message).await? {
    ///     assert_eq!(delivery.status, hookrelay::send::DeliveryStatus::Delivered);
    /// }
    /// dispatcher.shutdown(Duration::from_secs(5)).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_idle(&self, deadline: Duration) -> Result<(), NotIdle> {
        let mut activity = self.activity.clone();
        let asked = activity.borrow_and_update().begun;
        self.poke.notify_one();
        let idle = async {
            loop {
                let seen = *activity.borrow_and_update();
                if seen.ended > asked && seen.idle {
                    return Ok(());
                }
                if activity.changed().await.is_err() {
                    return Err(NotIdle::stopped());
                }
            }
        };
        tokio::time::timeout(deadline, idle)
            .await
            .unwrap_or_else(|_| Err(NotIdle::busy()))
    }

    /// Stops claiming, waits up to `deadline` for attempts in flight to finish and be
    /// recorded (retrying a failing store until then), and hands the rest back to the
    /// store. `Duration::MAX` waits for every attempt in flight, however long.
    ///
    /// What could not be recorded is counted in [`ShutdownReport::unrecorded`]; an error
    /// comes back only if the dispatcher's task itself failed.
    pub async fn shutdown(self, deadline: Duration) -> Result<ShutdownReport, StoreError> {
        let _ = self
            .stop
            .send(Some(instant_after(Instant::now(), deadline)));
        match self.task.await {
            Ok(result) => result,
            Err(panic) => Err(StoreError::other(panic)),
        }
    }
}

impl<S: DeliveryStore, T: Transport> Dispatcher<S, T> {
    /// Runs on the current tokio runtime until [`DispatcherHandle::shutdown`].
    pub fn spawn(self) -> DispatcherHandle {
        let (stop, stopped) = watch::channel(None);
        let activity = self.activity.subscribe();
        let poke = Arc::clone(&self.poke);
        let task = tokio::spawn(self.run(stopped));
        DispatcherHandle {
            stop,
            task,
            activity,
            poke,
        }
    }

    /// Delivers everything due by the clock's current time, waiting for each attempt, until
    /// nothing is due; returns how many attempts were made. For tests with a
    /// [`ManualClock`](super::ManualClock); a running dispatcher is waited for with
    /// [`DispatcherHandle::wait_idle`].
    ///
    /// A store failure comes back as the error; the results planned so far are kept and
    /// recorded by the next call, before it claims anything.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub async fn run_due(&mut self) -> Result<usize, StoreError> {
        let mut attempts = 0;
        self.report_queue_depth().await;
        loop {
            let started = match self.claim_and_start().await {
                Ok(started) => {
                    self.backoff = None;
                    started
                }
                Err(e) => {
                    self.store_failed(&e);
                    return Err(e);
                }
            };
            if started == 0 && self.in_flight.is_empty() && self.finished.is_empty() {
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
            // A waiter asked for a round (a poke while the round runs is kept for the next).
            let poke = Arc::clone(&self.poke);
            let poked = poke.notified();
            tokio::pin!(poked);

            self.activity.send_modify(|a| a.begun += 1);
            self.step().await;
            let idle = self.is_idle();
            let since = self.found_nothing_turn;
            self.activity.send_modify(|a| {
                a.ended = since;
                a.idle = idle;
            });
            let sleep_for = self.sleep_for().await;
            tokio::select! {
                _ = &mut wake => self.claim_wanted = true,
                _ = &mut new_work => self.claim_wanted = true,
                _ = &mut poked => self.claim_wanted = true,
                Some(done) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.finished.push(done);
                }
                result = round_result(&mut self.round), if self.round.is_some() => {
                    if let Some(round) = self.round.take()
                        && let Ok(claims) = self.end_round(round.carried, result)
                    {
                        self.take_claims(claims);
                    }
                }
                _ = tokio::time::sleep(sleep_for) => self.claim_wanted = true,
                _ = stop.changed() => {}
            }
        }
        let deadline = (*stop.borrow()).unwrap_or_else(Instant::now);
        Ok(self.drain(deadline).await)
    }

    /// Nothing to do now: the last claim found nothing due and nothing waits to be started,
    /// to finish or to be stored.
    fn is_idle(&self) -> bool {
        self.found_nothing
            && !self.claim_wanted
            && self.round.is_none()
            && self.backoff.is_none()
            && self.in_flight.is_empty()
            && self.finished.is_empty()
            && self.ready.is_empty()
            && self.unrecorded.is_empty()
            && self.to_release.is_empty()
            && self.unsettled_changes.is_empty()
            && self.unsettled_marks.is_empty()
            && !self.has_changes()
    }

    /// The store failed: log it and wait longer before the next try.
    fn store_failed(&mut self, error: &StoreError) {
        telemetry::store_failed(error);
        let wait = self.backoff.map_or(FIRST_STORE_BACKOFF, |b| {
            b.wait.saturating_mul(2).min(LONGEST_STORE_BACKOFF)
        });
        self.backoff = Some(Backoff {
            wait,
            until: instant_after(Instant::now(), wait),
        });
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

    /// One turn of the run loop: plan what finished, start what is ready, and begin store
    /// rounds while none is in the store and one is wanted ([`Self::round_wanted`]). While
    /// the store fails nothing is sent to it before the backoff ends.
    async fn step(&mut self) {
        self.again = false;
        while let Some(Some(done)) = self.in_flight.next().now_or_never() {
            self.finished.push(done);
        }
        self.plan_finished();
        self.start_ready();
        if self.backoff.is_some_and(|b| Instant::now() < b.until) {
            return;
        }
        if let Err(e) = self.settle().await {
            self.store_failed(&e);
            return;
        }
        // A store that answers at once (memory) may take a few rounds in one turn.
        for _ in 0..ROUNDS_PER_TURN {
            if self.round.is_some() {
                return;
            }
            let Some(limit) = self.round_wanted() else {
                return;
            };
            self.begin(limit);
            if self.round.is_none()
                && let Err(e) = self.settle().await
            {
                self.store_failed(&e);
                return;
            }
        }
        self.again = self.round.is_none();
    }

    /// Whether to begin a round now, and how many deliveries it claims: to claim when a
    /// wake-up, a poll or a full last claim says work may be due and there is room (free
    /// slots or the ready buffer below its mark); to record the results and hand-backs held
    /// when nothing is in flight, the store backs off, half the concurrency's worth waits,
    /// or the store's batch window has passed since the first of them. After a store
    /// failure, the results held go first, on their own.
    fn round_wanted(&mut self) -> Option<usize> {
        let may_claim = self.backoff.is_none() || self.unrecorded.is_empty();
        let limit = if may_claim { self.claim_limit(true) } else { 0 };
        if limit > 0 && self.claim_wanted {
            return Some(limit);
        }
        if self.unrecorded.is_empty() && self.to_release.is_empty() {
            return None;
        }
        let now = Instant::now();
        let window = self.shared.store.batch_window().min(LONGEST_STORE_BACKOFF);
        let due = *self.record_due.get_or_insert(now + window);
        let now_please = self.in_flight.is_empty()
            || self.backoff.is_some()
            || self.unrecorded.len() >= self.concurrency.div_ceil(2)
            || now >= due;
        now_please.then_some(limit)
    }

    /// Begins a round and polls it once: if the store answered already its claims are
    /// taken now, otherwise the run loop waits for it beside everything else.
    fn begin(&mut self, limit: usize) {
        self.record_due = None;
        let turn = self.activity.borrow().begun;
        let mut round = self.begin_round(limit, turn);
        match Self::poll_round_once(&mut round) {
            Some(result) => {
                if let Ok(claims) = self.end_round(round.carried, result) {
                    self.take_claims(claims);
                }
            }
            None => self.round = Some(round),
        }
    }

    /// Stores health changes, reloads changed endpoints and readies the claims that
    /// needed the store (an endpoint this process has not loaded, a batching endpoint's),
    /// then starts what has room.
    async fn settle(&mut self) -> Result<(), StoreError> {
        self.refresh_endpoints().await?;
        if self.has_changes() {
            self.apply_changes().await?;
            self.refresh_endpoints().await?;
        }
        self.prepare_unready().await?;
        self.start_ready();
        Ok(())
    }

    async fn sleep_for(&mut self) -> Duration {
        if self.again {
            return Duration::ZERO;
        }
        if let Some(backoff) = self.backoff {
            // The store failed: wait for it (attempts in flight still finish).
            return backoff
                .until
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1));
        }
        self.report_queue_depth().await;
        let now = self.shared.now();
        let mut wait = self.poll_interval;
        // Ask the store only when the last claim found nothing: while work flows, every
        // finished attempt wakes the loop anyway.
        if self.found_nothing
            && self.round.is_none()
            && self.in_flight.len() < self.concurrency
            && let Ok(Some(at)) = self.shared.store.next_due().await
        {
            wait = wait.min(at.saturating_duration_since(now));
        }
        if let Some(at) = self.record_due {
            wait = wait.min(at.saturating_duration_since(Instant::now()));
        }
        for gate in self.gates.values() {
            if let Some(until) = gate.blocked_until
                && until > now
            {
                wait = wait.min(until.saturating_duration_since(now));
            }
        }
        wait.max(Duration::from_millis(1))
    }

    /// Waits up to `deadline` for the round in the store and the attempts in flight,
    /// records every result it holds (retrying a failing store until the deadline) and
    /// hands back the claims of attempts it abandons and of those it never started.
    async fn drain(&mut self, deadline: Instant) -> ShutdownReport {
        if let Some(round) = self.round.take() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let result = tokio::time::timeout(remaining, round.call)
                .await
                .unwrap_or_else(|_| Err(StoreError::timeout("the dispatcher's deadline")));
            if let Ok(claims) = self.end_round(round.carried, result) {
                self.unready.extend(claims);
            }
        }
        let now = self.shared.now();
        let unstarted = self
            .ready
            .drain(..)
            .map(|ready| ready.claim)
            .chain(self.unready.drain(..));
        self.to_release.extend(unstarted.map(|claim| Release {
            delivery: claim.delivery,
            token: claim.token,
            due_at: now,
        }));
        let remaining = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(remaining, async {
            while let Some(done) = self.in_flight.next().await {
                self.finished.push(done);
            }
        })
        .await;
        // Whatever is still running is abandoned here; its claims are released below.
        self.in_flight = FuturesUnordered::new();
        let finished = self.finished.len();
        self.plan_finished();
        let mut wait = FIRST_STORE_BACKOFF;
        while !self.unrecorded.is_empty() || !self.to_release.is_empty() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(remaining, self.record_unrecorded()).await {
                Ok(Ok(())) => break,
                // Logged by the round.
                Ok(Err(_)) => {}
                Err(_) => break,
            }
            if Instant::now() + wait >= deadline {
                break;
            }
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2).min(LONGEST_STORE_BACKOFF);
        }
        if self.has_changes() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if let Ok(Err(e)) = tokio::time::timeout(remaining, self.apply_changes()).await {
                telemetry::store_failed(&e);
            }
        }
        let unrecorded = self.unrecorded.len();
        let now = self.shared.now();
        let abandoned: Vec<Release> = self
            .claimed
            .drain()
            .map(|(delivery, token)| Release {
                delivery,
                token,
                due_at: now,
            })
            .collect();
        let released = abandoned.len();
        let mut releases = abandoned;
        releases.append(&mut self.to_release);
        if !releases.is_empty() {
            // Best effort, even past the deadline: otherwise the leases run out.
            if let Err(e) = self.shared.store.release(releases).await {
                telemetry::store_failed(&e);
            }
        }
        ShutdownReport {
            // Recording is all or nothing.
            finished: if unrecorded == 0 { finished } else { 0 },
            released,
            unrecorded,
        }
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
                    old.scheme = endpoint.scheme().ok().map(Arc::from);
                    old.endpoint = endpoint;
                    old
                }
                Some(old) => {
                    let mut gate = Gate::new(endpoint, now);
                    gate.in_flight = old.in_flight;
                    gate.waiting = old.waiting;
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
    /// claimed attempts; waits for the store (no claims ahead). After a store failure, the
    /// results it holds are recorded first and on their own: nothing new is claimed while
    /// any wait. How many attempts started.
    #[cfg(feature = "test-util")]
    async fn claim_and_start(&mut self) -> Result<usize, StoreError> {
        self.refresh_endpoints().await?;
        self.plan_finished();
        if self.backoff.is_some() {
            self.record_unrecorded().await?;
        }
        let limit = self.claim_limit(false);
        let turn = self.activity.borrow().begun;
        let round::Round { call, carried } = self.begin_round(limit, turn);
        let result = call.await;
        let claims = self.end_round(carried, result)?;
        let before = self.in_flight.len();
        self.take_claims(claims);
        self.settle().await?;
        let started = self.in_flight.len() - before;
        // Expired, unsignable and handed-back deliveries.
        self.record_unrecorded().await?;
        Ok(started)
    }

    /// Takes claims the store handed out: expired ones are recorded as such, those that
    /// need the store first wait in `unready`, the rest join the ready buffer; then starts
    /// what has room.
    fn take_claims(&mut self, claims: Vec<ClaimedDelivery>) {
        let now = self.shared.now();
        let at = Instant::now();
        for claim in claims {
            if let Some(claim) = self.sort_claim(claim, now, at) {
                self.unready.push(claim);
            }
        }
        self.start_ready();
    }

    /// One claim into the ready buffer, or recorded as expired; handed back if it needs
    /// the store first (its endpoint is not loaded, or batches).
    fn sort_claim(
        &mut self,
        claim: ClaimedDelivery,
        now: UnixMillis,
        at: Instant,
    ) -> Option<ClaimedDelivery> {
        let Some(gate) = self.gates.get(&claim.endpoint) else {
            return Some(claim);
        };
        let endpoint = &gate.endpoint;
        // A delivery queued again by hand is attempted whatever its age.
        if !claim.manual
            && endpoint
                .retry_policy()
                .max_age()
                .is_some_and(|age| now > claim.created_at.saturating_add(age))
        {
            let profile = endpoint.profile();
            let record = no_response(claim, 0, now, None, NextStep::Expire);
            telemetry::recorded(profile, &record);
            self.unrecorded.push(record);
            return None;
        }
        if claim.kind == DeliveryKind::Event && endpoint.batching().is_some() {
            return Some(claim);
        }
        self.push_ready(claim, at);
        None
    }

    /// Puts a claim at the back of the ready buffer.
    fn push_ready(&mut self, claim: ClaimedDelivery, at: Instant) {
        if let Some(gate) = self.gates.get_mut(&claim.endpoint) {
            gate.waiting = gate.waiting.saturating_add(1);
        }
        self.ready.push_back(Ready { claim, at });
    }

    /// Takes the claim at the front of the ready buffer.
    fn pop_ready(&mut self) -> Option<Ready> {
        let ready = self.ready.pop_front()?;
        if let Some(gate) = self.gates.get_mut(&ready.claim.endpoint) {
            gate.waiting = gate.waiting.saturating_sub(1);
        }
        Some(ready)
    }

    /// Readies the claims that needed the store: loads endpoints registered by another
    /// process (claims of unknown endpoints go back), forms batches.
    async fn prepare_unready(&mut self) -> Result<(), StoreError> {
        if self.unready.is_empty() {
            return Ok(());
        }
        let now = self.shared.now();
        let at = Instant::now();
        let mut to_batch: HashMap<EndpointId, Vec<ClaimedDelivery>> = HashMap::new();
        for claim in std::mem::take(&mut self.unready) {
            if !self.gates.contains_key(&claim.endpoint) {
                // Registered by another process: load it.
                if let Some(endpoint) = self.shared.store.endpoint(&claim.endpoint).await? {
                    self.gates
                        .insert(claim.endpoint.clone(), Gate::new(endpoint, now));
                }
            }
            if !self.gates.contains_key(&claim.endpoint) {
                self.to_release.push(Release {
                    delivery: claim.delivery,
                    token: claim.token,
                    due_at: now.saturating_add(self.poll_interval),
                });
                continue;
            }
            if let Some(claim) = self.sort_claim(claim, now, at) {
                to_batch
                    .entry(claim.endpoint.clone())
                    .or_default()
                    .push(claim);
            }
        }
        for (endpoint, members) in to_batch {
            let mut releases = Vec::new();
            let formed = self
                .form_batches(&endpoint, members, now, &mut releases)
                .await;
            self.to_release.append(&mut releases);
            for claim in formed? {
                self.push_ready(claim, at);
            }
        }
        Ok(())
    }

    /// Starts ready claims, oldest first, while there are free slots. A claim whose
    /// endpoint is at its cap keeps its place; one that waited in the buffer past a quarter
    /// of its lease goes back instead (due at once), so every attempt still ends before its
    /// lease does.
    fn start_ready(&mut self) {
        if self.ready.is_empty() {
            return;
        }
        let now = self.shared.now();
        let budget = self.lease / 4;
        let mut kept = Vec::new();
        while self.in_flight.len() < self.concurrency {
            let Some(Ready { claim, at }) = self.pop_ready() else {
                break;
            };
            let waited = at.elapsed();
            if waited > budget {
                self.to_release.push(Release {
                    delivery: claim.delivery,
                    token: claim.token,
                    due_at: now,
                });
                continue;
            }
            if self.gates.get(&claim.endpoint).is_some_and(Gate::at_cap) {
                kept.push(Ready { claim, at });
                continue;
            }
            self.start(claim, now, waited);
        }
        // Back at the front, in their order.
        for ready in kept.into_iter().rev() {
            if let Some(gate) = self.gates.get_mut(&ready.claim.endpoint) {
                gate.waiting = gate.waiting.saturating_add(1);
            }
            self.ready.push_front(ready);
        }
    }

    /// Starts one claimed attempt if its endpoint has room; otherwise hands it back. The
    /// attempt's timeout is cut so that it ends before three quarters of the lease, counted
    /// from the claim (`waited` ago).
    fn start(&mut self, claim: ClaimedDelivery, now: UnixMillis, waited: Duration) -> bool {
        let Some(gate) = self.gates.get_mut(&claim.endpoint) else {
            self.to_release.push(Release {
                delivery: claim.delivery,
                token: claim.token,
                due_at: now.saturating_add(self.poll_interval),
            });
            return false;
        };
        let endpoint = Arc::clone(&gate.endpoint);
        let policy = endpoint.retry_policy();
        if let Err(at) = gate.admit(now) {
            self.to_release.push(Release {
                delivery: claim.delivery,
                token: claim.token,
                due_at: at,
            });
            return false;
        }
        let attempt = claim.attempts.saturating_add(1);
        // A live worker always finishes (or times out) before its lease runs out.
        let timeout = policy
            .timeout()
            .min(self.lease.mul_f64(0.75).saturating_sub(waited));
        self.claimed.insert(claim.delivery.clone(), claim.token);
        let span = AttemptSpan::new(
            endpoint.profile(),
            claim.endpoint.as_str(),
            claim.delivery.as_str(),
            attempt,
        );
        let job = Job {
            transport: Arc::clone(&self.transport),
            scheme: gate.scheme.clone(),
            endpoint,
            claim,
            attempt,
            started_at: now,
            timeout,
            span,
        };
        self.in_flight.push(job.spawn());
        true
    }

    /// Plans what comes after each finished attempt ([`plan::plan`]), applies the pacing to
    /// the endpoint's gate, frees the slots and feeds the endpoints' health trackers. The
    /// results join those waiting to be recorded.
    fn plan_finished(&mut self) {
        let finished = std::mem::take(&mut self.finished);
        if finished.is_empty() {
            return;
        }
        let now = self.shared.now();
        for Finished { ran, span } in finished {
            let attempted = match ran {
                Ran::Sent(attempted) => attempted,
                Ran::Unsignable {
                    claim,
                    attempt,
                    started_at,
                } => {
                    self.claimed.remove(&claim.delivery);
                    let profile = self.gates.get_mut(&claim.endpoint).map(|gate| {
                        gate.finished();
                        gate.endpoint.profile()
                    });
                    let next = NextStep::DeadLetter(DeadReason::Refused);
                    let error = Some(AttemptError::Unsignable);
                    let died = health::Died::of(&claim);
                    let record = no_response(claim, attempt, started_at, error, next);
                    self.unsettled_changes.extend(health::dead(&died, &record));
                    if let Some(profile) = profile {
                        telemetry::recorded(profile, &record);
                    }
                    span.finish(&record);
                    self.unrecorded.push(record);
                    continue;
                }
            };
            self.claimed.remove(&attempted.claim.delivery);
            let claim = health::Died::of(&attempted.claim);
            let record = match self.gates.get_mut(&attempted.claim.endpoint) {
                Some(gate) => {
                    gate.finished();
                    let endpoint = Arc::clone(&gate.endpoint);
                    let planned = plan::plan(
                        attempted,
                        Some(endpoint.retry_policy()),
                        now,
                        &mut self.jitter,
                    );
                    if let Some(until) = planned.paced_until {
                        gate.pace(until);
                    }
                    telemetry::recorded(endpoint.profile(), &planned.record);
                    if let Some(class) = planned.health {
                        let changes = gate.observe(class, now, &mut self.unsettled_marks);
                        self.unsettled_changes.extend(changes);
                    }
                    self.unsettled_changes
                        .extend(health::dead(&claim, &planned.record));
                    planned.record
                }
                None => plan::plan(attempted, None, now, &mut self.jitter).record,
            };
            span.finish(&record);
            self.unrecorded.push(record);
        }
    }
}
