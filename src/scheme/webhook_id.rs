//! The message id a scheme authenticated, kept without a heap allocation when short.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// Longest id stored inline; Svix's and the seed systems' ids are far shorter.
const INLINE: usize = 46;

/// The id a scheme carries (`webhook-id`, `X-Webhook-ID`), as verification found it.
///
/// Behaves as a `&str` (`Deref`, `AsRef<str>`, `Display`, comparisons with `str`). Ids of up
/// to 46 bytes are stored inline, so verifying a request does not allocate for its id;
/// longer ones are boxed.
///
/// ```
/// use hookrelay::scheme::WebhookId;
///
/// let id = WebhookId::new("msg_p5jXN8AQM9LWM0D4loKWxJek");
/// assert_eq!(id, "msg_p5jXN8AQM9LWM0D4loKWxJek");
/// assert!(id.starts_with("msg_"));
/// ```
#[derive(Clone)]
pub struct WebhookId(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, bytes: [u8; INLINE] },
    Boxed(Box<str>),
}

impl WebhookId {
    /// An id with the text `id`.
    pub fn new(id: &str) -> Self {
        match u8::try_from(id.len()) {
            Ok(len) if id.len() <= INLINE => {
                let mut bytes = [0u8; INLINE];
                bytes[..id.len()].copy_from_slice(id.as_bytes());
                Self(Repr::Inline { len, bytes })
            }
            _ => Self(Repr::Boxed(id.into())),
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            // Always valid: the bytes were copied from a `str` whole.
            Repr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            Repr::Boxed(id) => id,
        }
    }
}

impl Deref for WebhookId {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for WebhookId {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for WebhookId {
    fn from(id: &str) -> Self {
        Self::new(id)
    }
}

impl From<String> for WebhookId {
    fn from(id: String) -> Self {
        if id.len() <= INLINE {
            Self::new(&id)
        } else {
            Self(Repr::Boxed(id.into_boxed_str()))
        }
    }
}

impl fmt::Debug for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq for WebhookId {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for WebhookId {}

impl Hash for WebhookId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl PartialEq<str> for WebhookId {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for WebhookId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

#[cfg(test)]
mod tests {
    use super::{INLINE, WebhookId};

    #[test]
    fn short_and_long_ids_read_back_whole() {
        for len in [0, 1, INLINE - 1, INLINE, INLINE + 1, 255, 256, 300] {
            let text: String = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let id = WebhookId::new(&text);
            assert_eq!(id.as_str(), text, "{len}");
            assert_eq!(id, WebhookId::from(text.clone()));
            assert_eq!(format!("{id}"), text);
            assert_eq!(format!("{id:?}"), format!("{text:?}"));
        }
    }
}
