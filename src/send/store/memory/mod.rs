//! [`MemoryStore`]: the default delivery store, in this process's memory.
//!
//! Laid out for memory per pending delivery: rows and messages in [`Table`]s (numbered in
//! creation order, found by id through an index of numbers), endpoint ids, owners and event
//! types kept once in [`Names`] and named by a number in each row, generated ids inline.

mod names;
mod table;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::num::{NonZeroU16, NonZeroU32, NonZeroU64};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;

use self::names::Names;
use self::table::{Keyed, Table};
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
/// with their deliveries; messages no delivery refers to stay until then too. A pending
/// delivery costs about 240 bytes beyond its body (`benches/send_memory.rs`).
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
    /// Every delivery, numbered in creation order: the log's order, what its cursors name.
    rows: Table<Row>,
    /// Every message stored, until purge removes its last delivery.
    messages: Table<Message>,
    endpoint_names: Names<EndpointId>,
    owner_names: Names<Owner>,
    type_names: Names<EventType>,
    /// Pending deliveries by (due time, number); a claimed one sits at its lease's end, so
    /// an expired lease makes it due again with no sweep.
    queue: BTreeSet<(UnixMillis, u64)>,
    /// Pending deliveries with an ordering key, by (endpoint, key), in publish order: only
    /// the first of each is claimable.
    ordered: HashMap<(EndpointId, Arc<str>), BTreeSet<u64>>,
    /// Pending deliveries with a throttle key, by (endpoint, key): what a later one
    /// supersedes.
    throttled: HashMap<(EndpointId, Arc<str>), Vec<u64>>,
    /// Each throttle group's latest due time, while its window lasts.
    throttle_windows: ThrottleWindows,
    keys: HashMap<String, (MessageId, UnixMillis)>,
    /// By delivery number.
    attempts: HashMap<u64, Vec<AttemptLog>>,
    tokens: u64,
}

#[derive(Debug)]
struct Message {
    id: MessageId,
    event_id: Box<str>,
    bodies: Bodies,
    created_at: UnixMillis,
    event_type: NonZeroU32,
    /// Its deliveries still in the log.
    deliveries: u32,
}

/// A message's body forms: almost always one.
#[derive(Debug)]
enum Bodies {
    One(Bytes),
    Many(Box<[Bytes]>),
}

impl Bodies {
    fn new(mut bodies: Vec<Bytes>) -> Self {
        match bodies.len() {
            1 => Bodies::One(bodies.pop().unwrap_or_default()),
            _ => Bodies::Many(bodies.into_boxed_slice()),
        }
    }

    /// Form `index`, or empty if there is none.
    fn get(&self, index: u8) -> Bytes {
        match self {
            Bodies::One(body) if index == 0 => body.clone(),
            Bodies::One(_) => Bytes::new(),
            Bodies::Many(bodies) => bodies.get(usize::from(index)).cloned().unwrap_or_default(),
        }
    }
}

impl Keyed for Message {
    fn key(&self) -> &str {
        self.id.as_str()
    }
}

#[derive(Debug)]
struct Row {
    id: DeliveryId,
    /// Its message's number.
    message: u64,
    /// While pending, its place in the queue: when it is due (its lease's end while claimed).
    /// Once finished, when it finished.
    at: UnixMillis,
    /// The current claim's token.
    lease: Option<NonZeroU64>,
    /// Ordering and throttle keys and the batch, boxed: most deliveries have none.
    keys: Option<Box<Keys>>,
    endpoint: NonZeroU32,
    /// The endpoint's owner: when the delivery was created, or since it last changed while
    /// the delivery was pending.
    owner: Option<NonZeroU32>,
    attempts: u32,
    charged: u32,
    last_status: Option<NonZeroU16>,
    status: DeliveryStatus,
    body: u8,
    kind: DeliveryKind,
    manual: bool,
}

impl Keyed for Row {
    fn key(&self) -> &str {
        self.id.as_str()
    }
}

#[derive(Debug, Default)]
struct Keys {
    order: Option<Arc<str>>,
    throttle: Option<Arc<str>>,
    batch: Option<DeliveryId>,
}

