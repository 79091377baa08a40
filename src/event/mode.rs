//! [`EventMode`]: live or test, for events and for the endpoints that receive them.

use std::fmt;

/// Whether an event is live or a test, and which of the two an endpoint receives.
///
/// Task Hub (004) registers endpoints with `testMode`: a test endpoint receives test events
/// only, a live endpoint live events only. The sender (feature `send`) fans a live event out
/// to live endpoints and an event marked [`test`](crate::event::OutgoingEvent::test) to test
/// endpoints; its `send_test` reaches its one endpoint whatever that endpoint's mode.
///
/// ```
/// use hookrelay::event::{EventMode, OutgoingEvent};
///
/// let event = OutgoingEvent::new("task.created", serde_json::json!({"taskId": "123"}));
/// assert_eq!(event.mode(), EventMode::Live);
/// assert_eq!(event.test().mode(), EventMode::Test);
/// assert_eq!(EventMode::parse("test"), Some(EventMode::Test));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum EventMode {
    /// Real traffic (the default).
    #[default]
    Live,
    /// Test traffic: reaches test endpoints only.
    Test,
}

impl EventMode {
    /// A stable name for stores and APIs: `live` or `test`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }

    /// The mode named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        [Self::Live, Self::Test]
            .into_iter()
            .find(|m| m.as_str() == text)
    }

    /// [`Test`](Self::Test) when `test` is true (a wire format's `testMode` flag), else
    /// [`Live`](Self::Live).
    pub fn from_test_flag(test: bool) -> Self {
        if test { Self::Test } else { Self::Live }
    }

    /// Whether this is [`Test`](Self::Test).
    pub fn is_test(self) -> bool {
        self == Self::Test
    }
}

impl fmt::Display for EventMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
