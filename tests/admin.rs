//! Administering what the sender holds, through `Sender`'s public API only, as an app would:
//! endpoints changed, paused, deleted and their secrets rotated; the log paged per owner;
//! bulk retry; endpoint numbers. Rotation signatures are checked against Python's `hmac`.
//!
//! Runs on `MemoryStore` and on `SqliteStore` (a fresh temporary file each).

mod send_support;

use std::time::Duration;

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::{Jitter, RetryPolicy, UnixMillis};
use hookrelay::send::store::{LogOrder, ResponseClass, StatusKind, TimeRange, TypePattern};
use hookrelay::send::{
    AdminError, BulkRetry, DeliveryKind, DeliveryStatus, DeliveryStore, Endpoint, EndpointId,
    EndpointKey, EndpointQuery, EndpointStatus, LogQuery, ManualClock, MemoryStore, Owner,
    PageLimit, Sender, SqliteStore,
};
use send_support::{ScriptedTransport, status};
use serde_json::json;

const T0: u64 = 1_700_000_000;
const OLD_KEY: [u8; 32] = [0x11; 32];
const NEW_KEY: [u8; 32] = [0x22; 32];

fn temp_db() -> String {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    format!(
        "{}/hookrelay-admin-{}-{}.db",
        dir.display(),
        std::process::id(),
        hookrelay::send::MessageId::generate()
    )
}

fn policy(attempts: u32) -> RetryPolicy {
    RetryPolicy::builder()
        .delays([Duration::from_secs(1)])
        .max_attempts(attempts)
        .jitter(Jitter::None)
        .build()
        .unwrap()
}

fn endpoint(url: &str, profile: Profile, owner: Option<&str>) -> Endpoint {
    let mut b = Endpoint::builder(url, profile)
        .secret(Secret::from_raw(OLD_KEY).unwrap())
        .without_rate_limit()
        .retry_policy(policy(2));
    if let Some(owner) = owner {
        b = b.owner(Owner::new(owner).unwrap());
    }
    b.build().unwrap()
}

