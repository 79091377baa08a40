//! [`RetryAfter`]: the `Retry-After` response header (RFC 9110 §10.2.3), parsed strictly.

use std::fmt;
use std::time::Duration;

use super::UnixMillis;

/// A parsed `Retry-After` value: either a delay or an absolute date.
///
/// Grammar (RFC 9110 §10.2.3): `Retry-After = HTTP-date / delay-seconds`, where
/// `delay-seconds = 1*DIGIT`. Surrounding spaces and tabs are ignored. Everything else —
/// a sign (`-5`, `+5`), a fraction (`1.5`), an exponent, words, an empty value, non-UTF-8
/// bytes — is refused with [`RetryAfterError`], and the planner then keeps its own schedule.
///
/// Values above [`RetryAfter::MAX_SECONDS`] (2³¹ s, about 68 years, the ceiling RFC 9111 §1.2.2
/// gives delta-seconds) are refused as [`RetryAfterError::TooLarge`]: no overflow, no panic,
/// and no delivery parked for decades. Accepted values are clamped later by the policy's
/// [`retry_after_cap`](crate::retry::RetryPolicyBuilder::retry_after_cap).
///
/// ```
/// use hookrelay::retry::{RetryAfter, UnixMillis};
/// use std::time::Duration;
///
/// assert_eq!(RetryAfter::parse(b"120"), Ok(RetryAfter::Delay(Duration::from_secs(120))));
/// let date = RetryAfter::parse(b"Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
/// assert_eq!(date, RetryAfter::At(UnixMillis::from_secs(784_111_777)));
/// assert!(RetryAfter::parse(b"-5").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfter {
    /// `delay-seconds`: wait this long after the response arrived.
    Delay(Duration),
    /// `HTTP-date`: do not retry before this instant (a date in the past means "now").
    At(UnixMillis),
}

impl RetryAfter {
    /// The largest `delay-seconds` accepted (2³¹).
    pub const MAX_SECONDS: u64 = 1 << 31;

    /// Parses a header value. See the type's documentation for what is accepted.
    pub fn parse(value: &[u8]) -> Result<RetryAfter, RetryAfterError> {
        let value = trim_ows(value);
        if value.is_empty() {
            return Err(RetryAfterError::Empty);
        }
        if value.iter().all(u8::is_ascii_digit) {
            let mut secs: u64 = 0;
            for &b in value {
                secs = secs
                    .checked_mul(10)
                    .and_then(|s| s.checked_add(u64::from(b - b'0')))
                    .filter(|&s| s <= Self::MAX_SECONDS)
                    .ok_or(RetryAfterError::TooLarge)?;
            }
            return Ok(RetryAfter::Delay(Duration::from_secs(secs)));
        }
        // An HTTP-date is 24 to 30 ASCII characters; anything far longer is junk.
        if value.len() > 64 {
            return Err(RetryAfterError::Invalid);
        }
        let text = std::str::from_utf8(value).map_err(|_| RetryAfterError::Invalid)?;
        let at = httpdate::parse_http_date(text).map_err(|_| RetryAfterError::Invalid)?;
        Ok(RetryAfter::At(UnixMillis::from(at)))
    }

    /// The instant before which no retry should be sent, for a response received at
    /// `received_at`.
    pub fn not_before(self, received_at: UnixMillis) -> UnixMillis {
        match self {
            RetryAfter::Delay(d) => received_at.saturating_add(d),
            RetryAfter::At(t) => t,
        }
    }
}

impl std::str::FromStr for RetryAfter {
    type Err = RetryAfterError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RetryAfter::parse(s.as_bytes())
    }
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Why a `Retry-After` value was ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAfterError {
    /// The value was empty or only whitespace.
    Empty,
    /// Neither `delay-seconds` nor an HTTP-date (signs, fractions, words, bad bytes …).
    Invalid,
    /// `delay-seconds` above [`RetryAfter::MAX_SECONDS`].
    TooLarge,
}

impl fmt::Display for RetryAfterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RetryAfterError::Empty => "retry-after value is empty",
            RetryAfterError::Invalid => {
                "retry-after value is neither delay-seconds nor an http-date"
            }
            RetryAfterError::TooLarge => "retry-after delay is too large",
        })
    }
}

impl std::error::Error for RetryAfterError {}
