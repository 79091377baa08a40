//! A running dispatcher against a receiver on 127.0.0.1, over the reqwest transport: the
//! attempt log's request headers (every secret redacted) and
//! [`DispatcherHandle::wait_idle`](hookrelay::send::DispatcherHandle::wait_idle).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{Jitter, RetryPolicy, UnixMillis};
use hookrelay::scheme::ApiKey;
use hookrelay::send::{
    AddressPolicy, DeliveryLog as _, DeliveryStatus, Endpoint, EndpointBuilder, EndpointStatus,
    MemoryStore, REDACTED, ReqwestTransport, Sender,
};
use tokio::sync::Semaphore;

const SECRET: &str = "your_webhook_secret";
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const API_KEY: &str = "your-test-api-key";

/// What a receiver saw and how it answers.
#[derive(Clone)]
struct Receiver {
    url: String,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    /// Each request takes a permit before it is answered (closed: answered at once).
    gate: Arc<Semaphore>,
}

impl Receiver {
    fn seen(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap().clone()
    }
}

/// A receiver on 127.0.0.1 answering `status` to every request. With `held`, each request
/// waits for a permit from [`Receiver::gate`] (at most 30 s) before it is answered.
async fn receiver(status: StatusCode, held: bool) -> Receiver {
    let seen: Arc<Mutex<Vec<HeaderMap>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(0));
    if !held {
        gate.close();
    }
    let (record, wait) = (Arc::clone(&seen), Arc::clone(&gate));
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap| {
            let (record, wait) = (Arc::clone(&record), Arc::clone(&wait));
            async move {
                record.lock().unwrap().push(headers);
                let _ = tokio::time::timeout(Duration::from_secs(30), wait.acquire()).await;
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, seen, gate }
}

fn transport() -> ReqwestTransport {
    ReqwestTransport::builder()
        .policy(
            AddressPolicy::default()
                .allow_http()
                .allow_private_networks(),
        )
        .build()
        .unwrap()
}

fn secret_text(profile: Profile) -> &'static str {
    if profile == Profile::StandardWebhooks {
        SW_SECRET
    } else {
        SECRET
    }
}

fn endpoint(profile: Profile, url: &str) -> EndpointBuilder {
    let mut builder = Endpoint::builder(url, profile)
        .secret(profile.secret_from_text(secret_text(profile)).unwrap())
        .status(EndpointStatus::Active)
        .without_rate_limit()
        .header("X-Tenant", "acme");
    if profile == Profile::TaskOn {
        builder = builder.api_key(ApiKey::new(API_KEY).unwrap());
    }
    builder
}

fn event(profile: Profile) -> OutgoingEvent {
    match profile {
        Profile::TaskOn => OutgoingEvent::new(
            "Token",
            serde_json::json!({"task_id": 111111, "reward_type": "Token", "reward_amount": "0.1",
                "token_symbol": "USDT", "user_id": 11111, "timestamp": 1758251308}),
        ),
        Profile::TaskLink => {
            OutgoingEvent::new("payment.created", serde_json::json!({"paymentId": "1"}))
        }
        _ => OutgoingEvent::new("task.created", serde_json::json!({"taskId": "1"})),
    }
}

/// The headers that carry a secret or a signature, per profile, as the profiles' documents
/// name them (written out here, not taken from the library).
fn secret_headers(profile: Profile) -> &'static [&'static str] {
    match profile {
        Profile::ProposalGenerator | Profile::TaskLink => &["x-webhook-signature"],
        Profile::TaskOn => &["x-api-key", "x-signature"],
        Profile::TaskHub => &["x-hub-signature"],
        Profile::StandardWebhooks => &["webhook-signature"],
        Profile::GitHub => &["x-hub-signature-256"],
        Profile::Stripe => &["stripe-signature"],
        other => panic!("no reference for {other:?}"),
    }
}

