//! The sender's clock, in milliseconds: the system's, or a manual one for tests.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::retry::UnixMillis;

/// Where the sender reads the time: due times, leases, signing timestamps.
pub trait SendClock: Send + Sync + fmt::Debug + 'static {
    /// The current time.
    fn now(&self) -> UnixMillis;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemSendClock;

impl SendClock for SystemSendClock {
    fn now(&self) -> UnixMillis {
        UnixMillis::now()
    }
}

/// A clock that moves only when told to; clones share the time.
///
/// ```
/// use hookrelay::retry::UnixMillis;
/// use hookrelay::send::{ManualClock, SendClock};
/// use std::time::Duration;
///
/// let clock = ManualClock::at(UnixMillis::from_secs(1_700_000_000));
/// clock.advance(Duration::from_secs(5));
/// assert_eq!(clock.now(), UnixMillis::from_secs(1_700_000_005));
/// ```
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock showing `at`.
    pub fn at(at: UnixMillis) -> Self {
        ManualClock(Arc::new(AtomicU64::new(at.as_millis())))
    }

    /// Moves the time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let ms = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        self.0.fetch_add(ms, Ordering::SeqCst);
    }

    /// Sets the time.
    pub fn set(&self, at: UnixMillis) {
        self.0.store(at.as_millis(), Ordering::SeqCst);
    }
}

impl SendClock for ManualClock {
    fn now(&self) -> UnixMillis {
        UnixMillis::from_millis(self.0.load(Ordering::SeqCst))
    }
}
