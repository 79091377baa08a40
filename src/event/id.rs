//! Event ids, event types, and the injectable id generator producers use.

use std::fmt::{self, Write as _};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use super::wire::string_newtype;

string_newtype!(
    /// An event's unique id, e.g. `evt_123456`. Receivers deduplicate on it.
    EventId
);

string_newtype!(
    /// An event's type, e.g. `job.created`; the envelope's `type` (or TaskLink's `event`) field.
    EventType
);

/// Makes fresh event ids. Inject a deterministic one in tests.
pub trait IdGenerator: Send + Sync + fmt::Debug {
    /// Returns a new id, never returned before by this generator.
    fn next_id(&self) -> EventId;
}

/// The default generator: `prefix` followed by 24 lowercase hex digits (96 random bits from
/// the operating system), e.g. `evt_5f0c9a…`.
#[derive(Debug, Clone)]
pub struct RandomIds {
    prefix: String,
}

impl RandomIds {
    /// A generator for ids starting with `prefix` (TaskLink uses `evt_`).
    pub fn new(prefix: impl Into<String>) -> Self {
        RandomIds {
            prefix: prefix.into(),
        }
    }
}

impl Default for RandomIds {
    fn default() -> Self {
        RandomIds::new("evt_")
    }
}

static FALLBACK_COUNTER: AtomicU64 = AtomicU64::new(0);

impl IdGenerator for RandomIds {
    fn next_id(&self) -> EventId {
        let mut bytes = [0u8; 12];
        if getrandom::fill(&mut bytes).is_err() {
            // No OS randomness: fall back to time and a process-wide counter, still unique
            // within this process.
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            let count = FALLBACK_COUNTER.fetch_add(1, Ordering::Relaxed);
            bytes[..8].copy_from_slice(&nanos.to_be_bytes());
            bytes[8..].copy_from_slice(&(count as u32).to_be_bytes());
        }
        let mut id = String::with_capacity(self.prefix.len() + 24);
        id.push_str(&self.prefix);
        for b in bytes {
            let _ = write!(id, "{b:02x}");
        }
        EventId(id)
    }
}

/// A deterministic generator for tests: `prefix` followed by 1, 2, 3, ….
#[derive(Debug)]
pub struct SequentialIds {
    prefix: String,
    next: AtomicU64,
}

impl SequentialIds {
    /// Starts at `prefix` + `1`.
    pub fn new(prefix: impl Into<String>) -> Self {
        SequentialIds {
            prefix: prefix.into(),
            next: AtomicU64::new(1),
        }
    }
}

impl IdGenerator for SequentialIds {
    fn next_id(&self) -> EventId {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        EventId(format!("{}{n}", self.prefix))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_prefixed_and_distinct() {
        let g = RandomIds::default();
        let (a, b) = (g.next_id(), g.next_id());
        assert!(a.as_str().starts_with("evt_"));
        assert_eq!(a.as_str().len(), 4 + 24);
        assert_ne!(a, b);
    }

    #[test]
    fn sequential_ids() {
        let g = SequentialIds::new("evt_");
        assert_eq!(g.next_id().as_str(), "evt_1");
        assert_eq!(g.next_id().as_str(), "evt_2");
    }
}