#[tokio::test]
async fn the_attempt_log_keeps_the_headers_sent_with_every_secret_redacted() {
    for profile in Profile::ALL {
        let receiver = receiver(StatusCode::OK, false).await;
        let sender = Sender::new(MemoryStore::new());
        sender
            .add_endpoint(endpoint(profile, &receiver.url).build().unwrap())
            .await
            .unwrap();
        let dispatcher = sender.dispatcher(transport()).spawn();
        let message = sender.publish(event(profile)).await.unwrap();
        dispatcher.wait_idle(Duration::from_secs(30)).await.unwrap();
        dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();

        let delivery = sender.deliveries_of(&message).await.unwrap().remove(0);
        assert_eq!(delivery.status, DeliveryStatus::Delivered, "{profile:?}");
        let log = sender.store().attempts(&delivery.id).await.unwrap();
        assert_eq!(log.len(), 1, "{profile:?}");
        let logged = &log[0].request_headers;
        let received = receiver.seen().remove(0);

        // Every header logged was sent with that value, unless it carries a secret.
        let mut redacted: Vec<&str> = Vec::new();
        for (name, value) in logged {
            let sent: Vec<&str> = received
                .get_all(name.as_str())
                .iter()
                .map(|v| v.to_str().unwrap())
                .collect();
            assert!(!sent.is_empty(), "{profile:?}: {name} was not sent");
            if value == REDACTED {
                redacted.push(name);
                assert!(sent.iter().all(|v| *v != REDACTED));
            } else {
                assert!(
                    sent.contains(&value.as_str()),
                    "{profile:?}: {name}: {value}"
                );
            }
        }
        redacted.sort_unstable();
        let mut expected = secret_headers(profile).to_vec();
        expected.sort_unstable();
        assert_eq!(redacted, expected, "{profile:?}");
        assert!(
            logged.contains(&("x-tenant".to_owned(), "acme".to_owned())),
            "{profile:?}: the endpoint's own header is kept"
        );
        assert!(logged.iter().any(|(name, _)| name == "content-type"));

        // No secret, API key or signature value anywhere in the attempt log.
        let shown = format!("{log:?}");
        assert!(!shown.contains(secret_text(profile)), "{profile:?}");
        assert!(
            !shown.contains(SECRET) && !shown.contains(API_KEY),
            "{profile:?}"
        );
        for name in secret_headers(profile) {
            let sent = received[*name].to_str().unwrap();
            assert!(!shown.contains(sent), "{profile:?}: {name} leaked");
        }
    }
}

#[tokio::test]
async fn wait_idle_returns_once_everything_published_is_delivered() {
    let receiver = receiver(StatusCode::OK, false).await;
    let sender = Sender::new(MemoryStore::new());
    sender
        .add_endpoint(endpoint(Profile::TaskHub, &receiver.url).build().unwrap())
        .await
        .unwrap();
    let dispatcher = sender.dispatcher(transport()).spawn();
    let mut messages = Vec::new();
    for n in 0..5 {
        let event = OutgoingEvent::new("task.created", serde_json::json!({"taskId": n}));
        messages.push(sender.publish(event).await.unwrap());
    }
    dispatcher.wait_idle(Duration::from_secs(30)).await.unwrap();
    for message in &messages {
        let delivery = sender.deliveries_of(message).await.unwrap().remove(0);
        assert_eq!(delivery.status, DeliveryStatus::Delivered);
    }
    assert_eq!(receiver.seen().len(), 5);
    // Idle already: it says so again.
    dispatcher.wait_idle(Duration::from_secs(30)).await.unwrap();
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn a_retry_due_later_does_not_keep_the_dispatcher_busy() {
    let receiver = receiver(StatusCode::SERVICE_UNAVAILABLE, false).await;
    let ten_minutes = RetryPolicy::proposal_generator()
        .to_builder()
        .delays([Duration::from_secs(600)])
        .max_attempts(3)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let sender = Sender::new(MemoryStore::new());
    sender
        .add_endpoint(
            endpoint(Profile::TaskHub, &receiver.url)
                .retry_policy(ten_minutes)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let dispatcher = sender.dispatcher(transport()).spawn();
    let message = sender
        .publish(OutgoingEvent::new(
            "task.created",
            serde_json::json!({"taskId": "1"}),
        ))
        .await
        .unwrap();
    dispatcher.wait_idle(Duration::from_secs(30)).await.unwrap();
    let delivery = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(
        delivery.attempts, 1,
        "the first attempt was made and recorded"
    );
    let next = delivery.next_attempt_at.expect("a retry is planned");
    assert!(next > UnixMillis::now().saturating_add(Duration::from_secs(60)));
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn wait_idle_gives_up_at_its_deadline_while_an_attempt_hangs() {
    let receiver = receiver(StatusCode::OK, true).await;
    let sender = Sender::new(MemoryStore::new());
    sender
        .add_endpoint(endpoint(Profile::TaskHub, &receiver.url).build().unwrap())
        .await
        .unwrap();
    let dispatcher = sender.dispatcher(transport()).spawn();
    let message = sender
        .publish(OutgoingEvent::new(
            "task.created",
            serde_json::json!({"taskId": "1"}),
        ))
        .await
        .unwrap();
    // The receiver holds the request until released: past any deadline given here.
    let busy = dispatcher
        .wait_idle(Duration::from_millis(200))
        .await
        .unwrap_err();
    assert!(!busy.is_stopped());
    assert!(!busy.to_string().is_empty());
    receiver.gate.add_permits(1);
    dispatcher.wait_idle(Duration::from_secs(30)).await.unwrap();
    let delivery = sender.deliveries_of(&message).await.unwrap().remove(0);
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}
