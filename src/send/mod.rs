//! Sending webhooks: endpoints, a durable delivery store, publishing, and the dispatcher that
//! signs, delivers, retries and logs every attempt.
//!
//! ```no_run
//! # #[cfg(feature = "reqwest")]
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use hookrelay::{Secret, event::OutgoingEvent, profile::Profile};
//! use hookrelay::send::{Endpoint, MemoryStore, ReqwestTransport, Sender};
//! use std::time::Duration;
//!
//! let sender = Sender::new(MemoryStore::new()); // or SqliteStore (feature `sqlite`)
//! sender.add_endpoint(
//!     Endpoint::builder("https://example.com/webhooks", Profile::TaskHub)
//!         .secret(Secret::from_raw("your-secret-key")?)
//!         .build()?,
//! ).await?;
//! let dispatcher = sender.dispatcher(ReqwestTransport::new()?).spawn();
//!
//! let event = OutgoingEvent::new("task.created", serde_json::json!({"taskId": "123"}));
//! let message_id = sender.publish(event).await?; // stored; delivery starts at once
//!
//! dispatcher.shutdown(Duration::from_secs(10)).await?;
//! # let _ = message_id; Ok(()) }
//! ```
//!
//! | piece | what it does |
//! |---|---|
//! | [`Endpoint`] | URL, profile, secrets (rotation), subscriptions, status, rate limit, concurrency cap, JSON mode, custom headers |
//! | [`Sender`] | registers endpoints; [`publish`](Sender::publish) fixes the body bytes once and fans out one delivery per matching active endpoint |
//! | [`store`] | the [`DeliveryStore`] trait: claim due work with a lease and a fencing token; [`MemoryStore`], `SqliteStore`, `PostgresStore` (many processes, transactional outbox) |
//! | [`Dispatcher`] | claims, signs every attempt afresh, sends, records, asks the retry planner; per-endpoint limits; graceful shutdown |
//! | [`Transport`] | the HTTP seam; `ReqwestTransport` (feature `reqwest`) with the SSRF guard |
//! | [`Sender::verify_endpoint`] | the `webhook.verify` handshake a new Proposal Generator endpoint must pass |
//! | [`Sender::send_test`] | a test event with your payload, marked [`DeliveryKind::Test`] |
//! | [`Throttle`], [`DeliveryOrder`] | progress throttling (latest state wins); opt-in one-at-a-time delivery |
//! | [`Batching`] | opt-in: many events in one signed POST (a JSON array of envelopes) |
//! | [`Sender::retry_delivery`], [`Sender::recover`], [`Sender::dead_letters`] | replay and recovery, same ids, logged as manual |
//! | [`Sender::purge`], [`LogRetention`] | deleting old deliveries and logs in short batches |
//! | [`Notification`] | endpoints disabled (410, or failing past a window), paused by their circuit breaker or enabled again; deliveries dead-lettered |
//! | [`OperationalWebhooks`] | those notifications as signed webhooks to the operator's own endpoint ([`Sender::publish_to`], one endpoint, no fan-out) |
//! | [`telemetry`] | metric names and labels (feature `metrics`) and the attempt span (feature `tracing`) |
//!
//! **Pacing.** A receiver's `429` with `Retry-After`, or `X-RateLimit-Remaining: 0` with
//! `X-RateLimit-Reset`, holds every delivery to that endpoint until then (clamped to the
//! policy's `Retry-After` cap); waiting as asked is logged but not counted against the retry
//! policy. Other endpoints are unaffected.
//!
//! **Health.** Each dispatcher tracks its endpoints' failures: continuous failure for
//! [`Endpoint::auto_disable_after`] (5 days by default) disables the endpoint, `410 Gone` at
//! once, and an opt-in [`CircuitBreaker`](crate::retry::CircuitBreaker) pauses an endpoint
//! that is failing right now and probes it with one delivery. The failure clock is stored
//! with the endpoint ([`Endpoint::failing_since`]) when a run of failures begins or ends, so
//! a restarted dispatcher keeps it; the breaker's state is each dispatcher's own.
//!
//! **At least once.** A delivery is finished only when its result is recorded under a current
//! claim. A process killed at any instant loses nothing: claims it held run out and are
//! claimed again, so an attempt the receiver answered with 2xx, whose result was not yet
//! stored, is sent again with the same delivery id (receivers deduplicate on it). How much a
//! store keeps across a crash is in the [`store`] docs. A store that fails while the process
//! lives costs no re-send: the [`Dispatcher`] keeps the results it could not record and
//! records them when the store answers again, claiming nothing new meanwhile.

mod admin;
mod batching;
#[cfg(feature = "test-util")]
mod clock;
mod dispatcher;
mod endpoint;
mod handshake;
#[cfg(feature = "reqwest")]
mod http;
mod id;
mod label;
mod notification;
mod operational;
mod ordering;
#[cfg(feature = "postgres")]
mod outbox;
mod recovery;
mod sender;
mod signing;
pub use signing::{EVENT_ID_HEADER, EVENT_TYPE_HEADER};
mod ssrf;
pub mod store;
pub mod telemetry;
mod throttle;
mod transport;

pub use admin::{
    AdminError, BulkRetried, BulkRetry, DEFAULT_ROTATION_GRACE, DeliveryDetail, MAX_ROTATION_GRACE,
    MessageView,
};
pub use batching::Batching;
#[cfg(feature = "test-util")]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub use clock::ManualClock;
pub use dispatcher::{Dispatcher, DispatcherBuilder, DispatcherHandle, NotIdle, ShutdownReport};
pub use endpoint::{
    Endpoint, EndpointBuilder, EndpointError, EndpointStatus, EventFilter, JsonMode, SigningSecret,
};
pub use handshake::{HandshakeFailure, VERIFY_EVENT, Verification};
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub use http::{
    HostResolver, Lookup, ReqwestTransport, ReqwestTransportBuilder, StaticResolver,
    SystemResolver, TransportBuildError,
};
pub use id::{DeliveryId, EndpointId, InvalidId, MessageId};
pub use label::{EndpointKey, InvalidLabel, MAX_LABEL_LEN, Owner};
pub use notification::Notification;
pub use operational::{
    ENDPOINT_DISABLED, ENDPOINT_ENABLED, ENDPOINT_PAUSED, MESSAGE_ATTEMPT_EXHAUSTED,
    OPERATIONAL_EVENT_TYPES, OPERATIONAL_KEY, OPERATIONAL_OWNER, OperationalForwarding,
    OperationalWebhooks,
};
pub use ordering::{DataPointer, DeliveryOrder, InvalidPointer};
pub use recovery::DeadLetter;
pub use sender::{PublishError, Receipt, Sender};
pub use ssrf::{AddressPolicy, Destination, InvalidRange, IpRange, is_public};
pub use store::{
    AttemptLog, Cursor, DeliveryCounts, DeliveryKind, DeliveryLog, DeliveryQueue, DeliveryRecord,
    DeliveryStatus, DeliveryStore, EndpointQuery, EndpointRegistry, EndpointStats, LogQuery,
    LogRetention, MemoryStore, MessageRecord, Page, PageLimit, Purged, SeriesScope,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use store::{Durability, SqliteStore, SqliteStoreBuilder};
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub use store::{EncryptionError, EncryptionKey, KeyId, Keyring};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use store::{Migrations, PostgresStore, PostgresStoreBuilder};
pub use throttle::{Throttle, ThrottleGroup};
pub use transport::{
    LOGGED_RESPONSE_HEADERS, OutboundRequest, REDACTED, RESPONSE_BODY_CAP, Refusal, Transport,
    TransportError, TransportResponse,
};
