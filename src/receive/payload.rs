//! Turning a verified body into the type a handler wants.

use bytes::Bytes;
use serde::de::DeserializeOwned;

/// A type a verified webhook body can be parsed into.
///
/// Implemented for [`serde_json::Value`], raw [`Bytes`], [`Json<T>`] for any
/// `DeserializeOwned` type of yours, and the typed events of [`crate::event`]:
/// [`Envelope<D>`](crate::event::Envelope) and
/// [`TaskLinkEnvelope<D>`](crate::event::TaskLinkEnvelope) for any event enum `D`,
/// [`TaskOnEvent`](crate::event::TaskOnEvent) and Proposal Generator's
/// [`Message`](crate::event::proposal_generator::Message) (event or challenge).
///
/// ```
/// use bytes::Bytes;
/// use hookrelay::event::{TaskLinkEnvelope, TaskLinkEvent};
/// use hookrelay::receive::WebhookPayload;
///
/// let body = Bytes::from_static(br#"{"event":"dispute.resolved","id":"evt_9","timestamp":"2025-10-08T10:00:00.000Z","data":{"dispute":{"id":"dsp_1","status":"RESOLVED"}}}"#);
/// let envelope = TaskLinkEnvelope::<TaskLinkEvent>::from_body(&body)?;
/// assert!(matches!(envelope.data, TaskLinkEvent::DisputeResolved(_)));
/// # Ok::<(), String>(())
/// ```
pub trait WebhookPayload: Sized {
    /// Parses the body; the error text is logged, never sent back.
    fn from_body(body: &Bytes) -> Result<Self, String>;
}

impl WebhookPayload for serde_json::Value {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        serde_json::from_slice(body).map_err(|err| err.to_string())
    }
}

impl WebhookPayload for Bytes {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        Ok(body.clone())
    }
}

/// Your own type, parsed from the JSON body with serde.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned> WebhookPayload for Json<T> {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        serde_json::from_slice(body)
            .map(Json)
            .map_err(|err| err.to_string())
    }
}

impl<D: crate::event::EventData> WebhookPayload for crate::event::Envelope<D> {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        Self::from_slice(body).map_err(|err| err.to_string())
    }
}

impl<D: crate::event::EventData> WebhookPayload for crate::event::TaskLinkEnvelope<D> {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        Self::from_slice(body).map_err(|err| err.to_string())
    }
}

impl WebhookPayload for crate::event::TaskOnEvent {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        Self::from_slice(body).map_err(|err| err.to_string())
    }
}

impl WebhookPayload for crate::event::proposal_generator::Message {
    fn from_body(body: &Bytes) -> Result<Self, String> {
        Self::from_slice(body).map_err(|err| err.to_string())
    }
}
