//! The Proposal Generator (`proposal-generator`, seed 001): `job.*`, `document.created`,
//! `proposal.created`, test events, the `webhook.verify` challenge, and the registration API.
//!
//! Wire shape: [`Envelope`] (`{id, type, timestamp, data}`; `id` may be missing), snake_case
//! fields. A webhook body is either an event or the registration challenge
//! `{"type":"webhook.verify","challenge":"…"}`, which has no `data`: parse bodies with
//! [`Message::from_slice`] to get either.
//!
//! ```
//! use hookrelay::event::proposal_generator::{Message, ProposalGeneratorEvent};
//!
//! let body = br#"{"type":"webhook.verify","challenge":"abc123"}"#;
//! match Message::from_slice(body)? {
//!     Message::Challenge(challenge) => {
//!         let reply = hookrelay::json::to_js_string(&challenge.response())?;
//!         assert_eq!(reply, r#"{"challenge":"abc123"}"#);
//!     }
//!     Message::Event(env) => match env.data {
//!         ProposalGeneratorEvent::JobCompleted(done) => println!("{}", done.job_id),
//!         _ => {}
//!     },
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::envelope::RawEnvelope;
use super::registration::{EndpointUrl, RegistrationSecret};
use super::wire::{data_struct, event_enum, string_newtype, wire_enum};
use super::{Envelope, EventData, EventError, EventId, EventTime, EventType};

/// The event type of the registration challenge.
pub const WEBHOOK_VERIFY: &str = "webhook.verify";
/// The event type hookrelay uses for test events (the document names no type for them).
pub const WEBHOOK_TEST: &str = "webhook.test";

string_newtype!(
    /// A generation job id, e.g. `job_123`.
    JobId
);
string_newtype!(
    /// A proposal id, e.g. `prop_123`.
    ProposalId
);
string_newtype!(
    /// A document id, e.g. `doc_123`.
    DocumentId
);
string_newtype!(
    /// A webhook registration id, e.g. `webhook_123`.
    WebhookId
);
string_newtype!(
    /// The challenge string of a `webhook.verify` request.
    Challenge
);

wire_enum!(
    /// A generation job's status.
    JobStatus {
        /// `pending`
        Pending => "pending",
        /// `processing`
        Processing => "processing",
        /// `completed`
        Completed => "completed",
        /// `failed`
        Failed => "failed",
    }
);

wire_enum!(
    /// A webhook registration's status.
    WebhookStatus {
        /// `active`
        Active => "active",
        /// `inactive`
        Inactive => "inactive",
    }
);

wire_enum!(
    /// The `status` of a receiver's reply.
    ReplyStatus {
        /// `ok`: processed.
        Ok => "ok",
        /// `already_processed`: a duplicate, acknowledged.
        AlreadyProcessed => "already_processed",
    }
);

data_struct!(
    /// `job.created`: a new job was created.
    pub struct JobCreated {
        /// The job.
        req job_id: JobId = "job_id",
        /// The proposal the job generates.
        opt proposal_id: ProposalId = "proposal_id",
        /// Usually `pending`.
        opt status: JobStatus = "status",
    }
);

data_struct!(
    /// `job.started`: a job started processing.
    pub struct JobStarted {
        /// The job.
        req job_id: JobId = "job_id",
        /// Usually `processing`.
        opt status: JobStatus = "status",
    }
);

data_struct!(
    /// A job's progress counters.
    pub struct Progress {
        /// Steps done.
        opt completed: u64 = "completed",
        /// Steps in all.
        opt total: u64 = "total",
        /// Percent done (may be fractional).
        opt percentage: f64 = "percentage",
    }
);

data_struct!(
    /// `job.progress`: progress update, sent at most once per 10 seconds per job.
    pub struct JobProgress {
        /// The job.
        req job_id: JobId = "job_id",
        /// The counters.
        req progress: Progress = "progress",
    }
);

data_struct!(
    /// `job.completed`: a job finished successfully.
    pub struct JobCompleted {
        /// The job.
        req job_id: JobId = "job_id",
        /// The proposal.
        opt proposal_id: ProposalId = "proposal_id",
        /// The generated document.
        opt document_id: DocumentId = "document_id",
        /// Usually `completed`.
        opt status: JobStatus = "status",
    }
);

data_struct!(
    /// `job.failed`: a job failed.
    pub struct JobFailed {
        /// The job.
        req job_id: JobId = "job_id",
        /// Human-readable error message.
        opt error: String = "error",
        /// Free-form error details.
        opt error_details: Map<String, Value> = "error_details",
    }
);

data_struct!(
    /// `document.created`: a document was created.
    pub struct DocumentCreated {
        /// The document.
        req document_id: DocumentId = "document_id",
        /// The proposal it belongs to.
        opt proposal_id: ProposalId = "proposal_id",
        /// Document version.
        opt version: u64 = "version",
    }
);

data_struct!(
    /// `proposal.created`: a proposal was created.
    pub struct ProposalCreated {
        /// The proposal.
        req proposal_id: ProposalId = "proposal_id",
        /// Its title.
        opt title: String = "title",
    }
);

data_struct!(
    /// `webhook.test`: a test event sent by `POST /api/webhooks/{id}/test`. The document does
    /// not show its body; hookrelay sends `{"message": …}` and accepts any object.
    pub struct TestEvent {
        /// A free-form message.
        opt message: String = "message",
    }
);

