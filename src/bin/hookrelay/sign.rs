//! `hookrelay sign`.

use std::fmt::Write as _;

use hookrelay::Timestamp;
use hookrelay::scheme::Message;

use crate::Failure;
use crate::args::{SchemeName, SignArgs};

pub(crate) fn run(args: &SignArgs) -> Result<String, Failure> {
    let scheme = args.common.scheme()?;
    let body = args.common.body()?;
    let timestamp = args
        .timestamp
        .map_or_else(Timestamp::now, Timestamp::from_unix);
    let id = match &args.id {
        Some(id) => id.clone(),
        None => generated_id(args.common.scheme)?,
    };
    let message = Message::new(&body).with_id(&id).with_timestamp(timestamp);

    #[cfg(feature = "ed25519")]
    if args.common.scheme == SchemeName::StandardWebhooks && args.secret.starts_with("whsk_") {
        let key = hookrelay::scheme::Ed25519SigningKey::parse(&args.secret)
            .map_err(|err| Failure::Usage(format!("invalid --secret: {err}")))?;
        let headers = hookrelay::scheme::StandardWebhooks::new()
            .sign_ed25519(&key, &message)
            .map_err(|err| Failure::Usage(err.to_string()))?;
        return Ok(render(&headers));
    }

    let secret = args.common.secret(&args.secret)?;
    let headers = scheme.sign(&secret, &message).map_err(|err| match err {
        hookrelay::scheme::SignError::UnsignableBody(_) => Failure::Failed(crate::chain(&err)),
        _ => Failure::Usage(crate::chain(&err)),
    })?;
    Ok(render(&headers))
}

fn render(headers: &hookrelay::SignedHeaders) -> String {
    let mut out = String::new();
    for (name, value) in headers.iter() {
        let _ = writeln!(out, "{name}: {value}");
    }
    out
}

/// `msg_…` for Standard Webhooks, `evt_…` (TaskLink's form) otherwise.
fn generated_id(scheme: SchemeName) -> Result<String, Failure> {
    let mut random = [0u8; 12];
    getrandom::fill(&mut random)
        .map_err(|_| Failure::Failed("the system random number generator is unavailable".into()))?;
    let prefix = match scheme {
        SchemeName::StandardWebhooks => "msg_",
        _ => "evt_",
    };
    Ok(format!("{prefix}{}", hex::encode(random)))
}
