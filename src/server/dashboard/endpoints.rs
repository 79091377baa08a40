//! Endpoint pages: the list with each endpoint's last 24 hours, one endpoint with its
//! settings, numbers and charts, and the forms that create, change, pause, resume, delete
//! it, rotate its secret and send it a test event.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, RawQuery, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};

use super::Board;
use super::charts;
use super::error::PageError;
use super::form::Fields;
use super::html::{Page, csrf_field, esc, query_value};
use super::session::Viewer;
use crate::Secret;
use crate::profile::Profile;
use crate::retry::UnixMillis;
use crate::send::store::TimeRange;
use crate::send::{
    DeliveryStore, Endpoint, EndpointId, EndpointQuery, EndpointStatus, EventFilter, Owner,
    PageLimit, Verification,
};

type Shared<S> = State<Arc<Board<S>>>;

/// Endpoints per page of the list.
const PAGE_ROWS: usize = 50;
const DAY_MS: u64 = 24 * 3600 * 1000;

pub(crate) fn see_other(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The viewer's endpoint with this id; another owner's is a 404 as a missing one is.
pub(crate) async fn owned<S: DeliveryStore>(
    board: &Board<S>,
    viewer: &Viewer,
    id: &str,
) -> Result<Arc<Endpoint>, PageError> {
    let id = EndpointId::new(id).map_err(|_| PageError::NotFound("endpoint"))?;
    let endpoint = board
        .sender
        .endpoint(&id)
        .await?
        .ok_or(PageError::NotFound("endpoint"))?;
    match viewer.owner() {
        Some(owner) if endpoint.owner() != Some(owner) => Err(PageError::NotFound("endpoint")),
        _ => Ok(endpoint),
    }
}

/// A time as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn when(at: UnixMillis) -> String {
    let text = crate::server::time::rfc3339(at);
    format!("{} {} UTC", &text[..10], &text[11..19])
}

fn percent(rate: Option<f64>) -> String {
    rate.map_or_else(|| "–".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

fn millis(ms: Option<u64>) -> String {
    ms.map_or_else(|| "–".to_owned(), |ms| format!("{ms} ms"))
}

/// The subscribed event types as text (`all` when the filter is empty).
fn events(endpoint: &Endpoint) -> String {
    let patterns = endpoint.filter().patterns();
    if patterns.is_empty() {
        "all".to_owned()
    } else {
        patterns.join(", ")
    }
}

fn status_badge(status: EndpointStatus) -> String {
    format!(
        "<span class=\"badge s-{0}\">{0}</span>",
        esc(status.as_str())
    )
}

fn last_day() -> TimeRange {
    let now = UnixMillis::now().as_millis();
    TimeRange::between(
        UnixMillis::from_millis(now.saturating_sub(DAY_MS)),
        UnixMillis::from_millis(now + 1),
    )
}

pub(crate) async fn list<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::query(raw.as_deref());
    let mut query = EndpointQuery {
        owner: viewer.owner().cloned(),
        limit: PageLimit::new(PAGE_ROWS).unwrap_or_default(),
        ..EndpointQuery::default()
    };
    if let Some(cursor) = fields.text("cursor") {
        query.after = Some(
            cursor
                .parse()
                .map_err(|_| PageError::BadRequest("not a cursor this list gave".into()))?,
        );
    }
    let page = board.sender.list_endpoints(&query).await?;
    // The page's numbers in one store read, whatever the number of endpoints shown.
    let ids: Vec<EndpointId> = page.items.iter().map(|e| e.id().clone()).collect();
    let stats = board.sender.endpoints_stats(&ids, last_day()).await?;
    let base = esc(&board.base);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"actions\"><a class=\"button\" href=\"{base}/endpoints/new\">New endpoint</a></p>"
    );
    if page.items.is_empty() {
        body.push_str("<p class=\"empty\">No endpoints yet.</p>");
    } else {
        body.push_str(
            "<div class=\"scroll\"><table class=\"list stack\" id=\"endpoints\"><thead><tr>\
             <th scope=\"col\">Endpoint</th><th scope=\"col\">Profile</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Events</th>\
             <th scope=\"col\">Owner</th><th scope=\"col\">Success 24 h</th>\
             <th scope=\"col\">p95 24 h</th><th scope=\"col\">Last success</th>\
             <th scope=\"col\">Last failure</th></tr></thead><tbody>",
        );
        for (endpoint, stats) in page.items.iter().zip(stats) {
            let _ = write!(
                body,
                "<tr><td data-label=\"Endpoint\"><a href=\"{base}/endpoints/{id}\">{name}</a><div class=\"sub\">{url}</div></td>\
                 <td data-label=\"Profile\">{profile}</td><td data-label=\"Status\">{status}{note}</td>\
                 <td data-label=\"Events\">{events}</td><td data-label=\"Owner\">{owner}</td>\
                 <td data-label=\"Success 24 h\">{rate}</td><td data-label=\"p95 24 h\">{p95}</td>\
                 <td data-label=\"Last success\">{ok}</td><td data-label=\"Last failure\">{failed}</td></tr>",
                id = esc(endpoint.id().as_str()),
                name = esc(endpoint.name().unwrap_or(endpoint.id().as_str())),
                url = esc(endpoint.url()),
                profile = esc(endpoint.profile().name()),
                status = status_badge(endpoint.status()),
                note = endpoint
                    .status_note()
                    .map(|n| format!("<div class=\"sub\">{}</div>", esc(n)))
                    .unwrap_or_default(),
                events = esc(events(endpoint)),
                owner = esc(endpoint.owner().map_or("–", Owner::as_str)),
                rate = percent(stats.success_rate),
                p95 = millis(stats.p95_latency_ms),
                ok = stats.last_success.map(when).unwrap_or_else(|| "–".into()),
                failed = stats.last_failure.map(when).unwrap_or_else(|| "–".into()),
            );
        }
        body.push_str("</tbody></table></div>");
    }
    if let Some(next) = &page.next {
        let _ = write!(
            body,
            "<p class=\"pager\"><a rel=\"next\" href=\"{base}/endpoints?cursor={}\">Next page</a></p>",
            esc(query_value(next.as_str()))
        );
    }
    Ok(Page::new("Endpoints", body).render(&board.base, Some(&viewer)))
}

