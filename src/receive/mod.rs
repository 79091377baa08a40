//! Receiving webhooks: verify, de-duplicate and reply the way each sender expects.
//!
//! | piece | what it does |
//! |---|---|
//! | [`Receiver`] | the framework-neutral pipeline over any header map and body bytes |
//! | [`IdempotencyStore`] | remembers processed deliveries: [`MemoryIdempotencyStore`], `SqliteIdempotencyStore` (feature `sqlite`), `PostgresIdempotencyStore` (feature `postgres`, usable inside the handler's transaction) |
//! | [`Reply`], [`Rejection`] | status codes and the profile's reply bodies |
//! | [`Delivery`] | a verified delivery with its parsed body, as route handlers and inbox workers get it |
//! | `inbox` (feature `inbox`) | store first, answer at once, process later: the durable inbox, its workers and dead letters |
//! | `axum` (feature `axum`) | an extractor and a tower layer (inline, or storing into an inbox) |
//!
//! Status codes: 400 malformed or missing headers, 401 bad signature, API key or stale
//! timestamp (one generic body for every reason; the detail is in [`Rejection`] for logs),
//! 413 too large, 422 a valid signature over a payload that does not parse, 409 the same
//! delivery is being processed, 503 the idempotency store is down, 500 the handler failed.
//!
//! ## Logging (feature `tracing`)
//!
//! The reply to a refused request is deliberately generic; the reason goes to `tracing`,
//! target `hookrelay::receive`, with the fields `profile`, `status` and `reason` (store
//! failures carry `key` and `error`). Reasons name headers, never their values, and never a
//! secret.
//!
//! | event | level |
//! |---|---|
//! | 400, 401, 413, 422: the sender's request was refused | `INFO` |
//! | 409 in progress, a duplicate acknowledged, a handshake answered, the handler failed | `DEBUG` |
//! | the store could not record or release a delivery (a retry may run the handler again, or get 409 until the claim expires); a full memory store forgot its oldest processed deliveries | `WARN` |
//! | the store could not answer a claim (503), or a route lacks the layer (500) | `ERROR` |
//!
//! A flood of forged requests logs one `INFO` event each; filter `hookrelay::receive=warn` to
//! keep only the operator's problems.

mod delivery;
mod idempotency;
#[cfg(feature = "inbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "inbox")))]
pub mod inbox;
mod natural_key;
mod payload;
#[cfg(feature = "postgres")]
mod postgres;
mod receiver;
mod reply;
#[cfg(feature = "sqlite")]
mod sqlite;
mod trace;

#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub mod axum;

pub use delivery::Delivery;
pub use idempotency::{
    Claim, IdempotencyKey, IdempotencyStore, MemoryIdempotencyStore, Retention, StoreError,
    WhenFull,
};
pub use payload::{Json, WebhookPayload};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresIdempotencyStore;
pub use receiver::{Begin, HandlerOutcome, Inbound, Receiver, ReceiverBuilder, ReceiverError};
pub use reply::{Rejection, Reply};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteIdempotencyStore;
