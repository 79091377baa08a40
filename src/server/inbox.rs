//! The receiver's inbox in the management API (admin only): entries with their attempts,
//! counts, and replaying dead letters one by one or by filter. Present when the app gives
//! the API an inbox ([`ManagementApi::inbox`](super::ManagementApi::inbox)); otherwise
//! these routes answer 404.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::body::{json_body, json_reply, query_pairs};
use super::problem::Problem;
use super::{Api, Caller, Principal, time};
use crate::StoreError;
use crate::receive::inbox::{
    EntryStatus, Inbox, InboxAttempt, InboxCounts, InboxEntry, InboxId, InboxPage, InboxQuery,
    InboxStore,
};
use crate::send::DeliveryStore;

type Shared<S> = State<Arc<Api<S>>>;
type Boxed<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// What the API asks of an inbox, whatever its store (object-safe, so the API need not be
/// generic over it).
pub(crate) trait InboxAdmin: Send + Sync {
    fn list<'a>(&'a self, query: &'a InboxQuery) -> Boxed<'a, InboxPage>;
    fn entry(&self, id: InboxId) -> Boxed<'_, Option<(InboxEntry, Vec<InboxAttempt>)>>;
    fn counts(&self) -> Boxed<'_, InboxCounts>;
    fn replay(&self, id: InboxId) -> Boxed<'_, bool>;
    fn replay_matching<'a>(&'a self, query: &'a InboxQuery) -> Boxed<'a, u64>;
}

impl<I: InboxStore> InboxAdmin for Inbox<I> {
    fn list<'a>(&'a self, query: &'a InboxQuery) -> Boxed<'a, InboxPage> {
        Box::pin(Inbox::list(self, query))
    }
    fn entry(&self, id: InboxId) -> Boxed<'_, Option<(InboxEntry, Vec<InboxAttempt>)>> {
        Box::pin(Inbox::entry(self, id))
    }
    fn counts(&self) -> Boxed<'_, InboxCounts> {
        Box::pin(Inbox::counts(self))
    }
    fn replay(&self, id: InboxId) -> Boxed<'_, bool> {
        Box::pin(Inbox::replay(self, id))
    }
    fn replay_matching<'a>(&'a self, query: &'a InboxQuery) -> Boxed<'a, u64> {
        Box::pin(Inbox::replay_matching(self, query))
    }
}

/// The inbox, for an admin; 403 for a customer, 404 when the API has none.
fn inbox<'a, S>(api: &'a Api<S>, caller: &Principal) -> Result<&'a dyn InboxAdmin, Problem> {
    if caller.owner().is_some() {
        return Err(Problem::admin_only());
    }
    api.inbox
        .as_deref()
        .ok_or_else(|| Problem::not_found("inbox (this server has none)"))
}

/// An inbox entry as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InboxEntry)]
pub(crate) struct EntryView<'a> {
    id: String,
    profile: &'static str,
    message_id: Option<&'a str>,
    event_type: Option<&'a str>,
    status: &'static str,
    attempts: u32,
    received_at: String,
    next_attempt_at: Option<String>,
    finished_at: Option<String>,
    last_error: Option<&'a str>,
}

fn view(entry: &InboxEntry) -> EntryView<'_> {
    EntryView {
        id: entry.id.to_string(),
        profile: entry.accepted.profile.name(),
        message_id: entry.accepted.message_id.as_deref(),
        event_type: entry.accepted.event_type.as_deref(),
        status: entry.status.as_str(),
        attempts: entry.attempts,
        received_at: time::rfc3339(entry.accepted.received_at),
        next_attempt_at: (entry.status == EntryStatus::Pending)
            .then(|| time::rfc3339(entry.next_attempt_at)),
        finished_at: entry.finished_at.map(time::rfc3339),
        last_error: entry.last_error.as_deref(),
    }
}

/// One run of the handler as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = InboxAttempt)]
pub(crate) struct AttemptView<'a> {
    started_at: String,
    duration_ms: u64,
    error: Option<&'a str>,
    manual: bool,
}

