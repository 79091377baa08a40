//! The endpoint actions: `POST /webhooks/{id}/test` (a test event, waiting for its first
//! attempt), `/verify` (the `webhook.verify` handshake again) and `/recover` (failed
//! deliveries of a time window retried); and the handshake as registration and URL changes
//! run it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::body::{json_body, json_reply};
use super::problem::Problem;
use super::webhooks::{owned, view};
use super::{Api, Caller, time};
use crate::profile::Profile;
use crate::send::store::StoreError;
use crate::send::{DeliveryStore, Endpoint, EndpointId, EndpointStatus, Sender, Verification};

type Shared<S> = State<Arc<Api<S>>>;

/// Runs the verification handshake with one endpoint through the transport given to
/// [`ManagementApi::transport`](super::ManagementApi::transport).
pub(crate) type Handshake<S> = Arc<
    dyn Fn(
            Sender<S>,
            EndpointId,
        ) -> Pin<Box<dyn Future<Output = Result<Verification, StoreError>> + Send>>
        + Send
        + Sync,
>;

/// How often a test send looks for its first attempt's outcome.
const POLL: Duration = Duration::from_millis(20);

/// 503: the API was built without a transport, so it cannot run a handshake.
fn no_transport() -> Problem {
    Problem::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "this management API has no transport to run the verification handshake with \
         (ManagementApi::transport)",
    )
    .with_title("No transport is configured")
}

/// Runs the handshake with `endpoint` when it waits for one (a Proposal Generator endpoint
/// pending verification) and the API has a transport; returns the endpoint as it is then.
pub(crate) async fn handshake_if_pending<S: DeliveryStore>(
    api: &Api<S>,
    endpoint: Arc<Endpoint>,
) -> Result<Arc<Endpoint>, Problem> {
    let waits = endpoint.profile() == Profile::ProposalGenerator
        && endpoint.status() == EndpointStatus::PendingVerification;
    match &api.handshake {
        Some(handshake) if waits => {
            handshake(api.sender.clone(), endpoint.id().clone()).await?;
            api.sender
                .endpoint(endpoint.id())
                .await?
                .ok_or_else(|| Problem::not_found("webhook"))
        }
        _ => Ok(endpoint),
    }
}

#[utoipa::path(post, path = "/webhooks/{id}/verify", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    responses(
        (status = 200, description = "the handshake ran: the endpoint as it is now (`active` when it \
            passed, else `pending_verification` with a `status_note` saying why)", body = super::webhooks::WebhookView<'_>),
        (status = 404, description = "no such webhook, or another customer's"),
        (status = 503, description = "the server has no transport to run the handshake with"),
    )
)]
pub(crate) async fn verify<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    let handshake = api.handshake.as_ref().ok_or_else(no_transport)?;
    handshake(api.sender.clone(), endpoint.id().clone()).await?;
    let endpoint = owned(&api, &caller, &id).await?;
    Ok(json_reply(StatusCode::OK, &view(&endpoint)))
}

/// What `POST /webhooks/{id}/test` answers once the first attempt has an outcome.
#[derive(Serialize, utoipa::ToSchema)]
pub(crate) struct TestOutcome<'a> {
    delivery_id: &'a str,
    /// The delivery's status after that attempt, as the delivery log shows it.
    #[schema(value_type = super::schemas::DeliveryStatusName)]
    status: &'static str,
    /// The receiver's HTTP status, or null when there was no response.
    response_status: Option<u16>,
    latency_ms: u64,
    /// Why there was no response (`timeout`, `connection`, …), when there was none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    error: Option<&'static str>,
}

#[utoipa::path(post, path = "/webhooks/{id}/test", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    request_body(content = Option<Object>, description = "optional: the data of the `webhook.test` event (a JSON \
        object); without a body it is `{\"test\": true}`"),
    responses(
        (status = 200, description = "the first attempt has an outcome", body = TestOutcome<'_>),
        (status = 202, description = "sent, but the first attempt had no outcome within the \
            endpoint's request timeout (or the server's shorter wait)", body = super::schemas::TestPending),
        (status = 400, description = "the body is not JSON"),
        (status = 404, description = "no such webhook, or another customer's"),
        (status = 422, description = "the body is not a JSON object"),
    )
)]

pub(crate) async fn test<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    // No body, or `null`: the default test data.
    let empty = body
        .as_ref()
        .is_ok_and(|b| b.iter().all(u8::is_ascii_whitespace) || b.trim_ascii() == b"null");
    let payload = if empty {
        None
    } else {
        match json_body::<serde_json::Value>(body, false)? {
            serde_json::Value::Null => None,
            data => Some(data),
        }
    };
    let receipt = api
        .sender
        .send_test_with_receipt(endpoint.id(), payload)
        .await?;
    let delivery = receipt.deliveries.first().ok_or_else(|| {
        Problem::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the test send created no delivery",
        )
    })?;
    let timeout = endpoint.retry_policy().timeout();
    let wait = api.test_wait.map_or(timeout, |cap| cap.min(timeout));
    let deadline = tokio::time::Instant::now() + wait;
    // Bounded: every round sleeps until the next poll or the deadline, then stops there.
    loop {
        if let Some(detail) = api.sender.delivery_detail(delivery, None).await?
            && let Some(first) = detail.attempts.first()
        {
            let outcome = TestOutcome {
                delivery_id: delivery.as_str(),
                status: detail.delivery.status.as_str(),
                response_status: first.status,
                latency_ms: first.latency_ms,
                error: first.error.map(|e| e.as_str()),
            };
            return Ok(json_reply(StatusCode::OK, &outcome));
        }
        let now = tokio::time::Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep(POLL.min(deadline - now)).await;
    }
    let pending = serde_json::json!({ "delivery_id": delivery.as_str() });
    Ok(json_reply(StatusCode::ACCEPTED, &pending))
}

/// `POST /webhooks/{id}/recover`'s body: the window whose failed deliveries are retried.
#[derive(Deserialize, utoipa::ToSchema)]
struct Recovery {
    /// Deliveries created at or after this time.
    #[schema(value_type = super::schemas::TimeParam)]
    since: String,
    /// Deliveries created before this time (default: now); after `since`.
    #[schema(value_type = Option<super::schemas::TimeParam>)]
    until: Option<String>,
}

#[utoipa::path(post, path = "/webhooks/{id}/recover", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    request_body = Recovery,
    responses(
        (status = 202, description = "the window's failed deliveries are queued for an attempt now", body = super::schemas::Recovered),
        (status = 400, description = "the body is not JSON"),
        (status = 404, description = "no such webhook, or another customer's"),
        (status = 422, description = "`since` or `until` is missing or wrong (`errors` names it)"),
    )
)]

pub(crate) async fn recover<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let recovery: Recovery = json_body(body, false)?;
    let endpoint = owned(&api, &caller, &id).await?;
    let parse = |field: &str, text: &str| {
        time::parse(text)
            .ok_or_else(|| Problem::invalid(field, "an RFC 3339 UTC time (2024-01-15T10:30:00Z)"))
    };
    let since = parse("since", &recovery.since)?;
    let until = recovery
        .until
        .as_deref()
        .map(|text| parse("until", text))
        .transpose()?;
    if until.is_some_and(|until| until <= since) {
        return Err(Problem::invalid("until", "until is after since"));
    }
    let queued = api
        .sender
        .recover(
            endpoint.id(),
            since.to_system_time(),
            until.map(|t| t.to_system_time()),
        )
        .await?;
    let reply = serde_json::json!({ "queued": queued });
    Ok(json_reply(StatusCode::ACCEPTED, &reply))
}
