//! # hookrelay
//!
//! Send and receive webhooks: sign and verify requests under the schemes real systems use
//! (Proposal Generator, TaskLink, TaskOn, an X-Hub task service, Standard Webhooks, GitHub,
//! Stripe), with raw-byte verification, secret rotation, replay windows and typed errors.
//!
//! ```
//! use hookrelay::scheme::{Message, Scheme, XHub};
//! use hookrelay::{Secret, Verifier};
//!
//! let secret = Secret::from_raw("your-secret-key")?;
//! let body = br#"{"type":"task.created","data":{"taskId":"123"}}"#;
//!
//! // Sender: the headers to attach.
//! let headers = XHub::new().sign(&secret, &Message::new(body))?;
//!
//! // Receiver: verify the raw bytes, then parse.
//! let verifier = Verifier::builder(XHub::new()).secret(secret).build()?;
//! let received: Vec<(String, String)> =
//!     headers.iter().map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
//! let verified = verifier.verify(&received, body)?;
//! let event: serde_json::Value = verified.json()?;
//! assert_eq!(event["type"], "task.created");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Layout
//!
//! This page is the map of the crate; each concept lives in one file.
//!
//! | module | what it holds |
//! |---|---|
//! | [`secret`] | [`Secret`] (redacted, constant-time, pre-keyed HMAC) and [`MacTag`] |
//! | [`clock`] | [`Timestamp`] (strict unix seconds) and the injectable [`Clock`] |
//! | [`headers`] | [`HeaderLookup`] over any header map, and the [`SignedHeaders`] a sender attaches |
//! | [`scheme`] | the [`Scheme`] trait and the seven built-in schemes |
//! | [`verify`] | [`Verifier`], its builder, [`Verified`] and [`VerifyError`] |
//! | [`profile`] | [`Profile`](profile::Profile): each source system's scheme, ids, replies and retry schedule |
//! | [`receive`] | the receive pipeline: [`Receiver`](receive::Receiver), idempotency stores, replies, the axum layer and extractor, the inbox (feature `inbox`) |
//! | [`retry`] | the retry planner: policies and presets, outcome classification, `Retry-After`, jitter, endpoint health, rate limiting |
//! | [`event`] | typed events and envelopes for the four source systems; ids, timestamps, exact decimals |
//! | [`json`] | a JSON writer whose output survives `JSON.stringify(JSON.parse(x))` (or Python's `json.dumps`) |
//! | [`StoreError`] | why a store (delivery or idempotency; memory, SQLite, PostgreSQL or yours) failed: opaque, with queries such as [`is_retryable`](StoreError::is_retryable) |
//! | `send` (feature `send`) | endpoints, delivery stores, publishing, the dispatcher, the SSRF guard and the reqwest transport |
//! | `server` (feature `server`) | the management API: an axum router over a `Sender`, bearer-token principals, RFC 9457 problems |
//!
//! The core (`secret`, `clock`, `headers`, `scheme`, `verify`, `event`, `json`, `retry`,
//! `profile`) knows nothing of `send` or `receive`; those two build on it, and the adapters
//! (axum, reqwest, sqlx) sit at their edges.
//!
//! ## Features
//!
//! | feature | enables |
//! |---|---|
//! | `ed25519` | Standard Webhooks `v1a` (Ed25519) signing and verification |
//! | `axum` | the axum extractor and layers in `receive::axum` |
//! | `inbox` | `receive::inbox`: store first, answer at once, process later (workers, retries, dead letters) |
//! | `send` | `send`: endpoints, the in-memory delivery store, publishing, the tokio dispatcher |
//! | `reqwest` | `send::ReqwestTransport`, the HTTP transport with the SSRF guard (implies `send`) |
//! | `sqlite` | `receive::SqliteIdempotencyStore`, `receive::inbox::SqliteInbox` and `send::SqliteStore` on one file (implies `send`, `inbox`) |
//! | `postgres` | `send::PostgresStore` (many dispatcher processes on many hosts, the transactional outbox `Sender::publish_in`, `LISTEN/NOTIFY`) and `receive::PostgresIdempotencyStore` (implies `send`) |
//! | `tracing` | why the receiver refused a request, idempotency-store failures, and one span per delivery attempt |
//! | `metrics` | the dispatcher's metrics through the `metrics` facade (implies `send`; names in `send::telemetry`) |
//! | `server` | `server::ManagementApi`, the management API's axum router (implies `send`; first slice of issue #19) |
//! | `cli` | the `hookrelay` command-line tool (`sign`, `verify`, `listen`, `send`, `serve`, `relay`) |
//! | `test-util` | helpers for tests, as tokio's: `send::ManualClock`, `Dispatcher::run_due`, `DispatcherBuilder::jitter_seed` (with `send`) |
//!
//! The core (everything above without features) does no I/O and needs no async runtime.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
pub mod event;
pub mod headers;
pub mod json;
#[cfg(feature = "postgres")]
mod postgres;
pub mod profile;
pub mod receive;
pub mod retry;
pub mod scheme;
pub mod secret;
#[cfg(feature = "send")]
#[cfg_attr(docsrs, doc(cfg(feature = "send")))]
pub mod send;
#[cfg(feature = "server")]
#[cfg_attr(docsrs, doc(cfg(feature = "server")))]
pub mod server;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sqlx_error;
mod store_error;
pub mod verify;

pub use clock::{Clock, FixedClock, SystemClock, Timestamp, TimestampError};
pub use headers::{HeaderLookup, HeaderValue, Redact, SignedHeaders};
pub use scheme::{Scheme, Tolerance};
pub use secret::{MacTag, Secret, SecretError};
pub use store_error::StoreError;
pub use verify::{BuildError, PayloadError, Verified, Verifier, VerifierBuilder, VerifyError};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(all(
    doctest,
    feature = "axum",
    feature = "reqwest",
    feature = "sqlite",
    feature = "postgres",
    feature = "server"
))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
