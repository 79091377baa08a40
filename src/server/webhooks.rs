//! The `/webhooks` routes: register, list, read, change, pause, resume, delete an endpoint
//! and rotate its secret; and `/health`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::actions::handshake_if_pending;
use super::body::{cursor, json_body, json_reply, limit, query_pairs};
use super::problem::{Problem, endpoint_invalid};
use super::{Api, Caller, Principal, time};
use crate::Secret;
use crate::event::EventMode;
use crate::profile::Profile;
use crate::send::{
    Cursor, DeliveryStore, Endpoint, EndpointBuilder, EndpointId, EndpointQuery, EndpointStatus,
    EventFilter, PageLimit,
};

type Shared<S> = State<Arc<Api<S>>>;

/// An endpoint as the API shows it (never its secrets).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub(crate) struct WebhookView<'a> {
    id: &'a str,
    url: &'a str,
    events: Vec<String>,
    /// `active`, `paused`, `disabled` or `pending_verification`.
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    status_note: Option<&'a str>,
    name: Option<&'a str>,
    description: Option<&'a str>,
    profile: &'static str,
    /// When it was registered (RFC 3339 UTC); null only for an endpoint an app's own store
    /// kept from before hookrelay recorded it.
    created_at: Option<String>,
    /// Whether it receives test events instead of live ones (004's `testMode`).
    #[serde(rename = "testMode")]
    test_mode: bool,
    /// The secret, only in the reply that generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

pub(crate) fn view(endpoint: &Endpoint) -> WebhookView<'_> {
    WebhookView {
        id: endpoint.id().as_str(),
        url: endpoint.url().as_str(),
        events: endpoint.filter().patterns(),
        status: endpoint.status().as_str(),
        status_note: endpoint.status_note(),
        name: endpoint.name(),
        description: endpoint.description(),
        profile: endpoint.profile().name(),
        created_at: endpoint.created_at().map(time::rfc3339),
        test_mode: endpoint.mode().is_test(),
        secret: None,
    }
}

/// `POST /webhooks`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewWebhook {
    /// The receiver's URL: `https` (plain `http` only when the server allows it), not an
    /// address the SSRF policy refuses.
    #[schema(min_length = 1, format = "uri")]
    url: String,
    /// Exact event types, wildcards (`task.*`) or `*`.
    #[schema(value_type = Vec<super::schemas::EventPattern>, min_items = 1)]
    events: Vec<String>,
    /// The signing secret (generated when absent): `whsec_<base64>` for
    /// `standard-webhooks`, any text for the other profiles.
    #[schema(write_only, min_length = 1)]
    secret: Option<String>,
    #[schema(max_length = 1000)]
    name: Option<String>,
    #[schema(max_length = 1000)]
    description: Option<String>,
    /// The profile (default: the server's).
    #[schema(
        pattern = "^(proposal-generator|tasklink|taskon|task-hub|standard-webhooks|github|stripe)$"
    )]
    profile: Option<String>,
    /// Extra headers sent with every delivery.
    headers: Option<BTreeMap<String, String>>,
    /// A test-mode endpoint (004) receives test sends and events published with
    /// `test: true`, never live ones (default false).
    #[serde(rename = "testMode")]
    test_mode: Option<bool>,
}

/// `PUT /webhooks/{id}`'s body: the fields given replace those stored.
#[derive(Deserialize, utoipa::ToSchema)]
struct WebhookChange {
    #[schema(min_length = 1, format = "uri")]
    url: Option<String>,
    #[schema(value_type = Option<Vec<super::schemas::EventPattern>>, min_items = 1)]
    events: Option<Vec<String>>,
    #[schema(max_length = 1000)]
    name: Option<String>,
    #[schema(max_length = 1000)]
    description: Option<String>,
    headers: Option<BTreeMap<String, String>>,
    /// Refused (422): a secret changes through `rotate-secret`.
    #[schema(ignore)]
    secret: Option<serde_json::Value>,
    /// Refused (422): an endpoint's profile cannot change.
    #[schema(ignore)]
    profile: Option<serde_json::Value>,
    /// Switches test mode: test sends and events published with `test: true` only.
    #[serde(rename = "testMode")]
    test_mode: Option<bool>,
}

