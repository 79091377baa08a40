//! The receiver's inbox in the management API (issue #21 item 5): admin-only routes to list
//! entries, read one with its body and attempts, count them, and replay dead letters one by
//! one or by filter (with a dry run); customers get 403, a server without an inbox 404.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use bytes::Bytes;
use hookrelay::Secret;
use hookrelay::profile::Profile;
use hookrelay::receive::inbox::{Inbox, InboxWorker, MemoryInbox};
use hookrelay::receive::{Delivery, Receiver};
use hookrelay::retry::{RetryPolicy, UnixMillis};
use hookrelay::scheme::{Message, Scheme, XHub};
use hookrelay::send::{MemoryStore, Owner, Sender};
use hookrelay::server::{ManagementApi, Principal, Token};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

const ADMIN: &str = "admin-token";
const ACME: &str = "acme-token";

fn api(inbox: Option<Inbox<MemoryInbox>>) -> Router {
    let mut api = ManagementApi::new(Sender::new(MemoryStore::new()))
        .token(Token::new(ADMIN).unwrap(), Principal::Admin)
        .token(
            Token::new(ACME).unwrap(),
            Principal::Customer(Owner::new("acme").unwrap()),
        );
    if let Some(inbox) = inbox {
        api = api.inbox(inbox);
    }
    api.router()
}

async fn call(
    api: &Router,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = api.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (status, body)
}

/// An inbox holding three deliveries: one handled, two dead (`task.failed`, `task.other`).
async fn seeded() -> Inbox<MemoryInbox> {
    let inbox = Inbox::new(MemoryInbox::new());
    let secret = Secret::from_raw("hub-secret").unwrap();
    let receiver = Receiver::builder(Profile::TaskHub)
        .secret(secret.clone())
        .build()
        .unwrap();
    for kind in ["task.ok", "task.failed", "task.other"] {
        let body = format!(r#"{{"type":"{kind}","data":{{"html":"<script>alert(1)</script>"}}}}"#);
        let headers = XHub::new()
            .sign(&secret, &Message::new(body.as_bytes()))
            .unwrap()
            .to_header_map()
            .unwrap();
        assert_eq!(
            receiver
                .accept(&headers, Bytes::from(body), &inbox)
                .await
                .status,
            200
        );
    }
    let worker = InboxWorker::builder(inbox.clone())
        .policy(
            RetryPolicy::builder()
                .delays([Duration::from_secs(1)])
                .max_attempts(1)
                .build()
                .unwrap(),
        )
        .handler(|delivery: Delivery| async move {
            match delivery.event["type"].as_str() {
                Some("task.ok") => Ok(()),
                _ => Err("the database said no".to_owned()),
            }
        })
        .build()
        .unwrap();
    assert_eq!(worker.run_due(UnixMillis::now()).await.unwrap(), 3);
    inbox
}

#[tokio::test]
async fn an_admin_lists_reads_counts_and_replays_dead_letters() {
    let inbox = seeded().await;
    let api = api(Some(inbox.clone()));

    let (status, counts) = call(&api, "GET", "/inbox/counts", ADMIN, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (counts["done"].as_u64(), counts["dead"].as_u64()),
        (Some(1), Some(2))
    );

    let (status, page) = call(&api, "GET", "/inbox?status=dead&limit=1", ADMIN, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["entries"].as_array().unwrap().len(), 1);
    assert_eq!(
        page["entries"][0]["event_type"], "task.other",
        "newest first"
    );
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = call(
        &api,
        "GET",
        &format!("/inbox?status=dead&limit=1&cursor={cursor}"),
        ADMIN,
        "",
    )
    .await;
    assert_eq!(next["entries"][0]["event_type"], "task.failed");
    assert_eq!(next["next_cursor"], Value::Null);

    let id = next["entries"][0]["id"].as_str().unwrap().to_owned();
    let (status, detail) = call(&api, "GET", &format!("/inbox/{id}"), ADMIN, "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["entry"]["status"], "dead");
    assert_eq!(detail["entry"]["last_error"], "the database said no");
    assert!(
        detail["body"].as_str().unwrap().contains("<script>"),
        "the body as received"
    );
    assert_eq!(detail["attempt_log"].as_array().unwrap().len(), 1);
    assert_eq!(detail["attempt_log"][0]["error"], "the database said no");

    // Replay one; replaying it again is a conflict; an unknown id is 404, a bad one 400.
    let (status, _) = call(&api, "POST", &format!("/inbox/{id}/replay"), ADMIN, "").await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _) = call(&api, "POST", &format!("/inbox/{id}/replay"), ADMIN, "").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(
        call(&api, "POST", "/inbox/999/replay", ADMIN, "").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        call(&api, "GET", "/inbox/abc", ADMIN, "").await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        call(&api, "GET", "/inbox?status=lost", ADMIN, "").await.0,
        StatusCode::BAD_REQUEST
    );

    // By filter: a dry run counts, the real one replays, and only dead letters.
    let (status, counted) = call(&api, "POST", "/inbox/replay", ADMIN, r#"{"dry_run":true}"#).await;
    assert_eq!(
        (status, counted["replayed"].as_u64()),
        (StatusCode::OK, Some(1))
    );
    let (status, _) = call(
        &api,
        "POST",
        "/inbox/replay",
        ADMIN,
        r#"{"since":"yesterday"}"#,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, replayed) = call(
        &api,
        "POST",
        "/inbox/replay",
        ADMIN,
        r#"{"event_type":"task.other"}"#,
    )
    .await;
    assert_eq!(
        (status, replayed["replayed"].as_u64()),
        (StatusCode::ACCEPTED, Some(1))
    );
    assert_eq!(inbox.counts().await.unwrap().pending, 2);
}

#[tokio::test]
async fn customers_cannot_see_the_inbox_and_a_server_without_one_says_so() {
    let api_with = api(Some(seeded().await));
    for (method, path) in [
        ("GET", "/inbox"),
        ("GET", "/inbox/counts"),
        ("GET", "/inbox/1"),
        ("POST", "/inbox/1/replay"),
        ("POST", "/inbox/replay"),
    ] {
        assert_eq!(
            call(&api_with, method, path, ACME, "").await.0,
            StatusCode::FORBIDDEN,
            "{method} {path}"
        );
    }
    let api_without = api(None);
    assert_eq!(
        call(&api_without, "GET", "/inbox", ADMIN, "").await.0,
        StatusCode::NOT_FOUND
    );
}
