//! Sessions: a cookie carrying who signed in, until when and a random session id, signed with
//! the dashboard's key (HMAC-SHA256); signing out revokes the id (see `revocation`); the CSRF token of a session is derived from
//! its cookie with the same key. Sign-in forms carry a token bound to a short-lived
//! pre-session cookie (a login-CSRF guard).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, header};

use super::{Board, CookieSecurity, PortalCookies};
use crate::Secret;
use crate::retry::UnixMillis;
use crate::send::Owner;
use crate::server::Principal;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "hookrelay_session";
/// The sign-in form's pre-session cookie.
pub(crate) const SIGN_IN_COOKIE: &str = "hookrelay_sign_in";

/// Who a page is shown to, and the CSRF token its forms carry.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) principal: Principal,
    pub(crate) csrf: String,
    /// The session's id (a random nonce in its cookie).
    pub(crate) session: String,
    /// When the session expires, unix seconds.
    pub(crate) expires: u64,
}

impl Viewer {
    /// The owner every query is limited to (`None` for an operator).
    pub(crate) fn owner(&self) -> Option<&Owner> {
        self.principal.owner()
    }

    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub(crate) fn csrf_ok(&self, given: Option<&str>) -> bool {
        let Some(given) = given else { return false };
        let (Ok(given), Ok(expected)) = (hex::decode(given), hex::decode(&self.csrf)) else {
            return false;
        };
        given.len() == expected.len()
            && bool::from(subtle::ConstantTimeEq::ct_eq(&*given, &*expected))
    }
}

pub(crate) fn now_secs() -> u64 {
    UnixMillis::now().as_millis() / 1000
}

/// A random hex nonce of 16 bytes.
pub(crate) fn nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).ok()?;
    Some(hex::encode(bytes))
}

/// A new session cookie's value for `principal`, valid for `ttl`.
pub(crate) fn issue(key: &Secret, principal: &Principal, ttl: Duration) -> Option<String> {
    let (kind, owner) = match principal.owner() {
        None => ("a", String::new()),
        Some(owner) => ("c", URL_SAFE_NO_PAD.encode(owner.as_str())),
    };
    let expires = now_secs().saturating_add(ttl.as_secs());
    let payload = format!("{kind}.{owner}.{expires}.{}", nonce()?);
    let tag = key.mac(&[b"session\0", payload.as_bytes()]).to_hex();
    Some(format!("{payload}.{tag}"))
}

/// The session a cookie value stands for, when its signature holds and it has not expired.
pub(crate) fn open(key: &Secret, value: &str) -> Option<Viewer> {
    let (payload, tag) = value.rsplit_once('.')?;
    let tag = hex::decode(tag).ok()?;
    if !key.mac(&[b"session\0", payload.as_bytes()]).matches(&tag) {
        return None;
    }
    let mut fields = payload.split('.');
    let (kind, owner, expires, session) = (
        fields.next()?,
        fields.next()?,
        fields.next()?,
        fields.next()?,
    );
    let expires = expires.parse::<u64>().ok()?;
    if expires <= now_secs() {
        return None;
    }
    let principal = match kind {
        "a" => Principal::Admin,
        "c" => {
            let owner = String::from_utf8(URL_SAFE_NO_PAD.decode(owner).ok()?).ok()?;
            Principal::Customer(Owner::new(owner).ok()?)
        }
        _ => return None,
    };
    let csrf = key.mac(&[b"csrf\0", value.as_bytes()]).to_hex();
    Some(Viewer {
        principal,
        csrf,
        session: session.to_owned(),
        expires,
    })
}

/// The sign-in form's token for a pre-session nonce.
pub(crate) fn sign_in_token(key: &Secret, nonce: &str) -> String {
    key.mac(&[b"sign-in\0", nonce.as_bytes()]).to_hex()
}

/// Whether `given` is the sign-in token for `nonce`.
pub(crate) fn sign_in_token_ok(key: &Secret, nonce: &str, given: &str) -> bool {
    hex::decode(given).is_ok_and(|given| key.mac(&[b"sign-in\0", nonce.as_bytes()]).matches(&given))
}

/// A cookie's value from the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Whether the request came over HTTPS (its URI, or a proxy's `X-Forwarded-Proto`).
fn over_https(headers: &HeaderMap, uri: &http::Uri) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
    forwarded || uri.scheme_str() == Some("https")
}

/// A `Set-Cookie` value: `HttpOnly; Path=base`; `SameSite=Strict` and `Secure` as
/// configured, or `SameSite=None; Secure` for [`PortalCookies::CrossSite`] (the session a
/// portal link starts on a dashboard set up for embedding).
pub(crate) fn set_cookie<S>(
    board: &Board<S>,
    parts_headers: &HeaderMap,
    uri: &http::Uri,
    name: &str,
    value: &str,
    max_age: Duration,
    site: PortalCookies,
) -> HeaderValue {
    let (same_site, secure) = match site {
        // Browsers take `SameSite=None` only with `Secure`.
        PortalCookies::CrossSite => ("None", true),
        PortalCookies::SameSite => (
            "Strict",
            match board.cookies {
                CookieSecurity::Always => true,
                CookieSecurity::WhenHttps => over_https(parts_headers, uri),
            },
        ),
    };
    let path = if board.base.is_empty() {
        "/"
    } else {
        &board.base
    };
    let text = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite={same_site}{}",
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=1"))
}

/// Sends a visitor without a session (or with a signed-out one) to the sign-in page.
#[derive(Debug)]
pub(crate) struct SignInFirst(String);

impl IntoResponse for SignInFirst {
    fn into_response(self) -> Response {
        Redirect::to(&format!("{}/sign-in", self.0)).into_response()
    }
}

impl<S: Send + Sync + 'static> FromRequestParts<Arc<Board<S>>> for Viewer {
    type Rejection = SignInFirst;

    async fn from_request_parts(
        parts: &mut Parts,
        board: &Arc<Board<S>>,
    ) -> Result<Self, Self::Rejection> {
        cookie(&parts.headers, SESSION_COOKIE)
            .and_then(|value| open(&board.key, value))
            .filter(|viewer| !board.revocations.is_revoked(&viewer.session))
            .ok_or_else(|| SignInFirst(board.base.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opens_only_with_its_signature() {
        let key = Secret::from_raw("k").unwrap();
        let acme = Principal::Customer(Owner::new("acme.co/x").unwrap());
        let value = issue(&key, &acme, Duration::from_secs(60)).unwrap();
        let viewer = open(&key, &value).unwrap();
        assert_eq!(viewer.principal, acme);
        assert!(viewer.csrf_ok(Some(&viewer.csrf.clone())));
        assert!(!viewer.csrf_ok(Some("00")));
        assert!(!viewer.csrf_ok(None));
        assert!(open(&Secret::from_raw("other").unwrap(), &value).is_none());
        let forged = value.replacen("c.", "a.", 1);
        assert!(open(&key, &forged).is_none());
        let expired = issue(&key, &Principal::Admin, Duration::ZERO).unwrap();
        assert!(open(&key, &expired).is_none());
    }
}
