//! Idempotency: remembering which deliveries were processed, so a retry or a replay of the
//! same delivery runs the handler once.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher as _, RandomState};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::Timestamp;

/// The natural id of one delivery, as its profile defines it (see
/// [`IdempotencyKey::for_delivery`]).
///
/// Cloning is cheap (a shared reference count).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(Arc<str>);

impl IdempotencyKey {
    /// Longest key kept; longer natural ids are hashed down to this form.
    pub const MAX_LEN: usize = 200;

    /// A key from a natural id. Ids longer than [`MAX_LEN`](Self::MAX_LEN) are replaced by
    /// their SHA-256, so storage stays bounded whatever the sender sends.
    pub fn new(id: impl Into<String>) -> Self {
        let id = id.into();
        if id.len() <= Self::MAX_LEN {
            Self(id.into())
        } else {
            Self::digest("long-id", id.as_bytes())
        }
    }

    /// `<namespace>:<id>`, built with one allocation; ids longer than
    /// [`MAX_LEN`](Self::MAX_LEN) as a whole are hashed as in [`new`](Self::new).
    pub(crate) fn namespaced(namespace: &str, id: &str) -> Self {
        let len = namespace.len() + 1 + id.len();
        if len > Self::MAX_LEN {
            return Self::new(format!("{namespace}:{id}"));
        }
        let mut joined = [0u8; Self::MAX_LEN];
        joined[..namespace.len()].copy_from_slice(namespace.as_bytes());
        joined[namespace.len()] = b':';
        joined[namespace.len() + 1..len].copy_from_slice(id.as_bytes());
        // Two whole `str`s joined by an ASCII byte are UTF-8.
        match std::str::from_utf8(&joined[..len]) {
            Ok(key) => Self(key.into()),
            Err(_) => Self::new(format!("{namespace}:{id}")),
        }
    }

    /// A key derived from bytes: `<label>:<sha256 hex>`.
    pub fn digest(label: &str, bytes: &[u8]) -> Self {
        use sha2::{Digest as _, Sha256};
        Self(format!("{label}:{}", hex::encode(Sha256::digest(bytes))).into())
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The answer to "may I process this delivery?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Claim {
    /// First sight (or an earlier attempt failed or expired): process it, then
    /// [`complete`](IdempotencyStore::complete) or [`release`](IdempotencyStore::release).
    Acquired,
    /// Another request is processing this delivery right now. Answer `409 Conflict` so the
    /// sender retries later: a 2xx now would lose the event if that processing fails.
    InProgress,
    /// Already processed successfully: answer 2xx without processing again.
    Done,
}

/// How long idempotency records live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// How long a processed delivery is remembered. It must cover the sender's whole retry
    /// horizon (TaskLink retries for ~14.5 h, Standard Webhooks for ~28 h); default 72 h.
    pub done: Duration,
    /// How long a claim lasts while its handler runs; a crashed handler's claim expires after
    /// this, so the sender's next retry is processed. Default 5 minutes.
    pub in_flight: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            done: Duration::from_secs(72 * 3600),
            in_flight: Duration::from_secs(300),
        }
    }
}

/// Where idempotency records live. Implementations must make [`claim`](Self::claim) atomic:
/// of many concurrent claims for one key, exactly one is [`Claim::Acquired`].
pub trait IdempotencyStore: Send + Sync + 'static {
    /// Claims `key` for processing at `now`.
    fn claim(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send;

    /// Marks `key` processed; later claims answer [`Claim::Done`] until the retention ends.
    fn complete(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Forgets an unfinished claim so the sender's retry is processed.
    fn release(&self, key: &IdempotencyKey) -> impl Future<Output = Result<(), StoreError>> + Send;
}

pub use crate::StoreError;

/// Unix seconds `ttl` after `now`, saturating.
pub(crate) fn expiry(now: Timestamp, ttl: Duration) -> i64 {
    now.as_unix()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    InFlight,
    Done,
}

#[derive(Debug, Clone, Copy)]
struct Record {
    state: State,
    expires_at: i64,
}

/// A 128-bit keyed digest of an [`IdempotencyKey`]: the memory store's key.
///
/// Two SipHash-1-3 instances with independent random keys (std's `RandomState`) give 128
/// bits no sender can predict, so no sender can aim for collisions, and an accidental one
/// among 50 million live keys has a probability near 10⁻²³. Fixed-size keys keep each
/// record inline in the table (32 bytes, no allocation, no pointer to chase per probe).
type Digest = u128;

/// Hashes a [`Digest`] for the table by taking its low 64 bits: it is already uniformly
/// random, so hashing it again would only cost time.
#[derive(Debug, Clone, Copy, Default)]
struct DigestHasher(u64);

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for non-u128 input; fold it in so the hasher stays correct anyway.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u128(&mut self, digest: u128) {
        self.0 = digest as u64;
    }
}

