//! [`Inbox`]: the handle a receiver stores into and workers and admin tools read from.

use std::fmt;
use std::sync::Arc;

use tokio::sync::Notify;

use super::entry::{Accepted, InboxAttempt, InboxCounts, InboxEntry, InboxId, NewEntry};
use super::query::{InboxPage, InboxQuery};
use super::store::InboxStore;
use crate::StoreError;
use crate::headers::{HeaderLookup, HeaderValue};
use crate::receive::Inbound;
use crate::retry::UnixMillis;

/// Chooses an entry's order key (see [`Inbox::ordered_by`]).
type OrderKeyFn = dyn Fn(&Inbound) -> Option<String> + Send + Sync;

/// An inbox: a store, how entries are ordered, and the signal that wakes this process's
/// workers when an entry arrives. Cheap to clone; clones share everything.
///
/// ```
/// use hookrelay::receive::inbox::{Inbox, MemoryInbox};
///
/// // Every event of one task is handled in order; other tasks' events run in parallel.
/// let inbox = Inbox::ordered_by(MemoryInbox::new(), |inbound| {
///     let event: serde_json::Value = inbound.json().ok()?;
///     Some(event["data"]["taskId"].as_str()?.to_owned())
/// });
/// # let _ = inbox;
/// ```
pub struct Inbox<S> {
    shared: Arc<Shared<S>>,
}

struct Shared<S> {
    store: S,
    order_key: Option<Box<OrderKeyFn>>,
    arrived: Notify,
}

impl<S> Clone for Inbox<S> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for Inbox<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("store", &self.shared.store)
            .field("ordered", &self.shared.order_key.is_some())
            .finish()
    }
}

/// The request headers an entry keeps: content type, user agent, and every id, timestamp,
/// event and signature header the profiles use. Never `Authorization`, cookies or
/// `X-API-Key`.
pub const KEPT_HEADERS: &[&str] = &[
    "content-type",
    "user-agent",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-webhook-id",
    "x-webhook-event",
    "x-webhook-signature",
    "x-webhook-attempt",
    "x-delivery-id",
    "x-event-type",
    "x-signature",
    "x-hub-signature",
    "x-hub-signature-256",
    "x-github-event",
    "x-github-delivery",
    "x-github-hook-id",
    "stripe-signature",
];

impl<S: InboxStore> Inbox<S> {
    /// An inbox on `store`, unordered (entries run in parallel).
    pub fn new(store: S) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                order_key: None,
                arrived: Notify::new(),
            }),
        }
    }

    /// An inbox on `store` that handles entries sharing a key one at a time, in the order
    /// they were accepted; `key` picks it from the delivery (`None`: no order).
    ///
    /// The trade-off: a key's entries wait for each other, so one slow or failing entry
    /// delays every later entry of its key until it is done or dead (a dead entry no longer
    /// holds its key back: order holds until an entry dies). Entries of other keys are not
    /// delayed, and unordered inboxes ([`new`](Self::new)) never wait.
    pub fn ordered_by(
        store: S,
        key: impl Fn(&Inbound) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                order_key: Some(Box::new(key)),
                arrived: Notify::new(),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// Stores a verified delivery (the headers it came with are read for [`KEPT_HEADERS`]).
    /// When this returns `Ok`, the entry is durable as the store promises, and this
    /// process's idle workers are woken.
    pub async fn accept(
        &self,
        inbound: &Inbound,
        headers: &(impl HeaderLookup + ?Sized),
        received_at: UnixMillis,
    ) -> Result<Accepted, StoreError> {
        let order_key = self.shared.order_key.as_ref().and_then(|key| key(inbound));
        let entry =
            NewEntry::new(inbound, kept_headers(headers), received_at).with_order_key(order_key);
        let accepted = self.shared.store.accept(entry).await?;
        if matches!(accepted, Accepted::Stored(_)) {
            self.shared.arrived.notify_waiters();
            self.shared.arrived.notify_one();
        }
        Ok(accepted)
    }

    /// Waits until an entry is accepted through this handle (or a clone).
    pub(crate) async fn arrival(&self) {
        self.shared.arrived.notified().await;
    }

    /// One entry with its attempts.
    pub async fn entry(
        &self,
        id: InboxId,
    ) -> Result<Option<(InboxEntry, Vec<InboxAttempt>)>, StoreError> {
        self.shared.store.entry(id).await
    }

    /// A page of entries, newest first.
    pub async fn list(&self, query: &InboxQuery) -> Result<InboxPage, StoreError> {
        self.shared.store.list(query).await
    }

    /// How many entries are in each state.
    pub async fn counts(&self) -> Result<InboxCounts, StoreError> {
        self.shared.store.counts().await
    }

    /// Runs a dead letter again now; `false` when `id` is unknown or not dead.
    pub async fn replay(&self, id: InboxId) -> Result<bool, StoreError> {
        let replayed = self.shared.store.replay(id, UnixMillis::now()).await?;
        if replayed {
            self.shared.arrived.notify_one();
        }
        Ok(replayed)
    }

    /// Runs every dead letter matching `query` again now; returns how many.
    pub async fn replay_matching(&self, query: &InboxQuery) -> Result<u64, StoreError> {
        let replayed = self
            .shared
            .store
            .replay_matching(query, UnixMillis::now())
            .await?;
        if replayed > 0 {
            self.shared.arrived.notify_one();
        }
        Ok(replayed)
    }

    /// Deletes done and dead entries received before `before`; see [`InboxLog::purge`](super::InboxLog::purge).
    pub async fn purge(&self, before: UnixMillis) -> Result<u64, StoreError> {
        self.shared.store.purge(before).await
    }
}

/// The [`KEPT_HEADERS`] present in `headers`, lowercase names, values as text.
fn kept_headers(headers: &(impl HeaderLookup + ?Sized)) -> Vec<(String, String)> {
    KEPT_HEADERS
        .iter()
        .filter_map(|name| match headers.header(name) {
            HeaderValue::One(value) => std::str::from_utf8(value)
                .ok()
                .map(|value| ((*name).to_owned(), value.to_owned())),
            _ => None,
        })
        .collect()
}
