//! Envelopes: the `{id, type, timestamp, data}` object around an event, TaskLink's
//! `{event, id, timestamp, data}` variant, and the two-step parse behind both.
//!
//! Parsing happens in two steps. The envelope is read first, with `data` kept as raw JSON text
//! (borrowed, not copied); then `data` is parsed into the type the event type selects. An
//! unknown event type therefore still parses: it lands in the profile enum's `Unknown` variant.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::error::{from_slice_path, from_str_path};
use super::wire::string_newtype;
use super::{EventError, EventId, EventTime, EventType};
use crate::json::{self, JsonError};

/// Event data that knows its event type: each profile's event enum implements it.
///
/// To parse into your own types instead, use [`Envelope::from_slice_as`] or
/// [`TaskLinkEnvelope::from_slice_as`], which take any `DeserializeOwned` data type.
pub trait EventData: Serialize + Sized {
    /// The event type this value is sent as.
    fn event_type(&self) -> EventType;

    /// Parses the `data` JSON text of an event of type `event_type`. Unknown types must not
    /// fail: they are kept as raw JSON. Error paths are relative to `data`.
    fn from_data(event_type: &EventType, data: &str) -> Result<Self, EventError>;
}

string_newtype!(
    /// The `signature` field TaskLink puts inside its body (`sha256=…`).
    ///
    /// A body cannot carry its own HMAC: this value authenticates nothing and hookrelay never
    /// checks it. It is kept only so that parsing does not fail; verify the
    /// `X-Webhook-Signature` header instead.
    BodySignature
);

/// The Proposal Generator's and task-hub's envelope: `{id, type, timestamp, data}`.
///
/// `id` is optional when parsing (the Proposal Generator's examples omit it); producers built
/// with [`EventFactory`](super::EventFactory) always set one. For task-hub, whose document shows
/// only the `data` objects and names the type in the `X-Event-Type` header, hookrelay uses this
/// same shape, so the body carries the id and type as well.
///
/// ```
/// use hookrelay::event::{Envelope, ProposalGeneratorEvent};
///
/// let body = br#"{"type":"job.started","timestamp":"2024-01-15T10:31:00Z",
///                 "data":{"job_id":"job_123","status":"processing"}}"#;
/// let env = Envelope::<ProposalGeneratorEvent>::from_slice(body)?;
/// match &env.data {
///     ProposalGeneratorEvent::JobStarted(started) => assert_eq!(started.job_id.as_str(), "job_123"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # Ok::<(), hookrelay::event::EventError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope<D> {
    /// The event id; `None` if the sender did not send one.
    pub id: Option<EventId>,
    /// The event type (`type`).
    pub event_type: EventType,
    /// When the event happened, as sent.
    pub timestamp: EventTime,
    /// The event data.
    pub data: D,
    /// Top-level fields this version does not know, kept for the round trip.
    pub extra: Map<String, Value>,
}

/// TaskLink's envelope: `{event, id, timestamp, data}` plus an optional `signature` field.
///
/// The body `signature` is accepted and kept in [`body_signature`](Self::body_signature) but
/// never relied on, and not written by [`Serialize`] or [`to_js_bytes`](Self::to_js_bytes)
/// (see [`BodySignature`]); [`to_js_bytes_with_body_signature`](Self::to_js_bytes_with_body_signature)
/// writes it for receivers that insist on its presence.
///
/// ```
/// use hookrelay::event::{TaskLinkEnvelope, TaskLinkEvent};
///
/// let body = br#"{"event":"payment.created","id":"evt_1","timestamp":"2025-10-07T10:00:00.000Z",
///   "data":{"payment":{"id":"pay_1","amount":500.00,"currency":"ZAR","status":"PENDING"}},
///   "signature":"sha256=abc"}"#;
/// let env = TaskLinkEnvelope::<TaskLinkEvent>::from_slice(body)?;
/// let TaskLinkEvent::PaymentCreated(created) = &env.data else { panic!() };
/// assert_eq!(created.payment.amount, Some("500".parse()?));
/// assert_eq!(
///     String::from_utf8(env.to_js_bytes()?)?,
///     r#"{"event":"payment.created","id":"evt_1","timestamp":"2025-10-07T10:00:00.000Z","data":{"payment":{"id":"pay_1","amount":500,"currency":"ZAR","status":"PENDING"}}}"#
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TaskLinkEnvelope<D> {
    /// The event id (`evt_…`), also sent as `X-Webhook-ID`.
    pub id: EventId,
    /// The event type (`event`).
    pub event_type: EventType,
    /// When the event happened, as sent.
    pub timestamp: EventTime,
    /// The event data.
    pub data: D,
    /// The unauthenticated `signature` body field, if present. Never verified.
    pub body_signature: Option<BodySignature>,
    /// Top-level fields this version does not know, kept for the round trip.
    pub extra: Map<String, Value>,
}

enum Key {
    Id,
    Type,
    Timestamp,
    Data,
    Signature,
    Other(String),
}

struct KeyVisitor<const TASKLINK: bool>;

