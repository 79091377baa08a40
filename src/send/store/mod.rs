//! Delivery stores: where endpoints, messages, deliveries and the attempt log live.
//!
//! A store is three small traits, one per concern, and [`DeliveryStore`] is simply all three
//! (implemented for every type that has them):
//!
//! | trait | what it is for | who calls it |
//! |---|---|---|
//! | [`DeliveryQueue`] | the work queue: [`enqueue`](DeliveryQueue::enqueue) publications, [`claim`](DeliveryQueue::claim) due deliveries with a lease and a fencing token, [`record`](DeliveryQueue::record) results, [`release`](DeliveryQueue::release), batching, manual [`retry_now`](DeliveryQueue::retry_now), queue depth | [`Sender`](crate::send::Sender)'s `publish*` and `retry_delivery`/`recover`; the [`Dispatcher`](crate::send::Dispatcher) every round |
//! | [`EndpointRegistry`] | endpoints: settings, status and status note, the auto-disable clock | `Sender`'s endpoint API and its endpoint cache; the dispatcher when it loads endpoints, disables one or tracks its health |
//! | [`DeliveryLog`] | deliveries and attempts as stored, counts, the retention [`purge`](DeliveryLog::purge) | dashboards and tests; `Sender::deliveries_of`, `dead_letters`, `recover`, `purge`; the CLI |
//!
//! The queue's heart is one verb: **claim due deliveries with a lease and a fencing token**.
//! A claim that outlives its lease goes back to the queue (its worker died or stalled); a
//! result recorded under a token that is no longer the delivery's current one is refused
//! ([`Recorded::Stale`]), so a late worker can never overwrite a newer attempt. Every method
//! takes the caller's `now` where time matters: stores never read the wall clock.
//!
//! Every failure is a [`StoreError`]: opaque, asked with
//! [`is_retryable`](StoreError::is_retryable), [`is_not_found`](StoreError::is_not_found)
//! and friends. Everything a store needs is public, so you can write your own (the test
//! suite has one outside the crate, `tests/support/fault_store.rs`); SQL stores share the
//! endpoint-settings [`codec`].
//!
//! Backends differ in durability and scale, not in semantics:
//!
//! | store | feature | survives a killed process | survives a power cut | shared by processes |
//! |---|---|---|---|---|
//! | [`MemoryStore`] | `send` | no | no | no |
//! | `SqliteStore` | `sqlite` | yes: every accepted publish and every recorded attempt is committed (WAL) before the call returns | yes with `Durability::PowerLoss` (`synchronous = FULL`, the default); `Durability::ProcessCrash` (`NORMAL`) may lose the last commits, never corrupts | one process (one writer) |
//! | `PostgresStore` | `postgres` | yes: every call that returned is committed | yes, with the server's default `synchronous_commit = on` (and replication as you run it) | any number of processes on any number of hosts; endpoint limits hold across all of them |
//!
//! A message's body is stored once per body form (profile shape × JSON mode), however many
//! endpoints it fans out to; deliveries refer to it.

pub mod codec;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub mod encryption;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stats;

#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use encryption::{EncryptionError, EncryptionKey, KeyId, Keyring};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{Migrations, PostgresStore, PostgresStoreBuilder};
pub use query::{
    Cursor, EndpointQuery, InvalidCursor, InvalidLimit, LogOrder, LogQuery, Page, PageLimit,
    ResponseClass, StatusKind, TimeRange, TypePattern,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{Durability, SqliteStore, SqliteStoreBuilder};
pub use stats::{
    AttemptOutcomes, AttemptSample, EndpointStats, EndpointStatsBuilder, OutcomeCounts, SeriesScope,
};

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{
    DeliveryId, Endpoint, EndpointId, EndpointKey, EndpointStatus, MessageId, Owner, Refusal,
    ThrottleGroup,
};
use crate::event::{EventId, EventType};
use crate::retry::{GiveUpReason, UnixMillis};

/// A message to store: the event and its body forms.
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The message id.
    pub id: MessageId,
    /// The event id inside the bodies.
    pub event_id: EventId,
    /// The event type.
    pub event_type: EventType,
    /// When it was published.
    pub created_at: UnixMillis,
    /// The body bytes, one per form the deliveries need; [`NewDelivery::body`] indexes it.
    pub bodies: Vec<Bytes>,
}

