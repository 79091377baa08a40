//! Listing the inbox: filters, pages and cursors.

use std::fmt;

use super::entry::{EntryStatus, InboxEntry, InboxId};
use crate::retry::UnixMillis;

/// The most entries one page holds.
pub const MAX_PAGE: usize = 250;

/// Which entries to list (newest first) or replay.
///
/// ```
/// use hookrelay::receive::inbox::{EntryStatus, InboxQuery};
///
/// let dead = InboxQuery::new().status(EntryStatus::Dead).event_type("task.completed").limit(50)?;
/// assert_eq!(dead.page_size(), 50);
/// # Ok::<(), hookrelay::receive::inbox::InvalidPageSize>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxQuery {
    statuses: Vec<EntryStatus>,
    event_type: Option<String>,
    since: Option<UnixMillis>,
    until: Option<UnixMillis>,
    limit: Option<usize>,
    before: Option<InboxId>,
}

/// A page size outside `1..=250`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidPageSize;

impl fmt::Display for InvalidPageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a page holds 1 to {MAX_PAGE} entries")
    }
}

impl std::error::Error for InvalidPageSize {}

impl InboxQuery {
    /// Every entry, 50 a page.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only entries in `status` (call again to add more statuses).
    pub fn status(mut self, status: EntryStatus) -> Self {
        if !self.statuses.contains(&status) {
            self.statuses.push(status);
        }
        self
    }

    /// Only entries of this exact event type.
    pub fn event_type(mut self, event_type: impl Into<String>) -> Self {
        self.event_type = Some(event_type.into());
        self
    }

    /// Only entries received at or after `at`.
    pub fn since(mut self, at: UnixMillis) -> Self {
        self.since = Some(at);
        self
    }

    /// Only entries received before `at`.
    pub fn until(mut self, at: UnixMillis) -> Self {
        self.until = Some(at);
        self
    }

    /// At most `limit` entries a page (1 to 250).
    pub fn limit(mut self, limit: usize) -> Result<Self, InvalidPageSize> {
        if !(1..=MAX_PAGE).contains(&limit) {
            return Err(InvalidPageSize);
        }
        self.limit = Some(limit);
        Ok(self)
    }

    /// The page after the one that ended at `cursor` (its [`InboxPage::next_cursor`]).
    pub fn after_cursor(mut self, cursor: InboxId) -> Self {
        self.before = Some(cursor);
        self
    }

    /// The statuses asked for (empty: all).
    pub fn statuses(&self) -> &[EntryStatus] {
        &self.statuses
    }

    /// The event type asked for.
    pub fn event_type_filter(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The received-at range `[since, until)`.
    pub fn received_range(&self) -> (Option<UnixMillis>, Option<UnixMillis>) {
        (self.since, self.until)
    }

    /// Entries a page: the limit, 50 unless set.
    pub fn page_size(&self) -> usize {
        self.limit.unwrap_or(50)
    }

    /// Only ids below this one (the cursor).
    pub fn cursor(&self) -> Option<InboxId> {
        self.before
    }

    /// Whether `entry` passes the filters (the cursor and limit aside).
    pub fn matches(&self, entry: &InboxEntry) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&entry.status))
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| entry.accepted.event_type.as_deref() == Some(t))
            && self.since.is_none_or(|t| entry.accepted.received_at >= t)
            && self.until.is_none_or(|t| entry.accepted.received_at < t)
    }
}

/// One page of entries, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxPage {
    /// The entries.
    pub entries: Vec<InboxEntry>,
    /// Where the next page starts, when there is one.
    pub next_cursor: Option<InboxId>,
}

impl InboxPage {
    /// A page of `entries` fetched with one extra row beyond `size` to learn whether more
    /// follow.
    pub fn from_probe(mut entries: Vec<InboxEntry>, size: usize) -> Self {
        let more = entries.len() > size;
        entries.truncate(size);
        let next_cursor = more.then(|| entries.last().map(|e| e.id)).flatten();
        Self {
            entries,
            next_cursor,
        }
    }
}
