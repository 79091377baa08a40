//! Signing schemes: how a sender signs a request and how a receiver checks it.
//!
//! Every scheme implements [`Scheme`]; users can implement it for their own scheme with the
//! same building blocks ([`Secret::mac`], [`VerifyContext`]).
//!
//! | scheme | type | headers | signed bytes |
//! |---|---|---|---|
//! | `raw-body` (Proposal Generator) | [`RawBody`] | `X-Webhook-Signature: <hex>` | body |
//! | `id-body` (TaskLink) | [`IdBody`] | `X-Webhook-ID`, `X-Webhook-Signature: sha256=<hex>` | id ‖ body |
//! | `canonical-json` (TaskOn) | [`CanonicalJson`] | `X-API-Key`, `X-Signature: <hex>` | `{"timestamp":T,"user_id":U}` |
//! | `x-hub` (task-hub) | [`XHub`] | `X-Hub-Signature: sha256=<hex>` | body |
//! | `github` | [`XHub::github`] | `X-Hub-Signature-256: sha256=<hex>` | body |
//! | `standard-webhooks` | [`StandardWebhooks`] | `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>` | `{id}.{timestamp}.{body}` |
//! | `stripe` | [`Stripe`] | `Stripe-Signature: t=<ts>,v1=<hex>` | `{t}.{body}` |
//!
//! Hex signatures are decoded before comparison, so upper- and lowercase hex are equivalent;
//! a `sha256=` prefix, where the scheme has one, is required.

mod canonical_json;
mod encoding;
mod hub;
mod id_body;
mod raw_body;
mod standard;
mod stripe;
mod webhook_id;

#[cfg(feature = "inbox")]
pub(crate) use canonical_json::SIGNED_FIELDS;
pub use canonical_json::{ApiKey, CanonicalJson, KeyOrder};
pub(crate) use encoding::{decode_base64_32, decode_hex32};
pub use hub::XHub;
pub use id_body::IdBody;
pub use raw_body::RawBody;
pub use standard::StandardWebhooks;
#[cfg(feature = "ed25519")]
pub use standard::{Ed25519SigningKey, Ed25519VerifyingKey, KeyError};
pub use stripe::Stripe;
pub use webhook_id::WebhookId;

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::headers::{HeaderLookup, HeaderValue, SignedHeaders};
use crate::{Secret, Timestamp, VerifyError};

/// A webhook signing scheme.
///
/// `sign` produces exactly the headers to attach to a request; `verify` checks a request's
/// headers and raw body bytes and reports what the signature authenticates.
///
/// Implement it for a scheme hookrelay does not ship:
///
/// ```
/// use hookrelay::scheme::{Authenticated, Coverage, Message, Scheme, SignError, VerifyContext};
/// use hookrelay::{Redact, Secret, SignedHeaders, VerifyError};
///
/// /// `X-Signature: <hex HMAC(body)>`
/// #[derive(Debug)]
/// struct Mine;
///
/// impl Scheme for Mine {
///     fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
///         let mut headers = SignedHeaders::new();
///         headers.push("X-Signature", secret.mac(&[message.body]).to_hex(), Redact::Yes);
///         Ok(headers)
///     }
///
///     fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
///         let signature = ctx.hex_signature("X-Signature", "")?;
///         ctx.match_any([signature.as_slice()], &[ctx.body()])?;
///         Ok(Authenticated::new(Coverage::Body))
///     }
/// }
/// # let secret = Secret::from_raw("k")?;
/// # let headers = Mine.sign(&secret, &Message::new(b"{}"))?;
/// # assert_eq!(headers.len(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Scheme: fmt::Debug + Send + Sync {
    /// The headers to attach to a request carrying `message.body`.
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError>;

    /// The headers to attach when signing with every secret in `secrets` (rotation), newest
    /// first.
    ///
    /// Schemes whose header carries several signatures (Standard Webhooks, Stripe) sign with
    /// each; the default signs with the first only, since a receiver of a one-signature
    /// scheme checks one value. Empty `secrets` → [`SignError::NoSecret`].
    fn sign_all(
        &self,
        secrets: &[&Secret],
        message: &Message<'_>,
    ) -> Result<SignedHeaders, SignError> {
        let first = secrets.first().ok_or(SignError::NoSecret)?;
        self.sign(first, message)
    }

    /// Checks the request in `ctx` against its secrets.
    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError>;

    /// Whether [`sign_all`](Self::sign_all) signs with every secret it is given (the header
    /// carries several signatures), so an old and a new secret can sign side by side during a
    /// rotation. `false` by default: one signature, from the first secret.
    fn signs_with_every_secret(&self) -> bool {
        false
    }

    /// Whether this scheme can verify with no shared secret (e.g. Ed25519 public keys only).
    ///
    /// The [`Verifier`](crate::Verifier) builder refuses an empty secret list otherwise.
    fn verifies_without_secrets(&self) -> bool {
        false
    }
}