/// One delivery to create with its message.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// The delivery id.
    pub id: DeliveryId,
    /// Where it goes.
    pub endpoint: EndpointId,
    /// Which of [`NewMessage::bodies`] it sends.
    pub body: u8,
    /// Its endpoint's owner, kept with the delivery for [`LogQuery::owner`].
    pub owner: Option<Owner>,
    /// What it is for (an event, a test).
    pub kind: DeliveryKind,
    /// Deliveries to the same endpoint with the same key go out one at a time, in publish
    /// order: one is claimable only when no earlier one with its key is still pending.
    pub order_key: Option<String>,
    /// Throttling ([`Throttle`](crate::send::Throttle)): pending deliveries to the same
    /// endpoint in this group that no worker holds are superseded by this one. It is due as
    /// [`ThrottleGroup::due_at`] says from what the store reads: a progress delivery (a
    /// window) when the superseded one was, else a window after the group's latest progress
    /// delivery, else at once (the store keeps the group and that due time with it); a
    /// terminal one (no window) at once.
    pub throttle: Option<ThrottleGroup>,
}

impl NewDelivery {
    /// A plain event delivery: no ordering, throttling or superseding.
    pub fn new(id: DeliveryId, endpoint: EndpointId, body: u8) -> Self {
        NewDelivery {
            id,
            endpoint,
            body,
            owner: None,
            kind: DeliveryKind::Event,
            order_key: None,
            throttle: None,
        }
    }
}

/// What a delivery is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DeliveryKind {
    /// A published event.
    #[default]
    Event,
    /// A test event sent by hand to one endpoint.
    Test,
    /// A batch: one POST carrying the envelopes of several event deliveries
    /// ([`Batching`](crate::send::Batching)).
    Batch,
}

impl DeliveryKind {
    /// A stable name for logs and stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Test => "test",
            Self::Batch => "batch",
        }
    }

    /// The kind named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Event, Self::Test, Self::Batch]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// Claimed deliveries to join into one batch delivery ([`DeliveryQueue::form_batch`]).
#[derive(Debug, Clone)]
pub struct NewBatch {
    /// The batch's message: its id, the batch id as event id, `batch` as event type, the
    /// oldest member's publish time, and one body (the JSON array).
    pub message: NewMessage,
    /// The batch delivery.
    pub delivery: DeliveryId,
    /// Where it goes.
    pub endpoint: EndpointId,
    /// The members, each under its claim's token, in the array's order.
    pub members: Vec<(DeliveryId, FencingToken)>,
}

impl NewBatch {
    /// The claim a store hands back once it has stored this batch under `token`: the batch
    /// delivery with `body` (the stored JSON array), no attempts yet.
    pub fn into_claim(self, body: Bytes, token: FencingToken) -> ClaimedDelivery {
        ClaimedDelivery {
            delivery: self.delivery,
            message: self.message.id,
            endpoint: self.endpoint,
            event_id: self.message.event_id,
            event_type: self.message.event_type,
            body,
            created_at: self.message.created_at,
            attempts: 0,
            charged: 0,
            kind: DeliveryKind::Batch,
            manual: false,
            token,
        }
    }
}

/// A publish deduplication key and how long it holds.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublishKey {
    /// The key the producer chose.
    pub key: String,
    /// Until when a second publish with the same key returns the first message.
    pub expires_at: UnixMillis,
}

/// One message with its fan-out, written atomically.
#[derive(Debug, Clone)]
pub struct Publication {
    /// The message.
    pub message: NewMessage,
    /// Its deliveries (possibly none: no endpoint matched).
    pub deliveries: Vec<NewDelivery>,
    /// The producer's deduplication key, if any.
    pub key: Option<PublishKey>,
}

/// What [`DeliveryQueue::enqueue`] did with one publication.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Enqueued {
    /// Stored.
    Created {
        /// The new message.
        id: MessageId,
        /// Deliveries it superseded (throttling).
        superseded: u32,
    },
    /// The key was seen within its window: nothing created; this is the first message.
    Existing(MessageId),
}

impl Enqueued {
    /// The message id either way.
    pub fn message_id(&self) -> &MessageId {
        match self {
            Self::Created { id, .. } | Self::Existing(id) => id,
        }
    }
}

/// Proof of a claim: a delivery's result is accepted only with its current token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FencingToken(pub u64);

