use super::{
    Authenticated, Coverage, MAX_ID_LEN, Message, Scheme, SignError, VerifyContext, WebhookId,
    decode_base64_32,
};
use crate::headers::{Redact, SignedHeaders};
use crate::{Secret, VerifyError};

const ID: &str = "webhook-id";
const TIMESTAMP: &str = "webhook-timestamp";
const SIGNATURE: &str = "webhook-signature";
const SVIX_ID: &str = "svix-id";
const SVIX_TIMESTAMP: &str = "svix-timestamp";
const SVIX_SIGNATURE: &str = "svix-signature";

/// [Standard Webhooks](https://www.standardwebhooks.com/): `webhook-id`, `webhook-timestamp`
/// and `webhook-signature: v1,<base64 HMAC-SHA256(secret, "{id}.{timestamp}.{body}")>`.
///
/// - Secrets are `whsec_<base64>`: build them with [`Secret::from_base64`].
/// - Verification also accepts Svix's `svix-id` / `svix-timestamp` / `svix-signature`
///   names; the `webhook-*` set is used whenever `webhook-signature` is present.
/// - The signature header is a space-separated list; `v1` entries are checked against every
///   secret, `v1a` (Ed25519) entries against the public keys given with
///   `with_public_key` (feature `ed25519`), and every other version is ignored, never counted
///   as valid. More entries than the verifier's limit is an error, answered before any
///   HMAC work.
/// - Ids must be visible ASCII **without `.`**, and timestamps plain digits, so that no
///   other `(id, timestamp, body)` triple can produce the same signed string.
///
/// ```
/// use hookrelay::scheme::{Message, Scheme, StandardWebhooks};
/// use hookrelay::{Secret, Timestamp};
///
/// // The Standard Webhooks specification's example.
/// let secret = Secret::from_base64("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")?;
/// let message = Message::new(br#"{"test": 2432232314}"#)
///     .with_id("msg_p5jXN8AQM9LWM0D4loKWxJek")
///     .with_timestamp(Timestamp::from_unix(1_614_265_330));
/// let headers = StandardWebhooks::new().sign(&secret, &message)?;
/// assert_eq!(
///     headers.get("webhook-signature"),
///     Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct StandardWebhooks {
    #[cfg(feature = "ed25519")]
    public_keys: Vec<Ed25519VerifyingKey>,
}

impl StandardWebhooks {
    /// HMAC (`v1`) signing and verification.
    pub fn new() -> Self {
        Self::default()
    }

    fn signed_id<'a>(message: &Message<'a>) -> Result<&'a str, SignError> {
        let id = message.id.ok_or(SignError::MissingId)?;
        if is_signable_id(id) {
            Ok(id)
        } else {
            Err(SignError::InvalidId)
        }
    }

    fn headers(id: &str, timestamp: &str, signature: String) -> SignedHeaders {
        let mut headers = SignedHeaders::new();
        headers.push(ID, id.to_owned(), Redact::No);
        headers.push(TIMESTAMP, timestamp.to_owned(), Redact::No);
        headers.push(SIGNATURE, signature, Redact::Yes);
        headers
    }
}

