//! The receiver's inbox (operators only; present when the app gave the dashboard an inbox):
//! entries newest first with a status filter, one entry with what was received and each run
//! of the handler, and replaying dead letters one by one or all at once.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::Response;

use super::Board;
use super::deliveries::{headers_table, pretty};
use super::endpoints::{see_other, when};
use super::error::PageError;
use super::form::Fields;
use super::html::{Page, csrf_field, esc, query_value};
use super::session::Viewer;
use crate::receive::inbox::{EntryStatus, InboxEntry, InboxId, InboxQuery};
use crate::send::DeliveryStore;
use crate::server::inbox::InboxAdmin;

type Shared<S> = State<Arc<Board<S>>>;

/// The inbox, for an operator; customers (and portal visitors) get a 404, as for a page that
/// does not exist, and so does every viewer when the dashboard has no inbox.
fn inbox<'a, S>(board: &'a Board<S>, viewer: &Viewer) -> Result<&'a dyn InboxAdmin, PageError> {
    if viewer.owner().is_some() {
        return Err(PageError::NotFound("page"));
    }
    board.inbox.as_deref().ok_or(PageError::NotFound("inbox"))
}

fn badge(status: EntryStatus) -> String {
    format!(
        "<span class=\"badge i-{0}\">{0}</span>",
        esc(status.as_str())
    )
}

fn entry_id(id: &str) -> Result<InboxId, PageError> {
    id.parse().map_err(|_| PageError::NotFound("inbox entry"))
}

pub(crate) async fn list<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let inbox = inbox(&board, &viewer)?;
    let fields = Fields::query(raw.as_deref());
    let status = fields.text("status").map(str::to_owned);
    let mut query = InboxQuery::new()
        .limit(50)
        .map_err(|_| PageError::Unavailable)?;
    if let Some(status) = &status {
        let status = status.parse().map_err(|_| {
            PageError::BadRequest("status is pending, processing, done or dead".into())
        })?;
        query = query.status(status);
    }
    if let Some(cursor) = fields.text("cursor") {
        query = query.after_cursor(entry_id(cursor)?);
    }
    let counts = inbox.counts().await?;
    let page = inbox.list(&query).await?;
    let base = esc(&board.base);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"sub\">{} pending · {} processing · {} done · <strong>{} dead</strong></p>\
         <form class=\"filters\" method=\"get\" action=\"{base}/inbox\"><label for=\"status\">Status</label>\
         <select id=\"status\" name=\"status\"><option value=\"\">any</option>",
        counts.pending, counts.processing, counts.done, counts.dead
    );
    for s in EntryStatus::ALL {
        let selected = if status.as_deref() == Some(s.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{selected}>{}</option>", esc(s.as_str()));
    }
    body.push_str("</select> <button type=\"submit\">Filter</button></form>");
    if counts.dead > 0 {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"{base}/inbox/replay\">{}\
             <button type=\"submit\" id=\"replay-all\">Run all {} dead letters again</button></form>",
            csrf_field(&viewer),
            counts.dead
        );
    }
    body.push_str(
        "<table class=\"log\" id=\"inbox\"><thead><tr><th scope=\"col\">Received</th><th scope=\"col\">Event</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Runs</th><th scope=\"col\">Last error</th></tr></thead><tbody>",
    );
    for entry in &page.entries {
        let _ = write!(
            body,
            "<tr><td data-label=\"Received\"><a href=\"{base}/inbox/{id}\">{received}</a></td>\
             <td data-label=\"Event\">{event}</td><td data-label=\"Status\">{status}</td>\
             <td data-label=\"Runs\">{runs}</td><td data-label=\"Last error\" class=\"wrap\">{error}</td></tr>",
            id = entry.id,
            received = esc(when(entry.accepted.received_at)),
            event = esc(entry.accepted.event_type.as_deref().unwrap_or("–")),
            status = badge(entry.status),
            runs = entry.attempts,
            error = esc(entry.last_error.as_deref().unwrap_or("")),
        );
    }
    if page.entries.is_empty() {
        body.push_str("<tr><td colspan=\"5\" class=\"empty\">Nothing here.</td></tr>");
    }
    body.push_str("</tbody></table>");
    if let Some(next) = page.next_cursor {
        let status = status
            .map(|s| format!("status={}&", query_value(&s)))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<p><a rel=\"next\" href=\"{base}/inbox?{}cursor={next}\">Older entries</a></p>",
            esc(status)
        );
    }
    Ok(Page::new("Inbox", body).render(&board.base, Some(&viewer)))
}

