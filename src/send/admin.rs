//! Administration: what a product built on hookrelay does with what the sender holds —
//! endpoints listed, looked up, changed, paused, deleted and their secrets rotated; the
//! delivery log paged and filtered; one delivery or message in full; numbers per endpoint;
//! failed deliveries retried in bulk. Every call works the same on every store, and every
//! listing can be limited to one [`Owner`] (a management API keeps customers apart that way).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::store::{
    AttemptLog, DeliveryRecord, DeliveryStatus, DeliveryStore, EndpointQuery, EndpointStats,
    LogOrder, LogQuery, MessageRecord, Page, PageLimit, SeriesScope, StoreError, TimeRange,
};
use super::{
    DeliveryId, Endpoint, EndpointBuilder, EndpointError, EndpointId, EndpointKey, EndpointStatus,
    MessageId, Owner, Sender, SigningSecret,
};
use crate::Secret;
use crate::profile::Profile;

/// How long an old secret keeps signing after [`Sender::rotate_secret`] by default: 24 hours.
pub const DEFAULT_ROTATION_GRACE: Duration = Duration::from_secs(24 * 3600);
/// The longest grace period [`Sender::rotate_secret`] accepts: 7 days.
pub const MAX_ROTATION_GRACE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Why an administrative call did nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminError {
    /// No such endpoint (or not one of the given owner's).
    NotFound,
    /// Another endpoint of the same owner already has this [`EndpointKey`].
    KeyTaken,
    /// The changed settings do not make a valid endpoint.
    Invalid(EndpointError),
    /// A rotation grace period over [`MAX_ROTATION_GRACE`].
    GraceTooLong,
    /// A secret could not be generated (the OS random source failed).
    NoRandomness,
    /// The sender's [URL policy](Sender::with_url_policy) refuses the endpoint's URL.
    UrlRefused(super::Refusal),
    /// The endpoint waits for its verification handshake; run
    /// [`Sender::verify_endpoint`] rather than resuming it.
    Unverified,
    /// The store failed.
    Store(StoreError),
}

impl AdminError {
    /// Whether trying again may succeed (the store failed transiently).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Store(e) if e.is_retryable())
    }
}

impl fmt::Display for AdminError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("no such endpoint"),
            Self::KeyTaken => f.write_str("another endpoint of this owner has that key"),
            Self::Invalid(_) => f.write_str("the changed endpoint is invalid"),
            Self::GraceTooLong => f.write_str("a rotation grace period is at most 7 days"),
            Self::NoRandomness => f.write_str("no randomness to generate a secret"),
            Self::UrlRefused(why) => write!(f, "the endpoint url is refused: {why}"),
            Self::Unverified => f.write_str("the endpoint waits for its verification handshake"),
            Self::Store(_) => f.write_str("the store failed"),
        }
    }
}

impl std::error::Error for AdminError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Invalid(e) => Some(e),
            Self::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        if e.is_not_found() {
            Self::NotFound
        } else if e.is_conflict() {
            Self::KeyTaken
        } else {
            Self::Store(e)
        }
    }
}

/// One delivery with its attempts, first attempt first: status, latency, response and the
/// request headers sent (signatures redacted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryDetail {
    /// The delivery.
    pub delivery: DeliveryRecord,
    /// Its attempts.
    pub attempts: Vec<AttemptLog>,
}

/// One message with its delivery to each endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageView {
    /// The message and its body.
    pub message: MessageRecord,
    /// Its deliveries (to the given owner's endpoints only, when an owner is given), oldest
    /// first.
    pub deliveries: Vec<DeliveryRecord>,
}

/// What [`Sender::bulk_retry`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BulkRetry {
    /// Count what would be retried; change nothing.
    DryRun,
    /// Queue them.
    Queue,
}

/// What [`Sender::bulk_retry`] found and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkRetried {
    /// Deliveries matching the filter that a retry can queue (dead-lettered, expired,
    /// delivered, and pending ones no worker holds).
    pub matched: u64,
    /// How many were queued (0 on a dry run; fewer than `matched` when some changed
    /// meanwhile, e.g. a worker claimed one).
    pub queued: u64,
}

/// Whether a delivery's owner is the one asked for (`None` asks for any).
fn visible(record: &DeliveryRecord, owner: Option<&Owner>) -> bool {
    owner.is_none_or(|o| record.owner.as_ref() == Some(o))
}

