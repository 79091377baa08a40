//! The management API (feature `server`): an axum
//! [`Router`] over a [`Sender`] that an app nests under any path, so its customers
//! register, list, change, pause and delete their webhook endpoints and read and retry
//! their deliveries.
//!
//! Every route but `GET /health` and `GET /openapi.json` needs a [`Principal`]: the built-in [`TokenTable`] reads
//! `Authorization: Bearer TOKEN` (compared in constant time); an app plugs in its own
//! [`PrincipalResolver`]. A [customer](Principal::Customer) sees only its own endpoints and
//! their deliveries — another customer's id answers 404 as a missing one does — and the
//! endpoints it creates belong to it. Errors are RFC 9457 [`Problem`]s.
//!
//! An endpoint shows `created_at` (RFC 3339 UTC) and `testMode` (004): a test-mode endpoint
//! receives test sends and events published with `test: true`, never live ones.
//!
//! **The handshake.** Given a [transport](ManagementApi::transport), the API runs the
//! `webhook.verify` handshake before it answers when a Proposal Generator endpoint is
//! registered, or its URL changes: `status` is then `active` when it passed, or
//! `pending_verification` with a `status_note` saying why not (the reply is 201 or 200
//! either way). Without one, such an endpoint stays `pending_verification` until the app
//! runs [`Sender::verify_endpoint`] itself, and `POST /webhooks/{id}/verify` answers 503
//! ("No transport is configured").
//!
//! **Test sends** wait for the first attempt up to the endpoint's request timeout (its
//! profile's, e.g. 5 s for Proposal Generator), or less with
//! [`test_send_wait`](ManagementApi::test_send_wait), polling the delivery log (so a
//! dispatcher in another process counts); a dispatcher must be running for an attempt to
//! happen at all.
//!
//! | route | what it does |
//! |---|---|
//! | `POST /webhooks` | registers an endpoint (201); `secret` in the reply only when generated |
//! | `GET /webhooks` | lists endpoints (`limit`, `cursor`, `status`) → `{webhooks, next_cursor}` |
//! | `GET`, `PUT`, `DELETE /webhooks/{id}` | one endpoint; `PUT` replaces the fields given; `DELETE` answers 204 |
//! | `POST /webhooks/{id}/pause`, `/resume` | pauses or resumes it |
//! | `POST /webhooks/{id}/rotate-secret` | `{secret?, grace_period_seconds?}` → `{secret}` |
//! | `POST /webhooks/{id}/test` | sends a test event (the optional body is its data) → 200 `{delivery_id, status, response_status, latency_ms}` once the first attempt has an outcome, else 202 `{delivery_id}` |
//! | `POST /webhooks/{id}/verify` | runs the `webhook.verify` handshake again → 200 with the endpoint; 503 without a [transport](ManagementApi::transport) |
//! | `POST /webhooks/{id}/recover` | `{since, until?}` (RFC 3339): retries its failed deliveries of that window → 202 `{queued}` |
//! | `GET /webhooks/{id}/deliveries` | its delivery log (`status`, `event_type`, `since`, `until`, `limit`, `cursor`) → `{deliveries, next_cursor}` |
//! | `GET /webhooks/{id}/stats` | its numbers over `since`..`until`: deliveries by outcome, attempts, latency |
//! | `GET /deliveries/{id}` | one delivery with its attempts |
//! | `POST /deliveries/{id}/retry` | retries it now (202) |
//! | `POST /deliveries/retry` | retries by the log's filters; `dry_run: true` only counts → `{matched, queued}` |
//! | `POST /events` | publishes `{type, data, id?, test?}` (admins only) → 202 `{id, deliveries}` |
//! | `GET /event-types` | the event catalog: each type of the profiles in use with its data's JSON Schema and the seed's example (`profile` to ask for others) |
//! | `GET /openapi.json` | the OpenAPI 3.1 document, generated from the code (no authentication) |
//! | `GET /health` | 200 when the store answers (no authentication) |
//!
//! Configuration requests and test sends are [rate limited](rate_limit) per caller
//! ([`ManagementApi::config_rate_limit`], [`ManagementApi::test_rate_limit`]), and every
//! `POST` takes an `Idempotency-Key` whose first response is replayed for 24 h (see
//! [`ReplayStore`]). Both count in memory by default; a
//! [`PostgresStore`](crate::send::PostgresStore) shares them between processes.
//!
//! ```
//! use hookrelay::send::{MemoryStore, Sender};
//! use hookrelay::server::{ManagementApi, Principal, Token};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sender = Sender::new(MemoryStore::new());
//! let api = ManagementApi::new(sender.clone())
//!     .token(Token::new("admin-token")?, Principal::Admin)
//!     .router();
//! let app: axum::Router = axum::Router::new().nest("/api", api);
//! # let _ = app; Ok(())
//! # }
//! ```

