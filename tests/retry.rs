//! Behaviour of the retry planner, against the seed documents' schedules and CHECKLIST F52–F54,
//! E51.

use std::time::Duration;

use hookrelay::retry::{
    Acquire, AttemptOutcome, AutoDisable, BreakerState, CircuitBreaker, ClientErrors, ConfigError,
    Decision, DeliveryState, DisableReason, GiveUpReason, HealthChange, Jitter, JitterSource,
    NoJitter, OutcomeClass, Permit, RateLimit, RetryAfter, RetryAfterError, RetryPolicy,
    SeededJitter, TokenBucket, UnixMillis,
};
use proptest::prelude::*;

const T0: UnixMillis = UnixMillis::from_secs(1_700_000_000);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(offset: Duration) -> UnixMillis {
    T0.saturating_add(offset)
}

/// Runs a delivery that always fails with `outcome` (instantly) until the planner stops, and
/// returns each attempt's offset from the first plus the final decision.
fn timeline(policy: &RetryPolicy, outcome: AttemptOutcome) -> (Vec<Duration>, Decision) {
    let mut state = DeliveryState::new(T0);
    let mut now = T0;
    let mut offsets = Vec::new();
    loop {
        match policy.plan(&mut state, now, &mut NoJitter) {
            Decision::DeliverNow { attempt } => {
                assert_eq!(attempt as usize, offsets.len() + 1);
                offsets.push(now.saturating_duration_since(T0));
                state.record(outcome, now);
            }
            Decision::RetryAt { at, attempt } => {
                assert!(at > now);
                assert_eq!(attempt as usize, offsets.len() + 1);
                now = at;
            }
            other => return (offsets, other),
        }
    }
}

fn exhausted() -> Decision {
    Decision::GiveUp(GiveUpReason::Exhausted)
}

// ---------------------------------------------------------------------------------------------
// Presets: every timeline exactly, without jitter.

#[test]
fn proposal_generator_timeline_is_now_then_1_2_4_8_16_seconds() {
    let p = RetryPolicy::proposal_generator();
    // Seed 001: "immediate retry, backoff (1s, 2s, 4s, 8s, 16s), maximum 5 retries" = 6 attempts.
    let (offsets, end) = timeline(&p, AttemptOutcome::status(500));
    assert_eq!(offsets, [0, 1, 3, 7, 15, 31].map(secs));
    assert_eq!(end, exhausted());
    assert_eq!(p.max_attempts(), 6);
    assert_eq!(p.nominal_delays(), [1, 2, 4, 8, 16].map(secs));
    assert_eq!(p.max_age(), Some(secs(24 * 3600)));
    assert_eq!(p.timeout(), secs(5));
    assert_eq!(p.jitter(), Jitter::None);
    assert_eq!(p.rate_limit(), None);
}

#[test]
fn tasklink_timeline_is_now_5min_30min_2h_12h() {
    let p = RetryPolicy::tasklink();
    let (offsets, end) = timeline(&p, AttemptOutcome::Timeout);
    let m = 60;
    let h = 3600;
    assert_eq!(
        offsets,
        [0, 5 * m, 35 * m, 2 * h + 35 * m, 14 * h + 35 * m].map(secs)
    );
    assert_eq!(end, exhausted());
    assert_eq!(p.nominal_delays(), [5 * m, 30 * m, 2 * h, 12 * h].map(secs));
    assert_eq!(p.timeout(), secs(10));
    assert_eq!(p.max_age(), None);
}

#[test]
fn taskon_timeline_is_four_attempts() {
    let p = RetryPolicy::taskon();
    let (offsets, end) = timeline(&p, AttemptOutcome::ConnectionError);
    assert_eq!(offsets, [0, 10, 70, 370].map(secs));
    assert_eq!(end, exhausted());
    assert_eq!(p.timeout(), secs(30));
}

#[test]
fn task_hub_timeline_multiplies_by_five() {
    let p = RetryPolicy::task_hub();
    let (offsets, end) = timeline(&p, AttemptOutcome::status(502));
    assert_eq!(offsets, [0, 5, 30, 155, 780, 3905].map(secs));
    assert_eq!(end, exhausted());
    assert_eq!(p.timeout(), secs(10));
    assert_eq!(
        p.rate_limit(),
        Some(RateLimit::new(60, secs(60), hookrelay::retry::TASK_HUB_BURST).unwrap())
    );

    let ten = RetryPolicy::task_hub_builder()
        .max_attempts(10)
        .build()
        .unwrap();
    let (offsets, _) = timeline(&ten, AttemptOutcome::status(502));
    assert_eq!(
        offsets,
        [0, 5, 30, 155, 780, 3905, 19_530, 97_655, 488_280, 2_441_405].map(secs)
    );
    let one = RetryPolicy::task_hub_builder()
        .max_attempts(1)
        .build()
        .unwrap();
    assert_eq!(timeline(&one, AttemptOutcome::status(502)).0, [secs(0)]);
}

