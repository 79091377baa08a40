//! Unix timestamps as webhook signatures carry them, and the clock that reads the current one.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, as signed by Standard Webhooks, Stripe and TaskOn.
///
/// Parsing from a header is strict: ASCII decimal digits only, no sign, no fraction, no
/// exponent, no leading zeros, at most 19 digits and within `i64`. Anything else is a
/// [`TimestampError`], never a panic or a silently wrapped value.
///
/// ```
/// use hookrelay::Timestamp;
///
/// let t: Timestamp = "1614265330".parse()?;
/// assert_eq!(t.as_unix(), 1_614_265_330);
/// assert!("+1614265330".parse::<Timestamp>().is_err());
/// # Ok::<(), hookrelay::TimestampError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `secs` seconds after the Unix epoch.
    pub const fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the Unix epoch.
    pub const fn as_unix(self) -> i64 {
        self.0
    }

    /// The current system time, truncated to whole seconds.
    pub fn now() -> Self {
        let secs = match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(elapsed) => i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        };
        Self(secs)
    }

    /// Parses the strict header form from raw bytes (see the type docs).
    pub fn parse_header(value: &[u8]) -> Result<Self, TimestampError> {
        let leading_zero = value.len() > 1 && value[0] == b'0';
        if value.is_empty() || value.len() > 19 || leading_zero {
            return Err(TimestampError(()));
        }
        // Up to 19 digits fit in a u64 without overflow; i64::try_from rejects the rest.
        let mut secs = 0u64;
        for &byte in value {
            let digit = byte.wrapping_sub(b'0');
            if digit > 9 {
                return Err(TimestampError(()));
            }
            secs = secs * 10 + u64::from(digit);
        }
        i64::try_from(secs)
            .map(Self)
            .map_err(|_| TimestampError(()))
    }

    /// Signed difference `self - other` in seconds, saturating instead of overflowing.
    pub(crate) fn seconds_since(self, other: Timestamp) -> i64 {
        self.0.saturating_sub(other.0)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_header(s.as_bytes())
    }
}

/// A timestamp that is not in the strict form described on [`Timestamp`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimestampError(());

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timestamp is not a plain decimal unix time in seconds")
    }
}

impl std::error::Error for TimestampError {}

/// Where the verifier reads "now" from. Inject a [`FixedClock`] in tests.
pub trait Clock: fmt::Debug + Send + Sync {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock stopped at one instant, for tests and for replaying recorded requests.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub Timestamp);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_parsing() {
        for bad in [
            "",
            "-1",
            "1e9",
            "1700000000.5",
            "+1700000000",
            " 1",
            "01",
            "9223372036854775808",
            "12345678901234567890",
        ] {
            assert!(bad.parse::<Timestamp>().is_err(), "{bad:?} accepted");
        }
        assert_eq!("0".parse::<Timestamp>().unwrap().as_unix(), 0);
        assert_eq!(
            "9223372036854775807"
                .parse::<Timestamp>()
                .unwrap()
                .as_unix(),
            i64::MAX
        );
    }
}
