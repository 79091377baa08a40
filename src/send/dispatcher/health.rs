//! Endpoint health: attempts' outcome classes feed each gate's auto-disable clock and circuit
//! breaker; the changes are stored (failure clock, disabled status) and told to the app.

use super::super::store::{
    AttemptRecord, ClaimedDelivery, DeadReason, DeliveryStore, NextStep, StoreError,
};
use super::super::telemetry;
use super::super::{DeliveryId, EndpointId, EndpointStatus, MessageId, Notification, Transport};
use super::Dispatcher;
use super::gate::Gate;
use crate::event::EventType;
use crate::retry::{BreakerState, DisableReason, HealthChange, OutcomeClass, UnixMillis};

impl Gate {
    /// Feeds one attempt's class to the health trackers; what changed, to notify, and the
    /// failure clock when a run of failures began or ended (to store).
    pub(super) fn observe(
        &mut self,
        class: OutcomeClass,
        now: UnixMillis,
        marks: &mut Vec<(EndpointId, Option<UnixMillis>)>,
    ) -> Vec<Notification> {
        let mut changes = Vec::new();
        let id = self.endpoint.id();
        if let Some(health) = &mut self.health {
            let before = health.failing_since();
            if let HealthChange::Disabled(reason) = health.observe(class, now) {
                changes.push(Notification::EndpointDisabled {
                    endpoint: id.clone(),
                    reason,
                });
            }
            if health.failing_since() != before {
                marks.push((id.clone(), health.failing_since()));
            }
        } else if class == OutcomeClass::DisableEndpoint {
            // No failure clock (auto-disable is off): `410 Gone` disables all the same.
            changes.push(Notification::EndpointDisabled {
                endpoint: id.clone(),
                reason: DisableReason::Gone,
            });
        }
        if let Some(breaker) = &mut self.breaker {
            let was_closed = breaker.state() == BreakerState::Closed;
            breaker.observe(class, now);
            match breaker.state() {
                BreakerState::Open { until } => {
                    self.blocked_until = Some(until);
                    changes.push(Notification::EndpointPaused {
                        endpoint: id.clone(),
                        until,
                    });
                }
                BreakerState::Closed if !was_closed => {
                    changes.push(Notification::EndpointResumed {
                        endpoint: id.clone(),
                    });
                }
                _ => {}
            }
        }
        changes
    }
}

/// What a [`Notification::DeliveryDead`] tells of the claim, kept while the claim moves on.
pub(super) struct Died {
    delivery: DeliveryId,
    endpoint: EndpointId,
    message: MessageId,
    event_type: EventType,
}

impl Died {
    pub(super) fn of(claim: &ClaimedDelivery) -> Self {
        Self {
            delivery: claim.delivery.clone(),
            endpoint: claim.endpoint.clone(),
            message: claim.message.clone(),
            event_type: claim.event_type.clone(),
        }
    }
}

/// The notification of a result that dead-letters its delivery, if it does.
pub(super) fn dead(claim: &Died, record: &AttemptRecord) -> Option<Notification> {
    let reason = match record.next {
        NextStep::DeadLetter(reason) => reason,
        NextStep::DisableEndpoint => DeadReason::EndpointGone,
        NextStep::RetryAt(_) | NextStep::Delivered | NextStep::Expire => return None,
    };
    Some(Notification::DeliveryDead {
        delivery: claim.delivery.clone(),
        endpoint: claim.endpoint.clone(),
        message: claim.message.clone(),
        event_type: claim.event_type.clone(),
        attempts: record.attempt,
        reason,
    })
}

/// Why an endpoint was disabled, as its [`status_note`](super::super::Endpoint::status_note)
/// says.
fn disabled_note(reason: DisableReason) -> String {
    match reason {
        DisableReason::Gone => "disabled: the receiver answered 410 Gone".to_owned(),
        DisableReason::FailingSince(since) => format!(
            "disabled after failing continuously since {} ms after the unix epoch",
            since.as_millis()
        ),
    }
}

/// A store answer where a missing endpoint is fine (it was deleted meanwhile): the one place
/// the dispatcher tells "not found" apart from a failure.
pub(super) fn ignore_unknown_endpoint(result: Result<(), StoreError>) -> Result<(), StoreError> {
    match result {
        Err(e) if e.is_not_found() => Ok(()),
        other => other,
    }
}

impl<S: DeliveryStore, T: Transport> Dispatcher<S, T> {
    /// Whether health changes wait to be stored and told.
    pub(super) fn has_changes(&self) -> bool {
        self.endpoints_dirty || !self.changes.is_empty() || !self.failing_marks.is_empty()
    }

    /// Stores the failure clocks that changed, disables the endpoints that failed past their
    /// window (`410 Gone` is disabled by the store with the result), writes each disabled
    /// endpoint's status note and tells the app about every health change. A change leaves the queue only once stored, so a store failure
    /// loses none: the next round goes on where this one stopped.
    pub(super) async fn apply_changes(&mut self) -> Result<(), StoreError> {
        let mut endpoints_changed = self.endpoints_dirty || !self.failing_marks.is_empty();
        while let Some((endpoint, since)) = self.failing_marks.first().cloned() {
            let stored = self.shared.store.set_failing_since(&endpoint, since).await;
            ignore_unknown_endpoint(stored)?;
            self.failing_marks.remove(0);
        }
        while let Some(change) = self.changes.first().cloned() {
            if let Notification::EndpointDisabled { endpoint, reason } = &change {
                // A `410 Gone` was disabled by the store with its result; this adds the note.
                let note = disabled_note(*reason);
                let stored = self
                    .shared
                    .store
                    .set_endpoint_status(endpoint, EndpointStatus::Disabled, Some(&note))
                    .await;
                ignore_unknown_endpoint(stored)?;
                if let Some(gate) = self.gates.get(endpoint) {
                    let why = match reason {
                        DisableReason::Gone => "gone",
                        _ => "failing",
                    };
                    telemetry::endpoint_disabled(gate.endpoint.profile(), why);
                }
            }
            endpoints_changed |= !matches!(change, Notification::DeliveryDead { .. });
            self.changes.remove(0);
            self.shared.notify(change);
        }
        self.endpoints_dirty = false;
        if endpoints_changed {
            self.shared.endpoints_changed();
        }
        Ok(())
    }
}