/// The filters of `GET /inbox` and `POST /inbox/replay`.
fn filters(pairs: &[(String, String)]) -> Result<InboxQuery, Problem> {
    let mut query = InboxQuery::new();
    for (name, value) in pairs {
        query = match name.as_str() {
            "status" => {
                let mut query = query;
                for status in value.split(',') {
                    let status: EntryStatus = status.parse().map_err(|_| {
                        Problem::bad_request("status", "pending, processing, done or dead")
                    })?;
                    query = query.status(status);
                }
                query
            }
            "event_type" => query.event_type(value.clone()),
            "since" => query.since(time_param("since", value)?),
            "until" => query.until(time_param("until", value)?),
            "limit" => value
                .parse()
                .ok()
                .and_then(|n| query.clone().limit(n).ok())
                .ok_or_else(|| Problem::bad_request("limit", "a number from 1 to 250"))?,
            "cursor" => query.after_cursor(entry_id("cursor", value)?),
            _ => query,
        };
    }
    Ok(query)
}

fn time_param(field: &str, value: &str) -> Result<crate::retry::UnixMillis, Problem> {
    time::parse(value)
        .ok_or_else(|| Problem::bad_request(field, "RFC 3339 UTC (…Z) or unix seconds"))
}

fn entry_id(field: &str, value: &str) -> Result<InboxId, Problem> {
    value
        .parse()
        .map_err(|_| Problem::bad_request(field, "an inbox entry id (a positive number)"))
}

#[utoipa::path(get, path = "/inbox", tag = "inbox",
    params(
        ("status" = Option<String>, Query, pattern = "^(pending|processing|done|dead)(,(pending|processing|done|dead))*$", description = "comma-separated entry statuses"),
        ("event_type" = Option<String>, Query, description = "an exact event type"),
        ("since" = Option<super::schemas::TimeParam>, Query, description = "received at or after: RFC 3339 UTC or unix seconds"),
        ("until" = Option<super::schemas::TimeParam>, Query, description = "received before: RFC 3339 UTC or unix seconds"),
        ("limit" = Option<u16>, Query, minimum = 1, maximum = 250, description = "page size (default 50)"),
        ("cursor" = Option<String>, Query, pattern = "^[1-9][0-9]{0,18}$", description = "`next_cursor` of the previous page"),
    ),
    responses(
        (status = 200, description = "a page of inbox entries, newest first", body = super::schemas::InboxList),
        (status = 400, description = "a query parameter does not parse"),
        (status = 403, description = "customers cannot read the inbox"),
        (status = 404, description = "this server has no inbox"),
    )
)]
pub(crate) async fn list<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    RawQuery(raw): RawQuery,
) -> Result<Response, Problem> {
    let inbox = inbox(&api, &caller)?;
    let query = filters(&query_pairs(raw.as_deref()))?;
    let page = inbox.list(&query).await?;
    let reply = serde_json::json!({
        "entries": page.entries.iter().map(view).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|id| id.to_string()),
    });
    Ok(json_reply(StatusCode::OK, &reply))
}

#[utoipa::path(get, path = "/inbox/counts", tag = "inbox",
    responses(
        (status = 200, description = "entries by status", body = super::schemas::InboxCountsView),
        (status = 403, description = "customers cannot read the inbox"),
        (status = 404, description = "this server has no inbox"),
    )
)]
pub(crate) async fn counts<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
) -> Result<Response, Problem> {
    let counts = inbox(&api, &caller)?.counts().await?;
    let reply = serde_json::json!({
        "pending": counts.pending,
        "processing": counts.processing,
        "done": counts.done,
        "dead": counts.dead,
    });
    Ok(json_reply(StatusCode::OK, &reply))
}

#[utoipa::path(get, path = "/inbox/{id}", tag = "inbox",
    params(("id" = String, Path, description = "the entry's id")),
    responses(
        (status = 200, description = "the entry, its body and headers as received, and its attempts", body = super::schemas::InboxDetail),
        (status = 400, description = "the id is not an entry id"),
        (status = 403, description = "customers cannot read the inbox"),
        (status = 404, description = "no such entry, or this server has no inbox"),
    )
)]
pub(crate) async fn show<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let inbox = inbox(&api, &caller)?;
    let id = entry_id("id", &id)?;
    let (entry, attempts) = inbox
        .entry(id)
        .await?
        .ok_or_else(|| Problem::not_found("inbox entry"))?;
    let reply = serde_json::json!({
        "entry": view(&entry),
        "headers": entry.accepted.headers,
        "body": String::from_utf8_lossy(&entry.accepted.body),
        "attempt_log": attempts.iter().map(|a| AttemptView {
            started_at: time::rfc3339(a.at),
            duration_ms: u64::try_from(a.duration.as_millis()).unwrap_or(u64::MAX),
            error: a.error.as_deref(),
            manual: a.manual,
        }).collect::<Vec<_>>(),
    });
    Ok(json_reply(StatusCode::OK, &reply))
}