/// A claimed delivery, with everything needed to attempt it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    /// The delivery.
    pub delivery: DeliveryId,
    /// Its message.
    pub message: MessageId,
    /// Its endpoint.
    pub endpoint: EndpointId,
    /// The event id.
    pub event_id: EventId,
    /// The event type.
    pub event_type: EventType,
    /// The exact bytes to send.
    pub body: Bytes,
    /// When the message was published (maximum age is measured from here).
    pub created_at: UnixMillis,
    /// Attempts already made.
    pub attempts: u32,
    /// Attempts that count against the retry policy (attempts the receiver paced with
    /// `429` + `Retry-After` do not).
    pub charged: u32,
    /// What the delivery is for.
    pub kind: DeliveryKind,
    /// Queued again by hand ([`DeliveryQueue::retry_now`]): the next attempt is logged as
    /// manual and is not subject to the policy's maximum age.
    pub manual: bool,
    /// The fencing token of this claim.
    pub token: FencingToken,
}

/// Why an attempt produced no response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptError {
    /// The total deadline passed.
    Timeout,
    /// Connecting failed or the connection broke.
    Connection,
    /// The SSRF guard refused the destination (the address is never recorded).
    Refused(Refusal),
    /// The request could not be signed or built (no active secret, an unsignable body).
    Unsignable,
    /// Anything else.
    Other,
}

impl AttemptError {
    /// The form stores keep: [`as_str`](Self::as_str), and the refusal's reason after
    /// `refused:`.
    pub fn stored(self) -> String {
        match self {
            Self::Refused(why) => format!("refused:{}", why.as_str()),
            other => other.as_str().to_owned(),
        }
    }

    /// The error [`stored`](Self::stored) wrote (anything unknown is `Other`).
    pub fn from_stored(text: &str) -> Self {
        match text {
            "timeout" => Self::Timeout,
            "connection" => Self::Connection,
            "unsignable" => Self::Unsignable,
            _ => match text.strip_prefix("refused:") {
                Some(why) => {
                    Self::Refused(Refusal::parse(why).unwrap_or(Refusal::NonPublicAddress))
                }
                None => Self::Other,
            },
        }
    }

    /// A stable name for logs and stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Connection => "connection",
            Self::Refused(_) => "refused",
            Self::Unsignable => "unsignable",
            Self::Other => "other",
        }
    }
}

/// Why a delivery was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeadReason {
    /// Every attempt the policy allows failed.
    Exhausted,
    /// The last outcome was classified [`Final`](crate::retry::OutcomeClass::Final). The default
    /// [`Classifier`](crate::retry::Classifier) classifies nothing as final (every status but
    /// `2xx` and `410` is retried, as are timeouts and connection errors): only
    /// [`ClientErrors::Final`](crate::retry::ClientErrors::Final) (every `4xx` but 408, 410 and
    /// 429) or a [`with_status`](crate::retry::Classifier::with_status) rule lead here.
    NotRetryable,
    /// The endpoint answered `410 Gone` and was disabled.
    EndpointGone,
    /// The destination was refused, or the request could not be signed.
    Refused,
}

impl DeadReason {
    /// A stable name for logs and stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exhausted => "exhausted",
            Self::NotRetryable => "not_retryable",
            Self::EndpointGone => "endpoint_gone",
            Self::Refused => "refused",
        }
    }

    /// The reason named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Exhausted,
            Self::NotRetryable,
            Self::EndpointGone,
            Self::Refused,
        ]
        .into_iter()
        .find(|r| r.as_str() == text)
    }
}

impl NextStep {
    /// Where the delivery stands once this step is recorded.
    pub fn status(self) -> DeliveryStatus {
        match self {
            Self::RetryAt(_) => DeliveryStatus::Pending,
            Self::Delivered => DeliveryStatus::Delivered,
            Self::DeadLetter(reason) => DeliveryStatus::DeadLettered(reason),
            Self::DisableEndpoint => DeliveryStatus::DeadLettered(DeadReason::EndpointGone),
            Self::Expire => DeliveryStatus::Expired,
        }
    }

    /// When the delivery is due again, if it is.
    pub fn due(self) -> Option<UnixMillis> {
        match self {
            Self::RetryAt(at) => Some(at),
            _ => None,
        }
    }

