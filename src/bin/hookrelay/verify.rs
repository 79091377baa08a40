//! `hookrelay verify`.

use std::time::Duration;

use hookrelay::{FixedClock, SystemClock, Timestamp, Tolerance, Verifier};

use crate::Failure;
use crate::args::VerifyArgs;

pub(crate) fn run(args: &VerifyArgs) -> Result<String, Failure> {
    let headers = parse_headers(&args.headers)?;
    let body = args.common.body()?;
    let mut builder = keys(args, Verifier::builder(args.common.scheme()?))?
        .tolerance(Tolerance::symmetric(Duration::from_secs(args.tolerance)))
        .max_body_bytes(usize::MAX);
    builder = match args.now {
        Some(now) => builder.clock(FixedClock(Timestamp::from_unix(now))),
        None => builder.clock(SystemClock),
    };
    let verifier = builder
        .build()
        .map_err(|err| Failure::Usage(crate::chain(&err)))?;
    verifier
        .verify(&headers, &body)
        .map_err(|err| Failure::Failed(format!("verification failed: {}", crate::chain(&err))))?;
    Ok("verified\n".to_owned())
}

/// Adds `--secret` values: HMAC secrets, or with feature `ed25519` also `whpk_` public keys.
fn keys(
    args: &VerifyArgs,
    mut builder: hookrelay::VerifierBuilder,
) -> Result<hookrelay::VerifierBuilder, Failure> {
    #[cfg(feature = "ed25519")]
    if args.common.scheme == crate::args::SchemeName::StandardWebhooks
        && args.secret.iter().any(|s| s.starts_with("whpk_"))
    {
        let mut scheme = hookrelay::scheme::StandardWebhooks::new();
        for text in &args.secret {
            if text.starts_with("whpk_") {
                let key = hookrelay::scheme::Ed25519VerifyingKey::parse(text)
                    .map_err(|err| Failure::Usage(format!("invalid --secret: {err}")))?;
                scheme = scheme.with_public_key(key);
            }
        }
        builder = Verifier::builder(scheme);
        for text in args.secret.iter().filter(|s| !s.starts_with("whpk_")) {
            builder = builder.secret(args.common.secret(text)?);
        }
        return Ok(builder);
    }
    for text in &args.secret {
        builder = builder.secret(args.common.secret(text)?);
    }
    Ok(builder)
}

/// `Name: value` lines, split on the first colon.
fn parse_headers(lines: &[String]) -> Result<Vec<(String, String)>, Failure> {
    lines
        .iter()
        .map(|line| {
            let (name, value) = line
                .split_once(':')
                .ok_or_else(|| Failure::Usage(format!("-H expects 'Name: value', got {line:?}")))?;
            let name = name.trim();
            if name.is_empty() {
                return Err(Failure::Usage("-H header name is empty".into()));
            }
            Ok((name.to_owned(), value.trim().to_owned()))
        })
        .collect()
}