/// Whether a manual retry can take a delivery in this status.
fn retryable(record: &DeliveryRecord) -> bool {
    match record.status {
        DeliveryStatus::DeadLettered(_) | DeliveryStatus::Expired | DeliveryStatus::Delivered => {
            true
        }
        DeliveryStatus::Pending => !record.claimed,
        _ => false,
    }
}

impl<S: DeliveryStore> Sender<S> {
    /// One endpoint.
    pub async fn endpoint(&self, id: &EndpointId) -> Result<Option<Arc<Endpoint>>, StoreError> {
        self.shared.store.endpoint(id).await
    }

    /// The endpoint with `key` among `owner`'s endpoints (`None`: among endpoints without an
    /// owner).
    pub async fn endpoint_by_key(
        &self,
        owner: Option<&Owner>,
        key: &EndpointKey,
    ) -> Result<Option<Arc<Endpoint>>, StoreError> {
        self.shared.store.endpoint_by_key(owner, key).await
    }

    /// One page of endpoints, by id: filter by status, profile, owner and subscribed event
    /// type; pass the page's [`next`](Page::next) as the next query's `after`.
    ///
    /// ```
    /// use hookrelay::Secret;
    /// use hookrelay::profile::Profile;
    /// use hookrelay::send::{Endpoint, EndpointQuery, MemoryStore, Owner, Sender};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::new(MemoryStore::new());
    /// let acme = Owner::new("acme")?;
    /// for url in ["https://a.example/hook", "https://b.example/hook"] {
    ///     sender
    ///         .add_endpoint(
    ///             Endpoint::builder(url, Profile::StandardWebhooks)
    ///                 .secret(Secret::generate()?)
    ///                 .owner(acme.clone())
    ///                 .build()?,
    ///         )
    ///         .await?;
    /// }
    /// let query = EndpointQuery { owner: Some(acme), ..EndpointQuery::default() };
    /// let page = sender.list_endpoints(&query).await?;
    /// assert_eq!(page.items.len(), 2);
    /// assert!(page.next.is_none());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn list_endpoints(
        &self,
        query: &EndpointQuery,
    ) -> Result<Page<Arc<Endpoint>>, StoreError> {
        self.shared.store.endpoint_page(query).await
    }

    /// Changes an endpoint: `change` gets a builder holding its settings and returns it
    /// changed; the result is checked like a new endpoint (a changed URL must again be an
    /// absolute `http`/`https` URL without credentials, and pass the sender's
    /// [URL policy](Self::with_url_policy) if it has one; names are resolved and vetted by the
    /// transport's SSRF guard at every attempt) and saved. The id cannot change.
    ///
    /// A Proposal Generator endpoint whose URL changed goes back to
    /// [`PendingVerification`](EndpointStatus::PendingVerification): it receives nothing
    /// until [`verify_endpoint`](Self::verify_endpoint) passes with the new URL.
    pub async fn update_endpoint(
        &self,
        id: &EndpointId,
        change: impl FnOnce(EndpointBuilder) -> EndpointBuilder,
    ) -> Result<Arc<Endpoint>, AdminError> {
        let current = self.endpoint(id).await?.ok_or(AdminError::NotFound)?;
        let mut updated = change(current.to_builder())
            .id(id.clone())
            .build()
            .map_err(AdminError::Invalid)?;
        if updated.url() != current.url() {
            self.vet_url(updated.url())?;
        }
        if updated.profile() == Profile::ProposalGenerator && updated.url() != current.url() {
            updated = updated.with_status_note(
                EndpointStatus::PendingVerification,
                Some("the url changed: the verification handshake must pass again".to_owned()),
            );
        }
        self.shared.store.put_endpoint(&updated).await?;
        self.endpoints_changed();
        Ok(Arc::new(updated))
    }

    /// Pauses an endpoint: it keeps receiving new messages, which wait until it is resumed.
    pub async fn pause_endpoint(&self, id: &EndpointId) -> Result<(), AdminError> {
        self.shared
            .store
            .set_endpoint_status(id, EndpointStatus::Paused, Some("paused by hand"))
            .await?;
        self.endpoints_changed();
        Ok(())
    }

    /// Resumes a paused or disabled endpoint: active again, its status note and failure
    /// clock cleared; what waited is delivered. Enabling a disabled endpoint is told as
    /// [`Notification::EndpointEnabled`](super::Notification::EndpointEnabled). An endpoint waiting for its verification
    /// handshake is [`Unverified`](AdminError::Unverified): verify it instead.
    pub async fn resume_endpoint(&self, id: &EndpointId) -> Result<(), AdminError> {
        let current = self.endpoint(id).await?.ok_or(AdminError::NotFound)?;
        if current.status() == EndpointStatus::PendingVerification {
            return Err(AdminError::Unverified);
        }
        self.shared
            .store
            .set_endpoint_status(id, EndpointStatus::Active, None)
            .await?;
        self.shared.store.set_failing_since(id, None).await?;
        self.endpoints_changed();
        if current.status() == EndpointStatus::Disabled {
            self.shared.notify(super::Notification::EndpointEnabled {
                endpoint: id.clone(),
            });
        }
        Ok(())
    }

    /// Deletes an endpoint. Its pending deliveries end
    /// [`Cancelled`](DeliveryStatus::Cancelled) — an attempt in flight cannot bring them back —
    /// and stay in the log until retention removes them. Returns how many were cancelled.
    pub async fn delete_endpoint(&self, id: &EndpointId) -> Result<u64, AdminError> {
        let cancelled = self
            .shared
            .store
            .delete_endpoint(id, self.shared.now())
            .await?;
        self.endpoints_changed();
        Ok(cancelled)
    }

    /// Rotates an endpoint's signing secret in one call and returns the new one (`new`, or
    /// a fresh 32-byte secret when `None`).
    ///
    /// On schemes whose header carries several signatures (Standard Webhooks, Stripe —
    /// [`Scheme::signs_with_every_secret`](crate::scheme::Scheme::signs_with_every_secret)) the
    /// old secret keeps signing beside the new one for `grace` (default
    /// [`DEFAULT_ROTATION_GRACE`], 24 h; at most [`MAX_ROTATION_GRACE`], 7 days) and then
    /// stops by itself: receivers switch to the new secret whenever they like within it.
    ///
    /// On single-signature schemes (GitHub, the seed profiles) the new secret signs at once:
    /// during the grace period the **receiver** must accept either secret (hookrelay's
    /// [`Verifier`](crate::Verifier) takes several secrets; give it both until the grace
    /// period ends), since each request carries one signature only. The old secret is kept
    /// (not signing) until the grace period ends, so the endpoint shows when it ended.
    ///
    /// ```
    /// use hookrelay::Secret;
    /// use hookrelay::profile::Profile;
    /// use hookrelay::send::{Endpoint, MemoryStore, Sender};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::new(MemoryStore::new());
    /// let id = sender
    ///     .add_endpoint(
    ///         Endpoint::builder("https://example.com/hook", Profile::StandardWebhooks)
    ///             .secret(Secret::generate()?)
    ///             .build()?,
    ///     )
    ///     .await?;
    /// let new_secret = sender.rotate_secret(&id, None, None).await?;
    /// let endpoint = sender.endpoint(&id).await?.expect("registered");
    /// // The new secret first; the old one signs too, for 24 hours.
    /// assert_eq!(endpoint.secrets().len(), 2);
    /// assert!(endpoint.secrets()[1].until().is_some());
    /// # let _ = new_secret; Ok(())
    /// # }
    /// ```
    pub async fn rotate_secret(
        &self,
        id: &EndpointId,
        new: Option<Secret>,
        grace: Option<Duration>,
    ) -> Result<Secret, AdminError> {
        let grace = grace.unwrap_or(DEFAULT_ROTATION_GRACE);
        if grace > MAX_ROTATION_GRACE {
            return Err(AdminError::GraceTooLong);
        }
        let new = match new {
            Some(secret) => secret,
            None => Secret::generate().map_err(|_| AdminError::NoRandomness)?,
        };
        let current = self.endpoint(id).await?.ok_or(AdminError::NotFound)?;
        let ends = self.shared.now().saturating_add(grace);
        let now = self.shared.now();
        // The new secret first: single-signature schemes sign with it alone at once; the
        // others sign with every active one, the old ones until the grace period ends.
        let mut secrets = vec![SigningSecret::new(new.clone(), None)];
        secrets.extend(
            current
                .secrets()
                .iter()
                .filter(|s| s.is_active(now) && grace > Duration::ZERO)
                .map(|old| {
                    let until = old.until().map_or(ends, |u| u.min(ends));
                    SigningSecret::new(old.secret().clone(), Some(until))
                }),
        );
        let updated = current
            .to_builder()
            .secrets(secrets)
            .build()
            .map_err(AdminError::Invalid)?;
        self.shared.store.put_endpoint(&updated).await?;
        self.endpoints_changed();
        Ok(new)
    }

    /// One page of the delivery log (newest first unless the query says otherwise); pass
    /// the page's [`next`](Page::next) as the next query's `after`.
    ///
    /// ```
    /// use hookrelay::send::{LogQuery, MemoryStore, Sender};
    /// use hookrelay::send::store::StatusKind;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let sender = Sender::new(MemoryStore::new());
    /// let mut query = LogQuery { statuses: vec![StatusKind::Dead], ..LogQuery::default() };
    /// loop {
    ///     let page = sender.delivery_log(&query).await?;
    ///     for delivery in &page.items {
    ///         println!("{} {} {:?}", delivery.id, delivery.event_type, delivery.last_status);
    ///     }
    ///     match page.next {
    ///         Some(next) => query.after = Some(next),
    ///         None => break,
    ///     }
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delivery_log(&self, query: &LogQuery) -> Result<Page<DeliveryRecord>, StoreError> {
        self.shared.store.log_page(query, self.shared.now()).await
    }

    /// One delivery with every attempt (`None` if unknown, or not `owner`'s when given).
    pub async fn delivery_detail(
        &self,
        id: &DeliveryId,
        owner: Option<&Owner>,
    ) -> Result<Option<DeliveryDetail>, StoreError> {
        let Some(delivery) = self.shared.store.delivery(id, self.shared.now()).await? else {
            return Ok(None);
        };
        if !visible(&delivery, owner) {
            return Ok(None);
        }
        let attempts = self.shared.store.attempts(id).await?;
        Ok(Some(DeliveryDetail { delivery, attempts }))
    }

    /// One message with its delivery to each endpoint (`None` if unknown; with `owner`, only
    /// that owner's deliveries, and `None` when it has none).
    pub async fn message_view(
        &self,
        id: &MessageId,
        owner: Option<&Owner>,
    ) -> Result<Option<MessageView>, StoreError> {
        let Some(message) = self.shared.store.message(id).await? else {
            return Ok(None);
        };
        let query = LogQuery {
            message: Some(id.clone()),
            owner: owner.cloned(),
            order: LogOrder::OldestFirst,
            ..LogQuery::default()
        };
        let deliveries = self.walk_log(&query, None).await?;
        if owner.is_some() && deliveries.is_empty() {
            return Ok(None);
        }
        Ok(Some(MessageView {
            message,
            deliveries,
        }))
    }

    /// One endpoint's numbers over `window`: deliveries by outcome, success rate, attempts
    /// by outcome, retries, rate-limit waits, average and p95 latency, last success and
    /// failure ([`EndpointStats`]).
    pub async fn endpoint_stats(
        &self,
        id: &EndpointId,
        window: TimeRange,
    ) -> Result<EndpointStats, StoreError> {
        self.shared.store.endpoint_stats(id, window).await
    }

    /// Several endpoints' numbers over one `window`, in `ids`' order (an unknown id gets
    /// empty numbers): [`endpoint_stats`](Self::endpoint_stats) for a whole page of endpoints
    /// in one store read, as a dashboard's list shows them.
    pub async fn endpoints_stats(
        &self,
        ids: &[EndpointId],
        window: TimeRange,
    ) -> Result<Vec<EndpointStats>, StoreError> {
        self.shared.store.endpoints_stats(ids, window).await
    }

    /// One endpoint's numbers over each of `windows`, in their order (a chart's hourly
    /// buckets), in one store read of the span they cover.
    pub async fn endpoint_series(
        &self,
        id: &EndpointId,
        windows: &[TimeRange],
    ) -> Result<Vec<EndpointStats>, StoreError> {
        self.series(&SeriesScope::Endpoint(id.clone()), windows)
            .await
    }

    /// The numbers of `scope`'s deliveries — one endpoint's, one owner's, or all — over each
    /// of `windows`, in their order: a dashboard's overall charts in one store read.
    pub async fn series(
        &self,
        scope: &SeriesScope,
        windows: &[TimeRange],
    ) -> Result<Vec<EndpointStats>, StoreError> {
        self.shared.store.series(scope, windows).await
    }

    /// Retries by hand every delivery matching `query`'s filters (its cursor and limit are
    /// ignored: every page is walked) that a retry can take: dead-lettered, expired and
    /// delivered ones, and pending ones no worker holds (brought forward). Same delivery
    /// and event ids; each attempt is logged as manual. [`BulkRetry::DryRun`] only counts.
    ///
    /// Limit it with the query: by owner, endpoint, status (say, only
    /// [`Dead`](super::store::StatusKind::Dead)), event type and time.
    pub async fn bulk_retry(
        &self,
        query: &LogQuery,
        mode: BulkRetry,
    ) -> Result<BulkRetried, StoreError> {
        let query = LogQuery {
            after: None,
            limit: PageLimit::MAX,
            order: LogOrder::OldestFirst,
            ..query.clone()
        };
        let mut done = BulkRetried::default();
        let mut page_query = query;
        loop {
            let page = self.delivery_log(&page_query).await?;
            let ids: Vec<DeliveryId> = page
                .items
                .iter()
                .filter(|d| retryable(d))
                .map(|d| d.id.clone())
                .collect();
            done.matched += ids.len() as u64;
            if mode == BulkRetry::Queue && !ids.is_empty() {
                let queued = self.shared.store.retry_now(&ids, self.shared.now()).await?;
                done.queued += queued.len() as u64;
                self.shared.wake.notify_waiters();
            }
            match page.next {
                Some(next) => page_query.after = Some(next),
                None => return Ok(done),
            }
        }
    }

    /// Every delivery of the log matching `query` (walked page by page from its start), at
    /// most `cap` of them: [`DeliveryLog::log_all`](super::store::DeliveryLog::log_all) that
    /// can stop early.
    pub(crate) async fn walk_log(
        &self,
        query: &LogQuery,
        cap: Option<usize>,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        super::store::walk_log(&self.shared.store, query, self.shared.now(), cap).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::retry::UnixMillis;
    use crate::send::DeliveryKind;

    fn record(status: DeliveryStatus, claimed: bool) -> DeliveryRecord {
        DeliveryRecord {
            id: DeliveryId::new("dlv_1").unwrap(),
            message: MessageId::new("msg_1").unwrap(),
            endpoint: EndpointId::new("ep_1").unwrap(),
            owner: Some(Owner::new("acme").unwrap()),
            event_id: "evt_1".into(),
            event_type: "a.b".into(),
            status,
            attempts: 1,
            created_at: UnixMillis::from_millis(0),
            next_attempt_at: None,
            claimed,
            last_status: None,
            kind: DeliveryKind::Event,
            finished_at: None,
            batch: None,
        }
    }

    #[test]
    fn what_a_bulk_retry_takes() {
        assert!(retryable(&record(DeliveryStatus::Expired, false)));
        assert!(retryable(&record(DeliveryStatus::Delivered, false)));
        assert!(retryable(&record(DeliveryStatus::Pending, false)));
        assert!(!retryable(&record(DeliveryStatus::Pending, true)));
        assert!(!retryable(&record(DeliveryStatus::Cancelled, false)));
        assert!(!retryable(&record(DeliveryStatus::Superseded, false)));
    }

    #[test]
    fn owners_see_only_their_deliveries() {
        let r = record(DeliveryStatus::Delivered, false);
        assert!(visible(&r, None));
        assert!(visible(&r, Some(&Owner::new("acme").unwrap())));
        assert!(!visible(&r, Some(&Owner::new("other").unwrap())));
    }

    #[test]
    fn store_errors_map_to_admin_errors() {
        assert_eq!(
            AdminError::from(StoreError::not_found("endpoint")),
            AdminError::NotFound
        );
        assert_eq!(
            AdminError::from(StoreError::conflict(std::io::Error::other("unique"))),
            AdminError::KeyTaken
        );
        assert!(AdminError::from(StoreError::retryable(std::io::Error::other("x"))).is_retryable());
    }
}
