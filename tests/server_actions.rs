//! The management API's endpoint fields and actions (issue #19): `created_at` and `testMode`
//! on every endpoint, test-mode routing of `POST /events`, `POST /webhooks/{id}/test` against
//! a receiver on 127.0.0.1 (the signature checked by Python's `hmac`), the `webhook.verify`
//! handshake at registration, on a URL change and on `/verify`, and `/recover`. On
//! `MemoryStore`, `SqliteStore` and, with the `postgres` feature and
//! `HOOKRELAY_TEST_DATABASE_URL`, `PostgresStore`.

#[cfg(feature = "postgres")]
mod pg_support;

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::routing::post;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use hookrelay::profile::Profile;
use hookrelay::retry::RetryPolicy;
use hookrelay::send::{
    AddressPolicy, DeliveryStore, Endpoint, MemoryStore, Owner, ReqwestTransport, Sender,
    SqliteStore,
};
use hookrelay::server::{ManagementApi, Principal, Token};

const ADMIN: &str = "admin-token";
const ACME: &str = "acme-token";
const GLOBEX: &str = "globex-token";

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

fn api<S: DeliveryStore>(sender: &Sender<S>) -> ManagementApi<S> {
    ManagementApi::new(sender.clone())
        .token(Token::new(ADMIN).unwrap(), Principal::Admin)
        .token(
            Token::new(ACME).unwrap(),
            Principal::Customer(Owner::new("acme").unwrap()),
        )
        .token(
            Token::new(GLOBEX).unwrap(),
            Principal::Customer(Owner::new("globex").unwrap()),
        )
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn call(api: &Router, method: &str, path: &str, token: &str, body: &str) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = api.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Reply {
        status,
        content_type,
        body,
    }
}

fn problem(reply: &Reply, status: u16) -> Option<String> {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json");
    reply.body["errors"][0]["field"].as_str().map(str::to_owned)
}

/// How a receiver answers.
const ECHO: u16 = 0;
const NEVER: u16 = 1;

/// A receiver on 127.0.0.1: answers `webhook.verify` by echoing the challenge when its mode
/// is [`ECHO`], never answers in [`NEVER`] (until the test ends), else answers that status.
#[derive(Clone)]
struct Receiver {
    url: String,
    mode: Arc<AtomicU16>,
    seen: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

impl Receiver {
    async fn start(mode: u16) -> Receiver {
        let receiver = Receiver {
            url: String::new(),
            mode: Arc::new(AtomicU16::new(mode)),
            seen: Arc::default(),
        };
        let state = receiver.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move {
                    state.seen.lock().unwrap().push((headers, body.clone()));
                    match state.mode.load(Ordering::SeqCst) {
                        ECHO => {
                            let sent: Value = serde_json::from_slice(&body).unwrap_or_default();
                            let echo = json!({ "challenge": sent["challenge"] }).to_string();
                            (StatusCode::OK, echo)
                        }
                        NEVER => {
                            tokio::time::sleep(Duration::from_secs(60)).await;
                            (StatusCode::OK, String::new())
                        }
                        code => (StatusCode::from_u16(code).unwrap(), String::new()),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, ..receiver }
    }

    fn seen(&self) -> Vec<(HeaderMap, Bytes)> {
        self.seen.lock().unwrap().clone()
    }
}

/// Hex HMAC-SHA256 of `body` under `key`, computed by Python's `hmac`.
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

fn is_rfc3339_utc(text: &Value) -> bool {
    let text = text.as_str().unwrap_or("");
    text.len() == 24 && text.ends_with('Z') && text.as_bytes()[10] == b'T'
}

/// 004's test-mode registration and its test send with a custom payload, bodies as the
/// document writes them; the payload arrives verbatim and signed as Python's `hmac` signs.
async fn seed_004_test_mode_and_test_send<S: DeliveryStore>(sender: Sender<S>) {
    let receiver = Receiver::start(200).await;
    let router = api(&sender).default_profile(Profile::TaskHub).router();
    let dispatcher = sender.dispatcher(transport()).spawn();
    let registration = r#"{
    "name": "Test Webhook",
    "url": "https://your-domain.com/webhook",
    "events": ["task.completed"],
    "secret": "test-secret",
    "testMode": true
  }"#;
    let created = call(&router, "POST", "/webhooks", ACME, registration).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.body["name"], "Test Webhook");
    assert_eq!(created.body["testMode"], true);
    assert_eq!(created.body["events"], json!(["task.completed"]));
    assert_eq!(created.body["status"], "active");
    assert!(
        is_rfc3339_utc(&created.body["created_at"]),
        "{}",
        created.body
    );
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/webhooks/{id}");
    // The customer points it at its receiver; the rest is kept.
    let moved = format!(r#"{{"url": "{}"}}"#, receiver.url);
    let updated = call(&router, "PUT", &path, ACME, &moved).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["testMode"], true);
    assert_eq!(updated.body["created_at"], created.body["created_at"]);

