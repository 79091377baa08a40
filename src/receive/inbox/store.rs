//! Where inbox entries live: two small traits, one per concern.

use std::future::Future;
use std::time::Duration;

use super::entry::{
    Accepted, AttemptResult, ClaimedEntry, InboxAttempt, InboxCounts, InboxEntry, InboxId,
    NewEntry, Recorded,
};
use super::query::{InboxPage, InboxQuery};
use crate::StoreError;
use crate::retry::UnixMillis;

/// The work queue: accept, lease, record. Stores never read the clock: every method that
/// needs the time takes it.
pub trait InboxQueue: Send + Sync + 'static {
    /// Stores `entry` unless an entry with its key exists. When this returns `Ok`, the entry
    /// is as durable as the store promises (SQLite and PostgreSQL: committed).
    fn accept(&self, entry: NewEntry) -> impl Future<Output = Result<Accepted, StoreError>> + Send;

    /// Leases up to `limit` due entries, oldest first: pending ones whose next attempt is due,
    /// and processing ones whose lease has ended (their worker died). An entry with an order
    /// key waits while an older entry with the same key is pending or processing. Each
    /// claimed entry is processing until `now + lease`, under a new token.
    fn claim(
        &self,
        now: UnixMillis,
        lease: Duration,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ClaimedEntry>, StoreError>> + Send;

    /// Appends `attempt` to the entry's log and applies `result`, if `token` is still the
    /// entry's current lease; otherwise changes nothing and answers [`Recorded::Stale`].
    fn record(
        &self,
        id: InboxId,
        token: u64,
        attempt: InboxAttempt,
        result: AttemptResult,
    ) -> impl Future<Output = Result<Recorded, StoreError>> + Send;

    /// When the earliest pending entry is due or the earliest lease ends; `None` when no
    /// entry is unfinished. An idle worker sleeps until then.
    fn next_due(&self) -> impl Future<Output = Result<Option<UnixMillis>, StoreError>> + Send;
}

/// Reading and repairing the inbox: entries, attempts, dead letters.
pub trait InboxLog: Send + Sync + 'static {
    /// One entry with its attempts, oldest first.
    fn entry(
        &self,
        id: InboxId,
    ) -> impl Future<Output = Result<Option<(InboxEntry, Vec<InboxAttempt>)>, StoreError>> + Send;

    /// A page of entries matching `query`, newest first.
    fn list(
        &self,
        query: &InboxQuery,
    ) -> impl Future<Output = Result<InboxPage, StoreError>> + Send;

    /// How many entries are in each state.
    fn counts(&self) -> impl Future<Output = Result<InboxCounts, StoreError>> + Send;

    /// Makes a dead entry pending again, due at `now` (its attempts stay in the log; the
    /// next run is marked manual). `false` when the entry is unknown or not dead.
    fn replay(
        &self,
        id: InboxId,
        now: UnixMillis,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// [`replay`](Self::replay)s every dead entry matching the query's filters (its cursor
    /// and limit aside); returns how many.
    fn replay_matching(
        &self,
        query: &InboxQuery,
        now: UnixMillis,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Deletes done and dead entries received before `before`, with their attempts; returns
    /// how many. A purged key is forgotten: a sender retrying it later is accepted again, so
    /// keep entries longer than your senders retry.
    fn purge(&self, before: UnixMillis) -> impl Future<Output = Result<u64, StoreError>> + Send;
}

/// A whole inbox store: [`InboxQueue`] and [`InboxLog`] (implemented for every type with
/// both).
pub trait InboxStore: InboxQueue + InboxLog {}

impl<T: InboxQueue + InboxLog> InboxStore for T {}