    /// What the planner's give-up means for a delivery: expiry is its own outcome.
    pub fn give_up(reason: GiveUpReason) -> Self {
        match reason {
            GiveUpReason::Expired => Self::Expire,
            GiveUpReason::NotRetryable => Self::DeadLetter(DeadReason::NotRetryable),
            _ => Self::DeadLetter(DeadReason::Exhausted),
        }
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NextStep {
    /// Try again at this time.
    RetryAt(UnixMillis),
    /// Done.
    Delivered,
    /// Give up and keep it as a dead letter with its last response.
    DeadLetter(DeadReason),
    /// Dead-letter it and disable its endpoint (`410 Gone`).
    DisableEndpoint,
    /// Older than the policy's maximum age: not attempted again, kept as expired.
    Expire,
}

/// The result of one attempt, to record under the claim's token.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    /// The delivery.
    pub delivery: DeliveryId,
    /// The claim's token.
    pub token: FencingToken,
    /// The attempt number (1 for the first). Zero records no attempt (expired before one).
    pub attempt: u32,
    /// When the attempt started.
    pub started_at: UnixMillis,
    /// How long it took.
    pub latency: Duration,
    /// The response status, if one came.
    pub status: Option<u16>,
    /// Why there is no response.
    pub error: Option<AttemptError>,
    /// The request headers that were sent, signature values redacted (`[redacted]`).
    pub request_headers: Vec<(String, String)>,
    /// The kept response headers.
    pub response_headers: Vec<(String, String)>,
    /// The start of the response body (at most 16 KiB).
    pub response_body: Bytes,
    /// Whether this attempt counts against the retry policy (false when the receiver paced
    /// it: `429` with `Retry-After`, or an exhausted `X-RateLimit-Remaining`).
    pub charged: bool,
    /// Whether the attempt was made by hand ([`ClaimedDelivery::manual`]).
    pub manual: bool,
    /// What happens next.
    pub next: NextStep,
}

/// Whether a result was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Recorded {
    /// Saved.
    Saved,
    /// Refused: the claim's token is no longer current (its lease ran out and the delivery
    /// was claimed again, or it is already finished).
    Stale,
}

/// A claimed delivery handed back without an attempt (shutdown, pacing).
#[derive(Debug, Clone)]
pub struct Release {
    /// The delivery.
    pub delivery: DeliveryId,
    /// The claim's token.
    pub token: FencingToken,
    /// When it is due again.
    pub due_at: UnixMillis,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or for its lease to run out, if claimed).
    Pending,
    /// Accepted by the receiver.
    Delivered,
    /// Given up.
    DeadLettered(DeadReason),
    /// Past its policy's maximum age before it was delivered: not attempted again.
    Expired,
    /// Replaced by a later delivery of the same throttle key before it was sent (the
    /// latest state wins); counted, never sent.
    Superseded,
    /// Sent inside a batch delivery ([`DeliveryRecord::batch`]), which carries the outcome.
    Batched,
    /// Ended unsent because its endpoint was deleted
    /// ([`EndpointRegistry::delete_endpoint`]); kept in the log until retention removes it.
    Cancelled,
}

impl DeliveryStatus {
    /// A stable name for logs and stores (`dead` for every dead letter).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::DeadLettered(_) => "dead",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
            Self::Batched => "batched",
            Self::Cancelled => "cancelled",
        }
    }

    /// A dead letter's reason.
    pub fn dead_reason(self) -> Option<DeadReason> {
        match self {
            Self::DeadLettered(reason) => Some(reason),
            _ => None,
        }
    }

    /// The status [`as_str`](Self::as_str) named, with a dead letter's reason as stored.
    pub fn from_stored(status: &str, dead_reason: Option<&str>) -> Option<Self> {
        Some(match status {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "dead" => Self::DeadLettered(DeadReason::parse(dead_reason?)?),
            "expired" => Self::Expired,
            "superseded" => Self::Superseded,
            "batched" => Self::Batched,
            "cancelled" => Self::Cancelled,
            _ => return None,
        })
    }

    /// Whether the delivery is finished (nothing more will be attempted unless retried by
    /// hand).
    pub fn is_finished(self) -> bool {
        self != Self::Pending
    }
}

