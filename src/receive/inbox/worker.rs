//! [`InboxWorker`]: runs the app's handler on inbox entries, with retries, leases and dead
//! letters.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use super::accept::Inbox;
use super::entry::{AttemptResult, ClaimedEntry, InboxAttempt, InboxEntry};
use super::store::InboxStore;
use crate::receive::{Delivery, WebhookPayload};
use crate::retry::{
    AttemptOutcome, Decision, DeliveryState, JitterSource, RetryPolicy, SeededJitter, UnixMillis,
};

/// How one run of the handler ended.
enum Outcome {
    Succeeded,
    Failed(String),
    /// The body no longer parses into the handler's type: retrying cannot help.
    Unprocessable(String),
}

type Run = Pin<Box<dyn Future<Output = Outcome> + Send>>;
type ErasedHandler = dyn Fn(InboxEntry) -> Run + Send + Sync;

/// Why an [`InboxWorkerBuilder`] refused to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorkerConfigError {
    /// No [`handler`](InboxWorkerBuilder::handler) was given.
    MissingHandler,
    /// Concurrency must be at least 1.
    ZeroConcurrency,
    /// The lease must be at least one second: a handler that outlives it is stopped.
    LeaseTooShort,
    /// The poll interval must be between 10 ms and one hour.
    PollInterval,
}

impl fmt::Display for WorkerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MissingHandler => "an inbox worker needs a handler",
            Self::ZeroConcurrency => "an inbox worker's concurrency must be at least 1",
            Self::LeaseTooShort => "an inbox worker's lease must be at least one second",
            Self::PollInterval => "an inbox worker's poll interval must be 10 ms to 1 h",
        })
    }
}

impl std::error::Error for WorkerConfigError {}

/// The receiver's retry policy unless another is set: 1 s, doubling up to one hour, 12
/// attempts (about 2 h 15 min in all), with jitter.
pub fn default_policy() -> RetryPolicy {
    RetryPolicy::builder()
        .exponential(Duration::from_secs(1), 2.0, Duration::from_secs(3600))
        .max_attempts(12)
        .without_max_age()
        .build()
        .unwrap_or_else(|_| RetryPolicy::standard_webhooks())
}

/// Builds an [`InboxWorker`].
pub struct InboxWorkerBuilder<S> {
    inbox: Inbox<S>,
    handler: Option<Arc<ErasedHandler>>,
    policy: RetryPolicy,
    lease: Duration,
    concurrency: usize,
    poll_interval: Duration,
}

impl<S> fmt::Debug for InboxWorkerBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxWorkerBuilder")
            .field("handler", &self.handler.is_some())
            .field("lease", &self.lease)
            .field("concurrency", &self.concurrency)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

impl<S: InboxStore> InboxWorkerBuilder<S> {
    /// The handler: the same [`Delivery<T>`] an axum route behind the `WebhookLayer` gets.
    /// An `Err` (or a panic) is a failed attempt, retried under the policy; a body that does
    /// not parse into `T` is a dead letter at once.
    pub fn handler<T, H, Fut, E>(mut self, handler: H) -> Self
    where
        T: WebhookPayload + Send + 'static,
        H: Fn(Delivery<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: fmt::Display,
    {
        let erased = move |entry: InboxEntry| -> Run {
            let inbound = entry.inbound();
            match T::from_body(inbound.body()) {
                Ok(event) => {
                    let run = handler(Delivery { event, inbound });
                    Box::pin(async move {
                        match run.await {
                            Ok(()) => Outcome::Succeeded,
                            Err(err) => Outcome::Failed(err.to_string()),
                        }
                    })
                }
                Err(detail) => Box::pin(std::future::ready(Outcome::Unprocessable(detail))),
            }
        };
        self.handler = Some(Arc::new(erased));
        self
    }

    /// When to retry a failed entry and when to give up (the planner's policy; its
    /// classifier is not used: every handler error is retryable). Default
    /// [`default_policy`].
    pub fn policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// How long a worker holds an entry (default 30 s). A handler still running then is
    /// stopped and counted failed, and a crashed worker's entries are taken up again once
    /// their lease ends.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease;
        self
    }