#[test]
fn task_hub_refuses_attempts_outside_1_to_10() {
    for bad in [0, 11, 100, u32::MAX] {
        assert_eq!(
            RetryPolicy::task_hub_builder().max_attempts(bad).build(),
            Err(ConfigError::MaxAttempts {
                got: bad,
                min: 1,
                max: 10
            })
        );
    }
    // The limit survives a round trip through to_builder.
    assert!(
        RetryPolicy::task_hub()
            .to_builder()
            .max_attempts(11)
            .build()
            .is_err()
    );
    // A custom policy is not limited to 10.
    assert!(RetryPolicy::builder().max_attempts(11).build().is_ok());
}

#[test]
fn standard_webhooks_timeline_without_jitter() {
    let p = RetryPolicy::standard_webhooks();
    let (offsets, end) = timeline(&p, AttemptOutcome::status(503));
    assert_eq!(
        offsets,
        [0, 5, 305, 2_105, 9_305, 27_305, 63_305, 99_305].map(secs)
    );
    assert_eq!(end, exhausted());
    assert_eq!(p.jitter(), Jitter::Proportional { percent: 20 });
    assert_eq!(p.timeout(), secs(15));
}

#[test]
fn custom_list_and_exponential() {
    let list = RetryPolicy::builder()
        .delays([secs(3), secs(9)])
        .max_attempts(4)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    assert_eq!(
        timeline(&list, AttemptOutcome::Other).0,
        [0, 3, 12, 21].map(secs)
    );
    let exp = RetryPolicy::builder()
        .exponential(secs(1), 3.0, secs(20))
        .max_attempts(6)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    // 1, 3, 9, 20 (capped from 27), 20
    assert_eq!(
        timeline(&exp, AttemptOutcome::Other).0,
        [0, 1, 4, 13, 33, 53].map(secs)
    );
}

// ---------------------------------------------------------------------------------------------
// Jitter (CHECKLIST F53).

