//! [`Endpoint`]: where deliveries go and how they are signed, paced and filtered.

use std::fmt;
use std::num::NonZeroU32;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::Secret;
use crate::event::EventMode;
use crate::json::WriterOptions;
use crate::profile::Profile;
use crate::retry::{AutoDisable, CircuitBreakerBuilder, RateLimit, RetryPolicy, UnixMillis};
use crate::scheme::{ApiKey, Scheme};

use super::store::TypePattern;
use super::{Batching, DeliveryOrder, EndpointId, EndpointKey, Owner, Throttle};

/// Whether an endpoint receives deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndpointStatus {
    /// Receives new messages and is delivered to.
    Active,
    /// Receives new messages; its deliveries wait until it is active again.
    Paused,
    /// Receives nothing new; its pending deliveries wait (they are not lost) until it is
    /// re-enabled. Set by `410 Gone` or by hand.
    Disabled,
    /// Registered, waiting for the verification handshake; receives nothing yet.
    PendingVerification,
}

impl EndpointStatus {
    /// A stable name for stores and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
            Self::PendingVerification => "pending_verification",
        }
    }

    /// The status named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Active,
            Self::Paused,
            Self::Disabled,
            Self::PendingVerification,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// How an endpoint's bodies are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum JsonMode {
    /// Survives `JSON.stringify(JSON.parse(body))` unchanged (the default).
    #[default]
    JavaScript,
    /// Survives Python's `json.dumps(json.loads(body), separators=(',', ':'))`: non-ASCII
    /// escaped, Python's number formatting. For receivers that verify `json.dumps` output.
    PythonAscii,
}

impl JsonMode {
    /// The writer options for this mode.
    pub fn writer_options(self) -> WriterOptions {
        match self {
            Self::JavaScript => WriterOptions::javascript(),
            Self::PythonAscii => WriterOptions::python_ascii(),
        }
    }

    /// A small stable number for stores.
    pub fn code(self) -> u8 {
        match self {
            Self::JavaScript => 0,
            Self::PythonAscii => 1,
        }
    }
}

/// Which event types an endpoint subscribes to.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFilter {
    patterns: Vec<TypePattern>,
}

impl EventFilter {
    /// Every event type.
    pub fn all() -> Self {
        EventFilter::default()
    }

    /// Adds a pattern: an exact type (`job.completed`), a wildcard (`job.*`), or `*` (all).
    pub fn or(mut self, pattern: &str) -> Self {
        let pattern = TypePattern::parse(pattern);
        if pattern == TypePattern::Prefix(String::new()) {
            self.patterns.clear();
        }
        self.patterns.push(pattern);
        self
    }

    /// Whether `event_type` passes (an empty filter passes everything).
    pub fn matches(&self, event_type: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|p| p.matches(event_type))
    }

    /// The patterns as written (`job.*`, `task.created`); empty means all.
    pub fn patterns(&self) -> Vec<String> {
        self.patterns.iter().map(ToString::to_string).collect()
    }
}

/// A signing secret and, for a secret being rotated out, when it stops signing.
#[derive(Debug, Clone)]
pub struct SigningSecret {
    secret: Secret,
    until: Option<UnixMillis>,
}

impl SigningSecret {
    /// `secret`, signing until `until` (`None`: for good).
    pub fn new(secret: Secret, until: Option<UnixMillis>) -> Self {
        SigningSecret { secret, until }
    }

    /// The secret.
    pub fn secret(&self) -> &Secret {
        &self.secret
    }

    /// When this secret stops signing (`None`: never).
    pub fn until(&self) -> Option<UnixMillis> {
        self.until
    }

