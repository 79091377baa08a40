//! The sending side of a profile: the body shape its receivers parse, and the headers each
//! attempt carries besides the signature.
//!
//! | profile | body | headers besides the scheme's |
//! |---|---|---|
//! | `proposal-generator` | `{id, type, timestamp, data}`, timestamp in seconds | `User-Agent: hookrelay/…` |
//! | `tasklink` | `{event, id, timestamp, data}`, timestamp in milliseconds | `User-Agent: TaskLink-SA-Webhook/1.0`, `X-Webhook-Attempt: n`, `X-Webhook-Event: type` (`X-Webhook-ID` = event id comes with the scheme) |
//! | `taskon` | the flat reward object (`data` itself) | `User-Agent: hookrelay/…` (`X-API-Key` comes with the scheme) |
//! | `task-hub` | `{id, type, timestamp, data}` | `User-Agent: hookrelay/…`, `X-Webhook-ID: <endpoint id>`, `X-Delivery-ID: <delivery id>`, `X-Event-Type: type` |
//! | `standard-webhooks` | `{id, type, timestamp, data}` | `User-Agent: hookrelay/…` (`webhook-id` = event id) |
//! | `github` | `data` itself | `User-Agent: GitHub-Hookshot/hookrelay`, `X-GitHub-Event: type`, `X-GitHub-Delivery: <delivery id>` |
//! | `stripe` | `{id, object: "event", type, created, data: {object: data}}` | `User-Agent: hookrelay/…` |
//!
//! Every request has `Content-Type: application/json`. The delivery id is stable across the
//! retries of one event to one endpoint (DESIGN.md interop trap 4); the attempt number, where
//! the profile has a header for it, is carried separately.

use serde::Serialize;
use serde::ser::Error as _;

use super::Profile;
use crate::Timestamp;
use crate::event::{Envelope, EventTime, OutgoingEvent, TaskLinkEnvelope, TimePrecision};
use crate::json::{self, JsonError, WriterOptions};
use crate::scheme::Message;

/// hookrelay's own `User-Agent`, for profiles whose documents name none.
pub const USER_AGENT: &str = concat!("hookrelay/", env!("CARGO_PKG_VERSION"));

/// How a profile wraps an [`OutgoingEvent`] into a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EnvelopeShape {
    /// `{id, type, timestamp, data}` with an RFC 3339 timestamp in seconds.
    Envelope,
    /// TaskLink's `{event, id, timestamp, data}` with milliseconds.
    TaskLink,
    /// The event's `data` is the whole body (TaskOn, GitHub).
    Flat,
    /// Stripe's `{id, object: "event", type, created, data: {object}}`.
    Stripe,
}

impl EnvelopeShape {
    /// A small stable number for stores (`0..=3`).
    pub fn code(self) -> u8 {
        match self {
            Self::Envelope => 0,
            Self::TaskLink => 1,
            Self::Flat => 2,
            Self::Stripe => 3,
        }
    }
}

/// What one attempt's headers are made of.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The event id (in the body; TaskLink and Standard Webhooks sign it).
    pub event_id: &'a str,
    /// The event type.
    pub event_type: &'a str,
    /// The delivery id: one event to one endpoint, stable across retries.
    pub delivery_id: &'a str,
    /// The endpoint's id (task-hub sends it as `X-Webhook-ID`).
    pub endpoint_id: &'a str,
    /// The attempt number, 1 for the first.
    pub attempt: u32,
    /// The signing time of this attempt (fresh for every attempt).
    pub timestamp: Timestamp,
}

impl Profile {
    /// The body shape this profile's receivers parse.
    pub fn envelope_shape(self) -> EnvelopeShape {
        match self {
            Self::TaskLink => EnvelopeShape::TaskLink,
            Self::TaskOn | Self::GitHub => EnvelopeShape::Flat,
            Self::Stripe => EnvelopeShape::Stripe,
            _ => EnvelopeShape::Envelope,
        }
    }