impl<S: Scheme + ?Sized> Scheme for Box<S> {
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
        (**self).sign(secret, message)
    }

    fn sign_all(
        &self,
        secrets: &[&Secret],
        message: &Message<'_>,
    ) -> Result<SignedHeaders, SignError> {
        (**self).sign_all(secrets, message)
    }

    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
        (**self).verify(ctx)
    }

    fn verifies_without_secrets(&self) -> bool {
        (**self).verifies_without_secrets()
    }

    fn signs_with_every_secret(&self) -> bool {
        (**self).signs_with_every_secret()
    }
}

/// What a sender signs: the body, and the id and timestamp for schemes that sign them.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// The exact bytes that will be sent as the request body.
    pub body: &'a [u8],
    /// The message or delivery id (required by `id-body` and `standard-webhooks`).
    pub id: Option<&'a str>,
    /// The signing time (required by `standard-webhooks` and `stripe`).
    pub timestamp: Option<Timestamp>,
}

impl<'a> Message<'a> {
    /// A message with only a body.
    pub fn new(body: &'a [u8]) -> Self {
        Self {
            body,
            id: None,
            timestamp: None,
        }
    }

    /// Sets the id.
    pub fn with_id(mut self, id: &'a str) -> Self {
        self.id = Some(id);
        self
    }

    /// Sets the signing time.
    pub fn with_timestamp(mut self, timestamp: Timestamp) -> Self {
        self.timestamp = Some(timestamp);
        self
    }

    pub(crate) fn require_id(&self) -> Result<&'a str, SignError> {
        let id = self.id.ok_or(SignError::MissingId)?;
        if is_valid_id(id) {
            Ok(id)
        } else {
            Err(SignError::InvalidId)
        }
    }

    pub(crate) fn require_timestamp(&self) -> Result<Timestamp, SignError> {
        match self.timestamp {
            Some(t) if t.as_unix() >= 0 => Ok(t),
            Some(_) => Err(SignError::InvalidTimestamp),
            None => Err(SignError::MissingTimestamp),
        }
    }
}

/// Longest id accepted in headers, signing or verifying.
pub(crate) const MAX_ID_LEN: usize = 256;

/// Ids are 1–256 visible ASCII characters (so they fit in a header as they are).
pub(crate) fn is_valid_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// Why a message could not be signed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignError {
    /// The scheme signs an id and none was given.
    MissingId,
    /// The id is empty, too long, or not visible ASCII (or contains `.` for Standard Webhooks).
    InvalidId,
    /// The scheme signs a timestamp and none was given.
    MissingTimestamp,
    /// The timestamp is before the Unix epoch.
    InvalidTimestamp,
    /// The body lacks what the scheme signs (TaskOn: integer `user_id` and `timestamp`).
    UnsignableBody(&'static str),
    /// No signing secret was given.
    NoSecret,
}

