//! Planning what comes after an attempt: a pure function of the attempt's result, the claim's
//! facts, the endpoint's retry policy, `now` and a jitter source.
//!
//! No store, no clock reads, no dispatcher state: the caller applies the pacing instruction
//! to the endpoint's gate, feeds the outcome class to the health trackers and records the
//! [`AttemptRecord`].

use std::time::Duration;

use bytes::Bytes;

use super::super::store::{AttemptError, AttemptRecord, ClaimedDelivery, DeadReason, NextStep};
use super::super::{TransportError, TransportResponse};
use crate::retry::{
    AttemptOutcome, Decision, DeliveryState, JitterSource, OutcomeClass, RateLimitReset,
    RetryAfter, RetryPolicy, UnixMillis,
};

/// How long a delivery whose endpoint vanished mid-attempt waits before it is tried again.
pub(crate) const VANISHED_RETRY: Duration = Duration::from_secs(60);

/// An attempt that ran: the claim it was made under and what came back.
#[derive(Debug)]
pub(crate) struct Attempted {
    pub(crate) claim: ClaimedDelivery,
    pub(crate) attempt: u32,
    pub(crate) started_at: UnixMillis,
    pub(crate) latency: Duration,
    /// The request headers sent, secrets redacted ([`OutboundRequest::logged_headers`](super::super::OutboundRequest::logged_headers)).
    pub(crate) request_headers: Vec<(String, String)>,
    pub(crate) result: Result<TransportResponse, TransportError>,
}

/// What planning decided.
#[derive(Debug)]
pub(crate) struct Planned {
    /// The result to record, with what happens next.
    pub(crate) record: AttemptRecord,
    /// The receiver paces the endpoint: hold all of its deliveries until then.
    pub(crate) paced_until: Option<UnixMillis>,
    /// The outcome class for the endpoint's health trackers, when the attempt counts for
    /// them (charged attempts and deliveries).
    pub(crate) health: Option<OutcomeClass>,
}

/// The one mapping from a transport failure to the outcome the retry policy classifies and
/// the error the attempt log keeps; the handshake uses it too.
pub(crate) fn transport_failure(error: &TransportError) -> (AttemptOutcome, AttemptError) {
    match error {
        TransportError::Timeout => (AttemptOutcome::Timeout, AttemptError::Timeout),
        TransportError::Connection => (AttemptOutcome::ConnectionError, AttemptError::Connection),
        TransportError::Refused(why) => (AttemptOutcome::Other, AttemptError::Refused(*why)),
        _ => (AttemptOutcome::Other, AttemptError::Other),
    }
}

fn outcome_of(
    result: &Result<TransportResponse, TransportError>,
) -> (AttemptOutcome, Option<AttemptError>) {
    match result {
        Ok(response) => (
            AttemptOutcome::from_response(
                response.status,
                response.header("retry-after").map(str::as_bytes),
            ),
            None,
        ),
        Err(e) => {
            let (outcome, error) = transport_failure(e);
            (outcome, Some(error))
        }
    }
}

/// When the receiver asked us to wait: `Retry-After` on a `429`, or `X-RateLimit-Remaining:
/// 0` with [`X-RateLimit-Reset`](RateLimitReset) on any answer. Clamped to `cap` from `now`.
pub(crate) fn paced_until(
    response: &TransportResponse,
    now: UnixMillis,
    cap: Duration,
) -> Option<UnixMillis> {
    let latest = now.saturating_add(cap);
    if response.status == 429
        && let Some(value) = response.header("retry-after")
        && let Ok(after) = RetryAfter::parse(value.as_bytes())
    {
        return Some(after.not_before(now).clamp(now, latest));
    }
    let exhausted = response
        .header("x-ratelimit-remaining")
        .is_some_and(|v| v.trim() == "0");
    if !exhausted {
        return None;
    }
    let reset = RateLimitReset::parse(response.header("x-ratelimit-reset")?.as_bytes()).ok()?;
    Some(reset.reset_at(now).clamp(now, latest))
}

