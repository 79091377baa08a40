//! [`Sender`]: registers endpoints and publishes events into a store; makes dispatchers.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{Notify, broadcast};

use super::store::{
    DeliveryKind, DeliveryStore, Enqueued, NewDelivery, NewMessage, Publication, PublishKey,
    StoreError,
};
use super::{
    DeliveryId, DispatcherBuilder, Endpoint, EndpointId, EndpointStatus, MessageId, Notification,
    Transport,
};
use crate::event::{EventClock, OutgoingEvent, SystemEventClock};
use crate::json::JsonError;
use crate::profile::{EnvelopeShape, wire};

/// The producer's handle: endpoints in, events in, deliveries out through a
/// [`Dispatcher`](super::Dispatcher). Cheap to clone; clones share the store.
///
/// ```
/// use hookrelay::Secret;
/// use hookrelay::event::OutgoingEvent;
/// use hookrelay::profile::Profile;
/// use hookrelay::send::{Endpoint, MemoryStore, Sender};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let sender = Sender::new(MemoryStore::new());
/// sender
///     .add_endpoint(
///         Endpoint::builder("https://example.com/hooks", Profile::TaskHub)
///             .secret(Secret::from_raw("your-secret-key")?)
///             .build()?,
///     )
///     .await?;
/// let event = OutgoingEvent::new("task.created", serde_json::json!({"taskId": "123"}));
/// let message = sender.publish(event).await?;
/// assert_eq!(sender.deliveries_of(&message).await?.len(), 1);
/// # Ok(())
/// # }
/// ```
pub struct Sender<S> {
    pub(crate) shared: Arc<Shared<S>>,
}

impl<S> Clone for Sender<S> {
    fn clone(&self) -> Self {
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S> fmt::Debug for Sender<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sender").finish_non_exhaustive()
    }
}

pub(crate) struct Shared<S> {
    pub(crate) store: S,
    /// Wakes idle dispatchers of this process when work is published.
    pub(crate) wake: Notify,
    pub(crate) clock: Arc<dyn EventClock>,
    endpoints: RwLock<Option<Arc<Vec<Arc<Endpoint>>>>>,
    /// Bumped whenever an endpoint changes through this sender.
    pub(crate) generation: std::sync::atomic::AtomicU64,
    pub(crate) key_window: Duration,
    notifications: broadcast::Sender<Notification>,
    /// Vets endpoint URLs at registration and update ([`Sender::with_url_policy`]).
    url_policy: RwLock<Option<super::AddressPolicy>>,
}

impl<S> Shared<S> {
    /// The sender's time, in the planner's milliseconds.
    pub(crate) fn now(&self) -> crate::retry::UnixMillis {
        crate::retry::UnixMillis::from(self.clock.now())
    }

    /// Tells every notification receiver (none listening is fine).
    pub(crate) fn notify(&self, change: Notification) {
        let _ = self.notifications.send(change);
    }

    pub(crate) fn endpoints_changed(&self) {
        *self.endpoints.write().unwrap_or_else(|p| p.into_inner()) = None;
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.wake.notify_waiters();
    }
}

impl<S: DeliveryStore> Sender<S> {
    /// A sender over `store`, with the system clock and a 24 h publish-key window.
    pub fn new(store: S) -> Self {
        Self::with_clock(store, SystemEventClock)
    }

