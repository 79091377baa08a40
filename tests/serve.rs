//! `hookrelay serve`, driven as its users drive it: the built binary on 127.0.0.1:0 over a
//! temporary SQLite file (or a PostgreSQL schema), requests over plain HTTP/1.1, deliveries
//! to a local receiver whose signatures are checked with Python's `hmac`, SIGTERM, restarts,
//! the network bounds (header and body time-outs, the connection cap) and operational
//! webhooks.
#![cfg(unix)]

mod pg_support;
mod serve_support;

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use serve_support::{Serve, temp_dir};

/// How long a test waits for something that should happen at once (a failure guard, never
/// a measured time).
const PATIENCE: Duration = Duration::from_secs(60);

impl Serve {
    fn request(&self, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
        request(self.port, method, path, token, body)
    }
}

/// An HTTP reply.
#[derive(Debug)]
struct Reply {
    status: u16,
    head: String,
    body: Value,
}

/// One request on its own connection (`Connection: close`).
fn request(port: u16, method: &str, path: &str, token: &str, body: Option<&Value>) -> Reply {
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\
         content-length: {}\r\n",
        body.len()
    );
    if !token.is_empty() {
        head.push_str(&format!("authorization: Bearer {token}\r\n"));
    }
    if !body.is_empty() {
        head.push_str("content-type: application/json\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_reply(&raw)
}

fn parse_reply(raw: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no reply head in {text:?}"));
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&body).unwrap_or(Value::String(body))
    };
    Reply {
        status,
        head: head.to_owned(),
        body,
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    for _ in 0..10_000 {
        let Some((size, after)) = rest.split_once("\r\n") else {
            break;
        };
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&after[..size]);
        rest = &after[size + 2..];
    }
    out
}

/// One request a receiver got.
#[derive(Debug)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} header"))
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// A receiver on 127.0.0.1 answering every request with `status`; what it got comes out of
/// the channel.
fn receiver(status: u16) -> (u16, mpsc::Receiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let tx = tx.clone();
            std::thread::spawn(move || serve_one(stream, status, &tx));
        }
    });
    (port, rx)
}

/// Reads requests on one connection, answering each with `status`.
fn serve_one(stream: TcpStream, status: u16, tx: &mpsc::Sender<Received>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut stream = stream;
    for _ in 0..1000 {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split(' ').nth(1).unwrap_or("").to_owned();
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                headers.push((name.trim().to_owned(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, v)| v.parse().unwrap());
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let reply = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
        if stream.write_all(reply.as_bytes()).is_err() {
            return;
        }
        let _ = tx.send(Received {
            path,
            headers,
            body,
        });
    }
}

/// Base64 HMAC-SHA256 of Standard Webhooks' signed content, computed by Python's `hmac`.
fn python_signature(key: &[u8], id: &str, ts: &str, body: &[u8]) -> String {
    let mut child = Command::new("python3")
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
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 is needed for the independent signature");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Checks a Standard Webhooks request against `whsec` with Python's `hmac`.
fn assert_signed(got: &Received, whsec: &str) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(whsec.strip_prefix("whsec_").unwrap())
        .unwrap();
    let expected = python_signature(
        &key,
        got.header("webhook-id"),
        got.header("webhook-timestamp"),
        &got.body,
    );
    let signature = got.header("webhook-signature");
    assert!(
        signature.split(' ').any(|s| s == format!("v1,{expected}")),
        "{signature} vs {expected}"
    );
}

fn sqlite(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("hookrelay.db").display())
}

