use super::{
    Authenticated, Coverage, Message, Scheme, SignError, VerifyContext, decode_hex32, owned_name,
};
use crate::headers::{Redact, SignedHeaders};
use crate::{Secret, VerifyError};

/// Stripe's scheme: `Stripe-Signature: t=<ts>,v1=<hex>[,v1=<hex>…]` over `{t}.{body}`.
///
/// The HMAC key is the whole secret string, `whsec_` included: build it with
/// [`Secret::from_raw`]. Several `v1` entries appear while a secret is being rolled; any one
/// matching suffices.
///
/// Header parsing policy (matching Stripe's own libraries where they are lenient, stricter
/// where leniency is dangerous):
/// - items are split on `,` and trimmed of ASCII whitespace; empty items (`,,`, a trailing
///   comma) are skipped;
/// - each item splits on its **first** `=` (`v1=abc=` has the value `abc=`);
/// - items without `=` and schemes other than `v1` (such as `v0`) are ignored;
/// - a repeated `t=` or a missing `t=` makes the header malformed;
/// - more `v1` entries than the verifier's limit is an error, answered without any HMAC work.
///
/// ```
/// use hookrelay::scheme::{Message, Scheme, Stripe};
/// use hookrelay::{Secret, Timestamp};
///
/// let secret = Secret::from_raw("whsec_test_secret")?;
/// let message = Message::new(b"{}").with_timestamp(Timestamp::from_unix(1_700_000_000));
/// let headers = Stripe.sign(&secret, &message)?;
/// assert!(headers.get("Stripe-Signature").unwrap().starts_with("t=1700000000,v1="));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Stripe;

impl Stripe {
    /// The signature header.
    pub const SIGNATURE_HEADER: &'static str = "Stripe-Signature";
}

impl Scheme for Stripe {
    fn sign(&self, secret: &Secret, message: &Message<'_>) -> Result<SignedHeaders, SignError> {
        self.sign_all(&[secret], message)
    }

    fn signs_with_every_secret(&self) -> bool {
        true
    }

    /// `t=<ts>` followed by one `v1=<hex>` per secret, as Stripe sends during a secret roll.
    fn sign_all(
        &self,
        secrets: &[&Secret],
        message: &Message<'_>,
    ) -> Result<SignedHeaders, SignError> {
        if secrets.is_empty() {
            return Err(SignError::NoSecret);
        }
        let timestamp = message.require_timestamp()?.to_string();
        let mut value = format!("t={timestamp}");
        for secret in secrets {
            let tag = secret.mac(&[timestamp.as_bytes(), b".", message.body]);
            value.push_str(",v1=");
            value.push_str(&tag.to_hex());
        }
        let mut headers = SignedHeaders::new();
        headers.push(Self::SIGNATURE_HEADER, value, Redact::Yes);
        Ok(headers)
    }

    fn verify(&self, ctx: &VerifyContext<'_>) -> Result<Authenticated, VerifyError> {
        let header = ctx.required_header_bytes(Self::SIGNATURE_HEADER)?;
        let malformed = || VerifyError::MalformedHeader(owned_name(Self::SIGNATURE_HEADER));
        let items = || header.split(|&b| b == b',').map(<[u8]>::trim_ascii);

        let mut raw_timestamp = None;
        let mut candidate_count = 0usize;
        let mut first_candidate = None;
        for item in items() {
            if let Some(value) = item.strip_prefix(b"t=") {
                if raw_timestamp.replace(value).is_some() {
                    return Err(malformed());
                }
            } else if let Some(value) = item.strip_prefix(b"v1=") {
                first_candidate.get_or_insert(value);
                candidate_count += 1;
                if candidate_count > ctx.max_signatures() {
                    return Err(VerifyError::TooManySignatures);
                }
            }
        }
        let raw_timestamp = raw_timestamp.ok_or_else(malformed)?;
        let timestamp = ctx.fresh_timestamp(Self::SIGNATURE_HEADER, raw_timestamp)?;

        let signed = [raw_timestamp, b".", ctx.body()];
        match first_candidate {
            // The usual header carries one signature: no second pass over it.
            Some(only) if candidate_count == 1 => ctx.match_any(decode_hex32(only), &signed)?,
            _ => {
                let candidates = items()
                    .filter_map(|item| item.strip_prefix(b"v1="))
                    .filter_map(decode_hex32);
                ctx.match_any(candidates, &signed)?;
            }
        }
        Ok(Authenticated {
            id: None,
            timestamp: Some(timestamp),
            coverage: Coverage::TimestampAndBody,
        })
    }
}
