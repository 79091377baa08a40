//! The delivery dashboard (issue #20): server-rendered HTML pages over a [`Sender`] —
//! endpoints, their deliveries, one delivery with its attempts, retries (one or in bulk by
//! the log's filters), charts drawn as inline SVG — for operators (signed in with an admin
//! token) and for customers (through a signed, expiring [portal link](PortalLinks) limited
//! to their endpoints). Every asset is served by the router itself: no CDN, no build step.
//!
//! Safety: sessions are signed `HttpOnly; SameSite=Strict` cookies (`Secure` over HTTPS),
//! tokens never travel in a URL, every state-changing form is a `POST` with a CSRF token,
//! every value is escaped, and every page carries a strict `Content-Security-Policy`
//! (`default-src 'self'`, no inline script or style) with configurable
//! [`frame-ancestors`](FrameAncestors).
//!
//! | page | what it shows or does |
//! |---|---|
//! | `GET /sign-in`, `POST /sign-in`, `POST /sign-out` | the operator's token form; the session cookie |
//! | `GET /portal?owner&expires&sig` | opens a [portal link](PortalLinks): a session for that owner |
//! | `GET /portal-links`, `POST /portal-links` | operators make portal links |
//! | `GET /endpoints`, `GET /endpoints/new`, `POST /endpoints` | the list (24 h numbers in one store read); create |
//! | `GET /endpoints/{id}`, `POST /endpoints/{id}` | one endpoint with its numbers and charts; edit |
//! | `POST /endpoints/{id}/pause`, `/resume`, `/delete`, `/rotate-secret`, `/test`, `/verify` | its actions |
//! | `GET /deliveries?endpoint&status&event_type&since&until&response&cursor` | the log, 50 a page, newest first |
//! | `GET /deliveries/rows?…` | the first page's rows alone (the live mode polls it) |
//! | `GET /deliveries/{id}`, `POST /deliveries/{id}/retry` | one delivery with its attempts; retry |
//! | `GET /deliveries/bulk-retry?…`, `POST /deliveries/bulk-retry` | the dry-run count, then the retry |
//! | `GET /charts?window=24h\|7d` | deliveries per hour by outcome, latency by endpoint |
//!
//! ```
//! use hookrelay::Secret;
//! use hookrelay::send::{MemoryStore, Sender};
//! use hookrelay::server::{Dashboard, Principal, Token};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sender = Sender::new(MemoryStore::new());
//! let dashboard = Dashboard::new(sender)
//!     .token(Token::new("admin-token")?, Principal::Admin)
//!     .key(Secret::from_raw("a long random server key")?);
//! let app: axum::Router = axum::Router::new().nest("/dashboard", dashboard.router());
//! # let _ = app; Ok(())
//! # }
//! ```

mod assets;
mod charts;
mod deliveries;
mod endpoints;
mod error;
mod form;
mod html;
mod inbox;
mod portal;
mod revocation;
mod session;
mod sign_in;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::{Redirect, Response};
use axum::routing::{get, post};
use http::{HeaderValue, header};

pub use portal::PortalLinks;

use crate::Secret;
use crate::StoreError;
use crate::profile::Profile;
use crate::retry::UnixMillis;
use crate::send::{DeliveryStore, EndpointId, Sender, Transport, Verification};
use crate::server::{Principal, Token, TokenTable};

/// Who may frame the dashboard's pages (`frame-ancestors` and `X-Frame-Options`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum FrameAncestors {
    /// Nobody (the default): `frame-ancestors 'none'`, `X-Frame-Options: DENY`.
    #[default]
    None,
    /// Pages of the same origin: `'self'`, `SAMEORIGIN`.
    SameOrigin,
    /// These origins (e.g. `https://app.example.com`), to embed the customer portal in an
    /// app's own settings page; no `X-Frame-Options` is sent (it cannot list origins).
    Origins(Vec<String>),
}

/// When the session cookie is marked `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum CookieSecurity {
    /// When the request came over HTTPS: its URI's scheme, or `X-Forwarded-Proto: https`
    /// from a proxy in front (the default).
    #[default]
    WhenHttps,
    /// Always.
    Always,
}