/// The create or edit form (`endpoint` given: edit).
fn endpoint_form<S>(board: &Board<S>, viewer: &Viewer, endpoint: Option<&Endpoint>) -> String {
    let base = esc(&board.base);
    let action = match endpoint {
        Some(e) => format!("{base}/endpoints/{}", esc(e.id().as_str())),
        None => format!("{base}/endpoints"),
    };
    let value = |v: Option<&str>| esc(v.unwrap_or("")).to_string();
    let mut form = format!(
        "<form class=\"card\" method=\"post\" action=\"{action}\" id=\"endpoint-form\">{csrf}\
         <label for=\"url\">URL</label>\
         <input id=\"url\" name=\"url\" type=\"url\" required value=\"{url}\">\
         <label for=\"name\">Name</label>\
         <input id=\"name\" name=\"name\" value=\"{name}\">\
         <label for=\"description\">Description</label>\
         <input id=\"description\" name=\"description\" value=\"{description}\">\
         <label for=\"events\">Events (comma-separated; <code>*</code> for all, <code>job.*</code> for a prefix)</label>\
         <input id=\"events\" name=\"events\" required value=\"{events}\">",
        csrf = csrf_field(viewer),
        url = value(endpoint.map(|e| e.url().as_str())),
        name = value(endpoint.and_then(|e| e.name())),
        description = value(endpoint.and_then(|e| e.description())),
        events = esc(endpoint.map_or_else(|| "*".to_owned(), |e| e.filter().patterns().join(", "))),
    );
    if endpoint.is_none() {
        form.push_str(
            "<label for=\"profile\">Profile</label><select id=\"profile\" name=\"profile\">",
        );
        for profile in Profile::ALL {
            let selected = if profile == board.default_profile {
                " selected"
            } else {
                ""
            };
            let _ = write!(
                form,
                "<option value=\"{0}\"{selected}>{0}</option>",
                esc(profile.name())
            );
        }
        form.push_str(
            "</select><label for=\"secret\">Secret (empty: generate one, shown once)</label>\
             <input id=\"secret\" name=\"secret\" type=\"password\" autocomplete=\"off\">",
        );
        if viewer.owner().is_none() {
            form.push_str(
                "<label for=\"owner\">Owner (customer; empty: none)</label>\
                 <input id=\"owner\" name=\"owner\">",
            );
        }
    }
    let label = if endpoint.is_some() {
        "Save"
    } else {
        "Create endpoint"
    };
    let _ = write!(form, "<button type=\"submit\">{label}</button></form>");
    form
}

pub(crate) async fn new_form<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    let body = endpoint_form(&board, &viewer, None);
    Ok(Page::new("New endpoint", body).render(&board.base, Some(&viewer)))
}

