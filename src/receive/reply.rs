//! What a receiver answers: status codes and the small JSON bodies each profile expects.

use bytes::Bytes;
use http::StatusCode;

use crate::VerifyError;
use crate::profile::Profile;

/// Why a request was not handed to the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejection {
    /// 400: missing, repeated or malformed headers, or a body lacking signed fields.
    Malformed(VerifyError),
    /// 401: the signature, API key or timestamp did not hold.
    Unauthorized(VerifyError),
    /// 413: the body is over the size limit (checked before any HMAC work).
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// 422: a valid signature over a payload that does not parse.
    Unprocessable(String),
    /// 409: the same delivery is being processed right now; the sender should retry.
    InProgress,
    /// 503: the idempotency store could not answer; the sender should retry.
    Unavailable,
    /// 500: the handler failed; the idempotency claim was released so a retry is processed.
    HandlerFailed,
    /// 500: a route using the layer's extractor is not behind the layer (a wiring mistake).
    LayerMissing,
}

impl Rejection {
    /// The rejection for a verification error.
    pub fn from_verify(err: VerifyError) -> Self {
        match err {
            VerifyError::BodyTooLarge { limit } => Self::TooLarge { limit },
            err if err.is_malformed() => Self::Malformed(err),
            err => Self::Unauthorized(err),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::TooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InProgress => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::HandlerFailed | Self::LayerMissing => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The one short text the sender sees. Verification failures all read the same, so the
    /// reply tells an attacker nothing; the detail is in the variant, for logs.
    fn public_message(&self) -> &'static str {
        match self {
            Self::Malformed(_) | Self::Unauthorized(_) => "invalid webhook",
            Self::TooLarge { .. } => "payload too large",
            Self::Unprocessable(_) => "unprocessable payload",
            Self::InProgress => "delivery in progress, retry later",
            Self::Unavailable => "temporarily unavailable",
            Self::HandlerFailed | Self::LayerMissing => "processing failed, retry later",
        }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The verification error is the source, not repeated here.
            Self::Malformed(_) => f.write_str("malformed webhook request"),
            Self::Unauthorized(_) => f.write_str("webhook not authenticated"),
            Self::Unprocessable(detail) => write!(f, "payload does not parse: {detail}"),
            other => f.write_str(other.public_message()),
        }
    }
}

impl std::error::Error for Rejection {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Malformed(err) | Self::Unauthorized(err) => Some(err),
            _ => None,
        }
    }
}

/// A response to send: a status and a JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body (`application/json`).
    pub body: Bytes,
}

impl Reply {
    fn json(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            body: body.into(),
        }
    }

    /// The profile's reply to an event processed now.
    ///
    /// `{"status":"ok"}` for Proposal Generator, `{"result":true,"error":null}` for TaskOn,
    /// `{"received":true}` otherwise.
    pub fn accepted(profile: Profile) -> Self {
        Self::json(StatusCode::OK, accepted_body(profile))
    }

    /// The profile's reply to a delivery already processed: 2xx, so the sender stops.
    ///
    /// Proposal Generator's documentation shows `{"status":"already_processed"}`.
    pub fn duplicate(profile: Profile) -> Self {
        match profile {
            Profile::ProposalGenerator => {
                Self::json(StatusCode::OK, &br#"{"status":"already_processed"}"#[..])
            }
            other => Self::accepted(other),
        }
    }

    /// Proposal Generator's handshake: `{"challenge":"<same>"}`.
    pub fn challenge(challenge: &str) -> Self {
        let body = serde_json::json!({ "challenge": challenge }).to_string();
        Self::json(StatusCode::OK, body)
    }

    /// The profile's reply to a rejected request.
    ///
    /// TaskOn: `{"result":false,"error":"…"}`; others: `{"error":"…"}`.
    pub fn rejected(profile: Profile, rejection: &Rejection) -> Self {
        let message = rejection.public_message();
        let body = match profile {
            Profile::TaskOn => serde_json::json!({ "result": false, "error": message }),
            _ => serde_json::json!({ "error": message }),
        };
        Self::json(rejection.status(), body.to_string())
    }
}

/// Logs why a request is refused (feature `tracing`) and returns the generic reply.
pub(crate) fn refuse(profile: Profile, rejection: &Rejection) -> Reply {
    super::trace::rejected(Some(profile), rejection);
    Reply::rejected(profile, rejection)
}

/// The profile's body for an accepted event.
pub(crate) fn accepted_body(profile: Profile) -> &'static [u8] {
    match profile {
        Profile::ProposalGenerator => br#"{"status":"ok"}"#,
        Profile::TaskOn => br#"{"result":true,"error":null}"#,
        _ => br#"{"received":true}"#,
    }
}
