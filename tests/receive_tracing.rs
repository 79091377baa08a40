//! Feature `tracing`: the reply to a refused request stays generic while the reason is
//! logged, at the documented level, without header values or secrets; store failures the
//! sender never sees are logged too. Valid requests are Standard Webhooks' published example.

mod common;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use common::{UNREACHABLE, UnreachableStore};
use hookrelay::profile::Profile;
use hookrelay::receive::axum::{Delivery, WebhookLayer};
use hookrelay::receive::{IdempotencyStore, Json, MemoryIdempotencyStore, Receiver};
use hookrelay::{FixedClock, Secret, Timestamp};
use http_body_util::BodyExt as _;
use tower::ServiceExt as _;
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata, Subscriber, span};

// Standard Webhooks' published example.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
const TIMESTAMP: i64 = 1_614_265_330;
const BODY: &[u8] = br#"{"test": 2432232314}"#;
const SIGNATURE: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

/// One event as a subscriber saw it.
#[derive(Debug, Clone)]
struct Captured {
    level: Level,
    target: String,
    fields: BTreeMap<String, String>,
}

impl Captured {
    fn field(&self, name: &str) -> &str {
        self.fields.get(name).map_or("", String::as_str)
    }

    fn text(&self) -> String {
        format!("{:?}", self.fields)
    }
}

/// Records every event on this thread.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<Captured>>>);

impl Capture {
    fn take(&self) -> Vec<Captured> {
        std::mem::take(&mut self.0.lock().unwrap())
    }
}

struct Fields<'a>(&'a mut BTreeMap<String, String>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = BTreeMap::new();
        event.record(&mut Fields(&mut fields));
        self.0.lock().unwrap().push(Captured {
            level: *event.metadata().level(),
            target: event.metadata().target().to_owned(),
            fields,
        });
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

/// The one event logged since the last take.
fn single(capture: &Capture) -> Captured {
    let mut events = capture.take();
    assert_eq!(events.len(), 1, "{events:?}");
    events.remove(0)
}

/// Installs a capturing subscriber for the rest of the (current-thread) test.
fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let capture = Capture::default();
    let guard = tracing::subscriber::set_default(capture.clone());
    (capture, guard)
}

fn receiver<S: IdempotencyStore>(store: S, now: i64) -> Receiver<S> {
    Receiver::builder(Profile::StandardWebhooks)
        .secret(Secret::from_base64(SECRET).unwrap())
        .clock(FixedClock(Timestamp::from_unix(now)))
        .store(store)
        .build()
        .unwrap()
}

fn router<S: IdempotencyStore>(receiver: Receiver<S>) -> Router {
    Router::new()
        .route(
            "/hook",
            post(|delivery: Delivery| async move {
                assert_eq!(delivery.event["test"], 2_432_232_314_u64);
                StatusCode::OK
            }),
        )
        .route(
            "/busy",
            post(|_: Delivery| async { StatusCode::SERVICE_UNAVAILABLE }),
        )
        .route(
            "/array",
            post(|_: Delivery<Json<Vec<u8>>>| async { StatusCode::OK }),
        )
        .route_layer(WebhookLayer::new(receiver))
}

fn request(path: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut request = Request::post(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Body::from(BODY)).unwrap()
}

fn published(path: &str) -> Request<Body> {
    request(
        path,
        &[
            ("webhook-id", ID),
            ("webhook-timestamp", "1614265330"),
            ("webhook-signature", SIGNATURE),
        ],
    )
}

async fn call(router: &Router, request: Request<Body>) -> (StatusCode, Bytes) {
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, body)
}

#[tokio::test]
async fn refusals_reply_generically_and_log_the_reason() {
    let (capture, _guard) = capture();
    let forged = SIGNATURE.replace("OE=", "OA=");
    let cases: [(&str, Request<Body>, i64, StatusCode, &str); 3] = [
        (
            "forged signature",
            request(
                "/hook",
                &[
                    ("webhook-id", ID),
                    ("webhook-timestamp", "1614265330"),
                    ("webhook-signature", &forged),
                ],
            ),
            TIMESTAMP,
            StatusCode::UNAUTHORIZED,
            "no signature matches",
        ),
        (
            "stale timestamp",
            published("/hook"),
            TIMESTAMP + 3600,
            StatusCode::UNAUTHORIZED,
            "timestamp is older than the tolerance",
        ),
        (
            "missing id",
            request(
                "/hook",
                &[
                    ("webhook-timestamp", "1614265330"),
                    ("webhook-signature", SIGNATURE),
                ],
            ),
            TIMESTAMP,
            StatusCode::BAD_REQUEST,
            "missing header `webhook-id`",
        ),
    ];
    let mut bodies = Vec::new();
    for (case, request, now, status, reason) in cases {
        let router = router(receiver(MemoryIdempotencyStore::default(), now));
        let (got, body) = call(&router, request).await;
        assert_eq!(got, status, "{case}");
        bodies.push(body);

        let events = capture.take();
        assert_eq!(events.len(), 1, "{case}: {events:?}");
        let event = &events[0];
        assert_eq!(event.level, Level::INFO, "{case}");
        assert_eq!(event.target, "hookrelay::receive", "{case}");
        assert_eq!(event.field("profile"), "standard-webhooks", "{case}");
        assert_eq!(event.field("status"), status.as_u16().to_string(), "{case}");
        assert_eq!(event.field("reason"), reason, "{case}");
        let text = event.text();
        for secret in [
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "g0hM9SsE",
            &forged[3..],
            ID,
        ] {
            assert!(!text.contains(secret), "{case}: {text}");
        }
    }
    // The sender learns nothing from the reply: every reason reads the same.
    assert!(bodies.iter().all(|body| body == &bodies[0]), "{bodies:?}");
}

