//! The framework-neutral receiver: verify, de-duplicate, run the handler, reply.

use std::fmt;
use std::future::Future;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::idempotency::{
    Claim, IdempotencyKey, IdempotencyStore, MemoryIdempotencyStore, Retention,
};
use super::payload::WebhookPayload;
use super::reply::{Rejection, Reply, refuse};
use super::trace::{self, StoreOperation};
use crate::headers::HeaderLookup;
use crate::profile::{MissingApiKey, Profile};
use crate::scheme::{ApiKey, Authenticated, Coverage, Tolerance};
use crate::{Clock, Secret, SystemClock, Timestamp, Verifier};

/// Receives one profile's webhooks: verifies, de-duplicates, runs a handler, replies.
///
/// Use it from any server with [`handle`](Self::handle) (or [`begin`](Self::begin) and
/// [`finish`](Self::finish) to drive the handler yourself); with axum, use the layer and
/// extractor in [`crate::receive::axum`] (feature `axum`).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// use hookrelay::profile::Profile;
/// use hookrelay::receive::Receiver;
/// use hookrelay::scheme::{Message, Scheme, IdBody};
/// use hookrelay::Secret;
///
/// let secret = Secret::from_raw("tasklink-secret")?;
/// let receiver = Receiver::builder(Profile::TaskLink).secret(secret.clone()).build()?;
///
/// let body = br#"{"event":"job.created","id":"evt_1","timestamp":"2025-10-07T07:37:03.000Z","data":{}}"#;
/// let signed = IdBody.sign(&secret, &Message::new(body).with_id("evt_1"))?;
/// let headers = signed.to_header_map()?;
///
/// let mut runs = 0;
/// for _ in 0..2 {
///     let reply = receiver
///         .handle(&headers, body.to_vec().into(), |inbound| {
///             runs += 1;
///             assert_eq!(inbound.event_type(), Some("job.created"));
///             async { Ok::<(), std::convert::Infallible>(()) }
///         })
///         .await;
///     assert_eq!(reply.status, 200);
/// }
/// assert_eq!(runs, 1); // the retry was recognised
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Receiver<S = MemoryIdempotencyStore> {
    verifier: Verifier,
    profile: Profile,
    store: S,
    retention: Retention,
    clock: std::sync::Arc<dyn Clock>,
}

/// Configures a [`Receiver`]; setters never fail, [`build`](Self::build) validates.
#[derive(Debug)]
pub struct ReceiverBuilder<S = MemoryIdempotencyStore> {
    profile: Profile,
    secrets: Vec<Secret>,
    api_key: Option<ApiKey>,
    tolerance: Tolerance,
    max_body_bytes: usize,
    retention: Retention,
    store: S,
    clock: std::sync::Arc<dyn Clock>,
}

impl Receiver {
    /// Starts configuring a receiver for `profile`, with an in-memory idempotency store.
    pub fn builder(profile: Profile) -> ReceiverBuilder {
        ReceiverBuilder {
            profile,
            secrets: Vec::new(),
            api_key: None,
            tolerance: Tolerance::DEFAULT,
            max_body_bytes: crate::verify::DEFAULT_MAX_BODY_BYTES,
            retention: Retention::default(),
            store: MemoryIdempotencyStore::default(),
            clock: std::sync::Arc::new(SystemClock),
        }
    }
}