    let payload = r#"{
    "taskId": "123",
    "status": "completed"
  }"#;
    let test = format!("{path}/test");
    problem(&call(&router, "POST", &test, GLOBEX, payload).await, 404);
    let sent = call(&router, "POST", &test, ACME, payload).await;
    assert_eq!(sent.status, StatusCode::OK, "{}", sent.body);
    assert_eq!(sent.body["status"], "delivered");
    assert_eq!(sent.body["response_status"], 200);
    assert!(sent.body["latency_ms"].is_u64());
    let delivery = sent.body["delivery_id"].as_str().unwrap();
    let shown = call(&router, "GET", &format!("/deliveries/{delivery}"), ACME, "").await;
    assert_eq!(shown.body["kind"], "test");

    let seen = receiver.seen();
    assert_eq!(seen.len(), 1);
    let (headers, body) = &seen[0];
    let envelope: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        envelope["data"],
        json!({"taskId": "123", "status": "completed"})
    );
    assert_eq!(envelope["type"], "webhook.test");
    let signature = headers["x-hub-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        format!("sha256={}", python_hex(b"test-secret", body))
    );
    // No body: the default test data.
    let plain = call(&router, "POST", &test, ACME, "").await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.body);
    let (_, body) = receiver.seen().pop().unwrap();
    let envelope: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope["data"], json!({"test": true}));
    let bad = call(&router, "POST", &test, ACME, "{not json").await;
    problem(&bad, 400);
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

/// A receiver that never answers within the wait: 202 with the delivery id.
async fn a_test_send_without_an_answer_is_accepted<S: DeliveryStore>(sender: Sender<S>) {
    let receiver = Receiver::start(NEVER).await;
    let router = api(&sender)
        .default_profile(Profile::TaskHub)
        .test_send_wait(Duration::from_millis(200))
        .router();
    let dispatcher = sender.dispatcher(transport()).spawn();
    let body = format!(
        r#"{{"url": "{}", "events": ["*"], "secret": "s"}}"#,
        receiver.url
    );
    let created = call(&router, "POST", "/webhooks", ACME, &body).await;
    let id = created.body["id"].as_str().unwrap();
    let sent = call(&router, "POST", &format!("/webhooks/{id}/test"), ACME, "").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    assert_eq!(
        sent.body.as_object().unwrap().len(),
        1,
        "only the delivery id"
    );
    let delivery = sent.body["delivery_id"].as_str().unwrap();
    let shown = call(&router, "GET", &format!("/deliveries/{delivery}"), ACME, "").await;
    assert_eq!(shown.body["kind"], "test");
    assert_eq!(shown.body["status"], "pending", "its attempt is still out");
    let _ = dispatcher.shutdown(Duration::from_millis(100)).await;
}

