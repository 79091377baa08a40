//! [`RateLimitReset`]: the `X-RateLimit-Reset` response header, parsed strictly.

use std::fmt;
use std::time::Duration;

use super::UnixMillis;

/// A parsed `X-RateLimit-Reset` value: when a receiver's rate-limit window starts afresh.
///
/// The header has no standard. Receivers send either unix seconds (GitHub, Task Hub) or
/// seconds from now (others); hookrelay tells them apart by size: a value below
/// [`RateLimitReset::UNIX_THRESHOLD`] (10⁹, September 2001 as a date, about 31.7 years as a
/// delay) is a delay in seconds, anything else is unix seconds.
///
/// Grammar: `1*DIGIT`, surrounded by optional spaces and tabs. Signs, fractions, words, an
/// empty value and numbers that do not fit in 64 bits are refused with
/// [`RateLimitResetError`]; the dispatcher then ignores the header.
///
/// ```
/// use hookrelay::retry::{RateLimitReset, UnixMillis};
/// use std::time::Duration;
///
/// assert_eq!(RateLimitReset::parse(b"30"), Ok(RateLimitReset::Delay(Duration::from_secs(30))));
/// assert_eq!(
///     RateLimitReset::parse(b"1700000000"),
///     Ok(RateLimitReset::At(UnixMillis::from_secs(1_700_000_000))),
/// );
/// let now = UnixMillis::from_secs(1_700_000_000);
/// assert_eq!(RateLimitReset::Delay(Duration::from_secs(30)).reset_at(now), UnixMillis::from_secs(1_700_000_030));
/// assert!(RateLimitReset::parse(b"-5").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitReset {
    /// A value below [`UNIX_THRESHOLD`](Self::UNIX_THRESHOLD): seconds after the response.
    Delay(Duration),
    /// Unix seconds: the window resets at this instant (one in the past means "now").
    At(UnixMillis),
}

impl RateLimitReset {
    /// Values below this (10⁹) are delays in seconds; from it on, unix seconds.
    pub const UNIX_THRESHOLD: u64 = 1_000_000_000;

    /// Parses a header value. See the type's documentation for what is accepted.
    pub fn parse(value: &[u8]) -> Result<RateLimitReset, RateLimitResetError> {
        let value = value.trim_ascii();
        if value.is_empty() {
            return Err(RateLimitResetError::Empty);
        }
        if !value.iter().all(u8::is_ascii_digit) {
            return Err(RateLimitResetError::Invalid);
        }
        let mut secs: u64 = 0;
        for &b in value {
            secs = secs
                .checked_mul(10)
                .and_then(|s| s.checked_add(u64::from(b - b'0')))
                .ok_or(RateLimitResetError::Invalid)?;
        }
        Ok(if secs < Self::UNIX_THRESHOLD {
            RateLimitReset::Delay(Duration::from_secs(secs))
        } else {
            RateLimitReset::At(UnixMillis::from_secs(secs))
        })
    }

    /// When the window resets, for a response received at `received_at`.
    pub fn reset_at(self, received_at: UnixMillis) -> UnixMillis {
        match self {
            RateLimitReset::Delay(d) => received_at.saturating_add(d),
            RateLimitReset::At(t) => t,
        }
    }
}

impl std::str::FromStr for RateLimitReset {
    type Err = RateLimitResetError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RateLimitReset::parse(s.as_bytes())
    }
}

/// Why an `X-RateLimit-Reset` value was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RateLimitResetError {
    /// The value was empty or only whitespace.
    Empty,
    /// Not a whole number of seconds that fits in 64 bits (signs, fractions, words …).
    Invalid,
}

impl fmt::Display for RateLimitResetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RateLimitResetError::Empty => "x-ratelimit-reset value is empty",
            RateLimitResetError::Invalid => "x-ratelimit-reset value is not a number of seconds",
        })
    }
}

impl std::error::Error for RateLimitResetError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_below_the_threshold_and_unix_seconds_from_it() {
        assert_eq!(
            RateLimitReset::parse(b"0"),
            Ok(RateLimitReset::Delay(Duration::ZERO))
        );
        assert_eq!(
            RateLimitReset::parse(b" 999999999\t"),
            Ok(RateLimitReset::Delay(Duration::from_secs(999_999_999)))
        );
        assert_eq!(
            RateLimitReset::parse(b"1000000000"),
            Ok(RateLimitReset::At(UnixMillis::from_secs(1_000_000_000)))
        );
    }

    #[test]
    fn refuses_what_is_not_whole_seconds() {
        for bad in [
            &b""[..],
            b"  ",
            b"-5",
            b"+5",
            b"1.5",
            b"1e9",
            b"soon",
            b"\xff",
            b"99999999999999999999999",
        ] {
            assert!(RateLimitReset::parse(bad).is_err(), "{bad:?}");
        }
        assert_eq!(RateLimitReset::parse(b""), Err(RateLimitResetError::Empty));
    }

    #[test]
    fn reset_at_saturates_and_keeps_past_dates() {
        let now = UnixMillis::from_secs(2_000_000_000);
        assert_eq!(
            RateLimitReset::Delay(Duration::from_secs(5)).reset_at(now),
            UnixMillis::from_secs(2_000_000_005)
        );
        let past = UnixMillis::from_secs(1_500_000_000);
        assert_eq!(RateLimitReset::At(past).reset_at(now), past);
        assert_eq!(
            RateLimitReset::Delay(Duration::MAX).reset_at(now),
            UnixMillis::from_millis(u64::MAX)
        );
        assert_eq!(
            RateLimitReset::parse(u64::MAX.to_string().as_bytes()),
            Ok(RateLimitReset::At(UnixMillis::from_millis(u64::MAX)))
        );
    }
}
