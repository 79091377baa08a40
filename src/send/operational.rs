//! [`OperationalWebhooks`]: the operator's own endpoint, told (with signed webhooks, by the
//! same dispatcher) when a customer's endpoint is disabled, paused by its circuit breaker or
//! enabled again, and when a delivery is dead-lettered — svix calls these operational
//! webhooks.
//!
//! | event type | when | `data` |
//! |---|---|---|
//! | `endpoint.disabled` | [`Notification::EndpointDisabled`]: `410 Gone`, or failing past its window | `{endpoint_id, owner, reason: "gone" \| "failing", failing_since}` |
//! | `endpoint.paused` | [`Notification::EndpointPaused`]: its circuit breaker opened | `{endpoint_id, owner, until}` |
//! | `endpoint.enabled` | [`Notification::EndpointResumed`] (a probe succeeded) or [`Notification::EndpointEnabled`] (enabled by hand) | `{endpoint_id, owner, reason: "probe_succeeded" \| "enabled"}` |
//! | `message.attempt.exhausted` | [`Notification::DeliveryDead`] | `{endpoint_id, owner, delivery_id, message_id, event_type, attempts, reason: "exhausted" \| "not_retryable" \| "endpoint_gone" \| "refused"}` |
//!
//! `owner` is the endpoint's owner or `null`; times (`until`, `failing_since`, or `null`)
//! are RFC 3339 UTC. The operational endpoint is an ordinary endpoint owned by
//! [`OPERATIONAL_OWNER`] (so no customer lists it; admins do), subscribed to these four types
//! only, and reached with [`Sender::publish_to`]: never by a customer's `*` subscription.
//! Nothing is said about the operational endpoint itself (no loop when it fails).

use std::fmt;

use super::store::{DeliveryStore, StoreError};
use super::{
    Endpoint, EndpointBuilder, EndpointId, EndpointKey, EndpointStatus, EventFilter, MessageId,
    Notification, Owner, PublishError, Sender,
};
use crate::event::{EventTime, OutgoingEvent, TimePrecision};
use crate::profile::Profile;
use crate::retry::{DisableReason, UnixMillis};

/// `endpoint.disabled`: an endpoint was disabled.
pub const ENDPOINT_DISABLED: &str = "endpoint.disabled";
/// `endpoint.paused`: an endpoint's circuit breaker opened.
pub const ENDPOINT_PAUSED: &str = "endpoint.paused";
/// `endpoint.enabled`: an endpoint takes deliveries again.
pub const ENDPOINT_ENABLED: &str = "endpoint.enabled";
/// `message.attempt.exhausted`: a delivery was dead-lettered.
pub const MESSAGE_ATTEMPT_EXHAUSTED: &str = "message.attempt.exhausted";
/// Every operational event type.
pub const OPERATIONAL_EVENT_TYPES: [&str; 4] = [
    ENDPOINT_DISABLED,
    ENDPOINT_PAUSED,
    ENDPOINT_ENABLED,
    MESSAGE_ATTEMPT_EXHAUSTED,
];
/// The owner of the operational endpoint.
pub const OPERATIONAL_OWNER: &str = "hookrelay-operational";
/// The operational endpoint's key among its owner's endpoints.
pub const OPERATIONAL_KEY: &str = "operational";

/// Forwards a [`Sender`]'s [`Notification`]s to the operator's endpoint as signed webhooks.
///
/// ```
/// use hookrelay::Secret;
/// use hookrelay::send::{MemoryStore, OperationalWebhooks, Sender};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sender = Sender::new(MemoryStore::new());
/// let endpoint = OperationalWebhooks::<MemoryStore>::endpoint("https://ops.example/hooks")
///     .secret(Secret::generate()?)
///     .build()?;
/// let id = sender.add_endpoint(endpoint).await?;
/// let forwarding = OperationalWebhooks::new(sender.clone(), id).spawn();
/// // … run the dispatcher; health changes and dead letters now reach ops.example.
/// forwarding.stop();
/// # Ok(())
/// # }
/// ```
pub struct OperationalWebhooks<S> {
    sender: Sender<S>,
    endpoint: EndpointId,
}

