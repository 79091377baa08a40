//! One conformance suite for every delivery store: the same scenarios, generic over
//! `DeliveryStore`, against `MemoryStore`, `SqliteStore` (a fresh temporary file each) and,
//! with the `postgres` feature and `HOOKRELAY_TEST_DATABASE_URL`, `PostgresStore` (a fresh
//! schema each), and `FaultStore` (`tests/support/fault_store.rs`), a store written outside
//! the crate with nothing but its public API.

#[path = "support/fault_store.rs"]
mod fault_store;
#[cfg(feature = "postgres")]
mod pg_support;

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use fault_store::FaultStore;
use hookrelay::Secret;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::{
    AttemptRecord, DeadReason, DeliveryLog, DeliveryQueue, DeliveryStore, EndpointRegistry,
    Enqueued, LogQuery, NewBatch, NewDelivery, NewMessage, NextStep, PageLimit, Publication,
    PublishKey, Recorded, Release, StatusKind,
};
use hookrelay::send::{
    DeliveryId, DeliveryKind, DeliveryStatus, Endpoint, EndpointId, EndpointStatus, LogRetention,
    MemoryStore, MessageId, SqliteStore, ThrottleGroup,
};

const T0: u64 = 1_700_000_000_000;
const LEASE: Duration = Duration::from_secs(30);

fn at(offset_ms: u64) -> UnixMillis {
    UnixMillis::from_millis(T0 + offset_ms)
}

fn endpoint(id: &str) -> Endpoint {
    Endpoint::builder(format!("https://{id}.example/hook"), Profile::TaskHub)
        .id(EndpointId::new(id).unwrap())
        .secret(Secret::from_raw("conformance").unwrap())
        // No rate limit: PostgresStore enforces endpoint limits in its claims (across
        // processes); the scenarios here claim several deliveries at one instant.
        .without_rate_limit()
        .build()
        .unwrap()
}