type Table = HashMap<Digest, Record, std::hash::BuildHasherDefault<DigestHasher>>;

/// The records and when sweeping a full table can next free anything.
#[derive(Debug, Default)]
struct Records {
    table: Table,
    /// No record expires before this (unix seconds), so a full table swept since has no room
    /// to make until then.
    nothing_expires_before: i64,
}

#[derive(Debug)]
struct Shared {
    records: Mutex<Records>,
    /// Two independently keyed hashers: together, the 128-bit [`Digest`].
    keys: [RandomState; 2],
}

/// What a full [`MemoryIdempotencyStore`] does with a new delivery.
///
/// A processed delivery is remembered for [`Retention::done`] (72 h by default), so a store
/// of capacity `C` covers the whole retention only up to `C / retention` deliveries per
/// second: 100 000 records over 72 h is 0.39 per second. Busier receivers need a larger
/// capacity, a database store, or one of these policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// Forget the oldest processed deliveries, about a tenth of the capacity at a time, and
    /// take the new one. The store then remembers the last `capacity` deliveries rather than
    /// the whole retention: a retry of a forgotten delivery runs the handler again
    /// (at-least-once), but no delivery is refused. Claims in flight are never forgotten.
    /// Logged at `WARN` with feature `tracing`. The default.
    #[default]
    ForgetOldest,
    /// Refuse new deliveries with an error that [is full](StoreError::is_full) (503; the sender retries) until
    /// records expire. No delivery runs twice, but under sustained load above
    /// `capacity / retention` new deliveries keep being refused, and a sender that runs out
    /// of retries drops them.
    Refuse,
}

/// A bounded in-memory store with expiry, for one process.
///
/// It holds at most `capacity` records; what happens when a new delivery finds it full is
/// [`WhenFull`]'s choice (by default the oldest processed deliveries are forgotten). A store
/// full of claims in flight refuses with an error that [is full](StoreError::is_full) whatever the policy.
///
/// Records are kept by a 128-bit keyed digest of the key (see the source for the collision
/// argument), 32 bytes each: a million records take about 40 MB.
///
/// ```
/// use hookrelay::receive::{MemoryIdempotencyStore, WhenFull};
///
/// // 1 million records cover 72 h of retention up to about 3.9 deliveries per second.
/// let store = MemoryIdempotencyStore::with_capacity(1_000_000).when_full(WhenFull::Refuse);
/// # let _ = store;
/// ```
#[derive(Debug, Clone)]
pub struct MemoryIdempotencyStore {
    shared: Arc<Shared>,
    capacity: usize,
    when_full: WhenFull,
}

impl MemoryIdempotencyStore {
    /// Default capacity: 100 000 records.
    pub const DEFAULT_CAPACITY: usize = 100_000;

    /// A store holding at most `capacity` records (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                records: Mutex::default(),
                keys: [RandomState::new(), RandomState::new()],
            }),
            capacity: capacity.max(1),
            when_full: WhenFull::default(),
        }
    }

    /// What to do when a new delivery finds the store full (default
    /// [`WhenFull::ForgetOldest`]).
    pub fn when_full(mut self, policy: WhenFull) -> Self {
        self.when_full = policy;
        self
    }

    /// Number of records held, live or expired but not yet swept.
    pub fn len(&self) -> usize {
        self.lock().table.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn digest(&self, key: &IdempotencyKey) -> Digest {
        let [high, low] = &self.shared.keys;
        (u128::from(high.hash_one(key.as_str())) << 64) | u128::from(low.hash_one(key.as_str()))
    }

    /// Makes room in a full table: drops expired records, then, with
    /// [`WhenFull::ForgetOldest`], the oldest tenth of the processed ones. Claims in flight
    /// are never dropped. One pass makes room for many claims, so a full store costs O(1)
    /// per claim amortized. Under [`WhenFull::Refuse`] a pass that frees nothing is not
    /// repeated before a record can have expired. (Under `ForgetOldest` it is, because any
    /// `complete` may make a record forgettable; that takes a table full of claims in flight.)
    /// Returns whether there is room now.
    fn make_room(&self, records: &mut Records, now: i64) -> bool {
        if now < records.nothing_expires_before && self.when_full == WhenFull::Refuse {
            return false;
        }
        let table = &mut records.table;
        table.retain(|_, r| r.expires_at > now);
        if table.len() < self.capacity {
            return true;
        }
        if self.when_full == WhenFull::ForgetOldest {
            let mut processed: Vec<i64> = table
                .values()
                .filter(|r| r.state == State::Done)
                .map(|r| r.expires_at)
                .collect();
            if !processed.is_empty() {
                let forget = (self.capacity / 10).clamp(1, processed.len());
                let (_, &mut cutoff, _) = processed.select_nth_unstable(forget - 1);
                let before = table.len();
                table.retain(|_, r| r.state == State::InFlight || r.expires_at > cutoff);
                super::trace::forgotten(before - table.len(), self.capacity);
                return true;
            }
        }
        records.nothing_expires_before = table.values().map(|r| r.expires_at).min().unwrap_or(now);
        false
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        // A panic while holding the lock leaves the map consistent (single inserts/removes).
        self.shared
            .records
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }
}