/// `POST /webhooks/{id}/rotate-secret`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
struct Rotation {
    /// The new secret (generated when absent).
    #[schema(write_only, min_length = 1)]
    secret: Option<String>,
    /// How long the old secret keeps signing too (at most 7 days).
    #[schema(maximum = 604800)]
    #[serde(default, deserialize_with = "super::body::whole_number")]
    grace_period_seconds: Option<u64>,
}

/// The longest name or description kept.
const MAX_TEXT: usize = 1000;

fn filter(events: &[String]) -> Result<EventFilter, Problem> {
    if events.is_empty() {
        return Err(Problem::invalid(
            "events",
            "at least one event type, or \"*\"",
        ));
    }
    let mut filter = EventFilter::default();
    for (i, pattern) in events.iter().enumerate() {
        let fits = !pattern.is_empty()
            && pattern.len() <= 200
            && !pattern.chars().any(|c| c.is_control() || c.is_whitespace());
        if !fits {
            return Err(Problem::invalid(
                format!("events[{i}]"),
                "an event type is 1 to 200 characters without spaces or control characters",
            ));
        }
        filter = filter.or(pattern);
    }
    Ok(filter)
}

fn text(field: &str, value: &str) -> Result<(), Problem> {
    if value.len() > MAX_TEXT {
        return Err(Problem::invalid(field, format!("at most {MAX_TEXT} bytes")));
    }
    Ok(())
}

fn with_headers(
    mut builder: EndpointBuilder,
    headers: &BTreeMap<String, String>,
) -> EndpointBuilder {
    builder = builder.without_headers();
    for (name, value) in headers {
        builder = builder.header(name, value);
    }
    builder
}

/// A secret read as `profile` reads it, or a fresh one with the text to hand over.
fn secret_for(profile: Profile, given: Option<&str>) -> Result<(Secret, Option<String>), Problem> {
    match given {
        Some(text) => profile
            .secret_from_text(text)
            .map(|secret| (secret, None))
            .map_err(|e| Problem::invalid("secret", e.to_string())),
        None => {
            let no_randomness = |_| {
                Problem::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no randomness for a secret",
                )
            };
            // Standard Webhooks reads `whsec_<base64>`; the other profiles use the text's
            // bytes as the key, so they get 64 hex digits.
            let text = match profile {
                Profile::StandardWebhooks => Secret::generate()
                    .map_err(|_| no_randomness(()))?
                    .reveal_whsec(),
                _ => {
                    let mut key = zeroize::Zeroizing::new([0u8; 32]);
                    getrandom::fill(key.as_mut()).map_err(|_| no_randomness(()))?;
                    hex::encode(key.as_ref())
                }
            };
            let secret = profile
                .secret_from_text(&text)
                .map_err(|e| Problem::invalid("secret", e.to_string()))?;
            Ok((secret, Some(text)))
        }
    }
}

/// The caller's endpoint with this id; another owner's answers 404 as a missing one does.
pub(crate) async fn owned<S: DeliveryStore>(
    api: &Api<S>,
    caller: &Principal,
    id: &str,
) -> Result<Arc<Endpoint>, Problem> {
    let id = EndpointId::new(id).map_err(|_| Problem::not_found("webhook"))?;
    let endpoint = api
        .sender
        .endpoint(&id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook"))?;
    match caller.owner() {
        Some(owner) if endpoint.owner() != Some(owner) => Err(Problem::not_found("webhook")),
        _ => Ok(endpoint),
    }
}

#[utoipa::path(post, path = "/webhooks", tag = "webhooks",
    request_body = NewWebhook,
    responses(
        (status = 201, description = "registered; `secret` only when hookrelay generated it", body = WebhookView<'_>),
        (status = 400, description = "the body is not JSON"),
        (status = 422, description = "a field is missing or wrong (`errors` names it)"),
    )
)]
pub(crate) async fn create<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let new: NewWebhook = json_body(body, false)?;
    let profile = match &new.profile {
        None => api.default_profile,
        Some(name) => name.parse().map_err(|_| {
            let names: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
            Problem::invalid("profile", format!("one of {}", names.join(", ")))
        })?,
    };
    let (secret, generated) = secret_for(profile, new.secret.as_deref())?;
    let mut builder = Endpoint::builder(new.url, profile)
        .secret(secret)
        .filter(filter(&new.events)?);
    if let Some(name) = &new.name {
        text("name", name)?;
        builder = builder.name(name);
    }
    if let Some(description) = &new.description {
        text("description", description)?;
        builder = builder.description(description);
    }
    if let Some(headers) = &new.headers {
        builder = with_headers(builder, headers);
    }
    if let Some(policy) = &api.default_retry_policy {
        builder = builder.retry_policy(policy.clone());
    }
    if let Some(owner) = caller.owner() {
        builder = builder.owner(owner.clone());
    }
    if let Some(test) = new.test_mode {
        builder = builder.mode(EventMode::from_test_flag(test));
    }
    let endpoint = builder.build().map_err(|e| endpoint_invalid(&e))?;
    let id = api.sender.add_endpoint(endpoint).await?;
    // Read back: the sender set its registration time.
    let endpoint = api
        .sender
        .endpoint(&id)
        .await?
        .ok_or_else(|| Problem::not_found("webhook"))?;
    let endpoint = handshake_if_pending(&api, endpoint).await?;
    let mut reply = view(&endpoint);
    reply.secret = generated;
    Ok(json_reply(StatusCode::CREATED, &reply))
}