/// What a new row is made of.
struct NewRow {
    id: DeliveryId,
    message: u64,
    endpoint: EndpointId,
    owner: Option<Owner>,
    body: u8,
    kind: DeliveryKind,
    keys: Option<Box<Keys>>,
    lease: Option<FencingToken>,
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
    fn pending(&self) -> bool {
        self.status == DeliveryStatus::Pending
    }

    fn token(&self) -> Option<FencingToken> {
        self.lease.map(|t| FencingToken(t.get()))
    }

    fn held(&self, now: UnixMillis) -> bool {
        self.pending() && self.lease.is_some() && self.at > now
    }

    fn holds(&self, token: FencingToken) -> bool {
        self.pending() && self.token() == Some(token)
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
    /// Keeps a message; every delivery of it names it by the number returned.
    fn store_message(&mut self, message: NewMessage) -> u64 {
        let event_type = self.type_names.number(&message.event_type);
        self.messages.push(Message {
            id: message.id,
            event_id: message.event_id.into_string().into_boxed_str(),
            bodies: Bodies::new(message.bodies),
            created_at: message.created_at,
            event_type,
            deliveries: 0,
        })
    }

    /// Adds a pending delivery to the log under the next number, queued at `due`, and to the
    /// ordering and throttle indexes.
    fn insert_row(&mut self, new: NewRow, due: UnixMillis) -> u64 {
        if let Some(message) = self.messages.get_mut(new.message) {
            message.deliveries += 1;
        }
        let endpoint = self.endpoint_names.number(&new.endpoint);
        let owner = new.owner.as_ref().map(|o| self.owner_names.number(o));
        let seq = self.rows.push(Row {
            id: new.id,
            message: new.message,
            at: due,
            lease: new.lease.and_then(|t| NonZeroU64::new(t.0)),
            keys: new.keys,
            endpoint,
            owner,
            attempts: 0,
            charged: 0,
            last_status: None,
            status: DeliveryStatus::Pending,
            body: new.body,
            kind: new.kind,
            manual: false,
        });
        self.queue.insert((due, seq));
        self.index_keys(seq);
        seq
    }

    /// An endpoint's pending deliveries, claimed or not (every pending delivery is queued).
    fn pending_of(&self, endpoint: &EndpointId) -> Vec<u64> {
        let Some(number) = self.endpoint_names.find(endpoint) else {
            return Vec::new();
        };
        self.queue
            .iter()
            .filter(|(_, seq)| {
                self.rows
                    .get(*seq)
                    .is_some_and(|row| row.endpoint == number)
            })
            .map(|(_, seq)| *seq)
            .collect()
    }

    /// Moves a pending delivery's place in the queue to `at`.
    fn schedule(&mut self, seq: u64, at: UnixMillis) {
        if let Some(row) = self.rows.get_mut(seq)
            && row.pending()
        {
            self.queue.remove(&(row.at, seq));
            row.at = at;
            self.queue.insert((at, seq));
        }
    }

    /// Takes a delivery out of the queue and the ordering and throttle indexes: it is
    /// finished.
    fn finish(&mut self, seq: u64, status: DeliveryStatus, now: UnixMillis) {
        let Some(row) = self.rows.get_mut(seq) else {
            return;
        };
        if row.pending() {
            self.queue.remove(&(row.at, seq));
        }
        row.status = status;
        row.lease = None;
        row.at = now;
        let endpoint = self.endpoint_names.value(row.endpoint).clone();
        let (order_key, throttle_key) = (row.order_key().cloned(), row.throttle_key().cloned());
        if let Some(key) = order_key {
            let index = (endpoint.clone(), key);
            if let Some(set) = self.ordered.get_mut(&index) {
                set.remove(&seq);
                if set.is_empty() {
                    self.ordered.remove(&index);
                }
            }
        }
        if let Some(key) = throttle_key {
            let index = (endpoint, key);
            if let Some(seqs) = self.throttled.get_mut(&index) {
                seqs.retain(|other| *other != seq);
                if seqs.is_empty() {
                    self.throttled.remove(&index);
                }
            }
        }
    }

    /// Puts a finished delivery back into the queue and the indexes, pending again.
    fn reopen(&mut self, seq: u64, now: UnixMillis) {
        let Some(row) = self.rows.get_mut(seq) else {
            return;
        };
        if row.pending() {
            return;
        }
        row.status = DeliveryStatus::Pending;
        row.at = now;
        self.queue.insert((now, seq));
        self.index_keys(seq);
    }

    /// Adds a pending delivery to the ordering and throttle indexes.
    fn index_keys(&mut self, seq: u64) {
        let Some(row) = self.rows.get(seq) else {
            return;
        };
        if row.keys.is_none() {
            return;
        }
        let endpoint = self.endpoint_names.value(row.endpoint);
        let index = |key: &Arc<str>| (endpoint.clone(), Arc::clone(key));
        let (order, throttle) = (row.order_key().map(index), row.throttle_key().map(index));
        if let Some(index) = order {
            self.ordered.entry(index).or_default().insert(seq);
        }
        if let Some(index) = throttle {
            self.throttled.entry(index).or_default().push(seq);
        }
    }

    /// Whether delivery `seq` waits behind an earlier pending delivery of its ordering key.
    fn blocked_by_order(&self, seq: u64, row: &Row) -> bool {
        let Some(key) = row.order_key() else {
            return false;
        };
        let endpoint = self.endpoint_names.value(row.endpoint).clone();
        self.ordered
            .get(&(endpoint, Arc::clone(key)))
            .and_then(|set| set.first())
            .is_some_and(|first| *first != seq)
    }

    /// The attempts of delivery `seq`, as the statistics see them.
    fn samples(&self, seq: u64) -> impl Iterator<Item = AttemptSample> + '_ {
        self.attempts
            .get(&seq)
            .into_iter()
            .flatten()
            .map(AttemptSample::from)
    }

