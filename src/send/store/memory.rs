//! [`MemoryStore`]: the default delivery store, in this process's memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::{
    AttemptLog, AttemptRecord, ClaimedDelivery, DeliveryCounts, DeliveryKind, DeliveryLog,
    DeliveryQuery, DeliveryQueue, DeliveryRecord, DeliveryStatus, EndpointRegistry, Enqueued,
    FencingToken, LogRetention, NewBatch, NextStep, Publication, Purged, Recorded, Release,
    StoreError,
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
    /// Pending deliveries with an ordering key, by (endpoint, key), in publish order: only
    /// the first of each is claimable.
    ordered: HashMap<(EndpointId, Arc<str>), BTreeSet<u64>>,
    /// Pending deliveries with a throttle key, by (endpoint, key): what a later one
    /// supersedes.
    throttled: HashMap<(EndpointId, Arc<str>), Vec<DeliveryId>>,
    keys: HashMap<String, (MessageId, UnixMillis)>,
    attempts: HashMap<DeliveryId, Vec<AttemptLog>>,
    seq: u64,
    tokens: u64,
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
    kind: DeliveryKind,
    manual: bool,
    attempts: u32,
    charged: u32,
    last_status: Option<u16>,
    status: DeliveryStatus,
    /// Publish order.
    created_seq: u64,
    /// Ordering and throttle keys and the batch, boxed: most deliveries have none.
    keys: Option<Box<Keys>>,
    finished_at: Option<UnixMillis>,
    /// Queue position while pending.
    slot: Option<(UnixMillis, u64)>,
    /// The current claim's token; the lease ends at the slot's due time.
    lease: Option<FencingToken>,
}

#[derive(Debug, Default)]
struct Keys {
    order: Option<Arc<str>>,
    throttle: Option<Arc<str>>,
    batch: Option<DeliveryId>,
}

impl Row {
    fn held(&self, now: UnixMillis) -> bool {
        self.lease.is_some() && self.slot.is_some_and(|(until, _)| until > now)
    }

    fn holds(&self, token: FencingToken) -> bool {
        self.status == DeliveryStatus::Pending && self.lease == Some(token)
    }

    fn order_key(&self) -> Option<&Arc<str>> {
        self.keys.as_ref()?.order.as_ref()
    }

    fn throttle_key(&self) -> Option<&Arc<str>> {
        self.keys.as_ref()?.throttle.as_ref()
    }