impl<const TASKLINK: bool> Visitor<'_> for KeyVisitor<TASKLINK> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(match v {
            "id" => Key::Id,
            "type" if !TASKLINK => Key::Type,
            "event" if TASKLINK => Key::Type,
            "timestamp" => Key::Timestamp,
            "data" => Key::Data,
            "signature" if TASKLINK => Key::Signature,
            other => Key::Other(other.to_owned()),
        })
    }
}

struct KeySeed<const TASKLINK: bool>;

impl<'de, const TASKLINK: bool> de::DeserializeSeed<'de> for KeySeed<TASKLINK> {
    type Value = Key;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_identifier(KeyVisitor::<TASKLINK>)
    }
}

/// An envelope with `data` still raw. `TASKLINK` selects `event` + `signature` keys.
pub(crate) struct RawEnvelope<'a, const TASKLINK: bool> {
    pub(crate) id: Option<EventId>,
    pub(crate) event_type: Option<EventType>,
    pub(crate) timestamp: Option<EventTime>,
    pub(crate) data: Option<&'a RawValue>,
    pub(crate) signature: Option<BodySignature>,
    pub(crate) extra: Map<String, Value>,
}

impl<'de: 'a, 'a, const TASKLINK: bool> Deserialize<'de> for RawEnvelope<'a, TASKLINK> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a, const T: bool>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a, const T: bool> Visitor<'de> for V<'a, T> {
            type Value = RawEnvelope<'a, T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an event envelope object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                fn dup<E: de::Error>(name: &'static str) -> E {
                    E::duplicate_field(name)
                }
                let mut env = RawEnvelope::<'a, T> {
                    id: None,
                    event_type: None,
                    timestamp: None,
                    data: None,
                    signature: None,
                    extra: Map::new(),
                };
                while let Some(key) = map.next_key_seed(KeySeed::<T>)? {
                    match key {
                        Key::Id => {
                            if env.id.is_some() {
                                return Err(dup("id"));
                            }
                            env.id = map.next_value()?;
                        }
                        Key::Type => {
                            if env.event_type.is_some() {
                                return Err(dup(if T { "event" } else { "type" }));
                            }
                            env.event_type = Some(map.next_value()?);
                        }
                        Key::Timestamp => {
                            if env.timestamp.is_some() {
                                return Err(dup("timestamp"));
                            }
                            env.timestamp = Some(map.next_value()?);
                        }
                        Key::Data => {
                            if env.data.is_some() {
                                return Err(dup("data"));
                            }
                            env.data = Some(map.next_value()?);
                        }
                        Key::Signature => env.signature = map.next_value()?,
                        Key::Other(name) => {
                            let value: Value = map.next_value()?;
                            env.extra.insert(name, value);
                        }
                    }
                }
                Ok(env)
            }
        }
        deserializer.deserialize_map(V::<'a, TASKLINK>(PhantomData))
    }
}

impl<'a, const TASKLINK: bool> RawEnvelope<'a, TASKLINK> {
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, EventError> {
        from_slice_path(bytes)
    }

    fn type_key() -> &'static str {
        if TASKLINK { "event" } else { "type" }
    }

    pub(crate) fn require(
        self,
    ) -> Result<(Option<EventId>, EventType, EventTime, &'a RawValue, Self), EventError> {
        let missing = |name: &str| EventError::field(".", format!("missing field `{name}`"));
        let mut rest = self;
        let event_type = rest
            .event_type
            .take()
            .ok_or_else(|| missing(Self::type_key()))?;
        let timestamp = rest.timestamp.take().ok_or_else(|| missing("timestamp"))?;
        let data = rest.data.take().ok_or_else(|| missing("data"))?;
        Ok((rest.id.take(), event_type, timestamp, data, rest))
    }
}

fn parse_data<D>(
    data: &RawValue,
    f: impl FnOnce(&str) -> Result<D, EventError>,
) -> Result<D, EventError> {
    f(data.get()).map_err(|e| e.under("data"))
}

impl<D> Envelope<D> {
    /// An envelope around `data` with an explicit event type.
    pub fn with_type(
        event_type: EventType,
        id: Option<EventId>,
        timestamp: EventTime,
        data: D,
    ) -> Self {
        Envelope {
            id,
            event_type,
            timestamp,
            data,
            extra: Map::new(),
        }
    }

    fn from_raw(
        bytes: &[u8],
        parse: impl FnOnce(&EventType, &str) -> Result<D, EventError>,
    ) -> Result<Self, EventError> {
        let raw = RawEnvelope::<false>::parse(bytes)?;
        let (id, event_type, timestamp, data, rest) = raw.require()?;
        let data = parse_data(data, |text| parse(&event_type, text))?;
        Ok(Envelope {
            id,
            event_type,
            timestamp,
            data,
            extra: rest.extra,
        })
    }

    /// Parses an envelope whose `data` is your own type (any `DeserializeOwned`, e.g.
    /// `serde_json::Value`), regardless of the event type.
    pub fn from_slice_as(bytes: &[u8]) -> Result<Self, EventError>
    where
        D: DeserializeOwned,
    {
        Self::from_raw(bytes, |_, text| from_str_path(text))
    }
}

