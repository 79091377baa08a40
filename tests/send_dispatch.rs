//! The dispatcher against a scripted transport and a manual clock.

mod send_support;

use std::time::Duration;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::send::store::DeadReason;
use hookrelay::send::{
    DeliveryLog, DeliveryStatus, Endpoint, EndpointRegistry, EndpointStatus, ManualClock,
    MemoryStore, Sender,
};
use send_support::{ScriptedTransport, status, status_with};

const T0: u64 = 1_700_000_000;

fn setup() -> (Sender<MemoryStore>, ManualClock, ScriptedTransport) {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    (sender, clock, ScriptedTransport::new())
}

fn endpoint(url: &str, profile: Profile) -> Endpoint {
    Endpoint::builder(url, profile)
        .secret(Secret::from_raw("your_webhook_secret").unwrap())
        // No verification handshake in these tests (Proposal Generator would wait for it).
        .status(EndpointStatus::Active)
        .without_rate_limit()
        .build()
        .unwrap()
}

#[tokio::test]
async fn proposal_generator_retry_timeline_then_dead_letter() {
    let (sender, clock, transport) = setup();
    let url = "https://hooks.example/pg";
    transport.always(url, status_with(500, &[], "try later"));
    sender
        .add_endpoint(endpoint(url, Profile::ProposalGenerator))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).jitter_seed(1).build();
    let message = sender
        .publish(OutgoingEvent::new(
            "job.completed",
            serde_json::json!({"job_id": "job_1"}),
        ))
        .await
        .unwrap();

    // 6 attempts: now, +1, +2, +4, +8, +16 seconds (DESIGN.md trap 8).
    let mut offsets = Vec::new();
    for _ in 0..200 {
        let made = dispatcher.run_due().await.unwrap();
        if made > 0 {
            offsets.push(clock.now_secs() - T0);
        }
        let record = sender.deliveries_of(&message).await.unwrap().remove(0);
        if record.status != DeliveryStatus::Pending {
            break;
        }
        clock.advance(Duration::from_millis(500));
    }
    assert_eq!(offsets, vec![0, 1, 3, 7, 15, 31]);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(
        record.status,
        DeliveryStatus::DeadLettered(DeadReason::Exhausted)
    );
    assert_eq!(record.attempts, 6);
    let log = sender.store().attempts(&record.id).await.unwrap();
    assert_eq!(log.len(), 6);
    assert_eq!(log[5].status, Some(500));
    assert_eq!(&log[5].response_body[..], b"try later");
}

#[tokio::test]
async fn gone_disables_the_endpoint() {
    let (sender, _clock, transport) = setup();
    let url = "https://hooks.example/gone";
    transport.always(url, status(410));
    let id = sender
        .add_endpoint(endpoint(url, Profile::TaskHub))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    let message = sender
        .publish(OutgoingEvent::new(
            "task.created",
            serde_json::json!({"taskId": "1"}),
        ))
        .await
        .unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(
        record.status,
        DeliveryStatus::DeadLettered(DeadReason::EndpointGone)
    );
    let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
    assert_eq!(endpoint.status(), EndpointStatus::Disabled);
    let note = endpoint.status_note().expect("a 410 leaves a status note");
    assert!(note.contains("410"), "{note}");
}

#[tokio::test]
async fn gone_disables_and_notes_even_without_auto_disable() {
    let (sender, _clock, transport) = setup();
    let url = "https://hooks.example/gone-quietly";
    transport.always(url, status(410));
    let never = Endpoint::builder(url, Profile::TaskHub)
        .secret(Secret::from_raw("your-secret-key").unwrap())
        .without_rate_limit()
        .never_auto_disable()
        .build()
        .unwrap();
    let id = sender.add_endpoint(never).await.unwrap();
    let mut notifications = sender.notifications();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender.publish(task(1)).await.unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let endpoint = sender.store().endpoint(&id).await.unwrap().unwrap();
    assert_eq!(endpoint.status(), EndpointStatus::Disabled);
    assert!(endpoint.status_note().is_some_and(|n| n.contains("410")));
    assert_eq!(
        notifications.try_recv().unwrap(),
        hookrelay::send::Notification::EndpointDisabled {
            endpoint: id,
            reason: hookrelay::retry::DisableReason::Gone,
        }
    );
}

trait NowSecs {
    fn now_secs(&self) -> u64;
}

impl NowSecs for ManualClock {
    fn now_secs(&self) -> u64 {
        self.millis().as_millis() / 1000
    }
}

