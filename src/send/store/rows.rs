//! One row decoder for SQLite and PostgreSQL (features `sqlite`, `postgres`): endpoints,
//! deliveries, attempt logs and claims, generic over [`sqlx::Row`].
//!
//! Both schemas use the same column names; integers are read as `i32` where PostgreSQL has
//! `int4` (SQLite's `INTEGER` decodes as either), `i64` for times and tokens, and flags as
//! `bool` (SQLite's 0/1 decodes as one).

use bytes::Bytes;
use sqlx::{ColumnIndex, Decode, Row, Type};

use super::codec::decode_endpoint_sealed;
use super::encryption::Keyring;
use super::{
    AttemptError, AttemptLog, ClaimedDelivery, Cursor, DeliveryKind, DeliveryRecord,
    DeliveryStatus, FencingToken, Page, PageLimit, StoreError,
};
use crate::retry::UnixMillis;
use crate::send::{DeliveryId, Endpoint, EndpointId, EndpointStatus, MessageId, Owner};

/// Milliseconds as stored (`i64`, saturating).
pub(crate) fn ms(t: UnixMillis) -> i64 {
    i64::try_from(t.as_millis()).unwrap_or(i64::MAX)
}

/// A stored time (negative reads as the epoch).
pub(crate) fn from_ms(v: i64) -> UnixMillis {
    UnixMillis::from_millis(u64::try_from(v).unwrap_or(0))
}

fn get<'r, R, T>(row: &'r R, name: &str) -> Result<T, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    T: Decode<'r, R::Database> + Type<R::Database>,
{
    row.try_get(name).map_err(crate::sqlx_error::from_sqlx)
}

fn text<'r, R>(row: &'r R, name: &str) -> Result<String, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    get(row, name)
}

/// An endpoint row: `id`, `status`, `settings`, its secrets opened with `keyring`.
pub(crate) fn endpoint<'r, R>(row: &'r R, keyring: Option<&Keyring>) -> Result<Endpoint, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
{
    let id = EndpointId::new(text(row, "id")?).map_err(|_| StoreError::corrupt("endpoint id"))?;
    let status = EndpointStatus::parse(&text(row, "status")?)
        .ok_or_else(|| StoreError::corrupt("endpoint status"))?;
    decode_endpoint_sealed(id, status, &text(row, "settings")?, keyring)
}

/// A delivery row (the columns of `DELIVERY_COLUMNS` in each backend), as seen at `now`.
pub(crate) fn delivery<'r, R>(row: &'r R, now: UnixMillis) -> Result<DeliveryRecord, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    Option<i32>: Decode<'r, R::Database> + Type<R::Database>,
{
    let reason: Option<String> = get(row, "dead_reason")?;
    let status = DeliveryStatus::from_stored(&text(row, "status")?, reason.as_deref())
        .ok_or_else(|| StoreError::corrupt("delivery status"))?;
    let kind = DeliveryKind::parse(&text(row, "kind")?)
        .ok_or_else(|| StoreError::corrupt("delivery kind"))?;
    let finished_at: Option<i64> = get(row, "finished_at")?;
    let lease_until: Option<i64> = get(row, "lease_until")?;
    let due_at: Option<i64> = get(row, "due_at")?;
    let last_status: Option<i32> = get(row, "last_status")?;
    let attempts: i32 = get(row, "attempts")?;
    let batch: Option<String> = get(row, "batch_id")?;
    let owner: Option<String> = get(row, "owner")?;
    let pending = status == DeliveryStatus::Pending;
    Ok(DeliveryRecord {
        id: delivery_id(text(row, "id")?)?,
        message: MessageId::new(text(row, "message_id")?)
            .map_err(|_| StoreError::corrupt("message id"))?,
        endpoint: EndpointId::new(text(row, "endpoint_id")?)
            .map_err(|_| StoreError::corrupt("endpoint id"))?,
        owner: owner
            .map(Owner::new)
            .transpose()
            .map_err(|_| StoreError::corrupt("owner"))?,
        event_id: text(row, "event_id")?.into(),
        event_type: text(row, "event_type")?.into(),
        status,
        attempts: u32::try_from(attempts).unwrap_or(0),
        created_at: from_ms(get(row, "created_at")?),
        next_attempt_at: if pending { due_at.map(from_ms) } else { None },
        claimed: pending && lease_until.is_some_and(|t| t > ms(now)),
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        kind,
        finished_at: if pending {
            None
        } else {
            finished_at.map(from_ms)
        },
        batch: batch.map(delivery_id).transpose()?,
    })
}