impl<D: EventData> Envelope<D> {
    /// An envelope around a typed event; the event type comes from `data`.
    pub fn new(id: Option<EventId>, timestamp: EventTime, data: D) -> Self {
        Envelope::with_type(data.event_type(), id, timestamp, data)
    }

    /// Parses an envelope and then its `data` as the event type says.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        Self::from_raw(bytes, |t, text| D::from_data(t, text))
    }
}

impl<D: Serialize> Envelope<D> {
    /// The body to send: JSON that `JSON.stringify(JSON.parse(body))` leaves unchanged.
    pub fn to_js_bytes(&self) -> Result<Vec<u8>, JsonError> {
        json::to_js_vec(self)
    }

    /// The body to send to a Python receiver that re-serialises with `json.dumps`.
    pub fn to_python_ascii_bytes(&self) -> Result<Vec<u8>, JsonError> {
        json::to_python_ascii_vec(self)
    }
}

impl<D: Serialize> Serialize for Envelope<D> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 3 + usize::from(self.id.is_some()) + self.extra.len();
        let mut map = serializer.serialize_map(Some(len))?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        map.serialize_entry("type", &self.event_type)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("data", &self.data)?;
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<D> TaskLinkEnvelope<D> {
    /// An envelope around `data` with an explicit event type.
    pub fn with_type(event_type: EventType, id: EventId, timestamp: EventTime, data: D) -> Self {
        TaskLinkEnvelope {
            id,
            event_type,
            timestamp,
            data,
            body_signature: None,
            extra: Map::new(),
        }
    }

    fn from_raw(
        bytes: &[u8],
        parse: impl FnOnce(&EventType, &str) -> Result<D, EventError>,
    ) -> Result<Self, EventError> {
        let raw = RawEnvelope::<true>::parse(bytes)?;
        let (id, event_type, timestamp, data, rest) = raw.require()?;
        let id = id.ok_or_else(|| EventError::field(".", "missing field `id`"))?;
        let data = parse_data(data, |text| parse(&event_type, text))?;
        Ok(TaskLinkEnvelope {
            id,
            event_type,
            timestamp,
            data,
            body_signature: rest.signature,
            extra: rest.extra,
        })
    }

    /// Parses an envelope whose `data` is your own type, regardless of the event type.
    pub fn from_slice_as(bytes: &[u8]) -> Result<Self, EventError>
    where
        D: DeserializeOwned,
    {
        Self::from_raw(bytes, |_, text| from_str_path(text))
    }
}

impl<D: EventData> TaskLinkEnvelope<D> {
    /// An envelope around a typed event; the event type comes from `data`.
    pub fn new(id: EventId, timestamp: EventTime, data: D) -> Self {
        TaskLinkEnvelope::with_type(data.event_type(), id, timestamp, data)
    }

    /// Parses an envelope and then its `data` as the event type says.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        Self::from_raw(bytes, |t, text| D::from_data(t, text))
    }
}

struct WithSignature<'a, D>(&'a TaskLinkEnvelope<D>);

impl<D: Serialize> TaskLinkEnvelope<D> {
    fn serialize_fields<M: SerializeMap>(
        &self,
        map: &mut M,
        signature: bool,
    ) -> Result<(), M::Error> {
        map.serialize_entry("event", &self.event_type)?;
        map.serialize_entry("id", &self.id)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        map.serialize_entry("data", &self.data)?;
        if signature && let Some(sig) = &self.body_signature {
            map.serialize_entry("signature", sig)?;
        }
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        Ok(())
    }

    /// The body to send (without the body `signature` field), as a fixed point of
    /// `JSON.stringify(JSON.parse(body))` — what TaskLink's Node receiver recomputes.
    pub fn to_js_bytes(&self) -> Result<Vec<u8>, JsonError> {
        json::to_js_vec(self)
    }

    /// Like [`to_js_bytes`](Self::to_js_bytes), for TaskLink's Python receiver.
    pub fn to_python_ascii_bytes(&self) -> Result<Vec<u8>, JsonError> {
        json::to_python_ascii_vec(self)
    }

    /// Like [`to_js_bytes`](Self::to_js_bytes) but also writes
    /// [`body_signature`](Self::body_signature), if set. Opt-in: the field authenticates nothing.
    pub fn to_js_bytes_with_body_signature(&self) -> Result<Vec<u8>, JsonError> {
        json::to_js_vec(&WithSignature(self))
    }
}

impl<D: Serialize> Serialize for WithSignature<'_, D> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        self.0.serialize_fields(&mut map, true)?;
        map.end()
    }
}

/// Writes `{event, id, timestamp, data, …extra}`; never the body `signature`.
impl<D: Serialize> Serialize for TaskLinkEnvelope<D> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(4 + self.extra.len()))?;
        self.serialize_fields(&mut map, false)?;
        map.end()
    }
}
