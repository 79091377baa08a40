//! The verifier: checks a request under one scheme and a set of active secrets.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::clock::{Clock, SystemClock, Timestamp};
use crate::headers::HeaderLookup;
use crate::scheme::{Authenticated, Coverage, Scheme, Tolerance, VerifyContext};
use crate::secret::Secret;

/// Default cap on signature candidates in one request.
pub const DEFAULT_MAX_SIGNATURES: usize = 16;
/// Default cap on body size: 1 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1 << 20;

/// Verifies webhook requests under one [`Scheme`].
///
/// - Several secrets may be active at once (rotation): a signature by any of them is valid.
/// - Timestamps are checked against a [`Tolerance`] window (default ±300 s) read from an
///   injectable [`Clock`].
/// - Bodies over the size limit are refused before any HMAC work; so are requests carrying
///   more signature candidates than the limit.
/// - Works on raw bytes, so non-UTF-8 bodies verify under raw-body schemes.
/// - Never panics on any input; every failure is a [`VerifyError`].
///
/// The returned [`Verified`] is the only way this crate hands out a payload.
///
/// ```
/// use hookrelay::scheme::StandardWebhooks;
/// use hookrelay::{FixedClock, Secret, Timestamp, Verifier};
///
/// let verifier = Verifier::builder(StandardWebhooks::new())
///     .secret(Secret::from_base64("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?)
///     .clock(FixedClock(Timestamp::from_unix(1_614_265_330)))
///     .build()?;
/// let headers = [
///     ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
///     ("webhook-timestamp", "1614265330"),
///     ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
/// ];
/// let verified = verifier.verify(&headers, br#"{"test": 2432232314}"#)?;
/// assert_eq!(verified.id(), Some("msg_p5jXN8AQM9LWM0D4loKWxJek"));
/// let payload: serde_json::Value = verified.json()?;
/// assert_eq!(payload["test"], 2432232314u64);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Verifier {
    scheme: Arc<dyn Scheme>,
    secrets: Arc<[Secret]>,
    tolerance: Tolerance,
    clock: Arc<dyn Clock>,
    max_signatures: usize,
    max_body_bytes: usize,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field("scheme", &self.scheme)
            .field("secrets", &self.secrets.len())
            .field("tolerance", &self.tolerance)
            .field("clock", &self.clock)
            .field("max_signatures", &self.max_signatures)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl Verifier {
    /// Starts building a verifier for `scheme`.
    pub fn builder(scheme: impl Scheme + 'static) -> VerifierBuilder {
        VerifierBuilder {
            scheme: Arc::new(scheme),
            secrets: Vec::new(),
            tolerance: Tolerance::DEFAULT,
            clock: Arc::new(SystemClock),
            max_signatures: DEFAULT_MAX_SIGNATURES,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// The body size limit in bytes.
    pub fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Checks `headers` and the raw `body` bytes; on success returns the verified request.
    pub fn verify<'b>(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: &'b [u8],
    ) -> Result<Verified<'b>, VerifyError> {
        self.verify_with_clock(headers, body, &*self.clock)
    }

    /// [`verify`](Self::verify) with another clock, e.g. a time the caller already read, so
    /// a receiver reads the clock once per request.
    pub(crate) fn verify_with_clock<'b>(
        &self,
        headers: &(impl HeaderLookup + ?Sized),
        body: &'b [u8],
        clock: &dyn Clock,
    ) -> Result<Verified<'b>, VerifyError> {
        if body.len() > self.max_body_bytes {
            return Err(VerifyError::BodyTooLarge {
                limit: self.max_body_bytes,
            });
        }
        let ctx = VerifyContext {
            headers: &HeadersRef(headers),
            body,
            secrets: &self.secrets,
            clock,
            tolerance: self.tolerance,
            max_signatures: self.max_signatures,
        };
        let authenticated = self.scheme.verify(&ctx)?;
        Ok(Verified {
            authenticated,
            body,
        })
    }
}

/// Lets an unsized `impl HeaderLookup` be used as `&dyn HeaderLookup`.
struct HeadersRef<'h, H: ?Sized>(&'h H);

impl<H: HeaderLookup + ?Sized> HeaderLookup for HeadersRef<'_, H> {
    fn header(&self, name: &str) -> crate::headers::HeaderValue<'_> {
        self.0.header(name)
    }
}

/// Configures a [`Verifier`]; setters never fail, [`build`](Self::build) validates.
#[derive(Clone)]
pub struct VerifierBuilder {
    scheme: Arc<dyn Scheme>,
    secrets: Vec<Secret>,
    tolerance: Tolerance,
    clock: Arc<dyn Clock>,
    max_signatures: usize,
    max_body_bytes: usize,
}

impl fmt::Debug for VerifierBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifierBuilder")
            .field("scheme", &self.scheme)
            .field("secrets", &self.secrets.len())
            .finish_non_exhaustive()
    }
}

