//! The OpenAPI document against the router: every documented (method, path, status) is
//! produced by a request below, and every reply validates against the documented schema
//! (with the `jsonschema` crate, an implementation independent of utoipa) and carries the
//! headers documented for it (`X-RateLimit-*`, `Retry-After`). The event catalog's examples
//! validate against their schemas and parse into the typed events.

use std::collections::BTreeSet;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use http::{HeaderMap, Request};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use hookrelay::Timestamp;
use hookrelay::event::taskon::TaskOnEvent;
use hookrelay::event::{EventData, EventType, ProposalGeneratorEvent, TaskHubEvent, TaskLinkEvent};
use hookrelay::profile::Profile;
use hookrelay::receive::inbox::{Inbox, MemoryInbox};
use hookrelay::retry::UnixMillis;
use hookrelay::send::{
    MemoryStore, OutboundRequest, Owner, Sender, Transport, TransportError, TransportResponse,
};
use hookrelay::server::{
    Begun, Hit, ManagementApi, Principal, RateLimit, RateLimitStore, ReplayStore, StoreFuture,
    StoredReply, Token,
};

const ADMIN: &str = "admin-token";
const ACME: &str = "acme-token";

/// The API with both tokens and limits high enough not to interfere.
fn builder(sender: Sender<MemoryStore>) -> ManagementApi<MemoryStore> {
    let high = RateLimit::per_minute(RateLimit::MAX).unwrap();
    ManagementApi::new(sender)
        .token(Token::new(ADMIN).unwrap(), Principal::Admin)
        .token(
            Token::new(ACME).unwrap(),
            Principal::Customer(Owner::new("acme").unwrap()),
        )
        .config_rate_limit(high)
        .test_rate_limit(high)
}

/// A request of the inbox cases: router, method, path, token, body.
type Case<'a> = (
    &'a Router,
    &'static str,
    String,
    Option<&'static str>,
    Vec<u8>,
);

/// An inbox with two dead letters (`task.failed`, `task.other`); returns the first's id.
async fn inbox_with_dead_letters() -> (Inbox<MemoryInbox>, String) {
    use hookrelay::receive::inbox::{AttemptResult, InboxAttempt, InboxQueue as _};
    use hookrelay::scheme::{Message, Scheme, XHub};
    let inbox = Inbox::new(MemoryInbox::new());
    let secret = hookrelay::Secret::from_raw("hub-secret").unwrap();
    let receiver = hookrelay::receive::Receiver::builder(Profile::TaskHub)
        .secret(secret.clone())
        .build()
        .unwrap();
    for kind in ["task.failed", "task.other"] {
        let body = format!(r#"{{"type":"{kind}","data":{{}}}}"#);
        let signed = XHub::new()
            .sign(&secret, &Message::new(body.as_bytes()))
            .unwrap();
        let reply = receiver
            .accept(&signed.to_header_map().unwrap(), Bytes::from(body), &inbox)
            .await;
        assert_eq!(reply.status, 200);
    }
    let now = UnixMillis::now();
    let claimed = inbox
        .store()
        .claim(now, Duration::from_secs(30), 10)
        .await
        .unwrap();
    for c in &claimed {
        let attempt = InboxAttempt::new(now, Duration::from_millis(3), Some("no".into()));
        let dead = AttemptResult::Dead { error: "no".into() };
        inbox
            .store()
            .record(c.entry.id, c.token, attempt, dead)
            .await
            .unwrap();
    }
    (inbox, claimed[0].entry.id.to_string())
}

fn api() -> Router {
    builder(Sender::new(MemoryStore::new())).router()
}

/// A limiter whose every window is full: each limited request is answered 429.
struct Full;

impl RateLimitStore for Full {
    fn hit<'a>(&'a self, _: &'a str, limit: RateLimit, now: Timestamp) -> StoreFuture<'a, Hit> {
        let hit = Hit {
            counted: false,
            hits: limit.max(),
            window_start: now,
        };
        Box::pin(std::future::ready(Ok(hit)))
    }
}

/// A replay store that answers every key the same way (`InProgress`: 409, `KeyReused`: 422).
struct Always(Begun);

impl ReplayStore for Always {
    fn begin<'a>(
        &'a self,
        _: &'a str,
        _: &'a [u8; 32],
        _: Timestamp,
        _: Duration,
    ) -> StoreFuture<'a, Begun> {
        Box::pin(std::future::ready(Ok(self.0.clone())))
    }

    fn finish<'a>(
        &'a self,
        _: &'a str,
        _: &'a StoredReply,
        _: Timestamp,
        _: Duration,
    ) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn abandon<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A receiver in process: 200 to every delivery, echoing a handshake's challenge.
