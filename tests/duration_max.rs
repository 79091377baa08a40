//! `Duration::MAX` is accepted everywhere a `Duration` is configured, and nothing computed
//! from it panics (no `Instant + Duration` or `UnixMillis` overflow).

mod send_support;

use std::time::Duration;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{
    AttemptOutcome, AutoDisable, CircuitBreaker, Decision, DeliveryState, Jitter, NoJitter,
    OutcomeClass, RateLimit, RetryAfter, RetryPolicy, SeededJitter, TokenBucket, UnixMillis,
};
use hookrelay::send::{
    Batching, DataPointer, DeliveryStatus, Endpoint, EndpointStatus, ManualClock, MemoryStore,
    Sender, Throttle,
};
use send_support::{ScriptedTransport, status};

const MAX: Duration = Duration::MAX;
const NOW: UnixMillis = UnixMillis::from_secs(1_700_000_000);

fn maxed(builder: hookrelay::retry::RetryPolicyBuilder) -> RetryPolicy {
    builder
        .max_age(MAX)
        .timeout(MAX)
        .retry_after_cap(MAX)
        .build()
        .expect("Duration::MAX is a valid setting")
}

/// Plans a failed first attempt and a 429 with a huge `Retry-After` under `policy`.
fn plan_failures(policy: &RetryPolicy) {
    let mut state = DeliveryState::new(NOW);
    let _ = policy.plan(&mut state, NOW, &mut SeededJitter::new(1));
    state.record(AttemptOutcome::from_response(500, None), NOW);
    let _ = policy.plan(&mut state, NOW, &mut SeededJitter::new(1));
    state.record(
        AttemptOutcome::from_response(429, Some(RetryAfter::MAX_SECONDS.to_string().as_bytes())),
        NOW,
    );
    let _ = policy.plan(&mut state, NOW, &mut SeededJitter::new(1));
    let _ = policy.nominal_delays();
}

