//! `Idempotency-Key` on every `POST` route: the [`ReplayStore`] that remembers first
//! responses (in memory here; PostgreSQL's shared table with features `postgres` and
//! `server`), and the layer that replays them.
//!
//! A `POST` carrying `Idempotency-Key` (1 to 255 visible ASCII characters; anything else is
//! 400 naming the header) is remembered per principal — an admin, or one customer — for
//! 24 hours with a fingerprint of its method, path, query and body:
//!
//! - the first request runs, and its response (status, `Content-Type`, body) is kept;
//! - a repeat with the same key and the same request answers that response again, with
//!   `Idempotent-Replayed: true`, and its handler does not run;
//! - the same key with another body (or on another route) answers 422 naming
//!   `Idempotency-Key`;
//! - a repeat while the first still runs answers 409; retry it later.
//!
//! A replayed response never holds a secret: a generated `secret` (registration without
//! one, `rotate-secret`) is shown once, in the first response, and left out of the one
//! kept; the rest is the first response byte for byte.
//!
//! Responses that say nothing happened and that a retry may change — 5xx, 409 and 429 —
//! are not kept: the key is freed and a retry runs again. A request whose handler never
//! finished (a crashed process) frees its key after 5 minutes. A replay still counts
//! against the [rate limits](super::rate_limit), which apply first.
//!
//! The receiving side's [`IdempotencyStore`](crate::receive::IdempotencyStore) remembers
//! only *that* a delivery was processed, by a digest of its id; this store keeps the first
//! response and a fingerprint of the request, which that one has no room for.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use http::{HeaderValue, Method, StatusCode, header};
use sha2::{Digest as _, Sha256};

use super::problem::Problem;
use super::rate_limit::{StoreFuture, principal_bucket, store_failed};
use super::{Api, MAX_BODY};
use crate::Timestamp;

/// The request header that makes a `POST` idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header on a replayed response.
pub const IDEMPOTENT_REPLAYED: &str = "idempotent-replayed";

/// The longest `Idempotency-Key` accepted, in bytes.
pub const MAX_IDEMPOTENCY_KEY: usize = 255;

/// How long a first response is replayed.
pub const REPLAY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// How long a request may run before its key is freed for a retry.
const IN_FLIGHT: Duration = Duration::from_secs(300);

/// The largest response kept for replay; a larger one is answered once and not kept.
const MAX_KEPT_REPLY: usize = 4 * MAX_BODY;

/// A response kept for replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReply {
    /// Its status code.
    pub status: u16,
    /// Its `Content-Type`, if it had one.
    pub content_type: Option<String>,
    /// Its body.
    pub body: Bytes,
}

/// What a [`ReplayStore`] found for a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Begun {
    /// No live record: one is now held in flight for this request; run it, then
    /// [`finish`](ReplayStore::finish) or [`abandon`](ReplayStore::abandon).
    Started,
    /// The same request is still running.
    InProgress,
    /// The key was used for another request (another fingerprint) within its lifetime.
    KeyReused,
    /// The same request finished: its response.
    Replay(StoredReply),
}

/// Where first responses live, keyed by opaque text (a digest of the principal and the
/// `Idempotency-Key`, 64 hex digits) with a 32-byte fingerprint of the request.
///
/// Implementations must make [`begin`](Self::begin) atomic: of many concurrent begins on
/// one key, exactly one is [`Begun::Started`].
pub trait ReplayStore: Send + Sync + 'static {
    /// Looks `key` up at `now`: a record whose lifetime ended counts as none; with none, it
    /// holds the key in flight for `in_flight` and answers [`Begun::Started`].
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        now: Timestamp,
        in_flight: Duration,
    ) -> StoreFuture<'a, Begun>;

    /// Keeps `reply` as the response of `key`'s request, replayed for `keep` from `now`.
    fn finish<'a>(
        &'a self,
        key: &'a str,
        reply: &'a StoredReply,
        now: Timestamp,
        keep: Duration,
    ) -> StoreFuture<'a, ()>;

    /// Frees a key held in flight (its request failed in a way a retry may change).
    fn abandon<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;
}