#[utoipa::path(post, path = "/inbox/{id}/replay", tag = "inbox",
    params(("id" = String, Path, description = "the entry's id")),
    responses(
        (status = 202, description = "the dead letter runs again now", body = super::schemas::InboxReplayed),
        (status = 400, description = "the id is not an entry id"),
        (status = 403, description = "customers cannot replay"),
        (status = 404, description = "no such entry, or this server has no inbox"),
        (status = 409, description = "the entry is not a dead letter"),
    )
)]
pub(crate) async fn replay<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, Problem> {
    let inbox = inbox(&api, &caller)?;
    let id = entry_id("id", &id)?;
    if !inbox.replay(id).await? {
        return Err(match inbox.entry(id).await? {
            None => Problem::not_found("inbox entry"),
            Some(_) => Problem::new(StatusCode::CONFLICT, "the entry is not a dead letter"),
        });
    }
    Ok(json_reply(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "replayed": 1 }),
    ))
}

/// `POST /inbox/replay`'s body: the listing's filters, and whether only to count.
#[derive(Deserialize, utoipa::ToSchema)]
struct ReplayRequest {
    #[serde(default)]
    dry_run: bool,
    event_type: Option<String>,
    /// RFC 3339 UTC or unix seconds.
    #[schema(value_type = Option<super::schemas::TimeParam>)]
    since: Option<String>,
    /// RFC 3339 UTC or unix seconds.
    #[schema(value_type = Option<super::schemas::TimeParam>)]
    until: Option<String>,
}

#[utoipa::path(post, path = "/inbox/replay", tag = "inbox",
    request_body(content = Option<ReplayRequest>, description = "filters on the dead letters; all optional"),
    responses(
        (status = 200, description = "`dry_run`: how many would run again", body = super::schemas::InboxReplayed),
        (status = 202, description = "they run again now", body = super::schemas::InboxReplayed),
        (status = 400, description = "the body is not JSON"),
        (status = 403, description = "customers cannot replay"),
        (status = 404, description = "this server has no inbox"),
        (status = 422, description = "a filter is wrong (`errors` names it)"),
    )
)]
pub(crate) async fn replay_matching<S: DeliveryStore>(
    State(api): Shared<S>,
    Caller(caller): Caller,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Problem> {
    let inbox = inbox(&api, &caller)?;
    let request: ReplayRequest = json_body(body, true)?;
    let body_time = |field: &str, value: &str| {
        time::parse(value)
            .ok_or_else(|| Problem::invalid(field, "RFC 3339 UTC (…Z) or unix seconds"))
    };
    let mut query = InboxQuery::new().status(EntryStatus::Dead);
    if let Some(event_type) = request.event_type {
        query = query.event_type(event_type);
    }
    if let Some(since) = &request.since {
        query = query.since(body_time("since", since)?);
    }
    if let Some(until) = &request.until {
        query = query.until(body_time("until", until)?);
    }
    if request.dry_run {
        let mut count = 0u64;
        let mut page_query = query
            .clone()
            .limit(crate::receive::inbox::MAX_PAGE)
            .unwrap_or(query.clone());
        loop {
            let page = inbox.list(&page_query).await?;
            count += page.entries.len() as u64;
            match page.next_cursor {
                Some(cursor) => page_query = page_query.after_cursor(cursor),
                None => break,
            }
        }
        return Ok(json_reply(
            StatusCode::OK,
            &serde_json::json!({ "replayed": count }),
        ));
    }
    let replayed = inbox.replay_matching(&query).await?;
    Ok(json_reply(
        StatusCode::ACCEPTED,
        &serde_json::json!({ "replayed": replayed }),
    ))
}
