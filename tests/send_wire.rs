//! The sender's bytes on the wire, checked by independent implementations: every profile's
//! signature recomputed by Python `hmac` (`tests/wire/check.py`) and Node `crypto`
//! (`tests/wire/check.js`) from the schemes' published rules, and the seeds' own receivers
//! (002 Node and Python, 004 Node), which verify a re-serialised body, re-implemented there.
//! Also rotation and CHECKLIST E49 (a retry is signed afresh, its ids kept).
//!
//! Prints `SKIPPED: <interpreter> not found` when python3 or node is absent.

mod send_support;

use std::collections::HashMap;
use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, UNIX_EPOCH};

use hookrelay::Secret;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::retry::UnixMillis;
use hookrelay::scheme::ApiKey;
use hookrelay::send::{Endpoint, JsonMode, ManualClock, MemoryStore, Sender};
use send_support::{ScriptedTransport, Seen, status};
use serde_json::{Value, json};

const T0: u64 = 1_700_000_000;
const SECRET: &str = "your_webhook_secret";
const OLD_SECRET: &str = "the_old_secret";
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SW_OLD: &str = "whsec_dGhlIG9sZCBzdGFuZGFyZCB3ZWJob29rcyBrZXk=";
const API_KEY: &str = "your-test-api-key";

fn secret_text(profile: Profile) -> &'static str {
    if profile == Profile::StandardWebhooks {
        SW_SECRET
    } else {
        SECRET
    }
}

fn old_text(profile: Profile) -> &'static str {
    if profile == Profile::StandardWebhooks {
        SW_OLD
    } else {
        OLD_SECRET
    }
}

/// Data exercising the JSON traps: a float with no fraction, non-ASCII, U+2028, an
/// integer-like key (JavaScript moves it first), a nested object.
fn tricky() -> Value {
    serde_json::from_str(
        r#"{"taskId":"123","amount":500.0,"note":"Zoë ✓ \u2028 line","10":"integer-like key","nested":{"b":1.5,"a":[1,2.0,"x"]}}"#,
    )
    .unwrap()
}