/// First responses of one process, in memory: the default store. Processes sharing a
/// PostgreSQL database share them through the database instead
/// ([`PostgresStore`](crate::send::PostgresStore) is a `ReplayStore` with features
/// `postgres` and `server`).
///
/// It holds at most `capacity` records (default 10 000): a full store drops expired ones,
/// then the oldest tenth of the finished ones; full of requests in flight, it answers 503.
#[derive(Debug, Clone)]
pub struct MemoryReplayStore {
    records: Arc<Mutex<HashMap<String, Record>>>,
    capacity: usize,
}

#[derive(Debug, Clone)]
struct Record {
    fingerprint: [u8; 32],
    expires_at: i64,
    reply: Option<StoredReply>,
}

impl MemoryReplayStore {
    /// The default capacity.
    pub const DEFAULT_CAPACITY: usize = 10_000;

    /// A store holding at most `capacity` records (at least 1).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            records: Arc::default(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Record>> {
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Default for MemoryReplayStore {
    fn default() -> Self {
        Self::with_capacity(Self::DEFAULT_CAPACITY)
    }
}

fn expiry(now: Timestamp, ttl: Duration) -> i64 {
    now.as_unix()
        .saturating_add(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX))
}

impl ReplayStore for MemoryReplayStore {
    fn begin<'a>(
        &'a self,
        key: &'a str,
        fingerprint: &'a [u8; 32],
        now: Timestamp,
        in_flight: Duration,
    ) -> StoreFuture<'a, Begun> {
        let answer = (|| {
            let mut records = self.lock();
            let now_secs = now.as_unix();
            if let Some(live) = records.get(key).filter(|r| r.expires_at > now_secs) {
                return Ok(if &live.fingerprint != fingerprint {
                    Begun::KeyReused
                } else {
                    match &live.reply {
                        None => Begun::InProgress,
                        Some(reply) => Begun::Replay(reply.clone()),
                    }
                });
            }
            if records.len() >= self.capacity && !records.contains_key(key) {
                records.retain(|_, r| r.expires_at > now_secs);
                if records.len() >= self.capacity {
                    let mut finished: Vec<i64> = records
                        .values()
                        .filter(|r| r.reply.is_some())
                        .map(|r| r.expires_at)
                        .collect();
                    if finished.is_empty() {
                        return Err(crate::StoreError::full(self.capacity));
                    }
                    let forget = (self.capacity / 10).clamp(1, finished.len());
                    let (_, &mut cutoff, _) = finished.select_nth_unstable(forget - 1);
                    records.retain(|_, r| r.reply.is_none() || r.expires_at > cutoff);
                }
            }
            records.insert(
                key.to_owned(),
                Record {
                    fingerprint: *fingerprint,
                    expires_at: expiry(now, in_flight),
                    reply: None,
                },
            );
            Ok(Begun::Started)
        })();
        Box::pin(std::future::ready(answer))
    }

    fn finish<'a>(
        &'a self,
        key: &'a str,
        reply: &'a StoredReply,
        now: Timestamp,
        keep: Duration,
    ) -> StoreFuture<'a, ()> {
        if let Some(record) = self.lock().get_mut(key) {
            record.reply = Some(reply.clone());
            record.expires_at = expiry(now, keep);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn abandon<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        let mut records = self.lock();
        if records.get(key).is_some_and(|r| r.reply.is_none()) {
            records.remove(key);
        }
        Box::pin(std::future::ready(Ok(())))
    }
}

/// The key of a request: 1 to 255 visible ASCII characters.
fn idempotency_key(value: &HeaderValue) -> Result<&[u8], Problem> {
    let bytes = value.as_bytes();
    if bytes.is_empty()
        || bytes.len() > MAX_IDEMPOTENCY_KEY
        || !bytes.iter().all(u8::is_ascii_graphic)
    {
        return Err(Problem::bad_request(
            "Idempotency-Key",
            format!(
                "the Idempotency-Key header is 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
            ),
        ));
    }
    Ok(bytes)
}

/// Reads a whole body of at most `max` bytes; `None` when it is longer.
async fn read_body(body: Body, max: usize) -> Result<Option<Bytes>, axum::Error> {
    let mut stream = body.into_data_stream();
    let mut collected = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if collected.len() + chunk.len() > max {
            return Ok(None);
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(collected)))
}

/// Whether a response is kept for replay: not when a retry may answer otherwise.
fn keepable(status: StatusCode) -> bool {
    !(status.is_server_error()
        || status == StatusCode::CONFLICT
        || status == StatusCode::TOO_MANY_REQUESTS)
}