/// Which sites send a customer's portal session cookie back (its `SameSite`). Operator
/// sessions are always `SameSite=Strict`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum PortalCookies {
    /// `SameSite=Strict` (the default): the portal works when opened on the dashboard's own
    /// site (a link, a new tab, an iframe on a page of the same site).
    #[default]
    SameSite,
    /// `SameSite=None; Secure`: the portal also works inside an iframe on another site, e.g.
    /// the app's settings page on `app.example` embedding `webhooks.example`. Use it with
    /// [`FrameAncestors::Origins`] naming that site; the dashboard must then be served over
    /// HTTPS (browsers drop `Secure` cookies sent over plain HTTP). Every form still carries
    /// its CSRF token, so a cross-site cookie does not open the pages to forged requests.
    CrossSite,
}

/// Builds the dashboard's [`Router`] from a [`Sender`].
pub struct Dashboard<S> {
    sender: Sender<S>,
    tokens: TokenTable,
    key: Secret,
    base: String,
    frames: FrameAncestors,
    cookies: CookieSecurity,
    portal_cookies: PortalCookies,
    session_ttl: Duration,
    default_profile: Profile,
    default_retry_policy: Option<crate::retry::RetryPolicy>,
    verifier: Option<Verifier>,
    inbox: Option<Arc<dyn crate::server::inbox::InboxAdmin>>,
}

/// Runs an endpoint's verification handshake through the transport the app gave.
pub(crate) type Verifier = Arc<
    dyn Fn(EndpointId) -> Pin<Box<dyn Future<Output = Result<Verification, StoreError>> + Send>>
        + Send
        + Sync,
>;

impl<S> std::fmt::Debug for Dashboard<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dashboard")
            .field("tokens", &self.tokens)
            .field("base", &self.base)
            .field("frames", &self.frames)
            .field("cookies", &self.cookies)
            .field("session_ttl", &self.session_ttl)
            .field("verifier", &self.verifier.is_some())
            .field("inbox", &self.inbox.is_some())
            .finish_non_exhaustive()
    }
}

/// How long a session lasts by default: 12 hours.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

impl<S: DeliveryStore> Dashboard<S> {
    /// A dashboard over `sender`, mounted at `/dashboard`, that lets nobody in until given
    /// tokens (or used through portal links).
    pub fn new(sender: Sender<S>) -> Self {
        Self {
            sender,
            tokens: TokenTable::new(),
            key: random_key(),
            base: "/dashboard".to_owned(),
            frames: FrameAncestors::default(),
            cookies: CookieSecurity::default(),
            portal_cookies: PortalCookies::default(),
            session_ttl: DEFAULT_SESSION_TTL,
            default_profile: Profile::StandardWebhooks,
            default_retry_policy: None,
            verifier: None,
            inbox: None,
        }
    }

    /// A token an operator (or a customer) signs in with, as the management API takes it.
    pub fn token(mut self, token: Token, principal: Principal) -> Self {
        self.tokens.insert(token, principal);
        self
    }

    /// The key that signs sessions, CSRF tokens and portal links. Without one a random key
    /// is made: sessions and links then end with the process.
    pub fn key(mut self, key: Secret) -> Self {
        self.key = key;
        self
    }

    /// The path the router is nested at (default `/dashboard`; `""` at the root): links,
    /// redirects and the cookie's `Path` use it.
    pub fn base_path(mut self, base: impl Into<String>) -> Self {
        self.base = base.into().trim_end_matches('/').to_owned();
        self
    }

    /// Who may frame the pages (default nobody).
    pub fn frame_ancestors(mut self, frames: FrameAncestors) -> Self {
        self.frames = frames;
        self
    }

    /// When the session cookie is `Secure` (default: over HTTPS).
    pub fn cookie_security(mut self, cookies: CookieSecurity) -> Self {
        self.cookies = cookies;
        self
    }

