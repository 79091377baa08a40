//! A delivery store written outside the crate, with nothing but hookrelay's public API: it
//! wraps `MemoryStore` and can fail the next N calls of a method with a retryable error.
//! It proves that a third-party store can implement the three store traits, and lets tests
//! see how callers handle a store that fails or is slow, and how often they call it.

#![allow(dead_code)] // each test binary uses part of it

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hookrelay::StoreError;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::{
    AttemptLog, AttemptRecord, ClaimedDelivery, DeliveryCounts, DeliveryLog, DeliveryQueue,
    DeliveryRecord, EndpointQuery, EndpointRegistry, EndpointStats, Enqueued, LogQuery,
    LogRetention, MessageRecord, NewBatch, Page, Publication, Purged, Recorded, Release,
    SeriesScope, TimeRange,
};
use hookrelay::send::{
    DeliveryId, Endpoint, EndpointId, EndpointKey, EndpointStatus, MemoryStore, MessageId, Owner,
};

/// Groups of method names, each with how many of their next calls (together) fail.
type Faults = Vec<(Vec<&'static str>, usize)>;

/// `MemoryStore` with injectable faults. Clones share the store and its faults.
#[derive(Debug, Clone, Default)]
pub struct FaultStore {
    inner: Arc<MemoryStore>,
    /// Groups of method names, each with how many of their next calls (together) fail.
    faults: Arc<Mutex<Faults>>,
    failed: Arc<AtomicUsize>,
    /// How long each store round (`claim`, `record`, `record_and_claim`) takes at least.
    round_time: Arc<Mutex<Duration>>,
    /// Calls by method name.
    calls: Arc<Mutex<Vec<(&'static str, usize)>>>,
    /// Results passed to `record` and `record_and_claim`, in all.
    records: Arc<AtomicUsize>,
}

impl FaultStore {
    /// An empty store that fails nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Fails the next `n` calls of `method` (`"claim"`, `"enqueue"`, …) with a retryable
    /// error.
    pub fn fail_next(&self, method: &'static str, n: usize) {
        self.fail_next_of(&[method], n);
    }

    /// Fails the next `n` calls of any of `methods`, counted together.
    pub fn fail_next_of(&self, methods: &[&'static str], n: usize) {
        self.faults.lock().unwrap().push((methods.to_vec(), n));
    }

    /// How many calls failed so far.
    pub fn failed(&self) -> usize {
        self.failed.load(Ordering::SeqCst)
    }

    /// Makes every store round (`claim`, `record`, `record_and_claim`) take at least `time`,
    /// like a commit to disk or across a network.
    pub fn slow_rounds(&self, time: Duration) {
        *self.round_time.lock().unwrap() = time;
    }

    /// How many times `method` was called.
    pub fn calls(&self, method: &str) -> usize {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .find(|(m, _)| *m == method)
            .map_or(0, |(_, n)| *n)
    }

    /// How many results were passed to `record` and `record_and_claim`, in all.
    pub fn records(&self) -> usize {
        self.records.load(Ordering::SeqCst)
    }

    fn check(&self, method: &'static str) -> Result<(), StoreError> {
        {
            let mut calls = self.calls.lock().unwrap();
            match calls.iter_mut().find(|(m, _)| *m == method) {
                Some((_, n)) => *n += 1,
                None => calls.push((method, 1)),
            }
        }
        let mut faults = self.faults.lock().unwrap();
        let hit = faults
            .iter_mut()
            .find(|(methods, n)| *n > 0 && methods.contains(&method));
        match hit {
            Some((_, n)) => {
                *n -= 1;
                self.failed.fetch_add(1, Ordering::SeqCst);
                Err(StoreError::retryable(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    format!("injected fault in {method}"),
                )))
            }
            None => Ok(()),
        }
    }

    async fn guarded<T>(
        &self,
        method: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.check(method)?;
        let round_time = *self.round_time.lock().unwrap();
        if matches!(method, "claim" | "record" | "record_and_claim") && !round_time.is_zero() {
            tokio::time::sleep(round_time).await;
        }
        call.await
    }
}

impl EndpointRegistry for FaultStore {
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        self.guarded("put_endpoint", self.inner.put_endpoint(endpoint))
            .await
    }

    async fn endpoint(
        &self,
        id: &EndpointId,
    ) -> Result<Option<std::sync::Arc<Endpoint>>, StoreError> {
        self.guarded("endpoint", self.inner.endpoint(id)).await
    }

    async fn endpoints(&self) -> Result<Vec<std::sync::Arc<Endpoint>>, StoreError> {
        self.guarded("endpoints", self.inner.endpoints()).await
    }

    async fn endpoint_page(
        &self,
        query: &EndpointQuery,
    ) -> Result<Page<std::sync::Arc<Endpoint>>, StoreError> {
        self.guarded("endpoint_page", self.inner.endpoint_page(query))
            .await
    }

    async fn endpoint_by_key(
        &self,
        owner: Option<&Owner>,
        key: &EndpointKey,
    ) -> Result<Option<std::sync::Arc<Endpoint>>, StoreError> {
        self.guarded("endpoint_by_key", self.inner.endpoint_by_key(owner, key))
            .await
    }

    async fn delete_endpoint(&self, id: &EndpointId, now: UnixMillis) -> Result<u64, StoreError> {
        self.guarded("delete_endpoint", self.inner.delete_endpoint(id, now))
            .await
    }

    async fn set_endpoint_status(
        &self,
        id: &EndpointId,
        status: EndpointStatus,
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        self.guarded(
            "set_endpoint_status",
            self.inner.set_endpoint_status(id, status, note),
        )
        .await
    }

    async fn set_failing_since(
        &self,
        id: &EndpointId,
        since: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        self.guarded("set_failing_since", self.inner.set_failing_since(id, since))
            .await
    }
}

impl DeliveryQueue for FaultStore {
    async fn enqueue(
        &self,
        publications: Vec<Publication>,
        now: UnixMillis,
    ) -> Result<Vec<Enqueued>, StoreError> {
        self.guarded("enqueue", self.inner.enqueue(publications, now))
            .await
    }

    async fn claim(
        &self,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.guarded("claim", self.inner.claim(now, limit, lease, skip))
            .await
    }

    async fn record(&self, results: Vec<AttemptRecord>) -> Result<Vec<Recorded>, StoreError> {
        self.records.fetch_add(results.len(), Ordering::SeqCst);
        self.guarded("record", self.inner.record(results)).await
    }

    async fn record_and_claim(
        &self,
        results: Vec<AttemptRecord>,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<(Vec<Recorded>, Vec<ClaimedDelivery>), StoreError> {
        self.records.fetch_add(results.len(), Ordering::SeqCst);
        self.guarded(
            "record_and_claim",
            self.inner
                .record_and_claim(results, now, limit, lease, skip),
        )
        .await
    }

    async fn release(&self, releases: Vec<Release>) -> Result<(), StoreError> {
        self.guarded("release", self.inner.release(releases)).await
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        self.guarded("next_due", self.inner.next_due()).await
    }

    async fn retry_now(
        &self,
        ids: &[DeliveryId],
        now: UnixMillis,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        self.guarded("retry_now", self.inner.retry_now(ids, now))
            .await
    }

    async fn form_batch(
        &self,
        batch: NewBatch,
        now: UnixMillis,
        lease: Duration,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        self.guarded("form_batch", self.inner.form_batch(batch, now, lease))
            .await
    }

    async fn queue_depth(&self, now: UnixMillis) -> Result<(u64, u64), StoreError> {
        self.guarded("queue_depth", self.inner.queue_depth(now))
            .await
    }
}

impl DeliveryLog for FaultStore {
    async fn delivery(
        &self,
        id: &DeliveryId,
        now: UnixMillis,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        self.guarded("delivery", self.inner.delivery(id, now)).await
    }

    async fn log_page(
        &self,
        query: &LogQuery,
        now: UnixMillis,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        self.guarded("log_page", self.inner.log_page(query, now))
            .await
    }

    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        self.guarded("message", self.inner.message(id)).await
    }

    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        window: TimeRange,
    ) -> Result<EndpointStats, StoreError> {
        self.guarded(
            "endpoint_stats",
            self.inner.endpoint_stats(endpoint, window),
        )
        .await
    }

    async fn series(
        &self,
        scope: &SeriesScope,
        windows: &[TimeRange],
    ) -> Result<Vec<EndpointStats>, StoreError> {
        self.guarded("series", self.inner.series(scope, windows))
            .await
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        self.guarded("attempts", self.inner.attempts(id)).await
    }

    async fn counts(&self, now: UnixMillis) -> Result<DeliveryCounts, StoreError> {
        self.guarded("counts", self.inner.counts(now)).await
    }

    async fn purge(
        &self,
        retention: &LogRetention,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        self.guarded("purge", self.inner.purge(retention, now, limit))
            .await
    }
}
