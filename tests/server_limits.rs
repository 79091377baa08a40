//! The management API's rate limits and `Idempotency-Key` replays, through the router in
//! process, on `MemoryStore` with a manual clock; and on PostgreSQL (when
//! `HOOKRELAY_TEST_DATABASE_URL` is set), where two routers over one database share both.
//!
//! Test sends (`POST /webhooks/{id}/test`) have their own limit: the 6th in a minute is 429
//! through the real route in `tests/server_checklist.rs` (case 68), and over a stand-in
//! handler that counts its runs in `src/server/rate_limit.rs`.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use hookrelay::retry::UnixMillis;
use hookrelay::send::{DeliveryStore, ManualClock, MemoryStore, Owner, Sender};
use hookrelay::server::{ManagementApi, Principal, RateLimit, Token};

const ADMIN: &str = "admin-token";
const ACME: &str = "acme-token";
const GLOBEX: &str = "globex-token";
/// A minute boundary, so windows in these tests are easy to read.
const T0: u64 = 1_700_000_040;

fn api_over<S: DeliveryStore>(sender: Sender<S>) -> ManagementApi<S> {
    ManagementApi::new(sender)
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

fn memory() -> (Router, ManualClock) {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    (api_over(sender).router(), clock)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The `X-RateLimit-*` headers as numbers.
    fn limits(&self) -> Option<(u64, u64, u64)> {
        let n = |name| self.header(name).map(|v: &str| v.parse::<u64>().unwrap());
        Some((
            n("x-ratelimit-limit")?,
            n("x-ratelimit-remaining")?,
            n("x-ratelimit-reset")?,
        ))
    }
}

async fn send(
    api: &Router,
    method: &str,
    path: &str,
    token: Option<&str>,
    key: Option<&str>,
    body: &str,
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
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        bytes: bytes.to_vec(),
    }
}

async fn call(api: &Router, method: &str, path: &str, token: &str, body: &str) -> Reply {
    send(api, method, path, Some(token), None, body).await
}

fn registration(n: usize) -> String {
    json!({"url": format!("https://example.com/hooks/{n}"), "events": ["*"]}).to_string()
}

async fn count_endpoints(api: &Router, token: &str) -> usize {
    let listed = call(api, "GET", "/webhooks?limit=250", token, "").await;
    assert_eq!(listed.status, StatusCode::OK);
    listed.json()["webhooks"].as_array().unwrap().len()
}

fn assert_problem(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status.as_u16(),
        status,
        "{}",
        String::from_utf8_lossy(&reply.bytes)
    );
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    reply.json()
}