impl<S: IdempotencyStore> ReceiverBuilder<S> {
    /// Adds an active secret (repeat during a rotation).
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// TaskOn's expected `X-API-Key` (required for [`Profile::TaskOn`]).
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }

    /// Timestamp tolerance for schemes that sign one (default ±300 s).
    pub fn tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Largest body accepted (default 1 MiB); larger ones get 413 before any HMAC work.
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// How long processed deliveries are remembered (default 72 h, covering every
    /// profile's retry horizon) and how long an in-flight claim lasts (default 5 min).
    pub fn retention(mut self, retention: Retention) -> Self {
        self.retention = retention;
        self
    }

    /// Where "now" comes from, for timestamps and record expiry (default: system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = std::sync::Arc::new(clock);
        self
    }

    /// Uses another idempotency store (e.g. SQLite).
    pub fn store<T: IdempotencyStore>(self, store: T) -> ReceiverBuilder<T> {
        ReceiverBuilder {
            profile: self.profile,
            secrets: self.secrets,
            api_key: self.api_key,
            tolerance: self.tolerance,
            max_body_bytes: self.max_body_bytes,
            retention: self.retention,
            store,
            clock: self.clock,
        }
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<Receiver<S>, ReceiverError> {
        let scheme = self
            .profile
            .scheme(self.api_key)
            .map_err(ReceiverError::MissingApiKey)?;
        let verifier = Verifier::builder(scheme)
            .secrets(self.secrets)
            .tolerance(self.tolerance)
            .max_body_bytes(self.max_body_bytes)
            .clock(ClockRef(self.clock.clone()))
            .build()
            .map_err(ReceiverError::Verifier)?;
        Ok(Receiver {
            verifier,
            profile: self.profile,
            store: self.store,
            retention: self.retention,
            clock: self.clock,
        })
    }
}

/// Shares one clock between the receiver and its verifier.
#[derive(Debug)]
struct ClockRef(std::sync::Arc<dyn Clock>);

impl Clock for ClockRef {
    fn now(&self) -> Timestamp {
        self.0.now()
    }
}

/// Why a [`ReceiverBuilder`] refused its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReceiverError {
    /// The TaskOn profile needs [`ReceiverBuilder::api_key`].
    MissingApiKey(MissingApiKey),
    /// The verifier configuration is invalid (e.g. no secret).
    Verifier(crate::BuildError),
}

impl fmt::Display for ReceiverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The cause is the source, not repeated here.
            Self::MissingApiKey(_) => f.write_str("the receiver's profile is missing a setting"),
            Self::Verifier(_) => f.write_str("the receiver's verifier configuration is invalid"),
        }
    }
}

impl std::error::Error for ReceiverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::MissingApiKey(err) => Some(err),
            Self::Verifier(err) => Some(err),
        }
    }
}

/// A verified delivery, owned, with what the receiver learned about it.
#[derive(Debug, Clone)]
pub struct Inbound {
    profile: Profile,
    authenticated: Authenticated,
    key: IdempotencyKey,
    /// The profile's event-type header when the request had one; otherwise read from the
    /// body on first use (most handlers parse the body anyway).
    event_type: std::sync::OnceLock<Option<String>>,
    body: Bytes,
}

impl Inbound {
    /// An inbound rebuilt from what an inbox stored.
    #[cfg(feature = "inbox")]
    pub(crate) fn restored(
        profile: Profile,
        authenticated: Authenticated,
        key: IdempotencyKey,
        event_type: Option<String>,
        body: Bytes,
    ) -> Self {
        Self {
            profile,
            authenticated,
            key,
            event_type: std::sync::OnceLock::from(event_type),
            body,
        }
    }

    /// The profile it was received under.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The scheme's message id (`X-Webhook-ID`, `webhook-id`), if it has one.
    pub fn id(&self) -> Option<&str> {
        self.authenticated.id.as_deref()
    }

    /// The sender's id for this delivery, as a person would look it up: the scheme's message
    /// id, else the body's top-level string `"id"`, else the delivery header the idempotency
    /// key was taken from (GitHub's `X-GitHub-Delivery`, task-hub's `X-Delivery-ID`); `None`
    /// when the key is a digest of the body.
    pub fn delivery_id(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct IdOnly {
            id: Option<String>,
        }
        if let Some(id) = self.id() {
            return Some(id.to_owned());
        }
        if let Some(id) = serde_json::from_slice::<IdOnly>(&self.body)
            .ok()
            .and_then(|fields| fields.id)
        {
            return Some(id);
        }
        let (namespace, natural) = self.key.as_str().split_once(':')?;
        (namespace == self.profile.name() && !natural.starts_with("body:"))
            .then(|| natural.to_owned())
    }