/// A page of the delivery log from rows read one more than `limit`, each decoded by
/// `delivery` and carrying its `seq` column: the cursor names the last row kept.
pub(crate) fn log_page<'r, R>(
    found: &'r [R],
    limit: PageLimit,
    delivery: impl Fn(&'r R) -> Result<DeliveryRecord, StoreError>,
) -> Result<Page<DeliveryRecord>, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    let rows = found
        .iter()
        .map(|row| {
            let seq: i64 = get(row, "seq")?;
            let seq = u64::try_from(seq).map_err(|_| StoreError::corrupt("delivery seq"))?;
            Ok((seq, delivery(row)?))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(Page::from_overfetch(rows, limit, |(seq, _)| Cursor::log(*seq)).map(|(_, record)| record))
}

/// One attempt-log row of `delivery`: `attempt, started_at, latency_ms, status, error,
/// request_headers, response_headers, response_body, manual`.
pub(crate) fn attempt<'r, R>(row: &'r R, delivery: &DeliveryId) -> Result<AttemptLog, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Option<String>: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    Option<i32>: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let headers = text(row, "response_headers")?;
    let sent = text(row, "request_headers")?;
    let attempt: i32 = get(row, "attempt")?;
    let latency: i64 = get(row, "latency_ms")?;
    let status: Option<i32> = get(row, "status")?;
    let error: Option<String> = get(row, "error")?;
    let body: Vec<u8> = get(row, "response_body")?;
    Ok(AttemptLog {
        delivery: delivery.clone(),
        attempt: u32::try_from(attempt).unwrap_or(0),
        started_at: from_ms(get(row, "started_at")?),
        latency_ms: u64::try_from(latency).unwrap_or(0),
        status: status.and_then(|s| u16::try_from(s).ok()),
        error: error.as_deref().map(AttemptError::from_stored),
        request_headers: serde_json::from_str(&sent)
            .map_err(|_| StoreError::corrupt("request headers"))?,
        response_headers: serde_json::from_str(&headers)
            .map_err(|_| StoreError::corrupt("response headers"))?,
        response_body: Bytes::from(body),
        manual: get(row, "manual")?,
    })
}

/// A claimed delivery's row: `id, endpoint_id, attempts, charged, kind, manual, message_id,
/// event_id, event_type, created_at, body`, claimed under `token`.
pub(crate) fn claim<'r, R>(row: &'r R, token: FencingToken) -> Result<ClaimedDelivery, StoreError>
where
    R: Row,
    for<'n> &'n str: ColumnIndex<R>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    i32: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
    Vec<u8>: Decode<'r, R::Database> + Type<R::Database>,
{
    let body: Vec<u8> = get(row, "body")?;
    let attempts: i32 = get(row, "attempts")?;
    let charged: i32 = get(row, "charged")?;
    Ok(ClaimedDelivery {
        delivery: delivery_id(text(row, "id")?)?,
        message: MessageId::new(text(row, "message_id")?)
            .map_err(|_| StoreError::corrupt("message id"))?,
        endpoint: EndpointId::new(text(row, "endpoint_id")?)
            .map_err(|_| StoreError::corrupt("endpoint id"))?,
        event_id: text(row, "event_id")?.into(),
        event_type: text(row, "event_type")?.into(),
        body: Bytes::from(body),
        created_at: from_ms(get(row, "created_at")?),
        attempts: u32::try_from(attempts).unwrap_or(0),
        charged: u32::try_from(charged).unwrap_or(0),
        kind: DeliveryKind::parse(&text(row, "kind")?)
            .ok_or_else(|| StoreError::corrupt("delivery kind"))?,
        manual: get(row, "manual")?,
        token,
    })
}

/// A stored delivery id.
pub(crate) fn delivery_id(id: String) -> Result<DeliveryId, StoreError> {
    DeliveryId::new(id).map_err(|_| StoreError::corrupt("delivery id"))
}
