//! Signing in (an operator's token through a form, never in a URL), signing out, opening a
//! customer portal link, and making portal links.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use http::{HeaderMap, StatusCode, Uri, header};

use super::endpoints::see_other;
use super::error::PageError;
use super::form::Fields;
use super::html::{Page, csrf_field, esc, html_response, layout};
use super::portal::{self, PortalLinks};
use super::session::{self, SESSION_COOKIE, SIGN_IN_COOKIE, Viewer};
use super::{Board, PortalCookies};
use crate::send::{DeliveryStore, Owner};
use crate::server::Principal;

type Shared<S> = State<Arc<Board<S>>>;

/// How long the sign-in form stays usable.
const SIGN_IN_WINDOW: Duration = Duration::from_secs(3600);
/// The longest portal link the form makes: 30 days.
const MAX_LINK_HOURS: u64 = 30 * 24;

fn sign_in_page<S>(board: &Board<S>, nonce: &str, error: Option<&str>) -> String {
    let token = session::sign_in_token(&board.key, nonce);
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", esc(e)))
        .unwrap_or_default();
    let body = format!(
        "{error}<form class=\"card narrow\" method=\"post\" action=\"{base}/sign-in\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{token}\">\
         <label for=\"token\">Admin token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" required autofocus>\
         <button type=\"submit\">Sign in</button></form>\
         <p class=\"hint\">Customers open the dashboard through a portal link their provider gives them.</p>",
        base = esc(&board.base),
        token = esc(token),
    );
    layout(&board.base, None, "Sign in", &body)
}

