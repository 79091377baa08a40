//! [`Delivery`]: a verified delivery with its parsed body, as handlers get it.

use super::Inbound;

/// A verified delivery, its body parsed into `T`: what an axum route behind the
/// `WebhookLayer` extracts, and what an inbox worker's handler is called with.
#[derive(Debug, Clone)]
pub struct Delivery<T = serde_json::Value> {
    /// The parsed body.
    pub event: T,
    /// What the receiver learned: id, timestamp, coverage, event type, idempotency key, body.
    pub inbound: Inbound,
}
