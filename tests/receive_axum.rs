//! The axum layer and extractors, driven with `tower::ServiceExt::oneshot`: every rejection
//! path and every profile (CHECKLIST C22–C31).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use hookrelay::profile::Profile;
use hookrelay::receive::axum::{Delivery, Webhook, WebhookLayer};
use hookrelay::receive::{Json, Receiver};
use hookrelay::scheme::{ApiKey, Message, RawBody, Scheme, StandardWebhooks, XHub};
use hookrelay::{FixedClock, Secret, Timestamp, Verifier};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tower::ServiceExt as _;

const NOW: i64 = 1_700_000_000;
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn sw_secret() -> Secret {
    Secret::from_base64(SW_SECRET).unwrap()
}

fn sw_router(runs: Arc<AtomicUsize>) -> Router {
    let receiver = Receiver::builder(Profile::StandardWebhooks)
        .secret(sw_secret())
        .clock(FixedClock(Timestamp::from_unix(NOW)))
        .max_body_bytes(4096)
        .build()
        .unwrap();
    Router::new()
        .route(
            "/hook",
            post(move |delivery: Delivery<Value>| async move {
                runs.fetch_add(1, Ordering::SeqCst);
                assert!(delivery.event.is_object());
                StatusCode::NO_CONTENT
            }),
        )
        .route_layer(WebhookLayer::new(receiver))
}

fn signed_request(id: &str, ts: i64, body: &'static [u8]) -> Request<Body> {
    let message = Message::new(body)
        .with_id(id)
        .with_timestamp(Timestamp::from_unix(ts));
    let headers = StandardWebhooks::new()
        .sign(&sw_secret(), &message)
        .unwrap();
    let mut request = Request::post("/hook").body(Body::from(body)).unwrap();
    *request.headers_mut() = headers.to_header_map().unwrap();
    request
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (
        status,
        response.into_body().collect().await.unwrap().to_bytes(),
    )
}

const BODY: &[u8] = br#"{"type":"task.created","data":{"taskId":"123"}}"#;

