//! [`ReqwestTransport`]: the dispatcher's HTTP client, with the SSRF guard (feature `reqwest`).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use super::ssrf::AddressPolicy;
use super::{
    OutboundRequest, RESPONSE_BODY_CAP, Refusal, Transport, TransportError, TransportResponse,
};

/// A boxed lookup future, as [`HostResolver::lookup`] returns it.
pub type Lookup<'a> = Pin<Box<dyn Future<Output = io::Result<Vec<IpAddr>>> + Send + 'a>>;

/// Turns a host name into addresses. The transport vets every answer with its
/// [`AddressPolicy`] and connects only to the vetted addresses.
pub trait HostResolver: Send + Sync + 'static {
    /// The addresses `host` resolves to now.
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a>;
}

/// The operating system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl HostResolver for SystemResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a> {
        Box::pin(async move {
            let addrs = tokio::net::lookup_host((host, 0)).await?;
            Ok(addrs.map(|a| a.ip()).collect())
        })
    }
}

/// Fixed answers, for tests: each host has a list of answers, one per lookup, the last
/// repeating (so a second lookup can answer differently, as a rebinding attacker's DNS does).
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    answers: Arc<Mutex<HashMap<String, Answers>>>,
}

/// Lookups made so far, and the answers in order (`None`: the lookup fails).
type Answers = (usize, Vec<Option<Vec<IpAddr>>>);

impl StaticResolver {
    /// No names known.
    pub fn new() -> Self {
        Self::default()
    }

    /// `host` answers `addrs` (after any answers given before).
    #[must_use]
    pub fn answer(self, host: &str, addrs: &[IpAddr]) -> Self {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host.to_ascii_lowercase())
            .or_default()
            .1
            .push(Some(addrs.to_vec()));
        self
    }

    /// `host`'s next lookup fails, as a time-out or a server failure does (after any answers
    /// given before).
    #[must_use]
    pub fn fail(self, host: &str) -> Self {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(host.to_ascii_lowercase())
            .or_default()
            .1
            .push(None);
        self
    }

    /// How many lookups of `host` were made.
    pub fn lookups(&self, host: &str) -> usize {
        self.answers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&host.to_ascii_lowercase())
            .map_or(0, |(n, _)| *n)
    }
}

impl HostResolver for StaticResolver {
    fn lookup<'a>(&'a self, host: &'a str) -> Lookup<'a> {
        let answer = {
            let mut answers = self.answers.lock().unwrap_or_else(|p| p.into_inner());
            match answers.get_mut(&host.to_ascii_lowercase()) {
                Some((n, list)) if !list.is_empty() => {
                    let i = (*n).min(list.len() - 1);
                    *n += 1;
                    list[i]
                        .clone()
                        .ok_or_else(|| io::Error::new(io::ErrorKind::TimedOut, "lookup failed"))
                }
                _ => Err(io::Error::new(io::ErrorKind::NotFound, "unknown host")),
            }
        };
        Box::pin(async move { answer })
    }
}

/// The guard's error inside reqwest's error chain; never shown with an address.
#[derive(Debug)]
struct Refused(Refusal);

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Refused {}

/// A lookup that failed or found no address: transient (a DNS time-out, a server failure, a
/// name not yet published), so the attempt is a connection failure and retried.
#[derive(Debug)]
struct LookupFailed;

impl fmt::Display for LookupFailed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the host name did not resolve")
    }
}

impl std::error::Error for LookupFailed {}

/// reqwest's resolver hook: resolve, vet, and hand over only the vetted addresses.
struct GuardedResolver {
    policy: AddressPolicy,
    resolver: Arc<dyn HostResolver>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let resolver = Arc::clone(&self.resolver);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs = resolver
                .lookup(&host)
                .await
                .map_err(|_| -> BoxError { Box::new(LookupFailed) })?;
            if addrs.is_empty() {
                return Err(Box::new(LookupFailed) as BoxError);
            }
            let vetted: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|ip| policy.permits(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if vetted.is_empty() {
                return Err(Box::new(Refused(Refusal::NonPublicAddress)) as BoxError);
            }
            Ok(Box::new(vetted.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a transport could not be built (the TLS backend failed to start, or a root
/// certificate was refused). The cause is its [`source`](std::error::Error::source).
#[derive(Debug)]
pub struct TransportBuildError(reqwest::Error);

impl fmt::Display for TransportBuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("cannot build the http client")
    }
}

impl std::error::Error for TransportBuildError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Gives rustls a process-wide crypto provider if it has none: reqwest 0.13 without its
/// `rustls` (aws-lc-rs) feature takes rustls' default provider, and cannot build a client
/// without one. An application that installed its own (aws-lc-rs, FIPS, …) keeps it.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may install one in between; then that one stays.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// The HTTP transport over reqwest, with the SSRF guard on by default.
///
/// Built with [`new`](Self::new) or [`builder`](Self::builder), it makes its own client:
///
/// - every URL is checked before any connection ([`AddressPolicy::check_url`]): `http`/`https`
///   only, `https` unless [`allow_http`](AddressPolicy::allow_http), no credentials, IP
///   literals vetted in every encoding;
/// - names are resolved by the transport's [`HostResolver`], every answer is vetted, and the
///   connection goes only to the vetted addresses (pinned: reqwest never resolves again);
/// - redirects are not followed (a 3xx is the attempt's answer, classified as a failure);
/// - proxies from the environment (`HTTP_PROXY`, …) are ignored; a proxy is used only when
///   given to [`ReqwestTransportBuilder::proxy`] — the proxy then resolves the destination,
///   so only the URL check applies;
/// - the response body is read up to [`RESPONSE_BODY_CAP`]; no decompression is enabled
///   (no `Accept-Encoding` is sent), so the cap bounds what is read and what is kept;
/// - the attempt's timeout is a total deadline over connecting, sending and reading;
/// - TLS is rustls; certificates are checked by the platform's verifier (on Linux the
///   system's root store, so a minimal container needs its CA bundle, e.g. Debian's
///   `ca-certificates`), plus any [`root_certificate`](ReqwestTransportBuilder::root_certificate).
///
/// rustls needs a crypto provider: building the transport installs *ring*'s as rustls'
/// process-wide default when none is installed yet (install your own first, e.g. aws-lc-rs,
/// to use it instead). Other `reqwest::Client`s in the process then use it too.
///
/// [`from_client`](Self::from_client) accepts a client you built. Then only the URL check
/// (scheme, credentials, IP literals, reserved names) is enforced: DNS answers, redirects,
/// proxies and decompression are whatever that client does. Build it with
/// `redirect(Policy::none())` and `no_proxy()` at least.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    policy: AddressPolicy,
}

/// Configures a [`ReqwestTransport`].
pub struct ReqwestTransportBuilder {
    policy: AddressPolicy,
    resolver: Arc<dyn HostResolver>,
    proxy: Option<reqwest::Proxy>,
    roots: Vec<reqwest::Certificate>,
    idle_per_host: usize,
}

/// Idle connections kept per host by default.
const IDLE_PER_HOST: usize = 256;

impl fmt::Debug for ReqwestTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransportBuilder")
            .field("policy", &self.policy)
            .field("proxy", &self.proxy.is_some())
            .field("roots", &self.roots.len())
            .field("idle_per_host", &self.idle_per_host)
            .finish_non_exhaustive()
    }
}