    /// Whether it still signs at `now`.
    pub fn is_active(&self, now: UnixMillis) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// One receiving endpoint: URL, profile, secrets, subscriptions, status and limits.
///
/// ```
/// use hookrelay::Secret;
/// use hookrelay::profile::Profile;
/// use hookrelay::send::{Endpoint, JsonMode};
///
/// let endpoint = Endpoint::builder("https://example.com/webhooks", Profile::TaskHub)
///     .secret(Secret::from_raw("your-secret-key")?)
///     .subscribe("task.*")
///     .json(JsonMode::JavaScript)
///     .name("billing")
///     .build()?;
/// assert!(endpoint.subscribes_to("task.created"));
/// assert!(!endpoint.subscribes_to("system.error"));
/// // task-hub's documented limit: 60 requests a minute.
/// assert_eq!(endpoint.rate_limit().map(|l| l.requests()), Some(60));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Endpoint {
    id: EndpointId,
    url: url::Url,
    profile: Profile,
    api_key: Option<ApiKey>,
    secrets: Vec<SigningSecret>,
    filter: EventFilter,
    status: EndpointStatus,
    rate_limit: Option<RateLimit>,
    concurrency: NonZeroU32,
    json: JsonMode,
    headers: http::HeaderMap,
    name: Option<String>,
    description: Option<String>,
    policy: RetryPolicy,
    ordering: DeliveryOrder,
    throttle: Option<Throttle>,
    auto_disable: Option<Duration>,
    breaker: Option<CircuitBreakerBuilder>,
    status_note: Option<String>,
    batching: Option<Batching>,
    failing_since: Option<UnixMillis>,
    owner: Option<Owner>,
    key: Option<EndpointKey>,
    mode: EventMode,
    event_headers: bool,
    created_at: Option<UnixMillis>,
}

impl fmt::Debug for Endpoint {
    /// The URL's scheme and host only; secrets and header values never.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("scheme", &self.url.scheme())
            .field("host", &self.url.host_str().unwrap_or(""))
            .field("profile", &self.profile)
            .field("secrets", &self.secrets.len())
            .field("filter", &self.filter.patterns())
            .field("status", &self.status)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("key", &self.key)
            .field("mode", &self.mode)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

impl Endpoint {
    /// A builder for an endpoint at `url` speaking `profile`.
    pub fn builder(url: impl Into<String>, profile: Profile) -> EndpointBuilder {
        EndpointBuilder {
            id: None,
            url: url.into(),
            profile,
            api_key: None,
            secrets: Vec::new(),
            filter: EventFilter::all(),
            status: EndpointStatus::Active,
            rate_limit: RateChoice::Profile,
            concurrency: 16,
            json: JsonMode::JavaScript,
            headers: Vec::new(),
            name: None,
            description: None,
            policy: None,
            ordering: DeliveryOrder::Unordered,
            throttle: (profile == Profile::ProposalGenerator).then(Throttle::job_progress),
            auto_disable: Some(AutoDisable::DEFAULT_WINDOW),
            breaker: None,
            status_note: None,
            status_set: false,
            batching: None,
            failing_since: None,
            owner: None,
            key: None,
            mode: EventMode::Live,
            event_headers: false,
            created_at: None,
        }
    }

    /// A builder holding this endpoint's settings, to change some of them.
    pub fn to_builder(&self) -> EndpointBuilder {
        EndpointBuilder {
            id: Some(self.id.clone()),
            url: self.url.to_string(),
            profile: self.profile,
            api_key: self.api_key.clone(),
            secrets: self.secrets.clone(),
            filter: self.filter.clone(),
            status: self.status,
            rate_limit: match self.rate_limit {
                Some(limit) => RateChoice::Limit(limit),
                None => RateChoice::None,
            },
            concurrency: self.concurrency.get(),
            json: self.json,
            headers: self
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
                .collect(),
            name: self.name.clone(),
            description: self.description.clone(),
            policy: Some(self.policy.clone()),
            ordering: self.ordering.clone(),
            throttle: self.throttle.clone(),
            auto_disable: self.auto_disable,
            breaker: self.breaker.clone(),
            status_note: self.status_note.clone(),
            status_set: true,
            batching: self.batching,
            failing_since: self.failing_since,
            owner: self.owner.clone(),
            key: self.key.clone(),
            mode: self.mode,
            event_headers: self.event_headers,
            created_at: self.created_at,
        }
    }

