//! [`Batching`]: opt-in, many events in one signed POST (TaskLink: "high-volume events may be
//! batched").

use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};

/// Collects an endpoint's event deliveries into batches of up to `max_events`, waiting at
/// most `max_wait` after the oldest was published. Off by default.
///
/// **Wire shape.** One POST whose body is a JSON array of the envelopes the events would have
/// had alone, in publish order, each with its own event id: `[{…},{…}]` (no spaces, so the
/// array survives a receiver's `JSON.stringify(JSON.parse(body))` like a single envelope).
/// It is signed as one body under the endpoint's scheme, and carries the profile's headers
/// for a batch: its own delivery id (stable across the batch's retries), the batch id
/// (`bat_…`) where the profile sends an event id, and `batch` where it sends an event type.
///
/// A batch is a delivery of its own ([`DeliveryKind::Batch`](super::DeliveryKind::Batch)):
/// it is retried, paced, dead-lettered and retried by hand as a whole, with the same bytes.
/// Its members are marked [`Batched`](super::DeliveryStatus::Batched) and point to it.
/// Test events and batches themselves are never batched. A batch holds at most as many
/// events as one claim returns (the dispatcher's free slots).
///
/// ```
/// use hookrelay::send::Batching;
/// use std::time::Duration;
///
/// let batching = Batching::new(100, Duration::from_millis(250));
/// assert_eq!(batching.max_events(), 100);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batching {
    max_events: u32,
    max_wait: Duration,
}

impl Batching {
    /// Up to `max_events` (2–1000; clamped) per batch, sent at the latest `max_wait` (at
    /// least 1 ms) after the oldest event was published.
    pub fn new(max_events: u32, max_wait: Duration) -> Self {
        Batching {
            max_events: max_events.clamp(2, 1000),
            max_wait: max_wait.max(Duration::from_millis(1)),
        }
    }

    /// The most events in one batch.
    pub fn max_events(&self) -> u32 {
        self.max_events
    }

    /// The longest an event waits for its batch to fill.
    pub fn max_wait(&self) -> Duration {
        self.max_wait
    }
}

/// The batch body: the members' bodies as one JSON array.
pub(crate) fn join<'a>(bodies: impl IntoIterator<Item = &'a Bytes>) -> Bytes {
    let mut out = BytesMut::new();
    out.put_u8(b'[');
    for (i, body) in bodies.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(body);
    }
    out.put_u8(b']');
    out.freeze()
}