fn digest(parts: &[&[u8]]) -> [u8; 32] {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.finalize().into()
}

/// Frees the key if the request ends without a kept response (its future dropped included).
struct Abandon {
    store: Arc<dyn ReplayStore>,
    key: Option<String>,
}

impl Abandon {
    fn disarm(mut self) {
        self.key = None;
    }
}

impl fmt::Debug for Abandon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Abandon").finish_non_exhaustive()
    }
}

impl Drop for Abandon {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else { return };
        let store = Arc::clone(&self.store);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = store.abandon(&key).await;
            });
        }
    }
}

/// The layer: replays a `POST`'s first response for a repeated `Idempotency-Key`.
pub(crate) async fn layer<S: Send + Sync + 'static>(
    State(api): State<Arc<Api<S>>>,
    request: Request,
    next: Next,
) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(value) = request.headers().get(IDEMPOTENCY_KEY) else {
        return next.run(request).await;
    };
    let given = match idempotency_key(value) {
        Ok(key) => key.to_vec(),
        Err(problem) => return problem.into_response(),
    };
    let (parts, body) = request.into_parts();
    let Some(identity) = super::identify(&api, &parts) else {
        return Problem::unauthorized().into_response();
    };
    let body = match read_body(body, MAX_BODY).await {
        Ok(Some(body)) => body,
        Ok(None) => {
            return Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {MAX_BODY} bytes"),
            )
            .into_response();
        }
        Err(_) => {
            return Problem::new(StatusCode::BAD_REQUEST, "the body could not be read")
                .into_response();
        }
    };
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let fingerprint = digest(&[parts.method.as_str().as_bytes(), target.as_bytes(), &body]);
    let scope = principal_bucket(&identity.principal);
    let key = hex::encode(digest(&[scope.as_bytes(), &given]));
    let now = api.now();
    match api.replays.begin(&key, &fingerprint, now, IN_FLIGHT).await {
        Err(e) => store_failed(e).into_response(),
        Ok(Begun::InProgress) => Problem::new(
            StatusCode::CONFLICT,
            "a request with this Idempotency-Key is still running; retry later",
        )
        .into_response(),
        Ok(Begun::KeyReused) => Problem::invalid(
            "Idempotency-Key",
            "this Idempotency-Key was used with another request within 24 h",
        )
        .into_response(),
        Ok(Begun::Replay(reply)) => replayed(reply),
        Ok(Begun::Started) => {
            let guard = Abandon {
                store: Arc::clone(&api.replays),
                key: Some(key.clone()),
            };
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            if !keepable(response.status()) {
                return response;
            }
            let (head, body) = response.into_parts();
            let Ok(Some(body)) = read_body(body, MAX_KEPT_REPLY).await else {
                return Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "the reply failed")
                    .into_response();
            };
            let reply = StoredReply {
                status: head.status.as_u16(),
                content_type: head
                    .headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                body: without_secret(&body),
            };
            if api
                .replays
                .finish(&key, &reply, api.now(), REPLAY_WINDOW)
                .await
                .is_ok()
            {
                guard.disarm();
            }
            Response::from_parts(head, Body::from(body))
        }
    }
}

/// A JSON object's body without its top-level `secret`: a secret is shown once, so it is
/// never kept for replay (nor written to a store's table in plain text).
fn without_secret(body: &Bytes) -> Bytes {
    let Ok(serde_json::Value::Object(mut object)) = serde_json::from_slice(body) else {
        return body.clone();
    };
    if object.shift_remove("secret").is_none() {
        return body.clone();
    }
    serde_json::to_vec(&object).map_or_else(|_| Bytes::new(), Bytes::from)
}