fn reward() -> Value {
    serde_json::from_str(r#"{"task_id":111111,"reward_type":"Token","reward_amount":"0.1","token_symbol":"USDT","user_id":11111,"email":"user@example.com","timestamp":1758251308}"#).unwrap()
}

fn event(profile: Profile) -> OutgoingEvent {
    let (kind, data) = match profile {
        Profile::TaskOn => ("Token", reward()),
        Profile::TaskLink => ("payment.created", tricky()),
        _ => ("task.created", tricky()),
    };
    OutgoingEvent::new(kind, data)
        .with_id("evt_wire_1".into())
        .with_time(UNIX_EPOCH + Duration::from_millis(1_759_831_200_123))
}

fn endpoint(profile: Profile, url: &str) -> hookrelay::send::EndpointBuilder {
    let mut b = Endpoint::builder(url, profile)
        .secret(profile.secret_from_text(secret_text(profile)).unwrap())
        .status(hookrelay::send::EndpointStatus::Active)
        .without_rate_limit();
    if profile == Profile::TaskOn {
        b = b.api_key(ApiKey::new(API_KEY).unwrap());
    }
    b
}

/// Publishes `event` to one endpoint and returns the request the dispatcher sent.
async fn capture(
    builder: hookrelay::send::EndpointBuilder,
    event: OutgoingEvent,
    clock: &ManualClock,
) -> Seen {
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    let transport = ScriptedTransport::new();
    sender.add_endpoint(builder.build().unwrap()).await.unwrap();
    let mut dispatcher = sender.dispatcher(transport.clone()).build();
    sender.publish(event).await.unwrap();
    assert_eq!(dispatcher.run_due().await.unwrap(), 1);
    transport.seen().pop().unwrap()
}

fn case(name: &str, profile: Profile, secrets: &[&str], seen: &Seen) -> Value {
    let headers: HashMap<String, String> = seen
        .headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    json!({
        "case": name,
        "profile": profile.name(),
        "secrets": secrets,
        "api_key": API_KEY,
        "headers": headers,
        "body_hex": hex::encode(&seen.body),
    })
}

/// Runs `script` under `interpreter` over `cases`; `None` (with a SKIPPED line) if absent.
fn run(interpreter: &str, script: &str, cases: &[Value]) -> Option<HashMap<String, Value>> {
    let mut child = match Command::new(interpreter)
        .arg(format!(
            "{}/tests/wire/{script}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
    {
        Ok(child) => child,
        Err(_) => {
            println!("SKIPPED: {interpreter} not found");
            return None;
        }
    };
    {
        let mut stdin = child.stdin.take().unwrap();
        for c in cases {
            writeln!(stdin, "{c}").unwrap();
        }
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{interpreter} {script} failed");
    let results = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| (v["case"].as_str().unwrap().to_owned(), v))
        .collect::<HashMap<_, _>>();
    assert_eq!(results.len(), cases.len());
    Some(results)
}

fn both(cases: &[Value]) -> Vec<HashMap<String, Value>> {
    [("python3", "check.py"), ("node", "check.js")]
        .into_iter()
        .filter_map(|(i, s)| run(i, s, cases))
        .collect()
}

#[tokio::test]
async fn every_profile_signs_what_independent_implementations_compute() {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let mut cases = Vec::new();
    let mut seen_by_profile = HashMap::new();
    for profile in Profile::ALL {
        let seen = capture(
            endpoint(profile, "https://hooks.example/w"),
            event(profile),
            &clock,
        )
        .await;
        cases.push(case(
            profile.name(),
            profile,
            &[secret_text(profile)],
            &seen,
        ));
        seen_by_profile.insert(profile, seen);
    }
    for results in both(&cases) {
        for profile in Profile::ALL {
            let r = &results[profile.name()];
            assert_eq!(r["matched"], json!([true]), "{profile}: {r}");
            if profile == Profile::TaskOn && r.get("api_key_ok").is_some() {
                assert_eq!(r["api_key_ok"], json!(true));
            }
        }
    }

    // The documented headers (DESIGN.md §1).
    let header = |p: Profile, name: &str| seen_by_profile[&p].header(name).map(str::to_owned);
    for p in Profile::ALL {
        assert_eq!(
            header(p, "content-type").as_deref(),
            Some("application/json"),
            "{p}"
        );
        assert!(header(p, "user-agent").is_some(), "{p}");
    }
    assert_eq!(
        header(Profile::TaskLink, "user-agent").as_deref(),
        Some("TaskLink-SA-Webhook/1.0")
    );
    assert_eq!(
        header(Profile::TaskLink, "x-webhook-id").as_deref(),
        Some("evt_wire_1")
    );
    assert_eq!(
        header(Profile::TaskLink, "x-webhook-attempt").as_deref(),
        Some("1")
    );
    assert_eq!(
        header(Profile::TaskLink, "x-webhook-event").as_deref(),
        Some("payment.created")
    );
    assert!(
        header(Profile::TaskHub, "x-webhook-id")
            .unwrap()
            .starts_with("ep_")
    );
    assert!(
        header(Profile::TaskHub, "x-delivery-id")
            .unwrap()
            .starts_with("dlv_")
    );
    assert_eq!(
        header(Profile::TaskHub, "x-event-type").as_deref(),
        Some("task.created")
    );
    assert_eq!(
        header(Profile::TaskOn, "x-api-key").as_deref(),
        Some(API_KEY)
    );
    assert_eq!(
        header(Profile::GitHub, "x-github-event").as_deref(),
        Some("task.created")
    );
    assert_eq!(
        header(Profile::StandardWebhooks, "webhook-id").as_deref(),
        Some("evt_wire_1")
    );
    assert_eq!(
        header(Profile::StandardWebhooks, "webhook-timestamp").as_deref(),
        Some(T0.to_string().as_str()),
        "signed at the clock's time"
    );

    // The bodies, byte for byte.
    let body = |p: Profile| String::from_utf8(seen_by_profile[&p].body.clone()).unwrap();
    assert_eq!(
        body(Profile::TaskLink),
        "{\"event\":\"payment.created\",\"id\":\"evt_wire_1\",\"timestamp\":\"2025-10-07T10:00:00.123Z\",\"data\":{\"10\":\"integer-like key\",\"taskId\":\"123\",\"amount\":500,\"note\":\"Zoë ✓ \u{2028} line\",\"nested\":{\"b\":1.5,\"a\":[1,2,\"x\"]}}}"
    );
    assert!(body(Profile::ProposalGenerator).starts_with(
        "{\"id\":\"evt_wire_1\",\"type\":\"task.created\",\"timestamp\":\"2025-10-07T10:00:00Z\",\"data\":{"
    ));
    assert_eq!(
        body(Profile::TaskOn),
        reward().to_string(),
        "the flat reward object as given"
    );
    assert!(body(Profile::Stripe).starts_with(
        "{\"id\":\"evt_wire_1\",\"object\":\"event\",\"type\":\"task.created\",\"created\":1759831200,\"data\":{\"object\":{"
    ));
}

#[tokio::test]
async fn the_seeds_receivers_accept_our_bytes() {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let tasklink_js = capture(
        endpoint(Profile::TaskLink, "https://a.example/"),
        event(Profile::TaskLink),
        &clock,
    )
    .await;
    let tasklink_py = capture(
        endpoint(Profile::TaskLink, "https://b.example/").json(JsonMode::PythonAscii),
        event(Profile::TaskLink),
        &clock,
    )
    .await;
    let hub = capture(
        endpoint(Profile::TaskHub, "https://c.example/"),
        event(Profile::TaskHub),
        &clock,
    )
    .await;
    let cases = vec![
        case("tasklink-js", Profile::TaskLink, &[SECRET], &tasklink_js),
        case("tasklink-py", Profile::TaskLink, &[SECRET], &tasklink_py),
        case("task-hub-js", Profile::TaskHub, &[SECRET], &hub),
    ];
    assert!(tasklink_py.body.is_ascii(), "python mode escapes non-ASCII");
    for results in both(&cases) {
        for r in results.values() {
            assert_eq!(r["matched"], json!([true]), "{r}");
        }
        if results["tasklink-js"].get("seed_002_node").is_some() {
            // 002's Node receiver: JSON.stringify(JSON.parse(body)) reproduces our bytes.
            assert_eq!(results["tasklink-js"]["seed_002_node"], json!(true));
            assert_eq!(results["task-hub-js"]["seed_004_node"], json!(true));
            // Python-mode bytes are not a fixed point of JavaScript's round trip (escapes).
            assert_eq!(results["tasklink-py"]["seed_002_node"], json!(false));
        } else {
            // 002's Python receiver: json.dumps escapes non-ASCII, so only the PythonAscii
            // mode survives its round trip — the reason that mode exists.
            assert_eq!(results["tasklink-py"]["seed_002_python"], json!(true));
            assert_eq!(results["tasklink-js"]["seed_002_python"], json!(false));
        }
    }
}

#[tokio::test]
async fn rotation_signs_with_every_active_secret_until_its_grace_ends() {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let until = UNIX_EPOCH + Duration::from_secs(T0 + 3600);
    let rotating = |p: Profile| {
        endpoint(p, "https://r.example/")
            .retiring_secret(p.secret_from_text(old_text(p)).unwrap(), until)
    };
    let mut cases = Vec::new();
    for p in [Profile::StandardWebhooks, Profile::Stripe, Profile::TaskHub] {
        let during = capture(rotating(p), event(p), &clock).await;
        cases.push(case(
            &format!("{p}-during"),
            p,
            &[secret_text(p), old_text(p)],
            &during,
        ));
    }
    clock.advance(Duration::from_secs(3600));
    for p in [Profile::StandardWebhooks, Profile::Stripe] {
        let after = capture(rotating(p), event(p), &clock).await;
        cases.push(case(
            &format!("{p}-after"),
            p,
            &[secret_text(p), old_text(p)],
            &after,
        ));
    }
    for results in both(&cases) {
        assert_eq!(
            results["standard-webhooks-during"]["matched"],
            json!([true, true])
        );
        assert_eq!(results["stripe-during"]["matched"], json!([true, true]));
        assert_eq!(
            results["task-hub-during"]["matched"],
            json!([true, false]),
            "a one-signature scheme signs with the current secret"
        );
        assert_eq!(
            results["standard-webhooks-after"]["matched"],
            json!([true, false])
        );
        assert_eq!(results["stripe-after"]["matched"], json!([true, false]));
    }
}

#[tokio::test]
async fn e49_a_retry_is_signed_afresh_and_keeps_its_ids() {
    let mut cases = Vec::new();
    let mut pairs = HashMap::new();
    for p in [
        Profile::StandardWebhooks,
        Profile::Stripe,
        Profile::TaskLink,
        Profile::TaskHub,
    ] {
        let clock = ManualClock::at(UnixMillis::from_secs(T0));
        let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
        let transport = ScriptedTransport::new();
        transport.answer("https://e.example/", [status(500)]);
        let policy = hookrelay::retry::RetryPolicy::builder()
            .delays([Duration::from_secs(2)])
            .max_attempts(2)
            .jitter(hookrelay::retry::Jitter::None)
            .build()
            .unwrap();
        sender
            .add_endpoint(
                endpoint(p, "https://e.example/")
                    .retry_policy(policy)
                    .build()
                    .unwrap(),
            )
            .await
            .unwrap();
        let mut dispatcher = sender.dispatcher(transport.clone()).build();
        sender.publish(event(p)).await.unwrap();
        assert_eq!(dispatcher.run_due().await.unwrap(), 1);
        clock.advance(Duration::from_secs(2));
        assert_eq!(dispatcher.run_due().await.unwrap(), 1);
        let seen = transport.seen();
        assert_eq!(seen.len(), 2);
        assert_eq!(
            seen[0].body, seen[1].body,
            "{p}: the same bytes every attempt"
        );
        for (i, s) in seen.iter().enumerate() {
            cases.push(case(&format!("{p}-{i}"), p, &[secret_text(p)], s));
        }
        pairs.insert(p, seen);
    }
    let h = |p: Profile, i: usize, name: &str| pairs[&p][i].header(name).unwrap().to_owned();
    assert_ne!(
        h(Profile::StandardWebhooks, 0, "webhook-timestamp"),
        h(Profile::StandardWebhooks, 1, "webhook-timestamp")
    );
    assert_eq!(
        h(Profile::StandardWebhooks, 0, "webhook-id"),
        h(Profile::StandardWebhooks, 1, "webhook-id")
    );
    assert_ne!(
        h(Profile::Stripe, 0, "stripe-signature"),
        h(Profile::Stripe, 1, "stripe-signature")
    );
    assert_eq!(h(Profile::TaskLink, 0, "x-webhook-attempt"), "1");
    assert_eq!(h(Profile::TaskLink, 1, "x-webhook-attempt"), "2");
    assert_eq!(
        h(Profile::TaskLink, 0, "x-webhook-id"),
        h(Profile::TaskLink, 1, "x-webhook-id")
    );
    assert_eq!(
        h(Profile::TaskHub, 0, "x-delivery-id"),
        h(Profile::TaskHub, 1, "x-delivery-id")
    );
    for results in both(&cases) {
        for (name, r) in &results {
            assert_eq!(r["matched"], json!([true]), "{name}");
        }
    }
}

#[tokio::test]
async fn signatures_never_print() {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let seen = capture(
        endpoint(Profile::TaskHub, "https://p.example/"),
        event(Profile::TaskHub),
        &clock,
    )
    .await;
    let signature = seen.header("x-hub-signature").unwrap().to_owned();
    let request = hookrelay::send::OutboundRequest {
        url: url::Url::parse("https://p.example/").unwrap(),
        headers: seen.headers.clone(),
        body: bytes::Bytes::from(seen.body.clone()),
        timeout: Duration::from_secs(1),
    };
    let sender = Sender::new(MemoryStore::new());
    let endpoint = endpoint(Profile::TaskHub, "https://p.example/")
        .build()
        .unwrap();
    for shown in [
        format!("{request:?}"),
        format!("{sender:?}"),
        format!("{endpoint:?}"),
    ] {
        assert!(!shown.contains(&signature), "{shown}");
        assert!(!shown.contains(&signature[7..]), "{shown}");
        assert!(!shown.contains(SECRET), "{shown}");
    }
    let _ = Secret::from_raw(SECRET).unwrap();
}
