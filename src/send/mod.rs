//! Sending webhooks: endpoints, a durable delivery store, publishing, and the dispatcher that
//! signs, delivers, retries and logs every attempt.

mod clock;
mod dispatcher;
mod endpoint;
mod id;
mod sender;
pub mod store;
mod transport;

pub use clock::{ManualClock, SendClock, SystemSendClock};
pub use dispatcher::{Dispatcher, DispatcherBuilder, DispatcherHandle, ShutdownReport};
pub use endpoint::{
    Endpoint, EndpointBuilder, EndpointError, EndpointStatus, EventFilter, JsonMode, SigningSecret,
};
pub use id::{DeliveryId, EndpointId, InvalidId, MessageId};
pub use sender::{PublishError, Sender};
pub use store::{
    AttemptLog, DeliveryCounts, DeliveryQuery, DeliveryRecord, DeliveryStatus, DeliveryStore,
    MemoryStore,
};
pub use transport::{
    LOGGED_RESPONSE_HEADERS, OutboundRequest, RESPONSE_BODY_CAP, Refusal, Transport,
    TransportError, TransportResponse,
};

pub(crate) type ClockHandle = std::sync::Arc<dyn SendClock>;
