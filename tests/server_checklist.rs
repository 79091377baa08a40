//! CHECKLIST section H, cases 64–70, against the management API's router in process
//! (`MemoryStore`). Each test names its case.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use hookrelay::send::{AddressPolicy, MemoryStore, Owner, Sender};
use hookrelay::server::{ManagementApi, Principal, RateLimit, Token};

const ADMIN: &str = "admin-token";
const ACME: &str = "acme-token";
const GLOBEX: &str = "globex-token";

/// The router with the SSRF policy on and limits high enough not to interfere (case 68
/// uses the defaults). No dispatcher runs: a test send answers 202 at once.
fn api() -> Router {
    let sender = Sender::new(MemoryStore::new()).with_url_policy(AddressPolicy::new());
    builder(sender)
        .config_rate_limit(RateLimit::per_minute(10_000).unwrap())
        .test_rate_limit(RateLimit::per_minute(10_000).unwrap())
        .test_send_wait(Duration::ZERO)
        .router()
}

fn builder(sender: Sender<MemoryStore>) -> ManagementApi<MemoryStore> {
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

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    text: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or(Value::Null)
    }
}

async fn raw(api: &Router, request: Request<Body>) -> Reply {
    let response = api.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply {
        status,
        headers,
        text: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn call(
    api: &Router,
    method: &str,
    path: &str,
    authorization: Option<&str>,
    body: impl Into<Body>,
) -> Reply {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("content-type", "application/json");
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    raw(api, request.body(body.into()).unwrap()).await
}

async fn as_(api: &Router, token: &str, method: &str, path: &str, body: &str) -> Reply {
    let bearer = format!("Bearer {token}");
    call(api, method, path, Some(&bearer), body.to_owned()).await
}

/// Asserts a problem+json reply with this status; returns the field its first error names.
#[track_caller]
fn problem(reply: &Reply, status: u16) -> Option<String> {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.text);
    assert_eq!(
        reply.headers.get("content-type").unwrap(),
        "application/problem+json"
    );
    let body = reply.json();
    assert_eq!(body["status"], status);
    body["errors"][0]["field"].as_str().map(str::to_owned)
}

/// An endpoint of `token`'s with one pending delivery: (webhook id, delivery id, secret).
async fn endpoint_with_delivery(api: &Router, token: &str) -> (String, String, String) {
    let created = as_(
        api,
        token,
        "POST",
        "/webhooks",
        r#"{"url": "https://hooks.example.com/in", "events": ["job.*"]}"#,
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let secret = created.json()["secret"].as_str().unwrap().to_owned();
    let event = r#"{"type": "job.completed", "data": {"jobId": "j1"}}"#;
    let published = as_(api, ADMIN, "POST", "/events", event).await;
    assert_eq!(published.status, StatusCode::ACCEPTED, "{}", published.text);
    let log = as_(api, token, "GET", &format!("/webhooks/{id}/deliveries"), "").await;
    let delivery = log.json()["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, delivery, secret)
}

/// The routes that answer without a token.
const OPEN: &[&str] = &["/openapi.json", "/health"];

/// Every route of the router, with ids filled in, and a body that would be accepted.
fn routes(webhook: &str, delivery: &str) -> Vec<(&'static str, String, &'static str)> {
    let w = |tail: &str| format!("/webhooks/{webhook}{tail}");
    let d = |tail: &str| format!("/deliveries/{delivery}{tail}");
    vec![
        (
            "POST",
            "/webhooks".into(),
            r#"{"url": "https://hooks.example.com/x", "events": ["*"]}"#,
        ),
        ("GET", "/webhooks".into(), ""),
        ("GET", w(""), ""),
        ("PUT", w(""), r#"{"name": "x"}"#),
        ("POST", w("/pause"), ""),
        ("POST", w("/resume"), ""),
        ("POST", w("/rotate-secret"), ""),
        (
            "POST",
            w("/test"),
            r#"{"taskId": "123", "status": "completed"}"#,
        ),
        ("POST", w("/verify"), ""),
        (
            "POST",
            w("/recover"),
            r#"{"since": "2024-01-15T10:30:00Z"}"#,
        ),
        ("GET", w("/deliveries"), ""),
        ("GET", w("/stats"), ""),
        ("GET", d(""), ""),
        ("POST", d("/retry"), ""),
        ("POST", "/deliveries/retry".into(), r#"{"dry_run": true}"#),
        ("POST", "/events".into(), r#"{"type": "a.b", "data": {}}"#),
        ("GET", "/event-types".into(), ""),
        ("GET", "/openapi.json".into(), ""),
        ("GET", "/health".into(), ""),
        ("DELETE", w(""), ""),
    ]
}

/// 64: every route but the open ones (`/openapi.json`, `/health`) refuses a missing,
/// malformed or wrong bearer token with 401 (and `WWW-Authenticate: Bearer`); nothing
/// changes. Tokens are compared in
/// constant time by the table (SHA-256 digests, every entry looked at: `server::auth`).
#[tokio::test]
async fn case_64_every_route_refuses_missing_malformed_or_wrong_tokens() {
    let api = api();
    let (webhook, delivery, _) = endpoint_with_delivery(&api, ACME).await;
    let refused = [
        None,
        Some("Bearer"),
        Some("Bearer "),
        Some("Bearer  acme-token"),
        Some("Basic YWNtZS10b2tlbjo="),
        Some("acme-token"),
        Some("Bearer acme-toke"),
        Some("Bearer acme-tokenx"),
        Some("Bearer ACME-TOKEN"),
        Some("Token acme-token"),
    ];
    for (method, path, body) in routes(&webhook, &delivery) {
        if OPEN.contains(&path.as_str()) {
            for authorization in refused {
                let reply = call(&api, method, &path, authorization, body).await;
                assert_eq!(reply.status, StatusCode::OK, "{path} is open");
            }
            continue;
        }
        for authorization in refused {
            let reply = call(&api, method, &path, authorization, body).await;
            problem(&reply, 401);
            assert_eq!(reply.headers.get("www-authenticate").unwrap(), "Bearer");
            assert!(
                reply.headers.get("x-ratelimit-limit").is_none(),
                "401 before any limit"
            );
        }
    }
    // A token with bytes no header text holds is refused too, never a 500.
    let request = Request::get("/webhooks")
        .header(
            "authorization",
            http::HeaderValue::from_bytes(b"Bearer \xff\xfe").unwrap(),
        )
        .body(Body::empty())
        .unwrap();
    problem(&raw(&api, request).await, 401);
    // Nothing changed: the one endpoint, active, with its one delivery (no test send).
    let shown = as_(&api, ACME, "GET", &format!("/webhooks/{webhook}"), "").await;
    assert_eq!(shown.json()["status"], "active");
    let all = as_(&api, ADMIN, "GET", "/webhooks", "").await;
    assert_eq!(all.json()["webhooks"].as_array().unwrap().len(), 1);
    let log = as_(
        &api,
        ACME,
        "GET",
        &format!("/webhooks/{webhook}/deliveries"),
        "",
    )
    .await;
    assert_eq!(log.json()["deliveries"].as_array().unwrap().len(), 1);
}

/// 65: a customer cannot read, list, change, delete, rotate, test, verify, recover or retry
/// another customer's endpoints or deliveries: 404, the same answer as an id that does not
/// exist.
#[tokio::test]
async fn case_65_customers_cannot_reach_each_others_resources() {
    let api = api();
    let (webhook, delivery, _) = endpoint_with_delivery(&api, ACME).await;
    for (method, path, body) in routes(&webhook, &delivery) {
        let names_an_id = path.contains(&webhook) || path.contains(&delivery);
        if !names_an_id {
            continue;
        }
        let foreign = as_(&api, GLOBEX, method, &path, body).await;
        problem(&foreign, 404);
        let missing_path = path
            .replace(&webhook, "ep_does_not_exist")
            .replace(&delivery, "dlv_does_not_exist");
        let missing = as_(&api, GLOBEX, method, &missing_path, body).await;
        assert_eq!(
            foreign.json(),
            missing.json(),
            "{method} {path}: a foreign id answers as a missing one"
        );
    }
    // Lists and bulk retries show nothing of acme's.
    let listed = as_(&api, GLOBEX, "GET", "/webhooks", "").await;
    assert_eq!(listed.json()["webhooks"], json!([]));
    let dry = r#"{"dry_run": true}"#;
    let counted = as_(&api, GLOBEX, "POST", "/deliveries/retry", dry).await;
    assert_eq!(counted.json()["matched"], 0);
    let scoped = format!(r#"{{"dry_run": true, "webhook_id": "{webhook}"}}"#);
    problem(
        &as_(&api, GLOBEX, "POST", "/deliveries/retry", &scoped).await,
        404,
    );
    // Acme's endpoint is untouched and still its own: no test send reached it.
    let shown = as_(&api, ACME, "GET", &format!("/webhooks/{webhook}"), "").await;
    assert_eq!(shown.status, StatusCode::OK);
    assert_eq!(shown.json()["status"], "active");
    assert_eq!(shown.json()["name"], Value::Null);
    let log = as_(
        &api,
        ACME,
        "GET",
        &format!("/webhooks/{webhook}/deliveries"),
        "",
    )
    .await;
    assert_eq!(log.json()["deliveries"].as_array().unwrap().len(), 1);
}

/// 66: a secret is shown once — on creation when generated, on rotation — and never in a
/// list, a read, the delivery log, a delivery, an error, or a replay.
#[tokio::test]
async fn case_66_a_secret_is_shown_once() {
    let api = api();
    let (webhook, delivery, secret) = endpoint_with_delivery(&api, ADMIN).await;
    let rotated = as_(
        &api,
        ADMIN,
        "POST",
        &format!("/webhooks/{webhook}/rotate-secret"),
        "",
    )
    .await;
    let new_secret = rotated.json()["secret"].as_str().unwrap().to_owned();
    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let with_given = format!(
        r#"{{"url": "https://hooks.example.com/g", "events": ["*"], "secret": "{given}"}}"#
    );
    let created = as_(&api, ADMIN, "POST", "/webhooks", &with_given).await;
    assert_eq!(created.status, StatusCode::CREATED);
    let mut replies = vec![created];
    for path in [
        "/webhooks".to_owned(),
        format!("/webhooks/{webhook}"),
        format!("/webhooks/{webhook}/deliveries"),
        format!("/webhooks/{webhook}/stats"),
        format!("/deliveries/{delivery}"),
    ] {
        replies.push(as_(&api, ADMIN, "GET", &path, "").await);
    }
    // Errors about secrets do not echo them.
    let put_secret = format!(r#"{{"secret": "{given}"}}"#);
    let refused = as_(
        &api,
        ADMIN,
        "PUT",
        &format!("/webhooks/{webhook}"),
        &put_secret,
    )
    .await;
    assert_eq!(problem(&refused, 422).as_deref(), Some("secret"));
    replies.push(refused);
    let bad_secret = r#"{"url": "https://hooks.example.com/b", "events": ["*"], "secret": "whsec_!!notbase64-whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#;
    let refused = as_(&api, ADMIN, "POST", "/webhooks", bad_secret).await;
    assert_eq!(problem(&refused, 422).as_deref(), Some("secret"));
    assert!(!refused.text.contains("!!notbase64"), "{}", refused.text);
    // A replayed rotation does not show the secret again.
    let rotate = format!("/webhooks/{webhook}/rotate-secret");
    let keyed = || {
        Request::post(rotate.as_str())
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("idempotency-key", "rot-1")
            .body(Body::empty())
            .unwrap()
    };
    let first = raw(&api, keyed()).await;
    let third_secret = first.json()["secret"].as_str().unwrap().to_owned();
    let replay = raw(&api, keyed()).await;
    assert_eq!(replay.status, StatusCode::OK);
    assert_eq!(replay.json(), json!({}));
    replies.push(replay);
    for reply in &replies {
        for shown_once in [&secret, &new_secret, &third_secret, &given.to_owned()] {
            assert!(!reply.text.contains(shown_once.as_str()), "{}", reply.text);
            let key = shown_once.trim_start_matches("whsec_");
            assert!(!reply.text.contains(key), "{}", reply.text);
        }
    }
    // Nor in the router's Debug output.
    let debug = format!("{:?}", builder(Sender::new(MemoryStore::new())));
    assert!(!debug.contains(ADMIN) && !debug.contains(ACME), "{debug}");
}

/// 67: the SSRF policy vets a URL at registration and at every update (422 naming `url`),
/// and nothing is stored or changed.
#[tokio::test]
async fn case_67_urls_are_vetted_at_registration_and_update() {
    let api = api();
    let refused_urls = [
        "https://10.0.0.7/hook",
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://[::1]/hook",
        "https://169.254.169.254/latest/meta-data",
        "http://hooks.example.com/plain-http",
    ];
    for url in refused_urls {
        let body = json!({"url": url, "events": ["*"]}).to_string();
        let refused = as_(&api, ACME, "POST", "/webhooks", &body).await;
        assert_eq!(problem(&refused, 422).as_deref(), Some("url"), "{url}");
    }
    let listed = as_(&api, ADMIN, "GET", "/webhooks", "").await;
    assert_eq!(listed.json()["webhooks"], json!([]), "nothing stored");
    let ok = r#"{"url": "https://hooks.example.com/ok", "events": ["*"]}"#;
    let created = as_(&api, ACME, "POST", "/webhooks", ok).await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    for url in refused_urls {
        let body = json!({"url": url}).to_string();
        let refused = as_(&api, ACME, "PUT", &format!("/webhooks/{id}"), &body).await;
        assert_eq!(problem(&refused, 422).as_deref(), Some("url"), "{url}");
    }
    let shown = as_(&api, ACME, "GET", &format!("/webhooks/{id}"), "").await;
    assert_eq!(shown.json()["url"], "https://hooks.example.com/ok");
}

/// 68: limits per token, `X-RateLimit-*` on every limited response, past the limit 429
/// with `Retry-After` and no side effect: the 11th configuration request and the 6th test
/// send in a minute (more in `tests/server_limits.rs`).
#[tokio::test]
async fn case_68_rate_limits_per_token() {
    let api = builder(Sender::new(MemoryStore::new()))
        .test_send_wait(Duration::ZERO)
        .router();
    for n in 0..10 {
        let body = json!({"url": format!("https://hooks.example.com/{n}"), "events": ["*"]});
        let created = as_(&api, ACME, "POST", "/webhooks", &body.to_string()).await;
        assert_eq!(created.status, StatusCode::CREATED);
        for header in [
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
        ] {
            assert!(created.headers.contains_key(header), "{header}");
        }
    }
    let body = r#"{"url": "https://hooks.example.com/11", "events": ["*"]}"#;
    let refused = as_(&api, ACME, "POST", "/webhooks", body).await;
    problem(&refused, 429);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(refused.headers["x-ratelimit-remaining"], "0");
    let listed = as_(&api, ACME, "GET", "/webhooks?limit=250", "").await;
    assert_eq!(listed.json()["webhooks"].as_array().unwrap().len(), 10);
    let other = as_(&api, GLOBEX, "POST", "/webhooks", body).await;
    assert_eq!(other.status, StatusCode::CREATED, "another token's budget");

    // Test sends: 5 a minute, a budget of their own.
    let own = listed.json()["webhooks"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let test = format!("/webhooks/{own}/test");
    let data = r#"{"taskId": "123", "status": "completed"}"#;
    for n in 1..=5u32 {
        let sent = as_(&api, ACME, "POST", &test, data).await;
        assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.text);
        assert_eq!(sent.headers["x-ratelimit-limit"], "5");
        assert_eq!(sent.headers["x-ratelimit-remaining"], (5 - n).to_string());
        assert!(sent.headers.contains_key("x-ratelimit-reset"));
    }
    let sixth = as_(&api, ACME, "POST", &test, data).await;
    problem(&sixth, 429);
    assert!(sixth.headers.contains_key("retry-after"));
    assert_eq!(sixth.headers["x-ratelimit-limit"], "5");
    assert_eq!(sixth.headers["x-ratelimit-remaining"], "0");
    let log = as_(
        &api,
        ACME,
        "GET",
        &format!("/webhooks/{own}/deliveries"),
        "",
    )
    .await;
    assert_eq!(
        log.json()["deliveries"].as_array().unwrap().len(),
        5,
        "the 6th test send sent nothing"
    );
    let another = as_(&api, GLOBEX, "POST", "/webhooks", body).await;
    let theirs = another.json()["id"].as_str().unwrap().to_owned();
    let sent = as_(
        &api,
        GLOBEX,
        "POST",
        &format!("/webhooks/{theirs}/test"),
        data,
    )
    .await;
    assert_eq!(
        sent.status,
        StatusCode::ACCEPTED,
        "another token's test budget"
    );
}

/// 69: malformed JSON, wrong types, huge numbers, a 10 MiB body, invalid UTF-8 and a
/// tampered cursor are 400/413/422 problem+json, never a 500.
#[tokio::test]
async fn case_69_hostile_input_is_a_4xx_problem() {
    let api = api();
    let (webhook, delivery, _) = endpoint_with_delivery(&api, ADMIN).await;
    let w = |tail: &str| format!("/webhooks/{webhook}{tail}");
    let bodies: Vec<Vec<u8>> = vec![
        b"{".to_vec(),
        b"[]".to_vec(),
        b"null".to_vec(),
        b"\"text\"".to_vec(),
        b"{\"url\": \"https://hooks.example.com/\", \"events\": [\"*\"]} trailing".to_vec(),
        br#"{"url": 5, "events": ["*"]}"#.to_vec(),
        br#"{"url": "https://hooks.example.com/", "events": "*"}"#.to_vec(),
        br#"{"url": "https://hooks.example.com/", "events": [1e400]}"#.to_vec(),
        br#"{"grace_period_seconds": 18446744073709551616}"#.to_vec(),
        br#"{"grace_period_seconds": -1}"#.to_vec(),
        br#"{"grace_period_seconds": 1e308}"#.to_vec(),
        br#"{"grace_period_seconds": 18446744073709551615}"#.to_vec(),
        br#"{"dry_run": "yes"}"#.to_vec(),
        br#"{"type": ["x"], "data": {}}"#.to_vec(),
        br#"{"type": "a", "data": 99999999999999999999999999999999999999999999e99999}"#.to_vec(),
        b"{\"url\": \"https://hooks.example.com/\xff\xfe\", \"events\": [\"*\"]}".to_vec(),
        b"\xef\xbb\xbf{}".to_vec(),
        b"\x00".to_vec(),
        vec![b'['; 100_000],
    ];
    let targets = [
        ("POST", "/webhooks".to_owned()),
        ("PUT", w("")),
        ("POST", w("/rotate-secret")),
        ("POST", "/deliveries/retry".to_owned()),
        ("POST", "/events".to_owned()),
        ("POST", format!("/deliveries/{delivery}/retry")),
    ];
    let bearer = format!("Bearer {ADMIN}");
    for (method, path) in &targets {
        for body in &bodies {
            let reply = call(&api, method, path, Some(&bearer), body.clone()).await;
            let status = reply.status.as_u16();
            assert!(
                !reply.status.is_server_error(),
                "{method} {path} {:?}: {status} {}",
                String::from_utf8_lossy(body),
                reply.text
            );
            if reply.status.is_client_error() {
                problem(&reply, status);
            }
        }
        // 10 MiB: 413 where the route reads a body (one-delivery retry reads none and
        // ignores it), and with an idempotency key on every POST.
        let huge = vec![b' '; 10 << 20];
        let reply = call(&api, method, path, Some(&bearer), huge.clone()).await;
        if path.ends_with("/retry") && path != "/deliveries/retry" {
            assert_eq!(reply.status, StatusCode::ACCEPTED);
        } else {
            problem(&reply, 413);
        }
        let request = Request::builder()
            .method(*method)
            .uri(path.as_str())
            .header("authorization", &bearer)
            .header("idempotency-key", "huge")
            .body(Body::from(huge))
            .unwrap();
        problem(&raw(&api, request).await, 413);
    }
    // Query parameters: huge numbers, tampered cursors, invalid percent-encoded UTF-8.
    let cursor = {
        for n in 0..3 {
            let body = json!({"url": format!("https://hooks.example.com/{n}"), "events": ["*"]});
            as_(&api, ADMIN, "POST", "/webhooks", &body.to_string()).await;
        }
        let page = as_(&api, ADMIN, "GET", "/webhooks?limit=1", "").await;
        page.json()["next_cursor"].as_str().unwrap().to_owned()
    };
    let mut tampered = cursor.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for path in [
        "/webhooks?limit=99999999999999999999999".to_owned(),
        "/webhooks?limit=-1".to_owned(),
        "/webhooks?limit=251".to_owned(),
        "/webhooks?cursor=%FF%FE".to_owned(),
        "/webhooks?status=%FF".to_owned(),
        w("/deliveries?cursor=AAAA"),
        w(&format!("/deliveries?cursor={cursor}")),
        w("/deliveries?since=99999999999999999999"),
        w("/deliveries?limit=1e3"),
        w("/stats?since=9999-99-99T99:99:99Z"),
        w("/stats?until=%00"),
    ] {
        let reply = as_(&api, ADMIN, "GET", &path, "").await;
        let status = reply.status.as_u16();
        assert!(
            (400..500).contains(&status),
            "{path}: {status} {}",
            reply.text
        );
        problem(&reply, status);
    }
    // A cursor edited into another well-formed position is read as that position (cursors
    // are opaque keyset positions, not signed; the owner filter still applies): never a
    // 500, and nothing another customer owns.
    for path in [
        format!("/webhooks?cursor={tampered}"),
        format!("/webhooks?cursor={cursor}x"),
    ] {
        let reply = as_(&api, ACME, "GET", &path, "").await;
        assert!(!reply.status.is_server_error(), "{path}: {}", reply.text);
        if reply.status.is_success() {
            assert_eq!(reply.json()["webhooks"], json!([]), "{path}");
        } else {
            problem(&reply, reply.status.as_u16());
        }
    }
    // Ids that no id can be: 404, not 500.
    for path in [
        "/webhooks/%FF%FE".to_owned(),
        format!("/webhooks/{}", "x".repeat(5000)),
        "/deliveries/%00".to_owned(),
    ] {
        problem(&as_(&api, ADMIN, "GET", &path, "").await, 404);
    }
}

/// 70: an `Idempotency-Key` replay returns the first response; the same key with another
/// body is 422 (more in `tests/server_limits.rs`).
#[tokio::test]
async fn case_70_idempotency_keys_replay_and_refuse_another_body() {
    let api = api();
    let post = |body: &'static str| {
        let request = Request::post("/webhooks")
            .header("authorization", format!("Bearer {ACME}"))
            .header("idempotency-key", "create-1")
            .header("content-type", "application/json")
            .body(Body::from(body))
            .unwrap();
        raw(&api, request)
    };
    let body = r#"{"url": "https://hooks.example.com/once", "events": ["*"], "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}"#;
    let first = post(body).await;
    assert_eq!(first.status, StatusCode::CREATED);
    let replay = post(body).await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert_eq!(replay.text, first.text);
    assert_eq!(
        replay.headers["content-type"],
        first.headers["content-type"]
    );
    let other = post(r#"{"url": "https://hooks.example.com/twice", "events": ["*"]}"#).await;
    assert_eq!(problem(&other, 422).as_deref(), Some("Idempotency-Key"));
    let listed = as_(&api, ACME, "GET", "/webhooks", "").await;
    assert_eq!(listed.json()["webhooks"].as_array().unwrap().len(), 1);
}