fn publication(endpoints: &[&str], key: Option<&str>) -> Publication {
    Publication {
        message: NewMessage {
            id: MessageId::generate(),
            event_id: "evt_1".into(),
            event_type: "task.created".into(),
            created_at: at(0),
            bodies: vec![Bytes::from_static(br#"{"id":"evt_1"}"#)],
        },
        deliveries: endpoints
            .iter()
            .map(|e| NewDelivery::new(DeliveryId::generate(), EndpointId::new(e).unwrap(), 0))
            .collect(),
        key: key.map(|k| PublishKey {
            key: k.to_owned(),
            expires_at: at(60_000),
        }),
    }
}

fn result(
    claim: &hookrelay::send::store::ClaimedDelivery,
    next: NextStep,
    status: u16,
) -> AttemptRecord {
    AttemptRecord {
        delivery: claim.delivery.clone(),
        token: claim.token,
        attempt: claim.attempts + 1,
        started_at: at(0),
        latency: Duration::from_millis(7),
        status: Some(status),
        error: None,
        request_headers: Vec::new(),
        response_headers: vec![("content-type".into(), "text/plain".into())],
        response_body: Bytes::from_static(b"last words"),
        charged: true,
        manual: claim.manual,
        next,
    }
}

async fn claim_returns_the_body_and_respects_limit_and_due_time<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let out = store
        .enqueue(
            vec![publication(&["ep_a"], None), publication(&["ep_a"], None)],
            at(0),
        )
        .await
        .unwrap();
    assert!(matches!(out[0], Enqueued::Created { .. }));
    assert!(
        store
            .claim(at(0).saturating_add(Duration::ZERO), 0, LEASE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let one = store.claim(at(0), 1, LEASE, &[]).await.unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(&one[0].body[..], br#"{"id":"evt_1"}"#);
    assert_eq!(one[0].event_type.as_str(), "task.created");
    assert_eq!(one[0].attempts, 0);
    let rest = store.claim(at(0), 10, LEASE, &[]).await.unwrap();
    assert_eq!(rest.len(), 1, "the first is leased");
    assert!(store.claim(at(0), 10, LEASE, &[]).await.unwrap().is_empty());
}

async fn inactive_and_skipped_endpoints_are_not_claimed<S: DeliveryStore>(store: S) {
    for id in ["ep_a", "ep_b", "ep_c"] {
        store.put_endpoint(&endpoint(id)).await.unwrap();
    }
    store
        .enqueue(vec![publication(&["ep_a", "ep_b", "ep_c"], None)], at(0))
        .await
        .unwrap();
    store
        .set_endpoint_status(
            &EndpointId::new("ep_b").unwrap(),
            EndpointStatus::Paused,
            None,
        )
        .await
        .unwrap();
    let skip = [EndpointId::new("ep_c").unwrap()];
    let claims = store.claim(at(0), 10, LEASE, &skip).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].endpoint.as_str(), "ep_a");
    assert!(matches!(
        store
            .set_endpoint_status(
                &EndpointId::new("ep_zz").unwrap(),
                EndpointStatus::Paused,
                None
            )
            .await,
        Err(e) if e.is_not_found()
    ));
}

async fn an_expired_lease_is_claimed_again_and_the_stale_result_refused<S: DeliveryStore>(
    store: S,
) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store
        .enqueue(vec![publication(&["ep_a"], None)], at(0))
        .await
        .unwrap();
    let first = store.claim(at(0), 10, LEASE, &[]).await.unwrap().remove(0);
    assert!(
        store
            .claim(at(29_999), 10, LEASE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let second = store
        .claim(at(30_000), 10, LEASE, &[])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(first.delivery, second.delivery);
    assert!(second.token > first.token, "a fresh token");
    let stale = store
        .record(vec![result(&first, NextStep::Delivered, 200)])
        .await
        .unwrap();
    assert_eq!(stale, vec![Recorded::Stale]);
    let record = store
        .delivery(&first.delivery, at(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        record.status,
        DeliveryStatus::Pending,
        "the stale result changed nothing"
    );
    assert!(store.attempts(&first.delivery).await.unwrap().is_empty());
    let saved = store
        .record(vec![result(&second, NextStep::RetryAt(at(90_000)), 503)])
        .await
        .unwrap();
    assert_eq!(saved, vec![Recorded::Saved]);
    let again = store
        .record(vec![result(&second, NextStep::Delivered, 200)])
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![Recorded::Stale],
        "a token is good for one result"
    );
}

async fn results_move_deliveries_along<S: DeliveryStore>(store: S) {
    for id in ["ep_a", "ep_b", "ep_c"] {
        store.put_endpoint(&endpoint(id)).await.unwrap();
    }
    store
        .enqueue(vec![publication(&["ep_a", "ep_b", "ep_c"], None)], at(0))
        .await
        .unwrap();
    let claims = store.claim(at(0), 10, LEASE, &[]).await.unwrap();
    let by = |e: &str| {
        claims
            .iter()
            .find(|c| c.endpoint.as_str() == e)
            .unwrap()
            .clone()
    };
    let (a, b, c) = (by("ep_a"), by("ep_b"), by("ep_c"));
    let out = store
        .record(vec![
            result(&a, NextStep::RetryAt(at(5_000)), 500),
            result(&b, NextStep::DeadLetter(DeadReason::Exhausted), 500),
            result(&c, NextStep::DisableEndpoint, 410),
        ])
        .await
        .unwrap();
    assert_eq!(out, vec![Recorded::Saved; 3]);

    let ra = store.delivery(&a.delivery, at(0)).await.unwrap().unwrap();
    assert_eq!(ra.status, DeliveryStatus::Pending);
    assert_eq!(ra.attempts, 1);
    assert_eq!(ra.next_attempt_at, Some(at(5_000)));
    assert_eq!(ra.last_status, Some(500));
    assert_eq!(store.next_due().await.unwrap(), Some(at(5_000)));
    assert!(
        store
            .claim(at(4_999), 10, LEASE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let retry = store
        .claim(at(5_000), 10, LEASE, &[])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(retry.attempts, 1);
    store
        .record(vec![result(&retry, NextStep::Delivered, 200)])
        .await
        .unwrap();
    assert_eq!(
        store
            .delivery(&a.delivery, at(0))
            .await
            .unwrap()
            .unwrap()
            .status,
        DeliveryStatus::Delivered
    );
    let log = store.attempts(&a.delivery).await.unwrap();
    assert_eq!(log.iter().map(|l| l.attempt).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(log[0].status, Some(500));
    assert_eq!(log[0].latency_ms, 7);
    assert_eq!(
        log[0].response_headers,
        vec![("content-type".to_owned(), "text/plain".to_owned())]
    );

    let dead = store
        .log_all(
            &LogQuery {
                statuses: vec![StatusKind::Dead],
                ..LogQuery::default()
            },
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(dead.len(), 2);
    let rb = dead.iter().find(|d| d.id == b.delivery).unwrap();
    assert_eq!(
        rb.status,
        DeliveryStatus::DeadLettered(DeadReason::Exhausted)
    );
    let last = store.attempts(&b.delivery).await.unwrap().pop().unwrap();
    assert_eq!(
        &last.response_body[..],
        b"last words",
        "the dead letter keeps its last response"
    );
    let rc = dead.iter().find(|d| d.id == c.delivery).unwrap();
    assert_eq!(
        rc.status,
        DeliveryStatus::DeadLettered(DeadReason::EndpointGone)
    );
    let gone = store
        .endpoint(&EndpointId::new("ep_c").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(gone.status(), EndpointStatus::Disabled);

    let counts = store.counts(at(6_000)).await.unwrap();
    assert_eq!(
        (
            counts.pending,
            counts.in_flight,
            counts.delivered,
            counts.dead
        ),
        (0, 0, 1, 2)
    );
}

async fn release_hands_back_without_an_attempt<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store
        .enqueue(vec![publication(&["ep_a"], None)], at(0))
        .await
        .unwrap();
    let claim = store.claim(at(0), 10, LEASE, &[]).await.unwrap().remove(0);
    assert_eq!(store.counts(at(0)).await.unwrap().in_flight, 1);
    store
        .release(vec![Release {
            delivery: claim.delivery.clone(),
            token: claim.token,
            due_at: at(2_000),
        }])
        .await
        .unwrap();
    assert!(
        store
            .claim(at(1_999), 10, LEASE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .claim(at(2_000), 10, LEASE, &[])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again.attempts, 0, "a release is not an attempt");
    assert_eq!(store.counts(at(2_000)).await.unwrap().in_flight, 1);
}

async fn publish_keys_deduplicate_within_their_window<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let first = store
        .enqueue(vec![publication(&["ep_a"], Some("order-1"))], at(0))
        .await
        .unwrap()
        .remove(0);
    let Enqueued::Created { id: first_id, .. } = first else {
        panic!("{first:?}")
    };
    let again = store
        .enqueue(vec![publication(&["ep_a"], Some("order-1"))], at(1_000))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(again, Enqueued::Existing(first_id.clone()));
    assert_eq!(
        store.counts(at(1_000)).await.unwrap().pending,
        1,
        "nothing created"
    );
    let later = store
        .enqueue(vec![publication(&["ep_a"], Some("order-1"))], at(60_001))
        .await
        .unwrap()
        .remove(0);
    assert!(matches!(later, Enqueued::Created { id, .. } if id != first_id));
}

async fn listing_by_message_and_endpoint<S: DeliveryStore>(store: S) {
    for id in ["ep_a", "ep_b"] {
        store.put_endpoint(&endpoint(id)).await.unwrap();
    }
    let p = publication(&["ep_a", "ep_b"], None);
    let message = p.message.id.clone();
    store
        .enqueue(vec![p, publication(&["ep_a"], None)], at(0))
        .await
        .unwrap();
    let of_message = store
        .log_all(
            &LogQuery {
                message: Some(message),
                ..LogQuery::default()
            },
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(of_message.len(), 2);
    let of_a = store
        .log_all(
            &LogQuery {
                endpoint: Some(EndpointId::new("ep_a").unwrap()),
                ..LogQuery::default()
            },
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(of_a.len(), 2);
    let limited = store
        .log_page(
            &LogQuery {
                limit: PageLimit::new(1).unwrap(),
                ..LogQuery::default()
            },
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(limited.items.len(), 1);
    assert!(limited.next.is_some());
    let listed = store.endpoints().await.unwrap();
    assert_eq!(listed.len(), 2);
}

fn one(endpoint: &str, configure: impl FnOnce(&mut NewDelivery)) -> Publication {
    let mut p = publication(&[endpoint], None);
    configure(&mut p.deliveries[0]);
    p
}

async fn an_ordering_key_is_claimed_one_at_a_time<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let keyed = |key: &str| {
        let key = key.to_owned();
        one("ep_a", move |d| d.order_key = Some(key))
    };
    let published = store
        .enqueue(vec![keyed("job_1"), keyed("job_1"), keyed("job_2")], at(0))
        .await
        .unwrap();
    let first = store.claim(at(0), 10, LEASE, &[]).await.unwrap();
    assert_eq!(first.len(), 2, "the head of each key");
    let job_1 = first
        .iter()
        .find(|c| c.message == *published[0].message_id())
        .expect("the first of job_1");
    assert!(
        first
            .iter()
            .any(|c| c.message == *published[2].message_id())
    );
    // While the head of job_1 is in flight or waiting for a retry, the next one waits.
    let retry = result(job_1, NextStep::RetryAt(at(5_000)), 500);
    store.record(vec![retry]).await.unwrap();
    assert!(
        store
            .claim(at(1_000), 10, LEASE, &[])
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim(at(5_000), 10, LEASE, &[]).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].delivery, job_1.delivery);
    store
        .record(vec![result(
            &again[0],
            NextStep::DeadLetter(DeadReason::Exhausted),
            500,
        )])
        .await
        .unwrap();
    // Dead-lettered: the next of its key goes.
    let next = store.claim(at(5_000), 10, LEASE, &[]).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].message, *published[1].message_id());
}

async fn throttled_deliveries_supersede_and_keep_the_window<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let window = Duration::from_secs(10);
    let progress = || {
        one("ep_a", |d| {
            d.order_key = Some("job.progress|j1".into());
            d.throttle = Some(ThrottleGroup {
                key: "job.progress|j1".into(),
                window: Some(window),
            });
        })
    };
    let claim_at = |ms| store.claim(at(ms), 10, LEASE, &[]);
    // Leading edge: the first progress event of the group goes at once.
    let first = store.enqueue(vec![progress()], at(0)).await.unwrap();
    assert_eq!(
        first[0],
        Enqueued::Created {
            id: first[0].message_id().clone(),
            superseded: 0
        }
    );
    let sent = claim_at(0).await.unwrap();
    assert_eq!(sent.len(), 1, "the first is due at once");
    assert_eq!(sent[0].message, *first[0].message_id());
    store
        .record(vec![result(&sent[0], NextStep::Delivered, 200)])
        .await
        .unwrap();
    // Within its window: due a window after it; a later one replaces it (trailing edge).
    let second = store.enqueue(vec![progress()], at(3_000)).await.unwrap();
    assert!(matches!(second[0], Enqueued::Created { superseded: 0, .. }));
    assert!(
        claim_at(9_999).await.unwrap().is_empty(),
        "due at the window's end"
    );
    let third = store.enqueue(vec![progress()], at(5_000)).await.unwrap();
    assert!(matches!(third[0], Enqueued::Created { superseded: 1, .. }));
    assert!(claim_at(9_999).await.unwrap().is_empty(), "in its place");
    let claims = claim_at(10_000).await.unwrap();
    assert_eq!(claims.len(), 1, "the latest, at the window's end");
    assert_eq!(claims[0].message, *third[0].message_id());
    let counts = store.counts(at(10_000)).await.unwrap();
    assert_eq!((counts.superseded, counts.in_flight), (1, 1));
    // A terminal event does not supersede the one in flight, and waits behind it.
    let terminal = one("ep_a", |d| {
        d.order_key = Some("job.progress|j1".into());
        d.throttle = Some(ThrottleGroup {
            key: "job.progress|j1".into(),
            window: None,
        });
    });
    let done = store.enqueue(vec![terminal], at(10_001)).await.unwrap();
    assert!(matches!(done[0], Enqueued::Created { superseded: 0, .. }));
    assert!(claim_at(10_001).await.unwrap().is_empty());
    store
        .record(vec![result(&claims[0], NextStep::Delivered, 200)])
        .await
        .unwrap();
    let last = claim_at(10_002).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].message, *done[0].message_id());
    store
        .record(vec![result(&last[0], NextStep::Delivered, 200)])
        .await
        .unwrap();
    // After a quiet window: at once again.
    let quiet = store.enqueue(vec![progress()], at(30_000)).await.unwrap();
    let again = claim_at(30_000).await.unwrap();
    assert_eq!(again.len(), 1, "due at once after a quiet window");
    assert_eq!(again[0].message, *quiet[0].message_id());
    // One in flight is not superseded: the next is due a window after it.
    let next = store.enqueue(vec![progress()], at(31_000)).await.unwrap();
    assert!(matches!(next[0], Enqueued::Created { superseded: 0, .. }));
    store
        .record(vec![result(&again[0], NextStep::Delivered, 200)])
        .await
        .unwrap();
    assert!(claim_at(39_999).await.unwrap().is_empty());
    let trailing = claim_at(40_000).await.unwrap();
    assert_eq!(trailing.len(), 1);
    assert_eq!(trailing[0].message, *next[0].message_id());
    let superseded = store
        .log_all(&LogQuery::default(), at(0))
        .await
        .unwrap()
        .into_iter()
        .filter(|d| d.status == DeliveryStatus::Superseded)
        .count();
    assert_eq!(superseded, 1);
}

async fn manual_retries_expiry_and_uncharged_attempts<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store
        .enqueue(
            vec![publication(&["ep_a"], None), publication(&["ep_a"], None)],
            at(0),
        )
        .await
        .unwrap();
    let claims = store.claim(at(0), 10, LEASE, &[]).await.unwrap();
    let (a, b) = (&claims[0], &claims[1]);
    assert!(!a.manual && a.kind == DeliveryKind::Event);
    // A paced attempt is logged but not charged.
    let mut paced = result(a, NextStep::RetryAt(at(1_000)), 429);
    paced.charged = false;
    store
        .record(vec![paced, result(b, NextStep::Expire, 500)])
        .await
        .unwrap();
    let again = store
        .claim(at(1_000), 10, LEASE, &[])
        .await
        .unwrap()
        .remove(0);
    assert_eq!((again.attempts, again.charged), (1, 0));
    assert_eq!(
        store
            .delivery(&b.delivery, at(0))
            .await
            .unwrap()
            .unwrap()
            .status,
        DeliveryStatus::Expired
    );
    let counts = store.counts(at(1_000)).await.unwrap();
    assert_eq!((counts.expired, counts.dead), (1, 0));
    // Held by a worker: not queued by hand; expired: queued, due now, manual.
    let queued = store
        .retry_now(&[again.delivery.clone(), b.delivery.clone()], at(2_000))
        .await
        .unwrap();
    assert_eq!(queued, vec![b.delivery.clone()]);
    let manual = store
        .claim(at(2_000), 10, LEASE, &[])
        .await
        .unwrap()
        .remove(0);
    assert_eq!(manual.delivery, b.delivery);
    assert!(manual.manual);
    let mut record = result(&manual, NextStep::Delivered, 200);
    record.manual = true;
    store.record(vec![record]).await.unwrap();
    let log = store.attempts(&b.delivery).await.unwrap();
    assert_eq!(
        log.iter().map(|l| l.manual).collect::<Vec<_>>(),
        [false, true]
    );
    let done = store.delivery(&b.delivery, at(0)).await.unwrap().unwrap();
    assert_eq!(done.status, DeliveryStatus::Delivered);
    assert_eq!(done.finished_at, Some(at(7)), "started at(0) + 7 ms");
    assert!(
        store
            .retry_now(&[DeliveryId::new("dlv_nope").unwrap()], at(2_000))
            .await
            .unwrap()
            .is_empty()
    );
    // A pending delivery waiting for its next attempt, held by no worker, is brought forward.
    store
        .record(vec![result(&again, NextStep::RetryAt(at(60_000)), 500)])
        .await
        .unwrap();
    assert_eq!(
        store
            .retry_now(std::slice::from_ref(&again.delivery), at(3_000))
            .await
            .unwrap(),
        vec![again.delivery.clone()]
    );
    let forward = store.claim(at(3_000), 10, LEASE, &[]).await.unwrap();
    assert_eq!(forward.len(), 1);
    assert!(forward[0].manual && forward[0].delivery == again.delivery);
}

async fn purge_deletes_past_retention_in_batches<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let day = Duration::from_secs(24 * 3600);
    store
        .enqueue(
            (0..5).map(|_| publication(&["ep_a"], None)).collect(),
            at(0),
        )
        .await
        .unwrap();
    let claims = store.claim(at(0), 10, LEASE, &[]).await.unwrap();
    let mut records: Vec<_> = claims[..3]
        .iter()
        .map(|c| result(c, NextStep::Delivered, 200))
        .collect();
    records.push(result(
        &claims[3],
        NextStep::DeadLetter(DeadReason::Exhausted),
        500,
    ));
    store.record(records).await.unwrap();
    let retention = LogRetention::default();
    let now = at(0).saturating_add(day * 31);
    let first = store.purge(&retention, now, 2).await.unwrap();
    assert_eq!(
        (first.deliveries, first.attempts, first.messages),
        (2, 2, 2)
    );
    let second = store.purge(&retention, now, 2).await.unwrap();
    assert_eq!((second.deliveries, second.messages), (1, 1));
    let counts = store.counts(now).await.unwrap();
    assert_eq!(
        (
            counts.delivered,
            counts.dead,
            counts.in_flight + counts.pending
        ),
        (0, 1, 1)
    );
    let later = at(0).saturating_add(day * 91);
    assert_eq!(
        store
            .purge(&retention, later, 100)
            .await
            .unwrap()
            .deliveries,
        1
    );
    assert_eq!(store.counts(later).await.unwrap().dead, 0);
}

async fn a_batch_replaces_its_members_atomically<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store
        .enqueue(
            (0..3).map(|_| publication(&["ep_a"], None)).collect(),
            at(0),
        )
        .await
        .unwrap();
    let claims = store.claim(at(0), 10, LEASE, &[]).await.unwrap();
    let batch = |members: &[&hookrelay::send::store::ClaimedDelivery]| NewBatch {
        message: NewMessage {
            id: MessageId::generate(),
            event_id: "bat_1".into(),
            event_type: "batch".into(),
            created_at: at(0),
            bodies: vec![Bytes::from_static(b"[1,2]")],
        },
        delivery: DeliveryId::generate(),
        endpoint: EndpointId::new("ep_a").unwrap(),
        members: members
            .iter()
            .map(|c| (c.delivery.clone(), c.token))
            .collect(),
    };
    // A stale member token: nothing changes.
    let mut stale = batch(&[&claims[0], &claims[1]]);
    stale.members[1].1 = hookrelay::send::store::FencingToken(0);
    assert!(
        store
            .form_batch(stale, at(1), LEASE)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.counts(at(1)).await.unwrap().in_flight, 3);
    let formed = batch(&[&claims[0], &claims[1]]);
    let id = formed.delivery.clone();
    let claim = store
        .form_batch(formed, at(1), LEASE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claim.kind, &claim.body[..]),
        (DeliveryKind::Batch, &b"[1,2]"[..])
    );
    assert_eq!(claim.event_id.as_str(), "bat_1");
    let member = store
        .delivery(&claims[0].delivery, at(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (member.status, member.batch.as_ref()),
        (DeliveryStatus::Batched, Some(&id))
    );
    let counts = store.counts(at(1)).await.unwrap();
    assert_eq!(
        (counts.batched, counts.in_flight),
        (2, 2),
        "the batch and the third"
    );
    // The batch is a delivery like any other: recorded under its own token.
    assert_eq!(
        store
            .record(vec![result(&claim, NextStep::Delivered, 200)])
            .await
            .unwrap(),
        vec![Recorded::Saved]
    );
    assert_eq!(
        store
            .record(vec![result(&claims[0], NextStep::Delivered, 200)])
            .await
            .unwrap(),
        vec![Recorded::Stale],
        "a member's old claim is gone"
    );
}

