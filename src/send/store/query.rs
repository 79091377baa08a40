//! Queries over what a store holds: [`LogQuery`] for the delivery log and [`EndpointQuery`] for
//! endpoints, both paged by an opaque [`Cursor`] in pages of at most [`PageLimit::MAX`].
//!
//! Paging is keyset paging: a cursor names the last row a page returned, and the next page
//! starts after it. Rows that arrive meanwhile never shift a page, so no row is skipped or
//! repeated across pages (newest first, new deliveries appear only before the first page).

use std::fmt;
use std::num::NonZeroU16;

use super::{DeliveryKind, DeliveryStatus};
use crate::profile::Profile;
use crate::retry::UnixMillis;
use crate::send::{EndpointId, EndpointStatus, MessageId, Owner};

/// Where a page ends: pass it back as the next query's `after` for the page that follows.
///
/// Opaque text, safe in a URL query string; only the store that made it can read it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

/// A cursor that is not one a store made, or made for another kind of listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidCursor(());

impl fmt::Display for InvalidCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a cursor this listing made")
    }
}

impl std::error::Error for InvalidCursor {}

impl From<InvalidCursor> for crate::StoreError {
    /// [Invalid input](crate::StoreError::is_invalid_input) whose message names the cursor.
    fn from(e: InvalidCursor) -> Self {
        crate::StoreError::invalid_input(e).describe("not a cursor this listing made")
    }
}

const LOG_TAG: char = 'd';
const ENDPOINT_TAG: char = 'e';

impl Cursor {
    /// A delivery-log cursor after the row at `position` (for store implementations: a
    /// position that grows with every delivery created, such as a sequence number).
    pub fn log(position: u64) -> Self {
        Cursor(format!("{LOG_TAG}{position:x}"))
    }

    /// The position [`log`](Self::log) wrapped.
    pub fn log_position(&self) -> Result<u64, InvalidCursor> {
        let hex = self.0.strip_prefix(LOG_TAG).ok_or(InvalidCursor(()))?;
        if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(InvalidCursor(()));
        }
        u64::from_str_radix(hex, 16).map_err(|_| InvalidCursor(()))
    }

    /// An endpoint-list cursor after endpoint `id` (endpoints are listed by id).
    pub fn endpoint(id: &EndpointId) -> Self {
        Cursor(format!("{ENDPOINT_TAG}{id}"))
    }

    /// The endpoint id [`endpoint`](Self::endpoint) wrapped.
    pub fn endpoint_id(&self) -> Result<EndpointId, InvalidCursor> {
        let id = self.0.strip_prefix(ENDPOINT_TAG).ok_or(InvalidCursor(()))?;
        EndpointId::new(id).map_err(|_| InvalidCursor(()))
    }

    /// The cursor as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Cursor {
    type Err = InvalidCursor;
    /// Reads a cursor back from its text (checked when a store reads it, too).
    fn from_str(s: &str) -> Result<Self, InvalidCursor> {
        let cursor = Cursor(s.to_owned());
        if cursor.log_position().is_ok() || cursor.endpoint_id().is_ok() {
            Ok(cursor)
        } else {
            Err(InvalidCursor(()))
        }
    }
}

impl fmt::Display for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Cursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Cursor({})", self.0)
    }
}

/// How many rows a page holds: 1 to [`MAX`](Self::MAX) (250); 50 by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageLimit(NonZeroU16);

/// A page limit of 0 or over 250.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidLimit(());

impl fmt::Display for InvalidLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a page holds 1 to {} rows", PageLimit::MAX.get())
    }
}

impl std::error::Error for InvalidLimit {}

impl PageLimit {
    /// The largest page: 250 rows.
    pub const MAX: PageLimit = PageLimit(NonZeroU16::new(250).unwrap());
    /// The default page: 50 rows.
    pub const DEFAULT: PageLimit = PageLimit(NonZeroU16::new(50).unwrap());

    /// A limit of `rows`, 1 to 250.
    pub fn new(rows: usize) -> Result<Self, InvalidLimit> {
        u16::try_from(rows)
            .ok()
            .and_then(NonZeroU16::new)
            .filter(|n| *n <= Self::MAX.0)
            .map(PageLimit)
            .ok_or(InvalidLimit(()))
    }

    /// The number of rows.
    pub fn get(self) -> usize {
        usize::from(self.0.get())
    }
}

impl Default for PageLimit {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The rows, in the listing's order.
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next: Option<Cursor>,
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Page {
            items: Vec::new(),
            next: None,
        }
    }
}

