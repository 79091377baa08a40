//! [`Throttle`]: at most one progress event per job per endpoint per window, the latest state
//! winning (Proposal Generator: "`job.progress` … throttled to once per 10 seconds").

use std::time::Duration;

use serde_json::Value;

use super::DataPointer;

/// Collapses a stream of progress events into at most one delivery per key per window.
///
/// The first progress event of a key (a job) opens a window and is due when it ends; a later
/// one within the window **supersedes** it (the earlier delivery is marked
/// [`Superseded`](super::DeliveryStatus::Superseded) and counted, never sent) and takes its
/// place, so the latest state goes out when the window ends. A terminal event of the same key
/// is never throttled: it supersedes the waiting progress event and goes out at once, and it
/// is ordered behind a progress event already in flight, so no progress event arrives after
/// it. A progress event already being sent is never superseded.
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
