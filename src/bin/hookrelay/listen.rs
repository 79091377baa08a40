//! `hookrelay listen`: a verifying, de-duplicating receiver on 127.0.0.1 that prints each
//! accepted event as one JSON line on stdout, and why it refused a request on stderr.

use std::io::Write as _;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use bytes::Bytes;
use hookrelay::profile::Profile;
use hookrelay::receive::axum::{Delivery, InboxLayer, WebhookLayer};
use hookrelay::receive::inbox::{Inbox, InboxStore, InboxWorker, PostgresInbox, SqliteInbox};
use hookrelay::receive::{Inbound, Json, Receiver};
use hookrelay::scheme::{ApiKey, Tolerance};
use serde::de::IgnoredAny;

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
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|err| Failure::Failed(format!("cannot start runtime: {err}")))?;
    runtime.block_on(async move {
        let Some(database) = &args.inbox else {
            let app = Router::new()
                .route("/", post(print_event))
                .route("/{*path}", post(print_event))
                .route_layer(WebhookLayer::new(receiver));
            return serve(args.port, profile, app).await;
        };
        match crate::database::Database::parse(database, "--inbox")? {
            crate::database::Database::Sqlite(url) => {
                let store = SqliteInbox::connect(&url).await.map_err(store_failed)?;
                listen_with_inbox(args.port, receiver, Inbox::new(store)).await
            }
            crate::database::Database::Postgres(url) => {
                let store = PostgresInbox::connect(&url).await.map_err(store_failed)?;
                listen_with_inbox(args.port, receiver, Inbox::new(store)).await
            }
        }
    })?;
    Ok(String::new())
}

fn store_failed(err: hookrelay::StoreError) -> Failure {
    Failure::Failed(format!("cannot open the inbox: {}", crate::chain(&err)))
}

async fn serve(port: u16, profile: Profile, app: Router) -> Result<(), Failure> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|err| Failure::Usage(format!("cannot listen on port {port}: {err}")))?;
    if let Ok(address) = listener.local_addr() {
        eprintln!("hookrelay: listening on http://{address} ({profile})");
    }
    axum::serve(listener, app)
        .await
        .map_err(|err| Failure::Failed(format!("server stopped: {err}")))
}

/// `--inbox`: every accepted delivery is committed before the 2xx, and printed by one worker
/// (in acceptance order) afterwards; what was stored but not printed when the process
/// stopped is printed when it starts again. A body that is not JSON is a dead letter (the
/// sender got its 2xx already); a closed stdout is a failed attempt, retried.
async fn listen_with_inbox<S: InboxStore>(
    port: u16,
    receiver: Receiver,
    inbox: Inbox<S>,
) -> Result<(), Failure> {
    let profile = receiver.profile();
    let _worker = InboxWorker::builder(inbox.clone())
        .concurrency(1)
        .lease(Duration::from_secs(10))
        .handler(|delivery: Delivery<Json<IgnoredAny>>| {
            let line = event_line(&delivery.inbound);
            async move {
                let line = line.ok_or("the body is not JSON")?;
                print_line(&line).map_err(|_| "stdout is closed")
            }
        })
        .build()
        .map_err(|err| Failure::Failed(err.to_string()))?
        .spawn();
    let app = Router::new()
        .route("/", post(|| async {}))
        .route("/{*path}", post(|| async {}))
        .route_layer(InboxLayer::new(receiver, inbox));
    serve(port, profile, app).await
}

/// Prints `{"id":…,"type":…,"payload":<the body>}` and flushes. The payload is the body's
/// own text (numbers and key order exactly as sent), with insignificant whitespace removed
/// so the line stays one line. A body that is not JSON gets 422; a closed stdout fails the
/// request (500), so the sender retries rather than losing the event.
async fn print_event(delivery: Delivery<Bytes>) -> StatusCode {
    let Some(line) = event_line(&delivery.inbound) else {
        return StatusCode::UNPROCESSABLE_ENTITY;
    };
    match print_line(&line) {
        Ok(()) => StatusCode::OK,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The event's line, or `None` if its body is not JSON.
fn event_line(inbound: &Inbound) -> Option<String> {
    let body = inbound.body();
    let payload = compact_json(body)?;
    let id = inbound.delivery_id();
    Some(format!(
        r#"{{"id":{},"type":{},"payload":{payload}}}"#,
        serde_json::Value::from(id),
        serde_json::Value::from(inbound.event_type()),
    ))
}

fn print_line(line: &str) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").and_then(|()| stdout.flush())
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