pub(crate) async fn show<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let inbox = inbox(&board, &viewer)?;
    let (entry, attempts) = inbox
        .entry(entry_id(&id)?)
        .await?
        .ok_or(PageError::NotFound("inbox entry"))?;
    let base = esc(&board.base);
    let mut body = facts(&entry);
    if entry.status == EntryStatus::Dead {
        let _ = write!(
            body,
            "<p class=\"card dead\" id=\"dead-reason\"><strong>Why it is dead:</strong> {}</p>\
             <form method=\"post\" action=\"{base}/inbox/{id}/replay\">{}\
             <button type=\"submit\" id=\"replay\">Run it again</button></form>",
            esc(entry
                .last_error
                .as_deref()
                .unwrap_or("the handler kept failing")),
            csrf_field(&viewer),
            id = entry.id,
        );
    }
    let _ = write!(
        body,
        "<section><h2>Body <button type=\"button\" data-copy=\"payload\">Copy</button></h2>\
         <pre id=\"payload\" class=\"code\">{}</pre></section>\
         <section><h2>Headers as received</h2>{}</section>\
         <section><h2>Runs of the handler</h2><ol class=\"attempts\" id=\"attempts\">",
        esc(pretty(&entry.accepted.body)),
        headers_table(&entry.accepted.headers),
    );
    for a in &attempts {
        let _ = write!(
            body,
            "<li class=\"card\"><h3>{outcome}{manual}</h3><p>{at} · {ms} ms</p></li>",
            outcome = esc(a
                .error
                .as_deref()
                .map_or("succeeded".to_owned(), |e| format!("failed: {e}"))),
            manual = if a.manual { " (after a replay)" } else { "" },
            at = esc(when(a.at)),
            ms = a.duration.as_millis(),
        );
    }
    if attempts.is_empty() {
        body.push_str("<li class=\"empty\">Not run yet.</li>");
    }
    body.push_str("</ol></section>");
    Ok(Page::new(format!("Inbox entry {}", entry.id), body).render(&board.base, Some(&viewer)))
}

fn facts(entry: &InboxEntry) -> String {
    let a = &entry.accepted;
    format!(
        "<dl class=\"facts\"><dt>Id</dt><dd>{id}</dd><dt>Event</dt><dd>{event}</dd>\
         <dt>Delivery id</dt><dd>{message}</dd><dt>Profile</dt><dd>{profile}</dd>\
         <dt>Status</dt><dd id=\"entry-status\">{status}</dd><dt>Received</dt><dd>{received}</dd>\
         <dt>Runs</dt><dd>{runs}</dd><dt>Finished</dt><dd>{finished}</dd></dl>",
        id = entry.id,
        event = esc(a.event_type.as_deref().unwrap_or("–")),
        message = esc(a.message_id.as_deref().unwrap_or("–")),
        profile = esc(a.profile.name()),
        status = badge(entry.status),
        received = esc(when(a.received_at)),
        runs = entry.attempts,
        finished = entry
            .finished_at
            .map(when)
            .map(|t| esc(t).to_string())
            .unwrap_or_else(|| "–".into()),
    )
}

pub(crate) async fn replay<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    Fields::checked(body, &viewer)?;
    let inbox = inbox(&board, &viewer)?;
    let id = entry_id(&id)?;
    if !inbox.replay(id).await? {
        return Err(PageError::BadRequest(
            "the entry is not a dead letter".into(),
        ));
    }
    Ok(see_other(&format!("{}/inbox/{id}", board.base)))
}

pub(crate) async fn replay_all<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    Fields::checked(body, &viewer)?;
    let inbox = inbox(&board, &viewer)?;
    inbox
        .replay_matching(&InboxQuery::new().status(EntryStatus::Dead))
        .await?;
    Ok(see_other(&format!("{}/inbox", board.base)))
}