    /// Whether a row is a delivery to `endpoint` (every row is, with `None`): the endpoint's
    /// number looked up once.
    fn of_endpoint(&self, endpoint: Option<&EndpointId>) -> impl Fn(&Row) -> bool + use<> {
        let wanted = endpoint.map(|e| self.endpoint_names.find(e));
        move |row| wanted.is_none_or(|n| n == Some(row.endpoint))
    }

    /// The deliveries of one endpoint, oldest first, with their numbers.
    fn rows_of(&self, endpoint: &EndpointId) -> impl Iterator<Item = (u64, &Row)> {
        let of = self.of_endpoint(Some(endpoint));
        self.rows.iter().filter(move |(_, row)| of(row))
    }

    /// The record of `row` (`None` only if its message were gone, which purge prevents: a
    /// message goes with its last delivery).
    fn record_of(&self, row: &Row, now: Option<UnixMillis>) -> Option<DeliveryRecord> {
        let message = self.messages.get(row.message)?;
        let claimed = row.pending()
            && match now {
                Some(now) => row.held(now),
                None => row.lease.is_some(),
            };
        Some(DeliveryRecord {
            id: row.id.clone(),
            message: message.id.clone(),
            endpoint: self.endpoint_names.value(row.endpoint).clone(),
            owner: row.owner.map(|o| self.owner_names.value(o).clone()),
            event_id: EventId::new(&*message.event_id),
            event_type: self.type_names.value(message.event_type).clone(),
            status: row.status,
            attempts: row.attempts,
            created_at: message.created_at,
            next_attempt_at: row.pending().then_some(row.at),
            claimed,
            last_status: row.last_status.map(NonZeroU16::get),
            kind: row.kind,
            finished_at: (!row.pending()).then_some(row.at),
            batch: row.keys.as_ref().and_then(|k| k.batch.clone()),
        })
    }