impl fmt::Display for SignError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingId => f.write_str("the scheme signs an id but none was given"),
            Self::InvalidId => f.write_str("id must be 1-256 visible ascii characters"),
            Self::MissingTimestamp => {
                f.write_str("the scheme signs a timestamp but none was given")
            }
            Self::InvalidTimestamp => f.write_str("timestamp is before the unix epoch"),
            Self::UnsignableBody(why) => write!(f, "body cannot be signed: {why}"),
            Self::NoSecret => f.write_str("no signing secret is active"),
        }
    }
}

impl std::error::Error for SignError {}

/// Which parts of a request a valid signature vouches for.
///
/// Anything not covered could have been changed in flight by someone without the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Coverage {
    /// The body bytes only (`raw-body`, `x-hub`, `github`).
    Body,
    /// The id header and the body bytes (`id-body`).
    IdAndBody,
    /// The id, timestamp and body bytes (`standard-webhooks`).
    IdTimestampAndBody,
    /// The timestamp and body bytes (`stripe`).
    TimestampAndBody,
    /// Only these top-level JSON fields of the body; every other field is unauthenticated
    /// (`canonical-json`: `timestamp` and `user_id`).
    Fields(&'static [&'static str]),
}

impl Coverage {
    /// Whether every byte of the body is authenticated.
    pub fn covers_whole_body(self) -> bool {
        !matches!(self, Self::Fields(_))
    }
}

/// What a scheme established about a request whose signature it accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// The signed or transported message id, if the scheme has one.
    pub id: Option<WebhookId>,
    /// The signed timestamp, if the scheme has one.
    pub timestamp: Option<Timestamp>,
    /// What the signature vouches for.
    pub coverage: Coverage,
}

impl Authenticated {
    /// A result with no id and no timestamp.
    pub fn new(coverage: Coverage) -> Self {
        Self {
            id: None,
            timestamp: None,
            coverage,
        }
    }
}

/// How far a signed timestamp may be from "now", in each direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tolerance {
    past: Duration,
    future: Duration,
}

impl Tolerance {
    /// The default: five minutes either way.
    pub const DEFAULT: Self = Self::symmetric(Duration::from_secs(300));

    /// The same allowance for old and for future timestamps.
    pub const fn symmetric(window: Duration) -> Self {
        Self {
            past: window,
            future: window,
        }
    }

    /// Separate allowances for timestamps in the past and in the future.
    pub const fn new(past: Duration, future: Duration) -> Self {
        Self { past, future }
    }

    pub(crate) fn check(self, now: Timestamp, signed: Timestamp) -> Result<(), VerifyError> {
        let age = now.seconds_since(signed);
        let limit = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        if age > limit(self.past) {
            Err(VerifyError::TimestampTooOld)
        } else if age < -limit(self.future) {
            Err(VerifyError::TimestampInFuture)
        } else {
            Ok(())
        }
    }
}

impl Default for Tolerance {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One request as a scheme sees it while verifying, with the verifier's policy.
pub struct VerifyContext<'a> {
    pub(crate) headers: &'a dyn HeaderLookup,
    pub(crate) body: &'a [u8],
    pub(crate) secrets: &'a [Secret],
    pub(crate) clock: &'a dyn crate::Clock,
    pub(crate) tolerance: Tolerance,
    pub(crate) max_signatures: usize,
}

impl fmt::Debug for VerifyContext<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyContext")
            .field("body_len", &self.body.len())
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .finish_non_exhaustive()
    }
}

impl<'a> VerifyContext<'a> {
    /// The raw body bytes.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The verifier's current time.
    ///
    /// Read from the clock when asked, so schemes that sign no timestamp never pay for it.
    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// How many signature candidates one request may carry.
    pub fn max_signatures(&self) -> usize {
        self.max_signatures
    }