mod actions;
mod auth;
mod body;
mod catalog;
pub mod dashboard;
mod deliveries;
mod idempotency;
pub(crate) mod inbox;
mod openapi;
mod path;
#[cfg(feature = "postgres")]
mod postgres;
mod problem;
pub mod rate_limit;
mod routes;
mod schemas;
mod time;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::middleware::from_fn_with_state;
use http::request::Parts;

pub use auth::{InvalidToken, Principal, PrincipalResolver, Token, TokenTable};
pub use dashboard::{Dashboard, PortalLinks};
pub use idempotency::{
    Begun, IDEMPOTENCY_KEY, IDEMPOTENT_REPLAYED, MAX_IDEMPOTENCY_KEY, MemoryReplayStore,
    REPLAY_WINDOW, ReplayStore, StoredReply,
};
pub use problem::{FieldError, PROBLEM_JSON, Problem};
pub use rate_limit::{
    Hit, InvalidRateLimit, MemoryRateLimitStore, RateLimit, RateLimitStore, StoreFuture,
};

use crate::profile::Profile;
use crate::send::{DeliveryStore, Sender, Transport};

/// The largest request body the API reads: 1 MiB (413 beyond).
pub const MAX_BODY: usize = 1 << 20;

/// Builds the management API's [`Router`] from a [`Sender`].
pub struct ManagementApi<S> {
    sender: Sender<S>,
    tokens: TokenTable,
    resolver: Option<Box<dyn PrincipalResolver>>,
    default_profile: Profile,
    default_retry_policy: Option<crate::retry::RetryPolicy>,
    handshake: Option<actions::Handshake<S>>,
    test_wait: Option<Duration>,
    limits: rate_limit::Limits,
    replays: Arc<dyn ReplayStore>,
    inbox: Option<Arc<dyn inbox::InboxAdmin>>,
}

impl<S> std::fmt::Debug for ManagementApi<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagementApi")
            .field("tokens", &self.tokens)
            .field("resolver", &self.resolver.is_some())
            .field("default_profile", &self.default_profile)
            .field("transport", &self.handshake.is_some())
            .field("test_wait", &self.test_wait)
            .field("limits", &self.limits)
            .field("inbox", &self.inbox.is_some())
            .finish_non_exhaustive()
    }
}

impl<S: DeliveryStore> ManagementApi<S> {
    /// An API over `sender` that lets nobody in until given tokens or a resolver.
    pub fn new(sender: Sender<S>) -> Self {
        Self {
            sender,
            tokens: TokenTable::new(),
            resolver: None,
            default_profile: Profile::StandardWebhooks,
            default_retry_policy: None,
            handshake: None,
            test_wait: None,
            limits: rate_limit::Limits::default(),
            replays: Arc::new(MemoryReplayStore::default()),
            inbox: None,
        }
    }

    /// A bearer token that speaks for `principal`.
    pub fn token(mut self, token: Token, principal: Principal) -> Self {
        self.tokens.insert(token, principal);
        self
    }

    /// The app's own resolver, asked when no token of the table matches.
    pub fn resolver(mut self, resolver: impl PrincipalResolver) -> Self {
        self.resolver = Some(Box::new(resolver));
        self
    }

    /// The [`RetryPolicy`](crate::retry::RetryPolicy) of endpoints created without one
    /// (default: the endpoint builder's). `hookrelay serve --max-attempts N` sets it.
    pub fn default_retry_policy(mut self, policy: crate::retry::RetryPolicy) -> Self {
        self.default_retry_policy = Some(policy);
        self
    }

    /// The profile of endpoints registered without one (default Standard Webhooks).
    pub fn default_profile(mut self, profile: Profile) -> Self {
        self.default_profile = profile;
        self
    }

    /// The transport the API runs the `webhook.verify` handshake through: at the
    /// registration of a Proposal Generator endpoint, when its URL changes, and on
    /// `POST /webhooks/{id}/verify` (the dispatcher's own transport, e.g. a
    /// `ReqwestTransport` with its SSRF guard, is the one to give). Without one, those
    /// endpoints stay pending and `/verify` answers 503.
    pub fn transport<T: Transport>(mut self, transport: T) -> Self {
        let transport = Arc::new(transport);
        self.handshake = Some(Arc::new(move |sender: Sender<S>, id| {
            let transport = Arc::clone(&transport);
            Box::pin(async move { sender.verify_endpoint(&*transport, &id).await })
        }));
        self
    }

    /// The longest a test send waits for its first attempt's outcome before answering 202
    /// (default, and at most: the endpoint's request timeout).
    pub fn test_send_wait(mut self, wait: Duration) -> Self {
        self.test_wait = Some(wait);
        self
    }

    /// The limit of configuration requests per caller — `POST`, `PUT`, `DELETE` under
    /// `/webhooks`, test sends excepted (default 10 per minute; see [`rate_limit`]).
    pub fn config_rate_limit(mut self, limit: RateLimit) -> Self {
        self.limits.config = limit;
        self
    }