    /// The signed timestamp, if the scheme signs one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.authenticated.timestamp
    }

    /// What the signature vouches for (for TaskOn, only `user_id` and `timestamp`).
    pub fn coverage(&self) -> Coverage {
        self.authenticated.coverage
    }

    /// Everything the scheme established: id, timestamp and coverage together.
    pub fn authenticated(&self) -> &Authenticated {
        &self.authenticated
    }

    /// The delivery's idempotency key.
    pub fn idempotency_key(&self) -> &IdempotencyKey {
        &self.key
    }

    /// The event type: from the profile's event-type header (GitHub's `X-GitHub-Event`,
    /// task-hub's `X-Event-Type`, TaskLink's `X-Webhook-Event`) when the request carried it,
    /// else named in the body (read once, on first use). See [`Profile::event_type_in`].
    pub fn event_type(&self) -> Option<&str> {
        self.event_type
            .get_or_init(|| self.profile.event_type(&self.body))
            .as_deref()
    }

    /// The verified body bytes.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// Parses the body as JSON into `T`; a failure is a [`Rejection::Unprocessable`] (422).
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Rejection> {
        serde_json::from_slice(&self.body).map_err(|err| Rejection::Unprocessable(err.to_string()))
    }

    /// Parses the body into a [`WebhookPayload`], e.g. the profile's typed event; a failure
    /// is a [`Rejection::Unprocessable`] (422).
    pub fn payload<P: WebhookPayload>(&self) -> Result<P, Rejection> {
        P::from_body(&self.body).map_err(Rejection::Unprocessable)
    }
}

/// What to do with a request after [`Receiver::begin`].
#[derive(Debug)]
#[non_exhaustive]
pub enum Begin {
    /// Answer with this reply; do not run the handler (rejected, duplicate, in progress, or a
    /// handshake the receiver answered itself).
    Respond(Reply),
    /// Run the handler, then call [`Receiver::finish`].
    Process(Inbound),
}

/// How the handler fared, for [`Receiver::finish`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandlerOutcome {
    /// Processed: remember the delivery so retries are acknowledged without a second run.
    Succeeded,
    /// Not processed: forget the claim so the sender's retry is processed.
    Failed,
}

impl<S: IdempotencyStore> Receiver<S> {
    /// The profile.
    pub fn profile(&self) -> Profile {
        self.profile
    }