fn event_filter(text: &str) -> Result<EventFilter, PageError> {
    let patterns: Vec<&str> = text
        .split([',', ' ', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .collect();
    if patterns.is_empty() {
        return Err(PageError::BadRequest(
            "events: at least one event type, or *".into(),
        ));
    }
    let mut filter = EventFilter::default();
    for pattern in patterns {
        if pattern.len() > 200 || pattern.chars().any(char::is_control) {
            return Err(PageError::BadRequest(
                "events: an event type is 1 to 200 characters without control characters".into(),
            ));
        }
        filter = filter.or(pattern);
    }
    Ok(filter)
}

fn short_text<'a>(fields: &'a Fields, name: &str) -> Result<Option<&'a str>, PageError> {
    match fields.text(name) {
        Some(v) if v.len() > 1000 => {
            Err(PageError::BadRequest(format!("{name}: at most 1000 bytes")))
        }
        other => Ok(other),
    }
}

/// A secret read as `profile` reads it, or a fresh one with the text to show once.
fn secret_for(
    profile: Profile,
    given: Option<&str>,
) -> Result<(Secret, Option<String>), PageError> {
    let text = match given {
        Some(text) => {
            let secret = profile
                .secret_from_text(text)
                .map_err(|e| PageError::BadRequest(format!("secret: {e}")))?;
            return Ok((secret, None));
        }
        None => match profile {
            Profile::StandardWebhooks => Secret::generate()
                .map_err(|_| PageError::Unavailable)?
                .reveal_whsec(),
            _ => {
                let mut key = zeroize::Zeroizing::new([0u8; 32]);
                getrandom::fill(key.as_mut()).map_err(|_| PageError::Unavailable)?;
                hex::encode(key.as_ref())
            }
        },
    };
    let secret = profile
        .secret_from_text(&text)
        .map_err(|e| PageError::BadRequest(format!("secret: {e}")))?;
    Ok((secret, Some(text)))
}

fn secret_shown_once(secret: &str) -> String {
    format!(
        "<div class=\"card secret\" role=\"status\"><p><strong>The signing secret, shown only \
         this once:</strong></p><p><code id=\"new-secret\" class=\"wrap\">{}</code> \
         <button type=\"button\" data-copy=\"new-secret\">Copy</button></p></div>",
        esc(secret)
    )
}

pub(crate) async fn create<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let fields = Fields::checked(body, &viewer)?;
    let url = fields
        .text("url")
        .ok_or_else(|| PageError::BadRequest("url: required".into()))?;
    let profile = match fields.text("profile") {
        None => board.default_profile,
        Some(name) => name
            .parse()
            .map_err(|_| PageError::BadRequest("profile: not a profile".into()))?,
    };
    let (secret, generated) = secret_for(profile, fields.text("secret"))?;
    let mut builder = Endpoint::builder(url, profile)
        .secret(secret)
        .filter(event_filter(fields.get("events").unwrap_or(""))?);
    if let Some(name) = short_text(&fields, "name")? {
        builder = builder.name(name);
    }
    if let Some(description) = short_text(&fields, "description")? {
        builder = builder.description(description);
    }
    let owner = match viewer.owner() {
        Some(owner) => Some(owner.clone()),
        None => fields
            .text("owner")
            .map(|o| {
                Owner::new(o).map_err(|_| PageError::BadRequest("owner: not an owner name".into()))
            })
            .transpose()?,
    };
    if let Some(policy) = &board.default_retry_policy {
        builder = builder.retry_policy(policy.clone());
    }
    if let Some(owner) = owner {
        builder = builder.owner(owner);
    }
    let endpoint = builder
        .build()
        .map_err(|e| PageError::BadRequest(format!("the endpoint is invalid: {e}")))?;
    let id = board.sender.add_endpoint(endpoint).await?;
    let base = esc(&board.base);
    let mut body = format!(
        "<p>Endpoint <a href=\"{base}/endpoints/{id}\" id=\"created\">{id}</a> created.</p>",
        id = esc(id.as_str())
    );
    if let Some(secret) = generated {
        body.push_str(&secret_shown_once(&secret));
    }
    let mut page = Page::new("Endpoint created", body);
    page.status = StatusCode::CREATED;
    Ok(page.render(&board.base, Some(&viewer)))
}