async fn a_status_note_is_kept<S: DeliveryStore>(store: S) {
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let id = EndpointId::new("ep_a").unwrap();
    store
        .set_endpoint_status(&id, EndpointStatus::PendingVerification, Some("not echoed"))
        .await
        .unwrap();
    let loaded = store.endpoint(&id).await.unwrap().unwrap();
    assert_eq!(loaded.status(), EndpointStatus::PendingVerification);
    assert_eq!(loaded.status_note(), Some("not echoed"));
    store
        .set_endpoint_status(&id, EndpointStatus::Active, None)
        .await
        .unwrap();
    assert_eq!(
        store.endpoint(&id).await.unwrap().unwrap().status_note(),
        None
    );
    store.set_failing_since(&id, Some(at(5))).await.unwrap();
    let loaded = store.endpoint(&id).await.unwrap().unwrap();
    assert_eq!(loaded.failing_since(), Some(at(5)));
    assert_eq!(
        loaded.status(),
        EndpointStatus::Active,
        "only the clock changed"
    );
    store.set_failing_since(&id, None).await.unwrap();
    assert_eq!(
        store.endpoint(&id).await.unwrap().unwrap().failing_since(),
        None
    );
}

/// More results than one statement binds (SQLite binds 500 rows a statement) are recorded
/// in one call, every one with its attempt, binary response bodies byte for byte.
async fn a_large_round_is_recorded_whole<S: DeliveryStore>(store: S) {
    const N: usize = 1_200;
    // Room for every claim at once (PostgresStore holds claims to the endpoint's cap).
    let wide = Endpoint::builder("https://ep_a.example/hook", Profile::TaskHub)
        .id(EndpointId::new("ep_a").unwrap())
        .secret(Secret::from_raw("conformance").unwrap())
        .without_rate_limit()
        .concurrency(N as u32)
        .build()
        .unwrap();
    store.put_endpoint(&wide).await.unwrap();
    let publications: Vec<Publication> = (0..N).map(|_| publication(&["ep_a"], None)).collect();
    store.enqueue(publications, at(0)).await.unwrap();
    let claims = store.claim(at(0), N, LEASE, &[]).await.unwrap();
    assert_eq!(claims.len(), N);
    let body = Bytes::from_static(b"\x00\xff not utf-8 \xc3\x28");
    let results: Vec<AttemptRecord> = claims
        .iter()
        .enumerate()
        .map(|(i, claim)| {
            let next = if i % 2 == 0 {
                NextStep::Delivered
            } else {
                NextStep::RetryAt(at(60_000))
            };
            AttemptRecord {
                response_body: body.clone(),
                ..result(claim, next, if i % 2 == 0 { 200 } else { 503 })
            }
        })
        .collect();
    let recorded = store.record(results).await.unwrap();
    assert_eq!(recorded.len(), N);
    assert!(recorded.iter().all(|r| *r == Recorded::Saved));
    let counts = store.counts(at(1)).await.unwrap();
    assert_eq!(
        (counts.delivered, counts.pending),
        (N as u64 / 2, N as u64 / 2)
    );
    for claim in [&claims[0], &claims[N / 2 + 1], &claims[N - 1]] {
        let log = store.attempts(&claim.delivery).await.unwrap();
        assert_eq!(log.len(), 1, "{}", claim.delivery);
        assert_eq!(log[0].response_body, body);
    }
}