    /// The body size limit in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.verifier.max_body_bytes()
    }

    /// The verifier (for use without idempotency).
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// Verifies a request, without idempotency.
    pub fn verify(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: Bytes,
    ) -> Result<Inbound, Rejection> {
        self.verify_with_clock(headers, body, &*self.clock)
    }

    /// [`verify`](Self::verify) with another clock (`begin` passes the time it read).
    fn verify_with_clock(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: Bytes,
        clock: &dyn Clock,
    ) -> Result<Inbound, Rejection> {
        let verified = self
            .verifier
            .verify_with_clock(headers, &body, clock)
            .map_err(Rejection::from_verify)?;
        let key = IdempotencyKey::for_delivery(self.profile, &verified, headers);
        let event_type = std::sync::OnceLock::new();
        if let Some(kind) = self.profile.event_type_from_header(headers) {
            let _ = event_type.set(Some(kind.to_owned()));
        }
        Ok(Inbound {
            profile: self.profile,
            authenticated: verified.into_authenticated(),
            key,
            event_type,
            body,
        })
    }

    /// Verifies, answers handshakes, and claims the delivery.
    pub async fn begin(&self, headers: &(impl HeaderLookup + ?Sized), body: Bytes) -> Begin {
        // One clock read serves the timestamp check and the claim.
        let now = self.clock.now();
        let inbound = match self.verify_with_clock(headers, body, &crate::FixedClock(now)) {
            Ok(inbound) => inbound,
            Err(rejection) => return Begin::Respond(refuse(self.profile, &rejection)),
        };
        if let Some(challenge) = self.profile.challenge(&inbound.body) {
            trace::handshake(self.profile);
            return Begin::Respond(Reply::challenge(&challenge));
        }
        match self.store.claim(&inbound.key, now, self.retention).await {
            Ok(Claim::Acquired) => Begin::Process(inbound),
            Ok(Claim::Done) => {
                trace::duplicate(self.profile, &inbound.key);
                Begin::Respond(Reply::duplicate(self.profile))
            }
            Ok(Claim::InProgress) => Begin::Respond(refuse(self.profile, &Rejection::InProgress)),
            Err(error) => {
                trace::store_failed(self.profile, StoreOperation::Claim, &inbound.key, &error);
                Begin::Respond(Reply::rejected(self.profile, &Rejection::Unavailable))
            }
        }
    }

    /// Records the handler's outcome for a delivery [`begin`](Self::begin) handed out.
    ///
    /// A failure to record success is not reported to the sender: the event was processed,
    /// and at worst a retry is processed again (at-least-once). Store failures are logged
    /// (feature `tracing`).
    pub async fn finish(&self, key: &IdempotencyKey, outcome: HandlerOutcome) {
        let (operation, result) = match outcome {
            HandlerOutcome::Succeeded => (
                StoreOperation::Complete,
                self.store
                    .complete(key, self.clock.now(), self.retention)
                    .await,
            ),
            HandlerOutcome::Failed => (StoreOperation::Release, self.store.release(key).await),
        };
        if let Err(error) = result {
            trace::store_failed(self.profile, operation, key, &error);
        }
    }

    /// Verifies and answers handshakes, then stores the delivery in `inbox` and answers the
    /// profile's success reply at once; an [`InboxWorker`](super::inbox::InboxWorker) runs
    /// the handler later.
    ///
    /// Nothing is answered 2xx before the store returned: a duplicate of a stored delivery
    /// gets the profile's duplicate reply, and a store failure answers 503 so the sender
    /// retries. The receiver's idempotency store is not used: the inbox's keys are.
    #[cfg(feature = "inbox")]
    #[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
    pub async fn accept<I: super::inbox::InboxStore>(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: Bytes,
        inbox: &super::inbox::Inbox<I>,
    ) -> Reply {
        let inbound = match self.verify(headers, body) {
            Ok(inbound) => inbound,
            Err(rejection) => return refuse(self.profile, &rejection),
        };
        if let Some(challenge) = self.profile.challenge(&inbound.body) {
            trace::handshake(self.profile);
            return Reply::challenge(&challenge);
        }
        let received_at = crate::retry::UnixMillis::now();
        match inbox.accept(&inbound, headers, received_at).await {
            Ok(super::inbox::Accepted::Stored(_)) => Reply::accepted(self.profile),
            Ok(super::inbox::Accepted::Duplicate(_)) => {
                trace::duplicate(self.profile, &inbound.key);
                Reply::duplicate(self.profile)
            }
            Err(error) => {
                trace::inbox_failed("accept", &error);
                refuse(self.profile, &Rejection::Unavailable)
            }
        }
    }

    /// The whole pipeline: verify, answer handshakes, de-duplicate, run `handler`, reply.
    ///
    /// The handler runs at most once per delivery at a time; concurrent copies get 409 and
    /// later copies the profile's 2xx duplicate reply. A handler error releases the claim and
    /// answers 500, so the sender retries.
    pub async fn handle<F, Fut, E>(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: Bytes,
        handler: F,
    ) -> Reply
    where
        F: FnOnce(Inbound) -> Fut,
        Fut: Future<Output = Result<(), E>>,
    {
        let inbound = match self.begin(headers, body).await {
            Begin::Respond(reply) => return reply,
            Begin::Process(inbound) => inbound,
        };
        let key = inbound.key.clone();
        match handler(inbound).await {
            Ok(()) => {
                self.finish(&key, HandlerOutcome::Succeeded).await;
                Reply::accepted(self.profile)
            }
            Err(_) => {
                self.finish(&key, HandlerOutcome::Failed).await;
                let rejection = Rejection::HandlerFailed;
                trace::handler_failed(self.profile, rejection.status().as_u16());
                Reply::rejected(self.profile, &rejection)
            }
        }
    }
}

/// What a profile's signature vouches for (the inbox stores the profile, not the coverage).
#[cfg(feature = "inbox")]
pub(crate) fn coverage_of(profile: Profile) -> Coverage {
    match profile {
        Profile::ProposalGenerator | Profile::TaskHub | Profile::GitHub => Coverage::Body,
        Profile::TaskLink => Coverage::IdAndBody,
        Profile::TaskOn => Coverage::Fields(crate::scheme::SIGNED_FIELDS),
        Profile::StandardWebhooks => Coverage::IdTimestampAndBody,
        Profile::Stripe => Coverage::TimestampAndBody,
    }
}
