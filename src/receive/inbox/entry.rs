//! What the inbox holds: entries as accepted, as stored, as leased, and their attempts.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use bytes::Bytes;

use crate::Timestamp;
use crate::profile::Profile;
use crate::receive::{IdempotencyKey, Inbound};
use crate::retry::UnixMillis;
use crate::scheme::{Authenticated, WebhookId};

/// An inbox entry's id: assigned by the store, increasing in acceptance order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InboxId(i64);

impl InboxId {
    /// The id with this number.
    pub const fn new(id: i64) -> Self {
        Self(id)
    }

    /// The number.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for InboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A string that is not an [`InboxId`] (a positive decimal number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidInboxId;

impl fmt::Display for InvalidInboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an inbox id is a positive decimal number")
    }
}

impl std::error::Error for InvalidInboxId {}

impl FromStr for InboxId {
    type Err = InvalidInboxId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidInboxId);
        }
        match s.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Self(id)),
            _ => Err(InvalidInboxId),
        }
    }
}

/// Where an entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// Leased by a worker that is running the handler.
    Processing,
    /// The handler succeeded.
    Done,
    /// The handler failed as often as the policy allows (or the body no longer parses).
    Dead,
}

impl EntryStatus {
    /// Every status, in life order.
    pub const ALL: [EntryStatus; 4] = [Self::Pending, Self::Processing, Self::Done, Self::Dead];

    /// `pending`, `processing`, `done` or `dead`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Processing => "processing",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// Whether the entry still waits for the handler (pending or processing).
    pub fn is_unfinished(self) -> bool {
        matches!(self, Self::Pending | Self::Processing)
    }
}

impl fmt::Display for EntryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no [`EntryStatus`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownStatus;

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected one of pending, processing, done, dead")
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for EntryStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or(UnknownStatus)
    }
}

/// A verified delivery as the inbox stores it: everything the handler's [`Inbound`] is
/// rebuilt from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct NewEntry {
    /// The idempotency key: a second entry with it is a duplicate.
    pub key: IdempotencyKey,
    /// The profile it was received under.
    pub profile: Profile,
    /// The scheme's message id, if it has one.
    pub message_id: Option<String>,
    /// The event type (header or body).
    pub event_type: Option<String>,
    /// The signed timestamp, if the scheme signs one.
    pub timestamp: Option<Timestamp>,
    /// The request headers that matter: content type, user agent and the profiles' id,
    /// timestamp, event and signature headers (never `Authorization`, cookies or API keys).
    pub headers: Vec<(String, String)>,
    /// The verified body bytes, as received.
    pub body: Bytes,
    /// Entries with the same key are handled one at a time, in acceptance order.
    pub order_key: Option<String>,
    /// When it was accepted.
    pub received_at: UnixMillis,
}

impl NewEntry {
    /// The entry for `inbound`, received at `received_at`, keeping `headers`.
    pub fn new(inbound: &Inbound, headers: Vec<(String, String)>, received_at: UnixMillis) -> Self {
        Self {
            key: inbound.idempotency_key().clone(),
            profile: inbound.profile(),
            message_id: inbound.id().map(str::to_owned),
            event_type: inbound.event_type().map(str::to_owned),
            timestamp: inbound.timestamp(),
            headers,
            body: inbound.body().clone(),
            order_key: None,
            received_at,
        }
    }

    /// The same entry, handled in order with every other entry of `key`.
    pub fn with_order_key(mut self, key: Option<String>) -> Self {
        self.order_key = key;
        self
    }
}

/// One entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxEntry {
    /// Its id.
    pub id: InboxId,
    /// What was accepted.
    pub accepted: NewEntry,
    /// Where it is.
    pub status: EntryStatus,
    /// Handler runs so far.
    pub attempts: u32,
    /// When the next run is due (pending entries).
    pub next_attempt_at: UnixMillis,
    /// Until when a worker holds it (processing entries).
    pub lease_until: Option<UnixMillis>,
    /// The handler's last error.
    pub last_error: Option<String>,
    /// When it was done or dead.
    pub finished_at: Option<UnixMillis>,
}

impl InboxEntry {
    /// The receiver's view of the delivery, as the handler gets it.
    pub fn inbound(&self) -> Inbound {
        let entry = &self.accepted;
        let authenticated = Authenticated {
            id: entry.message_id.as_deref().map(WebhookId::new),
            timestamp: entry.timestamp,
            coverage: crate::receive::receiver::coverage_of(entry.profile),
        };
        Inbound::restored(
            entry.profile,
            authenticated,
            entry.key.clone(),
            entry.event_type.clone(),
            entry.body.clone(),
        )
    }
}

/// An entry leased to a worker, with the fencing token its result must be recorded under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedEntry {
    /// The entry, as claimed (status processing).
    pub entry: InboxEntry,
    /// The lease's token: a result recorded under an older one is refused.
    pub token: u64,
}

/// One run of the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxAttempt {
    /// When it started.
    pub at: UnixMillis,
    /// How long it ran.
    pub duration: Duration,
    /// The handler's error; `None` when it succeeded.
    pub error: Option<String>,
    /// Whether the run follows a manual replay of a dead entry.
    pub manual: bool,
}

impl InboxAttempt {
    /// A run that started at `at`, took `duration` and ended with `error` (None: success).
    pub fn new(at: UnixMillis, duration: Duration, error: Option<String>) -> Self {
        Self {
            at,
            duration,
            error,
            manual: false,
        }
    }

    /// The same run, marked as following a replay.
    pub fn manual(mut self, manual: bool) -> Self {
        self.manual = manual;
        self
    }
}

/// What an attempt leaves the entry as.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptResult {
    /// The handler succeeded.
    Done,
    /// It failed; run it again at `at`.
    RetryAt {
        /// When.
        at: UnixMillis,
        /// Why it failed.
        error: String,
    },
    /// It failed for the last time.
    Dead {
        /// Why.
        error: String,
    },
}

/// Whether a store took a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// Taken.
    Applied,
    /// Refused: the lease ended and the entry was claimed again (or replayed) since.
    Stale,
}

/// What [`accept`](super::InboxQueue::accept) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// Stored as a new entry.
    Stored(InboxId),
    /// An entry with the same key exists: nothing stored.
    Duplicate(InboxId),
}

impl Accepted {
    /// The entry's id, new or existing.
    pub fn id(self) -> InboxId {
        match self {
            Self::Stored(id) | Self::Duplicate(id) => id,
        }
    }
}

/// How many entries are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxCounts {
    /// Waiting.
    pub pending: u64,
    /// Leased.
    pub processing: u64,
    /// Handled.
    pub done: u64,
    /// Dead letters.
    pub dead: u64,
}

impl InboxCounts {
    /// Adds one entry of `status`.
    pub fn add(&mut self, status: EntryStatus, n: u64) {
        match status {
            EntryStatus::Pending => self.pending += n,
            EntryStatus::Processing => self.processing += n,
            EntryStatus::Done => self.done += n,
            EntryStatus::Dead => self.dead += n,
        }
    }
}
