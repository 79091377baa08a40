//! Rate limits per caller: [`RateLimit`], the [`RateLimitStore`] that counts requests (in
//! memory here; PostgreSQL's shared table with features `postgres` and `server`), and the
//! layer that applies them to the configuration routes and test sends.
//!
//! **What is limited.** Configuration requests — `POST`, `PUT` and `DELETE` on `/webhooks`,
//! `/webhooks/{id}` and `/webhooks/{id}/<action>` — share one limit (10 per minute by
//! default); test sends (`POST /webhooks/{id}/test`) have their own (5 per minute). A route is
//! classified by its method and its matched path, wherever the router is nested. Reads
//! (`GET`), `/deliveries` and `/events` are not limited.
//!
//! **Who is counted.** The caller: a token of the built-in table by a digest of the token
//! (two tokens are two budgets, even for one customer), a principal an app's
//! [`PrincipalResolver`](super::PrincipalResolver) gave by that principal (`admin`, or the
//! customer's owner). A request without a principal is answered 401 before any limit
//! applies, and is not counted.
//!
//! **How.** A fixed window per caller and class that opens with the first request counted:
//! up to `max` requests are let through until the window closes `period` later, whatever
//! their outcome (a 404 or a 422 counts too); the next one is answered 429 with
//! `Retry-After` and never reaches its handler, so nothing changes. A refused request is
//! not counted. Every response of a limited route carries `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (unix seconds at which the window
//! closes). A caller can spend a whole budget at the end of one window and another at the
//! start of the next: at most `2 × max` in a short burst, never more than `max` in one
//! window.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::problem::Problem;
use super::{Api, Principal};
use crate::{StoreError, Timestamp};

/// A future a store returns (boxed: the API holds its stores as trait objects).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// At most [`max`](Self::max) requests per [`period`](Self::period).
///
/// ```
/// use hookrelay::server::RateLimit;
///
/// let limit = RateLimit::per_minute(10)?;
/// assert_eq!(limit.max(), 10);
/// assert_eq!("5/min".parse::<RateLimit>()?, RateLimit::per_minute(5)?);
/// assert!(RateLimit::per_minute(0).is_err());
/// # Ok::<(), hookrelay::server::InvalidRateLimit>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    max: NonZeroU32,
    period_secs: u32,
}

/// Why a [`RateLimit`] was refused: a count of 0 or over [`RateLimit::MAX`], a period not
/// a whole number of seconds from 1 s to a day, or text not of the form `N/s`, `N/min`,
/// `N/h`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRateLimit(());

impl fmt::Display for InvalidRateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a rate limit is 1 to {} requests per 1 s to 24 h (N/s, N/min or N/h)",
            RateLimit::MAX
        )
    }
}

impl std::error::Error for InvalidRateLimit {}

impl RateLimit {
    /// The largest count a limit may allow per period.
    pub const MAX: u32 = 1_000_000;

    /// At most `max` requests per `period` (1 to [`MAX`](Self::MAX) requests, a whole
    /// number of seconds from 1 s to 24 h).
    pub fn new(max: u32, period: Duration) -> Result<Self, InvalidRateLimit> {
        let whole = period.subsec_nanos() == 0;
        let secs = u32::try_from(period.as_secs()).map_err(|_| InvalidRateLimit(()))?;
        match NonZeroU32::new(max) {
            Some(max) if max.get() <= Self::MAX && whole && (1..=86_400).contains(&secs) => {
                Ok(Self {
                    max,
                    period_secs: secs,
                })
            }
            _ => Err(InvalidRateLimit(())),
        }
    }

    /// At most `max` requests per minute.
    pub fn per_minute(max: u32) -> Result<Self, InvalidRateLimit> {
        Self::new(max, Duration::from_secs(60))
    }

    /// How many requests a window lets through.
    pub fn max(&self) -> u32 {
        self.max.get()
    }

    /// How long a window lasts.
    pub fn period(&self) -> Duration {
        Duration::from_secs(u64::from(self.period_secs))
    }

    pub(crate) fn period_secs(&self) -> i64 {
        i64::from(self.period_secs)
    }
}