impl Default for MemoryIdempotencyStore {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

impl IdempotencyStore for MemoryIdempotencyStore {
    async fn claim(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<Claim, StoreError> {
        use std::collections::hash_map::Entry;

        let digest = self.digest(key);
        let mut records = self.lock();
        let now_secs = now.as_unix();
        let in_flight = Record {
            state: State::InFlight,
            expires_at: expiry(now, retention.in_flight),
        };
        let full = records.table.len() >= self.capacity;
        match records.table.entry(digest) {
            Entry::Occupied(mut live) if live.get().expires_at > now_secs => {
                return Ok(match live.get_mut().state {
                    State::InFlight => Claim::InProgress,
                    State::Done => Claim::Done,
                });
            }
            Entry::Occupied(mut expired) => {
                expired.insert(in_flight);
                return Ok(Claim::Acquired);
            }
            Entry::Vacant(vacant) if !full => {
                vacant.insert(in_flight);
                return Ok(Claim::Acquired);
            }
            Entry::Vacant(_) => {}
        }
        if !self.make_room(&mut records, now_secs) {
            return Err(StoreError::full(self.capacity));
        }
        records.table.insert(digest, in_flight);
        Ok(Claim::Acquired)
    }

    async fn complete(
        &self,
        key: &IdempotencyKey,
        now: Timestamp,
        retention: Retention,
    ) -> Result<(), StoreError> {
        let done = Record {
            state: State::Done,
            expires_at: expiry(now, retention.done),
        };
        let digest = self.digest(key);
        self.lock().table.insert(digest, done);
        Ok(())
    }

    async fn release(&self, key: &IdempotencyKey) -> Result<(), StoreError> {
        let digest = self.digest(key);
        let table = &mut self.lock().table;
        if table
            .get(&digest)
            .is_some_and(|r| r.state == State::InFlight)
        {
            table.remove(&digest);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::{Claim, IdempotencyKey, IdempotencyStore as _, MemoryIdempotencyStore, Retention};
    use crate::Timestamp;

    /// The one-allocation join gives the same key as joining by hand, at, below and above
    /// the length limit, and for non-ASCII ids.
    #[test]
    fn namespaced_keys_match_the_joined_text() {
        for id in [
            String::new(),
            "msg_1".to_owned(),
            "évènement-ü".to_owned(),
            "x".repeat(IdempotencyKey::MAX_LEN - "ns:".len()),
            "x".repeat(IdempotencyKey::MAX_LEN - "ns:".len() + 1),
            "é".repeat(IdempotencyKey::MAX_LEN),
        ] {
            assert_eq!(
                IdempotencyKey::namespaced("ns", &id),
                IdempotencyKey::new(format!("ns:{id}")),
                "{id}"
            );
        }
    }

    /// Distinct keys get distinct records (no digest collision among many near-identical
    /// keys), the same key always finds its record, and clones share one table.
    #[tokio::test]
    async fn digests_keep_keys_apart_and_clones_share_records() {
        let store = MemoryIdempotencyStore::with_capacity(100_000);
        let clone = store.clone();
        let now = Timestamp::from_unix(1_700_000_000);
        let retention = Retention::default();
        let keys: Vec<IdempotencyKey> = (0..50_000)
            .map(|i| IdempotencyKey::new(format!("standard-webhooks:msg_{i}")))
            .collect();
        for key in &keys {
            assert_eq!(store.claim(key, now, retention).await, Ok(Claim::Acquired));
        }
        assert_eq!(store.len(), keys.len());
        for key in keys.iter().step_by(2) {
            clone.complete(key, now, retention).await.unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            let expected = if i % 2 == 0 {
                Claim::Done
            } else {
                Claim::InProgress
            };
            assert_eq!(clone.claim(key, now, retention).await, Ok(expected), "{i}");
        }
    }
}
