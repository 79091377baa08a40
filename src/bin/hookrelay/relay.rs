//! `hookrelay relay`: receive from a provider under one profile, verify at the edge, store
//! in an inbox, and re-publish through the sender to an internal endpoint under another
//! profile and secret.
//!
//! Nothing is answered 2xx before it is stored (the inbox), and nothing stored is lost: the
//! worker publishes each entry with its idempotency key as the publication key, so an entry
//! handled twice after a crash is still published once, and the sender's store (the same
//! database) keeps it until the inside endpoint has it.

use std::time::Duration;

use axum::Router;
use axum::routing::post;
use hookrelay::StoreError;
use hookrelay::event::{EventId, OutgoingEvent};
use hookrelay::profile::{EnvelopeShape, Profile};
use hookrelay::receive::axum::InboxLayer;
use hookrelay::receive::inbox::{Inbox, InboxStore, InboxWorker, PostgresInbox, SqliteInbox};
use hookrelay::receive::{Delivery, Inbound, Receiver};
use hookrelay::scheme::{ApiKey, Tolerance};
use hookrelay::send::store::TypePattern;
use hookrelay::send::{
    AddressPolicy, DeliveryStore, Endpoint, EndpointId, PostgresStore, ReqwestTransport, Sender,
    SqliteStore,
};
use serde_json::Value;

use crate::Failure;
use crate::args::RelayArgs;
use crate::database::Database;

/// The inside endpoint's id in the relay's store.
const ENDPOINT_ID: &str = "ep_relay";

/// The header naming the outside profile on every inside request.
pub(crate) const SOURCE_PROFILE_HEADER: &str = "X-Hookrelay-Source-Profile";

struct Relay {
    receiver: Receiver,
    endpoint: Endpoint,
    events: Vec<TypePattern>,
    bind: std::net::SocketAddr,
}

pub(crate) fn run(args: &RelayArgs) -> Result<String, Failure> {
    let relay = settings(args)?;
    crate::log::install();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|err| Failure::Failed(format!("cannot start runtime: {err}")))?;
    let opened = |err: StoreError| {
        Failure::Failed(format!("cannot open the database: {}", crate::chain(&err)))
    };
    runtime.block_on(async move {
        match Database::parse(&args.database, "--database")? {
            Database::Sqlite(url) => {
                let store = SqliteStore::connect(&url).await.map_err(opened)?;
                let inbox = SqliteInbox::connect(&url).await.map_err(opened)?;
                serve(relay, store, Inbox::new(inbox)).await
            }
            Database::Postgres(url) => {
                let store = PostgresStore::builder()
                    .connect(&url)
                    .await
                    .map_err(opened)?;
                let inbox = PostgresInbox::from_pool(store.pool().clone())
                    .await
                    .map_err(opened)?;
                serve(relay, store, Inbox::new(inbox)).await
            }
        }
    })?;
    Ok(String::new())
}

/// Checks every argument before anything starts.
fn settings(args: &RelayArgs) -> Result<Relay, Failure> {
    let usage = Failure::Usage;
    let profile = |text: &str, flag: &str| -> Result<Profile, Failure> {
        text.parse()
            .map_err(|err: hookrelay::profile::UnknownProfile| usage(format!("{flag}: {err}")))
    };
    let from = profile(&args.from_profile, "--from-profile")?;
    let to = profile(&args.to_profile, "--to-profile")?;
    let mut receiver = Receiver::builder(from)
        .tolerance(Tolerance::symmetric(Duration::from_secs(args.tolerance)));
    for text in &args.from_secret {
        let secret = from
            .secret_from_text(text)
            .map_err(|err| usage(format!("invalid --from-secret: {err}")))?;
        receiver = receiver.secret(secret);
    }
    if let Some(key) = &args.api_key {
        let key = ApiKey::new(key.clone()).map_err(|err| usage(err.to_string()))?;
        receiver = receiver.api_key(key);
    }
    let receiver = receiver.build().map_err(|err| usage(crate::chain(&err)))?;
    let to_secret = to
        .secret_from_text(&args.to_secret)
        .map_err(|err| usage(format!("invalid --to-secret: {err}")))?;
    let endpoint = Endpoint::builder(args.to.clone(), to)
        .id(EndpointId::new(ENDPOINT_ID).map_err(|err| usage(err.to_string()))?)
        .secret(to_secret)
        .header(SOURCE_PROFILE_HEADER, from.name())
        .event_headers(true)
        .build()
        .map_err(|err| usage(format!("invalid --to: {}", crate::chain(&err))))?;
    Ok(Relay {
        receiver,
        endpoint,
        events: args.events.iter().map(|p| TypePattern::parse(p)).collect(),
        bind: args.bind,
    })
}