#[utoipa::path(get, path = "/webhooks", tag = "webhooks",
    params(
        ("limit" = Option<u16>, Query, minimum = 1, maximum = 250, description = "page size (default 50)"),
        ("cursor" = Option<String>, Query, pattern = "^e[!-~]{1,64}$", description = "`next_cursor` of the previous page"),
        ("status" = Option<String>, Query, pattern = "^(active|paused|disabled|pending_verification)(,(active|paused|disabled|pending_verification))*$", description = "comma-separated statuses to list"),
    ),
    responses(
        (status = 200, description = "a page of the caller's endpoints, newest first", body = super::schemas::WebhookList),
        (status = 400, description = "a query parameter does not parse"),
    )
)]
pub(crate) async fn list<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let mut query = EndpointQuery {
        owner: caller.owner().cloned(),
        ..EndpointQuery::default()
    };
    for (name, value) in query_pairs(raw.as_deref()) {
        match name.as_str() {
            "limit" => query.limit = limit(&value)?,
            "cursor" => query.after = Some(cursor(&value)?),
            "status" => {
                for status in value.split(',') {
                    let status = EndpointStatus::parse(status).ok_or_else(|| {
                        Problem::bad_request(
                            "status",
                            "active, paused, disabled or pending_verification",
                        )
                    })?;
                    query.statuses.push(status);
                }
            }
            _ => {}
        }
    }
    let page = api.sender.list_endpoints(&query).await?;
    #[derive(Serialize)]
    struct Listing<'a> {
        webhooks: Vec<WebhookView<'a>>,
        next_cursor: Option<&'a str>,
    }
    let listing = Listing {
        webhooks: page.items.iter().map(|e| view(e)).collect(),
        next_cursor: page.next.as_ref().map(Cursor::as_str),
    };
    Ok(json_reply(StatusCode::OK, &listing))
}

#[utoipa::path(get, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    responses(
        (status = 200, description = "the endpoint", body = WebhookView<'_>),
        (status = 404, description = "no such webhook, or another customer's"),
    )
)]
pub(crate) async fn show<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    Ok(json_reply(StatusCode::OK, &view(&endpoint)))
}

