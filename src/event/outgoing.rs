//! [`OutgoingEvent`]: one event to publish, before any profile has shaped it into a body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{EventData, EventFactory, EventId, EventMode, EventType, IdGenerator as _, RandomIds};

/// An event a producer publishes: its id, type, when it happened, and its `data` as JSON.
///
/// A profile turns it into the bytes its receivers expect ([`Profile::render_body`](crate::profile::Profile::render_body)):
/// the `{id, type, timestamp, data}` envelope, TaskLink's `{event, id, timestamp, data}`,
/// TaskOn's flat object (the `data` itself), and so on. Build one from raw JSON and a type, from
/// a typed event ([`OutgoingEvent::from_data`]), or with an [`EventFactory`] that injects ids
/// and a clock.
///
/// ```
/// use hookrelay::event::OutgoingEvent;
///
/// let event = OutgoingEvent::new("task.created", serde_json::json!({"taskId": "123"}))
///     .with_id("evt_1".into());
/// assert_eq!(event.id().as_str(), "evt_1");
/// assert_eq!(event.event_type().as_str(), "task.created");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    id: EventId,
    event_type: EventType,
    occurred_at: SystemTime,
    data: Value,
    mode: EventMode,
}

impl OutgoingEvent {
    /// An event of `event_type` carrying `data`, with a fresh random `evt_` id and the current
    /// time.
    pub fn new(event_type: impl Into<EventType>, data: Value) -> Self {
        OutgoingEvent {
            id: RandomIds::default().next_id(),
            event_type: event_type.into(),
            occurred_at: SystemTime::now(),
            data,
            mode: EventMode::Live,
        }
    }

    /// A typed event (any profile's event enum, or your own [`EventData`]); its type comes
    /// from the value. Fails only if `data`'s `Serialize` fails.
    pub fn from_data<D: EventData>(data: &D) -> Result<Self, serde_json::Error> {
        Ok(OutgoingEvent::new(
            data.event_type(),
            serde_json::to_value(data)?,
        ))
    }

    /// Replaces the id (receivers deduplicate on it: keep it stable when re-publishing).
    #[must_use]
    pub fn with_id(mut self, id: EventId) -> Self {
        self.id = id;
        self
    }

    /// Replaces the time the event happened.
    #[must_use]
    pub fn with_time(mut self, at: SystemTime) -> Self {
        self.occurred_at = at;
        self
    }

    /// Marks the event as a test: it reaches test-mode endpoints only (see [`EventMode`]).
    #[must_use]
    pub fn test(self) -> Self {
        self.with_mode(EventMode::Test)
    }

    /// Sets whether the event is live (the default) or a test.
    #[must_use]
    pub fn with_mode(mut self, mode: EventMode) -> Self {
        self.mode = mode;
        self
    }

    /// Whether the event is live or a test.
    pub fn mode(&self) -> EventMode {
        self.mode
    }

    /// The event id.
    pub fn id(&self) -> &EventId {
        &self.id
    }

    /// The event type.
    pub fn event_type(&self) -> &EventType {
        &self.event_type
    }

    /// When the event happened.
    pub fn occurred_at(&self) -> SystemTime {
        self.occurred_at
    }

    /// `occurred_at` as seconds and nanoseconds since the Unix epoch (zero before it).
    pub(crate) fn unix_parts(&self) -> (i64, u32) {
        let since = self
            .occurred_at
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        (
            i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            since.subsec_nanos(),
        )
    }

    /// The event data.
    pub fn data(&self) -> &Value {
        &self.data
    }
}

impl EventFactory {
    /// An [`OutgoingEvent`] around a typed event, with this factory's id and clock.
    pub fn outgoing<D: EventData>(&self, data: &D) -> Result<OutgoingEvent, serde_json::Error> {
        self.outgoing_with_type(data.event_type(), serde_json::to_value(data)?)
    }

    /// An [`OutgoingEvent`] of `event_type` around raw JSON, with this factory's id and clock.
    pub fn outgoing_with_type(
        &self,
        event_type: impl Into<EventType>,
        data: Value,
    ) -> Result<OutgoingEvent, serde_json::Error> {
        Ok(OutgoingEvent {
            id: self.next_id(),
            event_type: event_type.into(),
            occurred_at: self.now_system(),
            data,
            mode: EventMode::Live,
        })
    }
}