struct Receiver;

impl Transport for Receiver {
    async fn send(&self, request: OutboundRequest) -> Result<TransportResponse, TransportError> {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let mut response = TransportResponse::status(200);
        response.body = Bytes::from(json!({ "challenge": body["challenge"] }).to_string());
        Ok(response)
    }
}

struct Reply {
    status: u16,
    content_type: String,
    headers: HeaderMap,
    body: Value,
}

async fn call(api: &Router, method: &str, path: &str, token: Option<&str>, body: Vec<u8>) -> Reply {
    keyed(api, method, path, token, None, body).await
}

async fn keyed(
    api: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = api
        .clone()
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let content_type = headers
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
        headers,
        body,
    }
}

/// The documented path a concrete path matches (literal segments before `{id}`).
fn template<'a>(doc: &'a Value, path: &str) -> &'a str {
    let path = path.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    let mut best: Option<(&str, usize)> = None;
    for template in doc["paths"].as_object().unwrap().keys() {
        let parts: Vec<&str> = template.split('/').collect();
        if parts.len() != segments.len() {
            continue;
        }
        let fits = parts
            .iter()
            .zip(&segments)
            .all(|(t, s)| t == s || (t.starts_with('{') && t.ends_with('}')));
        let literal = parts.iter().filter(|t| !t.starts_with('{')).count();
        if fits && best.is_none_or(|(_, n)| literal > n) {
            best = Some((template, literal));
        }
    }
    best.unwrap_or_else(|| panic!("{path} matches no documented path"))
        .0
}

/// Checks a reply against the document; returns the (method, path, status) it covers.
fn check(doc: &Value, method: &str, path: &str, reply: &Reply) -> (String, String, u16) {
    let template = template(doc, path);
    let method = method.to_lowercase();
    let operation = &doc["paths"][template][&method];
    assert!(
        operation.is_object(),
        "{method} {template} is not documented"
    );
    let response = &operation["responses"][reply.status.to_string()];
    assert!(
        response.is_object(),
        "{method} {path}: status {} is not documented: {}",
        reply.status,
        reply.body
    );
    // The documented headers are there (all are required), and no rate-limit header is
    // there undocumented.
    let documented: BTreeSet<String> = response["headers"]
        .as_object()
        .map(|headers| headers.keys().map(|k| k.to_lowercase()).collect())
        .unwrap_or_default();
    for name in &documented {
        assert!(
            reply.headers.contains_key(name.as_str()),
            "{method} {path} {}: no {name} header",
            reply.status
        );
    }
    for name in [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    ] {
        assert!(
            documented.contains(name) || !reply.headers.contains_key(name),
            "{method} {path} {}: {name} not documented",
            reply.status
        );
    }
    let content = response["content"].as_object();
    match content {
        None => assert_eq!(
            reply.body,
            Value::Null,
            "{method} {path}: a body not documented"
        ),
        Some(content) => {
            let media = reply.content_type.split(';').next().unwrap().trim();
            let documented = content
                .get(media)
                .unwrap_or_else(|| panic!("{method} {path}: {media} not documented"));
            let mut schema = documented["schema"].clone();
            schema["components"] = doc["components"].clone();
            let validator = jsonschema::draft202012::new(&schema)
                .unwrap_or_else(|e| panic!("{method} {template}: schema does not compile: {e}"));
            let errors: Vec<String> = validator
                .iter_errors(&reply.body)
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(
                errors.is_empty(),
                "{method} {path} {}: {errors:?}\n{}",
                reply.status,
                reply.body
            );
        }
    }
    (method, template.to_owned(), reply.status)
}

