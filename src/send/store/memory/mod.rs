//! [`MemoryStore`]: the default delivery store, in this process's memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use super::{
    AttemptLog, AttemptRecord, AttemptSample, ClaimedDelivery, Cursor, DeliveryCounts,
    DeliveryKind, DeliveryLog, DeliveryQueue, DeliveryRecord, DeliveryStatus, EndpointQuery,
    EndpointRegistry, EndpointStats, EndpointStatsBuilder, Enqueued, FencingToken, LogOrder,
    LogQuery, LogRetention, MessageRecord, NewBatch, NewMessage, NextStep, Page, Publication,
    Purged, Recorded, Release, SeriesScope, StoreError, TimeRange,
};
use crate::event::{EventId, EventType};
use crate::retry::UnixMillis;
use crate::send::{
    DeliveryId, Endpoint, EndpointId, EndpointKey, EndpointStatus, MessageId, Owner,
};

/// Keeps everything in memory: fast, shared by the tasks of one process, gone when the
/// process exits. Use it for tests, development, and senders that may lose pending
/// deliveries on a crash; use `SqliteStore` (feature `sqlite`) when they must survive.
///
/// The body of a message is held once (reference-counted) for all its deliveries. Attempt
/// logs grow until the process exits, or until [`purge`](DeliveryLog::purge) removes them
/// with their deliveries; messages no delivery refers to stay until then too.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// By id, the order endpoint pages list them in.
    endpoints: BTreeMap<EndpointId, Arc<Endpoint>>,
    /// Endpoint keys by owner (`None`: endpoints without one): who holds each.
    endpoint_keys: HashMap<(Option<Owner>, EndpointKey), EndpointId>,
    deliveries: HashMap<DeliveryId, Row>,
    /// Every delivery by creation sequence: the log's order, what its cursors name.
    log: BTreeMap<u64, DeliveryId>,
    /// Every message stored, until purge removes its last delivery.
    messages: HashMap<MessageId, Arc<Message>>,
    /// Pending deliveries by (due time, insertion order); a claimed one sits at its lease's
    /// end, so an expired lease makes it due again with no sweep.
    queue: BTreeSet<(UnixMillis, u64, DeliveryId)>,
    /// Pending deliveries with an ordering key, by (endpoint, key), in publish order: only
    /// the first of each is claimable.
    ordered: HashMap<(EndpointId, Arc<str>), BTreeSet<u64>>,
    /// Pending deliveries with a throttle key, by (endpoint, key): what a later one
    /// supersedes.
    throttled: HashMap<(EndpointId, Arc<str>), Vec<DeliveryId>>,
    /// Each throttle group's latest due time, while its window lasts.
    throttle_windows: ThrottleWindows,
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
    /// The endpoint's owner: when the delivery was created, or since it last changed while
    /// the delivery was pending.
    owner: Option<Owner>,
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

impl Message {
    fn new(m: NewMessage) -> Self {
        Message {
            id: m.id,
            event_id: m.event_id,
            event_type: m.event_type,
            created_at: m.created_at,
            bodies: m.bodies.into_boxed_slice(),
        }
    }
}

/// The due time each throttle group's latest progress delivery was given, kept while its
/// window lasts (a row keeps its throttle key but not that time: a claim moves its slot to the
/// lease's end, and a finished row has none). Once the window has passed it makes no
/// difference ([`ThrottleGroup::due_at`](crate::send::ThrottleGroup::due_at)), so it is
/// forgotten.
#[derive(Debug, Default)]
struct ThrottleWindows {
    /// By (endpoint, key): the latest due time and the end of its window.
    latest: HashMap<(EndpointId, Arc<str>), (UnixMillis, UnixMillis)>,
    /// The same windows by their end, to forget them.
    ends: BTreeSet<(UnixMillis, EndpointId, Arc<str>)>,
}

impl ThrottleWindows {
    /// The group's latest due time, if its window may still be open at `now`.
    fn latest(&mut self, group: &(EndpointId, Arc<str>), now: UnixMillis) -> Option<UnixMillis> {
        while let Some(first) = self.ends.pop_first() {
            if first.0 > now {
                self.ends.insert(first);
                break;
            }
            let (end, endpoint, key) = first;
            let ended = (endpoint, key);
            if self.latest.get(&ended).is_some_and(|(_, e)| *e == end) {
                self.latest.remove(&ended);
            }
        }
        self.latest.get(group).map(|(due, _)| *due)
    }

    fn set(&mut self, group: (EndpointId, Arc<str>), due: UnixMillis, window: Duration) {
        let end = due.saturating_add(window);
        self.ends
            .insert((end, group.0.clone(), Arc::clone(&group.1)));
        self.latest.insert(group, (due, end));
    }
}

