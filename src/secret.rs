//! Shared secrets for HMAC-SHA256 signing, and the MAC tags they produce.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

const WHSEC_PREFIX: &str = "whsec_";
const GENERATED_LEN: usize = 32;

/// A shared HMAC-SHA256 key.
///
/// - `Debug` prints `Secret(<redacted>)`; there is no `Display` and no `PartialEq`.
/// - `Clone` is cheap: the key and its prepared HMAC state sit behind an `Arc`.
/// - The keyed HMAC state is computed once at construction, so verifying a request costs
///   only the hashing of the signed bytes.
/// - Construction fails on an empty key, so no request signed with an empty key is ever
///   accepted.
///
/// Which constructor to use depends on how the sender treats its secret:
///
/// | sender | constructor |
/// |---|---|
/// | Standard Webhooks / Svix (`whsec_<base64>`, key = decoded bytes) | [`Secret::from_base64`] |
/// | Stripe (`whsec_…`, key = the whole string's bytes) | [`Secret::from_raw`] |
/// | Proposal Generator, TaskLink, TaskOn, task-hub, GitHub (plain strings) | [`Secret::from_raw`] |
///
/// [`FromStr`] picks `from_base64` for `whsec_` strings and `from_raw` otherwise.
///
/// ```
/// use hookrelay::Secret;
///
/// let secret = Secret::from_raw("It's a Secret to Everybody")?;
/// let tag = secret.mac(&[b"Hello, World!"]);
/// assert_eq!(
///     tag.to_hex(),
///     "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
/// );
/// assert_eq!(format!("{secret:?}"), "Secret(<redacted>)");
/// # Ok::<(), hookrelay::SecretError>(())
/// ```
#[derive(Clone)]
pub struct Secret {
    inner: Arc<Inner>,
}

struct Inner {
    key: Zeroizing<Vec<u8>>,
    keyed: HmacSha256,
}

impl Secret {
    /// Uses `key`'s bytes verbatim as the HMAC key.
    pub fn from_raw(key: impl AsRef<[u8]>) -> Result<Self, SecretError> {
        Self::from_key(Zeroizing::new(key.as_ref().to_vec()))
    }

    /// Decodes standard base64 (padding optional), after an optional `whsec_` prefix.
    pub fn from_base64(encoded: &str) -> Result<Self, SecretError> {
        let body = encoded.strip_prefix(WHSEC_PREFIX).unwrap_or(encoded);
        if body.is_empty() {
            return Err(SecretError::Empty);
        }
        let trimmed = body.trim_end_matches('=');
        let key = base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(trimmed)
            .map_err(|_| SecretError::MalformedBase64)?;
        Self::from_key(Zeroizing::new(key))
    }

    /// A fresh 32-byte key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, SecretError> {
        let mut key = Zeroizing::new(vec![0u8; GENERATED_LEN]);
        getrandom::fill(&mut key).map_err(|_| SecretError::RandomUnavailable)?;
        Self::from_key(key)
    }

    fn from_key(key: Zeroizing<Vec<u8>>) -> Result<Self, SecretError> {
        if key.is_empty() {
            return Err(SecretError::Empty);
        }
        let keyed = HmacSha256::new_from_slice(&key).map_err(|_| SecretError::Empty)?;
        Ok(Self {
            inner: Arc::new(Inner { key, keyed }),
        })
    }

    /// The key in Standard Webhooks form, `whsec_<base64>`, to hand to a receiver once.
    ///
    /// This is the only way to read a secret back out; keep the result out of logs.
    pub fn reveal_whsec(&self) -> String {
        format!("{WHSEC_PREFIX}{}", BASE64.encode(&*self.inner.key))
    }

    /// HMAC-SHA256 of the concatenation of `parts`, without copying them together.
    pub fn mac(&self, parts: &[&[u8]]) -> MacTag {
        let mut mac = self.inner.keyed.clone();
        for part in parts {
            mac.update(part);
        }
        MacTag(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl FromStr for Secret {
    type Err = SecretError;

    /// `whsec_…` is decoded as base64; anything else is used verbatim.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.starts_with(WHSEC_PREFIX) {
            Self::from_base64(s)
        } else {
            Self::from_raw(s)
        }
    }
}

/// Why a [`Secret`] could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretError {
    /// The key (or the base64 after `whsec_`) is empty.
    Empty,
    /// The text after `whsec_` is not valid base64.
    MalformedBase64,
    /// The operating system's random number generator failed.
    RandomUnavailable,
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "secret is empty",
            Self::MalformedBase64 => "secret is not valid base64",
            Self::RandomUnavailable => "the system random number generator is unavailable",
        })
    }
}

impl std::error::Error for SecretError {}

/// An HMAC-SHA256 tag: 32 bytes, compared only in constant time.
///
/// `Debug` is redacted, so a tag never lands in logs by accident.
#[derive(Clone, Copy)]
pub struct MacTag([u8; 32]);

impl MacTag {
    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lowercase hexadecimal, as most webhook senders write it.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Standard base64 with padding, as Standard Webhooks writes it.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0)
    }

    /// Constant-time comparison with decoded signature bytes; a length mismatch is `false`.
    ///
    /// The difference is accumulated word by word with no early exit, then tested once with
    /// `subtle`, so the time does not depend on where the bytes differ.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        let Ok(candidate) = <&[u8; 32]>::try_from(candidate) else {
            return false;
        };
        let word = |bytes: &[u8]| {
            let mut buf = [0u8; 8];
            buf.copy_from_slice(bytes);
            u64::from_ne_bytes(buf)
        };
        let difference = self
            .0
            .chunks_exact(8)
            .zip(candidate.chunks_exact(8))
            .fold(0u64, |acc, (a, b)| acc | (word(a) ^ word(b)));
        bool::from(difference.ct_eq(&0))
    }
}

impl fmt::Debug for MacTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MacTag(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::Secret;

    #[test]
    fn matches_sees_every_bit_and_every_length() {
        let tag = Secret::from_raw("k").unwrap().mac(&[b"body"]);
        let bytes = *tag.as_bytes();
        assert!(tag.matches(&bytes));
        for bit in 0..256 {
            let mut flipped = bytes;
            flipped[bit / 8] ^= 1 << (bit % 8);
            assert!(!tag.matches(&flipped), "bit {bit}");
        }
        assert!(!tag.matches(&bytes[..31]));
        assert!(!tag.matches(&[bytes.as_slice(), &[0]].concat()));
        assert!(!tag.matches(&[]));
    }
}