/// What comes after an attempt. `policy` is the endpoint's retry policy, `None` when the
/// endpoint vanished mid-attempt (the result is kept: delivered on a 2xx, else retried after
/// a minute).
pub(crate) fn plan<J: JitterSource + ?Sized>(
    done: Attempted,
    policy: Option<&RetryPolicy>,
    now: UnixMillis,
    jitter: &mut J,
) -> Planned {
    let (outcome, error) = outcome_of(&done.result);
    let Some(policy) = policy else {
        let delivered = matches!(&done.result, Ok(r) if (200..300).contains(&r.status));
        let next = if delivered {
            NextStep::Delivered
        } else {
            NextStep::RetryAt(now.saturating_add(VANISHED_RETRY))
        };
        return Planned {
            record: into_record(done, error, next, true),
            paced_until: None,
            health: None,
        };
    };
    let class = policy.classifier().classify(&outcome);
    let counted = |record: AttemptRecord, paced_until| Planned {
        health: (record.charged || class == OutcomeClass::Delivered).then_some(class),
        record,
        paced_until,
    };
    if matches!(error, Some(AttemptError::Refused(_))) {
        // A refused destination is not retried: the URL must change first.
        let next = NextStep::DeadLetter(DeadReason::Refused);
        return counted(into_record(done, error, next, true), None);
    }
    let paced = match &done.result {
        Ok(response) => paced_until(response, now, policy.retry_after_cap()),
        Err(_) => None,
    };
    if let (Some(until), Ok(response)) = (paced, &done.result)
        && response.status == 429
    {
        // Waiting as asked is not a failure: the attempt is logged, not charged.
        let record = into_record(done, error, NextStep::RetryAt(until), false);
        return counted(record, paced);
    }
    let mut state = DeliveryState::resume(
        done.claim.created_at,
        done.claim.charged,
        done.started_at,
        AttemptOutcome::Other,
    );
    state.record(outcome, now);
    let next = match policy.plan(&mut state, now, jitter) {
        Decision::DeliverNow { .. } => NextStep::RetryAt(now),
        Decision::RetryAt { at, .. } => NextStep::RetryAt(at),
        Decision::Delivered => NextStep::Delivered,
        Decision::GiveUp(reason) => NextStep::give_up(reason),
        Decision::DisableEndpoint => NextStep::DisableEndpoint,
    };
    counted(into_record(done, error, next, true), paced)
}

/// The record of a claim that got no attempt (expired) or whose attempt could not be made
/// (unsignable).
pub(crate) fn no_response(
    claim: ClaimedDelivery,
    attempt: u32,
    now: UnixMillis,
    error: Option<AttemptError>,
    next: NextStep,
) -> AttemptRecord {
    AttemptRecord {
        delivery: claim.delivery,
        token: claim.token,
        attempt,
        started_at: now,
        latency: Duration::ZERO,
        status: None,
        error,
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        response_body: Bytes::new(),
        charged: attempt > 0,
        manual: claim.manual && attempt > 0,
        next,
    }
}