#[test]
fn standard_webhooks_jitter_stays_within_20_percent_over_10_000_draws_and_is_applied() {
    let p = RetryPolicy::standard_webhooks();
    let mut jitter = SeededJitter::from_os();
    let mut delays = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let mut s = DeliveryState::new(T0);
        s.record(AttemptOutcome::status(500), T0);
        match p.plan(&mut s, T0, &mut jitter) {
            Decision::RetryAt { at, attempt: 2 } => {
                delays.push(at.saturating_duration_since(T0).as_millis() as u64)
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let min = *delays.iter().min().unwrap();
    let max = *delays.iter().max().unwrap();
    assert!(min >= 4_000 && max <= 6_000, "bounds: {min}..={max}");
    // Actually applied, and spread over the window rather than bunched.
    assert!(min < 4_100 && max > 5_900, "spread: {min}..={max}");
    let mut distinct = delays.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() > 1_000, "only {} distinct", distinct.len());
    let mean = delays.iter().sum::<u64>() as f64 / delays.len() as f64;
    assert!((mean - 5_000.0).abs() < 60.0, "mean {mean}");
    let below = delays.iter().filter(|&&d| d < 5_000).count();
    assert!((4_500..5_500).contains(&below), "{below} below nominal");
}

#[test]
fn full_and_equal_jitter_bounds_over_10_000_draws() {
    for (jitter, lo, hi) in [(Jitter::Full, 0, 8_000), (Jitter::Equal, 4_000, 8_000)] {
        let p = RetryPolicy::builder()
            .exponential(secs(1), 2.0, secs(60))
            .jitter(jitter)
            .build()
            .unwrap();
        let mut source = SeededJitter::new(42);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..10_000 {
            let mut s = DeliveryState::resume(T0, 4, T0, AttemptOutcome::Timeout);
            let Decision::RetryAt { at, .. } = p.plan(&mut s, T0, &mut source) else {
                // Full jitter may pick 0: due at once.
                seen.insert(0);
                continue;
            };
            let d = at.saturating_duration_since(T0).as_millis() as u64;
            assert!((lo..=hi).contains(&d), "{jitter:?}: {d}");
            seen.insert(d);
        }
        assert!(seen.len() > 1_000, "{jitter:?}: {} distinct", seen.len());
        assert!(*seen.first().unwrap() < lo + 100 && *seen.last().unwrap() > hi - 100);
    }
}

#[test]
fn planned_time_is_remembered_until_the_next_outcome() {
    let p = RetryPolicy::standard_webhooks();
    let mut jitter = SeededJitter::new(7);
    let mut s = DeliveryState::new(T0);
    s.record(AttemptOutcome::status(500), T0);
    let first = p.plan(&mut s, T0, &mut jitter);
    for _ in 0..10 {
        assert_eq!(p.plan(&mut s, T0, &mut jitter), first);
    }
    let Decision::RetryAt { at, attempt } = first else {
        panic!("{first:?}")
    };
    assert_eq!(s.next_attempt_at(), Some(at));
    assert_eq!(
        p.plan(&mut s, at, &mut jitter),
        Decision::DeliverNow { attempt }
    );
    s.record(AttemptOutcome::status(500), at);
    assert_eq!(s.next_attempt_at(), None);
}

/// A source that always answers the extremes, to check the planner clamps wild sources.
struct Wild(u64);
impl JitterSource for Wild {
    fn next_u64(&mut self) -> u64 {
        self.0
    }
    fn pick(&mut self, _: hookrelay::retry::JitterWindow) -> Duration {
        Duration::from_millis(self.0)
    }
}

#[test]
fn a_source_cannot_escape_the_window() {
    let p = RetryPolicy::standard_webhooks();
    for (wild, expect) in [(0, 4_000), (u64::MAX, 6_000)] {
        let mut s = DeliveryState::new(T0);
        s.record(AttemptOutcome::status(500), T0);
        assert_eq!(
            p.plan(&mut s, T0, &mut Wild(wild)),
            Decision::RetryAt {
                at: at(Duration::from_millis(expect)),
                attempt: 2
            }
        );
    }
}

proptest! {
    #[test]
    fn jitter_bounds_hold_for_any_delay_and_seed(
        seed in any::<u64>(),
        nominal_ms in 0u64..=10_000_000_000,
        percent in 0u8..=100,
        mode in 0u8..4,
    ) {
        let jitter = match mode {
            0 => Jitter::None,
            1 => Jitter::Full,
            2 => Jitter::Equal,
            _ => Jitter::Proportional { percent },
        };
        let p = RetryPolicy::builder()
            .delays([Duration::from_millis(nominal_ms)])
            .jitter(jitter)
            .build()
            .unwrap();
        let (lo, hi) = match jitter {
            Jitter::None => (nominal_ms, nominal_ms),
            Jitter::Full => (0, nominal_ms),
            Jitter::Equal => (nominal_ms - nominal_ms / 2, nominal_ms),
            _ => {
                let span = nominal_ms * u64::from(percent) / 100;
                (nominal_ms - span, nominal_ms + span)
            }
        };
        let mut source = SeededJitter::new(seed);
        for _ in 0..16 {
            let mut s = DeliveryState::new(T0);
            s.record(AttemptOutcome::Timeout, T0);
            let d = match p.plan(&mut s, T0, &mut source) {
                Decision::RetryAt { at, .. } => at.saturating_duration_since(T0).as_millis() as u64,
                Decision::DeliverNow { .. } => 0,
                other => panic!("{other:?}"),
            };
            prop_assert!(lo <= d && d <= hi, "{jitter:?} {d} not in {lo}..={hi}");
        }
    }

    #[test]
    fn retry_after_parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..80)) {
        let _ = RetryAfter::parse(&bytes);
    }

    #[test]
    fn retry_after_digits_round_trip(n in 0u64..=RetryAfter::MAX_SECONDS) {
        prop_assert_eq!(RetryAfter::parse(n.to_string().as_bytes()), Ok(RetryAfter::Delay(secs(n))));
    }
}

// ---------------------------------------------------------------------------------------------
// Retry-After (CHECKLIST F52).