#[test]
fn registers_publishes_delivers_stops_and_restarts_with_everything() {
    let dir = temp_dir("main");
    let database = sqlite(&dir);
    let flags = [
        "--database",
        &database,
        "--token",
        "admin-t",
        "--profile",
        "proposal-generator",
        "--allow-http",
        "--allow-private-network",
    ];
    let serve = Serve::start(&dir, &flags);
    assert_eq!(serve.request("GET", "/health", "", None).status, 200);
    assert_eq!(serve.request("GET", "/api/health", "", None).status, 200);
    assert_eq!(serve.request("GET", "/api/webhooks", "", None).status, 401);
    // The dashboard is mounted at /dashboard: pages send a visitor to its sign-in form.
    let page = serve.request("GET", "/dashboard/endpoints", "", None);
    assert_eq!(page.status, 303);
    assert!(page.head.contains("/dashboard/sign-in"), "{}", page.head);
    for typed in ["/dashboard", "/dashboard/"] {
        let page = serve.request("GET", typed, "", None);
        assert!(
            page.status == 303 || page.status == 307,
            "{typed}: {}",
            page.head
        );
    }
    let form = serve.request("GET", "/dashboard/sign-in", "", None);
    assert_eq!(form.status, 200);
    assert!(
        form.head
            .to_ascii_lowercase()
            .contains("content-security-policy: default-src 'self'")
    );

    // 001's registration, as written: the default profile (here Proposal Generator).
    let seed = json!({
        "url": "https://your-server.com/webhook",
        "events": ["job.completed", "job.failed"],
        "secret": "your_webhook_secret"
    });
    let created = serve.request("POST", "/api/webhooks", "admin-t", Some(&seed));
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["url"], "https://your-server.com/webhook");
    assert_eq!(
        created.body["events"],
        json!(["job.completed", "job.failed"])
    );
    assert_eq!(created.body["profile"], "proposal-generator");
    assert!(created.body.get("secret").is_none());
    let seed_id = created.body["id"].as_str().unwrap().to_owned();

    // A local receiver, Standard Webhooks, secret generated.
    let (port, received) = receiver(204);
    let local = json!({
        "url": format!("http://127.0.0.1:{port}/hooks"),
        "events": ["task.*"],
        "profile": "standard-webhooks"
    });
    let created = serve.request("POST", "/api/webhooks", "admin-t", Some(&local));
    assert_eq!(created.status, 201, "{created:?}");
    let whsec = created.body["secret"].as_str().unwrap().to_owned();
    let local_id = created.body["id"].as_str().unwrap().to_owned();

    let event = json!({"type": "task.completed", "data": {"taskId": "123", "status": "completed"}});
    let published = serve.request("POST", "/api/events", "admin-t", Some(&event));
    assert_eq!(published.status, 202, "{published:?}");
    let got = received.recv_timeout(PATIENCE).expect("the delivery");
    assert_eq!(got.path, "/hooks");
    assert_signed(&got, &whsec);
    assert_eq!(got.json()["type"], "task.completed");
    assert_eq!(
        got.json()["data"],
        json!({"taskId": "123", "status": "completed"})
    );

    // The delivery is recorded before SIGTERM (a bounded wait on the log).
    let log_path = format!("/api/webhooks/{local_id}/deliveries");
    let mut delivered = false;
    for _ in 0..600 {
        let log = serve.request("GET", &log_path, "admin-t", None);
        if log.body["deliveries"][0]["status"] == "delivered" {
            delivered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(delivered);

    let exit = serve.terminate();
    assert_eq!(exit.code(), Some(0), "{exit:?}");

    // A restart on the same file keeps every endpoint and delivery.
    let serve = Serve::start(&dir, &flags);
    let listed = serve.request("GET", "/api/webhooks", "admin-t", None);
    let mut ids: Vec<&str> = listed.body["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut expected = vec![seed_id.as_str(), local_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    let log = serve.request("GET", &log_path, "admin-t", None);
    let deliveries = log.body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1, "{log:?}");
    assert_eq!(deliveries[0]["status"], "delivered");
    assert_eq!(serve.terminate().code(), Some(0));
}

#[test]
fn without_a_token_it_refuses_with_one_line_and_exit_2() {
    let dir = temp_dir("no-token");
    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(&dir)
        .env_remove("HOOKRELAY_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("token"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert!(!dir.join("hookrelay.db").exists());

    // HOOKRELAY_TOKEN is a token; a fresh directory gets its SQLite file.
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(&dir)
        .env("HOOKRELAY_TOKEN", "from-env")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    for _ in 0..100 {
        line.clear();
        if stderr.read_line(&mut line).unwrap() == 0 || line.contains("listening on") {
            break;
        }
    }
    let port: u16 = line.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert_eq!(
        request(port, "GET", "/api/webhooks", "from-env", None).status,
        200
    );
    assert!(dir.join("hookrelay.db").exists());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert_eq!(child.wait().unwrap().code(), Some(0));

    // A malformed rate limit is a usage error too.
    let out = Command::new(env!("CARGO_BIN_EXE_hookrelay"))
        .args(["serve", "--token", "t", "--config-rate-limit", "10/day"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("N/min"));
}

#[test]
fn a_client_trickling_headers_or_a_body_is_cut_off() {
    let dir = temp_dir("trickle");
    let database = sqlite(&dir);
    let serve = Serve::start(
        &dir,
        &[
            "--database",
            &database,
            "--token",
            "t",
            "--header-timeout-ms",
            "300",
            "--body-timeout-ms",
            "300",
        ],
    );
    // Headers begun, never finished: the server closes the connection.
    let mut slow = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    slow.write_all(b"GET /health HTTP/1.1\r\nhost: 127.0.0.1\r\nx-slow: ")
        .unwrap();
    let mut rest = Vec::new();
    let read = slow.read_to_end(&mut rest);
    assert!(
        read.is_ok()
            || matches!(read, Err(ref e) if e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(
        !String::from_utf8_lossy(&rest).contains("200 OK"),
        "{rest:?}"
    );

    // A body announced and never sent in full: 408, then closed.
    let mut slow = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
    slow.set_read_timeout(Some(PATIENCE)).unwrap();
    slow.write_all(
        b"POST /api/webhooks HTTP/1.1\r\nhost: 127.0.0.1\r\nauthorization: Bearer t\r\n\
          content-type: application/json\r\ncontent-length: 100\r\n\r\n{\"url\":",
    )
    .unwrap();
    let mut raw = Vec::new();
    let _ = slow.read_to_end(&mut raw);
    let reply = parse_reply(&raw);
    assert_eq!(reply.status, 408, "{reply:?}");
    assert!(
        reply
            .head
            .to_ascii_lowercase()
            .contains("application/problem+json")
    );

    // Well-behaved clients are still served.
    assert_eq!(serve.request("GET", "/health", "", None).status, 200);
    // A body over 1 MiB is 413.
    let big = json!({"url": "x".repeat(1 << 20)});
    assert_eq!(
        serve
            .request("POST", "/api/webhooks", "t", Some(&big))
            .status,
        413
    );
}

#[test]
fn the_connection_cap_holds() {
    let dir = temp_dir("cap");
    let database = sqlite(&dir);
    let serve = Serve::start(
        &dir,
        &[
            "--database",
            &database,
            "--token",
            "t",
            "--max-connections",
            "2",
        ],
    );
    // Two clients hold a connection each, mid-request.
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(("127.0.0.1", serve.port)).unwrap();
        stream.write_all(b"GET /health HTTP/1.1\r\n").unwrap();
        held.push(stream);
    }
    // A third is told 503 and closed; so is every one while both are held.
    for _ in 0..3 {
        let reply = serve.request("GET", "/health", "", None);
        assert_eq!(reply.status, 503, "{reply:?}");
    }
    // One lets go: a slot frees (once the server has seen the close).
    drop(held.pop());
    let mut served = false;
    for _ in 0..600 {
        if serve.request("GET", "/health", "", None).status == 200 {
            served = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(served);
}

#[test]
fn operational_webhooks_tell_the_operator_when_an_endpoint_is_gone() {
    let dir = temp_dir("ops");
    let database = sqlite(&dir);
    let (ops_port, ops) = receiver(204);
    let ops_url = format!("http://127.0.0.1:{ops_port}/ops");
    let flags = [
        "--database",
        &database,
        "--token",
        "admin-t",
        "--customer-token",
        "acme=acme-t",
        "--allow-http",
        "--allow-private-network",
        "--operational-url",
        &ops_url,
    ];
    let serve = Serve::start(&dir, &flags);
    let line = serve.stdout.recv_timeout(PATIENCE).unwrap();
    let whsec = line
        .strip_prefix("operational webhooks secret: ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_owned();
    assert!(whsec.starts_with("whsec_"));

    // The customer registers an endpoint subscribed to everything; it answers 410.
    let (gone_port, gone) = receiver(410);
    let body = json!({"url": format!("http://127.0.0.1:{gone_port}/gone"), "events": ["*"]});
    let created = serve.request("POST", "/api/webhooks", "acme-t", Some(&body));
    assert_eq!(created.status, 201, "{created:?}");
    let gone_id = created.body["id"].as_str().unwrap().to_owned();

    // The customer does not see the operational endpoint; the admin does.
    let mine = serve.request("GET", "/api/webhooks", "acme-t", None);
    assert_eq!(mine.body["webhooks"].as_array().unwrap().len(), 1);
    let all = serve.request("GET", "/api/webhooks", "admin-t", None);
    assert!(
        all.body["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w["url"] == ops_url.as_str())
    );

    let event = json!({"type": "job.failed", "data": {"jobId": "j1"}});
    assert_eq!(
        serve
            .request("POST", "/api/events", "admin-t", Some(&event))
            .status,
        202
    );
    gone.recv_timeout(PATIENCE)
        .expect("the customer's delivery");
    let mut kinds = Vec::new();
    for _ in 0..2 {
        let got = ops.recv_timeout(PATIENCE).expect("an operational webhook");
        assert_eq!(got.path, "/ops");
        assert_signed(&got, &whsec);
        let envelope = got.json();
        assert_eq!(envelope["data"]["endpoint_id"], gone_id.as_str());
        assert_eq!(envelope["data"]["owner"], "acme");
        kinds.push(envelope["type"].as_str().unwrap().to_owned());
    }
    kinds.sort_unstable();
    assert_eq!(kinds, ["endpoint.disabled", "message.attempt.exhausted"]);
    // The customer's endpoint, subscribed to `*`, got none of them.
    assert!(gone.recv_timeout(Duration::from_millis(200)).is_err());
    assert_eq!(serve.terminate().code(), Some(0));

    // A restart keeps the operational endpoint and its secret: nothing printed.
    let serve = Serve::start(&dir, &flags);
    let all = serve.request("GET", "/api/webhooks", "admin-t", None);
    let operational = all.body["webhooks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["url"] == ops_url.as_str())
        .count();
    assert_eq!(operational, 1);
    // The secret is printed before the `listening on` line, so it would be there by now.
    assert!(
        serve
            .stdout
            .recv_timeout(Duration::from_millis(300))
            .is_err()
    );
    assert_eq!(serve.terminate().code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_serve_processes_share_one_postgres_database() {
    let Some(url) = pg_support::database_url("two_serve_processes_share_one_postgres_database")
    else {
        return;
    };
    let schema = pg_support::fresh_schema(&url, "serve").await;
    let dir = temp_dir("pg");
    let flags = [
        "--database",
        &url,
        "--postgres-schema",
        &schema,
        "--token",
        "t",
        "--allow-http",
        "--allow-private-network",
    ];
    let (a, b) = tokio::task::spawn_blocking({
        let dir = dir.clone();
        let flags: Vec<String> = flags.iter().map(|s| (*s).to_owned()).collect();
        move || {
            let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
            (Serve::start(&dir, &flags), Serve::start(&dir, &flags))
        }
    })
    .await
    .unwrap();
    let (port, received) = receiver(204);
    let outcome = tokio::task::spawn_blocking(move || {
        let body = json!({"url": format!("http://127.0.0.1:{port}/pg"), "events": ["*"]});
        let created = a.request("POST", "/api/webhooks", "t", Some(&body));
        assert_eq!(created.status, 201, "{created:?}");
        // Registered through one process, visible through the other.
        let id = created.body["id"].as_str().unwrap();
        assert_eq!(
            b.request("GET", &format!("/api/webhooks/{id}"), "t", None)
                .status,
            200
        );
        for n in 0..10 {
            let through = if n % 2 == 0 { &a } else { &b };
            let event = json!({"type": "job.completed", "data": {"n": n}});
            assert_eq!(
                through
                    .request("POST", "/api/events", "t", Some(&event))
                    .status,
                202
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..10 {
            let got = received.recv_timeout(PATIENCE).expect("a delivery");
            assert!(seen.insert(got.json()["data"]["n"].as_u64().unwrap()));
        }
        // Every event once: none delivered twice by the two dispatchers.
        assert!(received.recv_timeout(Duration::from_millis(300)).is_err());
        (a.terminate().code(), b.terminate().code())
    })
    .await
    .unwrap();
    assert_eq!(outcome, (Some(0), Some(0)));
    pg_support::drop_schema(&url, &schema).await;
}
