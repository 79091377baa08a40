//! axum integration: a layer that runs the whole receive pipeline around a route, and an
//! extractor that hands the handler a verified, typed event.
//!
//! Built on `axum-core` and tower's traits only, so it works with the axum 0.8 your
//! application uses without `HeaderMap` version clashes (both use `http` 1).
//!
//! ```
//! use axum::{Router, routing::post};
//! use hookrelay::profile::Profile;
//! use hookrelay::receive::Receiver;
//! use hookrelay::receive::axum::{Delivery, Webhook, WebhookLayer};
//! use hookrelay::scheme::XHub;
//! use hookrelay::{Secret, Verifier};
//!
//! // Behind the layer: verified, de-duplicated, typed.
//! async fn on_task(delivery: Delivery<serde_json::Value>) {
//!     println!("{:?} {}", delivery.inbound.event_type(), delivery.event["data"]);
//!     // Returning 2xx with an empty body lets the layer send the profile's reply.
//! }
//!
//! // Without the layer: verified with the Verifier in the router state.
//! async fn on_github(webhook: Webhook<serde_json::Value>) {
//!     println!("{:?}", webhook.event["action"]);
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver = Receiver::builder(Profile::TaskHub)
//!     .secret(Secret::from_raw("your-secret-key")?)
//!     .build()?;
//! let tasks: Router = Router::new()
//!     .route("/webhooks/tasks", post(on_task))
//!     .route_layer(WebhookLayer::new(receiver));
//!
//! let github = Verifier::builder(XHub::github())
//!     .secret(Secret::from_raw("github-secret")?)
//!     .build()?;
//! let app: Router = Router::new()
//!     .route("/webhooks/github", post(on_github))
//!     .with_state(github)
//!     .merge(tasks);
//! # let _ = app;
//! # Ok(())
//! # }
//! ```
//!
//! - [`WebhookLayer`] reads the body (413 over the limit, checked on `Content-Length`
//!   and again while reading, so chunked bodies are capped too), verifies, answers
//!   handshakes, claims the idempotency key, calls the route, then records the outcome: a
//!   2xx marks the delivery processed, anything else releases it so the sender's retry is
//!   processed. A 2xx with an empty body is filled with the profile's reply.
//! - [`Delivery<T>`] is the extractor for routes behind the layer: the verified body parsed
//!   into `T` (422 if it does not parse) and the layer's [`Inbound`]. On a route without the
//!   layer it answers 500: that is a wiring mistake, never a reason to skip verification.
//! - [`Webhook<T>`] verifies by itself with the [`Verifier`] in the router state
//!   (`FromRef`), for routes without the layer (and so without idempotency). Behind the
//!   layer it reuses the layer's verification.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use axum_core::extract::{FromRef, FromRequest, Request};
use axum_core::response::{IntoResponse, Response};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use http_body_util::{BodyExt as _, Limited};

pub use super::Delivery;
use super::IdempotencyStore;
use super::payload::WebhookPayload;
use super::receiver::{Begin, HandlerOutcome, Inbound, Receiver};
use super::reply::{Rejection, Reply, accepted_body, refuse};
use crate::Verifier;
use crate::profile::Profile;
use crate::scheme::Authenticated;

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = self.status;
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response
    }
}

/// Reads at most `limit` bytes of body; 413 beyond, 400 if the body cannot be read.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, Rejection> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(Rejection::TooLarge { limit });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.is::<http_body_util::LengthLimitError>() => {
            Err(Rejection::TooLarge { limit })
        }
        Err(_) => Err(Rejection::Malformed(crate::VerifyError::UnsignedBody)),
    }
}

/// A tower layer running [`Receiver`]'s pipeline around every route it wraps.
#[derive(Debug)]
pub struct WebhookLayer<S> {
    receiver: Arc<Receiver<S>>,
}

impl<S> Clone for WebhookLayer<S> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
        }
    }
}

impl<S: IdempotencyStore> WebhookLayer<S> {
    /// Wraps routes with `receiver`.
    pub fn new(receiver: Receiver<S>) -> Self {
        Self {
            receiver: Arc::new(receiver),
        }
    }
}

impl<S, Inner> tower_layer::Layer<Inner> for WebhookLayer<S> {
    type Service = WebhookService<S, Inner>;

    fn layer(&self, inner: Inner) -> Self::Service {
        WebhookService {
            receiver: self.receiver.clone(),
            inner,
        }
    }
}

