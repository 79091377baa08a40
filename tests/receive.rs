//! The framework-neutral receive pipeline: profiles, idempotency, replies
//! (CHECKLIST B18–B20, F56), against independently computed signatures.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hookrelay::profile::Profile;
use hookrelay::receive::{
    Claim, IdempotencyKey, IdempotencyStore, MemoryIdempotencyStore, Receiver, Rejection, Reply,
    Retention, StoreError, WhenFull,
};
use hookrelay::scheme::{ApiKey, Message, RawBody, Scheme};
use hookrelay::{FixedClock, Secret, Timestamp};
use serde_json::Value;

type Pairs = Vec<(String, String)>;

fn vector(name: &str) -> (Pairs, Bytes, Value) {
    let (headers, body, case) = common::vector(name);
    (headers, body.into(), case)
}

fn receiver_for(profile: Profile, case: &Value) -> Receiver {
    let secret = case["secret"].as_str().unwrap();
    let secret = match profile {
        Profile::StandardWebhooks => Secret::from_base64(secret).unwrap(),
        _ => Secret::from_raw(secret).unwrap(),
    };
    let now = case["timestamp"].as_i64().unwrap_or(1_700_000_000);
    let mut builder = Receiver::builder(profile)
        .secret(secret)
        .clock(FixedClock(Timestamp::from_unix(now)));
    if let Some(key) = case["api_key"].as_str() {
        builder = builder.api_key(ApiKey::new(key).unwrap());
    }
    builder.build().unwrap()
}

async fn ok_handler(_: hookrelay::receive::Inbound) -> Result<(), std::io::Error> {
    Ok(())
}

#[tokio::test]
async fn every_profile_accepts_reference_requests_and_replies_its_way() {
    for (profile, case, reply, event_type, key) in [
        (
            Profile::ProposalGenerator,
            "pg job.completed",
            r#"{"status":"ok"}"#,
            Some("job.completed"),
            "proposal-generator:evt_pg_1",
        ),
        (
            Profile::TaskLink,
            "tasklink job.created",
            r#"{"received":true}"#,
            Some("job.created"),
            "tasklink:evt_123456",
        ),
        (
            Profile::TaskOn,
            "taskon token",
            r#"{"result":true,"error":null}"#,
            Some("Token"),
            "taskon:111111:11111:1758251308",
        ),
        (
            Profile::TaskHub,
            "task-hub task.completed",
            r#"{"received":true}"#,
            Some("task.completed"),
            "",
        ),
        (
            Profile::StandardWebhooks,
            "standard task-hub body",
            r#"{"received":true}"#,
            Some("task.completed"),
            "standard-webhooks:msg_2",
        ),
    ] {
        let (headers, body, case) = vector(case);
        let receiver = receiver_for(profile, &case);
        let seen = std::sync::Mutex::new(None);
        let first = receiver
            .handle(&headers, body.clone(), |inbound| {
                *seen.lock().unwrap() = Some((
                    inbound.event_type().map(str::to_owned),
                    inbound.idempotency_key().clone(),
                ));
                ok_handler(inbound)
            })
            .await;
        assert_eq!(
            first,
            Reply {
                status: http::StatusCode::OK,
                body: Bytes::from(reply)
            },
            "{profile}"
        );
        let (seen_type, seen_key) = seen.lock().unwrap().clone().unwrap();
        assert_eq!(seen_type.as_deref(), event_type, "{profile}");
        if !key.is_empty() {
            assert_eq!(seen_key.as_str(), key, "{profile}");
        }

        // The sender's retry: acknowledged, handler not run again (B18).
        let runs = AtomicUsize::new(0);
        let second = receiver
            .handle(&headers, body.clone(), |_| {
                runs.fetch_add(1, Ordering::SeqCst);
                async { Ok::<(), std::io::Error>(()) }
            })
            .await;
        assert!(second.status.is_success());
        assert_eq!(runs.load(Ordering::SeqCst), 0, "{profile}");
    }
}