pub(crate) async fn show<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let endpoint = owned(&board, &viewer, &id).await?;
    let window = charts::Window::from_fields(&Fields::query(raw.as_deref()));
    let stats = board
        .sender
        .endpoint_stats(endpoint.id(), last_day())
        .await?;
    let charts_html = charts::endpoint_charts(&board, &endpoint, window).await?;
    let base = esc(&board.base);
    let eid = esc(endpoint.id().as_str());
    let csrf = csrf_field(&viewer);
    let mut body = String::new();
    let _ = write!(
        body,
        "<dl class=\"facts\"><dt>Id</dt><dd>{eid}</dd><dt>Name</dt><dd id=\"endpoint-name\">{name}</dd>\
         <dt>URL</dt><dd class=\"wrap\">{url}</dd><dt>Profile</dt><dd>{profile}</dd>\
         <dt>Status</dt><dd>{status} {note}</dd><dt>Events</dt><dd>{events}</dd>\
         <dt>Owner</dt><dd>{owner}</dd><dt>Description</dt><dd>{description}</dd>\
         <dt>Secrets</dt><dd>{secrets} signing</dd>\
         <dt>Success 24 h</dt><dd>{rate}</dd><dt>Latency 24 h</dt><dd>avg {avg}, p95 {p95}</dd>\
         <dt>Last success</dt><dd>{ok}</dd><dt>Last failure</dt><dd>{failed}</dd></dl>\
         <p class=\"actions\"><a class=\"button\" href=\"{base}/deliveries?endpoint={eid}\">Deliveries</a></p>",
        name = esc(endpoint.name().unwrap_or("–")),
        url = esc(endpoint.url()),
        profile = esc(endpoint.profile().name()),
        status = status_badge(endpoint.status()),
        note = esc(endpoint.status_note().unwrap_or("")),
        events = esc(events(&endpoint)),
        owner = esc(endpoint.owner().map_or("–", Owner::as_str)),
        description = esc(endpoint.description().unwrap_or("–")),
        secrets = endpoint.secrets().len(),
        rate = percent(stats.success_rate),
        avg = millis(stats.average_latency_ms),
        p95 = millis(stats.p95_latency_ms),
        ok = stats.last_success.map(when).unwrap_or_else(|| "–".into()),
        failed = stats.last_failure.map(when).unwrap_or_else(|| "–".into()),
    );
    let toggle = if endpoint.status() == EndpointStatus::Active {
        ("pause", "Pause")
    } else {
        ("resume", "Resume")
    };
    let _ = write!(
        body,
        "<section class=\"row\">\
         <form method=\"post\" action=\"{base}/endpoints/{eid}/{0}\">{csrf}<button type=\"submit\" id=\"toggle\">{1}</button></form>\
         <form method=\"post\" action=\"{base}/endpoints/{eid}/rotate-secret\" data-confirm=\"Rotate the signing secret? The old one keeps signing for 24 hours.\">{csrf}<button type=\"submit\">Rotate secret</button></form>\
         {verify}\
         <form method=\"post\" action=\"{base}/endpoints/{eid}/delete\" data-confirm=\"Delete this endpoint? Its pending deliveries are cancelled.\">{csrf}<button type=\"submit\" class=\"danger\">Delete</button></form>\
         </section>",
        toggle.0,
        toggle.1,
        verify = if board.verifier.is_some() {
            format!(
                "<form method=\"post\" action=\"{base}/endpoints/{eid}/verify\">{csrf}\
                 <button type=\"submit\" id=\"verify\">Verify (handshake)</button></form>"
            )
        } else {
            String::new()
        },
    );
    let _ = write!(
        body,
        "<section><h2>Send a test event</h2><form class=\"card\" method=\"post\" action=\"{base}/endpoints/{eid}/test\">{csrf}\
         <label for=\"payload\">Payload (JSON; <code>webhook.test</code>'s data)</label>\
         <textarea id=\"payload\" name=\"payload\" rows=\"4\">{{\"test\": true}}</textarea>\
         <button type=\"submit\">Send test</button></form></section>"
    );
    let _ = write!(body, "<section><h2>Charts</h2>{charts_html}</section>");
    let _ = write!(
        body,
        "<section><h2>Edit</h2>{}</section>",
        endpoint_form(&board, &viewer, Some(&endpoint))
    );
    let title = format!(
        "Endpoint {}",
        endpoint.name().unwrap_or(endpoint.id().as_str())
    );
    Ok(Page::new(title, body).render(&board.base, Some(&viewer)))
}

