//! The receiver's inbox (issue #21; CHECKLIST I.76, I.78): the store conformance suite on
//! memory and SQLite, the accept path (nothing 2xx before stored, 503 when the store fails,
//! duplicates absorbed, the official Standard Webhooks vector), and workers (retries on the
//! policy's schedule, dead letters with the last error, replay, panics, unparseable bodies,
//! per-key order).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use hookrelay::profile::Profile;
use hookrelay::receive::axum::InboxLayer;
use hookrelay::receive::inbox::{
    Accepted, AttemptResult, ClaimedEntry, EntryStatus, Inbox, InboxAttempt, InboxCounts,
    InboxEntry, InboxId, InboxLog, InboxPage, InboxQuery, InboxQueue, InboxWorker, MemoryInbox,
    NewEntry, Recorded, SqliteInbox,
};
use hookrelay::receive::{Delivery, Receiver};
use hookrelay::retry::{RetryPolicy, UnixMillis};
use hookrelay::{FixedClock, Secret, StoreError, Timestamp};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;

#[path = "support/inbox_conformance.rs"]
mod conformance;

mod memory {
    use super::*;
    hookrelay_inbox_conformance!(async { MemoryInbox::new() });
}

mod sqlite {
    use super::*;
    hookrelay_inbox_conformance!(async { SqliteInbox::connect("sqlite::memory:").await.unwrap() });
}

// The official Standard Webhooks test vector (standard-webhooks/standard-webhooks,
// libraries' test suites): secret, id, timestamp, payload and signature as published.
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const SW_TS: i64 = 1_614_265_330;
const SW_BODY: &str = r#"{"test": 2432232314}"#;
const SW_SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

fn sw_receiver() -> Receiver {
    Receiver::builder(Profile::StandardWebhooks)
        .secret(Secret::from_base64(SW_SECRET).unwrap())
        .clock(FixedClock(Timestamp::from_unix(SW_TS)))
        .build()
        .unwrap()
}

fn sw_request(signature: &str) -> Request<Body> {
    Request::post("/hook")
        .header("content-type", "application/json")
        .header("webhook-id", SW_ID)
        .header("webhook-timestamp", SW_TS.to_string())
        .header("webhook-signature", signature)
        .header("authorization", "Bearer not-kept")
        .body(Body::from(SW_BODY))
        .unwrap()
}

fn router<S: hookrelay::receive::inbox::InboxStore>(inbox: Inbox<S>) -> Router {
    Router::new()
        .route("/hook", post(|| async { StatusCode::IM_A_TEAPOT }))
        .route_layer(InboxLayer::new(sw_receiver(), inbox))
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test]
async fn the_official_vector_is_stored_then_answered_and_a_duplicate_absorbed() {
    let inbox = Inbox::new(SqliteInbox::connect("sqlite::memory:").await.unwrap());
    let app = router(inbox.clone());
    let (status, body) = call(&app, sw_request(SW_SIGNATURE)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(&body[..], br#"{"received":true}"#);
    let (status, _) = call(&app, sw_request(SW_SIGNATURE)).await;
    assert_eq!(status, StatusCode::OK, "the sender's retry is acknowledged");
    let page = inbox.list(&InboxQuery::new()).await.unwrap();
    assert_eq!(page.entries.len(), 1, "stored once");
    let entry = &page.entries[0];
    assert_eq!(entry.accepted.body, SW_BODY.as_bytes());
    assert_eq!(entry.accepted.message_id.as_deref(), Some(SW_ID));
    assert_eq!(entry.accepted.timestamp, Some(Timestamp::from_unix(SW_TS)));
    let names: Vec<&str> = entry
        .accepted
        .headers
        .iter()
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "content-type",
            "webhook-id",
            "webhook-timestamp",
            "webhook-signature"
        ]
    );
    assert!(
        !names.contains(&"authorization"),
        "credentials are not kept"
    );
    let inbound = entry.inbound();
    assert_eq!(inbound.id(), Some(SW_ID));
    assert_eq!(inbound.profile(), Profile::StandardWebhooks);
}

