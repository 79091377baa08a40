//! Typed events and envelopes for the four source systems.
//!
//! | profile | module | body shape | event enum |
//! |---|---|---|---|
//! | `proposal-generator` (001) | [`proposal_generator`] | [`Envelope`] `{id?, type, timestamp, data}`, or the `webhook.verify` challenge | [`ProposalGeneratorEvent`] |
//! | `tasklink` (002) | [`tasklink`] | [`TaskLinkEnvelope`] `{event, id, timestamp, data, signature?}` | [`TaskLinkEvent`] |
//! | `taskon` (003) | [`taskon`] | flat reward object | [`TaskOnEvent`] |
//! | `task-hub` (004) | [`task_hub`] | [`Envelope`] `{id, type, timestamp, data}` (hookrelay's choice) | [`TaskHubEvent`] |
//!
//! Receiving: parse the body into the profile's envelope and `match` on the event enum.
//! Parsing is two-step (envelope, then `data` by event type), so unknown event types land in
//! an `Unknown` variant, unknown enum values in `Other(String)`, unknown fields in `extra`
//! maps that are written back — a new field or event from the sender never breaks a valid
//! webhook. Errors ([`EventError`]) name the offending field's path, e.g. `data.job.id`.
//! To use your own types, `Envelope::<YourType>::from_slice_as`.
//!
//! Sending: build the event data, let an [`EventFactory`] add id and timestamp, and write the
//! body with `to_js_bytes()` (see [`crate::json`] for why not `serde_json::to_vec`).
//!
//! Values do not drift: amounts are exact [`Decimal`]s, timestamps keep the sender's text
//! ([`EventTime`]), ids and types are newtypes.
//!
//! ```
//! use hookrelay::event::{TaskLinkEnvelope, TaskLinkEvent};
//!
//! let body = br#"{"event":"job.updated","id":"evt_123457","timestamp":"2025-10-07T08:00:00.000Z",
//!   "data":{"job":{"id":"job_123456","budget":550.00},"changes":{"budget":{"from":500.00,"to":550.00}}}}"#;
//! let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body)?;
//! match &env.data {
//!     TaskLinkEvent::JobUpdated(update) => {
//!         assert_eq!(update.job.budget, Some("550".parse()?));
//!         assert!(update.change("budget").is_some());
//!     }
//!     TaskLinkEvent::Unknown { event_type, .. } => println!("new event type {event_type}"),
//!     _ => {}
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod envelope;
pub(crate) mod error;
mod id;
mod mode;
mod money;
mod outgoing;
mod producer;
mod registration;
#[cfg(feature = "server")]
pub(crate) mod schema;
mod time;
pub(crate) mod wire;

pub mod proposal_generator;
pub mod task_hub;
pub mod tasklink;
pub mod taskon;

pub use envelope::{BodySignature, Envelope, EventData, TaskLinkEnvelope};
pub use error::EventError;
pub use id::{EventId, EventType, IdGenerator, RandomIds, SequentialIds};
pub use mode::EventMode;
pub use money::{Decimal, DecimalError, DecimalString, as_string};
pub use outgoing::OutgoingEvent;
pub use producer::EventFactory;
pub use proposal_generator::ProposalGeneratorEvent;
pub use registration::{EndpointUrl, RegistrationSecret};
pub use task_hub::TaskHubEvent;
pub use tasklink::TaskLinkEvent;
pub use taskon::TaskOnEvent;
pub use time::{
    EventClock, EventTime, FixedEventClock, LenientTime, SystemEventClock, TimeError, TimePrecision,
};