event_enum!(
    /// Every Proposal Generator event, by its `type`.
    ProposalGeneratorEvent {
        /// `job.created`
        JobCreated(JobCreated) => "job.created",
        /// `job.started`
        JobStarted(JobStarted) => "job.started",
        /// `job.progress`
        JobProgress(JobProgress) => "job.progress",
        /// `job.completed`
        JobCompleted(JobCompleted) => "job.completed",
        /// `job.failed`
        JobFailed(JobFailed) => "job.failed",
        /// `document.created`
        DocumentCreated(DocumentCreated) => "document.created",
        /// `proposal.created`
        ProposalCreated(ProposalCreated) => "proposal.created",
        /// `webhook.test`
        Test(TestEvent) => "webhook.test",
    }
);

/// The registration handshake `{"type":"webhook.verify","challenge":"…"}`. Reply with
/// [`VerifyChallenge::response`] and status 200.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifyChallenge {
    /// The challenge to echo.
    pub challenge: Challenge,
    /// An event id, if the sender included one.
    pub id: Option<EventId>,
    /// A timestamp, if the sender included one.
    pub timestamp: Option<EventTime>,
    /// Other top-level fields, kept as sent.
    pub extra: Map<String, Value>,
}

impl VerifyChallenge {
    /// A challenge request for `challenge`.
    pub fn new(challenge: impl Into<Challenge>) -> Self {
        VerifyChallenge {
            challenge: challenge.into(),
            id: None,
            timestamp: None,
            extra: Map::new(),
        }
    }

    /// The reply body `{"challenge":"…"}`.
    pub fn response(&self) -> ChallengeResponse {
        ChallengeResponse {
            challenge: self.challenge.clone(),
        }
    }
}

impl Serialize for VerifyChallenge {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(id) = &self.id {
            map.serialize_entry("id", id)?;
        }
        map.serialize_entry("type", WEBHOOK_VERIFY)?;
        if let Some(t) = &self.timestamp {
            map.serialize_entry("timestamp", t)?;
        }
        map.serialize_entry("challenge", &self.challenge)?;
        for (k, v) in &self.extra {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// The receiver's reply to a [`VerifyChallenge`]: `{"challenge":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChallengeResponse {
    /// The echoed challenge.
    pub challenge: Challenge,
}

/// The receiver's reply to an event: `{"status":"ok"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiverReply {
    /// `ok`, or `already_processed` for a duplicate.
    pub status: ReplyStatus,
}

/// A Proposal Generator webhook body: an event or the registration challenge.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Message {
    /// `webhook.verify`: echo the challenge.
    Challenge(VerifyChallenge),
    /// Any other event.
    Event(Envelope<ProposalGeneratorEvent>),
}

impl Message {
    /// Parses a webhook body.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, EventError> {
        let raw = RawEnvelope::<false>::parse(bytes)?;
        if raw.data.is_none()
            && raw.event_type.as_ref().map(EventType::as_str) == Some(WEBHOOK_VERIFY)
        {
            let mut extra = raw.extra;
            let challenge = match extra.shift_remove("challenge") {
                Some(Value::String(s)) => Challenge::new(s),
                Some(_) => return Err(EventError::field("challenge", "expected a string")),
                None => return Err(EventError::field(".", "missing field `challenge`")),
            };
            return Ok(Message::Challenge(VerifyChallenge {
                challenge,
                id: raw.id,
                timestamp: raw.timestamp,
                extra,
            }));
        }
        let (id, event_type, timestamp, data, rest) = raw.require()?;
        let data = ProposalGeneratorEvent::from_data(&event_type, data.get())
            .map_err(|e| e.under("data"))?;
        Ok(Message::Event(Envelope {
            id,
            event_type,
            timestamp,
            data,
            extra: rest.extra,
        }))
    }
}

impl Serialize for Message {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Message::Challenge(c) => c.serialize(serializer),
            Message::Event(e) => e.serialize(serializer),
        }
    }
}

data_struct!(
    /// `POST /api/webhooks` request body.
    pub struct Registration {
        /// The receiver's HTTPS URL.
        req url: EndpointUrl = "url",
        /// Event types to deliver.
        req events: Vec<EventType> = "events",
        /// The signing secret.
        opt secret: RegistrationSecret = "secret",
    }
);

data_struct!(
    /// `PUT /api/webhooks/{id}` request body.
    pub struct RegistrationUpdate {
        /// New URL.
        opt url: EndpointUrl = "url",
        /// New event list.
        opt events: Vec<EventType> = "events",
    }
);

data_struct!(
    /// A registered webhook, as returned by the management API.
    pub struct Webhook {
        /// Its id.
        req id: WebhookId = "id",
        /// Its URL.
        req url: EndpointUrl = "url",
        /// Subscribed event types.
        opt events: Vec<EventType> = "events",
        /// `active` or another status.
        opt status: WebhookStatus = "status",
        /// When it was registered.
        opt created_at: EventTime = "created_at",
    }
);

data_struct!(
    /// `GET /api/webhooks` response body.
    pub struct WebhookList {
        /// The registered webhooks.
        req webhooks: Vec<Webhook> = "webhooks",
    }
);
