//! One store round: the results to record, the claims to hand back and how many due
//! deliveries to claim, sent to the store as one call that runs while the dispatcher goes
//! on (pipelining), and what the round carried, restored if the store fails.
//!
//! Results planned while a round is in the store wait for the next one, so a round records
//! as many results as finished during the last one: the group commit grows with the load,
//! with no fixed linger when there is little. Claims come back ahead of free capacity
//! ([`CLAIM_AHEAD`]) into the dispatcher's ready buffer, so a finished attempt is replaced
//! without waiting for the store.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;

use super::super::sender::Shared;
use super::super::store::{
    AttemptRecord, ClaimedDelivery, DeliveryStore, NextStep, Release, StoreError,
};
use super::super::{EndpointId, Notification, Transport};
use super::Dispatcher;
use crate::retry::UnixMillis;

/// At most this many claims beyond free capacity wait in the ready buffer. Fewer usually:
/// as many as the concurrency, or twice as many as the last round recorded if that is more
/// (see [`Dispatcher::claim_limit`]). Enough to cover a commit's time at tens of thousands of
/// attempts a second; small enough that a dispatcher sharing a store with others does not
/// hoard its work.
pub(super) const CLAIM_AHEAD: usize = 128;

/// What a round took from the dispatcher: given back if the store fails, settled if not.
pub(super) struct Carried {
    records: Vec<AttemptRecord>,
    releases: Vec<Release>,
    /// Health changes caused by `records`: told (and stored) only once they are stored.
    changes: Vec<Notification>,
    marks: Vec<(EndpointId, Option<UnixMillis>)>,
    /// How many deliveries the round claims (zero: it only records).
    limit: usize,
    /// The dispatcher's turn that began the round ([`super::idle::Activity`]).
    turn: u64,
}

type Call = Pin<Box<dyn Future<Output = Result<Vec<ClaimedDelivery>, StoreError>> + Send>>;

/// A round in the store.
pub(super) struct Round {
    pub(super) call: Call,
    pub(super) carried: Carried,
}

/// Sends one round to the store: hands claims back, records results, claims (one
/// transaction for the last two where the store can).
fn call<S: DeliveryStore>(
    shared: Arc<Shared<S>>,
    carried: &Carried,
    now: UnixMillis,
    lease: Duration,
    skip: Vec<EndpointId>,
) -> Call {
    let releases = carried.releases.clone();
    let records = carried.records.clone();
    let limit = carried.limit;
    Box::pin(async move {
        let store = &shared.store;
        if !releases.is_empty() {
            store.release(releases).await?;
        }
        match (records.is_empty(), limit) {
            (true, 0) => Ok(Vec::new()),
            (false, 0) => store.record(records).await.map(|_| Vec::new()),
            (true, _) => store.claim(now, limit, lease, &skip).await,
            (false, _) => store
                .record_and_claim(records, now, limit, lease, &skip)
                .await
                .map(|(_, claims)| claims),
        }
    })
}

impl<S: DeliveryStore, T: Transport> Dispatcher<S, T> {
    /// How many deliveries a round begun now would claim: the free slots, plus claims
    /// ahead of them (`ahead`), less what the ready buffer holds.
    ///
    /// Claims ahead are as many as the concurrency, or twice the results the last round
    /// recorded if that is more, up to [`CLAIM_AHEAD`]: while a round is in the store the
    /// attempts go on from the buffer, and their results make the next round. When a round
    /// takes several attempts' time (a commit against attempts of a fraction of a
    /// millisecond, at low concurrency) the buffer grows until it covers the round, instead
    /// of every delivery waiting for a round of its own; when attempts are slow, few finish
    /// per round and it stays at the concurrency.
    pub(super) fn claim_limit(&self, ahead: bool) -> usize {
        let free = self.concurrency.saturating_sub(self.in_flight.len());
        let ahead = if ahead {
            self.concurrency
                .max(2 * self.last_round_records)
                .min(CLAIM_AHEAD)
        } else {
            0
        };
        (free + ahead).saturating_sub(self.ready.len())
    }

    /// Begins a round that records every result held and hands back every claim to hand
    /// back, and claims `limit` due deliveries. The first poll happens here: a store that
    /// answers at once (memory) is done before this returns.
    pub(super) fn begin_round(&mut self, limit: usize, turn: u64) -> Round {
        let carried = Carried {
            records: std::mem::take(&mut self.unrecorded),
            releases: std::mem::take(&mut self.to_release),
            changes: std::mem::take(&mut self.unsettled_changes),
            marks: std::mem::take(&mut self.unsettled_marks),
            limit,
            turn,
        };
        let now = self.shared.now();
        let skip = if limit == 0 {
            Vec::new()
        } else {
            self.gates
                .iter()
                .filter(|(_, gate)| gate.saturated(now))
                .map(|(id, _)| id.clone())
                .collect()
        };
        if limit > 0 {
            // Wake-ups until now are covered by this claim; later ones ask for another.
            self.claim_wanted = false;
        }
        let call = call(Arc::clone(&self.shared), &carried, now, self.lease, skip);
        Round { call, carried }
    }

    /// Polls a round once: its result if it is done already.
    pub(super) fn poll_round_once(
        round: &mut Round,
    ) -> Option<Result<Vec<ClaimedDelivery>, StoreError>> {
        round.call.as_mut().now_or_never()
    }

    /// Takes a round's result. Done: its results and hand-backs are settled, the health
    /// changes they caused join those to tell, and its claims come back. Failed: everything
    /// it carried is held again, ahead of what came since, and the store backs off.
    pub(super) fn end_round(
        &mut self,
        carried: Carried,
        result: Result<Vec<ClaimedDelivery>, StoreError>,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        let Carried {
            mut records,
            mut releases,
            mut changes,
            mut marks,
            limit,
            turn,
        } = carried;
        match result {
            Ok(claims) => {
                if !records.is_empty() {
                    // A round that only claims says nothing of how many finish per round.
                    self.last_round_records = records.len();
                }
                if records.iter().any(|r| r.next == NextStep::DisableEndpoint) {
                    self.endpoints_dirty = true;
                }
                self.changes.append(&mut changes);
                self.failing_marks.append(&mut marks);
                self.backoff = None;
                if limit > 0 {
                    self.found_nothing = claims.is_empty();
                    self.found_nothing_turn = turn;
                    if claims.len() >= limit {
                        // There may be more due.
                        self.claim_wanted = true;
                    }
                }
                Ok(claims)
            }
            Err(e) => {
                records.append(&mut self.unrecorded);
                self.unrecorded = records;
                releases.append(&mut self.to_release);
                self.to_release = releases;
                changes.append(&mut self.unsettled_changes);
                self.unsettled_changes = changes;
                marks.append(&mut self.unsettled_marks);
                self.unsettled_marks = marks;
                if limit > 0 {
                    self.claim_wanted = true;
                }
                self.store_failed(&e);
                Err(e)
            }
        }
    }

    /// Records every result held and hands back every claim held, waiting for the store.
    /// On failure they stay held.
    pub(super) async fn record_unrecorded(&mut self) -> Result<(), StoreError> {
        if self.unrecorded.is_empty() && self.to_release.is_empty() {
            return Ok(());
        }
        let turn = self.activity.borrow().begun;
        let Round { call, carried } = self.begin_round(0, turn);
        let result = call.await;
        self.end_round(carried, result).map(drop)
    }
}