impl Row {
    /// A new pending delivery, not yet scheduled.
    fn pending(
        message: Arc<Message>,
        endpoint: EndpointId,
        owner: Option<Owner>,
        body: u8,
        kind: DeliveryKind,
        created_seq: u64,
    ) -> Self {
        Row {
            message,
            endpoint,
            owner,
            body,
            kind,
            manual: false,
            attempts: 0,
            charged: 0,
            last_status: None,
            status: DeliveryStatus::Pending,
            created_seq,
            keys: None,
            finished_at: None,
            slot: None,
            lease: None,
        }
    }

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
    /// Keeps a message; every delivery of it shares this copy.
    fn store_message(&mut self, message: NewMessage) -> Arc<Message> {
        let message = Arc::new(Message::new(message));
        self.messages
            .insert(message.id.clone(), Arc::clone(&message));
        message
    }

    /// Adds a delivery to the log under the next creation sequence (not yet scheduled).
    fn insert_row(&mut self, id: DeliveryId, make: impl FnOnce(u64) -> Row) {
        self.seq += 1;
        let created_seq = self.seq;
        self.log.insert(created_seq, id.clone());
        self.deliveries.insert(id, make(created_seq));
    }

    /// An endpoint's pending deliveries, claimed or not (every pending delivery is queued).
    fn pending_of(&self, endpoint: &EndpointId) -> Vec<DeliveryId> {
        self.queue
            .iter()
            .filter(|(_, _, id)| {
                self.deliveries
                    .get(id)
                    .is_some_and(|row| row.endpoint == *endpoint)
            })
            .map(|(_, _, id)| id.clone())
            .collect()
    }

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
        self.index_keys(id);
        self.schedule(id, now);
    }

    /// Adds a pending delivery to the ordering and throttle indexes.
    fn index_keys(&mut self, id: &DeliveryId) {
        let Some(row) = self.deliveries.get(id) else {
            return;
        };
        let created_seq = row.created_seq;
        let index = |key: &Arc<str>| (row.endpoint.clone(), Arc::clone(key));
        let (order, throttle) = (row.order_key().map(index), row.throttle_key().map(index));
        if let Some(index) = order {
            self.ordered.entry(index).or_default().insert(created_seq);
        }
        if let Some(index) = throttle {
            self.throttled.entry(index).or_default().push(id.clone());
        }
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

    /// The attempts of delivery `id`, as the statistics see them.
    fn samples<'a>(&'a self, id: &DeliveryId) -> impl Iterator<Item = AttemptSample> + 'a {
        self.attempts
            .get(id)
            .into_iter()
            .flatten()
            .map(AttemptSample::from)
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
            owner: row.owner.clone(),
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
        let mut guard = self.lock();
        let inner = &mut *guard;
        let id = endpoint.id();
        let owner = endpoint.owner().cloned();
        if let Some(key) = endpoint.key()
            && let Some(holder) = inner.endpoint_keys.get(&(owner.clone(), key.clone()))
            && holder != id
        {
            return Err(StoreError::conflict(format!(
                "endpoint key {key} is held by endpoint {holder}"
            )));
        }
        let old = inner
            .endpoints
            .insert(id.clone(), Arc::new(endpoint.clone()));
        if let Some(old) = &old
            && let Some(key) = old.key()
        {
            inner
                .endpoint_keys
                .remove(&(old.owner().cloned(), key.clone()));
        }
        if let Some(key) = endpoint.key() {
            inner
                .endpoint_keys
                .insert((owner.clone(), key.clone()), id.clone());
        }
        if old.is_some_and(|old| old.owner() != endpoint.owner()) {
            for pending in inner.pending_of(id) {
                if let Some(row) = inner.deliveries.get_mut(&pending) {
                    row.owner.clone_from(&owner);
                }
            }
        }
        Ok(())
    }

    async fn endpoint_page(
        &self,
        query: &EndpointQuery,
    ) -> Result<Page<Arc<Endpoint>>, StoreError> {
        let after = match &query.after {
            Some(cursor) => Bound::Excluded(cursor.endpoint_id().map_err(StoreError::from)?),
            None => Bound::Unbounded,
        };
        let inner = self.lock();
        let rows: Vec<Arc<Endpoint>> = inner
            .endpoints
            .range((after, Bound::Unbounded))
            .map(|(_, endpoint)| endpoint)
            .filter(|endpoint| query.matches(endpoint))
            .take(query.limit.get() + 1)
            .cloned()
            .collect();
        Ok(Page::from_overfetch(rows, query.limit, |e| {
            Cursor::endpoint(e.id())
        }))
    }

    async fn endpoint_by_key(
        &self,
        owner: Option<&Owner>,
        key: &EndpointKey,
    ) -> Result<Option<Arc<Endpoint>>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .endpoint_keys
            .get(&(owner.cloned(), key.clone()))
            .and_then(|id| inner.endpoints.get(id))
            .cloned())
    }

    async fn delete_endpoint(&self, id: &EndpointId, now: UnixMillis) -> Result<u64, StoreError> {
        let mut inner = self.lock();
        let endpoint = inner
            .endpoints
            .remove(id)
            .ok_or_else(|| StoreError::not_found("endpoint"))?;
        if let Some(key) = endpoint.key() {
            inner
                .endpoint_keys
                .remove(&(endpoint.owner().cloned(), key.clone()));
        }
        let pending = inner.pending_of(id);
        for delivery in &pending {
            inner.finish(delivery, DeliveryStatus::Cancelled, now);
        }
        Ok(pending.len() as u64)
    }

    async fn endpoint(&self, id: &EndpointId) -> Result<Option<Arc<Endpoint>>, StoreError> {
        Ok(self.lock().endpoints.get(id).cloned())
    }

    async fn endpoints(&self) -> Result<Vec<Arc<Endpoint>>, StoreError> {
        Ok(self.lock().endpoints.values().cloned().collect())
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
            let message = inner.store_message(publication.message);
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
                    let pending = replaced
                        .iter()
                        .filter_map(|id| inner.deliveries.get(id)?.slot.map(|(at, _)| at))
                        .min();
                    let latest = inner.throttle_windows.latest(&index, now);
                    due = group.due_at(now, pending, latest);
                    if let Some(window) = group.window {
                        inner.throttle_windows.set(index, due, window);
                        throttle_key = Some(key);
                    }
                    for id in replaced {
                        inner.finish(&id, DeliveryStatus::Superseded, now);
                        superseded += 1;
                    }
                }
                let order_key: Option<Arc<str>> = delivery.order_key.as_deref().map(Arc::from);
                let id = delivery.id.clone();
                inner.insert_row(delivery.id, |created_seq| Row {
                    keys: Row::keys(order_key, throttle_key),
                    ..Row::pending(
                        Arc::clone(&message),
                        delivery.endpoint,
                        delivery.owner,
                        delivery.body,
                        delivery.kind,
                        created_seq,
                    )
                });
                inner.index_keys(&id);
                inner.schedule(&id, due);
            }
            out.push(Enqueued::Created {
                id: message.id.clone(),
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
        // A dispatcher with thousands of saturated endpoints skips them all: a set, so the
        // scan stays linear in the queue.
        let skip = Skip::new(skip);
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
                        request_headers: result.request_headers,
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
                DeliveryStatus::Superseded
                | DeliveryStatus::Batched
                | DeliveryStatus::Cancelled => continue,
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
        let body = batch.message.bodies.first().cloned().unwrap_or_default();
        let message = inner.store_message(batch.message.clone());
        // The batch keeps its members' owner (their endpoint's).
        let owner = batch
            .members
            .first()
            .and_then(|(id, _)| inner.deliveries.get(id)?.owner.clone());
        inner.tokens += 1;
        let token = FencingToken(inner.tokens);
        inner.insert_row(batch.delivery.clone(), |created_seq| Row {
            lease: Some(token),
            ..Row::pending(
                message,
                batch.endpoint.clone(),
                owner,
                0,
                DeliveryKind::Batch,
                created_seq,
            )
        });
        inner.schedule(&batch.delivery, now.saturating_add(lease));
        Ok(Some(batch.into_claim(body, token)))
    }
}