    /// Which sites send a portal session's cookie back (default
    /// [`PortalCookies::SameSite`]); [`PortalCookies::CrossSite`] to embed the portal in an
    /// iframe on another site.
    ///
    /// ```
    /// use hookrelay::send::{MemoryStore, Sender};
    /// use hookrelay::server::Dashboard;
    /// use hookrelay::server::dashboard::{FrameAncestors, PortalCookies};
    ///
    /// let dashboard = Dashboard::new(Sender::new(MemoryStore::new()))
    ///     .frame_ancestors(FrameAncestors::Origins(vec!["https://app.example".into()]))
    ///     .portal_cookies(PortalCookies::CrossSite);
    /// # let _ = dashboard;
    /// ```
    pub fn portal_cookies(mut self, portal_cookies: PortalCookies) -> Self {
        self.portal_cookies = portal_cookies;
        self
    }

    /// How long a session lasts (default [`DEFAULT_SESSION_TTL`]).
    ///
    /// Signing out revokes the session at once: a copy of its cookie replayed is sent to the
    /// sign-in page. The revocations are kept in memory by the router, so a restart forgets
    /// them and such a copy then works again until this lifetime ends.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// The transport that runs an endpoint's verification handshake
    /// ([`Sender::verify_endpoint`]) from its page; without one the page has no Verify button.
    pub fn transport<T: Transport>(mut self, transport: T) -> Self {
        let sender = self.sender.clone();
        let transport = Arc::new(transport);
        self.verifier = Some(Arc::new(move |id: EndpointId| {
            let sender = sender.clone();
            let transport = Arc::clone(&transport);
            Box::pin(async move { sender.verify_endpoint(&*transport, &id).await })
        }));
        self
    }

    /// The [`RetryPolicy`](crate::retry::RetryPolicy) of endpoints created without one
    /// (default: the endpoint builder's). `hookrelay serve --max-attempts N` sets it.
    pub fn default_retry_policy(mut self, policy: crate::retry::RetryPolicy) -> Self {
        self.default_retry_policy = Some(policy);
        self
    }

    /// The profile of endpoints created without one (default Standard Webhooks).
    pub fn default_profile(mut self, profile: Profile) -> Self {
        self.default_profile = profile;
        self
    }

    /// The receiver's inbox, for an Inbox page of its own (operators only): entries with a
    /// status filter, each with its body, headers and runs, and dead letters run again one
    /// by one or all at once.
    pub fn inbox<I: crate::receive::inbox::InboxStore>(
        mut self,
        inbox: crate::receive::inbox::Inbox<I>,
    ) -> Self {
        self.inbox = Some(Arc::new(inbox));
        self
    }

    /// The portal-link maker of this dashboard (same key and base path). Set the
    /// [`key`](Self::key) first: a link signed with a random key opens only in this
    /// process.
    pub fn portal_links(&self) -> PortalLinks {
        PortalLinks {
            key: self.key.clone(),
            base: self.base.clone(),
        }
    }