impl<T> Page<T> {
    /// The page a store makes from rows it read with one more than `limit` (for store
    /// implementations): the first `limit` rows, and `next` naming the last row kept —
    /// only when more rows came back than the page holds, since then another page follows.
    ///
    /// ```
    /// use hookrelay::send::store::{Cursor, Page, PageLimit};
    ///
    /// let limit = PageLimit::new(2)?;
    /// // Three rows read for a page of two: a next page follows the second row.
    /// let page = Page::from_overfetch(vec![7_u64, 8, 9], limit, |seq| Cursor::log(*seq));
    /// assert_eq!(page.items, [7, 8]);
    /// assert_eq!(page.next, Some(Cursor::log(8)));
    /// // No more rows than the page holds: the last page.
    /// let last = Page::from_overfetch(vec![10_u64, 11], limit, |seq| Cursor::log(*seq));
    /// assert_eq!(last.next, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_overfetch(
        mut rows: Vec<T>,
        limit: PageLimit,
        cursor_of: impl FnOnce(&T) -> Cursor,
    ) -> Self {
        let more = rows.len() > limit.get();
        rows.truncate(limit.get());
        let next = if more {
            rows.last().map(cursor_of)
        } else {
            None
        };
        Page { items: rows, next }
    }

    /// The same page with each row changed by `f` (say, a row's sort key dropped once its
    /// cursor is made).
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next: self.next,
        }
    }
}

/// Which way a log listing runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum LogOrder {
    /// The most recently created delivery first (the default).
    #[default]
    NewestFirst,
    /// The oldest first.
    OldestFirst,
}

/// A delivery's status without a dead letter's reason: what log queries filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StatusKind {
    /// [`DeliveryStatus::Pending`].
    Pending,
    /// [`DeliveryStatus::Delivered`].
    Delivered,
    /// [`DeliveryStatus::DeadLettered`], whatever the reason.
    Dead,
    /// [`DeliveryStatus::Expired`].
    Expired,
    /// [`DeliveryStatus::Superseded`].
    Superseded,
    /// [`DeliveryStatus::Cancelled`].
    Cancelled,
    /// [`DeliveryStatus::Batched`].
    Batched,
}

impl StatusKind {
    /// Every kind.
    pub const ALL: [StatusKind; 7] = [
        Self::Pending,
        Self::Delivered,
        Self::Dead,
        Self::Expired,
        Self::Superseded,
        Self::Cancelled,
        Self::Batched,
    ];

    /// The stored name: the same as [`DeliveryStatus::as_str`].
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Expired => "expired",
            Self::Superseded => "superseded",
            Self::Cancelled => "cancelled",
            Self::Batched => "batched",
        }
    }

    /// The kind named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl DeliveryStatus {
    /// The status without a dead letter's reason.
    pub fn kind(self) -> StatusKind {
        match self {
            Self::Pending => StatusKind::Pending,
            Self::Delivered => StatusKind::Delivered,
            Self::DeadLettered(_) => StatusKind::Dead,
            Self::Expired => StatusKind::Expired,
            Self::Superseded => StatusKind::Superseded,
            Self::Cancelled => StatusKind::Cancelled,
            Self::Batched => StatusKind::Batched,
        }
    }
}

/// The class of a delivery's last response status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResponseClass {
    /// 200–299.
    Success,
    /// 300–399.
    Redirect,
    /// 400–499.
    ClientError,
    /// 500 and up, and anything below 200 a receiver answered.
    ServerError,
    /// No response yet, or none came (time-out, connection error, refusal).
    None,
}

impl ResponseClass {
    /// Every class.
    pub const ALL: [ResponseClass; 5] = [
        Self::Success,
        Self::Redirect,
        Self::ClientError,
        Self::ServerError,
        Self::None,
    ];

    /// The class of `status` (`None`: no response).
    pub fn of(status: Option<u16>) -> Self {
        match status {
            None => Self::None,
            Some(200..=299) => Self::Success,
            Some(300..=399) => Self::Redirect,
            Some(400..=499) => Self::ClientError,
            Some(_) => Self::ServerError,
        }
    }

