//! What an attempt produced ([`AttemptOutcome`]) and what that means ([`OutcomeClass`],
//! [`Classifier`]).

use super::RetryAfter;

/// The result of one delivery attempt, as the transport saw it.
///
/// Status codes are kept as a bare `u16` so that any value a peer sends, including nonsense
/// like `0` or `999`, has a representation (it classifies as a retryable failure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The endpoint answered with an HTTP status.
    Status {
        /// The status code.
        code: u16,
        /// The parsed `Retry-After` header, if the response had a valid one.
        retry_after: Option<RetryAfter>,
    },
    /// No complete response within the policy's timeout.
    Timeout,
    /// The connection could not be made or broke (DNS, refused, reset, TLS).
    ConnectionError,
    /// Any other transport failure (a body over the limit, a destination refused by policy …).
    Other,
}

impl AttemptOutcome {
    /// A response with `code` and no `Retry-After`.
    pub const fn status(code: u16) -> Self {
        AttemptOutcome::Status {
            code,
            retry_after: None,
        }
    }

    /// A response with `code` and the raw `Retry-After` header value, if any. Junk values are
    /// ignored, as if the header were absent.
    pub fn from_response(code: u16, retry_after: Option<&[u8]>) -> Self {
        AttemptOutcome::Status {
            code,
            retry_after: retry_after.and_then(|v| RetryAfter::parse(v).ok()),
        }
    }
}

/// What an outcome means for the delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeClass {
    /// Accepted by the endpoint; the delivery is done.
    Delivered,
    /// A failure worth retrying.
    Retryable,
    /// A failure that retrying will not fix; the delivery is given up (dead-lettered).
    Final,
    /// The endpoint is gone: give up and disable the endpoint.
    DisableEndpoint,
}

impl OutcomeClass {
    /// Whether this class is a failure (anything but [`OutcomeClass::Delivered`]).
    pub const fn is_failure(self) -> bool {
        !matches!(self, OutcomeClass::Delivered)
    }
}

/// How `4xx` statuses without a specific rule are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ClientErrors {
    /// Retry them (the default, as Standard Webhooks does: a misconfigured receiver is often
    /// fixed within the retry horizon).
    #[default]
    Retry,
    /// Give up at once.
    Final,
}

/// Maps an [`AttemptOutcome`] to an [`OutcomeClass`].
///
/// Defaults:
///
/// | outcome | class |
/// |---|---|
/// | `2xx` | [`Delivered`](OutcomeClass::Delivered) |
/// | `3xx` (redirects are never followed) | [`Retryable`](OutcomeClass::Retryable) failure |
/// | `408`, `429` | [`Retryable`](OutcomeClass::Retryable) |
/// | `410 Gone` | [`DisableEndpoint`](OutcomeClass::DisableEndpoint) |
/// | other `4xx` | [`Retryable`](OutcomeClass::Retryable), or [`Final`](OutcomeClass::Final) with [`ClientErrors::Final`] |
/// | `5xx` | [`Retryable`](OutcomeClass::Retryable) |
/// | `1xx` and codes outside `100..=599` | [`Retryable`](OutcomeClass::Retryable) failure |
/// | timeout, connection error, other transport error | [`Retryable`](OutcomeClass::Retryable) |
///
/// Per-status overrides ([`Classifier::with_status`]) take precedence over all of these.
///
/// So by default no outcome is [`Final`](OutcomeClass::Final): a delivery gives up only when
/// its attempts run out (or it expires, or `410` disables its endpoint). A delivery is
/// dead-lettered as not retryable only with [`ClientErrors::Final`] (then every `4xx` but
/// 408, 410 and 429) or a per-status override.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Classifier {
    client_errors: ClientErrors,
    overrides: Vec<(u16, OutcomeClass)>,
}

impl Classifier {
    /// The default classification described above.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets how otherwise unlisted `4xx` statuses are treated.
    pub fn with_client_errors(mut self, client_errors: ClientErrors) -> Self {
        self.client_errors = client_errors;
        self
    }

    /// Classifies `code` as `class`, overriding the defaults (the last rule for a code wins).
    pub fn with_status(mut self, code: u16, class: OutcomeClass) -> Self {
        self.overrides.retain(|&(c, _)| c != code);
        self.overrides.push((code, class));
        self
    }

    /// How client errors (4xx other than those overridden) are classified.
    pub fn client_errors(&self) -> ClientErrors {
        self.client_errors
    }

    /// The per-status overrides, in the order they were added.
    pub fn overrides(&self) -> &[(u16, OutcomeClass)] {
        &self.overrides
    }

    /// Classifies one outcome. Allocation-free.
    pub fn classify(&self, outcome: &AttemptOutcome) -> OutcomeClass {
        match *outcome {
            AttemptOutcome::Status { code, .. } => self.classify_status(code),
            AttemptOutcome::Timeout | AttemptOutcome::ConnectionError | AttemptOutcome::Other => {
                OutcomeClass::Retryable
            }
        }
    }

    /// Classifies a bare status code.
    pub fn classify_status(&self, code: u16) -> OutcomeClass {
        if let Some(&(_, class)) = self.overrides.iter().find(|&&(c, _)| c == code) {
            return class;
        }
        match code {
            200..=299 => OutcomeClass::Delivered,
            410 => OutcomeClass::DisableEndpoint,
            408 | 429 => OutcomeClass::Retryable,
            400..=499 => match self.client_errors {
                ClientErrors::Retry => OutcomeClass::Retryable,
                ClientErrors::Final => OutcomeClass::Final,
            },
            _ => OutcomeClass::Retryable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let c = Classifier::new();
        for (code, class) in [
            (200, OutcomeClass::Delivered),
            (204, OutcomeClass::Delivered),
            (299, OutcomeClass::Delivered),
            (301, OutcomeClass::Retryable),
            (308, OutcomeClass::Retryable),
            (400, OutcomeClass::Retryable),
            (408, OutcomeClass::Retryable),
            (410, OutcomeClass::DisableEndpoint),
            (429, OutcomeClass::Retryable),
            (500, OutcomeClass::Retryable),
            (503, OutcomeClass::Retryable),
            (0, OutcomeClass::Retryable),
            (101, OutcomeClass::Retryable),
            (999, OutcomeClass::Retryable),
        ] {
            assert_eq!(c.classify_status(code), class, "status {code}");
        }
        assert_eq!(
            c.classify(&AttemptOutcome::Timeout),
            OutcomeClass::Retryable
        );
    }

    #[test]
    fn final_client_errors_keep_408_429_410() {
        let c = Classifier::new().with_client_errors(ClientErrors::Final);
        assert_eq!(c.classify_status(400), OutcomeClass::Final);
        assert_eq!(c.classify_status(401), OutcomeClass::Final);
        assert_eq!(c.classify_status(408), OutcomeClass::Retryable);
        assert_eq!(c.classify_status(429), OutcomeClass::Retryable);
        assert_eq!(c.classify_status(410), OutcomeClass::DisableEndpoint);
        assert_eq!(c.classify_status(500), OutcomeClass::Retryable);
    }

    #[test]
    fn overrides_win_and_last_one_counts() {
        let c = Classifier::new()
            .with_status(501, OutcomeClass::Final)
            .with_status(501, OutcomeClass::DisableEndpoint);
        assert_eq!(c.classify_status(501), OutcomeClass::DisableEndpoint);
        assert_eq!(c.classify_status(500), OutcomeClass::Retryable);
    }
}
