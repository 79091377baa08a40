//! Delivery pages: the log (one endpoint's or all) with its filters in the URL, cursor
//! paging and a live mode; one delivery with its payload and attempts; retries, one or in
//! bulk by the current filters after a dry-run count.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;
use http::StatusCode;

use super::Board;
use super::endpoints::{see_other, when};
use super::error::PageError;
use super::form::Fields;
use super::html::{Page, csrf_field, esc, html_response, query_value};
use super::session::Viewer;
use crate::retry::UnixMillis;
use crate::send::store::{
    DeadReason, DeliveryRecord, DeliveryStatus, ResponseClass, StatusKind, TypePattern,
};
use crate::send::{BulkRetry, DeliveryId, DeliveryStore, LogQuery, PageLimit};

type Shared<S> = State<Arc<Board<S>>>;

/// Deliveries per page of the log.
const PAGE_ROWS: usize = 50;

/// The log's filters as the form (and the URL) carries them.
#[derive(Debug, Default, Clone)]
pub(crate) struct Filters {
    endpoint: String,
    status: String,
    event_type: String,
    since: String,
    until: String,
    response: String,
}

/// A form's date: `YYYY-MM-DDTHH:MM` (a `datetime-local` input, read as UTC), with seconds,
/// or full RFC 3339 UTC.
fn date(field: &str, text: &str) -> Result<Option<UnixMillis>, PageError> {
    if text.is_empty() {
        return Ok(None);
    }
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        16 => format!("{text}:00Z"),
        19 => format!("{text}Z"),
        _ => text.to_owned(),
    };
    crate::server::time::parse(&full)
        .map(Some)
        .ok_or_else(|| PageError::BadRequest(format!("{field}: a date and time (UTC)")))
}

impl Filters {
    pub(crate) fn from_fields(fields: &Fields) -> Self {
        let get = |n: &str| fields.text(n).unwrap_or("").to_owned();
        Self {
            endpoint: get("endpoint"),
            status: get("status"),
            event_type: get("event_type"),
            since: get("since"),
            until: get("until"),
            response: get("response"),
        }
    }

    /// The log query for `viewer` (owner-limited for a customer; an endpoint that is not
    /// theirs is a 404).
    async fn query<S: DeliveryStore>(
        &self,
        board: &Board<S>,
        viewer: &Viewer,
    ) -> Result<LogQuery, PageError> {
        let mut query = LogQuery {
            owner: viewer.owner().cloned(),
            limit: PageLimit::new(PAGE_ROWS).unwrap_or_default(),
            ..LogQuery::default()
        };
        if !self.endpoint.is_empty() {
            let endpoint = super::endpoints::owned(board, viewer, &self.endpoint).await?;
            query.endpoint = Some(endpoint.id().clone());
        }
        if !self.status.is_empty() {
            let kind = StatusKind::parse(&self.status)
                .ok_or_else(|| PageError::BadRequest("status: not a delivery status".into()))?;
            query.statuses.push(kind);
        }
        if !self.event_type.is_empty() {
            query.event_type = Some(TypePattern::parse(&self.event_type));
        }
        query.created.from = date("since", &self.since)?;
        query.created.until = date("until", &self.until)?;
        if !self.response.is_empty() {
            let class = ResponseClass::parse(&self.response).ok_or_else(|| {
                PageError::BadRequest("response: 2xx, 3xx, 4xx, 5xx or none".into())
            })?;
            query.responses.push(class);
        }
        Ok(query)
    }