#[tokio::test]
async fn accepted_then_duplicate() {
    let runs = Arc::new(AtomicUsize::new(0));
    let router = sw_router(runs.clone());
    let (status, body) = call(&router, signed_request("msg_1", NOW, BODY)).await;
    // The handler's own 2xx is kept; a duplicate gets the profile's reply.
    assert_eq!(status, StatusCode::NO_CONTENT, "{body:?}");
    let (status, body) = call(&router, signed_request("msg_1", NOW, BODY)).await;
    assert_eq!(
        (status, body),
        (StatusCode::OK, Bytes::from_static(br#"{"received":true}"#))
    );
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn rejection_paths_and_one_generic_body() {
    let router = sw_router(Arc::new(AtomicUsize::new(0)));
    let generic = Bytes::from_static(br#"{"error":"invalid webhook"}"#);

    // C22: missing headers → 400.
    let mut missing = signed_request("msg_1", NOW, BODY);
    missing.headers_mut().remove("webhook-id");
    assert_eq!(
        call(&router, missing).await,
        (StatusCode::BAD_REQUEST, generic.clone())
    );

    // C23: duplicated header → 400.
    let mut doubled = signed_request("msg_1", NOW, BODY);
    doubled
        .headers_mut()
        .append("webhook-id", "msg_2".parse().unwrap());
    assert_eq!(call(&router, doubled).await.0, StatusCode::BAD_REQUEST);

    // C25: non-UTF-8 header bytes → 400.
    let mut binary = signed_request("msg_1", NOW, BODY);
    binary.headers_mut().insert(
        "webhook-id",
        http::HeaderValue::from_bytes(b"msg_\xff").unwrap(),
    );
    assert_eq!(call(&router, binary).await.0, StatusCode::BAD_REQUEST);

    // Bad signature and stale timestamp → 401, with the same body as bad format (C31).
    let mut forged = signed_request("msg_1", NOW, BODY);
    forged.headers_mut().insert(
        "webhook-signature",
        "v1,AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
            .parse()
            .unwrap(),
    );
    assert_eq!(
        call(&router, forged).await,
        (StatusCode::UNAUTHORIZED, generic.clone())
    );
    let stale = signed_request("msg_1", NOW - 301, BODY);
    assert_eq!(
        call(&router, stale).await,
        (StatusCode::UNAUTHORIZED, generic.clone())
    );

    // C29: a valid signature over invalid JSON → 422 from the extractor.
    let not_json = signed_request("msg_3", NOW, b"{not json");
    assert_eq!(
        call(&router, not_json).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // ...and the key was released, so a corrected retry is not mistaken for a duplicate.
    assert_eq!(
        call(&router, signed_request("msg_3", NOW, BODY)).await.0,
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_also_when_chunked() {
    let router = sw_router(Arc::new(AtomicUsize::new(0)));
    static BIG: [u8; 5000] = [b' '; 5000];
    // Declared length over the limit.
    let declared = signed_request("msg_1", NOW, &BIG);
    assert_eq!(
        call(&router, declared).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
    // Chunked: no Content-Length, a stream of chunks.
    let chunks = futures_stream(vec![
        Bytes::from_static(&BIG[..3000]),
        Bytes::from_static(&BIG[3000..]),
    ]);
    let mut request = Request::post("/hook").body(chunks).unwrap();
    *request.headers_mut() = signed_request("msg_1", NOW, &BIG).headers().clone();
    request.headers_mut().remove(http::header::CONTENT_LENGTH);
    assert_eq!(
        call(&router, request).await.0,
        StatusCode::PAYLOAD_TOO_LARGE
    );
}

/// A body that arrives in chunks with no known length.
fn futures_stream(chunks: Vec<Bytes>) -> Body {
    Body::new(Chunked(chunks.into_iter()))
}

struct Chunked(std::vec::IntoIter<Bytes>);

impl http_body::Body for Chunked {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, std::io::Error>>> {
        std::task::Poll::Ready(self.0.next().map(|chunk| Ok(http_body::Frame::data(chunk))))
    }
}

#[tokio::test]
async fn handler_failure_is_retried_not_deduplicated() {
    let runs = Arc::new(AtomicUsize::new(0));
    let counter = runs.clone();
    let receiver = Receiver::builder(Profile::StandardWebhooks)
        .secret(sw_secret())
        .clock(FixedClock(Timestamp::from_unix(NOW)))
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/hook",
            post(move |_: Delivery<Value>| async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    StatusCode::OK
                }
            }),
        )
        .route_layer(WebhookLayer::new(receiver));
    assert_eq!(
        call(&router, signed_request("msg_1", NOW, BODY)).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    assert_eq!(
        call(&router, signed_request("msg_1", NOW, BODY)).await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&router, signed_request("msg_1", NOW, BODY)).await.0,
        StatusCode::OK
    );
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn profile_replies_fill_empty_success_bodies() {
    // 001: {"status":"ok"} and the challenge handshake.
    let secret = Secret::from_raw("your_webhook_secret").unwrap();
    let receiver = Receiver::builder(Profile::ProposalGenerator)
        .secret(secret.clone())
        .build()
        .unwrap();
    let router = Router::new()
        .route("/pg", post(|_: Delivery<Value>| async { StatusCode::OK }))
        .route_layer(WebhookLayer::new(receiver));
    let pg = |body: &'static [u8]| {
        let mut request = Request::post("/pg").body(Body::from(body)).unwrap();
        *request.headers_mut() = RawBody
            .sign(&secret, &Message::new(body))
            .unwrap()
            .to_header_map()
            .unwrap();
        request
    };
    let event = br#"{"id":"evt_1","type":"job.started","timestamp":"2024-01-15T10:31:00Z","data":{"job_id":"job_123","status":"processing"}}"#;
    assert_eq!(
        call(&router, pg(event)).await,
        (StatusCode::OK, Bytes::from_static(br#"{"status":"ok"}"#))
    );
    assert_eq!(
        call(&router, pg(event)).await,
        (
            StatusCode::OK,
            Bytes::from_static(br#"{"status":"already_processed"}"#)
        )
    );
    assert_eq!(
        call(
            &router,
            pg(br#"{"type":"webhook.verify","challenge":"xyz"}"#)
        )
        .await,
        (
            StatusCode::OK,
            Bytes::from_static(br#"{"challenge":"xyz"}"#)
        )
    );

    // 003: {"result":true,"error":null}, and {"result":false,...} with 401.
    let secret = Secret::from_raw("your-secret-key").unwrap();
    let key = ApiKey::new("your-api-key").unwrap();
    let receiver = Receiver::builder(Profile::TaskOn)
        .secret(secret.clone())
        .api_key(key.clone())
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/taskon",
            post(|_: Delivery<Value>| async { StatusCode::OK }),
        )
        .route_layer(WebhookLayer::new(receiver));
    let body: &[u8] = br#"{"task_id":222222,"reward_type":"GTCPoints","reward_amount":"100","point_name":"PointNameA","user_id":11111,"evm_address":["0xaaaaaaaaa"],"email":"user@example.com","timestamp":1758251308}"#;
    let headers = hookrelay::scheme::CanonicalJson::new(key)
        .sign(&secret, &Message::new(body))
        .unwrap();
    let mut request = Request::post("/taskon").body(Body::from(body)).unwrap();
    *request.headers_mut() = headers.to_header_map().unwrap();
    assert_eq!(
        call(&router, request).await,
        (
            StatusCode::OK,
            Bytes::from_static(br#"{"result":true,"error":null}"#)
        )
    );
    let mut wrong = Request::post("/taskon").body(Body::from(body)).unwrap();
    *wrong.headers_mut() = headers.to_header_map().unwrap();
    wrong
        .headers_mut()
        .insert("X-API-Key", "nope".parse().unwrap());
    let (status, reply) = call(&router, wrong).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        serde_json::from_slice::<Value>(&reply).unwrap()["result"],
        false
    );
}

#[tokio::test]
async fn standalone_webhook_extractor_uses_the_verifier_in_state() {
    #[derive(serde::Deserialize)]
    struct Push {
        #[serde(rename = "ref")]
        git_ref: String,
    }
    let secret = Secret::from_raw("github-secret").unwrap();
    let verifier = Verifier::builder(XHub::github())
        .secret(secret.clone())
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/gh",
            post(|webhook: Webhook<Json<Push>>| async move { webhook.event.0.git_ref }),
        )
        .with_state(verifier);
    let body: &[u8] = br#"{"ref":"refs/heads/main"}"#;
    let mut request = Request::post("/gh").body(Body::from(body)).unwrap();
    *request.headers_mut() = XHub::github()
        .sign(&secret, &Message::new(body))
        .unwrap()
        .to_header_map()
        .unwrap();
    assert_eq!(
        call(&router, request).await,
        (StatusCode::OK, Bytes::from_static(b"refs/heads/main"))
    );

    let unsigned = Request::post("/gh").body(Body::from(body)).unwrap();
    assert_eq!(call(&router, unsigned).await.0, StatusCode::BAD_REQUEST);
    let mut wrong_shape = Request::post("/gh").body(Body::from(&b"{}"[..])).unwrap();
    *wrong_shape.headers_mut() = XHub::github()
        .sign(&secret, &Message::new(b"{}"))
        .unwrap()
        .to_header_map()
        .unwrap();
    assert_eq!(
        call(&router, wrong_shape).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
}

#[tokio::test]
async fn delivery_without_the_layer_is_a_500_never_unverified() {
    let router: Router =
        Router::new().route("/x", post(|_: Delivery<Value>| async { StatusCode::OK }));
    let request = Request::post("/x").body(Body::from(BODY)).unwrap();
    assert_eq!(
        call(&router, request).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
}

#[tokio::test]
async fn seed_events_arrive_typed_and_unknown_types_still_succeed() {
    use hookrelay::event::{TaskLinkEnvelope, TaskLinkEvent};
    use hookrelay::scheme::IdBody;

    let secret = Secret::from_raw("tasklink-secret").unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    let receiver = Receiver::builder(Profile::TaskLink)
        .secret(secret.clone())
        .build()
        .unwrap();
    let router = Router::new()
        .route(
            "/tasklink",
            post(
                move |delivery: Delivery<TaskLinkEnvelope<TaskLinkEvent>>| async move {
                    let known = !matches!(delivery.event.data, TaskLinkEvent::Unknown { .. });
                    log.lock()
                        .unwrap()
                        .push((delivery.inbound.event_type().map(str::to_owned), known));
                    StatusCode::OK
                },
            ),
        )
        .route_layer(WebhookLayer::new(receiver));

    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tasklink");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert_eq!(files.len(), 13);
    let mut bodies: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    bodies.push(br#"{"event":"invoice.paid","id":"evt_new","timestamp":"2026-01-01T00:00:00.000Z","data":{"invoice":{"id":"inv_1"}}}"#.to_vec());

    for body in &bodies {
        let id = serde_json::from_slice::<Value>(body).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let headers = IdBody
            .sign(&secret, &Message::new(body).with_id(&id))
            .unwrap();
        let mut request = Request::post("/tasklink")
            .body(Body::from(body.clone()))
            .unwrap();
        *request.headers_mut() = headers.to_header_map().unwrap();
        assert_eq!(call(&router, request).await.0, StatusCode::OK, "{id}");
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 14);
    assert!(seen[..13].iter().all(|(_, known)| *known), "{seen:?}");
    assert_eq!(seen[13], (Some("invoice.paid".to_owned()), false));
}