/// The service [`WebhookLayer`] produces.
#[derive(Debug)]
pub struct WebhookService<S, Inner> {
    receiver: Arc<Receiver<S>>,
    inner: Inner,
}

impl<S, Inner: Clone> Clone for WebhookService<S, Inner> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<S, Inner> tower_service::Service<Request> for WebhookService<S, Inner>
where
    S: IdempotencyStore,
    Inner: tower_service::Service<Request, Response = Response, Error = Infallible>
        + Clone
        + Send
        + 'static,
    Inner::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready is the one we call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let receiver = self.receiver.clone();
        Box::pin(async move {
            let profile = receiver.profile();
            let (parts, body) = request.into_parts();
            let bytes = match read_body(&parts.headers, body, receiver.max_body_bytes()).await {
                Ok(bytes) => bytes,
                Err(rejection) => return Ok(refuse(profile, &rejection).into_response()),
            };
            let inbound = match receiver.begin(&parts.headers, bytes.clone()).await {
                Begin::Respond(reply) => return Ok(reply.into_response()),
                Begin::Process(inbound) => inbound,
            };
            let key = inbound.idempotency_key().clone();
            let mut request = Request::from_parts(parts, Body::from(bytes));
            request.extensions_mut().insert(inbound);
            let response = inner.call(request).await?;
            let outcome = if response.status().is_success() {
                HandlerOutcome::Succeeded
            } else {
                super::trace::handler_failed(profile, response.status().as_u16());
                HandlerOutcome::Failed
            };
            receiver.finish(&key, outcome).await;
            Ok(fill_empty_success(response, profile))
        })
    }
}

/// A 2xx with an empty body gets the profile's reply body.
fn fill_empty_success(response: Response, profile: Profile) -> Response {
    use http_body::Body as _;
    if !response.status().is_success() || response.body().size_hint().exact() != Some(0) {
        return response;
    }
    let (mut parts, _) = response.into_parts();
    parts
        .headers
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    parts.headers.remove(CONTENT_LENGTH);
    Response::from_parts(
        parts,
        Body::from(Bytes::from_static(accepted_body(profile))),
    )
}

impl<St, T> FromRequest<St> for Delivery<T>
where
    St: Send + Sync,
    T: WebhookPayload,
{
    type Rejection = WebhookRejection;

    async fn from_request(mut request: Request, _state: &St) -> Result<Self, Self::Rejection> {
        let Some(inbound) = request.extensions_mut().remove::<Inbound>() else {
            return Err(WebhookRejection {
                rejection: Rejection::LayerMissing,
                profile: None,
            });
        };
        match T::from_body(inbound.body()) {
            Ok(event) => Ok(Self { event, inbound }),
            Err(detail) => Err(WebhookRejection {
                rejection: Rejection::Unprocessable(detail),
                profile: Some(inbound.profile()),
            }),
        }
    }
}

/// A verified webhook, its body parsed into `T`.
#[derive(Debug, Clone)]
pub struct Webhook<T = serde_json::Value> {
    /// The parsed body.
    pub event: T,
    /// What the signature established: id, timestamp, coverage.
    pub authenticated: Authenticated,
    /// Everything the layer learned (profile, event type, idempotency key), when it ran.
    pub inbound: Option<Inbound>,
    /// The verified body bytes.
    pub body: Bytes,
}

/// Why the [`Webhook`] extractor refused a request; answers with the generic reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRejection {
    /// What went wrong (for logs).
    pub rejection: Rejection,
    profile: Option<Profile>,
}

impl IntoResponse for WebhookRejection {
    fn into_response(self) -> Response {
        super::trace::rejected(self.profile, &self.rejection);
        let profile = self.profile.unwrap_or(Profile::StandardWebhooks);
        Reply::rejected(profile, &self.rejection).into_response()
    }
}

