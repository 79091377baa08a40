//! The delivery routes: an endpoint's log, one delivery with its attempts, retries (one or
//! in bulk), and publishing an event.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::body::{cursor, json_body, json_reply, limit, query_pairs};
use super::problem::Problem;
use super::webhooks::owned;
use super::{Api, Caller, Principal, time};
use crate::event::{EventId, OutgoingEvent};
use crate::send::store::{AttemptLog, DeliveryRecord, StatusKind, TimeRange, TypePattern};
use crate::send::{BulkRetry, Cursor, DeliveryId, DeliveryStore, LogQuery};

type Shared<S> = State<Arc<Api<S>>>;

/// A delivery as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Delivery)]
pub(super) struct DeliveryView<'a> {
    id: &'a str,
    webhook_id: &'a str,
    message_id: &'a str,
    event_id: &'a str,
    event_type: &'a str,
    status: &'static str,
    kind: &'static str,
    attempts: u32,
    created_at: String,
    next_attempt_at: Option<String>,
    finished_at: Option<String>,
    last_status: Option<u16>,
}

fn view(d: &DeliveryRecord) -> DeliveryView<'_> {
    DeliveryView {
        id: d.id.as_str(),
        webhook_id: d.endpoint.as_str(),
        message_id: d.message.as_str(),
        event_id: d.event_id.as_str(),
        event_type: d.event_type.as_str(),
        status: d.status.as_str(),
        kind: d.kind.as_str(),
        attempts: d.attempts,
        created_at: time::rfc3339(d.created_at),
        next_attempt_at: d.next_attempt_at.map(time::rfc3339),
        finished_at: d.finished_at.map(time::rfc3339),
        last_status: d.last_status,
    }
}

/// An attempt as the API shows it (request headers as logged: signatures redacted).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Attempt)]
pub(super) struct AttemptView<'a> {
    attempt: u32,
    started_at: String,
    latency_ms: u64,
    status: Option<u16>,
    error: Option<&'static str>,
    manual: bool,
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    request_headers: &'a [(String, String)],
    /// `[name, value]` pairs.
    #[schema(value_type = Vec<Vec<String>>)]
    response_headers: &'a [(String, String)],
    response_body: String,
}

fn attempt_view(a: &AttemptLog) -> AttemptView<'_> {
    AttemptView {
        attempt: a.attempt,
        started_at: time::rfc3339(a.started_at),
        latency_ms: a.latency_ms,
        status: a.status,
        error: a.error.map(|e| e.as_str()),
        manual: a.manual,
        request_headers: &a.request_headers,
        response_headers: &a.response_headers,
        response_body: String::from_utf8_lossy(&a.response_body).into_owned(),
    }
}

/// Applies the log's query parameters (`status`, `event_type`, `since`, `until`, `limit`,
/// `cursor`) to `query`.
fn log_filters(query: &mut LogQuery, raw: Option<&str>) -> Result<(), Problem> {
    for (name, value) in query_pairs(raw) {
        match name.as_str() {
            "status" => {
                for status in value.split(',') {
                    let kind = StatusKind::parse(status).ok_or_else(|| {
                        let names: Vec<&str> = StatusKind::ALL.iter().map(|k| k.as_str()).collect();
                        Problem::bad_request("status", format!("one of {}", names.join(", ")))
                    })?;
                    query.statuses.push(kind);
                }
            }
            "event_type" => query.event_type = Some(TypePattern::parse(&value)),
            "since" => query.created.from = Some(time_param("since", &value)?),
            "until" => query.created.until = Some(time_param("until", &value)?),
            "limit" => query.limit = limit(&value)?,
            "cursor" => query.after = Some(cursor(&value)?),
            _ => {}
        }
    }
    Ok(())
}

fn time_param(field: &str, value: &str) -> Result<crate::retry::UnixMillis, Problem> {
    time::parse(value)
        .ok_or_else(|| Problem::bad_request(field, "RFC 3339 UTC (…Z) or unix seconds"))
}