#[utoipa::path(put, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    request_body = WebhookChange,
    responses(
        (status = 200, description = "the changed endpoint", body = WebhookView<'_>),
        (status = 400, description = "the body is not JSON"),
        (status = 404, description = "no such webhook, or another customer's"),
        (status = 422, description = "a field is wrong (`errors` names it)"),
    )
)]
pub(crate) async fn update<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let change: WebhookChange = json_body(body, false)?;
    if change.secret.is_some() {
        return Err(Problem::invalid(
            "secret",
            "a secret changes through POST /webhooks/{id}/rotate-secret",
        ));
    }
    if change.profile.is_some() {
        return Err(Problem::invalid(
            "profile",
            "an endpoint's profile cannot change",
        ));
    }
    let filter = change.events.as_deref().map(filter).transpose()?;
    for (field, value) in [("name", &change.name), ("description", &change.description)] {
        if let Some(value) = value {
            text(field, value)?;
        }
    }
    let endpoint = owned(&api, &caller, &id).await?;
    let updated = api
        .sender
        .update_endpoint(endpoint.id(), |mut builder| {
            if let Some(url) = change.url {
                builder = builder.url(url);
            }
            if let Some(filter) = filter {
                builder = builder.filter(filter);
            }
            if let Some(name) = change.name {
                builder = builder.name(name);
            }
            if let Some(description) = change.description {
                builder = builder.description(description);
            }
            if let Some(headers) = &change.headers {
                builder = with_headers(builder, headers);
            }
            if let Some(test) = change.test_mode {
                builder = builder.mode(EventMode::from_test_flag(test));
            }
            builder
        })
        .await?;
    // A Proposal Generator endpoint whose URL changed waits for the handshake again
    // (`Sender::update_endpoint` made it pending): run it now.
    let updated = if updated.url() != endpoint.url() {
        handshake_if_pending(&api, updated).await?
    } else {
        updated
    };
    Ok(json_reply(StatusCode::OK, &view(&updated)))
}

#[utoipa::path(delete, path = "/webhooks/{id}", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    responses(
        (status = 204, description = "deleted"),
        (status = 404, description = "no such webhook, or another customer's"),
    )
)]
pub(crate) async fn delete<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    api.sender.delete_endpoint(endpoint.id()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[utoipa::path(post, path = "/webhooks/{id}/pause", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    responses(
        (status = 200, description = "the paused endpoint", body = WebhookView<'_>),
        (status = 404, description = "no such webhook, or another customer's"),
    )
)]
pub(crate) async fn pause<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    api.sender.pause_endpoint(endpoint.id()).await?;
    let endpoint = owned(&api, &caller, &id).await?;
    Ok(json_reply(StatusCode::OK, &view(&endpoint)))
}

#[utoipa::path(post, path = "/webhooks/{id}/resume", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    responses(
        (status = 200, description = "the resumed endpoint", body = WebhookView<'_>),
        (status = 404, description = "no such webhook, or another customer's"),
    )
)]
pub(crate) async fn resume<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    api.sender.resume_endpoint(endpoint.id()).await?;
    let endpoint = owned(&api, &caller, &id).await?;
    Ok(json_reply(StatusCode::OK, &view(&endpoint)))
}

#[utoipa::path(post, path = "/webhooks/{id}/rotate-secret", tag = "webhooks", params(("id" = String, Path, description = "the webhook's id")),
    request_body(content = Option<Rotation>, description = "optional: without a `secret`, one is generated"),
    responses(
        (status = 200, description = "the new secret", body = super::schemas::Rotated),
        (status = 400, description = "the body is not JSON"),
        (status = 404, description = "no such webhook, or another customer's"),
        (status = 422, description = "the secret or grace period is wrong (`errors` names it)"),
    )
)]
pub(crate) async fn rotate_secret<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let rotation: Rotation = json_body(body, true)?;
    let endpoint = owned(&api, &caller, &id).await?;
    let (secret, generated) = secret_for(endpoint.profile(), rotation.secret.as_deref())?;
    let grace = rotation.grace_period_seconds.map(Duration::from_secs);
    api.sender
        .rotate_secret(endpoint.id(), Some(secret), grace)
        .await?;
    #[derive(Serialize)]
    struct Rotated {
        secret: Option<String>,
    }
    let secret = generated.or(rotation.secret);
    Ok(json_reply(StatusCode::OK, &Rotated { secret }))
}

#[utoipa::path(get, path = "/health", tag = "meta",
    responses((status = 200, description = "the server and its store answer", body = super::schemas::Health))
)]
pub(crate) async fn health<S: DeliveryStore>(State(api): Shared<S>) -> Result<Response, Problem> {
    let probe = EndpointQuery {
        limit: PageLimit::new(1).unwrap_or_default(),
        ..EndpointQuery::default()
    };
    api.sender.list_endpoints(&probe).await?;
    Ok(json_reply(
        StatusCode::OK,
        &serde_json::json!({"status": "ok"}),
    ))
}
