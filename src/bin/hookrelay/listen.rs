//! `hookrelay listen`: a verifying, de-duplicating receiver on 127.0.0.1 that prints each
//! accepted event as one JSON line on stdout, and why it refused a request on stderr.

use std::io::Write as _;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use hookrelay::profile::Profile;
use hookrelay::receive::Receiver;
use hookrelay::receive::axum::{Delivery, WebhookLayer};
use hookrelay::scheme::{ApiKey, Tolerance};

use crate::Failure;
use crate::args::ListenArgs;

pub(crate) fn run(args: &ListenArgs) -> Result<String, Failure> {
    let profile: Profile = args
        .profile
        .parse()
        .map_err(|err: hookrelay::profile::UnknownProfile| Failure::Usage(err.to_string()))?;
    let mut builder = Receiver::builder(profile)
        .tolerance(Tolerance::symmetric(Duration::from_secs(args.tolerance)));
    for text in &args.secret {
        let secret = profile
            .secret_from_text(text)
            .map_err(|err| Failure::Usage(format!("invalid --secret: {err}")))?;
        builder = builder.secret(secret);
    }
    if let Some(key) = &args.api_key {
        let key = ApiKey::new(key.clone()).map_err(|err| Failure::Usage(err.to_string()))?;
        builder = builder.api_key(key);
    }
    let receiver = builder
        .build()
        .map_err(|err| Failure::Usage(crate::chain(&err)))?;

    crate::log::install();
    let app = Router::new()
        .route("/", post(print_event))
        .route("/{*path}", post(print_event))
        .route_layer(WebhookLayer::new(receiver));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| Failure::Failed(format!("cannot start runtime: {err}")))?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|err| Failure::Usage(format!("cannot listen on port {}: {err}", args.port)))?;
        if let Ok(address) = listener.local_addr() {
            eprintln!("hookrelay: listening on http://{address} ({profile})");
        }
        axum::serve(listener, app)
            .await
            .map_err(|err| Failure::Failed(format!("server stopped: {err}")))
    })?;
    Ok(String::new())
}

/// Prints `{"id":…,"type":…,"payload":<the body>}` and flushes. The payload is the body's
/// own text (numbers and key order exactly as sent), with insignificant whitespace removed
/// so the line stays one line. A body that is not JSON gets 422; a closed stdout fails the
/// request (500), so the sender retries rather than losing the event.
async fn print_event(delivery: Delivery<Bytes>) -> StatusCode {
    let inbound = &delivery.inbound;
    let Some(payload) = compact_json(&delivery.event) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    let envelope_id = serde_json::from_slice::<IdOnly>(&delivery.event)
        .ok()
        .and_then(|fields| fields.id);
    let id = inbound.id().map(str::to_owned).or(envelope_id).or_else(|| {
        let key = inbound.idempotency_key().as_str();
        let natural = key.split_once(':').map_or(key, |(_, rest)| rest);
        (!natural.starts_with("body:")).then(|| natural.to_owned())
    });
    let line = format!(
        r#"{{"id":{},"type":{},"payload":{payload}}}"#,
        serde_json::Value::from(id),
        serde_json::Value::from(inbound.event_type()),
    );
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{line}").and_then(|()| stdout.flush()) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

#[derive(serde::Deserialize)]
struct IdOnly {
    id: Option<String>,
}

/// The JSON text with whitespace outside strings removed, or `None` if it is not JSON.
///
/// Inside strings JSON forbids raw control characters, so every newline in valid JSON is
/// insignificant whitespace.
fn compact_json(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
    let text = std::str::from_utf8(body).ok()?;
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn compacts_only_outside_strings() {
        let body = b"{\n  \"a\": \"x y\\\" z\",\n  \"n\": 500.00 }";
        assert_eq!(compact_json(body).unwrap(), r#"{"a":"x y\" z","n":500.00}"#);
        assert!(compact_json(b"{nope").is_none());
    }
}
