//! The delivery features the four systems promise, against a scripted transport and a
//! manual clock: the verification handshake, test events, progress throttling, expiry,
//! pacing from the receiver, manual retry and recovery, retention, endpoint health and
//! ordering.

mod send_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hmac::{Hmac, Mac};
use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{CircuitBreaker, DisableReason, Jitter, RetryPolicy, UnixMillis};
use hookrelay::send::store::DeadReason;
use hookrelay::send::{
    DataPointer, DeliveryKind, DeliveryLog, DeliveryOrder, DeliveryStatus, Endpoint,
    EndpointBuilder, EndpointRegistry, EndpointStatus, HandshakeFailure, LogRetention, ManualClock,
    MemoryStore, Notification, OutboundRequest, Sender, Transport, TransportError,
    TransportResponse, Verification,
};
use send_support::{ScriptedTransport, status, status_with};
use serde_json::{Value, json};
use sha2::Sha256;

const T0: u64 = 1_700_000_000;
const SECRET: &str = "your-secret-key";

fn setup() -> (Sender<MemoryStore>, ManualClock, ScriptedTransport) {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    (sender, clock, ScriptedTransport::new())
}

fn builder(url: &str, profile: Profile) -> EndpointBuilder {
    Endpoint::builder(url, profile)
        .secret(Secret::from_raw(SECRET).unwrap())
        .without_rate_limit()
}