    /// The SQL condition on a status column (`column` is trusted text) for this class,
    /// shared by the SQL stores.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) fn sql_condition(self, column: &str) -> String {
        match self {
            Self::Success => format!("({column} >= 200 AND {column} < 300)"),
            Self::Redirect => format!("({column} >= 300 AND {column} < 400)"),
            Self::ClientError => format!("({column} >= 400 AND {column} < 500)"),
            Self::ServerError => format!("({column} >= 500 OR {column} < 200)"),
            Self::None => format!("({column} IS NULL)"),
        }
    }

    /// `2xx`, `3xx`, `4xx`, `5xx` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "2xx",
            Self::Redirect => "3xx",
            Self::ClientError => "4xx",
            Self::ServerError => "5xx",
            Self::None => "none",
        }
    }

    /// The class named by [`as_str`](Self::as_str).
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// An event type to match: exact (`job.completed`) or a prefix wildcard (`job.*`, `*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TypePattern {
    /// This type only.
    Exact(String),
    /// Every type starting with this text (`job.*` is `Prefix("job.")`; `*` is `Prefix("")`).
    Prefix(String),
}

impl TypePattern {
    /// Reads `job.completed`, `job.*` or `*` (surrounding whitespace ignored).
    pub fn parse(pattern: &str) -> Self {
        let pattern = pattern.trim();
        match pattern.strip_suffix('*') {
            Some(prefix) => Self::Prefix(prefix.to_owned()),
            None => Self::Exact(pattern.to_owned()),
        }
    }

    /// Whether `event_type` matches.
    pub fn matches(&self, event_type: &str) -> bool {
        match self {
            Self::Exact(t) => t == event_type,
            Self::Prefix(prefix) => event_type.starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for TypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(t) => f.write_str(t),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

/// A half-open span of time, `from` inclusive, `until` exclusive; either end may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimeRange {
    /// From this time on (`None`: from the beginning).
    pub from: Option<UnixMillis>,
    /// Before this time (`None`: to the end).
    pub until: Option<UnixMillis>,
}

impl TimeRange {
    /// Everything.
    pub fn all() -> Self {
        Self::default()
    }

    /// `from` to `until`.
    pub fn between(from: UnixMillis, until: UnixMillis) -> Self {
        TimeRange {
            from: Some(from),
            until: Some(until),
        }
    }

    /// Whether `at` is inside.
    pub fn contains(&self, at: UnixMillis) -> bool {
        self.from.is_none_or(|from| at >= from) && self.until.is_none_or(|until| at < until)
    }
}

/// Which deliveries to list, in which order, from where. Every filter left empty matches
/// everything; filters combine with *and*, the values inside one filter with *or*.
///
/// ```
/// use hookrelay::send::Owner;
/// use hookrelay::send::store::{LogQuery, ResponseClass, StatusKind, TypePattern};
///
/// // A customer's failed `invoice.*` deliveries whose last answer was a 5xx, newest first.
/// let query = LogQuery {
///     owner: Some(Owner::new("cust_42")?),
///     event_type: Some(TypePattern::parse("invoice.*")),
///     statuses: vec![StatusKind::Dead, StatusKind::Expired],
///     responses: vec![ResponseClass::ServerError],
///     ..LogQuery::default()
/// };
/// assert!(query.after.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// Only this endpoint's deliveries.
    pub endpoint: Option<EndpointId>,
    /// Only deliveries to endpoints of this owner (as the endpoint was when the delivery
    /// was created).
    pub owner: Option<Owner>,
    /// Only this message's deliveries.
    pub message: Option<MessageId>,
    /// Only these event types.
    pub event_type: Option<TypePattern>,
    /// Only deliveries in one of these statuses.
    pub statuses: Vec<StatusKind>,
    /// Only deliveries of these kinds.
    pub kinds: Vec<DeliveryKind>,
    /// Only messages published in this span.
    pub created: TimeRange,
    /// Only deliveries whose last response falls in one of these classes.
    pub responses: Vec<ResponseClass>,
    /// Newest first (default) or oldest first.
    pub order: LogOrder,
    /// Start after this cursor (from the previous page's [`Page::next`]).
    pub after: Option<Cursor>,
    /// At most this many rows.
    pub limit: PageLimit,
}

impl LogQuery {
    /// Whether a delivery passes every filter (not the cursor): what a store without an
    /// index checks row by row.
    pub fn matches(&self, record: &super::DeliveryRecord) -> bool {
        self.endpoint.as_ref().is_none_or(|e| *e == record.endpoint)
            && self
                .owner
                .as_ref()
                .is_none_or(|o| record.owner.as_ref() == Some(o))
            && self.message.as_ref().is_none_or(|m| *m == record.message)
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| t.matches(record.event_type.as_str()))
            && (self.statuses.is_empty() || self.statuses.contains(&record.status.kind()))
            && (self.kinds.is_empty() || self.kinds.contains(&record.kind))
            && self.created.contains(record.created_at)
            && (self.responses.is_empty()
                || self
                    .responses
                    .contains(&ResponseClass::of(record.last_status)))
    }
}