async fn serve<S: DeliveryStore, I: InboxStore>(
    relay: Relay,
    store: S,
    inbox: Inbox<I>,
) -> Result<(), Failure> {
    let failed = |what: &str, err: &dyn std::error::Error| {
        Failure::Failed(format!("{what}: {}", crate::chain(err)))
    };
    // The inside URL is the operator's own (often private, often plain http): no SSRF guard
    // against it, unlike the URLs customers register with `serve`.
    let policy = AddressPolicy::default()
        .allow_http()
        .allow_private_networks();
    let sender = Sender::new(store);
    sender
        .add_endpoint(relay.endpoint)
        .await
        .map_err(|err| failed("cannot store the inside endpoint", &err))?;
    let transport = ReqwestTransport::builder()
        .policy(policy)
        .build()
        .map_err(|err| failed("cannot build the http client", &err))?;
    let dispatcher = sender.dispatcher(transport).spawn();

    let publisher = sender.clone();
    let events = relay.events;
    let worker = InboxWorker::builder(inbox.clone())
        .handler(move |delivery: Delivery<Value>| {
            let sender = publisher.clone();
            let forward = forwarded(&delivery, &events);
            async move {
                let Some((event, key)) = forward else {
                    return Ok(()); // filtered out: acknowledged, not forwarded
                };
                sender.publish_with_key(event, key).await.map(drop)
            }
        })
        .build()
        .map_err(|err| failed("cannot start the worker", &err))?
        .spawn();

    let profile = relay.receiver.profile();
    let app = Router::new()
        .route("/", post(|| async {}))
        .route("/{*path}", post(|| async {}))
        .route_layer(InboxLayer::new(relay.receiver, inbox));
    let listener = tokio::net::TcpListener::bind(relay.bind)
        .await
        .map_err(|err| Failure::Usage(format!("cannot listen on {}: {err}", relay.bind)))?;
    let address = listener
        .local_addr()
        .map_err(|err| failed("cannot read the bound address", &err))?;
    let stop = crate::serve::stop_signal().map_err(|err| failed("cannot catch signals", &err))?;
    eprintln!("hookrelay: relaying {profile} on http://{address}");
    axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
        .map_err(|err| failed("server stopped", &err))?;
    worker.shutdown().await;
    dispatcher
        .shutdown(Duration::from_secs(10))
        .await
        .map_err(|err| failed("the dispatcher failed", &err))?;
    Ok(())
}

/// The inside event for a verified delivery, and its publication key; `None` when its type
/// is filtered out.
///
/// The inside event's type is the outside one's (`unknown` if it had none), its id the
/// outside delivery's id when that is a plain token (so Standard Webhooks' `webhook-id`,
/// TaskLink's `X-Webhook-ID` and every envelope's `id` carry it inside), and its data the
/// outside event's data: the envelope's `data` (Stripe's `data.object`), or the whole body
/// for flat profiles (GitHub, TaskOn).
fn forwarded(
    delivery: &Delivery<Value>,
    events: &[TypePattern],
) -> Option<(OutgoingEvent, String)> {
    let inbound = &delivery.inbound;
    let event_type = inbound.event_type().unwrap_or("unknown");
    if !events.is_empty() && !events.iter().any(|p| p.matches(event_type)) {
        return None;
    }
    let body = &delivery.event;
    let data = match inbound.profile().envelope_shape() {
        EnvelopeShape::Flat => body.clone(),
        EnvelopeShape::Stripe => body["data"]["object"].clone(),
        _ => body.get("data").cloned().unwrap_or_else(|| body.clone()),
    };
    let mut event = OutgoingEvent::new(event_type, data);
    if let Some(id) = original_id(inbound) {
        event = event.with_id(EventId::from(id));
    }
    Some((event, inbound.idempotency_key().to_string()))
}

/// The outside delivery's id ([`Inbound::delivery_id`]) if it is a plain token (letters,
/// digits, `_-.:`, at most 128 bytes).
fn original_id(inbound: &Inbound) -> Option<String> {
    let id = inbound.delivery_id()?;
    let plain = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':'));
    plain.then_some(id)
}