impl VerifierBuilder {
    /// Adds an active secret; call it again for each secret during a rotation.
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.push(secret);
        self
    }

    /// Adds several active secrets.
    pub fn secrets(mut self, secrets: impl IntoIterator<Item = Secret>) -> Self {
        self.secrets.extend(secrets);
        self
    }

    /// How far signed timestamps may be from now (default ±300 s).
    pub fn tolerance(mut self, tolerance: Tolerance) -> Self {
        self.tolerance = tolerance;
        self
    }

    /// Where "now" comes from (default: the system clock).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The most signature candidates one request may carry (default 16, at least 1).
    pub fn max_signatures(mut self, limit: usize) -> Self {
        self.max_signatures = limit;
        self
    }

    /// The largest body accepted, in bytes (default 1 MiB, at least 1).
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Validates the configuration.
    pub fn build(self) -> Result<Verifier, BuildError> {
        if self.secrets.is_empty() && !self.scheme.verifies_without_secrets() {
            return Err(BuildError::NoSecrets);
        }
        if self.max_signatures == 0 {
            return Err(BuildError::ZeroLimit("max_signatures"));
        }
        if self.max_body_bytes == 0 {
            return Err(BuildError::ZeroLimit("max_body_bytes"));
        }
        Ok(Verifier {
            scheme: self.scheme,
            secrets: self.secrets.into(),
            tolerance: self.tolerance,
            clock: self.clock,
            max_signatures: self.max_signatures,
            max_body_bytes: self.max_body_bytes,
        })
    }
}

/// Why a [`VerifierBuilder`] refused its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BuildError {
    /// No secret was given and the scheme needs one.
    NoSecrets,
    /// A limit was set to zero.
    ZeroLimit(&'static str),
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSecrets => f.write_str("at least one secret is required"),
            Self::ZeroLimit(name) => write!(f, "{name} must be at least 1"),
        }
    }
}

impl std::error::Error for BuildError {}

/// A request whose signature held. The only way to reach a verified payload.
#[derive(Debug, Clone)]
pub struct Verified<'b> {
    authenticated: Authenticated,
    body: &'b [u8],
}

impl<'b> Verified<'b> {
    /// The message id the scheme carries (`webhook-id`, `X-Webhook-ID`), if any.
    pub fn id(&self) -> Option<&str> {
        self.authenticated.id.as_deref()
    }

    /// The signed timestamp, if the scheme signs one.
    pub fn timestamp(&self) -> Option<Timestamp> {
        self.authenticated.timestamp
    }

    /// What the signature vouches for. Check it before trusting fields of a
    /// [`Coverage::Fields`] body.
    pub fn coverage(&self) -> Coverage {
        self.authenticated.coverage
    }

    /// The raw body bytes.
    pub fn body(&self) -> &'b [u8] {
        self.body
    }

    /// Everything the scheme established: id, timestamp and coverage together.
    pub fn authenticated(&self) -> &Authenticated {
        &self.authenticated
    }

    /// Takes what the scheme established, without copying the id.
    pub fn into_authenticated(self) -> Authenticated {
        self.authenticated
    }

    /// Parses the body as JSON into `T`.
    ///
    /// Nesting is limited (serde_json's recursion limit), so hostile input fails cleanly.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, PayloadError> {
        serde_json::from_slice(self.body).map_err(|err| PayloadError {
            message: err.to_string(),
        })
    }
}

/// A verified body that does not parse as the requested type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadError {
    message: String,
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "payload does not parse: {}", self.message)
    }
}

impl std::error::Error for PayloadError {}

/// Why a request failed verification.
///
/// Messages name headers but never contain secrets, signatures or header values. Report a
/// single generic reply to the sender (whatever the variant) and log the detail.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyError {
    /// A required header is absent.
    MissingHeader(Cow<'static, str>),
    /// A security header appears more than once.
    DuplicateHeader(Cow<'static, str>),
    /// A header is not UTF-8 or not in the scheme's format.
    MalformedHeader(Cow<'static, str>),
    /// A timestamp is not a plain decimal unix time.
    InvalidTimestamp(Cow<'static, str>),
    /// The signed timestamp is older than the tolerance allows.
    TimestampTooOld,
    /// The signed timestamp is further in the future than the tolerance allows.
    TimestampInFuture,
    /// The request carries more signature candidates than the verifier's limit.
    TooManySignatures,
    /// The body is larger than the verifier's limit.
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body lacks the fields the scheme signs (TaskOn: integer `user_id`, `timestamp`).
    UnsignedBody,
    /// The API key (TaskOn's `X-API-Key`) is wrong.
    InvalidApiKey,
    /// No signature matched any active secret or key.
    SignatureMismatch,
}

impl VerifyError {
    /// Whether the request was malformed (HTTP 400), as opposed to unauthenticated (401)
    /// or too large (413).
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            Self::MissingHeader(_)
                | Self::DuplicateHeader(_)
                | Self::MalformedHeader(_)
                | Self::InvalidTimestamp(_)
                | Self::TooManySignatures
                | Self::UnsignedBody
        )
    }
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingHeader(name) => write!(f, "missing header `{name}`"),
            Self::DuplicateHeader(name) => write!(f, "header `{name}` appears more than once"),
            Self::MalformedHeader(name) => write!(f, "header `{name}` is malformed"),
            Self::InvalidTimestamp(name) => write!(f, "`{name}` is not a valid unix timestamp"),
            Self::TimestampTooOld => f.write_str("timestamp is older than the tolerance"),
            Self::TimestampInFuture => f.write_str("timestamp is too far in the future"),
            Self::TooManySignatures => f.write_str("too many signatures in one request"),
            Self::BodyTooLarge { limit } => write!(f, "body is larger than {limit} bytes"),
            Self::UnsignedBody => f.write_str("body lacks the signed fields"),
            Self::InvalidApiKey => f.write_str("api key does not match"),
            Self::SignatureMismatch => f.write_str("no signature matches"),
        }
    }
}

impl std::error::Error for VerifyError {}