    /// The single value of header `name`, trimmed of surrounding spaces and tabs, as UTF-8.
    ///
    /// Missing → [`VerifyError::MissingHeader`], repeated → [`VerifyError::DuplicateHeader`],
    /// not UTF-8 → [`VerifyError::MalformedHeader`].
    #[inline]
    pub fn required_header(&self, name: &str) -> Result<&'a str, VerifyError> {
        self.optional_header(name)?.ok_or_else(|| missing(name))
    }

    /// Like [`required_header`](Self::required_header), as raw bytes (no UTF-8 check).
    #[inline]
    pub fn required_header_bytes(&self, name: &str) -> Result<&'a [u8], VerifyError> {
        self.optional_header_bytes(name)?
            .ok_or_else(|| missing(name))
    }

    /// Like [`required_header`](Self::required_header), but absence is `Ok(None)`.
    #[inline]
    pub fn optional_header(&self, name: &str) -> Result<Option<&'a str>, VerifyError> {
        match self.optional_header_bytes(name)? {
            None => Ok(None),
            Some(raw) => std::str::from_utf8(raw)
                .map(Some)
                .map_err(|_| VerifyError::MalformedHeader(owned_name(name))),
        }
    }

    /// The single value of header `name`, trimmed of surrounding spaces and tabs, as raw
    /// bytes (no UTF-8 check); `Ok(None)` when absent, [`VerifyError::DuplicateHeader`] when
    /// repeated. For values a scheme parses byte by byte anyway, such as signature lists.
    #[inline]
    pub fn optional_header_bytes(&self, name: &str) -> Result<Option<&'a [u8]>, VerifyError> {
        match self.headers.header(name) {
            HeaderValue::Missing => Ok(None),
            HeaderValue::Repeated => Err(VerifyError::DuplicateHeader(owned_name(name))),
            HeaderValue::One(raw) => Ok(Some(trim_whitespace(raw))),
        }
    }

    /// Header `name` as `prefix` followed by 64 hex digits (either case), decoded.
    pub fn hex_signature(&self, name: &str, prefix: &str) -> Result<[u8; 32], VerifyError> {
        let value = self.required_header_bytes(name)?;
        value
            .strip_prefix(prefix.as_bytes())
            .and_then(decode_hex32)
            .ok_or_else(|| VerifyError::MalformedHeader(owned_name(name)))
    }

    /// Parses a signed timestamp (text or raw header bytes) and checks it against the
    /// tolerance window.
    pub fn fresh_timestamp(
        &self,
        name: &str,
        raw: impl AsRef<[u8]>,
    ) -> Result<Timestamp, VerifyError> {
        let signed = Timestamp::parse_header(raw.as_ref())
            .map_err(|_| VerifyError::InvalidTimestamp(owned_name(name)))?;
        self.tolerance.check(self.now(), signed)?;
        Ok(signed)
    }

    /// Succeeds if any candidate equals the HMAC of `parts` under any active secret.
    ///
    /// Each secret's MAC is computed once; comparisons are constant-time. Candidates may be
    /// produced lazily (decoded as they are compared): nothing is collected.
    pub fn match_any<C: AsRef<[u8]>>(
        &self,
        candidates: impl IntoIterator<Item = C> + Clone,
        parts: &[&[u8]],
    ) -> Result<(), VerifyError> {
        // Every secret is tried even after a match, so timing does not reveal which matched.
        let mut matched = false;
        for secret in self.secrets {
            let tag = secret.mac(parts);
            for candidate in candidates.clone() {
                matched |= tag.matches(candidate.as_ref());
            }
        }
        if matched {
            Ok(())
        } else {
            Err(VerifyError::SignatureMismatch)
        }
    }
}

/// `value` without leading and trailing spaces and tabs (HTTP's optional whitespace).
#[inline]
fn trim_whitespace(value: &[u8]) -> &[u8] {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value
        .iter()
        .position(|b| !is_space(b))
        .unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_space(b))
        .map_or(start, |last| last + 1);
    &value[start..end]
}

fn missing(name: &str) -> VerifyError {
    VerifyError::MissingHeader(owned_name(name))
}

pub(crate) fn owned_name(name: &str) -> Cow<'static, str> {
    Cow::Owned(name.to_owned())
}