#[utoipa::path(get, path = "/webhooks/{id}/deliveries", tag = "deliveries",
    params(("id" = String, Path, description = "the webhook's id"),
        ("status" = Option<String>, Query, pattern = "^(pending|delivered|dead|expired|superseded|batched|cancelled)(,(pending|delivered|dead|expired|superseded|batched|cancelled))*$", description = "comma-separated delivery statuses"),
        ("event_type" = Option<String>, Query, description = "an event type or pattern (`task.*`)"),
        ("since" = Option<super::schemas::TimeParam>, Query, description = "created at or after: RFC 3339 UTC or unix seconds"),
        ("until" = Option<super::schemas::TimeParam>, Query, description = "created before: RFC 3339 UTC or unix seconds"),
        ("limit" = Option<u16>, Query, minimum = 1, maximum = 250, description = "page size (default 50)"),
        ("cursor" = Option<String>, Query, pattern = "^d[0-9a-fA-F]{1,16}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "a page of the endpoint's deliveries, newest first", body = super::schemas::DeliveryList),
        (status = 400, description = "a query parameter does not parse"),
        (status = 404, description = "no such webhook, or another customer's"),
    )
)]
pub(crate) async fn of_webhook<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    let mut query = LogQuery {
        endpoint: Some(endpoint.id().clone()),
        owner: caller.owner().cloned(),
        ..LogQuery::default()
    };
    log_filters(&mut query, raw.as_deref())?;
    let page = api.sender.delivery_log(&query).await?;
    #[derive(Serialize)]
    struct Listing<'a> {
        deliveries: Vec<DeliveryView<'a>>,
        next_cursor: Option<&'a str>,
    }
    let listing = Listing {
        deliveries: page.items.iter().map(view).collect(),
        next_cursor: page.next.as_ref().map(Cursor::as_str),
    };
    Ok(json_reply(StatusCode::OK, &listing))
}

/// The caller's delivery with this id; another owner's answers 404 as a missing one does.
async fn owned_delivery<S: DeliveryStore>(
    api: &Api<S>,
    caller: &Principal,
    id: &str,
) -> Result<crate::send::DeliveryDetail, Problem> {
    let id = DeliveryId::new(id).map_err(|_| Problem::not_found("delivery"))?;
    api.sender
        .delivery_detail(&id, caller.owner())
        .await?
        .ok_or_else(|| Problem::not_found("delivery"))
}

#[utoipa::path(get, path = "/deliveries/{id}", tag = "deliveries", params(("id" = String, Path, description = "the delivery's id")),
    responses(
        (status = 200, description = "the delivery with its attempts", body = super::schemas::DeliveryWithAttempts),
        (status = 404, description = "no such delivery, or another customer's"),
    )
)]
pub(crate) async fn show<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let detail = owned_delivery(&api, &caller, &id).await?;
    #[derive(Serialize)]
    struct Detail<'a> {
        #[serde(flatten)]
        delivery: DeliveryView<'a>,
        attempt_log: Vec<AttemptView<'a>>,
    }
    let reply = Detail {
        delivery: view(&detail.delivery),
        attempt_log: detail.attempts.iter().map(attempt_view).collect(),
    };
    Ok(json_reply(StatusCode::OK, &reply))
}

#[utoipa::path(post, path = "/deliveries/{id}/retry", tag = "deliveries", params(("id" = String, Path, description = "the delivery's id")),
    responses(
        (status = 202, description = "queued for an attempt now", body = super::schemas::RetryQueued),
        (status = 404, description = "no such delivery, or another customer's"),
        (status = 409, description = "the delivery is being attempted now, superseded or cancelled"),
    )
)]
pub(crate) async fn retry<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let detail = owned_delivery(&api, &caller, &id).await?;
    let id = &detail.delivery.id;
    if !api.sender.retry_delivery(id).await? {
        return Err(Problem::new(
            StatusCode::CONFLICT,
            "the delivery is being attempted now, superseded or cancelled",
        ));
    }
    let reply = serde_json::json!({ "delivery_id": id.as_str() });
    Ok(json_reply(StatusCode::ACCEPTED, &reply))
}

/// `POST /deliveries/retry`'s body: the log's filters, and whether only to count.
#[derive(Deserialize, utoipa::ToSchema)]
struct BulkRequest {
    #[serde(default)]
    dry_run: bool,
    webhook_id: Option<String>,
    #[schema(value_type = Option<Vec<super::schemas::DeliveryStatusName>>)]
    status: Option<Vec<String>>,
    event_type: Option<String>,
    /// RFC 3339 UTC or unix seconds.
    #[schema(value_type = Option<super::schemas::TimeParam>)]
    since: Option<String>,
    /// RFC 3339 UTC or unix seconds.
    #[schema(value_type = Option<super::schemas::TimeParam>)]
    until: Option<String>,
}

#[utoipa::path(post, path = "/deliveries/retry", tag = "deliveries",
    request_body(content = Option<BulkRequest>, description = "the log's filters; all optional"),
    responses(
        (status = 200, description = "`dry_run`: how many would be retried", body = super::schemas::BulkRetried),
        (status = 202, description = "queued", body = super::schemas::BulkRetried),
        (status = 400, description = "the body is not JSON"),
        (status = 404, description = "no such webhook (`webhook_id`), or another customer's"),
        (status = 422, description = "a filter is wrong (`errors` names it)"),
    )
)]
pub(crate) async fn bulk_retry<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let request: BulkRequest = json_body(body, true)?;
    let mut query = LogQuery {
        owner: caller.owner().cloned(),
        ..LogQuery::default()
    };
    if let Some(id) = &request.webhook_id {
        query.endpoint = Some(owned(&api, &caller, id).await?.id().clone());
    }
    for (i, status) in request.status.iter().flatten().enumerate() {
        let kind = StatusKind::parse(status)
            .ok_or_else(|| Problem::invalid(format!("status[{i}]"), "not a delivery status"))?;
        query.statuses.push(kind);
    }
    query.event_type = request.event_type.as_deref().map(TypePattern::parse);
    let time = |field: &str, value: &Option<String>| {
        value
            .as_deref()
            .map(|v| {
                time::parse(v)
                    .ok_or_else(|| Problem::invalid(field, "RFC 3339 UTC or unix seconds"))
            })
            .transpose()
    };
    query.created.from = time("since", &request.since)?;
    query.created.until = time("until", &request.until)?;
    let mode = if request.dry_run {
        BulkRetry::DryRun
    } else {
        BulkRetry::Queue
    };
    let done = api.sender.bulk_retry(&query, mode).await?;
    let reply = serde_json::json!({ "matched": done.matched, "queued": done.queued });
    let status = if request.dry_run {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok(json_reply(status, &reply))
}