    /// The endpoint's id.
    pub fn id(&self) -> &EndpointId {
        &self.id
    }
    /// Where deliveries are POSTed.
    pub fn url(&self) -> &url::Url {
        &self.url
    }
    /// The profile: envelope, headers and scheme.
    pub fn profile(&self) -> Profile {
        self.profile
    }
    /// TaskOn's API key, if set.
    pub fn api_key(&self) -> Option<&ApiKey> {
        self.api_key.as_ref()
    }
    /// Every configured secret, current first.
    pub fn secrets(&self) -> &[SigningSecret] {
        &self.secrets
    }
    /// The secrets that sign at `now`, current first.
    pub fn active_secrets(&self, now: UnixMillis) -> Vec<&Secret> {
        self.secrets
            .iter()
            .filter(|s| s.is_active(now))
            .map(SigningSecret::secret)
            .collect()
    }
    /// The subscription filter.
    pub fn filter(&self) -> &EventFilter {
        &self.filter
    }
    /// Whether events of `event_type` go to this endpoint.
    pub fn subscribes_to(&self, event_type: &str) -> bool {
        self.filter.matches(event_type)
    }
    /// The status.
    pub fn status(&self) -> EndpointStatus {
        self.status
    }
    /// The rate limit, if any (default: the profile's, e.g. task-hub's 60/min).
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }
    /// How many attempts may be in flight to this endpoint at once.
    pub fn concurrency(&self) -> NonZeroU32 {
        self.concurrency
    }
    /// How bodies are written.
    pub fn json_mode(&self) -> JsonMode {
        self.json
    }
    /// Extra headers sent with every attempt.
    pub fn headers(&self) -> &http::HeaderMap {
        &self.headers
    }
    /// A name for people.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// A description for people.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }
    /// The retry policy (default: the profile's).
    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }
    /// The signing scheme; an error if the profile's scheme cannot be built (TaskOn without
    /// its API key — [`build`](EndpointBuilder::build) refuses that, so only an endpoint
    /// read back from a damaged store can hit it). Never falls back to another scheme: the
    /// dispatcher records such an attempt as [`AttemptError::Unsignable`](super::store::AttemptError::Unsignable).
    pub fn scheme(&self) -> Result<Box<dyn Scheme>, EndpointError> {
        self.profile
            .scheme(self.api_key.clone())
            .map_err(|_| EndpointError::MissingApiKey)
    }

    /// Ordering of its deliveries (off by default).
    pub fn ordering(&self) -> &DeliveryOrder {
        &self.ordering
    }

    /// Progress-event throttling, if on (Proposal Generator endpoints: `job.progress`).
    pub fn throttle(&self) -> Option<&Throttle> {
        self.throttle.as_ref()
    }

    /// How long the endpoint may fail continuously before it is disabled (default 5 days);
    /// `None`: never.
    pub fn auto_disable_after(&self) -> Option<Duration> {
        self.auto_disable
    }

    /// The circuit breaker's settings, if one pauses this endpoint while it fails.
    pub fn circuit_breaker(&self) -> Option<&CircuitBreakerBuilder> {
        self.breaker.as_ref()
    }

    /// Batching, if the endpoint asked for it (off by default).
    pub fn batching(&self) -> Option<Batching> {
        self.batching
    }

    /// Why the endpoint has its status, when the status was set for a reason (a failed
    /// verification handshake, an automatic disable).
    pub fn status_note(&self) -> Option<&str> {
        self.status_note.as_deref()
    }

    /// When its current run of failures began, as the dispatchers last recorded it (the
    /// clock of [`auto_disable_after`](Self::auto_disable_after)); `None` while healthy.
    pub fn failing_since(&self) -> Option<UnixMillis> {
        self.failing_since
    }

    /// Who the endpoint belongs to, if set ([`EndpointBuilder::owner`]).
    pub fn owner(&self) -> Option<&Owner> {
        self.owner.as_ref()
    }

    /// The caller's key for it, if set ([`EndpointBuilder::key`]).
    pub fn key(&self) -> Option<&EndpointKey> {
        self.key.as_ref()
    }

    /// Whether it receives live events or test events ([`EndpointBuilder::mode`]; live by
    /// default).
    pub fn mode(&self) -> EventMode {
        self.mode
    }

    /// Whether each request names its event in `X-Hookrelay-Event-Id` and
    /// `X-Hookrelay-Event-Type` ([`EndpointBuilder::event_headers`]; off by default).
    pub fn event_headers(&self) -> bool {
        self.event_headers
    }

    /// When it was registered, by the clock of the [`Sender`](crate::send::Sender) that
    /// registered it ([`Sender::add_endpoint`](crate::send::Sender::add_endpoint) sets it;
    /// updates keep it). `None` for an endpoint not registered yet, or read by your own
    /// store from settings written before hookrelay kept this time.
    pub fn created_at(&self) -> Option<UnixMillis> {
        self.created_at
    }

    pub(crate) fn with_created_at(mut self, at: UnixMillis) -> Self {
        self.created_at = Some(at);
        self
    }

    pub(crate) fn with_failing_since(mut self, since: Option<UnixMillis>) -> Self {
        self.failing_since = since;
        self
    }

    pub(crate) fn with_status(mut self, status: EndpointStatus) -> Self {
        self.status = status;
        self
    }

    pub(crate) fn with_status_note(mut self, status: EndpointStatus, note: Option<String>) -> Self {
        self.status = status;
        self.status_note = note;
        self
    }
}