/// The event type comes from the profile's event-type header where it has one (GitHub
/// `X-GitHub-Event`, task-hub `X-Event-Type`, TaskLink `X-Webhook-Event`), else the body.
#[tokio::test]
async fn event_type_comes_from_the_profiles_header() {
    // A real-shaped GitHub push, signed by Python's hmac: the body has no top-level `type`.
    let (headers, body, case) = common::delivery("github push delivery");
    let receiver = receiver_for(Profile::GitHub, &case);
    let inbound = receiver.verify(&headers, body.into()).unwrap();
    assert_eq!(inbound.event_type(), Some("push"));
    assert_eq!(
        inbound.idempotency_key().as_str(),
        "github:72d3162e-cc78-11e3-81ab-4c9367dc0958"
    );

    // 004's flat payload: the type is only in X-Event-Type.
    let (headers, body, case) = common::delivery("task-hub flat task.completed");
    let receiver = receiver_for(Profile::TaskHub, &case);
    let mut seen = None;
    let reply = receiver
        .handle(&headers, body.into(), |inbound| {
            seen = inbound.event_type().map(str::to_owned);
            ok_handler(inbound)
        })
        .await;
    assert_eq!(reply.status, http::StatusCode::OK);
    assert_eq!(seen.as_deref(), Some("task.completed"));

    // The header wins over the body; without it (or with an unusable one) the body's type.
    let (mut headers, body, case) = vector("task-hub task.completed");
    let receiver = receiver_for(Profile::TaskHub, &case);
    let of = |headers: &Pairs| {
        receiver
            .verify(headers, body.clone())
            .unwrap()
            .event_type()
            .map(str::to_owned)
    };
    assert_eq!(of(&headers).as_deref(), Some("task.completed"));
    headers.push(("x-event-type".into(), " ".into()));
    assert_eq!(of(&headers).as_deref(), Some("task.completed"));
    headers.pop();
    headers.push(("X-Event-Type".into(), "task.updated".into()));
    assert_eq!(of(&headers).as_deref(), Some("task.updated"));
    headers.push(("X-Event-Type".into(), "task.deleted".into()));
    assert_eq!(
        of(&headers).as_deref(),
        Some("task.completed"),
        "a repeated header is ambiguous: the body's type"
    );

    // TaskLink: X-Webhook-Event first, the body's `event` otherwise.
    let (mut headers, body, case) = vector("tasklink job.created");
    let receiver = receiver_for(Profile::TaskLink, &case);
    headers.push(("X-Webhook-Event".into(), "job.updated".into()));
    let inbound = receiver.verify(&headers, body).unwrap();
    assert_eq!(inbound.event_type(), Some("job.updated"));

    // A profile without an event-type header ignores look-alikes.
    let (mut headers, body, case) = vector("pg job.completed");
    let receiver = receiver_for(Profile::ProposalGenerator, &case);
    headers.push(("X-Event-Type".into(), "job.created".into()));
    let inbound = receiver.verify(&headers, body).unwrap();
    assert_eq!(inbound.event_type(), Some("job.completed"));
}

#[tokio::test]
async fn task_hub_deduplicates_on_delivery_id() {
    let (mut headers, body, case) = vector("task-hub task.completed");
    headers.push(("X-Delivery-ID".into(), "dlv_42".into()));
    let receiver = receiver_for(Profile::TaskHub, &case);
    let key = receiver
        .verify(&headers, body.clone())
        .unwrap()
        .idempotency_key()
        .clone();
    assert_eq!(key.as_str(), "task-hub:dlv_42");
}

