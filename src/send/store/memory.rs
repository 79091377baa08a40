//! [`MemoryStore`]: the default delivery store, in this process's memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::{
    AttemptLog, AttemptRecord, Claim, DeadReason, DeliveryCounts, DeliveryQuery, DeliveryRecord,
    DeliveryStatus, DeliveryStore, Enqueued, FencingToken, NextStep, Publication, Recorded,
    Release, StoreError,
};
use crate::event::{EventId, EventType};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, Endpoint, EndpointId, EndpointStatus, MessageId};

/// Keeps everything in memory: fast, shared by the tasks of one process, gone when the
/// process exits. Use it for tests, development, and senders that may lose pending
/// deliveries on a crash; use `SqliteStore` (feature `sqlite`) when they must survive.
///
/// The body of a message is held once (reference-counted) for all its deliveries. Attempt
/// logs grow until the process exits.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    endpoints: HashMap<EndpointId, Arc<Endpoint>>,
    deliveries: HashMap<DeliveryId, Row>,
    /// Pending deliveries by (due time, insertion order); a claimed one sits at its lease's
    /// end, so an expired lease makes it due again with no sweep.
    queue: BTreeSet<(UnixMillis, u64, DeliveryId)>,
    keys: HashMap<String, (MessageId, UnixMillis)>,
    attempts: HashMap<DeliveryId, Vec<AttemptLog>>,
    seq: u64,
    tokens: u64,
    order: Vec<DeliveryId>,
}

#[derive(Debug)]
struct Message {
    id: MessageId,
    event_id: EventId,
    event_type: EventType,
    created_at: UnixMillis,
    bodies: Box<[Bytes]>,
}

#[derive(Debug)]
struct Row {
    message: Arc<Message>,
    endpoint: EndpointId,
    body: u8,
    attempts: u32,
    last_status: Option<u16>,
    status: DeliveryStatus,
    /// Queue position while pending.
    slot: Option<(UnixMillis, u64)>,
    /// The current claim's token and lease end.
    lease: Option<(FencingToken, UnixMillis)>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data: every mutation below
        // completes its bookkeeping before anything that could panic.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn schedule(&mut self, id: &DeliveryId, at: UnixMillis) {
        self.seq += 1;
        let seq = self.seq;
        if let Some(row) = self.deliveries.get_mut(id) {
            if let Some((old_at, old_seq)) = row.slot.take() {
                self.queue.remove(&(old_at, old_seq, id.clone()));
            }
            row.slot = Some((at, seq));
            self.queue.insert((at, seq, id.clone()));
        }
    }

    fn unschedule(&mut self, id: &DeliveryId) {
        if let Some(row) = self.deliveries.get_mut(id) {
            if let Some((at, seq)) = row.slot.take() {
                self.queue.remove(&(at, seq, id.clone()));
            }
        }
    }

    fn record_of(&self, id: &DeliveryId, row: &Row, now: Option<UnixMillis>) -> DeliveryRecord {
        let claimed = match (row.lease, now) {
            (Some((_, until)), Some(now)) => until > now && row.status == DeliveryStatus::Pending,
            (Some(_), None) => row.status == DeliveryStatus::Pending,
            _ => false,
        };
        DeliveryRecord {
            id: id.clone(),
            message: row.message.id.clone(),
            endpoint: row.endpoint.clone(),
            event_id: row.message.event_id.clone(),
            event_type: row.message.event_type.clone(),
            status: row.status,
            attempts: row.attempts,
            created_at: row.message.created_at,
            next_attempt_at: row.slot.map(|(at, _)| at),
            claimed,
            last_status: row.last_status,
        }
    }
}