    /// The filters as a query string (without a leading `?`; empty ones left out).
    pub(crate) fn to_query_string(&self) -> String {
        let pairs = [
            ("endpoint", &self.endpoint),
            ("status", &self.status),
            ("event_type", &self.event_type),
            ("since", &self.since),
            ("until", &self.until),
            ("response", &self.response),
        ];
        pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| format!("{n}={}", query_value(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// The filters as hidden fields (the bulk retry's confirmation form).
    fn hidden(&self) -> String {
        let mut out = String::new();
        for (n, v) in [
            ("endpoint", &self.endpoint),
            ("status", &self.status),
            ("event_type", &self.event_type),
            ("since", &self.since),
            ("until", &self.until),
            ("response", &self.response),
        ] {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"{n}\" value=\"{}\">",
                esc(v)
            );
        }
        out
    }

    /// The filter form (`GET`: its state is the URL).
    fn form(&self, base: &str) -> String {
        let select = |name: &str, label: &str, options: &[&str], current: &str| {
            let mut out = format!(
                "<div><label for=\"f-{name}\">{label}</label><select id=\"f-{name}\" name=\"{name}\"><option value=\"\">any</option>"
            );
            for option in options {
                let selected = if *option == current { " selected" } else { "" };
                let _ = write!(out, "<option{selected}>{}</option>", esc(option));
            }
            out.push_str("</select></div>");
            out
        };
        let statuses: Vec<&str> = StatusKind::ALL.iter().map(|k| k.as_str()).collect();
        let classes: Vec<&str> = ResponseClass::ALL.iter().map(|c| c.as_str()).collect();
        format!(
            "<form class=\"filters card\" method=\"get\" action=\"{base}/deliveries\" role=\"search\">\
             <div><label for=\"f-endpoint\">Endpoint id</label><input id=\"f-endpoint\" name=\"endpoint\" value=\"{endpoint}\"></div>\
             {status}\
             <div><label for=\"f-event_type\">Event type</label><input id=\"f-event_type\" name=\"event_type\" placeholder=\"job.* or job.done\" value=\"{event_type}\"></div>\
             <div><label for=\"f-since\">From (UTC)</label><input id=\"f-since\" name=\"since\" type=\"datetime-local\" value=\"{since}\"></div>\
             <div><label for=\"f-until\">Until (UTC)</label><input id=\"f-until\" name=\"until\" type=\"datetime-local\" value=\"{until}\"></div>\
             {response}\
             <div class=\"submit\"><button type=\"submit\">Filter</button></div></form>",
            base = esc(base),
            endpoint = esc(&self.endpoint),
            status = select("status", "Status", &statuses, &self.status),
            event_type = esc(&self.event_type),
            since = esc(&self.since),
            until = esc(&self.until),
            response = select("response", "Response", &classes, &self.response),
        )
    }
}

fn status_badge(status: DeliveryStatus) -> String {
    format!(
        "<span class=\"badge d-{0}\">{0}</span>",
        esc(status.as_str())
    )
}

/// The table rows of a page of the log.
fn table_rows(base: &str, items: &[DeliveryRecord]) -> String {
    let base = esc(base);
    let mut out = String::new();
    for d in items {
        let _ = write!(
            out,
            "<tr><td data-label=\"Created\"><a href=\"{base}/deliveries/{id}\">{created}</a></td>\
             <td data-label=\"Event\">{event}</td>\
             <td data-label=\"Endpoint\"><a href=\"{base}/endpoints/{endpoint}\">{endpoint}</a></td>\
             <td data-label=\"Status\">{status}</td><td data-label=\"Attempts\">{attempts}</td>\
             <td data-label=\"Last response\">{last}</td></tr>",
            id = esc(d.id.as_str()),
            created = esc(when(d.created_at)),
            event = esc(d.event_type.as_str()),
            endpoint = esc(d.endpoint.as_str()),
            status = status_badge(d.status),
            attempts = d.attempts,
            last = d
                .last_status
                .map_or_else(|| "–".to_owned(), |s| s.to_string()),
        );
    }
    if items.is_empty() {
        out.push_str("<tr><td colspan=\"6\" class=\"empty\">No deliveries match.</td></tr>");
    }
    out
}

pub(crate) async fn list<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::query(raw.as_deref());
    let filters = Filters::from_fields(&fields);
    let mut query = filters.query(&board, &viewer).await?;
    let first_page = fields.text("cursor").is_none();
    if let Some(cursor) = fields.text("cursor") {
        query.after = Some(
            cursor
                .parse()
                .map_err(|_| PageError::BadRequest("not a cursor this log gave".into()))?,
        );
    }
    let page = board.sender.delivery_log(&query).await?;
    let base = &board.base;
    let qs = filters.to_query_string();
    let mut body = filters.form(base);
    let _ = write!(
        body,
        "<p class=\"actions\"><a class=\"button\" href=\"{b}/deliveries/bulk-retry?{q}\" id=\"bulk-retry\">Bulk retry these…</a>",
        b = esc(base),
        q = esc(&qs),
    );
    if first_page {
        let _ = write!(
            body,
            " <button type=\"button\" id=\"live\" aria-pressed=\"false\" data-rows=\"{b}/deliveries/rows?{q}\">Live</button>\
             <span id=\"live-state\" class=\"sub\" aria-live=\"polite\"></span>",
            b = esc(base),
            q = esc(&qs),
        );
    }
    body.push_str("</p>");
    let _ = write!(
        body,
        "<div class=\"scroll\"><table class=\"list stack\" id=\"deliveries\"><thead><tr>\
         <th scope=\"col\">Created</th><th scope=\"col\">Event</th><th scope=\"col\">Endpoint</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Attempts</th><th scope=\"col\">Last response</th>\
         </tr></thead><tbody id=\"delivery-rows\">{}</tbody></table></div>",
        table_rows(base, &page.items)
    );
    if let Some(next) = &page.next {
        let sep = if qs.is_empty() { "" } else { "&" };
        let _ = write!(
            body,
            "<p class=\"pager\"><a rel=\"next\" id=\"next-page\" href=\"{b}/deliveries?{q}{sep}cursor={c}\">Older deliveries</a></p>",
            b = esc(base),
            q = esc(&qs),
            c = esc(query_value(next.as_str())),
        );
    }
    Ok(Page::new("Deliveries", body).render(base, Some(&viewer)))
}

/// `GET /deliveries/rows?filters`: the first page's rows alone, for the live mode.
pub(crate) async fn rows_fragment<S: DeliveryStore>(
    board: &Board<S>,
    viewer: &Viewer,
    raw: Option<&str>,
) -> Result<Response, PageError> {
    let filters = Filters::from_fields(&Fields::query(raw));
    let query = filters.query(board, viewer).await?;
    let page = board.sender.delivery_log(&query).await?;
    Ok(html_response(
        StatusCode::OK,
        table_rows(&board.base, &page.items),
    ))
}

pub(crate) async fn rows<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    rows_fragment(&board, &viewer, raw.as_deref()).await
}