impl DeliveryLog for MemoryStore {
    async fn log_page(
        &self,
        query: &LogQuery,
        now: UnixMillis,
    ) -> Result<Page<DeliveryRecord>, StoreError> {
        let after = query
            .after
            .as_ref()
            .map(Cursor::log_position)
            .transpose()
            .map_err(StoreError::from)?;
        let inner = self.lock();
        let rows: Box<dyn Iterator<Item = (&u64, &DeliveryId)>> = match (query.order, after) {
            (LogOrder::OldestFirst, Some(seq)) => {
                Box::new(inner.log.range((Bound::Excluded(seq), Bound::Unbounded)))
            }
            (LogOrder::OldestFirst, None) => Box::new(inner.log.iter()),
            (_, Some(seq)) => Box::new(inner.log.range(..seq).rev()),
            (_, None) => Box::new(inner.log.iter().rev()),
        };
        let found: Vec<(u64, DeliveryRecord)> = rows
            .filter_map(|(seq, id)| {
                let row = inner.deliveries.get(id)?;
                // The cheap filter first: most listings are one endpoint's.
                if query.endpoint.as_ref().is_some_and(|e| *e != row.endpoint) {
                    return None;
                }
                let record = inner.record_of(id, row, Some(now));
                query.matches(&record).then_some((*seq, record))
            })
            .take(query.limit.get() + 1)
            .collect();
        Ok(
            Page::from_overfetch(found, query.limit, |(seq, _)| Cursor::log(*seq))
                .map(|(_, record)| record),
        )
    }

    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        Ok(self.lock().messages.get(id).map(|m| MessageRecord {
            id: m.id.clone(),
            event_id: m.event_id.clone(),
            event_type: m.event_type.clone(),
            created_at: m.created_at,
            body: m.bodies.first().cloned().unwrap_or_default(),
        }))
    }

    /// One pass over the scope's deliveries under one lock.
    async fn series(
        &self,
        scope: &SeriesScope,
        windows: &[TimeRange],
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let inner = self.lock();
        let mut builders: Vec<EndpointStatsBuilder> = windows
            .iter()
            .map(|w| EndpointStatsBuilder::new(*w))
            .collect();
        let in_scope = |row: &&Row| match scope {
            SeriesScope::Endpoint(endpoint) => row.endpoint == *endpoint,
            SeriesScope::Owner(owner) => row.owner.as_ref() == Some(owner),
            _ => true,
        };
        for (id, row) in inner.deliveries.iter().filter(|(_, row)| in_scope(row)) {
            for stats in &mut builders {
                stats.delivery(row.status.kind(), row.message.created_at, inner.samples(id));
            }
        }
        Ok(builders
            .into_iter()
            .map(EndpointStatsBuilder::build)
            .collect())
    }

    /// One pass over the deliveries under one lock.
    async fn endpoints_stats(
        &self,
        endpoints: &[EndpointId],
        window: TimeRange,
    ) -> Result<Vec<EndpointStats>, StoreError> {
        let inner = self.lock();
        let mut builders: Vec<EndpointStatsBuilder> = endpoints
            .iter()
            .map(|_| EndpointStatsBuilder::new(window))
            .collect();
        for (id, row) in &inner.deliveries {
            for (i, _) in endpoints
                .iter()
                .enumerate()
                .filter(|(_, e)| **e == row.endpoint)
            {
                let stats = &mut builders[i];
                stats.delivery(row.status.kind(), row.message.created_at, inner.samples(id));
            }
        }
        Ok(builders
            .into_iter()
            .map(EndpointStatsBuilder::build)
            .collect())
    }

    async fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        window: TimeRange,
    ) -> Result<EndpointStats, StoreError> {
        let inner = self.lock();
        let mut stats = EndpointStatsBuilder::new(window);
        for (id, row) in inner
            .deliveries
            .iter()
            .filter(|(_, row)| row.endpoint == *endpoint)
        {
            stats.delivery(row.status.kind(), row.message.created_at, inner.samples(id));
        }
        Ok(stats.build())
    }

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
                DeliveryStatus::Cancelled => counts.cancelled += 1,
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
        let doomed: Vec<(u64, DeliveryId)> = inner
            .log
            .iter()
            .filter(|(_, id)| inner.deliveries.get(*id).is_some_and(expired))
            .take(limit)
            .map(|(seq, id)| (*seq, id.clone()))
            .collect();
        for (seq, id) in &doomed {
            inner.log.remove(seq);
            if let Some(row) = inner.deliveries.remove(id) {
                purged.deliveries += 1;
                // The last delivery of its message: only the message index holds it now.
                if Arc::strong_count(&row.message) == 2 {
                    inner.messages.remove(&row.message.id);
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

/// The endpoints a claim leaves out: a short list is searched as it is, a long one through a
/// hash set.
enum Skip<'a> {
    Few(&'a [EndpointId]),
    Many(std::collections::HashSet<&'a EndpointId>),
}

impl<'a> Skip<'a> {
    /// Above this many, a hash set.
    const FEW: usize = 16;

    fn new(skip: &'a [EndpointId]) -> Self {
        if skip.len() <= Self::FEW {
            Skip::Few(skip)
        } else {
            Skip::Many(skip.iter().collect())
        }
    }

    fn contains(&self, endpoint: &EndpointId) -> bool {
        match self {
            Skip::Few(list) => list.contains(endpoint),
            Skip::Many(set) => set.contains(endpoint),
        }
    }
}