/// Live events skip test endpoints and test events skip live ones; `deliveries` names what
/// each publish created.
async fn test_mode_routes_events<S: DeliveryStore>(sender: Sender<S>) {
    let router = api(&sender).router();
    let live = r#"{"url": "https://live.example/hook", "events": ["task.*"]}"#;
    let live = call(&router, "POST", "/webhooks", ACME, live).await;
    assert_eq!(live.body["testMode"], false);
    let test = r#"{"url": "https://test.example/hook", "events": ["task.*"], "testMode": true}"#;
    let test = call(&router, "POST", "/webhooks", ACME, test).await;
    assert_eq!(test.body["testMode"], true);
    let (live, test) = (live.body["id"].clone(), test.body["id"].clone());
    let targets = |reply: Reply| {
        let router = router.clone();
        async move {
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{}", reply.body);
            let mut to = Vec::new();
            for delivery in reply.body["deliveries"].as_array().unwrap() {
                let path = format!("/deliveries/{}", delivery.as_str().unwrap());
                let shown = call(&router, "GET", &path, ADMIN, "").await;
                assert_eq!(shown.body["message_id"], reply.body["id"]);
                to.push(shown.body["webhook_id"].clone());
            }
            to
        }
    };
    let event = r#"{"type": "task.completed", "data": {"taskId": "1"}}"#;
    let published = call(&router, "POST", "/events", ADMIN, event).await;
    assert_eq!(targets(published).await, std::slice::from_ref(&live));
    let event = r#"{"type": "task.completed", "data": {"taskId": "2"}, "test": true}"#;
    let published = call(&router, "POST", "/events", ADMIN, event).await;
    assert_eq!(targets(published).await, std::slice::from_ref(&test));
    let event = r#"{"type": "other.thing", "data": {}}"#;
    let published = call(&router, "POST", "/events", ADMIN, event).await;
    assert_eq!(published.body["deliveries"], json!([]));
    let wrong = r#"{"type": "task.completed", "data": {}, "test": "yes"}"#;
    let refused = call(&router, "POST", "/events", ADMIN, wrong).await;
    assert_eq!(problem(&refused, 422).as_deref(), Some("test"));
    // PUT turns test mode off; the registration time stays.
    let path = format!("/webhooks/{}", test.as_str().unwrap());
    let before = call(&router, "GET", &path, ACME, "").await;
    let changed = call(&router, "PUT", &path, ACME, r#"{"testMode": false}"#).await;
    assert_eq!(changed.body["testMode"], false);
    assert_eq!(changed.body["created_at"], before.body["created_at"]);
    let listed = call(&router, "GET", "/webhooks", ACME, "").await;
    for webhook in listed.body["webhooks"].as_array().unwrap() {
        assert!(is_rfc3339_utc(&webhook["created_at"]));
        assert_eq!(webhook["testMode"], false);
    }
}

/// A Proposal Generator endpoint runs the handshake before the reply: active when it
/// passed, pending with a note when not; again on a URL change and on `/verify`.
async fn the_handshake_runs_at_registration<S: DeliveryStore>(sender: Sender<S>) {
    let passing = Receiver::start(ECHO).await;
    let failing = Receiver::start(500).await;
    let router = api(&sender)
        .default_profile(Profile::ProposalGenerator)
        .transport(transport())
        .router();
    let register = |url: &str| format!(r#"{{"url": "{url}", "events": ["job.completed"]}}"#);
    let ok = call(&router, "POST", "/webhooks", ACME, &register(&passing.url)).await;
    assert_eq!(ok.status, StatusCode::CREATED, "{}", ok.body);
    assert_eq!(ok.body["status"], "active");
    assert!(ok.body.get("status_note").is_none());
    let (headers, body) = passing.seen().pop().unwrap();
    let challenge: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(challenge["type"], "webhook.verify");
    assert!(headers.contains_key("x-webhook-signature"));

    let bad = call(&router, "POST", "/webhooks", ACME, &register(&failing.url)).await;
    assert_eq!(bad.status, StatusCode::CREATED, "{}", bad.body);
    assert_eq!(bad.body["status"], "pending_verification");
    assert_eq!(
        bad.body["status_note"],
        "verification failed: the endpoint answered 500"
    );
    let id = bad.body["id"].as_str().unwrap();
    let verify = format!("/webhooks/{id}/verify");
    problem(&call(&router, "POST", &verify, GLOBEX, "").await, 404);
    failing.mode.store(ECHO, Ordering::SeqCst);
    let verified = call(&router, "POST", &verify, ACME, "").await;
    assert_eq!(verified.status, StatusCode::OK, "{}", verified.body);
    assert_eq!(verified.body["status"], "active");

    // A changed URL runs it again: a receiver that fails leaves it pending.
    let elsewhere = Receiver::start(404).await;
    let path = format!("/webhooks/{id}");
    let moved = call(
        &router,
        "PUT",
        &path,
        ACME,
        &format!(r#"{{"url": "{}"}}"#, elsewhere.url),
    )
    .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.body);
    assert_eq!(moved.body["status"], "pending_verification");
    assert_eq!(elsewhere.seen().len(), 1, "the handshake ran");
    let back = format!(r#"{{"url": "{}"}}"#, passing.url);
    let moved = call(&router, "PUT", &path, ACME, &back).await;
    assert_eq!(moved.body["status"], "active");
    // Renaming changes no URL: no handshake.
    let before = passing.seen().len();
    call(&router, "PUT", &path, ACME, r#"{"name": "jobs"}"#).await;
    assert_eq!(passing.seen().len(), before);

    // Without a transport: the endpoint waits, and /verify says why it cannot help.
    let plain = api(&sender)
        .default_profile(Profile::ProposalGenerator)
        .router();
    let waiting = call(&plain, "POST", "/webhooks", ACME, &register(&passing.url)).await;
    assert_eq!(waiting.body["status"], "pending_verification");
    let verify = format!("/webhooks/{}/verify", waiting.body["id"].as_str().unwrap());
    let refused = call(&plain, "POST", &verify, ACME, "").await;
    problem(&refused, 503);
    assert_eq!(refused.body["title"], "No transport is configured");
}

/// `/recover` retries the failed deliveries of its window: 202 `{queued}`.
async fn recover_retries_a_window<S: DeliveryStore>(sender: Sender<S>) {
    let receiver = Receiver::start(500).await;
    let router = api(&sender).router();
    let once = RetryPolicy::builder()
        .delays(vec![Duration::from_secs(1)])
        .max_attempts(1)
        .build()
        .unwrap();
    let endpoint = Endpoint::builder(&receiver.url, Profile::TaskHub)
        .secret(Profile::TaskHub.secret_from_text("s").unwrap())
        .owner(Owner::new("acme").unwrap())
        .retry_policy(once)
        .build()
        .unwrap();
    let id = sender.add_endpoint(endpoint).await.unwrap();
    let dispatcher = sender.dispatcher(transport()).spawn();
    let event = r#"{"type": "task.completed", "data": {"taskId": "1"}}"#;
    call(&router, "POST", "/events", ADMIN, event).await;
    dispatcher.wait_idle(Duration::from_secs(10)).await.unwrap();
    let log = format!("/webhooks/{id}/deliveries?status=dead");
    let dead = call(&router, "GET", &log, ACME, "").await;
    assert_eq!(dead.body["deliveries"].as_array().unwrap().len(), 1);

    let recover = format!("/webhooks/{id}/recover");
    let before = r#"{"since": "2000-01-01T00:00:00Z", "until": "2000-01-02T00:00:00Z"}"#;
    let none = call(&router, "POST", &recover, ACME, before).await;
    assert_eq!(none.status, StatusCode::ACCEPTED, "{}", none.body);
    assert_eq!(none.body, json!({"queued": 0}));
    problem(&call(&router, "POST", &recover, GLOBEX, before).await, 404);
    let bad = call(&router, "POST", &recover, ACME, r#"{"since": "yesterday"}"#).await;
    assert_eq!(problem(&bad, 422).as_deref(), Some("since"));
    let missing = call(&router, "POST", &recover, ACME, "{}").await;
    assert_eq!(problem(&missing, 422).as_deref(), Some("since"));
    let backwards = r#"{"since": "2000-01-02T00:00:00Z", "until": "2000-01-01T00:00:00Z"}"#;
    let backwards = call(&router, "POST", &recover, ACME, backwards).await;
    assert_eq!(problem(&backwards, 422).as_deref(), Some("until"));
    let all = call(
        &router,
        "POST",
        &recover,
        ACME,
        r#"{"since": "2000-01-01T00:00:00Z"}"#,
    )
    .await;
    assert_eq!(all.status, StatusCode::ACCEPTED, "{}", all.body);
    assert_eq!(all.body, json!({"queued": 1}));
    dispatcher.wait_idle(Duration::from_secs(10)).await.unwrap();
    assert_eq!(receiver.seen().len(), 2, "sent again");
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
}

fn temp_db() -> String {
    format!(
        "{}/hookrelay-server-actions-{}-{}.db",
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).display(),
        std::process::id(),
        hookrelay::send::MessageId::generate()
    )
}

macro_rules! on_stores {
    ($name:ident, $scenario:ident) => {
        #[tokio::test]
        async fn $name() {
            $scenario(Sender::new(MemoryStore::new())).await;
            let path = temp_db();
            let url = format!("sqlite://{path}?mode=rwc");
            $scenario(Sender::new(SqliteStore::connect(&url).await.unwrap())).await;
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{path}{suffix}"));
            }
            #[cfg(feature = "postgres")]
            if let Some(db) = pg_support::database_url(stringify!($name)) {
                let schema = pg_support::fresh_schema(&db, "actions").await;
                let store = hookrelay::send::PostgresStore::builder()
                    .schema(schema.clone())
                    .max_connections(4)
                    .connect(&db)
                    .await
                    .unwrap();
                $scenario(Sender::new(store)).await;
                pg_support::drop_schema(&db, &schema).await;
            }
        }
    };
}

on_stores!(
    a_004_test_endpoint_gets_its_test_send_verbatim,
    seed_004_test_mode_and_test_send
);
on_stores!(
    a_test_send_with_no_answer_in_time_answers_202,
    a_test_send_without_an_answer_is_accepted
);
on_stores!(
    live_and_test_events_reach_their_own_endpoints,
    test_mode_routes_events
);
on_stores!(
    the_handshake_runs_at_registration_url_change_and_verify,
    the_handshake_runs_at_registration
);
on_stores!(recover_queues_a_windows_failures, recover_retries_a_window);
