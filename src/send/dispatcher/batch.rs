//! Batch formation: claimed event deliveries of a batching endpoint become one batch
//! delivery (a JSON array of envelopes in one signed POST).

use super::super::batching::join;
use super::super::store::{
    ClaimedDelivery, DeliveryStore, NewBatch, NewMessage, Release, StoreError,
};
use super::super::{DeliveryId, EndpointId, MessageId, Transport};
use super::Dispatcher;
use crate::retry::UnixMillis;

/// The event type a batch is sent under, where the profile sends one.
pub(crate) const BATCH_EVENT: &str = "batch";

impl<S: DeliveryStore, T: Transport> Dispatcher<S, T> {
    /// Turns claimed event deliveries of one batching endpoint into batch deliveries: full
    /// batches and batches whose oldest event waited `max_wait` are formed (and returned,
    /// claimed); the rest go back to the store, due when their wait ends.
    pub(super) async fn form_batches(
        &mut self,
        endpoint: &EndpointId,
        mut members: Vec<ClaimedDelivery>,
        now: UnixMillis,
        releases: &mut Vec<Release>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let Some(batching) = self
            .gates
            .get(endpoint)
            .and_then(|gate| gate.endpoint.batching())
        else {
            return Ok(Vec::new());
        };
        members.sort_by_key(|c| c.created_at);
        let size = usize::try_from(batching.max_events()).unwrap_or(usize::MAX);
        let mut formed = Vec::new();
        for chunk in members.chunks(size) {
            let oldest = chunk[0].created_at;
            let ready_at = oldest.saturating_add(batching.max_wait());
            if chunk.len() < size && ready_at > now {
                releases.extend(chunk.iter().map(|c| Release {
                    delivery: c.delivery.clone(),
                    token: c.token,
                    due_at: ready_at,
                }));
                continue;
            }
            let batch = NewBatch {
                message: NewMessage {
                    id: MessageId::generate(),
                    event_id: super::super::id::random_id("bat_").into(),
                    event_type: BATCH_EVENT.into(),
                    created_at: oldest,
                    bodies: vec![join(chunk.iter().map(|c| &c.body))],
                },
                delivery: DeliveryId::generate(),
                endpoint: endpoint.clone(),
                members: chunk
                    .iter()
                    .map(|c| (c.delivery.clone(), c.token))
                    .collect(),
            };
            if let Some(claim) = self.shared.store.form_batch(batch, now, self.lease).await? {
                formed.push(claim);
            }
        }
        Ok(formed)
    }
}