/// `N/s`, `N/min` or `N/h` (also `N/sec`, `N/minute`, `N/hour`, `N/m`).
impl FromStr for RateLimit {
    type Err = InvalidRateLimit;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (count, unit) = s.trim().split_once('/').ok_or(InvalidRateLimit(()))?;
        let count: u32 = count.trim().parse().map_err(|_| InvalidRateLimit(()))?;
        let secs = match unit.trim() {
            "s" | "sec" | "second" => 1,
            "m" | "min" | "minute" => 60,
            "h" | "hour" => 3600,
            _ => return Err(InvalidRateLimit(())),
        };
        Self::new(count, Duration::from_secs(secs))
    }
}

/// What a [`RateLimitStore`] answers for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Whether the request was counted (let through); `false`: the window was full.
    pub counted: bool,
    /// The requests counted in the window, this one included when counted.
    pub hits: u32,
    /// When the window opened; it closes one period later.
    pub window_start: Timestamp,
}

/// Counts requests per bucket in fixed windows (see the [module docs](self)).
///
/// Implementations must make [`hit`](Self::hit) atomic: of many concurrent hits on one
/// bucket with a window at `max - 1`, exactly one is counted.
pub trait RateLimitStore: Send + Sync + 'static {
    /// Counts a request on `bucket` at `now` if its window has room: a bucket whose window
    /// closed (`window_start + period <= now`), or that has none, opens one at `now` with
    /// this request; one with fewer than `limit.max()` hits counts it; a full one counts
    /// nothing and says so. `bucket` is opaque text of at most a few hundred bytes.
    fn hit<'a>(&'a self, bucket: &'a str, limit: RateLimit, now: Timestamp)
    -> StoreFuture<'a, Hit>;
}

/// The windows of one process, in memory: the default store. Processes sharing a
/// PostgreSQL database share their limits through the database instead
/// ([`PostgresStore`](crate::send::PostgresStore) is a `RateLimitStore` with features
/// `postgres` and `server`); SQLite serves one process, so this store suits it.
///
/// Closed windows are swept whenever the table doubles in size, so it holds about twice the
/// callers active within one period.
#[derive(Debug, Clone, Default)]
pub struct MemoryRateLimitStore {
    windows: Arc<Mutex<Windows>>,
}

#[derive(Debug, Default)]
struct Windows {
    /// Bucket → (window start, hits, period).
    table: HashMap<String, (i64, u32, i64)>,
    sweep_at: usize,
}

impl MemoryRateLimitStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl RateLimitStore for MemoryRateLimitStore {
    fn hit<'a>(
        &'a self,
        bucket: &'a str,
        limit: RateLimit,
        now: Timestamp,
    ) -> StoreFuture<'a, Hit> {
        let now = now.as_unix();
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.table.len() >= windows.sweep_at {
            windows
                .table
                .retain(|_, &mut (start, _, period)| start.saturating_add(period) > now);
            windows.sweep_at = (windows.table.len() * 2).max(1024);
        }
        let period = limit.period_secs();
        let entry = windows
            .table
            .entry(bucket.to_owned())
            .or_insert((now, 0, period));
        if entry.0.saturating_add(period) <= now {
            *entry = (now, 0, period);
        }
        entry.2 = period;
        let counted = entry.1 < limit.max();
        if counted {
            entry.1 += 1;
        }
        let hit = Hit {
            counted,
            hits: entry.1,
            window_start: Timestamp::from_unix(entry.0),
        };
        Box::pin(std::future::ready(Ok(hit)))
    }
}

/// Which limit a route falls under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RouteClass {
    /// `POST`, `PUT`, `DELETE` under `/webhooks`, test sends excepted.
    Config,
    /// `POST /webhooks/{id}/test`.
    TestSend,
}

impl RouteClass {
    fn name(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::TestSend => "test",
        }
    }
}

/// The class of a request by its method and matched path (a route template such as
/// `/api/webhooks/{id}/test`: whatever the router is nested under comes first).
pub(crate) fn classify(method: &Method, matched: &str) -> Option<RouteClass> {
    if !matches!(*method, Method::POST | Method::PUT | Method::DELETE) {
        return None;
    }
    let segments: Vec<&str> = matched.trim_end_matches('/').split('/').collect();
    let at = segments.iter().rposition(|s| *s == "webhooks")?;
    match &segments[at + 1..] {
        [] | [_] => Some(RouteClass::Config),
        [_, "test"] if *method == Method::POST => Some(RouteClass::TestSend),
        [_, _] => Some(RouteClass::Config),
        _ => None,
    }
}