    fn keys(order: Option<Arc<str>>, throttle: Option<Arc<str>>) -> Option<Box<Keys>> {
        (order.is_some() || throttle.is_some()).then(|| {
            Box::new(Keys {
                order,
                throttle,
                batch: None,
            })
        })
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Replaces one endpoint by `change` of it.
    fn update_endpoint(
        &self,
        id: &EndpointId,
        change: impl FnOnce(Endpoint) -> Endpoint,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let endpoint = inner
            .endpoints
            .get_mut(id)
            .ok_or_else(|| StoreError::not_found("endpoint"))?;
        *endpoint = Arc::new(change((**endpoint).clone()));
        Ok(())
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

    /// Takes a delivery out of the queue and the ordering and throttle indexes: it is
    /// finished.
    fn finish(&mut self, id: &DeliveryId, status: DeliveryStatus, now: UnixMillis) {
        let Some(row) = self.deliveries.get_mut(id) else {
            return;
        };
        row.status = status;
        row.lease = None;
        row.finished_at = Some(now);
        if let Some((at, seq)) = row.slot.take() {
            self.queue.remove(&(at, seq, id.clone()));
        }
        let endpoint = row.endpoint.clone();
        let created_seq = row.created_seq;
        let (order_key, throttle_key) = (row.order_key().cloned(), row.throttle_key().cloned());
        if let Some(key) = order_key {
            let index = (endpoint.clone(), key);
            if let Some(set) = self.ordered.get_mut(&index) {
                set.remove(&created_seq);
                if set.is_empty() {
                    self.ordered.remove(&index);
                }
            }
        }
        if let Some(key) = throttle_key {
            let index = (endpoint, key);
            if let Some(ids) = self.throttled.get_mut(&index) {
                ids.retain(|other| other != id);
                if ids.is_empty() {
                    self.throttled.remove(&index);
                }
            }
        }
    }

    /// Puts a finished delivery back into the indexes, pending again.
    fn reopen(&mut self, id: &DeliveryId, now: UnixMillis) {
        let Some(row) = self.deliveries.get_mut(id) else {
            return;
        };
        row.status = DeliveryStatus::Pending;
        row.finished_at = None;
        let endpoint = row.endpoint.clone();
        let created_seq = row.created_seq;
        let (order_key, throttle_key) = (row.order_key().cloned(), row.throttle_key().cloned());
        if let Some(key) = order_key {
            self.ordered
                .entry((endpoint.clone(), key))
                .or_default()
                .insert(created_seq);
        }
        if let Some(key) = throttle_key {
            self.throttled
                .entry((endpoint, key))
                .or_default()
                .push(id.clone());
        }
        self.schedule(id, now);
    }

    /// Whether `row` waits behind an earlier pending delivery of its ordering key.
    fn blocked_by_order(&self, row: &Row) -> bool {
        let Some(key) = row.order_key() else {
            return false;
        };
        self.ordered
            .get(&(row.endpoint.clone(), Arc::clone(key)))
            .and_then(|set| set.first())
            .is_some_and(|first| *first != row.created_seq)
    }

    fn record_of(&self, id: &DeliveryId, row: &Row, now: Option<UnixMillis>) -> DeliveryRecord {
        let claimed = row.status == DeliveryStatus::Pending
            && match now {
                Some(now) => row.held(now),
                None => row.lease.is_some(),
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
            kind: row.kind,
            finished_at: row.finished_at,
            batch: row.keys.as_ref().and_then(|k| k.batch.clone()),
        }
    }
}

impl EndpointRegistry for MemoryStore {
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
        note: Option<&str>,
    ) -> Result<(), StoreError> {
        self.update_endpoint(id, |e| e.with_status_note(status, note.map(str::to_owned)))
    }

    async fn set_failing_since(
        &self,
        id: &EndpointId,
        since: Option<UnixMillis>,
    ) -> Result<(), StoreError> {
        self.update_endpoint(id, |e| e.with_failing_since(since))
    }
}

impl DeliveryQueue for MemoryStore {
    async fn enqueue(
        &self,
        publications: Vec<Publication>,
        now: UnixMillis,
    ) -> Result<Vec<Enqueued>, StoreError> {
        let mut inner = self.lock();
        let mut out = Vec::with_capacity(publications.len());
        for publication in publications {
            if let Some(key) = &publication.key {
                if let Some((first, expires)) = inner.keys.get(&key.key)
                    && *expires > now
                {
                    out.push(Enqueued::Existing(first.clone()));
                    continue;
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
            let mut superseded = 0;
            for delivery in publication.deliveries {
                let mut due = now;
                let mut throttle_key: Option<Arc<str>> = None;
                if let Some(group) = &delivery.throttle {
                    let key = Arc::<str>::from(group.key.as_str());
                    let index = (delivery.endpoint.clone(), Arc::clone(&key));
                    let replaced: Vec<DeliveryId> = inner
                        .throttled
                        .get(&index)
                        .map(|ids| {
                            ids.iter()
                                .filter(|id| {
                                    inner.deliveries.get(*id).is_some_and(|row| !row.held(now))
                                })
                                .cloned()
                                .collect()
                        })
                        .unwrap_or_default();
                    if let Some(window) = group.window {
                        due = replaced
                            .iter()
                            .filter_map(|id| inner.deliveries.get(id)?.slot.map(|(at, _)| at))
                            .min()
                            .unwrap_or_else(|| now.saturating_add(window));
                        throttle_key = Some(key);
                    }
                    for id in replaced {
                        inner.finish(&id, DeliveryStatus::Superseded, now);
                        superseded += 1;
                    }
                }
                inner.seq += 1;
                let created_seq = inner.seq;
                let order_key: Option<Arc<str>> = delivery.order_key.as_deref().map(Arc::from);
                if let Some(key) = &order_key {
                    inner
                        .ordered
                        .entry((delivery.endpoint.clone(), Arc::clone(key)))
                        .or_default()
                        .insert(created_seq);
                }
                if let Some(key) = &throttle_key {
                    inner
                        .throttled
                        .entry((delivery.endpoint.clone(), Arc::clone(key)))
                        .or_default()
                        .push(delivery.id.clone());
                }
                inner.deliveries.insert(
                    delivery.id.clone(),
                    Row {
                        message: Arc::clone(&message),
                        endpoint: delivery.endpoint,
                        body: delivery.body,
                        kind: delivery.kind,
                        manual: false,
                        attempts: 0,
                        charged: 0,
                        last_status: None,
                        status: DeliveryStatus::Pending,
                        created_seq,
                        keys: Row::keys(order_key, throttle_key),
                        finished_at: None,
                        slot: None,
                        lease: None,
                    },
                );
                inner.schedule(&delivery.id, due);
            }
            out.push(Enqueued::Created {
                id: m.id,
                superseded,
            });
        }
        Ok(out)
    }

    async fn claim(
        &self,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let mut inner = self.lock();
        let mut picked = Vec::new();
        for (at, _, id) in inner.queue.iter() {
            if *at > now || picked.len() >= limit {
                break;
            }
            let Some(row) = inner.deliveries.get(id) else {
                continue;
            };
            if skip.contains(&row.endpoint) || inner.blocked_by_order(row) {
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
            row.lease = Some(token);
            let body = row
                .message
                .bodies
                .get(usize::from(row.body))
                .cloned()
                .unwrap_or_default();
            claims.push(ClaimedDelivery {
                delivery: id,
                message: row.message.id.clone(),
                endpoint: row.endpoint.clone(),
                event_id: row.message.event_id.clone(),
                event_type: row.message.event_type.clone(),
                body,
                created_at: row.message.created_at,
                attempts: row.attempts,
                charged: row.charged,
                kind: row.kind,
                manual: row.manual,
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
                row.status == DeliveryStatus::Pending && row.lease == Some(result.token)
            });
            if !current {
                out.push(Recorded::Stale);
                continue;
            }
            let id = result.delivery.clone();
            let mut disable = None;
            let mut finished = None;
            if let Some(row) = inner.deliveries.get_mut(&id) {
                row.lease = None;
                if result.attempt > 0 {
                    row.attempts = result.attempt.max(row.attempts);
                    row.last_status = result.status;
                    row.manual = false;
                    if result.charged {
                        row.charged += 1;
                    }
                }
                if result.next == NextStep::DisableEndpoint {
                    disable = Some(row.endpoint.clone());
                }
                finished = Some(result.next.status()).filter(|s| s.is_finished());
            }
            match (finished, result.next) {
                (Some(status), _) => {
                    let at = result.started_at.saturating_add(result.latency);
                    inner.finish(&id, status, at);
                }
                (None, NextStep::RetryAt(at)) => inner.schedule(&id, at),
                (None, _) => {}
            }
            if let Some(endpoint) = disable
                && let Some(e) = inner.endpoints.get_mut(&endpoint)
            {
                *e = Arc::new((**e).clone().with_status(EndpointStatus::Disabled));
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
                        manual: result.manual,
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
                    let held = row.holds(release.token);
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

    async fn retry_now(
        &self,
        ids: &[DeliveryId],
        now: UnixMillis,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let mut inner = self.lock();
        let mut queued = Vec::new();
        for id in ids {
            let Some(row) = inner.deliveries.get_mut(id) else {
                continue;
            };
            match row.status {
                DeliveryStatus::Superseded | DeliveryStatus::Batched => continue,
                DeliveryStatus::Pending if row.held(now) => continue,
                DeliveryStatus::Pending => {
                    row.manual = true;
                    row.lease = None;
                    inner.schedule(id, now);
                }
                _ => {
                    row.manual = true;
                    inner.reopen(id, now);
                }
            }
            queued.push(id.clone());
        }
        Ok(queued)
    }

    async fn form_batch(
        &self,
        batch: NewBatch,
        now: UnixMillis,
        lease: Duration,
    ) -> Result<Option<ClaimedDelivery>, StoreError> {
        let mut inner = self.lock();
        let current = batch.members.iter().all(|(id, token)| {
            inner
                .deliveries
                .get(id)
                .is_some_and(|row| row.holds(*token))
        });
        if !current {
            return Ok(None);
        }
        for (id, _) in &batch.members {
            inner.finish(id, DeliveryStatus::Batched, now);
            if let Some(row) = inner.deliveries.get_mut(id) {
                row.keys.get_or_insert_with(Box::default).batch = Some(batch.delivery.clone());
            }
        }
        let m = batch.message;
        let body = m.bodies.first().cloned().unwrap_or_default();
        let message = Arc::new(Message {
            id: m.id,
            event_id: m.event_id,
            event_type: m.event_type,
            created_at: m.created_at,
            bodies: m.bodies.into_boxed_slice(),
        });
        inner.seq += 1;
        inner.tokens += 1;
        let token = FencingToken(inner.tokens);
        let until = now.saturating_add(lease);
        let row = Row {
            message: Arc::clone(&message),
            endpoint: batch.endpoint.clone(),
            body: 0,
            kind: DeliveryKind::Batch,
            manual: false,
            attempts: 0,
            charged: 0,
            last_status: None,
            status: DeliveryStatus::Pending,
            created_seq: inner.seq,
            keys: None,
            finished_at: None,
            slot: None,
            lease: Some(token),
        };
        inner.deliveries.insert(batch.delivery.clone(), row);
        inner.schedule(&batch.delivery, until);
        Ok(Some(ClaimedDelivery {
            delivery: batch.delivery,
            message: message.id.clone(),
            endpoint: batch.endpoint,
            event_id: message.event_id.clone(),
            event_type: message.event_type.clone(),
            body,
            created_at: message.created_at,
            attempts: 0,
            charged: 0,
            kind: DeliveryKind::Batch,
            manual: false,
            token,
        }))
    }
}

impl DeliveryLog for MemoryStore {
    async fn delivery(
        &self,
        id: &DeliveryId,
        now: UnixMillis,
    ) -> Result<Option<DeliveryRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .deliveries
            .get(id)
            .map(|row| inner.record_of(id, row, Some(now))))
    }

    async fn deliveries(
        &self,
        query: &DeliveryQuery,
        now: UnixMillis,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let inner = self.lock();
        let now = Some(now);
        // Listing is rare: sort the matches into publish order rather than keep a second
        // index of every delivery.
        let mut matches: Vec<(&DeliveryId, &Row)> = inner
            .deliveries
            .iter()
            .filter(|(_, row)| {
                query.message.as_ref().is_none_or(|m| *m == row.message.id)
                    && query.endpoint.as_ref().is_none_or(|e| *e == row.endpoint)
                    && (!query.dead_only || matches!(row.status, DeliveryStatus::DeadLettered(_)))
                    && query.since.is_none_or(|t| row.message.created_at >= t)
            })
            .collect();
        matches.sort_unstable_by_key(|(_, row)| row.created_seq);
        if query.limit != 0 {
            matches.truncate(query.limit);
        }
        Ok(matches
            .into_iter()
            .map(|(id, row)| inner.record_of(id, row, now))
            .collect())
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
                    if row.held(now) {
                        counts.in_flight += 1;
                    } else {
                        counts.pending += 1;
                    }
                }
                DeliveryStatus::Delivered => counts.delivered += 1,
                DeliveryStatus::DeadLettered(_) => counts.dead += 1,
                DeliveryStatus::Expired => counts.expired += 1,
                DeliveryStatus::Superseded => counts.superseded += 1,
                DeliveryStatus::Batched => counts.batched += 1,
            }
        }
        Ok(counts)
    }

    async fn purge(
        &self,
        retention: &LogRetention,
        now: UnixMillis,
        limit: usize,
    ) -> Result<Purged, StoreError> {
        let mut inner = self.lock();
        let mut purged = Purged::default();
        let expired = |row: &Row| {
            let keep = match row.status {
                DeliveryStatus::Pending => return false,
                DeliveryStatus::Delivered => retention.delivered,
                _ => retention.failed,
            };
            row.finished_at
                .is_some_and(|at| at.saturating_add(keep) <= now)
        };
        let mut doomed: Vec<(u64, DeliveryId)> = inner
            .deliveries
            .iter()
            .filter(|(_, row)| expired(row))
            .map(|(id, row)| (row.created_seq, id.clone()))
            .collect();
        doomed.sort_unstable();
        doomed.truncate(limit);
        let doomed: Vec<DeliveryId> = doomed.into_iter().map(|(_, id)| id).collect();
        for id in &doomed {
            if let Some(row) = inner.deliveries.remove(id) {
                purged.deliveries += 1;
                if Arc::strong_count(&row.message) == 1 {
                    purged.messages += 1;
                }
            }
            if let Some(logs) = inner.attempts.remove(id) {
                purged.attempts += logs.len() as u64;
            }
        }
        let mut budget = limit;
        for logs in inner.attempts.values_mut() {
            if budget == 0 {
                break;
            }
            let before = logs.len();
            logs.retain(|log| !log.manual || log.started_at.saturating_add(retention.manual) > now);
            let removed = before - logs.len();
            purged.attempts += removed as u64;
            budget = budget.saturating_sub(removed);
        }
        Ok(purged)
    }
}
