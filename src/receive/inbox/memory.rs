//! The inbox in memory: for tests and for receivers that accept losing what a crash loses.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use super::entry::{
    Accepted, AttemptResult, ClaimedEntry, EntryStatus, InboxAttempt, InboxCounts, InboxEntry,
    InboxId, NewEntry, Recorded,
};
use super::query::{InboxPage, InboxQuery};
use super::store::{InboxLog, InboxQueue};
use crate::StoreError;
use crate::retry::UnixMillis;

/// An inbox in memory. Not durable: a crash loses every entry, so a receiver on it answers
/// 2xx for deliveries it may never process. Use `SqliteInbox` or `PostgresInbox` in
/// production; this one is for tests and examples.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
/// use hookrelay::receive::inbox::{InboxCounts, InboxLog, MemoryInbox};
///
/// let inbox = MemoryInbox::new();
/// assert_eq!(inbox.counts().await?, InboxCounts::default());
/// # Ok::<(), hookrelay::StoreError>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Default)]
pub struct MemoryInbox {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    last_id: i64,
    rows: BTreeMap<InboxId, Row>,
    by_key: HashMap<String, InboxId>,
    /// Pending and processing entries, in id order.
    unfinished: BTreeSet<InboxId>,
}

#[derive(Debug)]
struct Row {
    entry: InboxEntry,
    token: u64,
    attempts: Vec<InboxAttempt>,
    replayed: bool,
}

impl MemoryInbox {
    /// An empty inbox.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave a row half-written (every change is
        // one assignment), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl InboxQueue for MemoryInbox {
    async fn accept(&self, entry: NewEntry) -> Result<Accepted, StoreError> {
        let mut state = self.state();
        if let Some(id) = state.by_key.get(entry.key.as_str()) {
            return Ok(Accepted::Duplicate(*id));
        }
        state.last_id += 1;
        let id = InboxId::new(state.last_id);
        state.by_key.insert(entry.key.as_str().to_owned(), id);
        state.unfinished.insert(id);
        let next_attempt_at = entry.received_at;
        state.rows.insert(
            id,
            Row {
                entry: InboxEntry {
                    id,
                    accepted: entry,
                    status: EntryStatus::Pending,
                    attempts: 0,
                    next_attempt_at,
                    lease_until: None,
                    last_error: None,
                    finished_at: None,
                },
                token: 0,
                attempts: Vec::new(),
                replayed: false,
            },
        );
        Ok(Accepted::Stored(id))
    }

    async fn claim(
        &self,
        now: UnixMillis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedEntry>, StoreError> {
        let mut state = self.state();
        let State {
            rows, unfinished, ..
        } = &mut *state;
        let mut blocked: HashSet<String> = HashSet::new();
        let mut claimed = Vec::new();
        for id in unfinished.iter() {
            if claimed.len() >= limit {
                break;
            }
            let Some(row) = rows.get_mut(id) else {
                continue;
            };
            if let Some(key) = &row.entry.accepted.order_key
                && !blocked.insert(key.clone())
            {
                continue;
            }
            if !is_due(&row.entry, now) {
                continue;
            }
            row.token += 1;
            row.entry.status = EntryStatus::Processing;
            row.entry.lease_until = Some(now.saturating_add(lease));
            claimed.push(ClaimedEntry {
                entry: row.entry.clone(),
                token: row.token,
            });
        }
        Ok(claimed)
    }

    async fn record(
        &self,
        id: InboxId,
        token: u64,
        mut attempt: InboxAttempt,
        result: AttemptResult,
    ) -> Result<Recorded, StoreError> {
        let mut state = self.state();
        let Some(row) = state.rows.get_mut(&id) else {
            return Ok(Recorded::Stale);
        };
        if row.token != token || row.entry.status != EntryStatus::Processing {
            return Ok(Recorded::Stale);
        }
        attempt.manual = std::mem::take(&mut row.replayed);
        let entry = &mut row.entry;
        entry.attempts = entry.attempts.saturating_add(1);
        entry.lease_until = None;
        let finished_at = attempt.at.saturating_add(attempt.duration);
        match result {
            AttemptResult::Done => {
                entry.status = EntryStatus::Done;
                entry.finished_at = Some(finished_at);
            }
            AttemptResult::RetryAt { at, error } => {
                entry.status = EntryStatus::Pending;
                entry.next_attempt_at = at;
                entry.last_error = Some(error);
            }
            AttemptResult::Dead { error } => {
                entry.status = EntryStatus::Dead;
                entry.finished_at = Some(finished_at);
                entry.last_error = Some(error);
            }
        }
        let unfinished = entry.status.is_unfinished();
        row.attempts.push(attempt);
        if !unfinished {
            state.unfinished.remove(&id);
        }
        Ok(Recorded::Applied)
    }

    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        let state = self.state();
        Ok(state
            .unfinished
            .iter()
            .filter_map(|id| state.rows.get(id))
            .map(|row| wake_at(&row.entry))
            .min())
    }
}

