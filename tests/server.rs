//! The management API through its router, in process (`tower::ServiceExt::oneshot`), on
//! `MemoryStore` and on `SqliteStore` (a fresh temporary file each).

use axum::Router;
use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

use hookrelay::profile::Profile;
use hookrelay::send::{DeliveryStore, MemoryStore, Owner, Sender, SqliteStore};
use hookrelay::server::{ManagementApi, Principal, Token};

const ADMIN: &str = "admin-token";
const ACME: &str = "acme-token";
const GLOBEX: &str = "globex-token";

fn api<S: DeliveryStore>(sender: Sender<S>, profile: Profile) -> Router {
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
        .default_profile(profile)
        .router()
}

struct Reply {
    status: StatusCode,
    content_type: String,
    body: Value,
}

async fn call(api: &Router, method: &str, path: &str, token: Option<&str>, body: &str) -> Reply {
    let mut request = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
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

/// Asserts a problem+json reply with this status, and returns the field its first error names.
fn problem(reply: &Reply, status: u16) -> Option<String> {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(reply.content_type, "application/problem+json");
    assert_eq!(reply.body["status"], status);
    assert!(reply.body["title"].is_string());
    assert!(reply.body["detail"].is_string());
    reply.body["errors"][0]["field"].as_str().map(str::to_owned)
}

fn temp_db() -> String {
    format!(
        "{}/hookrelay-server-{}-{}.db",
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).display(),
        std::process::id(),
        hookrelay::send::MessageId::generate()
    )
}

/// 001's registration, update, list and delete, bodies as the document writes them.
async fn seed_001_lifecycle(api: Router) {
    let registration = r#"{
  "url": "https://your-server.com/webhook",
  "events": ["job.completed", "job.failed"],
  "secret": "your_webhook_secret"
}"#;
    let created = call(&api, "POST", "/webhooks", Some(ACME), registration).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    assert_eq!(created.content_type, "application/json");
    let id = created.body["id"].as_str().unwrap().to_owned();
    assert_eq!(created.body["url"], "https://your-server.com/webhook");
    assert_eq!(
        created.body["events"],
        json!(["job.completed", "job.failed"])
    );
    // Without a transport (`ManagementApi::transport`) the API cannot run the handshake: a
    // Proposal Generator endpoint waits for it (tests/server_actions.rs runs it).
    assert_eq!(created.body["status"], "pending_verification");
    assert_eq!(created.body["testMode"], false);
    let created_at = created.body["created_at"].as_str().unwrap();
    assert!(
        created_at.ends_with('Z') && created_at.len() == 24,
        "{created_at}"
    );
    assert_eq!(created.body["profile"], "proposal-generator");
    assert!(
        created.body.get("secret").is_none(),
        "a given secret is not echoed"
    );

    let listed = call(&api, "GET", "/webhooks", Some(ACME), "").await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["webhooks"][0]["id"], id.as_str());
    assert_eq!(listed.body["next_cursor"], Value::Null);

    let update = r#"{
  "url": "https://new-url.com/webhook",
  "events": ["job.completed", "job.failed"]
}"#;
    let path = format!("/webhooks/{id}");
    let updated = call(&api, "PUT", &path, Some(ACME), update).await;
    assert_eq!(updated.status, StatusCode::OK, "{}", updated.body);
    assert_eq!(updated.body["url"], "https://new-url.com/webhook");
    let changed_name = call(&api, "PUT", &path, Some(ACME), r#"{"name": "jobs"}"#).await;
    assert_eq!(changed_name.body["name"], "jobs");
    assert_eq!(
        changed_name.body["url"], "https://new-url.com/webhook",
        "kept"
    );

    let shown = call(&api, "GET", &path, Some(ACME), "").await;
    assert_eq!(shown.body["events"], json!(["job.completed", "job.failed"]));

    let deleted = call(&api, "DELETE", &path, Some(ACME), "").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    problem(&call(&api, "GET", &path, Some(ACME), "").await, 404);
}

/// Without a secret one is generated, and shown once.
async fn generated_secret_shown_once(api: Router) {
    let body = r#"{"url": "https://example.com/hook", "events": ["*"], "name": "all"}"#;
    let created = call(&api, "POST", "/webhooks", Some(ADMIN), body).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"));
    hookrelay::Secret::from_base64(secret).unwrap();
    let id = created.body["id"].as_str().unwrap();
    let shown = call(&api, "GET", &format!("/webhooks/{id}"), Some(ADMIN), "").await;
    assert!(shown.body.get("secret").is_none());

    let rotate = format!("/webhooks/{id}/rotate-secret");
    let rotated = call(&api, "POST", &rotate, Some(ADMIN), "").await;
    assert_eq!(rotated.status, StatusCode::OK, "{}", rotated.body);
    assert_ne!(rotated.body["secret"].as_str().unwrap(), secret);
    let too_long = r#"{"grace_period_seconds": 604801}"#;
    let refused = call(&api, "POST", &rotate, Some(ADMIN), too_long).await;
    assert_eq!(
        problem(&refused, 422).as_deref(),
        Some("grace_period_seconds")
    );
}

