//! What the receive pipeline tells `tracing` (feature `tracing`): why a request was refused,
//! which the reply never says, and idempotency-store failures, which the sender never sees.
//! Without the feature every function here compiles to nothing. The events, their levels
//! and fields are listed in the [`receive`](super) module docs.

use super::{IdempotencyKey, Rejection, StoreError};
use crate::profile::Profile;

/// Emits a `tracing` event under the target `hookrelay::receive`; nothing without the feature.
macro_rules! emit {
    ($level:ident, $($event:tt)*) => {{
        #[cfg(feature = "tracing")]
        tracing::$level!(target: "hookrelay::receive", $($event)*);
    }};
}

/// A store operation, for [`store_failed`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum StoreOperation {
    Claim,
    Complete,
    Release,
}

/// A request refused with `rejection`; `profile` is `None` for the standalone extractor.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn rejected(profile: Option<Profile>, rejection: &Rejection) {
    let profile = profile.map_or("none", Profile::name);
    let status = rejection.status().as_u16();
    // A verification failure's own words (its `Rejection` names only the class).
    let reason: &dyn std::fmt::Display = match rejection {
        Rejection::Malformed(err) | Rejection::Unauthorized(err) => err,
        other => other,
    };
    match rejection {
        Rejection::InProgress | Rejection::HandlerFailed => {
            emit!(debug, %profile, status, reason = %reason, "webhook not processed");
        }
        Rejection::Unavailable | Rejection::LayerMissing => {
            emit!(error, %profile, status, reason = %reason, "webhook not processed");
        }
        _ => emit!(info, %profile, status, reason = %reason, "webhook rejected"),
    }
}

/// The handler answered `status` (not 2xx), so the claim was released for the sender's retry.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn handler_failed(profile: Profile, status: u16) {
    emit!(debug, %profile, status, "handler did not succeed; claim released for the sender's retry");
}

/// A delivery already processed, acknowledged without running the handler.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn duplicate(profile: Profile, key: &IdempotencyKey) {
    emit!(debug, %profile, %key, "duplicate delivery acknowledged");
}

/// A registration handshake the receiver answered itself.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn handshake(profile: Profile) {
    emit!(debug, %profile, "handshake answered");
}

/// The idempotency store failed during `operation`.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn store_failed(
    profile: Profile,
    operation: StoreOperation,
    key: &IdempotencyKey,
    error: &StoreError,
) {
    #[cfg(feature = "tracing")]
    let error = crate::store_error::Chain(error);
    match operation {
        StoreOperation::Claim => emit!(
            error, %profile, %key, %error, status = 503u16,
            "idempotency store could not claim the delivery; the sender will retry"
        ),
        StoreOperation::Complete => emit!(
            warn, %profile, %key, %error,
            "idempotency store could not record the processed delivery; a retry will run the handler again"
        ),
        StoreOperation::Release => emit!(
            warn, %profile, %key, %error,
            "idempotency store could not release the claim; retries get 409 until it expires"
        ),
    }
}

/// A full memory store forgot `count` of its oldest processed deliveries to take new ones.
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn forgotten(count: usize, capacity: usize) {
    emit!(
        warn,
        count,
        capacity,
        "idempotency store full: forgot the oldest processed deliveries; a retry of one runs the handler again (raise the capacity or use a database store)"
    );
}

/// An inbox store failed during `operation` (accept: the sender gets 503; claim: the worker
/// backs off; record: the entry runs again when its lease ends).
#[cfg(feature = "inbox")]
#[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
pub(crate) fn inbox_failed(operation: &'static str, error: &StoreError) {
    emit!(error, operation, error = %error, "inbox store failed");
}