#[tokio::test]
async fn every_limited_response_carries_the_headers_whatever_its_outcome() {
    let (api, _clock) = memory();
    let reset = T0 + 60;
    let created = call(&api, "POST", "/webhooks", ACME, &registration(0)).await;
    assert_eq!(created.status, StatusCode::CREATED);
    assert_eq!(created.limits(), Some((10, 9, reset)));
    let id = created.json()["id"].as_str().unwrap().to_owned();

    let invalid = call(&api, "POST", "/webhooks", ACME, r#"{"url": 5}"#).await;
    assert_problem(&invalid, 422);
    assert_eq!(invalid.limits(), Some((10, 8, reset)), "a 422 counts");
    let missing = call(
        &api,
        "PUT",
        "/webhooks/ep_missing",
        ACME,
        r#"{"name": "x"}"#,
    )
    .await;
    assert_problem(&missing, 404);
    assert_eq!(missing.limits(), Some((10, 7, reset)), "a 404 counts");
    let changed = call(
        &api,
        "PUT",
        &format!("/webhooks/{id}"),
        ACME,
        r#"{"name": "n"}"#,
    )
    .await;
    assert_eq!(changed.limits(), Some((10, 6, reset)));
    for action in ["pause", "resume", "rotate-secret"] {
        let reply = call(&api, "POST", &format!("/webhooks/{id}/{action}"), ACME, "").await;
        assert_eq!(reply.status, StatusCode::OK, "{action}");
        assert!(reply.limits().is_some(), "{action}");
    }
    let deleted = call(&api, "DELETE", &format!("/webhooks/{id}"), ACME, "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_eq!(deleted.limits(), Some((10, 2, reset)));

    // Reads and other routes are not limited.
    for path in ["/webhooks", "/health"] {
        let read = call(&api, "GET", path, ACME, "").await;
        assert_eq!(read.status, StatusCode::OK);
        assert_eq!(read.limits(), None, "{path}");
    }
    // No principal: 401 before any limit, not counted.
    let anonymous = send(&api, "POST", "/webhooks", None, None, &registration(1)).await;
    assert_problem(&anonymous, 401);
    assert_eq!(anonymous.limits(), None);
    let wrong = send(
        &api,
        "POST",
        "/webhooks",
        Some("nope"),
        None,
        &registration(1),
    )
    .await;
    assert_problem(&wrong, 401);
    let next = call(&api, "POST", "/webhooks", ACME, &registration(1)).await;
    assert_eq!(next.limits(), Some((10, 1, reset)));
}

#[tokio::test]
async fn the_eleventh_configuration_request_is_429_and_changes_nothing() {
    let (api, clock) = memory();
    for n in 0..10 {
        let created = call(&api, "POST", "/webhooks", ACME, &registration(n)).await;
        assert_eq!(created.status, StatusCode::CREATED, "request {}", n + 1);
        clock.advance(Duration::from_secs(5));
    }
    assert_eq!(count_endpoints(&api, ACME).await, 10);
    let refused = call(&api, "POST", "/webhooks", ACME, &registration(10)).await;
    let body = assert_problem(&refused, 429);
    assert_eq!(body["status"], 429);
    // 50 s into the window: it closes in 10 s.
    assert_eq!(refused.header("retry-after"), Some("10"));
    assert_eq!(refused.limits(), Some((10, 0, T0 + 60)));
    assert_eq!(count_endpoints(&api, ACME).await, 10, "no side effect");

    // A refused delete deletes nothing either.
    let listed = call(&api, "GET", "/webhooks", ACME, "").await;
    let id = listed.json()["webhooks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let refused = call(&api, "DELETE", &format!("/webhooks/{id}"), ACME, "").await;
    assert_problem(&refused, 429);
    let still = call(&api, "GET", &format!("/webhooks/{id}"), ACME, "").await;
    assert_eq!(still.status, StatusCode::OK);

    // Another caller has its own budget.
    let other = call(&api, "POST", "/webhooks", GLOBEX, &registration(11)).await;
    assert_eq!(other.status, StatusCode::CREATED);
    assert_eq!(other.limits(), Some((10, 9, T0 + 110)));

    // The window closes at T0 + 60: the budget is whole again.
    clock.set(UnixMillis::from_secs(T0 + 59));
    let refused = call(&api, "POST", "/webhooks", ACME, &registration(12)).await;
    assert_eq!(refused.header("retry-after"), Some("1"));
    clock.set(UnixMillis::from_secs(T0 + 60));
    let again = call(&api, "POST", "/webhooks", ACME, &registration(12)).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.limits(), Some((10, 9, T0 + 120)));
    assert_eq!(count_endpoints(&api, ACME).await, 11);
}

#[tokio::test]
async fn limits_are_configurable() {
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let sender = Sender::with_clock(MemoryStore::new(), clock.clone());
    let api = api_over(sender)
        .config_rate_limit("2/h".parse().unwrap())
        .test_rate_limit(RateLimit::per_minute(1).unwrap())
        .router();
    for n in 0..2 {
        let created = call(&api, "POST", "/webhooks", ADMIN, &registration(n)).await;
        assert_eq!(created.limits(), Some((2, 1 - n as u64, T0 + 3600)));
    }
    let refused = call(&api, "POST", "/webhooks", ADMIN, &registration(2)).await;
    assert_problem(&refused, 429);
    assert_eq!(refused.header("retry-after"), Some("3600"));
}

#[tokio::test]
async fn an_idempotent_registration_is_replayed_and_creates_one_endpoint() {
    let (api, _clock) = memory();
    let body = r#"{"url": "https://example.com/hooks", "events": ["task.*"], "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#;
    let first = send(&api, "POST", "/webhooks", Some(ACME), Some("reg-1"), body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(first.header("idempotent-replayed"), None);
    let again = send(&api, "POST", "/webhooks", Some(ACME), Some("reg-1"), body).await;
    assert_eq!(again.status, first.status);
    assert_eq!(
        again.bytes, first.bytes,
        "the first response, byte for byte"
    );
    assert_eq!(again.header("content-type"), first.header("content-type"));
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    // A replay still counts against the limit.
    assert_eq!(again.limits().unwrap().1, 8);
    assert_eq!(count_endpoints(&api, ACME).await, 1);

    // The same key with another body: 422 naming the header, nothing created.
    let other = body.replace("task.*", "job.*");
    let reused = send(&api, "POST", "/webhooks", Some(ACME), Some("reg-1"), &other).await;
    let problem = assert_problem(&reused, 422);
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    assert_eq!(count_endpoints(&api, ACME).await, 1);

    // Keys are per principal: another customer's same key is its own request.
    let globex = send(&api, "POST", "/webhooks", Some(GLOBEX), Some("reg-1"), body).await;
    assert_eq!(globex.status, StatusCode::CREATED);
    assert_ne!(globex.json()["id"], first.json()["id"]);

    // A key over 255 bytes, or not visible ASCII: 400 naming the header.
    let long = "k".repeat(256);
    let refused = send(&api, "POST", "/webhooks", Some(ACME), Some(&long), body).await;
    let problem = assert_problem(&refused, 400);
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");
    let max = "k".repeat(255);
    let fits = send(&api, "POST", "/webhooks", Some(ACME), Some(&max), body).await;
    assert_eq!(fits.status, StatusCode::CREATED);
}

#[tokio::test]
async fn a_generated_secret_is_shown_once_and_never_replayed() {
    let (api, _clock) = memory();
    let body = r#"{"url": "https://example.com/hooks", "events": ["*"]}"#;
    let first = send(&api, "POST", "/webhooks", Some(ADMIN), Some("gen"), body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let secret = first.json()["secret"].as_str().unwrap().to_owned();
    let again = send(&api, "POST", "/webhooks", Some(ADMIN), Some("gen"), body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    let mut expected = first.json();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(again.json(), expected);
    assert!(!String::from_utf8_lossy(&again.bytes).contains(&secret));
    assert_eq!(count_endpoints(&api, ADMIN).await, 1);
}

#[tokio::test]
async fn idempotency_covers_every_post_route_and_keeps_no_failure() {
    let (api, _clock) = memory();
    let created = call(&api, "POST", "/webhooks", ADMIN, &registration(0)).await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    // An event published twice with one key is published once.
    let event = r#"{"type": "task.created", "data": {"taskId": "1"}}"#;
    let first = send(&api, "POST", "/events", Some(ADMIN), Some("ev-1"), event).await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let again = send(&api, "POST", "/events", Some(ADMIN), Some("ev-1"), event).await;
    assert_eq!(again.bytes, first.bytes);
    let log = call(
        &api,
        "GET",
        &format!("/webhooks/{id}/deliveries"),
        ADMIN,
        "",
    )
    .await;
    assert_eq!(log.json()["deliveries"].as_array().unwrap().len(), 1);
    // The same key on another route is another request: 422.
    let elsewhere = send(
        &api,
        "POST",
        &format!("/webhooks/{id}/pause"),
        Some(ADMIN),
        Some("ev-1"),
        "",
    )
    .await;
    assert_problem(&elsewhere, 422);
    // A 4xx is kept (a retry would get it again) ...
    let bad = r#"{"type": "task.created"}"#;
    let first = send(&api, "POST", "/events", Some(ADMIN), Some("ev-2"), bad).await;
    assert_problem(&first, 422);
    let again = send(&api, "POST", "/events", Some(ADMIN), Some("ev-2"), bad).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.bytes, first.bytes);
    // ... and a body over 1 MiB is 413 before anything is kept.
    let huge = format!(r#"{{"type": "a", "data": "{}"}}"#, "x".repeat(1 << 20));
    let refused = send(&api, "POST", "/events", Some(ADMIN), Some("ev-3"), &huge).await;
    assert_problem(&refused, 413);
    // Not POST: the header is ignored.
    let put = send(
        &api,
        "PUT",
        &format!("/webhooks/{id}"),
        Some(ADMIN),
        Some("ev-1"),
        r#"{"name": "a"}"#,
    )
    .await;
    assert_eq!(put.status, StatusCode::OK);
}

#[cfg(feature = "postgres")]
mod pg_support;

/// Two routers (two processes' worth: two stores, two senders) over one schema share the
/// limits and the replays.
#[cfg(feature = "postgres")]
#[tokio::test]
async fn on_postgres_two_routers_share_limits_and_replays() {
    use hookrelay::send::PostgresStore;

    let Some(url) = pg_support::database_url("on_postgres_two_routers_share_limits_and_replays")
    else {
        return;
    };
    let schema = pg_support::fresh_schema(&url, "limits").await;
    let clock = ManualClock::at(UnixMillis::from_secs(T0));
    let mut routers = Vec::new();
    for _ in 0..2 {
        let store = PostgresStore::builder()
            .schema(&schema)
            .connect(&url)
            .await
            .unwrap();
        let sender = Sender::with_clock(store.clone(), clock.clone());
        routers.push(
            api_over(sender)
                .rate_limit_store(store.clone())
                .replay_store(store)
                .router(),
        );
    }
    for n in 0..10 {
        let api = &routers[n % 2];
        let created = call(api, "POST", "/webhooks", ACME, &registration(n)).await;
        assert_eq!(created.status, StatusCode::CREATED, "request {}", n + 1);
        assert_eq!(created.limits(), Some((10, 9 - n as u64, T0 + 60)));
    }
    for api in &routers {
        let refused = call(api, "POST", "/webhooks", ACME, &registration(10)).await;
        assert_problem(&refused, 429);
        assert_eq!(refused.header("retry-after"), Some("60"));
    }
    let other = call(&routers[1], "POST", "/webhooks", GLOBEX, &registration(0)).await;
    assert_eq!(other.status, StatusCode::CREATED);
    clock.advance(Duration::from_secs(60));

    let body = r#"{"url": "https://example.com/once", "events": ["*"]}"#;
    let first = send(
        &routers[0],
        "POST",
        "/webhooks",
        Some(ACME),
        Some("k"),
        body,
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.json()["secret"].is_string());
    let again = send(
        &routers[1],
        "POST",
        "/webhooks",
        Some(ACME),
        Some("k"),
        body,
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let mut expected = first.json();
    expected.as_object_mut().unwrap().remove("secret");
    assert_eq!(again.json(), expected);
    let reused = send(
        &routers[1],
        "POST",
        "/webhooks",
        Some(ACME),
        Some("k"),
        "{}",
    )
    .await;
    assert_problem(&reused, 422);
    assert_eq!(count_endpoints(&routers[0], ACME).await, 11);
    pg_support::drop_schema(&url, &schema).await;
}
