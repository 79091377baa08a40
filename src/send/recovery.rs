//! Replay, recovery and retention: what an operator does with failed deliveries and old logs.

use std::time::SystemTime;

use super::store::{
    AttemptLog, DeliveryRecord, DeliveryStore, LogOrder, LogQuery, LogRetention, Purged,
    StatusKind, StoreError, TimeRange,
};
use super::{DeliveryId, EndpointId, Sender};
use crate::retry::UnixMillis;

/// How many deliveries one store call handles during recovery and purging.
const BATCH: usize = 500;

/// A dead-lettered delivery with its last response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The delivery.
    pub delivery: DeliveryRecord,
    /// Its last logged attempt (status, kept headers, the start of the body), if any.
    pub last_attempt: Option<AttemptLog>,
}

impl<S: DeliveryStore> Sender<S> {
    /// Retries one delivery by hand, now: a dead-lettered, expired or delivered one, or a
    /// pending one waiting for its next attempt. Same delivery id and event id; the attempt
    /// is logged as manual and is not refused for the message's age. `false` when the
    /// delivery is unknown, superseded or being attempted right now.
    pub async fn retry_delivery(&self, id: &DeliveryId) -> Result<bool, StoreError> {
        let queued = self
            .shared
            .store
            .retry_now(std::slice::from_ref(id), self.shared.now())
            .await?;
        self.shared.wake.notify_waiters();
        Ok(!queued.is_empty())
    }

    /// Retries by hand every failed (dead-lettered or expired) delivery to `endpoint` of
    /// messages published since `since` (inclusive) and, when given, before `until`
    /// (exclusive, as every log time range); returns how many were queued.
    pub async fn recover(
        &self,
        endpoint: &EndpointId,
        since: SystemTime,
        until: Option<SystemTime>,
    ) -> Result<usize, StoreError> {
        let query = LogQuery {
            endpoint: Some(endpoint.clone()),
            statuses: vec![StatusKind::Dead, StatusKind::Expired],
            created: TimeRange {
                from: Some(UnixMillis::from(since)),
                until: until.map(UnixMillis::from),
            },
            order: LogOrder::OldestFirst,
            ..LogQuery::default()
        };
        let failed: Vec<DeliveryId> = self
            .walk_log(&query, None)
            .await?
            .into_iter()
            .map(|d| d.id)
            .collect();
        let mut queued = 0;
        for chunk in failed.chunks(BATCH) {
            queued += self
                .shared
                .store
                .retry_now(chunk, self.shared.now())
                .await?
                .len();
        }
        self.shared.wake.notify_waiters();
        Ok(queued)
    }

    /// Dead letters, oldest first (of one endpoint, or all), at most `limit` (0: all), each
    /// with its last response.
    pub async fn dead_letters(
        &self,
        endpoint: Option<&EndpointId>,
        limit: usize,
    ) -> Result<Vec<DeadLetter>, StoreError> {
        let query = LogQuery {
            endpoint: endpoint.cloned(),
            statuses: vec![StatusKind::Dead],
            order: LogOrder::OldestFirst,
            ..LogQuery::default()
        };
        let dead = self.walk_log(&query, (limit > 0).then_some(limit)).await?;
        let mut out = Vec::with_capacity(dead.len());
        for delivery in dead {
            let last_attempt = self.shared.store.attempts(&delivery.id).await?.pop();
            out.push(DeadLetter {
                delivery,
                last_attempt,
            });
        }
        Ok(out)
    }

    /// Deletes finished deliveries and attempt logs past `retention` (TaskLink's defaults
    /// with [`LogRetention::default`]), in batches of 500: each batch is one short store
    /// transaction, so delivery goes on in between. Returns the totals.
    pub async fn purge(&self, retention: &LogRetention) -> Result<Purged, StoreError> {
        let mut total = Purged::default();
        loop {
            let step = self
                .shared
                .store
                .purge(retention, self.shared.now(), BATCH)
                .await?;
            total.deliveries += step.deliveries;
            total.attempts += step.attempts;
            total.messages += step.messages;
            if step.deliveries < BATCH as u64 && step.attempts < BATCH as u64 {
                return Ok(total);
            }
            tokio::task::yield_now().await;
        }
    }
}