fn task_hub(url: &str) -> hookrelay::send::EndpointBuilder {
    Endpoint::builder(url, Profile::TaskHub).secret(Secret::from_raw("your-secret-key").unwrap())
}

fn task(n: u32) -> OutgoingEvent {
    OutgoingEvent::new(
        "task.created",
        serde_json::json!({ "taskId": n.to_string() }),
    )
}

#[tokio::test]
async fn too_many_requests_waits_for_retry_after() {
    let (sender, clock, transport) = setup();
    let url = "https://hooks.example/busy";
    transport.answer(url, [status_with(429, &[("retry-after", "30")], "")]);
    sender
        .add_endpoint(task_hub(url).without_rate_limit().build().unwrap())
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    let message = sender.publish(task(1)).await.unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    // The schedule says 5 s; the receiver asked for 30 s.
    clock.advance(Duration::from_secs(5));
    assert_eq!(dispatcher.run_due().await.unwrap(), 0);
    clock.advance(Duration::from_secs(24));
    assert_eq!(dispatcher.run_due().await.unwrap(), 0);
    clock.advance(Duration::from_secs(1));
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.status, DeliveryStatus::Delivered);
    assert_eq!(record.attempts, 2);
}

#[tokio::test]
async fn fan_out_follows_subscriptions_and_status() {
    let (sender, _clock, transport) = setup();
    let all = sender
        .add_endpoint(task_hub("https://a.example/").build().unwrap())
        .await
        .unwrap();
    let jobs = sender
        .add_endpoint(
            task_hub("https://b.example/")
                .subscribe("job.*")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let exact = sender
        .add_endpoint(
            task_hub("https://c.example/")
                .subscribe("task.created")
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let paused = sender
        .add_endpoint(
            task_hub("https://d.example/")
                .status(EndpointStatus::Paused)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let message = sender.publish(task(1)).await.unwrap();
    let mut targets: Vec<_> = sender
        .deliveries_of(&message)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.endpoint)
        .collect();
    targets.sort();
    // A paused endpoint keeps receiving messages; they wait until it is active.
    let mut expected = vec![all.clone(), exact.clone(), paused.clone()];
    expected.sort();
    assert_eq!(targets, expected);
    assert!(!targets.contains(&jobs));

    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    assert_eq!(dispatcher.run_due().await.unwrap(), 2);
    let seen = transport.seen();
    assert_eq!(
        seen[0].body, seen[1].body,
        "every receiver sees the same bytes"
    );
}

#[tokio::test]
async fn paused_endpoint_waits_then_delivers() {
    let (sender, _clock, transport) = setup();
    let url = "https://hooks.example/paused";
    let id = sender
        .add_endpoint(task_hub(url).build().unwrap())
        .await
        .unwrap();
    let message = sender.publish(task(1)).await.unwrap();
    sender
        .set_endpoint_status(&id, EndpointStatus::Paused)
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    assert_eq!(dispatcher.run_due().await.unwrap(), 0);
    assert_eq!(
        sender.deliveries_of(&message).await.unwrap()[0].status,
        DeliveryStatus::Pending
    );
    sender
        .set_endpoint_status(&id, EndpointStatus::Active)
        .await
        .unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    assert_eq!(
        sender.deliveries_of(&message).await.unwrap()[0].status,
        DeliveryStatus::Delivered
    );
}

#[tokio::test]
async fn publish_key_deduplicates_within_its_window() {
    let (sender, clock, _transport) = setup();
    sender
        .add_endpoint(task_hub("https://a.example/").build().unwrap())
        .await
        .unwrap();
    let first = sender.publish_with_key(task(1), "order-42").await.unwrap();
    let again = sender.publish_with_key(task(2), "order-42").await.unwrap();
    assert_eq!(first, again);
    let counts = sender.store().counts(clock.now_ms()).await.unwrap();
    assert_eq!(counts.pending, 1, "the second publish created nothing");
    clock.advance(Duration::from_secs(24 * 3600 + 1));
    let later = sender.publish_with_key(task(3), "order-42").await.unwrap();
    assert_ne!(first, later, "past the window the key is free again");
}

#[tokio::test]
async fn batch_publish_and_unsafe_integers() {
    let (sender, clock, _transport) = setup();
    sender
        .add_endpoint(task_hub("https://a.example/").build().unwrap())
        .await
        .unwrap();
    let ids = sender
        .publish_batch((0..5).map(task).collect())
        .await
        .unwrap();
    assert_eq!(ids.len(), 5);
    let unsafe_int = OutgoingEvent::new(
        "task.created",
        serde_json::json!({ "n": 9_007_199_254_740_993_u64 }),
    );
    let err = sender
        .publish_batch(vec![task(9), unsafe_int])
        .await
        .unwrap_err();
    assert!(
        matches!(err, hookrelay::send::PublishError::Body(_)),
        "{err:?}"
    );
    let counts = sender.store().counts(clock.now_ms()).await.unwrap();
    assert_eq!(counts.pending, 5, "a refused batch stores nothing");
}

#[tokio::test]
async fn rate_limit_paces_a_backlog() {
    // CHECKLIST F54: after an outage the backlog goes out at the endpoint's pace.
    let (sender, clock, transport) = setup();
    let url = "https://hooks.example/paced";
    let limit = hookrelay::retry::RateLimit::new(10, Duration::from_secs(1), 1).unwrap();
    sender
        .add_endpoint(task_hub(url).rate_limit(limit).build().unwrap())
        .await
        .unwrap();
    sender
        .publish_batch((0..30).map(task).collect())
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    let mut per_tick = Vec::new();
    for _ in 0..40 {
        per_tick.push(dispatcher.run_due().await.unwrap());
        clock.advance(Duration::from_millis(100));
    }
    assert!(per_tick.iter().all(|&n| n <= 1), "{per_tick:?}");
    assert_eq!(per_tick.iter().sum::<usize>(), 30);
    assert_eq!(transport.seen_at(url).len(), 30);
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_the_others() {
    // CHECKLIST F55, in real time: one endpoint never answers within its timeout.
    let sender = Sender::new(MemoryStore::new());
    let transport = ScriptedTransport::new();
    let slow = "https://slow.example/";
    let fast = "https://fast.example/";
    transport.delay(slow, Duration::from_secs(60));
    let policy = hookrelay::retry::RetryPolicy::task_hub_builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    sender
        .add_endpoint(
            task_hub(slow)
                .retry_policy(policy)
                .without_rate_limit()
                .concurrency(4)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    sender
        .add_endpoint(task_hub(fast).without_rate_limit().build().unwrap())
        .await
        .unwrap();
    let handle = sender.dispatcher(transport.clone()).concurrency(8).spawn();
    sender
        .publish_batch((0..40).map(task).collect())
        .await
        .unwrap();
    let started = std::time::Instant::now();
    while transport.seen_at(fast).len() < 40 && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        transport.seen_at(fast).len(),
        40,
        "every first attempt to the healthy endpoint went out"
    );
    assert!(
        transport.seen_at(slow).len() <= 4,
        "the slow endpoint is held to its cap"
    );
    handle.shutdown(Duration::from_millis(100)).await.unwrap();
}

#[tokio::test]
async fn publish_wakes_an_idle_dispatcher_and_shutdown_releases_work() {
    let sender = Sender::new(MemoryStore::new());
    let transport = ScriptedTransport::new();
    let url = "https://slow.example/";
    transport.delay(url, Duration::from_secs(5));
    sender
        .add_endpoint(task_hub(url).without_rate_limit().build().unwrap())
        .await
        .unwrap();
    let handle = sender
        .dispatcher(transport.clone())
        .poll_interval(Duration::from_secs(30))
        .spawn();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let message = sender.publish(task(1)).await.unwrap();
    let started = std::time::Instant::now();
    while transport.seen().is_empty() && started.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(
        transport.seen().len(),
        1,
        "picked up without waiting for the 30 s poll"
    );
    let report = handle.shutdown(Duration::from_millis(100)).await.unwrap();
    assert_eq!(report.released, 1);
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.status, DeliveryStatus::Pending);
    assert!(!record.claimed, "the claim was handed back");
    assert_eq!(record.attempts, 0);
}

#[test]
fn secrets_never_print() {
    let endpoint = Endpoint::builder(
        "https://user.example/hook?token=abc",
        Profile::StandardWebhooks,
    )
    .secret(Secret::from_raw("super-secret-value").unwrap())
    .header("Authorization", "Bearer hidden-token")
    .build()
    .unwrap();
    let shown = format!("{endpoint:?}");
    assert!(!shown.contains("super-secret-value"));
    assert!(!shown.contains("hidden-token"));
    assert!(!shown.contains("token=abc"), "no query string: {shown}");
}

trait NowMs {
    fn now_ms(&self) -> UnixMillis;
}

impl NowMs for ManualClock {
    fn now_ms(&self) -> UnixMillis {
        self.millis()
    }
}