/// `POST /events`'s body.
#[derive(Deserialize, utoipa::ToSchema)]
struct NewEvent {
    #[serde(rename = "type")]
    #[schema(value_type = super::schemas::EventPattern)]
    event_type: String,
    /// The event's data: any JSON value.
    data: serde_json::Value,
    #[schema(min_length = 1)]
    id: Option<String>,
    /// A test event: it reaches test-mode endpoints only.
    #[serde(default)]
    test: bool,
}

#[utoipa::path(post, path = "/events", tag = "deliveries",
    request_body = NewEvent,
    responses(
        (status = 202, description = "published to every matching endpoint", body = super::schemas::Published),
        (status = 400, description = "the body is not JSON"),
        (status = 403, description = "only an admin may publish"),
        (status = 422, description = "a field is missing or wrong (`errors` names it)"),
    )
)]
pub(crate) async fn publish<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    if caller != Principal::Admin {
        return Err(Problem::admin_only());
    }
    let new: NewEvent = json_body(body, false)?;
    let mut event = OutgoingEvent::new(new.event_type, new.data);
    if let Some(id) = new.id {
        if id.is_empty() {
            return Err(Problem::invalid("id", "an event id is not empty"));
        }
        event = event.with_id(EventId::new(id));
    }
    if new.test {
        event = event.test();
    }
    let receipt = api.sender.publish_with_receipt(event).await?;
    let deliveries: Vec<&str> = receipt.deliveries.iter().map(|d| d.as_str()).collect();
    let reply = serde_json::json!({ "id": receipt.message.as_str(), "deliveries": deliveries });
    Ok(json_reply(StatusCode::ACCEPTED, &reply))
}

#[utoipa::path(get, path = "/webhooks/{id}/stats", tag = "deliveries",
    params(
        ("id" = String, Path, description = "the webhook's id"),
        ("since" = Option<super::schemas::TimeParam>, Query, description = "from: RFC 3339 UTC or unix seconds"),
        ("until" = Option<super::schemas::TimeParam>, Query, description = "until: RFC 3339 UTC or unix seconds"),
    ),
    responses(
        (status = 200, description = "the endpoint's numbers over the window", body = super::schemas::Stats),
        (status = 400, description = "a query parameter does not parse"),
        (status = 404, description = "no such webhook, or another customer's"),
    )
)]
pub(crate) async fn stats<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let endpoint = owned(&api, &caller, &id).await?;
    let mut window = TimeRange::all();
    for (name, value) in query_pairs(raw.as_deref()) {
        match name.as_str() {
            "since" => window.from = Some(time_param("since", &value)?),
            "until" => window.until = Some(time_param("until", &value)?),
            _ => {}
        }
    }
    let s = api.sender.endpoint_stats(endpoint.id(), window).await?;
    let (d, o) = (s.deliveries, s.outcomes);
    let reply = serde_json::json!({
        "since": s.window.from.map(time::rfc3339),
        "until": s.window.until.map(time::rfc3339),
        "deliveries": {
            "pending": d.pending, "delivered": d.delivered, "dead": d.dead,
            "expired": d.expired, "superseded": d.superseded, "cancelled": d.cancelled,
            "batched": d.batched,
        },
        "success_rate": s.success_rate,
        "attempts": s.attempts,
        "attempt_outcomes": {
            "success": o.success, "redirect": o.redirect, "client_error": o.client_error,
            "rate_limited": o.rate_limited, "server_error": o.server_error,
            "timeout": o.timeout, "connection": o.connection, "refused": o.refused,
            "other": o.other,
        },
        "retries": s.retries,
        "rate_limited": s.rate_limited,
        "average_latency_ms": s.average_latency_ms,
        "p95_latency_ms": s.p95_latency_ms,
        "last_success": s.last_success.map(time::rfc3339),
        "last_failure": s.last_failure.map(time::rfc3339),
    });
    Ok(json_reply(StatusCode::OK, &reply))
}