impl<St, T> FromRequest<St> for Webhook<T>
where
    St: Send + Sync,
    Verifier: FromRef<St>,
    T: WebhookPayload,
{
    type Rejection = WebhookRejection;

    async fn from_request(mut request: Request, state: &St) -> Result<Self, Self::Rejection> {
        let reject = |rejection, profile| WebhookRejection { rejection, profile };
        if let Some(inbound) = request.extensions_mut().remove::<Inbound>() {
            let profile = Some(inbound.profile());
            let event = T::from_body(inbound.body())
                .map_err(|e| reject(Rejection::Unprocessable(e), profile))?;
            return Ok(Self {
                event,
                authenticated: inbound.authenticated().clone(),
                body: inbound.body().clone(),
                inbound: Some(inbound),
            });
        }
        let verifier = Verifier::from_ref(state);
        let (parts, body) = request.into_parts();
        let bytes = read_body(&parts.headers, body, verifier.max_body_bytes())
            .await
            .map_err(|r| reject(r, None))?;
        let verified = verifier
            .verify(&parts.headers, &bytes)
            .map_err(|e| reject(Rejection::from_verify(e), None))?;
        let authenticated = verified.authenticated().clone();
        let event = T::from_body(&bytes).map_err(|e| reject(Rejection::Unprocessable(e), None))?;
        Ok(Self {
            event,
            authenticated,
            inbound: None,
            body: bytes,
        })
    }
}

/// A tower layer that stores verified deliveries in an [`Inbox`](super::inbox::Inbox) and
/// answers at once (feature `inbox`): the wrapped route's handler is never called — an
/// [`InboxWorker`](super::inbox::InboxWorker) runs the handler later, on the stored entry.
///
/// The body is read and limited as [`WebhookLayer`] does; then
/// [`Receiver::accept`](super::Receiver::accept): verify, answer handshakes, store, and the
/// profile's success reply only once the store returned (503 if it failed).
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub struct InboxLayer<S, I> {
    service: InboxService<S, I>,
}

#[cfg(feature = "inbox")]
impl<S, I> Clone for InboxLayer<S, I> {
    fn clone(&self) -> Self {
        Self {
            service: self.service.clone(),
        }
    }
}

#[cfg(feature = "inbox")]
impl<S: IdempotencyStore, I: std::fmt::Debug> std::fmt::Debug for InboxLayer<S, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("InboxLayer").field(&self.service).finish()
    }
}

#[cfg(feature = "inbox")]
impl<S: IdempotencyStore, I: super::inbox::InboxStore> InboxLayer<S, I> {
    /// Stores what `receiver` verifies into `inbox`.
    pub fn new(receiver: Receiver<S>, inbox: super::inbox::Inbox<I>) -> Self {
        Self {
            service: InboxService::new(receiver, inbox),
        }
    }
}

#[cfg(feature = "inbox")]
impl<S, I, Inner> tower_layer::Layer<Inner> for InboxLayer<S, I> {
    type Service = InboxService<S, I>;

    fn layer(&self, _inner: Inner) -> Self::Service {
        self.service.clone()
    }
}

/// The service [`InboxLayer`] produces (also usable alone, e.g. with axum's `post_service`).
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub struct InboxService<S, I> {
    receiver: Arc<Receiver<S>>,
    inbox: super::inbox::Inbox<I>,
}

#[cfg(feature = "inbox")]
impl<S: IdempotencyStore, I: std::fmt::Debug> std::fmt::Debug for InboxService<S, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboxService")
            .field("profile", &self.receiver.profile())
            .field("inbox", &self.inbox)
            .finish()
    }
}

#[cfg(feature = "inbox")]
impl<S, I> Clone for InboxService<S, I> {
    fn clone(&self) -> Self {
        Self {
            receiver: self.receiver.clone(),
            inbox: self.inbox.clone(),
        }
    }
}

#[cfg(feature = "inbox")]
impl<S: IdempotencyStore, I: super::inbox::InboxStore> InboxService<S, I> {
    /// Stores what `receiver` verifies into `inbox`.
    pub fn new(receiver: Receiver<S>, inbox: super::inbox::Inbox<I>) -> Self {
        Self {
            receiver: Arc::new(receiver),
            inbox,
        }
    }
}

#[cfg(feature = "inbox")]
impl<S, I> tower_service::Service<Request> for InboxService<S, I>
where
    S: IdempotencyStore,
    I: super::inbox::InboxStore,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let receiver = self.receiver.clone();
        let inbox = self.inbox.clone();
        Box::pin(async move {
            let profile = receiver.profile();
            let (parts, body) = request.into_parts();
            let bytes = match read_body(&parts.headers, body, receiver.max_body_bytes()).await {
                Ok(bytes) => bytes,
                Err(rejection) => return Ok(refuse(profile, &rejection).into_response()),
            };
            Ok(receiver
                .accept(&parts.headers, bytes, &inbox)
                .await
                .into_response())
        })
    }
}