impl Scheme for StandardWebhooks {
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
        self.sign_all(&[secret], message)
    }

    fn signs_with_every_secret(&self) -> bool {
        true
    }

    /// One `v1,<base64>` per secret, space-separated, as the specification allows during a
    /// rotation.
    fn sign_all(
        &self,
        secrets: &[&Secret],
        message: &Message<'_>,
    ) -> Result<SignedHeaders, SignError> {
        if secrets.is_empty() {
            return Err(SignError::NoSecret);
        }
        let id = Self::signed_id(message)?;
        let timestamp = message.require_timestamp()?.to_string();
        let mut signature = String::with_capacity(48 * secrets.len());
        for secret in secrets {
            let tag = secret.mac(&[
                id.as_bytes(),
                b".",
                timestamp.as_bytes(),
                b".",
                message.body,
            ]);
            if !signature.is_empty() {
                signature.push(' ');
            }
            signature.push_str("v1,");
            signature.push_str(&tag.to_base64());
        }
        Ok(Self::headers(id, &timestamp, signature))
    }

    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
        let ((id_name, timestamp_name), signature) = match ctx.optional_header_bytes(SIGNATURE)? {
            Some(signature) => ((ID, TIMESTAMP), signature),
            None => match ctx.optional_header_bytes(SVIX_SIGNATURE)? {
                Some(signature) => ((SVIX_ID, SVIX_TIMESTAMP), signature),
                None => return Err(VerifyError::MissingHeader(SIGNATURE.into())),
            },
        };
        let id = ctx.required_header(id_name)?;
        if !is_signable_id(id) {
            return Err(VerifyError::MalformedHeader(id_name.into()));
        }
        let raw_timestamp = ctx.required_header_bytes(timestamp_name)?;

        let v1_tag = |entry: &[u8]| entry.strip_prefix(b"v1,").and_then(decode_base64_32);
        // The usual header is exactly one `v1,<base64>` entry; decoding it whole proves it
        // holds no separator, so neither the count nor a pass over the entries is needed.
        let single = v1_tag(signature);
        // Otherwise, entries are at most one more than the separators: count those first
        // (a loop the compiler vectorizes), and entries only when the list could be too long.
        if single.is_none()
            && signature.iter().filter(|b| b.is_ascii_whitespace()).count() >= ctx.max_signatures()
            && entries(signature).nth(ctx.max_signatures()).is_some()
        {
            return Err(VerifyError::TooManySignatures);
        }
        let timestamp = ctx.fresh_timestamp(timestamp_name, raw_timestamp)?;
        let signed: [&[u8]; 5] = [id.as_bytes(), b".", raw_timestamp, b".", ctx.body()];
        let hmac_result = match single {
            Some(tag) => ctx.match_any([tag], &signed),
            None => ctx.match_any(entries(signature).filter_map(v1_tag), &signed),
        };

        #[cfg(feature = "ed25519")]
        let hmac_result = hmac_result.or_else(|err| {
            if self.verify_ed25519(entries(signature), &signed) {
                Ok(())
            } else {
                Err(err)
            }
        });

        hmac_result?;
        Ok(Authenticated {
            id: Some(WebhookId::new(id)),
            timestamp: Some(timestamp),
            coverage: Coverage::IdTimestampAndBody,
        })
    }

    fn verifies_without_secrets(&self) -> bool {
        #[cfg(feature = "ed25519")]
        {
            !self.public_keys.is_empty()
        }
        #[cfg(not(feature = "ed25519"))]
        {
            false
        }
    }
}

/// A valid id (see `is_valid_id`) without `.`, the separator of the signed string.
fn is_signable_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id.bytes().all(|b| b.is_ascii_graphic() && b != b'.')
}

/// The entries of a signature list: separated by ASCII whitespace, empty ones skipped.
fn entries(list: &[u8]) -> impl Iterator<Item = &[u8]> + Clone {
    list.split(u8::is_ascii_whitespace)
        .filter(|entry| !entry.is_empty())
}

#[cfg(feature = "ed25519")]
pub use ed25519::{Ed25519SigningKey, Ed25519VerifyingKey, KeyError};