async fn authentication(api: Router) {
    problem(&call(&api, "GET", "/webhooks", None, "").await, 401);
    problem(
        &call(&api, "GET", "/webhooks", Some("wrong"), "").await,
        401,
    );
    let body = r#"{"url": "https://example.com/hook", "events": ["*"]}"#;
    problem(
        &call(&api, "POST", "/webhooks", Some("admin-toke"), body).await,
        401,
    );
    let listed = call(&api, "GET", "/webhooks", Some(ADMIN), "").await;
    assert_eq!(listed.body["webhooks"], json!([]), "nothing was created");
    problem(&call(&api, "GET", "/nowhere", Some(ADMIN), "").await, 404);
    problem(
        &call(&api, "PATCH", "/webhooks", Some(ADMIN), "").await,
        405,
    );
    let health = call(&api, "GET", "/health", None, "").await;
    assert_eq!(health.status, StatusCode::OK);
}

async fn customers_are_apart(api: Router) {
    let body = r#"{"url": "https://acme.example/hook", "events": ["job.*"]}"#;
    let created = call(&api, "POST", "/webhooks", Some(ACME), body).await;
    let id = created.body["id"].as_str().unwrap().to_owned();
    let path = format!("/webhooks/{id}");

    problem(&call(&api, "GET", &path, Some(GLOBEX), "").await, 404);
    let change = r#"{"url": "https://evil.example/hook"}"#;
    problem(&call(&api, "PUT", &path, Some(GLOBEX), change).await, 404);
    problem(&call(&api, "DELETE", &path, Some(GLOBEX), "").await, 404);
    for action in ["pause", "resume", "rotate-secret"] {
        let reply = call(&api, "POST", &format!("{path}/{action}"), Some(GLOBEX), "").await;
        problem(&reply, 404);
    }
    let missing = call(&api, "GET", "/webhooks/ep_nope", Some(GLOBEX), "").await;
    let foreign = call(&api, "GET", &path, Some(GLOBEX), "").await;
    assert_eq!(missing.body, foreign.body, "a foreign id looks missing");
    let theirs = call(&api, "GET", "/webhooks", Some(GLOBEX), "").await;
    assert_eq!(theirs.body["webhooks"], json!([]));

    let still = call(&api, "GET", &path, Some(ACME), "").await;
    assert_eq!(still.body["url"], "https://acme.example/hook");
    let all = call(&api, "GET", "/webhooks", Some(ADMIN), "").await;
    assert_eq!(all.body["webhooks"].as_array().unwrap().len(), 1);

    let paused = call(&api, "POST", &format!("{path}/pause"), Some(ACME), "").await;
    assert_eq!(paused.body["status"], "paused");
    let resumed = call(&api, "POST", &format!("{path}/resume"), Some(ACME), "").await;
    assert_eq!(resumed.body["status"], "active");
}