/// Which endpoints to list: by id, a page at a time. Every filter left empty matches
/// everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointQuery {
    /// Only endpoints in one of these statuses.
    pub statuses: Vec<EndpointStatus>,
    /// Only endpoints speaking this profile.
    pub profile: Option<Profile>,
    /// Only this owner's endpoints.
    pub owner: Option<Owner>,
    /// Only endpoints subscribed to this event type (a concrete type such as
    /// `invoice.paid`, matched against each endpoint's patterns).
    pub event_type: Option<String>,
    /// Start after this cursor (from the previous page's [`Page::next`]).
    pub after: Option<Cursor>,
    /// At most this many rows.
    pub limit: PageLimit,
}

impl EndpointQuery {
    /// Whether an endpoint passes every filter (not the cursor).
    pub fn matches(&self, endpoint: &crate::send::Endpoint) -> bool {
        (self.statuses.is_empty() || self.statuses.contains(&endpoint.status()))
            && self.profile.is_none_or(|p| p == endpoint.profile())
            && self
                .owner
                .as_ref()
                .is_none_or(|o| endpoint.owner() == Some(o))
            && self
                .event_type
                .as_deref()
                .is_none_or(|t| endpoint.subscribes_to(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_foreign_text() {
        let log = Cursor::log(0xdead_beef);
        assert_eq!(log.log_position(), Ok(0xdead_beef));
        assert_eq!(log.as_str().parse::<Cursor>(), Ok(log.clone()));
        assert!(log.endpoint_id().is_err());
        let ep = Cursor::endpoint(&EndpointId::new("ep_1").unwrap());
        assert_eq!(ep.endpoint_id().unwrap().as_str(), "ep_1");
        assert!(ep.log_position().is_err());
        for bad in ["", "d", "dzz", "d11111111111111111", "x12", "e"] {
            assert!(bad.parse::<Cursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn page_limits_are_one_to_250() {
        assert!(PageLimit::new(0).is_err());
        assert!(PageLimit::new(251).is_err());
        assert_eq!(PageLimit::new(250).unwrap(), PageLimit::MAX);
        assert_eq!(PageLimit::default().get(), 50);
    }

    #[test]
    fn an_overfetched_page_keeps_limit_rows_and_names_the_last_iff_more_came() {
        let limit = PageLimit::new(3).unwrap();
        let cursor = |n: &u64| Cursor::log(*n);
        for read in 0..=5_u64 {
            let rows: Vec<u64> = (1..=read).collect();
            let page = Page::from_overfetch(rows.clone(), limit, cursor);
            let kept = rows.len().min(3);
            assert_eq!(page.items, rows[..kept], "{read} rows read");
            let expected = (rows.len() > 3).then(|| Cursor::log(3));
            assert_eq!(page.next, expected, "{read} rows read");
        }
        let one = PageLimit::new(1).unwrap();
        let page = Page::from_overfetch(vec![(9_u64, "a"), (4, "b")], one, |(n, _)| cursor(n));
        assert_eq!(page.next, Some(Cursor::log(9)));
        assert_eq!(page.map(|(_, s)| s).items, ["a"]);
    }

    #[test]
    fn response_classes_and_patterns() {
        assert_eq!(ResponseClass::of(Some(204)), ResponseClass::Success);
        assert_eq!(ResponseClass::of(Some(429)), ResponseClass::ClientError);
        assert_eq!(ResponseClass::of(Some(503)), ResponseClass::ServerError);
        assert_eq!(ResponseClass::of(None), ResponseClass::None);
        assert!(TypePattern::parse("job.*").matches("job.done"));
        assert!(!TypePattern::parse("job.*").matches("jobs.done"));
        assert!(TypePattern::parse("*").matches("anything"));
        assert!(TypePattern::parse("a.b").matches("a.b"));
        assert_eq!(TypePattern::parse("job.*").to_string(), "job.*");
    }

    #[test]
    fn time_ranges_are_half_open() {
        let r = TimeRange::between(UnixMillis::from_millis(10), UnixMillis::from_millis(20));
        assert!(r.contains(UnixMillis::from_millis(10)));
        assert!(!r.contains(UnixMillis::from_millis(20)));
        assert!(TimeRange::all().contains(UnixMillis::from_millis(0)));
    }
}