    /// When `row`'s message was published.
    fn created_at(&self, row: &Row) -> UnixMillis {
        self.messages
            .get(row.message)
            .map_or(UnixMillis::from_millis(0), |m| m.created_at)
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
            let number = owner.as_ref().map(|o| inner.owner_names.number(o));
            for pending in inner.pending_of(id) {
                if let Some(row) = inner.rows.get_mut(pending) {
                    row.owner = number;
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
        for seq in &pending {
            inner.finish(*seq, DeliveryStatus::Cancelled, now);
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
            let message_id = publication.message.id.clone();
            let message = inner.store_message(publication.message);
            let mut superseded = 0;
            for delivery in publication.deliveries {
                let mut due = now;
                let mut throttle_key: Option<Arc<str>> = None;
                if let Some(group) = &delivery.throttle {
                    let key = Arc::<str>::from(group.key.as_str());
                    let index = (delivery.endpoint.clone(), Arc::clone(&key));
                    let replaced: Vec<u64> = inner
                        .throttled
                        .get(&index)
                        .map(|seqs| {
                            seqs.iter()
                                .copied()
                                .filter(|seq| {
                                    inner.rows.get(*seq).is_some_and(|row| !row.held(now))
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    let pending = replaced
                        .iter()
                        .filter_map(|seq| inner.rows.get(*seq).map(|row| row.at))
                        .min();
                    let latest = inner.throttle_windows.latest(&index, now);
                    due = group.due_at(now, pending, latest);
                    if let Some(window) = group.window {
                        inner.throttle_windows.set(index, due, window);
                        throttle_key = Some(key);
                    }
                    for seq in replaced {
                        inner.finish(seq, DeliveryStatus::Superseded, now);
                        superseded += 1;
                    }
                }
                let order_key: Option<Arc<str>> = delivery.order_key.as_deref().map(Arc::from);
                let row = NewRow {
                    id: delivery.id,
                    message,
                    endpoint: delivery.endpoint,
                    owner: delivery.owner,
                    body: delivery.body,
                    kind: delivery.kind,
                    keys: Row::keys(order_key, throttle_key),
                    lease: None,
                };
                inner.insert_row(row, due);
            }
            out.push(Enqueued::Created {
                id: message_id,
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
        let skip = Skip::new(skip, &inner.endpoint_names);
        for (at, seq) in inner.queue.iter() {
            if *at > now || picked.len() >= limit {
                break;
            }
            let Some(row) = inner.rows.get(*seq) else {
                continue;
            };
            if skip.contains(row.endpoint) || inner.blocked_by_order(*seq, row) {
                continue;
            }
            let active = inner
                .endpoints
                .get(inner.endpoint_names.value(row.endpoint))
                .is_some_and(|e| e.status() == EndpointStatus::Active);
            if active {
                picked.push(*seq);
            }
        }
        let until = now.saturating_add(lease);
        let mut claims = Vec::with_capacity(picked.len());
        for seq in picked {
            inner.tokens += 1;
            let token = FencingToken(inner.tokens);
            inner.schedule(seq, until);
            let Some(row) = inner.rows.get_mut(seq) else {
                continue;
            };
            row.lease = NonZeroU64::new(token.0);
            let inner = &*inner;
            let Some(row) = inner.rows.get(seq) else {
                continue;
            };
            let Some(message) = inner.messages.get(row.message) else {
                continue;
            };
            claims.push(ClaimedDelivery {
                delivery: row.id.clone(),
                message: message.id.clone(),
                endpoint: inner.endpoint_names.value(row.endpoint).clone(),
                event_id: EventId::new(&*message.event_id),
                event_type: inner.type_names.value(message.event_type).clone(),
                body: message.bodies.get(row.body),
                created_at: message.created_at,
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
            let Some((seq, row)) = inner
                .rows
                .find_mut(result.delivery.as_str())
                .filter(|(_, row)| row.holds(result.token))
            else {
                out.push(Recorded::Stale);
                continue;
            };
            row.lease = None;
            if result.attempt > 0 {
                row.attempts = result.attempt.max(row.attempts);
                row.last_status = result.status.and_then(NonZeroU16::new);
                row.manual = false;
                if result.charged {
                    row.charged += 1;
                }
            }
            let disable = (result.next == NextStep::DisableEndpoint).then_some(row.endpoint);
            let finished = Some(result.next.status()).filter(|s| s.is_finished());
            match (finished, result.next) {
                (Some(status), _) => {
                    let at = result.started_at.saturating_add(result.latency);
                    inner.finish(seq, status, at);
                }
                (None, NextStep::RetryAt(at)) => inner.schedule(seq, at),
                (None, _) => {}
            }
            if let Some(endpoint) = disable {
                let endpoint = inner.endpoint_names.value(endpoint).clone();
                if let Some(e) = inner.endpoints.get_mut(&endpoint) {
                    *e = Arc::new((**e).clone().with_status(EndpointStatus::Disabled));
                }
            }
            if result.attempt > 0 {
                inner.attempts.entry(seq).or_default().push(AttemptLog {
                    delivery: result.delivery,
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
            if let Some((seq, row)) = inner.rows.find_mut(release.delivery.as_str())
                && row.holds(release.token)
            {
                row.lease = None;
                inner.schedule(seq, release.due_at);
            }
        }
        Ok(())
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        Ok(self.lock().queue.first().map(|(at, _)| *at))
    }

    async fn retry_now(
        &self,
        ids: &[DeliveryId],
        now: UnixMillis,
    ) -> Result<Vec<DeliveryId>, StoreError> {
        let mut inner = self.lock();
        let mut queued = Vec::new();
        for id in ids {
            let Some((seq, row)) = inner.rows.find_mut(id.as_str()) else {
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
                    inner.schedule(seq, now);
                }
                _ => {
                    row.manual = true;
                    inner.reopen(seq, now);
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
        let members: Option<Vec<u64>> = batch
            .members
            .iter()
            .map(|(id, token)| {
                inner
                    .rows
                    .find(id.as_str())
                    .filter(|(_, row)| row.holds(*token))
                    .map(|(seq, _)| seq)
            })
            .collect();
        let Some(members) = members else {
            return Ok(None);
        };
        for seq in &members {
            inner.finish(*seq, DeliveryStatus::Batched, now);
            if let Some(row) = inner.rows.get_mut(*seq) {
                row.keys.get_or_insert_with(Box::default).batch = Some(batch.delivery.clone());
            }
        }
        let body = batch.message.bodies.first().cloned().unwrap_or_default();
        let message = inner.store_message(batch.message.clone());
        // The batch keeps its members' owner (their endpoint's).
        let owner = members
            .first()
            .and_then(|seq| inner.rows.get(*seq)?.owner)
            .map(|o| inner.owner_names.value(o).clone());
        inner.tokens += 1;
        let token = FencingToken(inner.tokens);
        let row = NewRow {
            id: batch.delivery.clone(),
            message,
            endpoint: batch.endpoint.clone(),
            owner,
            body: 0,
            kind: DeliveryKind::Batch,
            keys: None,
            lease: Some(token),
        };
        inner.insert_row(row, now.saturating_add(lease));
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
        let rows: Box<dyn Iterator<Item = (u64, &Row)>> = match query.order {
            LogOrder::OldestFirst => Box::new(inner.rows.after(after)),
            _ => Box::new(inner.rows.before(after)),
        };
        // The cheap filter first: most listings are one endpoint's.
        let of_endpoint = inner.of_endpoint(query.endpoint.as_ref());
        let found: Vec<(u64, DeliveryRecord)> = rows
            .filter(|(_, row)| of_endpoint(row))
            .filter_map(|(seq, row)| {
                let record = inner.record_of(row, Some(now))?;
                query.matches(&record).then_some((seq, record))
            })
            .take(query.limit.get() + 1)
            .collect();
        Ok(
            Page::from_overfetch(found, query.limit, |(seq, _)| Cursor::log(*seq))
                .map(|(_, record)| record),
        )
    }

    async fn message(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .messages
            .find(id.as_str())
            .map(|(_, m)| MessageRecord {
                id: m.id.clone(),
                event_id: EventId::new(&*m.event_id),
                event_type: inner.type_names.value(m.event_type).clone(),
                created_at: m.created_at,
                body: m.bodies.get(0),
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
        let rows: Box<dyn Iterator<Item = (u64, &Row)>> = match scope {
            SeriesScope::Endpoint(endpoint) => Box::new(inner.rows_of(endpoint)),
            SeriesScope::Owner(owner) => {
                let owner = inner.owner_names.find(owner);
                Box::new(
                    inner
                        .rows
                        .iter()
                        .filter(move |(_, row)| owner.is_some() && row.owner == owner),
                )
            }
            _ => Box::new(inner.rows.iter()),
        };
        for (seq, row) in rows {
            for stats in &mut builders {
                stats.delivery(row.status.kind(), inner.created_at(row), inner.samples(seq));
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
        let numbers: Vec<Option<NonZeroU32>> = endpoints
            .iter()
            .map(|e| inner.endpoint_names.find(e))
            .collect();
        for (seq, row) in inner.rows.iter() {
            for (i, _) in numbers
                .iter()
                .enumerate()
                .filter(|(_, n)| **n == Some(row.endpoint))
            {
                let stats = &mut builders[i];
                stats.delivery(row.status.kind(), inner.created_at(row), inner.samples(seq));
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
        for (seq, row) in inner.rows_of(endpoint) {
            stats.delivery(row.status.kind(), inner.created_at(row), inner.samples(seq));
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
            .rows
            .find(id.as_str())
            .and_then(|(_, row)| inner.record_of(row, Some(now))))
    }

    async fn attempts(&self, id: &DeliveryId) -> Result<Vec<AttemptLog>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .rows
            .seq_of(id.as_str())
            .and_then(|seq| inner.attempts.get(&seq))
            .cloned()
            .unwrap_or_default())
    }

    async fn counts(&self, now: UnixMillis) -> Result<DeliveryCounts, StoreError> {
        let inner = self.lock();
        let mut counts = DeliveryCounts::default();
        for (_, row) in inner.rows.iter() {
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
            row.at.saturating_add(keep) <= now
        };
        let doomed: Vec<u64> = inner
            .rows
            .iter()
            .filter(|(_, row)| expired(row))
            .take(limit)
            .map(|(seq, _)| seq)
            .collect();
        for seq in doomed {
            if let Some(row) = inner.rows.remove(seq) {
                purged.deliveries += 1;
                let last = inner.messages.get_mut(row.message).is_some_and(|m| {
                    m.deliveries = m.deliveries.saturating_sub(1);
                    m.deliveries == 0
                });
                if last {
                    inner.messages.remove(row.message);
                    purged.messages += 1;
                }
            }
            if let Some(logs) = inner.attempts.remove(&seq) {
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

/// The endpoints a claim leaves out, by number: a short list is searched as it is, a long one
/// through a hash set.
enum Skip {
    Few(Vec<NonZeroU32>),
    Many(HashSet<NonZeroU32>),
}

impl Skip {
    /// Above this many, a hash set.
    const FEW: usize = 16;

    /// `skip`'s endpoints that any delivery names (the others have nothing to skip).
    fn new(skip: &[EndpointId], names: &Names<EndpointId>) -> Self {
        let numbers = skip.iter().filter_map(|e| names.find(e));
        if skip.len() <= Self::FEW {
            Skip::Few(numbers.collect())
        } else {
            Skip::Many(numbers.collect())
        }
    }

    fn contains(&self, endpoint: NonZeroU32) -> bool {
        match self {
            Skip::Few(list) => list.contains(&endpoint),
            Skip::Many(set) => set.contains(&endpoint),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout `benches/send_memory.rs` measures (a pending delivery of a message of its
    /// own: row, message, queue entry, two index slots, the event id's text): a field that
    /// widens either struct shows here first.
    #[test]
    fn a_row_and_a_message_stay_within_their_budget() {
        assert!(std::mem::size_of::<Row>() <= 80);
        assert!(std::mem::size_of::<Message>() <= 88);
        assert_eq!(std::mem::size_of::<Bodies>(), std::mem::size_of::<Bytes>());
    }
}
