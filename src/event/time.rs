//! RFC 3339 event timestamps that keep the sender's format, and the clock producers read.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An RFC 3339 timestamp as sent in an envelope, e.g. `2025-10-07T07:37:03.000Z`.
///
/// The original text is kept and written back unchanged, so TaskLink's millisecond form
/// (`…03.000Z`) and the Proposal Generator's second form (`…00Z`) both round-trip byte for byte.
/// Equality, ordering and hashing use the instant, not the text.
///
/// Not to be confused with the crate's signature timestamps (unix seconds).
///
/// ```
/// use hookrelay::event::{EventTime, TimePrecision};
///
/// let t: EventTime = "2025-10-07T07:37:03.000Z".parse()?;
/// assert_eq!(t.unix_seconds(), 1_759_822_623);
/// assert_eq!(t.as_str(), "2025-10-07T07:37:03.000Z");
/// let same = EventTime::from_unix(1_759_822_623, 0, TimePrecision::Seconds)?;
/// assert_eq!(same.as_str(), "2025-10-07T07:37:03Z");
/// assert_eq!(t, same);
/// # Ok::<(), hookrelay::event::TimeError>(())
/// ```
#[derive(Clone)]
pub struct EventTime {
    text: Box<str>,
    seconds: i64,
    nanos: u32,
}

/// How many fractional digits [`EventTime::from_unix`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum TimePrecision {
    /// `2024-01-15T10:30:00Z` (the Proposal Generator's form).
    #[default]
    Seconds,
    /// `2025-10-07T07:37:03.000Z` (TaskLink's form, JavaScript's `toISOString`).
    Millis,
    /// Six fractional digits.
    Micros,
    /// Nine fractional digits.
    Nanos,
}

/// Why a timestamp was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TimeError {
    /// The text is not an RFC 3339 date-time.
    Invalid {
        /// The text that was rejected.
        text: String,
    },
    /// The instant is outside years 0000–9999.
    OutOfRange,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimeError::Invalid { text } => write!(f, "invalid rfc 3339 timestamp {text:?}"),
            TimeError::OutOfRange => f.write_str("timestamp outside years 0000-9999"),
        }
    }
}

impl std::error::Error for TimeError {}

// Howard Hinnant's days-from-civil and civil-from-days.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        b.iter()
            .fold(0u32, |acc, &c| acc * 10 + u32::from(c - b'0')),
    )
}

fn parse(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = i64::from(digits(&b[0..4])?);
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = &b[19..];
    let mut nanos = 0u32;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return None;
        }
        for (i, &c) in rest[1..=n].iter().enumerate() {
            if i < 9 {
                nanos += u32::from(c - b'0') * 10u32.pow(8 - i as u32);
            }
        }
        rest = &rest[n + 1..];
    }
    let offset: i64 = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let h = i64::from(digits(&[*h1, *h2])?);
            let m = i64::from(digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let off = h * 3600 + m * 60;
            if *sign == b'-' { -off } else { off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second)
        - offset;
    Some((secs, nanos))
}

impl EventTime {
    /// Parses RFC 3339 text (`Z` or a `±HH:MM` offset, any number of fractional digits).
    pub fn parse(text: &str) -> Result<Self, TimeError> {
        let (seconds, nanos) = parse(text).ok_or_else(|| TimeError::Invalid {
            text: text.to_owned(),
        })?;
        Ok(EventTime {
            text: text.into(),
            seconds,
            nanos,
        })
    }

    /// Formats a unix instant in UTC (`Z`) with `precision` fractional digits (truncated).
    pub fn from_unix(
        seconds: i64,
        nanos: u32,
        precision: TimePrecision,
    ) -> Result<Self, TimeError> {
        if nanos >= 1_000_000_000 {
            return Err(TimeError::OutOfRange);
        }
        let days = seconds.div_euclid(86_400);
        let sod = seconds.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        if !(0..=9999).contains(&y) {
            return Err(TimeError::OutOfRange);
        }
        let (h, mi, s) = (sod / 3600, (sod % 3600) / 60, sod % 60);
        let frac = match precision {
            TimePrecision::Seconds => String::new(),
            TimePrecision::Millis => format!(".{:03}", nanos / 1_000_000),
            TimePrecision::Micros => format!(".{:06}", nanos / 1_000),
            TimePrecision::Nanos => format!(".{nanos:09}"),
        };
        let kept = match precision {
            TimePrecision::Seconds => 0,
            TimePrecision::Millis => nanos / 1_000_000 * 1_000_000,
            TimePrecision::Micros => nanos / 1_000 * 1_000,
            TimePrecision::Nanos => nanos,
        };
        let text = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}{frac}Z");
        Ok(EventTime {
            text: text.into(),
            seconds,
            nanos: kept,
        })
    }

    /// The current time from `clock`, formatted with `precision`.
    pub fn now(clock: &dyn EventClock, precision: TimePrecision) -> Self {
        let (secs, nanos) = match clock.now().duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                (-(d.as_secs() as i64) - i64::from(d.subsec_nanos() > 0), 0)
            }
        };
        Self::from_unix(secs, nanos, precision).unwrap_or_else(|_| EventTime {
            text: "1970-01-01T00:00:00Z".into(),
            seconds: 0,
            nanos: 0,
        })
    }

    /// The text as sent (or as formatted).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whole seconds since the unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        self.seconds
    }

    /// Nanoseconds past [`unix_seconds`](Self::unix_seconds) (digits beyond 9 are dropped).
    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// The instant as a [`SystemTime`].
    pub fn to_system_time(&self) -> SystemTime {
        if self.seconds >= 0 {
            UNIX_EPOCH + Duration::new(self.seconds as u64, self.nanos)
        } else {
            UNIX_EPOCH - Duration::from_secs(self.seconds.unsigned_abs())
                + Duration::from_nanos(u64::from(self.nanos))
        }
    }
}