#[derive(Debug, Clone)]
enum RateChoice {
    Profile,
    Limit(RateLimit),
    None,
}

/// Builds an [`Endpoint`]; setters never fail, [`build`](Self::build) checks everything.
#[derive(Debug, Clone)]
pub struct EndpointBuilder {
    id: Option<EndpointId>,
    url: String,
    profile: Profile,
    api_key: Option<ApiKey>,
    secrets: Vec<SigningSecret>,
    filter: EventFilter,
    status: EndpointStatus,
    rate_limit: RateChoice,
    concurrency: u32,
    json: JsonMode,
    headers: Vec<(String, String)>,
    name: Option<String>,
    description: Option<String>,
    policy: Option<RetryPolicy>,
    ordering: DeliveryOrder,
    throttle: Option<Throttle>,
    auto_disable: Option<Duration>,
    breaker: Option<CircuitBreakerBuilder>,
    status_note: Option<String>,
    status_set: bool,
    batching: Option<Batching>,
    failing_since: Option<UnixMillis>,
    owner: Option<Owner>,
    key: Option<EndpointKey>,
    mode: EventMode,
    event_headers: bool,
    created_at: Option<UnixMillis>,
}

impl EndpointBuilder {
    /// Uses `id` instead of a generated `ep_…` id.
    pub fn id(mut self, id: EndpointId) -> Self {
        self.id = Some(id);
        self
    }
    /// Replaces the URL.
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = url.into();
        self
    }
    /// Adds the current signing secret (it goes first; earlier current secrets follow it).
    pub fn secret(mut self, secret: Secret) -> Self {
        self.secrets.insert(
            0,
            SigningSecret {
                secret,
                until: None,
            },
        );
        self
    }
    /// Adds a secret being rotated out: it keeps signing (alongside the current one, where
    /// the scheme carries several signatures) until `until`.
    pub fn retiring_secret(mut self, secret: Secret, until: SystemTime) -> Self {
        let ms = until
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_millis();
        self.secrets.push(SigningSecret {
            secret,
            until: Some(UnixMillis::from_millis(
                u64::try_from(ms).unwrap_or(u64::MAX),
            )),
        });
        self
    }
    /// Replaces every secret (for stores that load an endpoint back).
    pub fn secrets(mut self, secrets: Vec<SigningSecret>) -> Self {
        self.secrets = secrets;
        self
    }
    /// TaskOn's `X-API-Key`.
    pub fn api_key(mut self, key: ApiKey) -> Self {
        self.api_key = Some(key);
        self
    }
    /// Subscribes to an event type: exact (`job.completed`), wildcard (`job.*`) or `*`. With
    /// none, the endpoint receives every type.
    pub fn subscribe(mut self, pattern: &str) -> Self {
        self.filter = self.filter.or(pattern);
        self
    }
    /// Replaces every subscription with `filter` (an empty filter receives every type).
    pub fn filter(mut self, filter: EventFilter) -> Self {
        self.filter = filter;
        self
    }
    /// Drops every custom header (to set them anew).
    pub fn without_headers(mut self) -> Self {
        self.headers.clear();
        self
    }
    /// Sets the status (default active).
    pub fn status(mut self, status: EndpointStatus) -> Self {
        self.status = status;
        self.status_set = true;
        self
    }
    /// Paces attempts to this endpoint.
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = RateChoice::Limit(limit);
        self
    }
    /// No rate limit, even where the profile has one.
    pub fn without_rate_limit(mut self) -> Self {
        self.rate_limit = RateChoice::None;
        self
    }
    /// At most `n` attempts in flight at once (default 16; at least 1).
    pub fn concurrency(mut self, n: u32) -> Self {
        self.concurrency = n;
        self
    }
    /// How bodies are written (default JavaScript-compatible).
    pub fn json(mut self, mode: JsonMode) -> Self {
        self.json = mode;
        self
    }
    /// An extra header for every attempt. Signature, id and content headers are refused at
    /// `build` (the profile sets them).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    /// A name for people.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
    /// A description for people.
    pub fn description(mut self, text: impl Into<String>) -> Self {
        self.description = Some(text.into());
        self
    }
    /// Replaces the profile's retry policy.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = Some(policy);
        self
    }

    /// Checks the settings.
    ///
    /// Delivers one at a time in publish order, per endpoint or per key (off by default;
    /// see [`DeliveryOrder`] for the head-of-line trade-off).
    pub fn ordering(mut self, ordering: DeliveryOrder) -> Self {
        self.ordering = ordering;
        self
    }

    /// Throttles progress events (Proposal Generator endpoints default to
    /// [`Throttle::job_progress`]).
    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.throttle = Some(throttle);
        self
    }

    /// Sends every progress event as it comes.
    pub fn without_throttle(mut self) -> Self {
        self.throttle = None;
        self
    }

    /// Disables the endpoint once it has failed continuously for `window` (default 5
    /// days); any success resets the clock. `410 Gone` disables at once regardless.
    pub fn auto_disable_after(mut self, window: Duration) -> Self {
        self.auto_disable = Some(window);
        self
    }

    /// Never disables the endpoint for failing (`410 Gone` still does).
    pub fn never_auto_disable(mut self) -> Self {
        self.auto_disable = None;
        self
    }

    /// Pauses the endpoint while it fails, as `breaker` decides, and probes it with one
    /// delivery at a time until it answers again. Paused deliveries wait; none is dropped
    /// and no attempt is spent. Off by default.
    pub fn circuit_breaker(mut self, breaker: CircuitBreakerBuilder) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Why the endpoint has its status ([`Endpoint::status_note`]), e.g. as a store read it
    /// back.
    pub fn status_note(mut self, note: impl Into<String>) -> Self {
        self.status_note = Some(note.into());
        self
    }

    /// When its current run of failures began ([`Endpoint::failing_since`]), e.g. as a
    /// store read it back.
    pub fn failing_since(mut self, since: UnixMillis) -> Self {
        self.failing_since = Some(since);
        self
    }

    /// Who the endpoint belongs to (your customer): endpoint lists and log queries can be
    /// limited to one owner.
    pub fn owner(mut self, owner: Owner) -> Self {
        self.owner = Some(owner);
        self
    }

    /// A key of your choosing to look the endpoint up by
    /// ([`Sender::endpoint_by_key`](crate::send::Sender::endpoint_by_key)); unique among
    /// its owner's endpoints, which the store checks when the endpoint is saved.
    pub fn key(mut self, key: EndpointKey) -> Self {
        self.key = Some(key);
        self
    }

    /// No owner.
    pub fn without_owner(mut self) -> Self {
        self.owner = None;
        self
    }

    /// No key.
    pub fn without_key(mut self) -> Self {
        self.key = None;
        self
    }

    /// Receives live events (the default) or test events only: an event published with
    /// [`OutgoingEvent::test`](crate::event::OutgoingEvent::test) goes to test endpoints, any
    /// other to live ones (Task Hub's `testMode`). Test sends reach an endpoint whatever its
    /// mode.
    pub fn mode(mut self, mode: EventMode) -> Self {
        self.mode = mode;
        self
    }

    /// Names the event in two headers on every request, whatever the profile:
    /// `X-Hookrelay-Event-Id` and `X-Hookrelay-Event-Type` (off by default: the profiles'
    /// own headers and envelopes carry them as their senders do). `hookrelay relay` turns it
    /// on, so the provider's delivery id and event type reach the inside in headers.
    pub fn event_headers(mut self, on: bool) -> Self {
        self.event_headers = on;
        self
    }

    /// When the endpoint was registered ([`Endpoint::created_at`]), e.g. as a store read it
    /// back; [`Sender::add_endpoint`](crate::send::Sender::add_endpoint) sets it when unset.
    pub fn created_at(mut self, at: UnixMillis) -> Self {
        self.created_at = Some(at);
        self
    }

    /// Sends events in batches (see [`Batching`] for the wire shape). Off by default.
    pub fn batch(mut self, batching: Batching) -> Self {
        self.batching = Some(batching);
        self
    }

    /// The URL must parse as an absolute `http` or `https` URL without credentials (whether
    /// its address may be delivered to is the transport's SSRF guard's call, at send time).
    pub fn build(self) -> Result<Endpoint, EndpointError> {
        let url = url::Url::parse(&self.url).map_err(|_| EndpointError::InvalidUrl)?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EndpointError::UnsupportedScheme);
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(EndpointError::CredentialsInUrl);
        }
        if url.host().is_none() {
            return Err(EndpointError::InvalidUrl);
        }
        if self.secrets.is_empty() {
            return Err(EndpointError::NoSecret);
        }
        if self.profile == Profile::TaskOn && self.api_key.is_none() {
            return Err(EndpointError::MissingApiKey);
        }
        let concurrency = NonZeroU32::new(self.concurrency).ok_or(EndpointError::Concurrency)?;
        let mut headers = http::HeaderMap::with_capacity(self.headers.len());
        for (name, value) in &self.headers {
            let header = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| EndpointError::InvalidHeader(name.clone()))?;
            if is_reserved(header.as_str()) {
                return Err(EndpointError::ReservedHeader(name.clone()));
            }
            let value = http::HeaderValue::from_str(value)
                .map_err(|_| EndpointError::InvalidHeader(name.clone()))?;
            headers.append(header, value);
        }
        if let Some(breaker) = &self.breaker {
            breaker
                .clone()
                .build()
                .map_err(|_| EndpointError::CircuitBreaker)?;
        }
        // Proposal Generator endpoints wait for the `webhook.verify` handshake unless the
        // caller chose a status.
        let status = if self.status_set || self.profile != Profile::ProposalGenerator {
            self.status
        } else {
            EndpointStatus::PendingVerification
        };
        let policy = self.policy.unwrap_or_else(|| self.profile.retry_policy());
        let rate_limit = match self.rate_limit {
            RateChoice::Profile => policy.rate_limit(),
            RateChoice::Limit(limit) => Some(limit),
            RateChoice::None => None,
        };
        Ok(Endpoint {
            id: self.id.unwrap_or_else(EndpointId::generate),
            url,
            profile: self.profile,
            api_key: self.api_key,
            secrets: self.secrets,
            filter: self.filter,
            status,
            rate_limit,
            concurrency,
            json: self.json,
            headers,
            name: self.name,
            description: self.description,
            policy,
            ordering: self.ordering,
            throttle: self.throttle,
            auto_disable: self.auto_disable,
            breaker: self.breaker,
            status_note: self.status_note,
            batching: self.batching,
            failing_since: self.failing_since,
            owner: self.owner,
            key: self.key,
            mode: self.mode,
            event_headers: self.event_headers,
            created_at: self.created_at,
        })
    }
}

