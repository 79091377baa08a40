//! `hookrelay send` end to end: the sender into hookrelay's own receiver (the axum layer) on
//! 127.0.0.1 for every profile, retries against a flaky receiver, refusals and usage errors.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use hookrelay::profile::Profile;
use hookrelay::receive::Receiver;
use hookrelay::receive::axum::{Delivery, WebhookLayer};
use hookrelay::scheme::ApiKey;
use serde_json::Value;

const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const SECRET: &str = "your_webhook_secret";
const API_KEY: &str = "your-test-api-key";
const REWARD: &str = r#"{"task_id":111111,"reward_type":"Token","reward_amount":"0.1","token_symbol":"USDT","user_id":11111,"email":"user@example.com","timestamp":1758251308}"#;

fn secret_for(profile: Profile) -> &'static str {
    if profile == Profile::StandardWebhooks {
        SW_SECRET
    } else {
        SECRET
    }
}

/// A receiver built with hookrelay's own layer; records each accepted event's body.
async fn receiver(
    profile: Profile,
    fail_first: usize,
) -> (String, Arc<Mutex<Vec<Value>>>, Arc<AtomicUsize>) {
    let mut builder =
        Receiver::builder(profile).secret(profile.secret_from_text(secret_for(profile)).unwrap());
    if profile == Profile::TaskOn {
        builder = builder.api_key(ApiKey::new(API_KEY).unwrap());
    }
    let receiver = builder.build().unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (seen, count) = (Arc::clone(&events), Arc::clone(&hits));
    let app = Router::new()
        .route(
            "/hook",
            post(move |delivery: Delivery<Value>| {
                let (seen, count) = (Arc::clone(&seen), Arc::clone(&count));
                async move {
                    if count.fetch_add(1, Ordering::SeqCst) < fail_first {
                        return Err(StatusCode::SERVICE_UNAVAILABLE);
                    }
                    seen.lock().unwrap().push(delivery.event);
                    Ok(StatusCode::OK)
                }
            }),
        )
        .route_layer(WebhookLayer::new(receiver));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, events, hits)
}

