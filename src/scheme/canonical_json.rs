use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Number;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::{
    Authenticated, Coverage, Message, Scheme, SignError, Tolerance, VerifyContext, owned_name,
};
use crate::headers::{Redact, SignedHeaders};
use crate::{Secret, VerifyError};

/// The top-level fields TaskOn's signature covers, and the only ones.
pub const SIGNED_FIELDS: &[&str] = &["timestamp", "user_id"];

/// Largest integer a JSON number can carry through JavaScript and Go's `float64` unchanged.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// TaskOn's scheme: `X-API-Key: <key>` and
/// `X-Signature: <hex HMAC-SHA256(secret, {"timestamp":T,"user_id":U})>`, with `T` and `U`
/// read from the body.
///
/// **Only `user_id` and `timestamp` are authenticated.** Every other field of the body
/// (`reward_amount`, `email`, `evm_address`, …) can be altered in flight without breaking
/// the signature; [`Coverage::Fields`] says so on every verified request. The API key is a
/// static credential, compared in constant time.
///
/// **Key order.** TaskOn's documentation claims alphabetical order, shows `user_id` first,
/// and its Node example builds `{user_id, timestamp}` in that order. The signer, however, is
/// TaskOn's Go server, which marshals a `map`, and Go sorts map keys: the bytes actually
/// signed are `{"timestamp":1758251308,"user_id":11111}`. The Go server is the authority, so
/// that is [`KeyOrder::Sorted`], the default. [`KeyOrder::NodeExample`] reproduces the Node
/// example's bytes for peers built from it; use it only when you know you talk to one.
///
/// `user_id` and `timestamp` must be JSON integers (or integral numbers such as `11111.0`,
/// which Go and JavaScript re-serialise as `11111`) within ±(2^53 − 1); anything else is
/// refused rather than guessed at. The timestamp is the reward's distribution time and stays
/// the same on retries, so no freshness window applies by default; use idempotency on
/// `task_id` + `user_id` + `timestamp` against replays, or [`CanonicalJson::freshness`].
///
/// ```
/// use hookrelay::scheme::{ApiKey, CanonicalJson, Message, Scheme};
/// use hookrelay::Secret;
///
/// let scheme = CanonicalJson::new(ApiKey::new("your-api-key")?);
/// let body = br#"{"task_id":1,"user_id":11111,"timestamp":1758251308}"#;
/// let headers = scheme.sign(&Secret::from_raw("your-secret-key")?, &Message::new(body))?;
/// assert_eq!(headers.get("X-API-Key"), Some("your-api-key"));
/// assert_eq!(
///     CanonicalJson::signed_bytes(body, Default::default())?,
///     br#"{"timestamp":1758251308,"user_id":11111}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct CanonicalJson {
    api_key: ApiKey,
    key_order: KeyOrder,
    freshness: Option<Tolerance>,
}

/// The order of keys in TaskOn's signed JSON (see [`CanonicalJson`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum KeyOrder {
    /// `{"timestamp":…,"user_id":…}`: what TaskOn's Go signer produces. The default.
    #[default]
    Sorted,
    /// `{"user_id":…,"timestamp":…}`: what the documentation's Node example produces.
    NodeExample,
}

/// TaskOn's static `X-API-Key` credential. `Debug` is redacted; comparison is constant-time.
#[derive(Clone)]
pub struct ApiKey(Arc<str>);

impl ApiKey {
    /// Fails on an empty key or one that cannot be sent as a header value.
    pub fn new(key: impl Into<String>) -> Result<Self, InvalidApiKey> {
        let key = key.into();
        let printable = key.bytes().all(|b| b.is_ascii_graphic() || b == b' ');
        if key.trim().is_empty() || !printable || key.trim() != key {
            return Err(InvalidApiKey(()));
        }
        Ok(Self(key.into()))
    }

    /// The key text, for stores that must persist it. Do not log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn matches(&self, presented: &str) -> bool {
        // Hashing first makes the comparison independent of both lengths.
        let expected = Sha256::digest(self.0.as_bytes());
        let presented = Sha256::digest(presented.as_bytes());
        expected.ct_eq(&presented).into()
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// An API key that is empty, padded with spaces, or not printable ASCII.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidApiKey(());

impl fmt::Display for InvalidApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("api key must be non-empty printable ascii without surrounding spaces")
    }
}

impl std::error::Error for InvalidApiKey {}