fn replayed(reply: StoredReply) -> Response {
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let headers = response.headers_mut();
    if let Some(value) = reply
        .content_type
        .and_then(|c| HeaderValue::from_str(&c).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(IDEMPOTENT_REPLAYED, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_memory_store_replays_refuses_and_frees() {
        let store = MemoryReplayStore::with_capacity(2);
        let now = Timestamp::from_unix(1_000);
        let a = [1u8; 32];
        let b = [2u8; 32];
        let ttl = Duration::from_secs(60);
        assert_eq!(
            store.begin("k", &a, now, ttl).await.unwrap(),
            Begun::Started
        );
        assert_eq!(
            store.begin("k", &a, now, ttl).await.unwrap(),
            Begun::InProgress
        );
        assert_eq!(
            store.begin("k", &b, now, ttl).await.unwrap(),
            Begun::KeyReused
        );
        let reply = StoredReply {
            status: 201,
            content_type: Some("application/json".into()),
            body: Bytes::from_static(b"{}"),
        };
        store.finish("k", &reply, now, ttl).await.unwrap();
        assert_eq!(
            store.begin("k", &a, now, ttl).await.unwrap(),
            Begun::Replay(reply.clone())
        );
        let later = Timestamp::from_unix(1_060);
        assert_eq!(
            store.begin("k", &b, later, ttl).await.unwrap(),
            Begun::Started,
            "an expired record is no record"
        );
        store.abandon("k").await.unwrap();
        assert_eq!(
            store.begin("k", &a, later, ttl).await.unwrap(),
            Begun::Started
        );
        // Full of requests in flight: 503 (full), never an unbounded table.
        assert_eq!(
            store.begin("j", &a, later, ttl).await.unwrap(),
            Begun::Started
        );
        assert!(
            store
                .begin("i", &a, later, ttl)
                .await
                .unwrap_err()
                .is_full()
        );
        // A finished record makes room.
        store.finish("j", &reply, later, ttl).await.unwrap();
        assert_eq!(
            store.begin("i", &a, later, ttl).await.unwrap(),
            Begun::Started
        );
    }

    /// Over a stand-in handler that waits until told: a repeat while the first runs is 409
    /// and does not run it; once it finished, a repeat is its replay.
    #[tokio::test]
    async fn a_repeat_while_the_first_runs_is_409() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use axum::Router;
        use axum::middleware::from_fn_with_state;
        use axum::routing::post;
        use tokio::sync::Notify;
        use tower::ServiceExt as _;

        use crate::send::{MemoryStore, Sender};
        use crate::server::{Principal, Token};

        static RAN: AtomicUsize = AtomicUsize::new(0);
        static ENTERED: Notify = Notify::const_new();
        static RELEASE: Notify = Notify::const_new();
        let api = crate::server::ManagementApi::new(Sender::new(MemoryStore::new()))
            .token(Token::new("t").unwrap(), Principal::Admin)
            .into_state();
        let slow = || async {
            RAN.fetch_add(1, Ordering::SeqCst);
            ENTERED.notify_one();
            RELEASE.notified().await;
            (StatusCode::ACCEPTED, "done")
        };
        let router: Router = Router::new()
            .route("/slow", post(slow))
            .route_layer(from_fn_with_state(Arc::clone(&api), layer::<MemoryStore>))
            .with_state(api);
        let request = || {
            http::Request::post("/slow")
                .header("authorization", "Bearer t")
                .header(IDEMPOTENCY_KEY, "k")
                .body(Body::from("{}"))
                .unwrap()
        };
        let first = tokio::spawn(router.clone().oneshot(request()));
        ENTERED.notified().await;
        let repeat = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(repeat.status(), StatusCode::CONFLICT);
        RELEASE.notify_one();
        let first = first.await.unwrap().unwrap();
        assert_eq!(first.status(), StatusCode::ACCEPTED);
        let replay = router.clone().oneshot(request()).await.unwrap();
        assert_eq!(replay.status(), StatusCode::ACCEPTED);
        assert_eq!(replay.headers()[IDEMPOTENT_REPLAYED], "true");
        assert_eq!(RAN.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn stores_are_send_and_sync() {
        fn both<T: Send + Sync>() {}
        both::<MemoryReplayStore>();
        both::<super::super::MemoryRateLimitStore>();
        both::<super::super::RateLimit>();
        both::<Begun>();
        both::<StoredReply>();
    }

    #[test]
    fn keys_are_visible_ascii_up_to_255_bytes() {
        let ok = HeaderValue::from_bytes("order-123_ä".as_bytes()).unwrap();
        assert!(idempotency_key(&ok).is_err(), "non-ASCII");
        let long = HeaderValue::from_str(&"k".repeat(256)).unwrap();
        let problem = idempotency_key(&long).unwrap_err();
        assert_eq!(problem.errors()[0].field, "Idempotency-Key");
        let max = HeaderValue::from_str(&"k".repeat(255)).unwrap();
        assert!(idempotency_key(&max).is_ok());
        assert!(idempotency_key(&HeaderValue::from_static("")).is_err());
    }
}
