//! [`Throttle`]: at most one progress event per job per endpoint per window, the latest state
//! winning (Proposal Generator: "`job.progress` … throttled to once per 10 seconds").

use std::time::Duration;

use serde_json::Value;

use super::DataPointer;
use crate::retry::UnixMillis;

/// Collapses a stream of progress events into at most one delivery per key per window, on the
/// leading and the trailing edge.
///
/// The first progress event of a key (a job) goes out at once. One that follows within the
/// window of the last one sent or scheduled is due a window after that one; a later one still
/// within it **supersedes** it (the earlier delivery is marked
/// [`Superseded`](super::DeliveryStatus::Superseded) and counted, never sent) and takes its
/// place, so the latest state goes out when the window ends. After a quiet window the next
/// event goes out at once again. A terminal event of the same key is never throttled: it
/// supersedes the waiting progress event and goes out at once, and it is ordered behind a
/// progress event already in flight, so no progress event arrives after it. A progress event
/// already being sent is never superseded. The rule is [`ThrottleGroup::due_at`].
///
/// Proposal Generator endpoints use [`Throttle::job_progress`] by default.
///
/// ```
/// use hookrelay::send::Throttle;
/// use std::time::Duration;
///
/// let throttle = Throttle::job_progress().window(Duration::from_secs(30));
/// let data = serde_json::json!({"job_id": "job_123"});
/// assert!(throttle.group("job.progress", &data).is_some());
/// assert!(throttle.group("job.completed", &data).is_some()); // terminal: same group
/// assert!(throttle.group("document.created", &data).is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttle {
    progress: String,
    terminal: Vec<String>,
    key: DataPointer,
    window: Duration,
}

/// How one event falls under a [`Throttle`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleGroup {
    /// The key shared by a job's progress and terminal events.
    pub key: String,
    /// `Some(window)` for a progress event (throttled); `None` for a terminal one.
    pub window: Option<Duration>,
}

impl ThrottleGroup {
    /// When a new delivery of this group, published at `now`, is due: the one rule every
    /// store applies at publish, from what it read there.
    ///
    /// - `superseded`: the earliest due time of the group's pending deliveries this one
    ///   supersedes (those no worker holds), if any;
    /// - `latest`: the due time the group's most recent progress delivery was given (sent, in
    ///   flight, pending or superseded), if any.
    ///
    /// A terminal event (no window) is due at once. A progress event takes the place of the
    /// one it supersedes; otherwise it is due a window after the latest one, or at once when
    /// that window has passed (or there was none).
    ///
    /// ```
    /// use hookrelay::retry::UnixMillis;
    /// use hookrelay::send::ThrottleGroup;
    /// use std::time::Duration;
    ///
    /// let progress = ThrottleGroup {
    ///     key: "job.progress|j1".into(),
    ///     window: Some(Duration::from_secs(10)),
    /// };
    /// let t = |s: u64| UnixMillis::from_secs(1_700_000_000 + s);
    /// assert_eq!(progress.due_at(t(0), None, None), t(0)); // the first: at once
    /// assert_eq!(progress.due_at(t(3), None, Some(t(0))), t(10)); // a window after it
    /// assert_eq!(progress.due_at(t(5), Some(t(10)), Some(t(10))), t(10)); // replaces it
    /// assert_eq!(progress.due_at(t(25), None, Some(t(10))), t(25)); // after a quiet window
    /// let terminal = ThrottleGroup { window: None, ..progress };
    /// assert_eq!(terminal.due_at(t(5), Some(t(10)), Some(t(10))), t(5));
    /// ```
    pub fn due_at(
        &self,
        now: UnixMillis,
        superseded: Option<UnixMillis>,
        latest: Option<UnixMillis>,
    ) -> UnixMillis {
        let Some(window) = self.window else {
            return now;
        };
        if let Some(due) = superseded {
            return due;
        }
        match latest.map(|at| at.saturating_add(window)) {
            Some(window_end) if now < window_end => window_end,
            _ => now,
        }
    }
}