/// Retries every second, up to `attempts` attempts, no jitter.
fn every_second(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .delays([Duration::from_secs(1)])
        .max_attempts(attempts)
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

fn hex_hmac(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn body_json(seen: &send_support::Seen) -> Value {
    serde_json::from_slice(&seen.body).unwrap()
}

// ---------------------------------------------------------------------------------------
// 1. The verification handshake (001).

/// How a test receiver answers a handshake request.
type Answer = fn(&Value) -> Result<TransportResponse, TransportError>;

/// Answers `webhook.verify` as the receiver is told to: echo, echo something else, or fail.
#[derive(Clone)]
struct Handshaker {
    answer: Answer,
    seen: Arc<Mutex<Vec<OutboundRequest>>>,
}

impl Handshaker {
    fn new(answer: Answer) -> Self {
        Handshaker {
            answer,
            seen: Arc::default(),
        }
    }
}

impl Transport for Handshaker {
    async fn send(&self, request: OutboundRequest) -> Result<TransportResponse, TransportError> {
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        self.seen.lock().unwrap().push(request);
        (self.answer)(&body)
    }
}

fn echo(body: &Value) -> Result<TransportResponse, TransportError> {
    let reply = json!({ "challenge": body["challenge"] }).to_string();
    status_with(200, &[], &reply)
}

#[tokio::test]
async fn handshake_activates_a_proposal_generator_endpoint_that_echoes() {
    let (sender, _clock, transport) = setup();
    let id = sender
        .add_endpoint(
            builder("https://pg.example/hook", Profile::ProposalGenerator)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
    assert_eq!(endpoint.status(), EndpointStatus::PendingVerification);

    // Nothing is delivered to it before the handshake.
    let before = sender
        .publish(OutgoingEvent::new("job.started", json!({"job_id": "j1"})))
        .await
        .unwrap();
    assert!(sender.deliveries_of(&before).await.unwrap().is_empty());
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    assert_eq!(dispatcher.run_due().await.unwrap(), 0);

    let handshaker = Handshaker::new(echo);
    let outcome = sender.verify_endpoint(&handshaker, &id).await.unwrap();
    assert_eq!(outcome, Verification::Verified);
    let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
    assert_eq!(endpoint.status(), EndpointStatus::Active);
    assert_eq!(endpoint.status_note(), None);

    // The request: the document's shape, signed over the raw body.
    let requests = handshaker.seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1);
    let body: Value = serde_json::from_slice(&requests[0].body).unwrap();
    assert_eq!(body["type"], "webhook.verify");
    let challenge = body["challenge"].as_str().unwrap().to_owned();
    assert!(challenge.len() >= 16, "random: {challenge}");
    assert_eq!(
        requests[0].headers["x-webhook-signature"].to_str().unwrap(),
        hex_hmac(&requests[0].body)
    );

    // Now events flow.
    let after = sender
        .publish(OutgoingEvent::new("job.started", json!({"job_id": "j2"})))
        .await
        .unwrap();
    assert_eq!(sender.deliveries_of(&after).await.unwrap().len(), 1);
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);

    // Each run sends a new challenge.
    sender.verify_endpoint(&handshaker, &id).await.unwrap();
    let requests = handshaker.seen.lock().unwrap().clone();
    let second: Value = serde_json::from_slice(&requests[1].body).unwrap();
    assert_ne!(second["challenge"].as_str().unwrap(), challenge);
}

#[tokio::test]
async fn a_failed_handshake_leaves_the_endpoint_pending_with_the_reason() {
    fn wrong(_: &Value) -> Result<TransportResponse, TransportError> {
        status_with(200, &[], r#"{"challenge":"something else"}"#)
    }
    fn refused(_: &Value) -> Result<TransportResponse, TransportError> {
        status(403)
    }
    fn silent(_: &Value) -> Result<TransportResponse, TransportError> {
        Err(TransportError::Timeout)
    }
    fn not_json(_: &Value) -> Result<TransportResponse, TransportError> {
        status_with(200, &[], "ok")
    }
    let cases: [(Answer, HandshakeFailure, &str); 4] = [
        (wrong, HandshakeFailure::WrongEcho, "not echoed"),
        (refused, HandshakeFailure::Status(403), "answered 403"),
        (silent, HandshakeFailure::Timeout, "in time"),
        (not_json, HandshakeFailure::WrongEcho, "not echoed"),
    ];
    for (answer, failure, note) in cases {
        let (sender, _clock, _) = setup();
        let id = sender
            .add_endpoint(
                builder("https://pg.example/hook", Profile::ProposalGenerator)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        let outcome = sender
            .verify_endpoint(&Handshaker::new(answer), &id)
            .await
            .unwrap();
        assert_eq!(outcome, Verification::Failed(failure));
        let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
        assert_eq!(endpoint.status(), EndpointStatus::PendingVerification);
        assert!(endpoint.status_note().unwrap().contains(note), "{note}");
        // Retrying is one call, and success clears the note.
        let outcome = sender
            .verify_endpoint(&Handshaker::new(echo), &id)
            .await
            .unwrap();
        assert_eq!(outcome, Verification::Verified);
        let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
        assert_eq!(endpoint.status(), EndpointStatus::Active);
        assert_eq!(endpoint.status_note(), None);
    }
}

#[tokio::test]
async fn other_profiles_opt_in_to_the_handshake() {
    let (sender, _clock, _) = setup();
    let id = sender
        .add_endpoint(
            builder("https://hub.example/hook", Profile::TaskHub)
                .status(EndpointStatus::PendingVerification)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let handshaker = Handshaker::new(echo);
    assert_eq!(
        sender.verify_endpoint(&handshaker, &id).await.unwrap(),
        Verification::Verified
    );
    let request = handshaker.seen.lock().unwrap()[0].clone();
    assert_eq!(
        request.headers["x-hub-signature"].to_str().unwrap(),
        format!("sha256={}", hex_hmac(&request.body))
    );
}

// ---------------------------------------------------------------------------------------
// 2. Test events (001, 004).

#[tokio::test]
async fn a_test_event_carries_the_custom_payload_signed_and_marked() {
    let (sender, _clock, transport) = setup();
    let url = "https://hub.example/hook";
    // Subscribed to something else entirely: a test goes to the endpoint anyway.
    let id = sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .subscribe("system.*")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let message = sender
        .send_test(&id, Some(json!({"taskId": "123", "status": "completed"})))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let seen = transport.seen_at(url);
    let body = body_json(&seen[0]);
    assert_eq!(body["type"], "webhook.test");
    assert_eq!(
        body["data"],
        json!({"taskId": "123", "status": "completed"})
    );
    assert_eq!(
        seen[0].header("x-hub-signature").unwrap(),
        format!("sha256={}", hex_hmac(&seen[0].body))
    );
    assert_eq!(seen[0].header("x-event-type"), Some("webhook.test"));
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.kind, DeliveryKind::Test);
    assert_eq!(record.status, DeliveryStatus::Delivered);
    assert_eq!(sender.store().attempts(&record.id).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// 2b. What a profile cannot put on the wire is refused at publish time.

#[tokio::test]
async fn publish_refuses_ids_and_types_the_endpoints_profiles_cannot_send() {
    use hookrelay::profile::{EventField, FieldProblem};
    use hookrelay::send::{LogQuery, PublishError};

    let (sender, _clock, transport) = setup();
    let sw = "https://sw.example/hook";
    let hub = "https://hub.example/hook";
    sender
        .add_endpoint(
            builder(sw, Profile::StandardWebhooks)
                .subscribe("task.*")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    sender
        .add_endpoint(builder(hub, Profile::TaskHub).build().unwrap())
        .await
        .unwrap();
    let refused = |result: Result<_, PublishError>| match result {
        Err(PublishError::Unsendable(e)) => (e.profile(), e.field(), e.problem()),
        other => panic!("expected Unsendable, got {other:?}"),
    };
    let event = |kind: &str, id: &str| OutgoingEvent::new(kind, json!({})).with_id(id.into());

    // A `.` in a Standard Webhooks id would let `{id}.{ts}.{body}` be forged.
    assert_eq!(
        refused(sender.publish(event("task.created", "msg.1")).await),
        (
            Some(Profile::StandardWebhooks),
            EventField::Id,
            FieldProblem::Dot
        )
    );
    // Header injection through the type (task-hub's X-Event-Type), for any profile.
    assert_eq!(
        refused(
            sender
                .publish(event("task.created\r\nX-Injected: 1", "evt_1"))
                .await
        ),
        (None, EventField::Type, FieldProblem::LineBreak)
    );
    assert_eq!(
        refused(sender.publish(event("", "evt_1")).await),
        (None, EventField::Type, FieldProblem::Empty)
    );
    assert_eq!(
        refused(sender.publish(event("task.created", "evt\u{0}1")).await),
        (None, EventField::Id, FieldProblem::ControlCharacter)
    );
    // A batch with one such event publishes nothing.
    assert!(matches!(
        sender
            .publish_batch(vec![
                event("task.created", "evt_ok"),
                event("task.updated", "msg.2")
            ])
            .await,
        Err(PublishError::Unsendable(_))
    ));
    let stored = sender
        .store()
        .log_all(&LogQuery::default(), hookrelay::retry::UnixMillis::now())
        .await
        .unwrap();
    assert!(stored.is_empty(), "nothing was stored: {stored:?}");

    // Only the endpoints the event goes to count: the Standard Webhooks endpoint does not
    // take `system.*`, and task-hub carries the id in the body only.
    let message = sender
        .publish(event("system.error", "msg.3"))
        .await
        .unwrap();
    assert_eq!(sender.deliveries_of(&message).await.unwrap().len(), 1);
    // A test event (fresh id, fixed type) is sendable on every profile.
    for endpoint in sender.store().endpoints().await.unwrap() {
        sender.send_test(endpoint.id(), None).await.unwrap();
    }
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    transport.always(sw, status(200));
    transport.always(hub, status(200));
    assert_eq!(dispatcher.run_due().await.unwrap(), 3);
    let seen = transport.seen_at(hub);
    assert_eq!(seen[0].header("x-event-type"), Some("system.error"));
}

// ---------------------------------------------------------------------------------------
// 3. `job.progress` throttling (001).

fn progress(job: &str, percent: u32) -> OutgoingEvent {
    OutgoingEvent::new(
        "job.progress",
        json!({"job_id": job, "progress": {"percentage": percent}}),
    )
}

async fn verified_pg(sender: &Sender<MemoryStore>, url: &str) {
    sender
        .add_endpoint(
            builder(url, Profile::ProposalGenerator)
                .status(EndpointStatus::Active)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn the_first_progress_update_goes_at_once_and_a_burst_becomes_one_delivery_of_the_last() {
    let (sender, clock, transport) = setup();
    let url = "https://pg.example/hook";
    verified_pg(&sender, url).await;
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    // Leading edge: the first update of a job is not held.
    sender.publish(progress("job_1", 10)).await.unwrap();
    assert_eq!(
        dispatcher.run_due().await.unwrap(),
        1,
        "the first goes at once"
    );
    // Nine more within three seconds: held to the window of the first, the latest winning.
    for percent in 2..=10 {
        clock.advance(Duration::from_millis(300));
        sender
            .publish(progress("job_1", percent * 10))
            .await
            .unwrap();
        assert_eq!(dispatcher.run_due().await.unwrap(), 0, "held to the window");
    }
    clock.set(UnixMillis::from_millis(T0 * 1000 + 9_999));
    assert_eq!(dispatcher.run_due().await.unwrap(), 0);
    // Trailing edge: the window opened by the first update ends 10 s after it.
    clock.set(UnixMillis::from_secs(T0 + 10));
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let seen = transport.seen_at(url);
    assert_eq!(seen.len(), 2);
    assert_eq!(body_json(&seen[0])["data"]["progress"]["percentage"], 10);
    assert_eq!(body_json(&seen[1])["data"]["progress"]["percentage"], 100);
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!(
        (counts.superseded, counts.delivered),
        (8, 2),
        "counted, not lost"
    );

    // After a quiet window, at once again.
    clock.set(UnixMillis::from_secs(T0 + 25));
    sender.publish(progress("job_1", 100)).await.unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    // Another job is throttled on its own.
    sender.publish(progress("job_2", 5)).await.unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    assert_eq!(transport.seen_at(url).len(), 4);
}

#[tokio::test]
async fn the_terminal_event_is_never_throttled_and_comes_last() {
    let (sender, clock, transport) = setup();
    let url = "https://pg.example/hook";
    verified_pg(&sender, url).await;
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender.publish(progress("job_1", 40)).await.unwrap();
    clock.advance(Duration::from_secs(2));
    sender
        .publish(OutgoingEvent::new(
            "job.completed",
            json!({"job_id": "job_1", "status": "completed"}),
        ))
        .await
        .unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1, "at once");
    clock.advance(Duration::from_secs(30));
    assert_eq!(dispatcher.run_due().await.unwrap(), 0);
    let types: Vec<Value> = transport
        .seen_at(url)
        .iter()
        .map(|s| body_json(s)["type"].clone())
        .collect();
    assert_eq!(types, vec![json!("job.completed")]);
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!(counts.superseded, 1);
}

#[tokio::test]
async fn a_terminal_event_waits_for_the_progress_event_in_flight() {
    // Real time: the progress attempt is still in flight when the job completes.
    let sender = Sender::new(MemoryStore::new());
    let transport = ScriptedTransport::new();
    let url = "https://pg.example/hook";
    transport.delay(url, Duration::from_millis(300));
    sender
        .add_endpoint(
            builder(url, Profile::ProposalGenerator)
                .status(EndpointStatus::Active)
                .throttle(
                    hookrelay::send::Throttle::job_progress().window(Duration::from_millis(1)),
                )
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let handle = sender.dispatcher(transport.clone()).spawn();
    sender.publish(progress("job_1", 50)).await.unwrap();
    let started = std::time::Instant::now();
    while transport.seen_at(url).is_empty() && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sender
        .publish(OutgoingEvent::new("job.failed", json!({"job_id": "job_1"})))
        .await
        .unwrap();
    while transport.seen_at(url).len() < 2 && started.elapsed() < Duration::from_secs(3) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    handle.shutdown(Duration::from_secs(1)).await.unwrap();
    let types: Vec<Value> = transport
        .seen_at(url)
        .iter()
        .map(|s| body_json(s)["type"].clone())
        .collect();
    assert_eq!(types, vec![json!("job.progress"), json!("job.failed")]);
}

// ---------------------------------------------------------------------------------------
// 4. Maximum age (001: "events older than 24 hours are dropped").

#[tokio::test]
async fn a_delivery_past_its_maximum_age_expires_and_a_manual_retry_still_goes() {
    let (sender, clock, transport) = setup();
    let url = "https://hooks.example/old";
    transport.always(url, status(500));
    let policy = RetryPolicy::builder()
        .delays([Duration::from_secs(3600)])
        .max_attempts(100)
        .max_age(Duration::from_secs(24 * 3600))
        .jitter(Jitter::None)
        .build()
        .unwrap();
    sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .retry_policy(policy)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let message = sender
        .publish(OutgoingEvent::new("task.created", json!({"taskId": "1"})))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    for _ in 0..30 {
        dispatcher.run_due().await.unwrap();
        clock.advance(Duration::from_secs(3600));
    }
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.status, DeliveryStatus::Expired, "its own outcome");
    let attempts = record.attempts;
    assert!(attempts <= 25, "no attempt after 24 h: {attempts}");
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!((counts.expired, counts.dead), (1, 0));
    assert!(sender.dead_letters(None, 0).await.unwrap().is_empty());

    // A manual retry is attempted whatever the age, and keeps the ids.
    transport.always(url, status(200));
    assert!(sender.retry_delivery(&record.id).await.unwrap());
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.status, DeliveryStatus::Delivered);
    let log = sender.store().attempts(&record.id).await.unwrap();
    assert!(log.last().unwrap().manual);
}

// ---------------------------------------------------------------------------------------
// 5. Pacing from the receiver (004).

#[tokio::test]
async fn retry_after_pauses_that_endpoint_only_and_costs_no_attempt() {
    let (sender, clock, transport) = setup();
    let paced = "https://paced.example/hook";
    let other = "https://other.example/hook";
    transport.answer(paced, [status_with(429, &[("retry-after", "30")], "")]);
    // One attempt allowed: if the 429 counted, the delivery would be dead at once.
    for url in [paced, other] {
        sender
            .add_endpoint(
                builder(url, Profile::TaskHub)
                    .retry_policy(every_second(1))
                    .concurrency(1)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    for n in 0..3 {
        sender
            .publish(OutgoingEvent::new("task.created", json!({ "n": n })))
            .await
            .unwrap();
    }
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    dispatcher.run_due().await.unwrap();
    assert_eq!(
        transport.seen_at(other).len(),
        3,
        "the other endpoint keeps its pace"
    );
    assert_eq!(transport.seen_at(paced).len(), 1, "paused after the 429");
    clock.advance(Duration::from_secs(29));
    dispatcher.run_due().await.unwrap();
    assert_eq!(transport.seen_at(paced).len(), 1);
    clock.advance(Duration::from_secs(1));
    dispatcher.run_due().await.unwrap();
    assert_eq!(transport.seen_at(paced).len(), 4);
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!((counts.delivered, counts.dead), (6, 0));
    // The paced delivery went again with the same body.
    let retried = transport.seen_at(paced);
    assert!(retried[1..].iter().any(|s| s.body == retried[0].body));
}

#[tokio::test]
async fn an_exhausted_rate_limit_header_pauses_until_its_reset() {
    let (sender, clock, transport) = setup();
    let url = "https://limited.example/hook";
    let reset = (T0 + 20).to_string();
    // Delivered, but the receiver says its window is used up until T0 + 20.
    transport.answer(
        url,
        [status_with(
            200,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
            "",
        )],
    );
    sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .concurrency(1)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    for n in 0..2 {
        sender
            .publish(OutgoingEvent::new("task.created", json!({ "n": n })))
            .await
            .unwrap();
    }
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    dispatcher.run_due().await.unwrap();
    assert_eq!(transport.seen_at(url).len(), 1);
    clock.advance(Duration::from_secs(19));
    dispatcher.run_due().await.unwrap();
    assert_eq!(transport.seen_at(url).len(), 1, "waits for the reset");
    clock.advance(Duration::from_secs(1));
    dispatcher.run_due().await.unwrap();
    assert_eq!(transport.seen_at(url).len(), 2);

    // The same headers on a 429 pace it without spending the attempt.
    let url2 = "https://limited2.example/hook";
    let reset = (T0 + 60).to_string();
    transport.answer(
        url2,
        [status_with(
            429,
            &[
                ("x-ratelimit-remaining", "0"),
                ("x-ratelimit-reset", &reset),
            ],
            "",
        )],
    );
    let limited = sender
        .add_endpoint(
            builder(url2, Profile::TaskHub)
                .retry_policy(every_second(1))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let message = sender
        .publish(OutgoingEvent::new("task.updated", json!({})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    let record = sender
        .deliveries_of(&message)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.endpoint == limited)
        .unwrap();
    assert_eq!(record.attempts, 1);
    assert_eq!(record.status, DeliveryStatus::Pending);
    assert_eq!(record.next_attempt_at, Some(UnixMillis::from_secs(T0 + 60)));
}

#[tokio::test]
async fn a_far_retry_after_is_clamped() {
    let (sender, clock, transport) = setup();
    let url = "https://far.example/hook";
    transport.answer(url, [status_with(429, &[("retry-after", "999999999")], "")]);
    let policy = RetryPolicy::builder()
        .delays([Duration::from_secs(1)])
        .retry_after_cap(Duration::from_secs(3600))
        .build()
        .unwrap();
    sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .retry_policy(policy)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let message = sender
        .publish(OutgoingEvent::new("task.created", json!({})))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    dispatcher.run_due().await.unwrap();
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(
        record.next_attempt_at,
        Some(clock.millis().saturating_add(Duration::from_secs(3600)))
    );
}

// ---------------------------------------------------------------------------------------
// 7. Replay and recovery (002 "manual retry", svix "recover").

#[tokio::test]
async fn manual_retry_keeps_the_event_id_and_dead_letters_show_the_last_response() {
    let (sender, clock, transport) = setup();
    let url = "https://tl.example/hook";
    transport.always(
        url,
        status_with(500, &[("content-type", "text/plain")], "down"),
    );
    let id = sender
        .add_endpoint(
            builder(url, Profile::TaskLink)
                .retry_policy(every_second(2))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    let since = clock.millis();
    let mut messages = Vec::new();
    for n in 0..3 {
        messages.push(
            sender
                .publish(OutgoingEvent::new("job.created", json!({ "n": n })))
                .await
                .unwrap(),
        );
    }
    for _ in 0..3 {
        dispatcher.run_due().await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let dead = sender.dead_letters(Some(&id), 0).await.unwrap();
    assert_eq!(dead.len(), 3);
    assert_eq!(
        dead[0].delivery.status,
        DeliveryStatus::DeadLettered(DeadReason::Exhausted)
    );
    let last = dead[0].last_attempt.as_ref().unwrap();
    assert_eq!((last.attempt, last.status), (2, Some(500)));
    assert_eq!(&last.response_body[..], b"down");

    // One by hand: same event id (the body's `id`), a new attempt, logged as manual.
    let first_body = body_json(&transport.seen_at(url)[0]);
    transport.always(url, status(200));
    assert!(sender.retry_delivery(&dead[0].delivery.id).await.unwrap());
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let seen = transport.seen_at(url);
    let replayed = seen.last().unwrap();
    assert_eq!(body_json(replayed)["id"], first_body["id"]);
    assert_eq!(
        replayed.header("x-webhook-id"),
        seen[0].header("x-webhook-id")
    );
    assert_eq!(replayed.header("x-webhook-attempt"), Some("3"));
    let log = sender.store().attempts(&dead[0].delivery.id).await.unwrap();
    assert_eq!(
        log.iter().map(|a| a.manual).collect::<Vec<_>>(),
        [false, false, true]
    );
    assert_eq!(
        sender.deliveries_of(&messages[0]).await.unwrap()[0].status,
        DeliveryStatus::Delivered
    );

    // The rest in one call; `until` is exclusive, so a window ending where they were
    // published takes none of them.
    let since = std::time::UNIX_EPOCH + Duration::from_millis(since.as_millis());
    assert_eq!(sender.recover(&id, since, Some(since)).await.unwrap(), 0);
    let recovered = sender.recover(&id, since, None).await.unwrap();
    assert_eq!(recovered, 2);
    assert_eq!(dispatcher.run_due().await.unwrap(), 2);
    assert!(sender.dead_letters(Some(&id), 0).await.unwrap().is_empty());
    // A delivery being attempted, or unknown, is not queued twice.
    assert!(
        !sender
            .retry_delivery(&hookrelay::send::DeliveryId::new("dlv_unknown").unwrap())
            .await
            .unwrap()
    );
}

// ---------------------------------------------------------------------------------------
// 8. Retention (002: successful 30 days, failed 90 days, manual retries 30 days).

#[tokio::test]
async fn purge_removes_only_what_is_past_retention() {
    let (sender, clock, transport) = setup();
    let ok = "https://ok.example/hook";
    let bad = "https://bad.example/hook";
    transport.always(bad, status(400));
    for url in [ok, bad] {
        sender
            .add_endpoint(
                builder(url, Profile::TaskHub)
                    .retry_policy(every_second(1))
                    .never_auto_disable()
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
    }
    let day = Duration::from_secs(24 * 3600);
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    let old = sender
        .publish(OutgoingEvent::new("task.created", json!({"n": "old"})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    // A manual retry of the failed one, logged 5 days later.
    clock.advance(day * 5);
    let old_failed = sender
        .deliveries_of(&old)
        .await
        .unwrap()
        .into_iter()
        .find(|d| d.status != DeliveryStatus::Delivered)
        .unwrap();
    assert!(sender.retry_delivery(&old_failed.id).await.unwrap());
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    clock.advance(day * 25);
    let young = sender
        .publish(OutgoingEvent::new("task.created", json!({"n": "young"})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    // Day 31: the old success (day 0) is past 30 days, with its one log; the old failure
    // (finished day 5) is not past 90, nor its manual log (day 5) past 30.
    clock.advance(day);
    let purged = sender.purge(&LogRetention::default()).await.unwrap();
    assert_eq!(
        (purged.deliveries, purged.attempts, purged.messages),
        (1, 1, 0),
        "{purged:?}"
    );
    let left = sender.deliveries_of(&old).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].id, old_failed.id);
    assert_eq!(
        sender.store().attempts(&old_failed.id).await.unwrap().len(),
        2
    );
    assert_eq!(sender.deliveries_of(&young).await.unwrap().len(), 2);

    // Day 36: the manual log is past 30 days; the automatic one stays with its delivery.
    clock.advance(day * 5);
    let purged = sender.purge(&LogRetention::default()).await.unwrap();
    assert_eq!((purged.deliveries, purged.attempts), (0, 1), "{purged:?}");
    let log = sender.store().attempts(&old_failed.id).await.unwrap();
    assert_eq!(log.len(), 1);
    assert!(!log[0].manual);

    // Day 96: the old failure (day 5) is past 90 days, the young success (day 30) past 30;
    // the young failure is not, so the young message stays.
    clock.advance(day * 60);
    let purged = sender.purge(&LogRetention::default()).await.unwrap();
    assert_eq!(
        (purged.deliveries, purged.attempts, purged.messages),
        (2, 2, 1),
        "{purged:?}"
    );
    assert!(sender.deliveries_of(&old).await.unwrap().is_empty());
    assert_eq!(sender.deliveries_of(&young).await.unwrap().len(), 1);
}

// ---------------------------------------------------------------------------------------
// 9. Endpoint health (CHECKLIST E51).

/// An endpoint that answers 500, retried every 10 minutes without end, disabled after an
/// hour of failure.
async fn failing_endpoint(
    sender: &Sender<MemoryStore>,
    transport: &ScriptedTransport,
    url: &str,
) -> hookrelay::send::EndpointId {
    transport.always(url, status(500));
    sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .retry_policy(
                    RetryPolicy::builder()
                        .delays([Duration::from_secs(600)])
                        .max_attempts(1000)
                        .without_max_age()
                        .jitter(Jitter::None)
                        .build()
                        .unwrap(),
                )
                .auto_disable_after(Duration::from_secs(3600))
                .build()
                .unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn failing_past_the_window_disables_and_notifies_and_success_resets_the_clock() {
    let (sender, clock, transport) = setup();
    let url = "https://failing.example/hook";
    let id = failing_endpoint(&sender, &transport, url).await;
    let mut notes = sender.notifications();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender
        .publish(OutgoingEvent::new("task.created", json!({})))
        .await
        .unwrap();
    // Failures at T0 … T0 + 2400 s, a success at T0 + 2700 s (only the new event is due
    // then), failures again from T0 + 3000 s: the clock restarts there.
    dispatcher.run_due().await.unwrap();
    for _ in 0..4 {
        clock.advance(Duration::from_secs(600));
        dispatcher.run_due().await.unwrap();
    }
    clock.advance(Duration::from_secs(300));
    transport.answer(url, [status(200)]);
    sender
        .publish(OutgoingEvent::new("task.created", json!({"ok": true})))
        .await
        .unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let restarted = clock.millis();
    // Until T0 + 6300 s the new run of failures is shorter than the hour.
    for _ in 0..12 {
        clock.advance(Duration::from_secs(300));
        dispatcher.run_due().await.unwrap();
    }
    assert_eq!(
        sender
            .store()
            .endpoint(&id)
            .await
            .unwrap()
            .unwrap()
            .status(),
        EndpointStatus::Active,
        "a success reset the clock"
    );
    assert!(notes.try_recv().is_err());
    // T0 + 6600 s: an hour of failure since T0 + 3000 s.
    clock.advance(Duration::from_secs(300));
    dispatcher.run_due().await.unwrap();
    let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
    assert_eq!(endpoint.status(), EndpointStatus::Disabled);
    assert!(endpoint.status_note().unwrap().contains("failing"));
    match notes.try_recv().unwrap() {
        Notification::EndpointDisabled {
            endpoint,
            reason: DisableReason::FailingSince(since),
        } => {
            assert_eq!(endpoint, id);
            assert!(since > restarted, "the failure after the success");
        }
        other => panic!("{other:?}"),
    }
    // Its deliveries wait, not lost.
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!(counts.pending, 1);
    // Enabled again by hand: delivered.
    transport.always(url, status(200));
    sender
        .set_endpoint_status(&id, EndpointStatus::Active)
        .await
        .unwrap();
    clock.advance(Duration::from_secs(600));
    dispatcher.run_due().await.unwrap();
    assert_eq!(
        sender.store().counts(clock.millis()).await.unwrap().pending,
        0
    );
}

#[tokio::test]
async fn gone_disables_at_once_with_a_notification() {
    let (sender, _clock, transport) = setup();
    let url = "https://gone.example/hook";
    transport.always(url, status(410));
    let id = sender
        .add_endpoint(builder(url, Profile::TaskHub).build().unwrap())
        .await
        .unwrap();
    let mut notes = sender.notifications();
    sender
        .publish(OutgoingEvent::new("task.created", json!({})))
        .await
        .unwrap();
    sender
        .dispatcher(transport)
        .build()
        .run_due()
        .await
        .unwrap();
    assert_eq!(
        notes.try_recv().unwrap(),
        Notification::EndpointDisabled {
            endpoint: id.clone(),
            reason: DisableReason::Gone
        }
    );
    assert_eq!(
        sender
            .store()
            .endpoint(&id)
            .await
            .unwrap()
            .unwrap()
            .status(),
        EndpointStatus::Disabled
    );
}

#[tokio::test]
async fn an_open_breaker_pauses_then_probes_then_resumes() {
    let (sender, clock, transport) = setup();
    let url = "https://shaky.example/hook";
    transport.answer(url, [status(500), status(500), status(500)]);
    let id = sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .retry_policy(every_second(10))
                .concurrency(1)
                .circuit_breaker(
                    CircuitBreaker::builder()
                        .failure_percent(50)
                        .window(Duration::from_secs(60))
                        .min_requests(2)
                        .cool_down(Duration::from_secs(30)),
                )
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut notes = sender.notifications();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    for n in 0..5 {
        sender
            .publish(OutgoingEvent::new("task.created", json!({ "n": n })))
            .await
            .unwrap();
    }
    // Two failures open the breaker.
    dispatcher.run_due().await.unwrap();
    clock.advance(Duration::from_secs(1));
    dispatcher.run_due().await.unwrap();
    assert_eq!(transport.seen_at(url).len(), 2);
    assert!(matches!(
        notes.try_recv().unwrap(),
        Notification::EndpointPaused { endpoint, .. } if endpoint == id
    ));
    // Paused until T0 + 30: nothing is attempted, nothing is dropped.
    for _ in 0..28 {
        clock.advance(Duration::from_secs(1));
        dispatcher.run_due().await.unwrap();
    }
    assert_eq!(transport.seen_at(url).len(), 2);
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!((counts.pending, counts.dead), (5, 0));
    // Cool-down over: one probe (the scripted third 500), paused again.
    clock.advance(Duration::from_secs(1));
    dispatcher.run_due().await.unwrap();
    assert_eq!(transport.seen_at(url).len(), 3);
    // The next probe succeeds: resumed, and everything flows.
    clock.advance(Duration::from_secs(30));
    dispatcher.run_due().await.unwrap();
    clock.advance(Duration::from_secs(1));
    dispatcher.run_due().await.unwrap();
    let mut resumed = false;
    while let Ok(note) = notes.try_recv() {
        resumed |= note
            == Notification::EndpointResumed {
                endpoint: id.clone(),
            };
    }
    assert!(resumed);
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!((counts.delivered, counts.dead), (5, 0));
}

// ---------------------------------------------------------------------------------------
// 10. Ordering.

#[tokio::test]
async fn ordering_holds_under_a_failing_first_delivery() {
    let (sender, clock, transport) = setup();
    let url = "https://ordered.example/hook";
    transport.answer(url, [status(500), status(500)]);
    sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .retry_policy(every_second(5))
                .ordering(DeliveryOrder::PerEndpoint)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    for n in 0..4 {
        sender
            .publish(OutgoingEvent::new("task.created", json!({ "n": n })))
            .await
            .unwrap();
    }
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    for _ in 0..5 {
        dispatcher.run_due().await.unwrap();
        clock.advance(Duration::from_secs(1));
    }
    let order: Vec<Value> = transport
        .seen_at(url)
        .iter()
        .map(|s| body_json(s)["data"]["n"].clone())
        .collect();
    assert_eq!(order, [0, 0, 0, 1, 2, 3].map(|n| json!(n)));
}

#[tokio::test]
async fn per_key_ordering_blocks_only_its_key() {
    let (sender, clock, transport) = setup();
    let url = "https://ordered.example/hook";
    transport.answer(url, [status(500)]);
    sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .retry_policy(every_second(5))
                .concurrency(1)
                .ordering(DeliveryOrder::by_key(DataPointer::new("/job_id").unwrap()))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    for (job, n) in [("a", 1), ("a", 2), ("b", 1), ("b", 2)] {
        sender
            .publish(OutgoingEvent::new(
                "task.updated",
                json!({"job_id": job, "n": n}),
            ))
            .await
            .unwrap();
    }
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    dispatcher.run_due().await.unwrap();
    let first: Vec<(Value, Value)> = transport
        .seen_at(url)
        .iter()
        .map(|s| {
            let b = body_json(s);
            (b["data"]["job_id"].clone(), b["data"]["n"].clone())
        })
        .collect();
    // a1 failed; b1 and b2 went on; a2 waits behind a1.
    assert_eq!(
        first,
        vec![
            (json!("a"), json!(1)),
            (json!("b"), json!(1)),
            (json!("b"), json!(2))
        ]
    );
    clock.advance(Duration::from_secs(1));
    dispatcher.run_due().await.unwrap();
    let rest: Vec<Value> = transport.seen_at(url)[3..]
        .iter()
        .map(|s| body_json(s)["data"]["n"].clone())
        .collect();
    assert_eq!(rest, vec![json!(1), json!(2)]);
}

// ---------------------------------------------------------------------------------------
// 6. Batching (002: "high-volume events may be batched").

/// HMAC-SHA256 of `body` under SECRET, computed by Python's `hmac` (independent of ours).
fn python_hmac(body: &[u8]) -> Option<String> {
    use std::io::Write as _;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys; \
             print(hmac.new(sys.argv[1].encode(), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())",
            SECRET,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(body).ok()?;
    let out = child.wait_with_output().ok()?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

#[tokio::test]
async fn batches_carry_each_event_are_signed_as_one_and_retry_whole() {
    let (sender, clock, transport) = setup();
    let url = "https://batch.example/hook";
    transport.answer(url, [status(500)]);
    sender
        .add_endpoint(
            builder(url, Profile::TaskHub)
                .retry_policy(every_second(3))
                .concurrency(1)
                .batch(hookrelay::send::Batching::new(
                    3,
                    Duration::from_millis(100),
                ))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let mut messages = Vec::new();
    for n in 0..7 {
        messages.push(
            sender
                .publish(
                    OutgoingEvent::new("task.created", json!({ "n": n }))
                        .with_id(format!("evt_{n}").into()),
                )
                .await
                .unwrap(),
        );
    }
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    dispatcher.run_due().await.unwrap();
    // Two full batches went (one at a time); the seventh event waits for its batch to fill.
    let seen = transport.seen_at(url);
    assert_eq!(
        seen.len(),
        2,
        "batch 1 (500), batch 2, and nothing else yet"
    );
    let first = &seen[0];
    let array = body_json(first);
    let ids: Vec<&str> = array
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["evt_0", "evt_1", "evt_2"]);
    assert!(
        array
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["type"] == "task.created")
    );
    // Exactly the single bodies, joined: every event keeps its own envelope.
    let single = hookrelay::profile::Profile::TaskHub
        .render_body(
            &OutgoingEvent::new("task.created", json!({"n": 0})).with_id("evt_0".into()),
            Default::default(),
        )
        .unwrap();
    assert!(
        first
            .body
            .starts_with(&[b"[".as_slice(), &single[..single.len() - 1]].concat())
    );
    assert_eq!(first.header("x-event-type"), Some("batch"));
    if let Some(expected) = python_hmac(&first.body) {
        assert_eq!(
            first.header("x-hub-signature").unwrap(),
            format!("sha256={expected}")
        );
    } else {
        panic!("python3 is needed for the independent signature");
    }

    // The failed batch is retried as a batch: same bytes, same delivery id.
    clock.advance(Duration::from_secs(1));
    dispatcher.run_due().await.unwrap();
    let seen = transport.seen_at(url);
    let retried = seen
        .iter()
        .skip(2)
        .find(|s| s.body == first.body)
        .expect("the batch again");
    assert_eq!(
        retried.header("x-delivery-id"),
        first.header("x-delivery-id")
    );
    // The seventh event went in a batch of its own once its wait ended.
    assert!(
        seen.iter()
            .any(|s| body_json(s).as_array().is_some_and(|a| a.len() == 1))
    );

    // Members point to their batch, which carries the outcome.
    let member = sender.deliveries_of(&messages[0]).await.unwrap().remove(0);
    assert_eq!(member.status, DeliveryStatus::Batched);
    let batch = sender
        .store()
        .delivery(member.batch.as_ref().unwrap(), UnixMillis::now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(batch.kind, DeliveryKind::Batch);
    assert_eq!(batch.status, DeliveryStatus::Delivered);
    assert_eq!(batch.attempts, 2);
    let counts = sender.store().counts(clock.millis()).await.unwrap();
    assert_eq!(
        (counts.batched, counts.delivered, counts.pending),
        (7, 3, 0)
    );
}

#[tokio::test]
async fn the_failure_clock_survives_a_dispatcher_restart() {
    let (sender, clock, transport) = setup();
    let url = "https://failing.example/hook";
    let id = failing_endpoint(&sender, &transport, url).await;
    sender
        .publish(OutgoingEvent::new("task.created", json!({})))
        .await
        .unwrap();
    {
        // Fails at T0, +10 … +40 min, then this dispatcher goes away.
        let mut first = sender.dispatcher(transport.clone()).build();
        for _ in 0..5 {
            first.run_due().await.unwrap();
            clock.advance(Duration::from_secs(600));
        }
    }
    let stored = sender.store().endpoint(&id).await.unwrap().unwrap();
    assert_eq!(stored.failing_since(), Some(UnixMillis::from_secs(T0)));
    let mut second = sender.dispatcher(transport.clone()).build();
    second.run_due().await.unwrap(); // +50 min
    clock.advance(Duration::from_secs(600));
    second.run_due().await.unwrap(); // +60 min: an hour since T0
    assert_eq!(
        sender
            .store()
            .endpoint(&id)
            .await
            .unwrap()
            .unwrap()
            .status(),
        EndpointStatus::Disabled
    );
}