/// Headers the profile and scheme own.
fn is_reserved(name: &str) -> bool {
    const RESERVED: &[&str] = &[
        "content-type",
        "content-length",
        "host",
        "transfer-encoding",
        "x-webhook-signature",
        "x-webhook-id",
        "x-webhook-attempt",
        "x-webhook-event",
        "x-signature",
        "x-api-key",
        "x-hub-signature",
        "x-hub-signature-256",
        "x-delivery-id",
        "x-event-type",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "stripe-signature",
        "x-github-event",
        "x-github-delivery",
    ];
    RESERVED.contains(&name)
}

/// Why an endpoint could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum EndpointError {
    /// The URL does not parse as an absolute URL with a host.
    InvalidUrl,
    /// Not `http` or `https`.
    UnsupportedScheme,
    /// The URL carries a user name or password.
    CredentialsInUrl,
    /// No signing secret.
    NoSecret,
    /// A TaskOn endpoint without its API key.
    MissingApiKey,
    /// A concurrency cap of zero.
    Concurrency,
    /// A custom header name or value HTTP cannot carry (the name is kept).
    InvalidHeader(String),
    /// A custom header the profile sets itself (the name is kept).
    ReservedHeader(String),
    /// The circuit breaker's settings are out of range.
    CircuitBreaker,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidUrl => f.write_str("the endpoint url is not an absolute url with a host"),
            Self::UnsupportedScheme => f.write_str("endpoint urls must be http or https"),
            Self::CredentialsInUrl => f.write_str("endpoint urls must not carry credentials"),
            Self::NoSecret => f.write_str("an endpoint needs a signing secret"),
            Self::MissingApiKey => f.write_str("a taskon endpoint needs its api key"),
            Self::Concurrency => f.write_str("the concurrency cap must be at least 1"),
            Self::InvalidHeader(name) => write!(f, "custom header {name} is not valid http"),
            Self::ReservedHeader(name) => {
                write!(f, "custom header {name} is set by the profile")
            }
            Self::CircuitBreaker => f.write_str("the circuit breaker settings are out of range"),
        }
    }
}

impl std::error::Error for EndpointError {}
