//! The verification handshake (Proposal Generator): a new endpoint receives nothing until it
//! answers a `webhook.verify` request by echoing its challenge.

use std::fmt;

use bytes::Bytes;

use super::dispatcher::plan::transport_failure;
use super::signing::{Attempt, signed_request};
use super::store::{AttemptError, DeliveryStore, StoreError};
use super::{EndpointId, EndpointStatus, Refusal, Sender, Transport, TransportError};

/// The event type of the handshake request.
pub const VERIFY_EVENT: &str = "webhook.verify";

/// How a verification handshake went.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verification {
    /// The endpoint echoed the challenge. A pending endpoint is now active.
    Verified,
    /// It did not. A pending endpoint stays pending, with the reason as its
    /// [`status_note`](super::Endpoint::status_note).
    Failed(HandshakeFailure),
}

/// Why a handshake failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeFailure {
    /// A 2xx answer whose body is not `{"challenge": "<the challenge sent>"}`.
    WrongEcho,
    /// A non-2xx answer.
    Status(u16),
    /// No answer within the profile's timeout.
    Timeout,
    /// Connecting failed or the connection broke.
    Connection,
    /// The SSRF guard refused the destination.
    Refused(Refusal),
    /// The request could not be signed (no active secret).
    Unsignable,
    /// The handshake body could not be serialised (nothing was sent).
    Unserializable,
    /// Anything else.
    Other,
}

impl fmt::Display for HandshakeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongEcho => f.write_str("verification failed: the challenge was not echoed"),
            Self::Status(code) => write!(f, "verification failed: the endpoint answered {code}"),
            Self::Timeout => {
                f.write_str("verification failed: the endpoint did not answer in time")
            }
            Self::Connection => f.write_str("verification failed: could not connect"),
            Self::Refused(why) => write!(f, "verification failed: destination refused ({why})"),
            Self::Unsignable => f.write_str("verification failed: no active secret to sign with"),
            Self::Unserializable => {
                f.write_str("verification failed: the handshake body could not be serialised")
            }
            Self::Other => f.write_str("verification failed"),
        }
    }
}

impl<S: DeliveryStore> Sender<S> {
    /// Runs the verification handshake with one endpoint: POSTs
    /// `{"type":"webhook.verify","challenge":"<random>"}`, signed like any delivery to it,
    /// and expects a 2xx whose JSON body echoes `{"challenge": "<same>"}`.
    ///
    /// On success a [`PendingVerification`](EndpointStatus::PendingVerification) endpoint
    /// becomes active (other statuses are left as they are); on failure it stays pending
    /// with the reason recorded. Run it again at any time: each run sends a new challenge.
    /// Proposal Generator endpoints start pending; any other endpoint opts in by being
    /// built with that status.
    pub async fn verify_endpoint<T: Transport>(
        &self,
        transport: &T,
        id: &EndpointId,
    ) -> Result<Verification, StoreError> {
        let endpoint = self
            .shared
            .store
            .endpoint(id)
            .await?
            .ok_or_else(|| StoreError::not_found("endpoint"))?;
        let challenge = super::id::random_id("");
        let request_id = format!("hs_{challenge}");
        let body = serde_json::json!({ "type": VERIFY_EVENT, "challenge": challenge });
        let outcome = match crate::json::to_js_vec(&body) {
            // Never sent empty: a body that does not serialise fails the handshake.
            Err(_) => Verification::Failed(HandshakeFailure::Unserializable),
            Ok(body) => {
                let body = Bytes::from(body);
                let now = self.shared.now();
                let request = signed_request(
                    &endpoint,
                    endpoint.scheme().ok().as_deref(),
                    &Attempt {
                        event_id: &request_id,
                        event_type: VERIFY_EVENT,
                        delivery_id: &request_id,
                        attempt: 1,
                    },
                    &body,
                    now,
                    endpoint.retry_policy().timeout(),
                );
                match request {
                    Err(_) => Verification::Failed(HandshakeFailure::Unsignable),
                    Ok(request) => judge(transport.send(request).await, &challenge),
                }
            }
        };
        if endpoint.status() == EndpointStatus::PendingVerification {
            let (status, note) = match &outcome {
                Verification::Verified => (EndpointStatus::Active, None),
                Verification::Failed(why) => {
                    (EndpointStatus::PendingVerification, Some(why.to_string()))
                }
            };
            self.shared
                .store
                .set_endpoint_status(id, status, note.as_deref())
                .await?;
            self.endpoints_changed();
        }
        Ok(outcome)
    }
}

fn judge(
    result: Result<super::TransportResponse, TransportError>,
    challenge: &str,
) -> Verification {
    let failure = match result {
        Ok(response) if (200..300).contains(&response.status) => {
            let echoed = serde_json::from_slice::<serde_json::Value>(&response.body)
                .ok()
                .is_some_and(|v| v["challenge"].as_str() == Some(challenge));
            if echoed {
                return Verification::Verified;
            }
            HandshakeFailure::WrongEcho
        }
        Ok(response) => HandshakeFailure::Status(response.status),
        // The dispatcher's mapping, so a delivery and a handshake name a failure alike.
        Err(e) => match transport_failure(&e).1 {
            AttemptError::Timeout => HandshakeFailure::Timeout,
            AttemptError::Connection => HandshakeFailure::Connection,
            AttemptError::Refused(why) => HandshakeFailure::Refused(why),
            _ => HandshakeFailure::Other,
        },
    };
    Verification::Failed(failure)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::send::Refusal;

    #[test]
    fn transport_failures_map_like_the_dispatchers() {
        let failed = |e| judge(Err(e), "c");
        assert_eq!(
            failed(TransportError::Timeout),
            Verification::Failed(HandshakeFailure::Timeout)
        );
        assert_eq!(
            failed(TransportError::Connection),
            Verification::Failed(HandshakeFailure::Connection)
        );
        assert_eq!(
            failed(TransportError::Refused(Refusal::NonPublicAddress)),
            Verification::Failed(HandshakeFailure::Refused(Refusal::NonPublicAddress))
        );
        assert_eq!(
            failed(TransportError::Other),
            Verification::Failed(HandshakeFailure::Other)
        );
    }

    #[test]
    fn the_unserialisable_body_failure_says_so() {
        assert!(
            HandshakeFailure::Unserializable
                .to_string()
                .contains("could not be serialised")
        );
    }
}