#[tokio::test]
async fn proposal_generator_answers_the_challenge_itself() {
    let secret = Secret::from_raw("your_webhook_secret").unwrap();
    let body = br#"{"type":"webhook.verify","challenge":"c-123"}"#;
    let headers: Pairs = RawBody
        .sign(&secret, &Message::new(body))
        .unwrap()
        .iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let receiver = Receiver::builder(Profile::ProposalGenerator)
        .secret(secret)
        .build()
        .unwrap();
    let runs = AtomicUsize::new(0);
    let reply = receiver
        .handle(&headers, Bytes::from_static(body), |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), std::io::Error>(()) }
        })
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body, Bytes::from_static(br#"{"challenge":"c-123"}"#));
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    // An unsigned challenge is not answered.
    let reply = receiver
        .handle(&Pairs::new(), Bytes::from_static(body), ok_handler)
        .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_identical_deliveries_run_the_handler_once() {
    let (headers, body, case) = vector("tasklink job.created");
    let receiver = Arc::new(receiver_for(Profile::TaskLink, &case));
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (receiver, runs, headers, body) = (
            receiver.clone(),
            runs.clone(),
            headers.clone(),
            body.clone(),
        );
        tasks.push(tokio::spawn(async move {
            receiver
                .handle(&headers, body, |_| async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Ok::<(), std::io::Error>(())
                })
                .await
                .status
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap().as_u16());
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    // One 200 from the run; the rest 409 while it ran, or 200 if they came after it.
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 409),
        "{statuses:?}"
    );
    assert!(statuses.contains(&200));
    let later = receiver.handle(&headers, body, ok_handler).await;
    assert_eq!(later.status, 200);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_failed_handler_releases_the_key_for_the_retry() {
    let (headers, body, case) = vector("tasklink job.created");
    let receiver = receiver_for(Profile::TaskLink, &case);
    let failed = receiver
        .handle(&headers, body.clone(), |_| async {
            Err::<(), _>("database down")
        })
        .await;
    assert_eq!(failed.status, 500);
    let runs = AtomicUsize::new(0);
    let retried = receiver
        .handle(&headers, body, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), std::io::Error>(()) }
        })
        .await;
    assert_eq!(retried.status, 200);
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn retention_covers_days_later_retries_then_expires() {
    let store = MemoryIdempotencyStore::default();
    let key = IdempotencyKey::new("tasklink:evt_1");
    let t0 = Timestamp::from_unix(1_700_000_000);
    let retention = Retention::default();
    assert_eq!(
        store.claim(&key, t0, retention).await.unwrap(),
        Claim::Acquired
    );
    store.complete(&key, t0, retention).await.unwrap();
    // TaskLink's last retry comes 14.5 h later; Standard Webhooks' ~28 h (B19).
    for hours in [1, 15, 28, 71] {
        let later = Timestamp::from_unix(t0.as_unix() + hours * 3600);
        assert_eq!(
            store.claim(&key, later, retention).await.unwrap(),
            Claim::Done,
            "{hours} h"
        );
    }
    let expired = Timestamp::from_unix(t0.as_unix() + 72 * 3600 + 1);
    assert_eq!(
        store.claim(&key, expired, retention).await.unwrap(),
        Claim::Acquired
    );

    // An in-flight claim whose handler crashed expires after the in-flight window.
    let crashed = IdempotencyKey::new("tasklink:evt_2");
    assert_eq!(
        store.claim(&crashed, t0, retention).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim(&crashed, t0, retention).await.unwrap(),
        Claim::InProgress
    );
    let after = Timestamp::from_unix(t0.as_unix() + 301);
    assert_eq!(
        store.claim(&crashed, after, retention).await.unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn a_full_memory_store_refuses_when_told_to() {
    let store = MemoryIdempotencyStore::with_capacity(2).when_full(WhenFull::Refuse);
    let now = Timestamp::from_unix(1_700_000_000);
    let retention = Retention::default();
    for id in ["a", "b"] {
        let key = IdempotencyKey::new(id);
        store.claim(&key, now, retention).await.unwrap();
        store.complete(&key, now, retention).await.unwrap();
    }
    let c = IdempotencyKey::new("c");
    let full = Err(StoreError::full(2));
    assert_eq!(store.claim(&c, now, retention).await, full);
    // Again a little later: nothing can have expired yet, so still full.
    let soon = Timestamp::from_unix(now.as_unix() + 60);
    assert_eq!(store.claim(&c, soon, retention).await, full);
    assert_eq!(
        store
            .claim(&IdempotencyKey::new("a"), now, retention)
            .await
            .unwrap(),
        Claim::Done
    );
    // Once records expire, room is made.
    let later = Timestamp::from_unix(now.as_unix() + 73 * 3600);
    assert_eq!(
        store.claim(&c, later, retention).await.unwrap(),
        Claim::Acquired
    );
}

/// The default: a full store takes every new delivery and forgets its oldest processed
/// ones, so a receiver busier than `capacity / retention` keeps working.
#[tokio::test]
async fn a_full_memory_store_forgets_its_oldest_processed_deliveries() {
    let store = MemoryIdempotencyStore::with_capacity(10);
    let t0 = 1_700_000_000;
    let retention = Retention::default();
    let key = |i: i64| IdempotencyKey::new(format!("delivery-{i}"));
    for i in 0..10 {
        let at = Timestamp::from_unix(t0 + i);
        assert_eq!(
            store.claim(&key(i), at, retention).await,
            Ok(Claim::Acquired)
        );
        store.complete(&key(i), at, retention).await.unwrap();
    }
    let at = Timestamp::from_unix(t0 + 10);
    assert_eq!(
        store.claim(&key(10), at, retention).await,
        Ok(Claim::Acquired)
    );
    assert_eq!(store.len(), 10);
    for i in 1..10 {
        assert_eq!(
            store.claim(&key(i), at, retention).await,
            Ok(Claim::Done),
            "{i}"
        );
    }
    assert_eq!(
        store.claim(&key(10), at, retention).await,
        Ok(Claim::InProgress)
    );
    // The oldest was forgotten: retried now, it runs again (at-least-once).
    assert_eq!(
        store.claim(&key(0), at, retention).await,
        Ok(Claim::Acquired)
    );
    assert_eq!(store.len(), 10);
}

#[tokio::test]
async fn claims_in_flight_are_never_forgotten() {
    let store = MemoryIdempotencyStore::with_capacity(3);
    let now = Timestamp::from_unix(1_700_000_000);
    let retention = Retention::default();
    let keys = ["a", "b", "c"].map(IdempotencyKey::new);
    for key in &keys {
        assert_eq!(store.claim(key, now, retention).await, Ok(Claim::Acquired));
    }
    let d = IdempotencyKey::new("d");
    assert_eq!(
        store.claim(&d, now, retention).await,
        Err(StoreError::full(3))
    );
    for key in &keys {
        assert_eq!(
            store.claim(key, now, retention).await,
            Ok(Claim::InProgress)
        );
    }
    // Once one is processed, it is the one that makes room.
    store.complete(&keys[0], now, retention).await.unwrap();
    assert_eq!(store.claim(&d, now, retention).await, Ok(Claim::Acquired));
    assert_eq!(
        store.claim(&keys[1], now, retention).await,
        Ok(Claim::InProgress)
    );
    // `a` was forgotten (remembered, it would answer `Done`), and the store is full of
    // claims in flight again.
    assert_eq!(
        store.claim(&keys[0], now, retention).await,
        Err(StoreError::full(3))
    );
}

#[tokio::test]
async fn a_failing_store_means_503_not_processing() {
    let (headers, body, case) = vector("tasklink job.created");
    let receiver = Receiver::builder(Profile::TaskLink)
        .secret(Secret::from_raw(case["secret"].as_str().unwrap()).unwrap())
        .store(common::UnreachableStore { claims: false })
        .build()
        .unwrap();
    let runs = AtomicUsize::new(0);
    let reply = receiver
        .handle(&headers, body, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), std::io::Error>(()) }
        })
        .await;
    assert_eq!(reply.status, 503);
    assert_eq!(runs.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn taskon_rejections_use_its_reply_shape() {
    let (mut headers, body, case) = vector("taskon token");
    let receiver = receiver_for(Profile::TaskOn, &case);
    headers[1].1 = "0".repeat(64);
    let reply = receiver.handle(&headers, body, ok_handler).await;
    assert_eq!(reply.status, 401);
    let parsed: Value = serde_json::from_slice(&reply.body).unwrap();
    assert_eq!(parsed["result"], false);
    assert!(parsed["error"].is_string());
    assert!(
        Receiver::builder(Profile::TaskOn)
            .secret(Secret::from_raw("k").unwrap())
            .build()
            .is_err()
    );
}

#[tokio::test]
async fn a_flood_of_invalid_signatures_stores_nothing() {
    let (headers, body, case) = vector("tasklink job.created");
    let store = MemoryIdempotencyStore::default();
    let receiver = Receiver::builder(Profile::TaskLink)
        .secret(Secret::from_raw(case["secret"].as_str().unwrap()).unwrap())
        .store(store.clone())
        .build()
        .unwrap();
    for i in 0..10_000u32 {
        let mut forged = headers.clone();
        forged[0].1 = format!("evt_{i}");
        let reply = receiver.handle(&forged, body.clone(), ok_handler).await;
        assert_eq!(reply.status, 401);
    }
    // F56: invalid requests leave no state behind, so memory stays bounded.
    assert!(store.is_empty());
    // Oversized bodies are refused before any HMAC work.
    let big = Bytes::from(vec![b'x'; (1 << 20) + 1]);
    let reply = receiver.handle(&headers, big, ok_handler).await;
    assert_eq!(reply.status, 413);
    assert!(matches!(
        receiver
            .verify(&headers, Bytes::from(vec![0u8; (1 << 20) + 1]))
            .unwrap_err(),
        Rejection::TooLarge { .. }
    ));
}

#[cfg(feature = "sqlite")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_store_claims_exactly_once_and_persists() {
    use hookrelay::receive::SqliteIdempotencyStore;

    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-idem-{}", std::process::id()));
    let _ = std::fs::remove_file(&dir);
    let url = format!("sqlite://{}", dir.display());
    let store = SqliteIdempotencyStore::connect(&url).await.unwrap();
    let key = IdempotencyKey::new("tasklink:evt_9");
    let now = Timestamp::from_unix(1_700_000_000);
    let retention = Retention::default();

    let mut claims = Vec::new();
    for _ in 0..20 {
        let (store, key) = (store.clone(), key.clone());
        claims.push(tokio::spawn(async move {
            store.claim(&key, now, retention).await.unwrap()
        }));
    }
    let mut acquired = 0;
    for claim in claims {
        if claim.await.unwrap() == Claim::Acquired {
            acquired += 1;
        }
    }
    assert_eq!(acquired, 1);
    store.complete(&key, now, retention).await.unwrap();

    // A second connection (a restarted process) sees the record.
    let reopened = SqliteIdempotencyStore::connect(&url).await.unwrap();
    assert_eq!(
        reopened.claim(&key, now, retention).await.unwrap(),
        Claim::Done
    );
    let expired = Timestamp::from_unix(now.as_unix() + 72 * 3600 + 1);
    assert_eq!(reopened.sweep(expired).await.unwrap(), 1);

    // Release forgets only in-flight claims.
    let other = IdempotencyKey::new("tasklink:evt_10");
    assert_eq!(
        reopened.claim(&other, now, retention).await.unwrap(),
        Claim::Acquired
    );
    reopened.release(&other).await.unwrap();
    assert_eq!(
        reopened.claim(&other, now, retention).await.unwrap(),
        Claim::Acquired
    );

    // Through the receiver.
    let (headers, body, case) = vector("tasklink job.created");
    let receiver = Receiver::builder(Profile::TaskLink)
        .secret(Secret::from_raw(case["secret"].as_str().unwrap()).unwrap())
        .store(reopened)
        .build()
        .unwrap();
    assert_eq!(
        receiver
            .handle(&headers, body.clone(), ok_handler)
            .await
            .status,
        200
    );
    let runs = AtomicUsize::new(0);
    receiver
        .handle(&headers, body, |_| {
            runs.fetch_add(1, Ordering::SeqCst);
            async { Ok::<(), std::io::Error>(()) }
        })
        .await;
    assert_eq!(runs.load(Ordering::SeqCst), 0);
    let _ = std::fs::remove_file(&dir);
}