fn into_record(
    done: Attempted,
    error: Option<AttemptError>,
    next: NextStep,
    charged: bool,
) -> AttemptRecord {
    let (status, response_headers, response_body) = match done.result {
        Ok(response) => (Some(response.status), response.headers, response.body),
        Err(_) => (None, Vec::new(), Bytes::new()),
    };
    AttemptRecord {
        delivery: done.claim.delivery,
        token: done.claim.token,
        attempt: done.attempt,
        started_at: done.started_at,
        latency: done.latency,
        status,
        error,
        request_headers: done.request_headers,
        response_headers,
        response_body,
        charged,
        manual: done.claim.manual,
        next,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::{GiveUpReason, NoJitter};
    use crate::send::store::{DeliveryKind, FencingToken};
    use crate::send::{DeliveryId, EndpointId, MessageId, Refusal};

    const NOW: UnixMillis = UnixMillis::from_secs(1_700_000_000);

    fn claim(attempts: u32) -> ClaimedDelivery {
        ClaimedDelivery {
            delivery: DeliveryId::generate(),
            message: MessageId::generate(),
            endpoint: EndpointId::generate(),
            event_id: "evt_1".into(),
            event_type: "task.created".into(),
            body: Bytes::from_static(b"{}"),
            created_at: NOW,
            attempts,
            charged: attempts,
            kind: DeliveryKind::Event,
            manual: false,
            token: FencingToken(7),
        }
    }

    fn response(status: u16, headers: &[(&str, &str)]) -> TransportResponse {
        TransportResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            body: Bytes::new(),
        }
    }

    /// Attempt number `attempts + 1`, started and answered at `NOW`.
    fn attempted(attempts: u32, result: Result<TransportResponse, TransportError>) -> Attempted {
        Attempted {
            claim: claim(attempts),
            attempt: attempts + 1,
            started_at: NOW,
            latency: Duration::from_millis(12),
            request_headers: vec![("content-type".into(), "application/json".into())],
            result,
        }
    }

    fn policy() -> RetryPolicy {
        // 1, 2, 4, 8, 16 s; 6 attempts; no jitter by default.
        RetryPolicy::proposal_generator()
    }

    fn run(done: Attempted, policy: Option<&RetryPolicy>) -> Planned {
        plan(done, policy, NOW, &mut NoJitter)
    }

    #[test]
    fn a_2xx_is_delivered() {
        let planned = run(attempted(0, Ok(response(200, &[]))), Some(&policy()));
        assert_eq!(planned.record.next, NextStep::Delivered);
        assert_eq!(planned.record.status, Some(200));
        assert_eq!(planned.record.error, None);
        assert_eq!(planned.record.attempt, 1);
        assert_eq!(planned.record.token, FencingToken(7));
        assert_eq!(
            planned.record.request_headers,
            vec![("content-type".to_owned(), "application/json".to_owned())],
            "the headers sent are logged"
        );
        assert!(planned.record.charged);
        assert_eq!(planned.paced_until, None);
        assert_eq!(planned.health, Some(OutcomeClass::Delivered));
    }

    #[test]
    fn a_5xx_is_retried_at_the_policys_time() {
        // Second attempt fails: the schedule's second delay (2 s) follows.
        let planned = run(attempted(1, Ok(response(503, &[]))), Some(&policy()));
        assert_eq!(
            planned.record.next,
            NextStep::RetryAt(NOW.saturating_add(Duration::from_secs(2)))
        );
        assert!(planned.record.charged);
        assert_eq!(planned.paced_until, None);
        assert_eq!(planned.health, Some(OutcomeClass::Retryable));
    }

    #[test]
    fn a_fixed_jitter_source_moves_the_retry_time_deterministically() {
        use crate::retry::{Jitter, SeededJitter};
        let jittered = RetryPolicy::proposal_generator()
            .to_builder()
            .jitter(Jitter::Equal)
            .build()
            .unwrap();
        let at = |seed| {
            let planned = plan(
                attempted(0, Ok(response(500, &[]))),
                Some(&jittered),
                NOW,
                &mut SeededJitter::new(seed),
            );
            match planned.record.next {
                NextStep::RetryAt(at) => at,
                other => panic!("unexpected {other:?}"),
            }
        };
        assert_eq!(at(42), at(42));
        let delay = at(42).saturating_duration_since(NOW);
        assert!(delay >= Duration::from_millis(500) && delay <= Duration::from_secs(1));
    }

    #[test]
    fn a_410_disables_the_endpoint() {
        let planned = run(attempted(0, Ok(response(410, &[]))), Some(&policy()));
        assert_eq!(planned.record.next, NextStep::DisableEndpoint);
        assert_eq!(planned.health, Some(OutcomeClass::DisableEndpoint));
    }

    #[test]
    fn a_refused_destination_is_dead_lettered() {
        let refused = Err(TransportError::Refused(Refusal::NonPublicAddress));
        let planned = run(attempted(0, refused), Some(&policy()));
        assert_eq!(
            planned.record.next,
            NextStep::DeadLetter(DeadReason::Refused)
        );
        assert_eq!(
            planned.record.error,
            Some(AttemptError::Refused(Refusal::NonPublicAddress))
        );
        assert_eq!(planned.record.status, None);
    }

    #[test]
    fn a_429_with_retry_after_paces_and_is_not_charged() {
        let answer = response(429, &[("retry-after", "30")]);
        let planned = run(attempted(2, Ok(answer)), Some(&policy()));
        let until = NOW.saturating_add(Duration::from_secs(30));
        assert_eq!(planned.record.next, NextStep::RetryAt(until));
        assert!(!planned.record.charged);
        assert_eq!(planned.paced_until, Some(until));
        assert_eq!(planned.health, None, "waiting as asked is no failure");
    }

    #[test]
    fn retry_after_is_clamped_to_the_policys_cap() {
        let capped = RetryPolicy::proposal_generator()
            .to_builder()
            .retry_after_cap(Duration::from_secs(10))
            .build()
            .unwrap();
        let answer = response(429, &[("retry-after", "3600")]);
        let planned = run(attempted(0, Ok(answer)), Some(&capped));
        assert_eq!(
            planned.paced_until,
            Some(NOW.saturating_add(Duration::from_secs(10)))
        );
    }

    #[test]
    fn an_exhausted_rate_limit_with_reset_paces() {
        // A delta below 10^9 …
        let answer = response(
            200,
            &[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", "20")],
        );
        let planned = run(attempted(0, Ok(answer)), Some(&policy()));
        assert_eq!(planned.record.next, NextStep::Delivered);
        assert_eq!(
            planned.paced_until,
            Some(NOW.saturating_add(Duration::from_secs(20)))
        );
        // … or unix seconds; a 503 under pacing is still charged and retried.
        let reset = (NOW.as_millis() / 1000 + 45).to_string();
        let answer = response(
            503,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
        );
        let planned = run(attempted(0, Ok(answer)), Some(&policy()));
        assert_eq!(
            planned.paced_until,
            Some(NOW.saturating_add(Duration::from_secs(45)))
        );
        assert!(planned.record.charged);
        assert_eq!(
            planned.record.next,
            NextStep::RetryAt(NOW.saturating_add(Duration::from_secs(1)))
        );
        // Remaining above zero: no pacing.
        let answer = response(
            200,
            &[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "20")],
        );
        assert_eq!(
            run(attempted(0, Ok(answer)), Some(&policy())).paced_until,
            None
        );
    }

    #[test]
    fn the_last_attempt_gives_up() {
        // The sixth attempt of six fails.
        let planned = run(attempted(5, Ok(response(500, &[]))), Some(&policy()));
        assert_eq!(
            planned.record.next,
            NextStep::give_up(GiveUpReason::Exhausted)
        );
        assert_eq!(planned.record.attempt, 6);
    }

    #[test]
    fn transport_failures_are_mapped_once() {
        let planned = run(attempted(0, Err(TransportError::Timeout)), Some(&policy()));
        assert_eq!(planned.record.error, Some(AttemptError::Timeout));
        assert!(matches!(planned.record.next, NextStep::RetryAt(_)));
        assert_eq!(
            transport_failure(&TransportError::Connection),
            (AttemptOutcome::ConnectionError, AttemptError::Connection)
        );
        assert_eq!(
            transport_failure(&TransportError::Other),
            (AttemptOutcome::Other, AttemptError::Other)
        );
    }

    #[test]
    fn an_endpoint_that_vanished_mid_attempt() {
        let planned = run(attempted(0, Ok(response(204, &[]))), None);
        assert_eq!(planned.record.next, NextStep::Delivered);
        assert_eq!(planned.health, None);
        let planned = run(attempted(0, Err(TransportError::Connection)), None);
        assert_eq!(
            planned.record.next,
            NextStep::RetryAt(NOW.saturating_add(VANISHED_RETRY))
        );
        assert_eq!(planned.record.error, Some(AttemptError::Connection));
        assert_eq!(planned.paced_until, None);
    }
}