#[tokio::test]
async fn every_documented_status_is_produced_and_every_reply_conforms() {
    // Test sends answer 202 at once here (no dispatcher); the router has no transport, so
    // `/verify` is 503.
    let sender = Sender::new(MemoryStore::new());
    let (inbox, entry) = inbox_with_dead_letters().await;
    let api = builder(sender.clone())
        .test_send_wait(Duration::ZERO)
        .inbox(inbox)
        .router();
    let doc = call(&api, "GET", "/openapi.json", None, vec![]).await;
    assert_eq!(doc.status, 200);
    let fetched = doc;
    let doc = fetched.body.clone();
    assert_eq!(doc["openapi"], "3.1.0");
    let mut covered = BTreeSet::from([check(&doc, "GET", "/openapi.json", &fetched)]);
    let big = {
        let mut body = br#"{"url": ""#.to_vec();
        body.resize(hookrelay::server::MAX_BODY + 10, b'a');
        body
    };

    // Set up: an endpoint of acme's, a published event and its delivery.
    let created = call(
        &api,
        "POST",
        "/webhooks",
        Some(ACME),
        br#"{"url": "https://acme.example/hook", "events": ["job.*"], "profile": "tasklink"}"#
            .to_vec(),
    )
    .await;
    covered.insert(check(&doc, "POST", "/webhooks", &created));
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["id"].as_str().unwrap().to_owned();
    let event = br#"{"type": "job.completed", "data": {"job": {"id": "j1"}}}"#.to_vec();
    let published = call(&api, "POST", "/events", Some(ADMIN), event).await;
    covered.insert(check(&doc, "POST", "/events", &published));
    let log = call(
        &api,
        "GET",
        &format!("/webhooks/{id}/deliveries"),
        Some(ACME),
        vec![],
    )
    .await;
    let delivery = log.body["deliveries"][0]["id"].as_str().unwrap().to_owned();

    // A delivery whose endpoint was deleted: a retry of it conflicts.
    let gone = call(
        &api,
        "POST",
        "/webhooks",
        Some(ADMIN),
        br#"{"url": "https://gone.example/hook", "events": ["*"]}"#.to_vec(),
    )
    .await;
    let gone_id = gone.body["id"].as_str().unwrap().to_owned();
    let event = br#"{"type": "other.thing", "data": {}}"#.to_vec();
    call(&api, "POST", "/events", Some(ADMIN), event).await;
    let gone_log = call(
        &api,
        "GET",
        &format!("/webhooks/{gone_id}/deliveries"),
        Some(ADMIN),
        vec![],
    )
    .await;
    let gone_delivery = gone_log.body["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    call(
        &api,
        "DELETE",
        &format!("/webhooks/{gone_id}"),
        Some(ADMIN),
        vec![],
    )
    .await;

    let w = format!("/webhooks/{id}");
    let d = format!("/deliveries/{delivery}");
    let j = |s: &str| s.as_bytes().to_vec();
    let cases: Vec<(&str, String, Option<&str>, Vec<u8>)> = vec![
        // /webhooks
        ("POST", "/webhooks".into(), Some(ACME), j("{")),
        (
            "POST",
            "/webhooks".into(),
            Some(ACME),
            j(r#"{"url": "https://x.example"}"#),
        ),
        ("POST", "/webhooks".into(), None, j("{}")),
        ("POST", "/webhooks".into(), Some(ACME), big.clone()),
        ("GET", "/webhooks".into(), Some(ACME), vec![]),
        ("GET", "/webhooks?limit=0".into(), Some(ACME), vec![]),
        ("GET", "/webhooks".into(), None, vec![]),
        // /webhooks/{id}
        ("GET", w.clone(), Some(ACME), vec![]),
        ("GET", "/webhooks/ep_nope".into(), Some(ACME), vec![]),
        ("GET", w.clone(), None, vec![]),
        ("PUT", w.clone(), Some(ACME), j(r#"{"name": "renamed"}"#)),
        ("PUT", w.clone(), Some(ACME), j("[")),
        ("PUT", "/webhooks/ep_nope".into(), Some(ACME), j("{}")),
        ("PUT", w.clone(), Some(ACME), j(r#"{"events": []}"#)),
        ("PUT", w.clone(), None, j("{}")),
        ("PUT", w.clone(), Some(ACME), big.clone()),
        ("POST", format!("{w}/pause"), Some(ACME), vec![]),
        ("POST", "/webhooks/ep_nope/pause".into(), Some(ACME), vec![]),
        ("POST", format!("{w}/pause"), None, vec![]),
        ("POST", format!("{w}/resume"), Some(ACME), vec![]),
        (
            "POST",
            "/webhooks/ep_nope/resume".into(),
            Some(ACME),
            vec![],
        ),
        ("POST", format!("{w}/resume"), None, vec![]),
        ("POST", format!("{w}/rotate-secret"), Some(ACME), vec![]),
        ("POST", format!("{w}/rotate-secret"), Some(ACME), j("{")),
        (
            "POST",
            "/webhooks/ep_nope/rotate-secret".into(),
            Some(ACME),
            j("{}"),
        ),
        (
            "POST",
            format!("{w}/rotate-secret"),
            Some(ACME),
            j(r#"{"grace_period_seconds": 99999999}"#),
        ),
        ("POST", format!("{w}/rotate-secret"), None, vec![]),
        (
            "POST",
            format!("{w}/rotate-secret"),
            Some(ACME),
            big.clone(),
        ),
        (
            "GET",
            format!("{w}/deliveries?status=pending"),
            Some(ACME),
            vec![],
        ),
        (
            "GET",
            format!("{w}/deliveries?since=yesterday"),
            Some(ACME),
            vec![],
        ),
        (
            "GET",
            "/webhooks/ep_nope/deliveries".into(),
            Some(ACME),
            vec![],
        ),
        ("GET", format!("{w}/deliveries"), None, vec![]),
        ("GET", format!("{w}/stats"), Some(ACME), vec![]),
        ("GET", format!("{w}/stats?until=x"), Some(ACME), vec![]),
        ("GET", "/webhooks/ep_nope/stats".into(), Some(ACME), vec![]),
        ("GET", format!("{w}/stats"), None, vec![]),
        // /deliveries
        ("GET", d.clone(), Some(ACME), vec![]),
        ("GET", "/deliveries/dlv_nope".into(), Some(ACME), vec![]),
        ("GET", d.clone(), None, vec![]),
        ("POST", format!("{d}/retry"), Some(ACME), vec![]),
        (
            "POST",
            "/deliveries/dlv_nope/retry".into(),
            Some(ACME),
            vec![],
        ),
        (
            "POST",
            format!("/deliveries/{gone_delivery}/retry"),
            Some(ADMIN),
            vec![],
        ),
        ("POST", format!("{d}/retry"), None, vec![]),
        (
            "POST",
            "/deliveries/retry".into(),
            Some(ACME),
            j(r#"{"dry_run": true}"#),
        ),
        ("POST", "/deliveries/retry".into(), Some(ACME), vec![]),
        ("POST", "/deliveries/retry".into(), Some(ACME), j("{")),
        (
            "POST",
            "/deliveries/retry".into(),
            Some(ACME),
            j(r#"{"webhook_id": "ep_nope"}"#),
        ),
        (
            "POST",
            "/deliveries/retry".into(),
            Some(ACME),
            j(r#"{"status": ["nope"]}"#),
        ),
        ("POST", "/deliveries/retry".into(), None, vec![]),
        ("POST", "/deliveries/retry".into(), Some(ACME), big.clone()),
        // /events
        ("POST", "/events".into(), Some(ADMIN), j("{")),
        (
            "POST",
            "/events".into(),
            Some(ACME),
            j(r#"{"type": "a", "data": {}}"#),
        ),
        ("POST", "/events".into(), Some(ADMIN), j(r#"{"data": {}}"#)),
        ("POST", "/events".into(), None, j("{}")),
        ("POST", "/events".into(), Some(ADMIN), big.clone()),
        // the endpoint actions
        ("POST", format!("{w}/test"), Some(ACME), vec![]),
        (
            "POST",
            format!("{w}/test"),
            Some(ACME),
            j(r#"{"taskId": "123", "status": "completed"}"#),
        ),
        ("POST", format!("{w}/test"), Some(ACME), j("null")),
        ("POST", format!("{w}/test"), Some(ACME), j("{")),
        ("POST", format!("{w}/test"), Some(ACME), j("[1]")),
        ("POST", "/webhooks/ep_nope/test".into(), Some(ACME), vec![]),
        ("POST", format!("{w}/test"), None, vec![]),
        ("POST", format!("{w}/test"), Some(ACME), big.clone()),
        ("POST", format!("{w}/verify"), Some(ACME), vec![]),
        (
            "POST",
            "/webhooks/ep_nope/verify".into(),
            Some(ACME),
            vec![],
        ),
        ("POST", format!("{w}/verify"), None, vec![]),
        (
            "POST",
            format!("{w}/recover"),
            Some(ACME),
            j(r#"{"since": "2024-01-15T10:30:00Z"}"#),
        ),
        ("POST", format!("{w}/recover"), Some(ACME), j("{")),
        (
            "POST",
            "/webhooks/ep_nope/recover".into(),
            Some(ACME),
            j(r#"{"since": "2024-01-15T10:30:00Z"}"#),
        ),
        (
            "POST",
            format!("{w}/recover"),
            Some(ACME),
            j(r#"{"since": "2024-01-15T10:30:00Z", "until": "2024-01-15T10:00:00Z"}"#),
        ),
        ("POST", format!("{w}/recover"), Some(ACME), j("{}")),
        ("POST", format!("{w}/recover"), None, j("{}")),
        ("POST", format!("{w}/recover"), Some(ACME), big.clone()),
        // meta
        ("GET", "/event-types".into(), Some(ACME), vec![]),
        (
            "GET",
            "/event-types?profile=nope".into(),
            Some(ACME),
            vec![],
        ),
        ("GET", "/event-types".into(), None, vec![]),
        ("GET", "/health".into(), None, vec![]),
        ("DELETE", w.clone(), Some(ACME), vec![]),
        ("DELETE", w.clone(), Some(ACME), vec![]),
        ("DELETE", w.clone(), None, vec![]),
    ];
    for (method, path, token, body) in cases {
        let reply = call(&api, method, &path, token, body).await;
        covered.insert(check(&doc, method, &path, &reply));
    }
    // The inbox: admin only (403 for a customer), 404 on a server without one.
    let e = format!("/inbox/{entry}");
    let without_inbox = builder(sender.clone()).router();
    let inbox_cases: Vec<Case<'_>> = vec![
        (
            &api,
            "GET",
            "/inbox?status=dead&limit=1".into(),
            Some(ADMIN),
            vec![],
        ),
        (
            &api,
            "GET",
            "/inbox?status=lost".into(),
            Some(ADMIN),
            vec![],
        ),
        (&api, "GET", "/inbox".into(), Some(ACME), vec![]),
        (&api, "GET", "/inbox".into(), None, vec![]),
        (&without_inbox, "GET", "/inbox".into(), Some(ADMIN), vec![]),
        (&api, "GET", "/inbox/counts".into(), Some(ADMIN), vec![]),
        (&api, "GET", "/inbox/counts".into(), Some(ACME), vec![]),
        (&api, "GET", "/inbox/counts".into(), None, vec![]),
        (
            &without_inbox,
            "GET",
            "/inbox/counts".into(),
            Some(ADMIN),
            vec![],
        ),
        (&api, "GET", e.clone(), Some(ADMIN), vec![]),
        (&api, "GET", "/inbox/nope".into(), Some(ADMIN), vec![]),
        (&api, "GET", "/inbox/99999".into(), Some(ADMIN), vec![]),
        (&api, "GET", e.clone(), Some(ACME), vec![]),
        (&api, "GET", e.clone(), None, vec![]),
        (
            &api,
            "POST",
            "/inbox/replay".into(),
            Some(ADMIN),
            j(r#"{"dry_run": true}"#),
        ),
        (
            &api,
            "POST",
            "/inbox/replay".into(),
            Some(ADMIN),
            j("{nope"),
        ),
        (
            &api,
            "POST",
            "/inbox/replay".into(),
            Some(ADMIN),
            j(r#"{"since": "yesterday"}"#),
        ),
        (&api, "POST", "/inbox/replay".into(), Some(ACME), j("{}")),
        (&api, "POST", "/inbox/replay".into(), None, j("{}")),
        (
            &without_inbox,
            "POST",
            "/inbox/replay".into(),
            Some(ADMIN),
            j("{}"),
        ),
        (
            &api,
            "POST",
            "/inbox/replay".into(),
            Some(ADMIN),
            big.clone(),
        ),
        (&api, "POST", format!("{e}/replay"), Some(ADMIN), vec![]),
        (&api, "POST", format!("{e}/replay"), Some(ADMIN), vec![]),
        (
            &api,
            "POST",
            "/inbox/nope/replay".into(),
            Some(ADMIN),
            vec![],
        ),
        (&api, "POST", format!("{e}/replay"), Some(ACME), vec![]),
        (&api, "POST", format!("{e}/replay"), None, vec![]),
        (
            &without_inbox,
            "POST",
            format!("{e}/replay"),
            Some(ADMIN),
            vec![],
        ),
        (&api, "POST", "/inbox/replay".into(), Some(ADMIN), j("{}")),
    ];
    for (router, method, path, token, body) in inbox_cases {
        let reply = call(router, method, &path, token, body).await;
        covered.insert(check(&doc, method, &path, &reply));
    }

    let test_sent = covered.contains(&("post".into(), "/webhooks/{id}/test".into(), 202));
    assert!(test_sent, "a test send without a dispatcher is 202");

    // A test send with a dispatcher and a receiver answering 200: the first attempt's
    // outcome (200); the handshake run again through a transport (200).
    for reply in live_test_send_and_verify().await {
        let (method, path, reply) = reply;
        covered.insert(check(&doc, method, &path, &reply));
    }

    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            for status in operation["responses"].as_object().unwrap().keys() {
                documented.insert((method.clone(), path.clone(), status.parse::<u16>().unwrap()));
            }
        }
    }
    let concrete = |template: &str| {
        if template.starts_with("/deliveries/") {
            template.replace("{id}", &delivery)
        } else if template.starts_with("/inbox/") {
            template.replace("{id}", &entry)
        } else {
            template.replace("{id}", &id)
        }
    };

    // 429 with `Retry-After` and `X-RateLimit-*` on every limited route: a limiter whose
    // windows are all full.
    let limited = builder(sender.clone()).rate_limit_store(Full).router();
    let mut refused = 0;
    for (method, template, _) in documented.iter().filter(|t| t.2 == 429) {
        let path = concrete(template);
        let method = method.to_uppercase();
        let reply = call(&limited, &method, &path, Some(ACME), j("{}")).await;
        assert_eq!(reply.status, 429, "{method} {path}: {}", reply.body);
        assert_eq!(reply.headers["x-ratelimit-remaining"], "0");
        covered.insert(check(&doc, &method, &path, &reply));
        refused += 1;
    }
    assert_eq!(refused, 9, "every POST, PUT, DELETE under /webhooks");

    // Every authenticated `POST` takes `Idempotency-Key`: a malformed key is 400, a repeat
    // while the first runs 409, the key reused for another request 422 (a replay store
    // answering so for every key).
    let posts: Vec<&String> = documented
        .iter()
        .filter(|(method, _, status)| method == "post" && *status == 409)
        .map(|(_, template, _)| template)
        .collect();
    assert_eq!(posts.len(), 12, "every POST but the open routes: {posts:?}");
    let running = builder(sender.clone())
        .replay_store(Always(Begun::InProgress))
        .router();
    let reused = builder(sender.clone())
        .replay_store(Always(Begun::KeyReused))
        .router();
    for template in posts {
        let path = concrete(template);
        for (router, key, status) in [
            (&api, "two words", 400),
            (&api, "", 400),
            (&running, "k-1", 409),
            (&reused, "k-1", 422),
        ] {
            let reply = keyed(router, "POST", &path, Some(ADMIN), Some(key), j("{}")).await;
            assert_eq!(reply.status, status, "POST {path} {key:?}: {}", reply.body);
            if status != 409 {
                assert_eq!(reply.body["errors"][0]["field"], "Idempotency-Key");
            }
            covered.insert(check(&doc, "POST", &path, &reply));
        }
    }

    let missing: Vec<_> = documented.difference(&covered).collect();
    assert!(
        missing.is_empty(),
        "documented but never produced: {missing:?}"
    );
}

/// A router whose test sends reach a receiver in process through a running dispatcher, and
/// whose handshakes go through the same receiver: a test send's 200 and `/verify`'s 200.
async fn live_test_send_and_verify() -> Vec<(&'static str, String, Reply)> {
    let sender = Sender::new(MemoryStore::new());
    let dispatcher = sender.dispatcher(Receiver).spawn();
    let api = builder(sender.clone()).transport(Receiver).router();
    let body = br#"{"url": "https://acme.example/pg", "events": ["*"], "profile": "proposal-generator", "secret": "s3cret"}"#;
    let created = call(&api, "POST", "/webhooks", Some(ACME), body.to_vec()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["status"], "active", "the handshake passed");
    let id = created.body["id"].as_str().unwrap().to_owned();
    let data = br#"{"taskId": "123", "status": "completed"}"#.to_vec();
    let test = format!("/webhooks/{id}/test");
    let sent = call(&api, "POST", &test, Some(ACME), data).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["response_status"], 200);
    assert_eq!(sent.body["status"], "delivered");
    let verify = format!("/webhooks/{id}/verify");
    let verified = call(&api, "POST", &verify, Some(ACME), vec![]).await;
    assert_eq!(verified.status, 200, "{}", verified.body);
    assert_eq!(verified.body["status"], "active");
    dispatcher.shutdown(Duration::from_secs(5)).await.unwrap();
    vec![("POST", test, sent), ("POST", verify, verified)]
}

#[tokio::test]
async fn the_document_names_where_the_router_is_mounted_and_shows_no_secret() {
    let app = Router::new().nest("/api", api());
    let doc = call(&app, "GET", "/api/openapi.json", None, vec![]).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["servers"], json!([{"url": "/api"}]));
    assert_eq!(
        doc.body["components"]["securitySchemes"]["bearer"],
        json!({"type": "http", "scheme": "bearer", "description": "a token the server was configured with"})
    );
    let text = doc.body.to_string();
    assert!(
        !text.contains(ADMIN) && !text.contains(ACME),
        "no token in the document"
    );
    fn secret_examples(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(secret) = map.get("properties").and_then(|p| p.get("secret")) {
                    for key in ["example", "examples", "default"] {
                        if let Some(v) = secret.get(key) {
                            found.push(v.to_string());
                        }
                    }
                }
                map.values().for_each(|v| secret_examples(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| secret_examples(v, found)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    secret_examples(&doc.body, &mut found);
    assert!(found.is_empty(), "secrets in examples: {found:?}");
}

fn parses(profile: &str, event_type: &str, example: &Value) -> bool {
    let data = example.to_string();
    let t = EventType::from(event_type);
    let typed = |debug: String| !debug.contains("Unknown");
    match profile {
        "proposal-generator" => typed(format!(
            "{:?}",
            ProposalGeneratorEvent::from_data(&t, &data).unwrap()
        )),
        "tasklink" => typed(format!(
            "{:?}",
            TaskLinkEvent::from_data(&t, &data).unwrap()
        )),
        "task-hub" => typed(format!("{:?}", TaskHubEvent::from_data(&t, &data).unwrap())),
        "taskon" => {
            let event = TaskOnEvent::from_slice(data.as_bytes()).unwrap();
            matches!(
                (event_type, event),
                ("Token", TaskOnEvent::Token(_)) | ("GTCPoints", TaskOnEvent::Points(_))
            )
        }
        other => panic!("no typed events for {other}"),
    }
}

#[tokio::test]
async fn the_catalogs_seed_examples_fit_their_schemas_and_types() {
    let api = api();
    let all = "/event-types?profile=proposal-generator,tasklink,taskon,task-hub,github";
    let reply = call(&api, "GET", all, Some(ACME), vec![]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let entries = reply.body["event_types"].as_array().unwrap();
    let count = |p: &str| entries.iter().filter(|e| e["profile"] == p).count();
    let known = ProposalGeneratorEvent::KNOWN_TYPES.len();
    assert_eq!(count("proposal-generator"), known);
    assert_eq!(count("tasklink"), TaskLinkEvent::KNOWN_TYPES.len());
    assert_eq!(count("task-hub"), TaskHubEvent::KNOWN_TYPES.len());
    assert_eq!(count("taskon"), 2);
    assert_eq!(count("github"), 0, "hookrelay types no GitHub events");
    let mut examples = 0;
    for entry in entries {
        let (profile, event_type) = (
            entry["profile"].as_str().unwrap(),
            entry["type"].as_str().unwrap(),
        );
        let validator = jsonschema::draft202012::new(&entry["schema"]).unwrap();
        let example = &entry["example"];
        if example.is_null() {
            assert_eq!(
                event_type, "webhook.test",
                "only 001's test event has no seed example"
            );
            continue;
        }
        let errors: Vec<String> = validator
            .iter_errors(example)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{profile} {event_type}: {errors:?}");
        assert!(
            parses(profile, event_type, example),
            "{profile} {event_type}"
        );
        // The schema is not vacuous: dropping a required field breaks it.
        if let Some(required) = entry["schema"]["required"].as_array() {
            let mut broken = example.clone();
            broken
                .as_object_mut()
                .unwrap()
                .remove(required[0].as_str().unwrap());
            assert!(!validator.is_valid(&broken), "{profile} {event_type}");
        }
        examples += 1;
    }
    assert_eq!(examples, 28);
    // One example checked against the seed document's text: 002's payment.created amount.
    let payment = entries
        .iter()
        .find(|e| e["profile"] == "tasklink" && e["type"] == "payment.created")
        .unwrap();
    assert_eq!(payment["example"]["payment"]["netAmount"], json!(450.0));
    assert_eq!(payment["data_in"], "data");
}

#[tokio::test]
async fn the_catalog_follows_the_profiles_in_use() {
    let api = ManagementApi::new(Sender::new(MemoryStore::new()))
        .token(
            Token::new(ACME).unwrap(),
            Principal::Customer(Owner::new("acme").unwrap()),
        )
        .default_profile(Profile::TaskHub)
        .router();
    let profiles = |reply: &Reply| -> BTreeSet<String> {
        reply.body["event_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["profile"].as_str().unwrap().to_owned())
            .collect()
    };
    let before = call(&api, "GET", "/event-types", Some(ACME), vec![]).await;
    assert_eq!(profiles(&before), BTreeSet::from(["task-hub".to_owned()]));
    let body = br#"{"url": "https://acme.example/r", "events": ["*"], "profile": "tasklink", "secret": "s"}"#;
    let created = call(&api, "POST", "/webhooks", Some(ACME), body.to_vec()).await;
    assert_eq!(created.status, 201, "{}", created.body);
    let after = call(&api, "GET", "/event-types", Some(ACME), vec![]).await;
    assert_eq!(
        profiles(&after),
        BTreeSet::from(["task-hub".to_owned(), "tasklink".to_owned()])
    );
}