#[cfg(feature = "ed25519")]
mod ed25519 {
    use std::fmt;

    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD as BASE64;
    use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};

    use super::{Message, SignError, SignedHeaders, StandardWebhooks};

    const SECRET_PREFIX: &str = "whsk_";
    const PUBLIC_PREFIX: &str = "whpk_";

    /// An Ed25519 private key for `v1a` signatures, written `whsk_<base64>`.
    ///
    /// The base64 holds the 32-byte seed, or the 64-byte seed-and-public-key form.
    /// `Debug` is redacted.
    #[cfg_attr(docsrs, doc(cfg(feature = "ed25519")))]
    #[derive(Clone)]
    pub struct Ed25519SigningKey(SigningKey);

    /// An Ed25519 public key for verifying `v1a` signatures, written `whpk_<base64>`.
    #[cfg_attr(docsrs, doc(cfg(feature = "ed25519")))]
    #[derive(Clone, Copy, PartialEq, Eq)]
    pub struct Ed25519VerifyingKey(VerifyingKey);

    /// Why an Ed25519 key could not be read.
    #[cfg_attr(docsrs, doc(cfg(feature = "ed25519")))]
    #[derive(Debug, Clone, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum KeyError {
        /// The `whsk_` / `whpk_` prefix is missing.
        MissingPrefix,
        /// The text is not base64, or decodes to the wrong length.
        Malformed,
        /// The seed and public halves of a 64-byte private key disagree, or the public
        /// key is not a valid curve point.
        Invalid,
        /// The operating system's random number generator failed.
        RandomUnavailable,
    }

    impl fmt::Display for KeyError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(match self {
                Self::MissingPrefix => "key lacks its whsk_ or whpk_ prefix",
                Self::Malformed => "key is not base64 of the expected length",
                Self::Invalid => "key is not a valid ed25519 key",
                Self::RandomUnavailable => "the system random number generator is unavailable",
            })
        }
    }

    impl std::error::Error for KeyError {}

    fn decode(text: &str, prefix: &str) -> Result<Vec<u8>, KeyError> {
        let body = text.strip_prefix(prefix).ok_or(KeyError::MissingPrefix)?;
        BASE64.decode(body).map_err(|_| KeyError::Malformed)
    }

    impl Ed25519SigningKey {
        /// Parses `whsk_<base64>`.
        pub fn parse(text: &str) -> Result<Self, KeyError> {
            let bytes = decode(text, SECRET_PREFIX)?;
            if let Ok(seed) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(Self(SigningKey::from_bytes(&seed)));
            }
            let pair = <[u8; 64]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Malformed)?;
            SigningKey::from_keypair_bytes(&pair)
                .map(Self)
                .map_err(|_| KeyError::Invalid)
        }

        /// A fresh key from the operating system's CSPRNG.
        pub fn generate() -> Result<Self, KeyError> {
            let mut seed = zeroize::Zeroizing::new([0u8; 32]);
            getrandom::fill(seed.as_mut()).map_err(|_| KeyError::RandomUnavailable)?;
            Ok(Self(SigningKey::from_bytes(&seed)))
        }

        /// The matching public key.
        pub fn verifying_key(&self) -> Ed25519VerifyingKey {
            Ed25519VerifyingKey(self.0.verifying_key())
        }

        /// The key as `whsk_<base64 seed>`; keep it out of logs.
        pub fn reveal(&self) -> String {
            format!("{SECRET_PREFIX}{}", BASE64.encode(self.0.to_bytes()))
        }
    }

    impl fmt::Debug for Ed25519SigningKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("Ed25519SigningKey(<redacted>)")
        }
    }

    impl Ed25519VerifyingKey {
        /// Parses `whpk_<base64>`.
        pub fn parse(text: &str) -> Result<Self, KeyError> {
            let bytes = decode(text, PUBLIC_PREFIX)?;
            let raw = <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Malformed)?;
            VerifyingKey::from_bytes(&raw)
                .map(Self)
                .map_err(|_| KeyError::Invalid)
        }
    }

    impl fmt::Display for Ed25519VerifyingKey {
        /// `whpk_<base64>`: public, safe to print.
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "{PUBLIC_PREFIX}{}", BASE64.encode(self.0.as_bytes()))
        }
    }

    impl fmt::Debug for Ed25519VerifyingKey {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "Ed25519VerifyingKey({self})")
        }
    }

    fn concat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    impl StandardWebhooks {
        /// Also accepts `v1a` signatures made by `key`'s private half.
        pub fn with_public_key(mut self, key: Ed25519VerifyingKey) -> Self {
            self.public_keys.push(key);
            self
        }

        /// Signs `message` with Ed25519, producing a `v1a,<base64>` signature header.
        ///
        /// ```
        /// use hookrelay::scheme::{Ed25519SigningKey, Message, StandardWebhooks};
        /// use hookrelay::Timestamp;
        ///
        /// let key = Ed25519SigningKey::generate()?;
        /// let message = Message::new(b"{}")
        ///     .with_id("msg_1")
        ///     .with_timestamp(Timestamp::from_unix(1_700_000_000));
        /// let headers = StandardWebhooks::new().sign_ed25519(&key, &message)?;
        /// assert!(headers.get("webhook-signature").unwrap().starts_with("v1a,"));
        /// # Ok::<(), Box<dyn std::error::Error>>(())
        /// ```
        pub fn sign_ed25519(
            &self,
            key: &Ed25519SigningKey,
            message: &Message<'_>,
        ) -> Result<SignedHeaders, SignError> {
            let id = Self::signed_id(message)?;
            let timestamp = message.require_timestamp()?.to_string();
            let signed = concat(&[
                id.as_bytes(),
                b".",
                timestamp.as_bytes(),
                b".",
                message.body,
            ]);
            let signature = key.0.sign(&signed);
            Ok(Self::headers(
                id,
                &timestamp,
                format!("v1a,{}", BASE64.encode(signature.to_bytes())),
            ))
        }

        pub(super) fn verify_ed25519<'e>(
            &self,
            entries: impl Iterator<Item = &'e [u8]>,
            signed: &[&[u8]],
        ) -> bool {
            if self.public_keys.is_empty() {
                return false;
            }
            let signatures: Vec<Signature> = entries
                .filter_map(|entry| entry.strip_prefix(b"v1a,"))
                .filter_map(|encoded| {
                    let mut raw = [0u8; 64];
                    match BASE64.decode_slice(encoded, &mut raw) {
                        Ok(64) => Some(Signature::from_bytes(&raw)),
                        _ => None,
                    }
                })
                .collect();
            if signatures.is_empty() {
                return false;
            }
            let message = concat(signed);
            self.public_keys.iter().any(|key| {
                signatures
                    .iter()
                    .any(|signature| key.0.verify_strict(&message, signature).is_ok())
            })
        }
    }
}
