//! [`UnixMillis`]: the instant type every part of the retry module speaks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A wall-clock instant as whole milliseconds since the Unix epoch (UTC).
///
/// The retry module uses this instead of [`SystemTime`] or [`std::time::Instant`] because
/// schedules are persisted (a store writes `next_attempt_at` as an integer column), because it
/// is 8 bytes instead of 16, and because integer arithmetic on it is exact and cannot panic:
/// every operation saturates. Millisecond resolution is far finer than any retry schedule needs.
///
/// Callers inject the current time (`now`) into every decision; nothing in the module reads
/// the clock except [`UnixMillis::now`], which is a convenience for callers.
///
/// ```
/// use hookrelay::retry::UnixMillis;
/// use std::time::Duration;
///
/// let t = UnixMillis::from_secs(1_700_000_000);
/// assert_eq!(t.saturating_add(Duration::from_secs(5)).as_millis(), 1_700_000_005_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixMillis(u64);

impl UnixMillis {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: UnixMillis = UnixMillis(0);

    /// An instant from milliseconds since the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        UnixMillis(millis)
    }

    /// An instant from whole seconds since the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        UnixMillis(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// The current wall-clock time; instants before the epoch read as [`UnixMillis::EPOCH`].
    pub fn now() -> Self {
        Self::from(SystemTime::now())
    }

    /// This instant plus `d`, saturating at the largest representable instant.
    pub fn saturating_add(self, d: Duration) -> Self {
        UnixMillis(self.0.saturating_add(duration_to_millis(d)))
    }

    /// How long after `earlier` this instant is; zero if it is not after it.
    pub fn saturating_duration_since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }

    /// This instant as a [`SystemTime`].
    pub fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }
}

impl From<SystemTime> for UnixMillis {
    /// Truncates to whole milliseconds; times before the epoch become the epoch.
    fn from(t: SystemTime) -> Self {
        match t.duration_since(UNIX_EPOCH) {
            Ok(d) => UnixMillis(duration_to_millis(d)),
            Err(_) => UnixMillis::EPOCH,
        }
    }
}

/// Whole milliseconds of `d`, saturating at `u64::MAX`.
pub(crate) fn duration_to_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturates_instead_of_overflowing() {
        let t = UnixMillis::from_millis(u64::MAX - 1);
        assert_eq!(t.saturating_add(Duration::MAX).as_millis(), u64::MAX);
        assert_eq!(UnixMillis::from_secs(u64::MAX).as_millis(), u64::MAX);
        assert_eq!(
            UnixMillis::EPOCH.saturating_duration_since(t),
            Duration::ZERO
        );
    }

    #[test]
    fn system_time_round_trip() {
        let t = UnixMillis::from_millis(1_700_000_000_123);
        assert_eq!(UnixMillis::from(t.to_system_time()), t);
        let before_epoch = UNIX_EPOCH - Duration::from_secs(1);
        assert_eq!(UnixMillis::from(before_epoch), UnixMillis::EPOCH);
    }
}