/// Whether a pending or processing entry may be claimed at `now`.
fn is_due(entry: &InboxEntry, now: UnixMillis) -> bool {
    wake_at(entry) <= now
}

/// When an unfinished entry next needs a worker.
fn wake_at(entry: &InboxEntry) -> UnixMillis {
    match entry.status {
        EntryStatus::Processing => entry.lease_until.unwrap_or(entry.next_attempt_at),
        _ => entry.next_attempt_at,
    }
}

impl InboxLog for MemoryInbox {
    async fn entry(
        &self,
        id: InboxId,
    ) -> Result<Option<(InboxEntry, Vec<InboxAttempt>)>, StoreError> {
        Ok(self
            .state()
            .rows
            .get(&id)
            .map(|row| (row.entry.clone(), row.attempts.clone())))
    }

    async fn list(&self, query: &InboxQuery) -> Result<InboxPage, StoreError> {
        let state = self.state();
        let size = query.page_size();
        let upper = query.cursor().map_or(i64::MAX, InboxId::get);
        let entries = state
            .rows
            .range(..InboxId::new(upper))
            .rev()
            .map(|(_, row)| &row.entry)
            .filter(|entry| query.matches(entry))
            .take(size + 1)
            .cloned()
            .collect();
        Ok(InboxPage::from_probe(entries, size))
    }

    async fn counts(&self) -> Result<InboxCounts, StoreError> {
        let mut counts = InboxCounts::default();
        for row in self.state().rows.values() {
            counts.add(row.entry.status, 1);
        }
        Ok(counts)
    }

    async fn replay(&self, id: InboxId, now: UnixMillis) -> Result<bool, StoreError> {
        let mut state = self.state();
        Ok(revive(&mut state, id, now))
    }

    async fn replay_matching(
        &self,
        query: &InboxQuery,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        let mut state = self.state();
        let dead: Vec<InboxId> = state
            .rows
            .values()
            .filter(|row| row.entry.status == EntryStatus::Dead && query.matches(&row.entry))
            .map(|row| row.entry.id)
            .collect();
        let mut replayed = 0;
        for id in dead {
            replayed += u64::from(revive(&mut state, id, now));
        }
        Ok(replayed)
    }

    async fn purge(&self, before: UnixMillis) -> Result<u64, StoreError> {
        let mut state = self.state();
        let old: Vec<(InboxId, String)> = state
            .rows
            .values()
            .filter(|row| {
                !row.entry.status.is_unfinished() && row.entry.accepted.received_at < before
            })
            .map(|row| (row.entry.id, row.entry.accepted.key.as_str().to_owned()))
            .collect();
        for (id, key) in &old {
            state.rows.remove(id);
            state.by_key.remove(key);
        }
        Ok(old.len() as u64)
    }
}

/// Dead → pending, due at `now`; whether it was dead.
fn revive(state: &mut State, id: InboxId, now: UnixMillis) -> bool {
    let Some(row) = state.rows.get_mut(&id) else {
        return false;
    };
    if row.entry.status != EntryStatus::Dead {
        return false;
    }
    row.entry.status = EntryStatus::Pending;
    row.entry.next_attempt_at = now;
    row.entry.finished_at = None;
    row.replayed = true;
    state.unfinished.insert(id);
    true
}
