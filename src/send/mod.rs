//! Sending webhooks: endpoints, a durable delivery store, publishing, and the dispatcher that
//! signs, delivers, retries and logs every attempt.

mod transport;

pub use transport::{
    LOGGED_RESPONSE_HEADERS, OutboundRequest, RESPONSE_BODY_CAP, Refusal, Transport,
    TransportError, TransportResponse,
};
