//! Typed ids for the sending side: [`EndpointId`], [`MessageId`], [`DeliveryId`].

use std::fmt::{self, Write as _};
use std::sync::Arc;

/// An id that is not 1–64 visible ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidId(());

impl fmt::Display for InvalidId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ids are 1-64 visible ascii characters")
    }
}

impl std::error::Error for InvalidId {}

/// Longest id accepted.
pub const MAX_ID_LEN: usize = 64;

macro_rules! send_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        ///
        /// Cheap to clone (shared); 1–64 visible ASCII characters, so it fits in a header.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Arc<str>);

        impl $name {
            /// The prefix of generated ids.
            pub const PREFIX: &'static str = $prefix;

            /// Checks and wraps an id.
            pub fn new(id: impl AsRef<str>) -> Result<Self, InvalidId> {
                let id = id.as_ref();
                if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(InvalidId(()));
                }
                Ok(Self(id.into()))
            }

            /// A fresh random id: the prefix and 24 hex digits (96 bits from the OS).
            pub fn generate() -> Self {
                Self(random_id($prefix).into())
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), &self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

send_id!(
    /// One receiving endpoint (`ep_…`); task-hub sends it as `X-Webhook-ID`.
    EndpointId,
    "ep_"
);
send_id!(
    /// One published message (`msg_…`): an event and its body, fanned out to endpoints.
    MessageId,
    "msg_"
);
send_id!(
    /// One message to one endpoint (`dlv_…`), stable across that delivery's attempts.
    DeliveryId,
    "dlv_"
);

pub(crate) fn random_id(prefix: &str) -> String {
    let mut bytes = [0u8; 12];
    if getrandom::fill(&mut bytes).is_err() {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes[..8].copy_from_slice(&nanos.to_be_bytes());
        bytes[8..].copy_from_slice(&(COUNTER.fetch_add(1, Ordering::Relaxed) as u32).to_be_bytes());
    }
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    id
}
