use std::borrow::Cow;

use super::{Authenticated, Coverage, Message, Scheme, SignError, VerifyContext};
use crate::headers::{Redact, SignedHeaders};
use crate::{Secret, VerifyError};

const PREFIX: &str = "sha256=";

/// The X-Hub scheme: `<header>: sha256=<hex HMAC-SHA256(secret, body)>`.
///
/// [`XHub::new`] uses `X-Hub-Signature` as the task-hub service does; [`XHub::github`] uses
/// `X-Hub-Signature-256` as GitHub does. The `sha256=` prefix is required when verifying.
///
/// ```
/// use hookrelay::scheme::{Message, Scheme, XHub};
/// use hookrelay::Secret;
///
/// // GitHub's documented example.
/// let secret = Secret::from_raw("It's a Secret to Everybody")?;
/// let headers = XHub::github().sign(&secret, &Message::new(b"Hello, World!"))?;
/// assert_eq!(
///     headers.get("X-Hub-Signature-256"),
///     Some("sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17")
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct XHub {
    header: Cow<'static, str>,
}

impl XHub {
    /// `X-Hub-Signature`, as the task-hub service (004) sends it.
    pub fn new() -> Self {
        Self {
            header: Cow::Borrowed("X-Hub-Signature"),
        }
    }

    /// `X-Hub-Signature-256`, as GitHub sends it.
    pub fn github() -> Self {
        Self {
            header: Cow::Borrowed("X-Hub-Signature-256"),
        }
    }

    /// The same mechanism under another header name.
    pub fn with_header_name(name: impl Into<Cow<'static, str>>) -> Self {
        Self {
            header: name.into(),
        }
    }

    /// The signature header this instance reads and writes.
    pub fn header_name(&self) -> &str {
        &self.header
    }
}

impl Default for XHub {
    fn default() -> Self {
        Self::new()
    }
}

impl Scheme for XHub {
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
        let mut headers = SignedHeaders::new();
        let value = format!("{PREFIX}{}", secret.mac(&[message.body]).to_hex());
        headers.push(self.header.clone(), value, Redact::Yes);
        Ok(headers)
    }

    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
        let signature = ctx.hex_signature(&self.header, PREFIX)?;
        ctx.match_any([signature.as_slice()], &[ctx.body()])?;
        Ok(Authenticated::new(Coverage::Body))
    }
}