/// A delivery as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    /// The delivery.
    pub id: DeliveryId,
    /// Its message.
    pub message: MessageId,
    /// Its endpoint.
    pub endpoint: EndpointId,
    /// Its endpoint's owner when the delivery was created.
    pub owner: Option<Owner>,
    /// The event id.
    pub event_id: EventId,
    /// The event type.
    pub event_type: EventType,
    /// Where it stands.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the message was published.
    pub created_at: UnixMillis,
    /// When it is due next (pending only).
    pub next_attempt_at: Option<UnixMillis>,
    /// Whether a worker holds an unexpired lease on it.
    pub claimed: bool,
    /// The last response status, if any.
    pub last_status: Option<u16>,
    /// What it is for.
    pub kind: DeliveryKind,
    /// When it finished (delivered, dead-lettered, expired, superseded, cancelled or batched).
    pub finished_at: Option<UnixMillis>,
    /// The batch delivery that carries it, once [`Batched`](DeliveryStatus::Batched).
    pub batch: Option<DeliveryId>,
}

/// A message as stored: the event and the body it was published with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRecord {
    /// The message.
    pub id: MessageId,
    /// The event id.
    pub event_id: EventId,
    /// The event type.
    pub event_type: EventType,
    /// When it was published.
    pub created_at: UnixMillis,
    /// The first body form stored (the bytes its first delivery sends).
    pub body: Bytes,
}

/// One logged attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptLog {
    /// The delivery.
    pub delivery: DeliveryId,
    /// The attempt number.
    pub attempt: u32,
    /// When it started.
    pub started_at: UnixMillis,
    /// How long it took, in milliseconds.
    pub latency_ms: u64,
    /// The response status, if one came.
    pub status: Option<u16>,
    /// Why there was no response.
    pub error: Option<AttemptError>,
    /// The request headers that were sent, signature values redacted (`[redacted]`).
    pub request_headers: Vec<(String, String)>,
    /// The kept response headers.
    pub response_headers: Vec<(String, String)>,
    /// The start of the response body.
    pub response_body: Bytes,
    /// Made by hand (a manual retry or recovery).
    pub manual: bool,
}

/// How many deliveries are where.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryCounts {
    /// Waiting, not claimed.
    pub pending: u64,
    /// Claimed under an unexpired lease.
    pub in_flight: u64,
    /// Delivered.
    pub delivered: u64,
    /// Dead-lettered.
    pub dead: u64,
    /// Expired (past the policy's maximum age).
    pub expired: u64,
    /// Superseded by a later delivery of the same throttle key.
    pub superseded: u64,
    /// Handed to a batch delivery.
    pub batched: u64,
    /// Ended because their endpoint was deleted.
    pub cancelled: u64,
}

/// How long finished deliveries and their attempt logs are kept (TaskLink's defaults:
/// successful 30 days, failed 90 days, manual retries 30 days).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRetention {
    /// Delivered deliveries (and their logs), from when they finished.
    pub delivered: Duration,
    /// Dead-lettered, expired, superseded and cancelled deliveries, from when they finished.
    pub failed: Duration,
    /// Logs of attempts made by hand, from when they started.
    pub manual: Duration,
}

impl Default for LogRetention {
    fn default() -> Self {
        const DAY: u64 = 24 * 3600;
        LogRetention {
            delivered: Duration::from_secs(30 * DAY),
            failed: Duration::from_secs(90 * DAY),
            manual: Duration::from_secs(30 * DAY),
        }
    }
}

/// What one [`DeliveryLog::purge`] call removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Finished deliveries removed (with their attempt logs).
    pub deliveries: u64,
    /// Attempt logs removed (with their deliveries, or manual ones past their retention).
    pub attempts: u64,
    /// Messages removed because no delivery refers to them any more.
    pub messages: u64,
}

pub use crate::StoreError;