    /// How many handlers run at once (default 16).
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency;
        self
    }

    /// How often an idle worker looks for entries other processes accepted (default 1 s).
    /// Entries accepted through this process's [`Inbox`] wake it at once.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Checks the settings.
    pub fn build(self) -> Result<InboxWorker<S>, WorkerConfigError> {
        let handler = self.handler.ok_or(WorkerConfigError::MissingHandler)?;
        if self.concurrency == 0 {
            return Err(WorkerConfigError::ZeroConcurrency);
        }
        if self.lease < Duration::from_secs(1) {
            return Err(WorkerConfigError::LeaseTooShort);
        }
        if !(Duration::from_millis(10)..=Duration::from_secs(3600)).contains(&self.poll_interval) {
            return Err(WorkerConfigError::PollInterval);
        }
        Ok(InboxWorker {
            shared: Arc::new(WorkerShared {
                inbox: self.inbox,
                handler,
                policy: self.policy,
                lease: self.lease,
                concurrency: self.concurrency,
                poll_interval: self.poll_interval,
            }),
        })
    }
}

/// Runs the app's handler on inbox entries: claims due entries with a lease, runs up to
/// `concurrency` handlers at once on the runtime's threads, and records each attempt: done,
/// retry at the policy's next time, or dead with the last error.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use hookrelay::receive::Delivery;
/// use hookrelay::receive::inbox::{Inbox, InboxWorker, MemoryInbox};
///
/// let inbox = Inbox::new(MemoryInbox::new());
/// let worker = InboxWorker::builder(inbox.clone())
///     .handler(|delivery: Delivery<serde_json::Value>| async move {
///         println!("{}", delivery.event["type"]);
///         Ok::<(), std::io::Error>(())
///     })
///     .build()?
///     .spawn();
/// // … the receiver stores into `inbox` …
/// worker.shutdown().await;
/// # Ok(())
/// # }
/// ```
pub struct InboxWorker<S> {
    shared: Arc<WorkerShared<S>>,
}

struct WorkerShared<S> {
    inbox: Inbox<S>,
    handler: Arc<ErasedHandler>,
    policy: RetryPolicy,
    lease: Duration,
    concurrency: usize,
    poll_interval: Duration,
}

impl<S> fmt::Debug for InboxWorker<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxWorker")
            .field("lease", &self.shared.lease)
            .field("concurrency", &self.shared.concurrency)
            .finish_non_exhaustive()
    }
}

/// A running [`InboxWorker`].
#[derive(Debug)]
pub struct WorkerHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl WorkerHandle {
    /// Stops claiming, waits for the handlers that are running, and returns.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

impl<S: InboxStore> InboxWorker<S> {
    /// A worker for `inbox`; give it a handler.
    pub fn builder(inbox: Inbox<S>) -> InboxWorkerBuilder<S> {
        InboxWorkerBuilder {
            inbox,
            handler: None,
            policy: default_policy(),
            lease: Duration::from_secs(30),
            concurrency: 16,
            poll_interval: Duration::from_secs(1),
        }
    }

    /// Runs on the current tokio runtime until [`WorkerHandle::shutdown`].
    pub fn spawn(self) -> WorkerHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.shared.run(stopped));
        WorkerHandle { stop, task }
    }

    /// One round at `now`, for tests: claims what is due (up to the concurrency), runs each
    /// handler, records each attempt as made at `now`, and returns how many ran.
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub async fn run_due(&self, now: UnixMillis) -> Result<usize, crate::StoreError> {
        let claimed = self
            .shared
            .inbox
            .store()
            .claim(now, self.shared.lease, self.shared.concurrency)
            .await?;
        let count = claimed.len();
        for entry in claimed {
            Arc::clone(&self.shared).process(entry, Some(now)).await;
        }
        Ok(count)
    }
}

