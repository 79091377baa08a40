//! `hookrelay relay` end to end (issue #21; CHECKLIST I.79): GitHub in, Standard Webhooks
//! out, every signature on both sides checked by Python's `hmac` (tests/scripts/sign_check.py);
//! a forged or tampered request is refused and never forwarded; an event type outside
//! `--events` is acknowledged and dropped; a relay killed with SIGKILL after answering 2xx
//! and started again forwards everything it acknowledged.

use std::io::{BufRead as _, BufReader, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::scheme::{Message, Scheme, XHub};
use serde_json::{Value, json};

const GITHUB_SECRET: &str = "It's a Secret to Everybody";
const INSIDE_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The expected signature header value, computed by Python's hmac.
fn python_signature(case: Value) -> String {
    let mut child = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/scripts/sign_check.py"
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signatures");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(case.to_string().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

type Seen = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// The internal service: records every request it gets.
async fn inside() -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = Router::new().route(
        "/internal",
        post(move |headers: HeaderMap, body: String| {
            let record = record.clone();
            async move {
                record.lock().unwrap().push((headers, body));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/internal", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

struct Relay {
    child: Child,
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn relay(port: u16, to: &str, database: &str, extra: &[&str]) -> Relay {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args([
            "relay",
            "--from-profile",
            "github",
            "--from-secret",
            GITHUB_SECRET,
        ])
        .args([
            "--to",
            to,
            "--to-profile",
            "standard-webhooks",
            "--to-secret",
            INSIDE_SECRET,
        ])
        .args([
            "--bind",
            &format!("127.0.0.1:{port}"),
            "--database",
            database,
        ])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(
        line.contains("relaying github on http://127.0.0.1:"),
        "{line}"
    );
    std::thread::spawn(move || for _ in stderr.lines() {});
    Relay { child }
}

/// A GitHub delivery as GitHub sends it: our signer, checked against Python's hmac.
fn github_request(delivery: &str, event: &str, body: &str) -> Vec<(String, String)> {
    let secret = Secret::from_raw(GITHUB_SECRET).unwrap();
    let signed = XHub::github()
        .sign(&secret, &Message::new(body.as_bytes()))
        .unwrap();
    let signature = signed
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-hub-signature-256"))
        .unwrap()
        .1
        .to_owned();
    vec![
        ("X-Hub-Signature-256".into(), signature),
        ("X-GitHub-Event".into(), event.into()),
        ("X-GitHub-Delivery".into(), delivery.into()),
        ("Content-Type".into(), "application/json".into()),
    ]
}

async fn post_to(port: u16, headers: &[(String, String)], body: &str) -> u16 {
    // reqwest is built without a default TLS provider (the crate brings ring).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("http://127.0.0.1:{port}/github"))
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn wait_for(seen: &Seen, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while seen.lock().unwrap().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} of {count} arrived",
            seen.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_in_standard_webhooks_out_verified_at_the_edge_and_re_signed_inside() {
    let (to, seen) = inside().await;
    let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-relay-{}.db", std::process::id()));
    let database = format!("sqlite://{}", db.display());
    let port = free_port();
    let _relay = relay(
        port,
        &to,
        &database,
        &["--events", "push", "--events", "pull_request*"],
    );

    let body = r#"{"ref":"refs/heads/main","after":"a1b2c3","repository":{"full_name":"octo/hello","id":1296269},"pusher":{"name":"octocat"}}"#;
    let headers = github_request("72d3162e-cc78-11e3-81ab-4c9367dc0958", "push", body);
    // Our GitHub signer agrees with Python's hmac.
    let expected =
        python_signature(json!({"scheme": "github", "secret": GITHUB_SECRET, "body": body}));
    assert_eq!(headers[0].1, expected);
    assert_eq!(post_to(port, &headers, body).await, 200);

    // Forged and tampered requests: 401, and nothing goes inside.
    let mut forged = headers.clone();
    forged[0].1 = format!("sha256={}", "0".repeat(64));
    assert_eq!(post_to(port, &forged, body).await, 401);
    let tampered = body.replace("octocat", "mallory");
    assert_eq!(post_to(port, &headers, &tampered).await, 401);
    assert_eq!(post_to(port, &headers[1..], body).await, 400, "unsigned");
    // Filtered out: acknowledged, not forwarded.
    let issue = r#"{"action":"opened","issue":{"number":1}}"#;
    assert_eq!(
        post_to(port, &github_request("d-issue-1", "issues", issue), issue).await,
        200
    );

    wait_for(&seen, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "only the verified push is forwarded");
    let (inside_headers, inside_body) = &seen[0];
    // Standard Webhooks inside, checked by Python's hmac with the inside secret.
    let id = header(inside_headers, "webhook-id");
    let timestamp = header(inside_headers, "webhook-timestamp");
    let expected = python_signature(json!({
        "scheme": "standard-webhooks", "secret": INSIDE_SECRET,
        "id": id, "timestamp": timestamp, "body": inside_body,
    }));
    assert!(
        header(inside_headers, "webhook-signature")
            .split(' ')
            .any(|s| s == expected)
    );
    assert!(
        inside_headers.get("x-hub-signature-256").is_none(),
        "the outside signature stays outside"
    );
    // The original id and type travel inside.
    assert_eq!(id, "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(
        header(inside_headers, "x-hookrelay-source-profile"),
        "github"
    );
    let event: Value = serde_json::from_str(inside_body).unwrap();
    assert_eq!(event["type"], "push");
    assert_eq!(event["data"], serde_json::from_str::<Value>(body).unwrap());
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_after_answering_forwards_everything_it_acknowledged_when_started_again() {
    let (to, seen) = inside().await;
    let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-relay-kill-{}.db", std::process::id()));
    let database = format!("sqlite://{}", db.display());
    let port = free_port();
    const EVENTS: usize = 200;
    let mut first = relay(port, &to, &database, &[]);
    for i in 0..EVENTS {
        let body =
            format!(r#"{{"ref":"refs/heads/main","after":"c{i}","pusher":{{"name":"octocat"}}}}"#);
        let status = post_to(
            port,
            &github_request(&format!("delivery-{i}"), "push", &body),
            &body,
        )
        .await;
        assert_eq!(status, 200);
    }
    first.child.kill().unwrap(); // SIGKILL right after the last 2xx
    first.child.wait().unwrap();
    let before = seen.lock().unwrap().len();
    let _second = relay(port, &to, &database, &[]);
    wait_for(&seen, EVENTS).await;
    let seen = seen.lock().unwrap();
    let mut ids: Vec<&str> = seen.iter().map(|(h, _)| header(h, "webhook-id")).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        EVENTS,
        "every acknowledged delivery arrived ({before} before the kill)"
    );
    println!(
        "relay restart: {before} forwarded before the kill, {} requests inside in all",
        seen.len()
    );
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[test]
fn a_bad_profile_or_secret_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args([
            "relay",
            "--from-profile",
            "gitlab",
            "--from-secret",
            "s",
            "--to",
            "http://127.0.0.1:1/x",
        ])
        .args([
            "--to-profile",
            "standard-webhooks",
            "--to-secret",
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args([
            "relay",
            "--from-profile",
            "github",
            "--from-secret",
            "s",
            "--to",
            "http://127.0.0.1:1/x",
        ])
        .args([
            "--to-profile",
            "standard-webhooks",
            "--to-secret",
            "not base64!",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--to-secret"));
}