async fn validation_names_the_field(api: Router) {
    let post = |body: &'static str| {
        let api = api.clone();
        async move { call(&api, "POST", "/webhooks", Some(ADMIN), body).await }
    };
    let bad_url = post(r#"{"url": "not a url", "events": ["*"]}"#).await;
    assert_eq!(problem(&bad_url, 422).as_deref(), Some("url"));
    let ftp = post(r#"{"url": "ftp://example.com/", "events": ["*"]}"#).await;
    assert_eq!(problem(&ftp, 422).as_deref(), Some("url"));
    let malformed = post(r#"{"url": "https://example.com/""#).await;
    problem(&malformed, 400);
    let wrong_type = post(r#"{"url": 5, "events": ["*"]}"#).await;
    assert_eq!(problem(&wrong_type, 422).as_deref(), Some("url"));
    let missing = post(r#"{"url": "https://example.com/"}"#).await;
    assert_eq!(problem(&missing, 422).as_deref(), Some("events"));
    let bad_event = post(r#"{"url": "https://example.com/", "events": ["a", 7]}"#).await;
    assert_eq!(problem(&bad_event, 422).as_deref(), Some("events[1]"));
    let profile = post(r#"{"url": "https://example.com/", "events": ["*"], "profile": "x"}"#).await;
    assert_eq!(problem(&profile, 422).as_deref(), Some("profile"));
    let reserved = post(
        r#"{"url": "https://example.com/", "events": ["*"], "headers": {"webhook-signature": "x"}}"#,
    )
    .await;
    assert_eq!(problem(&reserved, 422).as_deref(), Some("headers"));
    let huge = format!(
        r#"{{"url": "https://example.com/", "events": ["*"], "name": "{}"}}"#,
        "x".repeat(1 << 20)
    );
    let too_big = call(&api, "POST", "/webhooks", Some(ADMIN), &huge).await;
    problem(&too_big, 413);
    let bad_limit = call(&api, "GET", "/webhooks?limit=0", Some(ADMIN), "").await;
    assert_eq!(problem(&bad_limit, 400).as_deref(), Some("limit"));
    let bad_cursor = call(&api, "GET", "/webhooks?cursor=zzz", Some(ADMIN), "").await;
    assert_eq!(problem(&bad_cursor, 400).as_deref(), Some("cursor"));
    let listed = call(&api, "GET", "/webhooks", Some(ADMIN), "").await;
    assert_eq!(listed.body["webhooks"], json!([]), "nothing was created");
}

async fn pages_follow_next_cursor(api: Router) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let body = format!(r#"{{"url": "https://example.com/{i}", "events": ["*"]}}"#);
        let created = call(&api, "POST", "/webhooks", Some(ACME), &body).await;
        ids.push(created.body["id"].as_str().unwrap().to_owned());
    }
    let other = r#"{"url": "https://example.com/other", "events": ["*"]}"#;
    call(&api, "POST", "/webhooks", Some(GLOBEX), other).await;
    ids.sort();
    let mut seen = Vec::new();
    let mut path = "/webhooks?limit=2".to_owned();
    for _ in 0..10 {
        let page = call(&api, "GET", &path, Some(ACME), "").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let webhooks = page.body["webhooks"].as_array().unwrap();
        assert!(webhooks.len() <= 2);
        seen.extend(
            webhooks
                .iter()
                .map(|w| w["id"].as_str().unwrap().to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/webhooks?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let paused = call(&api, "GET", "/webhooks?status=paused", Some(ACME), "").await;
    assert_eq!(paused.body["webhooks"], json!([]));
}

/// Events published through the API, read and retried through each customer's eyes.
async fn deliveries_through_customers(api: Router) {
    let body = r#"{"url": "https://acme.example/hook", "events": ["job.*"]}"#;
    let created = call(&api, "POST", "/webhooks", Some(ACME), body).await;
    let webhook = created.body["id"].as_str().unwrap().to_owned();
    let event = r#"{"type": "job.completed", "data": {"jobId": "j1"}}"#;
    problem(&call(&api, "POST", "/events", Some(ACME), event).await, 403);
    for i in 0..3 {
        let event =
            format!(r#"{{"type": "job.completed", "data": {{"n": {i}}}, "id": "evt_{i}"}}"#);
        let published = call(&api, "POST", "/events", Some(ADMIN), &event).await;
        assert_eq!(published.status, StatusCode::ACCEPTED, "{}", published.body);
        assert!(published.body["id"].is_string());
    }
    let missing_type = call(&api, "POST", "/events", Some(ADMIN), r#"{"data": {}}"#).await;
    assert_eq!(problem(&missing_type, 422).as_deref(), Some("type"));

    let log = format!("/webhooks/{webhook}/deliveries");
    let mut seen = Vec::new();
    let mut path = format!("{log}?limit=2");
    for _ in 0..5 {
        let page = call(&api, "GET", &path, Some(ACME), "").await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        for delivery in page.body["deliveries"].as_array().unwrap() {
            assert_eq!(delivery["webhook_id"], webhook.as_str());
            assert_eq!(delivery["status"], "pending");
            assert!(delivery["created_at"].as_str().unwrap().ends_with('Z'));
            seen.push(delivery["event_id"].as_str().unwrap().to_owned());
        }
        match page.body["next_cursor"].as_str() {
            Some(cursor) => path = format!("{log}?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, ["evt_2", "evt_1", "evt_0"], "newest first, each once");
    let none = call(&api, "GET", &format!("{log}?status=dead"), Some(ACME), "").await;
    assert_eq!(none.body["deliveries"], json!([]));
    let bad = call(
        &api,
        "GET",
        &format!("{log}?since=yesterday"),
        Some(ACME),
        "",
    )
    .await;
    assert_eq!(problem(&bad, 400).as_deref(), Some("since"));
    problem(&call(&api, "GET", &log, Some(GLOBEX), "").await, 404);

    let page = call(&api, "GET", &log, Some(ADMIN), "").await;
    let delivery = page.body["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/deliveries/{delivery}");
    let shown = call(&api, "GET", &path, Some(ACME), "").await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.body);
    assert_eq!(shown.body["id"], delivery.as_str());
    assert_eq!(shown.body["attempt_log"], json!([]));
    let foreign = call(&api, "GET", &path, Some(GLOBEX), "").await;
    let missing = call(&api, "GET", "/deliveries/dlv_nope", Some(GLOBEX), "").await;
    problem(&foreign, 404);
    assert_eq!(
        foreign.body, missing.body,
        "a foreign delivery looks missing"
    );
    let retry = format!("{path}/retry");
    problem(&call(&api, "POST", &retry, Some(GLOBEX), "").await, 404);
    let retried = call(&api, "POST", &retry, Some(ACME), "").await;
    assert_eq!(retried.status, StatusCode::ACCEPTED, "{}", retried.body);

    let dry = r#"{"dry_run": true, "status": ["pending"]}"#;
    let theirs = call(&api, "POST", "/deliveries/retry", Some(GLOBEX), dry).await;
    assert_eq!(theirs.body, json!({"matched": 0, "queued": 0}));
    let ours = call(&api, "POST", "/deliveries/retry", Some(ACME), dry).await;
    assert_eq!(ours.status, StatusCode::OK, "{}", ours.body);
    assert_eq!(ours.body, json!({"matched": 3, "queued": 0}));
    let scoped = format!(r#"{{"dry_run": true, "webhook_id": "{webhook}"}}"#);
    let foreign = call(&api, "POST", "/deliveries/retry", Some(GLOBEX), &scoped).await;
    problem(&foreign, 404);
    let stats = format!("/webhooks/{webhook}/stats?since=2000-01-01T00:00:00Z");
    let numbers = call(&api, "GET", &stats, Some(ACME), "").await;
    assert_eq!(numbers.status, StatusCode::OK, "{}", numbers.body);
    assert_eq!(numbers.body["deliveries"]["pending"], 3);
    assert_eq!(numbers.body["since"], "2000-01-01T00:00:00.000Z");
    problem(&call(&api, "GET", &stats, Some(GLOBEX), "").await, 404);
    let bad_status = r#"{"status": ["nope"]}"#;
    let refused = call(&api, "POST", "/deliveries/retry", Some(ACME), bad_status).await;
    assert_eq!(problem(&refused, 422).as_deref(), Some("status[0]"));
}

macro_rules! on_stores {
    ($name:ident, $scenario:ident) => {
        on_stores!($name, $scenario, Profile::StandardWebhooks);
    };
    ($name:ident, $scenario:ident, $profile:expr) => {
        #[tokio::test]
        async fn $name() {
            $scenario(api(Sender::new(MemoryStore::new()), $profile)).await;
            let path = temp_db();
            let store = SqliteStore::connect(&path).await.unwrap();
            $scenario(api(Sender::new(store), $profile)).await;
            let _ = std::fs::remove_file(&path);
        }
    };
}

on_stores!(
    registration_update_list_delete_as_001_writes_them,
    seed_001_lifecycle,
    Profile::ProposalGenerator
);
on_stores!(
    generated_secrets_are_shown_once,
    generated_secret_shown_once
);
on_stores!(missing_or_wrong_tokens_get_401, authentication);
on_stores!(customers_see_only_their_endpoints, customers_are_apart);
on_stores!(validation_errors_name_the_field, validation_names_the_field);
on_stores!(listing_pages_by_next_cursor, pages_follow_next_cursor);
on_stores!(
    deliveries_are_read_and_retried_per_customer,
    deliveries_through_customers
);

/// An app's own resolver is asked when no table token matches, and nests under its prefix.
#[tokio::test]
async fn an_apps_resolver_decides_and_the_router_nests() {
    struct FromGateway;
    impl hookrelay::server::PrincipalResolver for FromGateway {
        fn resolve(&self, parts: &http::request::Parts) -> Option<Principal> {
            let customer = parts.headers.get("x-customer")?.to_str().ok()?;
            Owner::new(customer).ok().map(Principal::Customer)
        }
    }
    let api = ManagementApi::new(Sender::new(MemoryStore::new()))
        .resolver(FromGateway)
        .router();
    let app = Router::new().nest("/api", api);
    let request = |customer: Option<&str>| {
        let mut request = Request::builder().uri("/api/webhooks");
        if let Some(customer) = customer {
            request = request.header("x-customer", customer);
        }
        request.body(Body::empty()).unwrap()
    };
    let listed = app.clone().oneshot(request(Some("acme"))).await.unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let refused = app.clone().oneshot(request(None)).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let nowhere = Request::builder()
        .uri("/api/nowhere")
        .header("x-customer", "acme")
        .body(Body::empty())
        .unwrap();
    let missing = app.oneshot(nowhere).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        missing.headers()["content-type"],
        "application/problem+json"
    );
}