async fn run_all<S: DeliveryStore, F: Future<Output = S>>(make: impl Fn() -> F) {
    a_large_round_is_recorded_whole(make().await).await;
    claim_returns_the_body_and_respects_limit_and_due_time(make().await).await;
    inactive_and_skipped_endpoints_are_not_claimed(make().await).await;
    an_expired_lease_is_claimed_again_and_the_stale_result_refused(make().await).await;
    results_move_deliveries_along(make().await).await;
    release_hands_back_without_an_attempt(make().await).await;
    publish_keys_deduplicate_within_their_window(make().await).await;
    listing_by_message_and_endpoint(make().await).await;
    an_ordering_key_is_claimed_one_at_a_time(make().await).await;
    throttled_deliveries_supersede_and_keep_the_window(make().await).await;
    manual_retries_expiry_and_uncharged_attempts(make().await).await;
    purge_deletes_past_retention_in_batches(make().await).await;
    a_status_note_is_kept(make().await).await;
    a_batch_replaces_its_members_atomically(make().await).await;
}

fn temp_db() -> String {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static N: AtomicUsize = AtomicUsize::new(0);
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "hookrelay-conformance-{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path.display().to_string()
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn postgres_store_conforms() {
    let Some(url) = pg_support::database_url("postgres_store_conforms") else {
        return;
    };
    let schemas = std::sync::Mutex::new(Vec::new());
    run_all(|| async {
        let schema = pg_support::fresh_schema(&url, "conf").await;
        schemas.lock().unwrap().push(schema.clone());
        hookrelay::send::PostgresStore::builder()
            .schema(schema)
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap()
    })
    .await;
    for schema in schemas.into_inner().unwrap() {
        pg_support::drop_schema(&url, &schema).await;
    }
}

#[tokio::test]
async fn memory_store_conforms() {
    run_all(|| async { MemoryStore::new() }).await;
}

#[tokio::test]
async fn sqlite_store_conforms() {
    run_all(|| async {
        SqliteStore::connect(&format!("sqlite://{}?mode=rwc", temp_db()))
            .await
            .unwrap()
    })
    .await;
}

#[tokio::test]
async fn sqlite_keeps_everything_across_a_reopen() {
    let path = temp_db();
    let url = format!("sqlite://{path}?mode=rwc");
    let secret = Secret::from_raw("rotate-me").unwrap();
    let original = Endpoint::builder("https://keep.example/hook", Profile::TaskLink)
        .id(EndpointId::new("ep_keep").unwrap())
        .secret(secret.clone())
        .retiring_secret(
            Secret::from_raw("old").unwrap(),
            std::time::UNIX_EPOCH + Duration::from_secs(2_000_000_000),
        )
        .subscribe("job.*")
        .concurrency(3)
        .header("X-Tenant", "acme")
        .name("keep")
        .retry_policy(hookrelay::retry::RetryPolicy::tasklink())
        .build()
        .unwrap();
    let (delivery, token) = {
        let store = SqliteStore::connect(&url).await.unwrap();
        store.put_endpoint(&original).await.unwrap();
        store
            .enqueue(vec![publication(&["ep_keep"], None)], at(0))
            .await
            .unwrap();
        let claim = store.claim(at(0), 1, LEASE, &[]).await.unwrap().remove(0);
        (claim.delivery, claim.token)
    };
    let store = SqliteStore::connect(&url).await.unwrap();
    let loaded = store
        .endpoint(&EndpointId::new("ep_keep").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.url(), original.url());
    assert_eq!(loaded.profile(), Profile::TaskLink);
    assert_eq!(loaded.filter(), original.filter());
    assert_eq!(loaded.concurrency().get(), 3);
    assert_eq!(loaded.name(), Some("keep"));
    assert_eq!(loaded.headers().get("x-tenant").unwrap(), "acme");
    assert_eq!(loaded.retry_policy(), original.retry_policy());
    assert_eq!(loaded.secrets().len(), 2);
    assert_eq!(loaded.secrets()[1].until(), original.secrets()[1].until());
    assert_eq!(
        loaded.secrets()[0].secret().mac(&[b"x"]).to_hex(),
        secret.mac(&[b"x"]).to_hex(),
        "the reloaded secret signs the same"
    );
    let record = store.delivery(&delivery, at(0)).await.unwrap().unwrap();
    assert_eq!(record.status, DeliveryStatus::Pending);
    let next = store
        .claim(at(LEASE.as_millis() as u64), 1, LEASE, &[])
        .await
        .unwrap()
        .remove(0);
    assert!(
        next.token > token,
        "fencing tokens keep increasing across a reopen"
    );
    assert_eq!(store.body_count().await.unwrap(), 1);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
}

#[tokio::test]
async fn a_fan_out_stores_its_body_once() {
    let store = SqliteStore::connect(&format!("sqlite://{}?mode=rwc", temp_db()))
        .await
        .unwrap();
    let ids: Vec<String> = (0..10).map(|i| format!("ep_{i}")).collect();
    for id in &ids {
        store.put_endpoint(&endpoint(id)).await.unwrap();
    }
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    store
        .enqueue(vec![publication(&refs, None)], at(0))
        .await
        .unwrap();
    assert_eq!(store.body_count().await.unwrap(), 1);
    let claims = store.claim(at(0), 100, LEASE, &[]).await.unwrap();
    assert_eq!(claims.len(), 10);
    assert!(claims.iter().all(|c| c.body == claims[0].body));
}

#[tokio::test]
async fn one_pool_serves_both_sqlite_stores() {
    use hookrelay::receive::{
        Claim, IdempotencyKey, IdempotencyStore, Retention, SqliteIdempotencyStore,
    };
    let deliveries = SqliteStore::connect(&format!("sqlite://{}?mode=rwc", temp_db()))
        .await
        .unwrap();
    let idempotency = SqliteIdempotencyStore::from_pool(deliveries.pool().clone())
        .await
        .unwrap();
    deliveries.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let key = IdempotencyKey::new("evt_1");
    let now = hookrelay::Timestamp::from_unix(1_700_000_000);
    assert_eq!(
        idempotency
            .claim(&key, now, Retention::default())
            .await
            .unwrap(),
        Claim::Acquired
    );
    assert_eq!(deliveries.endpoints().await.unwrap().len(), 1);
}

/// The store written outside the crate (`tests/support/fault_store.rs`) passes the same
/// suite as the built-in ones.
#[tokio::test]
async fn a_store_outside_the_crate_conforms() {
    run_all(|| async { FaultStore::new() }).await;
}

/// Injected faults surface as retryable errors, one per failed call, and then stop.
#[tokio::test]
async fn faults_surface_as_retryable_errors() {
    let store = FaultStore::new();
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store.fail_next("enqueue", 1);
    let err = store
        .enqueue(vec![publication(&["ep_a"], None)], at(0))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err:?}");
    assert!(!err.is_not_found() && !err.is_conflict() && !err.is_corrupt());
    assert!(std::error::Error::source(&err).is_some());
    store
        .enqueue(vec![publication(&["ep_a"], None)], at(0))
        .await
        .unwrap();
    store.fail_next("claim", 2);
    for _ in 0..2 {
        assert!(
            store
                .claim(at(0), 10, LEASE, &[])
                .await
                .unwrap_err()
                .is_retryable()
        );
    }
    assert_eq!(store.claim(at(0), 10, LEASE, &[]).await.unwrap().len(), 1);
    store.fail_next("counts", 1);
    assert!(store.counts(at(0)).await.unwrap_err().is_retryable());
    assert_eq!(store.counts(at(0)).await.unwrap().in_flight, 1);
}