    /// The router, to nest at the [base path](Self::base_path).
    pub fn router(self) -> Router {
        let csp = format!(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors {}",
            match &self.frames {
                FrameAncestors::None => "'none'".to_owned(),
                FrameAncestors::SameOrigin => "'self'".to_owned(),
                FrameAncestors::Origins(origins) => origins
                    .iter()
                    .map(|o| o.replace([';', ',', '\r', '\n'], ""))
                    .collect::<Vec<_>>()
                    .join(" "),
            }
        );
        let frame_options = match &self.frames {
            FrameAncestors::None => Some(HeaderValue::from_static("DENY")),
            FrameAncestors::SameOrigin => Some(HeaderValue::from_static("SAMEORIGIN")),
            FrameAncestors::Origins(_) => None,
        };
        let csp = HeaderValue::from_str(&csp).unwrap_or_else(|_| {
            HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'")
        });
        let state = Arc::new(Board {
            sender: self.sender,
            tokens: self.tokens,
            key: self.key,
            base: self.base,
            cookies: self.cookies,
            portal_cookies: self.portal_cookies,
            session_ttl: self.session_ttl,
            default_profile: self.default_profile,
            default_retry_policy: self.default_retry_policy,
            verifier: self.verifier,
            inbox: self.inbox,
            revocations: revocation::Revocations::default(),
        });
        let error_base = state.base.clone();
        let headers = move |mut response: Response| {
            let csp = csp.clone();
            let frame_options = frame_options.clone();
            let base = error_base.clone();
            async move {
                if let Some(page) = response.extensions_mut().remove::<error::ErrorPage>() {
                    *response.body_mut() = axum::body::Body::from(page.render(&base));
                }
                let h = response.headers_mut();
                h.insert(header::CONTENT_SECURITY_POLICY, csp);
                if let Some(value) = frame_options {
                    h.insert(header::X_FRAME_OPTIONS, value);
                }
                h.insert(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                );
                h.insert(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                );
                response
            }
        };
        let base = state.base.clone();
        Router::new()
            .route(
                "/",
                get(move || async move { Redirect::to(&format!("{base}/endpoints")) }),
            )
            .route("/assets/dashboard.css", get(assets::css))
            .route("/assets/dashboard.js", get(assets::js))
            .route(
                "/sign-in",
                get(sign_in::form::<S>).post(sign_in::submit::<S>),
            )
            .route("/sign-out", post(sign_in::sign_out::<S>))
            .route("/portal", get(sign_in::portal::<S>))
            .route(
                "/portal-links",
                get(sign_in::portal_links::<S>).post(sign_in::create_portal_link::<S>),
            )
            .route(
                "/endpoints",
                get(endpoints::list::<S>).post(endpoints::create::<S>),
            )
            .route("/endpoints/new", get(endpoints::new_form::<S>))
            .route(
                "/endpoints/{id}",
                get(endpoints::show::<S>).post(endpoints::update::<S>),
            )
            .route("/endpoints/{id}/pause", post(endpoints::pause::<S>))
            .route("/endpoints/{id}/resume", post(endpoints::resume::<S>))
            .route("/endpoints/{id}/delete", post(endpoints::delete::<S>))
            .route(
                "/endpoints/{id}/rotate-secret",
                post(endpoints::rotate_secret::<S>),
            )
            .route("/endpoints/{id}/test", post(endpoints::send_test::<S>))
            .route("/endpoints/{id}/verify", post(endpoints::verify::<S>))
            .route("/deliveries", get(deliveries::list::<S>))
            .route("/deliveries/rows", get(deliveries::rows::<S>))
            .route(
                "/deliveries/bulk-retry",
                get(deliveries::bulk_form::<S>).post(deliveries::bulk_retry::<S>),
            )
            .route("/deliveries/{id}", get(deliveries::show::<S>))
            .route("/deliveries/{id}/retry", post(deliveries::retry::<S>))
            .route("/charts", get(charts::page::<S>))
            .route("/inbox", get(inbox::list::<S>))
            .route("/inbox/replay", post(inbox::replay_all::<S>))
            .route("/inbox/{id}", get(inbox::show::<S>))
            .route("/inbox/{id}/replay", post(inbox::replay::<S>))
            .fallback(error::not_found)
            .layer(axum::middleware::map_response(headers))
            .layer(DefaultBodyLimit::max(crate::server::MAX_BODY))
            .with_state(state)
    }
}

/// A fresh random key: from the OS, or (should that fail) from std's randomly seeded
/// hashers, never a fixed one.
fn random_key() -> Secret {
    if let Ok(key) = Secret::generate() {
        return key;
    }
    use std::hash::{BuildHasher, Hasher};
    let mut bytes = Vec::with_capacity(32);
    for i in 0..4u8 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u8(i);
        hasher.write_u128(UnixMillis::now().as_millis().into());
        bytes.extend_from_slice(&hasher.finish().to_le_bytes());
    }
    match Secret::from_raw(&bytes) {
        Ok(key) => key,
        Err(_) => unreachable!("32 bytes are a key"),
    }
}

/// What every dashboard handler shares.
pub(crate) struct Board<S> {
    pub(crate) sender: Sender<S>,
    pub(crate) tokens: TokenTable,
    pub(crate) key: Secret,
    pub(crate) base: String,
    pub(crate) cookies: CookieSecurity,
    pub(crate) portal_cookies: PortalCookies,
    pub(crate) session_ttl: Duration,
    pub(crate) default_profile: Profile,
    pub(crate) default_retry_policy: Option<crate::retry::RetryPolicy>,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) inbox: Option<Arc<dyn crate::server::inbox::InboxAdmin>>,
    /// Sessions signed out (in memory: a restart forgets them; cookies still expire).
    pub(crate) revocations: revocation::Revocations,
}