impl Throttle {
    /// `job.progress` keyed by `data.job_id`, once per 10 s; `job.completed` and `job.failed`
    /// are terminal.
    pub fn job_progress() -> Self {
        Throttle {
            progress: "job.progress".to_owned(),
            terminal: vec!["job.completed".to_owned(), "job.failed".to_owned()],
            key: DataPointer("/job_id".to_owned()),
            window: Duration::from_secs(10),
        }
    }

    /// Throttles `progress` events keyed by `key`; `terminal` event types end a key's stream.
    pub fn new(progress: impl Into<String>, key: DataPointer, terminal: &[&str]) -> Self {
        Throttle {
            progress: progress.into(),
            terminal: terminal.iter().map(|t| (*t).to_owned()).collect(),
            key,
            window: Duration::from_secs(10),
        }
    }

    /// The window (default 10 s, at least 1 ms).
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window.max(Duration::from_millis(1));
        self
    }

    /// The window.
    pub fn window_length(&self) -> Duration {
        self.window
    }

    /// The event type that is throttled (`job.progress`).
    pub fn progress_type(&self) -> &str {
        &self.progress
    }

    /// The event types that end a key's stream (`job.completed`, `job.failed`).
    pub fn terminal_types(&self) -> &[String] {
        &self.terminal
    }

    /// The field of the event's data that keys it (`/job_id`).
    pub fn key(&self) -> &DataPointer {
        &self.key
    }

    /// How an event of `event_type` with `data` falls under this throttle, if at all.
    pub fn group(&self, event_type: &str, data: &Value) -> Option<ThrottleGroup> {
        let window = if event_type == self.progress {
            Some(self.window)
        } else if self.terminal.iter().any(|t| t == event_type) {
            None
        } else {
            return None;
        };
        let key = self.key.text_in(data)?;
        Some(ThrottleGroup {
            key: format!("{}|{key}", self.progress),
            window,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(10);

    fn t(ms: u64) -> UnixMillis {
        UnixMillis::from_millis(1_700_000_000_000 + ms)
    }

    fn progress() -> ThrottleGroup {
        ThrottleGroup {
            key: "job.progress|j1".into(),
            window: Some(WINDOW),
        }
    }

    /// Feeds a stream of progress events through the rule as a store would (one pending
    /// delivery at most, sent when due) and returns the send times with the event each
    /// carried.
    fn sends(events: &[u64], until: u64) -> Vec<(u64, usize)> {
        let group = progress();
        let mut pending: Option<(UnixMillis, usize)> = None;
        let mut latest: Option<UnixMillis> = None;
        let mut sent = Vec::new();
        let mut events = events.iter().enumerate().peekable();
        for now in 0..=until {
            while let Some((i, _)) = events.next_if(|(_, at)| **at == now) {
                let due = group.due_at(t(now), pending.map(|(due, _)| due), latest);
                pending = Some((due, i));
                latest = Some(due);
            }
            if let Some((due, i)) = pending
                && due <= t(now)
            {
                sent.push((now, i));
                pending = None;
            }
        }
        sent
    }

    #[test]
    fn leading_and_trailing_edge() {
        // The first at once; a burst within 10 s collapses to its latest at t+10 s.
        assert_eq!(
            sends(&[0, 1_000, 4_000, 9_000], 30_000),
            vec![(0, 0), (10_000, 3)]
        );
        // At most one per window, each carrying the latest state.
        assert_eq!(
            sends(&[0, 1_000, 12_000, 13_000, 15_000], 40_000),
            vec![(0, 0), (10_000, 1), (20_000, 4)]
        );
        // After a quiet window: at once again.
        assert_eq!(
            sends(&[0, 10_000, 35_000], 60_000),
            vec![(0, 0), (10_000, 1), (35_000, 2)]
        );
    }

    #[test]
    fn terminal_events_are_due_at_once() {
        let terminal = ThrottleGroup {
            window: None,
            ..progress()
        };
        assert_eq!(
            terminal.due_at(t(5), Some(t(10_000)), Some(t(10_000))),
            t(5)
        );
        assert_eq!(terminal.due_at(t(5), None, None), t(5));
    }

    #[test]
    fn a_window_at_the_end_of_time_does_not_overflow() {
        let group = progress();
        let end = UnixMillis::from_millis(u64::MAX);
        assert_eq!(group.due_at(end, None, Some(end)), end);
    }
}
