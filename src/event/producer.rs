//! The producer side: complete envelopes from event data, with a fresh id and timestamp.

use std::sync::Arc;

use super::{
    Envelope, EventClock, EventData, EventTime, EventType, IdGenerator, RandomIds,
    SystemEventClock, TaskLinkEnvelope, TimePrecision,
};

/// Builds envelopes for outgoing events: you write the event's fields, the factory adds a fresh
/// id (from an [`IdGenerator`]) and the current time (from an [`EventClock`]).
///
/// Defaults: [`RandomIds`] with prefix `evt_`, the system clock, second precision for
/// [`envelope`](Self::envelope) (the Proposal Generator's format) and millisecond precision for
/// [`tasklink`](Self::tasklink) (TaskLink's format). Inject fixed ones for tests:
///
/// ```
/// use hookrelay::event::proposal_generator::{JobStarted, JobStatus, ProposalGeneratorEvent};
/// use hookrelay::event::{EventFactory, FixedEventClock, SequentialIds};
///
/// let factory = EventFactory::new()
///     .with_ids(SequentialIds::new("evt_"))
///     .with_clock(FixedEventClock::at_unix(1_705_314_660, 0));
/// let env = factory.envelope(ProposalGeneratorEvent::from(JobStarted {
///     job_id: "job_123".into(),
///     status: Some(JobStatus::Processing),
///     ..JobStarted::default()
/// }));
/// assert_eq!(
///     String::from_utf8(env.to_js_bytes()?)?,
///     r#"{"id":"evt_1","type":"job.started","timestamp":"2024-01-15T10:31:00Z","data":{"job_id":"job_123","status":"processing"}}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct EventFactory {
    ids: Arc<dyn IdGenerator>,
    clock: Arc<dyn EventClock>,
    precision: Option<TimePrecision>,
}

impl Default for EventFactory {
    fn default() -> Self {
        EventFactory::new()
    }
}

impl EventFactory {
    /// A factory with random `evt_` ids and the system clock.
    pub fn new() -> Self {
        EventFactory {
            ids: Arc::new(RandomIds::default()),
            clock: Arc::new(SystemEventClock),
            precision: None,
        }
    }

    /// Uses `ids` for event ids.
    #[must_use]
    pub fn with_ids(mut self, ids: impl IdGenerator + 'static) -> Self {
        self.ids = Arc::new(ids);
        self
    }

    /// Uses `clock` for timestamps.
    #[must_use]
    pub fn with_clock(mut self, clock: impl EventClock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Writes timestamps with `precision` for every envelope shape.
    #[must_use]
    pub fn with_precision(mut self, precision: TimePrecision) -> Self {
        self.precision = Some(precision);
        self
    }

    pub(crate) fn next_id(&self) -> super::EventId {
        self.ids.next_id()
    }

    pub(crate) fn now_system(&self) -> std::time::SystemTime {
        self.clock.now()
    }

    fn now(&self, default: TimePrecision) -> EventTime {
        EventTime::now(&*self.clock, self.precision.unwrap_or(default))
    }

    /// An `{id, type, timestamp, data}` envelope (Proposal Generator, task-hub).
    pub fn envelope<D: EventData>(&self, data: D) -> Envelope<D> {
        Envelope::new(
            Some(self.ids.next_id()),
            self.now(TimePrecision::Seconds),
            data,
        )
    }

    /// An `{id, type, timestamp, data}` envelope around your own data type.
    pub fn envelope_with_type<D>(&self, event_type: impl Into<EventType>, data: D) -> Envelope<D> {
        Envelope::with_type(
            event_type.into(),
            Some(self.ids.next_id()),
            self.now(TimePrecision::Seconds),
            data,
        )
    }

    /// A TaskLink `{event, id, timestamp, data}` envelope, without a body signature.
    pub fn tasklink<D: EventData>(&self, data: D) -> TaskLinkEnvelope<D> {
        TaskLinkEnvelope::new(self.ids.next_id(), self.now(TimePrecision::Millis), data)
    }

    /// A TaskLink envelope around your own data type.
    pub fn tasklink_with_type<D>(
        &self,
        event_type: impl Into<EventType>,
        data: D,
    ) -> TaskLinkEnvelope<D> {
        TaskLinkEnvelope::with_type(
            event_type.into(),
            self.ids.next_id(),
            self.now(TimePrecision::Millis),
            data,
        )
    }
}