impl DeliveryStore for MemoryStore {
    async fn put_endpoint(&self, endpoint: &Endpoint) -> Result<(), StoreError> {
        self.lock()
            .endpoints
            .insert(endpoint.id().clone(), Arc::new(endpoint.clone()));
        Ok(())
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Arc<Endpoint>>, StoreError> {
        Ok(self.lock().endpoints.get(id).cloned())
    }

    async fn endpoints(&self) -> Result<Vec<Arc<Endpoint>>, StoreError> {
        let inner = self.lock();
        let mut all: Vec<_> = inner.endpoints.values().cloned().collect();
        all.sort_by(|a, b| a.id().cmp(b.id()));
        Ok(all)
    }

    async fn set_endpoint_status(
        &self,
        id: &EndpointId,
        status: EndpointStatus,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let endpoint = inner
            .endpoints
            .get_mut(id)
            .ok_or(StoreError::UnknownEndpoint)?;
        *endpoint = Arc::new((**endpoint).clone().with_status(status));
        Ok(())
    }

    async fn enqueue(
        &self,
        publications: Vec<Publication>,
        now: UnixMillis,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(publications.len());
        for publication in publications {
            if let Some(key) = &publication.key {
                if let Some((first, expires)) = inner.keys.get(&key.key) {
                    if *expires > now {
                        out.push(Enqueued::Existing(first.clone()));
                        continue;
                    }
                }
                inner.keys.insert(
                    key.key.clone(),
                    (publication.message.id.clone(), key.expires_at),
                );
            }
            let m = publication.message;
            let message = Arc::new(Message {
                id: m.id.clone(),
                event_id: m.event_id,
                event_type: m.event_type,
                created_at: m.created_at,
                bodies: m.bodies.into_boxed_slice(),
            });
            for delivery in publication.deliveries {
                inner.deliveries.insert(
                    delivery.id.clone(),
                    Row {
                        message: Arc::clone(&message),
                        endpoint: delivery.endpoint,
                        body: delivery.body,
                        attempts: 0,
                        last_status: None,
                        status: DeliveryStatus::Pending,
                        slot: None,
                        lease: None,
                    },
                );
                inner.order.push(delivery.id.clone());
                inner.schedule(&delivery.id, now);
            }
            out.push(Enqueued::Created(m.id));
        }
        Ok(out)
    }

    async fn claim(
        &self,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<Vec<Claim>, StoreError> {
        let mut inner = self.lock();
        let mut picked = Vec::new();
        for (at, _, id) in inner.queue.iter() {
            if *at > now || picked.len() >= limit {
                break;
            }
            let Some(row) = inner.deliveries.get(id) else {
                continue;
            };
            if skip.contains(&row.endpoint) {
                continue;
            }
            let active = inner
                .endpoints
                .get(&row.endpoint)
                .is_some_and(|e| e.status() == EndpointStatus::Active);
            if active {
                picked.push(id.clone());
            }
        }
        let until = now.saturating_add(lease);
        let mut claims = Vec::with_capacity(picked.len());
        for id in picked {
            inner.tokens += 1;
            let token = FencingToken(inner.tokens);
            inner.schedule(&id, until);
            let Some(row) = inner.deliveries.get_mut(&id) else {
                continue;
            };
            row.lease = Some((token, until));
            let body = row
                .message
                .bodies
                .get(usize::from(row.body))
                .cloned()
                .unwrap_or_default();
            claims.push(Claim {
                delivery: id,
                message: row.message.id.clone(),
                endpoint: row.endpoint.clone(),
                event_id: row.message.event_id.clone(),
                event_type: row.message.event_type.clone(),
                body,
                created_at: row.message.created_at,
                attempts: row.attempts,
                token,
            });
        }
        Ok(claims)
    }

    async fn record(&self, results: Vec<AttemptRecord>) -> Result<Vec<Recorded>, StoreError> {
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(results.len());
        for result in results {
            let current = inner.deliveries.get(&result.delivery).is_some_and(|row| {
                row.status == DeliveryStatus::Pending
                    && row.lease.is_some_and(|(token, _)| token == result.token)
            });
            if !current {
                out.push(Recorded::Stale);
                continue;
            }
            let id = result.delivery.clone();
            let mut disable = None;
            let mut reschedule = None;
            if let Some(row) = inner.deliveries.get_mut(&id) {
                row.lease = None;
                if result.attempt > 0 {
                    row.attempts = result.attempt.max(row.attempts);
                    row.last_status = result.status;
                }
                match result.next {
                    NextStep::RetryAt(at) => reschedule = Some(at),
                    NextStep::Delivered => row.status = DeliveryStatus::Delivered,
                    NextStep::DeadLetter(reason) => {
                        row.status = DeliveryStatus::DeadLettered(reason)
                    }
                    NextStep::DisableEndpoint => {
                        row.status = DeliveryStatus::DeadLettered(DeadReason::EndpointGone);
                        disable = Some(row.endpoint.clone());
                    }
                }
            }
            match reschedule {
                Some(at) => inner.schedule(&id, at),
                None => inner.unschedule(&id),
            }
            if let Some(endpoint) = disable {
                if let Some(e) = inner.endpoints.get_mut(&endpoint) {
                    *e = Arc::new((**e).clone().with_status(EndpointStatus::Disabled));
                }
            }
            if result.attempt > 0 {
                inner
                    .attempts
                    .entry(id.clone())
                    .or_default()
                    .push(AttemptLog {
                        delivery: id,
                        attempt: result.attempt,
                        started_at: result.started_at,
                        latency_ms: u64::try_from(result.latency.as_millis()).unwrap_or(u64::MAX),
                        status: result.status,
                        error: result.error,
                        response_headers: result.response_headers,
                        response_body: result.response_body,
                    });
            }
            out.push(Recorded::Saved);
        }
        Ok(out)
    }

    async fn release(&self, releases: Vec<Release>) -> Result<(), StoreError> {
        let mut inner = self.lock();
        for release in releases {
            let current = inner
                .deliveries
                .get_mut(&release.delivery)
                .is_some_and(|row| {
                    let held = row.status == DeliveryStatus::Pending
                        && row.lease.is_some_and(|(token, _)| token == release.token);
                    if held {
                        row.lease = None;
                    }
                    held
                });
            if current {
                inner.schedule(&release.delivery, release.due_at);
            }
        }
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        Ok(self.lock().queue.first().map(|(at, _, _)| *at))
    }

    async fn delivery(&self, id: &DeliveryId) -> Result<Option<DeliveryRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .deliveries
            .get(id)
            .map(|row| inner.record_of(id, row, Some(UnixMillis::now()))))
    }

