//! `hookrelay listen`, driven over real loopback HTTP with independently computed
//! signatures (tests/vectors/schemes.json, Python hmac).

mod common;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

struct Listener {
    child: Child,
    port: u16,
    /// Lines on stdout: accepted events.
    lines: mpsc::Receiver<String>,
    /// Lines on stderr after the first: why requests were refused.
    log: mpsc::Receiver<String>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen(args: &[&str]) -> Listener {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["listen", "--port", "0"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut first = String::new();
    stderr.read_line(&mut first).unwrap();
    let port = first
        .split("127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {first:?}"));
    let lines = forward_lines(child.stdout.take().unwrap());
    // Drained as it comes, so a chatty server never blocks on a full pipe.
    let log = forward_lines(stderr);
    Listener {
        child,
        port,
        lines,
        log,
    }
}

/// Reads `stream` line by line on a thread of its own.
fn forward_lines(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    lines
}

/// POSTs `body` with `headers`; returns the status and the response body.
fn post(port: u16, path: &str, headers: &[(String, String)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned();
    (status, body)
}

use common::vector;

fn next_line(listener: &Listener) -> Value {
    let line = listener
        .lines
        .recv_timeout(Duration::from_secs(10))
        .expect("no line printed");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line}: {e}"))
}

#[test]
fn prints_each_accepted_event_once_and_rejects_forgeries() {
    let (headers, body, case) = vector("tasklink job.created");
    let listener = listen(&[
        "--profile",
        "tasklink",
        "--secret",
        case["secret"].as_str().unwrap(),
    ]);

    let (status, _) = post(listener.port, "/any/path", &headers, &body);
    assert_eq!(status, 200);
    let line = next_line(&listener);
    assert_eq!(line["id"], "evt_123456");
    assert_eq!(line["type"], "job.created");
    assert_eq!(
        line["payload"],
        serde_json::from_slice::<Value>(&body).unwrap()
    );

    // A duplicate is answered 2xx and not printed again.
    assert_eq!(post(listener.port, "/", &headers, &body).0, 200);
    // A forgery gets 401 and nothing is printed on stdout; stderr says why.
    let mut forged = headers.clone();
    forged[1].1 = format!("sha256={}", "0".repeat(64));
    assert_eq!(post(listener.port, "/", &forged, &body).0, 401);
    // Missing headers: 400.
    assert_eq!(post(listener.port, "/", &[], &body).0, 400);
    assert!(
        listener
            .lines
            .recv_timeout(Duration::from_millis(300))
            .is_err()
    );
    let log = |listener: &Listener| {
        listener
            .log
            .recv_timeout(Duration::from_secs(10))
            .expect("no reason printed")
    };
    assert_eq!(
        log(&listener),
        "hookrelay: 401 webhook rejected (tasklink): no signature matches"
    );
    assert_eq!(
        log(&listener),
        "hookrelay: 400 webhook rejected (tasklink): missing header `X-Webhook-ID`"
    );
    // The accepted event and its duplicate were not logged.
    assert!(listener.log.try_recv().is_err());
}

#[test]
fn payload_is_the_body_text_exactly() {
    let (headers, body, case) = vector("pg job.completed");
    let listener = listen(&[
        "--profile",
        "proposal-generator",
        "--secret",
        case["secret"].as_str().unwrap(),
    ]);
    let (status, reply) = post(listener.port, "/webhook", &headers, &body);
    assert_eq!((status, reply.as_str()), (200, r#"{"status":"ok"}"#));
    let line = listener
        .lines
        .recv_timeout(Duration::from_secs(10))
        .unwrap();
    let body_text = String::from_utf8(body).unwrap();
    assert!(
        line.ends_with(&format!(r#","payload":{body_text}}}"#)),
        "{line}"
    );
}

#[test]
fn taskon_needs_its_api_key_and_replies_its_way() {
    let (headers, body, case) = vector("taskon token");
    let missing_key = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args([
            "listen",
            "--port",
            "0",
            "--profile",
            "taskon",
            "--secret",
            "k",
        ])
        .output()
        .unwrap();
    assert_eq!(missing_key.status.code(), Some(2));

    let listener = listen(&[
        "--profile",
        "taskon",
        "--secret",
        case["secret"].as_str().unwrap(),
        "--api-key",
        case["api_key"].as_str().unwrap(),
    ]);
    let (status, reply) = post(
        listener.port,
        "/webhook/reward-notification",
        &headers,
        &body,
    );
    assert_eq!(
        (status, reply.as_str()),
        (200, r#"{"result":true,"error":null}"#)
    );
    let line = next_line(&listener);
    assert_eq!(line["id"], "111111:11111:1758251308");
    assert_eq!(line["type"], "Token");
    assert_eq!(line["payload"]["reward_amount"], "0.1");
}

#[test]
fn standard_webhooks_with_tolerance() {
    let (headers, body, case) = vector("standard spec example");
    // The vector's timestamp is from 2021: outside any normal tolerance today.
    let strict = listen(&[
        "--profile",
        "standard-webhooks",
        "--secret",
        case["secret"].as_str().unwrap(),
    ]);
    assert_eq!(post(strict.port, "/", &headers, &body).0, 401);
    let lenient = listen(&[
        "--profile",
        "standard-webhooks",
        "--secret",
        case["secret"].as_str().unwrap(),
        "--tolerance",
        "1000000000",
    ]);
    assert_eq!(post(lenient.port, "/", &headers, &body).0, 200);
    assert_eq!(next_line(&lenient)["id"], "msg_p5jXN8AQM9LWM0D4loKWxJek");
}

/// The type printed is the profile's event-type header where it has one: a real-shaped GitHub
/// push (X-GitHub-Event) and 004's flat payload (X-Event-Type), signed by Python's hmac.
#[test]
fn prints_the_type_from_the_event_type_header() {
    let (headers, body, case) = common::delivery("github push delivery");
    let github = listen(&[
        "--profile",
        "github",
        "--secret",
        case["secret"].as_str().unwrap(),
    ]);
    assert_eq!(post(github.port, "/github", &headers, &body).0, 200);
    let line = next_line(&github);
    assert_eq!(line["type"], "push");
    assert_eq!(line["id"], "72d3162e-cc78-11e3-81ab-4c9367dc0958");
    assert_eq!(line["payload"]["ref"], "refs/heads/main");

    let (headers, body, case) = common::delivery("task-hub flat task.completed");
    let hub = listen(&[
        "--profile",
        "task-hub",
        "--secret",
        case["secret"].as_str().unwrap(),
    ]);
    assert_eq!(post(hub.port, "/webhook", &headers, &body).0, 200);
    let line = next_line(&hub);
    assert_eq!(line["type"], "task.completed");
    assert_eq!(line["id"], "dlv_flat_1");
    assert_eq!(line["payload"]["taskId"], "123");
}

/// `listen --inbox`: every delivery answered 2xx is printed, across a SIGKILL and a restart.
/// Stdout is not read during the first run, so the pipe fills and the printing worker stalls
/// while deliveries keep being stored and acknowledged; the second run prints the rest.
#[test]
fn with_an_inbox_a_killed_listener_prints_the_rest_when_started_again() {
    use hookrelay::scheme::{Message, Scheme, XHub};
    let db = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("hookrelay-listen-inbox-{}.db", std::process::id()));
    let inbox = format!("sqlite://{}", db.display());
    let args = [
        "--profile",
        "task-hub",
        "--secret",
        "listen-secret",
        "--inbox",
        &inbox,
    ];
    let secret = hookrelay::Secret::from_raw("listen-secret").unwrap();
    const EVENTS: usize = 24;
    let padding = "x".repeat(8 * 1024);

    let mut first = listen(&args);
    for i in 0..EVENTS {
        let body =
            format!(r#"{{"id":"evt_{i}","type":"task.created","data":{{"pad":"{padding}"}}}}"#);
        let signed = XHub::new()
            .sign(&secret, &Message::new(body.as_bytes()))
            .unwrap();
        let mut headers = common::signed_pairs(&signed);
        headers.push(("X-Event-Type".into(), "task.created".into()));
        let (status, reply) = post(first.port, "/", &headers, body.as_bytes());
        assert_eq!(status, 200, "{reply}");
    }
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    let mut printed: Vec<String> = Vec::new();
    while let Ok(line) = first.lines.recv_timeout(Duration::from_millis(500)) {
        printed.push(line);
    }
    let before = printed.len();
    assert!(
        before < EVENTS,
        "the pipe was meant to fill: {before} printed"
    );

    let second = listen(&args);
    while printed.len() < EVENTS {
        match second.lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => printed.push(line),
            Err(_) => break,
        }
    }
    let mut ids: Vec<String> = printed
        .iter()
        .map(|line| {
            serde_json::from_str::<Value>(line).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(
        ids.len(),
        EVENTS,
        "every acknowledged delivery printed ({before} before the kill)"
    );
    drop(second);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
}

#[test]
fn an_inbox_that_is_not_a_database_url_is_a_usage_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args([
            "listen",
            "--port",
            "0",
            "--profile",
            "task-hub",
            "--secret",
            "s",
            "--inbox",
            "inbox.db",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("--inbox must be sqlite://FILE"));
}
