//! Profiles: everything one source system's documents fix — scheme, natural ids, event
//! types, replies and retry schedule — under one name.

use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::retry::RetryPolicy;
use crate::scheme::{
    ApiKey, CanonicalJson, IdBody, RawBody, Scheme, StandardWebhooks, Stripe, XHub,
};

mod check;
pub(crate) mod wire;

#[cfg(feature = "send")]
pub(crate) use check::check_any;
pub use check::{EventField, FieldProblem, UnsendableEvent};
pub use wire::{EnvelopeShape, RequestContext, USER_AGENT};

/// A webhook system hookrelay speaks on both sides.
///
/// | profile | scheme | idempotency key | event type from |
/// |---|---|---|---|
/// | `proposal-generator` | `raw-body` | envelope `id` | `type` |
/// | `tasklink` | `id-body` | `X-Webhook-ID` | `X-Webhook-Event` header, else `event` |
/// | `taskon` | `canonical-json` | `task_id` + `user_id` + `timestamp` | `reward_type` |
/// | `task-hub` | `x-hub` | `X-Delivery-ID` | `X-Event-Type` header, else `type` |
/// | `standard-webhooks` | `standard-webhooks` | `webhook-id` | `type` |
/// | `github` | `github` | `X-GitHub-Delivery` | `X-GitHub-Event` header, else `type` |
/// | `stripe` | `stripe` | envelope `id` | `type` |
///
/// When the natural id is absent (001's documented examples carry no `id`), the key is the
/// SHA-256 of the verified body: a sender's retry repeats the body byte for byte. The event
/// type comes from the profile's [`event_type_header`](Profile::event_type_header) when the
/// request carries it, and from the body otherwise ([`Profile::event_type_in`]).
///
/// ```
/// use hookrelay::profile::Profile;
///
/// let profile: Profile = "tasklink".parse()?;
/// assert_eq!(profile, Profile::TaskLink);
/// assert_eq!(profile.retry_policy().max_attempts(), 5);
/// # Ok::<(), hookrelay::profile::UnknownProfile>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// Proposal Generator (seed 001).
    ProposalGenerator,
    /// TaskLink SA (seed 002).
    TaskLink,
    /// TaskOn reward webhooks (seed 003).
    TaskOn,
    /// The task/system event service (seed 004).
    TaskHub,
    /// Standard Webhooks (and Svix).
    StandardWebhooks,
    /// GitHub's webhooks (`X-Hub-Signature-256`).
    GitHub,
    /// Stripe's webhooks (`Stripe-Signature`).
    Stripe,
}

impl Profile {
    /// Every profile, in documentation order.
    pub const ALL: [Profile; 7] = [
        Self::ProposalGenerator,
        Self::TaskLink,
        Self::TaskOn,
        Self::TaskHub,
        Self::StandardWebhooks,
        Self::GitHub,
        Self::Stripe,
    ];