impl std::str::FromStr for EventTime {
    type Err = TimeError;
    fn from_str(s: &str) -> Result<Self, TimeError> {
        EventTime::parse(s)
    }
}

impl fmt::Debug for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventTime({:?})", self.text)
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for EventTime {
    fn eq(&self, other: &Self) -> bool {
        (self.seconds, self.nanos) == (other.seconds, other.nanos)
    }
}

impl Eq for EventTime {}

impl Hash for EventTime {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (self.seconds, self.nanos).hash(state);
    }
}

impl PartialOrd for EventTime {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EventTime {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seconds, self.nanos).cmp(&(other.seconds, other.nanos))
    }
}

impl serde::Serialize for EventTime {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for EventTime {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = EventTime;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an rfc 3339 timestamp string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EventTime, E> {
                EventTime::parse(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_str(V)
    }
}

/// A time field that the sender documents loosely (task-hub's examples show `"..."`): kept as
/// text, parsed on demand with [`LenientTime::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct LenientTime(String);

impl LenientTime {
    /// Wraps text.
    pub fn new(text: impl Into<String>) -> Self {
        LenientTime(text.into())
    }

    /// The text as sent.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Parses the text as RFC 3339.
    pub fn parse(&self) -> Result<EventTime, TimeError> {
        EventTime::parse(&self.0)
    }
}

impl From<EventTime> for LenientTime {
    fn from(t: EventTime) -> Self {
        LenientTime(t.as_str().to_owned())
    }
}

/// The clock producers read event timestamps from. Inject a fixed one in tests.
pub trait EventClock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> SystemTime;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemEventClock;

impl EventClock for SystemEventClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always returns the same instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedEventClock(pub SystemTime);

impl FixedEventClock {
    /// A clock stopped at `seconds` + `nanos` after the unix epoch.
    pub fn at_unix(seconds: u64, nanos: u32) -> Self {
        FixedEventClock(UNIX_EPOCH + Duration::new(seconds, nanos))
    }
}

impl EventClock for FixedEventClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_keeps_text() {
        let t = EventTime::parse("2024-01-15T10:30:00Z").unwrap();
        assert_eq!(t.unix_seconds(), 1_705_314_600);
        assert_eq!(t.to_string(), "2024-01-15T10:30:00Z");
        let o = EventTime::parse("2024-01-15T12:30:00.5+02:00").unwrap();
        assert_eq!(o.unix_seconds(), 1_705_314_600);
        assert_eq!(o.subsec_nanos(), 500_000_000);
    }

    #[test]
    fn rejects_bad_text() {
        for bad in [
            "",
            "...",
            "2024-02-30T00:00:00Z",
            "2024-01-15T10:30:00",
            "2024-01-15T24:00:00Z",
            "2024-01-15T10:30:00.Z",
            "2024-01-15T10:30:00+0200",
        ] {
            assert!(EventTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_precisions() {
        let clock = FixedEventClock::at_unix(1_759_822_623, 123_456_789);
        assert_eq!(
            EventTime::now(&clock, TimePrecision::Millis).as_str(),
            "2025-10-07T07:37:03.123Z"
        );
        assert_eq!(
            EventTime::now(&clock, TimePrecision::Seconds).as_str(),
            "2025-10-07T07:37:03Z"
        );
        assert_eq!(
            EventTime::now(&clock, TimePrecision::Nanos).as_str(),
            "2025-10-07T07:37:03.123456789Z"
        );
        let t = EventTime::from_unix(951_782_400, 0, TimePrecision::Seconds).unwrap();
        assert_eq!(t.as_str(), "2000-02-29T00:00:00Z");
    }
}
