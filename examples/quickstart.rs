//! The whole round trip on one machine: a receiver built with hookrelay's axum layer, four
//! endpoints speaking four profiles (one deliberately flaky), events published through a
//! dispatcher, retries, and a table of what happened.
//!
//! ```sh
//! cargo run --example quickstart --features reqwest,axum
//! ```
//!
//! The receiver listens on 127.0.0.1 over plain HTTP, so the sender's SSRF guard is relaxed
//! for loopback and `http` here; by default it refuses both.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use hookrelay::event::OutgoingEvent;
use hookrelay::profile::Profile;
use hookrelay::receive::Receiver;
use hookrelay::receive::axum::{Delivery, WebhookLayer};
use hookrelay::retry::{RetryPolicy, UnixMillis};
use hookrelay::send::store::LogOrder;
use hookrelay::send::{
    AddressPolicy, DeliveryLog as _, DeliveryStatus, Endpoint, EndpointRegistry as _, LogQuery,
    MemoryStore, ReqwestTransport, Sender,
};
use serde_json::{Value, json};

const SECRET: &str = "your_webhook_secret";
const SW_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The receiving app: one route per profile, each behind hookrelay's verifying layer.
/// `/flaky` answers 503 to its first two requests.
async fn start_receiver() -> Result<String, Box<dyn std::error::Error>> {
    let flaky_hits = Arc::new(AtomicUsize::new(0));
    let mut app = Router::new();
    for (path, profile) in [
        ("/proposals", Profile::ProposalGenerator),
        ("/tasklink", Profile::TaskLink),
        ("/tasks", Profile::TaskHub),
        ("/flaky", Profile::StandardWebhooks),
    ] {
        let secret = profile.secret_from_text(secret_for(profile))?;
        let receiver = Receiver::builder(profile).secret(secret).build()?;
        let hits = Arc::clone(&flaky_hits);
        let route = post(move |delivery: Delivery<Value>| async move {
            if path == "/flaky" && hits.fetch_add(1, Ordering::SeqCst) < 2 {
                return Err(StatusCode::SERVICE_UNAVAILABLE);
            }
            let _event: Value = delivery.event; // verified, deduplicated, parsed
            Ok(StatusCode::OK)
        })
        .route_layer(WebhookLayer::new(receiver));
        app = app.route(path, route);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(base)
}

fn secret_for(profile: Profile) -> &'static str {
    if profile == Profile::StandardWebhooks {
        SW_SECRET
    } else {
        SECRET
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base = start_receiver().await?;

    // The sending app.
    let sender = Sender::new(MemoryStore::new());
    // Quick retries so the demo finishes in a second: 200 ms, then 400 ms.
    let quick = RetryPolicy::builder()
        .delays([Duration::from_millis(200), Duration::from_millis(400)])
        .max_attempts(4)
        .jitter(hookrelay::retry::Jitter::None)
        .build()?;
    let mut proposals = None;
    for (name, path, profile, subscribe) in [
        (
            "proposals",
            "/proposals",
            Profile::ProposalGenerator,
            "job.*",
        ),
        ("tasklink", "/tasklink", Profile::TaskLink, "*"),
        ("task-hub", "/tasks", Profile::TaskHub, "task.*"),
        ("flaky", "/flaky", Profile::StandardWebhooks, "*"),
    ] {
        let endpoint = Endpoint::builder(format!("{base}{path}"), profile)
            .name(name)
            .secret(profile.secret_from_text(secret_for(profile))?)
            .subscribe(subscribe)
            .retry_policy(quick.clone())
            .without_rate_limit()
            .build()?;
        let id = sender.add_endpoint(endpoint).await?;
        if profile == Profile::ProposalGenerator {
            proposals = Some(id);
        }
    }
    let transport = ReqwestTransport::builder()
        .policy(
            AddressPolicy::default()
                .allow_http()
                .allow_private_networks(),
        )
        .build()?;
    // Proposal Generator endpoints receive nothing until they echo a `webhook.verify`
    // challenge; hookrelay's receiver answers it by itself.
    if let Some(id) = &proposals {
        let verification = sender.verify_endpoint(&transport, id).await?;
        println!("proposals endpoint handshake: {verification:?}");
    }
    let dispatcher = sender.dispatcher(transport).spawn();

    let started = Instant::now();
    sender
        .publish(OutgoingEvent::new(
            "job.completed",
            json!({"job_id": "job_123", "status": "completed"}),
        ))
        .await?;
    sender
        .publish(OutgoingEvent::new(
            "task.created",
            json!({"taskId": "123", "title": "Ship it"}),
        ))
        .await?;

    // Wait (bounded) until every delivery is finished.
    let all = LogQuery {
        order: LogOrder::OldestFirst,
        ..LogQuery::default()
    };
    for _ in 0..100 {
        let deliveries = sender.store().log_all(&all, UnixMillis::now()).await?;
        if deliveries
            .iter()
            .all(|d| d.status != DeliveryStatus::Pending)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    dispatcher.shutdown(Duration::from_secs(2)).await?;

    println!(
        "{:<10} {:<19} {:<14} {:>8}  {:<10} statuses",
        "endpoint", "profile", "event", "attempts", "outcome"
    );
    for delivery in sender.store().log_all(&all, UnixMillis::now()).await? {
        let endpoint = sender
            .store()
            .endpoint(&delivery.endpoint)
            .await?
            .ok_or("unknown endpoint")?;
        let statuses: Vec<String> = sender
            .store()
            .attempts(&delivery.id)
            .await?
            .iter()
            .map(|a| a.status.map_or_else(|| "-".to_owned(), |s| s.to_string()))
            .collect();
        let outcome = match delivery.status {
            DeliveryStatus::Delivered => "delivered".to_owned(),
            DeliveryStatus::DeadLettered(reason) => format!("dead ({})", reason.as_str()),
            other => other.as_str().to_owned(),
        };
        println!(
            "{:<10} {:<19} {:<14} {:>8}  {:<10} {}",
            endpoint.name().unwrap_or("-"),
            endpoint.profile().name(),
            delivery.event_type.as_str(),
            delivery.attempts,
            outcome,
            statuses.join(" → ")
        );
    }
    println!("finished in {} ms", started.elapsed().as_millis());
    Ok(())
}
