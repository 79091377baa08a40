//! The dispatcher's view of HTTP: one [`Transport`] trait, the request it sends and the
//! response (or [`TransportError`]) it gets back.
//!
//! Feature `reqwest` implements it with the SSRF guard ([`ReqwestTransport`](super::ReqwestTransport));
//! tests implement it with a script of answers.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;

/// How much of a response body is kept (and read): 16 KiB.
pub const RESPONSE_BODY_CAP: usize = 16 * 1024;

/// The response headers worth keeping in the attempt log (and for pacing).
pub const LOGGED_RESPONSE_HEADERS: &[&str] = &[
    "content-type",
    "retry-after",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "location",
];

/// One signed POST, ready to go.
#[derive(Clone)]
pub struct OutboundRequest {
    /// Where to send it.
    pub url: url::Url,
    /// Every header, signature included (marked sensitive).
    pub headers: http::HeaderMap,
    /// The exact body bytes that were signed.
    pub body: Bytes,
    /// The total deadline for the attempt: connecting, sending, and reading the response.
    pub timeout: Duration,
}

/// What the attempt log shows instead of a secret-bearing header value.
pub const REDACTED: &str = "[redacted]";

impl OutboundRequest {
    /// Every header as sent, in order, for the attempt log: the values the signing scheme
    /// marked secret-bearing ([`Redact::Yes`](crate::Redact::Yes): signatures, TaskOn's
    /// `X-API-Key`) are replaced by [`REDACTED`]; the profile's and the endpoint's own
    /// headers are kept. Bytes that are not UTF-8 are shown lossily.
    ///
    /// The scheme is the one place that knows which of its headers carry a secret; it marks
    /// them when it signs, and that mark travels with the value
    /// ([`http::HeaderValue::is_sensitive`]).
    ///
    /// ```
    /// use hookrelay::send::{OutboundRequest, REDACTED};
    /// use hookrelay::scheme::{Message, Scheme as _, XHub};
    /// use hookrelay::Secret;
    ///
    /// let signed = XHub::github().sign(&Secret::from_raw("s3cret")?, &Message::new(b"{}"))?;
    /// let mut headers = signed.to_header_map()?;
    /// headers.insert("x-tenant", http::HeaderValue::from_static("acme"));
    /// let request = OutboundRequest {
    ///     url: "https://hooks.example/".parse()?,
    ///     headers,
    ///     body: bytes::Bytes::from_static(b"{}"),
    ///     timeout: std::time::Duration::from_secs(10),
    /// };
    /// let logged = request.logged_headers();
    /// assert!(logged.contains(&("x-hub-signature-256".into(), REDACTED.into())));
    /// assert!(logged.contains(&("x-tenant".into(), "acme".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn logged_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .map(|(name, value)| {
                let shown = if value.is_sensitive() {
                    REDACTED.to_owned()
                } else {
                    String::from_utf8_lossy(value.as_bytes()).into_owned()
                };
                (name.as_str().to_owned(), shown)
            })
            .collect()
    }
}

impl fmt::Debug for OutboundRequest {
    /// Shows the scheme and host only (no path or query), and header names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutboundRequest")
            .field("scheme", &self.url.scheme())
            .field("host", &self.url.host_str().unwrap_or(""))
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("body_len", &self.body.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportResponse {
    /// The status code.
    pub status: u16,
    /// The response headers named in [`LOGGED_RESPONSE_HEADERS`], lowercase, in order.
    pub headers: Vec<(String, String)>,
    /// The start of the body: at most [`RESPONSE_BODY_CAP`] bytes were read.
    pub body: Bytes,
}

impl TransportResponse {
    /// A response with a status and nothing else.
    pub fn status(status: u16) -> Self {
        TransportResponse {
            status,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// The first kept header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Keeps the logged headers of `headers`, values that are not text skipped.
    pub fn keep_headers(headers: &http::HeaderMap) -> Vec<(String, String)> {
        let mut kept = Vec::new();
        for name in LOGGED_RESPONSE_HEADERS {
            for value in headers.get_all(*name) {
                if let Ok(text) = value.to_str() {
                    kept.push(((*name).to_owned(), text.to_owned()));
                }
            }
        }
        kept
    }
}

/// Why an attempt produced no response.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportError {
    /// The total deadline passed (connect, send or a slowly trickling response).
    Timeout,
    /// The connection could not be made or broke (refused, reset, TLS failure, DNS failure).
    Connection,
    /// The SSRF guard refused the destination before any connection was made.
    Refused(Refusal),
    /// Anything else.
    Other,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Timeout => f.write_str("the attempt timed out"),
            Self::Connection => f.write_str("the connection failed"),
            Self::Refused(why) => write!(f, "destination refused: {why}"),
            Self::Other => f.write_str("the request failed"),
        }
    }
}

impl std::error::Error for TransportError {}

/// Why the SSRF guard refused a destination. Never carries the address it refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Refusal {
    /// Not `http` or `https`.
    Scheme,
    /// `http://` while HTTPS is required.
    InsecureScheme,
    /// The URL carries a user name or password.
    Userinfo,
    /// The URL has no host.
    NoHost,
    /// The host is, or resolves only to, a loopback, private, link-local or otherwise
    /// non-public address (or a name reserved for such, like `localhost`).
    NonPublicAddress,
    /// The host name did not resolve. No longer produced by `ReqwestTransport`: a lookup that
    /// fails or finds nothing is transient ([`TransportError::Connection`], retried under the
    /// policy); only addresses that resolve and are refused are a refusal. Kept so that
    /// logs written by earlier releases read back.
    Unresolvable,
}

impl Refusal {
    const ALL: [Refusal; 6] = [
        Self::Scheme,
        Self::InsecureScheme,
        Self::Userinfo,
        Self::NoHost,
        Self::NonPublicAddress,
        Self::Unresolvable,
    ];

    /// A stable name for logs and stores.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheme => "scheme",
            Self::InsecureScheme => "insecure_scheme",
            Self::Userinfo => "userinfo",
            Self::NoHost => "no_host",
            Self::NonPublicAddress => "non_public_address",
            Self::Unresolvable => "unresolvable",
        }
    }

    /// The refusal named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Scheme => "only http and https urls can be delivered to",
            Self::InsecureScheme => "https is required",
            Self::Userinfo => "urls with credentials are refused",
            Self::NoHost => "the url has no host",
            Self::NonPublicAddress => "the destination is not a public address",
            Self::Unresolvable => "the host name did not resolve",
        })
    }
}

/// Sends one request. Implementations must honour `request.timeout` as a total deadline,
/// never follow redirects, and read at most [`RESPONSE_BODY_CAP`] bytes of the body.
pub trait Transport: Send + Sync + 'static {
    /// Sends `request` and returns the response, or why there is none.
    fn send(
        &self,
        request: OutboundRequest,
    ) -> impl Future<Output = Result<TransportResponse, TransportError>> + Send;
}

impl<T: Transport> Transport for std::sync::Arc<T> {
    fn send(
        &self,
        request: OutboundRequest,
    ) -> impl Future<Output = Result<TransportResponse, TransportError>> + Send {
        (**self).send(request)
    }
}