#[test]
fn retry_policies_and_their_presets() {
    let presets = [
        RetryPolicy::proposal_generator(),
        RetryPolicy::tasklink(),
        RetryPolicy::taskon(),
        RetryPolicy::task_hub(),
        RetryPolicy::standard_webhooks(),
    ];
    for preset in presets {
        let policy = maxed(preset.to_builder());
        assert_eq!(policy.timeout(), MAX);
        plan_failures(&policy);
    }
    let policy = maxed(RetryPolicy::task_hub_builder());
    plan_failures(&policy);

    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Proportional { percent: 100 },
    ] {
        let built = RetryPolicy::builder()
            .delays([MAX, MAX])
            .jitter(jitter)
            .max_age(MAX)
            .build();
        if let Ok(policy) = built {
            plan_failures(&policy);
        }
        let built = RetryPolicy::builder()
            .exponential(MAX, 2.0, MAX)
            .jitter(jitter)
            .build();
        if let Ok(policy) = built {
            plan_failures(&policy);
        }
    }

    // A retry scheduled Duration::MAX away saturates at the end of time.
    let policy = RetryPolicy::builder().delays([MAX]).build().unwrap();
    let mut state = DeliveryState::new(NOW);
    let _ = policy.plan(&mut state, NOW, &mut NoJitter);
    state.record(AttemptOutcome::from_response(500, None), NOW);
    match policy.plan(&mut state, NOW, &mut NoJitter) {
        Decision::RetryAt { at, .. } => assert_eq!(at, UnixMillis::from_millis(u64::MAX)),
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn health_and_rate_limits() {
    let mut health = AutoDisable::new(MAX);
    health.observe(OutcomeClass::Retryable, NOW);
    health.observe(OutcomeClass::Retryable, UnixMillis::from_millis(u64::MAX));
    assert!(!health.is_disabled());

    let mut breaker = CircuitBreaker::builder()
        .window(MAX)
        .cool_down(MAX)
        .build()
        .unwrap();
    for _ in 0..100 {
        breaker.observe(OutcomeClass::Retryable, NOW);
        let _ = breaker.check(NOW);
    }

    let limit = RateLimit::new(1, MAX, 1).unwrap();
    let mut bucket = TokenBucket::new(limit, NOW);
    let _ = bucket.try_acquire(NOW);
    let _ = bucket.try_acquire(NOW);
    let _ = bucket.try_acquire(UnixMillis::from_millis(u64::MAX));

    assert_eq!(NOW.saturating_add(MAX), UnixMillis::from_millis(u64::MAX));
}

#[test]
fn throttle_and_batching() {
    let throttle =
        Throttle::new("job.progress", DataPointer::new("/job_id").unwrap(), &[]).window(MAX);
    assert_eq!(throttle.window_length(), MAX);
    let _ = throttle.group("job.progress", &serde_json::json!({"job_id": "j1"}));
    assert_eq!(Batching::new(10, MAX).max_wait(), MAX);
}

fn maxed_endpoint(url: &str) -> Endpoint {
    Endpoint::builder(url, Profile::TaskHub)
        .secret(Secret::from_raw("your_webhook_secret").unwrap())
        .status(EndpointStatus::Active)
        .rate_limit(RateLimit::new(1000, MAX, 1000).unwrap())
        .retry_policy(maxed(RetryPolicy::task_hub_builder()))
        .auto_disable_after(MAX)
        .circuit_breaker(CircuitBreaker::builder().window(MAX).cool_down(MAX))
        .throttle(
            Throttle::new("job.progress", DataPointer::new("/job_id").unwrap(), &[]).window(MAX),
        )
        .build()
        .expect("Duration::MAX endpoint settings are valid")
}

#[tokio::test]
async fn an_endpoint_and_a_dispatcher_set_to_duration_max() {
    let clock = ManualClock::at(NOW);
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    let transport = ScriptedTransport::new();
    let url = "https://a.example/hook";
    transport.always(url, status(200));
    sender.add_endpoint(maxed_endpoint(url)).await.unwrap();
    let batched = "https://b.example/hook";
    transport.always(batched, status(200));
    sender
        .add_endpoint(
            Endpoint::builder(batched, Profile::TaskHub)
                .secret(Secret::from_raw("your_webhook_secret").unwrap())
                .status(EndpointStatus::Active)
                .without_rate_limit()
                .batch(Batching::new(2, MAX))
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    for i in 0..2 {
        sender
            .publish(OutgoingEvent::new(
                "task.created",
                serde_json::json!({ "i": i }),
            ))
            .await
            .unwrap();
        sender
            .publish(OutgoingEvent::new(
                "job.progress",
                serde_json::json!({ "job_id": "j1", "i": i }),
            ))
            .await
            .unwrap();
    }
    let mut dispatcher = sender
        .dispatcher(transport.clone())
        .lease(MAX)
        .poll_interval(MAX)
        .build();
    assert!(dispatcher.run_due().await.unwrap() > 0);
    clock.advance(MAX);
    assert_eq!(
        clock.millis(),
        UnixMillis::from_millis(u64::MAX),
        "saturates"
    );
    let _ = dispatcher.run_due().await.unwrap();
    assert!(transport.seen_at(url).len() >= 2);
    // Two task events and two progress events (throttled only on the other endpoint).
    assert_eq!(transport.seen_at(batched).len(), 2, "two batches of two");
}

#[tokio::test]
async fn shutdown_with_duration_max_waits_and_returns() {
    let sender = Sender::new(MemoryStore::new());
    let transport = ScriptedTransport::new();
    let url = "https://a.example/hook";
    transport.always(url, status(200));
    transport.delay(url, Duration::from_millis(50));
    sender.add_endpoint(maxed_endpoint(url)).await.unwrap();
    let message = sender
        .publish(OutgoingEvent::new("task.created", serde_json::json!({})))
        .await
        .unwrap();
    let handle = sender
        .dispatcher(transport.clone())
        .lease(MAX)
        .poll_interval(MAX)
        .spawn();
    let started = std::time::Instant::now();
    while transport.seen().is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let report = handle.shutdown(MAX).await.unwrap();
    assert_eq!(report.released, 0, "waited for the attempt in flight");
    let record = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(record.status, DeliveryStatus::Delivered);
}

#[cfg(feature = "sqlite")]
#[tokio::test]
async fn a_sqlite_store_keeps_duration_max_settings() {
    use hookrelay::send::{SqliteStore, store::EndpointRegistry as _};
    let path = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-duration-max-{}.db", std::process::id()));
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let store = SqliteStore::connect(&url).await.unwrap();
    let endpoint = maxed_endpoint("https://a.example/hook");
    store.put_endpoint(&endpoint).await.unwrap();
    let back = store.endpoint(endpoint.id()).await.unwrap().unwrap();
    assert!(back.auto_disable_after().is_some());
    drop(store);
    let _ = std::fs::remove_file(&path);
}