async fn send(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_hookrelay"))
            .arg("send")
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn base(url: &str, profile: Profile) -> Vec<String> {
    let mut args = vec![
        "--url".into(),
        url.into(),
        "--profile".into(),
        profile.name().into(),
        "--secret".into(),
        secret_for(profile).into(),
        "--allow-http".into(),
        "--allow-private-network".into(),
    ];
    match profile {
        Profile::TaskOn => {
            args.extend([
                "--data".into(),
                REWARD.into(),
                "--api-key".into(),
                API_KEY.into(),
            ]);
        }
        _ => args.extend([
            "--event".into(),
            "task.created".into(),
            "--data".into(),
            r#"{"taskId":"123","amount":500.0,"note":"Zoë ✓"}"#.into(),
        ]),
    }
    args
}

fn lines(output: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_profile_reaches_hookrelays_own_receiver() {
    for profile in Profile::ALL {
        let (url, events, _) = receiver(profile, 0).await;
        let output = send(base(&url, profile)).await;
        assert!(
            output.status.success(),
            "{profile}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let attempts = lines(&output);
        assert_eq!(attempts.len(), 1, "{profile}");
        assert_eq!(attempts[0]["outcome"], "delivered");
        assert_eq!(attempts[0]["status"], 200);
        let events = events.lock().unwrap();
        assert_eq!(events.len(), 1, "{profile}: the receiver accepted it");
        let data = match profile.envelope_shape() {
            hookrelay::profile::EnvelopeShape::Flat => events[0].clone(),
            hookrelay::profile::EnvelopeShape::Stripe => events[0]["data"]["object"].clone(),
            _ => events[0]["data"].clone(),
        };
        if profile == Profile::TaskOn {
            assert_eq!(data["user_id"], 11111);
        } else {
            assert_eq!(data["taskId"], "123", "{profile}");
            assert_eq!(data["note"], "Zoë ✓");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_on_the_given_schedule_then_delivers() {
    let (url, events, hits) = receiver(Profile::TaskLink, 2).await;
    let mut args = base(&url, Profile::TaskLink);
    args.extend(["--retry-schedule".into(), "0,0.2,0.2".into()]);
    let output = send(args).await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let attempts = lines(&output);
    let outcomes: Vec<_> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(outcomes, ["retrying", "retrying", "delivered"]);
    assert_eq!(attempts[0]["status"], 503);
    assert_eq!(attempts[2]["attempt"], 3);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    assert_eq!(events.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_with_exit_1() {
    let (url, _, hits) = receiver(Profile::TaskHub, usize::MAX).await;
    let mut args = base(&url, Profile::TaskHub);
    args.extend(["--retry-schedule".into(), "0,0.1".into()]);
    let output = send(args).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("gave up after 2 attempts"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1);
    assert_eq!(lines(&output).last().unwrap()["outcome"], "gave_up");
    assert_eq!(hits.load(Ordering::SeqCst), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_and_plain_http_destinations_are_refused_before_connecting() {
    let (url, _, hits) = receiver(Profile::TaskHub, 0).await;
    let mut args = base(&url, Profile::TaskHub);
    args.retain(|a| a != "--allow-private-network");
    let output = send(args).await;
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("destination refused"), "{stderr}");
    assert!(
        !stderr.contains("127.0.0.1"),
        "the refused address is not revealed: {stderr}"
    );
    assert_eq!(lines(&output)[0]["outcome"], "refused");

    let mut args = base(&url, Profile::TaskHub);
    args.retain(|a| a != "--allow-http");
    let output = send(args).await;
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("https is required"));
    assert_eq!(hits.load(Ordering::SeqCst), 0, "no connection was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_errors_exit_2() {
    let cases: Vec<Vec<&str>> = vec![
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "nope",
            "--secret",
            "s",
            "--event",
            "a",
            "--data",
            "{}",
        ],
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--data",
            "{}",
        ],
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--event",
            "a",
            "--data",
            "{not json",
        ],
        vec![
            "--url",
            "ftp://127.0.0.1:9/",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--event",
            "a",
            "--data",
            "{}",
        ],
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "taskon",
            "--secret",
            "s",
            "--data",
            REWARD,
        ],
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--event",
            "a",
        ],
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--event",
            "a",
            "--data",
            "{}",
            "--retry-schedule",
            "0,x",
        ],
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--event",
            "a",
            "--data",
            "{}",
            "--retry-schedule",
            "0",
            "--max-attempts",
            "2",
        ],
        vec![
            "--url",
            "http://127.0.0.1:9/",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--event",
            "a",
            "--data",
            r#"{"n":9007199254740993}"#,
        ],
    ];
    for case in cases {
        let output = send(case.iter().map(|s| s.to_string()).collect()).await;
        assert_eq!(
            output.status.code(),
            Some(2),
            "{case:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(output.stdout.is_empty(), "{case:?}");
    }
}

/// An id or type the profile cannot put on the wire is a usage error (exit 2) found before any
/// connection, with a message naming the field and the reason, never the raw control bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsendable_ids_and_types_exit_2_before_connecting() {
    for (profile, flag, value, field, reason) in [
        (
            Profile::TaskHub,
            "--event",
            "task.created\r\nX-Injected: 1",
            "type",
            "line break",
        ),
        (
            Profile::GitHub,
            "--event",
            "push\u{7}",
            "type",
            "control character",
        ),
        (Profile::TaskLink, "--event", "", "type", "is empty"),
        (Profile::StandardWebhooks, "--id", "msg.1", "id", "`.`"),
        (Profile::TaskLink, "--id", "evt 1", "id", "visible ascii"),
        (
            Profile::ProposalGenerator,
            "--id",
            "evt\n1",
            "id",
            "line break",
        ),
    ] {
        let (url, _, hits) = receiver(profile, 0).await;
        let mut args = base(&url, profile);
        match args.iter().position(|a| a == flag) {
            Some(at) => args[at + 1] = value.into(),
            None => args.extend([flag.into(), value.into()]),
        }
        let output = send(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{profile} {flag} {value:?}: {stderr}"
        );
        assert!(
            stderr.contains(&format!("the event {field} ")) && stderr.contains(reason),
            "{profile}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            !stderr.contains("Injected") && !stderr.contains('\u{7}'),
            "{stderr}"
        );
        assert!(output.stdout.is_empty());
        assert_eq!(
            hits.load(Ordering::SeqCst),
            0,
            "{profile}: no connection was made"
        );
    }
}

/// `--timeout`'s message names the range the check accepts: both bounds pass, values just
/// outside them (0 included) are refused with that message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_range_message_matches_the_check() {
    let message = "hookrelay: --timeout must be between 0.001 and 3600 seconds\n";
    for timeout in ["0", "0.0009", "3600.001", "NaN", "inf"] {
        let mut args = base("http://127.0.0.1:9/", Profile::TaskHub);
        args.extend(["--timeout".into(), timeout.into()]);
        let output = send(args).await;
        assert_eq!(output.status.code(), Some(2), "--timeout {timeout}");
        assert_eq!(
            String::from_utf8_lossy(&output.stderr),
            message,
            "--timeout {timeout}"
        );
    }
    // The bounds themselves pass the check: these runs fail later, on the URL, not on it.
    for timeout in ["0.001", "3600"] {
        let mut args = base("ftp://127.0.0.1:9/", Profile::TaskHub);
        args.extend(["--timeout".into(), timeout.into()]);
        let output = send(args).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "--timeout {timeout}");
        assert!(
            !stderr.contains("--timeout"),
            "--timeout {timeout}: {stderr}"
        );
    }
}
