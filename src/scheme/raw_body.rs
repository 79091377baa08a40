use super::{Authenticated, Coverage, Message, Scheme, SignError, VerifyContext};
use crate::headers::{Redact, SignedHeaders};
use crate::{Secret, VerifyError};

/// Proposal Generator's scheme: `X-Webhook-Signature: <lowercase hex HMAC-SHA256(secret, body)>`.
///
/// No id or timestamp is signed, so this scheme cannot detect replays by itself; pair it
/// with idempotency on the envelope `id`.
///
/// ```
/// use hookrelay::scheme::{Message, RawBody, Scheme};
/// use hookrelay::Secret;
///
/// let headers = RawBody.sign(&Secret::from_raw("key")?, &Message::new(b"{}"))?;
/// assert_eq!(headers.get("X-Webhook-Signature").map(str::len), Some(64));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBody;

impl RawBody {
    /// The signature header.
    pub const SIGNATURE_HEADER: &'static str = "X-Webhook-Signature";
}

impl Scheme for RawBody {
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
        let mut headers = SignedHeaders::new();
        headers.push(
            Self::SIGNATURE_HEADER,
            secret.mac(&[message.body]).to_hex(),
            Redact::Yes,
        );
        Ok(headers)
    }

    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
        let signature = ctx.hex_signature(Self::SIGNATURE_HEADER, "")?;
        ctx.match_any([signature.as_slice()], &[ctx.body()])?;
        Ok(Authenticated::new(Coverage::Body))
    }
}