#[tokio::test]
async fn duplicates_and_unparseable_payloads_are_logged() {
    let (capture, _guard) = capture();
    let routes = router(receiver(MemoryIdempotencyStore::default(), TIMESTAMP));

    assert_eq!(call(&routes, published("/hook")).await.0, StatusCode::OK);
    assert!(
        capture.take().is_empty(),
        "an accepted delivery logs nothing"
    );

    assert_eq!(call(&routes, published("/hook")).await.0, StatusCode::OK);
    let event = single(&capture);
    assert_eq!(event.level, Level::DEBUG);
    assert_eq!(event.field("key"), format!("standard-webhooks:{ID}"));

    // Signed, but not the shape the handler asked for: 422 with the serde detail in the log,
    // then the layer's note that the claim was released (a fixed handler gets the retry).
    let fresh = receiver(MemoryIdempotencyStore::default(), TIMESTAMP);
    let (status, _) = call(&router(fresh), published("/array")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let events = capture.take();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].level, Level::INFO);
    assert_eq!(events[0].field("status"), "422");
    assert!(
        events[0]
            .field("reason")
            .starts_with("payload does not parse: invalid type: map"),
        "{events:?}"
    );
    assert_eq!(events[1].level, Level::DEBUG);
    assert_eq!(events[1].field("status"), "422");
}

#[tokio::test]
async fn store_failures_are_logged_with_their_cause() {
    let (capture, _guard) = capture();

    // A claim the store cannot answer: 503 (the sender retries), an ERROR with the cause.
    let down = router(receiver(UnreachableStore { claims: false }, TIMESTAMP));
    assert_eq!(
        call(&down, published("/hook")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let event = single(&capture);
    assert_eq!(event.level, Level::ERROR);
    assert_eq!(event.field("status"), "503");
    assert!(event.field("error").contains(UNREACHABLE));

    // Processed, but not recorded: still 2xx (at-least-once), a WARN the operator can see.
    let flaky = router(receiver(UnreachableStore { claims: true }, TIMESTAMP));
    assert_eq!(call(&flaky, published("/hook")).await.0, StatusCode::OK);
    let event = single(&capture);
    assert_eq!(event.level, Level::WARN);
    assert!(event.field("error").contains(UNREACHABLE));
    assert_eq!(event.field("key"), format!("standard-webhooks:{ID}"));
}

#[tokio::test]
async fn a_route_missing_the_layer_is_an_error_without_a_profile() {
    let (capture, _guard) = capture();
    let unwired = Router::new().route("/hook", post(|_: Delivery| async { StatusCode::OK }));
    assert_eq!(
        call(&unwired, published("/hook")).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    let event = single(&capture);
    assert_eq!(event.level, Level::ERROR);
    assert_eq!(event.field("profile"), "none");
}

#[tokio::test]
async fn a_full_memory_store_warns_when_it_forgets() {
    use hookrelay::receive::{Claim, IdempotencyKey, IdempotencyStore as _, Retention};

    let (capture, _guard) = capture();
    let store = MemoryIdempotencyStore::with_capacity(1);
    let (now, retention) = (Timestamp::from_unix(TIMESTAMP), Retention::default());
    let (first, second) = (IdempotencyKey::new("first"), IdempotencyKey::new("second"));
    assert_eq!(
        store.claim(&first, now, retention).await,
        Ok(Claim::Acquired)
    );
    store.complete(&first, now, retention).await.unwrap();
    assert!(capture.take().is_empty());

    assert_eq!(
        store.claim(&second, now, retention).await,
        Ok(Claim::Acquired)
    );
    let event = single(&capture);
    assert_eq!(event.level, Level::WARN);
    assert_eq!(event.field("count"), "1");
    assert_eq!(event.field("capacity"), "1");
}

#[tokio::test]
async fn a_handler_failure_is_logged_with_its_status() {
    let (capture, _guard) = capture();
    let routes = router(receiver(MemoryIdempotencyStore::default(), TIMESTAMP));
    let (status, _) = call(&routes, published("/busy")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let event = single(&capture);
    assert_eq!(event.level, Level::DEBUG);
    assert_eq!(event.field("status"), "503");
    // The claim was released: the sender's retry reaches the handler again.
    assert_eq!(
        call(&routes, published("/busy")).await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
}
