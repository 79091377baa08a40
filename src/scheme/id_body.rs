use super::{
    Authenticated, Coverage, Message, Scheme, SignError, VerifyContext, WebhookId, is_valid_id,
};
use crate::headers::{Redact, SignedHeaders};
use crate::{Secret, VerifyError};

const PREFIX: &str = "sha256=";

/// TaskLink's scheme: `X-Webhook-ID: <id>` and
/// `X-Webhook-Signature: sha256=<hex HMAC-SHA256(secret, id ‖ body)>`.
///
/// The id and body are concatenated with no separator, as TaskLink does. Because the body
/// is JSON and starts with `{` or `[`, moving characters between id and body yields a body
/// that no longer parses; the id is still limited to visible ASCII to keep it unambiguous.
///
/// ```
/// use hookrelay::scheme::{IdBody, Message, Scheme};
/// use hookrelay::Secret;
///
/// let message = Message::new(br#"{"event":"job.created"}"#).with_id("evt_123456");
/// let headers = IdBody.sign(&Secret::from_raw("key")?, &message)?;
/// assert_eq!(headers.get("X-Webhook-ID"), Some("evt_123456"));
/// assert!(headers.get("X-Webhook-Signature").unwrap().starts_with("sha256="));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct IdBody;

impl IdBody {
    /// The id header, also signed.
    pub const ID_HEADER: &'static str = "X-Webhook-ID";
    /// The signature header.
    pub const SIGNATURE_HEADER: &'static str = "X-Webhook-Signature";
}

impl Scheme for IdBody {
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
        let id = message.require_id()?;
        let tag = secret.mac(&[id.as_bytes(), message.body]);
        let mut headers = SignedHeaders::new();
        headers.push(Self::ID_HEADER, id.to_owned(), Redact::No);
        headers.push(
            Self::SIGNATURE_HEADER,
            format!("{PREFIX}{}", tag.to_hex()),
            Redact::Yes,
        );
        Ok(headers)
    }

    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
        let id = ctx.required_header(Self::ID_HEADER)?;
        if !is_valid_id(id) {
            return Err(VerifyError::MalformedHeader(Self::ID_HEADER.into()));
        }
        let signature = ctx.hex_signature(Self::SIGNATURE_HEADER, PREFIX)?;
        ctx.match_any([signature.as_slice()], &[id.as_bytes(), ctx.body()])?;
        Ok(Authenticated {
            id: Some(WebhookId::new(id)),
            timestamp: None,
            coverage: Coverage::IdAndBody,
        })
    }
}
