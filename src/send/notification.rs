//! [`Notification`]: what the dispatcher tells the app about its endpoints' health.

use super::store::DeadReason;
use super::{DeliveryId, EndpointId, MessageId};
use crate::event::EventType;
use crate::retry::{DisableReason, UnixMillis};

/// A change in an endpoint's health, or a delivery given up, sent to every
/// [`Sender::notifications`](super::Sender::notifications) receiver.
///
/// Notifications are best effort (a receiver that falls behind misses the oldest); the
/// endpoint's status in the store is the record.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Notification {
    /// The endpoint was disabled: it answered `410 Gone`, or failed continuously for its
    /// [`auto_disable_after`](super::Endpoint::auto_disable_after) window. Its pending
    /// deliveries wait until it is enabled again.
    EndpointDisabled {
        /// The endpoint.
        endpoint: EndpointId,
        /// Why.
        reason: DisableReason,
    },
    /// The endpoint's circuit breaker opened: its deliveries wait (no attempt is spent)
    /// until `until`, then one probe is sent.
    EndpointPaused {
        /// The endpoint.
        endpoint: EndpointId,
        /// When the probe may go.
        until: UnixMillis,
    },
    /// The breaker closed again: a probe succeeded.
    EndpointResumed {
        /// The endpoint.
        endpoint: EndpointId,
    },
    /// A disabled endpoint was enabled again by hand
    /// ([`Sender::resume_endpoint`](super::Sender::resume_endpoint)).
    EndpointEnabled {
        /// The endpoint.
        endpoint: EndpointId,
    },
    /// A delivery was dead-lettered: its retries ran out, its outcome was final, its
    /// endpoint answered `410 Gone`, or its destination was refused. Sent once the
    /// dispatcher has recorded it; [`Sender::retry_delivery`](super::Sender::retry_delivery)
    /// sends it again.
    DeliveryDead {
        /// The delivery.
        delivery: DeliveryId,
        /// Its endpoint.
        endpoint: EndpointId,
        /// Its message.
        message: MessageId,
        /// The message's event type.
        event_type: EventType,
        /// Attempts made, the last included.
        attempts: u32,
        /// Why it was given up.
        reason: DeadReason,
    },
}
