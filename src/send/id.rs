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
        /// 1–64 visible ASCII characters, so it fits in a header. Cheap to clone: up to 22
        /// characters (every generated id) it is held inline, longer ones are shared.
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(IdText);

        impl $name {
            /// The prefix of generated ids.
            pub const PREFIX: &'static str = $prefix;

            /// Checks and wraps an id.
            pub fn new(id: impl AsRef<str>) -> Result<Self, InvalidId> {
                let id = id.as_ref();
                if id.is_empty() || id.len() > MAX_ID_LEN || !id.bytes().all(|b| b.is_ascii_graphic()) {
                    return Err(InvalidId(()));
                }
                Ok(Self(IdText::new(id)))
            }

            /// A fresh random id: the prefix and 17 letters and digits (96 bits from the
            /// OS, in base 62), e.g. `dlv_3xK9qL0bTz7RmWc2V`.
            pub fn generate() -> Self {
                Self(IdText::random($prefix))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.as_str())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
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
                self.as_str()
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

/// The text of an id: inline up to [`IdText::INLINE`] bytes, so generated ids (and most ids
/// apps choose) cost no allocation and a clone is a copy; longer ones are shared. 24 bytes
/// either way. Compared, hashed and ordered as its text.
#[derive(Clone)]
enum IdText {
    Inline {
        len: u8,
        bytes: [u8; IdText::INLINE],
    },
    Shared(Arc<str>),
}

impl IdText {
    const INLINE: usize = 22;

    /// Base-62 digits for 96 bits: 62^17 > 2^96.
    const RANDOM_DIGITS: usize = 17;

    fn new(text: &str) -> Self {
        match u8::try_from(text.len()) {
            Ok(len) if text.len() <= Self::INLINE => {
                let mut bytes = [0; Self::INLINE];
                bytes[..text.len()].copy_from_slice(text.as_bytes());
                IdText::Inline { len, bytes }
            }
            _ => IdText::Shared(text.into()),
        }
    }

    /// `prefix` and 96 random bits in 17 base-62 digits.
    fn random(prefix: &str) -> Self {
        const DIGITS: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
        let mut n = u128::from_be_bytes({
            let mut wide = [0u8; 16];
            wide[4..].copy_from_slice(&random_bytes());
            wide
        });
        let mut text = [0u8; MAX_ID_LEN];
        text[..prefix.len()].copy_from_slice(prefix.as_bytes());
        let end = prefix.len() + Self::RANDOM_DIGITS;
        for slot in text[prefix.len()..end].iter_mut().rev() {
            *slot = DIGITS[(n % 62) as usize];
            n /= 62;
        }
        // Prefixes are ASCII and so are the digits.
        Self::new(std::str::from_utf8(&text[..end]).unwrap_or_default())
    }

    fn as_str(&self) -> &str {
        match self {
            // `new` copied a whole `str` of `len` bytes.
            IdText::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            IdText::Shared(text) => text,
        }
    }
}

impl PartialEq for IdText {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IdText {}

impl std::hash::Hash for IdText {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialOrd for IdText {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for IdText {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// 96 bits from the OS, or (without OS randomness) from the time and a process-wide counter,
/// still unique within this process.
fn random_bytes() -> [u8; 12] {
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
    bytes
}

/// `prefix` and 24 hex digits of [`random_bytes`].
pub(crate) fn random_id(prefix: &str) -> String {
    let bytes = random_bytes();
    let mut id = String::with_capacity(prefix.len() + 24);
    id.push_str(prefix);
    for b in bytes {
        let _ = write!(id, "{b:02x}");
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_are_the_prefix_and_17_base62_digits_held_inline() {
        assert_eq!(std::mem::size_of::<DeliveryId>(), 24);
        let ids: Vec<DeliveryId> = (0..1000).map(|_| DeliveryId::generate()).collect();
        for id in &ids {
            let digits = id.as_str().strip_prefix("dlv_").unwrap();
            assert_eq!(digits.len(), 17, "{id}");
            assert!(digits.bytes().all(|b| b.is_ascii_alphanumeric()), "{id}");
            assert!(matches!(id.0, IdText::Inline { .. }));
        }
        let distinct: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert_eq!(EndpointId::generate().as_str().len(), 20);
        assert_eq!(MessageId::generate().as_str().len(), 21);
    }

    #[test]
    fn inline_and_shared_ids_compare_as_their_text() {
        let short = DeliveryId::new("dlv_a").unwrap();
        let long = DeliveryId::new(format!("dlv_{}", "b".repeat(40))).unwrap();
        let longest = DeliveryId::new("x".repeat(MAX_ID_LEN)).unwrap();
        assert!(matches!(long.0, IdText::Shared(_)));
        assert_eq!(long.as_str().len(), 44);
        assert_eq!(longest.to_string(), "x".repeat(MAX_ID_LEN));
        assert!(short < long && long < longest);
        assert_eq!(long.clone(), long);
        assert_eq!(DeliveryId::new("dlv_a").unwrap(), short);
        assert!(DeliveryId::new("x".repeat(MAX_ID_LEN + 1)).is_err());
        assert!(DeliveryId::new("").is_err());
        assert!(DeliveryId::new("a b").is_err());
    }
}