impl<S> fmt::Debug for OperationalWebhooks<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OperationalWebhooks")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl<S: DeliveryStore> OperationalWebhooks<S> {
    /// Forwards `sender`'s notifications to `endpoint` (registered with the same sender).
    pub fn new(sender: Sender<S>, endpoint: EndpointId) -> Self {
        Self { sender, endpoint }
    }

    /// An operational endpoint for `url`, to finish with a secret and build: Standard
    /// Webhooks, active, owned by [`OPERATIONAL_OWNER`] under [`OPERATIONAL_KEY`], subscribed
    /// to the [operational event types](OPERATIONAL_EVENT_TYPES) only.
    pub fn endpoint(url: impl Into<String>) -> EndpointBuilder {
        let filter = OPERATIONAL_EVENT_TYPES
            .iter()
            .fold(EventFilter::default(), |filter, kind| filter.or(kind));
        let mut builder = Endpoint::builder(url, Profile::StandardWebhooks)
            .filter(filter)
            .status(EndpointStatus::Active);
        if let Ok(owner) = Owner::new(OPERATIONAL_OWNER) {
            builder = builder.owner(owner);
        }
        if let Ok(key) = EndpointKey::new(OPERATIONAL_KEY) {
            builder = builder.key(key);
        }
        builder
    }

    /// The operational endpoint already registered in `sender`'s store, if any.
    pub async fn find(sender: &Sender<S>) -> Result<Option<std::sync::Arc<Endpoint>>, StoreError> {
        let (Ok(owner), Ok(key)) = (
            Owner::new(OPERATIONAL_OWNER),
            EndpointKey::new(OPERATIONAL_KEY),
        ) else {
            return Ok(None);
        };
        sender.endpoint_by_key(Some(&owner), &key).await
    }

    /// Publishes the webhook `notification` calls for, to the operational endpoint only;
    /// `None` when it calls for none (it concerns the operational endpoint itself).
    pub async fn forward(
        &self,
        notification: &Notification,
    ) -> Result<Option<MessageId>, PublishError> {
        let subject = subject(notification);
        if subject == Some(&self.endpoint) {
            return Ok(None);
        }
        let owner = match subject {
            Some(id) => self
                .sender
                .endpoint(id)
                .await?
                .and_then(|e| e.owner().map(|o| o.as_str().to_owned())),
            None => None,
        };
        let event = event(notification, owner);
        self.sender
            .publish_to(&self.endpoint, event)
            .await
            .map(Some)
    }

    /// Forwards every notification from now on, on the current tokio runtime, until
    /// [`OperationalForwarding::stop`]. A publish that fails is logged (feature `tracing`)
    /// and skipped; so are notifications missed by falling behind.
    pub fn spawn(self) -> OperationalForwarding {
        let mut notifications = self.sender.notifications();
        let task = tokio::spawn(async move {
            loop {
                match notifications.recv().await {
                    Ok(notification) => {
                        if let Err(_error) = self.forward(&notification).await {
                            #[cfg(feature = "tracing")]
                            tracing::warn!(
                                target: "hookrelay::send",
                                error = %_error,
                                "operational webhook not published"
                            );
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_missed)) => {
                        #[cfg(feature = "tracing")]
                        tracing::warn!(
                            target: "hookrelay::send",
                            missed = _missed,
                            "operational webhooks fell behind"
                        );
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        OperationalForwarding { task }
    }
}

/// The running forwarder of [`OperationalWebhooks::spawn`].
#[derive(Debug)]
pub struct OperationalForwarding {
    task: tokio::task::JoinHandle<()>,
}

impl OperationalForwarding {
    /// Stops forwarding (what was published stays queued for the dispatcher).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// The endpoint a notification is about.
fn subject(notification: &Notification) -> Option<&EndpointId> {
    match notification {
        Notification::EndpointDisabled { endpoint, .. }
        | Notification::EndpointPaused { endpoint, .. }
        | Notification::EndpointResumed { endpoint }
        | Notification::EndpointEnabled { endpoint }
        | Notification::DeliveryDead { endpoint, .. } => Some(endpoint),
    }
}

/// RFC 3339 UTC, to the millisecond.
fn rfc3339(at: UnixMillis) -> String {
    let millis = at.as_millis();
    let seconds = i64::try_from(millis / 1000).unwrap_or(i64::MAX);
    let nanos = u32::try_from(millis % 1000).unwrap_or(0) * 1_000_000;
    EventTime::from_unix(seconds, nanos, TimePrecision::Millis)
        .map(|t| t.as_str().to_owned())
        .unwrap_or_else(|_| "9999-12-31T23:59:59.999Z".to_owned())
}

/// The operational event for `notification`, with the endpoint's `owner`.
pub(crate) fn event(notification: &Notification, owner: Option<String>) -> OutgoingEvent {
    use serde_json::json;
    let (kind, data) = match notification {
        Notification::EndpointDisabled { endpoint, reason } => {
            let (why, since) = match reason {
                DisableReason::Gone => ("gone", None),
                DisableReason::FailingSince(since) => ("failing", Some(rfc3339(*since))),
            };
            let data = json!({
                "endpoint_id": endpoint.as_str(),
                "owner": owner,
                "reason": why,
                "failing_since": since,
            });
            (ENDPOINT_DISABLED, data)
        }
        Notification::EndpointPaused { endpoint, until } => {
            let data = json!({
                "endpoint_id": endpoint.as_str(),
                "owner": owner,
                "until": rfc3339(*until),
            });
            (ENDPOINT_PAUSED, data)
        }
        Notification::EndpointResumed { endpoint } => {
            let data = json!({
                "endpoint_id": endpoint.as_str(),
                "owner": owner,
                "reason": "probe_succeeded",
            });
            (ENDPOINT_ENABLED, data)
        }
        Notification::EndpointEnabled { endpoint } => {
            let data = json!({
                "endpoint_id": endpoint.as_str(),
                "owner": owner,
                "reason": "enabled",
            });
            (ENDPOINT_ENABLED, data)
        }
        Notification::DeliveryDead {
            delivery,
            endpoint,
            message,
            event_type,
            attempts,
            reason,
        } => {
            let data = json!({
                "endpoint_id": endpoint.as_str(),
                "owner": owner,
                "delivery_id": delivery.as_str(),
                "message_id": message.as_str(),
                "event_type": event_type.as_str(),
                "attempts": attempts,
                "reason": reason.as_str(),
            });
            (MESSAGE_ATTEMPT_EXHAUSTED, data)
        }
    };
    OutgoingEvent::new(kind, data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::DeliveryId;

    #[test]
    fn each_notification_has_its_event() {
        let endpoint = EndpointId::generate();
        let dead = Notification::DeliveryDead {
            delivery: DeliveryId::generate(),
            endpoint: endpoint.clone(),
            message: MessageId::generate(),
            event_type: crate::event::EventType::new("job.completed"),
            attempts: 3,
            reason: crate::send::store::DeadReason::Exhausted,
        };
        let dead = event(&dead, Some("acme".into()));
        assert_eq!(dead.event_type().as_str(), MESSAGE_ATTEMPT_EXHAUSTED);
        assert_eq!(dead.data()["attempts"], 3);
        assert_eq!(dead.data()["owner"], "acme");
        assert_eq!(dead.data()["reason"], "exhausted");

        let paused = Notification::EndpointPaused {
            endpoint,
            until: UnixMillis::from_millis(1_700_000_000_123),
        };
        let paused = event(&paused, None);
        assert_eq!(paused.event_type().as_str(), ENDPOINT_PAUSED);
        assert_eq!(paused.data()["until"], "2023-11-14T22:13:20.123Z");
        assert!(paused.data()["owner"].is_null());
    }
}