fn dead_reason(reason: DeadReason) -> &'static str {
    match reason {
        DeadReason::Exhausted => "every attempt the retry policy allows failed",
        DeadReason::NotRetryable => {
            "the last response was classified as final: retrying would not help"
        }
        DeadReason::EndpointGone => "the endpoint answered 410 Gone and was disabled",
        DeadReason::Refused => {
            "the destination was refused (the address policy or SSRF guard), or the request could not be signed"
        }
    }
}

pub(crate) fn headers_table(headers: &[(String, String)]) -> String {
    if headers.is_empty() {
        return "<p class=\"sub\">none kept</p>".to_owned();
    }
    let mut out = String::from("<table class=\"kv\"><tbody>");
    for (name, value) in headers {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td class=\"wrap\">{}</td></tr>",
            esc(name),
            esc(value)
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// A body as text: pretty-printed when it is JSON.
pub(crate) fn pretty(bytes: &[u8]) -> String {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(value) => serde_json::to_string_pretty(&value)
            .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned()),
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

async fn owned_delivery<S: DeliveryStore>(
    board: &Board<S>,
    viewer: &Viewer,
    id: &str,
) -> Result<crate::send::DeliveryDetail, PageError> {
    let id = DeliveryId::new(id).map_err(|_| PageError::NotFound("delivery"))?;
    board
        .sender
        .delivery_detail(&id, viewer.owner())
        .await?
        .ok_or(PageError::NotFound("delivery"))
}

pub(crate) async fn show<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let detail = owned_delivery(&board, &viewer, &id).await?;
    let d = &detail.delivery;
    let message = board.sender.store().message(&d.message).await?;
    let base = esc(&board.base);
    let did = esc(d.id.as_str());
    let mut body = String::new();
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Id</dt><dd>{did}</dd><dt>Event</dt><dd>{event} <span class=\"sub\">{event_id}</span></dd>\
         <dt>Endpoint</dt><dd><a href=\"{base}/endpoints/{endpoint}\">{endpoint}</a></dd>\
         <dt>Status</dt><dd id=\"delivery-status\">{status}</dd><dt>Kind</dt><dd>{kind}</dd>\
         <dt>Created</dt><dd>{created}</dd><dt>Attempts</dt><dd>{attempts}</dd>\
         <dt>Next attempt</dt><dd>{next}</dd><dt>Finished</dt><dd>{finished}</dd></dl>",
        event = esc(d.event_type.as_str()),
        event_id = esc(d.event_id.as_str()),
        endpoint = esc(d.endpoint.as_str()),
        status = status_badge(d.status),
        kind = esc(d.kind.as_str()),
        created = esc(when(d.created_at)),
        attempts = d.attempts,
        next = d.next_attempt_at.map(when).unwrap_or_else(|| "–".into()),
        finished = d.finished_at.map(when).unwrap_or_else(|| "–".into()),
    );
    if let DeliveryStatus::DeadLettered(reason) = d.status {
        let last = detail.attempts.last().map(|a| match (a.status, a.error) {
            (Some(status), _) => format!(" The last attempt got HTTP {status}."),
            (None, Some(error)) => format!(" The last attempt failed: {}.", error.as_str()),
            (None, None) => String::new(),
        });
        let _ = write!(
            body,
            "<p class=\"card dead\" id=\"dead-reason\"><strong>Why it gave up:</strong> {}.{}</p>",
            esc(dead_reason(reason)),
            esc(last.unwrap_or_default())
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"{base}/deliveries/{did}/retry\">{}<button type=\"submit\" id=\"retry\">Retry now</button></form>",
        csrf_field(&viewer)
    );
    if let Some(message) = message {
        let _ = write!(
            body,
            "<section><h2>Payload <button type=\"button\" data-copy=\"payload\">Copy</button></h2>\
             <pre id=\"payload\" class=\"code\">{}</pre></section>",
            esc(pretty(&message.body))
        );
    }
    body.push_str("<section><h2>Attempts</h2><ol class=\"attempts\" id=\"attempts\">");
    for a in &detail.attempts {
        let outcome = match (a.status, a.error) {
            (Some(status), _) => format!("HTTP {status}"),
            (None, Some(error)) => error.as_str().to_owned(),
            (None, None) => "no response".to_owned(),
        };
        let _ = write!(
            body,
            "<li class=\"card\"><h3>Attempt {n}{manual}: {outcome}</h3>\
             <p>{at} · {latency} ms</p>\
             <details><summary>Request headers</summary>{req}</details>\
             <details><summary>Response headers</summary>{resp}</details>\
             <details open><summary>Response body</summary><pre class=\"code\">{rbody}</pre></details></li>",
            n = a.attempt,
            manual = if a.manual { " (by hand)" } else { "" },
            outcome = esc(outcome),
            at = esc(when(a.started_at)),
            latency = a.latency_ms,
            req = headers_table(&a.request_headers),
            resp = headers_table(&a.response_headers),
            rbody = esc(pretty(&a.response_body)),
        );
    }
    if detail.attempts.is_empty() {
        body.push_str("<li class=\"empty\">No attempt yet.</li>");
    }
    body.push_str("</ol></section>");
    Ok(Page::new(format!("Delivery {}", d.id), body).render(&board.base, Some(&viewer)))
}

pub(crate) async fn retry<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    Fields::checked(body, &viewer)?;
    let detail = owned_delivery(&board, &viewer, &id).await?;
    if !board.sender.retry_delivery(&detail.delivery.id).await? {
        return Err(PageError::BadRequest(
            "the delivery is being attempted now, superseded or cancelled".into(),
        ));
    }
    Ok(see_other(&format!(
        "{}/deliveries/{}",
        board.base, detail.delivery.id
    )))
}