/// A publish through a `Sender` whose store fails returns the store's retryable error.
#[tokio::test]
async fn a_failing_store_fails_the_publish_retryably() {
    let store = FaultStore::new();
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    let sender = hookrelay::send::Sender::new(store);
    sender.store().fail_next("enqueue", 1);
    let event = hookrelay::event::OutgoingEvent::new("task.created", serde_json::json!({"a": 1}));
    match sender.publish(event.clone()).await {
        Err(hookrelay::send::PublishError::Store(err)) => assert!(err.is_retryable()),
        other => panic!("expected a store error, got {other:?}"),
    }
    sender.publish(event).await.unwrap();
}

/// hookrelay 0.1's SQLite schema, as its migrations left it: step 1 always, step 2 if
/// `user_version` was 2.
const OLD_STEP_1: &str = r#"
CREATE TABLE hookrelay_endpoints (id TEXT PRIMARY KEY NOT NULL, status TEXT NOT NULL, settings TEXT NOT NULL);
CREATE TABLE hookrelay_messages (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL, event_type TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE hookrelay_bodies (message_seq INTEGER NOT NULL, form INTEGER NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (message_seq, form)) WITHOUT ROWID;
CREATE TABLE hookrelay_deliveries (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
    message_seq INTEGER NOT NULL, endpoint_id TEXT NOT NULL, form INTEGER NOT NULL, status TEXT NOT NULL,
    dead_reason TEXT, attempts INTEGER NOT NULL DEFAULT 0, last_status INTEGER, due_at INTEGER,
    lease_token INTEGER, lease_until INTEGER);
CREATE INDEX hookrelay_deliveries_due ON hookrelay_deliveries (due_at) WHERE status = 'pending';
CREATE INDEX hookrelay_deliveries_message ON hookrelay_deliveries (message_seq);
CREATE INDEX hookrelay_deliveries_endpoint ON hookrelay_deliveries (endpoint_id, seq);
CREATE INDEX hookrelay_deliveries_dead ON hookrelay_deliveries (seq) WHERE status = 'dead';
CREATE TABLE hookrelay_attempts (delivery_seq INTEGER NOT NULL, attempt INTEGER NOT NULL,
    started_at INTEGER NOT NULL, latency_ms INTEGER NOT NULL, status INTEGER, error TEXT,
    response_headers TEXT NOT NULL, response_body BLOB NOT NULL, PRIMARY KEY (delivery_seq, attempt)) WITHOUT ROWID;
CREATE TABLE hookrelay_publish_keys (key TEXT PRIMARY KEY NOT NULL, message_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE hookrelay_counters (name TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) WITHOUT ROWID;
INSERT INTO hookrelay_counters (name, value) VALUES ('fencing_token', 0);
INSERT INTO hookrelay_messages (id, event_id, event_type, created_at) VALUES ('msg_old', 'evt_old', 'task.created', 1700000000000);
INSERT INTO hookrelay_bodies (message_seq, form, body) VALUES (1, 0, X'7B7D');
INSERT INTO hookrelay_deliveries (id, message_seq, endpoint_id, form, status, dead_reason, attempts, last_status)
    VALUES ('dlv_old', 1, 'ep_old', 0, 'dead', 'exhausted', 3, 500);
PRAGMA user_version = 1;
"#;

const OLD_STEP_2: &str = r#"
ALTER TABLE hookrelay_deliveries ADD COLUMN kind TEXT NOT NULL DEFAULT 'event';
ALTER TABLE hookrelay_deliveries ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hookrelay_deliveries ADD COLUMN charged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE hookrelay_deliveries ADD COLUMN order_key TEXT;
ALTER TABLE hookrelay_deliveries ADD COLUMN throttle_key TEXT;
ALTER TABLE hookrelay_deliveries ADD COLUMN finished_at INTEGER;
ALTER TABLE hookrelay_deliveries ADD COLUMN batch_id TEXT;
ALTER TABLE hookrelay_attempts ADD COLUMN manual INTEGER NOT NULL DEFAULT 0;
UPDATE hookrelay_deliveries SET finished_at = 0 WHERE status != 'pending';
CREATE INDEX hookrelay_deliveries_ordered ON hookrelay_deliveries (endpoint_id, order_key, seq)
    WHERE status = 'pending' AND order_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_throttled ON hookrelay_deliveries (endpoint_id, throttle_key)
    WHERE status = 'pending' AND throttle_key IS NOT NULL;
CREATE INDEX hookrelay_deliveries_finished ON hookrelay_deliveries (finished_at)
    WHERE status != 'pending';
CREATE INDEX hookrelay_attempts_manual ON hookrelay_attempts (started_at) WHERE manual = 1;
PRAGMA user_version = 2;
"#;

async fn old_database(steps: &[&'static str]) -> (String, sqlx::SqlitePool) {
    let url = temp_db();
    let pool = sqlx::sqlite::SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(
            url.parse::<sqlx::sqlite::SqliteConnectOptions>()
                .unwrap()
                .create_if_missing(true),
        )
        .await
        .unwrap();
    for step in steps {
        sqlx::raw_sql(*step).execute(&pool).await.unwrap();
    }
    (url, pool)
}

async fn migrations_of(pool: &sqlx::SqlitePool) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT version, name FROM hookrelay_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn user_version(pool: &sqlx::SqlitePool) -> i64 {
    sqlx::query_scalar("PRAGMA user_version")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// A database migrated by hookrelay 0.1 (both steps, `user_version = 2`) is adopted: its
/// steps are recorded, its data read, and `user_version` left as it was.
#[tokio::test]
async fn an_old_sqlite_database_is_adopted() {
    let (url, old) = old_database(&[OLD_STEP_1, OLD_STEP_2]).await;
    old.close().await;
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(
        migrations_of(store.pool()).await,
        vec![
            (1, "0001_init".to_owned()),
            (2, "0002_delivery_features".to_owned()),
            (3, "0003_administration".to_owned()),
            (4, "0004_endpoint_fields".to_owned())
        ]
    );
    assert_eq!(user_version(store.pool()).await, 2);
    let id = DeliveryId::new("dlv_old").unwrap();
    let old = store.delivery(&id, at(0)).await.unwrap().unwrap();
    assert_eq!(
        old.status,
        DeliveryStatus::DeadLettered(DeadReason::Exhausted)
    );
    assert_eq!(old.attempts, 3);
    // Step 3 copied the message's type and time onto the delivery, for the log's filters.
    assert_eq!(old.event_type.as_str(), "task.created");
    assert_eq!(old.created_at, UnixMillis::from_millis(1_700_000_000_000));
    assert_eq!(old.owner, None);
    let page = store
        .log_page(
            &hookrelay::send::store::LogQuery {
                event_type: Some(hookrelay::send::store::TypePattern::parse("task.*")),
                ..Default::default()
            },
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    // It keeps working: a new endpoint and publication.
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
    store
        .enqueue(vec![publication(&["ep_a"], None)], at(0))
        .await
        .unwrap();
    assert_eq!(store.claim(at(0), 10, LEASE, &[]).await.unwrap().len(), 1);
    // Opening again applies nothing.
    drop(store);
    let again = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(migrations_of(again.pool()).await.len(), 4);
}

/// A database left at hookrelay 0.1's first step (`user_version = 1`) gets the rest.
#[tokio::test]
async fn an_old_sqlite_database_at_step_one_gets_the_rest() {
    let (url, old) = old_database(&[OLD_STEP_1]).await;
    old.close().await;
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(
        migrations_of(store.pool())
            .await
            .into_iter()
            .map(|(v, _)| v)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
    assert_eq!(user_version(store.pool()).await, 1);
    let id = DeliveryId::new("dlv_old").unwrap();
    let old = store.delivery(&id, at(0)).await.unwrap().unwrap();
    assert_eq!(old.kind, DeliveryKind::Event);
}

/// The application's own `PRAGMA user_version` is left alone.
#[tokio::test]
async fn an_apps_user_version_is_left_alone() {
    let (url, app) =
        old_database(&["PRAGMA user_version = 42; CREATE TABLE app_orders (id INTEGER);"]).await;
    app.close().await;
    let store = SqliteStore::connect(&url).await.unwrap();
    assert_eq!(user_version(store.pool()).await, 42);
    assert_eq!(migrations_of(store.pool()).await.len(), 4);
    store.put_endpoint(&endpoint("ep_a")).await.unwrap();
}

/// Step 4 gives endpoints registered before it a registration time (their oldest delivery's
/// publish time, else the migration's) and the live mode; endpoints that have both keep them.
#[tokio::test]
async fn step_four_backfills_endpoint_times_and_modes() {
    let url = temp_db();
    let store = SqliteStore::connect(&url).await.unwrap();
    store.put_endpoint(&endpoint("ep_busy")).await.unwrap();
    store.put_endpoint(&endpoint("ep_idle")).await.unwrap();
    let kept = Endpoint::builder("https://example.com/kept", Profile::StandardWebhooks)
        .id(EndpointId::new("ep_kept").unwrap())
        .secret(Secret::from_raw([7u8; 32]).unwrap())
        .mode(hookrelay::event::EventMode::Test)
        .created_at(at(42))
        .build()
        .unwrap();
    store.put_endpoint(&kept).await.unwrap();
    let mut first = publication(&["ep_busy"], None);
    first.message.created_at = at(5_000);
    let mut later = publication(&["ep_busy"], None);
    later.message.created_at = at(9_000);
    store.enqueue(vec![first, later], at(9_000)).await.unwrap();
    // As a database written before step 4: the fields absent, the step not recorded.
    sqlx::raw_sql(
        "UPDATE hookrelay_endpoints SET settings = json_remove(settings, '$.created_at_ms', '$.mode')
         WHERE id != 'ep_kept';
         DELETE FROM hookrelay_migrations WHERE version = 4;",
    )
    .execute(store.pool())
    .await
    .unwrap();
    let busy = store.endpoint(&EndpointId::new("ep_busy").unwrap()).await;
    assert_eq!(busy.unwrap().unwrap().created_at(), None, "unknown before");
    drop(store);

    let before = UnixMillis::from(std::time::SystemTime::now());
    let store = SqliteStore::connect(&url).await.unwrap();
    let after = UnixMillis::from(std::time::SystemTime::now());
    let read = |id: &'static str| {
        let store = &store;
        async move {
            store
                .endpoint(&EndpointId::new(id).unwrap())
                .await
                .unwrap()
                .unwrap()
        }
    };
    let busy = read("ep_busy").await;
    assert_eq!(busy.created_at(), Some(at(5_000)), "its oldest delivery");
    assert_eq!(busy.mode(), hookrelay::event::EventMode::Live);
    let idle = read("ep_idle").await.created_at().unwrap();
    // SQLite's clock goes through a julian-day float: a millisecond either way.
    let idle = idle.as_millis();
    assert!(
        before.as_millis() - 1 <= idle && idle <= after.as_millis() + 1,
        "the migration's time"
    );
    let kept = read("ep_kept").await;
    assert_eq!(kept.created_at(), Some(at(42)));
    assert_eq!(kept.mode(), hookrelay::event::EventMode::Test);
    drop(store);
    let _ = std::fs::remove_file(&url);
}