    /// A sender reading time from `clock` (a `ManualClock`, feature `test-util`, in tests):
    /// due times, leases and signing timestamps.
    pub fn with_clock(store: S, clock: impl EventClock + 'static) -> Self {
        Sender {
            shared: Arc::new(Shared {
                store,
                wake: Notify::new(),
                clock: Arc::new(clock),
                endpoints: RwLock::new(None),
                generation: std::sync::atomic::AtomicU64::new(0),
                key_window: Duration::from_secs(24 * 3600),
                notifications: broadcast::channel(256).0,
                url_policy: RwLock::new(None),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &S {
        &self.shared.store
    }

    /// A dispatcher delivering this sender's work through `transport`.
    pub fn dispatcher<T: Transport>(&self, transport: T) -> DispatcherBuilder<S, T> {
        DispatcherBuilder::new(Arc::clone(&self.shared), transport)
    }

    /// Vets every endpoint URL registered or changed through this sender (and its clones)
    /// with `policy`, the one the transport's SSRF guard applies at every attempt: a URL it
    /// refuses by itself — plain `http` unless allowed, credentials, a loopback, private or
    /// otherwise non-public IP literal, `localhost` — is refused at once with
    /// [`AdminError::UrlRefused`](super::AdminError::UrlRefused) instead of dead-lettering
    /// its first delivery. Names are still resolved and vetted at every attempt. Without it
    /// (the default) only the endpoint builder's own URL rules apply at registration.
    ///
    /// ```
    /// use hookrelay::Secret;
    /// use hookrelay::profile::Profile;
    /// use hookrelay::send::{AddressPolicy, AdminError, Endpoint, MemoryStore, Refusal, Sender};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::new(MemoryStore::new()).with_url_policy(AddressPolicy::new());
    /// let internal = Endpoint::builder("https://169.254.169.254/latest", Profile::TaskHub)
    ///     .secret(Secret::generate()?)
    ///     .build()?;
    /// assert_eq!(
    ///     sender.add_endpoint(internal).await,
    ///     Err(AdminError::UrlRefused(Refusal::NonPublicAddress))
    /// );
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_url_policy(self, policy: super::AddressPolicy) -> Self {
        *self
            .shared
            .url_policy
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(policy);
        self
    }

    /// Refuses `url` if the sender's URL policy does.
    pub(crate) fn vet_url(&self, url: &url::Url) -> Result<(), super::AdminError> {
        match &*self
            .shared
            .url_policy
            .read()
            .unwrap_or_else(|p| p.into_inner())
        {
            Some(policy) => policy
                .check_url(url)
                .map(|_| ())
                .map_err(super::AdminError::UrlRefused),
            None => Ok(()),
        }
    }

    /// Registers (or replaces) an endpoint. Its key must be free among its owner's endpoints
    /// ([`AdminError::KeyTaken`](super::AdminError::KeyTaken)); with a
    /// [URL policy](Self::with_url_policy) its URL must pass it.
    ///
    /// It records when the endpoint was registered ([`Endpoint::created_at`]) by the sender's
    /// clock, unless the endpoint carries that time already; an endpoint replaced under the
    /// same id keeps the time it was first registered.
    pub async fn add_endpoint(&self, endpoint: Endpoint) -> Result<EndpointId, super::AdminError> {
        self.vet_url(endpoint.url())?;
        let endpoint = match endpoint.created_at() {
            Some(_) => endpoint,
            None => {
                let stored = self.shared.store.endpoint(endpoint.id()).await?;
                let at = stored
                    .and_then(|e| e.created_at())
                    .unwrap_or_else(|| self.shared.now());
                endpoint.with_created_at(at)
            }
        };
        self.shared.store.put_endpoint(&endpoint).await?;
        self.endpoints_changed();
        Ok(endpoint.id().clone())
    }

    /// Changes an endpoint's status (pause, resume, disable, enable again).
    pub async fn set_endpoint_status(
        &self,
        id: &EndpointId,
        status: EndpointStatus,
    ) -> Result<(), StoreError> {
        self.shared
            .store
            .set_endpoint_status(id, status, None)
            .await?;
        self.endpoints_changed();
        Ok(())
    }

    /// Health changes of this sender's endpoints, as its dispatchers see them — disabled,
    /// paused by the circuit breaker, resumed, enabled again by hand — and deliveries
    /// dead-lettered ([`Notification`]; [`OperationalWebhooks`](super::OperationalWebhooks)
    /// sends them on as webhooks).
    pub fn notifications(&self) -> broadcast::Receiver<Notification> {
        self.shared.notifications.subscribe()
    }

    /// Forgets the cached endpoint list (call it when another process changed endpoints).
    pub fn endpoints_changed(&self) {
        self.shared.endpoints_changed();
    }

    /// Publishes one event: fixes its body bytes, stores the message with one delivery per
    /// matching active endpoint, wakes the dispatcher, and returns the message id once the
    /// store has accepted it. A live event goes to live endpoints only, an event marked
    /// [`test`](OutgoingEvent::test) to test endpoints only ([`Endpoint::mode`]).
    ///
    /// An event whose id or type cannot be put on the wire, by any profile or by the profile of
    /// an endpoint it would go to, is refused here with [`PublishError::Unsendable`] (nothing
    /// is stored), rather than dead-lettered at its first attempt.
    pub async fn publish(&self, event: OutgoingEvent) -> Result<MessageId, PublishError> {
        only(self.publish_all(vec![(event, None)]).await?)
    }

    /// [`publish`](Self::publish), returning the deliveries it created as well (one per
    /// endpoint the event went to; none when nothing subscribes), so a caller can follow
    /// them without reading the log.
    ///
    /// ```
    /// use hookrelay::Secret;
    /// use hookrelay::event::OutgoingEvent;
    /// use hookrelay::profile::Profile;
    /// use hookrelay::send::{Endpoint, MemoryStore, Sender};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::new(MemoryStore::new());
    /// sender
    ///     .add_endpoint(
    ///         Endpoint::builder("https://example.com/hooks", Profile::TaskHub)
    ///             .secret(Secret::from_raw("your-secret-key")?)
    ///             .build()?,
    ///     )
    ///     .await?;
    /// let event = OutgoingEvent::new("task.created", serde_json::json!({"taskId": "123"}));
    /// let receipt = sender.publish_with_receipt(event).await?;
    /// assert_eq!(receipt.deliveries.len(), 1);
    /// assert_eq!(sender.deliveries_of(&receipt.message).await?[0].id, receipt.deliveries[0]);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish_with_receipt(
        &self,
        event: OutgoingEvent,
    ) -> Result<Receipt, PublishError> {
        let (publications, endpoints, now) = self.prepare(vec![(event, None)]).await?;
        let deliveries = created_ids(&publications);
        let results = self.shared.store.enqueue(publications, now).await?;
        self.shared.wake.notify_waiters();
        let message = only(accepted(&endpoints, results))?;
        Ok(Receipt {
            message,
            deliveries,
        })
    }

    /// Publishes with an idempotency key: within 24 h, the same key returns the first
    /// message's id and creates nothing.
    pub async fn publish_with_key(
        &self,
        event: OutgoingEvent,
        key: impl Into<String>,
    ) -> Result<MessageId, PublishError> {
        only(self.publish_all(vec![(event, Some(key.into()))]).await?)
    }

    /// Publishes many events in one store transaction; ids in the same order. If one event
    /// cannot be written, nothing is published.
    pub async fn publish_batch(
        &self,
        events: Vec<OutgoingEvent>,
    ) -> Result<Vec<MessageId>, PublishError> {
        self.publish_all(events.into_iter().map(|e| (e, None)).collect())
            .await
    }

    async fn publish_all(
        &self,
        events: Vec<(OutgoingEvent, Option<String>)>,
    ) -> Result<Vec<MessageId>, PublishError> {
        let (publications, endpoints, now) = self.prepare(events).await?;
        let results = self.shared.store.enqueue(publications, now).await?;
        self.shared.wake.notify_waiters();
        Ok(accepted(&endpoints, results))
    }

    /// One publication per event, fanned out to the current endpoints, at the sender's now.
    pub(crate) async fn prepare(
        &self,
        events: Vec<(OutgoingEvent, Option<String>)>,
    ) -> Result<
        (
            Vec<Publication>,
            Arc<Vec<Arc<Endpoint>>>,
            crate::retry::UnixMillis,
        ),
        PublishError,
    > {
        let endpoints = self.cached_endpoints().await?;
        let now = self.shared.now();
        let publications = events
            .into_iter()
            .map(|(event, key)| {
                build_publication(
                    &event,
                    endpoints.iter().map(|e| &**e),
                    DeliveryKind::Event,
                    now,
                    key,
                    self.shared.key_window,
                )
            })
            .collect::<Result<_, _>>()?;
        Ok((publications, endpoints, now))
    }

    /// Sends a test event to one endpoint, whatever it subscribes to and whatever its
    /// [mode](Endpoint::mode): `webhook.test` in the
    /// endpoint's envelope, with `payload` as its data (Task Hub's example:
    /// `{"taskId": "123", "status": "completed"}`) or `{"test": true}`. It is signed,
    /// delivered, retried and logged like any other delivery, and marked
    /// [`DeliveryKind::Test`]. An endpoint that is not active receives it once it is.
    pub async fn send_test(
        &self,
        endpoint: &EndpointId,
        payload: Option<serde_json::Value>,
    ) -> Result<MessageId, PublishError> {
        Ok(self
            .send_test_with_receipt(endpoint, payload)
            .await?
            .message)
    }

    /// [`send_test`](Self::send_test), returning its one delivery as well, to follow its
    /// first attempt (as a management API's test route does).
    pub async fn send_test_with_receipt(
        &self,
        endpoint: &EndpointId,
        payload: Option<serde_json::Value>,
    ) -> Result<Receipt, PublishError> {
        let target = self
            .shared
            .store
            .endpoint(endpoint)
            .await?
            .ok_or_else(|| PublishError::Store(StoreError::not_found("endpoint")))?;
        let data = payload.unwrap_or_else(|| serde_json::json!({ "test": true }));
        let event = OutgoingEvent::new(crate::event::proposal_generator::WEBHOOK_TEST, data)
            .with_time(self.shared.clock.now());
        let now = self.shared.now();
        let publication = build_publication(
            &event,
            [&*target],
            DeliveryKind::Test,
            now,
            None,
            self.shared.key_window,
        )?;
        let publications = vec![publication];
        let deliveries = created_ids(&publications);
        let results = self.shared.store.enqueue(publications, now).await?;
        self.shared.wake.notify_waiters();
        let message = only(results.iter().map(|r| r.message_id().clone()).collect())?;
        Ok(Receipt {
            message,
            deliveries,
        })
    }

    /// Publishes one event to one endpoint only, never fanning out: the endpoint receives
    /// it as [`publish`](Self::publish) would have sent it — if it is active or paused and
    /// subscribes to the event's type — and no other endpoint does, whatever it subscribes
    /// to. [`OperationalWebhooks`](super::OperationalWebhooks) sends through it.
    ///
    /// ```
    /// use hookrelay::{Secret, event::OutgoingEvent, profile::Profile};
    /// use hookrelay::send::{Endpoint, MemoryStore, Sender};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::new(MemoryStore::new());
    /// let everything = Endpoint::builder("https://a.example/hooks", Profile::StandardWebhooks)
    ///     .secret(Secret::generate()?)
    ///     .build()?;
    /// let ops = Endpoint::builder("https://ops.example/hooks", Profile::StandardWebhooks)
    ///     .secret(Secret::generate()?)
    ///     .build()?;
    /// sender.add_endpoint(everything).await?;
    /// let ops = sender.add_endpoint(ops).await?;
    /// let event = OutgoingEvent::new("endpoint.disabled", serde_json::json!({"x": 1}));
    /// let message = sender.publish_to(&ops, event).await?;
    /// let deliveries = sender.deliveries_of(&message).await?;
    /// assert_eq!(deliveries.len(), 1);
    /// assert_eq!(deliveries[0].endpoint, ops);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn publish_to(
        &self,
        endpoint: &EndpointId,
        event: OutgoingEvent,
    ) -> Result<MessageId, PublishError> {
        let target = self
            .shared
            .store
            .endpoint(endpoint)
            .await?
            .ok_or_else(|| PublishError::Store(StoreError::not_found("endpoint")))?;
        let now = self.shared.now();
        let publication = build_publication(
            &event,
            [&*target],
            DeliveryKind::Event,
            now,
            None,
            self.shared.key_window,
        )?;
        let results = self.shared.store.enqueue(vec![publication], now).await?;
        self.shared.wake.notify_waiters();
        only(results.iter().map(|r| r.message_id().clone()).collect())
    }

    /// The deliveries of one message.
    pub async fn deliveries_of(
        &self,
        message: &MessageId,
    ) -> Result<Vec<super::DeliveryRecord>, StoreError> {
        let query = super::LogQuery {
            message: Some(message.clone()),
            order: super::store::LogOrder::OldestFirst,
            ..Default::default()
        };
        self.walk_log(&query, None).await
    }

    pub(crate) async fn cached_endpoints(&self) -> Result<Arc<Vec<Arc<Endpoint>>>, StoreError> {
        if let Some(list) = self
            .shared
            .endpoints
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(self.shared.store.endpoints().await?);
        *self
            .shared
            .endpoints
            .write()
            .unwrap_or_else(|p| p.into_inner()) = Some(Arc::clone(&list));
        Ok(list)
    }
}

/// The message ids of what the store accepted, counting the deliveries throttling
/// superseded (labelled with the profile of the first endpoint that throttles).
pub(crate) fn accepted(endpoints: &[Arc<Endpoint>], results: Vec<Enqueued>) -> Vec<MessageId> {
    results
        .into_iter()
        .map(|r| {
            if let Enqueued::Created { superseded, .. } = &r
                && let Some(endpoint) = endpoints.iter().find(|e| e.throttle().is_some())
            {
                super::telemetry::throttled(endpoint.profile(), *superseded);
            }
            r.message_id().clone()
        })
        .collect()
}

/// What a publish created: the message and its deliveries
/// ([`Sender::publish_with_receipt`], [`Sender::send_test_with_receipt`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Receipt {
    /// The message.
    pub message: MessageId,
    /// Its deliveries, one per endpoint it went to.
    pub deliveries: Vec<DeliveryId>,
}

/// The delivery ids of publications about to be enqueued.
fn created_ids(publications: &[Publication]) -> Vec<DeliveryId> {
    publications
        .iter()
        .flat_map(|p| p.deliveries.iter().map(|d| d.id.clone()))
        .collect()
}

/// The one id a single publish returns.
pub(crate) fn only(mut ids: Vec<MessageId>) -> Result<MessageId, PublishError> {
    ids.pop().ok_or_else(|| {
        PublishError::Store(StoreError::other(
            "the store returned no result for the publish",
        ))
    })
}

/// One message and its fan-out: one delivery per endpoint that takes `event` (active or
/// paused, of the event's [mode](crate::event::EventMode), and subscribed; every given
/// endpoint for a test), each body form written once.
pub(crate) fn build_publication<'a>(
    event: &OutgoingEvent,
    endpoints: impl IntoIterator<Item = &'a Endpoint>,
    kind: DeliveryKind,
    now: crate::retry::UnixMillis,
    key: Option<String>,
    window: Duration,
) -> Result<Publication, PublishError> {
    let mut forms: HashMap<(EnvelopeShape, u8), u8> = HashMap::new();
    let mut bodies: Vec<Bytes> = Vec::new();
    let mut deliveries = Vec::new();
    let event_type = event.event_type().as_str();
    crate::profile::check_any(event).map_err(PublishError::Unsendable)?;
    // Each profile's own rules, once per profile among the endpoints the event goes to.
    let mut checked: Vec<crate::profile::Profile> = Vec::new();
    for endpoint in endpoints {
        let takes_events = matches!(
            endpoint.status(),
            EndpointStatus::Active | EndpointStatus::Paused
        );
        let wrong_mode = endpoint.mode() != event.mode();
        if kind == DeliveryKind::Event
            && (!takes_events || wrong_mode || !endpoint.subscribes_to(event_type))
        {
            continue;
        }
        let profile = endpoint.profile();
        if !checked.contains(&profile) {
            profile.check_own(event).map_err(PublishError::Unsendable)?;
            checked.push(profile);
        }
        let shape = profile.envelope_shape();
        let mode = endpoint.json_mode();
        let form = (shape, mode.code());
        let index = match forms.get(&form) {
            Some(index) => *index,
            None => {
                let mut body = wire::render(shape, event, mode.writer_options())
                    .map_err(PublishError::Body)?;
                body.shrink_to_fit();
                let index = u8::try_from(bodies.len()).map_err(|_| PublishError::TooManyForms)?;
                bodies.push(Bytes::from(body));
                forms.insert(form, index);
                index
            }
        };
        let throttle = match kind {
            DeliveryKind::Event => endpoint
                .throttle()
                .and_then(|t| t.group(event_type, event.data())),
            _ => None,
        };
        // The endpoint's own ordering, else a throttled job's events in one sequence, so
        // that no progress event arrives after the job's terminal one.
        let order_key = endpoint
            .ordering()
            .key_for(event.data())
            .or_else(|| throttle.as_ref().map(|g| g.key.clone()));
        deliveries.push(NewDelivery {
            kind,
            order_key,
            throttle,
            owner: endpoint.owner().cloned(),
            ..NewDelivery::new(DeliveryId::generate(), endpoint.id().clone(), index)
        });
    }
    if bodies.is_empty() {
        // Validate the event even when nothing subscribes, so a bad event fails the same way.
        wire::render(EnvelopeShape::Envelope, event, Default::default())
            .map_err(PublishError::Body)?;
    }
    Ok(Publication {
        message: NewMessage {
            id: MessageId::generate(),
            event_id: event.id().clone(),
            event_type: event.event_type().clone(),
            created_at: now,
            bodies,
        },
        deliveries,
        key: key.map(|key| PublishKey {
            key,
            expires_at: now.saturating_add(window),
        }),
    })
}