    async fn deliveries(&self, query: &DeliveryQuery) -> Result<Vec<DeliveryRecord>, StoreError> {
        let inner = self.lock();
        let now = Some(UnixMillis::now());
        let mut out = Vec::new();
        for id in &inner.order {
            let Some(row) = inner.deliveries.get(id) else {
                continue;
            };
            if query.message.as_ref().is_some_and(|m| *m != row.message.id)
                || query.endpoint.as_ref().is_some_and(|e| *e != row.endpoint)
                || (query.dead_only && !matches!(row.status, DeliveryStatus::DeadLettered(_)))
            {
                continue;
            }
            out.push(inner.record_of(id, row, now));
            if query.limit != 0 && out.len() >= query.limit {
                break;
            }
        }
        Ok(out)
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        Ok(self.lock().attempts.get(id).cloned().unwrap_or_default())
    }

    async fn counts(&self, now: UnixMillis) -> Result<DeliveryCounts, StoreError> {
        let inner = self.lock();
        let mut counts = DeliveryCounts::default();
        for row in inner.deliveries.values() {
            match row.status {
                DeliveryStatus::Pending => {
                    if row.lease.is_some_and(|(_, until)| until > now) {
                        counts.in_flight += 1;
                    } else {
                        counts.pending += 1;
                    }
                }
                DeliveryStatus::Delivered => counts.delivered += 1,
                DeliveryStatus::DeadLettered(_) => counts.dead += 1,
            }
        }
        Ok(counts)
    }
}