impl<S: InboxStore> WorkerShared<S> {
    async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut running = JoinSet::new();
        let mut failures = 0u32;
        while !*stop.borrow() {
            let free = self.concurrency - running.len();
            let mut full_round = false;
            if free > 0 {
                let store = self.inbox.store();
                match store.claim(UnixMillis::now(), self.lease, free).await {
                    Ok(claimed) => {
                        failures = 0;
                        full_round = claimed.len() == free;
                        for entry in claimed {
                            running.spawn(Arc::clone(&self).process(entry, None));
                        }
                    }
                    Err(error) => {
                        failures = failures.saturating_add(1);
                        super::super::trace::inbox_failed("claim", &error);
                    }
                }
            }
            if running.len() >= self.concurrency {
                running.join_next().await;
                continue;
            }
            if full_round {
                continue;
            }
            // An arrival interrupts the idle wait at once, even while the store is still
            // being asked when the next entry is due. The store is asked in a task of its
            // own, so an interrupted wait never drops a query half-way (which would cost its
            // connection: for an in-memory SQLite database, the database).
            let asked = tokio::spawn({
                let shared = Arc::clone(&self);
                async move { shared.idle_wait(failures).await }
            });
            let poll_interval = self.poll_interval;
            let idle = async move {
                let wait = asked.await.unwrap_or(poll_interval);
                tokio::time::sleep(wait).await;
            };
            tokio::select! {
                () = self.inbox.arrival() => {}
                Some(_) = running.join_next(), if !running.is_empty() => {}
                () = idle => {}
                _ = stop.changed() => {}
            }
        }
        while running.join_next().await.is_some() {}
    }

    /// How long an idle worker sleeps: until the next entry is due, at most the poll
    /// interval; after store failures, a growing back-off up to the poll interval.
    async fn idle_wait(&self, failures: u32) -> Duration {
        if failures > 0 {
            let backoff = Duration::from_millis(50).saturating_mul(1 << failures.min(10));
            return backoff.min(self.poll_interval);
        }
        match self.inbox.store().next_due().await {
            Ok(Some(at)) => at
                .saturating_duration_since(UnixMillis::now())
                .min(self.poll_interval),
            _ => self.poll_interval,
        }
    }

    /// Runs the handler on one claimed entry and records the attempt. `at` fixes the
    /// attempt's time (tests); otherwise the clock's.
    async fn process(self: Arc<Self>, claimed: ClaimedEntry, at: Option<UnixMillis>) {
        let ClaimedEntry { entry, token } = claimed;
        let id = entry.id;
        let started_at = at.unwrap_or_else(UnixMillis::now);
        let started = Instant::now();
        let mut run = tokio::spawn((self.handler)(entry.clone()));
        let outcome = match tokio::time::timeout(self.lease, &mut run).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(join)) if join.is_panic() => Outcome::Failed("the handler panicked".into()),
            Ok(Err(_)) => Outcome::Failed("the handler was cancelled".into()),
            Err(_) => {
                run.abort();
                Outcome::Failed(format!(
                    "the handler ran longer than the lease ({} s)",
                    self.lease.as_secs()
                ))
            }
        };
        let duration = started.elapsed();
        let ended_at = at.unwrap_or_else(UnixMillis::now);
        let (error, result) = match outcome {
            Outcome::Succeeded => (None, AttemptResult::Done),
            Outcome::Unprocessable(detail) => {
                let error = format!("the body does not parse: {detail}");
                (Some(error.clone()), AttemptResult::Dead { error })
            }
            Outcome::Failed(error) => {
                let result = self.plan(&entry, ended_at, error.clone());
                (Some(error), result)
            }
        };
        let attempt = InboxAttempt::new(started_at, duration, error);
        if let Err(store_error) = self.inbox.store().record(id, token, attempt, result).await {
            // The lease runs out and the entry is handled again: at least once.
            super::super::trace::inbox_failed("record", &store_error);
        }
    }

    /// After a failed run ending at `now`: when to run it again, or dead.
    fn plan(&self, entry: &InboxEntry, now: UnixMillis, error: String) -> AttemptResult {
        let mut state = DeliveryState::resume(
            entry.accepted.received_at,
            entry.attempts,
            now,
            AttemptOutcome::Other,
        );
        state.record(AttemptOutcome::Other, now);
        let mut jitter = SeededJitter::from_os();
        match self
            .policy
            .plan(&mut state, now, &mut jitter as &mut dyn JitterSource)
        {
            Decision::RetryAt { at, .. } => AttemptResult::RetryAt { at, error },
            Decision::DeliverNow { .. } => AttemptResult::RetryAt { at: now, error },
            _ => AttemptResult::Dead { error },
        }
    }
}