/// The work queue: what the dispatcher and [`Sender`](crate::send::Sender)'s publishing use.
///
/// Its heart is one verb: [`claim`](Self::claim) due deliveries with a lease and a fencing
/// token; [`record`](Self::record) results under that token. Every method is one atomic step,
/// and implementations must be safe to call from many tasks at once.
pub trait DeliveryQueue: Send + Sync + 'static {
    /// Stores publications (each message with its deliveries, due at once) atomically, and
    /// returns when they are as durable as the store makes them.
    fn enqueue(
        &self,
        publications: Vec<Publication>,
        now: UnixMillis,
    ) -> impl Future<Output = Result<Vec<Enqueued>, StoreError>> + Send;

    /// Claims up to `limit` deliveries due at `now` whose endpoint is active and not in
    /// `skip`, oldest due first, leasing each for `lease` under a fresh fencing token. A
    /// delivery whose lease ran out is due again.
    fn claim(
        &self,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> impl Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send;

    /// Records attempt results, each under its claim's token; stale tokens are refused one
    /// by one, the rest saved. A [`NextStep::DisableEndpoint`] also disables the endpoint.
    fn record(
        &self,
        results: Vec<AttemptRecord>,
    ) -> impl Future<Output = Result<Vec<Recorded>, StoreError>> + Send;

    /// [`record`](Self::record), then [`claim`](Self::claim), as one step where the backend
    /// can (SQLite: one transaction, one commit). The dispatcher calls this every round.
    fn record_and_claim(
        &self,
        results: Vec<AttemptRecord>,
        now: UnixMillis,
        limit: usize,
        lease: Duration,
        skip: &[EndpointId],
    ) -> impl Future<Output = Result<(Vec<Recorded>, Vec<ClaimedDelivery>), StoreError>> + Send
    {
        async move {
            let recorded = self.record(results).await?;
            let claims = self.claim(now, limit, lease, skip).await?;
            Ok((recorded, claims))
        }
    }

    /// How long the dispatcher may hold finished results to record them together when
    /// nothing else needs the store (default zero). A dispatcher records at once when nothing
    /// is in flight, and otherwise with its next claim (which it sends as soon as the last
    /// round is done and work is due): the window only bounds how late results are recorded
    /// while no claim is wanted. Stores whose commits are costly return a few milliseconds.
    fn batch_window(&self) -> Duration {
        Duration::ZERO
    }

    /// A future that resolves when the store learns that new work may have been committed
    /// by another process (PostgreSQL: a `NOTIFY`); by default it never resolves, and
    /// dispatchers rely on polling. The dispatcher calls this *before* it looks at the
    /// store and waits on the future afterwards, so a signal in between is not lost: an
    /// implementation must resolve for any signal that arrives after the call.
    fn new_work(&self) -> impl Future<Output = ()> + Send + 'static {
        std::future::pending()
    }

    /// Hands claimed deliveries back without an attempt.
    fn release(
        &self,
        releases: Vec<Release>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The earliest time a delivery becomes claimable (a due time or a lease's end), if any
    /// delivery is pending.
    fn next_due(&self) -> impl Future<Output = Result<Option<UnixMillis>, StoreError>> + Send;

    /// Queues deliveries again by hand, due at `now`, keeping their ids (and so their event
    /// ids): dead-lettered, expired and delivered ones, and pending ones no worker holds
    /// (brought forward). Their next attempt is logged as manual. Returns the ids queued;
    /// unknown, superseded and claimed deliveries are left as they are.
    fn retry_now(
        &self,
        ids: &[DeliveryId],
        now: UnixMillis,
    ) -> impl Future<Output = Result<Vec<DeliveryId>, StoreError>> + Send;

    /// Replaces claimed deliveries by one batch delivery: stores the batch's message and
    /// delivery, claimed at once under a fresh token for `lease`, and marks every member
    /// [`Batched`](DeliveryStatus::Batched) — all in one step. If any member's token is no
    /// longer current, nothing changes and `None` comes back.
    fn form_batch(
        &self,
        batch: NewBatch,
        now: UnixMillis,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<ClaimedDelivery>, StoreError>> + Send;

    /// How many deliveries wait (`pending`) and are claimed (`in_flight`) at `now`: what a
    /// dispatcher reports as its queue depth. The default, for stores that are also a
    /// [`DeliveryLog`], takes them from [`counts`](DeliveryLog::counts); stores whose full
    /// counts grow costly with history (PostgreSQL) answer from their pending rows alone.
    fn queue_depth(
        &self,
        now: UnixMillis,
    ) -> impl Future<Output = Result<(u64, u64), StoreError>> + Send
    where
        Self: DeliveryLog,
    {
        async move {
            let counts = self.counts(now).await?;
            Ok((counts.pending, counts.in_flight))
        }
    }
}

/// The endpoint registry: endpoints with their settings, status and health clock.
///
/// Every method is one atomic step, safe to call from many tasks at once.
pub trait EndpointRegistry: Send + Sync + 'static {
    /// Inserts or replaces an endpoint. An endpoint whose [key](Endpoint::key) another
    /// endpoint of the same owner holds is refused with an error that
    /// [is a conflict](StoreError::is_conflict). A changed owner is written to the
    /// endpoint's pending deliveries too.
    fn put_endpoint(
        &self,
        endpoint: &Endpoint,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// One endpoint.
    fn endpoint(
        &self,
        id: &EndpointId,
    ) -> impl Future<Output = Result<Option<Arc<Endpoint>>, StoreError>> + Send;

    /// Every endpoint.
    fn endpoints(&self) -> impl Future<Output = Result<Vec<Arc<Endpoint>>, StoreError>> + Send;

    /// One page of endpoints matching `query`, by id. A cursor that is not an endpoint
    /// cursor is an error that [is invalid input](StoreError::is_invalid_input).
    fn endpoint_page(
        &self,
        query: &EndpointQuery,
    ) -> impl Future<Output = Result<Page<Arc<Endpoint>>, StoreError>> + Send;

    /// The endpoint with this key among `owner`'s endpoints (or among endpoints without an
    /// owner).
    fn endpoint_by_key(
        &self,
        owner: Option<&Owner>,
        key: &EndpointKey,
    ) -> impl Future<Output = Result<Option<Arc<Endpoint>>, StoreError>> + Send;

    /// Deletes an endpoint. Its pending deliveries end [`Cancelled`](DeliveryStatus::Cancelled)
    /// at `now` in the same step, claimed ones too: a result recorded later under their
    /// claim is [`Stale`](Recorded::Stale). Returns how many were cancelled; an error that
    /// [is not found](StoreError::is_not_found) if there is no such endpoint.
    fn delete_endpoint(
        &self,
        id: &EndpointId,
        now: UnixMillis,
    ) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Changes an endpoint's status and the note saying why ([`Endpoint::status_note`]);
    /// an error that [is not found](StoreError::is_not_found) if there is none.
    fn set_endpoint_status(
        &self,
        id: &EndpointId,
        status: EndpointStatus,
        note: Option<&str>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Records when an endpoint's current run of failures began (`None`: it is healthy), so
    /// that a restarted dispatcher keeps the auto-disable clock. The default reads the
    /// endpoint and writes it back; stores that can change the one field in place should.
    fn set_failing_since(
        &self,
        id: &EndpointId,
        since: Option<UnixMillis>,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        async move {
            let endpoint = self
                .endpoint(id)
                .await?
                .ok_or_else(|| StoreError::not_found("endpoint"))?;
            self.put_endpoint(&(*endpoint).clone().with_failing_since(since))
                .await
        }
    }
}

/// The delivery log: deliveries and their attempts as stored, counts, and the retention purge.
/// What dashboards, the recovery API ([`Sender::dead_letters`](crate::send::Sender::dead_letters)…)
/// and tests read.
///
/// Every method is one atomic step, safe to call from many tasks at once.
pub trait DeliveryLog: Send + Sync + 'static {
    /// One delivery.
    fn delivery(
        &self,
        id: &DeliveryId,
        now: UnixMillis,
    ) -> impl Future<Output = Result<Option<DeliveryRecord>, StoreError>> + Send;

    /// One page of the log: deliveries matching `query` in its order, after its cursor. A
    /// cursor that is not a log cursor is an error that
    /// [is invalid input](StoreError::is_invalid_input). SQL stores answer every filter from
    /// an index, at any depth of history.
    fn log_page(
        &self,
        query: &LogQuery,
        now: UnixMillis,
    ) -> impl Future<Output = Result<Page<DeliveryRecord>, StoreError>> + Send;

    /// Every delivery matching `query`'s filters, in its order: the log walked from the
    /// start (the query's cursor and limit are ignored) in pages of [`PageLimit::MAX`].
    /// Written once over [`log_page`](Self::log_page); stores need not implement it.
    ///
    /// ```
    /// use hookrelay::retry::UnixMillis;
    /// use hookrelay::send::store::{DeliveryLog, LogOrder, LogQuery, StatusKind};
    /// use hookrelay::send::{EndpointId, MemoryStore};
    ///
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let store = MemoryStore::new();
    /// // One endpoint's dead letters, oldest first.
    /// let query = LogQuery {
    ///     endpoint: Some(EndpointId::new("ep_1")?),
    ///     statuses: vec![StatusKind::Dead],
    ///     order: LogOrder::OldestFirst,
    ///     ..LogQuery::default()
    /// };
    /// let dead = store.log_all(&query, UnixMillis::now()).await?;
    /// assert!(dead.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    fn log_all(
        &self,
        query: &LogQuery,
        now: UnixMillis,
    ) -> impl Future<Output = Result<Vec<DeliveryRecord>, StoreError>> + Send {
        walk_log(self, query, now, None)
    }

    /// One message with its first body.
    fn message(
        &self,
        id: &MessageId,
    ) -> impl Future<Output = Result<Option<MessageRecord>, StoreError>> + Send;

    /// One endpoint's numbers over `window` (see [`EndpointStats`]), by feeding an
    /// [`EndpointStatsBuilder`].
    fn endpoint_stats(
        &self,
        endpoint: &EndpointId,
        window: TimeRange,
    ) -> impl Future<Output = Result<EndpointStats, StoreError>> + Send;

    /// Several endpoints' numbers over one `window`, in `endpoints`' order (an unknown id
    /// gets empty numbers): what a list page shows in one round trip. The default asks
    /// [`endpoint_stats`](Self::endpoint_stats) once per endpoint; the built-in stores answer
    /// in one read.
    fn endpoints_stats(
        &self,
        endpoints: &[EndpointId],
        window: TimeRange,
    ) -> impl Future<Output = Result<Vec<EndpointStats>, StoreError>> + Send {
        async move {
            let mut all = Vec::with_capacity(endpoints.len());
            for endpoint in endpoints {
                all.push(self.endpoint_stats(endpoint, window).await?);
            }
            Ok(all)
        }
    }

    /// The numbers of `scope`'s deliveries over each of `windows`, in their order: a chart's
    /// buckets (deliveries per hour, latency per hour) in one read. The default answers
    /// [`SeriesScope::Endpoint`] by asking [`endpoint_stats`](Self::endpoint_stats) once per
    /// window and refuses the wider scopes ([`StoreError::is_invalid_input`]); the built-in
    /// stores read the span the windows cover once, for every scope.
    fn series(
        &self,
        scope: &SeriesScope,
        windows: &[TimeRange],
    ) -> impl Future<Output = Result<Vec<EndpointStats>, StoreError>> + Send {
        async move {
            let SeriesScope::Endpoint(endpoint) = scope else {
                return Err(StoreError::invalid_input(
                    "this store has no series over many endpoints",
                ));
            };
            let mut all = Vec::with_capacity(windows.len());
            for window in windows {
                all.push(self.endpoint_stats(endpoint, *window).await?);
            }
            Ok(all)
        }
    }

    /// A delivery's attempt log, first attempt first.
    fn attempts(
        &self,
        id: &DeliveryId,
    ) -> impl Future<Output = Result<Vec<AttemptLog>, StoreError>> + Send;

    /// How many deliveries are where, at `now`.
    fn counts(
        &self,
        now: UnixMillis,
    ) -> impl Future<Output = Result<DeliveryCounts, StoreError>> + Send;

    /// Deletes up to `limit` finished deliveries past `retention` with their attempt logs,
    /// manual attempt logs past theirs, and messages no delivery refers to any more. One
    /// short step: call it again while it removes `limit` deliveries.
    fn purge(
        &self,
        retention: &LogRetention,
        now: UnixMillis,
        limit: usize,
    ) -> impl Future<Output = Result<Purged, StoreError>> + Send;
}

/// The deliveries matching `query`'s filters, walked from the start of the log in pages of
/// [`PageLimit::MAX`], stopping at `cap` of them: [`DeliveryLog::log_all`] and the
/// `Sender` listings that stop early share it.
pub(crate) async fn walk_log<L: DeliveryLog + ?Sized>(
    log: &L,
    query: &LogQuery,
    now: UnixMillis,
    cap: Option<usize>,
) -> Result<Vec<DeliveryRecord>, StoreError> {
    let mut query = LogQuery {
        after: None,
        limit: PageLimit::MAX,
        ..query.clone()
    };
    let mut out = Vec::new();
    // Bounded: every page starts after the last one's final row, and the log is finite.
    loop {
        let page = log.log_page(&query, now).await?;
        for record in page.items {
            out.push(record);
            if cap.is_some_and(|cap| out.len() >= cap) {
                return Ok(out);
            }
        }
        match page.next {
            Some(next) => query.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// A complete delivery store: the [queue](DeliveryQueue), the [registry](EndpointRegistry) and
/// the [log](DeliveryLog). Implemented for every type that implements the three; what
/// [`Sender`](crate::send::Sender) and the dispatcher need.
///
/// The conformance suite in `tests/store_conformance.rs` runs against every backend.
pub trait DeliveryStore: DeliveryQueue + EndpointRegistry + DeliveryLog {}

impl<S: DeliveryQueue + EndpointRegistry + DeliveryLog> DeliveryStore for S {}