pub(crate) async fn bulk_form<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let filters = Filters::from_fields(&Fields::query(raw.as_deref()));
    let query = filters.query(&board, &viewer).await?;
    let count = board.sender.bulk_retry(&query, BulkRetry::DryRun).await?;
    let base = esc(&board.base);
    let qs = filters.to_query_string();
    let summary = if qs.is_empty() {
        "every delivery".to_owned()
    } else {
        qs.replace('&', ", ")
    };
    let mut body = format!(
        "<p>Filters: <code>{}</code></p><p id=\"bulk-count\">This retries <strong>{}</strong> \
         deliveries (dead-lettered, expired, delivered, and pending ones no worker holds).</p>",
        esc(summary),
        count.matched
    );
    if count.matched > 0 {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{base}/deliveries/bulk-retry\">{csrf}{hidden}\
             <input type=\"hidden\" name=\"expected\" value=\"{n}\">\
             <button type=\"submit\" id=\"confirm-bulk\">Retry {n} deliveries</button></form>",
            csrf = csrf_field(&viewer),
            hidden = filters.hidden(),
            n = count.matched,
        );
    }
    let _ = write!(
        body,
        "<p><a href=\"{base}/deliveries?{}\">Back to the deliveries</a></p>",
        esc(&qs)
    );
    Ok(Page::new("Bulk retry", body).render(&board.base, Some(&viewer)))
}

pub(crate) async fn bulk_retry<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let fields = Fields::checked(body, &viewer)?;
    let filters = Filters::from_fields(&fields);
    let query = filters.query(&board, &viewer).await?;
    let done = board.sender.bulk_retry(&query, BulkRetry::Queue).await?;
    let base = esc(&board.base);
    let body = format!(
        "<p id=\"bulk-done\">Queued <strong>{}</strong> of {} matching deliveries.</p>\
         <p><a href=\"{base}/deliveries?{}\">Back to the deliveries</a></p>",
        done.queued,
        done.matched,
        esc(filters.to_query_string())
    );
    Ok(Page::new("Bulk retry", body).render(&board.base, Some(&viewer)))
}