/// Why an event was not published. Nothing was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublishError {
    /// The event cannot be written as JSON its receivers read back unchanged (an integer
    /// beyond 2^53, NaN, …).
    Body(JsonError),
    /// More body forms than a message can hold (255).
    TooManyForms,
    /// The event's id or type cannot be put on the wire by the profile of an endpoint it would
    /// go to (a `.` in a Standard Webhooks id, a type a header cannot carry), or by any
    /// profile (an empty type, control characters or CR/LF): see
    /// [`UnsendableEvent`](crate::profile::UnsendableEvent).
    Unsendable(crate::profile::UnsendableEvent),
    /// The store failed.
    Store(StoreError),
}

impl fmt::Display for PublishError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // The cause is the source, not repeated here.
            Self::Body(_) => f.write_str("the event cannot be written as JSON"),
            Self::TooManyForms => f.write_str("too many body forms for one message"),
            Self::Unsendable(_) => f.write_str("an endpoint's profile cannot send this event"),
            Self::Store(_) => f.write_str("the delivery store failed"),
        }
    }
}

impl std::error::Error for PublishError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Body(e) => Some(e),
            Self::Store(e) => Some(e),
            Self::Unsendable(e) => Some(e),
            Self::TooManyForms => None,
        }
    }
}

impl PublishError {
    /// Whether publishing the same event again may succeed: the store failed in a way that
    /// passes (a lost connection, a busy or restarting database, a time-out). Nothing was
    /// stored; publish again after a pause.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}