    /// The header naming the event type, for profiles whose senders send one: TaskLink's
    /// `X-Webhook-Event` (002), task-hub's `X-Event-Type` (004) and GitHub's `X-GitHub-Event`.
    ///
    /// Senders put the type there on every attempt; receivers read it from there first (task-hub
    /// and GitHub bodies need not name their type at all), and from the body when it is absent.
    /// The header is not covered by any of these profiles' signatures.
    ///
    /// ```
    /// use hookrelay::profile::Profile;
    ///
    /// assert_eq!(Profile::GitHub.event_type_header(), Some("X-GitHub-Event"));
    /// assert_eq!(Profile::TaskHub.event_type_header(), Some("X-Event-Type"));
    /// assert_eq!(Profile::StandardWebhooks.event_type_header(), None);
    /// ```
    pub fn event_type_header(self) -> Option<&'static str> {
        match self {
            Self::TaskLink => Some("X-Webhook-Event"),
            Self::TaskHub => Some("X-Event-Type"),
            Self::GitHub => Some("X-GitHub-Event"),
            _ => None,
        }
    }

    /// The `User-Agent` this profile's sender uses.
    pub fn user_agent(self) -> &'static str {
        match self {
            Self::TaskLink => "TaskLink-SA-Webhook/1.0",
            Self::GitHub => "GitHub-Hookshot/hookrelay",
            _ => USER_AGENT,
        }
    }

    /// The body bytes for `event`, in this profile's shape, written with `options`.
    ///
    /// ```
    /// use hookrelay::event::OutgoingEvent;
    /// use hookrelay::json::WriterOptions;
    /// use hookrelay::profile::Profile;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let event = OutgoingEvent::new("payment.created", serde_json::json!({"amount": 500.0}))
    ///     .with_id("evt_1".into())
    ///     .with_time(UNIX_EPOCH + Duration::from_millis(1_759_831_200_000));
    /// let body = Profile::TaskLink.render_body(&event, WriterOptions::javascript())?;
    /// assert_eq!(
    ///     body,
    ///     br#"{"event":"payment.created","id":"evt_1","timestamp":"2025-10-07T10:00:00.000Z","data":{"amount":500}}"#
    /// );
    /// # Ok::<(), hookrelay::json::JsonError>(())
    /// ```
    pub fn render_body(
        self,
        event: &OutgoingEvent,
        options: WriterOptions,
    ) -> Result<Vec<u8>, JsonError> {
        render(self.envelope_shape(), event, options)
    }

    /// What the scheme signs for one attempt: the body, the event id and a fresh timestamp.
    pub fn signing_message<'a>(self, body: &'a [u8], ctx: &RequestContext<'a>) -> Message<'a> {
        Message::new(body)
            .with_id(ctx.event_id)
            .with_timestamp(ctx.timestamp)
    }

    /// The headers one attempt carries besides the scheme's, `Content-Type` and
    /// `User-Agent` first.
    pub fn attempt_headers(self, ctx: &RequestContext<'_>) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("Content-Type", "application/json".to_owned()),
            ("User-Agent", self.user_agent().to_owned()),
        ];
        match self {
            Self::TaskLink => {
                headers.push(("X-Webhook-Attempt", ctx.attempt.to_string()));
            }
            Self::TaskHub => {
                headers.push(("X-Webhook-ID", ctx.endpoint_id.to_owned()));
                headers.push(("X-Delivery-ID", ctx.delivery_id.to_owned()));
            }
            _ => {}
        }
        if let Some(name) = self.event_type_header() {
            headers.push((name, ctx.event_type.to_owned()));
        }
        if self == Self::GitHub {
            headers.push(("X-GitHub-Delivery", ctx.delivery_id.to_owned()));
        }
        headers
    }
}

/// Writes `event` in `shape`.
pub(crate) fn render(
    shape: EnvelopeShape,
    event: &OutgoingEvent,
    options: WriterOptions,
) -> Result<Vec<u8>, JsonError> {
    let (secs, nanos) = event.unix_parts();
    let time = |precision| {
        EventTime::from_unix(secs, nanos, precision)
            .map_err(|_| JsonError::custom("the event time is outside the years 0-9999"))
    };
    match shape {
        EnvelopeShape::Envelope => {
            let envelope = Envelope::with_type(
                event.event_type().clone(),
                Some(event.id().clone()),
                time(TimePrecision::Seconds)?,
                event.data(),
            );
            json::to_vec_with(&envelope, options)
        }
        EnvelopeShape::TaskLink => {
            let envelope = TaskLinkEnvelope::with_type(
                event.event_type().clone(),
                event.id().clone(),
                time(TimePrecision::Millis)?,
                event.data(),
            );
            json::to_vec_with(&envelope, options)
        }
        EnvelopeShape::Flat => json::to_vec_with(event.data(), options),
        EnvelopeShape::Stripe => json::to_vec_with(
            &StripeEvent {
                id: event.id().as_str(),
                object: "event",
                kind: event.event_type().as_str(),
                created: secs,
                data: StripeData {
                    object: event.data(),
                },
            },
            options,
        ),
    }
}

#[derive(Serialize)]
struct StripeEvent<'a> {
    id: &'a str,
    object: &'static str,
    #[serde(rename = "type")]
    kind: &'a str,
    created: i64,
    data: StripeData<'a>,
}

#[derive(Serialize)]
struct StripeData<'a> {
    object: &'a serde_json::Value,
}