pub(crate) async fn update<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let fields = Fields::checked(body, &viewer)?;
    let endpoint = owned(&board, &viewer, &id).await?;
    let url = fields
        .text("url")
        .ok_or_else(|| PageError::BadRequest("url: required".into()))?
        .to_owned();
    let filter = event_filter(fields.get("events").unwrap_or(""))?;
    let name = short_text(&fields, "name")?.map(str::to_owned);
    let description = short_text(&fields, "description")?.map(str::to_owned);
    board
        .sender
        .update_endpoint(endpoint.id(), |mut builder| {
            builder = builder.url(url).filter(filter);
            if let Some(name) = name {
                builder = builder.name(name);
            }
            if let Some(description) = description {
                builder = builder.description(description);
            }
            builder
        })
        .await?;
    Ok(see_other(&format!(
        "{}/endpoints/{}",
        board.base,
        endpoint.id()
    )))
}

/// The endpoint of a checked form.
async fn acted_on<S: DeliveryStore>(
    board: &Board<S>,
    viewer: &Viewer,
    id: &str,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Arc<Endpoint>, Fields), PageError> {
    let fields = Fields::checked(body, viewer)?;
    Ok((owned(board, viewer, id).await?, fields))
}

/// What the Pause and Resume buttons do.
#[derive(Debug, Clone, Copy)]
enum Switch {
    Pause,
    Resume,
}

/// Pauses or resumes the endpoint, then back to its page.
async fn switch<S: DeliveryStore>(
    board: &Board<S>,
    viewer: &Viewer,
    id: &str,
    body: Result<Bytes, BytesRejection>,
    switch: Switch,
) -> Result<Response, PageError> {
    let (endpoint, _) = acted_on(board, viewer, id, body).await?;
    match switch {
        Switch::Pause => board.sender.pause_endpoint(endpoint.id()).await?,
        Switch::Resume => board.sender.resume_endpoint(endpoint.id()).await?,
    }
    Ok(see_other(&format!(
        "{}/endpoints/{}",
        board.base,
        endpoint.id()
    )))
}

pub(crate) async fn pause<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    switch(&board, &viewer, &id, body, Switch::Pause).await
}

pub(crate) async fn resume<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    switch(&board, &viewer, &id, body, Switch::Resume).await
}

pub(crate) async fn delete<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (endpoint, _) = acted_on(&board, &viewer, &id, body).await?;
    board.sender.delete_endpoint(endpoint.id()).await?;
    Ok(see_other(&format!("{}/endpoints", board.base)))
}

pub(crate) async fn rotate_secret<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (endpoint, _) = acted_on(&board, &viewer, &id, body).await?;
    let (secret, text) = secret_for(endpoint.profile(), None)?;
    board
        .sender
        .rotate_secret(endpoint.id(), Some(secret), None)
        .await?;
    let base = esc(&board.base);
    let mut body = secret_shown_once(text.as_deref().unwrap_or(""));
    let _ = write!(
        body,
        "<p>The old secret keeps signing for 24 hours where the profile sends several signatures.</p>\
         <p><a href=\"{base}/endpoints/{}\">Back to the endpoint</a></p>",
        esc(endpoint.id().as_str())
    );
    Ok(Page::new("Secret rotated", body).render(&board.base, Some(&viewer)))
}

pub(crate) async fn send_test<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (endpoint, fields) = acted_on(&board, &viewer, &id, body).await?;
    let payload = match fields.text("payload") {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<serde_json::Value>(text)
                .map_err(|e| PageError::BadRequest(format!("payload: not JSON ({e})")))?,
        ),
    };
    board.sender.send_test(endpoint.id(), payload).await?;
    Ok(see_other(&format!(
        "{}/deliveries?endpoint={}",
        board.base,
        query_value(endpoint.id().as_str())
    )))
}

pub(crate) async fn verify<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let (endpoint, _) = acted_on(&board, &viewer, &id, body).await?;
    let verifier = board
        .verifier
        .as_ref()
        .ok_or(PageError::NotFound("handshake transport"))?;
    let outcome = match verifier(endpoint.id().clone()).await? {
        Verification::Verified => "The endpoint echoed the challenge: it is verified.".to_owned(),
        Verification::Failed(why) => format!("{why}."),
    };
    let base = esc(&board.base);
    let body = format!(
        "<p id=\"verification\" role=\"status\">{}</p>\
         <p><a href=\"{base}/endpoints/{}\">Back to the endpoint</a></p>",
        esc(outcome),
        esc(endpoint.id().as_str())
    );
    Ok(Page::new("Verification", body).render(&board.base, Some(&viewer)))
}
