//! A complete receiver for all four source systems, each on its own route, plus GitHub
//! verified with the standalone extractor.
//!
//! ```sh
//! cargo run --example receive_axum --features axum
//! # then, in another shell:
//! BODY='{"id":"evt_1","type":"task.created","timestamp":"2025-01-01T00:00:00Z","data":{"taskId":"123","title":"New Task"}}'
//! SIG=$(echo -n "$BODY" | cargo run -q --features cli -- sign --scheme x-hub --secret task-hub-secret)
//! curl -s -X POST localhost:3000/webhooks/task-hub -H "$SIG" -H 'X-Delivery-ID: dlv_1' --data "$BODY"
//! ```

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use hookrelay::Secret;
use hookrelay::Verifier;
use hookrelay::profile::Profile;
use hookrelay::receive::Receiver;
use hookrelay::receive::axum::{Delivery, Webhook, WebhookLayer};
use hookrelay::scheme::{ApiKey, XHub};
use serde_json::Value;

/// One handler for every profile: a real app would match on the typed event.
async fn log_event(delivery: Delivery<Value>) -> StatusCode {
    let inbound = &delivery.inbound;
    println!(
        "[{}] {} {} (covered: {:?})",
        inbound.profile(),
        inbound.event_type().unwrap_or("?"),
        inbound.idempotency_key(),
        inbound.coverage(),
    );
    // An empty 2xx: the layer answers with the profile's own reply body.
    StatusCode::OK
}

async fn github(webhook: Webhook<Value>) -> StatusCode {
    println!("[github] {}", webhook.event["action"]);
    StatusCode::NO_CONTENT
}

fn route(profile: Profile, secret: &str) -> Result<Router, Box<dyn std::error::Error>> {
    let secret = match profile {
        Profile::StandardWebhooks => Secret::from_base64(secret)?,
        _ => Secret::from_raw(secret)?,
    };
    let mut builder = Receiver::builder(profile).secret(secret);
    if profile == Profile::TaskOn {
        builder = builder.api_key(ApiKey::new("taskon-api-key")?);
    }
    Ok(Router::new()
        .route(&format!("/webhooks/{profile}"), post(log_event))
        .route_layer(WebhookLayer::new(builder.build()?)))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let github_verifier = Verifier::builder(XHub::github())
        .secret(Secret::from_raw("github-secret")?)
        .build()?;
    let app = Router::new()
        .route("/webhooks/github", post(github))
        .with_state(github_verifier)
        .merge(route(Profile::ProposalGenerator, "your_webhook_secret")?)
        .merge(route(Profile::TaskLink, "tasklink-secret")?)
        .merge(route(Profile::TaskOn, "your-secret-key")?)
        .merge(route(Profile::TaskHub, "task-hub-secret")?);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!(
        "receiving on http://{}/webhooks/{{proposal-generator,tasklink,taskon,task-hub,github}}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
