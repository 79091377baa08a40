//! The inbox: store first, answer at once, process later (feature `inbox`).
//!
//! Handlers that run inline make the sender wait: a slow one makes it time out and retry, and
//! a crash between the 2xx and the handler's effect loses the event. With an inbox the
//! receiver verifies the delivery, stores it (raw body, the headers that matter, profile,
//! id, event type, received-at) and answers the profile's success reply at once; workers run
//! the app's handler afterwards, retrying under the receiver's own policy, and dead-letter
//! what keeps failing.
//!
//! | piece | what it does |
//! |---|---|
//! | [`Inbox`] | the handle: accepts verified deliveries, wakes workers, lists and replays entries |
//! | [`InboxWorker`] | runs the handler on due entries: leases, retries, dead letters |
//! | [`InboxQueue`], [`InboxLog`] | the store's two concerns; [`InboxStore`] is both |
//! | [`MemoryInbox`] | tests only: a crash loses what it holds |
//! | `SqliteInbox` (feature `sqlite`) | one process; every accepted delivery committed (WAL, `synchronous = FULL`) before the 2xx; concurrent accepts share a commit |
//! | `PostgresInbox` (feature `postgres`) | many receiver processes share one inbox; claims with `FOR UPDATE SKIP LOCKED` |
//!
//! Guarantees: nothing is answered 2xx before the store returned (a store failure answers
//! 503, so the sender retries); a duplicate (same idempotency key as the inline receiver
//! uses) is stored once and answered with the profile's duplicate reply; every stored
//! entry's handler runs at least once — a worker that dies leaves its lease to expire and
//! another takes the entry up — so make the handler's effect idempotent (the entry's
//! idempotency key is in `delivery.inbound`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use axum::{Router, routing::post};
//! use hookrelay::{Secret, profile::Profile};
//! use hookrelay::receive::{Delivery, Receiver, axum::InboxLayer};
//! use hookrelay::receive::inbox::{Inbox, InboxWorker, MemoryInbox};
//!
//! let receiver = Receiver::builder(Profile::TaskHub).secret(Secret::from_raw("your-secret")?).build()?;
//! let inbox = Inbox::new(MemoryInbox::new()); // SqliteInbox or PostgresInbox in production
//! let worker = InboxWorker::builder(inbox.clone())
//!     .handler(|delivery: Delivery| async move {
//!         println!("{:?}: {}", delivery.inbound.event_type(), delivery.event["data"]);
//!         Ok::<(), std::io::Error>(())
//!     })
//!     .build()?
//!     .spawn();
//! let app: Router = Router::new()
//!     .route("/webhooks/tasks", post(|| async {}))
//!     .route_layer(InboxLayer::new(receiver, inbox)); // the route's handler is not called
//! # let _ = (app, worker);
//! # Ok(())
//! # }
//! ```

mod accept;
mod entry;
mod memory;
#[cfg(feature = "postgres")]
mod postgres;
mod query;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod store;
mod worker;

pub use accept::{Inbox, KEPT_HEADERS};
pub use entry::{
    Accepted, AttemptResult, ClaimedEntry, EntryStatus, InboxAttempt, InboxCounts, InboxEntry,
    InboxId, InvalidInboxId, NewEntry, Recorded, UnknownStatus,
};
pub use memory::MemoryInbox;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::PostgresInbox;
pub use query::{InboxPage, InboxQuery, InvalidPageSize, MAX_PAGE};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::SqliteInbox;
pub use store::{InboxLog, InboxQueue, InboxStore};
pub use worker::{
    InboxWorker, InboxWorkerBuilder, WorkerConfigError, WorkerHandle, default_policy,
};
