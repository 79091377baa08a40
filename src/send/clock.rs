//! [`ManualClock`]: a clock that moves only when told to, for tests of senders and receivers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use crate::event::EventClock;
use crate::retry::UnixMillis;
use crate::{Clock, Timestamp};

/// A clock that moves only when told to; clones share the time. It is an [`EventClock`] (the
/// clock a [`Sender`](super::Sender) reads for due times, leases and signing timestamps) and a
/// [`Clock`] (the one a receiver checks timestamps against), so one clock can drive both sides
/// of a test.
///
/// ```
/// use hookrelay::retry::UnixMillis;
/// use hookrelay::send::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::at(UnixMillis::from_secs(1_700_000_000));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.millis(), UnixMillis::from_secs(1_700_000_005));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn at(at: UnixMillis) -> Self {
        ManualClock(Arc::new(AtomicU64::new(at.as_millis())))
    }

    /// Moves the time forward by `by`, stopping at the largest [`UnixMillis`] (never
    /// wrapping around).
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let _ = self
            .0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |t| {
                Some(t.saturating_add(ms))
            });
    }

    /// Sets the time.
    pub fn set(&self, at: UnixMillis) {
        self.0.store(at.as_millis(), Ordering::SeqCst);
    }

    /// The time it shows.
    pub fn millis(&self) -> UnixMillis {
        UnixMillis::from_millis(self.0.load(Ordering::SeqCst))
    }
}

impl EventClock for ManualClock {
    fn now(&self) -> SystemTime {
        self.millis().to_system_time()
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix(i64::try_from(self.millis().as_millis() / 1000).unwrap_or(i64::MAX))
    }
}