#[tokio::test]
async fn a_forged_request_is_refused_and_nothing_is_stored() {
    let inbox = Inbox::new(MemoryInbox::new());
    let app = router(inbox.clone());
    let forged = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OF=";
    let (status, _) = call(&app, sw_request(forged)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(inbox.counts().await.unwrap(), InboxCounts::default());
}

/// A store whose accepts fail, or wait for a gate.
#[derive(Debug, Default)]
struct Faulty {
    inner: MemoryInbox,
    fail: bool,
    gate: Option<Arc<tokio::sync::Semaphore>>,
}

impl InboxQueue for Faulty {
    async fn accept(&self, entry: NewEntry) -> Result<Accepted, StoreError> {
        if self.fail {
            return Err(StoreError::retryable(std::io::Error::other("disk gone")));
        }
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await.unwrap();
        }
        self.inner.accept(entry).await
    }
    async fn claim(
        &self,
        now: UnixMillis,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedEntry>, StoreError> {
        self.inner.claim(now, lease, limit).await
    }
    async fn record(
        &self,
        id: InboxId,
        token: u64,
        attempt: InboxAttempt,
        result: AttemptResult,
    ) -> Result<Recorded, StoreError> {
        self.inner.record(id, token, attempt, result).await
    }
    async fn next_due(&self) -> Result<Option<UnixMillis>, StoreError> {
        self.inner.next_due().await
    }
}

impl InboxLog for Faulty {
    async fn entry(
        &self,
        id: InboxId,
    ) -> Result<Option<(InboxEntry, Vec<InboxAttempt>)>, StoreError> {
        self.inner.entry(id).await
    }
    async fn list(&self, query: &InboxQuery) -> Result<InboxPage, StoreError> {
        self.inner.list(query).await
    }
    async fn counts(&self) -> Result<InboxCounts, StoreError> {
        self.inner.counts().await
    }
    async fn replay(&self, id: InboxId, now: UnixMillis) -> Result<bool, StoreError> {
        self.inner.replay(id, now).await
    }
    async fn replay_matching(
        &self,
        query: &InboxQuery,
        now: UnixMillis,
    ) -> Result<u64, StoreError> {
        self.inner.replay_matching(query, now).await
    }
    async fn purge(&self, before: UnixMillis) -> Result<u64, StoreError> {
        self.inner.purge(before).await
    }
}

#[tokio::test]
async fn a_store_failure_answers_503_so_the_sender_retries() {
    let app = router(Inbox::new(Faulty {
        fail: true,
        ..Faulty::default()
    }));
    let (status, body) = call(&app, sw_request(SW_SIGNATURE)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        !String::from_utf8_lossy(&body).contains("disk"),
        "the reply stays generic"
    );
}

#[tokio::test]
async fn the_reply_waits_for_the_store() {
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let inbox = Inbox::new(Faulty {
        gate: Some(gate.clone()),
        ..Faulty::default()
    });
    let app = router(inbox.clone());
    let mut reply = tokio::spawn(async move { call(&app, sw_request(SW_SIGNATURE)).await });
    let early = tokio::time::timeout(Duration::from_millis(200), &mut reply).await;
    assert!(early.is_err(), "no answer while the store has not returned");
    assert_eq!(inbox.counts().await.unwrap().pending, 0);
    gate.add_permits(1);
    let (status, _) = reply.await.unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(inbox.counts().await.unwrap().pending, 1);
}

/// Stores a task-hub delivery whose body is `body` through the receiver, as a sender would.
async fn deliver(
    receiver: &Receiver,
    inbox: &Inbox<impl hookrelay::receive::inbox::InboxStore>,
    body: &str,
) {
    use hookrelay::scheme::{Message, Scheme, XHub};
    let secret = Secret::from_raw("hub-secret").unwrap();
    let headers = XHub::new()
        .sign(&secret, &Message::new(body.as_bytes()))
        .unwrap()
        .to_header_map()
        .unwrap();
    let reply = receiver
        .accept(&headers, Bytes::from(body.to_owned()), inbox)
        .await;
    assert_eq!(reply.status, 200);
}

fn hub_receiver() -> Receiver {
    Receiver::builder(Profile::TaskHub)
        .secret(Secret::from_raw("hub-secret").unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn failures_retry_on_the_policy_schedule_then_dead_letter_and_a_replay_runs_again() {
    let inbox = Inbox::new(MemoryInbox::new());
    deliver(
        &hub_receiver(),
        &inbox,
        r#"{"type":"task.created","data":{"taskId":"1"}}"#,
    )
    .await;
    let runs = Arc::new(AtomicUsize::new(0));
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let worker = {
        let (runs, fail) = (runs.clone(), fail.clone());
        InboxWorker::builder(inbox.clone())
            .policy(
                RetryPolicy::builder()
                    .delays([Duration::from_secs(10), Duration::from_secs(60)])
                    .max_attempts(3)
                    .jitter(hookrelay::retry::Jitter::None)
                    .without_max_age()
                    .build()
                    .unwrap(),
            )
            .handler(move |delivery: Delivery| {
                let n = runs.fetch_add(1, Ordering::SeqCst) + 1;
                let fail = fail.load(Ordering::SeqCst);
                async move {
                    assert_eq!(delivery.event["data"]["taskId"], "1");
                    if fail {
                        Err(format!("database down (run {n})"))
                    } else {
                        Ok(())
                    }
                }
            })
            .build()
            .unwrap()
    };
    let t0 = UnixMillis::now();
    let secs = |s: u64| t0.saturating_add(Duration::from_secs(s));
    assert_eq!(worker.run_due(secs(1)).await.unwrap(), 1);
    let (entry, _) = inbox.entry(InboxId::new(1)).await.unwrap().unwrap();
    assert_eq!(entry.status, EntryStatus::Pending);
    assert_eq!(
        entry.next_attempt_at,
        secs(11),
        "first retry 10 s after the failure"
    );
    assert_eq!(worker.run_due(secs(10)).await.unwrap(), 0, "not due yet");
    assert_eq!(worker.run_due(secs(11)).await.unwrap(), 1);
    let (entry, _) = inbox.entry(InboxId::new(1)).await.unwrap().unwrap();
    assert_eq!(entry.next_attempt_at, secs(71), "second retry 60 s after");
    assert_eq!(worker.run_due(secs(71)).await.unwrap(), 1);
    let (entry, attempts) = inbox.entry(InboxId::new(1)).await.unwrap().unwrap();
    assert_eq!(entry.status, EntryStatus::Dead);
    assert_eq!(entry.last_error.as_deref(), Some("database down (run 3)"));
    assert_eq!(attempts.len(), 3);
    assert_eq!(
        worker.run_due(secs(10_000)).await.unwrap(),
        0,
        "dead letters stay dead"
    );

    fail.store(false, Ordering::SeqCst);
    assert!(inbox.replay(InboxId::new(1)).await.unwrap());
    assert_eq!(worker.run_due(UnixMillis::now()).await.unwrap(), 1);
    let (entry, attempts) = inbox.entry(InboxId::new(1)).await.unwrap().unwrap();
    assert_eq!(entry.status, EntryStatus::Done);
    assert!(attempts[3].manual && attempts[3].error.is_none());
    assert_eq!(runs.load(Ordering::SeqCst), 4);
}

#[derive(Debug, serde::Deserialize)]
struct TaskEvent {
    #[allow(dead_code)]
    data: TaskData,
}

#[derive(Debug, serde::Deserialize)]
struct TaskData {
    #[serde(rename = "taskId")]
    #[allow(dead_code)]
    task_id: String,
}

#[tokio::test]
async fn a_body_that_does_not_parse_is_dead_at_once_and_a_panic_is_a_failed_attempt() {
    let inbox = Inbox::new(MemoryInbox::new());
    deliver(
        &hub_receiver(),
        &inbox,
        r#"{"type":"task.created","data":{"taskId":7}}"#,
    )
    .await;
    let worker = InboxWorker::builder(inbox.clone())
        .handler(|_: Delivery<hookrelay::receive::Json<TaskEvent>>| async { Ok::<(), String>(()) })
        .build()
        .unwrap();
    worker.run_due(UnixMillis::now()).await.unwrap();
    let (entry, _) = inbox.entry(InboxId::new(1)).await.unwrap().unwrap();
    assert_eq!(entry.status, EntryStatus::Dead);
    assert!(
        entry
            .last_error
            .unwrap()
            .starts_with("the body does not parse")
    );

    let inbox = Inbox::new(MemoryInbox::new());
    deliver(
        &hub_receiver(),
        &inbox,
        r#"{"type":"task.created","data":{"taskId":"7"}}"#,
    )
    .await;
    let worker = InboxWorker::builder(inbox.clone())
        .handler(|_: Delivery| async {
            if true {
                panic!("bug")
            }
            Ok::<(), String>(())
        })
        .build()
        .unwrap();
    worker.run_due(UnixMillis::now()).await.unwrap();
    let (entry, _) = inbox.entry(InboxId::new(1)).await.unwrap().unwrap();
    assert_eq!(entry.status, EntryStatus::Pending, "retried");
    assert_eq!(entry.last_error.as_deref(), Some("the handler panicked"));
}

#[tokio::test]
async fn a_spawned_worker_is_woken_by_an_accept_and_keeps_order_per_key() {
    let inbox = Inbox::ordered_by(
        SqliteInbox::connect("sqlite::memory:").await.unwrap(),
        |inbound| {
            let event: serde_json::Value = inbound.json().ok()?;
            Some(event["data"]["job"].as_str()?.to_owned())
        },
    );
    let seen: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let handle = {
        let seen = seen.clone();
        InboxWorker::builder(inbox.clone())
            .concurrency(8)
            .poll_interval(Duration::from_secs(3600))
            .handler(move |delivery: Delivery| {
                let seen = seen.clone();
                async move {
                    let job = delivery.event["data"]["job"].as_str().unwrap().to_owned();
                    let n = delivery.event["data"]["n"].as_u64().unwrap();
                    // Later events of a job finish faster: only the order key keeps them in order.
                    tokio::time::sleep(Duration::from_millis(20 - n * 4)).await;
                    seen.lock().unwrap().push((job, n));
                    Ok::<(), String>(())
                }
            })
            .build()
            .unwrap()
            .spawn()
    };
    let receiver = hub_receiver();
    for n in 0..5u64 {
        for job in ["a", "b"] {
            let body = format!(r#"{{"type":"job.step","data":{{"job":"{job}","n":{n}}}}}"#);
            deliver(&receiver, &inbox, &body).await;
        }
    }
    // Bounded wait: the poll interval is an hour, so only the accept's wake-up can start them.
    for _ in 0..200 {
        if inbox.counts().await.unwrap().done == 10 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    handle.shutdown().await;
    assert_eq!(inbox.counts().await.unwrap().done, 10);
    let seen = seen.lock().unwrap();
    for job in ["a", "b"] {
        let order: Vec<u64> = seen
            .iter()
            .filter(|(j, _)| j == job)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(order, vec![0, 1, 2, 3, 4], "job {job} in order");
    }
}

#[test]
fn a_worker_without_a_handler_or_with_zero_concurrency_is_refused() {
    use hookrelay::receive::inbox::WorkerConfigError;
    let inbox = Inbox::new(MemoryInbox::new());
    assert_eq!(
        InboxWorker::builder(inbox.clone()).build().unwrap_err(),
        WorkerConfigError::MissingHandler
    );
    let handler = |_: Delivery| async { Ok::<(), String>(()) };
    let err = InboxWorker::builder(inbox.clone())
        .handler(handler)
        .concurrency(0)
        .build()
        .unwrap_err();
    assert_eq!(err, WorkerConfigError::ZeroConcurrency);
    let err = InboxWorker::builder(inbox)
        .handler(handler)
        .lease(Duration::from_millis(10))
        .build()
        .unwrap_err();
    assert_eq!(err, WorkerConfigError::LeaseTooShort);
    assert!("abc".parse::<InboxId>().is_err() && "0".parse::<InboxId>().is_err());
    assert_eq!("dead".parse::<EntryStatus>(), Ok(EntryStatus::Dead));
}
