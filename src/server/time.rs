//! Times on the wire: RFC 3339 UTC out (`2024-01-15T10:30:00.000Z`); RFC 3339 UTC or unix
//! seconds in.

use crate::retry::UnixMillis;

const MILLIS_PER_DAY: u64 = 86_400_000;

/// `at` as RFC 3339 UTC with milliseconds.
pub(crate) fn rfc3339(at: UnixMillis) -> String {
    let millis = at.as_millis();
    let (year, month, day) = civil_from_days(millis / MILLIS_PER_DAY);
    let in_day = millis % MILLIS_PER_DAY;
    let (h, m, s, ms) = (
        in_day / 3_600_000,
        in_day / 60_000 % 60,
        in_day / 1000 % 60,
        in_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{ms:03}Z")
}

/// A query parameter's time: unix seconds, or RFC 3339 UTC
/// (`YYYY-MM-DDTHH:MM:SS[.fff]Z`).
pub(crate) fn parse(text: &str) -> Option<UnixMillis> {
    if let Ok(secs) = text.parse::<u64>() {
        return secs.checked_mul(1000).map(UnixMillis::from_millis);
    }
    let text = text.strip_suffix('Z').or_else(|| text.strip_suffix('z'))?;
    let (date, time) = text.split_once(['T', 't'])?;
    let mut date_parts = date.split('-');
    let year: u64 = number(date_parts.next()?, 4)?;
    let month: u64 = number(date_parts.next()?, 2)?;
    let day: u64 = number(date_parts.next()?, 2)?;
    let (clock, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut clock_parts = clock.split(':');
    let h: u64 = number(clock_parts.next()?, 2)?;
    let m: u64 = number(clock_parts.next()?, 2)?;
    let s: u64 = number(clock_parts.next()?, 2)?;
    if date_parts.next().is_some() || clock_parts.next().is_some() {
        return None;
    }
    let valid = (1970..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && h < 24
        && m < 60
        && s < 60;
    let millis = match fraction.len() {
        0 => 0,
        1..=9 if fraction.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{fraction:0<3}")[..3].parse().ok()?
        }
        _ => return None,
    };
    valid.then(|| {
        let days = days_from_civil(year, month, day);
        UnixMillis::from_millis(days * MILLIS_PER_DAY + ((h * 60 + m) * 60 + s) * 1000 + millis)
    })
}

fn number(text: &str, digits: usize) -> Option<u64> {
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn leap(year: u64) -> bool {
    year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400))
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a date (Howard Hinnant's `days_from_civil`, years ≥ 1970).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_against_known_instants() {
        // `date -u -d @1705314600` → 2024-01-15 10:30:00 (001's `created_at`).
        assert_eq!(
            rfc3339(UnixMillis::from_secs(1_705_314_600)),
            "2024-01-15T10:30:00.000Z"
        );
        assert_eq!(rfc3339(UnixMillis::EPOCH), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            rfc3339(UnixMillis::from_millis(951_782_400_123)),
            "2000-02-29T00:00:00.123Z"
        );
    }

    #[test]
    fn parses_what_it_formats_and_unix_seconds() {
        for millis in [0, 951_782_400_123, 1_705_314_600_000, 4_102_444_799_999] {
            let at = UnixMillis::from_millis(millis);
            assert_eq!(parse(&rfc3339(at)), Some(at));
        }
        assert_eq!(
            parse("1705314600"),
            Some(UnixMillis::from_secs(1_705_314_600))
        );
        assert_eq!(
            parse("2024-01-15T10:30:00Z"),
            Some(UnixMillis::from_secs(1_705_314_600))
        );
        for bad in [
            "",
            "2024-02-30T00:00:00Z",
            "2024-01-15T10:30:00",
            "2024-1-15T10:30:00Z",
            "x",
        ] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }
}
