//! Waiting until a running dispatcher is idle: the round counters its loop publishes and
//! [`NotIdle`], the error of [`DispatcherHandle::wait_idle`](super::DispatcherHandle::wait_idle).

use std::fmt;

/// What the run loop tells its handle after each turn (plan what finished, start what is
/// ready, send the store a round).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Activity {
    /// Turns begun. Bumped before a turn's store round begins, so a turn numbered above the
    /// count a waiter read began after it asked (and its claim saw everything published
    /// before).
    pub(super) begun: u64,
    /// The turn that began the last claim that found nothing due.
    pub(super) ended: u64,
    /// Whether the dispatcher has nothing to do now: that claim found nothing due, no round
    /// is in the store, and no attempt is ready, in flight, or waiting to be stored with its
    /// health changes.
    pub(super) idle: bool,
}

/// Why [`DispatcherHandle::wait_idle`](super::DispatcherHandle::wait_idle) gave up: the
/// deadline passed while the dispatcher still had work due or in flight, or the dispatcher
/// stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotIdle {
    stopped: bool,
}

impl NotIdle {
    pub(super) fn busy() -> Self {
        NotIdle { stopped: false }
    }

    pub(super) fn stopped() -> Self {
        NotIdle { stopped: true }
    }

    /// The dispatcher's task has ended (it was shut down or failed), so it will never be
    /// idle; otherwise the deadline passed while it was busy.
    pub fn is_stopped(&self) -> bool {
        self.stopped
    }
}

impl fmt::Display for NotIdle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.stopped {
            f.write_str("the dispatcher has stopped")
        } else {
            f.write_str("the dispatcher still had work due or in flight at the deadline")
        }
    }
}

impl std::error::Error for NotIdle {}