pub(crate) async fn form<S: DeliveryStore>(
    State(board): Shared<S>,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Response, PageError> {
    let nonce = session::nonce().ok_or(PageError::Unavailable)?;
    let mut response = html_response(StatusCode::OK, sign_in_page(&board, &nonce, None));
    let cookie = session::set_cookie(
        &board,
        &headers,
        &uri,
        SIGN_IN_COOKIE,
        &nonce,
        SIGN_IN_WINDOW,
        PortalCookies::SameSite,
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

pub(crate) async fn submit<S: DeliveryStore>(
    State(board): Shared<S>,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let fields = Fields::body(body)?;
    let nonce = session::cookie(&headers, SIGN_IN_COOKIE).ok_or(PageError::Forbidden)?;
    let token_ok = fields
        .get("csrf")
        .is_some_and(|given| session::sign_in_token_ok(&board.key, nonce, given));
    if !token_ok {
        return Err(PageError::Forbidden);
    }
    let principal = fields
        .get("token")
        .and_then(|token| board.tokens.lookup(token.as_bytes()));
    let Some(principal) = principal else {
        let html = sign_in_page(&board, nonce, Some("That token is not known."));
        return Ok(html_response(StatusCode::UNAUTHORIZED, html));
    };
    start_session(
        &board,
        &headers,
        &uri,
        &principal,
        &format!("{}/endpoints", board.base),
    )
}

/// A 303 to `location` that sets a new session cookie for `principal`.
fn start_session<S>(
    board: &Board<S>,
    headers: &HeaderMap,
    uri: &Uri,
    principal: &Principal,
    location: &str,
) -> Result<Response, PageError> {
    let value =
        session::issue(&board.key, principal, board.session_ttl).ok_or(PageError::Unavailable)?;
    let mut response = see_other(location);
    let cookie = session::set_cookie(
        board,
        headers,
        uri,
        SESSION_COOKIE,
        &value,
        board.session_ttl,
        PortalCookies::SameSite,
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

pub(crate) async fn sign_out<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    headers: HeaderMap,
    uri: Uri,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    Fields::checked(body, &viewer)?;
    // A copy of the cookie (another tab, a stolen one) stops working too.
    board
        .revocations
        .revoke(&viewer.session, viewer.expires, session::now_secs());
    let mut response = see_other(&format!("{}/sign-in", board.base));
    let cookie = session::set_cookie(
        &board,
        &headers,
        &uri,
        SESSION_COOKIE,
        "",
        Duration::ZERO,
        PortalCookies::SameSite,
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// `GET /portal?owner&expires&sig`: a valid link starts a customer session. The reply is a
/// page whose link (followed by the script) opens the dashboard from the same site, so the
/// `SameSite=Strict` cookie goes with it even when the link came from another site.
pub(crate) async fn portal<S: DeliveryStore>(
    State(board): Shared<S>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let fields = Fields::query(raw.as_deref());
    let owner = portal::open(
        &board.key,
        fields.get("owner"),
        fields.get("expires"),
        fields.get("sig"),
    )
    .map_err(|why| match why {
        portal::LinkRefused::Expired => {
            PageError::BadRequest("This portal link has expired; ask for a new one.".into())
        }
        _ => PageError::BadRequest("This portal link is not valid.".into()),
    })?;
    let principal = Principal::Customer(owner);
    let value =
        session::issue(&board.key, &principal, board.session_ttl).ok_or(PageError::Unavailable)?;
    let target = format!("{}/endpoints", board.base);
    let body = format!(
        "<p>You are signed in to your webhook dashboard.</p>\
         <p><a id=\"continue\" class=\"button\" data-auto-follow href=\"{}\">Continue</a></p>",
        esc(&target)
    );
    let mut response = html_response(StatusCode::OK, layout(&board.base, None, "Welcome", &body));
    let cookie = session::set_cookie(
        &board,
        &headers,
        &uri,
        SESSION_COOKIE,
        &value,
        board.session_ttl,
        board.portal_cookies,
    );
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

fn links_form<S>(board: &Board<S>, viewer: &Viewer) -> String {
    format!(
        "<form class=\"card narrow\" method=\"post\" action=\"{base}/portal-links\">{csrf}\
         <label for=\"owner\">Customer (owner)</label>\
         <input id=\"owner\" name=\"owner\" required>\
         <label for=\"hours\">Valid for (hours)</label>\
         <input id=\"hours\" name=\"hours\" type=\"number\" min=\"1\" max=\"{MAX_LINK_HOURS}\" value=\"24\" required>\
         <button type=\"submit\">Create portal link</button></form>",
        base = esc(&board.base),
        csrf = csrf_field(viewer),
    )
}

pub(crate) async fn portal_links<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
) -> Result<Response, PageError> {
    if viewer.owner().is_some() {
        return Err(PageError::OperatorsOnly);
    }
    let body = format!(
        "<p>A portal link signs its visitor in as one customer: they see only that owner's \
         endpoints and deliveries. Embed it in your app's settings page.</p>{}",
        links_form(&board, &viewer)
    );
    Ok(Page::new("Portal links", body).render(&board.base, Some(&viewer)))
}

pub(crate) async fn create_portal_link<S: DeliveryStore>(
    State(board): Shared<S>,
    viewer: Viewer,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let fields = Fields::checked(body, &viewer)?;
    if viewer.owner().is_some() {
        return Err(PageError::OperatorsOnly);
    }
    let owner = fields
        .text("owner")
        .and_then(|o| Owner::new(o).ok())
        .ok_or_else(|| PageError::BadRequest("an owner is 1 to 255 visible characters".into()))?;
    let hours = fields
        .text("hours")
        .and_then(|h| h.parse::<u64>().ok())
        .filter(|h| (1..=MAX_LINK_HOURS).contains(h))
        .ok_or_else(|| {
            PageError::BadRequest(format!("hours: a number from 1 to {MAX_LINK_HOURS}"))
        })?;
    let links = PortalLinks {
        key: board.key.clone(),
        base: board.base.clone(),
    };
    let path = links.link(&owner, Duration::from_secs(hours * 3600));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let link = if host.is_empty() {
        path
    } else {
        format!("{}://{host}{path}", if https { "https" } else { "http" })
    };
    let body = format!(
        "<p>Portal link for <strong>{owner}</strong>, valid for {hours} h:</p>\
         <p><code id=\"portal-link\" class=\"wrap\">{link}</code> \
         <button type=\"button\" data-copy=\"portal-link\">Copy</button></p>{form}",
        owner = esc(owner.as_str()),
        link = esc(&link),
        form = links_form(&board, &viewer),
    );
    Ok(Page::new("Portal links", body).render(&board.base, Some(&viewer)))
}