    /// The profile's name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Self::ProposalGenerator => "proposal-generator",
            Self::TaskLink => "tasklink",
            Self::TaskOn => "taskon",
            Self::TaskHub => "task-hub",
            Self::StandardWebhooks => "standard-webhooks",
            Self::GitHub => "github",
            Self::Stripe => "stripe",
        }
    }

    /// The sender's documented retry schedule.
    pub fn retry_policy(self) -> RetryPolicy {
        match self {
            Self::ProposalGenerator => RetryPolicy::proposal_generator(),
            Self::TaskLink => RetryPolicy::tasklink(),
            Self::TaskOn => RetryPolicy::taskon(),
            Self::TaskHub => RetryPolicy::task_hub(),
            // GitHub does not retry on its own; Stripe retries for up to three days. Both use
            // Standard Webhooks' schedule here.
            Self::StandardWebhooks | Self::GitHub | Self::Stripe => {
                RetryPolicy::standard_webhooks()
            }
        }
    }

    /// Reads a secret the way this profile's senders write it: `whsec_<base64>` (or bare
    /// base64) for Standard Webhooks, the text's bytes verbatim for every other profile.
    pub fn secret_from_text(self, text: &str) -> Result<crate::Secret, crate::SecretError> {
        match self {
            Self::StandardWebhooks => crate::Secret::from_base64(text),
            _ => crate::Secret::from_raw(text),
        }
    }

    /// The signing scheme; TaskOn's needs its API key.
    pub fn scheme(self, api_key: Option<ApiKey>) -> Result<Box<dyn Scheme>, MissingApiKey> {
        Ok(match self {
            Self::ProposalGenerator => Box::new(RawBody),
            Self::TaskLink => Box::new(IdBody),
            Self::TaskOn => Box::new(CanonicalJson::new(api_key.ok_or(MissingApiKey(()))?)),
            Self::TaskHub => Box::new(XHub::new()),
            Self::StandardWebhooks => Box::new(StandardWebhooks::new()),
            Self::GitHub => Box::new(XHub::github()),
            Self::Stripe => Box::new(Stripe),
        })
    }

    /// A delivery's event type: from the profile's
    /// [`event_type_header`](Self::event_type_header) when the request carries it once (GitHub's
    /// `X-GitHub-Event`, task-hub's `X-Event-Type`, TaskLink's `X-Webhook-Event`), else from the
    /// body ([`event_type`](Self::event_type)).
    ///
    /// A header that is repeated, empty, not UTF-8 or holds control characters is ignored, as
    /// if absent. The header is not signed by these profiles' schemes; the body is.
    ///
    /// ```
    /// use hookrelay::profile::Profile;
    ///
    /// // 004's payloads are flat: the type is only in the header.
    /// let body = br#"{"taskId":"123","status":"completed"}"#;
    /// let headers = [("X-Event-Type", "task.completed")];
    /// assert_eq!(Profile::TaskHub.event_type_in(&headers[..], body).as_deref(), Some("task.completed"));
    /// // Without the header, the body's `type`.
    /// let no_headers: [(&str, &str); 0] = [];
    /// let envelope = br#"{"id":"evt_1","type":"task.created","data":{}}"#;
    /// assert_eq!(Profile::TaskHub.event_type_in(&no_headers[..], envelope).as_deref(), Some("task.created"));
    /// ```
    pub fn event_type_in(
        self,
        headers: &(impl crate::HeaderLookup + ?Sized),
        body: &[u8],
    ) -> Option<String> {
        self.event_type_from_header(headers)
            .map(str::to_owned)
            .or_else(|| self.event_type(body))
    }

    /// The usable value of the profile's event-type header, if the request has one.
    pub(crate) fn event_type_from_header(
        self,
        headers: &(impl crate::HeaderLookup + ?Sized),
    ) -> Option<&str> {
        let crate::HeaderValue::One(raw) = headers.header(self.event_type_header()?) else {
            return None;
        };
        std::str::from_utf8(raw)
            .ok()
            .map(str::trim)
            .filter(|kind| !kind.is_empty() && !kind.chars().any(char::is_control))
    }

    /// The event type named in the body, if any (`reward_type` for TaskOn); see
    /// [`event_type_in`](Self::event_type_in) for a delivery's type, which prefers the profile's
    /// event-type header.
    pub fn event_type(self, body: &[u8]) -> Option<String> {
        let field = peek::<TypeFields>(body)?;
        match self {
            Self::TaskLink => field.event,
            Self::TaskOn => field.reward_type,
            _ => field.kind,
        }
    }

    /// The challenge string of a Proposal Generator `webhook.verify` request.
    pub fn challenge(self, body: &[u8]) -> Option<String> {
        if self != Self::ProposalGenerator {
            return None;
        }
        let fields = peek::<ChallengeFields>(body)?;
        (fields.kind.as_deref() == Some("webhook.verify"))
            .then_some(fields.challenge)
            .flatten()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or(UnknownProfile(()))
    }
}

/// A name that is not one of [`Profile::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProfile(());

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown profile; expected one of proposal-generator, tasklink, taskon, task-hub, standard-webhooks, github, stripe")
    }
}

impl std::error::Error for UnknownProfile {}

/// The TaskOn profile was asked for without its API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MissingApiKey(());

impl fmt::Display for MissingApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the taskon profile needs an api key")
    }
}

impl std::error::Error for MissingApiKey {}

/// Reads a few top-level fields of a JSON object body; `None` if it is not one.
fn peek<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Option<T> {
    serde_json::from_slice(body).ok()
}

#[derive(Deserialize)]
struct TypeFields {
    #[serde(rename = "type")]
    kind: Option<String>,
    event: Option<String>,
    reward_type: Option<String>,
}

#[derive(Deserialize)]
struct ChallengeFields {
    #[serde(rename = "type")]
    kind: Option<String>,
    challenge: Option<String>,
}
