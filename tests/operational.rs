//! Operational webhooks: the dispatcher tells of dead letters and of endpoints disabled and
//! enabled again; `OperationalWebhooks` turns each into a signed webhook to the operator's
//! endpoint only — never to a customer's endpoint subscribed to `*` — and says nothing of
//! the operational endpoint itself. Signatures are checked against Python's `hmac`.

mod send_support;

use std::time::Duration;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{Jitter, RetryPolicy, UnixMillis};
use hookrelay::send::store::DeadReason;
use hookrelay::send::{
    Endpoint, EndpointQuery, ManualClock, MemoryStore, Notification, OperationalWebhooks, Owner,
    Sender,
};
use send_support::{ScriptedTransport, Seen, status};
use serde_json::{Value, json};

const OPS_KEY: [u8; 32] = [0x5a; 32];
const OPS: &str = "https://ops.example/hooks";
const FAILING: &str = "https://failing.example/hook";
const FINE: &str = "https://fine.example/hook";

fn two_attempts() -> RetryPolicy {
    RetryPolicy::builder()
        .delays([Duration::from_secs(1)])
        .max_attempts(2)
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

fn customer(url: &str) -> Endpoint {
    Endpoint::builder(url, Profile::StandardWebhooks)
        .secret(Secret::generate().unwrap())
        .owner(Owner::new("acme").unwrap())
        .retry_policy(two_attempts())
        .without_rate_limit()
        .build()
        .unwrap()
}

/// Base64 HMAC-SHA256 of Standard Webhooks' signed content, computed by Python's `hmac`.
fn python_signature(key: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import base64, hmac, hashlib, sys; \
             key = bytes.fromhex(sys.argv[1]); \
             msg = (sys.argv[2] + '.' + sys.argv[3] + '.').encode() + sys.stdin.buffer.read(); \
             print(base64.b64encode(hmac.new(key, msg, hashlib.sha256).digest()).decode())",
            &hex::encode(key),
            id,
            ts,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signature");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// The operational webhook's envelope, after checking its signature independently.
fn verified(seen: &Seen) -> Value {
    let id = seen.header("webhook-id").unwrap();
    let ts = seen.header("webhook-timestamp").unwrap();
    let expected = python_signature(&OPS_KEY, id, ts, &seen.body);
    let signature = seen.header("webhook-signature").unwrap();
    assert!(
        signature.split(' ').any(|s| s == format!("v1,{expected}")),
        "{signature} vs {expected}"
    );
    serde_json::from_slice(&seen.body).unwrap()
}

struct World {
    sender: Sender<MemoryStore>,
    clock: ManualClock,
    transport: ScriptedTransport,
    ops: OperationalWebhooks<MemoryStore>,
}

async fn world() -> World {
    let clock = ManualClock::at(UnixMillis::from_secs(1_700_000_000));
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    let transport = ScriptedTransport::new();
    let endpoint = OperationalWebhooks::<MemoryStore>::endpoint(OPS)
        .secret(Secret::from_raw(OPS_KEY).unwrap())
        .build()
        .unwrap();
    let id = sender.add_endpoint(endpoint).await.unwrap();
    let ops = OperationalWebhooks::new(sender.clone(), id);
    World {
        sender,
        clock,
        transport,
        ops,
    }
}

/// Forwards every notification received so far; how many were forwarded.
async fn forward_all(
    ops: &OperationalWebhooks<MemoryStore>,
    rx: &mut tokio::sync::broadcast::Receiver<Notification>,
) -> Vec<Notification> {
    let mut told = Vec::new();
    while let Ok(notification) = rx.try_recv() {
        if ops.forward(&notification).await.unwrap().is_some() {
            told.push(notification);
        }
    }
    told
}

#[tokio::test]
async fn a_dead_letter_reaches_the_operator_alone_signed() {
    let w = world().await;
    w.transport.always(FAILING, status(503));
    let failing = w.sender.add_endpoint(customer(FAILING)).await.unwrap();
    w.sender.add_endpoint(customer(FINE)).await.unwrap();
    let mut rx = w.sender.notifications();
    let mut dispatcher = w.sender.dispatcher(w.transport.clone()).build();
    let message = w
        .sender
        .publish(OutgoingEvent::new("job.completed", json!({"jobId": "j1"})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    assert!(forward_all(&w.ops, &mut rx).await.is_empty());
    w.clock.advance(Duration::from_secs(2));
    dispatcher.run_due().await.unwrap(); // second and last attempt: dead

    let told = forward_all(&w.ops, &mut rx).await;
    assert_eq!(told.len(), 1, "{told:?}");
    let Notification::DeliveryDead {
        endpoint,
        message: dead_message,
        attempts,
        reason,
        ..
    } = &told[0]
    else {
        panic!("{told:?}");
    };
    assert_eq!(endpoint, &failing);
    assert_eq!(dead_message, &message);
    assert_eq!((*attempts, *reason), (2, DeadReason::Exhausted));

    dispatcher.run_due().await.unwrap();
    let seen = w.transport.seen_at(OPS);
    assert_eq!(seen.len(), 1);
    let envelope = verified(&seen[0]);
    assert_eq!(envelope["type"], "message.attempt.exhausted");
    let data = &envelope["data"];
    assert_eq!(data["endpoint_id"], failing.as_str());
    assert_eq!(data["owner"], "acme");
    assert_eq!(data["message_id"], message.as_str());
    assert_eq!(data["event_type"], "job.completed");
    assert_eq!(data["attempts"], 2);
    assert_eq!(data["reason"], "exhausted");
    let dead_delivery = w.sender.deliveries_of(&message).await.unwrap();
    assert!(
        dead_delivery
            .iter()
            .any(|d| d.id.as_str() == data["delivery_id"])
    );

    // The customer subscribed to `*` got its event and nothing operational.
    let fine = w.transport.seen_at(FINE);
    assert_eq!(fine.len(), 1);
    let body: Value = serde_json::from_slice(&fine[0].body).unwrap();
    assert_eq!(body["type"], "job.completed");
    // Nor do the customer's lists show the operational endpoint.
    let acme = EndpointQuery {
        owner: Some(Owner::new("acme").unwrap()),
        ..EndpointQuery::default()
    };
    let listed = w.sender.list_endpoints(&acme).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    assert!(listed.items.iter().all(|e| e.url().as_str() != OPS));
}

#[tokio::test]
async fn gone_disables_and_resuming_enables_each_told_once() {
    let w = world().await;
    w.transport.always(FAILING, status(410));
    let gone = w.sender.add_endpoint(customer(FAILING)).await.unwrap();
    let mut rx = w.sender.notifications();
    let mut dispatcher = w.sender.dispatcher(w.transport.clone()).build();
    w.sender
        .publish(OutgoingEvent::new("job.failed", json!({"jobId": "j2"})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    w.sender.resume_endpoint(&gone).await.unwrap();
    let told = forward_all(&w.ops, &mut rx).await;
    dispatcher.run_due().await.unwrap();

    let types: Vec<Value> = w.transport.seen_at(OPS).iter().map(verified).collect();
    let mut kinds: Vec<&str> = types.iter().map(|e| e["type"].as_str().unwrap()).collect();
    kinds.sort_unstable();
    assert_eq!(
        kinds,
        [
            "endpoint.disabled",
            "endpoint.enabled",
            "message.attempt.exhausted"
        ],
        "{told:?}"
    );
    for envelope in &types {
        assert_eq!(envelope["data"]["endpoint_id"], gone.as_str());
        match envelope["type"].as_str().unwrap() {
            "endpoint.disabled" => {
                assert_eq!(envelope["data"]["reason"], "gone");
                assert!(envelope["data"]["failing_since"].is_null());
            }
            "endpoint.enabled" => assert_eq!(envelope["data"]["reason"], "enabled"),
            _ => assert_eq!(envelope["data"]["reason"], "endpoint_gone"),
        }
    }
}

#[tokio::test]
async fn nothing_is_said_of_the_operational_endpoint_itself() {
    let w = world().await;
    w.transport.always(OPS, status(410));
    let mut rx = w.sender.notifications();
    let mut dispatcher = w.sender.dispatcher(w.transport.clone()).build();
    let failing = w.sender.add_endpoint(customer(FAILING)).await.unwrap();
    w.transport.always(FAILING, status(410));
    w.sender
        .publish(OutgoingEvent::new("job.failed", json!({"jobId": "j3"})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap(); // the customer's endpoint is gone
    assert_eq!(forward_all(&w.ops, &mut rx).await.len(), 2);
    dispatcher.run_due().await.unwrap(); // so is the operator's: its own news goes nowhere
    assert!(forward_all(&w.ops, &mut rx).await.is_empty());
    dispatcher.run_due().await.unwrap();
    // The two webhooks about the customer's endpoint were attempted (and answered 410).
    let seen = w.transport.seen_at(OPS);
    assert_eq!(seen.len(), 2);
    for envelope in seen.iter().map(verified) {
        assert_eq!(envelope["data"]["endpoint_id"], failing.as_str());
    }
}

#[tokio::test]
async fn the_spawned_forwarder_publishes_as_notifications_come() {
    let w = world().await;
    w.transport.always(FAILING, status(410));
    w.sender.add_endpoint(customer(FAILING)).await.unwrap();
    let forwarding = OperationalWebhooks::new(w.sender.clone(), w.ops_id().await).spawn();
    let mut dispatcher = w.sender.dispatcher(w.transport.clone()).build();
    w.sender
        .publish(OutgoingEvent::new("job.failed", json!({"jobId": "j4"})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    // The forwarder runs on this runtime: give it turns until both webhooks went out.
    for _ in 0..1000 {
        if w.transport.seen_at(OPS).len() == 2 {
            break;
        }
        tokio::task::yield_now().await;
        dispatcher.run_due().await.unwrap();
    }
    assert_eq!(w.transport.seen_at(OPS).len(), 2);
    forwarding.stop();
}

impl World {
    async fn ops_id(&self) -> hookrelay::send::EndpointId {
        OperationalWebhooks::find(&self.sender)
            .await
            .unwrap()
            .unwrap()
            .id()
            .clone()
    }
}