/// Base64 HMAC-SHA256 of Standard Webhooks' signed content, computed by Python's `hmac`.
fn python_standard_signature(key: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
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

/// Hex HMAC-SHA256 of `body`, computed by Python's `hmac`.
fn python_hex(key: &[u8], body: &[u8]) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("python3")
        .args([
            "-c",
            "import hmac, hashlib, sys; \
             print(hmac.new(bytes.fromhex(sys.argv[1]), sys.stdin.buffer.read(), hashlib.sha256).hexdigest())",
            &hex::encode(key),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signature");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

async fn rotation_signs_with_both_then_the_new_alone<S: DeliveryStore>(
    sender: Sender<S>,
    clock: ManualClock,
) {
    let transport = ScriptedTransport::new();
    let url = "https://rotate.example/hook";
    let id = sender
        .add_endpoint(endpoint(url, Profile::StandardWebhooks, None))
        .await
        .unwrap();
    let returned = sender
        .rotate_secret(
            &id,
            Some(Secret::from_raw(NEW_KEY).unwrap()),
            Some(Duration::from_secs(3600)),
        )
        .await
        .unwrap();
    assert_eq!(
        returned.reveal_whsec(),
        Secret::from_raw(NEW_KEY).unwrap().reveal_whsec()
    );
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender
        .publish(OutgoingEvent::new("a.b", json!({"n": 1})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    // An hour later the old secret has stopped by itself.
    clock.advance(Duration::from_secs(3601));
    sender
        .publish(OutgoingEvent::new("a.b", json!({"n": 2})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    let seen = transport.seen_at(url);
    assert_eq!(seen.len(), 2);
    for (request, keys) in seen.iter().zip([&[NEW_KEY, OLD_KEY][..], &[NEW_KEY][..]]) {
        let id = request.header("webhook-id").unwrap();
        let ts = request.header("webhook-timestamp").unwrap();
        let expected: Vec<String> = keys
            .iter()
            .map(|k| format!("v1,{}", python_standard_signature(k, id, ts, &request.body)))
            .collect();
        assert_eq!(
            request.header("webhook-signature").unwrap(),
            expected.join(" ")
        );
    }
}

async fn rotation_on_a_single_signature_scheme_switches_at_once<S: DeliveryStore>(
    sender: Sender<S>,
) {
    let transport = ScriptedTransport::new();
    let url = "https://github.example/hook";
    let id = sender
        .add_endpoint(endpoint(url, Profile::GitHub, None))
        .await
        .unwrap();
    sender
        .rotate_secret(&id, Some(Secret::from_raw(NEW_KEY).unwrap()), None)
        .await
        .unwrap();
    let endpoint = sender.endpoint(&id).await.unwrap().unwrap();
    // The old one is kept for the record, ending with the default 24 h grace.
    assert_eq!(endpoint.secrets().len(), 2);
    assert_eq!(
        endpoint.secrets()[1].until(),
        Some(UnixMillis::from_secs(T0 + 24 * 3600))
    );
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender
        .publish(OutgoingEvent::new("push", json!({"ref": "main"})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap();
    let seen = transport.seen_at(url);
    assert_eq!(
        seen[0].header("x-hub-signature-256").unwrap(),
        format!("sha256={}", python_hex(&NEW_KEY, &seen[0].body))
    );
    assert_eq!(
        sender
            .rotate_secret(&id, None, Some(Duration::from_secs(8 * 24 * 3600)))
            .await
            .unwrap_err(),
        AdminError::GraceTooLong
    );
    let unknown = EndpointId::new("ep_unknown").unwrap();
    assert_eq!(
        sender
            .rotate_secret(&unknown, None, None)
            .await
            .unwrap_err(),
        AdminError::NotFound
    );
    // A generated secret: 32 random bytes, different each time.
    let a = sender.rotate_secret(&id, None, None).await.unwrap();
    let b = sender.rotate_secret(&id, None, None).await.unwrap();
    assert_ne!(a.reveal_whsec(), b.reveal_whsec());
}

async fn endpoints_are_changed_looked_up_and_kept_apart<S: DeliveryStore>(sender: Sender<S>) {
    let key = EndpointKey::new("billing").unwrap();
    let acme = Owner::new("acme").unwrap();
    let globex = Owner::new("globex").unwrap();
    let a = sender
        .add_endpoint(
            endpoint("https://a.example/hook", Profile::TaskHub, Some("acme"))
                .to_builder()
                .key(key.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    // The same key under another owner is fine; twice under one owner is not.
    let g = sender
        .add_endpoint(
            endpoint("https://g.example/hook", Profile::TaskHub, Some("globex"))
                .to_builder()
                .key(key.clone())
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let clash = endpoint("https://b.example/hook", Profile::TaskHub, Some("acme"))
        .to_builder()
        .key(key.clone())
        .build()
        .unwrap();
    assert_eq!(
        sender.add_endpoint(clash).await.unwrap_err(),
        AdminError::KeyTaken
    );
    assert_eq!(
        sender
            .endpoint_by_key(Some(&acme), &key)
            .await
            .unwrap()
            .unwrap()
            .id(),
        &a
    );
    assert_eq!(
        sender
            .endpoint_by_key(Some(&globex), &key)
            .await
            .unwrap()
            .unwrap()
            .id(),
        &g
    );
    assert!(sender.endpoint_by_key(None, &key).await.unwrap().is_none());

    // Update: a bad URL is refused, a good one saved; the id cannot change.
    let err = sender
        .update_endpoint(&a, |b| b.url("ftp://a.example/"))
        .await
        .unwrap_err();
    assert!(matches!(err, AdminError::Invalid(_)), "{err:?}");
    let updated = sender
        .update_endpoint(&a, |b| {
            b.url("https://a2.example/hook")
                .id(EndpointId::new("ep_other").unwrap())
        })
        .await
        .unwrap();
    assert_eq!(updated.id(), &a);
    assert_eq!(
        sender.endpoint(&a).await.unwrap().unwrap().url().as_str(),
        "https://a2.example/hook"
    );
    // Taking another owner's endpoint's key by update: refused, nothing changed.
    let other = sender
        .add_endpoint(endpoint(
            "https://c.example/hook",
            Profile::TaskHub,
            Some("acme"),
        ))
        .await
        .unwrap();
    assert_eq!(
        sender
            .update_endpoint(&other, |b| b.key(key.clone()))
            .await
            .unwrap_err(),
        AdminError::KeyTaken
    );
    assert!(
        sender
            .endpoint(&other)
            .await
            .unwrap()
            .unwrap()
            .key()
            .is_none()
    );

    // A Proposal Generator endpoint whose URL changes must pass the handshake again.
    let pg = sender
        .add_endpoint(
            endpoint("https://pg.example/hook", Profile::ProposalGenerator, None)
                .to_builder()
                .status(EndpointStatus::Active)
                .build()
                .unwrap(),
        )
        .await
        .unwrap();
    let changed = sender
        .update_endpoint(&pg, |b| b.url("https://pg2.example/hook"))
        .await
        .unwrap();
    assert_eq!(changed.status(), EndpointStatus::PendingVerification);
    assert_eq!(
        sender.resume_endpoint(&pg).await.unwrap_err(),
        AdminError::Unverified
    );
    // …but a change that keeps the URL keeps the status.
    let renamed = sender
        .update_endpoint(&g, |b| b.name("renamed"))
        .await
        .unwrap();
    assert_eq!(renamed.status(), EndpointStatus::Active);

    // Lists by owner never show another owner's endpoints, page after page.
    let mut query = EndpointQuery {
        owner: Some(acme.clone()),
        limit: PageLimit::new(1).unwrap(),
        ..EndpointQuery::default()
    };
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = sender.list_endpoints(&query).await.unwrap();
        seen.extend(page.items.iter().map(|e| e.id().clone()));
        assert!(page.items.iter().all(|e| e.owner() == Some(&acme)));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    let mut expected = vec![a.clone(), other.clone()];
    expected.sort();
    assert_eq!(seen, expected);
}

async fn pause_resume_delete_and_the_log<S: DeliveryStore>(sender: Sender<S>, clock: ManualClock) {
    let transport = ScriptedTransport::new();
    let url_a = "https://pa.example/hook";
    let url_b = "https://pb.example/hook";
    let a = sender
        .add_endpoint(endpoint(url_a, Profile::TaskHub, Some("acme")))
        .await
        .unwrap();
    let b = sender
        .add_endpoint(endpoint(url_b, Profile::TaskHub, Some("globex")))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender.pause_endpoint(&a).await.unwrap();
    assert_eq!(
        sender.endpoint(&a).await.unwrap().unwrap().status(),
        EndpointStatus::Paused
    );
    for n in 0..3 {
        sender
            .publish(OutgoingEvent::new("invoice.paid", json!({"n": n})))
            .await
            .unwrap();
    }
    dispatcher.run_due().await.unwrap();
    assert!(transport.seen_at(url_a).is_empty(), "paused: nothing sent");
    assert_eq!(transport.seen_at(url_b).len(), 3);
    sender.resume_endpoint(&a).await.unwrap();
    dispatcher.run_due().await.unwrap();
    assert_eq!(
        transport.seen_at(url_a).len(),
        3,
        "resumed: what waited went"
    );

    // Deleting B with work pending cancels it; nothing more is sent to B.
    transport.always(url_b, status(500));
    sender
        .publish(OutgoingEvent::new("invoice.failed", json!({"n": 9})))
        .await
        .unwrap();
    dispatcher.run_due().await.unwrap(); // B fails once, retry due in 1 s
    assert_eq!(sender.delete_endpoint(&b).await.unwrap(), 1);
    assert_eq!(
        sender.delete_endpoint(&b).await.unwrap_err(),
        AdminError::NotFound
    );
    clock.advance(Duration::from_secs(5));
    dispatcher.run_due().await.unwrap();
    assert_eq!(
        transport.seen_at(url_b).len(),
        4,
        "no attempt after the delete"
    );

    // The log: newest first by default; per owner; by status; by response class.
    let globex = LogQuery {
        owner: Some(Owner::new("globex").unwrap()),
        ..LogQuery::default()
    };
    let page = sender.delivery_log(&globex).await.unwrap();
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.items[0].status, DeliveryStatus::Cancelled);
    assert_eq!(page.items[0].event_type.as_str(), "invoice.failed");
    assert!(page.items.iter().all(|d| d.endpoint == b));
    let acme_only = LogQuery {
        owner: Some(Owner::new("acme").unwrap()),
        order: LogOrder::OldestFirst,
        ..LogQuery::default()
    };
    let page = sender.delivery_log(&acme_only).await.unwrap();
    assert_eq!(page.items.len(), 4);
    assert!(page.items.iter().all(|d| d.endpoint == a));
    let cancelled = LogQuery {
        statuses: vec![StatusKind::Cancelled],
        ..LogQuery::default()
    };
    assert_eq!(
        sender.delivery_log(&cancelled).await.unwrap().items.len(),
        1
    );
    let server_errors = LogQuery {
        responses: vec![ResponseClass::ServerError],
        ..LogQuery::default()
    };
    assert_eq!(
        sender
            .delivery_log(&server_errors)
            .await
            .unwrap()
            .items
            .len(),
        1
    );
    let paid = LogQuery {
        event_type: Some(TypePattern::parse("invoice.p*")),
        kinds: vec![DeliveryKind::Event],
        ..LogQuery::default()
    };
    assert_eq!(sender.delivery_log(&paid).await.unwrap().items.len(), 6);

    // A message in full, per owner.
    let first = &sender.delivery_log(&acme_only).await.unwrap().items[0];
    let view = sender
        .message_view(&first.message, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.deliveries.len(), 2);
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&view.message.body).unwrap()["data"]["n"],
        0
    );
    let acme_view = sender
        .message_view(&first.message, Some(&Owner::new("acme").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(acme_view.deliveries.len(), 1);
    assert!(
        sender
            .message_view(&first.message, Some(&Owner::new("nobody").unwrap()))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        sender
            .delivery_detail(&first.id, Some(&Owner::new("globex").unwrap()))
            .await
            .unwrap()
            .is_none()
    );
    let detail = sender
        .delivery_detail(&first.id, Some(&Owner::new("acme").unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.attempts.len(), 1);
    assert_eq!(detail.attempts[0].status, Some(200));
    // The request headers sent, kept with the attempt; the signature's value redacted.
    let sent = &detail.attempts[0].request_headers;
    let signature = sent
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("x-hub-signature"))
        .unwrap_or_else(|| panic!("the signature header is listed: {sent:?}"));
    assert_eq!(signature.1, hookrelay::send::REDACTED);
    assert!(
        sent.iter()
            .any(|(name, value)| name.eq_ignore_ascii_case("x-event-type")
                && value == "invoice.paid")
    );
}

async fn bulk_retry_counts_first_then_queues<S: DeliveryStore>(
    sender: Sender<S>,
    clock: ManualClock,
) {
    let transport = ScriptedTransport::new();
    let url = "https://bulk.example/hook";
    let ok = "https://fine.example/hook";
    transport.always(url, status(503));
    let id = sender
        .add_endpoint(endpoint(url, Profile::TaskHub, Some("acme")))
        .await
        .unwrap();
    sender
        .add_endpoint(endpoint(ok, Profile::TaskHub, Some("acme")))
        .await
        .unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    for n in 0..5 {
        sender
            .publish(OutgoingEvent::new("job.done", json!({"n": n})))
            .await
            .unwrap();
    }
    dispatcher.run_due().await.unwrap();
    clock.advance(Duration::from_secs(2));
    dispatcher.run_due().await.unwrap(); // second and last attempt: dead
    let dead = LogQuery {
        endpoint: Some(id.clone()),
        statuses: vec![StatusKind::Dead],
        ..LogQuery::default()
    };
    let dry = sender.bulk_retry(&dead, BulkRetry::DryRun).await.unwrap();
    assert_eq!((dry.matched, dry.queued), (5, 0));
    assert_eq!(sender.delivery_log(&dead).await.unwrap().items.len(), 5);
    // The receiver is fixed; retry them all.
    transport.always(url, status(200));
    let done = sender.bulk_retry(&dead, BulkRetry::Queue).await.unwrap();
    assert_eq!((done.matched, done.queued), (5, 5));
    dispatcher.run_due().await.unwrap();
    assert!(sender.delivery_log(&dead).await.unwrap().items.is_empty());
    let delivered = sender
        .delivery_log(&LogQuery {
            endpoint: Some(id.clone()),
            statuses: vec![StatusKind::Delivered],
            ..LogQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(delivered.items.len(), 5);
    let detail = sender
        .delivery_detail(&delivered.items[0].id, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(detail.attempts.len(), 3);
    assert!(
        detail.attempts[2].manual,
        "the bulk retry is logged as manual"
    );

    // A delivered one may be sent again by hand too.
    assert!(sender.retry_delivery(&delivered.items[0].id).await.unwrap());

    // The endpoint's numbers over the window.
    let stats = sender
        .endpoint_stats(
            &id,
            TimeRange::between(UnixMillis::from_secs(T0), UnixMillis::from_secs(T0 + 60)),
        )
        .await
        .unwrap();
    assert_eq!(stats.attempts, 15);
    assert_eq!(stats.outcomes.server_error, 10);
    assert_eq!(stats.outcomes.success, 5);
    assert_eq!(stats.retries, 10);
    assert_eq!(stats.last_failure, Some(UnixMillis::from_secs(T0 + 2)));
    assert_eq!(stats.last_success, Some(UnixMillis::from_secs(T0 + 2)));
}

macro_rules! on_stores {
    ($name:ident, $scenario:ident, clock) => {
        #[tokio::test]
        async fn $name() {
            let clock = ManualClock::at(UnixMillis::from_secs(T0));
            $scenario(Sender::with_clock(MemoryStore::new(), clock.clone()), clock).await;
            let clock = ManualClock::at(UnixMillis::from_secs(T0));
            let store = SqliteStore::connect(&temp_db()).await.unwrap();
            $scenario(Sender::with_clock(store, clock.clone()), clock).await;
        }
    };
    ($name:ident, $scenario:ident) => {
        #[tokio::test]
        async fn $name() {
            let clock = ManualClock::at(UnixMillis::from_secs(T0));
            $scenario(Sender::with_clock(MemoryStore::new(), clock.clone())).await;
            let clock = ManualClock::at(UnixMillis::from_secs(T0));
            let store = SqliteStore::connect(&temp_db()).await.unwrap();
            $scenario(Sender::with_clock(store, clock)).await;
        }
    };
}

on_stores!(
    rotation_with_several_signatures,
    rotation_signs_with_both_then_the_new_alone,
    clock
);
on_stores!(
    rotation_with_one_signature,
    rotation_on_a_single_signature_scheme_switches_at_once
);
on_stores!(
    endpoint_administration,
    endpoints_are_changed_looked_up_and_kept_apart
);
on_stores!(
    pause_resume_delete_log,
    pause_resume_delete_and_the_log,
    clock
);
on_stores!(bulk_retry, bulk_retry_counts_first_then_queues, clock);

/// With a URL policy (the transport's SSRF rules), a URL it refuses by itself is refused at
/// registration and at update, and nothing is stored or changed.
#[tokio::test]
async fn a_url_policy_vets_registration_and_update() {
    use hookrelay::send::{AddressPolicy, Refusal};
    let sender = Sender::new(MemoryStore::new()).with_url_policy(AddressPolicy::new());
    let refused = |url: &str| endpoint(url, Profile::TaskHub, None);
    for (url, why) in [
        ("https://10.0.0.7/hook", Refusal::NonPublicAddress),
        ("https://localhost/hook", Refusal::NonPublicAddress),
        ("http://hooks.example.com/", Refusal::InsecureScheme),
    ] {
        assert_eq!(
            sender.add_endpoint(refused(url)).await.unwrap_err(),
            AdminError::UrlRefused(why),
            "{url}"
        );
    }
    let id = sender
        .add_endpoint(refused("https://hooks.example.com/"))
        .await
        .unwrap();
    assert_eq!(
        sender
            .update_endpoint(&id, |b| b.url("https://[::1]/hook"))
            .await
            .unwrap_err(),
        AdminError::UrlRefused(Refusal::NonPublicAddress)
    );
    assert_eq!(
        sender.endpoint(&id).await.unwrap().unwrap().url().as_str(),
        "https://hooks.example.com/"
    );
    let page = sender
        .list_endpoints(&EndpointQuery::default())
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1, "nothing refused was stored");
}