#[derive(Deserialize)]
struct SignedFields {
    user_id: Number,
    timestamp: Number,
}

/// The decimal text JavaScript and Go would print for this number, if it is a safe integer.
fn integer_text(number: &Number) -> Option<String> {
    if let Some(i) = number.as_i64() {
        return (i.unsigned_abs() <= MAX_SAFE_INTEGER as u64).then(|| i.to_string());
    }
    if number.is_u64() {
        return None; // beyond i64, so beyond 2^53 too
    }
    let f = number.as_f64()?;
    (f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER).then(|| format!("{}", f as i64))
}

impl CanonicalJson {
    /// The API key header.
    pub const API_KEY_HEADER: &'static str = "X-API-Key";
    /// The signature header.
    pub const SIGNATURE_HEADER: &'static str = "X-Signature";

    /// TaskOn's scheme with Go's key order and no freshness window.
    pub fn new(api_key: ApiKey) -> Self {
        Self {
            api_key,
            key_order: KeyOrder::Sorted,
            freshness: None,
        }
    }

    /// Chooses the key order of the signed JSON (see the type docs before changing it).
    pub fn key_order(mut self, order: KeyOrder) -> Self {
        self.key_order = order;
        self
    }

    /// Rejects requests whose signed `timestamp` lies outside `window` of the verifier's clock.
    ///
    /// Off by default: TaskOn keeps the original timestamp on retries, so a window shorter
    /// than its retry horizon would reject legitimate retries.
    pub fn freshness(mut self, window: Tolerance) -> Self {
        self.freshness = Some(window);
        self
    }

    /// The exact bytes TaskOn signs for `body`.
    pub fn signed_bytes(body: &[u8], order: KeyOrder) -> Result<Vec<u8>, SignError> {
        let (user_id, timestamp) = Self::signed_fields(body)?;
        Ok(Self::render(&user_id, &timestamp, order))
    }

    /// `user_id` and `timestamp` as JavaScript and Go print them.
    fn signed_fields(body: &[u8]) -> Result<(String, String), SignError> {
        let fields: SignedFields = serde_json::from_slice(body).map_err(|_| {
            SignError::UnsignableBody("body is not a json object with user_id and timestamp")
        })?;
        match (
            integer_text(&fields.user_id),
            integer_text(&fields.timestamp),
        ) {
            (Some(user_id), Some(timestamp)) => Ok((user_id, timestamp)),
            _ => Err(SignError::UnsignableBody(
                "user_id and timestamp must be integers within 2^53",
            )),
        }
    }

    fn render(user_id: &str, timestamp: &str, order: KeyOrder) -> Vec<u8> {
        match order {
            KeyOrder::Sorted => format!(r#"{{"timestamp":{timestamp},"user_id":{user_id}}}"#),
            KeyOrder::NodeExample => format!(r#"{{"user_id":{user_id},"timestamp":{timestamp}}}"#),
        }
        .into_bytes()
    }
}

impl Scheme for CanonicalJson {
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
        let signed = Self::signed_bytes(message.body, self.key_order)?;
        let mut headers = SignedHeaders::new();
        headers.push(
            Self::API_KEY_HEADER,
            self.api_key.0.to_string(),
            Redact::Yes,
        );
        headers.push(
            Self::SIGNATURE_HEADER,
            secret.mac(&[&signed]).to_hex(),
            Redact::Yes,
        );
        Ok(headers)
    }

    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
        let presented = ctx.required_header(Self::API_KEY_HEADER)?;
        let signature = ctx.hex_signature(Self::SIGNATURE_HEADER, "")?;
        if !self.api_key.matches(presented) {
            return Err(VerifyError::InvalidApiKey);
        }
        let (user_id, raw_timestamp) =
            Self::signed_fields(ctx.body()).map_err(|_| VerifyError::UnsignedBody)?;
        let signed = Self::render(&user_id, &raw_timestamp, self.key_order);
        ctx.match_any([signature.as_slice()], &[&signed])?;

        let timestamp = crate::Timestamp::parse_header(raw_timestamp.as_bytes())
            .map_err(|_| VerifyError::InvalidTimestamp(owned_name("timestamp")))?;
        if let Some(window) = self.freshness {
            window.check(ctx.now(), timestamp)?;
        }
        Ok(Authenticated {
            id: None,
            timestamp: Some(timestamp),
            coverage: Coverage::Fields(SIGNED_FIELDS),
        })
    }
}
