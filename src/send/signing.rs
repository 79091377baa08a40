//! One attempt's request: the profile's headers, the endpoint's own, and the scheme's
//! signatures over the exact body, with a fresh timestamp. The dispatcher and the
//! verification handshake build every request here.

use std::time::Duration;

use bytes::Bytes;

use super::{Endpoint, OutboundRequest};
use crate::Timestamp;
use crate::profile::RequestContext;
use crate::retry::UnixMillis;
use crate::scheme::Scheme;

/// Why a request could not be built: no active secret, an unsignable body, or a header value
/// HTTP cannot carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsignable;

/// The event's id on requests to endpoints with [`Endpoint::event_headers`].
pub const EVENT_ID_HEADER: &str = "x-hookrelay-event-id";
/// The event's type on requests to endpoints with [`Endpoint::event_headers`].
pub const EVENT_TYPE_HEADER: &str = "x-hookrelay-event-type";

/// Who and what one request is about.
pub(crate) struct Attempt<'a> {
    pub(crate) event_id: &'a str,
    pub(crate) event_type: &'a str,
    pub(crate) delivery_id: &'a str,
    pub(crate) attempt: u32,
}

/// Signs `body` for `endpoint` afresh at `now`.
pub(crate) fn signed_request(
    endpoint: &Endpoint,
    scheme: Option<&dyn Scheme>,
    attempt: &Attempt<'_>,
    body: &Bytes,
    now: UnixMillis,
    timeout: Duration,
) -> Result<OutboundRequest, Unsignable> {
    let profile = endpoint.profile();
    let timestamp = Timestamp::from_unix(i64::try_from(now.as_millis() / 1000).unwrap_or(i64::MAX));
    let ctx = RequestContext {
        event_id: attempt.event_id,
        event_type: attempt.event_type,
        delivery_id: attempt.delivery_id,
        endpoint_id: endpoint.id().as_str(),
        attempt: attempt.attempt,
        timestamp,
    };
    let secrets = endpoint.active_secrets(now);
    let signed = scheme
        .ok_or(Unsignable)?
        .sign_all(&secrets, &profile.signing_message(body, &ctx))
        .map_err(|_| Unsignable)?;
    let mut headers = http::HeaderMap::with_capacity(8 + endpoint.headers().len());
    for (name, value) in profile.attempt_headers(&ctx) {
        let value = http::HeaderValue::from_str(&value).map_err(|_| Unsignable)?;
        headers.insert(header_name(name)?, value);
    }
    for (name, value) in endpoint.headers() {
        headers.append(name.clone(), value.clone());
    }
    if endpoint.event_headers() {
        for (name, value) in [
            (EVENT_ID_HEADER, attempt.event_id),
            (EVENT_TYPE_HEADER, attempt.event_type),
        ] {
            let value = http::HeaderValue::from_str(value).map_err(|_| Unsignable)?;
            headers.insert(http::HeaderName::from_static(name), value);
        }
    }
    for (name, value) in signed.to_header_map().map_err(|_| Unsignable)? {
        if let Some(name) = name {
            headers.insert(name, value);
        }
    }
    Ok(OutboundRequest {
        url: endpoint.url().clone(),
        headers,
        body: body.clone(),
        timeout,
    })
}

/// The profile's header names, without parsing the common ones.
fn header_name(name: &'static str) -> Result<http::HeaderName, Unsignable> {
    Ok(http::HeaderName::from_static(match name {
        "Content-Type" => "content-type",
        "User-Agent" => "user-agent",
        "X-Webhook-Attempt" => "x-webhook-attempt",
        "X-Webhook-Event" => "x-webhook-event",
        "X-Webhook-ID" => "x-webhook-id",
        "X-Delivery-ID" => "x-delivery-id",
        "X-Event-Type" => "x-event-type",
        "X-GitHub-Event" => "x-github-event",
        "X-GitHub-Delivery" => "x-github-delivery",
        other => return http::HeaderName::from_bytes(other.as_bytes()).map_err(|_| Unsignable),
    }))
}
