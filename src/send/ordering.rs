//! [`DeliveryOrder`]: opt-in, one-at-a-time delivery in publish order, and [`DataPointer`], the
//! field of an event's data that keys it.

use std::fmt;

use serde_json::Value;

/// Whether an endpoint's deliveries go out one at a time, in publish order.
///
/// Off by default, as in svix-server: deliveries run in parallel and a slow or failing one
/// delays nothing else. With ordering on, the next delivery of a sequence waits until the
/// previous one is delivered, dead-lettered or expired — **head-of-line blocking**: one
/// delivery that keeps failing holds every later one of its sequence for the whole retry
/// schedule. Per-key ordering limits that to one key (one job, one order) and lets the
/// others flow. Stores enforce it when claiming, so it also holds across dispatchers.
///
/// ```
/// use hookrelay::send::{DataPointer, DeliveryOrder};
///
/// let by_job = DeliveryOrder::by_key(DataPointer::new("/job_id")?);
/// let event = serde_json::json!({"job_id": "job_123", "progress": {"percentage": 40}});
/// assert_eq!(by_job.key_for(&event).as_deref(), Some("job_123"));
/// # Ok::<(), hookrelay::send::InvalidPointer>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeliveryOrder {
    /// No ordering (the default).
    #[default]
    Unordered,
    /// Every delivery to the endpoint in one sequence.
    PerEndpoint,
    /// One sequence per value of this field of the event's data; events without the field
    /// are not ordered.
    PerKey(DataPointer),
}

impl DeliveryOrder {
    /// One sequence per value of `field`.
    pub fn by_key(field: DataPointer) -> Self {
        Self::PerKey(field)
    }

    /// The sequence `data` belongs to, if any.
    pub fn key_for(&self, data: &Value) -> Option<String> {
        match self {
            Self::Unordered => None,
            Self::PerEndpoint => Some(String::new()),
            Self::PerKey(field) => field.text_in(data),
        }
    }
}

/// A JSON pointer (RFC 6901) into an event's data, such as `/job_id` or `/job/id`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DataPointer(pub(crate) String);

impl DataPointer {
    /// Checks `pointer`: it starts with `/` and names at least one field.
    pub fn new(pointer: impl Into<String>) -> Result<Self, InvalidPointer> {
        let pointer = pointer.into();
        if pointer.len() < 2 || !pointer.starts_with('/') {
            return Err(InvalidPointer(()));
        }
        Ok(DataPointer(pointer))
    }

    /// The pointer.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The field's value in `data` as text: a string as it is, a number or boolean as JSON
    /// writes it; `None` when absent, null, an object or an array.
    pub fn text_in(&self, data: &Value) -> Option<String> {
        match data.pointer(&self.0)? {
            Value::String(s) => Some(s.clone()),
            v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
            _ => None,
        }
    }
}

impl fmt::Debug for DataPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataPointer({})", self.0)
    }
}

/// A pointer that does not start with `/` or names no field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidPointer(());

impl fmt::Display for InvalidPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a data pointer starts with '/' and names a field, like /job_id")
    }
}

impl std::error::Error for InvalidPointer {}