/// The limits a router applies and where it counts.
pub(crate) struct Limits {
    pub(crate) config: RateLimit,
    pub(crate) test: RateLimit,
    pub(crate) store: Arc<dyn RateLimitStore>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            config: RateLimit {
                max: NonZeroU32::MIN.saturating_add(9),
                period_secs: 60,
            },
            test: RateLimit {
                max: NonZeroU32::MIN.saturating_add(4),
                period_secs: 60,
            },
            store: Arc::new(MemoryRateLimitStore::new()),
        }
    }
}

impl fmt::Debug for Limits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Limits")
            .field("config", &self.config)
            .field("test", &self.test)
            .finish_non_exhaustive()
    }
}

/// The bucket of a token of the built-in table: a digest, so the token itself is never
/// stored (nor shown by the PostgreSQL table).
pub(crate) fn token_bucket(token: &[u8]) -> String {
    use sha2::{Digest as _, Sha256};
    format!("token:{}", hex::encode(&Sha256::digest(token)[..16]))
}

/// The bucket of a principal an app's resolver gave.
pub(crate) fn principal_bucket(principal: &Principal) -> String {
    match principal.owner() {
        None => "admin".to_owned(),
        Some(owner) => format!("customer:{}", owner.as_str()),
    }
}

/// The layer: counts a limited route's request, refuses it past the limit, and adds the
/// `X-RateLimit-*` headers to its response.
pub(crate) async fn layer<S: Send + Sync + 'static>(
    State(api): State<Arc<Api<S>>>,
    request: Request,
    next: Next,
) -> Response {
    let class = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|matched| classify(request.method(), matched.as_str()));
    let Some(class) = class else {
        return next.run(request).await;
    };
    let (mut parts, body) = request.into_parts();
    let Some(identity) = super::identify(&api, &parts) else {
        return Problem::unauthorized().into_response();
    };
    let limit = match class {
        RouteClass::Config => api.limits.config,
        RouteClass::TestSend => api.limits.test,
    };
    let bucket = format!("{}:{}", class.name(), identity.bucket);
    parts.extensions.insert(identity);
    let now = api.now();
    let hit = match api.limits.store.hit(&bucket, limit, now).await {
        Ok(hit) => hit,
        Err(e) => return store_failed(e).into_response(),
    };
    let reset = hit
        .window_start
        .as_unix()
        .saturating_add(limit.period_secs());
    let mut response = if hit.counted {
        next.run(Request::from_parts(parts, body)).await
    } else {
        let wait = reset.saturating_sub(now.as_unix()).max(1);
        let mut refused = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "at most {} {} requests per {} s; retry in {wait} s",
                limit.max(),
                match class {
                    RouteClass::Config => "configuration",
                    RouteClass::TestSend => "test-send",
                },
                limit.period_secs()
            ),
        )
        .into_response();
        refused
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from(wait));
        refused
    };
    headers(
        response.headers_mut(),
        limit.max(),
        limit.max().saturating_sub(hit.hits),
        reset,
    );
    response
}

fn headers(headers: &mut HeaderMap, limit: u32, remaining: u32, reset: i64) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(reset));
}