impl ReqwestTransportBuilder {
    /// Replaces the address policy (default: public addresses over https only).
    pub fn policy(mut self, policy: AddressPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Resolves names with `resolver` (default: the system's).
    pub fn resolver(mut self, resolver: impl HostResolver) -> Self {
        self.resolver = Arc::new(resolver);
        self
    }

    /// Sends through this proxy (never one from the environment).
    pub fn proxy(mut self, proxy: reqwest::Proxy) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// Also trusts `root` (e.g. a private CA's certificate, from
    /// [`reqwest::Certificate::from_pem`]), besides the platform's roots.
    pub fn root_certificate(mut self, root: reqwest::Certificate) -> Self {
        self.roots.push(root);
        self
    }

    /// Keeps up to `n` idle connections open per host for the next attempts (default 256).
    ///
    /// A dispatcher whose concurrency exceeds this, sending to one host, closes the
    /// connections above it after each attempt and opens new ones for the next: raise it to
    /// the dispatcher's concurrency when thousands of endpoints share a host.
    ///
    /// ```
    /// use hookrelay::send::ReqwestTransport;
    ///
    /// let transport = ReqwestTransport::builder()
    ///     .idle_connections_per_host(10_000)
    ///     .build()?;
    /// # let _ = transport;
    /// # Ok::<(), hookrelay::send::TransportBuildError>(())
    /// ```
    pub fn idle_connections_per_host(mut self, n: usize) -> Self {
        self.idle_per_host = n;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<ReqwestTransport, TransportBuildError> {
        ensure_crypto_provider();
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: self.policy.clone(),
                resolver: self.resolver,
            }))
            .pool_max_idle_per_host(self.idle_per_host)
            .tls_certs_merge(self.roots);
        if let Some(proxy) = self.proxy {
            builder = builder.proxy(proxy);
        }
        Ok(ReqwestTransport {
            client: builder.build().map_err(TransportBuildError)?,
            policy: self.policy,
        })
    }
}

impl ReqwestTransport {
    /// The default: public addresses over https, the system resolver, no proxy.
    pub fn new() -> Result<Self, TransportBuildError> {
        Self::builder().build()
    }

    /// A builder starting from the defaults.
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder {
            policy: AddressPolicy::default(),
            resolver: Arc::new(SystemResolver),
            proxy: None,
            roots: Vec::new(),
            idle_per_host: IDLE_PER_HOST,
        }
    }

    /// Uses a client you built; see the type docs for what the guard enforces then.
    pub fn from_client(client: reqwest::Client, policy: AddressPolicy) -> Self {
        ReqwestTransport { client, policy }
    }

    async fn exchange(
        &self,
        request: OutboundRequest,
    ) -> Result<TransportResponse, TransportError> {
        let mut response = self
            .client
            .post(request.url)
            .headers(request.headers)
            .body(request.body)
            .send()
            .await
            .map_err(classify)?;
        let status = response.status().as_u16();
        let headers = TransportResponse::keep_headers(response.headers());
        let mut body = Vec::new();
        while body.len() < RESPONSE_BODY_CAP {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = RESPONSE_BODY_CAP - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                Ok(None) => break,
                // The status arrived; a body cut short does not change the answer.
                Err(_) => break,
            }
        }
        Ok(TransportResponse {
            status,
            headers,
            body: body.into(),
        })
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: OutboundRequest) -> Result<TransportResponse, TransportError> {
        self.policy
            .check_url(&request.url)
            .map_err(TransportError::Refused)?;
        let deadline = request.timeout;
        match tokio::time::timeout(deadline, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::Timeout),
        }
    }
}

/// Maps reqwest's error, finding the guard's refusal in its chain.
fn classify(error: reqwest::Error) -> TransportError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        if let Some(Refused(why)) = e.downcast_ref::<Refused>() {
            return TransportError::Refused(*why);
        }
        if e.is::<LookupFailed>() {
            return TransportError::Connection;
        }
        source = e.source();
    }
    if error.is_timeout() {
        TransportError::Timeout
    } else if error.is_connect() || error.is_request() {
        TransportError::Connection
    } else {
        TransportError::Other
    }
}
