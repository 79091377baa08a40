//! Schemas of the replies that handlers write as JSON literals or through local types, for
//! the OpenAPI document. Documentation only: the test that runs every documented status
//! validates the real replies against them, so they cannot drift unnoticed.

#![allow(dead_code)]

use utoipa::ToSchema;

use super::deliveries::{AttemptView, DeliveryView};
use super::webhooks::WebhookView;

/// An event type (`task.completed`), a wildcard (`task.*`) or `*`: 1 to 200 characters,
/// no spaces or control characters.
#[derive(ToSchema)]
#[schema(pattern = r"^[^\s\x00-\x1f\x7f-\x9f]{1,200}$")]
pub(crate) struct EventPattern(String);

/// A delivery status.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
pub(crate) enum DeliveryStatusName {
    Pending,
    Delivered,
    Dead,
    Expired,
    Superseded,
    Batched,
    Cancelled,
}

/// A time: RFC 3339 UTC (`2024-01-15T10:30:00Z`, years 1970 to 9999) or unix seconds.
#[derive(ToSchema)]
#[schema(
    pattern = r"^([0-9]{1,12}|(19[7-9][0-9]|[2-9][0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?[Zz])$"
)]
pub(crate) struct TimeParam(String);

/// A page of endpoints.
#[derive(ToSchema)]
pub(crate) struct WebhookList {
    webhooks: Vec<WebhookView<'static>>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// A page of deliveries.
#[derive(ToSchema)]
pub(crate) struct DeliveryList {
    deliveries: Vec<DeliveryView<'static>>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// A delivery with its attempts, first attempt first.
#[derive(ToSchema)]
pub(crate) struct DeliveryWithAttempts {
    #[schema(inline)]
    #[serde(flatten)]
    delivery: DeliveryView<'static>,
    attempt_log: Vec<AttemptView<'static>>,
}

/// A rotated secret.
#[derive(ToSchema)]
pub(crate) struct Rotated {
    /// The new secret (generated, or the one given).
    secret: String,
}

/// A retry queued.
#[derive(ToSchema)]
pub(crate) struct RetryQueued {
    delivery_id: String,
}

/// A bulk retry: deliveries matched by the filters, and how many were queued (0 on a dry run).
#[derive(ToSchema)]
pub(crate) struct BulkRetried {
    matched: u64,
    queued: u64,
}

/// An event published.
#[derive(ToSchema)]
pub(crate) struct Published {
    /// The message id.
    id: String,
    /// The delivery created for each matching endpoint (empty when none matched).
    deliveries: Vec<String>,
}

/// A test send whose first attempt had no outcome yet: follow it in the delivery log.
#[derive(ToSchema)]
pub(crate) struct TestPending {
    delivery_id: String,
}

/// A recovery: how many failed deliveries of the window were queued.
#[derive(ToSchema)]
pub(crate) struct Recovered {
    queued: u64,
}

/// Liveness.
#[derive(ToSchema)]
pub(crate) struct Health {
    #[schema(example = "ok")]
    status: String,
}

/// An endpoint's deliveries by status.
#[derive(ToSchema)]
pub(crate) struct DeliveryCounts {
    pending: u64,
    delivered: u64,
    dead: u64,
    expired: u64,
    superseded: u64,
    cancelled: u64,
    batched: u64,
}

/// An endpoint's attempts by outcome.
#[derive(ToSchema)]
pub(crate) struct AttemptOutcomes {
    success: u64,
    redirect: u64,
    client_error: u64,
    rate_limited: u64,
    server_error: u64,
    timeout: u64,
    connection: u64,
    refused: u64,
    other: u64,
}

/// An endpoint's numbers over a window.
#[derive(ToSchema)]
pub(crate) struct Stats {
    /// RFC 3339 UTC, or null for no lower bound.
    since: Option<String>,
    /// RFC 3339 UTC, or null for no upper bound.
    until: Option<String>,
    deliveries: DeliveryCounts,
    /// Delivered / finished, or null when none finished.
    success_rate: Option<f64>,
    attempts: u64,
    attempt_outcomes: AttemptOutcomes,
    retries: u64,
    rate_limited: u64,
    average_latency_ms: Option<u64>,
    p95_latency_ms: Option<u64>,
    last_success: Option<String>,
    last_failure: Option<String>,
}

/// A page of inbox entries.
#[derive(ToSchema)]
pub(crate) struct InboxList {
    entries: Vec<super::inbox::EntryView<'static>>,
    /// Pass as `cursor` for the next page; null on the last.
    next_cursor: Option<String>,
}

/// Inbox entries by status.
#[derive(ToSchema)]
pub(crate) struct InboxCountsView {
    pending: u64,
    processing: u64,
    done: u64,
    dead: u64,
}

/// An inbox entry with what was received and its attempts, first attempt first.
#[derive(ToSchema)]
pub(crate) struct InboxDetail {
    entry: super::inbox::EntryView<'static>,
    /// The kept request headers, `[name, value]` pairs.
    headers: Vec<Vec<String>>,
    /// The body as received (lossy UTF-8).
    body: String,
    attempt_log: Vec<super::inbox::AttemptView<'static>>,
}

/// Dead letters that run again (or would, on a dry run).
#[derive(ToSchema)]
pub(crate) struct InboxReplayed {
    replayed: u64,
}