    /// The limit of test sends per caller, `POST /webhooks/{id}/test` (default 5 per
    /// minute; see [`rate_limit`]).
    pub fn test_rate_limit(mut self, limit: RateLimit) -> Self {
        self.limits.test = limit;
        self
    }

    /// Where rate limits are counted (default a [`MemoryRateLimitStore`], one process);
    /// a [`PostgresStore`](crate::send::PostgresStore) shares them between processes.
    pub fn rate_limit_store(mut self, store: impl RateLimitStore) -> Self {
        self.limits.store = Arc::new(store);
        self
    }

    /// Where `Idempotency-Key` responses are kept (default a [`MemoryReplayStore`], one
    /// process); a [`PostgresStore`](crate::send::PostgresStore) shares them between
    /// processes.
    pub fn replay_store(mut self, store: impl ReplayStore) -> Self {
        self.replays = Arc::new(store);
        self
    }

    /// The receiver's inbox (feature `inbox`, on with `server`), for the admin routes under
    /// `/inbox`: entries with their attempts, counts, and replaying dead letters one by one
    /// or by filter. Customers get 403; without an inbox those routes answer 404.
    pub fn inbox<I: crate::receive::inbox::InboxStore>(
        mut self,
        inbox: crate::receive::inbox::Inbox<I>,
    ) -> Self {
        self.inbox = Some(Arc::new(inbox));
        self
    }

    /// What the handlers share.
    pub(crate) fn into_state(self) -> Arc<Api<S>> {
        Arc::new(Api {
            sender: self.sender,
            tokens: self.tokens,
            resolver: self.resolver,
            default_profile: self.default_profile,
            default_retry_policy: self.default_retry_policy,
            handshake: self.handshake,
            test_wait: self.test_wait,
            limits: self.limits,
            replays: self.replays,
            inbox: self.inbox,
        })
    }

    /// The router, to serve or to nest under any path.
    pub fn router(self) -> Router {
        let state = self.into_state();
        routes::all::<S>()
            .into_iter()
            .fold(Router::new(), |router, r| router.route(r.path, r.handler))
            // Outermost last: authentication, then rate limits, then idempotency.
            .route_layer(axum::middleware::from_fn(path::layer))
            .route_layer(from_fn_with_state(
                Arc::clone(&state),
                idempotency::layer::<S>,
            ))
            .route_layer(from_fn_with_state(
                Arc::clone(&state),
                rate_limit::layer::<S>,
            ))
            .fallback(no_route)
            .method_not_allowed_fallback(no_method)
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(state)
    }
}

/// What every handler shares.
pub(crate) struct Api<S> {
    pub(crate) sender: Sender<S>,
    tokens: TokenTable,
    resolver: Option<Box<dyn PrincipalResolver>>,
    pub(crate) default_profile: Profile,
    pub(crate) default_retry_policy: Option<crate::retry::RetryPolicy>,
    pub(crate) handshake: Option<actions::Handshake<S>>,
    pub(crate) test_wait: Option<Duration>,
    limits: rate_limit::Limits,
    replays: Arc<dyn ReplayStore>,
    pub(crate) inbox: Option<Arc<dyn inbox::InboxAdmin>>,
}

impl<S> Api<S> {
    /// The sender's clock, in whole seconds.
    pub(crate) fn now(&self) -> crate::Timestamp {
        let millis = self.sender.shared.now().as_millis();
        crate::Timestamp::from_unix(i64::try_from(millis / 1000).unwrap_or(i64::MAX))
    }
}

/// Who a request speaks for, and the bucket its rate limits count in; the layers resolve
/// it once and leave it in the request's extensions for the handler.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub(crate) principal: Principal,
    pub(crate) bucket: String,
}

/// The request's [`Identity`]: from its extensions, the token table or the app's resolver.
pub(crate) fn identify<S>(api: &Api<S>, parts: &Parts) -> Option<Identity> {
    if let Some(known) = parts.extensions.get::<Identity>() {
        return Some(known.clone());
    }
    if let Some(token) = auth::bearer(parts)
        && let Some(principal) = api.tokens.lookup(token)
    {
        let bucket = rate_limit::token_bucket(token);
        return Some(Identity { principal, bucket });
    }
    let principal = api.resolver.as_ref()?.resolve(parts)?;
    let bucket = rate_limit::principal_bucket(&principal);
    Some(Identity { principal, bucket })
}

/// The principal a request speaks for; a handler taking it answers 401 without one.
pub(crate) struct Caller(pub(crate) Principal);

impl<S: Send + Sync + 'static> FromRequestParts<Arc<Api<S>>> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(
        parts: &mut Parts,
        api: &Arc<Api<S>>,
    ) -> Result<Self, Self::Rejection> {
        identify(api, parts)
            .map(|identity| Caller(identity.principal))
            .ok_or_else(Problem::unauthorized)
    }
}

async fn no_route() -> Problem {
    Problem::not_found("route")
}

async fn no_method() -> Problem {
    Problem::new(
        http::StatusCode::METHOD_NOT_ALLOWED,
        "this route does not take that method",
    )
}