#[test]
fn retry_after_parsing_table() {
    use RetryAfterError::*;
    let date = RetryAfter::At(UnixMillis::from_secs(784_111_777));
    let table: &[(&[u8], Result<RetryAfter, RetryAfterError>)] = &[
        (b"120", Ok(RetryAfter::Delay(secs(120)))),
        (b" 120\t", Ok(RetryAfter::Delay(secs(120)))),
        (b"0", Ok(RetryAfter::Delay(secs(0)))),
        (b"007", Ok(RetryAfter::Delay(secs(7)))),
        (b"2147483648", Ok(RetryAfter::Delay(secs(1 << 31)))),
        (b"2147483649", Err(TooLarge)),
        (b"18446744073709551616", Err(TooLarge)),
        (b"99999999999999999999999999999999999999", Err(TooLarge)),
        (b"", Err(Empty)),
        (b"  \t ", Err(Empty)),
        (b"-5", Err(Invalid)),
        (b"-0", Err(Invalid)),
        (b"+5", Err(Invalid)),
        (b"1.5", Err(Invalid)),
        (b"120.0", Err(Invalid)),
        (b"1e3", Err(Invalid)),
        (b"0x10", Err(Invalid)),
        (b"12 0", Err(Invalid)),
        (b"120 seconds", Err(Invalid)),
        (b"soon", Err(Invalid)),
        (b"\xff\xfe", Err(Invalid)),
        (b"\xd9\xa1\xd9\xa2", Err(Invalid)), // Arabic-Indic digits
        (b"Sun, 06 Nov 1994 08:49:37 GMT", Ok(date)),
        (b"Sunday, 06-Nov-94 08:49:37 GMT", Ok(date)),
        (b"Sun Nov  6 08:49:37 1994", Ok(date)),
        (b"Sun, 06 Nov 1994 08:49:37", Err(Invalid)),
        (b"Sun, 32 Nov 1994 08:49:37 GMT", Err(Invalid)),
        (b"2026-11-23T08:00:00Z", Err(Invalid)),
    ];
    for (input, expected) in table {
        assert_eq!(
            &RetryAfter::parse(input),
            expected,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }
    let long = vec![b'a'; 100_000];
    assert_eq!(RetryAfter::parse(&long), Err(Invalid));
    let long_digits = vec![b'9'; 100_000];
    assert_eq!(RetryAfter::parse(&long_digits), Err(TooLarge));
    assert_eq!("60".parse::<RetryAfter>(), Ok(RetryAfter::Delay(secs(60))));
    assert_eq!(
        TooLarge.to_string(),
        "retry-after delay is too large",
        "lowercase messages"
    );
}

/// Plans the retry after one `status` answer carrying `retry_after`, received at T0.
fn after_one(policy: &RetryPolicy, status: u16, retry_after: &[u8]) -> Decision {
    let mut s = DeliveryState::new(T0);
    s.record(AttemptOutcome::from_response(status, Some(retry_after)), T0);
    policy.plan(&mut s, T0, &mut NoJitter)
}

fn retry_in(d: Duration) -> Decision {
    Decision::RetryAt {
        at: at(d),
        attempt: 2,
    }
}

#[test]
fn retry_after_delays_the_next_attempt_clamped() {
    let p = RetryPolicy::task_hub(); // scheduled first retry: 5 s
    let http_date = |offset: i64| {
        let t = T0.to_system_time();
        let t = if offset >= 0 {
            t + secs(offset as u64)
        } else {
            t - secs(offset.unsigned_abs())
        };
        httpdate_fmt(t)
    };
    let cases: Vec<(u16, Vec<u8>, Decision)> = vec![
        (429, b"30".to_vec(), retry_in(secs(30))),
        (503, b"30".to_vec(), retry_in(secs(30))),
        // Shorter than the schedule: the schedule wins.
        (429, b"1".to_vec(), retry_in(secs(5))),
        (429, b"0".to_vec(), retry_in(secs(5))),
        // Longer than the cap (1 h by default): clamped.
        (429, b"7200".to_vec(), retry_in(secs(3600))),
        (503, b"2147483648".to_vec(), retry_in(secs(3600))),
        // Junk is ignored: the schedule applies.
        (429, b"-30".to_vec(), retry_in(secs(5))),
        (429, b"1.5".to_vec(), retry_in(secs(5))),
        (429, b"99999999999999999999".to_vec(), retry_in(secs(5))),
        (429, b"tomorrow".to_vec(), retry_in(secs(5))),
        // HTTP-dates: future honoured, past means "now" so the schedule wins.
        (429, http_date(600), retry_in(secs(600))),
        (503, http_date(86_400), retry_in(secs(3600))),
        (429, http_date(-600), retry_in(secs(5))),
        // Only 429 and 503 carry Retry-After semantics.
        (500, b"600".to_vec(), retry_in(secs(5))),
        (502, b"600".to_vec(), retry_in(secs(5))),
    ];
    for (status, header, expected) in cases {
        assert_eq!(
            after_one(&p, status, &header),
            expected,
            "{status} Retry-After: {}",
            String::from_utf8_lossy(&header)
        );
    }
}

fn httpdate_fmt(t: std::time::SystemTime) -> Vec<u8> {
    // An independent IMF-fixdate formatter would be nicer; the civil-date arithmetic below is
    // Howard Hinnant's algorithm, checked against the RFC 9110 example.
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let wd = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][(days % 7) as usize];
    let mon = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][(m - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
    .into_bytes()
}

#[test]
fn the_test_date_formatter_matches_rfc_9110() {
    let t = UnixMillis::from_secs(784_111_777).to_system_time();
    assert_eq!(httpdate_fmt(t), b"Sun, 06 Nov 1994 08:49:37 GMT");
}

#[test]
fn retry_after_cap_is_configurable_and_zero_ignores_it() {
    let ten_min = RetryPolicy::task_hub()
        .to_builder()
        .retry_after_cap(secs(600))
        .build()
        .unwrap();
    assert_eq!(after_one(&ten_min, 429, b"3600"), retry_in(secs(600)));
    let off = RetryPolicy::task_hub()
        .to_builder()
        .retry_after_cap(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(after_one(&off, 429, b"3600"), retry_in(secs(5)));
}

#[test]
fn retry_after_past_the_maximum_age_gives_up() {
    let p = RetryPolicy::builder()
        .delays([secs(1)])
        .jitter(Jitter::None)
        .max_age(secs(600))
        .build()
        .unwrap();
    assert_eq!(
        after_one(&p, 429, b"900"),
        Decision::GiveUp(GiveUpReason::Expired)
    );
    assert_eq!(after_one(&p, 429, b"600"), retry_in(secs(600)));
}

// ---------------------------------------------------------------------------------------------
// Classification and giving up.

fn after(policy: &RetryPolicy, outcome: AttemptOutcome) -> Decision {
    let mut s = DeliveryState::new(T0);
    s.record(outcome, T0);
    policy.plan(&mut s, T0, &mut NoJitter)
}

#[test]
fn gone_disables_the_endpoint() {
    let p = RetryPolicy::standard_webhooks();
    assert_eq!(
        after(&p, AttemptOutcome::status(410)),
        Decision::DisableEndpoint
    );
    let mut health = AutoDisable::default();
    assert_eq!(
        health.observe(p.classifier().classify_status(410), T0),
        HealthChange::Disabled(DisableReason::Gone)
    );
    assert!(health.is_disabled());
}

#[test]
fn success_redirects_and_errors() {
    let p = RetryPolicy::proposal_generator();
    for ok in [200, 201, 202, 204, 299] {
        assert_eq!(after(&p, AttemptOutcome::status(ok)), Decision::Delivered);
    }
    let retry = retry_in(secs(1));
    for failure in [
        AttemptOutcome::status(301),
        AttemptOutcome::status(302),
        AttemptOutcome::status(307),
        AttemptOutcome::status(308),
        AttemptOutcome::status(400),
        AttemptOutcome::status(401),
        AttemptOutcome::status(404),
        AttemptOutcome::status(408),
        AttemptOutcome::status(429),
        AttemptOutcome::status(500),
        AttemptOutcome::status(599),
        AttemptOutcome::status(0),
        AttemptOutcome::status(100),
        AttemptOutcome::status(999),
        AttemptOutcome::Timeout,
        AttemptOutcome::ConnectionError,
        AttemptOutcome::Other,
    ] {
        assert_eq!(after(&p, failure), retry, "{failure:?}");
    }
}

#[test]
fn client_errors_final_when_configured() {
    let p = RetryPolicy::builder()
        .client_errors(ClientErrors::Final)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let not_retryable = Decision::GiveUp(GiveUpReason::NotRetryable);
    for code in [400, 401, 403, 404, 422] {
        assert_eq!(after(&p, AttemptOutcome::status(code)), not_retryable);
    }
    assert_eq!(after(&p, AttemptOutcome::status(408)), retry_in(secs(1)));
    assert_eq!(after(&p, AttemptOutcome::status(429)), retry_in(secs(1)));
    assert_eq!(after(&p, AttemptOutcome::status(500)), retry_in(secs(1)));
    assert_eq!(
        after(&p, AttemptOutcome::status(410)),
        Decision::DisableEndpoint
    );
    // Per-status overrides.
    let q = p
        .to_builder()
        .classify_status(404, OutcomeClass::Retryable)
        .classify_status(501, OutcomeClass::Final)
        .build()
        .unwrap();
    assert_eq!(after(&q, AttemptOutcome::status(404)), retry_in(secs(1)));
    assert_eq!(after(&q, AttemptOutcome::status(501)), not_retryable);
}

#[test]
fn max_age_gives_up() {
    let p = RetryPolicy::proposal_generator();
    let day = secs(24 * 3600);
    let expired = Decision::GiveUp(GiveUpReason::Expired);
    // Never attempted, now older than 24 h.
    let mut old = DeliveryState::new(T0);
    assert_eq!(
        p.plan(&mut old, at(day + Duration::from_millis(1)), &mut NoJitter),
        expired
    );
    // Exactly 24 h old is not older than 24 h.
    assert_eq!(
        p.plan(&mut old, at(day), &mut NoJitter),
        Decision::DeliverNow { attempt: 1 }
    );
    // A retry that would land past the deadline is not scheduled.
    let mut late = DeliveryState::new(T0);
    late.record(
        AttemptOutcome::status(500),
        at(day - Duration::from_millis(500)),
    );
    assert_eq!(p.plan(&mut late, at(day), &mut NoJitter), expired);
    // A planned retry whose sender came back too late.
    let mut s = DeliveryState::new(T0);
    s.record(AttemptOutcome::status(500), T0);
    assert_eq!(p.plan(&mut s, T0, &mut NoJitter), retry_in(secs(1)));
    assert_eq!(p.plan(&mut s, at(day + secs(1)), &mut NoJitter), expired);
    // Delivered stays delivered however old.
    let mut done = DeliveryState::new(T0);
    done.record(AttemptOutcome::status(200), T0);
    assert_eq!(
        p.plan(&mut done, at(day * 30), &mut NoJitter),
        Decision::Delivered
    );
}

#[test]
fn decisions_report_finality() {
    assert!(Decision::Delivered.is_final());
    assert!(Decision::DisableEndpoint.is_final());
    assert!(exhausted().is_final());
    assert!(!Decision::DeliverNow { attempt: 1 }.is_final());
}

// ---------------------------------------------------------------------------------------------
// Endpoint health (CHECKLIST E51 at the planner level).

#[test]
fn auto_disable_after_the_window_and_success_resets_the_clock() {
    let day = secs(86_400);
    let mut h = AutoDisable::default();
    assert_eq!(AutoDisable::DEFAULT_WINDOW, day * 5);
    assert_eq!(
        h.observe(OutcomeClass::Retryable, T0),
        HealthChange::Unchanged
    );
    assert_eq!(
        h.observe(OutcomeClass::Final, at(day * 4)),
        HealthChange::Unchanged
    );
    // One success resets the clock.
    assert_eq!(
        h.observe(OutcomeClass::Delivered, at(day * 4 + secs(1))),
        HealthChange::Recovered
    );
    assert_eq!(h.failing_since(), None);
    let t1 = at(day * 4 + secs(2));
    assert_eq!(
        h.observe(OutcomeClass::Retryable, t1),
        HealthChange::Unchanged
    );
    let just_before = t1.saturating_add(day * 5 - Duration::from_millis(1));
    assert_eq!(
        h.observe(OutcomeClass::Retryable, just_before),
        HealthChange::Unchanged
    );
    // Reported once, at the transition, with when the failures began.
    assert_eq!(
        h.observe(OutcomeClass::Retryable, t1.saturating_add(day * 5)),
        HealthChange::Disabled(DisableReason::FailingSince(t1))
    );
    assert_eq!(
        h.observe(OutcomeClass::Retryable, t1.saturating_add(day * 6)),
        HealthChange::Unchanged
    );
    assert_eq!(
        h.observe(OutcomeClass::Delivered, t1.saturating_add(day * 6)),
        HealthChange::Unchanged
    );
    assert_eq!(h.disabled(), Some(DisableReason::FailingSince(t1)));
    h.enable();
    assert!(!h.is_disabled());
    assert_eq!(h.failing_since(), None);
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::builder()
        .failure_percent(50)
        .min_requests(4)
        .window(secs(60))
        .cool_down(secs(30))
        .build()
        .unwrap()
}

#[test]
fn breaker_opens_pauses_probes_and_closes() {
    let mut b = breaker();
    // Below the minimum number of requests: stays closed even at 100 % failures.
    for _ in 0..3 {
        assert_eq!(b.check(T0), Permit::Allow);
        b.record_failure(T0);
    }
    assert_eq!(b.state(), BreakerState::Closed);
    // Fourth failure: 4/4 ≥ 50 %.
    b.record_failure(T0);
    let until = at(secs(30));
    assert_eq!(b.state(), BreakerState::Open { until });
    // Paused, not dropped: the caller is told when to ask again.
    assert_eq!(b.check(at(secs(29))), Permit::PausedUntil(until));
    // Cool-down over: exactly one probe.
    assert_eq!(b.check(until), Permit::Probe);
    assert_eq!(
        b.state(),
        BreakerState::HalfOpen {
            probe_sent_at: until
        }
    );
    assert_eq!(b.check(until), Permit::PausedUntil(at(secs(60))));
    // The probe fails: open again for another cool-down.
    b.record_failure(at(secs(31)));
    assert_eq!(
        b.state(),
        BreakerState::Open {
            until: at(secs(61))
        }
    );
    assert_eq!(b.check(at(secs(60))), Permit::PausedUntil(at(secs(61))));
    assert_eq!(b.check(at(secs(61))), Permit::Probe);
    // The probe's result is lost: another probe after a further cool-down.
    assert_eq!(b.check(at(secs(90))), Permit::PausedUntil(at(secs(91))));
    assert_eq!(b.check(at(secs(91))), Permit::Probe);
    // The probe succeeds: closed, with a clean window.
    b.record_success(at(secs(92)));
    assert_eq!(b.state(), BreakerState::Closed);
    assert_eq!(b.check(at(secs(92))), Permit::Allow);
    for _ in 0..3 {
        b.record_failure(at(secs(92)));
    }
    assert_eq!(b.state(), BreakerState::Closed);
}

#[test]
fn breaker_ratio_and_rolling_window() {
    let mut b = breaker();
    // 2 failures out of 5 (40 %) stays closed.
    for _ in 0..3 {
        b.record_success(T0);
    }
    b.record_failure(T0);
    b.record_failure(T0);
    assert_eq!(b.state(), BreakerState::Closed);
    // A third failure makes 3/6 = 50 %: open.
    b.observe(OutcomeClass::Retryable, T0);
    assert!(matches!(b.state(), BreakerState::Open { .. }));

    // Failures that aged out of the window do not count.
    let mut b = breaker();
    for _ in 0..3 {
        b.record_failure(T0);
    }
    b.record_failure(at(secs(61)));
    assert_eq!(b.state(), BreakerState::Closed);
    // Late successes while open change nothing.
    let mut b = breaker();
    for _ in 0..4 {
        b.record_failure(T0);
    }
    b.observe(OutcomeClass::Delivered, at(secs(1)));
    assert!(matches!(b.state(), BreakerState::Open { .. }));
}

#[test]
fn breaker_builder_validates() {
    let b = CircuitBreaker::builder;
    assert_eq!(
        b().failure_percent(0).build(),
        Err(ConfigError::FailurePercent(0))
    );
    assert_eq!(
        b().failure_percent(101).build(),
        Err(ConfigError::FailurePercent(101))
    );
    assert!(b().window(Duration::from_millis(9)).build().is_err());
    assert!(b().min_requests(0).build().is_err());
    assert!(b().cool_down(Duration::ZERO).build().is_err());
    assert!(b().build().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Rate limiting (CHECKLIST F54 at the planner level).

#[test]
fn backlog_after_an_outage_is_paced_not_burst() {
    let p = RetryPolicy::task_hub();
    // Strict pacing (burst 1): what `RateLimit::per_minute` gives an endpoint that asks for it.
    // (The task-hub preset itself allows a burst of 10: see the next test.)
    let limit = RateLimit::per_minute(60).unwrap();
    // 120 deliveries piled up during an outage, all due now.
    let mut backlog: Vec<DeliveryState> = (0..120).map(|_| DeliveryState::new(T0)).collect();
    let mut bucket = TokenBucket::new(limit, T0);
    let mut now = T0;
    let mut sent_at = Vec::new();
    for delivery in &mut backlog {
        assert!(matches!(
            p.plan(delivery, now, &mut NoJitter),
            Decision::DeliverNow { .. }
        ));
        loop {
            match bucket.try_acquire(now) {
                Acquire::Ready => break,
                Acquire::Wait(d) => {
                    assert!(d > Duration::ZERO);
                    now = now.saturating_add(d);
                }
            }
        }
        sent_at.push(now);
        delivery.record(AttemptOutcome::status(200), now);
        assert_eq!(p.plan(delivery, now, &mut NoJitter), Decision::Delivered);
    }
    // One per second: the whole backlog takes 119 s, never two sends within a second.
    assert_eq!(
        sent_at.last().unwrap().saturating_duration_since(T0),
        secs(119)
    );
    for pair in sent_at.windows(2) {
        assert_eq!(pair[1].saturating_duration_since(pair[0]), secs(1));
    }
    // No 60-second window holds more than 60 sends.
    for (i, start) in sent_at.iter().enumerate() {
        let end = start.saturating_add(secs(60));
        let n = sent_at[i..].iter().take_while(|&&t| t < end).count();
        assert!(n <= 60);
    }
}

/// 004's "60 requests per minute per endpoint" is a per-minute budget: the task-hub preset
/// admits ten events published together at once, and still sends 60 a minute over a backlog.
#[test]
fn task_hub_preset_admits_ten_at_once_and_sustains_60_a_minute() {
    let limit = RetryPolicy::task_hub().rate_limit().unwrap();
    assert_eq!(
        (limit.requests(), limit.interval(), limit.burst()),
        (60, secs(60), 10)
    );
    let mut bucket = TokenBucket::new(limit, T0);
    // Ten published together: all admitted at the same instant.
    for i in 0..10 {
        assert_eq!(bucket.try_acquire(T0), Acquire::Ready, "event {i}");
    }
    // The eleventh waits a second; then one a second.
    assert_eq!(bucket.try_acquire(T0), Acquire::Wait(secs(1)));

    // Sustained: a backlog of 130 due at T0 drains at one a second after the burst.
    let mut bucket = TokenBucket::new(limit, T0);
    let mut now = T0;
    let mut sent_at = Vec::new();
    for _ in 0..130 {
        loop {
            match bucket.try_acquire(now) {
                Acquire::Ready => break,
                Acquire::Wait(d) => now = now.saturating_add(d),
            }
        }
        sent_at.push(now);
    }
    assert!(sent_at[..10].iter().all(|&t| t == T0));
    for pair in sent_at[10..].windows(2) {
        assert_eq!(pair[1].saturating_duration_since(pair[0]), secs(1));
    }
    assert_eq!(sent_at[129].saturating_duration_since(T0), secs(120));
    // Any 60-second span holds at most 60 + burst - 1 = 69 sends, and a span starting after
    // the burst exactly 60: the sustained rate is 60 a minute.
    let in_span = |start: UnixMillis| {
        let end = start.saturating_add(secs(60));
        sent_at.iter().filter(|&&t| t >= start && t < end).count()
    };
    assert_eq!(sent_at.iter().map(|&t| in_span(t)).max(), Some(69));
    assert_eq!(in_span(at(secs(30))), 60);
}

#[test]
fn token_bucket_with_burst_under_a_manual_clock() {
    let limit = RateLimit::new(60, secs(60), 10).unwrap();
    let mut b = TokenBucket::new(limit, T0);
    for _ in 0..10 {
        assert_eq!(b.try_acquire(T0), Acquire::Ready);
    }
    assert_eq!(b.try_acquire(T0), Acquire::Wait(secs(1)));
    assert_eq!(
        b.try_acquire(at(Duration::from_millis(400))),
        Acquire::Wait(Duration::from_millis(600))
    );
    assert_eq!(b.try_acquire(at(secs(1))), Acquire::Ready);
    // A long idle period refills only up to the burst.
    let later = at(secs(3600));
    for _ in 0..10 {
        assert_eq!(b.try_acquire(later), Acquire::Ready);
    }
    assert!(matches!(b.try_acquire(later), Acquire::Wait(_)));
    assert_eq!(
        RateLimit::new(0, secs(60), 1),
        Err(ConfigError::ZeroCount("requests per interval"))
    );
}

// ---------------------------------------------------------------------------------------------
// Type properties.

#[test]
fn public_types_are_send_sync_debug_clone() {
    fn check<T: Send + Sync + std::fmt::Debug + Clone>() {}
    check::<RetryPolicy>();
    check::<hookrelay::retry::RetryPolicyBuilder>();
    check::<DeliveryState>();
    check::<Decision>();
    check::<GiveUpReason>();
    check::<AttemptOutcome>();
    check::<OutcomeClass>();
    check::<hookrelay::retry::Classifier>();
    check::<ClientErrors>();
    check::<RetryAfter>();
    check::<RetryAfterError>();
    check::<Jitter>();
    check::<hookrelay::retry::JitterWindow>();
    check::<NoJitter>();
    check::<SeededJitter>();
    check::<AutoDisable>();
    check::<CircuitBreaker>();
    check::<hookrelay::retry::CircuitBreakerBuilder>();
    check::<BreakerState>();
    check::<Permit>();
    check::<HealthChange>();
    check::<DisableReason>();
    check::<RateLimit>();
    check::<TokenBucket>();
    check::<Acquire>();
    check::<ConfigError>();
    check::<UnixMillis>();
    fn error<T: std::error::Error + Send + Sync + 'static>() {}
    error::<ConfigError>();
    error::<RetryAfterError>();
}

/// `DeadReason::NotRetryable`'s docs and the default classification agree: by default nothing
/// is final (every status but 2xx and 410 is retried, as are transport failures); with
/// `ClientErrors::Final`, exactly the 4xx but 408, 410 and 429 are.
#[test]
fn not_retryable_is_exactly_what_the_docs_say() {
    use hookrelay::retry::Classifier;
    let default = Classifier::new();
    let strict = Classifier::new().with_client_errors(ClientErrors::Final);
    for code in 0..=1000u16 {
        let documented_default = match code {
            200..=299 => OutcomeClass::Delivered,
            410 => OutcomeClass::DisableEndpoint,
            _ => OutcomeClass::Retryable,
        };
        assert_eq!(default.classify_status(code), documented_default, "{code}");
        let documented_strict = match code {
            200..=299 => OutcomeClass::Delivered,
            410 => OutcomeClass::DisableEndpoint,
            408 | 429 => OutcomeClass::Retryable,
            400..=499 => OutcomeClass::Final,
            _ => OutcomeClass::Retryable,
        };
        assert_eq!(strict.classify_status(code), documented_strict, "{code}");
    }
    for outcome in [
        AttemptOutcome::Timeout,
        AttemptOutcome::ConnectionError,
        AttemptOutcome::Other,
    ] {
        assert_eq!(default.classify(&outcome), OutcomeClass::Retryable);
        assert_eq!(strict.classify(&outcome), OutcomeClass::Retryable);
    }

    // Through the planner: every preset retries a 400 or 401 (nothing is NotRetryable by
    // default); with ClientErrors::Final a 400 gives up as NotRetryable at once.
    for policy in [
        RetryPolicy::proposal_generator(),
        RetryPolicy::tasklink(),
        RetryPolicy::taskon(),
        RetryPolicy::task_hub(),
        RetryPolicy::standard_webhooks(),
    ] {
        for code in [400, 401, 403, 404, 422] {
            let mut state = DeliveryState::new(T0);
            state.record(AttemptOutcome::status(code), T0);
            assert!(
                !matches!(
                    policy.plan(&mut state, T0, &mut NoJitter),
                    Decision::GiveUp(_)
                ),
                "{code} is retried by default"
            );
        }
    }
    let strict_policy = RetryPolicy::builder()
        .client_errors(ClientErrors::Final)
        .build()
        .unwrap();
    let mut state = DeliveryState::new(T0);
    state.record(AttemptOutcome::status(400), T0);
    let decision = strict_policy.plan(&mut state, T0, &mut NoJitter);
    assert_eq!(decision, Decision::GiveUp(GiveUpReason::NotRetryable));
    #[cfg(feature = "send")]
    {
        use hookrelay::send::store::{DeadReason, NextStep};
        assert_eq!(
            NextStep::give_up(GiveUpReason::NotRetryable),
            NextStep::DeadLetter(DeadReason::NotRetryable)
        );
    }
}