/// A limiter or replay store that fails: 503 when it is full or unavailable.
pub(crate) fn store_failed(e: StoreError) -> Problem {
    if e.is_full() {
        Problem::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the server is busy; try again",
        )
    } else {
        e.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_classified_by_method_and_matched_path() {
        let config = Some(RouteClass::Config);
        let test = Some(RouteClass::TestSend);
        for (method, path, class) in [
            (Method::POST, "/webhooks", config),
            (Method::GET, "/webhooks", None),
            (Method::PUT, "/webhooks/{id}", config),
            (Method::DELETE, "/webhooks/{id}", config),
            (Method::GET, "/webhooks/{id}", None),
            (Method::POST, "/webhooks/{id}/pause", config),
            (Method::POST, "/webhooks/{id}/rotate-secret", config),
            (Method::POST, "/webhooks/{id}/recover", config),
            (Method::POST, "/webhooks/{id}/verify", config),
            (Method::POST, "/webhooks/{id}/test", test),
            (Method::POST, "/api/webhooks/{id}/test", test),
            (Method::POST, "/tenants/{t}/api/webhooks", config),
            (Method::GET, "/webhooks/{id}/deliveries", None),
            (Method::POST, "/deliveries/{id}/retry", None),
            (Method::POST, "/deliveries/retry", None),
            (Method::POST, "/events", None),
            (Method::GET, "/health", None),
            (Method::PATCH, "/webhooks/{id}", None),
        ] {
            assert_eq!(classify(&method, path), class, "{method} {path}");
        }
    }

    #[test]
    fn limits_validate() {
        assert!(RateLimit::per_minute(0).is_err());
        assert!(RateLimit::per_minute(RateLimit::MAX + 1).is_err());
        assert!(RateLimit::new(1, Duration::from_millis(1500)).is_err());
        assert!(RateLimit::new(1, Duration::ZERO).is_err());
        assert!(RateLimit::new(1, Duration::from_secs(86_401)).is_err());
        assert_eq!(
            "3/h".parse::<RateLimit>().unwrap().period(),
            Duration::from_secs(3600)
        );
        for bad in ["", "10", "10/day", "-1/min", "x/min", "0/s"] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad}");
        }
        let defaults = Limits::default();
        assert_eq!(defaults.config, RateLimit::per_minute(10).unwrap());
        assert_eq!(defaults.test, RateLimit::per_minute(5).unwrap());
    }

    /// The layer over a stand-in `POST /webhooks/{id}/test` that counts its runs (the real
    /// route is in `tests/server_checklist.rs`, case 68): the 6th send in a minute is 429 and
    /// never reaches the handler; the configuration budget is separate.
    #[tokio::test]
    async fn test_sends_have_their_own_limit() {
        use std::sync::atomic::{AtomicUsize, Ordering};

        use axum::Router;
        use axum::body::Body;
        use axum::middleware::from_fn_with_state;
        use axum::routing::post;
        use tower::ServiceExt as _;

        use crate::send::{MemoryStore, Sender};

        static RAN: AtomicUsize = AtomicUsize::new(0);
        let api = crate::server::ManagementApi::new(Sender::new(MemoryStore::new()))
            .token(crate::server::Token::new("t").unwrap(), Principal::Admin)
            .into_state();
        let stand_in = || async {
            RAN.fetch_add(1, Ordering::SeqCst);
            StatusCode::OK
        };
        let router: Router = Router::new()
            .route("/webhooks/{id}/test", post(stand_in))
            .route("/webhooks/{id}/pause", post(stand_in))
            .route_layer(from_fn_with_state(Arc::clone(&api), layer::<MemoryStore>))
            .with_state(api);
        let send = |path: &'static str| {
            let request = http::Request::post(path)
                .header("authorization", "Bearer t")
                .body(Body::empty())
                .unwrap();
            router.clone().oneshot(request)
        };
        for n in 1..=5u32 {
            let response = send("/webhooks/x/test").await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            assert_eq!(response.headers()["x-ratelimit-limit"], "5");
            assert_eq!(
                response.headers()["x-ratelimit-remaining"],
                (5 - n).to_string()
            );
        }
        let refused = send("/webhooks/x/test").await.unwrap();
        assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
        assert!(refused.headers().contains_key(http::header::RETRY_AFTER));
        assert_eq!(refused.headers()["x-ratelimit-remaining"], "0");
        assert_eq!(RAN.load(Ordering::SeqCst), 5, "the 6th never ran");
        let config = send("/webhooks/x/pause").await.unwrap();
        assert_eq!(config.status(), StatusCode::OK);
        assert_eq!(config.headers()["x-ratelimit-limit"], "10");
    }

    #[tokio::test]
    async fn a_window_counts_up_to_its_max_then_reopens() {
        let store = MemoryRateLimitStore::new();
        let limit = RateLimit::per_minute(2).unwrap();
        let t = |s: i64| Timestamp::from_unix(1_000 + s);
        let first = store.hit("b", limit, t(0)).await.unwrap();
        assert_eq!((first.counted, first.hits), (true, 1));
        assert!(store.hit("b", limit, t(30)).await.unwrap().counted);
        let full = store.hit("b", limit, t(59)).await.unwrap();
        assert_eq!((full.counted, full.hits), (false, 2));
        assert_eq!(full.window_start, t(0));
        assert!(store.hit("other", limit, t(59)).await.unwrap().counted);
        let reopened = store.hit("b", limit, t(60)).await.unwrap();
        assert_eq!((reopened.counted, reopened.hits), (true, 1));
        assert_eq!(reopened.window_start, t(60));
    }
}
